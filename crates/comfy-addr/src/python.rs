//! Python's `urllib.parse.urlsplit` and its `hostname`, as CPython 3.10 to
//! 3.13 compute them, written from the documented algorithm.
//!
//! ComfyUI's nodes fetch with `requests`, `urllib` or `aiohttp`, which all
//! find the host the way `urlsplit` does, and that is not the WHATWG
//! standard's way: Python ends the authority at the first `/`, `?` or `#`
//! only (a `\` is an ordinary character), takes the host after the *last*
//! `@`, and reads no host at all from `http:example.com`. A URL whose host
//! differs between the two readings is where filters are bypassed
//! (`http://evil\@169.254.169.254/`: WHATWG reads `evil`, Python
//! `169.254.169.254`).
//!
//! Steps, in order:
//! 1. leading C0 controls and spaces are stripped; every tab, CR and LF is
//!    removed;
//! 2. the scheme is the text before the first `:` when it starts with an
//!    ASCII letter and holds only letters, digits, `+`, `-` and `.`
//!    (lower-cased);
//! 3. when the rest starts with `//`, the network location runs to the
//!    first `/`, `?` or `#`; a `[` without `]` (or the reverse) is an error;
//! 4. `hostname` is what follows the last `@`, inside `[...]` when there is
//!    a `[`, otherwise up to the first `:`; lower-cased (a `%zone` keeps its
//!    case); empty means none.

/// Python refused the URL (`ValueError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyUrlError(pub &'static str);

/// The parts of `urlsplit` the host checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The scheme, lower-cased; empty when there is none.
    pub scheme: String,
    /// The network location (`user@host:port`); empty when there is none.
    pub netloc: String,
}

/// `urllib.parse.urlsplit(url)`, scheme and network location.
///
/// # Errors
/// [`PyUrlError`] where Python raises `ValueError`.
pub fn urlsplit(url: &str) -> Result<Split, PyUrlError> {
    let url: String = url
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let mut rest = url.as_str();
    let mut scheme = String::new();
    if let Some(i) = rest.find(':')
        && i > 0
        && rest.as_bytes()[0].is_ascii_alphabetic()
        && rest[..i]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        scheme = rest[..i].to_ascii_lowercase();
        rest = &rest[i + 1..];
    }
    let mut netloc = String::new();
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        after[..end].clone_into(&mut netloc);
        if netloc.contains('[') != netloc.contains(']') {
            return Err(PyUrlError("Invalid IPv6 URL"));
        }
    }
    Ok(Split { scheme, netloc })
}

impl Split {
    /// `urlsplit(url).hostname`.
    pub fn hostname(&self) -> Option<String> {
        let hostinfo = self.netloc.rsplit_once('@').map_or(self.netloc.as_str(), |(_, h)| h);
        let host = match hostinfo.split_once('[') {
            Some((_, bracketed)) => bracketed.split_once(']').map_or(bracketed, |(h, _)| h),
            None => hostinfo.split_once(':').map_or(hostinfo, |(h, _)| h),
        };
        if host.is_empty() {
            return None;
        }
        Some(match host.split_once('%') {
            Some((h, zone)) => format!("{}%{zone}", h.to_lowercase()),
            None => host.to_lowercase(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::urlsplit;

    fn host(url: &str) -> Option<String> {
        urlsplit(url).ok().and_then(|s| s.hostname())
    }

    #[test]
    fn reads_hosts_as_cpython_does() {
        // Values checked against CPython 3.11.7's urllib.parse.
        assert_eq!(
            host(r"http://evil\@169.254.169.254/").as_deref(),
            Some("169.254.169.254")
        );
        assert_eq!(host("http://a@b@LOCALHOST:80/").as_deref(), Some("localhost"));
        assert_eq!(host("http:example.com/x"), None);
        assert_eq!(host("  \x01http://h\tost/").as_deref(), Some("host"));
        assert_eq!(host("http://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(host("http://[fe80::1%Eth0]/").as_deref(), Some("fe80::1%Eth0"));
        assert_eq!(host("http://x?@127.0.0.1/").as_deref(), Some("x"));
        assert_eq!(host("http://x#@127.0.0.1/").as_deref(), Some("x"));
        assert!(urlsplit("http://[::1/").is_err());
        assert_eq!(urlsplit("1http://x/").map(|s| s.scheme).as_deref(), Ok(""));
        assert_eq!(urlsplit("HTTP://x/").map(|s| s.scheme).as_deref(), Ok("http"));
    }
}
