//! What the operator sees: `config show` (every key, its effective value
//! and its source) and the `Debug` of the sections that hold secrets, all
//! with secrets masked.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde_json::Value;

use super::keys::{KNOWN, SECRET};
use super::remote::{OAuth, Remote};
use super::schema::ModelSearch;
use super::{Config, Loaded, Source};

pub(super) fn mask(s: &str) -> &'static str {
    if s.is_empty() { "" } else { "***" }
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
                                     "tls_key": c.transport.remote.tls_key,
                                     "oauth": oauth(&c.transport.remote.oauth)}},
            "model_search": {"huggingface_token": c.model_search.huggingface_token, "civitai_api_key": c.model_search.civitai_api_key,
                             "max_search_results": c.model_search.max_search_results,
                             "civitai_api_base": c.model_search.civitai_api_base,
                             "huggingface_api_base": c.model_search.huggingface_api_base},
            "tasks": {"enabled": c.tasks.enabled, "backend_url": c.tasks.backend_url, "input_timeout": c.tasks.input_timeout},
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

/// `transport.remote.oauth` for display (nothing in it is secret).
fn oauth(o: &OAuth) -> Value {
    serde_json::json!({
        "issuers": o.issuers, "resource": o.resource, "algorithms": o.algorithms, "leeway": o.leeway,
        "jwks_cache": o.jwks_cache, "jwks_refresh_interval": o.jwks_refresh_interval, "ca_file": o.ca_file,
        "scopes": {"read": o.scopes.read, "generate": o.scopes.generate, "nodes": o.scopes.nodes,
                   "models": o.scopes.models, "settings": o.scopes.settings},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `show` walks `KNOWN` through this value: a key missing from it would
    /// be shown as `null` whatever its value.
    #[test]
    fn every_known_key_is_displayed() {
        let value = serde_json::to_value(ShowConfig(&Config::default())).unwrap_or(Value::Null);
        for key in KNOWN {
            let mut v = Some(&value);
            for part in key.split('.') {
                v = v.and_then(|v| v.get(part));
            }
            assert!(v.is_some(), "{key} is missing from `config show`");
        }
    }
}
