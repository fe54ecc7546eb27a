//! A typed, bounded ComfyUI client that Rust applications can embed.
//!
//! Why: every conversation with ComfyUI goes through here, so every call
//! has a deadline, every body a size cap, every user-supplied path segment
//! or query value is percent-encoded, and only idempotent requests are
//! retried (`POST /prompt` never is).
//!
//! Invariants: knows nothing of MCP, tower, the guard or the audit log (its
//! only `comfy-*` dependency is `comfy-workflow`); TLS is rustls with the
//! ring provider; credentials never appear in `Debug` output, logs or error
//! messages; nothing ComfyUI sends can make it panic.
//!
//! Embedding it: submit a workflow, follow it, save what it made. (The
//! same flow is `examples/generate.rs`, which CI runs against `comfy-sim`
//! with `cargo xtask examples`; `watch.rs` and `upload.rs` sit beside it.)
//!
//! ```no_run
//! use std::time::Duration;
//! use comfy_client::{Client, JobStatus, PromptOptions};
//! use comfy_workflow::{Limits, Workflow};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("http://127.0.0.1:8188")
//!     .deadline(Duration::from_secs(60))
//!     .build()?;
//! let workflow = Workflow::from_json(&std::fs::read("workflow_api.json")?, &Limits::DEFAULT)?;
//! let mut job = client.submit(&workflow, PromptOptions::default()).await?;
//! let mut events = job.events();
//! while let Some(event) = events.next().await {
//!     println!("{event:?}"); // progress, previews, ... until the job ends
//! }
//! let outcome = job.wait(Duration::from_secs(600)).await?;
//! assert_eq!(outcome.status, JobStatus::Completed);
//! for output in &outcome.files {
//!     let file = client.view(&output.file, None).await?;
//!     std::fs::write(&output.file.filename, &file.bytes)?;
//! }
//! # Ok(()) }
//! ```

mod api;
mod cancel;
mod config;
mod error;
pub mod fetch;
mod job;
pub mod name;
mod transport;
pub mod types;
mod url;
mod ws;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use api::{Preview, PromptOptions, UploadOptions};
pub use cancel::{CancelMethod, Cancelled};
pub use config::{
    Auth, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DEADLINE, DEFAULT_READ_TIMEOUT, DEFAULT_TRIES, Limits, Secret,
};
pub use error::Error;
pub use job::{Job, JobEvents, JobOutcome, JobStatus, Progress, Tracking};
pub use ws::{Event, ImageFormat};

use config::Config;

/// A ComfyUI client. Cheap to clone (one shared connection pool), `Send`
/// and `Sync`.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: Arc<transport::Transport>,
    client_id: String,
    hub: tokio::sync::Mutex<Option<(Arc<ws::Hub>, tokio::task::JoinHandle<()>)>>,
    hub_ready: std::sync::OnceLock<Arc<ws::Hub>>,
    /// The parsed `/object_info` and when it was fetched.
    object_info: std::sync::Mutex<Option<(std::time::Instant, Arc<comfy_workflow::ObjectInfo>)>>,
    /// How jobs are cancelled on this server, once decided.
    cancel: cancel::CancelChoice,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some((_, task)) = self.hub.get_mut().take() {
            task.abort();
        }
    }
}

/// Configures a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    config: Config,
    client_id: Option<String>,
}

impl Client {
    /// A builder for the ComfyUI at `url` (`http(s)://host:port[/prefix]`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            config: Config::default(),
            client_id: None,
        }
    }

    /// The `clientId` this client uses for prompts and its WebSocket.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        self.inner.http.config.poll_interval
    }

    /// WebSocket junk messages skipped so far (not JSON, unknown binary
    /// types, ...).
    pub fn skipped_messages(&self) -> u64 {
        self.hub_if_started().map_or(0, |h| h.junk())
    }

    /// ComfyUI's queue length (`queue_remaining`: pending plus running) as
    /// its WebSocket last reported it, with when; `None` before this
    /// client's socket has seen a `status` message.
    pub fn last_queue_status(&self) -> Option<(u64, std::time::Instant)> {
        self.hub_if_started().and_then(|h| h.last_status())
    }

    /// Whether ComfyUI's WebSocket answers: a socket of its own (with a
    /// client id of its own) that must deliver a first message within
    /// `limit`. For health checks; jobs use the shared socket.
    ///
    /// # Errors
    /// [`Error::WebSocket`] saying what failed.
    pub async fn websocket_check(&self, limit: Duration) -> Result<(), Error> {
        ws::probe(&self.inner.http, &format!("{}-probe", self.inner.client_id), limit).await
    }

    pub(crate) fn hub_if_started(&self) -> Option<&Arc<ws::Hub>> {
        self.inner.hub_ready.get()
    }

    /// The shared socket, started on first use; `None` when jobs must be
    /// polled (the socket is off, or could not connect in time).
    pub(crate) async fn hub(&self) -> Option<Arc<ws::Hub>> {
        if !self.inner.http.config.use_websocket {
            return None;
        }
        let hub = {
            let mut slot = self.inner.hub.lock().await;
            if slot.is_none() {
                let hub = Arc::new(ws::Hub::default());
                let task = tokio::spawn(hub.clone().run(self.inner.http.clone(), self.inner.client_id.clone()));
                let _ = self.inner.hub_ready.set(hub.clone());
                *slot = Some((hub, task));
            }
            slot.as_ref().map(|(h, _)| h.clone())?
        };
        // Wait a little for the first connection; after that, a socket that
        // is down is reconnecting and jobs still subscribe (they poll too).
        let up = hub.wait_first_connection(self.inner.http.config.connect_timeout).await;
        (up || hub.is_connected()).then_some(hub)
    }
}

impl ClientBuilder {
    /// Connect timeout (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.config.connect_timeout = t;
        self
    }

    /// Wait for response headers and between body chunks (default 30 s).
    #[must_use]
    pub fn read_timeout(mut self, t: Duration) -> Self {
        self.config.read_timeout = t;
        self
    }

    /// Deadline for one call, retries included (default 120 s).
    #[must_use]
    pub fn deadline(mut self, t: Duration) -> Self {
        self.config.deadline = t;
        self
    }

    /// Tries for idempotent calls (default 3; 1 disables retries).
    #[must_use]
    pub fn tries(mut self, n: u32) -> Self {
        self.config.tries = n.max(1);
        self
    }

    /// Response size caps.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// The `User-Agent` header.
    #[must_use]
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.config.user_agent = ua.into();
        self
    }

    /// Credentials for an authenticating proxy in front of ComfyUI.
    #[must_use]
    pub fn auth(mut self, auth: Auth) -> Self {
        self.config.auth = Some(auth);
        self
    }

    /// Verify TLS certificates (default on). Turning it off is logged as a
    /// warning.
    #[must_use]
    pub fn tls_verify(mut self, verify: bool) -> Self {
        self.config.tls_verify = verify;
        self
    }

    /// An extra CA certificate file (PEM), trusted besides the system roots.
    #[must_use]
    pub fn extra_ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.extra_ca = Some(path.into());
        self
    }

    /// The `clientId` to use (default: a fresh random one).
    #[must_use]
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// How often jobs are polled when no WebSocket can be had (default 1 s).
    #[must_use]
    pub fn poll_interval(mut self, t: Duration) -> Self {
        self.config.poll_interval = t;
        self
    }

    /// Follow jobs over the WebSocket (default) or only by polling.
    #[must_use]
    pub fn websocket(mut self, on: bool) -> Self {
        self.config.use_websocket = on;
        self
    }

    /// Builds the client. No connection is made yet.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad URL, an unreadable extra CA file or
    /// credentials that cannot go in a header.
    pub fn build(self) -> Result<Client, Error> {
        let base = url::BaseUrl::parse(&self.url)?;
        let client_id = self
            .client_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let http = Arc::new(transport::Transport::new(base, self.config)?);
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                client_id,
                hub: tokio::sync::Mutex::new(None),
                hub_ready: std::sync::OnceLock::new(),
                object_info: std::sync::Mutex::new(None),
                cancel: cancel::CancelChoice::default(),
            }),
        })
    }
}
