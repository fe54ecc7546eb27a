//! Fetching an issuer's keys: its metadata (RFC 8414, then OpenID
//! Connect), checked to name the issuer, then its `jwks_uri`, over a small
//! hyper client of our own: one GET each, no redirects, every body capped
//! at [`MAX_DOCUMENT_BYTES`]. The caller bounds the time.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;

use super::{Issuer, MAX_DOCUMENT_BYTES, checked_url};
use crate::http::jwt::KeySet;

/// The metadata URLs of an issuer, in the order tried: RFC 8414's (the
/// well-known path inserted before the issuer's path), then OpenID
/// Connect's (appended to it).
pub(super) fn metadata_urls(issuer: &url::Url) -> Vec<url::Url> {
    let path = issuer.path().trim_end_matches('/');
    let mut out = Vec::new();
    for p in [
        format!("/.well-known/oauth-authorization-server{path}"),
        format!("{path}/.well-known/openid-configuration"),
    ] {
        let mut u = issuer.clone();
        u.set_path(&p);
        out.push(u);
    }
    out
}

/// Fetches the issuer's metadata, checks it names the issuer, then
/// fetches and reads its key set.
pub(super) async fn fetch_keys(issuer: &Issuer, tls: &Arc<rustls::ClientConfig>) -> Result<KeySet, String> {
    let mut last = String::new();
    let mut jwks_uri = None;
    for url in metadata_urls(&issuer.url) {
        match get(&url, tls).await {
            Ok((200, body)) => {
                let meta: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))?;
                if meta.get("issuer").and_then(serde_json::Value::as_str) != Some(issuer.id.as_str()) {
                    return Err(format!("{url}: the metadata names another issuer"));
                }
                let uri = meta
                    .get("jwks_uri")
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| format!("{url}: no jwks_uri"))?;
                let uri = checked_url("jwks_uri", uri).map_err(|(_, v, why)| format!("{url}: jwks_uri {v} {why}"))?;
                jwks_uri = Some(uri);
                break;
            }
            Ok((status, _)) => last = format!("{url}: HTTP {status}"),
            Err(e) => last = e,
        }
    }
    let jwks_uri = jwks_uri.ok_or(last)?;
    match get(&jwks_uri, tls).await? {
        (200, body) => KeySet::parse(&body).map_err(|e| format!("{jwks_uri}: {e}")),
        (status, _) => Err(format!("{jwks_uri}: HTTP {status}")),
    }
}

/// One GET, no redirects, the body capped at [`MAX_DOCUMENT_BYTES`]. The
/// caller bounds the time.
async fn get(url: &url::Url, tls: &Arc<rustls::ClientConfig>) -> Result<(u16, Bytes), String> {
    let host = url.host_str().ok_or_else(|| format!("{url}: no host"))?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let bare = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let tcp = tokio::net::TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| format!("{url}: cannot connect: {}", e.kind()))?;
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let path = url.path().to_owned();
    let request = http::Request::get(path)
        .header(http::header::HOST, authority)
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("comfy-mcp/", env!("CARGO_PKG_VERSION")),
        )
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| format!("{url}: {e}"))?;
    let response = if url.scheme() == "https" {
        let name = rustls_pki_types::ServerName::try_from(bare.clone()).map_err(|e| format!("{url}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("{url}: TLS: {e}"))?;
        send(TokioIo::new(stream), request).await
    } else {
        send(TokioIo::new(tcp), request).await
    }
    .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    if response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    let body = http_body_util::Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes")
            } else {
                format!("{url}: reading the body: {e}")
            }
        })?
        .to_bytes();
    Ok((status, body))
}

async fn send<T>(
    io: T,
    request: http::Request<http_body_util::Empty<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let r = sender.send_request(request).await.map_err(|e| e.to_string());
    if r.is_err() {
        driver.abort();
    }
    r
}
