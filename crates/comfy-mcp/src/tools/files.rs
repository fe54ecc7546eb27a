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
async fn source_bytes(args: &Args, name: &str, max: usize, cx: &ToolContext) -> Result<Vec<u8>, ToolError> {
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
    let (_, _, file, client) = super::resources::resolve_output(rest, cx).await.map_err(|e| match e {
        super::resources::Resolve::Bad(why) => bad(why),
        super::resources::Resolve::Comfy(e) => e,
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

/// How long a call waits for the image memory budget (less when the
/// tool deadline is shorter).
const IMAGE_WAIT: std::time::Duration = std::time::Duration::from_mins(1);

/// The wait for image memory: [`IMAGE_WAIT`] within the tool deadline.
pub(super) fn image_wait(cx: &ToolContext) -> std::time::Duration {
    IMAGE_WAIT.min(std::time::Duration::from_secs(cx.config.server.tool_deadline.max(1)))
}

/// Checks that `bytes` are what a file named `name` claims to be (the
/// argument is `arg`): JSON must parse; an image must be one image of
/// its extension's format and nothing after it
/// ([`comfy_guard::upload::check_image_structure`]), and must decode whole
/// within the decoder's limits, taking its memory from the image budget
/// ([`crate::images`]). Any other extension is refused.
async fn check_upload(arg: &str, name: &str, bytes: Vec<u8>, cx: &ToolContext) -> Result<Vec<u8>, ToolError> {
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

/// A JPEG preview of an image, at most 1024 px a side and under `budget`.
struct Made {
    jpeg: Vec<u8>,
    width: u32,
    height: u32,
}

/// Largest side of a preview.
const PREVIEW_SIDE: u32 = 1024;

/// A non-interlaced PNG scaled down to at most [`PREVIEW_SIDE`] a side
/// while it is decoded, row by row, with a box filter: the full-size
/// pixels are never held, so returning a large image costs little more
/// than its file. `None` for other images (decoded whole instead).
fn png_downscaled(bytes: &[u8]) -> Option<image::RgbImage> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().ok()?;
    let (w, h) = (reader.info().width, reader.info().height);
    if reader.info().interlaced || w == 0 || h == 0 || w > 16_384 || h > 16_384 {
        return None;
    }
    let channels: usize = match reader.output_color_type() {
        (png::ColorType::Grayscale, png::BitDepth::Eight) => 1,
        (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight) => 2,
        (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
        (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
        _ => return None,
    };
    let scale = f64::from(w.max(h)) / f64::from(PREVIEW_SIDE);
    let (tw, th) = if scale <= 1.0 {
        (w, h)
    } else {
        (
            ((f64::from(w) / scale).round() as u32).max(1),
            ((f64::from(h) / scale).round() as u32).max(1),
        )
    };
    let mut out = image::RgbImage::new(tw, th);
    // Sums of the source pixels falling in each target pixel of the
    // target row being filled, and how many there were.
    let mut sums = vec![[0u32; 3]; tw as usize];
    let mut counts = vec![0u32; tw as usize];
    let col_of: Vec<usize> = (0..w)
        .map(|x| (u64::from(x) * u64::from(tw) / u64::from(w)) as usize)
        .collect();
    let mut current_row = 0u32;
    let flush = |out: &mut image::RgbImage, row: u32, sums: &mut [[u32; 3]], counts: &mut [u32]| {
        for (x, (sum, n)) in sums.iter_mut().zip(counts.iter_mut()).enumerate() {
            let n1 = (*n).max(1);
            out.put_pixel(
                x as u32,
                row,
                image::Rgb([(sum[0] / n1) as u8, (sum[1] / n1) as u8, (sum[2] / n1) as u8]),
            );
            *sum = [0; 3];
            *n = 0;
        }
    };
    for y in 0..h {
        let row = reader.next_row().ok()??;
        let data = row.data();
        if data.len() < w as usize * channels {
            return None;
        }
        let target = (u64::from(y) * u64::from(th) / u64::from(h)) as u32;
        if target != current_row {
            flush(&mut out, current_row, &mut sums, &mut counts);
            current_row = target;
        }
        for (x, px) in data.chunks_exact(channels).take(w as usize).enumerate() {
            let rgb = match channels {
                1 | 2 => [px[0]; 3],
                _ => [px[0], px[1], px[2]],
            };
            let t = col_of[x];
            for (sum, v) in sums[t].iter_mut().zip(rgb) {
                *sum += u32::from(v);
            }
            counts[t] += 1;
        }
    }
    flush(&mut out, current_row, &mut sums, &mut counts);
    Some(out)
}

/// What making a preview of `bytes` allocates: for a non-interlaced
/// 8-bit-or-less PNG, scaled while decoded, two rows and the preview;
/// otherwise the whole decoded image, as its header says.
fn preview_cost(bytes: &[u8]) -> Result<usize, crate::images::ImageError> {
    let format = image::guess_format(bytes)
        .map_err(|e| crate::images::ImageError::Decode(format!("cannot tell the image's format: {e}")))?;
    let (w, _, pixels) = crate::images::decode_cost(format, bytes)?;
    // IHDR: width, height, bit depth, colour type, compression, filter,
    // interlace (byte 28 of the file).
    let streamed = format == image::ImageFormat::Png && bytes.get(28) == Some(&0);
    let cost = if streamed {
        u64::from(w) * 16 + u64::from(PREVIEW_SIDE) * u64::from(PREVIEW_SIDE) * 3
    } else {
        pixels
    };
    Ok(usize::try_from(cost).unwrap_or(usize::MAX))
}

/// Decodes `bytes` (bounded: 16384 px a side, `max_alloc` bytes) and
/// re-encodes it smaller until it fits `budget`. PNGs are scaled down
/// while they are decoded ([`png_downscaled`]).
fn make_preview(bytes: &[u8], budget: usize, max_alloc: usize) -> Result<Made, ToolError> {
    if let Some(small) = png_downscaled(bytes) {
        return encode_preview(&image::DynamicImage::ImageRgb8(small), budget);
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ToolError::failed(format!("cannot read the image: {e}")))?;
    reader.limits(crate::images::limits(max_alloc));
    let full = reader
        .decode()
        .map_err(|e| ToolError::failed(format!("cannot decode the image for a preview: {e}")))?;
    encode_preview(&full, budget)
}

/// JPEG at 85 %, at most 1024 px a side and smaller until under `budget`.
fn encode_preview(full: &image::DynamicImage, budget: usize) -> Result<Made, ToolError> {
    for side in [PREVIEW_SIDE, 768, 512, 256, 128] {
        let small = full.thumbnail(side, side).to_rgb8();
        let mut jpeg = Vec::new();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85);
        encoder
            .encode_image(&small)
            .map_err(|e| ToolError::failed(format!("cannot encode the preview: {e}")))?;
        // Base64 grows by a third; keep the inline content under budget.
        if jpeg.len() / 3 * 4 <= budget || side == 128 {
            return Ok(Made {
                jpeg,
                width: small.width(),
                height: small.height(),
            });
        }
    }
    Err(ToolError::failed("cannot make a preview small enough"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_of(img: &image::DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap_or_default();
        out
    }

    #[test]
    fn pngs_are_scaled_while_decoded_to_what_a_full_decode_gives() {
        // A horizontal gradient, 2048x1024: the preview is 1024x512 and
        // each pixel the mean of the 2x2 block it stands for.
        let img = image::RgbImage::from_fn(2048, 1024, |x, y| image::Rgb([(x / 8) as u8, (y / 4) as u8, 200]));
        let bytes = png_of(&image::DynamicImage::ImageRgb8(img.clone()));
        let small = png_downscaled(&bytes).unwrap_or_default();
        assert_eq!(small.dimensions(), (1024, 512));
        for (x, y) in [(0, 0), (511, 255), (1023, 511), (100, 400)] {
            let p = small.get_pixel(x, y);
            let src = img.get_pixel(x * 2, y * 2);
            for c in 0..3 {
                assert!(p[c].abs_diff(src[c]) <= 1, "({x},{y}) {p:?} vs {src:?}");
            }
        }
        // The same size as the whole-image path gives.
        let full = image::DynamicImage::ImageRgb8(img).thumbnail(PREVIEW_SIDE, PREVIEW_SIDE);
        assert_eq!(full.width(), 1024);
    }

    #[test]
    fn other_pixel_formats_and_small_images() {
        let gray16 = image::DynamicImage::ImageLuma16(image::ImageBuffer::from_fn(300, 200, |x, _| {
            image::Luma([(x * 200) as u16])
        }));
        let s = png_downscaled(&png_of(&gray16)).unwrap_or_default();
        assert_eq!(s.dimensions(), (300, 200), "small images keep their size");
        let rgba =
            image::DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(3000, 10, image::Rgba([10, 20, 30, 0])));
        let s = png_downscaled(&png_of(&rgba)).unwrap_or_default();
        assert_eq!(s.dimensions(), (1024, 3));
        assert_eq!(s.get_pixel(5, 1), &image::Rgb([10, 20, 30]));
        // Not a PNG, or a broken one: the whole-image path decides.
        assert!(png_downscaled(b"GIF89a....").is_none());
        let mut cut = png_of(&rgba);
        cut.truncate(cut.len() / 2);
        assert!(png_downscaled(&cut).is_none());
        // make_preview takes either path and stays under its budget.
        let made = make_preview(&png_of(&rgba), 1 << 20, 64 << 20).map(|m| (m.width, m.height));
        assert_eq!(made.ok(), Some((1024, 3)));
    }
}
