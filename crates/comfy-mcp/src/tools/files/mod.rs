//! The file tools: uploads, images, outputs, workflows embedded in images.
//!
//! Every file name and subfolder passes the path sanitizer (`SafeFileName`,
//! `SafeSubfolder`) before anything is sent; uploads are decoded, bounded
//! by `security.max_upload_size_mb` and must be what their extension says:
//! one whole image of that format with nothing after it, decoded within
//! the image memory budget ([`crate::images`]), or JSON that parses;
//! downloads must be images (never SVG, which can carry scripts).
//! Images within the inline budget are base64-encoded as they arrive from
//! ComfyUI (the raw image is never held whole); larger ones become a
//! bounded, downscaled preview and a link.

use comfy_client::types::FileRef;
use comfy_client::{Preview, UploadOptions};
use comfy_guard::path::{Extensions, FileOrHash, SafeFileName, SafeSubfolder};
use serde_json::{Map, Value, json};

use super::impls::{Output, ToolContext, ToolError};

mod preview;
mod source;

use preview::{make_preview, preview_cost};
use source::{check_upload, source_bytes};

type Args = Map<String, Value>;

fn text<'a>(args: &'a Args, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn file_name(args: &Args, name: &str, allowed: &Extensions) -> Result<String, ToolError> {
    SafeFileName::parse(text(args, name), allowed)
        .map(|n| n.as_str().to_owned())
        .map_err(|e| ToolError::rejected(format!("`{name}`: {e}")))
}

/// A file name, or an asset hash (`blake3:` and 64 lowercase hex digits,
/// which ComfyUI 0.33 with `--enable-assets` resolves in `/view`).
fn file_or_hash(args: &Args, name: &str, allowed: &Extensions) -> Result<String, ToolError> {
    FileOrHash::parse(text(args, name), allowed)
        .map(|n| n.as_str().to_owned())
        .map_err(|e| ToolError::rejected(format!("`{name}`: {e}")))
}

fn subfolder(args: &Args, name: &str) -> Result<String, ToolError> {
    SafeSubfolder::parse(text(args, name))
        .map(|s| s.as_str().to_owned())
        .map_err(|e| ToolError::rejected(format!("`{name}`: {e}")))
}

/// How long a call waits for the image memory budget (less when the
/// tool deadline is shorter).
const IMAGE_WAIT: std::time::Duration = std::time::Duration::from_mins(1);

/// The wait for image memory: [`IMAGE_WAIT`] within the tool deadline.
pub(super) fn image_wait(cx: &ToolContext) -> std::time::Duration {
    IMAGE_WAIT.min(std::time::Duration::from_secs(cx.config.server.tool_deadline.max(1)))
}

fn upload_options(args: &Args) -> Result<UploadOptions, ToolError> {
    let sub = subfolder(args, "subfolder")?;
    Ok(UploadOptions {
        subfolder: (!sub.is_empty()).then_some(sub),
        kind: Some(text(args, "destination").to_owned()),
        overwrite: args.get("overwrite").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// Runs a file tool.
///
/// # Errors
/// [`ToolError`] with what was wrong.
pub(super) async fn run(name: &str, args: &Args, cx: &ToolContext) -> Result<Output, ToolError> {
    let c = &cx.client();
    let sec = &cx.config.security;
    let max = usize::try_from(sec.max_upload_size_mb).unwrap_or(500) << 20;
    match name {
        "comfyui_upload_image" => {
            let allowed = Extensions::new(&sec.allowed_extensions);
            let filename = file_name(args, "filename", &allowed)?;
            let bytes = source_bytes(args, "image_data", max, cx).await?;
            let bytes = check_upload("image_data", &filename, bytes, cx).await?;
            let up = c.upload_image(&filename, &bytes, &upload_options(args)?).await?;
            crate::jobs::uploaded(text(args, "destination"), &up, &cx.jobs).await;
            Ok(Output::Text(format!(
                "Uploaded {} to ComfyUI {} directory",
                up.name,
                text(args, "destination")
            )))
        }
        "comfyui_upload_mask" => {
            let images = Extensions::images();
            let filename = file_name(args, "filename", &images)?;
            let original = FileRef {
                filename: file_name(args, "original_image", &images)?,
                subfolder: subfolder(args, "original_subfolder")?,
                kind: "input".to_owned(),
            };
            let bytes = source_bytes(args, "mask_data", max, cx).await?;
            let bytes = check_upload("mask_data", &filename, bytes, cx).await?;
            let up = c
                .upload_mask(&filename, &bytes, &original, &upload_options(args)?)
                .await?;
            crate::jobs::uploaded(text(args, "destination"), &up, &cx.jobs).await;
            Ok(Output::Text(format!(
                "Uploaded mask {} to ComfyUI {} directory",
                up.name,
                text(args, "destination")
            )))
        }
        "comfyui_get_image" => get_image(args, cx).await,
        "comfyui_list_outputs" => {
            let history = c.history(Some(100), None).await?;
            let mut seen = std::collections::BTreeSet::new();
            let owner = crate::jobs::current_owner();
            for (id, entry) in &history {
                if owner.as_ref().is_some_and(|o| !cx.jobs.owns(id, o)) {
                    continue;
                }
                let Some(outputs) = entry.get("outputs").and_then(Value::as_object) else {
                    continue;
                };
                for l in super::media::listed(outputs) {
                    if l.item.get("type").and_then(Value::as_str).unwrap_or("output") != "output" {
                        continue;
                    }
                    let f = l.item.get("filename").and_then(Value::as_str).unwrap_or_default();
                    let s = l.item.get("subfolder").and_then(Value::as_str).unwrap_or_default();
                    if !f.is_empty() {
                        seen.insert((s.to_owned(), f.to_owned(), l.media));
                    }
                }
            }
            // The peer's `{filename, subfolder}`; a video, animation or
            // audio file also says `media`.
            let mut items: Vec<Value> = Vec::new();
            let mut last: Option<(String, String)> = None;
            for (s, f, media) in seen {
                if last.as_ref().is_some_and(|(ls, lf)| *ls == s && *lf == f) {
                    continue;
                }
                let mut v = json!({"filename": f, "subfolder": s});
                if let Some(m) = media {
                    v["media"] = Value::from(m);
                }
                last = Some((s, f));
                items.push(v);
            }
            Ok(Output::Json(super::impls::paginate(items, args)))
        }
        "comfyui_get_workflow_from_image" => {
            let file = FileRef {
                filename: file_or_hash(args, "filename", &Extensions::images())?,
                subfolder: subfolder(args, "subfolder")?,
                kind: "output".to_owned(),
            };
            let download = c.view(&file, None).await?;
            if download.bytes.len() > max {
                return Err(ToolError::rejected(format!(
                    "the image is larger than the limit of {} MiB",
                    max >> 20
                )));
            }
            let found = comfy_workflow::embedded::read(&download.bytes, 32 << 20)
                .map_err(|e| ToolError::failed(format!("cannot read the image's metadata: {e}")))?;
            let parse = |t: Option<String>| t.and_then(|t| serde_json::from_str::<Value>(&t).ok());
            let (workflow, prompt) = (parse(found.workflow), parse(found.prompt));
            let message = match (&workflow, &prompt) {
                (None, None) => "No workflow metadata found in this image",
                (Some(_), Some(_)) => "Found the editor workflow and the API prompt",
                (Some(_), None) => "Found the editor workflow",
                (None, Some(_)) => "Found the API prompt",
            };
            Ok(Output::Json(
                json!({"workflow": workflow, "prompt": prompt, "message": message}),
            ))
        }
        other => Err(ToolError::rejected(format!("{other} is not a file tool"))),
    }
}

async fn get_image(args: &Args, cx: &ToolContext) -> Result<Output, ToolError> {
    let filename = file_or_hash(args, "filename", &super::media::extensions())?;
    let sub = subfolder(args, "subfolder")?;
    // ComfyUI's output folder, or its temp folder (PreviewImage outputs).
    let kind = if text(args, "type") == "temp" { "temp" } else { "output" };
    let format = args.get("preview_format").and_then(Value::as_str);
    let quality = args.get("preview_quality").and_then(Value::as_u64);
    if quality.is_some() && format.is_none() {
        return Err(ToolError::rejected(
            "`preview_quality` needs `preview_format` (webp or jpeg)",
        ));
    }
    if text(args, "response_format") == "url" {
        let base = match args.get("base_url_override").and_then(Value::as_str) {
            Some(o) => {
                let ok = o.split_once("://").is_some_and(|(scheme, rest)| {
                    matches!(scheme, "http" | "https") && !rest.split('/').next().unwrap_or_default().is_empty()
                });
                if !ok {
                    return Err(ToolError::rejected(
                        "base_url must use http or https and include a host",
                    ));
                }
                o.to_owned()
            }
            None => public_base(cx),
        };
        return Ok(Output::Text(view_url(&base, &filename, &sub, kind)));
    }
    let q = u8::try_from(quality.unwrap_or(90)).unwrap_or(90);
    let preview = match format {
        Some("webp") => Some(Preview::Webp(q)),
        Some("jpeg") => Some(Preview::Jpeg(q)),
        _ => None,
    };
    let file = FileRef {
        filename,
        subfolder: sub,
        kind: kind.to_owned(),
    };
    if super::media::is_media_name(&file.filename) {
        let url = view_url(&public_base(cx), &file.filename, &file.subfolder, &file.kind);
        return super::media::describe(&file, url, cx).await;
    }
    // A GIF, WebP or PNG may be an animation: kept to be looked at when
    // it is returned whole (at most the inline budget).
    let may_animate = preview.is_none()
        && matches!(
            file.filename.rsplit('.').next().map(str::to_ascii_lowercase).as_deref(),
            Some("gif" | "webp" | "png")
        );
    let mut stream = cx.client().view_stream(&file, preview).await?;
    let kind = stream
        .content_type()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !kind.starts_with("image/") || kind == "image/svg+xml" {
        return Err(ToolError::rejected(format!(
            "refusing to return {kind:?}: only raster images are returned (SVG can carry scripts, GHSA-779p-m5rp-r4h4)"
        )));
    }
    let budget = cx.config.server.max_inline_bytes;
    if stream.content_length().is_none_or(|n| n <= budget as u64) {
        // Encoded as it arrives: the raw image is never held whole.
        let mut data_uri = format!("data:{kind};base64,");
        let start = data_uri.len();
        let engine = data_encoding::BASE64;
        let mut encoder = engine.new_encoder(&mut data_uri);
        let mut total = 0usize;
        let mut fits = true;
        let mut raw = Vec::new();
        while let Some(chunk) = stream.next_chunk().await? {
            total += chunk.len();
            if total > budget {
                fits = false;
                break;
            }
            if may_animate {
                raw.extend_from_slice(&chunk);
            }
            encoder.append(&chunk);
        }
        encoder.finalize();
        if fits {
            let base64 = data_uri[start..].to_owned();
            if may_animate {
                let url = view_url(&public_base(cx), &file.filename, &file.subfolder, &file.kind);
                let inline = Some((data_uri.clone(), base64.clone()));
                if let Some(out) = super::media::animated(raw.into(), &kind, url, inline, cx).await {
                    return Ok(out);
                }
            }
            return Ok(Output::Image {
                data_uri,
                base64,
                mime: kind,
                inline: true,
            });
        }
    }
    // Over the budget: a downscaled preview inline, the full file by URL.
    let download = cx.client().view(&file, preview).await?;
    let url = view_url(&public_base(cx), &file.filename, &file.subfolder, &file.kind);
    let size = download.bytes.len();
    let bytes = download.bytes;
    if may_animate
        && size <= crate::images::global(cx.config.server.image_memory_mb).total()
        && let Some(out) = super::media::animated(bytes.clone(), &kind, url.clone(), None, cx).await
    {
        return Ok(out);
    }
    // What the preview's decode takes, from the header, out of the one
    // image memory budget.
    let cost = preview_cost(&bytes).map_err(|e| ToolError::failed(format!("{e}; the full file is at {url}")))?;
    let images = crate::images::global(cx.config.server.image_memory_mb);
    let permit = images
        .acquire(cost.saturating_add(size), image_wait(cx))
        .await
        .map_err(|e| ToolError::failed(format!("no preview: {e}; the full file is at {url}")))?;
    let max_alloc = images.total();
    let made = tokio::task::spawn_blocking(move || {
        let made = make_preview(&bytes, budget, max_alloc);
        drop(permit);
        made
    })
    .await
    .map_err(|e| ToolError::failed(format!("making a preview failed: {e}")))??;
    Ok(Output::LargeImage {
        url,
        size,
        budget,
        preview: data_encoding::BASE64.encode(&made.jpeg),
        width: made.width,
        height: made.height,
    })
}

/// Where clients fetch files: the backend's `external_url`, else its
/// `url` (`comfyui.external_url` / `comfyui.url` with one backend).
fn public_base(cx: &ToolContext) -> String {
    let b = cx.backend();
    b.external_url.clone().unwrap_or_else(|| b.url.clone())
}

/// `{base}/view?filename=..&subfolder=..&type=output` (or `temp`),
/// form-encoded as the peer writes it.
fn view_url(base: &str, filename: &str, subfolder: &str, kind: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("filename", filename)
        .append_pair("subfolder", subfolder)
        .append_pair("type", kind)
        .finish();
    format!("{}/view?{query}", base.trim_end_matches('/'))
}
