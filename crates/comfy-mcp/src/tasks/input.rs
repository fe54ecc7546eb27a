//! Tasks waiting for input: the wait ([`Tasks::wait_for_input`]), the
//! answers (`tasks/update`, [`Tasks::update`]) here and through Redis,
//! and what `tasks/get` shows of the requests still outstanding.

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::{InputRequests, InputResponses, TaskStatus};
use tokio_util::sync::CancellationToken;

use super::{CANCEL_POLL, Tasks, WORKING_TTL, now, owned_by, status_name, ttl};
use crate::caller::Principal;

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

/// The requests of a task stored in Redis with `fields` not yet answered
/// (its `inputRequests` less its `answer:{key}` fields).
pub(super) fn outstanding(fields: &HashMap<String, String>) -> InputRequests {
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
                    // Every question answered: the task works again from
                    // now on, not once its waiter has woken (a client
                    // polling in between would see `input_required` with
                    // nothing to answer).
                    if e.status == TaskStatus::InputRequired && e.pending.is_empty() {
                        e.status = TaskStatus::Working;
                        e.updated = now();
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
}
