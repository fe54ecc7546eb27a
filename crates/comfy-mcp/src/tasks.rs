//! MCP tasks (the `io.modelcontextprotocol/tasks` extension, SEP-2663):
//! with `tasks.enabled` and a client that supports the extension, a
//! generation tool asked to wait runs as a task: the call returns a task
//! id at once, the client polls `tasks/get` for its status and final
//! result, and `tasks/cancel` stops it (interrupting the ComfyUI job).
//! Tasks live in memory (`tasks.backend_url: memory://`) and last as long
//! as the process; finished ones are dropped an hour after they end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rmcp::model::{CallToolResult, DetailedTask, JsonObject, Task, TaskPayload, TaskStatus};
use tokio_util::sync::CancellationToken;

/// How long a finished task is kept for the client to read.
pub const KEEP: Duration = Duration::from_hours(1);

struct Entry {
    created: String,
    updated: String,
    status: TaskStatus,
    result: Option<CallToolResult>,
    cancel: CancellationToken,
    ended: Option<Instant>,
}

/// The in-memory task store.
#[derive(Clone, Default)]
pub struct Tasks {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

impl Tasks {
    /// Registers a new working task; returns its id, its description and
    /// the token that cancels it.
    pub fn create(&self) -> (String, Task, CancellationToken) {
        let id = format!("{:032x}", fastrand::u128(..));
        let cancel = CancellationToken::new();
        let stamp = now();
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, e| e.ended.is_none_or(|t| t.elapsed() < KEEP));
        map.insert(
            id.clone(),
            Entry {
                created: stamp.clone(),
                updated: stamp.clone(),
                status: TaskStatus::Working,
                result: None,
                cancel: cancel.clone(),
                ended: None,
            },
        );
        let task = Task::new(id.clone(), TaskStatus::Working, stamp.clone(), stamp)
            .with_poll_interval_ms(1000)
            .with_ttl_ms(u64::try_from(KEEP.as_millis()).unwrap_or(u64::MAX));
        (id, task, cancel)
    }

    /// Records the end of task `id`.
    pub fn finish(&self, id: &str, result: CallToolResult, cancelled: bool) {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = map.get_mut(id) {
            e.status = if cancelled {
                TaskStatus::Cancelled
            } else if result.is_error == Some(true) {
                TaskStatus::Failed
            } else {
                TaskStatus::Completed
            };
            e.result = Some(result);
            e.updated = now();
            e.ended = Some(Instant::now());
        }
    }

    /// The task's state for `tasks/get`.
    pub fn get(&self, id: &str) -> Option<DetailedTask> {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let e = map.get(id)?;
        let task = Task::new(id, e.status, e.created.clone(), e.updated.clone()).with_poll_interval_ms(1000);
        let as_object = |r: &CallToolResult| -> JsonObject {
            match serde_json::to_value(r) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => JsonObject::new(),
            }
        };
        let payload = match (e.status, &e.result) {
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
        Some(DetailedTask::new(task, payload))
    }

    /// Cancels task `id`; false when there is no such task.
    pub fn cancel(&self, id: &str) -> bool {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(id) {
            Some(e) => {
                e.cancel.cancel();
                true
            }
            None => false,
        }
    }
}
