//! Validation after loading: URLs, ranges, names and combinations the
//! types alone cannot express, each error naming where the value came
//! from (file or environment variable), the key and the value (masked
//! when it is a secret).

use std::collections::BTreeMap;

use super::keys::SECRET;
use super::schema::StateConfig;
use super::show::mask;
use super::{Config, ConfigError, Source};

pub(super) fn invalid(origin: &str, key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
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

pub(super) fn validate(c: &Config, sources: &BTreeMap<String, Source>, file: &str) -> Result<(), ConfigError> {
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
    if !(1..=300).contains(&c.tasks.input_timeout) {
        return Err(invalid(
            &origin("tasks.input_timeout"),
            "tasks.input_timeout",
            &c.tasks.input_timeout.to_string(),
            "must be 1 to 300 seconds (a question's sealed state lives five minutes)",
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
