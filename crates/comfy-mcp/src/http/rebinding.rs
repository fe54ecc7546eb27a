//! DNS-rebinding and cross-origin protection: which `Host` and `Origin`
//! values the HTTP transport answers.
//!
//! A web page can make a browser send requests to a server on the user's
//! machine or network in two ways: by a name of its own that it points at
//! the server's address (DNS rebinding: the browser then sends the page's
//! name as `Host`), or by a cross-origin `fetch` (the browser sends the
//! page's `Origin`). So a request is served only when
//! - its `Host` is one of the allowed names (`name` matches any port,
//!   `name:port` only that port), and
//! - it has no `Origin` (clients that are not browsers send none), or an
//!   `Origin` whose scheme, host and port match an allowed origin exactly
//!   (`null` never does: sandboxed frames and local files send it, so
//!   anyone can).
//!
//! The allowed lists are loopback (`localhost`, `127.0.0.1`, `::1`, over
//! http and https, any port), widened by `transport.remote.allowed_hosts`
//! and `allowed_origins` and by the address the server listens on when it
//! is a named, non-loopback one. `transport.remote.allow_loopback: false`
//! drops the loopback entries, for a deployment reached only by its public
//! name, where a page on the user's own machine (`http://localhost:3000`)
//! has no business calling it.
//!
//! An allowed origin must name its port (`https://app.example:443`) or
//! say any port (`https://app.example:*`): a bare `https://app.example` is
//! refused when the server starts rather than guessed at, because rmcp
//! reads it as any port while a browser means 443.
//!
//! rmcp checks both again with the same lists; this module is the one that
//! decides, and names what it refused.

use http::{HeaderMap, StatusCode, header};

use super::head::plain_authority;
use super::{Reply, plain};
use crate::config::Remote;

/// The loopback names allowed as `Host` unless `allow_loopback` is off.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Why the `Host`/`Origin` settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RebindingError {
    /// An `allowed_hosts` entry that is not `name` or `name:port`.
    #[error(
        "transport.remote.allowed_hosts: {0:?} is not a host name or address with an optional port \
         (write `mcp.example.com` or `mcp.example.com:8443`)"
    )]
    Host(String),
    /// An `allowed_origins` entry that is not `scheme://host:port`.
    #[error("transport.remote.allowed_origins: {entry:?} {why}")]
    Origin {
        /// The entry.
        entry: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// No `Host` at all would be accepted.
    #[error(
        "transport.remote.allow_loopback is false and transport.remote.allowed_hosts is empty: \
         no request could be served; list the names clients use to reach the server"
    )]
    NoHosts,
}

/// The port part of an allowed origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    /// `:*`.
    Any,
    /// An explicit port.
    Exact(u16),
}

/// One allowed origin, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedOrigin {
    scheme: String,
    host: String,
    port: Port,
}

/// One allowed `Host`, parsed: a lowercase name without brackets, and a
/// port or none (any port).
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    name: String,
    port: Option<u16>,
}

/// The allowed `Host` and `Origin` values.
#[derive(Debug, Clone)]
pub struct Rebinding {
    hosts: Vec<AllowedHost>,
    origins: Vec<AllowedOrigin>,
    /// The lists as written, for rmcp's own check.
    host_entries: Vec<String>,
    origin_entries: Vec<String>,
}

/// Splits a `host[:port]` authority (IPv6 in brackets) into a lowercase
/// name without brackets and the port.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    if !plain_authority(authority) {
        return None;
    }
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        (inner, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((name.to_ascii_lowercase(), port))
}

/// A host entry as written in a config (`::1` is accepted unbracketed).
fn parse_host_entry(entry: &str) -> Option<AllowedHost> {
    let entry = entry.trim();
    if entry.parse::<std::net::Ipv6Addr>().is_ok() {
        return Some(AllowedHost {
            name: entry.to_ascii_lowercase(),
            port: None,
        });
    }
    let (name, port) = split_authority(entry)?;
    Some(AllowedHost { name, port })
}

/// Parses `scheme://host:port` (or `:*`): what an `Origin` header or an
/// allowed origin says. `require_port`: an allowed origin must name one.
fn parse_origin(value: &str, require_port: bool) -> Result<AllowedOrigin, &'static str> {
    let (scheme, rest) = value.split_once("://").ok_or("is not an origin (scheme://host:port)")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err("has a scheme other than http or https");
    }
    if rest.contains(['/', '?', '#', '@']) {
        return Err("has a path, query, fragment or user name (an origin is scheme://host:port only)");
    }
    let (authority, any) = match rest.strip_suffix(":*") {
        Some(a) => (a, true),
        None => (rest, false),
    };
    let (host, port) = split_authority(authority).ok_or("has a malformed host or port")?;
    let port = match (port, any) {
        (Some(_), true) => return Err("names a port and `*`"),
        (None, true) => Port::Any,
        (Some(p), false) => Port::Exact(p),
        (None, false) if require_port => {
            return Err("has no port: write the port (https://app.example:443) or `:*` for any port");
        }
        // A browser leaves out the scheme's default port.
        (None, false) => Port::Exact(if scheme == "https" { 443 } else { 80 }),
    };
    Ok(AllowedOrigin { scheme, host, port })
}

impl Rebinding {
    /// The lists for `remote`: loopback (unless `allow_loopback` is off),
    /// the configured entries, and the listening host when it is a named,
    /// non-loopback one.
    ///
    /// # Errors
    /// [`RebindingError`] naming the entry that is not understood, or when
    /// no `Host` would be accepted.
    pub fn from_config(remote: &Remote) -> Result<Self, RebindingError> {
        let mut host_entries: Vec<String> = Vec::new();
        let mut origin_entries: Vec<String> = Vec::new();
        if remote.allow_loopback {
            host_entries.extend(LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()));
            for scheme in ["http", "https"] {
                for host in ["localhost", "127.0.0.1", "[::1]"] {
                    origin_entries.push(format!("{scheme}://{host}:*"));
                }
            }
        }
        for entry in &remote.allowed_hosts {
            if parse_host_entry(entry).is_none() {
                return Err(RebindingError::Host(entry.clone()));
            }
            host_entries.push(entry.trim().to_owned());
        }
        let listen = remote.host.trim();
        let unspecified = listen.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_unspecified());
        if !super::is_loopback(listen) && !unspecified && parse_host_entry(listen).is_some() {
            host_entries.push(listen.to_owned());
        }
        if host_entries.is_empty() {
            return Err(RebindingError::NoHosts);
        }
        for entry in &remote.allowed_origins {
            let trimmed = entry.trim();
            if trimmed.eq_ignore_ascii_case("null") {
                return Err(RebindingError::Origin {
                    entry: entry.clone(),
                    why: "cannot be allowed: any sandboxed page or local file sends it",
                });
            }
            parse_origin(trimmed, true).map_err(|why| RebindingError::Origin {
                entry: entry.clone(),
                why,
            })?;
            origin_entries.push(trimmed.to_owned());
        }
        host_entries.dedup();
        let hosts = host_entries.iter().filter_map(|e| parse_host_entry(e)).collect();
        let origins = origin_entries
            .iter()
            .filter_map(|e| parse_origin(e, true).ok())
            .collect();
        Ok(Self {
            hosts,
            origins,
            host_entries,
            origin_entries,
        })
    }

    /// The allowed hosts as written (for rmcp's own check).
    #[must_use]
    pub fn host_entries(&self) -> &[String] {
        &self.host_entries
    }

    /// The allowed origins as written (for rmcp's own check).
    #[must_use]
    pub fn origin_entries(&self) -> &[String] {
        &self.origin_entries
    }

    /// Whether `authority` (a `Host` value) is allowed.
    #[must_use]
    pub fn host_allowed(&self, authority: &str) -> bool {
        let Some((name, port)) = split_authority(authority) else {
            return false;
        };
        self.hosts
            .iter()
            .any(|h| h.name == name && h.port.is_none_or(|p| Some(p) == port))
    }

    /// Whether `value` (an `Origin` value) is allowed.
    #[must_use]
    pub fn origin_allowed(&self, value: &str) -> bool {
        let Ok(origin) = parse_origin(value.trim(), false) else {
            return false;
        };
        let Port::Exact(port) = origin.port else {
            return false;
        };
        self.origins.iter().any(|a| {
            a.scheme == origin.scheme
                && a.host == origin.host
                && match a.port {
                    Port::Any => true,
                    Port::Exact(p) => p == port,
                }
        })
    }

    /// Checks a request's `Host` and `Origin` (the head has passed
    /// `check_head`, so each appears at most once): 400 without a `Host`,
    /// 403 naming which of the two is not allowed.
    ///
    /// # Errors
    /// The refusal to send.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Box<Reply>> {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return Err(Box::new(plain(
                StatusCode::BAD_REQUEST,
                "Bad Request: missing Host header\n",
            )));
        };
        if !self.host_allowed(host) {
            tracing::warn!(
                host,
                "refused a request whose Host is not allowed (possible DNS rebinding; transport.remote.allowed_hosts)"
            );
            return Err(Box::new(plain(
                StatusCode::FORBIDDEN,
                "Forbidden: Host header is not allowed\n",
            )));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let allowed = origin.to_str().is_ok_and(|o| self.origin_allowed(o));
            if !allowed {
                tracing::warn!(
                    origin = ?origin,
                    "refused a request from an Origin that is not allowed (transport.remote.allowed_origins)"
                );
                return Err(Box::new(plain(
                    StatusCode::FORBIDDEN,
                    "Forbidden: Origin header is not allowed\n",
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use super::{Rebinding, RebindingError};
    use crate::config::Remote;

    fn remote(hosts: &[&str], origins: &[&str], loopback: bool) -> Remote {
        Remote {
            allowed_hosts: hosts.iter().map(|s| (*s).to_owned()).collect(),
            allowed_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            allow_loopback: loopback,
            ..Remote::default()
        }
    }

    #[test]
    fn configured_entries_widen_the_loopback_defaults() {
        let r = Rebinding::from_config(&remote(&["mcp.example.com:8443"], &["https://app.example:443"], true)).unwrap();
        sorts(
            |host| r.host_allowed(host),
            &[
                "localhost:1",
                "127.0.0.1:8080",
                "[::1]:9",
                "LOCALHOST",
                "mcp.example.com:8443",
            ],
            &[
                "mcp.example.com",
                "mcp.example.com:443",
                "evil.example",
                "127.0.0.1.nip.io",
                "localhost.:80",
            ],
        );
        sorts(
            |origin| r.origin_allowed(origin),
            &[
                "http://localhost:3000",
                "https://127.0.0.1:1",
                "http://[::1]:5",
                "https://app.example",
                "https://app.example:443",
            ],
            &[
                "null",
                "https://app.example:8443",
                "http://app.example:443",
                "https://app.example.evil:443",
                "https://evil.example",
                "http://localhost.evil.example:80",
                "https://app.example/x",
                "ftp://localhost:21",
                "",
            ],
        );
    }

    /// Asserts that `allowed` lets every one of `ok` through and none of
    /// `bad`.
    fn sorts(allowed: impl Fn(&str) -> bool, ok: &[&str], bad: &[&str]) {
        for v in ok {
            assert!(allowed(v), "{v}");
        }
        for v in bad {
            assert!(!allowed(v), "{v}");
        }
    }

    #[test]
    fn loopback_can_be_turned_off() {
        let r = Rebinding::from_config(&remote(&["mcp.example.com"], &["https://app.example:*"], false)).unwrap();
        assert!(!r.host_allowed("127.0.0.1:8080"));
        assert!(!r.host_allowed("localhost"));
        assert!(r.host_allowed("mcp.example.com:8080"));
        assert!(!r.origin_allowed("http://localhost:3000"));
        assert!(r.origin_allowed("https://app.example:1234"));
        assert_eq!(
            Rebinding::from_config(&remote(&[], &[], false)).unwrap_err(),
            RebindingError::NoHosts
        );
    }

    #[test]
    fn unclear_entries_are_refused_at_start() {
        for origin in [
            "https://app.example",
            "null",
            "*",
            "app.example:443",
            "https://app.example:443/",
            "https://a:443:*",
        ] {
            let e = Rebinding::from_config(&remote(&[], &[origin], true)).unwrap_err();
            assert!(matches!(e, RebindingError::Origin { .. }), "{origin}: {e}");
            assert!(e.to_string().contains("allowed_origins"), "{e}");
        }
        for host in ["http://x", "a b", "x:99999", "user@x", ""] {
            let e = Rebinding::from_config(&remote(&[host], &[], true)).unwrap_err();
            assert_eq!(e, RebindingError::Host(host.to_owned()));
        }
    }

    #[test]
    fn a_named_listening_address_is_allowed() {
        let mut r = remote(&[], &[], true);
        r.host = "gpu-box.example".into();
        assert!(Rebinding::from_config(&r).unwrap().host_allowed("gpu-box.example:8080"));
        r.host = "0.0.0.0".into();
        assert!(!Rebinding::from_config(&r).unwrap().host_allowed("0.0.0.0:8080"));
    }
}
