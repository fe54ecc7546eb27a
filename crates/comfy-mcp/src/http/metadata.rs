//! The protected-resource metadata of RFC 9728, served with
//! authentication on at `/.well-known/oauth-protected-resource` and its
//! path-suffixed form, and named in the 401's `WWW-Authenticate`.

use http::{Request, StatusCode, header};

use super::dispatch::Shared;
use super::head::plain_authority;
use super::{Reply, oauth, text};

/// The well-known path of the protected-resource metadata (RFC 9728), and
/// its form with the resource's path (`/mcp`) appended.
pub(super) const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";
pub(super) const METADATA_PATH_MCP: &str = "/.well-known/oauth-protected-resource/mcp";

/// The URL of this server as the request reached it (`scheme://host`),
/// when its `Host` is one the server answers to.
pub(super) fn base_url<B>(req: &Request<B>, shared: &Shared) -> Option<String> {
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
pub(super) fn resource_metadata(base: &str, oauth: Option<&oauth::Verifier>) -> Reply {
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

/// RFC 9728 §3.1: the metadata URL of `resource` (the well-known path
/// inserted between its origin and its path), and that path.
pub(super) fn metadata_location(resource: &str) -> Option<(String, String)> {
    let url = url::Url::parse(resource).ok()?;
    let path = url.path().trim_end_matches('/');
    let well_known = format!("{METADATA_PATH}{path}");
    let origin = url.origin().ascii_serialization();
    Some((format!("{origin}{well_known}"), well_known))
}
