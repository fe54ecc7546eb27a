//! The dispatch: one HTTP request through the checks in order, then to
//! rmcp. `/healthz` answers at once; the metadata paths get the header gate
//! and the metadata; `/mcp` gets the header gate, the Host and Origin
//! lists, authentication, the session's owner, the body limits and checks,
//! the token's scopes and the session caps, and `DELETE` an honest answer.
//! Anything else is 404.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use rmcp::transport::streamable_http_server::StreamableHttpService;

use super::auth::{Tokens, authenticate, check_scope};
use super::body::{check_body, is_initialize};
use super::head::check_head;
use super::metadata::{METADATA_PATH, METADATA_PATH_MCP, base_url, resource_metadata};
use super::rebinding::Rebinding;
use super::sessions::{self, Sessions};
use super::{MAX_BODY, Reply, oauth, plain, text};
use crate::caller::{Principal, ShareJobs};
use crate::server::Server;

/// What every connection needs.
pub(super) struct Shared {
    /// The `Host` and `Origin` values served (also for the metadata URL).
    pub(super) rebinding: Rebinding,
    /// Whether the server speaks TLS itself.
    pub(super) tls: bool,
    pub(super) mcp: StreamableHttpService<Server, Sessions>,
    pub(super) sessions: Arc<Sessions>,
    pub(super) tokens: Tokens,
    /// JWT access tokens, with `transport.remote.oauth`.
    pub(super) oauth: Option<Arc<oauth::Verifier>>,
    /// Where the metadata is, with OAuth (from the configured resource).
    pub(super) oauth_metadata: Option<(String, String)>,
    pub(super) share_jobs: bool,
    pub(super) request_timeout: Duration,
}

impl Shared {
    pub(super) fn auth_required(&self) -> bool {
        self.tokens.required() || self.oauth.is_some()
    }
}

/// Answers one HTTP request.
pub(super) async fn handle(shared: Arc<Shared>, mut req: Request<Incoming>) -> Reply {
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
        if let Err(refused) = check_scope(
            &bytes,
            scopes.as_ref(),
            &shared,
            principal.as_ref(),
            metadata.as_deref(),
        ) {
            return *refused;
        }
        if !parts.headers.contains_key("mcp-session-id")
            && is_initialize(&bytes)
            && let Err(refused) = room_for_session(&shared.sessions, parts.extensions.get::<Principal>())
        {
            return *refused;
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

/// Refuses one more `initialize` when the sessions are full: 429 naming
/// the principal's own limit, or 503 for the cap over all.
fn room_for_session(sessions: &Sessions, principal: Option<&Principal>) -> Result<(), Box<Reply>> {
    if let Some(cap) = sessions.is_full_for(principal) {
        let name = principal.map(|p| p.0.to_string()).unwrap_or_default();
        let mut r = text(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many MCP sessions for principal '{name}': at most {cap} \
                 (transport.remote.max_sessions_per_principal); end one (DELETE) or retry later\n"
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
        return Err(Box::new(r));
    }
    if sessions.is_full() {
        let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "too many MCP sessions; retry later\n");
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
        return Err(Box::new(r));
    }
    Ok(())
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
