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

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use comfy_guard::SecurityConfig;
use serde::Deserialize;
use serde_json::Value;

/// `comfyui:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ComfyUi {
    /// Where ComfyUI listens.
    pub url: String,
    /// The address clients use for image URLs, when it differs.
    pub external_url: Option<String>,
    /// Verify TLS certificates.
    pub tls_verify: bool,
    /// Connect timeout, seconds.
    pub timeout_connect: u64,
    /// Read timeout, seconds (also the longest wait for a job).
    pub timeout_read: u64,
    /// Several ComfyUI servers (ours): when set, `url` and
    /// `external_url` are not used.
    pub backends: Vec<BackendConfig>,
    /// Seconds between health checks of each backend (ours; a failing
    /// backend is checked less often, up to 8 times this).
    pub health_interval: u64,
    /// The Comfy account API key paid API nodes are charged to, sent as
    /// `extra_data.api_key_comfy_org` with each submission (ours; a
    /// secret: masked in `config show`, never written to the audit log, a
    /// result or an error). A call's `api_key_comfy_org` argument takes
    /// precedence.
    pub api_key_comfy_org: Option<String>,
}

impl Default for ComfyUi {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8188".to_owned(),
            external_url: None,
            tls_verify: true,
            timeout_connect: 30,
            timeout_read: 300,
            backends: Vec::new(),
            health_interval: 10,
            api_key_comfy_org: None,
        }
    }
}

/// One entry of `comfyui.backends`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// What tools and results call it (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Where it listens.
    pub url: String,
    /// The address clients use for its image URLs, when it differs.
    #[serde(default)]
    pub external_url: Option<String>,
    /// Its share of new jobs relative to the others (default 1): queue
    /// depth is divided by it when routing.
    #[serde(default = "one")]
    pub weight: u32,
    /// Free-form labels, shown by `comfyui_get_system_info`.
    #[serde(default)]
    pub tags: Vec<String>,
}

fn one() -> u32 {
    1
}

/// `state:` (ours): what several replicas share through Redis.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct StateConfig {
    /// `redis://[user:password@]host:port[/db]`; none keeps everything in
    /// this process.
    pub redis_url: Option<String>,
    /// When Redis cannot be reached: `local` (each replica enforces the
    /// rate limits alone, and jobs are resolved from what it remembers)
    /// or `fail_closed` (calls are refused until Redis is back).
    pub redis_failure: String,
    /// Prefix of every key the server writes.
    pub key_prefix: String,
    /// Seconds a job's backend and owner are kept in Redis.
    pub job_ttl: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_failure: "local".to_owned(),
            key_prefix: "comfy-mcp".to_owned(),
            job_ttl: 7 * 24 * 3600,
        }
    }
}

/// `rate_limits:` (calls per minute per category). With several
/// principals on the HTTP transport, each principal has these rates of its
/// own, and `total` caps all principals together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    /// Workflow management (cancel, clear, interrupt, settings, custom nodes).
    pub workflow: u32,
    /// Generation (submitting work).
    pub generation: u32,
    /// File operations (uploads, images, downloads).
    pub file_ops: u32,
    /// Everything that only reads.
    pub read_only: u32,
    /// The ceiling over all principals together; ours.
    pub total: RateTotals,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            workflow: 10,
            generation: 10,
            file_ops: 30,
            read_only: 60,
            total: RateTotals::default(),
        }
    }
}

/// `rate_limits.total:` calls per minute per category for all principals
/// together; unset, a category's rate times the number of principals (so
/// no principal's own rate can be eaten by the others); ours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RateTotals {
    /// Workflow management.
    pub workflow: Option<u32>,
    /// Generation.
    pub generation: Option<u32>,
    /// File operations.
    pub file_ops: Option<u32>,
    /// Reads.
    pub read_only: Option<u32>,
}

/// `logging:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Logging {
    /// The audit log (`~` expanded).
    pub audit_file: String,
    /// `interval` (fsync every second) or `every_record`; ours.
    pub audit_flush: String,
    /// `fail_closed` or `fail_open`; ours.
    pub audit_failure: String,
    /// Rotate the audit log past this many MiB (0: never); ours.
    pub audit_rotate_mb: u64,
    /// Rotated audit files kept; ours.
    pub audit_keep: usize,
    /// Where the audit chain's head is copied (a file, or `syslog`), so a
    /// cut tail shows in `audit verify`; ours.
    pub audit_anchor: Option<String>,
    /// Copy the head after this many records (also after a process's
    /// first record and on shutdown); ours.
    pub audit_anchor_every: u64,
}

impl Default for Logging {
    fn default() -> Self {
        Self {
            audit_file: "~/.comfyui-mcp/audit.log".to_owned(),
            audit_flush: "interval".to_owned(),
            audit_failure: "fail_closed".to_owned(),
            audit_rotate_mb: 50,
            audit_keep: 5,
            audit_anchor: None,
            audit_anchor_every: 100,
        }
    }
}

/// `transport.remote:`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent switches of the config file, each with its own key"
)]
pub struct Remote {
    /// Serve Streamable HTTP instead of stdio.
    pub enabled: bool,
    /// Listen address.
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// Bearer token every request must carry (secret); ours.
    pub auth_token: Option<String>,
    /// Serve on a non-loopback address without a token; ours.
    pub allow_unauthenticated: bool,
    /// Allowed `Origin` values (`scheme://host:port`, or `:*` for any
    /// port), besides the loopback origins; ours.
    pub allowed_origins: Vec<String>,
    /// Allowed `Host` names, besides the loopback names; ours.
    pub allowed_hosts: Vec<String>,
    /// Keep the loopback names and origins allowed besides
    /// `allowed_hosts` and `allowed_origins` (default true); ours.
    pub allow_loopback: bool,
    /// Named bearer tokens, principal name to token (secrets); ours. Each
    /// principal sees only its own jobs unless `share_jobs` is set.
    pub auth_tokens: BTreeMap<String, String>,
    /// Let every authenticated principal see every job; ours.
    pub share_jobs: bool,
    /// Most jobs one client (principal, else session) may have queued or
    /// running at once; 0 for no cap; ours.
    pub max_queued_jobs_per_client: usize,
    /// Most MCP sessions alive at once, all principals together; ours.
    pub max_sessions: usize,
    /// Most MCP sessions one principal may have alive at once, with two or
    /// more principals; 0 for an equal share of `max_sessions`; ours.
    pub max_sessions_per_principal: usize,
    /// Seconds a session may sit unused before it is closed; ours.
    pub session_idle_timeout: u64,
    /// Seconds a client has to send its request headers; ours.
    pub header_timeout: u64,
    /// Seconds a client has to send its request body; ours.
    pub request_timeout: u64,
    /// PEM certificate chain: serve HTTPS (with `tls_key`); ours.
    pub tls_cert: Option<String>,
    /// PEM private key for `tls_cert`; ours.
    pub tls_key: Option<String>,
    /// OAuth: JWT access tokens from the named authorization servers; ours.
    pub oauth: OAuth,
}

/// How many principals OAuth's subjects count as where a number is
/// needed (the default `rate_limits.total` ceilings and the default share
/// of `max_sessions` per principal).
pub const OAUTH_PRINCIPALS: usize = 10;

/// `transport.remote.oauth:` (ours): accept JWT access tokens issued by
/// the named authorization servers, besides the static tokens (see
/// `crate::http::oauth`). Off while `issuers` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OAuth {
    /// Issuer identifiers of the authorization servers trusted (RFC 8414
    /// `issuer`, exactly as in their tokens' `iss`).
    pub issuers: Vec<String>,
    /// This server's canonical resource URI, the audience tokens must name
    /// (RFC 8707), e.g. `https://mcp.example.com/mcp`.
    pub resource: Option<String>,
    /// Signature algorithms accepted (`RS256`, `PS256`, `ES256`, `ES384`,
    /// `EdDSA`).
    pub algorithms: Vec<String>,
    /// Seconds of clock difference forgiven on `exp`, `nbf` and `iat`.
    pub leeway: u64,
    /// Seconds an issuer's keys are used before they are fetched again.
    pub jwks_cache: u64,
    /// Fewest seconds between two fetches of one issuer's keys (a token
    /// naming an unknown key fetches them early, at most this often).
    pub jwks_refresh_interval: u64,
    /// PEM CA certificates trusted for the issuers' HTTPS besides the
    /// system's roots.
    pub ca_file: Option<String>,
    /// The scope each kind of call needs.
    pub scopes: OAuthScopes,
}

impl Default for OAuth {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            resource: None,
            algorithms: vec!["RS256".to_owned(), "ES256".to_owned()],
            leeway: 60,
            jwks_cache: 600,
            jwks_refresh_interval: 30,
            ca_file: None,
            scopes: OAuthScopes::default(),
        }
    }
}

impl OAuth {
    /// Whether OAuth is on.
    #[must_use]
    pub fn enabled(&self) -> bool {
        !self.issuers.is_empty()
    }
}

/// `transport.remote.oauth.scopes:`: the scope a token must hold for
/// each kind of call. One scope may serve several kinds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OAuthScopes {
    /// Read-only tools, resources, prompts and completions.
    pub read: String,
    /// Tools that start or stop jobs and upload inputs.
    pub generate: String,
    /// Installing, updating and removing custom nodes.
    pub nodes: String,
    /// Downloading models (and cancelling downloads).
    pub models: String,
    /// Changing ComfyUI's settings.
    pub settings: String,
}

impl Default for OAuthScopes {
    fn default() -> Self {
        Self {
            read: "comfyui:read".to_owned(),
            generate: "comfyui:generate".to_owned(),
            nodes: "comfyui:nodes".to_owned(),
            models: "comfyui:models".to_owned(),
            settings: "comfyui:settings".to_owned(),
        }
    }
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("enabled", &self.enabled)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("auth_token", &self.auth_token.as_deref().map(mask))
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .field("allowed_origins", &self.allowed_origins)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allow_loopback", &self.allow_loopback)
            .field(
                "auth_tokens",
                &self.auth_tokens.keys().map(|k| (k, "****")).collect::<BTreeMap<_, _>>(),
            )
            .field("share_jobs", &self.share_jobs)
            .field("max_queued_jobs_per_client", &self.max_queued_jobs_per_client)
            .field("max_sessions", &self.max_sessions)
            .field("max_sessions_per_principal", &self.max_sessions_per_principal)
            .field("session_idle_timeout", &self.session_idle_timeout)
            .field("header_timeout", &self.header_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("oauth", &self.oauth)
            .finish()
    }
}

impl Remote {
    /// How many principals the tokens name (`auth_token` is `default`);
    /// with OAuth, its subjects count as [`OAUTH_PRINCIPALS`] more.
    #[must_use]
    pub fn principal_count(&self) -> usize {
        usize::from(self.auth_token.as_ref().is_some_and(|t| !t.is_empty()))
            + self.auth_tokens.len()
            + if self.oauth.enabled() { OAUTH_PRINCIPALS } else { 0 }
    }

    /// The most sessions one principal may have: `None` with fewer than two
    /// principals (nobody to starve), else `max_sessions_per_principal` or
    /// an equal share of `max_sessions` (at least 1).
    #[must_use]
    pub fn sessions_per_principal(&self) -> Option<usize> {
        let n = self.principal_count();
        if n < 2 {
            return None;
        }
        Some(match self.max_sessions_per_principal {
            0 => (self.max_sessions / n).max(1),
            cap => cap,
        })
    }
}

impl Default for Remote {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "127.0.0.1".to_owned(),
            port: 8080,
            auth_token: None,
            allow_unauthenticated: false,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            allow_loopback: true,
            auth_tokens: BTreeMap::new(),
            share_jobs: false,
            max_queued_jobs_per_client: 10,
            max_sessions: 100,
            max_sessions_per_principal: 0,
            session_idle_timeout: 900,
            header_timeout: 10,
            request_timeout: 30,
            tls_cert: None,
            tls_key: None,
            oauth: OAuth::default(),
        }
    }
}

/// `transport:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Transport {
    /// The HTTP transport.
    pub remote: Remote,
}

/// `model_search:`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ModelSearch {
    /// HuggingFace token (secret).
    pub huggingface_token: String,
    /// CivitAI API key (secret).
    pub civitai_api_key: String,
    /// Results fetched per search.
    pub max_search_results: u32,
    /// CivitAI's API base (ours; tests point it at a simulation).
    pub civitai_api_base: String,
    /// HuggingFace's API base (ours; `HF_ENDPOINT` sets it too).
    pub huggingface_api_base: String,
}

impl Default for ModelSearch {
    fn default() -> Self {
        Self {
            huggingface_token: String::new(),
            civitai_api_key: String::new(),
            max_search_results: 10,
            civitai_api_base: "https://civitai.com".to_owned(),
            huggingface_api_base: "https://huggingface.co".to_owned(),
        }
    }
}

impl fmt::Debug for ModelSearch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelSearch")
            .field("huggingface_token", &mask(&self.huggingface_token))
            .field("civitai_api_key", &mask(&self.civitai_api_key))
            .field("max_search_results", &self.max_search_results)
            .field("civitai_api_base", &self.civitai_api_base)
            .field("huggingface_api_base", &self.huggingface_api_base)
            .finish()
    }
}

/// `tasks:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Tasks {
    /// Run generation tools as MCP tasks when asked.
    pub enabled: bool,
    /// Where tasks live (`memory://`).
    pub backend_url: String,
}

impl Default for Tasks {
    fn default() -> Self {
        Self {
            enabled: false,
            backend_url: "memory://".to_owned(),
        }
    }
}

/// `server:` (ours): limits around every tool call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Server {
    /// Longest a tool call may run, seconds (waiting tools end with
    /// `status: "timeout"` before it).
    pub tool_deadline: u64,
    /// Tool calls running at once; more wait.
    pub max_concurrent_calls: usize,
    /// Largest result returned inline, bytes.
    pub max_inline_bytes: usize,
    /// Interrupt (or dequeue) the job of a waiting call whose client
    /// cancels or goes away; `false` lets it finish.
    pub interrupt_abandoned_jobs: bool,
    /// Interrupt (or dequeue) a job whose waiting call ran out of time,
    /// instead of leaving it for the caller to poll or cancel.
    pub interrupt_on_wait_timeout: bool,
    /// The wedge watchdog: a job the server submitted that has started and
    /// then reports no progress for this many seconds is interrupted and
    /// recorded as `stalled` (a waiting call is answered so); 0 turns it
    /// off.
    pub stall_timeout: u64,
    /// Memory all image work at once may take (decoding uploads to check
    /// them, previews of large images), MiB; over it, calls wait.
    pub image_memory_mb: u64,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            tool_deadline: 600,
            max_concurrent_calls: 16,
            max_inline_bytes: 1 << 20,
            interrupt_abandoned_jobs: true,
            interrupt_on_wait_timeout: false,
            stall_timeout: 600,
            image_memory_mb: crate::images::DEFAULT_BUDGET_MB,
        }
    }
}

/// `tools:` (ours): which tool groups the server exposes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ToolsConfig {
    /// Enabled groups (default: all): generation, jobs, files, discovery,
    /// workflow, custom_nodes, models, settings. Tools of other groups are
    /// absent from `tools/list` and refused if called.
    pub groups: Vec<String>,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            groups: crate::tools::GROUPS.iter().map(|g| (*g).to_owned()).collect(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `comfyui:`.
    pub comfyui: ComfyUi,
    /// `security:`.
    pub security: SecurityConfig,
    /// `rate_limits:`.
    pub rate_limits: RateLimits,
    /// `logging:`.
    pub logging: Logging,
    /// `transport:`.
    pub transport: Transport,
    /// `model_search:`.
    pub model_search: ModelSearch,
    /// `tasks:`.
    pub tasks: Tasks,
    /// `server:` (ours).
    pub server: Server,
    /// `tools:` (ours).
    pub tools: ToolsConfig,
    /// `limits:` (ours): what one job may cost.
    pub limits: comfy_guard::JobLimits,
    /// `state:` (ours): Redis, for several replicas.
    pub state: StateConfig,
}

impl Config {
    /// Points this configuration at a local ComfyUI simulator at `url`
    /// (`comfy-mcp --sim`): it takes `comfyui.url`'s place (and
    /// `comfyui.external_url`'s), and answers CivitAI's and HuggingFace's
    /// search APIs too.
    pub fn use_simulator(&mut self, url: &str) {
        url.clone_into(&mut self.comfyui.url);
        self.comfyui.external_url = None;
        url.clone_into(&mut self.model_search.civitai_api_base);
        url.clone_into(&mut self.model_search.huggingface_api_base);
    }
}

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

/// Every known key, dotted.
pub const KNOWN: &[&str] = &[
    "comfyui.url",
    "comfyui.external_url",
    "comfyui.tls_verify",
    "comfyui.timeout_connect",
    "comfyui.timeout_read",
    "comfyui.backends",
    "comfyui.health_interval",
    "comfyui.api_key_comfy_org",
    "security.mode",
    "security.allowed_nodes",
    "security.allowed_node_packs",
    "security.dangerous_nodes",
    "security.extra_dangerous_nodes",
    "security.max_upload_size_mb",
    "security.allowed_extensions",
    "security.allowed_download_domains",
    "security.allowed_model_extensions",
    "security.allowed_custom_nodes",
    "security.allowed_fetch_domains",
    "security.fetch_trusted_addresses",
    "security.allow_api_nodes",
    "rate_limits.workflow",
    "rate_limits.generation",
    "rate_limits.file_ops",
    "rate_limits.read_only",
    "rate_limits.total.workflow",
    "rate_limits.total.generation",
    "rate_limits.total.file_ops",
    "rate_limits.total.read_only",
    "logging.audit_file",
    "logging.audit_flush",
    "logging.audit_failure",
    "logging.audit_rotate_mb",
    "logging.audit_keep",
    "logging.audit_anchor",
    "logging.audit_anchor_every",
    "transport.remote.enabled",
    "transport.remote.host",
    "transport.remote.port",
    "transport.remote.auth_token",
    "transport.remote.allow_unauthenticated",
    "transport.remote.allowed_origins",
    "transport.remote.allowed_hosts",
    "transport.remote.allow_loopback",
    "transport.remote.auth_tokens",
    "transport.remote.share_jobs",
    "transport.remote.max_queued_jobs_per_client",
    "transport.remote.max_sessions",
    "transport.remote.max_sessions_per_principal",
    "transport.remote.session_idle_timeout",
    "transport.remote.header_timeout",
    "transport.remote.request_timeout",
    "transport.remote.tls_cert",
    "transport.remote.tls_key",
    "transport.remote.oauth.issuers",
    "transport.remote.oauth.resource",
    "transport.remote.oauth.algorithms",
    "transport.remote.oauth.leeway",
    "transport.remote.oauth.jwks_cache",
    "transport.remote.oauth.jwks_refresh_interval",
    "transport.remote.oauth.ca_file",
    "transport.remote.oauth.scopes.read",
    "transport.remote.oauth.scopes.generate",
    "transport.remote.oauth.scopes.nodes",
    "transport.remote.oauth.scopes.models",
    "transport.remote.oauth.scopes.settings",
    "model_search.huggingface_token",
    "model_search.civitai_api_key",
    "model_search.max_search_results",
    "model_search.civitai_api_base",
    "model_search.huggingface_api_base",
    "tasks.enabled",
    "tasks.backend_url",
    "server.tool_deadline",
    "server.max_concurrent_calls",
    "server.max_inline_bytes",
    "server.interrupt_abandoned_jobs",
    "server.interrupt_on_wait_timeout",
    "server.stall_timeout",
    "server.image_memory_mb",
    "tools.groups",
    "limits.max_pixels",
    "limits.max_batch_size",
    "limits.max_frames",
    "limits.max_steps",
    "limits.max_upscale_factor",
    "state.redis_url",
    "state.redis_failure",
    "state.key_prefix",
    "state.job_ttl",
];

/// Largest config file read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Keys whose values are secrets.
const SECRET: &[&str] = &[
    "comfyui.api_key_comfy_org",
    "model_search.huggingface_token",
    "model_search.civitai_api_key",
    "transport.remote.auth_token",
    "state.redis_url",
];

/// The environment variables (the peer's 13, then ours), with the key each sets.
const ENV: &[(&str, &str)] = &[
    ("COMFYUI_URL", "comfyui.url"),
    ("COMFYUI_EXTERNAL_URL", "comfyui.external_url"),
    ("COMFYUI_TLS_VERIFY", "comfyui.tls_verify"),
    ("COMFYUI_TIMEOUT_CONNECT", "comfyui.timeout_connect"),
    ("COMFYUI_TIMEOUT_READ", "comfyui.timeout_read"),
    ("COMFYUI_SECURITY_MODE", "security.mode"),
    ("COMFYUI_AUDIT_FILE", "logging.audit_file"),
    ("COMFYUI_HUGGINGFACE_TOKEN", "model_search.huggingface_token"),
    ("COMFYUI_CIVITAI_API_KEY", "model_search.civitai_api_key"),
    ("COMFYUI_MAX_SEARCH_RESULTS", "model_search.max_search_results"),
    ("COMFYUI_ALLOWED_DOWNLOAD_DOMAINS", "security.allowed_download_domains"),
    ("COMFYUI_TASKS_ENABLED", "tasks.enabled"),
    ("COMFYUI_TASKS_BACKEND_URL", "tasks.backend_url"),
    ("COMFYUI_MCP_AUTH_TOKEN", "transport.remote.auth_token"),
    ("COMFYUI_MCP_REDIS_URL", "state.redis_url"),
    ("COMFYUI_API_KEY_COMFY_ORG", "comfyui.api_key_comfy_org"),
    // As HuggingFace's own tools read it.
    ("HF_ENDPOINT", "model_search.huggingface_api_base"),
];

fn mask(s: &str) -> &'static str {
    if s.is_empty() { "" } else { "***" }
}

/// The file to read: `explicit`, else `COMFYUI_MCP_CONFIG`, else
/// `~/.comfyui-mcp/config.yaml`.
pub fn config_path(explicit: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = env("COMFYUI_MCP_CONFIG").filter(|p| !p.is_empty()) {
        return comfy_audit::expand_home(&p);
    }
    comfy_audit::expand_home("~/.comfyui-mcp/config.yaml")
}

/// Loads the configuration: the file (missing means defaults, unless it
/// was named explicitly), then the environment, then validation.
///
/// # Errors
/// [`ConfigError`] naming the file or variable, the key and the value.
pub fn load(explicit: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, ConfigError> {
    let path = config_path(explicit, env);
    let shown = path.display().to_string();
    if let Ok(meta) = std::fs::metadata(&path)
        && meta.len() > MAX_CONFIG_BYTES
    {
        return Err(ConfigError::Read {
            path: shown,
            reason: format!("the file is larger than {} KiB", MAX_CONFIG_BYTES >> 10),
        });
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => None,
        Err(e) => {
            return Err(ConfigError::Read {
                path: shown,
                reason: e.kind().to_string(),
            });
        }
    };
    let mut warnings = Vec::new();
    let mut sources: BTreeMap<String, Source> = KNOWN.iter().map(|k| ((*k).to_owned(), Source::Default)).collect();
    let mut doc = Value::Object(serde_json::Map::new());
    if let Some(text) = &text {
        let yaml: serde_norway::Value = serde_norway::from_str(text).map_err(|e| ConfigError::Parse {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        // The peer ignores a document that is not a mapping.
        if yaml.is_mapping() {
            doc = serde_json::to_value(&yaml).map_err(|e| ConfigError::Parse {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            let mut seen = Vec::new();
            leaves(&doc, "", &mut seen);
            for key in seen {
                if KNOWN.contains(&key.as_str()) {
                    sources.insert(key, Source::File);
                } else if !KNOWN.iter().any(|k| k.starts_with(&format!("{key}."))) {
                    warnings.push(match nearest(&key) {
                        Some(n) => format!("{shown}: unknown key `{key}` is ignored (did you mean `{n}`?)"),
                        None => format!("{shown}: unknown key `{key}` is ignored"),
                    });
                }
            }
        } else if !yaml.is_null() {
            // An empty file is no configuration; anything else is a mistake.
            warnings.push(format!("{shown}: not a mapping, ignored"));
        }
    }
    let mut config: Config = serde_path_to_error::deserialize(doc).map_err(|e| ConfigError::Parse {
        path: shown.clone(),
        reason: format!("`{}`: {}", e.path(), e.inner()),
    })?;
    for (var, key) in ENV {
        if let Some(value) = env(var) {
            apply_env(&mut config, var, key, &value)?;
            sources.insert((*key).to_owned(), Source::Env(var));
        }
    }
    validate(&config, &sources, &shown)?;
    if !config.comfyui.backends.is_empty() && sources.get("comfyui.url") == Some(&Source::File) {
        warnings.push(format!(
            "{shown}: `comfyui.url` is not used when `comfyui.backends` is set"
        ));
    }
    Ok(Loaded {
        config,
        file: text.map(|_| path),
        warnings,
        sources,
    })
}

fn leaves(v: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(m) = v {
        for (k, child) in m {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if child.is_object() && !KNOWN.contains(&key.as_str()) {
                leaves(child, &key, out);
            } else {
                out.push(key);
            }
        }
    }
}

/// The known key closest to `key` (edit distance at most a third of its
/// length), for "did you mean".
fn nearest(key: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .map(|k| (strsim::levenshtein(k, key), *k))
        .filter(|(d, k)| *d <= k.len().max(key.len()) / 3)
        .min()
        .map(|(_, k)| k)
}

fn invalid(origin: &str, key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_owned(),
        key: key.to_owned(),
        value: if SECRET.contains(&key) {
            mask(value).to_owned()
        } else {
            format!("{value:?}")
        },
        reason: reason.into(),
    }
}

/// The peer's boolean: true only for `true`, `1`, `yes` (any case).
fn env_bool(value: &str) -> bool {
    matches!(value.to_lowercase().as_str(), "true" | "1" | "yes")
}

fn apply_env(c: &mut Config, var: &str, key: &str, value: &str) -> Result<(), ConfigError> {
    let origin = format!("environment variable {var}");
    let int = |v: &str| -> Result<u64, ConfigError> {
        v.trim()
            .parse::<u64>()
            .map_err(|_| invalid(&origin, key, v, "not a whole number"))
    };
    match var {
        "COMFYUI_URL" => value.clone_into(&mut c.comfyui.url),
        "COMFYUI_EXTERNAL_URL" => c.comfyui.external_url = (!value.is_empty()).then(|| value.to_owned()),
        "COMFYUI_TLS_VERIFY" => c.comfyui.tls_verify = env_bool(value),
        "COMFYUI_TIMEOUT_CONNECT" => c.comfyui.timeout_connect = int(value)?,
        "COMFYUI_TIMEOUT_READ" => c.comfyui.timeout_read = int(value)?,
        "COMFYUI_SECURITY_MODE" => {
            c.security.mode = serde_json::from_value(Value::from(value))
                .map_err(|_| invalid(&origin, key, value, "must be `audit` or `enforce`"))?;
        }
        "COMFYUI_AUDIT_FILE" => value.clone_into(&mut c.logging.audit_file),
        "COMFYUI_API_KEY_COMFY_ORG" => c.comfyui.api_key_comfy_org = (!value.is_empty()).then(|| value.to_owned()),
        "COMFYUI_HUGGINGFACE_TOKEN" => value.clone_into(&mut c.model_search.huggingface_token),
        "COMFYUI_CIVITAI_API_KEY" => value.clone_into(&mut c.model_search.civitai_api_key),
        "COMFYUI_MAX_SEARCH_RESULTS" => {
            c.model_search.max_search_results =
                u32::try_from(int(value)?).map_err(|_| invalid(&origin, key, value, "too large"))?;
        }
        "COMFYUI_ALLOWED_DOWNLOAD_DOMAINS" => {
            c.security.allowed_download_domains = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        "COMFYUI_TASKS_ENABLED" => c.tasks.enabled = env_bool(value),
        "COMFYUI_TASKS_BACKEND_URL" => value.clone_into(&mut c.tasks.backend_url),
        "COMFYUI_MCP_AUTH_TOKEN" => c.transport.remote.auth_token = (!value.is_empty()).then(|| value.to_owned()),
        "COMFYUI_MCP_REDIS_URL" => c.state.redis_url = (!value.is_empty()).then(|| value.to_owned()),
        "HF_ENDPOINT" if !value.is_empty() => value.clone_into(&mut c.model_search.huggingface_api_base),
        _ => {}
    }
    Ok(())
}

fn check_url(url: &str) -> Result<(), &'static str> {
    let (scheme, rest) = url.split_once("://").ok_or("URL must use http or https")?;
    if !matches!(scheme, "http" | "https") {
        return Err("URL must use http or https");
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err("URL must have a valid host");
    }
    Ok(())
}

fn validate(c: &Config, sources: &BTreeMap<String, Source>, file: &str) -> Result<(), ConfigError> {
    let origin = |key: &str| match sources.get(key) {
        Some(Source::Env(var)) => format!("environment variable {var}"),
        _ => format!("file {file}"),
    };
    check_url(&c.comfyui.url).map_err(|r| invalid(&origin("comfyui.url"), "comfyui.url", &c.comfyui.url, r))?;
    for (key, base) in [
        ("model_search.civitai_api_base", &c.model_search.civitai_api_base),
        (
            "model_search.huggingface_api_base",
            &c.model_search.huggingface_api_base,
        ),
    ] {
        check_url(base).map_err(|r| invalid(&origin(key), key, base, r))?;
    }
    if let Some(ext) = &c.comfyui.external_url {
        check_url(ext).map_err(|r| invalid(&origin("comfyui.external_url"), "comfyui.external_url", ext, r))?;
    }
    check_backends(c, &origin("comfyui.backends"))?;
    check_state(&c.state, &origin)?;
    let f = c.limits.max_upscale_factor;
    if !f.is_finite() || f < 0.0 {
        return Err(invalid(
            &origin("limits.max_upscale_factor"),
            "limits.max_upscale_factor",
            &f.to_string(),
            "must be a number, 0 (no limit) or more",
        ));
    }
    c.security.check().map_err(|e| {
        invalid(
            &origin("security.max_upload_size_mb"),
            "security.max_upload_size_mb",
            &c.security.max_upload_size_mb.to_string(),
            e.message,
        )
    })?;
    for (key, v) in [
        ("rate_limits.workflow", c.rate_limits.workflow),
        ("rate_limits.generation", c.rate_limits.generation),
        ("rate_limits.file_ops", c.rate_limits.file_ops),
        ("rate_limits.read_only", c.rate_limits.read_only),
    ] {
        if v == 0 {
            return Err(invalid(&origin(key), key, "0", "must be at least 1 call per minute"));
        }
    }
    for (key, v) in [
        ("rate_limits.total.workflow", c.rate_limits.total.workflow),
        ("rate_limits.total.generation", c.rate_limits.total.generation),
        ("rate_limits.total.file_ops", c.rate_limits.total.file_ops),
        ("rate_limits.total.read_only", c.rate_limits.total.read_only),
    ] {
        if v == Some(0) {
            return Err(invalid(&origin(key), key, "0", "must be at least 1 call per minute"));
        }
    }
    if !matches!(c.logging.audit_flush.as_str(), "interval" | "every_record") {
        return Err(invalid(
            &origin("logging.audit_flush"),
            "logging.audit_flush",
            &c.logging.audit_flush,
            "must be `interval` or `every_record`",
        ));
    }
    if !matches!(c.logging.audit_failure.as_str(), "fail_closed" | "fail_open") {
        return Err(invalid(
            &origin("logging.audit_failure"),
            "logging.audit_failure",
            &c.logging.audit_failure,
            "must be `fail_closed` or `fail_open`",
        ));
    }
    if c.logging.audit_anchor_every == 0 {
        return Err(invalid(
            &origin("logging.audit_anchor_every"),
            "logging.audit_anchor_every",
            "0",
            "must be at least 1 record",
        ));
    }
    if c.logging.audit_anchor.as_deref() == Some("") {
        return Err(invalid(
            &origin("logging.audit_anchor"),
            "logging.audit_anchor",
            "",
            "must be a file path or `syslog` (leave it out for no anchor)",
        ));
    }
    let r = &c.transport.remote;
    if r.max_sessions == 0 || r.session_idle_timeout == 0 || r.header_timeout == 0 || r.request_timeout == 0 {
        return Err(invalid(
            &origin("transport.remote"),
            "transport.remote.max_sessions / session_idle_timeout / header_timeout / request_timeout",
            "0",
            "must be at least 1",
        ));
    }
    if r.tls_cert.is_some() != r.tls_key.is_some() {
        return Err(invalid(
            &origin("transport.remote"),
            "transport.remote.tls_cert / tls_key",
            if r.tls_cert.is_some() {
                "tls_cert only"
            } else {
                "tls_key only"
            },
            "set both or neither",
        ));
    }
    if let Some((name, _)) = r.auth_tokens.iter().find(|(n, t)| n.is_empty() || t.len() < 16) {
        return Err(invalid(
            &origin("transport.remote.auth_tokens"),
            "transport.remote.auth_tokens",
            name,
            "needs a non-empty principal name and a token of at least 16 characters",
        ));
    }
    if let Some(name) = r
        .auth_tokens
        .keys()
        .find(|n| n.starts_with(crate::http::oauth::PRINCIPAL_PREFIX))
    {
        return Err(invalid(
            &origin("transport.remote.auth_tokens"),
            "transport.remote.auth_tokens",
            name,
            format!(
                "principal names starting with `{}` are kept for OAuth subjects",
                crate::http::oauth::PRINCIPAL_PREFIX
            ),
        ));
    }
    if r.oauth.enabled() {
        crate::http::oauth::Settings::from_config(&r.oauth)
            .map_err(|(key, value, why)| invalid(&origin(key), key, &value, why))?;
    }
    if c.server.tool_deadline == 0 || c.server.max_concurrent_calls == 0 {
        return Err(invalid(
            &origin("server"),
            "server.tool_deadline / server.max_concurrent_calls",
            "0",
            "must be at least 1",
        ));
    }
    if let Some(bad) = c
        .tools
        .groups
        .iter()
        .find(|g| !crate::tools::GROUPS.contains(&g.as_str()))
    {
        return Err(invalid(
            &origin("tools.groups"),
            "tools.groups",
            bad,
            format!("unknown group; the groups are {}", crate::tools::GROUPS.join(", ")),
        ));
    }
    if !c.tasks.backend_url.starts_with("memory://") {
        return Err(invalid(
            &origin("tasks.backend_url"),
            "tasks.backend_url",
            &c.tasks.backend_url,
            "only memory:// is supported by this version",
        ));
    }
    Ok(())
}

/// A backend name: what a tool's `backend` argument and results use.
pub fn valid_backend_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
}

/// Most backends one server may front.
pub const MAX_BACKENDS: usize = 64;

fn check_backends(c: &Config, origin: &str) -> Result<(), ConfigError> {
    let key = "comfyui.backends";
    if c.comfyui.backends.len() > MAX_BACKENDS {
        return Err(invalid(
            origin,
            key,
            &c.comfyui.backends.len().to_string(),
            format!("at most {MAX_BACKENDS} backends"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, b) in c.comfyui.backends.iter().enumerate() {
        let at = format!("{key}[{i}]");
        if !valid_backend_name(&b.name) {
            return Err(invalid(
                origin,
                &format!("{at}.name"),
                &b.name,
                "must be 1 to 64 letters, digits, `-`, `_` or `.`",
            ));
        }
        if !seen.insert(b.name.as_str()) {
            return Err(invalid(origin, &format!("{at}.name"), &b.name, "names must be unique"));
        }
        check_url(&b.url).map_err(|r| invalid(origin, &format!("{at}.url"), &b.url, r))?;
        if let Some(ext) = &b.external_url {
            check_url(ext).map_err(|r| invalid(origin, &format!("{at}.external_url"), ext, r))?;
        }
        if b.weight == 0 {
            return Err(invalid(origin, &format!("{at}.weight"), "0", "must be at least 1"));
        }
    }
    if c.comfyui.health_interval == 0 {
        return Err(invalid(
            origin,
            "comfyui.health_interval",
            "0",
            "must be at least 1 second",
        ));
    }
    Ok(())
}

fn check_state(s: &StateConfig, origin: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
    if let Some(url) = &s.redis_url
        && !(url.starts_with("redis://") || url.starts_with("valkey://") || url.starts_with("redis+unix://"))
    {
        return Err(invalid(
            &origin("state.redis_url"),
            "state.redis_url",
            url,
            "must be a redis:// (or valkey://, redis+unix://) URL",
        ));
    }
    if !matches!(s.redis_failure.as_str(), "local" | "fail_closed") {
        return Err(invalid(
            &origin("state.redis_failure"),
            "state.redis_failure",
            &s.redis_failure,
            "must be `local` or `fail_closed`",
        ));
    }
    if !valid_backend_name(&s.key_prefix) {
        return Err(invalid(
            &origin("state.key_prefix"),
            "state.key_prefix",
            &s.key_prefix,
            "must be 1 to 64 letters, digits, `-`, `_` or `.`",
        ));
    }
    if s.job_ttl == 0 {
        return Err(invalid(
            &origin("state.job_ttl"),
            "state.job_ttl",
            "0",
            "must be at least 1 second",
        ));
    }
    Ok(())
}

impl Loaded {
    /// `config show`: every key with its effective value (secrets masked)
    /// and its source, one per line.
    pub fn show(&self) -> String {
        let value = serde_json::to_value(ShowConfig(&self.config)).unwrap_or(Value::Null);
        let mut out = String::new();
        match &self.file {
            Some(f) => {
                let _ = writeln!(out, "# config file: {}", f.display());
            }
            None => out.push_str("# config file: none (defaults)\n"),
        }
        for key in KNOWN {
            let mut v = &value;
            for part in key.split('.') {
                v = v.get(part).unwrap_or(&Value::Null);
            }
            let shown = if SECRET.contains(key) {
                Value::from(mask(v.as_str().unwrap_or_default()))
            } else {
                v.clone()
            };
            let source = self.sources.get(*key).cloned().unwrap_or(Source::Default);
            let _ = writeln!(out, "{key}: {shown}  # {source}");
        }
        out
    }
}

/// The config as plain JSON for display (secrets are masked by `show`).
struct ShowConfig<'a>(&'a Config);

impl serde::Serialize for ShowConfig<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        serde_json::json!({
            "comfyui": {"url": c.comfyui.url, "external_url": c.comfyui.external_url, "tls_verify": c.comfyui.tls_verify,
                        "timeout_connect": c.comfyui.timeout_connect, "timeout_read": c.comfyui.timeout_read,
                        "backends": c.comfyui.backends.iter().map(|b| serde_json::json!({
                            "name": b.name, "url": b.url, "external_url": b.external_url, "weight": b.weight, "tags": b.tags,
                        })).collect::<Vec<_>>(),
                        "health_interval": c.comfyui.health_interval,
                        "api_key_comfy_org": c.comfyui.api_key_comfy_org.as_deref().unwrap_or_default()},
            "security": {"mode": c.security.mode, "allowed_nodes": c.security.allowed_nodes, "allowed_node_packs": c.security.allowed_node_packs,
                         "dangerous_nodes": c.security.dangerous_nodes,
                         "extra_dangerous_nodes": c.security.extra_dangerous_nodes, "max_upload_size_mb": c.security.max_upload_size_mb,
                         "allowed_extensions": c.security.allowed_extensions, "allowed_download_domains": c.security.allowed_download_domains,
                         "allowed_model_extensions": c.security.allowed_model_extensions,
                         "allowed_custom_nodes": c.security.allowed_custom_nodes,
                         "allowed_fetch_domains": c.security.allowed_fetch_domains,
                         "fetch_trusted_addresses": c.security.fetch_trusted_addresses,
                         "allow_api_nodes": c.security.allow_api_nodes},
            "rate_limits": {"workflow": c.rate_limits.workflow, "generation": c.rate_limits.generation,
                            "file_ops": c.rate_limits.file_ops, "read_only": c.rate_limits.read_only,
                            "total": {"workflow": c.rate_limits.total.workflow, "generation": c.rate_limits.total.generation,
                                      "file_ops": c.rate_limits.total.file_ops, "read_only": c.rate_limits.total.read_only}},
            "logging": {"audit_file": c.logging.audit_file, "audit_flush": c.logging.audit_flush, "audit_failure": c.logging.audit_failure,
                        "audit_rotate_mb": c.logging.audit_rotate_mb, "audit_keep": c.logging.audit_keep,
                        "audit_anchor": c.logging.audit_anchor, "audit_anchor_every": c.logging.audit_anchor_every},
            "transport": {"remote": {"enabled": c.transport.remote.enabled, "host": c.transport.remote.host, "port": c.transport.remote.port,
                                     "auth_token": c.transport.remote.auth_token.as_deref().unwrap_or_default(),
                                     "allow_unauthenticated": c.transport.remote.allow_unauthenticated,
                                     "allowed_origins": c.transport.remote.allowed_origins,
                                     "allowed_hosts": c.transport.remote.allowed_hosts,
                                     "allow_loopback": c.transport.remote.allow_loopback,
                                     "auth_tokens": c.transport.remote.auth_tokens.keys().map(|k| (k.clone(), "****")).collect::<BTreeMap<_, _>>(),
                                     "share_jobs": c.transport.remote.share_jobs,
                                     "max_queued_jobs_per_client": c.transport.remote.max_queued_jobs_per_client,
                                     "max_sessions": c.transport.remote.max_sessions,
                                     "max_sessions_per_principal": c.transport.remote.max_sessions_per_principal,
                                     "session_idle_timeout": c.transport.remote.session_idle_timeout,
                                     "header_timeout": c.transport.remote.header_timeout,
                                     "request_timeout": c.transport.remote.request_timeout,
                                     "tls_cert": c.transport.remote.tls_cert,
                                     "tls_key": c.transport.remote.tls_key}},
            "model_search": {"huggingface_token": c.model_search.huggingface_token, "civitai_api_key": c.model_search.civitai_api_key,
                             "max_search_results": c.model_search.max_search_results,
                             "civitai_api_base": c.model_search.civitai_api_base,
                             "huggingface_api_base": c.model_search.huggingface_api_base},
            "tasks": {"enabled": c.tasks.enabled, "backend_url": c.tasks.backend_url},
            "server": {"tool_deadline": c.server.tool_deadline, "max_concurrent_calls": c.server.max_concurrent_calls,
                       "max_inline_bytes": c.server.max_inline_bytes,
                       "interrupt_abandoned_jobs": c.server.interrupt_abandoned_jobs,
                       "interrupt_on_wait_timeout": c.server.interrupt_on_wait_timeout,
                       "stall_timeout": c.server.stall_timeout,
                       "image_memory_mb": c.server.image_memory_mb},
            "tools": {"groups": c.tools.groups},
            "limits": {"max_pixels": c.limits.max_pixels, "max_batch_size": c.limits.max_batch_size,
                       "max_frames": c.limits.max_frames, "max_steps": c.limits.max_steps,
                       "max_upscale_factor": c.limits.max_upscale_factor},
            "state": {"redis_url": c.state.redis_url.as_deref().unwrap_or_default(), "redis_failure": c.state.redis_failure,
                      "key_prefix": c.state.key_prefix, "job_ttl": c.state.job_ttl},
        })
        .serialize(s)
    }
}
