//! One answer, for the whole workspace, to "may we (or a ComfyUI node) send
//! a request to this address?".
//!
//! Two places ask: the fetcher in `comfy-client` (uploads by URL), which
//! resolves the name and connects, and the workflow inspector in
//! `comfy-guard`, which judges the URLs a node would fetch without any
//! network. Before this crate each had its own check and the inspector's
//! was the weaker one; now both call these functions. The crate depends on
//! `url` alone, so neither caller's layering changes.
//!
//! - [`is_public`]: an IP address anyone on the internet could reach
//!   (IPv4 inside IPv6 judged as the IPv4 it carries: mapped, compatible,
//!   translated, NAT64, 6to4).
//! - [`name_problem`]: a host name that reaches the machine itself or its
//!   network by design (`localhost`, `localtest.me`, `*.nip.io`, cloud
//!   metadata names, single labels, local-only suffixes, a trailing dot).
//! - [`url_problem`]: a URL a node would fetch, read both as the WHATWG URL
//!   standard reads it (the `url` crate, browsers) and as Python's
//!   `urllib.parse.urlsplit` does ([`python`], which `requests`, `urllib`
//!   and `aiohttp` build on); a URL the two readers send to different hosts
//!   is refused whatever the hosts are.
//!
//! What it cannot know: where a public-looking name resolves at the time a
//! node runs. The fetcher resolves and checks every address; the inspector
//! can only judge the text.
//!
//! ```
//! use comfy_addr::{is_public, url_problem};
//! assert!(!is_public("::ffff:169.254.169.254".parse().unwrap()));
//! assert!(url_problem("https://example.com/cat.png").is_none());
//! assert!(url_problem(r"http://evil\@169.254.169.254/").is_some());
//! assert!(url_problem("http://127.0.0.1.nip.io/").is_some());
//! ```

pub mod python;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is an address anyone on the internet could reach: not
/// loopback, private, link-local (169.254/16, where cloud metadata
/// services live), shared (100.64/10, carrier-grade NAT and Alibaba's
/// metadata address), multicast, broadcast, unspecified, documentation,
/// benchmarking, reserved, or unique-local; an IPv6 address that carries an
/// IPv4 one (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, translated
/// `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4
/// `2002::/16`) is judged by the IPv4 address it carries, and Teredo
/// (`2001::/32`) is refused outright.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

/// The IPv4 address in the last 32 bits of `s`.
fn tail_v4(s: [u16; 8]) -> Ipv4Addr {
    let [hi, lo] = [s[6], s[7]];
    Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
}

fn is_public_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    if v6.is_loopback() || v6.is_unspecified() {
        return false;
    }
    // IPv4 carried inside: judged as that IPv4 address.
    // IPv4 carried inside: judged as that IPv4 address. Mapped
    // ::ffff:a.b.c.d, compatible ::a.b.c.d, translated ::ffff:0:a.b.c.d,
    // NAT64 (well-known and local-use prefixes) carry it in the last 32
    // bits; 6to4 right after its prefix.
    let in_tail = (s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0))
        || (s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0)
        || (s[0] == 0x0064 && s[1] == 0xff9b && (s[2..6] == [0; 4] || s[2] == 1));
    let carried = if in_tail {
        Some(tail_v4(s))
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ))
    } else {
        None
    };
    if let Some(v4) = carried {
        return is_public_v4(v4);
    }
    !(v6.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (AWS metadata fd00:ec2::254)
        || (s[0] & 0xffc0) == 0xfe80 // link local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo: reaches whatever the relay reaches
        || (s[0] == 0x0100 && s[1..4] == [0; 3])) // discard-only 100::/64
}

/// Why a host name must not be fetched from, when it must not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameProblem {
    /// `example.com.`: a fully qualified spelling that slips past name
    /// comparisons (`localhost.` is not `localhost`).
    TrailingDot,
    /// `localhost` and its subdomains.
    Localhost,
    /// A public name that resolves to loopback or to the address it
    /// spells, by design (`localtest.me`, `lvh.me`, `*.nip.io`, `*.sslip.io`).
    LoopbackByDesign,
    /// A cloud provider's instance metadata service.
    Metadata,
    /// A single label (`redis`, `comfyui`) or a suffix that only resolves
    /// on the local network (`.local`, `.internal`, `.lan`, `.home.arpa`).
    LocalOnly,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameProblem::TrailingDot => "a host name ending in a dot (it slips past name comparisons)",
            NameProblem::Localhost => "the local machine",
            NameProblem::LoopbackByDesign => {
                "a public name that resolves to the local machine or to the address it spells, by design"
            }
            NameProblem::Metadata => "a cloud instance metadata service",
            NameProblem::LocalOnly => "a name that resolves only on the local network",
        })
    }
}

/// Names that resolve to loopback (or to the address they spell) on
/// purpose; the name itself and every subdomain.
const LOOPBACK_BY_DESIGN: &[&str] = &[
    "localtest.me",
    "lvh.me",
    "vcap.me",
    "lacolhost.com",
    "localhost.direct",
    "nip.io",
    "sslip.io",
    "xip.io",
    "traefik.me",
    "127.0.0.1.nip.io",
];

/// Instance metadata services by name (their addresses, 169.254.169.254,
/// 100.100.100.200 and fd00:ec2::254, are not public by [`is_public`]).
const METADATA: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.internal",
    "metadata.tencentyun.com",
];

/// Suffixes that only resolve inside a network.
const LOCAL_SUFFIXES: &[&str] = &[
    "local",
    "localdomain",
    "internal",
    "intranet",
    "lan",
    "home",
    "corp",
    "home.arpa",
];

/// Whether `name` is `suffix` or a subdomain of it (ASCII case-insensitive).
fn under(name: &str, suffix: &str) -> bool {
    name.eq_ignore_ascii_case(suffix)
        || (name.len() > suffix.len()
            && name.is_char_boundary(name.len() - suffix.len() - 1)
            && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            && name.as_bytes()[name.len() - suffix.len() - 1] == b'.')
}

/// Why the host name `name` (not an IP literal) must not be fetched from,
/// judged on the name alone.
pub fn name_problem(name: &str) -> Option<NameProblem> {
    if name.ends_with('.') {
        return Some(NameProblem::TrailingDot);
    }
    if under(name, "localhost") {
        return Some(NameProblem::Localhost);
    }
    if METADATA.iter().any(|m| name.eq_ignore_ascii_case(m)) {
        return Some(NameProblem::Metadata);
    }
    if LOOPBACK_BY_DESIGN.iter().any(|s| under(name, s)) {
        return Some(NameProblem::LoopbackByDesign);
    }
    if !name.contains('.') || LOCAL_SUFFIXES.iter().any(|s| under(name, s)) {
        return Some(NameProblem::LocalOnly);
    }
    None
}

/// Why a URL a node would fetch must not be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlProblem {
    /// No scheme: the node completes it as it likes, or reads it as a path.
    NoScheme,
    /// A scheme other than `http` and `https` (`file:`, `ftp:`, `gopher:`
    /// reach local resources).
    Scheme(String),
    /// No host to judge.
    NoHost,
    /// A user name or password before the host (downloads refuse them, and
    /// they are where parsers disagree).
    UserInfo,
    /// WHATWG and Python's `urllib.parse` read different hosts.
    Disagree {
        /// The host as the WHATWG URL standard reads it, if it reads one.
        whatwg: Option<String>,
        /// The host as Python's `urlsplit(url).hostname` reads it.
        python: Option<String>,
    },
    /// An IP address that is not public.
    Address(IpAddr),
    /// A name that is not public.
    Name(String, NameProblem),
}

impl fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |h: &Option<String>| h.as_deref().map_or_else(|| "no host".to_owned(), |h| format!("`{h}`"));
        match self {
            UrlProblem::NoScheme => f.write_str("no http(s) scheme: the node decides how to read it"),
            UrlProblem::Scheme(s) => write!(
                f,
                "not an http or https address ({s}:; file, ftp, gopher and the like reach local resources)"
            ),
            UrlProblem::NoHost => f.write_str("no host"),
            UrlProblem::UserInfo => f.write_str("a user name or password before the host"),
            UrlProblem::Disagree { whatwg, python } => write!(
                f,
                "URL parsers disagree on the host: the WHATWG standard reads {}, Python's urllib reads {}",
                shown(whatwg),
                shown(python)
            ),
            UrlProblem::Address(ip) => write!(f, "{ip} is a loopback, private, link-local, shared or reserved address"),
            UrlProblem::Name(host, why) => write!(f, "`{host}`: {why}"),
        }
    }
}

/// The host `raw` names as the WHATWG host parser reads it, for comparing
/// Python's reading with the `url` crate's.
fn whatwg_host(raw: &str) -> Option<url::Host<String>> {
    if raw.contains(':') && !raw.starts_with('[') {
        return url::Host::parse(&format!("[{raw}]")).ok();
    }
    url::Host::parse(raw).ok()
}

fn host_text(h: &url::Host<String>) -> String {
    match h {
        url::Host::Domain(d) => d.clone(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    }
}

/// Why a node must not fetch `raw`, if it must not: the same rules as the
/// fetcher's (an `http(s)` URL, no user info, a public host) applied to the
/// host both WHATWG and Python's `urllib.parse` read, which must be the same
/// host.
pub fn url_problem(raw: &str) -> Option<UrlProblem> {
    let py = python::urlsplit(raw).ok();
    let py_scheme = py.as_ref().map(|s| s.scheme.as_str()).unwrap_or_default();
    let parsed = url::Url::parse(raw).ok();
    let scheme = parsed.as_ref().map_or(py_scheme, url::Url::scheme);
    if scheme.is_empty() {
        return Some(UrlProblem::NoScheme);
    }
    if !matches!(scheme, "http" | "https") || !matches!(py_scheme, "http" | "https") {
        let shown = if matches!(scheme, "http" | "https") {
            py_scheme
        } else {
            scheme
        };
        if shown.is_empty() {
            return Some(UrlProblem::NoScheme);
        }
        return Some(UrlProblem::Scheme(shown.to_owned()));
    }
    let whatwg = parsed.as_ref().and_then(|u| u.host().map(|h| h.to_owned()));
    let py_host = py.as_ref().and_then(python::Split::hostname);
    let py_parsed = py_host.as_deref().and_then(whatwg_host);
    if whatwg.is_none() && py_host.is_none() {
        return Some(UrlProblem::NoHost);
    }
    if whatwg != py_parsed || (py_host.is_some() && py_parsed.is_none()) {
        return Some(UrlProblem::Disagree {
            whatwg: whatwg.as_ref().map(host_text),
            python: py_host,
        });
    }
    let user_info = parsed
        .as_ref()
        .is_some_and(|u| !u.username().is_empty() || u.password().is_some())
        || py.as_ref().is_some_and(|s| s.netloc.contains('@'));
    if user_info {
        return Some(UrlProblem::UserInfo);
    }
    match whatwg? {
        url::Host::Ipv4(ip) if !is_public_v4(ip) => Some(UrlProblem::Address(IpAddr::V4(ip))),
        url::Host::Ipv6(ip) if !is_public_v6(ip) => Some(UrlProblem::Address(IpAddr::V6(ip))),
        url::Host::Domain(d) => {
            // WHATWG drops nothing from a name, so a trailing dot is still
            // there; Python's spelling is checked too (it keeps the case
            // and Unicode the WHATWG reading folded).
            let problem = name_problem(&d).or_else(|| py_host.as_deref().and_then(name_problem))?;
            Some(UrlProblem::Name(d, problem))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_under_a_suffix_match_on_label_boundaries() {
        assert!(under("a.nip.io", "nip.io"));
        assert!(under("NIP.IO", "nip.io"));
        assert!(!under("snip.io", "nip.io"));
        assert!(!under("é.io", "nip.io"));
    }
}
