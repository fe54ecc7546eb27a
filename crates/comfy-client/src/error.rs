//! What can go wrong talking to ComfyUI.

use std::time::Duration;

use serde_json::Value;

/// A failed client call. Messages are lower-case, say what was being done,
/// and never contain credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The base URL or a configuration value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An argument the caller passed is unusable (an empty file name, ...).
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// No connection could be made, or it broke before an answer came.
    #[error("cannot reach ComfyUI for {what}: {reason}")]
    Connect {
        /// What was being done.
        what: String,
        /// The cause, without credentials.
        reason: String,
        /// Whether the request never left: no connection could be made,
        /// so ComfyUI cannot have acted on it (a `POST /prompt` that
        /// failed this way may go to another server).
        unsent: bool,
    },
    /// The call did not finish in time.
    #[error("ComfyUI did not answer {what} within {after:?}")]
    Timeout {
        /// What was being done.
        what: String,
        /// How long it waited.
        after: Duration,
    },
    /// ComfyUI answered with an error status.
    #[error("{what} failed: ComfyUI answered {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        /// What was being done.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body (at most 512 bytes).
        body: String,
    },
    /// A response body larger than the cap for it.
    #[error("{what}: ComfyUI's response is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What was being read.
        what: String,
        /// The cap.
        limit: usize,
    },
    /// A response that is not the JSON expected.
    #[error("{what}: unexpected response from ComfyUI: {reason}")]
    Decode {
        /// What was being read.
        what: String,
        /// Why it did not decode.
        reason: String,
    },
    /// ComfyUI refused a prompt (its 400 from `POST /prompt`).
    #[error("ComfyUI refused the prompt: {}", error.get("message").and_then(Value::as_str).unwrap_or("validation failed"))]
    ValidationFailed {
        /// ComfyUI's `error` object (boxed to keep `Error` small).
        error: Box<Value>,
        /// ComfyUI's `node_errors` object.
        node_errors: Box<Value>,
    },
    /// The WebSocket could not be opened or broke.
    #[error("websocket: {0}")]
    WebSocket(String),
}

impl Error {
    /// Whether the request certainly never reached ComfyUI (the connection
    /// could not be made), so sending it elsewhere cannot run it twice.
    #[must_use]
    pub fn never_sent(&self) -> bool {
        matches!(self, Error::Connect { unsent: true, .. })
    }
}
