//! Model downloads through ComfyUI-Model-Manager: start one, list the
//! tasks, cancel one. Every URL and file name passes the download
//! validator (https only, allowed domains after IDNA, no IP literals or
//! user info, allowed model extensions, a safe file name), and the folder
//! must be a weight folder (one ComfyUI's `/models` lists, less
//! `comfy_guard::download::NON_WEIGHT_FOLDERS`), before anything reaches
//! ComfyUI. Model-Manager is detected lazily and the answer kept
//! for a minute (the peer kept "not installed" for the life of the
//! process, so installing it meant restarting the MCP server).

use std::time::{Duration, Instant};

use comfy_guard::download::{DownloadPolicy, check_download, weight_folder};
use comfy_guard::path::Extensions;
use serde_json::{Map, Value, json};

use super::impls::{Output, ToolContext, ToolError};

type Args = Map<String, Value>;

/// Model-Manager's name for where a download comes from: `civitai`,
/// `huggingface` or `other`, by the URL's host.
pub(crate) fn download_platform(host: &str) -> &'static str {
    if host.ends_with("civitai.com") {
        "civitai"
    } else if host.ends_with("huggingface.co") {
        "huggingface"
    } else {
        "other"
    }
}

/// How long a Model-Manager probe is trusted.
const PROBE_TTL: Duration = Duration::from_mins(1);

const NOT_INSTALLED: &str = "ComfyUI-Model-Manager is not installed on the ComfyUI server, so models cannot be \
downloaded through it. Install it with ComfyUI-Manager (or from https://github.com/hayden-fr/ComfyUI-Model-Manager), \
restart ComfyUI, then try again.";

fn text<'a>(args: &'a Args, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// Whether Model-Manager is there, probing at most once a minute.
async fn available(cx: &ToolContext) -> Result<bool, ToolError> {
    if let Ok(cache) = cx.probes.lock()
        && let Some((ok, at)) = cache.model_manager
        && at.elapsed() < PROBE_TTL
    {
        return Ok(ok);
    }
    let ok = cx.client().model_manager_available().await?;
    if let Ok(mut cache) = cx.probes.lock() {
        cache.model_manager = Some((ok, Instant::now()));
    }
    Ok(ok)
}

/// Model-Manager's `{success, data}` unwrapped, or its error as a failure.
fn unwrap(v: &Value, what: &str) -> Result<Value, ToolError> {
    if v.get("success").and_then(Value::as_bool) == Some(true) {
        return Ok(v.get("data").cloned().unwrap_or(Value::Null));
    }
    let error = v.get("error").and_then(Value::as_str).unwrap_or("no reason given");
    Err(ToolError::failed(format!("Model-Manager refused to {what}: {error}")))
}

/// Runs a model tool.
///
/// # Errors
/// [`ToolError`] with what was wrong.
pub(super) async fn run(name: &str, args: &Args, cx: &ToolContext) -> Result<Output, ToolError> {
    match name {
        "comfyui_download_model" => {
            let sec = &cx.config.security;
            let policy = DownloadPolicy::new(
                &sec.allowed_download_domains,
                Extensions::new(&sec.allowed_model_extensions),
            );
            let filename = text(args, "filename");
            let safe = check_download(text(args, "url"), (!filename.is_empty()).then_some(filename), &policy)
                .map_err(|e| ToolError::rejected(e.to_string()))?;
            let folder = text(args, "folder");
            // A weight folder ComfyUI lists, never code or configuration
            // (`custom_nodes` is imported at ComfyUI's next start).
            let listed = cx.client().model_folders().await?;
            let folder = weight_folder(folder, &listed).map_err(|e| ToolError::rejected(e.to_string()))?;
            let folder = folder.as_str();
            if !available(cx).await? {
                return Err(ToolError::failed(NOT_INSTALLED));
            }
            let platform = download_platform(&safe.host);
            let answer = cx
                .client()
                .model_manager_download(&[
                    ("type", folder),
                    ("pathIndex", "0"),
                    ("fullname", safe.file_name.as_str()),
                    ("downloadPlatform", platform),
                    ("downloadUrl", &safe.url),
                    ("sizeBytes", "0"),
                    // Model-Manager fails without it, even empty.
                    ("previewFile", ""),
                ])
                .await?;
            let data = unwrap(&answer, "start the download")?;
            let mut out = Map::new();
            out.insert("status".to_owned(), Value::from("started"));
            out.insert("folder".to_owned(), Value::from(folder));
            out.insert("filename".to_owned(), Value::from(safe.file_name.as_str()));
            if let Some(id) = data.get("taskId") {
                out.insert("task_id".to_owned(), id.clone());
            }
            out.insert("result".to_owned(), data);
            if !safe.warnings.is_empty() {
                out.insert("warnings".to_owned(), json!(safe.warnings));
            }
            Ok(Output::Json(Value::Object(out)))
        }
        "comfyui_get_download_tasks" => {
            if !available(cx).await? {
                return Err(ToolError::failed(NOT_INSTALLED));
            }
            let tasks = unwrap(&cx.client().model_manager_tasks().await?, "list its downloads")?;
            Ok(Output::Json(json!({"tasks": tasks})))
        }
        "comfyui_cancel_download" => {
            let id = text(args, "task_id");
            if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(ToolError::rejected(format!(
                    "`task_id` must be a download task id as comfyui_get_download_tasks lists them (got {})",
                    super::impls::quoted(id)
                )));
            }
            if !available(cx).await? {
                return Err(ToolError::failed(NOT_INSTALLED));
            }
            let (_, task) = super::names::name_arg(args, "task_id")?;
            let answer = cx.client().model_manager_cancel(&task).await?;
            let success = answer.get("success").and_then(Value::as_bool).unwrap_or(false);
            if !success {
                unwrap(&answer, "cancel the download")?;
            }
            Ok(Output::Json(
                json!({"success": success, "task_id": id, "result": answer}),
            ))
        }
        other => Err(ToolError::rejected(format!("{other} is not a model tool"))),
    }
}
