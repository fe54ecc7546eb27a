//! Following a submitted job: it is recorded, then the call returns at
//! once (the watchdog takes over) or waits for the job's end, with
//! progress notifications, the stream tool's events, the inline wedge
//! watchdog and a fallback to polling when the socket goes quiet. The
//! result names the job's outputs and, on failure, a trimmed execution
//! error ([`super::errors`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use comfy_audit::Record;
use comfy_client::JobStatus;
use serde_json::{Map, Value, json};
use tracing::Instrument;

use super::ToolContext;
use super::cancel::JobGuard;
use super::errors::execution_error;
use super::inspect::Warned;
use super::reporter::Reporter;
use super::watchdog::{is_activity, watch_detached};
use crate::tools::impls::{Output, ToolError};

/// How long the WebSocket may stay quiet during a wait before ComfyUI is
/// asked directly whether the job ended.
const SILENCE: Duration = Duration::from_secs(1);

/// Follows a queued job: records it, then returns at once or waits for
/// its end (progress, events, the wedge watchdog), on the backend that
/// took it.
#[allow(clippy::too_many_arguments, reason = "the call's parts, passed once from submit")]
pub(super) async fn follow(
    short: &str,
    mut job: comfy_client::Job,
    wait: bool,
    stream: bool,
    warnings: Warned,
    cx: &ToolContext,
    reporter: &Reporter,
    mut nodes: crate::tools::progress::RunProgress,
) -> Result<Output, ToolError> {
    let prompt_id = job.prompt_id().to_owned();
    crate::jobs::submitted(&prompt_id, &cx.jobs).await;
    let _ = cx
        .audit
        .write(Record::new(short, "submitted").prompt_id(prompt_id.as_str()))
        .await;
    let with_warnings = |mut v: Map<String, Value>| {
        warnings.add_to(&mut v);
        Output::Json(Value::Object(v))
    };
    if !wait {
        // Nobody waits on this job: the watchdog follows it in the
        // background, so it too cannot wedge a shared GPU.
        let stall = Duration::from_secs(cx.config.server.stall_timeout);
        if !stall.is_zero() {
            watch_detached(job, stall, cx.client(), Arc::clone(&cx.audit), short.to_owned(), nodes);
        }
        let mut v = Map::new();
        v.insert("status".to_owned(), Value::from("submitted"));
        v.insert("prompt_id".to_owned(), Value::from(prompt_id));
        return Ok(with_warnings(v));
    }
    let mut guard = JobGuard {
        client: cx.client(),
        prompt_id: prompt_id.clone(),
        armed: cx.config.server.interrupt_abandoned_jobs,
        pending: Arc::clone(&cx.cancels),
    };
    // Learn how this server cancels while the job runs (once per server),
    // so an abandoned call's cancel is a single request.
    if guard.armed {
        let client = cx.client();
        tokio::spawn(
            async move {
                client.cancel_method().await;
            }
            .in_current_span(),
        );
    }
    // End before the tool deadline so the caller gets a result to act on.
    let limit = Duration::from_secs(cx.config.comfyui.timeout_read).min(Duration::from_secs(
        cx.config.server.tool_deadline.saturating_sub(5).max(1),
    ));
    let started = Instant::now();
    let mut events = Vec::new();
    let mut silent = false;
    let mut lost = false;
    let multi = cx.pool.is_multi();
    // The wedge watchdog (`server.stall_timeout`): a job that has started
    // and then reports nothing for that long is interrupted, so it cannot
    // hold a shared GPU.
    let stall = Duration::from_secs(cx.config.server.stall_timeout);
    let mut stalled = false;
    {
        let mut running = false;
        let mut last_activity = Instant::now();
        let mut stream_events = job.events();
        let client = cx.client();
        let read = async {
            loop {
                let ev = match tokio::time::timeout(SILENCE, stream_events.next()).await {
                    Ok(Some(ev)) => ev,
                    Ok(None) => break,
                    Err(_) => {
                        // The socket has said nothing for a while: it may be
                        // connected but dead. Ask ComfyUI whether the job ended.
                        match client.job_info(&prompt_id).await {
                            // ComfyUI no longer knows the job (it restarted).
                            Ok(None) => {
                                lost = true;
                                break;
                            }
                            Ok(Some(j))
                                if matches!(
                                    j.get("status").and_then(Value::as_str),
                                    Some("completed" | "failed" | "cancelled")
                                ) =>
                            {
                                silent = true;
                                break;
                            }
                            Ok(Some(j)) => {
                                if j.get("status").and_then(Value::as_str) == Some("in_progress") {
                                    running = true;
                                }
                                if running && !stall.is_zero() && last_activity.elapsed() >= stall {
                                    stalled = true;
                                    break;
                                }
                                continue;
                            }
                            // With several backends, one that cannot be
                            // reached has lost the job (never resubmitted).
                            Err(comfy_client::Error::Connect { .. }) if multi && !cx.backend().probe().await => {
                                lost = true;
                                break;
                            }
                            Err(_) => continue,
                        }
                    }
                };
                if is_activity(&ev) {
                    running = true;
                    last_activity = Instant::now();
                }
                // Every node that starts, and steps inside a node.
                if let Some((progress, total, message)) = nodes.on_event(&ev) {
                    crate::tools::progress::note(&prompt_id, nodes.running());
                    reporter.report(progress, Some(total), message).await;
                }
                if stream && let Some(e) = event_json(&ev) {
                    events.push(e);
                }
            }
        };
        let _ = tokio::time::timeout(limit, read).await;
        crate::tools::progress::note(&prompt_id, None);
    }
    if stalled {
        guard.armed = false;
        let _ = cx.client().stop_job(&prompt_id).await;
        let progress = job.progress();
        let message = format!(
            "The job reported no progress for {} s (server.stall_timeout) and was interrupted{}",
            stall.as_secs(),
            progress
                .node
                .as_ref()
                .map(|n| format!(" while running node {n}"))
                .unwrap_or_default()
        );
        let _ = cx
            .audit
            .write(
                Record::new(short, "stalled")
                    .prompt_id(prompt_id.as_str())
                    .status("stalled")
                    .duration(started.elapsed())
                    .extra(json!({"stall_timeout_s": stall.as_secs(), "node": progress.node.as_deref()})),
            )
            .await;
        let mut v = Map::new();
        v.insert("prompt_id".to_owned(), Value::from(prompt_id));
        v.insert("status".to_owned(), Value::from("stalled"));
        if let Some(n) = &progress.node {
            v.insert("current_node".to_owned(), Value::from(n.as_str()));
        }
        v.insert(
            "elapsed_seconds".to_owned(),
            json!((started.elapsed().as_secs_f64() * 100.0).round() / 100.0),
        );
        v.insert("message".to_owned(), Value::from(message));
        return Ok(with_warnings(v));
    }
    if silent {
        job.follow_by_polling();
    }
    // By default the job outlives the wait (the peer's answer: `timeout`
    // with the prompt id to poll or cancel); `server.interrupt_on_wait_timeout`
    // stops it instead, so a job that never ends cannot hold the queue.
    job.set_cancel_on_timeout(cx.config.server.interrupt_on_wait_timeout);
    // A lost job is not waited for (nor resubmitted: POST /prompt is never
    // retried).
    let outcome = if lost {
        None
    } else {
        match job.wait(limit.saturating_sub(started.elapsed())).await {
            Ok(o) => Some(o),
            // As above: the job's backend is gone, so is the job.
            Err(comfy_client::Error::Connect { .. }) if multi && !cx.backend().probe().await => None,
            Err(e) => return Err(e.into()),
        }
    };
    guard.armed = false;
    let status = match outcome.as_ref().map(|o| &o.status) {
        Some(JobStatus::Completed) => "completed",
        Some(JobStatus::Error) => "error",
        Some(JobStatus::Interrupted) => "interrupted",
        Some(JobStatus::Timeout) => "timeout",
        Some(JobStatus::Lost) | None => "lost",
        _ => "unknown",
    };
    let elapsed = outcome.as_ref().map_or_else(|| started.elapsed(), |o| o.elapsed);
    let _ = cx
        .audit
        .write(
            Record::new(short, "completed")
                .prompt_id(prompt_id.as_str())
                .status(status)
                .duration(elapsed),
        )
        .await;
    let progress = job.progress();
    let mut v = Map::new();
    v.insert("prompt_id".to_owned(), Value::from(prompt_id.as_str()));
    v.insert("status".to_owned(), Value::from(status));
    if let Some(n) = &progress.node {
        v.insert("current_node".to_owned(), Value::from(n.as_str()));
    }
    if let Some(s) = progress.step {
        v.insert("step".to_owned(), Value::from(s));
    }
    if let Some(t) = progress.total {
        v.insert("total_steps".to_owned(), Value::from(t));
    }
    v.insert(
        "elapsed_seconds".to_owned(),
        json!((elapsed.as_secs_f64() * 100.0).round() / 100.0),
    );
    if status == "lost" {
        v.insert(
            "message".to_owned(),
            Value::from("ComfyUI no longer knows this job (it restarted or dropped it); it was not resubmitted"),
        );
    }
    // Each output also names its resource (`comfyui://output/{id}/{i}`,
    // `i` counting every file of the job), where the full file can be read.
    // A video, animation or audio file is marked `media` (`video`,
    // `audio`); comfyui_get_image describes it.
    let outputs: Vec<Value> = outcome
        .iter()
        .flat_map(|o| o.files.iter().enumerate().map(move |(i, f)| (o, i, f)))
        .filter(|(_, _, f)| crate::tools::media::LISTED_KEYS.contains(&f.media.as_str()))
        .map(|(o, i, f)| {
            let mut v = json!({"node_id": f.node_id, "filename": f.file.filename, "subfolder": f.file.subfolder,
                   "type": f.file.kind, "uri": format!("comfyui://output/{prompt_id}/{i}")});
            if let Some(m) = crate::tools::media::kind_of(&f.media, &f.file.filename, o.outputs.get(&f.node_id)) {
                v["media"] = Value::from(m);
            }
            v
        })
        .collect();
    if !outputs.is_empty() {
        v.insert("outputs".to_owned(), Value::Array(outputs));
    }
    if let Some(err) = outcome.and_then(|o| o.error).filter(|_| status == "error") {
        v.insert("error".to_owned(), execution_error(&err));
    }
    if stream {
        v.insert("events".to_owned(), Value::Array(events));
    }
    Ok(with_warnings(v))
}

/// A socket event as `{type, data}` for the stream tool.
fn event_json(ev: &comfy_client::Event) -> Option<Value> {
    use comfy_client::Event as E;
    Some(match ev {
        E::Status { queue_remaining } => {
            json!({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": queue_remaining}}}})
        }
        E::ExecutionStart { prompt_id } => json!({"type": "execution_start", "data": {"prompt_id": prompt_id}}),
        E::ExecutionCached { prompt_id, nodes } => {
            json!({"type": "execution_cached", "data": {"prompt_id": prompt_id, "nodes": nodes}})
        }
        E::Executing { prompt_id, node } => {
            json!({"type": "executing", "data": {"prompt_id": prompt_id, "node": node}})
        }
        E::Progress {
            prompt_id,
            node,
            value,
            max,
        } => json!({"type": "progress", "data": {"prompt_id": prompt_id, "node": node, "value": value, "max": max}}),
        E::Executed {
            prompt_id,
            node,
            output,
        } => json!({"type": "executed", "data": {"prompt_id": prompt_id, "node": node, "output": output}}),
        E::ExecutionSuccess { prompt_id } => json!({"type": "execution_success", "data": {"prompt_id": prompt_id}}),
        E::ExecutionError { data, .. } => json!({"type": "execution_error", "data": data}),
        E::ExecutionInterrupted { data, .. } => json!({"type": "execution_interrupted", "data": data}),
        _ => return None,
    })
}
