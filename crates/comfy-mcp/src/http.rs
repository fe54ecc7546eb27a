//! The remote transport: MCP Streamable HTTP at `/mcp` on
//! `transport.remote.host:port`, safe by default.
//!
//! rmcp's `StreamableHttpService` speaks the protocol (sessions for
//! 2025-11-25, stateless 2026-07-28, `Mcp-Method` headers) and checks Host
//! and Origin; in front of it this module adds what rmcp leaves to the
//! deployment:
//! - Origin validation switched on, with loopback origins allowed by
//!   default (rmcp checks nothing unless origins are configured), so a
//!   foreign or `null` Origin gets 403; foreign Host headers get 403;
//! - an optional bearer token (`transport.remote.auth_token` or
//!   `COMFYUI_MCP_AUTH_TOKEN`) compared in constant time, 401 with
//!   `WWW-Authenticate` otherwise, and tokens in the query string refused;
//! - a refusal to start on a non-loopback address without a token, unless
//!   `transport.remote.allow_unauthenticated` says so;
//! - a body limit (413), a header-read timeout (slow clients cannot hold a
//!   connection), `/healthz` for load balancers, 404 elsewhere.
//!
//! Every tool call still goes through the same tower stack as over stdio.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Remote;
use crate::server::Server;

/// Largest request body accepted.
pub const MAX_BODY: usize = 4 << 20;
/// How long a client may take to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the HTTP transport could not start.
#[derive(Debug, thiserror::Error)]
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
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Checks the bearer token; `Some(response)` when the request is refused.
fn refuse_auth(req: &Request<Incoming>, token: Option<&str>) -> Option<Reply> {
    let query = req.uri().query().unwrap_or_default().to_ascii_lowercase();
    if ["token=", "access_token=", "auth=", "key="]
        .iter()
        .any(|k| query.contains(k))
    {
        return Some(plain(
            StatusCode::BAD_REQUEST,
            "tokens are not accepted in the query string; send Authorization: Bearer <token>\n",
        ));
    }
    let token = token?;
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) && !given.is_empty() {
        return None;
    }
    let mut r = plain(StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"comfy-mcp\""),
    );
    Some(r)
}

/// Serves MCP over HTTP until `stop` is cancelled.
///
/// # Errors
/// [`HttpError`] when the settings are refused or the address cannot be
/// bound.
pub async fn serve(server: Server, remote: &Remote, stop: CancellationToken) -> Result<SocketAddr, HttpError> {
    let token = remote.auth_token.clone().filter(|t| !t.is_empty());
    if !is_loopback(&remote.host) && token.is_none() && !remote.allow_unauthenticated {
        return Err(HttpError::Refused(format!(
            "refusing to serve on {} without transport.remote.auth_token (or COMFYUI_MCP_AUTH_TOKEN); \
             set transport.remote.allow_unauthenticated: true to do it anyway",
            remote.host
        )));
    }
    if token.is_none() && !is_loopback(&remote.host) {
        tracing::warn!("serving MCP on {} without authentication", remote.host);
    }
    let addr = format!("{}:{}", remote.host, remote.port);
    let listener = TcpListener::bind(&addr).await.map_err(|e| HttpError::Bind {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    let local = listener.local_addr().map_err(|e| HttpError::Bind {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    let mut hosts = remote.allowed_hosts.clone();
    if hosts.is_empty() {
        hosts = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    }
    if !is_loopback(&remote.host) && remote.host != "0.0.0.0" && !hosts.contains(&remote.host) {
        hosts.push(remote.host.clone());
    }
    let mut origins = remote.allowed_origins.clone();
    if origins.is_empty() {
        origins = vec![
            "http://localhost:*".into(),
            "http://127.0.0.1:*".into(),
            "http://[::1]:*".into(),
            "https://localhost:*".into(),
            "https://127.0.0.1:*".into(),
        ];
    }
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .with_max_request_body_bytes(MAX_BODY)
        .with_cancellation_token(stop.clone());
    let factory_server = server.with_transport("http");
    let mcp = StreamableHttpService::new(
        move || Ok(factory_server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let token = Arc::new(token);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                a = listener.accept() => a,
            };
            let Ok((tcp, _)) = accepted else { continue };
            let (mcp, token) = (mcp.clone(), Arc::clone(&token));
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (mut mcp, token) = (mcp.clone(), Arc::clone(&token));
                    async move {
                        let path = req.uri().path().to_owned();
                        if path == "/healthz" {
                            return Ok::<_, Infallible>(plain(StatusCode::OK, "ok\n"));
                        }
                        if path != "/mcp" {
                            return Ok(plain(StatusCode::NOT_FOUND, "not found\n"));
                        }
                        if let Some(refused) = refuse_auth(&req, token.as_deref()) {
                            return Ok(refused);
                        }
                        tower::Service::call(&mut mcp, req).await
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok(local)
}
