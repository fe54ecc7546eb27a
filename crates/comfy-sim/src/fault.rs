//! Fault injection: the knobs a reliability test turns to make the simulator
//! misbehave the way real servers and networks do.
//!
//! Faults are set on the builder before start ([`crate::SimBuilder::faults`])
//! or at run time on the handle ([`crate::SimHandle::set_faults`]); HTTP
//! faults target routes by their path without the `/api` prefix
//! (`"/prompt"`, `"/history"`, `"/view"`), so both spellings misbehave alike.

use std::collections::BTreeMap;
use std::time::Duration;

/// How one HTTP route misbehaves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpFault {
    /// Answer every request with this status and ComfyUI's plain-text body
    /// for it, without running the handler.
    Status(u16),
    /// Run the handler, then cut its body in half so it is not valid JSON.
    MalformedJson,
    /// Run the handler, then label the body `text/html; charset=utf-8`.
    WrongContentType,
    /// Run the handler, send the headers and half the body, then reset the
    /// connection.
    ResetMidBody,
    /// Answer 200 `application/json` with a body of this many bytes (an
    /// endless JSON array of zeros, streamed, never held in memory).
    Oversized(u64),
    /// Like `Oversized`, but without a `Content-Length` (chunked), so only
    /// a reader that counts what arrives can catch it.
    OversizedChunked(u64),
    /// Accept the request and never answer (a blackhole): the connection
    /// stays open until the client gives up.
    Hang,
    /// Answer 503 with `Retry-After: <seconds>`, without running the handler.
    RetryAfter(u64),
    /// Answer 200 with an HTML page (a proxy's or captive portal's), without
    /// running the handler.
    Html,
    /// Run the handler, then send half its body under the full
    /// `Content-Length` and end the response: a truncated body.
    Truncated,
    /// Without running the handler, answer 400 with ComfyUI's error shape
    /// whose `message` and `details` are the request body itself (a
    /// careless server or proxy quoting what it was sent, secrets
    /// included).
    Echo,
}

/// How the WebSocket misbehaves for connections opened while it is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsFault {
    /// Close the TCP connection, without a close frame, after this many
    /// messages.
    DropAfter(u32),
    /// Accept the connection and never send anything.
    Silent,
    /// Send a junk message (bad JSON, an unknown type, an unknown binary
    /// event) before every real message.
    Junk,
    /// Send another prompt's `executing` and `progress` events before every
    /// real message.
    Foreign,
    /// Send one text frame of this many bytes before the first message.
    OversizedFrame(usize),
}

/// How queued jobs misbehave while it is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobFault {
    /// Every job fails at its first executed node with an `execution_error`.
    Error,
    /// Every job starts and never finishes until it is interrupted or
    /// deleted.
    Hang,
}

/// The set of faults in force. The default has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Added before every HTTP response.
    pub latency: Option<Duration>,
    /// Per-route HTTP faults, keyed by path without the `/api` prefix.
    pub routes: BTreeMap<String, HttpFault>,
    /// WebSocket misbehaviour.
    pub ws: Option<WsFault>,
    /// Job misbehaviour.
    pub job: Option<JobFault>,
    /// Refuse TCP connections: the listener is closed until this is cleared.
    pub refuse_connections: bool,
    /// Accept TCP connections and close them at once, before any answer.
    pub reset_connections: bool,
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds latency before every HTTP response.
    #[must_use]
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }

    /// Makes the route at `path` (without `/api`) misbehave.
    #[must_use]
    pub fn route(mut self, path: &str, fault: HttpFault) -> Self {
        self.routes.insert(path.to_owned(), fault);
        self
    }

    /// Makes new WebSocket connections misbehave.
    #[must_use]
    pub fn ws(mut self, fault: WsFault) -> Self {
        self.ws = Some(fault);
        self
    }

    /// Makes jobs misbehave.
    #[must_use]
    pub fn job(mut self, fault: JobFault) -> Self {
        self.job = Some(fault);
        self
    }

    /// Refuses new TCP connections.
    #[must_use]
    pub fn refuse_connections(mut self, refuse: bool) -> Self {
        self.refuse_connections = refuse;
        self
    }

    /// Accepts new TCP connections and closes them before answering.
    #[must_use]
    pub fn reset_connections(mut self, reset: bool) -> Self {
        self.reset_connections = reset;
        self
    }
}
