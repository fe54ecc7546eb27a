//! Files: `/view`, `/upload/image`, `/upload/mask`, `/internal/files`,
//! `/view_metadata`, model previews, and saving outputs, each with
//! ComfyUI's own path checks.
//!
//! Layout: this file holds the path checks every file route shares
//! ([`inside`], `annotated`) and the read-only routes; [`mod@upload`] the
//! upload routes; [`save`] what the worker's save nodes write.

mod save;
mod upload;

pub(crate) use save::{MediaSave, media, save_images, save_media};
pub(crate) use upload::upload;

use std::path::{Component, Path, PathBuf};

use http::Response;
use http::header::{self, HeaderValue};
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
