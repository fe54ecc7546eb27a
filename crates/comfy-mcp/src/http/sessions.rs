//! Bounded MCP sessions for the Streamable HTTP transport.
//!
//! rmcp's `LocalSessionManager` keeps every session until the client sends
//! DELETE: a session whose worker stopped on its idle timer stays in its map
//! (so `has_session` still says yes), and nothing caps how many exist. This
//! wrapper adds the two bounds a public endpoint needs:
//! - at most `max` live sessions; `initialize` beyond that is refused (the
//!   HTTP layer answers 503 before it gets here, see [`Sessions::is_full`]);
//! - with several principals, at most `per_principal` live sessions each
//!   (429 naming the principal's limit, see [`Sessions::is_full_for`]),
//!   so one principal cannot take every session and lock the others out;
//! - a session unused for `idle` is closed: the next request naming it gets
//!   404 (the client starts a new session, as the spec says), and a sweeper
//!   closes idle sessions nobody names again;
//! - `DELETE` of a live session ends it and says so ([`ending`] tells the
//!   HTTP layer, which answers 204); of an unknown, expired or already
//!   ended one, 404 (rmcp answers 202 either way);
//! - each session belongs to the principal whose token created it
//!   ([`Sessions::belongs_to`]): the HTTP layer answers any other token
//!   naming it with the same 404 as an unknown session, so a session id
//!   seen by someone else opens nothing.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_core::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, SessionConfig,
};
use rmcp::transport::streamable_http_server::{SessionId, SessionManager};

use crate::caller::Principal;

tokio::task_local! {
    /// The principal of the request being served, read when rmcp creates
    /// a session for it (rmcp's `create_session` takes no request).
    static CREATOR: Option<Principal>;
}

/// Runs `work` (rmcp serving one request) with `principal` as the creator
/// of any session it opens.
pub async fn as_creator<F: std::future::Future>(principal: Option<Principal>, work: F) -> F::Output {
    CREATOR.scope(principal, work).await
}

tokio::task_local! {
    /// Whether the `close_session` of the request being served ended a
    /// live session (`None`: it closed none).
    static ENDED: std::cell::Cell<Option<bool>>;
}

/// Runs `work` (rmcp serving a `DELETE`), and says whether it ended a live
/// session: `Some(true)` it did, `Some(false)` the session was unknown,
/// expired or already ended, `None` nothing was closed (rmcp refused the
/// request before).
pub async fn ending<F: std::future::Future>(work: F) -> (F::Output, Option<bool>) {
    ENDED
        .scope(std::cell::Cell::new(None), async move {
            let out = work.await;
            (out, ENDED.with(std::cell::Cell::get))
        })
        .await
}

/// A live session: when it was last used, and whose it is.
struct Live {
    used: Instant,
    owner: Option<Principal>,
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionsError {
    /// The session cap is reached.
    #[error("too many MCP sessions (at most {0}); retry later")]
    Full(usize),
    /// The principal's own session cap is reached.
    #[error("too many MCP sessions for principal '{0}' (at most {1})")]
    PrincipalFull(String, usize),
    /// rmcp's own error.
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
}

/// rmcp's in-memory sessions with a cap and idle expiry.
pub struct Sessions {
    inner: LocalSessionManager,
    max: usize,
    per_principal: Option<usize>,
    idle: Duration,
    /// When each live session was last used, and its principal.
    seen: Mutex<HashMap<SessionId, Live>>,
}

impl Sessions {
    /// At most `max` sessions (and `per_principal` for each principal when
    /// set), each closed after `idle` without a request.
    #[must_use]
    pub fn new(max: usize, per_principal: Option<usize>, idle: Duration) -> Self {
        let mut config = SessionConfig::default();
        config.keep_alive = Some(idle);
        let mut inner = LocalSessionManager::default();
        inner.session_config = config;
        Self {
            inner,
            max,
            per_principal,
            idle,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Live>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many sessions are live.
    #[must_use]
    pub fn len(&self) -> usize {
        self.seen().len()
    }

    /// Whether no session is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a new session would be refused (after dropping expired ones
    /// from the count; [`Sessions::sweep`] closes them).
    #[must_use]
    pub fn is_full(&self) -> bool {
        let idle = self.idle;
        let seen = self.seen();
        seen.values().filter(|l| l.used.elapsed() < idle).count() >= self.max
    }

    /// The principal's own cap, when `principal` already has that many
    /// live sessions (so a new one would be refused).
    #[must_use]
    pub fn is_full_for(&self, principal: Option<&Principal>) -> Option<usize> {
        let (cap, principal) = (self.per_principal?, principal?);
        let idle = self.idle;
        let seen = self.seen();
        let live = seen
            .values()
            .filter(|l| l.used.elapsed() < idle && l.owner.as_ref() == Some(principal))
            .count();
        (live >= cap).then_some(cap)
    }

    /// Whether session `id` may be used by `principal`: `false` only when
    /// it is a live session another principal created (an unknown id is
    /// left to rmcp, which answers 404).
    #[must_use]
    pub fn belongs_to(&self, id: &str, principal: Option<&Principal>) -> bool {
        let seen = self.seen();
        match seen.get(id).map(|l| l.owner.as_ref()) {
            Some(Some(owner)) => principal == Some(owner),
            _ => true,
        }
    }

    /// Marks `id` used now; `false` when it is unknown or has expired.
    fn touch(&self, id: &SessionId) -> bool {
        let mut seen = self.seen();
        match seen.get_mut(id) {
            Some(l) if l.used.elapsed() < self.idle => {
                l.used = Instant::now();
                true
            }
            _ => false,
        }
    }

    /// Closes every session idle for longer than the limit.
    pub async fn sweep(&self) {
        let expired: Vec<SessionId> = {
            let mut seen = self.seen();
            let ids: Vec<SessionId> = seen
                .iter()
                .filter(|(_, l)| l.used.elapsed() >= self.idle)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &ids {
                seen.remove(id);
            }
            ids
        };
        for id in expired {
            tracing::debug!(session = %id, "closing an idle MCP session");
            let _ = self.inner.close_session(&id).await;
        }
    }

    async fn expire(&self, id: &SessionId) {
        self.seen().remove(id);
        let _ = self.inner.close_session(id).await;
    }
}

impl SessionManager for Sessions {
    type Error = SessionsError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        if self.is_full() {
            return Err(SessionsError::Full(self.max));
        }
        let owner = CREATOR.try_with(Clone::clone).ok().flatten();
        if let Some(cap) = self.is_full_for(owner.as_ref()) {
            let name = owner.as_ref().map(|p| p.0.to_string()).unwrap_or_default();
            return Err(SessionsError::PrincipalFull(name, cap));
        }
        let (id, transport) = self.inner.create_session().await?;
        self.seen().insert(
            id.clone(),
            Live {
                used: Instant::now(),
                owner,
            },
        );
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.touch(id);
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        if self.touch(id) {
            return Ok(self.inner.has_session(id).await?);
        }
        if self.inner.has_session(id).await? {
            self.expire(id).await;
        }
        Ok(false)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let idle = self.idle;
        let was_live = self.seen().remove(id).is_some_and(|l| l.used.elapsed() < idle);
        let _ = ENDED.try_with(|ended| ended.set(Some(was_live)));
        Ok(self.inner.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        Ok(self.inner.create_stream(id, message).await?)
    }

    async fn accept_message(&self, id: &SessionId, message: ClientJsonRpcMessage) -> Result<(), Self::Error> {
        self.touch(id);
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        Ok(self.inner.create_standalone_stream(id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        Ok(self.inner.resume(id, last_event_id).await?)
    }
}
