//! The wedge watchdog (`server.stall_timeout`) for jobs submitted without
//! `wait`: a background task follows the job's events until it ends, and
//! interrupts it (with a `stalled` audit record) when it has started and
//! then reports nothing for that long, so a job nobody waits on cannot
//! hold a shared GPU either. A waiting call runs the same check inline
//! ([`super::wait`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use comfy_audit::Record;
use serde_json::{Value, json};
use tracing::Instrument;

/// Whether an event shows a job doing something (for the wedge watchdog).
pub(super) fn is_activity(ev: &comfy_client::Event) -> bool {
    matches!(
        ev,
        comfy_client::Event::ExecutionStart { .. }
            | comfy_client::Event::Executing { .. }
            | comfy_client::Event::Progress { .. }
            | comfy_client::Event::Executed { .. }
            | comfy_client::Event::ExecutionCached { .. }
    )
}

/// Most jobs the background watchdog follows at once; more go unwatched.
const MAX_WATCHED: usize = 256;

static WATCHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts a watched job for as long as it lives.
struct WatchSlot;

impl WatchSlot {
    fn take() -> Option<Self> {
        use std::sync::atomic::Ordering;
        let mut n = WATCHED.load(Ordering::Relaxed);
        loop {
            if n >= MAX_WATCHED {
                return None;
            }
            match WATCHED.compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(Self),
                Err(now) => n = now,
            }
        }
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        WATCHED.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The wedge watchdog for a job submitted without `wait`: follows its
/// events in a background task until it ends, and interrupts it (with a
/// `stalled` audit record) when it has started and then reports nothing
/// for `stall`. Only jobs followed over the WebSocket are watched; at most
/// [`MAX_WATCHED`] at once.
pub(super) fn watch_detached(
    mut job: comfy_client::Job,
    stall: Duration,
    client: comfy_client::Client,
    audit: Arc<comfy_audit::AuditLog>,
    short: String,
    mut nodes: crate::tools::progress::RunProgress,
) {
    let Some(slot) = WatchSlot::take() else {
        tracing::debug!(
            "watchdog: {MAX_WATCHED} jobs already watched; {} is not",
            job.prompt_id()
        );
        return;
    };
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        let _slot = slot;
        let prompt_id = job.prompt_id().to_owned();
        let started = Instant::now();
        let mut running = false;
        let mut last_activity = Instant::now();
        let mut events = job.events();
        // No polling while the job waits or runs with events flowing: only
        // when a started job has been quiet for `stall` is ComfyUI asked
        // whether it ended without telling the socket.
        loop {
            match tokio::time::timeout(Duration::from_secs(5).min(stall), events.next()).await {
                // The job ended (or is not followed over the socket).
                Ok(None) => {
                    crate::tools::progress::note(&prompt_id, None);
                    return;
                }
                Ok(Some(ev)) => {
                    if nodes.on_event(&ev).is_some() {
                        crate::tools::progress::note(&prompt_id, nodes.running());
                    }
                    if is_activity(&ev) {
                        running = true;
                        last_activity = Instant::now();
                    }
                }
                Err(_) if running && last_activity.elapsed() >= stall => match client.job_info(&prompt_id).await {
                    Ok(Some(j)) if j.get("status").and_then(Value::as_str) == Some("in_progress") => break,
                    // Ended, forgotten or unreachable: nothing to stop.
                    _ => return,
                },
                Err(_) => {}
            }
        }
        crate::tools::progress::note(&prompt_id, None);
        let _ = client.stop_job(&prompt_id).await;
        let _ = audit
            .write(
                Record::new(&short, "stalled")
                    .prompt_id(prompt_id.as_str())
                    .status("stalled")
                    .duration(started.elapsed())
                    .extra(json!({"stall_timeout_s": stall.as_secs(), "node": job.progress().node.as_deref(), "waited": false})),
            )
            .await;
    }.in_current_span());
}
