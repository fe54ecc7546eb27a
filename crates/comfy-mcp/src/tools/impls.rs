//! What each tool does, once its arguments have passed the schema.
//!
//! Every ComfyUI call goes through `comfy-client`, whose methods cover
//! only the routes the server may use; failures become [`ToolError`]s
//! whose text says what was wrong (never a host path or a secret).

use std::sync::Arc;

use comfy_audit::Outcome;
use comfy_client::Client;
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

pub(super) fn u64_arg(args: &Args, name: &str) -> Option<u64> {
    args.get(name).and_then(Value::as_u64)
}

pub(super) fn bool_arg(args: &Args, name: &str) -> bool {
    args.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// A prompt id as ComfyUI makes them: a lowercase UUID.
pub(crate) fn prompt_id(args: &Args, name: &str) -> Result<String, ToolError> {
    check_prompt_id(str_arg(args, name), name)
}

/// `id` (from argument `name`, for the message) when it is a prompt id.
pub(crate) fn check_prompt_id(id: &str, name: &str) -> Result<String, ToolError> {
    let ok = id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        });
    if ok {
        Ok(id.to_owned())
    } else {
        Err(ToolError::rejected(format!(
            "`{name}` must be a prompt id: a lowercase UUID such as 3f0e4171-1c28-4554-9d9b-9a60d6ab68a5 (got {})",
            quoted(id)
        )))
    }
}

/// A caller's value quoted in a refusal, cut to 80 characters.
pub(super) fn quoted(value: &str) -> String {
    format!("{:?}", value.chars().take(80).collect::<String>())
}

/// What a call that names a job ComfyUI does not know (or, with jobs kept
/// apart, another client's job: the two look the same) is told.
pub(crate) fn no_job(id: &str) -> String {
    format!("ComfyUI has no job {id} (it may have been cleared from history)")
}

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
        "comfyui_get_queue"
        | "comfyui_get_queue_status"
        | "comfyui_get_history"
        | "comfyui_get_job"
        | "comfyui_list_jobs"
        | "comfyui_get_progress"
        | "comfyui_cancel_job"
        | "comfyui_cancel_jobs"
        | "comfyui_interrupt"
        | "comfyui_clear_queue" => super::queue::run(name, args, c).await,
        "comfyui_get_server_features" => Ok(Output::Json(c.features().await?)),
        "comfyui_get_settings" => Ok(Output::Json(c.settings().await?)),
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
        "comfyui_list_assets" => super::assets::list_assets(args, cx).await,
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
