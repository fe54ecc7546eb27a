//! Where an upload's bytes come from (base64, a `data:` URI, a job's
//! output, an allowed `https` URL, or an MCP resource the client holds),
//! each bounded by `security.max_upload_size_mb`, and the check that they
//! are what the file's name says before anything reaches ComfyUI.

use serde_json::Value;

use super::{Args, image_wait, text};
use crate::tools::impls::{ToolContext, ToolError};

/// The bytes of an upload argument, bounded by `max`. The argument is one
/// of:
/// - plain base64 (the peer's form);
/// - a `data:` URI with base64 content (`data:image/png;base64,...`);
/// - `comfyui://output/{prompt_id}/{index}`: an output of a finished job
///   (one of the caller's own when jobs are kept apart), fetched from
///   ComfyUI, so a result can be fed back as an input without passing
///   through the client;
/// - an `https` URL on `security.allowed_fetch_domains`, fetched by
///   [`fetch_bytes`];
/// - an MCP resource the client holds, passed on as the client read it
///   (JSON: resource contents `{"uri", "mimeType", "blob"}` or `{..., "text"}`,
///   or an embedded-resource content block `{"type": "resource",
///   "resource": {...}}`), e.g. an image another MCP server returned.
pub(super) async fn source_bytes(args: &Args, name: &str, max: usize, cx: &ToolContext) -> Result<Vec<u8>, ToolError> {
    let raw = text(args, name).trim();
    if raw.starts_with('{') {
        return resource_bytes(name, raw, max);
    }
    if let Some(rest) = raw.strip_prefix("data:") {
        let Some((header, data)) = rest.split_once(',') else {
            return Err(ToolError::rejected(format!(
                "`{name}` is a data: URI without a `,` before its data"
            )));
        };
        if !header.split(';').any(|p| p.eq_ignore_ascii_case("base64")) {
            return Err(ToolError::rejected(format!(
                "`{name}` must be a base64 data: URI (`data:image/png;base64,...`)"
            )));
        }
        return decode_base64(name, data, max);
    }
    if let Some(rest) = raw.strip_prefix("comfyui://output/") {
        return output_bytes(name, rest, max, cx).await;
    }
    if raw.starts_with("https://") || raw.starts_with("http://") {
        return fetch_bytes(name, raw, max, cx).await;
    }
    decode_base64(name, raw, max)
}

/// The bytes of MCP resource contents passed as JSON (see [`source_bytes`]).
fn resource_bytes(name: &str, raw: &str, max: usize) -> Result<Vec<u8>, ToolError> {
    let bad = |why: &str| ToolError::rejected(format!("`{name}`: {why}"));
    let v: Value = serde_json::from_str(raw).map_err(|e| bad(&format!("looks like JSON but is not valid: {e}")))?;
    let contents = match v.get("type").and_then(Value::as_str) {
        Some("resource") => v
            .get("resource")
            .ok_or_else(|| bad("an embedded resource without `resource`"))?,
        _ => &v,
    };
    if let Some(blob) = contents.get("blob").and_then(Value::as_str) {
        return decode_base64(name, blob, max);
    }
    if let Some(text) = contents.get("text").and_then(Value::as_str) {
        if text.len() > max {
            return Err(bad(&format!(
                "the resource is larger than the upload limit of {} MiB (security.max_upload_size_mb)",
                max >> 20
            )));
        }
        return Ok(text.as_bytes().to_vec());
    }
    Err(bad(
        "a resource must carry its content as `blob` (base64) or `text`, as resources/read returns it",
    ))
}

fn decode_base64(name: &str, raw: &str, max: usize) -> Result<Vec<u8>, ToolError> {
    // Base64 is 4 characters per 3 bytes: refuse before decoding.
    if raw.len() / 4 * 3 > max {
        return Err(ToolError::rejected(format!(
            "`{name}` decodes to more than the upload limit of {} MiB (security.max_upload_size_mb)",
            max >> 20
        )));
    }
    // One padded text: `=` only at its end (the decoder would also take
    // padded texts one after another).
    if raw.trim_end_matches('=').contains('=') {
        return Err(ToolError::rejected(format!(
            "`{name}` is not valid base64: `=` before the end"
        )));
    }
    data_encoding::BASE64
        .decode(raw.as_bytes())
        .map_err(|e| ToolError::rejected(format!("`{name}` is not valid base64: {e}")))
}

/// The bytes at an `https` URL, through the SSRF-safe fetcher: hosts in
/// `security.allowed_fetch_domains`, public addresses only (or
/// `security.fetch_trusted_addresses`), redirects re-checked, the upload
/// size as the cap. The caller then checks the bytes against the file's
/// extension.
async fn fetch_bytes(name: &str, url: &str, max: usize, cx: &ToolContext) -> Result<Vec<u8>, ToolError> {
    let sec = &cx.config.security;
    if sec.allowed_fetch_domains.is_empty() {
        return Err(ToolError::rejected(format!(
            "`{name}`: uploads from URLs are off; list the hosts they may come from in \
             security.allowed_fetch_domains (or pass base64, a data: URI, or a comfyui://output resource)"
        )));
    }
    let mut policy = comfy_client::fetch::FetchPolicy::new(sec.allowed_fetch_domains.clone(), max);
    policy.trusted_addresses.clone_from(&sec.fetch_trusted_addresses);
    policy.timeout = std::time::Duration::from_secs(cx.config.comfyui.timeout_read.clamp(1, 120));
    let fetched = comfy_client::fetch::fetch(url, &policy)
        .await
        .map_err(|e| ToolError::rejected(format!("`{name}`: {e}")))?;
    Ok(fetched.bytes)
}

/// The bytes of `comfyui://output/{prompt_id}/{index}` (given without its
/// prefix), bounded by `max`.
async fn output_bytes(name: &str, rest: &str, max: usize, cx: &ToolContext) -> Result<Vec<u8>, ToolError> {
    let bad = |why: String| ToolError::rejected(format!("`{name}`: comfyui://output/{rest}: {why}"));
    let (_, _, file, client) = crate::tools::resources::resolve_output(rest, cx)
        .await
        .map_err(|e| match e {
            crate::tools::resources::Resolve::Bad(why) => bad(why),
            crate::tools::resources::Resolve::Comfy(e) => e,
        })?;
    let download = client.view(&file.file, None).await?;
    if download.bytes.len() > max {
        return Err(bad(format!(
            "the file is larger than the upload limit of {} MiB (security.max_upload_size_mb)",
            max >> 20
        )));
    }
    Ok(download.bytes.to_vec())
}

/// Checks that `bytes` are what a file named `name` claims to be (the
/// argument is `arg`): JSON must parse; an image must be one image of
/// its extension's format and nothing after it
/// ([`comfy_guard::upload::check_image_structure`]), and must decode whole
/// within the decoder's limits, taking its memory from the image budget
/// ([`crate::images`]). Any other extension is refused.
pub(super) async fn check_upload(
    arg: &str,
    name: &str,
    bytes: Vec<u8>,
    cx: &ToolContext,
) -> Result<Vec<u8>, ToolError> {
    use comfy_guard::upload::{ImageKind, check_image_structure};
    let refuse = |why: String| {
        ToolError::rejected(format!(
            "`{arg}` is not the kind of file `{name}` names (its bytes do not match the extension: {why})"
        ))
    };
    let ext = name.rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
    if ext == "json" {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
            Ok(_) => Ok(bytes),
            Err(e) => Err(refuse(format!("not valid JSON ({e})"))),
        };
    }
    let Some(kind) = ImageKind::from_extension(&ext) else {
        return Err(refuse(format!(
            "`.{ext}` files cannot be checked, so they are not uploaded"
        )));
    };
    check_image_structure(kind, &bytes).map_err(|e| refuse(e.to_string()))?;
    let format = match kind {
        ImageKind::Png => image::ImageFormat::Png,
        ImageKind::Jpeg => image::ImageFormat::Jpeg,
        ImageKind::Webp => image::ImageFormat::WebP,
        ImageKind::Gif => image::ImageFormat::Gif,
    };
    let (_, _, pixels) = crate::images::decode_cost(format, &bytes).map_err(|e| refuse(e.to_string()))?;
    // A GIF's frames are composited on a canvas: the frame, the canvas
    // and the previous one at once.
    let pixels = usize::try_from(pixels)
        .unwrap_or(usize::MAX)
        .saturating_mul(if kind == ImageKind::Gif { 3 } else { 1 });
    let budget = crate::images::global(cx.config.server.image_memory_mb);
    let permit = budget
        .acquire(pixels.saturating_add(bytes.len()), image_wait(cx))
        .await
        .map_err(|e| ToolError::rejected(format!("`{arg}`: {e}")))?;
    let max_alloc = budget.total();
    let (bytes, decoded) = tokio::task::spawn_blocking(move || {
        let r = crate::images::decode_whole(format, &bytes, max_alloc);
        drop(permit);
        (bytes, r)
    })
    .await
    .map_err(|e| ToolError::failed(format!("checking the image failed: {e}")))?;
    decoded.map_err(|e| refuse(e.to_string()))?;
    Ok(bytes)
}
