//! The base URL (scheme, host, optional path prefix) and building request
//! targets from it with proper percent-encoding.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::Error;

/// Characters encoded in a path segment: everything but unreserved ones.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'&')
    .add(b'+')
    .add(b';')
    .add(b'=')
    .add(b':')
    .add(b'@');

/// Percent-encodes one path segment.
pub(crate) fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Where ComfyUI is: `http(s)://host[:port][/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseUrl {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path prefix without a trailing slash (`""` or `/comfy`).
    pub(crate) prefix: String,
}

impl BaseUrl {
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Config(format!("base URL `{url}`: {reason}"));
        let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("credentials in the URL are not accepted; use the auth setting"));
        }
        if uri.query().is_some() {
            return Err(bad("a query string is not accepted"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            https,
            host,
            port,
            prefix,
        })
    }

    /// `host:port` for the `Host` header and connecting.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The absolute URL of `path_and_query` (which starts with `/`).
    pub(crate) fn http_url(&self, path_and_query: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}{path_and_query}", self.authority(), self.prefix)
    }

    /// The request target of the WebSocket for `client_id`.
    pub(crate) fn ws_target(&self, client_id: &str) -> String {
        format!("{}/ws?clientId={}", self.prefix, segment(client_id))
    }
}

/// `path` plus a query string from `pairs` (values form-encoded).
pub(crate) fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return path.to_owned();
    }
    let mut q = form_urlencoded_pairs(pairs);
    q.insert(0, '?');
    format!("{path}{q}")
}

fn form_urlencoded_pairs(pairs: &[(&str, String)]) -> String {
    const QUERY: &AsciiSet = &SEGMENT.remove(b'/').remove(b':').remove(b'@');
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", utf8_percent_encode(k, QUERY), utf8_percent_encode(v, QUERY)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::{BaseUrl, segment, with_query};

    #[test]
    fn base_urls() {
        let b = BaseUrl::parse("https://gpu.example:8443/comfy/").unwrap();
        assert_eq!(
            (b.https, b.host.as_str(), b.port, b.prefix.as_str()),
            (true, "gpu.example", 8443, "/comfy")
        );
        assert_eq!(b.http_url("/prompt"), "https://gpu.example:8443/comfy/prompt");
        assert_eq!(b.ws_target("abc"), "/comfy/ws?clientId=abc");
        let b = BaseUrl::parse("http://127.0.0.1:8188").unwrap();
        assert_eq!(b.http_url("/queue"), "http://127.0.0.1:8188/queue");
        assert!(BaseUrl::parse("ftp://x").is_err());
        assert!(BaseUrl::parse("http://user:pw@x").is_err());
        assert!(BaseUrl::parse("http://x/?a=1").is_err());
        assert_eq!(BaseUrl::parse("http://[::1]:9").unwrap().authority(), "[::1]:9");
    }

    #[test]
    fn user_input_is_encoded_never_concatenated() {
        assert_eq!(segment("../etc/passwd"), "..%2Fetc%2Fpasswd");
        assert_eq!(segment("a b&c"), "a%20b%26c");
        assert_eq!(
            with_query(
                "/view",
                &[("filename", "x y&z.png".into()), ("subfolder", "a/b".into())]
            ),
            "/view?filename=x%20y%26z.png&subfolder=a/b"
        );
    }
}
