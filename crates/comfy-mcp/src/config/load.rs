//! Loading and layering: the file (chosen, or the default path), then the
//! environment, then validation, recording each key's source.
//!
//! The layering is hand-written rather than built on the `config` crate:
//! that crate's value type coerces between strings, numbers and booleans
//! (so `port: "8080"` or `tls_verify: "off"` would be accepted where the
//! peer's schema refuses them) and its enum errors do not list the
//! accepted values; see `docs/architecture.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::env::{ENV, apply_env};
use super::keys::{KNOWN, leaves, nearest};
use super::validate::validate;
use super::{Config, ConfigError, Loaded, Source};

/// Largest config file read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

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
