//! Starting the transport: the settings checked (no public address
//! without a token unless allowed, OAuth settings, TLS files), the
//! listener bound, the idle-session sweeper, and each connection served
//! with a header-read timeout, at most [`MAX_CONNECTIONS`] at once.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::auth::Tokens;
use super::dispatch::{Shared, handle};
use super::metadata::metadata_location;
use super::rebinding::Rebinding;
use super::sessions::Sessions;
use super::{HttpError, MAX_BODY, MAX_CONNECTIONS, is_loopback, oauth};
use crate::config::Remote;
use crate::server::Server;

/// Loads the TLS certificate chain and key.
fn tls_acceptor(cert: &str, key: &str) -> Result<tokio_rustls::TlsAcceptor, HttpError> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let refused = |what: &str, path: &str, e: &dyn std::fmt::Display| {
        HttpError::Refused(format!("transport.remote.{what} {path}: {e}"))
    };
    let cert_path = comfy_audit::expand_home(cert);
    let key_path = comfy_audit::expand_home(key);
    let chain = CertificateDer::pem_file_iter(&cert_path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| refused("tls_cert", cert, &e))?;
    if chain.is_empty() {
        return Err(refused("tls_cert", cert, &"no certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| refused("tls_key", key, &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Refused(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| refused("tls_key", key, &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves one connection (plain or TLS).
async fn connection<IO>(shared: Arc<Shared>, io: IO, header_timeout: Duration)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// Serves MCP over HTTP until `stop` is cancelled.
///
/// # Errors
/// [`HttpError`] when the settings are refused or the address cannot be
/// bound.
pub async fn serve(server: Server, remote: &Remote, stop: CancellationToken) -> Result<SocketAddr, HttpError> {
    let tokens = Tokens::from(remote);
    let rebinding = Rebinding::from_config(remote).map_err(|e| HttpError::Refused(e.to_string()))?;
    let verifier = if remote.oauth.enabled() {
        let settings = oauth::Settings::from_config(&remote.oauth)
            .map_err(|(key, value, why)| HttpError::Refused(format!("{key} {value}: {why}")))?;
        Some(Arc::new(oauth::Verifier::new(settings)))
    } else {
        None
    };
    let oauth_metadata = verifier.as_ref().and_then(|v| metadata_location(&v.settings.resource));
    let authenticated = tokens.required() || verifier.is_some();
    if !is_loopback(&remote.host) && !authenticated && !remote.allow_unauthenticated {
        return Err(HttpError::Refused(format!(
            "refusing to serve on {} without transport.remote.auth_token (or COMFYUI_MCP_AUTH_TOKEN); \
             set transport.remote.allow_unauthenticated: true to do it anyway",
            remote.host
        )));
    }
    if !authenticated && !is_loopback(&remote.host) {
        tracing::warn!("serving MCP on {} without authentication", remote.host);
    }
    let tls = match (&remote.tls_cert, &remote.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let addr = format!("{}:{}", remote.host, remote.port);
    let listener = TcpListener::bind(&addr).await.map_err(|e| HttpError::Bind {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    let local = listener.local_addr().map_err(|e| HttpError::Bind {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(rebinding.host_entries().to_vec())
        .with_allowed_origins(rebinding.origin_entries().to_vec())
        .with_max_request_body_bytes(MAX_BODY)
        .with_cancellation_token(stop.clone());
    let idle = Duration::from_secs(remote.session_idle_timeout);
    let sessions = Arc::new(Sessions::new(
        remote.max_sessions,
        remote.sessions_per_principal(),
        idle,
    ));
    let factory_server = server.with_transport("http");
    let mcp = StreamableHttpService::new(move || Ok(factory_server.clone()), Arc::clone(&sessions), config);
    let shared_tokens = tokens.0.len();
    let shared = Arc::new(Shared {
        rebinding,
        tls: tls.is_some(),
        mcp,
        sessions: Arc::clone(&sessions),
        tokens,
        // With one principal there is nobody to keep jobs from; OAuth
        // subjects are many.
        share_jobs: remote.share_jobs || (shared_tokens < 2 && verifier.is_none()),
        oauth: verifier,
        oauth_metadata,
        request_timeout: Duration::from_secs(remote.request_timeout),
    });
    let header_timeout = Duration::from_secs(remote.header_timeout);
    // Close idle sessions nobody names again.
    let sweep_stop = stop.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval((idle / 4).clamp(Duration::from_secs(1), Duration::from_mins(1)));
        loop {
            tokio::select! {
                () = sweep_stop.cancelled() => break,
                _ = tick.tick() => sessions.sweep().await,
            }
        }
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                a = listener.accept() => a,
            };
            let Ok((tcp, _)) = accepted else { continue };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                tracing::warn!("{MAX_CONNECTIONS} connections open; closing a new one");
                drop(tcp);
                continue;
            };
            let (shared, tls) = (Arc::clone(&shared), tls.clone());
            tokio::spawn(async move {
                let _slot = slot;
                match tls {
                    None => connection(shared, tcp, header_timeout).await,
                    Some(acceptor) => {
                        // The handshake is bounded like the headers.
                        if let Ok(Ok(stream)) = tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await {
                            connection(shared, stream, header_timeout).await;
                        }
                    }
                }
            });
        }
    });
    Ok(local)
}
