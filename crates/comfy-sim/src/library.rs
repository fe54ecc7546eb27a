//! The server's own workflow library and its assets system, as ComfyUI
//! 0.33.0 serves them (recorded in `fixtures/comfyui-0.33/`):
//! - official templates: `/templates/index.json` and `/templates/{name}.json`
//!   (the `comfyui-workflow-templates` package; no `/api` alias). The
//!   simulator holds four recorded templates, served byte for byte, and an
//!   index cut down to them (groups and entries as recorded);
//! - subgraph blueprints: `/global_subgraphs` (cut down to the four recorded
//!   blueprints) and `/global_subgraphs/{id}` (byte for byte; unknown ids
//!   are `200 null`). On 0.8.0 both are empty as before;
//! - assets (with [`crate::SimBuilder::assets`], ComfyUI's `--enable-assets`):
//!   `GET /api/assets` over the files of `input/` and `output/`, hashed with
//!   BLAKE3 as ComfyUI does (`blake3:<hex>`), with its filters, paging and
//!   order, and `/view?filename=blake3:<hex>`. Without the flag 0.33.0
//!   answers `503 SERVICE_DISABLED`; 0.8.0 has no such route (404).
//!
//! Every walk is bounded ([`MAX_FILES`], [`MAX_DEPTH`]).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use http::Response;
use serde_json::{Map, Value, json};

use crate::api::{self, empty, json as json_response, param};
use crate::body::Body;
use crate::state::Shared;

/// The recorded template index (all of it; served cut down).
const INDEX: &str = include_str!("../../../fixtures/comfyui-0.33/templates/index.json");

/// The recorded templates, byte for byte.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "api_heygen_text_to_speech",
        include_str!("../../../fixtures/comfyui-0.33/templates/api_heygen_text_to_speech.json"),
    ),
    (
        "image_to_video_wan",
        include_str!("../../../fixtures/comfyui-0.33/templates/image_to_video_wan.json"),
    ),
    (
        "image_z_image_turbo",
        include_str!("../../../fixtures/comfyui-0.33/templates/image_z_image_turbo.json"),
    ),
    (
        "utility_image_stitch",
        include_str!("../../../fixtures/comfyui-0.33/templates/utility_image_stitch.json"),
    ),
];

/// The recorded blueprint listing (all 89; served cut down).
const SUBGRAPHS: &str = include_str!("../../../fixtures/comfyui-0.33/http/get_global_subgraphs.body.json");

/// The recorded blueprints by id, byte for byte.
const BLUEPRINTS: &[(&str, &str)] = &[
    (
        "122157c20da69ee75f601953482b6a2a74e6b59baa152cff7b7f66ae86cbc0f3",
        include_str!(
            "../../../fixtures/comfyui-0.33/blueprints/122157c20da69ee75f601953482b6a2a74e6b59baa152cff7b7f66ae86cbc0f3.json"
        ),
    ),
    (
        "2284de07f9ce52b1c6aa4822d18ac15560137c8f73c070d52fc20e1a62229964",
        include_str!(
            "../../../fixtures/comfyui-0.33/blueprints/2284de07f9ce52b1c6aa4822d18ac15560137c8f73c070d52fc20e1a62229964.json"
        ),
    ),
    (
        "3411f0c463adc8e41e3ff69cc7d07f989ada20c6eb94a43f0885f86ab2b18931",
        include_str!(
            "../../../fixtures/comfyui-0.33/blueprints/3411f0c463adc8e41e3ff69cc7d07f989ada20c6eb94a43f0885f86ab2b18931.json"
        ),
    ),
    (
        "47c48f53dddad2cd5b035bc791bbd567ae93a29cf8bf7262ac59e342104e6601",
        include_str!(
            "../../../fixtures/comfyui-0.33/blueprints/47c48f53dddad2cd5b035bc791bbd567ae93a29cf8bf7262ac59e342104e6601.json"
        ),
    ),
];

/// Most files an asset listing looks at.
const MAX_FILES: usize = 10_000;
/// Deepest subfolder an asset listing walks into.
const MAX_DEPTH: usize = 8;
/// Largest file hashed for an asset listing (bigger ones, and empty ones,
/// are left out, as ComfyUI's scanner leaves out empty files).
const MAX_HASHED: u64 = 256 << 20;

/// `GET /templates/{path}` (0.33.0 only; `None`: not found).
pub(crate) fn template(shared: &Shared, path: &str) -> Response<Body> {
    if !shared.version.newer() {
        return api::not_found_route();
    }
    if path == "index.json" {
        return api::response(200, Some("application/json"), Body::full(index()));
    }
    match path
        .strip_suffix(".json")
        .and_then(|name| TEMPLATES.iter().find(|(n, _)| *n == name))
    {
        Some((_, body)) => api::response(200, Some("application/json"), Body::full((*body).to_owned())),
        None => api::text(404, "404: Not Found"),
    }
}

/// The recorded index with only the templates the simulator holds.
fn index() -> String {
    let Ok(Value::Array(mut groups)) = serde_json::from_str::<Value>(INDEX) else {
        return "[]".to_owned();
    };
    for g in &mut groups {
        if let Some(Value::Array(list)) = g.get_mut("templates") {
            list.retain(|t| {
                t.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| TEMPLATES.iter().any(|(have, _)| *have == n))
            });
        }
    }
    groups.retain(|g| {
        g.get("templates")
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty())
    });
    serde_json::to_string_pretty(&groups).unwrap_or_else(|_| "[]".to_owned())
}

/// `GET /global_subgraphs`.
pub(crate) fn subgraphs(shared: &Shared) -> Response<Body> {
    if !shared.version.newer() {
        return json_response(200, &json!({}));
    }
    let all: Map<String, Value> = serde_json::from_str(SUBGRAPHS).unwrap_or_default();
    let kept: Map<String, Value> = all
        .into_iter()
        .filter(|(id, _)| BLUEPRINTS.iter().any(|(have, _)| have == id))
        .collect();
    json_response(200, &Value::Object(kept))
}

/// `GET /global_subgraphs/{id}`.
pub(crate) fn subgraph(shared: &Shared, id: &str) -> Response<Body> {
    match BLUEPRINTS.iter().find(|(have, _)| *have == id) {
        Some((_, body)) if shared.version.newer() => api::json_text(200, (*body).to_owned()),
        _ => json_response(200, &Value::Null),
    }
}

/// One file of `input/` or `output/` as the assets system sees it.
struct Found {
    /// Its folder (`input`, `output`).
    kind: &'static str,
    /// Its path under that folder, `/`-separated.
    rel: String,
    path: PathBuf,
    size: u64,
    modified: SystemTime,
}

fn walk(shared: &Shared) -> Vec<Found> {
    let mut out = Vec::new();
    for kind in ["input", "output"] {
        let root = shared.dir(kind);
        let mut stack = vec![(root.clone(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            let mut entries: Vec<_> = entries.flatten().collect();
            entries.sort_by_key(std::fs::DirEntry::file_name);
            for e in entries {
                if out.len() >= MAX_FILES {
                    return out;
                }
                let Ok(meta) = e.metadata() else { continue };
                let path = e.path();
                if meta.is_dir() {
                    if depth < MAX_DEPTH {
                        stack.push((path, depth + 1));
                    }
                } else if meta.is_file() && meta.len() > 0 && meta.len() <= MAX_HASHED {
                    let rel = path
                        .strip_prefix(&root)
                        .map(|p| p.to_string_lossy().replace('\\', "/"))
                        .unwrap_or_default();
                    out.push(Found {
                        kind,
                        rel,
                        path,
                        size: meta.len(),
                        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    });
                }
            }
        }
    }
    out
}

fn hash_of(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(format!("blake3:{}", blake3::hash(&bytes).to_hex()))
}

/// A naive UTC timestamp as Python's `isoformat()` writes it.
fn iso(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_micros(t).to_string();
    s.trim_end_matches('Z').to_owned()
}

/// A stable asset reference id (a v4-shaped UUID) for a file.
fn reference_id(kind: &str, rel: &str) -> String {
    let digest = blake3::hash(format!("{kind}/{rel}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_bytes()[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// Width and height from a PNG header.
fn png_size(path: &Path) -> Option<(u32, u32)> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" {
        return None;
    }
    let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    Some((w, h))
}

/// One asset in the recorded shape (`fixtures/comfyui-0.33/http/get_api_assets`).
fn asset(f: &Found, hash: &str) -> Value {
    let name = f.rel.rsplit('/').next().unwrap_or(&f.rel).to_owned();
    let mime = crate::files::mime(&name);
    let format = name.rsplit_once('.').map_or("", |(_, e)| e).to_ascii_lowercase();
    let kind = mime.split('/').next().unwrap_or("");
    let mut metadata = json!({
        "filename": f.rel, "content_length": f.size, "format": format,
        "file_path": f.path.to_string_lossy(), "content_type": mime, "kind": kind,
    });
    if let Some((w, h)) = png_size(&f.path) {
        metadata["width"] = json!(w);
        metadata["height"] = json!(h);
    }
    let mut preview = format!("/api/view?type={}&filename={}", f.kind, quote(&name));
    if let Some((sub, _)) = f.rel.rsplit_once('/') {
        preview.push_str("&subfolder=");
        preview.push_str(&quote(sub));
    }
    let time = iso(f.modified);
    json!({
        "id": reference_id(f.kind, &f.rel), "name": name, "hash": hash, "loader_path": f.rel,
        "display_name": name, "asset_hash": hash, "size": f.size, "mime_type": mime,
        "tags": [f.kind], "preview_url": preview, "user_metadata": {"filename": f.rel},
        "is_immutable": false, "metadata": metadata,
        "created_at": time, "updated_at": time, "last_access_time": time,
    })
}

/// `urllib.parse.quote(s, safe="")`.
fn quote(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn error(status: u16, code: &str, message: &str, details: &Value) -> Response<Body> {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message, "details": details}}),
    )
}

/// The 503 of a 0.33.0 started without `--enable-assets`.
fn disabled() -> Response<Body> {
    error(
        503,
        "SERVICE_DISABLED",
        "Assets system is disabled. Start the server with --enable-assets to use this feature.",
        &json!({}),
    )
}

fn csv(q: &[(String, String)], names: &[&str]) -> Vec<String> {
    q.iter()
        .filter(|(k, _)| names.contains(&k.as_str()))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// pydantic's `greater_than_equal` / `less_than_equal` / `int_parsing` error.
fn bad_int(name: &str, raw: &str, ge: i64, le: Option<i64>) -> Option<Response<Body>> {
    let (kind, msg, ctx) = match raw.parse::<i64>() {
        Err(_) => (
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer".to_owned(),
            None,
        ),
        Ok(n) if n < ge => (
            "greater_than_equal",
            format!("Input should be greater than or equal to {ge}"),
            Some(json!({"ge": ge})),
        ),
        Ok(n) if le.is_some_and(|le| n > le) => {
            let le = le.unwrap_or_default();
            (
                "less_than_equal",
                format!("Input should be less than or equal to {le}"),
                Some(json!({"le": le})),
            )
        }
        Ok(_) => return None,
    };
    let mut e = json!({"type": kind, "loc": [name], "msg": msg, "input": raw});
    if let Some(ctx) = ctx {
        e["ctx"] = ctx;
    }
    e["url"] = json!(format!("https://errors.pydantic.dev/2.14/v/{kind}"));
    Some(error(
        400,
        "INVALID_QUERY",
        "Validation failed.",
        &json!({"errors": [e]}),
    ))
}

/// `GET /api/assets`.
pub(crate) fn list(shared: &Shared, q: &[(String, String)]) -> Response<Body> {
    if !shared.assets {
        return disabled();
    }
    let limit_raw = param(q, "limit").unwrap_or("20");
    if let Some(r) = bad_int("limit", limit_raw, 1, Some(500)) {
        return r;
    }
    let offset_raw = param(q, "offset").unwrap_or("0");
    if let Some(r) = bad_int("offset", offset_raw, 0, None) {
        return r;
    }
    let limit = limit_raw.parse::<usize>().unwrap_or(20);
    let offset = offset_raw.parse::<usize>().unwrap_or(0);
    let all_tags = csv(q, &["tags_all", "include_tags"]);
    let any_tags = csv(q, &["tags_any"]);
    let no_tags = csv(q, &["tags_none", "exclude_tags"]);
    let name = param(q, "name_contains").map(str::to_lowercase);
    let mut items: Vec<(Found, String)> = walk(shared)
        .into_iter()
        .filter(|f| {
            let tag = f.kind.to_owned();
            all_tags.iter().all(|t| *t == tag)
                && (any_tags.is_empty() || any_tags.contains(&tag))
                && !no_tags.contains(&tag)
                && name.as_ref().is_none_or(|n| {
                    f.rel
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_lowercase()
                        .contains(n.as_str())
                })
        })
        .filter_map(|f| hash_of(&f.path).map(|h| (f, h)))
        .collect();
    let sort = param(q, "sort").unwrap_or("created_at");
    let desc = param(q, "order").is_none_or(|o| !o.eq_ignore_ascii_case("asc"));
    items.sort_by(|(a, _), (b, _)| {
        let base = |f: &Found| f.rel.rsplit('/').next().unwrap_or_default().to_owned();
        let o = match sort {
            "name" => base(a).cmp(&base(b)),
            "size" => a.size.cmp(&b.size),
            _ => a.modified.cmp(&b.modified),
        };
        let o = o.then_with(|| a.rel.cmp(&b.rel));
        if desc { o.reverse() } else { o }
    });
    let total = items.len();
    let page: Vec<Value> = items
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(f, h)| asset(f, h))
        .collect();
    let has_more = offset + page.len() < total;
    json_response(200, &json!({"assets": page, "total": total, "has_more": has_more}))
}

/// `/view?filename=blake3:<hex>` on 0.33.0: the file with that hash, or an
/// empty 404.
pub(crate) fn view_hash(shared: &Shared, hash: &str) -> Response<Body> {
    if !shared.assets {
        return empty(404);
    }
    for f in walk(shared) {
        if hash_of(&f.path).as_deref() == Some(hash) {
            let name = f.rel.rsplit('/').next().unwrap_or(&f.rel).to_owned();
            let Ok(bytes) = std::fs::read(&f.path) else { break };
            let mut r = api::response(200, Some(crate::files::mime(&name)), Body::full(bytes));
            if let Ok(v) = http::HeaderValue::from_str(&format!("filename=\"{name}\"")) {
                r.headers_mut().insert(http::header::CONTENT_DISPOSITION, v);
            }
            return r;
        }
    }
    empty(404)
}
