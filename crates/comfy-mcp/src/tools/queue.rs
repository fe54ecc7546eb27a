//! The queue and job tools: ComfyUI's queue and history, one job's state
//! and progress, and the ways to stop jobs (cancel by id, interrupt, clear
//! the queue). Kept apart from the other read-only tools because they share
//! the job-shaped answers (the peer's statuses, newest-first history pages)
//! and the prompt id checks.

use comfy_client::{Cancelled, Client};
use serde_json::{Map, Value, json};

use super::impls::{Args, Output, ToolError, bool_arg, check_prompt_id, no_job, prompt_id, str_arg, u64_arg};

/// Most prompt ids one `comfyui_cancel_jobs` call takes (each may be a
/// request to ComfyUI).
const MAX_CANCEL_IDS: usize = 1000;

/// Runs queue or job tool `name` against `c`.
///
/// # Errors
/// [`ToolError`] with the reason.
pub(super) async fn run(name: &str, args: &Args, c: &Client) -> Result<Output, ToolError> {
    match name {
        "comfyui_get_queue" => Ok(Output::Json(c.queue_raw().await?)),
        "comfyui_get_queue_status" => Ok(Output::Json(c.prompt_status().await?)),
        "comfyui_get_history" => history(args, c).await,
        "comfyui_get_job" => {
            let id = prompt_id(args, "prompt_id")?;
            match c.job_info(&id).await? {
                Some(job) => Ok(Output::Json(job)),
                None => Err(ToolError::failed(no_job(&id))),
            }
        }
        "comfyui_list_jobs" => {
            let mut query: Vec<(&str, String)> = vec![
                ("sort_by", str_arg(args, "sort_by").to_owned()),
                ("sort_order", str_arg(args, "sort_order").to_owned()),
                ("offset", u64_arg(args, "offset").unwrap_or(0).to_string()),
            ];
            if let Some(statuses) = args.get("status").and_then(Value::as_array) {
                let list: Vec<&str> = statuses.iter().filter_map(Value::as_str).collect();
                query.push(("status", list.join(",")));
            }
            if let Some(w) = args.get("workflow_id").and_then(Value::as_str) {
                query.push(("workflow_id", w.to_owned()));
            }
            if let Some(l) = u64_arg(args, "limit") {
                query.push(("limit", l.to_string()));
            }
            Ok(Output::Json(c.jobs(&query).await?))
        }
        "comfyui_get_progress" => progress(args, c).await,
        "comfyui_cancel_job" => {
            let id = prompt_id(args, "prompt_id")?;
            // By id where the server can (`comfy_client::CancelMethod`).
            if !c.cancel_job(&id).await?.acted() {
                return Err(ToolError::failed(format!(
                    "job {id} is neither running nor queued (it may have finished: see comfyui_get_job)"
                )));
            }
            Ok(Output::Text(format!("Cancelled job {id}")))
        }
        "comfyui_interrupt" => {
            if args.get("prompt_id").is_some_and(|v| !v.is_null()) {
                let id = prompt_id(args, "prompt_id")?;
                c.interrupt(Some(&id)).await?;
                Ok(Output::Text(format!(
                    "Requested interrupt for prompt {id} (no-op if not running)"
                )))
            } else {
                c.interrupt(None).await?;
                Ok(Output::Text("Interrupted current execution (global)".to_owned()))
            }
        }
        "comfyui_clear_queue" => {
            let (running, pending) = (bool_arg(args, "clear_running"), bool_arg(args, "clear_pending"));
            if pending {
                c.clear_queue().await?;
            }
            if running {
                c.interrupt(None).await?;
            }
            let py = |b: bool| if b { "True" } else { "False" };
            Ok(Output::Text(format!(
                "Queue cleared (running={}, pending={})",
                py(running),
                py(pending)
            )))
        }
        "comfyui_cancel_jobs" => {
            let ids: Vec<String> = args
                .get("job_ids")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect())
                .unwrap_or_default();
            if ids.is_empty() {
                return Err(ToolError::rejected("`job_ids` must list at least one prompt id"));
            }
            if ids.len() > MAX_CANCEL_IDS {
                return Err(ToolError::rejected(format!(
                    "`job_ids` lists {} ids; at most {MAX_CANCEL_IDS} per call",
                    ids.len()
                )));
            }
            let mut checked = Vec::with_capacity(ids.len());
            for id in &ids {
                checked.push(check_prompt_id(id, "prompt_id")?);
            }
            // Each id once (a second cancel of the same job would find it gone).
            let mut seen = std::collections::HashSet::with_capacity(checked.len());
            let distinct: Vec<String> = checked.iter().filter(|id| seen.insert(id.as_str())).cloned().collect();
            let outcomes = c.cancel_jobs(&distinct).await?;
            let mut result = Map::new();
            for (id, outcome) in distinct.iter().zip(outcomes) {
                let state = match outcome {
                    Cancelled::Interrupted => "interrupted",
                    Cancelled::Dequeued => "removed from the queue",
                    Cancelled::NotActive => "not queued or running",
                    _ => "cancelled",
                };
                result.insert(id.clone(), Value::from(state));
            }
            let cancelled = result.values().filter(|v| *v != "not queued or running").count();
            Ok(Output::Json(
                json!({"cancelled": cancelled, "job_ids": checked, "result": result}),
            ))
        }
        other => Err(ToolError::rejected(format!("Unknown tool: '{other}'"))),
    }
}

/// `comfyui_get_history`: newest first, `offset` counted from the newest.
///
/// ComfyUI's `/history?max_items=N` answers the newest N entries oldest
/// first, and its `offset` counts from the oldest, so both are turned
/// around here: ask for the newest `offset + limit + 1`, reverse them, skip
/// `offset`, keep `limit`. The extra entry says whether there are more.
async fn history(args: &Args, c: &Client) -> Result<Output, ToolError> {
    let limit = u64_arg(args, "limit").unwrap_or(25);
    let offset = u64_arg(args, "offset").unwrap_or(0);
    let max = u32::try_from(offset.saturating_add(limit).saturating_add(1)).unwrap_or(u32::MAX);
    let entries = c.history(Some(max), None).await?;
    let seen = entries.len() as u64;
    let items: Vec<Value> = page_newest_first(entries.into_iter().collect(), offset, limit)
        .map(|(id, mut entry)| {
            if let Value::Object(m) = &mut entry {
                m.insert("prompt_id".to_owned(), Value::from(id));
            }
            entry
        })
        .collect();
    let count = items.len() as u64;
    let has_more = seen > offset.saturating_add(limit);
    // Fewer entries than asked for: that is all of them.
    let total = if has_more { Value::Null } else { Value::from(seen) };
    Ok(Output::Json(json!({
        "items": items,
        "count": count,
        "offset": offset,
        "limit": limit,
        "has_more": has_more,
        "total": total,
    })))
}

/// The `[offset, offset + limit)` page of `entries` (oldest first, as
/// ComfyUI lists them) counted from the newest.
fn page_newest_first<T>(entries: Vec<T>, offset: u64, limit: u64) -> impl Iterator<Item = T> {
    entries
        .into_iter()
        .rev()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
}

/// `/api/jobs` status → the peer's progress status. An interrupted job is
/// `failed` on ComfyUI 0.8.0 (its messages end in `execution_interrupted`)
/// and `cancelled` on 0.33.0: `interrupted` on both.
fn job_status(job: &Value) -> &'static str {
    match job.get("status").and_then(Value::as_str).unwrap_or_default() {
        "completed" => "completed",
        "failed" if was_interrupted(job) => "interrupted",
        "failed" => "error",
        "cancelled" => "interrupted",
        "in_progress" => "running",
        "pending" => "queued",
        _ => "unknown",
    }
}

/// Whether a job's status messages record an interrupt.
fn was_interrupted(job: &Value) -> bool {
    job.pointer("/execution_status/messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|m| m.get(0).and_then(Value::as_str) == Some("execution_interrupted"))
}

/// Outputs of a job as `{node_id, filename, subfolder}`, and `media`
/// (`video` or `audio`) for a video, animation or audio file.
fn outputs_of(job: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(outputs) = job.get("outputs").and_then(Value::as_object) {
        for l in super::media::listed(outputs) {
            let mut v = json!({
                "node_id": l.node_id,
                "filename": l.item.get("filename").cloned().unwrap_or(Value::Null),
                "subfolder": l.item.get("subfolder").cloned().unwrap_or(Value::from("")),
            });
            if let Some(m) = l.media {
                v["media"] = Value::from(m);
            }
            out.push(v);
        }
    }
    out
}

async fn progress(args: &Args, c: &Client) -> Result<Output, ToolError> {
    let id = prompt_id(args, "prompt_id")?;
    let unknown = || Output::Json(json!({"prompt_id": id, "status": "unknown"}));
    let Ok(Some(job)) = c.job_info(&id).await else {
        return Ok(unknown());
    };
    let status = job_status(&job);
    let mut state = Map::new();
    state.insert("prompt_id".to_owned(), Value::from(id.as_str()));
    state.insert("status".to_owned(), Value::from(status));
    // The node running, when this server follows the job's events.
    if status == "running"
        && let Some(node) = super::progress::running_node(&id)
    {
        state.insert("current_node".to_owned(), Value::from(node));
    }
    if status == "queued"
        && let Ok(queue) = c.queue().await
        && let Some(pos) = queue.pending.iter().position(|q| q.prompt_id == id)
    {
        state.insert("queue_position".to_owned(), Value::from(pos + 1));
    }
    if let (Some(start), Some(end)) = (
        job.get("execution_start_time").and_then(Value::as_f64),
        job.get("execution_end_time").and_then(Value::as_f64),
    ) {
        state.insert(
            "elapsed_seconds".to_owned(),
            Value::from(((end - start) / 1000.0 * 100.0).round() / 100.0),
        );
    }
    let outputs = outputs_of(&job);
    if !outputs.is_empty() {
        state.insert("outputs".to_owned(), Value::Array(outputs));
    }
    Ok(Output::Json(Value::Object(state)))
}
