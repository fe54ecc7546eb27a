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

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;

use super::jwt::{self, Alg, JwtError, KeySet};
use crate::config::OAuth as OAuthConfig;

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

/// The metadata URLs of an issuer, in the order tried: RFC 8414's (the
/// well-known path inserted before the issuer's path), then OpenID
/// Connect's (appended to it).
fn metadata_urls(issuer: &url::Url) -> Vec<url::Url> {
    let path = issuer.path().trim_end_matches('/');
    let mut out = Vec::new();
    for p in [
        format!("/.well-known/oauth-authorization-server{path}"),
        format!("{path}/.well-known/openid-configuration"),
    ] {
        let mut u = issuer.clone();
        u.set_path(&p);
        out.push(u);
    }
    out
}

/// Fetches the issuer's metadata, checks it names the issuer, then
/// fetches and reads its key set.
async fn fetch_keys(issuer: &Issuer, tls: &Arc<rustls::ClientConfig>) -> Result<KeySet, String> {
    let mut last = String::new();
    let mut jwks_uri = None;
    for url in metadata_urls(&issuer.url) {
        match get(&url, tls).await {
            Ok((200, body)) => {
                let meta: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))?;
                if meta.get("issuer").and_then(serde_json::Value::as_str) != Some(issuer.id.as_str()) {
                    return Err(format!("{url}: the metadata names another issuer"));
                }
                let uri = meta
                    .get("jwks_uri")
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| format!("{url}: no jwks_uri"))?;
                let uri = checked_url("jwks_uri", uri).map_err(|(_, v, why)| format!("{url}: jwks_uri {v} {why}"))?;
                jwks_uri = Some(uri);
                break;
            }
            Ok((status, _)) => last = format!("{url}: HTTP {status}"),
            Err(e) => last = e,
        }
    }
    let jwks_uri = jwks_uri.ok_or(last)?;
    match get(&jwks_uri, tls).await? {
        (200, body) => KeySet::parse(&body).map_err(|e| format!("{jwks_uri}: {e}")),
        (status, _) => Err(format!("{jwks_uri}: HTTP {status}")),
    }
}

/// One GET, no redirects, the body capped at [`MAX_DOCUMENT_BYTES`]. The
/// caller bounds the time.
async fn get(url: &url::Url, tls: &Arc<rustls::ClientConfig>) -> Result<(u16, Bytes), String> {
    let host = url.host_str().ok_or_else(|| format!("{url}: no host"))?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let bare = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let tcp = tokio::net::TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| format!("{url}: cannot connect: {}", e.kind()))?;
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let path = url.path().to_owned();
    let request = http::Request::get(path)
        .header(http::header::HOST, authority)
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("comfy-mcp/", env!("CARGO_PKG_VERSION")),
        )
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| format!("{url}: {e}"))?;
    let response = if url.scheme() == "https" {
        let name = rustls_pki_types::ServerName::try_from(bare.clone()).map_err(|e| format!("{url}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("{url}: TLS: {e}"))?;
        send(TokioIo::new(stream), request).await
    } else {
        send(TokioIo::new(tcp), request).await
    }
    .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    if response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    let body = http_body_util::Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes")
            } else {
                format!("{url}: reading the body: {e}")
            }
        })?
        .to_bytes();
    Ok((status, body))
}

async fn send<T>(
    io: T,
    request: http::Request<http_body_util::Empty<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let r = sender.send_request(request).await.map_err(|e| e.to_string());
    if r.is_err() {
        driver.abort();
    }
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use super::*;

    #[test]
    fn calls_need_the_scope_of_their_kind() {
        assert_eq!(Need::of("tools/call", Some("comfyui_list_models")), Some(Need::Read));
        assert_eq!(Need::of("tools/call", Some("comfyui_get_image")), Some(Need::Read));
        assert_eq!(
            Need::of("tools/call", Some("comfyui_generate_image")),
            Some(Need::Generate)
        );
        assert_eq!(
            Need::of("tools/call", Some("comfyui_upload_image")),
            Some(Need::Generate)
        );
        assert_eq!(Need::of("tools/call", Some("comfyui_cancel_job")), Some(Need::Generate));
        assert_eq!(
            Need::of("tools/call", Some("comfyui_install_custom_node")),
            Some(Need::Nodes)
        );
        assert_eq!(
            Need::of("tools/call", Some("comfyui_search_custom_nodes")),
            Some(Need::Read)
        );
        assert_eq!(
            Need::of("tools/call", Some("comfyui_download_model")),
            Some(Need::Models)
        );
        assert_eq!(
            Need::of("tools/call", Some("comfyui_update_settings")),
            Some(Need::Settings)
        );
        assert_eq!(Need::of("tools/call", Some("nope")), Some(Need::Read));
        assert_eq!(Need::of("resources/read", None), Some(Need::Read));
        assert_eq!(Need::of("prompts/get", None), Some(Need::Read));
        assert_eq!(Need::of("tools/list", None), None);
        assert_eq!(Need::of("initialize", None), None);
        // Every tool that writes needs more than reading.
        for t in crate::tools::Catalog::get().all() {
            let need = Need::of("tools/call", Some(&t.name));
            assert_eq!(need == Some(Need::Read), t.read_only(), "{}", t.name);
        }
    }

    #[test]
    fn metadata_urls_follow_rfc_8414_then_openid() {
        let u = |s: &str| {
            metadata_urls(&url::Url::parse(s).unwrap())
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            u("https://as.example"),
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            u("https://as.example/realms/x/"),
            [
                "https://as.example/.well-known/oauth-authorization-server/realms/x",
                "https://as.example/realms/x/.well-known/openid-configuration"
            ]
        );
    }
    use data_encoding::BASE64URL_NOPAD;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    use serde_json::{Value, json};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    const AUD: &str = "https://mcp.example/mcp";

    fn ec_key(kid: &str) -> (EcdsaKeyPair, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let p = k.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": BASE64URL_NOPAD.encode(&p[1..33]), "y": BASE64URL_NOPAD.encode(&p[33..])});
        (k, jwk)
    }

    fn token(k: &EcdsaKeyPair, kid: &str, iss: &str) -> String {
        let enc = |v: Value| BASE64URL_NOPAD.encode(v.to_string().as_bytes());
        let signed = format!(
            "{}.{}",
            enc(json!({"alg": "ES256", "kid": kid, "typ": "at+jwt"})),
            enc(json!({"iss": iss, "aud": AUD, "sub": "alice", "exp": now_secs() + 300, "scope": "comfyui:read"}))
        );
        let sig = k.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
        format!("{signed}.{}", BASE64URL_NOPAD.encode(sig.as_ref()))
    }

    /// How the fake issuer answers a path.
    #[derive(Clone)]
    enum Answer {
        Json(Value),
        NotFound,
        /// Never answers.
        Silent,
        /// Streams bytes without a length, forever.
        Endless,
    }

    /// A local issuer: answers by path, counts requests by path.
    struct FakeIssuer {
        url: String,
        answers: Arc<Mutex<HashMap<String, Answer>>>,
        hits: Arc<Mutex<HashMap<String, usize>>>,
        total: Arc<AtomicUsize>,
    }

    impl FakeIssuer {
        async fn start() -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
            let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
            let total = Arc::new(AtomicUsize::new(0));
            let (a, h, t) = (Arc::clone(&answers), Arc::clone(&hits), Arc::clone(&total));
            tokio::spawn(async move {
                while let Ok((mut tcp, _)) = listener.accept().await {
                    let (a, h, t) = (Arc::clone(&a), Arc::clone(&h), Arc::clone(&t));
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match tcp.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        let text = String::from_utf8_lossy(&head).into_owned();
                        let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
                        t.fetch_add(1, Ordering::SeqCst);
                        *h.lock().unwrap().entry(path.clone()).or_default() += 1;
                        let answer = a.lock().unwrap().get(&path).cloned().unwrap_or(Answer::NotFound);
                        match answer {
                            Answer::Json(v) => {
                                let body = v.to_string();
                                let reply = format!(
                                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                    body.len()
                                );
                                let _ = tcp.write_all(reply.as_bytes()).await;
                            }
                            Answer::NotFound => {
                                let _ = tcp
                                    .write_all(
                                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                                    )
                                    .await;
                            }
                            Answer::Silent => tokio::time::sleep(Duration::from_mins(1)).await,
                            Answer::Endless => {
                                let _ = tcp
                                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"keys\":[")
                                    .await;
                                let chunk = vec![b' '; 64 * 1024];
                                for _ in 0..1024 {
                                    if tcp.write_all(&chunk).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                }
            });
            Self {
                url,
                answers,
                hits,
                total,
            }
        }

        fn answer(&self, path: &str, a: Answer) {
            self.answers.lock().unwrap().insert(path.to_owned(), a);
        }

        fn hits(&self, path: &str) -> usize {
            self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
        }

        /// OpenID metadata naming `jwks` at `/jwks`.
        fn openid(&self) {
            self.answer(
                "/.well-known/openid-configuration",
                Answer::Json(json!({"issuer": self.url, "jwks_uri": format!("{}/jwks", self.url)})),
            );
        }

        fn verifier(&self, refresh: u64) -> Verifier {
            let c = OAuthConfig {
                issuers: vec![self.url.clone()],
                resource: Some(AUD.into()),
                algorithms: vec!["ES256".into()],
                jwks_refresh_interval: refresh,
                jwks_cache: 600,
                ..OAuthConfig::default()
            };
            Verifier::new(Settings::from_config(&c).unwrap())
        }
    }

    #[tokio::test]
    async fn a_token_of_a_foreign_issuer_fetches_nothing() {
        let issuer = FakeIssuer::start().await;
        issuer.openid();
        let v = issuer.verifier(30);
        let (k, _) = ec_key("k1");
        let r = v.verify(&token(&k, "k1", "http://127.0.0.1:1")).await;
        assert!(matches!(r, Err(OAuthError::Token(JwtError::Issuer))), "{r:?}");
        assert_eq!(issuer.total.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn keys_come_from_the_metadata_and_a_flood_of_unknown_kids_fetches_once() {
        let issuer = FakeIssuer::start().await;
        issuer.openid();
        let (k, jwk) = ec_key("k1");
        issuer.answer("/jwks", Answer::Json(json!({"keys": [jwk]})));
        let v = issuer.verifier(30);
        let grant = v.verify(&token(&k, "k1", &issuer.url)).await.unwrap();
        assert_eq!(grant.principal, format!("oauth:{}#alice", issuer.url));
        assert!(grant.scopes.contains("comfyui:read"));
        assert_eq!(
            issuer.hits("/.well-known/oauth-authorization-server"),
            1,
            "RFC 8414 first"
        );
        assert_eq!(issuer.hits("/jwks"), 1);
        // Cached: no more fetches for known keys.
        for _ in 0..5 {
            v.verify(&token(&k, "k1", &issuer.url)).await.unwrap();
        }
        assert_eq!(issuer.hits("/jwks"), 1);
        // A hundred made-up kids, many at once, within the refresh
        // interval of the first fetch: no fetch at all.
        let (other, _) = ec_key("x");
        let tokens: Vec<String> = (0..100)
            .map(|i| token(&other, &format!("made-up-{i}"), &issuer.url))
            .collect();
        let v = Arc::new(v);
        let mut tasks = Vec::new();
        for t in tokens {
            let v = Arc::clone(&v);
            tasks.push(tokio::spawn(async move { v.verify(&t).await }));
        }
        for t in tasks {
            let r = t.await.unwrap();
            assert!(matches!(r, Err(OAuthError::Token(JwtError::UnknownKey))), "{r:?}");
        }
        assert_eq!(issuer.hits("/jwks"), 1, "no refresh for the flood");
    }

    #[tokio::test]
    async fn a_rotated_key_is_fetched_after_the_refresh_interval() {
        let issuer = FakeIssuer::start().await;
        issuer.openid();
        let (old, old_jwk) = ec_key("old");
        issuer.answer("/jwks", Answer::Json(json!({"keys": [old_jwk]})));
        let v = issuer.verifier(1);
        v.verify(&token(&old, "old", &issuer.url)).await.unwrap();
        let (new, new_jwk) = ec_key("new");
        issuer.answer("/jwks", Answer::Json(json!({"keys": [new_jwk]})));
        // Within the interval the new kid is not fetched for.
        let r = v.verify(&token(&new, "new", &issuer.url)).await;
        assert!(matches!(r, Err(OAuthError::Token(JwtError::UnknownKey))), "{r:?}");
        // Time is the subject: the 1 s refresh interval, on the real clock
        // (the verifier's `Instant`) while a real HTTP issuer answers.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        v.verify(&token(&new, "new", &issuer.url)).await.unwrap();
        assert_eq!(issuer.hits("/jwks"), 2);
    }

    #[tokio::test]
    async fn a_silent_or_endless_key_endpoint_is_bounded() {
        for answer in [Answer::Silent, Answer::Endless] {
            let issuer = FakeIssuer::start().await;
            issuer.openid();
            issuer.answer("/jwks", answer);
            let v = issuer.verifier(30);
            let (k, _) = ec_key("k1");
            let started = Instant::now();
            let r = v.verify(&token(&k, "k1", &issuer.url)).await;
            assert!(matches!(r, Err(OAuthError::KeysUnavailable(_))), "{r:?}");
            assert!(started.elapsed() < FETCH_TIMEOUT + Duration::from_secs(1));
            // Refused again at once, without another fetch, until the interval passes.
            let started = Instant::now();
            let r = v.verify(&token(&k, "k1", &issuer.url)).await;
            assert!(matches!(r, Err(OAuthError::KeysUnavailable(_))), "{r:?}");
            assert!(started.elapsed() < Duration::from_secs(1));
            assert_eq!(issuer.hits("/jwks"), 1);
        }
    }

    #[tokio::test]
    async fn metadata_of_another_issuer_or_a_huge_key_set_is_refused() {
        let issuer = FakeIssuer::start().await;
        issuer.answer(
            "/.well-known/openid-configuration",
            Answer::Json(json!({"issuer": "https://evil.example", "jwks_uri": format!("{}/jwks", issuer.url)})),
        );
        let (k, jwk) = ec_key("k1");
        issuer.answer("/jwks", Answer::Json(json!({"keys": [jwk]})));
        let v = issuer.verifier(30);
        let r = v.verify(&token(&k, "k1", &issuer.url)).await;
        assert!(matches!(r, Err(OAuthError::KeysUnavailable(_))), "{r:?}");
        assert_eq!(issuer.hits("/jwks"), 0);

        let issuer = FakeIssuer::start().await;
        issuer.openid();
        let padding = "x".repeat(MAX_DOCUMENT_BYTES);
        issuer.answer("/jwks", Answer::Json(json!({"keys": [jwk], "padding": padding})));
        let v = issuer.verifier(30);
        let r = v.verify(&token(&k, "k1", &issuer.url)).await;
        assert!(matches!(r, Err(OAuthError::KeysUnavailable(_))), "{r:?}");
    }

    fn config() -> OAuthConfig {
        OAuthConfig {
            issuers: vec!["https://as.example".into()],
            resource: Some("https://mcp.example/mcp".into()),
            ..OAuthConfig::default()
        }
    }

    #[test]
    fn settings_are_checked() {
        assert!(Settings::from_config(&config()).is_ok());
        let bad = |f: &dyn Fn(&mut OAuthConfig)| {
            let mut c = config();
            f(&mut c);
            Settings::from_config(&c).err().map(|(key, ..)| key)
        };
        assert_eq!(
            bad(&|c| c.issuers = vec!["http://as.example".into()]),
            Some("transport.remote.oauth.issuers")
        );
        assert_eq!(bad(&|c| c.issuers = vec!["http://127.0.0.1:9000".into()]), None);
        assert_eq!(
            bad(&|c| c.issuers = vec!["https://as.example/#x".into()]),
            Some("transport.remote.oauth.issuers")
        );
        assert_eq!(bad(&|c| c.resource = None), Some("transport.remote.oauth.resource"));
        assert_eq!(
            bad(&|c| c.algorithms = vec!["HS256".into()]),
            Some("transport.remote.oauth.algorithms")
        );
        assert_eq!(
            bad(&|c| c.algorithms = vec!["none".into()]),
            Some("transport.remote.oauth.algorithms")
        );
        assert_eq!(
            bad(&|c| c.algorithms.clear()),
            Some("transport.remote.oauth.algorithms")
        );
        assert_eq!(
            bad(&|c| c.scopes.read = "a b".into()),
            Some("transport.remote.oauth.scopes.read")
        );
        assert_eq!(
            bad(&|c| c.jwks_refresh_interval = 0),
            Some("transport.remote.oauth.jwks_cache")
        );
        assert_eq!(bad(&|c| c.leeway = 3600), Some("transport.remote.oauth.leeway"));
    }
}
