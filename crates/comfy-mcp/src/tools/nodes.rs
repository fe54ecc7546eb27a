//! Custom node management through ComfyUI-Manager: search the installed
//! packs, install, update or uninstall one, and the Manager's queue.
//!
//! Installing code on the ComfyUI machine is the riskiest thing this server
//! can do, so (unlike the peer) it is gated: in enforce mode only packs in
//! `security.allowed_custom_nodes` may be touched, and when the client can
//! ask the user (elicitation, or an input-required result on MCP
//! 2026-07-28), the user confirms first. Pack ids are
//! checked before they reach a URL or a task. After an install or update
//! the node auditor runs over the server's catalog and its findings are
//! part of the result. Manager is detected lazily and the answer kept for
//! a minute.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use comfy_audit::Record;
use comfy_guard::inspect::Mode;
use serde_json::{Map, Value, json};

use super::generate::{Reporter, confirm};
use super::impls::{Output, ToolContext, ToolError, paginate};

type Args = Map<String, Value>;

const PROBE_TTL: Duration = Duration::from_mins(1);

const NOT_INSTALLED: &str = "ComfyUI-Manager is not installed on the ComfyUI server, so custom nodes cannot be \
managed through it. Install it (https://github.com/Comfy-Org/ComfyUI-Manager), restart ComfyUI, then try again.";

fn text<'a>(args: &'a Args, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// Whether ComfyUI-Manager answers (probed at most once a minute).
pub(super) async fn available(cx: &ToolContext) -> Result<bool, ToolError> {
    if let Ok(cache) = cx.probes.lock()
        && let Some((ok, at)) = cache.manager
        && at.elapsed() < PROBE_TTL
    {
        return Ok(ok);
    }
    let ok = cx.client().manager_version().await?.is_some();
    if let Ok(mut cache) = cx.probes.lock() {
        cache.manager = Some((ok, Instant::now()));
    }
    Ok(ok)
}

/// A registry pack id: letters, digits, `.`, `_`, `-` (no paths, URLs or
/// spaces), at most 200 bytes.
fn pack_id(args: &Args) -> Result<String, ToolError> {
    let id = text(args, "node_id");
    let ok = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && !id.contains("..")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(id.to_owned())
    } else {
        Err(ToolError::rejected(format!(
            "`node_id` must be a node pack id from the registry (letters, digits, `.`, `_`, `-`), got {}",
            super::impls::quoted(id)
        )))
    }
}

/// Runs a custom-node tool.
///
/// # Errors
/// [`ToolError`] with what was wrong.
pub(super) async fn run(name: &str, args: &Args, cx: &ToolContext, reporter: &Reporter) -> Result<Output, ToolError> {
    // Arguments first: a bad id is refused whether or not Manager is there.
    let id = match name {
        "comfyui_install_custom_node" | "comfyui_uninstall_custom_node" | "comfyui_update_custom_node" => {
            Some(pack_id(args)?)
        }
        _ => None,
    };
    if !available(cx).await? {
        return Err(ToolError::failed(NOT_INSTALLED));
    }
    match name {
        "comfyui_get_custom_node_status" => Ok(Output::Json(cx.client().manager_queue_status().await?)),
        "comfyui_search_custom_nodes" => search(args, cx).await,
        _ => {
            let id = id.unwrap_or_default();
            let kind = match name {
                "comfyui_install_custom_node" => "install",
                "comfyui_uninstall_custom_node" => "uninstall",
                _ => "update",
            };
            manage(kind, &id, args, cx, reporter).await
        }
    }
}

/// Scores installed packs against the query as the peer does: exact name 3,
/// name 2, pack id 1.5, description 1, author 0.5.
async fn search(args: &Args, cx: &ToolContext) -> Result<Output, ToolError> {
    let query = text(args, "query").to_lowercase();
    let installed = cx.client().manager_installed().await?;
    let mut scored: Vec<(f64, Value)> = Vec::new();
    for (key, entry) in installed.as_object().into_iter().flatten() {
        let id = entry
            .get("cnr_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(key);
        let field = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (description, author) = (field("description"), field("author"));
        let name = key.to_lowercase();
        let mut score = 0.0;
        if name == query {
            score += 3.0;
        } else if name.contains(&query) {
            score += 2.0;
        }
        if id.to_lowercase().contains(&query) {
            score += 1.5;
        }
        if description.to_lowercase().contains(&query) {
            score += 1.0;
        }
        if author.to_lowercase().contains(&query) {
            score += 0.5;
        }
        if score > 0.0 {
            scored.push((
                score,
                json!({"id": id, "name": key, "description": description, "author": author,
                       "installed": "true", "version": entry.get("ver").cloned().unwrap_or(Value::Null)}),
            ));
        }
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut page = paginate(scored.into_iter().map(|(_, v)| v).collect(), args);
    page["query"] = Value::from(text(args, "query"));
    Ok(Output::Json(page))
}

async fn manage(kind: &str, id: &str, args: &Args, cx: &ToolContext, reporter: &Reporter) -> Result<Output, ToolError> {
    let sec = &cx.config.security;
    let tool = format!("{kind}_custom_node");
    if sec.mode == Mode::Enforce && !sec.allowed_custom_nodes.iter().any(|a| a == id) {
        return Err(ToolError::rejected(format!(
            "Refusing to {kind} node pack '{id}' in enforce mode: it is not in security.allowed_custom_nodes"
        )));
    }
    let version = text(args, "version");
    let question = format!(
        "{} custom node pack '{id}'{} on the ComfyUI server? {}",
        match kind {
            "install" => "Install",
            "uninstall" => "Uninstall",
            _ => "Update",
        },
        if version.is_empty() {
            String::new()
        } else {
            format!(" version {version}")
        },
        if kind == "uninstall" {
            ""
        } else {
            "It will run its code on that machine."
        }
    );
    match confirm(cx, reporter, question).await? {
        Some(false) => {
            let _ = cx
                .audit
                .write(Record::new(&tool, "elicitation_declined").extra(json!({"node_id": id})))
                .await;
            return Err(ToolError::rejected(format!(
                "The user declined to {kind} node pack '{id}'"
            )));
        }
        Some(true) => {
            let _ = cx
                .audit
                .write(Record::new(&tool, "elicitation_accepted").extra(json!({"node_id": id})))
                .await;
        }
        None => {}
    }
    let params = match kind {
        "install" => {
            let v = if version.is_empty() { "latest" } else { version };
            json!({"id": id, "version": v, "selected_version": v, "mode": "remote", "channel": "default"})
        }
        "uninstall" => json!({"node_name": id, "is_unknown": false}),
        _ => json!({"node_name": id, "node_ver": null}),
    };
    let ui_id = format!("{:032x}", fastrand::u128(..));
    let task = json!({"ui_id": ui_id, "client_id": "comfyui-mcp", "kind": kind, "params": params});
    let _ = cx
        .audit
        .write(Record::new(&tool, "queued").extra(json!({"node_id": id, "kind": kind})))
        .await;
    cx.client().manager_queue_task(&task).await?;
    cx.client().manager_queue_start().await?;
    // Wait for the Manager's queue, ending before the tool deadline.
    let limit = Duration::from_secs(cx.config.server.tool_deadline.saturating_sub(10).clamp(1, 300));
    let started = Instant::now();
    loop {
        let status = cx.client().manager_queue_status().await?;
        let busy = status.get("is_processing").and_then(Value::as_bool).unwrap_or(false)
            || status.get("pending_count").and_then(Value::as_u64).unwrap_or(0) > 0;
        if !busy {
            break;
        }
        if started.elapsed() >= limit {
            return Ok(Output::Text(
                "Operation queued but not yet complete. Use comfyui_get_custom_node_status to check progress."
                    .to_owned(),
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The node catalog changes with the packs (after ComfyUI restarts).
    cx.client().forget_object_info();
    let mut message = format!("Node pack '{id}' operation completed.");
    let restart = args.get("restart").and_then(Value::as_bool).unwrap_or(false);
    if restart {
        let queue = cx.client().queue().await?;
        let jobs = queue.running.len() + queue.pending.len();
        if jobs > 0 {
            let _ = write!(
                message,
                " Restart deferred — {jobs} job(s) in queue. Restart manually, then run comfyui_audit_dangerous_nodes."
            );
            return Ok(Output::Text(message));
        }
        cx.client().manager_reboot().await?;
        let _ = cx.audit.write(Record::new(&tool, "reboot_initiated")).await;
        let back = Instant::now();
        let mut up = false;
        while back.elapsed() < Duration::from_mins(1) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if cx.client().system_stats().await.is_ok() {
                up = true;
                break;
            }
        }
        if !up {
            message.push_str(" ComfyUI restarting — not yet reachable. Check back shortly.");
            return Ok(Output::Text(message));
        }
        message.push_str(" ComfyUI restarted.");
    } else if kind != "uninstall" {
        message.push_str(" Restart required for nodes to become active.");
    }
    if kind != "uninstall" {
        let raw = cx.client().object_info_raw().await?;
        let audit = comfy_guard::audit_catalog(&raw, &cx.policy);
        let _ = write!(
            message,
            " Security audit: {} nodes scanned, {} dangerous, {} suspicious.",
            audit.total_nodes, audit.dangerous.count, audit.suspicious.count
        );
        for n in audit.dangerous.nodes.iter().take(20) {
            let _ = write!(message, "\n  DANGEROUS: {} — {}", n.class, n.reason);
        }
        let _ = cx
            .audit
            .write(Record::new(&tool, "post_install_audit").extra(json!({
                "node_id": id, "total_nodes": audit.total_nodes,
                "dangerous": audit.dangerous.count, "suspicious": audit.suspicious.count,
            })))
            .await;
    }
    Ok(Output::Text(message))
}
