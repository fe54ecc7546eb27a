//! The remote transport: MCP Streamable HTTP at `/mcp` on
//! `transport.remote.host:port`, safe by default.
//!
//! rmcp's `StreamableHttpService` speaks the protocol (sessions for
//! 2025-11-25, stateless 2026-07-28, `Mcp-Method` headers) and checks Host
//! and Origin; in front of it this module adds what rmcp leaves to the
//! deployment:
//! - DNS-rebinding and cross-origin protection ([`rebinding`]): a `Host`
//!   or `Origin` outside the allowed lists (loopback, widened by
//!   `allowed_hosts` / `allowed_origins`, loopback dropped with
//!   `allow_loopback: false`) gets 403, a `null` Origin too;
//! - an optional bearer token (`transport.remote.auth_token` or
//!   `COMFYUI_MCP_AUTH_TOKEN`) compared in constant time, 401 with
//!   `WWW-Authenticate` otherwise, and tokens in the query string refused;
//! - strict request heads before rmcp's Host and Origin checks: a header
//!   that must appear once (`Host`, `Origin`, `Authorization`,
//!   `Mcp-Session-Id`, ...) appearing twice, or a `Host` that is not a
//!   plain `host[:port]` (a trailing dot after the port, user info, a bare
//!   IPv6 address) gets 400; an absolute-form request target
//!   (`POST http://host/mcp`) is judged by its own authority, which takes
//!   the place of `Host` as RFC 9112 says, so a foreign one gets 403;
//! - a refusal to start on a non-loopback address without a token, unless
//!   `transport.remote.allow_unauthenticated` says so;
//! - named tokens (`transport.remote.auth_tokens`): the token's name is the
//!   request's [`Principal`], written to the audit log and used to keep one
//!   principal's jobs from another (see [`crate::caller`]);
//! - a body limit (413), a header-read timeout and a body-read timeout
//!   (slow clients cannot hold a connection), a JSON check before rmcp sees
//!   the body (malformed JSON or nesting deeper than [`MAX_JSON_DEPTH`]
//!   → 400 with JSON-RPC -32700; a batch → 400 with -32600, batches left
//!   the protocol in 2025-06-18), so the answer is JSON-RPC, not rmcp's
//!   plain-text 415;
//! - bounded sessions ([`sessions::Sessions`]): a cap (503 with
//!   `Retry-After` for one more `initialize`), with several principals a
//!   cap per principal under it (429 naming the principal's own limit,
//!   `transport.remote.max_sessions_per_principal`), and idle expiry (404, the
//!   client starts again); each session belongs to the principal that
//!   created it, and any other token naming it gets 404 (POST, GET, DELETE);
//! - at most [`MAX_CONNECTIONS`] connections at once;
//! - optional TLS (rustls, `transport.remote.tls_cert` / `tls_key`);
//! - with authentication on, the protected-resource metadata of RFC 9728 at
//!   `/.well-known/oauth-protected-resource` and its path-suffixed form
//!   `/.well-known/oauth-protected-resource/mcp` (no authorization servers
//!   until OAuth is configured), named by `resource_metadata` in the 401's
//!   `WWW-Authenticate`;
//! - with `transport.remote.oauth` ([`oauth`]), JWT access tokens from the
//!   configured authorization servers besides the static tokens: the
//!   metadata names those servers and the scopes, the token's issuer and
//!   subject are the principal, and a call its scopes do not cover gets 403
//!   with `error="insufficient_scope"` and the scope it needs;
//! - `/healthz` for load balancers, 404 elsewhere.
//!
//! Every tool call still goes through the same tower stack as over stdio.

pub mod jwt;
pub mod oauth;
pub mod rebinding;
pub mod sessions;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::caller::{Principal, ShareJobs};
use crate::config::Remote;
use crate::server::Server;
use rebinding::Rebinding;
use sessions::Sessions;

/// Largest request body accepted.
pub const MAX_BODY: usize = 4 << 20;
/// Most connections served at once; more are closed as they arrive.
pub const MAX_CONNECTIONS: usize = 1024;
/// Deepest nesting of arrays and objects accepted in a request body
/// (workflows nest about 6 deep; serde_json itself stops at 128).
pub const MAX_JSON_DEPTH: usize = 64;

/// The principal of `transport.remote.auth_token`.
pub const DEFAULT_PRINCIPAL: &str = "default";

/// Why the HTTP transport could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Refused by policy (no token on a public address, bad settings).
    #[error("{0}")]
    Refused(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

type Reply = Response<BoxBody<Bytes, Infallible>>;

fn plain(status: StatusCode, body: &'static str) -> Reply {
    text(status, body)
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The accepted bearer tokens and their principals.
struct Tokens(Vec<(Principal, String)>);

impl Tokens {
    fn from(remote: &Remote) -> Self {
        let mut all = Vec::new();
        if let Some(t) = remote.auth_token.as_ref().filter(|t| !t.is_empty()) {
            all.push((Principal(DEFAULT_PRINCIPAL.into()), t.clone()));
        }
        for (name, t) in &remote.auth_tokens {
            all.push((Principal(name.as_str().into()), t.clone()));
        }
        Self(all)
    }

    fn required(&self) -> bool {
        !self.0.is_empty()
    }

    /// The principal whose token `given` is, comparing every token in
    /// constant time.
    fn principal(&self, given: &str) -> Option<Principal> {
        let mut found = None;
        for (principal, token) in &self.0 {
            if bool::from(given.as_bytes().ct_eq(token.as_bytes())) && !given.is_empty() {
                found = Some(principal.clone());
            }
        }
        found
    }
}

/// Headers a request may carry at most once: rmcp and this module read the
/// first of each, so a second one could say something else to a proxy or
/// a log than to the check. (rmcp itself answers repeated `Mcp-Method`,
/// `Mcp-Name` and `MCP-Protocol-Version` headers with JSON-RPC errors.)
const SINGLE_HEADERS: &[&str] = &[
    "host",
    "origin",
    "authorization",
    "content-type",
    "mcp-session-id",
    "last-event-id",
];

/// Whether `value` is a `Host` (or request-target authority) of the plain
/// form `host[:port]`: a DNS name or IPv4 address (no trailing dot), or a
/// bracketed IPv6 address, and an optional decimal port.
fn plain_authority(value: &str) -> bool {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return false;
        };
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match value.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(value), None),
        }
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
    });
    let host_ok = host.is_none_or(|h| {
        !h.is_empty()
            && h.len() <= 253
            && h.split('.').all(|label| {
                !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    });
    port_ok && host_ok
}

/// Checks the request head before anything reads it: single headers
/// once, a plain `Host`, and an absolute-form target's authority put in
/// `Host`'s place (RFC 9112 §3.2.2) for rmcp's Host check to judge.
fn check_head<B>(req: &mut Request<B>) -> Result<(), Box<Reply>> {
    for name in SINGLE_HEADERS {
        if req.headers().get_all(*name).iter().nth(1).is_some() {
            tracing::warn!(header = name, "refused a request with a repeated header");
            return Err(Box::new(plain(
                StatusCode::BAD_REQUEST,
                "Bad Request: repeated header\n",
            )));
        }
    }
    if let Some(authority) = req.uri().authority().map(ToString::to_string) {
        if !plain_authority(&authority) {
            return Err(Box::new(plain(
                StatusCode::BAD_REQUEST,
                "Bad Request: invalid request target\n",
            )));
        }
        let Ok(value) = header::HeaderValue::from_str(&authority) else {
            return Err(Box::new(plain(
                StatusCode::BAD_REQUEST,
                "Bad Request: invalid request target\n",
            )));
        };
        req.headers_mut().insert(header::HOST, value);
    }
    if let Some(host) = req.headers().get(header::HOST)
        && !host.to_str().is_ok_and(plain_authority)
    {
        tracing::warn!(host = ?host, "refused a request with a malformed Host header");
        return Err(Box::new(plain(
            StatusCode::BAD_REQUEST,
            "Bad Request: invalid Host header\n",
        )));
    }
    Ok(())
}

/// A `WWW-Authenticate` challenge (RFC 6750 §3) with `params` as quoted
/// parameters after the realm.
fn challenge(params: &[(&str, &str)]) -> header::HeaderValue {
    let mut c = String::from("Bearer realm=\"comfy-mcp\"");
    for (name, value) in params {
        // Quoted-string content: no quotes, backslashes or controls.
        let value: String = value
            .chars()
            .filter(|ch| *ch != '"' && *ch != '\\' && !ch.is_control())
            .collect();
        c.push_str(", ");
        c.push_str(name);
        c.push_str("=\"");
        c.push_str(&value);
        c.push('"');
    }
    header::HeaderValue::from_str(&c).unwrap_or_else(|_| header::HeaderValue::from_static("Bearer realm=\"comfy-mcp\""))
}

/// Who a request authenticated as: the principal, and the scopes of an
/// OAuth token (`None`: a static token, which may make every call).
type Authenticated = Option<(Principal, Option<std::collections::BTreeSet<String>>)>;

/// Checks the bearer token: a static token, else (with OAuth) a JWT
/// access token; the principal, or the refusal.
async fn authenticate<B>(
    req: &Request<B>,
    shared: &Shared,
    metadata: Option<&str>,
) -> Result<Authenticated, Box<Reply>> {
    let query = req.uri().query().unwrap_or_default().to_ascii_lowercase();
    if ["token=", "access_token=", "auth=", "key="]
        .iter()
        .any(|k| query.contains(k))
    {
        return Err(Box::new(plain(
            StatusCode::BAD_REQUEST,
            "tokens are not accepted in the query string; send Authorization: Bearer <token>\n",
        )));
    }
    if !shared.auth_required() {
        return Ok(None);
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if let Some(principal) = shared.tokens.principal(given) {
        return Ok(Some((principal, None)));
    }
    let mut refusal = "missing or wrong bearer token".to_owned();
    if let Some(verifier) = &shared.oauth
        && !given.is_empty()
    {
        match verifier.verify(given).await {
            Ok(grant) => return Ok(Some((Principal(grant.principal.into()), Some(grant.scopes)))),
            Err(oauth::OAuthError::KeysUnavailable(issuer)) => {
                let mut r = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the signing keys of {issuer} cannot be fetched now; retry later\n"),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
                return Err(Box::new(r));
            }
            Err(oauth::OAuthError::Token(e)) => {
                tracing::warn!("refused an access token: {e}");
                refusal = e.to_string();
            }
        }
    }
    let mut r = text(StatusCode::UNAUTHORIZED, format!("{refusal}\n"));
    // RFC 6750: `invalid_token` when a token was sent; RFC 9728: where the
    // resource's metadata is; with OAuth, the scope to start with.
    let mut params = Vec::new();
    if !given.is_empty() {
        params.push(("error", "invalid_token"));
        if shared.oauth.is_some() {
            params.push(("error_description", refusal.as_str()));
        }
    }
    if let Some(url) = metadata {
        params.push(("resource_metadata", url));
    }
    if let Some(verifier) = &shared.oauth {
        params.push(("scope", verifier.settings.scope(oauth::Need::Read)));
    }
    r.headers_mut().insert(header::WWW_AUTHENTICATE, challenge(&params));
    Err(Box::new(r))
}

/// What a JSON-RPC request body asks for: its method and, for a tool
/// call, the tool's name.
fn method_and_tool(body: &[u8]) -> Option<(String, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Params {
        name: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        method: Option<String>,
        params: Option<Params>,
    }
    let p = serde_json::from_slice::<Probe>(body).ok()?;
    Some((p.method?, p.params.and_then(|p| p.name)))
}

/// A JSON-RPC error response with no id (the request could not be read).
fn jsonrpc_error(status: StatusCode, code: i32, message: &str) -> Reply {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// Whether the JSON text in `body` nests arrays and objects more than
/// `max` deep (brackets inside strings do not count). A byte scan, so it
/// costs nothing like a parse and cannot itself recurse.
fn nested_deeper_than(body: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Checks a POST body before rmcp reads it: JSON, not too deep, not a batch.
fn check_body(body: &[u8]) -> Result<(), Box<Reply>> {
    if nested_deeper_than(body, MAX_JSON_DEPTH) {
        return Err(Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32700,
            &format!("Parse error: JSON nested more than {MAX_JSON_DEPTH} levels deep"),
        )));
    }
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        return Err(Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32700,
            &format!("Parse error: {e}"),
        )));
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32600,
            "Invalid Request: JSON-RPC batches are not supported (removed in MCP 2025-06-18); send one message per request",
        )));
    }
    Ok(())
}

/// Whether `body` is an `initialize` request.
fn is_initialize(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Probe<'_>>(body).is_ok_and(|p| p.method.as_deref() == Some("initialize"))
}

/// Loads the TLS certificate chain and key.
fn tls_acceptor(cert: &str, key: &str) -> Result<tokio_rustls::TlsAcceptor, HttpError> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let refused = |what: &str, path: &str, e: &dyn std::fmt::Display| {
        HttpError::Refused(format!("transport.remote.{what} {path}: {e}"))
    };
    let cert_path = comfy_audit::expand_home(cert);
    let key_path = comfy_audit::expand_home(key);
    let chain = CertificateDer::pem_file_iter(&cert_path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| refused("tls_cert", cert, &e))?;
    if chain.is_empty() {
        return Err(refused("tls_cert", cert, &"no certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| refused("tls_key", key, &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Refused(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| refused("tls_key", key, &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The well-known path of the protected-resource metadata (RFC 9728), and
/// its form with the resource's path (`/mcp`) appended.
const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";
const METADATA_PATH_MCP: &str = "/.well-known/oauth-protected-resource/mcp";

/// The URL of this server as the request reached it (`scheme://host`),
/// when its `Host` is one the server answers to.
fn base_url<B>(req: &Request<B>, shared: &Shared) -> Option<String> {
    let host = req.headers().get(header::HOST)?.to_str().ok()?;
    if !plain_authority(host) || !shared.rebinding.host_allowed(host) {
        return None;
    }
    let scheme = if shared.tls { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// The protected-resource metadata (RFC 9728) of `/mcp` at `base`. With
/// OAuth, the configured resource, its authorization servers and scopes;
/// without, no `authorization_servers`: the server takes static bearer
/// tokens only (the member is optional, and a client without one to ask
/// sends its configured token).
fn resource_metadata(base: &str, oauth: Option<&oauth::Verifier>) -> Reply {
    let body = match oauth {
        Some(v) => serde_json::json!({
            "resource": v.settings.resource,
            "authorization_servers": v.settings.issuer_ids(),
            "scopes_supported": v.settings.all_scopes(),
            "bearer_methods_supported": ["header"],
            "resource_name": "comfy-mcp",
        }),
        None => serde_json::json!({
            "resource": format!("{base}/mcp"),
            "bearer_methods_supported": ["header"],
            "resource_name": "comfy-mcp",
        }),
    };
    let mut r = text(StatusCode::OK, body.to_string());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("max-age=3600"));
    r
}

/// What every connection needs.
struct Shared {
    /// The `Host` and `Origin` values served (also for the metadata URL).
    rebinding: Rebinding,
    /// Whether the server speaks TLS itself.
    tls: bool,
    mcp: StreamableHttpService<Server, Sessions>,
    sessions: Arc<Sessions>,
    tokens: Tokens,
    /// JWT access tokens, with `transport.remote.oauth`.
    oauth: Option<Arc<oauth::Verifier>>,
    /// Where the metadata is, with OAuth (from the configured resource).
    oauth_metadata: Option<(String, String)>,
    share_jobs: bool,
    request_timeout: Duration,
}

impl Shared {
    fn auth_required(&self) -> bool {
        self.tokens.required() || self.oauth.is_some()
    }
}

/// RFC 9728 §3.1: the metadata URL of `resource` (the well-known path
/// inserted between its origin and its path), and that path.
fn metadata_location(resource: &str) -> Option<(String, String)> {
    let url = url::Url::parse(resource).ok()?;
    let path = url.path().trim_end_matches('/');
    let well_known = format!("{METADATA_PATH}{path}");
    let origin = url.origin().ascii_serialization();
    Some((format!("{origin}{well_known}"), well_known))
}

/// Answers one HTTP request.
async fn handle(shared: Arc<Shared>, mut req: Request<Incoming>) -> Reply {
    let path = req.uri().path();
    if path == "/healthz" {
        return plain(StatusCode::OK, "ok\n");
    }
    let oauth_metadata_path = shared.oauth_metadata.as_ref().is_some_and(|(_, p)| p == path);
    if (path == METADATA_PATH || path == METADATA_PATH_MCP || oauth_metadata_path) && shared.auth_required() {
        if let Err(refused) = check_head(&mut req) {
            return *refused;
        }
        if !matches!(req.method(), &http::Method::GET | &http::Method::HEAD) {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        return match base_url(&req, &shared) {
            Some(base) => resource_metadata(&base, shared.oauth.as_deref()),
            None => plain(StatusCode::FORBIDDEN, "Forbidden: Host header is not allowed\n"),
        };
    }
    if path != "/mcp" {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    }
    if let Err(refused) = check_head(&mut req) {
        return *refused;
    }
    if let Err(refused) = shared.rebinding.check(req.headers()) {
        return *refused;
    }
    let metadata = match &shared.oauth_metadata {
        Some((url, _)) => Some(url.clone()),
        None => base_url(&req, &shared).map(|base| format!("{base}{METADATA_PATH_MCP}")),
    };
    let (principal, scopes) = match authenticate(&req, &shared, metadata.as_deref()).await {
        Ok(Some((p, scopes))) => (Some(p), scopes),
        Ok(None) => (None, None),
        Err(refused) => return *refused,
    };
    // A session is its creator's: any other token naming it gets the 404
    // of an unknown session, whatever the method.
    if let Some(id) = req.headers().get("mcp-session-id").and_then(|v| v.to_str().ok())
        && !shared.sessions.belongs_to(id, principal.as_ref())
    {
        tracing::warn!(
            principal = principal.as_ref().map(|p| &*p.0),
            "refused a request naming another principal's MCP session"
        );
        return plain(StatusCode::NOT_FOUND, "Not Found: Session not found");
    }
    let (mut parts, body) = req.into_parts();
    if let Some(p) = &principal {
        parts.extensions.insert(p.clone());
    }
    if shared.share_jobs {
        parts.extensions.insert(ShareJobs);
    }
    // A declared length over the limit is refused before reading a byte.
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    }
    // Read the whole body, bounded in size and time, and check it.
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    let bytes = match tokio::time::timeout(shared.request_timeout, limited.collect()).await {
        Err(_) => return plain(StatusCode::REQUEST_TIMEOUT, "request body not received in time\n"),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
        }
        Ok(Err(_)) => return plain(StatusCode::BAD_REQUEST, "request body could not be read\n"),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    if parts.method == http::Method::POST {
        if let Err(refused) = check_body(&bytes) {
            return *refused;
        }
        if let (Some(granted), Some(verifier)) = (&scopes, &shared.oauth)
            && let Some((method, tool)) = method_and_tool(&bytes)
            && let Some(need) = oauth::Need::of(&method, tool.as_deref())
        {
            let scope = verifier.settings.scope(need);
            if !granted.contains(scope) {
                tracing::warn!(
                    principal = principal.as_ref().map(|p| &*p.0),
                    method,
                    tool,
                    scope,
                    "refused a call the token's scopes do not cover"
                );
                let what = tool.map_or_else(|| method.clone(), |t| format!("the tool {t}"));
                let description = format!("{what} needs the scope {scope}");
                let mut r = text(StatusCode::FORBIDDEN, format!("{description}\n"));
                let mut params = vec![("error", "insufficient_scope"), ("scope", scope)];
                if let Some(url) = metadata.as_deref() {
                    params.push(("resource_metadata", url));
                }
                params.push(("error_description", &description));
                r.headers_mut().insert(header::WWW_AUTHENTICATE, challenge(&params));
                return r;
            }
        }
        if !parts.headers.contains_key("mcp-session-id") && is_initialize(&bytes) {
            if let Some(cap) = shared.sessions.is_full_for(parts.extensions.get::<Principal>()) {
                let name = parts
                    .extensions
                    .get::<Principal>()
                    .map(|p| p.0.to_string())
                    .unwrap_or_default();
                let mut r = text(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "too many MCP sessions for principal '{name}': at most {cap} \
                         (transport.remote.max_sessions_per_principal); end one (DELETE) or retry later\n"
                    ),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
                return r;
            }
            if shared.sessions.is_full() {
                let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "too many MCP sessions; retry later\n");
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
                return r;
            }
        }
    }
    let mut mcp = shared.mcp.clone();
    let deleting = parts.method == http::Method::DELETE;
    let served = sessions::ending(sessions::as_creator(
        principal,
        tower::Service::call(&mut mcp, Request::from_parts(parts, Full::new(bytes))),
    ));
    match served.await {
        (Ok(reply), ended) if deleting => session_ended(reply, ended),
        (Ok(reply), _) => reply,
        (Err(never), _) => match never {},
    }
}

/// The answer to `DELETE /mcp`: rmcp says 202 whether or not the session
/// existed (and the Python SDK logs that as a failed termination); the
/// spec's answers are 204 for an ended session and 404 for one the server
/// does not know, so a client learns that the id is dead either way.
fn session_ended(reply: Reply, ended: Option<bool>) -> Reply {
    if reply.status() != StatusCode::ACCEPTED {
        return reply;
    }
    match ended {
        Some(true) => {
            let mut r = Response::new(Full::new(Bytes::new()).boxed());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
        Some(false) => plain(StatusCode::NOT_FOUND, "Not Found: Session not found\n"),
        None => reply,
    }
}

/// Serves one connection (plain or TLS).
async fn connection<IO>(shared: Arc<Shared>, io: IO, header_timeout: Duration)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// Serves MCP over HTTP until `stop` is cancelled.
///
/// # Errors
/// [`HttpError`] when the settings are refused or the address cannot be
/// bound.
pub async fn serve(server: Server, remote: &Remote, stop: CancellationToken) -> Result<SocketAddr, HttpError> {
    let tokens = Tokens::from(remote);
    let rebinding = Rebinding::from_config(remote).map_err(|e| HttpError::Refused(e.to_string()))?;
    let verifier = if remote.oauth.enabled() {
        let settings = oauth::Settings::from_config(&remote.oauth)
            .map_err(|(key, value, why)| HttpError::Refused(format!("{key} {value}: {why}")))?;
        Some(Arc::new(oauth::Verifier::new(settings)))
    } else {
        None
    };
    let oauth_metadata = verifier.as_ref().and_then(|v| metadata_location(&v.settings.resource));
    let authenticated = tokens.required() || verifier.is_some();
    if !is_loopback(&remote.host) && !authenticated && !remote.allow_unauthenticated {
        return Err(HttpError::Refused(format!(
            "refusing to serve on {} without transport.remote.auth_token (or COMFYUI_MCP_AUTH_TOKEN); \
             set transport.remote.allow_unauthenticated: true to do it anyway",
            remote.host
        )));
    }
    if !authenticated && !is_loopback(&remote.host) {
        tracing::warn!("serving MCP on {} without authentication", remote.host);
    }
    let tls = match (&remote.tls_cert, &remote.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let addr = format!("{}:{}", remote.host, remote.port);
    let listener = TcpListener::bind(&addr).await.map_err(|e| HttpError::Bind {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    let local = listener.local_addr().map_err(|e| HttpError::Bind {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(rebinding.host_entries().to_vec())
        .with_allowed_origins(rebinding.origin_entries().to_vec())
        .with_max_request_body_bytes(MAX_BODY)
        .with_cancellation_token(stop.clone());
    let idle = Duration::from_secs(remote.session_idle_timeout);
    let sessions = Arc::new(Sessions::new(
        remote.max_sessions,
        remote.sessions_per_principal(),
        idle,
    ));
    let factory_server = server.with_transport("http");
    let mcp = StreamableHttpService::new(move || Ok(factory_server.clone()), Arc::clone(&sessions), config);
    let shared_tokens = tokens.0.len();
    let shared = Arc::new(Shared {
        rebinding,
        tls: tls.is_some(),
        mcp,
        sessions: Arc::clone(&sessions),
        tokens,
        // With one principal there is nobody to keep jobs from; OAuth
        // subjects are many.
        share_jobs: remote.share_jobs || (shared_tokens < 2 && verifier.is_none()),
        oauth: verifier,
        oauth_metadata,
        request_timeout: Duration::from_secs(remote.request_timeout),
    });
    let header_timeout = Duration::from_secs(remote.header_timeout);
    // Close idle sessions nobody names again.
    let sweep_stop = stop.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval((idle / 4).clamp(Duration::from_secs(1), Duration::from_mins(1)));
        loop {
            tokio::select! {
                () = sweep_stop.cancelled() => break,
                _ = tick.tick() => sessions.sweep().await,
            }
        }
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                a = listener.accept() => a,
            };
            let Ok((tcp, _)) = accepted else { continue };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                tracing::warn!("{MAX_CONNECTIONS} connections open; closing a new one");
                drop(tcp);
                continue;
            };
            let (shared, tls) = (Arc::clone(&shared), tls.clone());
            tokio::spawn(async move {
                let _slot = slot;
                match tls {
                    None => connection(shared, tcp, header_timeout).await,
                    Some(acceptor) => {
                        // The handshake is bounded like the headers.
                        if let Ok(Ok(stream)) = tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await {
                            connection(shared, stream, header_timeout).await;
                        }
                    }
                }
            });
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::{nested_deeper_than, plain_authority};

    #[test]
    fn only_plain_authorities_pass() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "localhost:1",
            "[::1]",
            "[::1]:65535",
            "mcp.example.com:443",
        ] {
            assert!(plain_authority(ok), "{ok}");
        }
        for bad in [
            "127.0.0.1:8080.",
            "localhost.",
            "localhost.:80",
            "127.0.0.1:",
            "127.0.0.1:65536",
            "127.0.0.1:+80",
            "127.0.0.1:80:80",
            "::1",
            "[::1",
            "[::1]x",
            "[nothex]:1",
            "user@127.0.0.1",
            "127.0.0.1 ",
            "",
            ".",
            "a..b",
            "evil.example/x",
        ] {
            assert!(!plain_authority(bad), "{bad}");
        }
    }

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        assert!(!nested_deeper_than(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(nested_deeper_than(br#"{"a":[1,{"b":[2]}]}"#, 3));
        assert!(!nested_deeper_than(br#"{"a":"[[[[[[\"[[[["}"#, 1));
        assert!(nested_deeper_than(&vec![b'['; 100_000], 64));
        assert!(
            !nested_deeper_than(br#"{"a":"\\"}"#, 1),
            "an escaped backslash ends the escape"
        );
    }
}
