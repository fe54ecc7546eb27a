//! Files: `/view`, `/upload/image`, `/upload/mask`, `/internal/files`,
//! `/userdata`, and saving outputs, each with ComfyUI's own path checks.

use std::path::{Component, Path, PathBuf};

use http::Response;
use http::header::{self, HeaderValue};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::api::{self, empty, json as json_resp, param, server_error};
use crate::body::Body;
use crate::image::Frame;
use crate::state::Shared;

/// Most files listed from one directory.
const MAX_LIST: usize = 10_000;

/// Names of the regular files in `dir`, newest first.
pub(crate) fn list_dir(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(std::time::SystemTime, String)> = rd
        .filter_map(Result::ok)
        .take(MAX_LIST)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            (
                e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH),
                e.file_name().to_string_lossy().into_owned(),
            )
        })
        .collect();
    // Newest first; equal times (coarse file system clocks) by name,
    // descending, so the order is deterministic.
    files.sort_by(|a, b| b.cmp(a));
    files.into_iter().map(|(_, n)| n).collect()
}

/// Lexically normalises `p` (no file system access), as `os.path.normpath`.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `base.join(rel)` if it stays inside `base`.
pub(crate) fn inside(base: &Path, rel: &str) -> Option<PathBuf> {
    let joined = normalize(&base.join(rel));
    joined.starts_with(base).then_some(joined)
}

/// Splits ComfyUI's annotated name `name [output]` into name and directory.
fn annotated<'a>(name: &'a str, default: &'a str) -> (&'a str, &'a str) {
    for kind in ["output", "input", "temp"] {
        if let Some(stripped) = name.strip_suffix(&format!("[{kind}]")) {
            return (&stripped[..stripped.len().saturating_sub(1)], kind);
        }
    }
    (name, default)
}

/// The path of an input file named as `LoadImage` names it.
pub(crate) fn resolve_input(shared: &Shared, name: &str) -> Option<PathBuf> {
    let (name, kind) = annotated(name, "input");
    if name.is_empty() || name.starts_with('/') || name.contains("..") {
        return None;
    }
    let p = inside(&shared.dir(kind), name)?;
    p.is_file().then_some(p)
}

/// Saves `images` as `SaveImage` (output) or `PreviewImage` (temp) does and
/// returns the node's `ui` value.
pub(crate) async fn save_images(
    shared: &Shared,
    node: &str,
    class: &str,
    images: &[Frame],
    prompt: &Value,
    extra: &Value,
    prefix: Option<Value>,
) -> Result<Value, String> {
    let (kind, prefix) = if class == "PreviewImage" {
        let suffix = {
            let mut st = shared.lock();
            st.preview_suffix
                .entry(format!("{node}/{class}"))
                .or_insert_with(|| {
                    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstupvxyz";
                    (0..5)
                        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
                        .collect()
                })
                .clone()
        };
        ("temp", format!("ComfyUI_temp_{suffix}"))
    } else {
        (
            "output",
            prefix.map_or_else(|| "ComfyUI".to_owned(), |v| crate::validate::py_str(&v)),
        )
    };
    let (w, h) = images.first().map_or((0, 0), |f| (f.width, f.height));
    let SavePath {
        folder,
        filename,
        subfolder,
        mut counter,
    } = save_path(shared, kind, &prefix, w, h).await?;
    let mut texts = vec![("prompt".to_owned(), crate::pyjson::to_string(prompt))];
    if let Some(Value::Object(info)) = extra.get("extra_pnginfo") {
        for (k, v) in info {
            texts.push((k.clone(), crate::pyjson::to_string(v)));
        }
    }
    let mut items = Vec::new();
    for (b, img) in images.iter().enumerate() {
        let file = format!("{}_{counter:05}_.png", filename.replace("%batch_num%", &b.to_string()));
        let png = img.to_png(&texts).map_err(|e| e.to_string())?;
        tokio::fs::write(folder.join(&file), png)
            .await
            .map_err(|e| e.to_string())?;
        items.push(json!({"filename": file, "subfolder": subfolder, "type": kind}));
        counter += 1;
    }
    Ok(json!({"images": items}))
}

/// Where a save node writes: ComfyUI's `get_save_image_path`.
struct SavePath {
    folder: PathBuf,
    filename: String,
    subfolder: String,
    counter: u64,
}

/// The folder, base name, subfolder and next counter for `prefix` in
/// `kind` (`output` or `temp`), as ComfyUI's `get_save_image_path` works
/// them out (`%width%`/`%height%` filled in, the folder kept inside the
/// base directory, the counter one past the highest `{name}_{digits}`).
async fn save_path(shared: &Shared, kind: &str, prefix: &str, w: u32, h: u32) -> Result<SavePath, String> {
    let base = shared.dir(kind);
    let prefix = prefix
        .replace("%width%", &w.to_string())
        .replace("%height%", &h.to_string());
    let norm = normalize(Path::new(&prefix));
    let full = inside(&base, &norm.to_string_lossy()).ok_or_else(|| {
        format!(
            "**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: {}",
            base.join(&prefix).display()
        )
    })?;
    let filename = full
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let folder = full.parent().map_or_else(|| base.clone(), Path::to_path_buf);
    let subfolder = folder
        .strip_prefix(&base)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    tokio::fs::create_dir_all(&folder).await.map_err(|e| e.to_string())?;
    let mut counter = 1;
    for existing in list_dir(&folder) {
        if let Some(rest) = existing.strip_prefix(&filename).and_then(|r| r.strip_prefix('_')) {
            // As ComfyUI: the digits up to the next `_` (0.33 also stops
            // at a `.`, so its audio files' `00001.flac` counts); anything
            // else counts as 0.
            let rest = if shared.version.newer() {
                rest.split('.').next().unwrap_or("")
            } else {
                rest
            };
            let digits = rest.split('_').next().unwrap_or("");
            counter = counter.max(digits.parse::<u64>().unwrap_or(0) + 1);
        }
    }
    Ok(SavePath {
        folder,
        filename,
        subfolder,
        counter,
    })
}

/// Video and audio files made by the real ComfyUI 0.33.0's save nodes
/// (`fixtures/media/`): six red then six blue 64x48 frames at 8 fps, 1.5 s
/// of silence at 22050 Hz.
pub(crate) mod media {
    pub(crate) const MP4: &[u8] = include_bytes!("../../../fixtures/media/savevideo.mp4");
    pub(crate) const WEBM: &[u8] = include_bytes!("../../../fixtures/media/savewebm.webm");
    pub(crate) const WEBP: &[u8] = include_bytes!("../../../fixtures/media/saveanimatedwebp.webp");
    pub(crate) const APNG: &[u8] = include_bytes!("../../../fixtures/media/saveanimatedpng.png");
    pub(crate) const FLAC: &[u8] = include_bytes!("../../../fixtures/media/saveaudio.flac");
    pub(crate) const MP3: &[u8] = include_bytes!("../../../fixtures/media/saveaudiomp3.mp3");
    pub(crate) const OPUS: &[u8] = include_bytes!("../../../fixtures/media/saveaudioopus.opus");
}

/// How a media save node names and lists its file.
pub(crate) struct MediaSave<'a> {
    /// The node's `filename_prefix`, or its default.
    pub prefix: String,
    /// The extension.
    pub ext: &'a str,
    /// ComfyUI's video and image savers end the name with `_` before the
    /// extension (`ComfyUI_00001_.mp4`); 0.33's audio savers do not
    /// (`ComfyUI_00001.flac`; 0.8.0's do).
    pub trailing_underscore: bool,
    /// The output key: `images` or `audio`.
    pub key: &'a str,
    /// Whether the node output says `animated: [true]`.
    pub animated: bool,
    /// Picture size (for `%width%` and `%height%`).
    pub size: (u32, u32),
}

/// Writes `bytes` as a media save node does and returns its `ui` value.
pub(crate) async fn save_media(shared: &Shared, save: MediaSave<'_>, bytes: &[u8]) -> Result<Value, String> {
    let SavePath {
        folder,
        filename,
        subfolder,
        counter,
    } = save_path(shared, "output", &save.prefix, save.size.0, save.size.1).await?;
    let name = filename.replace("%batch_num%", "0");
    let file = if save.trailing_underscore {
        format!("{name}_{counter:05}_.{}", save.ext)
    } else {
        format!("{name}_{counter:05}.{}", save.ext)
    };
    tokio::fs::write(folder.join(&file), bytes)
        .await
        .map_err(|e| e.to_string())?;
    let item = json!({"filename": file, "subfolder": subfolder, "type": "output"});
    let mut ui = serde_json::Map::new();
    ui.insert(save.key.to_owned(), json!([item]));
    if save.animated {
        ui.insert("animated".to_owned(), json!([true]));
    }
    Ok(Value::Object(ui))
}

pub(crate) fn mime(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "txt" => "text/plain",
        "json" => "application/json",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "wav" => "audio/x-wav",
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "opus" => "audio/ogg",
        _ => "application/octet-stream",
    }
}

fn with_disposition(mut r: Response<Body>, name: &str) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(&format!("filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `GET /view`.
pub(crate) fn view(shared: &Shared, q: &[(String, String)]) -> Response<Body> {
    let Some(raw) = param(q, "filename") else {
        return empty(404);
    };
    let (name, kind) = annotated(raw, param(q, "type").unwrap_or("output"));
    if name.is_empty() || name.starts_with('/') || name.contains("..") {
        return empty(400);
    }
    if !matches!(kind, "output" | "input" | "temp") {
        return empty(400);
    }
    let mut dir = shared.dir(kind);
    if let Some(sub) = param(q, "subfolder") {
        match inside(&dir, sub) {
            Some(d) => dir = d,
            None => return empty(403),
        }
    }
    let base = Path::new(name)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = dir.join(&base);
    if !path.is_file() {
        return empty(404);
    }
    let Ok(bytes) = std::fs::read(&path) else {
        return empty(404);
    };
    let channel = param(q, "channel").unwrap_or("rgba");
    if let Some(preview) = param(q, "preview") {
        // ComfyUI tests the `channel` parameter as sent (default ""), not
        // the `rgba` default it uses below.
        let fmt = preview.split(';').next().unwrap_or("");
        let fmt = if matches!(fmt, "webp" | "jpeg") && !param(q, "channel").unwrap_or("").contains('a') {
            fmt
        } else {
            "webp"
        };
        let quality = preview
            .rsplit(';')
            .next()
            .and_then(|s| s.parse::<u8>().ok())
            .unwrap_or(90);
        let Ok(frame) = Frame::from_png(&bytes) else {
            return server_error();
        };
        let out = if fmt == "jpeg" {
            frame.to_jpeg(quality)
        } else {
            frame.to_webp()
        };
        return match out {
            Ok(data) => with_disposition(
                api::response(200, Some(&format!("image/{fmt}")), Body::full(data)),
                &base,
            ),
            Err(_) => server_error(),
        };
    }
    if channel == "rgb" || channel == "a" {
        let Ok(frame) = Frame::from_png(&bytes) else {
            return server_error();
        };
        let out = if channel == "rgb" {
            frame.to_png(&[])
        } else {
            frame.alpha_png()
        };
        return match out {
            Ok(data) => with_disposition(api::response(200, Some("image/png"), Body::full(data)), &base),
            Err(_) => server_error(),
        };
    }
    let mut r = with_disposition(api::response(200, Some(mime(&base)), Body::full(bytes)), &base);
    r.headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    r
}

/// `POST /upload/image` and `/upload/mask`.
pub(crate) async fn upload(
    shared: &Shared,
    parts: &http::request::Parts,
    body: Incoming,
    mask: bool,
) -> Response<Body> {
    let Some(boundary) = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
    else {
        return server_error();
    };
    let Some(bytes) = api::read_body(body, api::MAX_UPLOAD).await else {
        return server_error();
    };
    let stream = futures_once(bytes);
    let mut form = multer::Multipart::new(stream, boundary);
    let mut image: Option<(String, Vec<u8>)> = None;
    let mut fields: Vec<(String, String)> = Vec::new();
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let file_name = field.file_name().map(str::to_owned);
                let Ok(data) = field.bytes().await else {
                    return server_error();
                };
                match (name.as_str(), file_name) {
                    ("image", Some(f)) if !f.is_empty() => image = Some((f, data.to_vec())),
                    ("image", _) => return server_error(),
                    _ => fields.push((name, String::from_utf8_lossy(&data).into_owned())),
                }
            }
            Ok(None) => break,
            Err(_) => return server_error(),
        }
    }
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let kind = get("type").unwrap_or("input");
    if !matches!(kind, "input" | "temp" | "output") {
        return server_error();
    }
    let Some((filename, data)) = image else {
        return empty(400);
    };
    let subfolder = get("subfolder").unwrap_or("");
    let base = shared.dir(kind);
    let Some(folder) = inside(&base, subfolder) else {
        return empty(400);
    };
    let Some(mut path) = inside(&folder, &filename) else {
        return empty(400);
    };
    if !path.starts_with(&base) {
        return empty(400);
    }
    let original = if mask {
        let Some(r) = get("original_ref").and_then(|s| serde_json::from_str::<Value>(s).ok()) else {
            return server_error();
        };
        Some(r)
    } else {
        None
    };
    if std::fs::create_dir_all(&folder).is_err() {
        return server_error();
    }
    let overwrite = matches!(get("overwrite"), Some("true" | "1"));
    let mut final_name = filename.clone();
    let mut duplicate = false;
    if !overwrite {
        let (stem, ext) = split_ext(&filename);
        let mut i = 1;
        while path.exists() {
            if std::fs::read(&path).is_ok_and(|existing| existing == data) {
                duplicate = true;
                break;
            }
            final_name = format!("{stem} ({i}){ext}");
            path = folder.join(&final_name);
            i += 1;
        }
    }
    if !duplicate {
        let written = match original {
            Some(r) => write_mask(shared, &r, &data, &path),
            None => std::fs::write(&path, &data).is_ok(),
        };
        if !written {
            return server_error();
        }
    }
    json_resp(200, &json!({"name": final_name, "subfolder": subfolder, "type": kind}))
}

/// Copies the alpha of `mask` onto the original image and saves the result
/// at `dest`. A bad or missing original writes nothing (and, as upstream,
/// still answers 200).
fn write_mask(shared: &Shared, original: &Value, mask: &[u8], dest: &Path) -> bool {
    let name = original.get("filename").and_then(Value::as_str).unwrap_or("");
    let (name, kind) = annotated(name, original.get("type").and_then(Value::as_str).unwrap_or("output"));
    if name.is_empty() || name.starts_with('/') || name.contains("..") || !matches!(kind, "input" | "output" | "temp") {
        return true;
    }
    let sub = original.get("subfolder").and_then(Value::as_str).unwrap_or("");
    let Some(dir) = inside(&shared.dir(kind), sub) else {
        return true;
    };
    let Ok(orig) = std::fs::read(dir.join(name)) else {
        return true;
    };
    let (Ok(mut img), Ok(m)) = (Frame::from_png(&orig), Frame::from_png(mask)) else {
        return true;
    };
    let texts = crate::image::png_texts(&orig).unwrap_or_default();
    let n = (img.width * img.height) as usize;
    let alpha = m.alpha.unwrap_or_else(|| vec![255; (m.width * m.height) as usize]);
    img.alpha = Some(if alpha.len() == n { alpha } else { vec![255; n] });
    img.to_png_rgba(&texts)
        .is_ok_and(|png| std::fs::write(dest, png).is_ok())
}

fn split_ext(name: &str) -> (String, String) {
    match name.rfind('.') {
        Some(i) if i > 0 && !name[..i].ends_with('/') => (name[..i].to_owned(), name[i..].to_owned()),
        _ => (name.to_owned(), String::new()),
    }
}

fn futures_once(bytes: bytes::Bytes) -> impl futures_core::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    struct Once(Option<bytes::Bytes>);
    impl futures_core::Stream for Once {
        type Item = Result<bytes::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.take().map(Ok))
        }
    }
    Once(Some(bytes))
}

/// `GET /internal/files/{type}`.
pub(crate) fn internal_files(shared: &Shared, kind: &str) -> Response<Body> {
    if !matches!(kind, "input" | "output" | "temp") {
        return json_resp(400, &json!({"error": "Invalid directory type"}));
    }
    json_resp(200, &json!(list_dir(&shared.dir(kind))))
}

/// Largest safetensors header read, as ComfyUI's `safetensors_header`.
const MAX_SAFETENSORS_HEADER: u64 = 1024 * 1024;

/// Whether the model catalog lists `name` in `folder`.
fn is_listed(shared: &Shared, folder: &str, name: &str) -> bool {
    shared
        .models
        .files(folder)
        .is_some_and(|files| files.iter().any(|f| f == name))
}

/// `GET /view_metadata/{folder}?filename=`: the `__metadata__` of a
/// safetensors header. The recorded model files are empty placeholders, so
/// without a models directory a listed name answers 500, as recorded.
pub(crate) fn view_metadata(shared: &Shared, folder: &str, q: &[(String, String)]) -> Response<Body> {
    let Some(name) = param(q, "filename").filter(|n| n.ends_with(".safetensors")) else {
        return empty(404);
    };
    if !is_listed(shared, folder, name) {
        return empty(404);
    }
    let Some(root) = &shared.models_root else {
        return server_error();
    };
    let Some(path) = inside(&root.join(folder), name) else {
        return empty(404);
    };
    let Ok(mut file) = std::fs::File::open(&path) else {
        return empty(404);
    };
    let mut len = [0u8; 8];
    if std::io::Read::read_exact(&mut file, &mut len).is_err() {
        return server_error();
    }
    let len = u64::from_le_bytes(len);
    if len > MAX_SAFETENSORS_HEADER {
        return empty(404);
    }
    let mut header = vec![0; len as usize];
    if std::io::Read::read_exact(&mut file, &mut header).is_err() {
        return server_error();
    }
    match serde_json::from_slice::<Value>(&header) {
        Ok(v) => match v.get("__metadata__") {
            Some(m) => json_resp(200, m),
            None => empty(404),
        },
        Err(_) => server_error(),
    }
}

/// `GET /experiment/models/preview/{folder}/{index}/{file}`: the model's
/// preview image (a `.png`, `.jpg`, `.jpeg` or `.webp` of the same stem next
/// to it in `--models-dir`) as WebP. As ComfyUI: a model file that cannot
/// be read as safetensors (an empty placeholder) and has no preview is a
/// 500; a listed model without one is a 404.
pub(crate) fn model_preview(shared: &Shared, folder: &str, name: &str) -> Response<Body> {
    let Some(root) = &shared.models_root else {
        return empty(404);
    };
    if !is_listed(shared, folder, name) {
        return empty(404);
    }
    let Some(model) = inside(&root.join(folder), name) else {
        return empty(404);
    };
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    for ext in ["png", "jpg", "jpeg", "webp"] {
        let Some(path) = inside(&root.join(folder), &format!("{stem}.{ext}")) else {
            continue;
        };
        let Ok(bytes) = std::fs::read(&path) else { continue };
        if bytes.len() > 32 << 20 {
            return server_error();
        }
        if ext == "webp" {
            return api::response(200, Some("image/webp"), Body::full(bytes));
        }
        // Only PNG is decoded here; other formats are passed on as they are.
        return match Frame::from_png(&bytes).and_then(|f| f.to_webp()) {
            Ok(webp) => api::response(200, Some("image/webp"), Body::full(webp)),
            Err(_) => api::response(200, Some("image/jpeg"), Body::full(bytes)),
        };
    }
    match std::fs::metadata(&model) {
        Ok(m) if m.len() < 8 => server_error(),
        _ => empty(404),
    }
}
