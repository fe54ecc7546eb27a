//! Who is calling: the MCP session and, when the HTTP transport
//! authenticates, the principal.
//!
//! The HTTP layer puts a [`Principal`] into the request's extensions after
//! the bearer token matched; rmcp hands the request's `http::request::Parts`
//! to every handler in its context, so tools and the audit layer read both
//! from there. Over stdio there is neither: one local user, one client.

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::service::RequestContext;

/// The name of the token a request authenticated with (`default` for
/// `transport.remote.auth_token`, the key for `transport.remote.auth_tokens`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal(pub Arc<str>);

/// The caller of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The `Mcp-Session-Id`, when the request is in a session.
    pub session: Option<String>,
    /// Who authenticated, when the transport requires it.
    pub principal: Option<Principal>,
    /// Whether this caller's jobs are shared with every other caller.
    pub shared: bool,
}

/// Whether every principal may see every job (`transport.remote.share_jobs`);
/// the HTTP layer adds it to requests when set.
#[derive(Debug, Clone, Copy)]
pub struct ShareJobs;

impl Caller {
    /// The caller of the request in `ctx`.
    #[must_use]
    pub fn of(ctx: Option<&RequestContext<RoleServer>>) -> Self {
        let Some(parts) = ctx.and_then(|c| c.extensions.get::<http::request::Parts>()) else {
            return Self::default();
        };
        Self {
            session: parts
                .headers
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            principal: parts.extensions.get::<Principal>().cloned(),
            shared: parts.extensions.get::<ShareJobs>().is_some(),
        }
    }

    /// The session as the audit log shows it: its first 8 characters, enough
    /// to tell sessions apart without writing a usable session id to disk.
    #[must_use]
    pub fn session_tag(&self) -> Option<String> {
        self.session.as_ref().map(|s| s.chars().take(8).collect())
    }

    /// Who owns the jobs this caller starts, when jobs are kept apart:
    /// the principal, unless jobs are shared or nobody authenticated.
    #[must_use]
    pub fn owner(&self) -> Option<&Principal> {
        self.principal.as_ref().filter(|_| !self.shared)
    }
}
