//! Fetching a file from a URL someone else chose, without becoming their
//! proxy into the network the server sits in (SSRF).
//!
//! An assistant (or whoever steers it) names the URL, so every hop is
//! checked before a byte is sent:
//!
//! - the scheme is `https` (plain `http` only to a trusted address, or
//!   when the policy allows it);
//! - the URL has no user info, WHATWG and Python's `urllib` read the same
//!   host in it, the host is not a name that reaches the local machine or
//!   network by design (`localhost`, `localtest.me`, `*.nip.io`, cloud
//!   metadata names, single labels, a trailing dot; see `comfy-addr`),
//!   and it is on the policy's list
//!   (`example.com`, `*.example.com` for its subdomains, `*` for any host);
//! - the host is resolved once, and every address it resolves to must be
//!   public: loopback, private, link-local, carrier-grade NAT, multicast,
//!   unspecified, documentation and unique-local addresses (and IPv4
//!   carried inside IPv6: mapped, NAT64, 6to4) are refused, unless listed in
//!   [`FetchPolicy::trusted_addresses`]; the connection goes to the checked
//!   address itself, so a second DNS answer cannot swap it (no rebinding);
//! - redirects are followed only up to [`FetchPolicy::max_redirects`], and
//!   each target is checked as the first URL was;
//! - the body is capped (a `Content-Length` over the cap is refused before
//!   reading), and connecting, TLS, the answer and the body share one
//!   deadline.
//!
//! What the bytes are is the caller's business (the server sniffs them as
//! an image); TLS certificates are always verified against the system's
//! roots, whatever the ComfyUI connection's `tls_verify` says.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;

/// What a fetch may do.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Hosts that may be fetched from: `example.com`, `*.example.com`
    /// (subdomains only), or `*` (any host whose addresses are public).
    pub allowed_hosts: Vec<String>,
    /// Largest body, bytes.
    pub max_bytes: usize,
    /// Most redirects followed.
    pub max_redirects: u8,
    /// The deadline for the whole fetch, redirects included.
    pub timeout: Duration,
    /// Whether plain `http` is allowed to any host (never by default; a
    /// trusted address may always be reached over `http`).
    pub allow_http: bool,
    /// Addresses fetched from although they are not public (a trusted LAN
    /// host, a test server): exact socket addresses only.
    pub trusted_addresses: Vec<SocketAddr>,
}

impl FetchPolicy {
    /// `https` only, to the given hosts, 3 redirects, 30 s, `max_bytes`.
    pub fn new(allowed_hosts: Vec<String>, max_bytes: usize) -> Self {
        Self {
            allowed_hosts,
            max_bytes,
            max_redirects: 3,
            timeout: Duration::from_secs(30),
            allow_http: false,
            trusted_addresses: Vec::new(),
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_hosts.iter().any(|a| {
            let a = a.trim().to_ascii_lowercase();
            if a == "*" {
                true
            } else if let Some(suffix) = a.strip_prefix("*.") {
                host.ends_with(&format!(".{suffix}"))
            } else {
                host == a
            }
        })
    }
}

/// A fetched body.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The `Content-Type` the server sent.
    pub content_type: Option<String>,
    /// The URL the bytes came from, after redirects.
    pub final_url: String,
}

/// Why a fetch was refused or failed. Messages name the URL's host, never
/// its query (which may hold a token).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Not a URL, or one with parts that are not allowed.
    #[error("{0}")]
    Invalid(String),
    /// The host is not on the list.
    #[error("the host {0} is not among the allowed hosts")]
    HostNotAllowed(String),
    /// The host resolves to an address that is not public.
    #[error("the host {host} resolves to {addr}, which is not a public address")]
    PrivateAddress {
        /// The host.
        host: String,
        /// The address.
        addr: IpAddr,
    },
    /// A host name that reaches the local machine or its network by
    /// design (`localhost`, `localtest.me`, `*.nip.io`, cloud metadata
    /// names, single labels, a trailing dot); refused before any DNS.
    #[error("the host {host} is {reason}")]
    LocalName {
        /// The host.
        host: String,
        /// Why, from `comfy_addr::NameProblem`.
        reason: String,
    },
    /// DNS gave nothing.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// Connecting, TLS or HTTP failed.
    #[error("cannot fetch from {host}: {reason}")]
    Connect {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// An answer that is neither a success nor a redirect.
    #[error("{host} answered {status}")]
    Status {
        /// The host.
        host: String,
        /// The status.
        status: u16,
    },
    /// More redirects than allowed.
    #[error("more than {0} redirects")]
    TooManyRedirects(u8),
    /// A body over the cap.
    #[error("the file is larger than {0} bytes")]
    TooLarge(usize),
    /// The deadline passed.
    #[error("the fetch took longer than {0:?}")]
    Timeout(Duration),
}

/// Whether `ip` is an address anyone on the internet could reach: the
/// workspace's one answer, from `comfy-addr` (the workflow inspector asks
/// the same function).
pub use comfy_addr::is_public;

/// The TLS configuration fetches use: system roots, always verified.
fn tls() -> Result<Arc<rustls::ClientConfig>, FetchError> {
    static TLS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(c) = TLS.get() {
        return Ok(Arc::clone(c));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::clone(TLS.get_or_init(|| Arc::new(config))))
}

/// One checked hop: the host, the address to connect to, and whether TLS.
struct Hop {
    host: String,
    addr: SocketAddr,
    tls: bool,
    path: String,
}

async fn check(url: &url::Url, policy: &FetchPolicy) -> Result<Hop, FetchError> {
    // Plain http: when the policy allows it, or (checked below) to a
    // trusted address.
    let tls = match url.scheme() {
        "https" => true,
        "http" => false,
        other => return Err(FetchError::Invalid(format!("the URL must be https (got {other}:)"))),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::Invalid(
            "the URL must not carry a user name or password".into(),
        ));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => {
            if let Some(why) = comfy_addr::name_problem(d) {
                return Err(FetchError::LocalName {
                    host: d.to_owned(),
                    reason: why.to_string(),
                });
            }
            d.to_owned()
        }
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(FetchError::Invalid("the URL has no host".into())),
    };
    if !policy.host_allowed(&host) {
        return Err(FetchError::HostNotAllowed(host));
    }
    let port = url.port_or_known_default().unwrap_or(if tls { 443 } else { 80 });
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        _ => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| FetchError::Resolve {
                host: host.clone(),
                reason: e.kind().to_string(),
            })?
            .take(16)
            .collect(),
    };
    // Every address must be acceptable: a host that answers with one
    // public and one private address is refused, not tried in turn.
    let mut chosen = None;
    for a in &addrs {
        let ok = is_public(a.ip()) || policy.trusted_addresses.contains(a);
        if !ok {
            return Err(FetchError::PrivateAddress { host, addr: a.ip() });
        }
        chosen.get_or_insert(*a);
    }
    let addr = chosen.ok_or_else(|| FetchError::Resolve {
        host: host.clone(),
        reason: "no address".into(),
    })?;
    if !tls && !policy.allow_http && !addrs.iter().all(|a| policy.trusted_addresses.contains(a)) {
        return Err(FetchError::Invalid("the URL must be https (got http:)".into()));
    }
    let mut path = url.path().to_owned();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    Ok(Hop { host, addr, tls, path })
}

/// Fetches `url` under `policy`.
///
/// # Errors
/// [`FetchError`] naming what was refused or what failed.
pub async fn fetch(url: &str, policy: &FetchPolicy) -> Result<Fetched, FetchError> {
    match tokio::time::timeout(policy.timeout, fetch_inner(url, policy)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Timeout(policy.timeout)),
    }
}

async fn fetch_inner(url: &str, policy: &FetchPolicy) -> Result<Fetched, FetchError> {
    // A URL that Python and WHATWG read as different hosts is someone
    // probing filters: refused even though we would connect to the WHATWG
    // host.
    if let Some(p @ comfy_addr::UrlProblem::Disagree { .. }) = comfy_addr::url_problem(url) {
        return Err(FetchError::Invalid(p.to_string()));
    }
    let mut current = url::Url::parse(url).map_err(|e| FetchError::Invalid(format!("not a URL: {e}")))?;
    let mut redirects = 0u8;
    loop {
        let hop = check(&current, policy).await?;
        let connect_err = |reason: String| FetchError::Connect {
            host: hop.host.clone(),
            reason,
        };
        let tcp = tokio::net::TcpStream::connect(hop.addr)
            .await
            .map_err(|e| connect_err(e.kind().to_string()))?;
        let request = http::Request::get(if hop.path.is_empty() { "/" } else { hop.path.as_str() })
            .header(http::header::HOST, host_header(&current))
            .header(
                http::header::USER_AGENT,
                concat!("comfy-mcp/", env!("CARGO_PKG_VERSION")),
            )
            .header(http::header::ACCEPT, "image/*")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|e| FetchError::Invalid(e.to_string()))?;
        let response = if hop.tls {
            let name = rustls_pki_types::ServerName::try_from(hop.host.clone())
                .map_err(|e| connect_err(format!("not a TLS server name: {e}")))?;
            let stream = tokio_rustls::TlsConnector::from(tls()?)
                .connect(name, tcp)
                .await
                .map_err(|e| connect_err(format!("TLS: {e}")))?;
            send(TokioIo::new(stream), request, &hop.host).await?
        } else {
            send(TokioIo::new(tcp), request, &hop.host).await?
        };
        let status = response.status();
        if status.is_redirection() {
            let Some(location) = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
            else {
                return Err(FetchError::Status {
                    host: hop.host,
                    status: status.as_u16(),
                });
            };
            if redirects >= policy.max_redirects {
                return Err(FetchError::TooManyRedirects(policy.max_redirects));
            }
            redirects += 1;
            current = current
                .join(location)
                .map_err(|e| FetchError::Invalid(format!("a redirect to an invalid URL: {e}")))?;
            continue;
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                host: hop.host,
                status: status.as_u16(),
            });
        }
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(len) = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && len > policy.max_bytes as u64
        {
            return Err(FetchError::TooLarge(policy.max_bytes));
        }
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| connect_err(format!("reading the body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > policy.max_bytes {
                    return Err(FetchError::TooLarge(policy.max_bytes));
                }
                bytes.extend_from_slice(&data);
            }
        }
        return Ok(Fetched {
            bytes,
            content_type,
            final_url: current.to_string(),
        });
    }
}

fn host_header(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

async fn send<T>(
    io: T,
    request: http::Request<http_body_util::Empty<bytes::Bytes>>,
    host: &str,
) -> Result<http::Response<hyper::body::Incoming>, FetchError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let err = |reason: String| FetchError::Connect {
        host: host.to_owned(),
        reason,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| err(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(request).await.map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "64:ff9b::a00:1",
            "::10.0.0.1",
        ] {
            let ip: IpAddr = private.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            assert!(!is_public(ip), "{private}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            let ip: IpAddr = public.parse().unwrap_or(IpAddr::V6(Ipv6Addr::LOCALHOST));
            assert!(is_public(ip), "{public}");
        }
    }

    #[test]
    fn host_lists_match_exactly_or_by_subdomain() {
        let p = FetchPolicy::new(vec!["example.com".into(), "*.cdn.example.org".into()], 10);
        assert!(p.host_allowed("example.com"));
        assert!(p.host_allowed("EXAMPLE.com."));
        assert!(!p.host_allowed("evil-example.com"));
        assert!(!p.host_allowed("example.com.evil.net"));
        assert!(p.host_allowed("img.cdn.example.org"));
        assert!(!p.host_allowed("cdn.example.org"));
        assert!(FetchPolicy::new(vec!["*".into()], 10).host_allowed("anything.net"));
        assert!(!FetchPolicy::new(vec![], 10).host_allowed("anything.net"));
    }
}
