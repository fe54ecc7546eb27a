//! The environment: the peer's 13 `COMFYUI_*` variables parsed its way
//! (booleans true only for `true`, `1`, `yes`; comma lists; empty meaning
//! unset where the peer treats it so), then ours.
//!
//! Each variable names one key; a value that cannot be parsed is an error
//! naming the variable, the key and the value.

use serde_json::Value;

use super::validate::invalid;
use super::{Config, ConfigError};

/// The environment variables (the peer's 13, then ours), with the key each sets.
pub(super) const ENV: &[(&str, &str)] = &[
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

/// The peer's boolean: true only for `true`, `1`, `yes` (any case).
fn env_bool(value: &str) -> bool {
    matches!(value.to_lowercase().as_str(), "true" | "1" | "yes")
}

pub(super) fn apply_env(c: &mut Config, var: &str, key: &str, value: &str) -> Result<(), ConfigError> {
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
