//! The user's data directory (`user/default/` in single-user mode): the
//! `/userdata` file routes, the `/v2/userdata` listing and `/settings`,
//! which ComfyUI keeps in `comfy.settings.json` there.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use http::{Method, Response};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use crate::api::{self, empty, json as json_resp, param, server_error};
use crate::body::Body;
use crate::files::{inside, list_dir, mime};
use crate::state::Shared;

/// Most entries listed by one `/userdata` or `/v2/userdata` call.
const MAX_ENTRIES: usize = 10_000;
const SETTINGS: &str = "comfy.settings.json";

fn root(shared: &Shared) -> PathBuf {
    shared.dir("user").join("default")
}

fn seconds(t: std::io::Result<std::time::SystemTime>) -> f64 {
    t.ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `{"path", "size", "modified", "created"}` for a file.
fn full_info(path: &Path, rel: &str) -> Value {
    let meta = std::fs::metadata(path).ok();
    let size = meta.as_ref().map_or(0, std::fs::Metadata::len);
    let modified = meta.as_ref().map_or(0.0, |m| seconds(m.modified()));
    let created = meta
        .as_ref()
        .map_or(0.0, |m| seconds(m.created().or_else(|_| m.modified())));
    json!({"path": rel, "size": size, "modified": modified, "created": created})
}

/// Files under `dir`, as paths relative to it, newest first per directory;
/// with `recurse`, subdirectories too.
fn files_under(dir: &Path, prefix: &str, recurse: bool, out: &mut Vec<String>) {
    for name in list_dir(dir) {
        if out.len() >= MAX_ENTRIES {
            return;
        }
        out.push(if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        });
    }
    if recurse && let Ok(rd) = std::fs::read_dir(dir) {
        let mut subdirs: Vec<String> = rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        subdirs.sort();
        for d in subdirs {
            let p = if prefix.is_empty() {
                d.clone()
            } else {
                format!("{prefix}/{d}")
            };
            files_under(&dir.join(&d), &p, true, out);
        }
    }
}

/// `GET /userdata?dir=&recurse=&full_info=&split=`.
pub(crate) fn list(shared: &Shared, q: &[(String, String)]) -> Response<Body> {
    let Some(dir) = param(q, "dir") else {
        return api::text(400, "Directory not provided");
    };
    let Some(path) = inside(&root(shared), dir) else {
        return empty(403);
    };
    if !path.is_dir() {
        return api::text(404, "Directory not found");
    }
    let flag = |k: &str| param(q, k) == Some("true");
    let mut files = Vec::new();
    files_under(&path, "", flag("recurse"), &mut files);
    let items: Vec<Value> = files
        .iter()
        .map(|rel| {
            if flag("full_info") {
                full_info(&path.join(rel), rel)
            } else if flag("split") {
                let mut parts = vec![json!(rel)];
                parts.extend(rel.split('/').map(|p| json!(p)));
                Value::Array(parts)
            } else {
                json!(rel)
            }
        })
        .collect();
    json_resp(200, &Value::Array(items))
}

/// `GET /v2/userdata?path=`: every directory and file below `path`, as
/// `os.walk` visits them (a directory's subdirectories, then its files).
pub(crate) fn list_v2(shared: &Shared, q: &[(String, String)]) -> Response<Body> {
    let base = root(shared);
    let rel = param(q, "path").unwrap_or("");
    let Some(start) = inside(&base, rel) else {
        return empty(403);
    };
    let mut out = Vec::new();
    let mut stack = vec![start];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let mut entries: Vec<(String, bool)> = rd
            .filter_map(Result::ok)
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.file_type().is_ok_and(|t| t.is_dir()),
                )
            })
            .collect();
        entries.sort();
        let relpath = |name: &str| {
            dir.join(name)
                .strip_prefix(&base)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let mut subdirs = Vec::new();
        for (name, _) in entries.iter().filter(|(_, is_dir)| *is_dir) {
            out.push(json!({"name": name, "path": relpath(name), "type": "directory"}));
            subdirs.push(dir.join(name));
        }
        for (name, _) in entries.iter().filter(|(_, is_dir)| !*is_dir) {
            let meta = std::fs::metadata(dir.join(name)).ok();
            out.push(json!({
                "name": name, "path": relpath(name), "type": "file",
                "size": meta.as_ref().map_or(0, std::fs::Metadata::len),
                "modified": meta.as_ref().map_or(0.0, |m| seconds(m.modified())),
            }));
        }
        if out.len() >= MAX_ENTRIES {
            break;
        }
        stack.extend(subdirs.into_iter().rev());
    }
    json_resp(200, &Value::Array(out))
}

/// `GET`, `POST` and `DELETE /userdata/{file}`, and
/// `POST /userdata/{file}/move/{dest}`.
pub(crate) async fn file(
    shared: &Shared,
    method: &Method,
    file: &str,
    dest: Option<&str>,
    q: &[(String, String)],
    body: Incoming,
) -> Response<Body> {
    let base = root(shared);
    let Some(path) = inside(&base, file).filter(|_| !file.is_empty()) else {
        return empty(403);
    };
    let overwrite = param(q, "overwrite") != Some("false");
    let answer = |rel: &str, p: &Path| {
        if param(q, "full_info") == Some("true") {
            json_resp(200, &full_info(p, rel))
        } else {
            json_resp(200, &json!(rel))
        }
    };
    match (method, dest) {
        (&Method::POST, Some(dest)) => {
            let Some(to) = inside(&base, dest).filter(|_| !dest.is_empty()) else {
                return empty(403);
            };
            if !path.is_file() {
                return empty(404);
            }
            if !overwrite && to.exists() {
                return api::text(409, "File already exists");
            }
            if create_parent(&to).and_then(|()| std::fs::rename(&path, &to)).is_err() {
                return server_error();
            }
            answer(dest, &to)
        }
        (&Method::POST, None) => {
            if !overwrite && path.exists() {
                return api::text(409, "File already exists");
            }
            let Some(data) = api::read_body(body, api::MAX_UPLOAD).await else {
                return server_error();
            };
            if create_parent(&path)
                .and_then(|()| std::fs::write(&path, &data))
                .is_err()
            {
                return server_error();
            }
            answer(file, &path)
        }
        (&Method::DELETE, _) => {
            if std::fs::remove_file(&path).is_err() {
                return empty(404);
            }
            empty(204)
        }
        _ => match std::fs::read(&path) {
            Ok(data) if path.is_file() => api::response(200, Some(mime(file)), Body::full(data)),
            _ => empty(404),
        },
    }
}

fn create_parent(path: &Path) -> std::io::Result<()> {
    path.parent().map_or(Ok(()), std::fs::create_dir_all)
}

/// The settings file's contents (`{}` when absent or unreadable).
pub(crate) fn settings(shared: &Shared) -> Map<String, Value> {
    std::fs::read(root(shared).join(SETTINGS))
        .ok()
        .and_then(|b| serde_json::from_slice::<Map<String, Value>>(&b).ok())
        .unwrap_or_default()
}

/// Merges `update` into the settings file, written as ComfyUI writes it
/// (`json.dumps(settings, indent=4)`).
pub(crate) fn save_settings(shared: &Shared, update: Map<String, Value>) -> Response<Body> {
    let _guard = shared.settings_lock.lock();
    let mut all = settings(shared);
    all.extend(update);
    let dir = root(shared);
    if std::fs::create_dir_all(&dir).is_err()
        || std::fs::write(dir.join(SETTINGS), crate::pyjson::to_string_indented(&all, 4)).is_err()
    {
        return server_error();
    }
    empty(200)
}
