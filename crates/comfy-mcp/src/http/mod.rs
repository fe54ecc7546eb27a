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
//!   request's [`Principal`](crate::caller::Principal), written to the
//!   audit log and used to keep one principal's jobs from another (see
//!   [`crate::caller`]);
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
//!
//! The files, one job each: `dispatch` routes a request through the checks
//! below to rmcp; `head` is the header gate (single headers, a plain
//! `Host`, absolute-form targets); `auth` the bearer tokens, OAuth access
//! tokens and their scopes; `body` the body checks before rmcp; `metadata`
//! the protected-resource metadata; `listen` the settings check, the
//! listener, TLS and the connections.

mod auth;
mod body;
mod dispatch;
mod head;
pub mod jwt;
mod listen;
mod metadata;
pub mod oauth;
pub mod rebinding;
pub mod sessions;

use std::convert::Infallible;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};

pub use listen::serve;

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

/// Whether `host` names this machine.
fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An HTTP answer of ours.
type Reply = Response<BoxBody<Bytes, Infallible>>;

/// A plain-text answer with a fixed body.
fn plain(status: StatusCode, body: &'static str) -> Reply {
    text(status, body)
}

/// A plain-text answer.
fn text(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
