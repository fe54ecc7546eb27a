//! Client configuration: where ComfyUI is, how long to wait, how much to
//! read, and how to authenticate.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default wait for response headers and between body chunks.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default deadline for one call, retries included.
pub const DEFAULT_DEADLINE: Duration = Duration::from_mins(2);
/// Default tries for idempotent calls.
pub const DEFAULT_TRIES: u32 = 3;

/// A secret that never shows in `Debug` or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Credentials for a ComfyUI behind an authenticating proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic ...`.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: Secret,
    },
}

/// Response size caps, per kind of answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Ordinary JSON answers.
    pub json: usize,
    /// `/object_info` (large: every node of every pack).
    pub object_info: usize,
    /// `/history` (can be huge).
    pub history: usize,
    /// Images and other files from `/view`.
    pub file: usize,
    /// One WebSocket message, reassembled.
    pub ws_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            json: 8 << 20,
            object_info: 64 << 20,
            history: 64 << 20,
            file: 100 << 20,
            ws_message: 32 << 20,
        }
    }
}

/// Everything a [`crate::Client`] needs to know.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) deadline: Duration,
    pub(crate) tries: u32,
    pub(crate) limits: Limits,
    pub(crate) user_agent: String,
    pub(crate) auth: Option<Auth>,
    pub(crate) tls_verify: bool,
    pub(crate) extra_ca: Option<PathBuf>,
    pub(crate) poll_interval: Duration,
    pub(crate) use_websocket: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            deadline: DEFAULT_DEADLINE,
            tries: DEFAULT_TRIES,
            limits: Limits::default(),
            user_agent: concat!("comfy-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            auth: None,
            tls_verify: true,
            extra_ca: None,
            poll_interval: Duration::from_secs(1),
            use_websocket: true,
        }
    }
}
