//! `/api/jobs` and `/api/jobs/{id}`: ComfyUI 0.8.0's job view over the queue
//! and the history.

use serde_json::{Map, Value, json};

use crate::api::{json as json_resp, param};
use crate::body::Body;
use crate::state::{Job, Shared};
use http::Response;

const STATUSES: &[&str] = &["pending", "in_progress", "completed", "failed"];
/// 0.33.0 adds `cancelled` (an interrupted job).
const STATUSES_0_33: &[&str] = &["pending", "in_progress", "completed", "failed", "cancelled"];

fn queued(job: &Job, status: &str) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(job.id));
    m.insert("status".into(), json!(status));
    m.insert("priority".into(), json!(job.number));
    if let Some(t) = job.create_time() {
        m.insert("create_time".into(), json!(t));
    }
    m.insert("outputs_count".into(), json!(0));
    if let Some(w) = job.extra_data.pointer("/extra_pnginfo/workflow/id") {
        m.insert("workflow_id".into(), w.clone());
    }
    Value::Object(m)
}

fn message_time(entry: &Value, events: &[&str]) -> Option<Value> {
    entry.pointer("/status/messages")?.as_array()?.iter().find_map(|m| {
        let ev = m.get(0)?.as_str()?;
        events
            .contains(&ev)
            .then(|| m.get(1)?.get("timestamp").cloned())
            .flatten()
    })
}

fn previewable(media: &str, item: &Value) -> bool {
    let format = item.get("format").and_then(Value::as_str).unwrap_or("");
    let name = item
        .get("filename")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(media, "images" | "video" | "audio")
        || format.starts_with("video/")
        || format.starts_with("audio/")
        || [".obj", ".fbx", ".gltf", ".glb"].iter().any(|e| name.ends_with(e))
}

fn from_history(id: &str, entry: &Value, full: bool, newer: bool) -> Value {
    let prompt = entry.get("prompt");
    let extra = prompt.and_then(|p| p.get(3));
    let interrupted = entry
        .pointer("/status/messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|m| m.get(0).and_then(Value::as_str) == Some("execution_interrupted"));
    let status = match entry.pointer("/status/status_str").and_then(Value::as_str) {
        // 0.33.0 tells an interrupted job from a failed one.
        Some("error") if newer && interrupted => "cancelled",
        Some("error") => "failed",
        _ => "completed",
    };
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("status".into(), json!(status));
    if let Some(p) = prompt.and_then(|p| p.get(0)) {
        m.insert("priority".into(), p.clone());
    }
    if let Some(t) = extra.and_then(|e| e.get("create_time")) {
        m.insert("create_time".into(), t.clone());
    }
    if let Some(t) = message_time(entry, &["execution_start"]) {
        m.insert("execution_start_time".into(), t);
    }
    if let Some(t) = message_time(
        entry,
        &["execution_success", "execution_error", "execution_interrupted"],
    ) {
        m.insert("execution_end_time".into(), t);
    }
    if let Some(err) = entry
        .pointer("/status/messages")
        .and_then(Value::as_array)
        .and_then(|ms| {
            ms.iter()
                .find(|m| m.get(0).and_then(Value::as_str) == Some("execution_error"))
                .and_then(|m| m.get(1))
                .cloned()
        })
    {
        m.insert("execution_error".into(), err);
    }
    let outputs = entry
        .get("outputs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut count = 0;
    let mut previewable_count = 0;
    let mut first_output = None;
    let mut first_any = None;
    for (node, out) in &outputs {
        let Some(out) = out.as_object() else { continue };
        for (media, items) in out {
            if media == "animated" {
                continue;
            }
            let Some(items) = items.as_array() else { continue };
            for item in items.iter().filter(|i| i.is_object()) {
                count += 1;
                if previewable(media, item) {
                    previewable_count += 1;
                    let mut p = item.as_object().cloned().unwrap_or_default();
                    p.insert("nodeId".into(), json!(node));
                    p.insert("mediaType".into(), json!(media));
                    let p = Value::Object(p);
                    if first_output.is_none() && item.get("type").and_then(Value::as_str) == Some("output") {
                        first_output = Some(p.clone());
                    }
                    if first_any.is_none() {
                        first_any = Some(p);
                    }
                }
            }
        }
    }
    m.insert("outputs_count".into(), json!(count));
    if newer {
        m.insert("previewable_outputs_count".into(), json!(previewable_count));
    }
    if let Some(p) = first_output.or(first_any) {
        m.insert("preview_output".into(), p);
    }
    if let Some(w) = extra.and_then(|e| e.pointer("/extra_pnginfo/workflow/id")) {
        m.insert("workflow_id".into(), w.clone());
    }
    if full {
        m.insert("outputs".into(), Value::Object(outputs));
        if let Some(s) = entry.get("status") {
            m.insert("execution_status".into(), s.clone());
        }
        m.insert(
            "workflow".into(),
            json!({"prompt": prompt.and_then(|p| p.get(2)), "extra_data": extra}),
        );
    }
    Value::Object(m)
}

fn bad(msg: &str) -> Response<Body> {
    json_resp(400, &json!({"error": msg}))
}

fn py_int(s: &str) -> Option<i64> {
    let t = s.trim();
    if t.is_empty() || t.starts_with('_') || t.ends_with('_') {
        return None;
    }
    t.replace('_', "").parse().ok()
}

/// `GET /api/jobs`.
pub(crate) fn list(shared: &Shared, q: &[(String, String)]) -> Response<Body> {
    let mut wanted: Option<Vec<String>> = None;
    if let Some(s) = param(q, "status").filter(|s| !s.is_empty()) {
        let parts: Vec<String> = s
            .split(',')
            .map(|p| p.trim().to_lowercase())
            .filter(|p| !p.is_empty())
            .collect();
        let statuses = if shared.version.newer() {
            STATUSES_0_33
        } else {
            STATUSES
        };
        let invalid: Vec<&String> = parts.iter().filter(|p| !statuses.contains(&p.as_str())).collect();
        if !invalid.is_empty() {
            let list = invalid.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            return bad(&format!(
                "Invalid status value(s): {list}. Valid values: {}",
                statuses.join(", ")
            ));
        }
        wanted = Some(parts);
    }
    let sort_by = param(q, "sort_by").unwrap_or("created_at").to_lowercase();
    if !matches!(sort_by.as_str(), "created_at" | "execution_duration") {
        return bad("sort_by must be 'created_at' or 'execution_duration'");
    }
    let sort_order = param(q, "sort_order").unwrap_or("desc").to_lowercase();
    if !matches!(sort_order.as_str(), "asc" | "desc") {
        return bad("sort_order must be 'asc' or 'desc'");
    }
    let limit = match param(q, "limit") {
        None => None,
        Some(s) => match py_int(s) {
            None => return bad("limit must be an integer"),
            Some(l) if l <= 0 => return bad("limit must be a positive integer"),
            Some(l) => Some(l as usize),
        },
    };
    let offset = match param(q, "offset") {
        None => 0,
        Some(s) => match py_int(s) {
            None => return bad("offset must be an integer"),
            Some(o) => o.max(0) as usize,
        },
    };
    let workflow = param(q, "workflow_id").filter(|s| !s.is_empty());
    let mut jobs = Vec::new();
    {
        let st = shared.lock();
        jobs.extend(st.running.iter().map(|j| queued(j, "in_progress")));
        jobs.extend(st.pending.iter().map(|j| queued(j, "pending")));
        jobs.extend(
            st.history
                .iter()
                .map(|(id, e)| from_history(id, e, false, shared.version.newer())),
        );
    }
    jobs.retain(|j| {
        let status = j.get("status").and_then(Value::as_str).unwrap_or("");
        wanted.as_ref().is_none_or(|w| w.iter().any(|s| s == status))
            && workflow.is_none_or(|w| j.get("workflow_id").and_then(Value::as_str) == Some(w))
    });
    let key = |j: &Value| -> f64 {
        if sort_by == "created_at" {
            j.get("create_time").and_then(Value::as_f64).unwrap_or(0.0)
        } else {
            match (
                j.get("execution_start_time").and_then(Value::as_f64),
                j.get("execution_end_time").and_then(Value::as_f64),
            ) {
                (Some(s), Some(e)) if s != 0.0 && e != 0.0 => e - s,
                _ => 0.0,
            }
        }
    };
    if sort_order == "desc" {
        jobs.sort_by(|a, b| key(b).total_cmp(&key(a)));
    } else {
        jobs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    }
    let total = jobs.len();
    let page: Vec<Value> = jobs
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    let has_more = offset + page.len() < total;
    json_resp(
        200,
        &json!({"jobs": page, "pagination": {"offset": offset, "limit": limit, "total": total, "has_more": has_more}}),
    )
}

/// `GET /api/jobs/{id}`.
pub(crate) fn one(shared: &Shared, id: &str) -> Response<Body> {
    let st = shared.lock();
    if let Some(e) = st.history.get(id) {
        return json_resp(200, &from_history(id, e, true, shared.version.newer()));
    }
    if let Some(j) = st.running.as_ref().filter(|j| j.id == id) {
        return json_resp(200, &queued(j, "in_progress"));
    }
    if let Some(j) = st.pending.iter().find(|j| j.id == id) {
        return json_resp(200, &queued(j, "pending"));
    }
    json_resp(404, &json!({"error": "Job not found"}))
}
