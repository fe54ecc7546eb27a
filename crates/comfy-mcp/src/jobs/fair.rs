//! Fairness on the remote transport: one client (its principal, else its
//! MCP session) may have at most `transport.remote.max_queued_jobs_per_client`
//! jobs queued or running, counted over every backend's queue.
//!
//! [`fair_before`] takes the client's submission lock, counts the client's
//! jobs and refuses one over the cap; [`submitted`] records each prompt id
//! as it is accepted and releases the lock, so simultaneous submissions of
//! one client cannot all pass the cap by seeing the same queue.

use std::sync::{Arc, Mutex, PoisonError};

use super::{Jobs, MAX_JOBS};
use crate::caller::Principal;
use crate::tools::{ToolContext, ToolError};

tokio::task_local! {
    /// The client a submission counts against for fairness, and the
    /// call's admission ticket.
    static CLIENT: (Principal, Option<Arc<Ticket>>);
}

/// The client a call's jobs count against: its principal, else its MCP
/// session; `None` over stdio (one local client) and for stateless HTTP
/// requests without a token.
#[must_use]
pub fn client_key(caller: &crate::caller::Caller) -> Option<Principal> {
    if let Some(p) = &caller.principal {
        return Some(Principal(format!("principal:{}", p.0).into()));
    }
    caller
        .session
        .as_ref()
        .map(|s| Principal(format!("session:{s}").into()))
}

/// Runs `work` with its submissions counted against `client`.
pub async fn client_scope<F: std::future::Future>(
    client: Option<Principal>,
    ticket: Option<Arc<Ticket>>,
    work: F,
) -> F::Output {
    match client {
        Some(c) => CLIENT.scope((c, ticket), work).await,
        None => work.await,
    }
}

/// A submission admitted by [`fair_before`]: it holds its client's
/// submission lock until [`submitted`] has recorded its prompt id (or the
/// call ends without submitting), so the next submission of the same
/// client counts the queue only after this one is in it. Simultaneous
/// calls cannot all pass the cap by each seeing the same queue.
pub struct Ticket {
    guard: Mutex<Option<tokio::sync::OwnedMutexGuard<()>>>,
}

impl Ticket {
    fn close(&self) {
        drop(self.guard.lock().unwrap_or_else(PoisonError::into_inner).take());
    }
}

/// Most clients whose submission locks are kept; idle ones go first.
const MAX_CLIENT_LOCKS: usize = 4096;

/// Refuses a submission from `client` when it already has the most jobs
/// queued or running that `transport.remote.max_queued_jobs_per_client`
/// allows.
///
/// # Errors
/// The refusal, naming the cap.
pub async fn fair_before(name: &str, client: &Principal, cx: &ToolContext) -> Result<Option<Arc<Ticket>>, ToolError> {
    let cap = cx.config.transport.remote.max_queued_jobs_per_client;
    if cap == 0 || !crate::tools::submits(name) {
        return Ok(None);
    }
    // One submission of this client at a time, from counting to queueing.
    let lock = {
        let mut locks = cx.jobs.submit_locks.lock().unwrap_or_else(PoisonError::into_inner);
        if locks.len() >= MAX_CLIENT_LOCKS {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        Arc::clone(locks.entry(client.clone()).or_default())
    };
    let guard = lock.lock_owned().await;
    // Every backend's queue: the cap is per client, wherever its jobs run.
    let mut queue = comfy_client::types::Queue::default();
    // Asked all at once, so their latencies do not add up.
    let queues = futures_util::future::join_all(cx.pool.all().iter().map(|b| b.client.queue())).await;
    for answer in queues {
        match answer {
            Ok(q) => {
                queue.running.extend(q.running);
                queue.pending.extend(q.pending);
            }
            // A backend that is down holds none of the client's live jobs.
            Err(_) if cx.pool.is_multi() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let ids: Vec<&str> = queue
        .running
        .iter()
        .chain(&queue.pending)
        .map(|q| q.prompt_id.as_str())
        .collect();
    cx.jobs.load(&ids).await;
    let mine = {
        let clients = cx.jobs.clients();
        queue
            .running
            .iter()
            .chain(&queue.pending)
            .filter(|item| clients.map.get(&item.prompt_id) == Some(client))
            .count()
    };
    if mine >= cap {
        return Err(ToolError::rejected(format!(
            "You already have {mine} job(s) queued or running, the most one client may have \
             (transport.remote.max_queued_jobs_per_client = {cap}); wait for one to finish or cancel one"
        )));
    }
    Ok(Some(Arc::new(Ticket {
        guard: Mutex::new(Some(guard)),
    })))
}

/// Records that the current call's client submitted `prompt_id`.
pub async fn submitted(prompt_id: &str, jobs: &Jobs) {
    if let Ok((client, ticket)) = CLIENT.try_with(Clone::clone) {
        jobs.clients().insert(prompt_id.to_owned(), client.clone(), MAX_JOBS);
        jobs.share(prompt_id, "client", &client).await;
        // Now in ComfyUI's queue and recorded: the next may count.
        if let Some(t) = ticket {
            t.close();
        }
    }
}
