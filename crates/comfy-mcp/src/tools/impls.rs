//! What each tool does, once its arguments have passed the schema.
//!
//! Every ComfyUI call goes through `comfy-client`, whose methods cover
//! only the routes the server may use; failures become [`ToolError`]s
//! whose text says what was wrong (never a host path or a secret).

use std::sync::Arc;

use comfy_audit::Outcome;
use comfy_client::{Cancelled, Client};
use comfy_guard::inspect::Policy;
use serde_json::{Map, Value, json};

use super::generate::Reporter;
use crate::config::Config;

/// What a tool returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A JSON object: `structuredContent` plus its compact text.
    Json(Value),
    /// A sentence: text content (and `{"result": ...}` for tools whose
    /// output schema wraps strings, as the peer's do).
    Text(String),
    /// An image: the data URI as text and `{"result": ...}` (the peer's
    /// shape), plus MCP image content when it fits the inline budget.
    Image {
        /// `data:<mime>;base64,<data>`.
        data_uri: String,
        /// The base64 data alone.
        base64: String,
        /// Its MIME type.
        mime: String,
        /// Whether to add image content.
        inline: bool,
    },
    /// An image over the inline budget: a JPEG preview inline, the full
    /// file by URL.
    LargeImage {
        /// Where the full image is.
        url: String,
        /// Its size in bytes.
        size: usize,
        /// The inline budget it broke.
        budget: usize,
        /// The preview, base64 JPEG.
        preview: String,
        /// Preview width.
        width: u32,
        /// Preview height.
        height: u32,
    },
    /// A video, an animation or audio: facts, a contact sheet or the
    /// sound, and a link to the file.
    Media(Box<super::media::MediaReply>),
}

/// Why a tool did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    /// What the assistant reads.
    pub message: String,
    /// How the audit log records it.
    pub outcome: Outcome,
    /// Structured details for the assistant (`structuredContent` of the
    /// error), e.g. ComfyUI's `node_errors`.
    pub details: Option<Value>,
    /// Not an error: the user must be asked first (MCP 2026-07-28), and
    /// the call ends with this input-required result.
    pub input: Option<Box<crate::consent::InputNeeded>>,
}

impl ToolError {
    /// A failure (ComfyUI said no, or could not be reached).
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            outcome: Outcome::Error,
            details: None,
            input: None,
        }
    }

    /// A refusal of the arguments (bad value, unsafe name, failed check).
    pub fn rejected(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            outcome: Outcome::Rejected,
            details: None,
            input: None,
        }
    }

    /// The call ends with an input-required result asking `needed`.
    pub fn input_needed(needed: crate::consent::InputNeeded) -> Self {
        Self {
            message: format!("Waiting for the user's answer: {}", needed.question),
            outcome: Outcome::InputRequired,
            details: None,
            input: Some(Box::new(needed)),
        }
    }
}

impl From<comfy_client::Error> for ToolError {
    fn from(e: comfy_client::Error) -> Self {
        if matches!(e, comfy_client::Error::InvalidArgument { .. }) {
            ToolError::rejected(e.to_string())
        } else {
            ToolError::failed(e.to_string())
        }
    }
}

/// What tools share: the ComfyUI client, the configuration, the
/// inspector policy and the audit log (for the domain records generation
/// writes: inspected, submitted, completed).
pub struct ToolContext {
    /// The ComfyUI servers.
    pub pool: Arc<crate::backends::Pool>,
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The workflow inspector's policy.
    pub policy: Policy,
    /// The audit log.
    pub audit: Arc<comfy_audit::AuditLog>,
    /// Cached answers to "is this plugin installed?".
    pub probes: std::sync::Mutex<Probes>,
    /// Which principal owns which job (HTTP with authentication).
    pub jobs: crate::jobs::Jobs,
    /// Cancels of abandoned jobs still on their way to ComfyUI.
    pub cancels: Arc<super::PendingCancels>,
    /// The request-state key and redeemed states of confirmations asked
    /// on MCP 2026-07-28.
    pub consent: crate::consent::Consent,
}

impl ToolContext {
    /// The backend this call works with: the one [`crate::backends::scope`]
    /// set, else the pool's primary.
    #[must_use]
    pub fn backend(&self) -> Arc<crate::backends::Backend> {
        crate::backends::current().unwrap_or_else(|| Arc::clone(self.pool.primary()))
    }

    /// The client of [`Self::backend`].
    #[must_use]
    pub fn client(&self) -> Client {
        match crate::backends::current() {
            Some(b) => b.client.clone(),
            None => self.pool.primary().client.clone(),
        }
    }
}

/// Plugin probes with the time they were made.
#[derive(Debug, Default)]
pub struct Probes {
    /// ComfyUI-Model-Manager.
    pub model_manager: Option<(bool, std::time::Instant)>,
    /// ComfyUI-Manager.
    pub manager: Option<(bool, std::time::Instant)>,
}

pub(super) type Args = Map<String, Value>;

pub(super) fn str_arg<'a>(args: &'a Args, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn u64_arg(args: &Args, name: &str) -> Option<u64> {
    args.get(name).and_then(Value::as_u64)
}

fn bool_arg(args: &Args, name: &str) -> bool {
    args.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// A prompt id as ComfyUI makes them: a lowercase UUID.
pub(crate) fn prompt_id(args: &Args, name: &str) -> Result<String, ToolError> {
    let id = str_arg(args, name);
    let ok = id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        });
    if ok {
        Ok(id.to_owned())
    } else {
        Err(ToolError::rejected(format!(
            "`{name}` must be a prompt id: a lowercase UUID such as 3f0e4171-1c28-4554-9d9b-9a60d6ab68a5 (got {:?})",
            id.chars().take(80).collect::<String>()
        )))
    }
}

/// Most prompt ids one `comfyui_cancel_jobs` call takes (each may be a
/// request to ComfyUI).
const MAX_CANCEL_IDS: usize = 1000;

/// The peer's page envelope: `{items, total, offset, limit, has_more}`.
pub(super) fn paginate(items: Vec<Value>, args: &Args) -> Value {
    let total = items.len();
    let offset = usize::try_from(u64_arg(args, "offset").unwrap_or(0)).unwrap_or(usize::MAX);
    let limit = usize::try_from(u64_arg(args, "limit").unwrap_or(25)).unwrap_or(25);
    let page: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    json!({
        "items": page,
        "total": total,
        "offset": offset,
        "limit": limit,
        "has_more": offset.saturating_add(limit) < total,
    })
}

/// A model folder name: letters, digits, `_`, `-` and `.` only (no path).
/// Runs tool `name` with prepared `args`.
///
/// # Errors
/// [`ToolError`] with the reason.
pub async fn run(name: &str, args: &Args, cx: &ToolContext, reporter: &Reporter) -> Result<Output, ToolError> {
    if cx.pool.is_multi() && crate::backends::current().is_none() {
        return Box::pin(super::route::run(name, args, cx, reporter)).await;
    }
    run_on(name, args, cx, reporter).await
}

/// Runs tool `name` against the current backend
/// ([`ToolContext::client`]).
///
/// # Errors
/// [`ToolError`] with the reason.
pub(super) async fn run_on(
    name: &str,
    args: &Args,
    cx: &ToolContext,
    reporter: &Reporter,
) -> Result<Output, ToolError> {
    let c = &cx.client();
    match name {
        _ if super::submits(name) => super::generate::run(name, args, cx, reporter).await,
        "comfyui_upload_image"
        | "comfyui_upload_mask"
        | "comfyui_get_image"
        | "comfyui_list_outputs"
        | "comfyui_get_workflow_from_image" => super::files::run(name, args, cx).await,
        "comfyui_search_custom_nodes"
        | "comfyui_install_custom_node"
        | "comfyui_uninstall_custom_node"
        | "comfyui_update_custom_node"
        | "comfyui_get_custom_node_status" => super::nodes::run(name, args, cx, reporter).await,
        "comfyui_search_models" => super::search::run(args, cx).await,
        "comfyui_download_model" | "comfyui_get_download_tasks" | "comfyui_cancel_download" => {
            super::models::run(name, args, cx).await
        }
        "comfyui_create_workflow"
        | "comfyui_modify_workflow"
        | "comfyui_validate_workflow"
        | "comfyui_dry_run"
        | "comfyui_analyze_workflow"
        | "comfyui_summarize_workflow"
        | "comfyui_get_model_presets"
        | "comfyui_get_prompting_guide" => super::workflow::run(name, args, cx).await,
        "comfyui_get_queue" => Ok(Output::Json(c.queue_raw().await?)),
        "comfyui_get_queue_status" => Ok(Output::Json(c.prompt_status().await?)),
        "comfyui_get_server_features" => Ok(Output::Json(c.features().await?)),
        "comfyui_get_settings" => Ok(Output::Json(c.settings().await?)),
        "comfyui_get_history" => history(args, c).await,
        "comfyui_get_job" => {
            let id = prompt_id(args, "prompt_id")?;
            match c.job_info(&id).await? {
                Some(job) => Ok(Output::Json(job)),
                None => Err(ToolError::failed(format!(
                    "ComfyUI has no job {id} (it may have been cleared from history)"
                ))),
            }
        }
        "comfyui_list_jobs" => {
            let mut query: Vec<(&str, String)> = vec![
                ("sort_by", str_arg(args, "sort_by").to_owned()),
                ("sort_order", str_arg(args, "sort_order").to_owned()),
                ("offset", u64_arg(args, "offset").unwrap_or(0).to_string()),
            ];
            if let Some(statuses) = args.get("status").and_then(Value::as_array) {
                let list: Vec<&str> = statuses.iter().filter_map(Value::as_str).collect();
                query.push(("status", list.join(",")));
            }
            if let Some(w) = args.get("workflow_id").and_then(Value::as_str) {
                query.push(("workflow_id", w.to_owned()));
            }
            if let Some(l) = u64_arg(args, "limit") {
                query.push(("limit", l.to_string()));
            }
            Ok(Output::Json(c.jobs(&query).await?))
        }
        "comfyui_get_progress" => progress(args, c).await,
        "comfyui_cancel_job" => {
            let id = prompt_id(args, "prompt_id")?;
            // By id where the server can (`comfy_client::CancelMethod`).
            if !c.cancel_job(&id).await?.acted() {
                return Err(ToolError::failed(format!(
                    "job {id} is neither running nor queued (it may have finished: see comfyui_get_job)"
                )));
            }
            Ok(Output::Text(format!("Cancelled job {id}")))
        }
        "comfyui_interrupt" => {
            if args.get("prompt_id").is_some_and(|v| !v.is_null()) {
                let id = prompt_id(args, "prompt_id")?;
                c.interrupt(Some(&id)).await?;
                Ok(Output::Text(format!(
                    "Requested interrupt for prompt {id} (no-op if not running)"
                )))
            } else {
                c.interrupt(None).await?;
                Ok(Output::Text("Interrupted current execution (global)".to_owned()))
            }
        }
        "comfyui_clear_queue" => {
            let (running, pending) = (bool_arg(args, "clear_running"), bool_arg(args, "clear_pending"));
            if pending {
                c.clear_queue().await?;
            }
            if running {
                c.interrupt(None).await?;
            }
            let py = |b: bool| if b { "True" } else { "False" };
            Ok(Output::Text(format!(
                "Queue cleared (running={}, pending={})",
                py(running),
                py(pending)
            )))
        }
        "comfyui_list_models" => {
            let (f, folder) = super::names::folder_arg(args)?;
            match c.models(&folder).await? {
                Some(models) => Ok(Output::Json(paginate(
                    models.into_iter().map(Value::from).collect(),
                    args,
                ))),
                None => Err(ToolError::failed(format!(
                    "ComfyUI has no model folder '{f}' (comfyui_list_model_folders lists them)"
                ))),
            }
        }
        "comfyui_list_model_folders" => Ok(Output::Json(paginate(
            c.model_folders().await?.into_iter().map(Value::from).collect(),
            args,
        ))),
        "comfyui_list_extensions" => Ok(Output::Json(paginate(
            c.extensions().await?.into_iter().map(Value::from).collect(),
            args,
        ))),
        "comfyui_list_nodes" => {
            let filter = super::discovery::NodeFilter::from_args(args)?;
            let raw = c.object_info_raw().await?;
            let mut classes: Vec<(&String, &Value)> = raw
                .as_object()
                .map(|m| m.iter().filter(|(k, v)| filter.matches(k, v)).collect())
                .unwrap_or_default();
            classes.sort_by(|a, b| a.0.cmp(b.0));
            Ok(Output::Json(paginate(
                classes.into_iter().map(|(k, v)| filter.item(k, v)).collect(),
                args,
            )))
        }
        "comfyui_get_node_info" => {
            let (class, segment) = super::names::name_arg(args, "node_class")?;
            let class = class.as_str();
            match c.object_info_class(&segment).await? {
                Some(info) if bool_arg(args, "raw") => Ok(Output::Json(info)),
                Some(info) => Ok(Output::Json(super::discovery::summary(class, &info))),
                None => Err(ToolError::failed(format!(
                    "ComfyUI has no node class {class:?} (class names are case-sensitive; comfyui_list_nodes lists them)"
                ))),
            }
        }
        "comfyui_audit_dangerous_nodes" => {
            let raw = c.object_info_raw().await?;
            let audit = comfy_guard::audit_catalog(&raw, &cx.policy);
            Ok(Output::Json(serde_json::to_value(audit).unwrap_or(Value::Null)))
        }
        "comfyui_get_system_info" => system_info(c).await,
        "comfyui_list_models_detailed" => {
            let (f, folder) = super::names::folder_arg(args)?;
            match c.models_detailed(&folder).await? {
                Some(Value::Array(models)) => Ok(Output::Json(
                    json!({"folder": f, "count": models.len(), "models": models}),
                )),
                Some(_) | None => Err(ToolError::failed(format!(
                    "ComfyUI has no model folder '{f}' (comfyui_list_model_folders lists them)"
                ))),
            }
        }
        "comfyui_get_model_preview" => {
            let (f, folder) = super::names::folder_arg(args)?;
            let (file, path) = super::names::model_file_arg(args)?;
            let index = u64_arg(args, "path_index").unwrap_or(0);
            match c.model_preview(&folder, index, &path).await? {
                None => Ok(Output::Json(json!({"available": false, "folder": f, "filename": file}))),
                Some(d) => {
                    let mime = d.content_type.unwrap_or_else(|| "application/octet-stream".to_owned());
                    Ok(Output::Json(json!({
                        "available": true, "folder": f, "filename": file, "mime_type": mime,
                        "size_bytes": d.bytes.len(),
                        "data_base64": data_encoding::BASE64.encode(&d.bytes),
                    })))
                }
            }
        }
        "comfyui_get_model_metadata" => {
            let (f, folder) = super::names::folder_arg(args)?;
            let (file, path) = super::names::model_file_arg(args)?;
            match c.model_metadata(&folder, &path).await? {
                Some(meta) => Ok(Output::Json(meta)),
                None => Err(ToolError::failed(format!(
                    "ComfyUI has no metadata for '{file}' in '{f}' (only .safetensors files carry it)"
                ))),
            }
        }
        "comfyui_list_workflows" => super::library::list_workflows(args, cx).await,
        "comfyui_get_workflow_template" => super::library::get_template(args, cx).await,
        "comfyui_list_assets" => super::library::list_assets(args, cx).await,
        "comfyui_list_subgraphs" => {
            let all = c.subgraphs().await?;
            let count = all.as_object().map_or(0, Map::len);
            Ok(Output::Json(json!({"subgraphs": all, "count": count})))
        }
        "comfyui_get_subgraph" => {
            let (id, segment) = super::names::name_arg(args, "subgraph_id")?;
            let id = id.as_str();
            // ComfyUI answers an unknown id with `200 null` (both 0.8.0 and
            // 0.33.0); the tool's output schema wants an object.
            match c.subgraph(&segment).await? {
                Some(v) if v.is_object() => Ok(Output::Json(v)),
                _ => Ok(Output::Json(json!({"available": false, "subgraph_id": id}))),
            }
        }
        "comfyui_update_settings" => {
            let Some(settings) = args
                .get("settings")
                .and_then(Value::as_object)
                .filter(|m| !m.is_empty())
            else {
                return Err(ToolError::rejected(
                    "`settings` must be a non-empty object of setting ids and values",
                ));
            };
            c.update_settings(settings).await?;
            Ok(Output::Json(json!({"status": "updated", "settings": settings})))
        }
        "comfyui_cancel_jobs" => {
            let ids: Vec<String> = args
                .get("job_ids")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect())
                .unwrap_or_default();
            if ids.is_empty() {
                return Err(ToolError::rejected("`job_ids` must list at least one prompt id"));
            }
            if ids.len() > MAX_CANCEL_IDS {
                return Err(ToolError::rejected(format!(
                    "`job_ids` lists {} ids; at most {MAX_CANCEL_IDS} per call",
                    ids.len()
                )));
            }
            let mut checked = Vec::with_capacity(ids.len());
            for id in &ids {
                let mut one = Args::new();
                one.insert("prompt_id".to_owned(), Value::from(id.as_str()));
                checked.push(prompt_id(&one, "prompt_id")?);
            }
            // Each id once (a second cancel of the same job would find it gone).
            let mut seen = std::collections::HashSet::with_capacity(checked.len());
            let distinct: Vec<String> = checked.iter().filter(|id| seen.insert(id.as_str())).cloned().collect();
            let outcomes = c.cancel_jobs(&distinct).await?;
            let mut result = Map::new();
            for (id, outcome) in distinct.iter().zip(outcomes) {
                let state = match outcome {
                    Cancelled::Interrupted => "interrupted",
                    Cancelled::Dequeued => "removed from the queue",
                    Cancelled::NotActive => "not queued or running",
                    _ => "cancelled",
                };
                result.insert(id.clone(), Value::from(state));
            }
            let cancelled = result.values().filter(|v| *v != "not queued or running").count();
            Ok(Output::Json(
                json!({"cancelled": cancelled, "job_ids": checked, "result": result}),
            ))
        }
        other => {
            if let Some(uri) = other.strip_prefix("resource:") {
                Box::pin(super::resources::read(uri, cx)).await
            } else if let Some(reference) = other.strip_prefix("complete:") {
                Box::pin(super::complete::run(reference, args, cx)).await
            } else if let Some(prompt) = other.strip_prefix("prompt:") {
                super::prompts::run(prompt, args, cx)
            } else {
                Err(ToolError::rejected(format!("Unknown tool: '{other}'")))
            }
        }
    }
}

/// `comfyui_get_history`: newest first, `offset` counted from the newest.
///
/// ComfyUI's `/history?max_items=N` answers the newest N entries oldest
/// first, and its `offset` counts from the oldest, so both are turned
/// around here: ask for the newest `offset + limit + 1`, reverse them, skip
/// `offset`, keep `limit`. The extra entry says whether there are more.
async fn history(args: &Args, c: &Client) -> Result<Output, ToolError> {
    let limit = u64_arg(args, "limit").unwrap_or(25);
    let offset = u64_arg(args, "offset").unwrap_or(0);
    let max = u32::try_from(offset.saturating_add(limit).saturating_add(1)).unwrap_or(u32::MAX);
    let entries = c.history(Some(max), None).await?;
    let seen = entries.len() as u64;
    let items: Vec<Value> = page_newest_first(entries.into_iter().collect(), offset, limit)
        .map(|(id, mut entry)| {
            if let Value::Object(m) = &mut entry {
                m.insert("prompt_id".to_owned(), Value::from(id));
            }
            entry
        })
        .collect();
    let count = items.len() as u64;
    let has_more = seen > offset.saturating_add(limit);
    // Fewer entries than asked for: that is all of them.
    let total = if has_more { Value::Null } else { Value::from(seen) };
    Ok(Output::Json(json!({
        "items": items,
        "count": count,
        "offset": offset,
        "limit": limit,
        "has_more": has_more,
        "total": total,
    })))
}

/// The `[offset, offset + limit)` page of `entries` (oldest first, as
/// ComfyUI lists them) counted from the newest.
fn page_newest_first<T>(entries: Vec<T>, offset: u64, limit: u64) -> impl Iterator<Item = T> {
    entries
        .into_iter()
        .rev()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
}

/// `/api/jobs` status → the peer's progress status. An interrupted job is
/// `failed` on ComfyUI 0.8.0 (its messages end in `execution_interrupted`)
/// and `cancelled` on 0.33.0: `interrupted` on both.
fn job_status(job: &Value) -> &'static str {
    match job.get("status").and_then(Value::as_str).unwrap_or_default() {
        "completed" => "completed",
        "failed" if was_interrupted(job) => "interrupted",
        "failed" => "error",
        "cancelled" => "interrupted",
        "in_progress" => "running",
        "pending" => "queued",
        _ => "unknown",
    }
}

/// Whether a job's status messages record an interrupt.
fn was_interrupted(job: &Value) -> bool {
    job.pointer("/execution_status/messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|m| m.get(0).and_then(Value::as_str) == Some("execution_interrupted"))
}

/// Outputs of a job as `{node_id, filename, subfolder}`, and `media`
/// (`video` or `audio`) for a video, animation or audio file.
fn outputs_of(job: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(outputs) = job.get("outputs").and_then(Value::as_object) {
        for l in super::media::listed(outputs) {
            let mut v = json!({
                "node_id": l.node_id,
                "filename": l.item.get("filename").cloned().unwrap_or(Value::Null),
                "subfolder": l.item.get("subfolder").cloned().unwrap_or(Value::from("")),
            });
            if let Some(m) = l.media {
                v["media"] = Value::from(m);
            }
            out.push(v);
        }
    }
    out
}

async fn progress(args: &Args, c: &Client) -> Result<Output, ToolError> {
    let id = prompt_id(args, "prompt_id")?;
    let unknown = || Output::Json(json!({"prompt_id": id, "status": "unknown"}));
    let Ok(Some(job)) = c.job_info(&id).await else {
        return Ok(unknown());
    };
    let status = job_status(&job);
    let mut state = Map::new();
    state.insert("prompt_id".to_owned(), Value::from(id.as_str()));
    state.insert("status".to_owned(), Value::from(status));
    // The node running, when this server follows the job's events.
    if status == "running"
        && let Some(node) = super::progress::running_node(&id)
    {
        state.insert("current_node".to_owned(), Value::from(node));
    }
    if status == "queued"
        && let Ok(queue) = c.queue().await
        && let Some(pos) = queue.pending.iter().position(|q| q.prompt_id == id)
    {
        state.insert("queue_position".to_owned(), Value::from(pos + 1));
    }
    if let (Some(start), Some(end)) = (
        job.get("execution_start_time").and_then(Value::as_f64),
        job.get("execution_end_time").and_then(Value::as_f64),
    ) {
        state.insert(
            "elapsed_seconds".to_owned(),
            Value::from(((end - start) / 1000.0 * 100.0).round() / 100.0),
        );
    }
    let outputs = outputs_of(&job);
    if !outputs.is_empty() {
        state.insert("outputs".to_owned(), Value::Array(outputs));
    }
    Ok(Output::Json(Value::Object(state)))
}

/// Only the peer's whitelisted fields: version, devices (VRAM in MiB),
/// queue counts. Never paths, arguments or the Python version.
async fn system_info(c: &Client) -> Result<Output, ToolError> {
    let (stats, queue) = tokio::join!(c.system_stats(), c.queue());
    let stats = stats?;
    let queue = queue?;
    let version = stats
        .pointer("/system/comfyui_version")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let mib = |v: Option<&Value>| v.and_then(Value::as_f64).map(|b| (b / 1_048_576.0).round());
    let devices: Vec<Value> = stats
        .get("devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let mut m = Map::new();
            if let Some(name) = d.get("name").and_then(Value::as_str) {
                m.insert("name".to_owned(), Value::from(name));
            }
            for (from, to) in [
                ("vram_total", "vram_total_mb"),
                ("vram_free", "vram_free_mb"),
                ("torch_vram_total", "torch_vram_total_mb"),
                ("torch_vram_free", "torch_vram_free_mb"),
            ] {
                if let Some(v) = mib(d.get(from)) {
                    m.insert(to.to_owned(), json!(v as i64));
                }
            }
            (!m.is_empty()).then_some(Value::Object(m))
        })
        .collect();
    Ok(Output::Json(json!({
        "comfyui_version": version,
        "devices": devices,
        "queue": {"running": queue.running.len(), "pending": queue.pending.len()},
    })))
}
