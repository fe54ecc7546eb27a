//! MCP tasks (the `io.modelcontextprotocol/tasks` extension, SEP-2663):
//! with `tasks.enabled` and a client that supports the extension, a
//! generation tool asked to wait runs as a task: the call returns a task
//! id at once, the client polls `tasks/get` for its status and final
//! result, and `tasks/cancel` stops it (interrupting the ComfyUI job).
//!
//! A task runs on the replica that created it and is kept there in memory
//! (finished ones are dropped an hour after they end). With
//! `state.redis_url`, its status and result are also written to Redis
//! (`{prefix}:task:{id}`, same lifetime), so `tasks/get` works through any
//! replica, and `tasks/cancel` through another replica sets a cancel flag
//! that the running replica reads within half a second.
//!
//! A task belongs to the principal whose token started it (over HTTP with
//! authentication): `tasks/get` and `tasks/cancel` from any other principal
//! get the same "no task" answer as an unknown id, here and through Redis
//! (the owner is stored with the task). Task ids are UUID v4 from the
//! operating system's CSPRNG (`getrandom`), so they cannot be predicted
//! from ids seen earlier.
//!
//! A task may wait for input ([`Tasks::wait_for_input`]): it is then
//! `input_required`, `tasks/get` shows its outstanding `inputRequests`,
//! and the client answers through `tasks/update` ([`Tasks::update`]),
//! all at once or some at a time. Only the task's principal may answer;
//! an answer to an outstanding request must be well-formed for it
//! ([`crate::consent::check_answer`]), or the whole update is refused;
//! answers to keys not outstanding are ignored (SEP-2663). A task waits at most `tasks.input_timeout` seconds, then fails.
//! Through Redis the outstanding requests are in the task's record and an
//! answer given at another replica is written there (`answer:{key}`),
//! where the running replica reads it within half a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rmcp::model::{
    CallToolResult, DetailedTask, InputRequests, InputResponses, JsonObject, Task, TaskPayload, TaskStatus,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::caller::Principal;
use crate::state::Shared;

/// How long a finished task is kept for the client to read.
pub const KEEP: Duration = Duration::from_hours(1);

/// How long a working task is kept in Redis (renewed when it ends): longer
/// than any tool may run.
const WORKING_TTL: Duration = Duration::from_hours(24);

/// How often a working task looks for a cancel flag set through another
/// replica (and a waiting one for answers given there).
const CANCEL_POLL: Duration = Duration::from_millis(500);

struct Entry {
    /// The principal that started it (`None` without authentication).
    owner: Option<Principal>,
    created: String,
    updated: String,
    status: TaskStatus,
    result: Option<CallToolResult>,
    cancel: CancellationToken,
    ended: Option<Instant>,
    /// The requests still unanswered (by the keys the client sees) while
    /// the task waits for input.
    pending: InputRequests,
    /// The answers given so far in this round.
    answers: InputResponses,
    /// Wakes the task waiting for input when an answer comes.
    wake: Arc<Notify>,
}

/// The task store: this replica's tasks, shared through Redis when set.
#[derive(Clone)]
pub struct Tasks {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
    shared: Option<Arc<Shared>>,
    /// Longest wait for input.
    input_timeout: Duration,
}

impl Default for Tasks {
    fn default() -> Self {
        Self::new(None, crate::consent::STATE_TTL)
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn status_name(s: TaskStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn ttl(d: Duration) -> u64 {
    d.as_secs()
}

/// `tasks/get`'s answer for a task in `status` with `result` (or, waiting
/// for input, its outstanding requests `pending`).
fn detailed(
    id: &str,
    status: TaskStatus,
    created: &str,
    updated: &str,
    result: Option<&CallToolResult>,
    pending: Option<&InputRequests>,
) -> DetailedTask {
    let task = Task::new(id, status, created.to_owned(), updated.to_owned()).with_poll_interval_ms(1000);
    let as_object = |r: &CallToolResult| -> JsonObject {
        match serde_json::to_value(r) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => JsonObject::new(),
        }
    };
    let payload = match (status, result) {
        (TaskStatus::InputRequired, _) => TaskPayload::InputRequired {
            input_requests: pending.cloned().unwrap_or_default(),
        },
        (TaskStatus::Completed, Some(r)) => TaskPayload::Completed { result: as_object(r) },
        (TaskStatus::Failed, Some(r)) => {
            let mut error = JsonObject::new();
            error.insert("code".to_owned(), serde_json::Value::from(-32603));
            let message = r
                .content
                .iter()
                .find_map(|c| c.as_text().map(|t| t.text.clone()))
                .unwrap_or_default();
            error.insert("message".to_owned(), serde_json::Value::from(message));
            TaskPayload::Failed { error }
        }
        (TaskStatus::Cancelled, _) => TaskPayload::Cancelled,
        _ => TaskPayload::Working,
    };
    DetailedTask::new(task, payload)
}

/// A new task id: a UUID v4 from the operating system's CSPRNG.
fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether a task stored in Redis with `fields` is `caller`'s (its
/// `owner` field is empty for a task started without authentication).
fn owned_by(fields: &HashMap<String, String>, caller: Option<&Principal>) -> bool {
    let owner = fields.get("owner").map_or("", String::as_str);
    owner == caller.map_or("", |p| &*p.0)
}

impl Tasks {
    /// A store shared through `shared` when set, whose tasks wait for
    /// input at most `input_timeout`.
    #[must_use]
    pub fn new(shared: Option<Arc<Shared>>, input_timeout: Duration) -> Self {
        Self {
            inner: Arc::default(),
            shared,
            input_timeout,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new working task of `owner`; returns its id, its
    /// description and the token that cancels it.
    pub async fn create(&self, owner: Option<Principal>) -> (String, Task, CancellationToken) {
        let id = new_id();
        let cancel = CancellationToken::new();
        let stamp = now();
        {
            let mut map = self.map();
            map.retain(|_, e| e.ended.is_none_or(|t| t.elapsed() < KEEP));
            map.insert(
                id.clone(),
                Entry {
                    owner: owner.clone(),
                    created: stamp.clone(),
                    updated: stamp.clone(),
                    status: TaskStatus::Working,
                    result: None,
                    cancel: cancel.clone(),
                    ended: None,
                    pending: InputRequests::new(),
                    answers: InputResponses::new(),
                    wake: Arc::new(Notify::new()),
                },
            );
        }
        if let Some(shared) = &self.shared {
            let working = status_name(TaskStatus::Working);
            let owner = owner.as_ref().map_or("", |p| &*p.0);
            let fields = [
                ("status", working.as_str()),
                ("created", stamp.as_str()),
                ("updated", stamp.as_str()),
                ("owner", owner),
            ];
            match shared.hash_set("task", &id, &fields, ttl(WORKING_TTL)).await {
                Ok(()) => self.watch_for_cancel(&id, &cancel),
                Err(e) => tracing::warn!("task {id}: not shared through Redis: {e}"),
            }
        }
        let task = Task::new(id.clone(), TaskStatus::Working, stamp.clone(), stamp)
            .with_poll_interval_ms(1000)
            .with_ttl_ms(u64::try_from(KEEP.as_millis()).unwrap_or(u64::MAX));
        (id, task, cancel)
    }

    /// Follows the task's cancel flag in Redis until the task ends.
    fn watch_for_cancel(&self, id: &str, cancel: &CancellationToken) {
        let (Some(shared), Ok(rt)) = (self.shared.clone(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let (id, cancel, tasks) = (id.to_owned(), cancel.clone(), Arc::downgrade(&self.inner));
        rt.spawn(async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(CANCEL_POLL) => {}
                }
                let Some(tasks) = tasks.upgrade() else { return };
                let ended = tasks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&id)
                    .is_none_or(|e| e.ended.is_some());
                if ended {
                    return;
                }
                if let Ok(fields) = shared.hash_get("task", &id).await
                    && fields.get("cancel").map(String::as_str) == Some("1")
                {
                    cancel.cancel();
                    return;
                }
            }
        });
    }

    /// Records the end of task `id`: cancelled, or completed with
    /// `result` (a tool error too: SEP-2663 keeps `failed` for errors of
    /// the protocol, [`Tasks::fail`]).
    pub async fn finish(&self, id: &str, result: CallToolResult, cancelled: bool) {
        let status = if cancelled {
            TaskStatus::Cancelled
        } else {
            TaskStatus::Completed
        };
        self.end(id, status, result).await;
    }

    /// Records that task `id` failed with a protocol error (`message`):
    /// `tasks/get` then answers `failed` with the JSON-RPC error.
    pub async fn fail(&self, id: &str, message: &str) {
        self.end(
            id,
            TaskStatus::Failed,
            CallToolResult::error(vec![rmcp::model::ContentBlock::text(message)]),
        )
        .await;
    }

    async fn end(&self, id: &str, status: TaskStatus, result: CallToolResult) {
        let updated = now();
        let text = self
            .shared
            .is_some()
            .then(|| serde_json::to_string(&result).unwrap_or_default());
        {
            let mut map = self.map();
            if let Some(e) = map.get_mut(id) {
                e.status = status;
                e.result = Some(result);
                e.updated.clone_from(&updated);
                e.ended = Some(Instant::now());
            }
        }
        if let (Some(shared), Some(text)) = (&self.shared, text) {
            let name = status_name(status);
            let fields = [
                ("status", name.as_str()),
                ("updated", updated.as_str()),
                ("result", text.as_str()),
            ];
            if let Err(e) = shared.hash_set("task", id, &fields, ttl(KEEP)).await {
                tracing::warn!("task {id}: its end could not be shared through Redis: {e}");
            }
        }
    }

    /// The task's state for `tasks/get` by `caller`: this replica's, else
    /// Redis's; `None` when there is no such task or it is not the caller's.
    pub async fn get(&self, id: &str, caller: Option<&Principal>) -> Option<DetailedTask> {
        {
            let map = self.map();
            if let Some(e) = map.get(id) {
                if e.owner.as_ref() != caller {
                    return None;
                }
                let pending = (e.status == TaskStatus::InputRequired).then_some(&e.pending);
                return Some(detailed(
                    id,
                    e.status,
                    &e.created,
                    &e.updated,
                    e.result.as_ref(),
                    pending,
                ));
            }
        }
        let fields = self.shared.as_ref()?.hash_get("task", id).await.ok()?;
        if !owned_by(&fields, caller) {
            return None;
        }
        let status: TaskStatus =
            serde_json::from_value(serde_json::Value::from(fields.get("status")?.as_str())).ok()?;
        let result: Option<CallToolResult> = fields.get("result").and_then(|r| serde_json::from_str(r).ok());
        let pending = (status == TaskStatus::InputRequired).then(|| input::outstanding(&fields));
        // Every question answered through Redis: working again, though the
        // running replica has not picked the answers up yet.
        let status = match &pending {
            Some(p) if p.is_empty() => TaskStatus::Working,
            _ => status,
        };
        let pending = pending.filter(|p| !p.is_empty());
        Some(detailed(
            id,
            status,
            fields.get("created").map_or("", String::as_str),
            fields.get("updated").map_or("", String::as_str),
            result.as_ref(),
            pending.as_ref(),
        ))
    }

    /// Cancels task `id` for `caller` (here, or through Redis on the
    /// replica running it); false when there is no such task or it is not
    /// the caller's.
    pub async fn cancel(&self, id: &str, caller: Option<&Principal>) -> bool {
        {
            let map = self.map();
            if let Some(e) = map.get(id) {
                if e.owner.as_ref() != caller {
                    return false;
                }
                e.cancel.cancel();
                return true;
            }
        }
        let Some(shared) = &self.shared else {
            return false;
        };
        match shared.hash_get("task", id).await {
            Ok(fields) if fields.contains_key("status") && owned_by(&fields, caller) => shared
                .hash_set("task", id, &[("cancel", "1")], ttl(WORKING_TTL))
                .await
                .is_ok(),
            _ => false,
        }
    }
}

mod input;
#[cfg(test)]
mod tests;

pub use input::{Input, MAX_INPUT_ROUNDS, UpdateError};
