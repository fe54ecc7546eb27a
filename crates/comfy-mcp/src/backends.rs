//! Several ComfyUI servers behind one MCP server: the pool, its health
//! checks, where a new job goes and where an existing one is.
//!
//! With one backend (the peer's `comfyui.url`) everything behaves as
//! before: no health checks, no extra requests, no `backend` fields.
//!
//! Routing a new job ([`Pool::candidates`]): the backend named by the
//! call's `backend` argument, else the healthy backends ordered by (has
//! every model the workflow references, queue depth / weight, order in
//! the configuration). Queue depth is the freshest of the backend's
//! WebSocket `status` and a `GET /prompt` made for the decision (all
//! backends at once, a short timeout), plus the jobs this server sent
//! it since. A submission that certainly never reached a backend (the
//! connection was refused) goes to the next candidate; one that may
//! have reached it is never sent again ([`comfy_client::Error::never_sent`]).
//!
//! Health: a task per backend asks `GET /prompt` every
//! `comfyui.health_interval` seconds; a failure marks it down and the
//! next check comes later (twice, four, then eight times the interval); a
//! call that cannot connect marks it down at once. Down backends get no
//! new jobs while any backend is up.
//!
//! Where a job is: every accepted prompt id is mapped to its backend
//! (here, and in Redis when `state.redis_url` is set, so any replica
//! finds it: [`crate::state`]). A call that names a prompt id runs
//! against that backend: [`scope`] sets the backend for the rest of the
//! call, and [`crate::tools::ToolContext::client`] reads it.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use comfy_client::Client;
use tracing::Instrument;

use serde_json::Value;

use crate::config::Config;
use crate::jobs::Bounded;
use crate::state::Shared;

/// One ComfyUI server.
pub struct Backend {
    /// Its name (`comfyui.backends[].name`; `default` for `comfyui.url`).
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Its client.
    pub client: Client,
    /// Where clients fetch its images from, when not its URL.
    pub external_url: Option<String>,
    /// Its share of new jobs.
    pub weight: u32,
    /// Its labels.
    pub tags: Vec<String>,
    health: Mutex<Health>,
}

#[derive(Debug, Default, Clone)]
struct Health {
    down: bool,
    failures: u32,
    error: Option<String>,
    /// Queue length from the last check, and when it was read.
    depth: Option<(u64, Instant)>,
    /// Jobs sent since the depth was read.
    sent_since: u64,
    checked: Option<Instant>,
}

impl Backend {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the last check (or call) found it unreachable.
    #[must_use]
    pub fn is_down(&self) -> bool {
        self.health().down
    }

    /// Records a successful contact that read the queue length.
    fn up(&self, depth: Option<u64>) {
        let mut h = self.health();
        h.down = false;
        h.failures = 0;
        h.error = None;
        h.checked = Some(Instant::now());
        if let Some(d) = depth {
            h.depth = Some((d, Instant::now()));
            h.sent_since = 0;
        }
    }

    /// Records a failed contact.
    pub fn failed(&self, error: &comfy_client::Error) {
        let mut h = self.health();
        h.down = true;
        h.failures = h.failures.saturating_add(1);
        h.error = Some(error.to_string());
        h.checked = Some(Instant::now());
    }

    /// Asks it now whether it is up (and records the answer).
    pub async fn probe(&self) -> bool {
        self.probe_within(DEPTH_WAIT).await
    }

    /// [`Self::probe`], waiting at most `limit` for the answer.
    async fn probe_within(&self, limit: Duration) -> bool {
        match tokio::time::timeout(limit, self.client.queue_remaining()).await {
            Ok(Ok(d)) => {
                self.up(Some(d));
                true
            }
            Ok(Err(e)) => {
                self.failed(&e);
                false
            }
            Err(_) => {
                self.failed(&comfy_client::Error::Timeout {
                    what: "the health check".to_owned(),
                    after: limit,
                });
                false
            }
        }
    }

    /// Counts a job sent to it (until the next depth reading).
    pub fn sent(&self) {
        let mut h = self.health();
        h.sent_since = h.sent_since.saturating_add(1);
    }

    /// The queue length to route by: the freshest reading (a check, or
    /// the WebSocket's last `status`) plus the jobs sent since a check.
    fn depth(&self) -> u64 {
        let h = self.health();
        let checked = h.depth.map(|(d, at)| (d + h.sent_since, at));
        match (checked, self.client.last_queue_status()) {
            (Some((d, at)), Some((ws, ws_at))) => {
                if ws_at > at {
                    ws
                } else {
                    d
                }
            }
            (Some((d, _)), None) => d,
            (None, Some((ws, _))) => ws,
            (None, None) => h.sent_since,
        }
    }

    /// What `comfyui_get_system_info` and `comfy-mcp check` say of it.
    #[must_use]
    pub fn status(&self) -> serde_json::Value {
        let h = self.health().clone();
        serde_json::json!({
            "name": self.name,
            "healthy": !h.down,
            "weight": self.weight,
            "tags": self.tags,
            "queue_depth": self.depth(),
            "error": h.error,
        })
    }
}

tokio::task_local! {
    /// The backend the current call works with.
    static CURRENT: Arc<Backend>;
    /// The backends a new job may go to if the current one cannot be
    /// reached, best first.
    static ROUTE: Vec<Arc<Backend>>;
}

/// Runs `work` against the first of `candidates`, the rest as its
/// fallbacks ([`route`]); with none, against nothing in particular.
pub async fn scope_route<F: std::future::Future>(mut candidates: Vec<Arc<Backend>>, work: F) -> F::Output {
    if candidates.is_empty() {
        return work.await;
    }
    let first = candidates.remove(0);
    tracing::Span::current().record("backend", first.name.as_str());
    CURRENT.scope(first, ROUTE.scope(candidates, work)).await
}

/// The fallbacks [`scope_route`] set (empty outside one).
#[must_use]
pub fn route() -> Vec<Arc<Backend>> {
    ROUTE.try_with(Clone::clone).unwrap_or_default()
}

/// Runs `work` against `backend` (what [`current`] returns inside it).
pub async fn scope<F: std::future::Future>(backend: Arc<Backend>, work: F) -> F::Output {
    // The call's `tool_call` span names the backend it went to.
    tracing::Span::current().record("backend", backend.name.as_str());
    CURRENT.scope(backend, work).await
}

/// The backend set by the enclosing [`scope`], if any.
#[must_use]
pub fn current() -> Option<Arc<Backend>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Why no backend could be chosen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The `backend` argument names none.
    #[error("`backend` must be one of {known} (got {got:?})")]
    Unknown {
        /// The names, comma-separated.
        known: String,
        /// What was asked for.
        got: String,
    },
}

/// Every backend, in configuration order, and where jobs and output
/// files are.
pub struct Pool {
    backends: Vec<Arc<Backend>>,
    /// Prompt id → index in `backends`.
    routes: Mutex<Bounded<String, usize>>,
    /// (subfolder, file name) of an output → index in `backends`.
    files: Mutex<Bounded<(String, String), usize>>,
    shared: Option<Arc<Shared>>,
}

/// Most prompt ids and output files remembered here (Redis keeps jobs
/// for `state.job_ttl`).
const MAX_REMEMBERED: usize = 50_000;

/// The longest a routing decision waits for a backend's queue length.
const DEPTH_WAIT: Duration = Duration::from_secs(2);

impl Pool {
    /// The pool for `config`: `comfyui.backends`, else one backend named
    /// `default` at `comfyui.url` (or `client`, when given).
    ///
    /// # Errors
    /// A client that cannot be built from a backend's URL.
    pub fn new(
        config: &Config,
        client: Option<Client>,
        shared: Option<Arc<Shared>>,
    ) -> Result<Self, comfy_client::Error> {
        let c = &config.comfyui;
        let build = |url: &str| {
            Client::builder(url)
                .connect_timeout(Duration::from_secs(c.timeout_connect))
                .read_timeout(Duration::from_secs(c.timeout_read))
                .tls_verify(c.tls_verify)
                .user_agent(concat!("comfy-mcp/", env!("CARGO_PKG_VERSION")))
                .build()
        };
        let backend =
            |name: &str, url: &str, client: Client, external_url: Option<String>, weight: u32, tags: Vec<String>| {
                Arc::new(Backend {
                    name: name.to_owned(),
                    url: url.to_owned(),
                    client,
                    external_url,
                    weight: weight.max(1),
                    tags,
                    health: Mutex::default(),
                })
            };
        let backends = if let Some(client) = client {
            vec![backend(
                "default",
                &c.url,
                client,
                c.external_url.clone(),
                1,
                Vec::new(),
            )]
        } else if c.backends.is_empty() {
            vec![backend(
                "default",
                &c.url,
                build(&c.url)?,
                c.external_url.clone(),
                1,
                Vec::new(),
            )]
        } else {
            c.backends
                .iter()
                .map(|b| {
                    Ok(backend(
                        &b.name,
                        &b.url,
                        build(&b.url)?,
                        b.external_url.clone(),
                        b.weight,
                        b.tags.clone(),
                    ))
                })
                .collect::<Result<Vec<_>, comfy_client::Error>>()?
        };
        Ok(Self {
            backends,
            routes: Mutex::default(),
            files: Mutex::default(),
            shared,
        })
    }

    fn index(&self, b: &Backend) -> Option<usize> {
        self.backends.iter().position(|x| std::ptr::eq(Arc::as_ptr(x), b))
    }

    /// Records that job `id` runs on `b` (here, and in Redis when shared).
    pub async fn record(&self, id: &str, b: &Backend) {
        if !self.is_multi() {
            return;
        }
        if let Some(i) = self.index(b) {
            self.routes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id.to_owned(), i, MAX_REMEMBERED);
        }
        if let Some(shared) = &self.shared
            && let Err(e) = shared.job_set(id, &[("backend", b.name.as_str())]).await
        {
            tracing::warn!("job {id}: its backend could not be recorded in Redis: {e}");
        }
    }

    /// The backend job `id` runs or ran on: remembered here, else in
    /// Redis, else the one that knows it (every backend asked at once).
    /// With one backend, that one.
    pub async fn locate(&self, id: &str) -> Option<Arc<Backend>> {
        if !self.is_multi() {
            return self.backends.first().cloned();
        }
        let known = self
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .get(id)
            .copied();
        if let Some(i) = known {
            return self.backends.get(i).cloned();
        }
        if let Some(shared) = &self.shared
            && let Ok(fields) = shared.job(id).await
            && let Some(b) = fields.get("backend").and_then(|n| self.get(n))
        {
            let b = Arc::clone(b);
            self.record(id, &b).await;
            return Some(b);
        }
        let mut asks = tokio::task::JoinSet::new();
        for b in &self.backends {
            let (b, id) = (Arc::clone(b), id.to_owned());
            asks.spawn(
                async move {
                    let known = matches!(
                        tokio::time::timeout(DEPTH_WAIT, b.client.job_info(&id)).await,
                        Ok(Ok(Some(_)))
                    );
                    known.then_some(b)
                }
                .in_current_span(),
            );
        }
        let found = asks.join_all().await.into_iter().flatten().next();
        if let Some(b) = &found {
            self.record(id, b).await;
        }
        found
    }

    /// Records every output file named in `v` as `b`'s.
    pub fn record_files(&self, v: &Value, b: &Backend) {
        if !self.is_multi() {
            return;
        }
        let Some(i) = self.index(b) else { return };
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        crate::jobs::walk_files(v, &mut |key| files.insert(key, i, MAX_REMEMBERED));
    }

    /// The backend an output file was last seen on.
    #[must_use]
    pub fn file_home(&self, subfolder: &str, filename: &str) -> Option<Arc<Backend>> {
        let i = *self
            .files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .get(&(subfolder.to_owned(), filename.to_owned()))?;
        self.backends.get(i).cloned()
    }

    /// Whether there is more than one backend (and so `backend` fields,
    /// health checks and routing).
    #[must_use]
    pub fn is_multi(&self) -> bool {
        self.backends.len() > 1
    }

    /// Every backend.
    #[must_use]
    pub fn all(&self) -> &[Arc<Backend>] {
        &self.backends
    }

    /// The backend called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Arc<Backend>> {
        self.backends.iter().find(|b| b.name == name)
    }

    /// The backend named by a `backend` argument.
    ///
    /// # Errors
    /// [`RouteError::Unknown`] naming the configured ones.
    pub fn named(&self, name: &str) -> Result<&Arc<Backend>, RouteError> {
        self.get(name).ok_or_else(|| RouteError::Unknown {
            known: self.names().join(", "),
            got: name.chars().take(80).collect(),
        })
    }

    /// The names, in configuration order.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        self.backends.iter().map(|b| b.name.as_str()).collect()
    }

    /// The backend for calls that concern no job in particular (catalogs,
    /// settings): the first that is up, else the first.
    #[must_use]
    pub fn primary(&self) -> &Arc<Backend> {
        self.backends.iter().find(|b| !b.is_down()).unwrap_or(&self.backends[0])
    }

    /// Where a new job may go, best first: backends that are up (all of
    /// them when none is), those listing every model in `needs` first
    /// (`needs` maps a model folder to the file names the workflow
    /// references), then by queue depth per unit of weight, then in
    /// configuration order. With one backend, that backend, at no cost.
    pub async fn candidates(&self, needs: &[(String, Vec<String>)]) -> Vec<Arc<Backend>> {
        if !self.is_multi() {
            return self.backends.clone();
        }
        let up: Vec<&Arc<Backend>> = self.backends.iter().filter(|b| !b.is_down()).collect();
        let pool: Vec<&Arc<Backend>> = if up.is_empty() {
            self.backends.iter().collect()
        } else {
            up
        };
        // Fresh queue lengths and model listings, every backend at once.
        let needs: Arc<[(String, Vec<String>)]> = needs.into();
        let mut looks = tokio::task::JoinSet::new();
        for (i, b) in pool.into_iter().enumerate() {
            let (b, needs) = (Arc::clone(b), Arc::clone(&needs));
            looks.spawn(
                async move {
                    match tokio::time::timeout(DEPTH_WAIT, b.client.queue_remaining()).await {
                        Ok(Ok(d)) => b.up(Some(d)),
                        Ok(Err(e)) if matches!(e, comfy_client::Error::Connect { .. }) => b.failed(&e),
                        _ => {}
                    }
                    let mut has_all = true;
                    for (folder, files) in needs.iter() {
                        let Ok(segment) = comfy_client::name::Segment::new(folder) else {
                            has_all = false;
                            continue;
                        };
                        let listed = tokio::time::timeout(DEPTH_WAIT, b.client.models(&segment)).await;
                        has_all &= matches!(listed, Ok(Ok(Some(list))) if files.iter().all(|f| list.contains(f)));
                    }
                    (i, b, has_all)
                }
                .in_current_span(),
            );
        }
        let mut looked: Vec<(usize, Arc<Backend>, bool)> = looks.join_all().await;
        // Down after the look: last, but still tried.
        looked.sort_by(|(ia, a, ha), (ib, b, hb)| {
            let load = |x: &Backend| (x.depth() as f64 + 1.0) / f64::from(x.weight);
            a.is_down()
                .cmp(&b.is_down())
                .then(hb.cmp(ha))
                .then(load(a).total_cmp(&load(b)))
                .then(ia.cmp(ib))
        });
        looked.into_iter().map(|(_, b, _)| b).collect()
    }

    /// Starts the health checks (with more than one backend); they end
    /// when the pool is dropped.
    pub fn start_health_checks(self: &Arc<Self>, interval: Duration) {
        if !self.is_multi() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for b in &self.backends {
            let weak: Weak<Backend> = Arc::downgrade(b);
            rt.spawn(async move {
                loop {
                    let Some(b) = weak.upgrade() else { return };
                    let wait = if b.probe_within(interval.max(DEPTH_WAIT)).await {
                        interval
                    } else {
                        backoff(interval, b.health().failures)
                    };
                    drop(b);
                    tokio::time::sleep(wait).await;
                }
            });
        }
    }
}

/// The wait before the next check of a backend that failed `failures`
/// times in a row: 2, 4, then 8 times the interval.
fn backoff(interval: Duration, failures: u32) -> Duration {
    interval.saturating_mul(1 << failures.clamp(1, 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_backends_are_checked_less_often() {
        let i = Duration::from_secs(10);
        assert_eq!(backoff(i, 1), Duration::from_secs(20));
        assert_eq!(backoff(i, 2), Duration::from_secs(40));
        assert_eq!(backoff(i, 3), Duration::from_secs(80));
        assert_eq!(backoff(i, 30), Duration::from_secs(80));
    }
}
