//! URLs a node would fetch, judged by the rules the server's own downloads
//! follow (the shared `comfy-addr` crate): `http(s)` only, no user info, a
//! host that is public as an address and as a name, and the same host
//! whether WHATWG or Python's `urllib.parse` reads the URL.
//!
//! The inspector has no network, so a public-looking name is judged on its
//! text: where it resolves when the node runs is beyond it (the fetcher,
//! which does resolve, checks every address).

/// Why a node must not fetch `raw`, in words, if it must not. Empty text is
/// an unset input, not a URL.
pub(crate) fn unsafe_url(raw: &str) -> Option<String> {
    if raw.trim().is_empty() {
        return None;
    }
    comfy_addr::url_problem(raw).map(|p| p.to_string())
}

/// Whether a whole string is written as a URL (`scheme://...`, no
/// whitespace inside): such a value is judged as an address whatever the
/// input is called, since custom nodes fetch URLs given to path inputs.
pub(crate) fn looks_like_url(s: &str) -> bool {
    let s = s.trim();
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    !rest.is_empty()
        && !s.contains(char::is_whitespace)
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::looks_like_url;

    #[test]
    fn only_whole_urls_look_like_urls() {
        assert!(looks_like_url("http://x/"));
        assert!(looks_like_url(" file:///etc/passwd "));
        assert!(!looks_like_url("see http://x/"));
        assert!(!looks_like_url("a://"));
        assert!(!looks_like_url("1a://b"));
        assert!(!looks_like_url("models/x.safetensors"));
    }
}
