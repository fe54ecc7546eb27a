//! `POST /upload/image` and `/upload/mask`: the multipart form, ComfyUI's
//! path checks and rename-on-clash, and the mask merged onto its original.

use std::path::Path;

use http::Response;
use http::header;
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::{annotated, inside};
use crate::api::{self, empty, json as json_resp, server_error};
use crate::body::Body;
use crate::image::Frame;
use crate::state::Shared;

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
