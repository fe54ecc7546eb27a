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

/// Most rounds of questions one task may go through.
pub const MAX_INPUT_ROUNDS: u32 = 16;

/// The prefix of an answer's field in a task's Redis record.
const ANSWER: &str = "answer:";

/// How a wait for input ended ([`Tasks::wait_for_input`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Every request is answered: the answers, by the keys asked.
    Answered(InputResponses),
    /// No (complete) answer before the deadline.
    TimedOut,
    /// The task was cancelled while it waited.
    Cancelled,
    /// The task is gone (or was never here).
    Gone,
}

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

/// The requests of a task stored in Redis with `fields` not yet answered
/// (its `inputRequests` less its `answer:{key}` fields).
fn outstanding(fields: &HashMap<String, String>) -> InputRequests {
    let mut asked: InputRequests = fields
        .get("inputRequests")
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    asked.retain(|k, _| !fields.contains_key(&format!("{ANSWER}{k}")));
    asked
}

/// Checks the answers in `responses` to the outstanding requests `pending`
/// ([`crate::consent::check_answer`]); answers to keys not outstanding
/// (unknown, or answered already) are ignored, as SEP-2663 says.
fn check_responses(pending: &InputRequests, responses: &InputResponses) -> Result<(), String> {
    for (key, answer) in responses {
        if let Some(request) = pending.get(key) {
            crate::consent::check_answer(request, answer)
                .map_err(|why| format!("inputResponses.{key} does not answer its request: {why}"))?;
        }
    }
    Ok(())
}

/// Why `tasks/update` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateError {
    /// No such task, or not the caller's (one answer for both).
    NoTask,
    /// The answers do not hold (the message says why).
    Invalid(String),
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
        let pending = (status == TaskStatus::InputRequired).then(|| outstanding(&fields));
        Some(detailed(
            id,
            status,
            fields.get("created").map_or("", String::as_str),
            fields.get("updated").map_or("", String::as_str),
            result.as_ref(),
            pending.as_ref(),
        ))
    }

    /// Parks task `id` until the client has answered `requests` through
    /// `tasks/update`, the wait's deadline (`tasks.input_timeout`) passes,
    /// or the task is cancelled. `round` counts the task's questions from
    /// 1: the client sees the keys as `{round}.{key}`, so no key serves
    /// twice in a task's life; the answers come back by the keys asked.
    pub async fn wait_for_input(
        &self,
        id: &str,
        requests: &InputRequests,
        round: u32,
        cancel: &CancellationToken,
    ) -> Input {
        let prefix = format!("{round}.");
        let shown: InputRequests = requests
            .iter()
            .map(|(k, r)| (format!("{prefix}{k}"), r.clone()))
            .collect();
        let wake = {
            let mut map = self.map();
            let Some(e) = map.get_mut(id) else { return Input::Gone };
            e.status = TaskStatus::InputRequired;
            e.pending.clone_from(&shown);
            e.answers = InputResponses::new();
            e.updated = now();
            Arc::clone(&e.wake)
        };
        let asked = serde_json::to_string(&shown).unwrap_or_default();
        self.share_status(id, TaskStatus::InputRequired, &asked).await;
        let deadline = tokio::time::Instant::now() + self.input_timeout;
        let outcome = loop {
            if let Some(answers) = self.answered(id) {
                let answers = answers
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_owned(), v)))
                    .collect();
                break Input::Answered(answers);
            }
            tokio::select! {
                () = wake.notified() => {}
                () = cancel.cancelled() => break Input::Cancelled,
                () = tokio::time::sleep_until(deadline) => break Input::TimedOut,
                () = tokio::time::sleep(CANCEL_POLL), if self.shared.is_some() => self.pull_answers(id).await,
            }
        };
        {
            let mut map = self.map();
            if let Some(e) = map.get_mut(id) {
                e.status = TaskStatus::Working;
                e.pending.clear();
                e.answers.clear();
                e.updated = now();
            }
        }
        if matches!(outcome, Input::Answered(_)) {
            self.share_status(id, TaskStatus::Working, "{}").await;
        }
        outcome
    }

    /// Writes a waiting or working task's status to Redis (with the
    /// requests it waits on, `{}` for none).
    async fn share_status(&self, id: &str, status: TaskStatus, asked: &str) {
        let Some(shared) = &self.shared else { return };
        let (name, updated) = (status_name(status), now());
        let fields = [
            ("status", name.as_str()),
            ("updated", updated.as_str()),
            ("inputRequests", asked),
        ];
        if let Err(e) = shared.hash_set("task", id, &fields, ttl(WORKING_TTL)).await {
            tracing::warn!("task {id}: its wait for input could not be shared through Redis: {e}");
        }
    }

    /// The answers of task `id` once every request is answered.
    fn answered(&self, id: &str) -> Option<InputResponses> {
        let mut map = self.map();
        let e = map.get_mut(id)?;
        e.pending.is_empty().then(|| std::mem::take(&mut e.answers))
    }

    /// Takes the answers to task `id` given through another replica.
    async fn pull_answers(&self, id: &str) {
        let Some(shared) = &self.shared else { return };
        let Ok(fields) = shared.hash_get("task", id).await else {
            return;
        };
        let mut map = self.map();
        let Some(e) = map.get_mut(id) else { return };
        for (field, text) in &fields {
            let Some(key) = field.strip_prefix(ANSWER) else {
                continue;
            };
            let Some(request) = e.pending.get(key) else { continue };
            let Ok(answer) = serde_json::from_str::<serde_json::Value>(text) else {
                continue;
            };
            if crate::consent::check_answer(request, &answer).is_ok() {
                e.pending.remove(key);
                e.answers.insert(key.to_owned(), answer);
            }
        }
    }

    /// `tasks/update` by `caller`: delivers `responses` to task `id`
    /// waiting for input (here, or through Redis on the replica running
    /// it). An answer to an outstanding request must be well-formed, or
    /// none is taken; answers to anything else (an unknown or answered key,
    /// a task not waiting) are ignored, as SEP-2663 says.
    ///
    /// # Errors
    /// [`UpdateError`].
    pub async fn update(
        &self,
        id: &str,
        caller: Option<&Principal>,
        responses: &InputResponses,
    ) -> Result<(), UpdateError> {
        let here = {
            let mut map = self.map();
            match map.get_mut(id) {
                Some(e) => {
                    if e.owner.as_ref() != caller {
                        return Err(UpdateError::NoTask);
                    }
                    check_responses(&e.pending, responses).map_err(UpdateError::Invalid)?;
                    for (key, answer) in responses {
                        if e.pending.remove(key).is_some() {
                            e.answers.insert(key.clone(), answer.clone());
                        }
                    }
                    e.wake.notify_one();
                    true
                }
                None => false,
            }
        };
        let Some(shared) = &self.shared else {
            return if here { Ok(()) } else { Err(UpdateError::NoTask) };
        };
        if !here {
            let fields = shared.hash_get("task", id).await.map_err(|_| UpdateError::NoTask)?;
            if !fields.contains_key("status") || !owned_by(&fields, caller) {
                return Err(UpdateError::NoTask);
            }
            if fields.get("status").map(String::as_str) != Some(status_name(TaskStatus::InputRequired).as_str()) {
                return Ok(());
            }
            check_responses(&outstanding(&fields), responses).map_err(UpdateError::Invalid)?;
        }
        // Recorded in Redis too, so `tasks/get` at any replica shows what
        // is still outstanding (an answer to a key not asked is never read).
        let texts: Vec<(String, String)> = responses
            .iter()
            .map(|(k, v)| (format!("{ANSWER}{k}"), v.to_string()))
            .collect();
        if texts.is_empty() {
            return Ok(());
        }
        let fields: Vec<(&str, &str)> = texts.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match shared.hash_set("task", id, &fields, ttl(WORKING_TTL)).await {
            Ok(()) => Ok(()),
            Err(_) if here => Ok(()),
            Err(e) => Err(UpdateError::Invalid(format!("the answers could not be recorded: {e}"))),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn task_ids_are_random_uuids_and_tasks_answer_only_their_owner() {
        let tasks = Tasks::default();
        let (alice, bob) = (Principal("alice".into()), Principal("bob".into()));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..64 {
            let (id, _, _) = tasks.create(Some(alice.clone())).await;
            let uuid = uuid::Uuid::try_parse(&id).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 4, "{id}");
            assert!(seen.insert(id));
        }
        let (id, _, cancel) = tasks.create(Some(alice.clone())).await;
        assert!(tasks.get(&id, Some(&bob)).await.is_none());
        assert!(tasks.get(&id, None).await.is_none());
        assert!(!tasks.cancel(&id, Some(&bob)).await);
        assert!(!cancel.is_cancelled());
        assert!(tasks.get(&id, Some(&alice)).await.is_some());
        assert!(tasks.cancel(&id, Some(&alice)).await);
        assert!(cancel.is_cancelled());
    }

    #[tokio::test]
    async fn a_tool_error_completes_and_a_protocol_error_fails() {
        let tasks = Tasks::default();
        let (tool_error, _, _) = tasks.create(None).await;
        tasks
            .finish(
                &tool_error,
                CallToolResult::error(vec![rmcp::model::ContentBlock::text("no")]),
                false,
            )
            .await;
        let got = serde_json::to_value(tasks.get(&tool_error, None).await.unwrap()).unwrap();
        assert_eq!(got["status"], "completed", "{got}");
        assert_eq!(got["result"]["isError"], true, "{got}");
        let (broken, _, _) = tasks.create(None).await;
        tasks.fail(&broken, "internal").await;
        let got = serde_json::to_value(tasks.get(&broken, None).await.unwrap()).unwrap();
        assert_eq!(got["status"], "failed", "{got}");
        assert_eq!(got["error"]["message"], "internal", "{got}");
        assert!(got.get("result").is_none(), "{got}");
    }

    /// Two questions that each want a field `x`.
    fn two_questions() -> InputRequests {
        let ask = |m: &str| {
            serde_json::json!({"method": "elicitation/create", "params": {"message": m, "requestedSchema":
                {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}}})
        };
        serde_json::from_value(serde_json::json!({"a": ask("A?"), "b": ask("B?")})).unwrap()
    }

    /// Waits (yielding, bounded) until task `id` of `owner` waits for input;
    /// the keys it shows.
    async fn parked(tasks: &Tasks, id: &str, owner: &Principal) -> Vec<String> {
        for _ in 0..10_000 {
            if let Some(t) = tasks.get(id, Some(owner)).await
                && let TaskPayload::InputRequired { input_requests } = t.payload
            {
                return input_requests.keys().cloned().collect();
            }
            tokio::task::yield_now().await;
        }
        panic!("task {id} never waited for input");
    }

    #[tokio::test]
    async fn a_waiting_task_takes_answers_from_its_owner_only_some_at_a_time() {
        let tasks = Tasks::new(None, Duration::from_mins(1));
        let (alice, bob) = (Principal("alice".into()), Principal("bob".into()));
        let (id, _, cancel) = tasks.create(Some(alice.clone())).await;
        let waiter = {
            let (tasks, id) = (tasks.clone(), id.clone());
            tokio::spawn(async move { tasks.wait_for_input(&id, &two_questions(), 2, &cancel).await })
        };
        assert_eq!(parked(&tasks, &id, &alice).await, ["2.a", "2.b"]);
        let answer = |k: &str, v: serde_json::Value| InputResponses::from([(k.to_owned(), v)]);
        let good = serde_json::json!({"action": "accept", "content": {"x": "1"}});
        assert_eq!(
            tasks.update(&id, Some(&bob), &answer("2.a", good.clone())).await,
            Err(UpdateError::NoTask)
        );
        let malformed = answer("2.a", serde_json::json!({"action": "accept", "content": {}}));
        assert!(matches!(
            tasks.update(&id, Some(&alice), &malformed).await,
            Err(UpdateError::Invalid(_))
        ));
        // Keys not asked are ignored (SEP-2663).
        for ignored in [answer("a", good.clone()), InputResponses::new()] {
            tasks.update(&id, Some(&alice), &ignored).await.unwrap();
        }
        assert_eq!(parked(&tasks, &id, &alice).await, ["2.a", "2.b"]);
        tasks
            .update(&id, Some(&alice), &answer("2.a", good.clone()))
            .await
            .unwrap();
        assert_eq!(parked(&tasks, &id, &alice).await, ["2.b"]);
        // Answered once: a second answer is ignored.
        let late = answer("2.a", serde_json::json!("x"));
        tasks.update(&id, Some(&alice), &late).await.unwrap();
        assert_eq!(parked(&tasks, &id, &alice).await, ["2.b"]);
        tasks
            .update(&id, Some(&alice), &answer("2.b", good.clone()))
            .await
            .unwrap();
        let Input::Answered(got) = waiter.await.unwrap() else {
            panic!("not answered")
        };
        assert_eq!(got.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(
            tasks.get(&id, Some(&alice)).await.unwrap().status(),
            TaskStatus::Working
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_waits_until_its_deadline_or_its_cancel() {
        let tasks = Tasks::new(None, Duration::from_secs(5));
        let (id, _, cancel) = tasks.create(None).await;
        assert_eq!(
            tasks.wait_for_input(&id, &two_questions(), 1, &cancel).await,
            Input::TimedOut
        );
        cancel.cancel();
        assert_eq!(
            tasks.wait_for_input(&id, &two_questions(), 2, &cancel).await,
            Input::Cancelled
        );
        assert_eq!(
            tasks.wait_for_input("nope", &two_questions(), 1, &cancel).await,
            Input::Gone
        );
    }
}
