//! The configuration: the peer's `~/.comfyui-mcp/config.yaml` schema with
//! its defaults, its 13 `COMFYUI_*` environment variables parsed its way,
//! and where each effective value came from.
//!
//! Differences from the peer (see `docs/compatibility.md`): the file can
//! be chosen (`--config`, `COMFYUI_MCP_CONFIG`); an invalid value is a
//! start-up error naming the file, key and value instead of a stack trace;
//! an unknown key is a warning naming the nearest known key; a few keys
//! are ours (audit flush, failure policy and rotation, the tool deadline
//! and concurrency, the inline result budget).
//!
//! One job per file:
//! - `schema`: the sections and their defaults, and [`Config`];
//! - `remote`: `transport.remote` (tokens, principals, OAuth);
//! - `keys`: every known key, the secret ones, unknown-key warnings;
//! - `load`: the layering (defaults, file, environment) and each key's
//!   [`Source`];
//! - `env`: the environment variables, the peer's and ours;
//! - `validate`: what the types cannot check, with precise errors;
//! - `show`: `config show` and the masked `Debug` of secrets.
//!
//! Here: what they share (the loaded result, sources, errors).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

mod env;
mod keys;
mod load;
mod remote;
mod schema;
mod show;
mod validate;

pub use keys::KNOWN;
pub use load::{MAX_CONFIG_BYTES, config_path, load};
pub use remote::{OAUTH_PRINCIPALS, OAuth, OAuthScopes, Remote, Transport};
pub use schema::{
    AuditFailure, AuditFlush, BackendConfig, ComfyUi, Config, Logging, ModelSearch, RateLimits, RateTotals,
    RedisFailure, Server, StateConfig, Tasks, ToolsConfig,
};
pub use validate::{MAX_BACKENDS, valid_backend_name};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The config file.
    File,
    /// An environment variable.
    Env(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File => f.write_str("file"),
            Source::Env(var) => write!(f, "env {var}"),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is not valid YAML for the schema.
    #[error("config file {path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (it names the key and line).
        reason: String,
    },
    /// A value is out of range or malformed.
    #[error("config {origin}: `{key}` = {value}: {reason}")]
    Invalid {
        /// File path or environment variable.
        origin: String,
        /// The key.
        key: String,
        /// The value, secrets masked.
        value: String,
        /// Why.
        reason: String,
    },
}

/// A loaded configuration with its provenance.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// Warnings (unknown keys, with the nearest known one).
    pub warnings: Vec<String>,
    /// Each leaf key's source.
    pub sources: BTreeMap<String, Source>,
}
