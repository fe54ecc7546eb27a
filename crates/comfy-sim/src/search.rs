//! A small CivitAI and HuggingFace model-search simulation, for tests of
//! `comfyui_search_models` (off unless the simulator is built with
//! [`crate::SimBuilder::model_search`]). Point the server's
//! `model_search.civitai_api_base` and `model_search.huggingface_api_base`
//! at the simulator's URL.
//!
//! - `GET /api/v1/models?query=&limit=&types=` answers in CivitAI's shape
//!   (`items[].name/type/stats/modelVersions[].files[]`);
//! - `GET /api/models?search=&limit=` and `GET /api/models/{org}/{name}`
//!   answer in HuggingFace's shape (`id`, `downloads`, `likes`,
//!   `siblings[].rfilename`).
//!
//! Requests carrying an `Authorization` header are counted, so tests can
//! check that tokens reach only the service they belong to.

use serde_json::{Value, json};

use crate::api::json as json_reply;
use crate::body::Body;

/// The simulated catalog: `(name, type, file, size KB, downloads, rating)`.
const MODELS: &[(&str, &str, &str, u64, u64, f64)] = &[
    (
        "Realistic Vision",
        "Checkpoint",
        "realisticVision_v60.safetensors",
        2_082_642,
        950_000,
        4.9,
    ),
    (
        "DreamShaper",
        "Checkpoint",
        "dreamshaper_8.safetensors",
        2_082_642,
        800_000,
        4.8,
    ),
    ("Detail Tweaker", "LORA", "add_detail.safetensors", 36_984, 400_000, 4.7),
    ("Film Grain", "LORA", "film_grain.safetensors", 18_000, 12_000, 4.2),
];

fn param<'a>(query: &'a [(String, String)], name: &str) -> &'a str {
    query.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// Serves a search route, if `path` is one.
pub(crate) fn handle(path: &str, query: &[(String, String)], base: &str) -> Option<http::Response<Body>> {
    let limit = param(query, "limit").parse::<usize>().unwrap_or(20).min(100);
    if path == "/api/v1/models" {
        let q = param(query, "query").to_lowercase();
        let types = param(query, "types");
        let items: Vec<Value> = MODELS
            .iter()
            .enumerate()
            .filter(|(_, m)| m.0.to_lowercase().contains(&q) || m.2.to_lowercase().contains(&q))
            .filter(|(_, m)| types.is_empty() || m.1.eq_ignore_ascii_case(types))
            .take(limit)
            .map(|(i, m)| {
                json!({"id": i + 1, "name": m.0, "type": m.1, "stats": {"downloadCount": m.4, "rating": m.5},
                       "modelVersions": [{"id": 100 + i, "name": "v1", "files": [{
                           "name": m.2, "sizeKB": m.3, "downloadUrl": format!("{base}/api/download/models/{}", 100 + i)}]}]})
            })
            .collect();
        return Some(json_reply(
            200,
            &json!({"items": items, "metadata": {"totalItems": items.len()}}),
        ));
    }
    if path == "/api/models" {
        let q = param(query, "search").to_lowercase();
        let items: Vec<Value> = MODELS
            .iter()
            .filter(|m| m.0.to_lowercase().contains(&q) || m.2.to_lowercase().contains(&q))
            .take(limit)
            .map(|m| {
                json!({"id": format!("sim/{}", m.0.to_lowercase().replace(' ', "-")), "downloads": m.4,
                       "likes": (m.5 * 100.0) as u64, "pipeline_tag": "text-to-image"})
            })
            .collect();
        return Some(json_reply(200, &Value::Array(items)));
    }
    if let Some(id) = path.strip_prefix("/api/models/") {
        let model = MODELS
            .iter()
            .find(|m| format!("sim/{}", m.0.to_lowercase().replace(' ', "-")) == id)?;
        return Some(json_reply(
            200,
            &json!({"id": id, "siblings": [{"rfilename": "README.md"}, {"rfilename": model.2}]}),
        ));
    }
    None
}
