//! OAuth for the HTTP transport, as MCP's authorization spec asks of a
//! resource server: JWT access tokens from configured authorization
//! servers (`transport.remote.oauth`), checked against the issuer's keys,
//! and scopes that decide which calls a token may make.
//!
//! - Issuers are named in the configuration; a token whose `iss` is not
//!   one of them is refused before anything is fetched.
//! - An issuer's keys come from its metadata (RFC 8414
//!   `/.well-known/oauth-authorization-server`, then OpenID Connect's
//!   `/.well-known/openid-configuration`; the document's `issuer` must be
//!   the configured one) and its `jwks_uri`: https (plain http only for a
//!   loopback issuer), no redirects, each document at most
//!   [`MAX_DOCUMENT_BYTES`], the whole refresh within [`FETCH_TIMEOUT`].
//! - Keys are kept for `jwks_cache` seconds, fetched by one request at a
//!   time per issuer (the others wait for it), and at most once per
//!   `jwks_refresh_interval`: a token naming an unknown `kid` (a rotation)
//!   fetches early, a flood of made-up `kid`s fetches at most that often.
//!   When a fetch fails the keys already held stay in use for up to
//!   [`STALE_GRACE`] past their time.
//! - Tokens are verified by [`super::jwt`]: pinned algorithms, `iss`,
//!   `aud` = `transport.remote.oauth.resource` (RFC 8707), `exp`/`nbf`
//!   with `leeway`.
//! - The principal is `oauth:<issuer>#<subject>` ([`PRINCIPAL_PREFIX`];
//!   static token names may not start with it), so one subject's jobs,
//!   files, sessions and rate limits are its own across tokens.
//! - Each call needs one scope ([`Need`]): reading, generating, custom
//!   nodes, models or settings; a token without it gets 403 with
//!   `error="insufficient_scope"` and the scope to ask for.

mod fetch;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::jwt::{self, Alg, JwtError, KeySet};
use crate::config::OAuth as OAuthConfig;
use fetch::fetch_keys;

/// What every OAuth principal's name starts with.
pub const PRINCIPAL_PREFIX: &str = "oauth:";
/// Largest metadata or key set document read, bytes.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// The deadline for one refresh of an issuer's keys (metadata and key set).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long past `jwks_cache` keys stay in use while fetching fails.
pub const STALE_GRACE: Duration = Duration::from_hours(1);

/// The kind of call a scope grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read-only tools, resources, prompts, completions.
    Read,
    /// Tools that start or stop jobs, or upload inputs.
    Generate,
    /// Installing, updating or removing custom nodes.
    Nodes,
    /// Downloading models.
    Models,
    /// Changing settings.
    Settings,
}

impl Need {
    /// What the JSON-RPC request `method` (with `tool`, the `name` of a
    /// `tools/call`) needs; `None` for the protocol's own requests
    /// (`initialize`, lists, `ping`, tasks, ...), which any valid token
    /// may make.
    pub fn of(method: &str, tool: Option<&str>) -> Option<Self> {
        match method {
            "tools/call" => {
                let Some(def) = tool.and_then(|t| crate::tools::Catalog::get().find(t)) else {
                    // Not a tool of ours: it fails either way, as a read.
                    return Some(Self::Read);
                };
                Some(if def.read_only() {
                    Self::Read
                } else {
                    match def.group.as_str() {
                        "custom_nodes" => Self::Nodes,
                        "models" => Self::Models,
                        "settings" => Self::Settings,
                        _ => Self::Generate,
                    }
                })
            }
            "resources/read" | "resources/subscribe" | "prompts/get" | "completion/complete" => Some(Self::Read),
            _ => None,
        }
    }
}

/// One trusted authorization server.
#[derive(Debug)]
struct Issuer {
    /// The identifier, as tokens' `iss` carry it.
    id: String,
    url: url::Url,
    cache: Mutex<Cache>,
    /// Held while fetching, so one request fetches and the others wait.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Cache {
    keys: Option<Arc<KeySet>>,
    /// When `keys` were fetched.
    fetched: Option<Instant>,
    /// When a fetch last started.
    tried: Option<Instant>,
}

/// The checked `transport.remote.oauth` settings.
#[derive(Debug)]
pub struct Settings {
    issuers: Vec<Issuer>,
    /// The canonical resource URI (the audience).
    pub resource: String,
    algorithms: Vec<Alg>,
    leeway: u64,
    cache_for: Duration,
    refresh_interval: Duration,
    scopes: crate::config::OAuthScopes,
    tls: Arc<rustls::ClientConfig>,
}

/// A configuration problem: the key, the value, why.
pub type ConfigProblem = (&'static str, String, String);

fn loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// An `https` URL (plain `http` to a loopback host) with no user info,
/// query or fragment.
fn checked_url(key: &'static str, value: &str) -> Result<url::Url, ConfigProblem> {
    let bad = |why: &str| (key, value.to_owned(), why.to_owned());
    let url = url::Url::parse(value).map_err(|e| bad(&format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if loopback_host(&url) => {}
        _ => return Err(bad("must be an https URL (http only to a loopback host)")),
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not carry user info, a query or a fragment"));
    }
    if url.host().is_none() {
        return Err(bad("has no host"));
    }
    Ok(url)
}

fn tls_config(ca_file: Option<&str>) -> Result<Arc<rustls::ClientConfig>, ConfigProblem> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        let bad = |why: String| ("transport.remote.oauth.ca_file", path.to_owned(), why);
        let certs = CertificateDer::pem_file_iter(comfy_audit::expand_home(path))
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate in the file".into()));
        }
        for c in certs {
            roots.add(c).map_err(|e| bad(e.to_string()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ("transport.remote.oauth", String::new(), format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Settings {
    /// Checks the configuration.
    ///
    /// # Errors
    /// The key, value and reason of the first problem.
    pub fn from_config(c: &OAuthConfig) -> Result<Self, ConfigProblem> {
        let mut issuers = Vec::new();
        for id in &c.issuers {
            let url = checked_url("transport.remote.oauth.issuers", id)?;
            issuers.push(Issuer {
                id: id.clone(),
                url,
                cache: Mutex::default(),
                fetching: tokio::sync::Mutex::new(()),
            });
        }
        if issuers.len() > 16 {
            return Err((
                "transport.remote.oauth.issuers",
                issuers.len().to_string(),
                "at most 16 issuers".into(),
            ));
        }
        let resource = c.resource.clone().ok_or_else(|| {
            (
                "transport.remote.oauth.resource",
                String::new(),
                "must be set with issuers: this server's URL as clients reach it, e.g. https://mcp.example.com/mcp"
                    .to_owned(),
            )
        })?;
        checked_url("transport.remote.oauth.resource", &resource)?;
        let mut algorithms = Vec::new();
        for name in &c.algorithms {
            let alg = Alg::parse(name).ok_or_else(|| {
                (
                    "transport.remote.oauth.algorithms",
                    name.clone(),
                    "unknown algorithm; the algorithms are RS256, PS256, ES256, ES384, EdDSA".to_owned(),
                )
            })?;
            algorithms.push(alg);
        }
        if algorithms.is_empty() {
            return Err((
                "transport.remote.oauth.algorithms",
                String::new(),
                "name at least one algorithm".into(),
            ));
        }
        if c.leeway > 300 {
            return Err((
                "transport.remote.oauth.leeway",
                c.leeway.to_string(),
                "at most 300 seconds".into(),
            ));
        }
        if c.jwks_refresh_interval == 0 || c.jwks_cache < c.jwks_refresh_interval {
            return Err((
                "transport.remote.oauth.jwks_cache",
                c.jwks_cache.to_string(),
                "jwks_refresh_interval must be at least 1 and jwks_cache at least jwks_refresh_interval".into(),
            ));
        }
        let s = &c.scopes;
        for (key, v) in [
            ("transport.remote.oauth.scopes.read", &s.read),
            ("transport.remote.oauth.scopes.generate", &s.generate),
            ("transport.remote.oauth.scopes.nodes", &s.nodes),
            ("transport.remote.oauth.scopes.models", &s.models),
            ("transport.remote.oauth.scopes.settings", &s.settings),
        ] {
            // RFC 6749 scope-token: printable ASCII without space, `"`, `\`.
            if v.is_empty() || !v.bytes().all(|b| b > 0x20 && b < 0x7f && b != b'"' && b != b'\\') {
                return Err((
                    key,
                    v.clone(),
                    "must be one scope: printable ASCII, no spaces or quotes".into(),
                ));
            }
        }
        Ok(Self {
            issuers,
            resource,
            algorithms,
            leeway: c.leeway,
            cache_for: Duration::from_secs(c.jwks_cache),
            refresh_interval: Duration::from_secs(c.jwks_refresh_interval),
            scopes: c.scopes.clone(),
            tls: tls_config(c.ca_file.as_deref())?,
        })
    }

    /// The scope `need` asks for.
    pub fn scope(&self, need: Need) -> &str {
        match need {
            Need::Read => &self.scopes.read,
            Need::Generate => &self.scopes.generate,
            Need::Nodes => &self.scopes.nodes,
            Need::Models => &self.scopes.models,
            Need::Settings => &self.scopes.settings,
        }
    }

    /// Every configured scope, once each, in a fixed order.
    pub fn all_scopes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for need in [Need::Read, Need::Generate, Need::Nodes, Need::Models, Need::Settings] {
            let s = self.scope(need);
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// The issuer identifiers.
    pub fn issuer_ids(&self) -> Vec<&str> {
        self.issuers.iter().map(|i| i.id.as_str()).collect()
    }
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// The token itself (401 `invalid_token`).
    #[error(transparent)]
    Token(#[from] JwtError),
    /// The issuer's keys could not be had (503: the token may be fine).
    #[error("the keys of {0} cannot be fetched now")]
    KeysUnavailable(String),
}

/// A verified token: who, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `oauth:<issuer>#<subject>`.
    pub principal: String,
    /// The scopes granted.
    pub scopes: BTreeSet<String>,
}

/// Verifies access tokens.
#[derive(Debug)]
pub struct Verifier {
    /// The settings.
    pub settings: Settings,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Verifier {
    /// A verifier for `settings`.
    pub fn new(settings: Settings) -> Self {
        Self { settings }
    }

    /// Verifies `token`.
    ///
    /// # Errors
    /// [`OAuthError`]: the token is refused, or its issuer's keys cannot
    /// be had.
    pub async fn verify(&self, token: &str) -> Result<Grant, OAuthError> {
        let s = &self.settings;
        let unverified = jwt::parse(token, &s.algorithms)?;
        let issuer = s
            .issuers
            .iter()
            .find(|i| i.id == unverified.iss)
            .ok_or(JwtError::Issuer)?;
        let keys = self.keys(issuer, unverified.kid.as_deref()).await?;
        let verified = unverified.verify(
            &keys,
            &jwt::Expect {
                issuer: &issuer.id,
                audience: &s.resource,
                leeway: s.leeway,
                now: now_secs(),
            },
        )?;
        Ok(Grant {
            principal: format!("{PRINCIPAL_PREFIX}{}#{}", verified.issuer, verified.subject),
            scopes: verified.scopes,
        })
    }

    /// The keys of `issuer`, fetched when there are none, when they are
    /// older than `jwks_cache`, or when `kid` is not among them, but never
    /// twice within `jwks_refresh_interval`.
    async fn keys(&self, issuer: &Issuer, kid: Option<&str>) -> Result<Arc<KeySet>, OAuthError> {
        let s = &self.settings;
        let usable = |c: &Cache| -> Option<Arc<KeySet>> {
            let fresh = c.fetched.is_some_and(|at| at.elapsed() < s.cache_for);
            c.keys.clone().filter(|k| fresh && kid.is_none_or(|kid| k.has_kid(kid)))
        };
        let lock = || issuer.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(k) = usable(&lock()) {
            return Ok(k);
        }
        let _one_at_a_time = issuer.fetching.lock().await;
        {
            let mut c = lock();
            if let Some(k) = usable(&c) {
                return Ok(k);
            }
            if c.tried.is_some_and(|t| t.elapsed() < s.refresh_interval) {
                return held(&c, s.cache_for).ok_or_else(|| OAuthError::KeysUnavailable(issuer.id.clone()));
            }
            c.tried = Some(Instant::now());
        }
        match tokio::time::timeout(FETCH_TIMEOUT, fetch_keys(issuer, &s.tls)).await {
            Ok(Ok(keys)) => {
                let keys = Arc::new(keys);
                let mut c = lock();
                c.keys = Some(Arc::clone(&keys));
                c.fetched = Some(Instant::now());
                tracing::info!(issuer = %issuer.id, keys = keys.keys.len(), "fetched the issuer's signing keys");
                Ok(keys)
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e,
                    _ => format!("no answer within {FETCH_TIMEOUT:?}"),
                };
                tracing::warn!(issuer = %issuer.id, "cannot fetch the issuer's signing keys: {why}");
                held(&lock(), s.cache_for).ok_or_else(|| OAuthError::KeysUnavailable(issuer.id.clone()))
            }
        }
    }
}

/// The keys held, while not older than `cache_for` + [`STALE_GRACE`].
fn held(c: &Cache, cache_for: Duration) -> Option<Arc<KeySet>> {
    c.keys
        .clone()
        .filter(|_| c.fetched.is_some_and(|at| at.elapsed() < cache_for + STALE_GRACE))
}

#[cfg(test)]
mod tests;
