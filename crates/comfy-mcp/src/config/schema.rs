//! The schema: each section of the config file as a struct with the
//! peer's defaults (and ours), and the whole [`Config`].
//!
//! Every struct is `#[serde(default)]`, so a missing key keeps its default;
//! unknown keys are not refused here but reported by the loader (see
//! [`super::keys`]). The HTTP transport's sections are in
//! [`super::remote`]; how secrets in these structs are masked is in
//! [`super::show`].

use comfy_guard::SecurityConfig;
use serde::{Deserialize, Serialize};

use super::remote::Transport;

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
    pub redis_failure: RedisFailure,
    /// Prefix of every key the server writes.
    pub key_prefix: String,
    /// Seconds a job's backend and owner are kept in Redis.
    pub job_ttl: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_failure: RedisFailure::Local,
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
    /// When records reach the disk; ours.
    pub audit_flush: AuditFlush,
    /// What a record that cannot be written does to its call; ours.
    pub audit_failure: AuditFailure,
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
            audit_flush: AuditFlush::Interval,
            audit_failure: AuditFailure::FailClosed,
            audit_rotate_mb: 50,
            audit_keep: 5,
            audit_anchor: None,
            audit_anchor_every: 100,
        }
    }
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

/// `tasks:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Tasks {
    /// Run generation tools as MCP tasks when asked.
    pub enabled: bool,
    /// Where tasks live (`memory://`).
    pub backend_url: String,
    /// Longest a task waits for the client's answers to its questions,
    /// seconds (1 to 300: a question's sealed state lives five minutes).
    pub input_timeout: u64,
}

impl Default for Tasks {
    fn default() -> Self {
        Self {
            enabled: false,
            backend_url: "memory://".to_owned(),
            input_timeout: 300,
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

/// `state.redis_failure`: what the server does while Redis cannot be
/// reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisFailure {
    /// Each replica enforces the rate limits alone, and jobs are resolved
    /// from what it remembers (the default).
    #[default]
    Local,
    /// Calls are refused until Redis is back.
    FailClosed,
}

/// `logging.audit_flush`: when audit records reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditFlush {
    /// Synced every second (the default).
    #[default]
    Interval,
    /// Synced before each call's result is returned.
    EveryRecord,
}

impl From<AuditFlush> for comfy_audit::FlushPolicy {
    fn from(flush: AuditFlush) -> Self {
        match flush {
            AuditFlush::Interval => Self::default(),
            AuditFlush::EveryRecord => Self::EveryRecord,
        }
    }
}

/// `logging.audit_failure`: what a record that cannot be written (or
/// synced) does to its call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditFailure {
    /// The call is refused (the default).
    #[default]
    FailClosed,
    /// The call runs; the failure is counted and reported on stderr.
    FailOpen,
}

impl From<AuditFailure> for comfy_audit::FailurePolicy {
    fn from(failure: AuditFailure) -> Self {
        match failure {
            AuditFailure::FailClosed => Self::FailClosed,
            AuditFailure::FailOpen => Self::FailOpen,
        }
    }
}
