//! `transport:`: the Streamable HTTP transport (`transport.remote`), its
//! tokens and principals, and OAuth (`transport.remote.oauth`).
//!
//! These keys are ours except `enabled`, `host` and `port`; they live
//! apart from the other sections because the HTTP server reads them as a
//! unit (see `crate::http`). Their `Debug` masks the tokens (see
//! [`super::show`]).

use std::collections::BTreeMap;

use serde::Deserialize;

/// `transport:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Transport {
    /// The HTTP transport.
    pub remote: Remote,
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
