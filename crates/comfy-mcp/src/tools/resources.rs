//! The peer's resources: `comfyui://nodes/installed`, `comfyui://queue`,
//! `comfyui://system`, `comfyui://settings` and the template
//! `comfyui://models/{folder}`; and ours, `comfyui://output/{prompt_id}/{index}`:
//! a finished job's output files (in the order of the job's `outputs`),
//! read in chunks (`?offset=N` continues) whose base64 fits the inline
//! budget (`server.max_inline_bytes`), so a client can fetch a full-size
//! file that would not fit in a tool result, piece by piece. The first
//! chunk of a video or audio file also carries its facts (`_meta.media`).
//! Reads go through the same stack as tool calls (as `resource:<uri>`,
//! read-only category), so they are audited and rate-limited; with
//! per-principal jobs, another principal's job reads as unknown.
use rmcp::model::{Resource, ResourceTemplate};
use serde_json::{Value, json};

use super::impls::{Output, ToolContext, ToolError};

/// The fixed resources: the peer's `name`s (which a peer client may look
/// resources up by) and our titles.
pub fn list() -> Vec<Resource> {
    [
        (
            "comfyui://nodes/installed",
            "ComfyUI Installed Nodes",
            "Installed node classes",
            "Installed node classes, sorted, with their count.",
        ),
        (
            "comfyui://queue",
            "ComfyUI Queue",
            "Queue",
            "How many jobs are running and pending.",
        ),
        (
            "comfyui://system",
            "ComfyUI System Info",
            "Server and GPUs",
            "ComfyUI version, GPU devices with VRAM in MiB, queue size.",
        ),
        (
            "comfyui://settings",
            "ComfyUI Settings",
            "User settings",
            "The ComfyUI user settings.",
        ),
    ]
    .into_iter()
    .map(|(uri, name, title, description)| {
        Resource::new(uri, name)
            .with_title(title)
            .with_description(description)
            .with_mime_type("application/json")
    })
    .collect()
}

/// The resource templates: the peer's, by its name, then ours.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("comfyui://models/{folder}", "ComfyUI Models")
            .with_title("Model files in a folder")
            .with_description("Model files in one folder (checkpoints, loras, vae, ...), with their count.")
            .with_mime_type("application/json"),
        ResourceTemplate::new("comfyui://output/{prompt_id}/{index}", "ComfyUI Output")
            .with_title("A job's output file")
            .with_description(
                "Output file `index` (0-based, in the order of the job's outputs) of a finished job, as a blob; \
                 large files come in chunks: `_meta.next` is the URI of the next one (`?offset=N`).",
            ),
    ]
}

/// The MIME type of an output file, from its extension.
fn mime_of(name: &str) -> &'static str {
    match name
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "mkv" => "video/x-matroska",
        "flac" => "audio/flac",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "opus" | "ogg" => "audio/ogg",
        "m4a" => "audio/mp4",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// Smallest chunk of an output file one read returns.
pub const MIN_CHUNK: usize = 1024;

/// Why a `comfyui://output/` path did not resolve.
pub(super) enum Resolve {
    /// The path or the job: this says what.
    Bad(String),
    /// ComfyUI could not be asked.
    Comfy(ToolError),
}

/// The output a `comfyui://output/{prompt_id}/{index}` path names (given
/// without the prefix and query): a valid prompt id, one of the caller's
/// jobs when jobs are kept apart, finished, with that many output files.
/// Shared by resource reads and upload sources.
pub(super) async fn resolve_output(
    path: &str,
    cx: &ToolContext,
) -> Result<(String, usize, comfy_client::types::OutputFile, comfy_client::Client), Resolve> {
    let bad = |why: &str| Resolve::Bad(why.to_owned());
    let Some((id, index)) = path.split_once('/') else {
        return Err(bad("expected comfyui://output/{prompt_id}/{index}"));
    };
    let id = super::impls::check_prompt_id(id, "prompt_id").map_err(|e| Resolve::Bad(e.message))?;
    let index: usize = index
        .parse()
        .ok()
        .filter(|i| *i < MAX_INDEX)
        .ok_or_else(|| bad("the index must be a whole number"))?;
    let (mut files, client) = job_files(&id, cx).await?;
    if index >= files.len() {
        return Err(Resolve::Bad(format!("the job has {} output file(s)", files.len())));
    }
    let file = files.swap_remove(index);
    Ok((id, index, file, client))
}

/// One past the largest output index a `comfyui://output/` path takes.
pub(super) const MAX_INDEX: usize = 100_000;

/// The output files of finished job `id` (a checked prompt id), with the
/// client of the backend that ran it; when jobs are kept apart, only one
/// of the caller's. Shared by [`resolve_output`] and completions.
pub(super) async fn job_files(
    id: &str,
    cx: &ToolContext,
) -> Result<(Vec<comfy_client::types::OutputFile>, comfy_client::Client), Resolve> {
    let bad = |why: &str| Resolve::Bad(why.to_owned());
    if let Some(owner) = crate::jobs::current_owner() {
        // A job started through another replica is known from Redis.
        cx.jobs.load(&[id]).await;
        if !cx.jobs.owns(id, &owner) {
            return Err(bad("no such job among yours"));
        }
    }
    // The backend that ran it (with several).
    let client = match cx.pool.locate(id).await {
        Some(b) if cx.pool.is_multi() => b.client.clone(),
        _ => cx.client(),
    };
    let entry = client
        .history_entry(id)
        .await
        .map_err(|e| Resolve::Comfy(e.into()))?
        .ok_or_else(|| bad("no finished job with this prompt id"))?;
    Ok((entry.files(), client))
}

/// The `index`-th output file of job `prompt_id`, from byte `offset`.
async fn output(uri: &str, rest: &str, cx: &ToolContext) -> Result<Output, ToolError> {
    let unknown = |why: &str| ToolError::rejected(format!("Unknown resource: '{uri}' ({why})"));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut offset: u64 = 0;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("offset", v)) => offset = v.parse().map_err(|_| unknown("offset must be a whole number"))?,
            _ => return Err(unknown("the only query parameter is offset")),
        }
    }
    let (id, index, file, client) = resolve_output(path, cx).await.map_err(|why| match why {
        Resolve::Bad(why) => unknown(&why),
        Resolve::Comfy(e) => e,
    })?;
    let mut stream = client.view_stream(&file.file, None).await?;
    let size = stream.content_length();
    let mime = stream
        .content_type()
        .map_or_else(|| mime_of(&file.file.filename).to_owned(), str::to_owned);
    // Skip to `offset`, then keep at most one chunk; the rest is not read.
    let chunk_size = (cx.config.server.max_inline_bytes / 4 * 3).max(MIN_CHUNK);
    let mut skipped: u64 = 0;
    let mut bytes: Vec<u8> = Vec::new();
    let mut more = false;
    while let Some(chunk) = stream.next_chunk().await? {
        let mut chunk = &chunk[..];
        if skipped < offset {
            let skip = usize::try_from((offset - skipped).min(chunk.len() as u64)).unwrap_or(chunk.len());
            skipped += skip as u64;
            chunk = &chunk[skip..];
        }
        let room = chunk_size - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            more = true;
            break;
        }
        bytes.extend_from_slice(chunk);
    }
    if offset > 0 && skipped < offset {
        return Err(unknown(&format!(
            "offset {offset} is past the end of the file ({skipped} bytes)"
        )));
    }
    let end = offset + bytes.len() as u64;
    let more = more || size.is_some_and(|s| end < s);
    let next = more.then(|| format!("comfyui://output/{id}/{index}?offset={end}"));
    // A video or audio file's facts come with its first chunk, as
    // comfyui_get_image gives them.
    let media = if offset == 0 && super::media::is_media_name(&file.file.filename) {
        super::media::facts(&file.file, cx).await
    } else {
        None
    };
    Ok(Output::Json(json!({
        "media": media,
        "blob": data_encoding::BASE64.encode(&bytes),
        "mime_type": mime,
        "filename": file.file.filename,
        "subfolder": file.file.subfolder,
        "size": size,
        "offset": offset,
        "length": bytes.len(),
        "next": next,
    })))
}

/// Reads `uri`.
///
/// # Errors
/// [`ToolError`] naming the resource and the problem.
pub(super) async fn read(uri: &str, cx: &ToolContext) -> Result<Output, ToolError> {
    let c = &cx.client();
    let json = match uri {
        "comfyui://nodes/installed" => {
            let raw = c.object_info_raw().await?;
            let mut nodes: Vec<&String> = raw.as_object().map(|m| m.keys().collect()).unwrap_or_default();
            nodes.sort();
            json!({"nodes": nodes, "count": nodes.len()})
        }
        "comfyui://queue" => {
            let q = c.queue().await?;
            json!({"running": q.running.len(), "pending": q.pending.len()})
        }
        "comfyui://system" => {
            return super::impls::run(
                "comfyui_get_system_info",
                &serde_json::Map::new(),
                cx,
                &super::Reporter::default(),
            )
            .await;
        }
        "comfyui://settings" => c.settings().await?,
        other if other.starts_with(crate::skills::SCHEME) => {
            return crate::skills::read(other)
                .map(|text| Output::Text(text.to_owned()))
                .ok_or_else(|| ToolError::rejected(format!("Unknown resource: '{other}'")));
        }
        other if other.starts_with("comfyui://output/") => {
            return output(uri, &other["comfyui://output/".len()..], cx).await;
        }
        other => {
            let Some(folder) = other.strip_prefix("comfyui://models/") else {
                return Err(ToolError::rejected(format!("Unknown resource: '{other}'")));
            };
            if comfy_guard::path::SafeName::parse(folder).is_err() {
                return Err(ToolError::rejected(format!(
                    "Unknown resource: '{other}' (the folder must be a model folder name such as checkpoints)"
                )));
            }
            // Only weight folders: the same rule as downloads.
            let listed = c.model_folders().await?;
            let name = comfy_guard::download::weight_folder(folder, &listed)
                .map_err(|e| ToolError::rejected(format!("Unknown resource: '{other}': {e}")))?;
            match c.models(&super::names::segment(&name)?).await? {
                Some(models) => json!({"folder": folder, "models": models, "count": models.len()}),
                None => return Err(ToolError::failed(format!("ComfyUI has no model folder '{folder}'"))),
            }
        }
    };
    Ok(Output::Json(Value::clone(&json)))
}
