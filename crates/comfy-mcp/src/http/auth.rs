//! Who a request is: a bearer token compared in constant time against the
//! configured ones (each naming a principal), else with OAuth a JWT access
//! token from a configured issuer; no tokens in the query string; 401
//! with a `WWW-Authenticate` challenge naming the metadata, and 403 for a
//! call the token's scopes do not cover.

use std::collections::BTreeSet;

use http::{Request, StatusCode, header};
use subtle::ConstantTimeEq;

use super::body::method_and_tool;
use super::dispatch::Shared;
use super::{DEFAULT_PRINCIPAL, Reply, oauth, plain, text};
use crate::caller::Principal;
use crate::config::Remote;

/// The accepted bearer tokens and their principals.
pub(super) struct Tokens(pub(super) Vec<(Principal, String)>);

impl Tokens {
    pub(super) fn from(remote: &Remote) -> Self {
        let mut all = Vec::new();
        if let Some(t) = remote.auth_token.as_ref().filter(|t| !t.is_empty()) {
            all.push((Principal(DEFAULT_PRINCIPAL.into()), t.clone()));
        }
        for (name, t) in &remote.auth_tokens {
            all.push((Principal(name.as_str().into()), t.clone()));
        }
        Self(all)
    }

    pub(super) fn required(&self) -> bool {
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
pub(super) type Authenticated = Option<(Principal, Option<BTreeSet<String>>)>;

/// Checks the bearer token: a static token, else (with OAuth) a JWT
/// access token; the principal, or the refusal.
pub(super) async fn authenticate<B>(
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

/// Refuses a call the OAuth token's scopes (`scopes`; `None`: a static
/// token) do not cover: 403 with `error="insufficient_scope"` and the scope
/// it needs, and where the metadata is.
pub(super) fn check_scope(
    body: &[u8],
    scopes: Option<&BTreeSet<String>>,
    shared: &Shared,
    principal: Option<&Principal>,
    metadata: Option<&str>,
) -> Result<(), Box<Reply>> {
    if let (Some(granted), Some(verifier)) = (scopes, &shared.oauth)
        && let Some((method, tool)) = method_and_tool(body)
        && let Some(need) = oauth::Need::of(&method, tool.as_deref())
    {
        let scope = verifier.settings.scope(need);
        if !granted.contains(scope) {
            tracing::warn!(
                principal = principal.map(|p| &*p.0),
                method,
                tool,
                scope,
                "refused a call the token's scopes do not cover"
            );
            let what = tool.map_or_else(|| method.clone(), |t| format!("the tool {t}"));
            let description = format!("{what} needs the scope {scope}");
            let mut r = text(StatusCode::FORBIDDEN, format!("{description}\n"));
            let mut params = vec![("error", "insufficient_scope"), ("scope", scope)];
            if let Some(url) = metadata {
                params.push(("resource_metadata", url));
            }
            params.push(("error_description", &description));
            r.headers_mut().insert(header::WWW_AUTHENTICATE, challenge(&params));
            return Err(Box::new(r));
        }
    }
    Ok(())
}
