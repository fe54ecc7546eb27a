//! The `security:` section of the server's config file, as the peer reads
//! it (same keys, types and defaults), and the [`Policy`] it makes.
//!
//! It lives here, not in the server, so `comfy-lint --config` and the
//! server read the lists the same way. Unknown keys are ignored, as the
//! peer (pydantic) ignores them. Range checks that make the server refuse
//! to start (`max_upload_size_mb` 1..=500) are in [`SecurityConfig::check`].

use serde::Deserialize;

use crate::inspect::{Mode, Policy};

/// `security:` in `~/.comfyui-mcp/config.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SecurityConfig {
    /// `audit` (default) or `enforce`.
    pub mode: Mode,
    /// The enforce-mode allowlist (exact class names). Set, only these
    /// classes (and those of `allowed_node_packs`) run, as in the peer;
    /// empty (the default), enforce mode runs what it can vouch for (see
    /// [`crate::inspect::provenance`]).
    pub allowed_nodes: Vec<String>,
    /// Custom node packs whose classes enforce mode runs, by module folder
    /// as `/object_info`'s `python_module` names them
    /// (`custom_nodes.<folder>`); ours. Which packs may be installed is
    /// `allowed_custom_nodes`.
    pub allowed_node_packs: Vec<String>,
    /// Replaces the default dangerous list when set (as in the peer).
    pub dangerous_nodes: Option<Vec<String>>,
    /// Added to the dangerous list (default or replaced); ours.
    pub extra_dangerous_nodes: Vec<String>,
    /// Largest upload, in MiB (1..=500).
    pub max_upload_size_mb: u32,
    /// Extensions uploads may have, lower-cased with their dot.
    pub allowed_extensions: Vec<String>,
    /// Hosts model downloads may come from (and their subdomains).
    pub allowed_download_domains: Vec<String>,
    /// Extensions downloaded models may have.
    pub allowed_model_extensions: Vec<String>,
    /// Custom node packs that may be installed, updated or removed in
    /// enforce mode (registry ids); ours. Which installed packs' classes
    /// may run is `allowed_node_packs`.
    pub allowed_custom_nodes: Vec<String>,
    /// Hosts uploads may be fetched from by URL (`example.com`,
    /// `*.example.com`, or `*` for any public host); empty (the default)
    /// turns URL uploads off; ours.
    pub allowed_fetch_domains: Vec<String>,
    /// Exact `ip:port` addresses URL uploads may reach although they are
    /// not public (a trusted LAN host); ours.
    pub fetch_trusted_addresses: Vec<std::net::SocketAddr>,
    /// Whether paid API nodes (`api_node` in `/object_info`) run without
    /// asking; ours. Off (the default): each is a `node.api` warning in
    /// audit mode and needs the user's confirmation in enforce mode.
    pub allow_api_nodes: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        Self {
            mode: Mode::Audit,
            allowed_nodes: Vec::new(),
            allowed_node_packs: Vec::new(),
            dangerous_nodes: None,
            extra_dangerous_nodes: Vec::new(),
            max_upload_size_mb: 50,
            allowed_extensions: owned(&[".png", ".jpg", ".jpeg", ".webp", ".gif", ".json"]),
            allowed_download_domains: owned(&["huggingface.co", "civitai.com"]),
            allowed_model_extensions: owned(&[".safetensors", ".ckpt", ".pt", ".pth", ".bin"]),
            allowed_custom_nodes: Vec::new(),
            allowed_fetch_domains: Vec::new(),
            fetch_trusted_addresses: Vec::new(),
            allow_api_nodes: false,
        }
    }
}

/// A `security:` value the server must refuse to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("security.{key}: {message}")]
pub struct ConfigError {
    /// The key.
    pub key: &'static str,
    /// What is wrong, in the peer's words where it has them.
    pub message: String,
}

impl SecurityConfig {
    /// The inspector policy these settings make.
    pub fn policy(&self) -> Policy {
        let mut policy = Policy::new(self.mode);
        if let Some(list) = &self.dangerous_nodes {
            policy = policy.with_dangerous(list.iter().cloned());
        }
        policy
            .with_extra_dangerous(self.extra_dangerous_nodes.iter().cloned())
            .with_allowed(self.allowed_nodes.iter().cloned())
            .with_allowed_packs(self.allowed_node_packs.iter().cloned())
            .with_allow_api_nodes(self.allow_api_nodes)
    }

    /// Checks the ranges the peer validates.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.max_upload_size_mb < 1 {
            return Err(ConfigError {
                key: "max_upload_size_mb",
                message: "max_upload_size_mb must be at least 1".to_owned(),
            });
        }
        if let Some(bad) = self
            .allowed_node_packs
            .iter()
            .find(|p| !crate::inspect::provenance::is_pack_module(p))
        {
            return Err(ConfigError {
                key: "allowed_node_packs",
                message: format!(
                    "'{bad}' is not a pack module: write it as custom_nodes.<folder>, as /object_info's python_module names it"
                ),
            });
        }
        if self.max_upload_size_mb > 500 {
            return Err(ConfigError {
                key: "max_upload_size_mb",
                message: "max_upload_size_mb must not exceed 500".to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::SecurityConfig;
    use crate::inspect::Mode;

    #[test]
    fn lists_make_the_policy() {
        let cfg: SecurityConfig = serde_json::from_value(serde_json::json!({
            "mode": "enforce",
            "allowed_nodes": ["KSampler"],
            "dangerous_nodes": ["Mine"],
            "extra_dangerous_nodes": ["Also"],
            "unknown_key": 1
        }))
        .unwrap();
        let policy = cfg.policy();
        assert_eq!(policy.mode(), Mode::Enforce);
        assert!(policy.is_dangerous("Mine") && policy.is_dangerous("Also") && !policy.is_dangerous("Terminal"));
        assert!(SecurityConfig::default().policy().is_dangerous("Terminal"));
        assert!(cfg.check().is_ok());
        let bad = SecurityConfig {
            max_upload_size_mb: 501,
            ..SecurityConfig::default()
        };
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "security.max_upload_size_mb: max_upload_size_mb must not exceed 500"
        );
        let packs = SecurityConfig {
            allowed_node_packs: vec![
                "custom_nodes.ComfyUI-KJNodes".to_owned(),
                "ComfyUI-Impact-Pack".to_owned(),
            ],
            ..SecurityConfig::default()
        };
        assert_eq!(
            packs.check().unwrap_err().to_string(),
            "security.allowed_node_packs: 'ComfyUI-Impact-Pack' is not a pack module: write it as custom_nodes.<folder>, as /object_info's python_module names it"
        );
    }
}
