//! Tools with several backends (`comfyui.backends`): which backend a call
//! goes to, and how listings from all of them become one.
//!
//! - A `backend` argument (published on the tools [`takes_backend`] names only when there
//!   are several backends) sends the call there.
//! - Submissions route themselves (`generate`: models, queue depth,
//!   health, failover before acceptance).
//! - A call naming a prompt id goes to the backend that has it
//!   ([`crate::backends::Pool::locate`]); an output file to the backend it
//!   was seen on, else to each in turn until one has it.
//! - Uploads go to every backend (the one that will run the next job is
//!   not known yet), so a later job finds its input wherever it runs.
//! - Queue, history, jobs, outputs and system info merge every backend's
//!   answer; items gain a `backend` field (additive: a client written for
//!   the peer reads them as before).
//! - Everything else (catalogs, settings) asks the primary backend: the
//!   first that is up.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::generate::Reporter;
use super::impls::{Args, Output, ToolContext, ToolError, run_on};
use crate::backends::Backend;

/// Besides the submitting tools, the tools that take a `backend`
/// argument when there are several.
const OTHER_BACKEND_TOOLS: &[&str] = &[
    "comfyui_upload_image",
    "comfyui_upload_mask",
    "comfyui_get_image",
    "comfyui_get_workflow_from_image",
    "comfyui_list_outputs",
    "comfyui_list_models",
    "comfyui_list_models_detailed",
    "comfyui_list_model_folders",
    "comfyui_list_nodes",
    "comfyui_get_node_info",
    "comfyui_get_model_metadata",
    "comfyui_get_model_preview",
    "comfyui_list_extensions",
    "comfyui_get_server_features",
    "comfyui_audit_dangerous_nodes",
    "comfyui_get_queue",
    "comfyui_get_history",
    "comfyui_list_jobs",
];

/// Whether tool `name` takes a `backend` argument when there are several.
#[must_use]
pub fn takes_backend(name: &str) -> bool {
    super::submits(name) || OTHER_BACKEND_TOOLS.contains(&name)
}

/// The `backend` property added to those tools' input schemas.
#[must_use]
pub fn backend_property(names: &[&str]) -> Value {
    json!({
        "type": "string",
        "enum": names,
        "description": "Which ComfyUI backend to use (default: chosen by the server: \
                        for new jobs by models, queue depth and health; for files and jobs, where they are)",
    })
}

/// Runs `name` on a server with several backends.
///
/// # Errors
/// [`ToolError`].
pub(super) async fn run(name: &str, args: &Args, cx: &ToolContext, reporter: &Reporter) -> Result<Output, ToolError> {
    let pool = &cx.pool;
    if let Some(v) = args.get("backend").filter(|v| !v.is_null()) {
        let named = v
            .as_str()
            .ok_or_else(|| ToolError::rejected("`backend` must be a backend's name"))?;
        let b = Arc::clone(pool.named(named).map_err(|e| ToolError::rejected(e.to_string()))?);
        return on(&b, name, args, cx, reporter).await;
    }
    let id = || super::impls::prompt_id(args, "prompt_id");
    match name {
        "comfyui_get_job" | "comfyui_get_progress" | "comfyui_cancel_job" => {
            located(&id()?, name, args, cx, reporter).await
        }
        "comfyui_interrupt" if args.get("prompt_id").is_some_and(|v| !v.is_null()) => {
            located(&id()?, name, args, cx, reporter).await
        }
        "comfyui_interrupt" | "comfyui_clear_queue" => {
            let mut first = None;
            for b in pool.all() {
                let out = on(b, name, args, cx, reporter).await;
                if b.is_down() && out.is_err() {
                    continue;
                }
                first.get_or_insert(out?);
            }
            first.ok_or_else(|| ToolError::failed("no ComfyUI backend could be reached"))
        }
        "comfyui_get_image" | "comfyui_get_workflow_from_image" => file(name, args, cx, reporter).await,
        "comfyui_upload_image" | "comfyui_upload_mask" => {
            let mut first = None;
            let mut failed = Vec::new();
            for b in pool.all() {
                match on(b, name, args, cx, reporter).await {
                    Ok(out) => {
                        first.get_or_insert(out);
                    }
                    Err(e) => failed.push(format!("{}: {}", b.name, e.message)),
                }
            }
            match (first, failed.is_empty()) {
                (Some(out), true) => Ok(out),
                (_, _) => Err(ToolError::failed(format!(
                    "the upload did not reach every backend, so a job may not find it ({})",
                    failed.join("; ")
                ))),
            }
        }
        "comfyui_get_queue" => {
            let mut merged = json!({"queue_running": [], "queue_pending": [], "backend_of": {}});
            for (b, v) in each(name, args, cx, reporter).await? {
                for key in ["queue_running", "queue_pending"] {
                    for item in v.get(key).and_then(Value::as_array).into_iter().flatten() {
                        if let Some(id) = item.get(1).and_then(Value::as_str) {
                            merged["backend_of"][id] = Value::from(b.name.as_str());
                        }
                        if let Some(list) = merged[key].as_array_mut() {
                            list.push(item.clone());
                        }
                    }
                }
            }
            Ok(Output::Json(merged))
        }
        "comfyui_get_queue_status" => {
            let mut total = 0;
            let mut per = Map::new();
            for (b, v) in each(name, args, cx, reporter).await? {
                let n = v
                    .pointer("/exec_info/queue_remaining")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                total += n;
                per.insert(b.name.clone(), Value::from(n));
            }
            Ok(Output::Json(
                json!({"exec_info": {"queue_remaining": total}, "backends": per}),
            ))
        }
        "comfyui_get_history" | "comfyui_list_outputs" => {
            // Each backend's first offset+limit items, merged newest first.
            let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(25);
            let offset = args.get("offset").and_then(Value::as_u64).unwrap_or(0);
            let mut wide = args.clone();
            wide.insert("offset".to_owned(), Value::from(0));
            wide.insert(
                "limit".to_owned(),
                Value::from(offset.saturating_add(limit).saturating_add(1)),
            );
            let mut items = Vec::new();
            let mut more = false;
            for (b, v) in each(name, &wide, cx, reporter).await? {
                more |= v.get("has_more").and_then(Value::as_bool).unwrap_or(false);
                for mut item in v.get("items").and_then(Value::as_array).cloned().unwrap_or_default() {
                    if let Some(m) = item.as_object_mut() {
                        m.insert("backend".to_owned(), Value::from(b.name.as_str()));
                    }
                    items.push(item);
                }
            }
            items.sort_by(|a, b| newest(b).total_cmp(&newest(a)));
            let total = items.len() as u64;
            let page: Vec<Value> = items
                .into_iter()
                .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .collect();
            let has_more = more || offset.saturating_add(limit) < total;
            let mut v = json!({"items": page, "offset": offset, "limit": limit, "has_more": has_more});
            v["total"] = if more { Value::Null } else { Value::from(total) };
            if name == "comfyui_get_history" {
                v["count"] = Value::from(v["items"].as_array().map_or(0, Vec::len));
            }
            Ok(Output::Json(v))
        }
        "comfyui_list_jobs" => {
            let limit = args.get("limit").and_then(Value::as_u64);
            let offset = args.get("offset").and_then(Value::as_u64).unwrap_or(0);
            let mut wide = args.clone();
            wide.insert("offset".to_owned(), Value::from(0));
            if let Some(l) = limit {
                wide.insert("limit".to_owned(), Value::from(offset.saturating_add(l)));
            }
            let mut jobs = Vec::new();
            for (b, v) in each(name, &wide, cx, reporter).await? {
                for mut job in v.get("jobs").and_then(Value::as_array).cloned().unwrap_or_default() {
                    if let Some(m) = job.as_object_mut() {
                        m.insert("backend".to_owned(), Value::from(b.name.as_str()));
                    }
                    jobs.push(job);
                }
            }
            let by_duration = args.get("sort_by").and_then(Value::as_str) == Some("execution_duration");
            let f = |j: &Value, k: &str| j.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            let num = |j: &Value| {
                if by_duration {
                    f(j, "execution_end_time") - f(j, "execution_start_time")
                } else {
                    f(j, "create_time")
                }
            };
            jobs.sort_by(|a, b| num(a).total_cmp(&num(b)));
            if args.get("sort_order").and_then(Value::as_str) != Some("asc") {
                jobs.reverse();
            }
            let total = jobs.len();
            let page: Vec<Value> = jobs
                .into_iter()
                .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                .take(limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX)))
                .collect();
            let shown = page.len();
            Ok(Output::Json(json!({
                "jobs": page,
                "pagination": {"offset": offset, "limit": limit, "total": total,
                               "has_more": (offset as usize).saturating_add(shown) < total},
            })))
        }
        "comfyui_get_system_info" => {
            let mut devices = Vec::new();
            let (mut running, mut pending) = (0, 0);
            let mut backends = Vec::new();
            let mut version = None;
            for b in pool.all() {
                let mut status = b.status();
                match on(b, name, args, cx, reporter).await {
                    Ok(Output::Json(v)) => {
                        version.get_or_insert_with(|| v["comfyui_version"].clone());
                        status["comfyui_version"] = v["comfyui_version"].clone();
                        running += v.pointer("/queue/running").and_then(Value::as_u64).unwrap_or(0);
                        pending += v.pointer("/queue/pending").and_then(Value::as_u64).unwrap_or(0);
                        for mut d in v["devices"].as_array().cloned().unwrap_or_default() {
                            d["backend"] = Value::from(b.name.as_str());
                            devices.push(d);
                        }
                        status["healthy"] = Value::Bool(true);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        status["healthy"] = Value::Bool(false);
                        status["error"] = Value::from(e.message);
                    }
                }
                backends.push(status);
            }
            let Some(version) = version else {
                return Err(ToolError::failed(format!(
                    "no ComfyUI backend could be reached: {}",
                    backends
                        .iter()
                        .map(|b| format!(
                            "{}: {}",
                            b["name"].as_str().unwrap_or("?"),
                            b["error"].as_str().unwrap_or("?")
                        ))
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            };
            Ok(Output::Json(json!({
                "comfyui_version": version,
                "devices": devices,
                "queue": {"running": running, "pending": pending},
                "backends": backends,
            })))
        }
        "comfyui_cancel_jobs" => {
            let ids: Vec<String> = args
                .get("job_ids")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            // Malformed ids are refused by the tool itself, as with one backend.
            let mut groups: Vec<(Arc<Backend>, Vec<Value>)> = Vec::new();
            for id in &ids {
                let b = match super::impls::check_prompt_id(id, "prompt_id") {
                    Ok(id) => pool.locate(&id).await,
                    Err(_) => None,
                }
                .unwrap_or_else(|| Arc::clone(pool.primary()));
                match groups.iter_mut().find(|(g, _)| Arc::ptr_eq(g, &b)) {
                    Some((_, list)) => list.push(Value::from(id.as_str())),
                    None => groups.push((b, vec![Value::from(id.as_str())])),
                }
            }
            let (mut cancelled, mut result) = (0, Map::new());
            for (b, list) in groups {
                let mut one = args.clone();
                one.insert("job_ids".to_owned(), Value::Array(list));
                if let Output::Json(v) = on(&b, name, &one, cx, reporter).await? {
                    cancelled += v["cancelled"].as_u64().unwrap_or(0);
                    if let Some(m) = v["result"].as_object() {
                        result.extend(m.clone());
                    }
                }
            }
            Ok(Output::Json(
                json!({"cancelled": cancelled, "job_ids": ids, "result": result}),
            ))
        }
        _ => run_on(name, args, cx, reporter).await,
    }
}

/// Runs the call against `b`, remembering the output files its result
/// names as `b`'s.
async fn on(
    b: &Arc<Backend>,
    name: &str,
    args: &Args,
    cx: &ToolContext,
    reporter: &Reporter,
) -> Result<Output, ToolError> {
    let out = crate::backends::scope(Arc::clone(b), Box::pin(run_on(name, args, cx, reporter))).await;
    if let Ok(Output::Json(v)) = &out {
        cx.pool.record_files(v, b);
    }
    out
}

/// Runs the call against every backend that answers; an error only when
/// none does.
async fn each(
    name: &str,
    args: &Args,
    cx: &ToolContext,
    reporter: &Reporter,
) -> Result<Vec<(Arc<Backend>, Value)>, ToolError> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    // All backends at once (each call is bounded by the client's timeouts),
    // so their latencies do not add up; answers keep the pool's order.
    let answers = futures_util::future::join_all(cx.pool.all().iter().map(|b| on(b, name, args, cx, reporter))).await;
    for (b, answer) in cx.pool.all().iter().zip(answers) {
        match answer {
            Ok(Output::Json(v)) => out.push((Arc::clone(b), v)),
            Ok(_) => {}
            Err(e) => errors.push(format!("{}: {}", b.name, e.message)),
        }
    }
    if out.is_empty() && !errors.is_empty() {
        return Err(ToolError::failed(format!(
            "no ComfyUI backend answered: {}",
            errors.join("; ")
        )));
    }
    Ok(out)
}

/// A call about job `id`, on the backend that has it (else the primary,
/// whose answer is then "no such job").
async fn located(
    id: &str,
    name: &str,
    args: &Args,
    cx: &ToolContext,
    reporter: &Reporter,
) -> Result<Output, ToolError> {
    let b = cx.pool.locate(id).await;
    let b = b.unwrap_or_else(|| Arc::clone(cx.pool.primary()));
    let out = on(&b, name, args, cx, reporter).await;
    // An error, or a job its backend does not know: is the backend there?
    let doubtful = match &out {
        Err(_) => true,
        Ok(Output::Json(v)) => v.get("status").and_then(Value::as_str) == Some("unknown"),
        Ok(_) => false,
    };
    if doubtful && !b.probe().await {
        // The job's backend cannot be reached: its job is lost to us, and
        // is said to be, never silently run again elsewhere.
        let why = match &out {
            Err(e) => e.message.clone(),
            Ok(_) => b.status()["error"].as_str().unwrap_or("unreachable").to_owned(),
        };
        if name == "comfyui_get_progress" {
            return Ok(Output::Json(json!({
                "prompt_id": id,
                "status": "lost",
                "backend": b.name,
                "error": why,
            })));
        }
        return Err(ToolError::failed(format!(
            "{why} (job {id} ran on backend {}, which cannot be reached: the job is lost unless it comes back)",
            b.name
        )));
    }
    match out {
        Ok(Output::Json(Value::Object(mut v))) => {
            v.insert("backend".to_owned(), Value::from(b.name.as_str()));
            Ok(Output::Json(Value::Object(v)))
        }
        other => other,
    }
}

/// An output file: on the backend it was seen on, else on each in turn.
async fn file(name: &str, args: &Args, cx: &ToolContext, reporter: &Reporter) -> Result<Output, ToolError> {
    let text = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default();
    let mut order: Vec<Arc<Backend>> = Vec::new();
    if let Some(home) = cx.pool.file_home(text("subfolder"), text("filename")) {
        order.push(home);
    }
    for b in cx.pool.all() {
        if !order.iter().any(|o| Arc::ptr_eq(o, b)) {
            order.push(Arc::clone(b));
        }
    }
    let mut first_error = None;
    for b in order {
        match on(&b, name, args, cx, reporter).await {
            Ok(out) => return Ok(out),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| ToolError::failed("no ComfyUI backend could be reached")))
}

/// The newest timestamp in a history entry's status messages (ms), for
/// merging histories newest first.
fn newest(entry: &Value) -> f64 {
    entry
        .pointer("/status/messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get(1)?.get("timestamp")?.as_f64())
        .fold(0.0, f64::max)
}
