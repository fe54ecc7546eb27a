//! The key list: every known dotted key, which of them are secrets, and
//! the unknown-key warning ("did you mean").
//!
//! `KNOWN` is the one list `config show`, the sources map and the
//! unknown-key check walk, so a new key needs an entry here besides its
//! field in the schema.

use serde_json::Value;

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
    "tasks.input_timeout",
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

/// Keys whose values are secrets.
pub(super) const SECRET: &[&str] = &[
    "comfyui.api_key_comfy_org",
    "model_search.huggingface_token",
    "model_search.civitai_api_key",
    "transport.remote.auth_token",
    "state.redis_url",
];

pub(super) fn leaves(v: &Value, prefix: &str, out: &mut Vec<String>) {
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
pub(super) fn nearest(key: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .map(|k| (strsim::levenshtein(k, key), *k))
        .filter(|(d, k)| *d <= k.len().max(key.len()) / 3)
        .min()
        .map(|(_, k)| k)
}
