//! The header gate: the request head checked before anything reads it.
//! Headers that must appear once appear once, `Host` is a plain
//! `host[:port]`, and an absolute-form target's authority takes the place
//! of `Host` (RFC 9112 §3.2.2), so rmcp's Host check judges what the
//! request really names.

use http::{Request, StatusCode, header};

use super::{Reply, plain};

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
pub(super) fn plain_authority(value: &str) -> bool {
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
pub(super) fn check_head<B>(req: &mut Request<B>) -> Result<(), Box<Reply>> {
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

#[cfg(test)]
mod tests {
    use super::plain_authority;

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
}
