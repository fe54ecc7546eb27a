//! What a lint run judges by: the `security:` and `limits:` sections of the
//! server's config file (the defaults without one), a mode that overrides
//! the file's, and a saved `/object_info` answer. Side files are read
//! within [`MAX_SIDE_FILE`].

use std::io::Read;
use std::path::Path;

use comfy_workflow::ObjectInfo;
use serde::Deserialize;

use crate::inspect::{Mode, Policy};
use crate::{JobLimits, SecurityConfig};

/// Largest config or catalog file read.
pub const MAX_SIDE_FILE: u64 = 256 << 20;

/// The parts of the config file the linter reads; everything else is
/// ignored, as the server ignores unknown keys.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ConfigFile {
    security: SecurityConfig,
    limits: JobLimits,
}

/// The policy, catalog and job limits files are judged by.
pub struct Settings {
    /// The inspector's policy (mode, node lists, graph limits).
    pub policy: Policy,
    /// The server's catalog, when given: converts editor workflows, and
    /// classes it lacks become findings.
    pub info: Option<ObjectInfo>,
    /// What one job may cost.
    pub job_limits: JobLimits,
}

impl Settings {
    /// Reads the config file at `config` (none: the defaults), puts `mode`
    /// over its mode, and reads the catalog at `object_info`.
    ///
    /// # Errors
    /// A file cannot be read, is too large, or does not parse; the config's
    /// `security:` section is inconsistent. The message names the file.
    pub fn load(config: Option<&Path>, mode: Option<Mode>, object_info: Option<&Path>) -> Result<Self, String> {
        let (mut security, job_limits) = match config {
            Some(path) => {
                let text = String::from_utf8(read_side_file(path, "config")?)
                    .map_err(|_| format!("config {}: not UTF-8", path.display()))?;
                let file: ConfigFile = if text.trim().is_empty() {
                    ConfigFile::default()
                } else {
                    serde_norway::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))?
                };
                file.security
                    .check()
                    .map_err(|e| format!("config {}: {e}", path.display()))?;
                (file.security, file.limits)
            }
            None => (SecurityConfig::default(), JobLimits::DEFAULT),
        };
        if let Some(mode) = mode {
            security.mode = mode;
        }
        let info = match object_info {
            Some(path) => {
                let bytes = read_side_file(path, "object info")?;
                let value: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|e| format!("object info {}: {e}", path.display()))?;
                if !value.is_object() {
                    return Err(format!("object info {}: not a JSON object", path.display()));
                }
                Some(ObjectInfo::from_value(&value))
            }
            None => None,
        };
        Ok(Self {
            policy: security.policy(),
            info,
            job_limits,
        })
    }
}

fn read_side_file(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{what} {}: {}", path.display(), e.kind()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SIDE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{what} {}: {}", path.display(), e.kind()))?;
    if bytes.len() as u64 > MAX_SIDE_FILE {
        return Err(format!("{what} {}: larger than {MAX_SIDE_FILE} bytes", path.display()));
    }
    Ok(bytes)
}
