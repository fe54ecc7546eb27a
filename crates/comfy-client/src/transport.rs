//! HTTP: one pooled hyper client over rustls (ring), every call bounded by
//! a deadline, every body by a size cap, and retries only where they are
//! safe (idempotent requests, on connection failures and 503).

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

use crate::Error;
use crate::config::{Auth, Config};
use crate::url::BaseUrl;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A response: status, headers and the (bounded) body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// The HTTP side of a client.
#[derive(Debug)]
pub(crate) struct Transport {
    http: HyperClient<Connector, Full<Bytes>>,
    pub(crate) base: BaseUrl,
    pub(crate) config: Config,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    authorization: Option<HeaderValue>,
}

/// Builds the one rustls configuration HTTP and WebSocket share: system
/// roots plus an optional extra CA file; verification off only when asked.
pub(crate) fn tls_config(config: &Config) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?;
    let cfg = if config.tls_verify {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if let Some(path) = &config.extra_ca {
            use rustls_pki_types::pem::PemObject as _;
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| Error::Config(format!("extra CA file `{}`: {e}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| Error::Config(format!("extra CA file `{}`: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| Error::Config(format!("extra CA file `{}`: {e}", path.display())))?;
            }
        }
        if added == 0 && config.extra_ca.is_none() {
            tracing::warn!("no system root certificates found; https connections will fail to verify");
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        tracing::warn!("TLS certificate verification is OFF: anyone on the network path can impersonate ComfyUI");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    };
    Ok(Arc::new(cfg))
}

/// Accepts any certificate (`tls_verify = false`).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::SERVICE_UNAVAILABLE
}

/// Backoff before try `n` (1-based): 200 ms doubling, with jitter, or the
/// server's `Retry-After` (seconds), whichever is longer.
fn backoff(n: u32, retry_after: Option<Duration>) -> Duration {
    let base = Duration::from_millis(200u64.saturating_mul(1 << n.min(6)));
    let jitter = Duration::from_millis(fastrand::u64(0..=base.as_millis() as u64 / 2));
    retry_after.map_or(base + jitter, |r| r.max(base))
}

impl Transport {
    pub(crate) fn new(base: BaseUrl, config: Config) -> Result<Self, Error> {
        let tls = tls_config(&config)?;
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(config.connect_timeout));
        http.enforce_http(false);
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(https);
        let authorization = match &config.auth {
            None => None,
            Some(Auth::Bearer(token)) => Some(format!("Bearer {}", token.expose())),
            Some(Auth::Basic { user, password }) => Some(format!(
                "Basic {}",
                data_encoding::BASE64.encode(format!("{user}:{}", password.expose()).as_bytes())
            )),
        }
        .map(|v| {
            HeaderValue::from_str(&v).map(|mut h| {
                h.set_sensitive(true);
                h
            })
        })
        .transpose()
        .map_err(|_| Error::Config("credentials contain characters not allowed in a header".into()))?;
        Ok(Self {
            http: client,
            base,
            config,
            tls,
            authorization,
        })
    }

    /// The `Authorization` header value, when credentials are set.
    pub(crate) fn authorization(&self) -> Option<HeaderValue> {
        self.authorization.clone()
    }

    fn request(
        &self,
        method: &Method,
        target: &str,
        body: Option<&(String, Bytes)>,
    ) -> Result<Request<Full<Bytes>>, Error> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(self.base.http_url(target));
        if let Some(h) = req.headers_mut() {
            if let Ok(v) = HeaderValue::from_str(&self.config.user_agent) {
                h.insert(header::USER_AGENT, v);
            }
            if let Some(auth) = &self.authorization {
                h.insert(header::AUTHORIZATION, auth.clone());
            }
            if let Some((ct, _)) = body
                && let Ok(v) = HeaderValue::from_str(ct)
            {
                h.insert(header::CONTENT_TYPE, v);
            }
        }
        req.body(Full::new(body.map(|(_, b)| b.clone()).unwrap_or_default()))
            .map_err(|e| Error::Config(format!("cannot build a request for `{target}`: {e}")))
    }

    /// Sends a request and reads its body up to `cap` bytes. GETs are
    /// retried on connection failures and 503; other methods never are.
    pub(crate) async fn send(
        &self,
        method: Method,
        target: &str,
        body: Option<(String, Bytes)>,
        cap: usize,
        what: &str,
    ) -> Result<Reply, Error> {
        let call = Call {
            method,
            target,
            body,
            cap,
            what,
            stream: false,
        };
        match self.exchange(call).await? {
            Answer::Full(reply) => Ok(reply),
            Answer::Streaming(head) => head.into_reply().await,
        }
    }

    /// Sends a GET and returns as soon as the headers are in; the body is
    /// read chunk by chunk from the returned [`Streaming`], which enforces
    /// `cap`, the read timeout per chunk and the call's deadline.
    pub(crate) async fn open(&self, target: &str, cap: usize, what: &str) -> Result<Streaming, Error> {
        let call = Call {
            method: Method::GET,
            target,
            body: None,
            cap,
            what,
            stream: true,
        };
        match self.exchange(call).await? {
            Answer::Streaming(head) => Ok(head),
            // `exchange` only returns `Full` when asked to.
            Answer::Full(reply) => Err(Error::Decode {
                what: what.to_owned(),
                reason: format!("unexpected buffered answer ({})", reply.status),
            }),
        }
    }

    /// One request (with its retries) in a `comfyui_request` span: method,
    /// path (without the query, which may name files or carry values the
    /// caller sent) and the final status.
    async fn exchange(&self, call: Call<'_>) -> Result<Answer, Error> {
        let path = call.target.split_once('?').map_or(call.target, |(path, _)| path);
        let span = tracing::debug_span!(
            "comfyui_request",
            method = %call.method,
            path,
            status = tracing::field::Empty,
        );
        let answer = self.attempts(&call).instrument(span.clone()).await;
        if let Ok(a) = &answer {
            span.record("status", a.status().as_u16());
        }
        answer
    }

    /// The request, retried as its method allows, within the deadline.
    async fn attempts(&self, call: &Call<'_>) -> Result<Answer, Error> {
        let Call {
            ref method,
            target,
            what,
            ..
        } = *call;
        let deadline = Instant::now() + self.config.deadline;
        let retryable = *method == Method::GET || *method == Method::HEAD;
        let tries = if retryable { self.config.tries.max(1) } else { 1 };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let req = self.request(method, target, call.body.as_ref())?;
            let result = tokio::time::timeout_at(deadline, self.once(req, call, deadline)).await;
            let Ok(outcome) = result else {
                return Err(Error::Timeout {
                    what: what.to_owned(),
                    after: self.config.deadline,
                });
            };
            let (retry, retry_after) = match &outcome {
                Err(Error::Connect { .. }) => (true, None),
                Ok(answer) if is_retryable_status(answer.status()) => (true, retry_after(answer.headers())),
                _ => (false, None),
            };
            if !(retry && retryable) || attempt >= tries {
                return outcome;
            }
            let wait = backoff(attempt, retry_after);
            if Instant::now() + wait >= deadline {
                return outcome;
            }
            tracing::debug!(what, attempt, ?wait, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn once(&self, req: Request<Full<Bytes>>, call: &Call<'_>, deadline: Instant) -> Result<Answer, Error> {
        let (cap, what) = (call.cap, call.what);
        let read = self.config.read_timeout;
        let resp = match tokio::time::timeout(read, self.http.request(req)).await {
            Err(_) => {
                return Err(Error::Timeout {
                    what: what.to_owned(),
                    after: read,
                });
            }
            Ok(Err(e)) => {
                return Err(Error::Connect {
                    what: what.to_owned(),
                    reason: describe(&e),
                    unsent: e.is_connect(),
                });
            }
            Ok(Ok(r)) => r,
        };
        let (parts, body) = resp.into_parts();
        let content_length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if content_length.is_some_and(|len| len > cap as u64) {
            return Err(Error::TooLarge {
                what: what.to_owned(),
                limit: cap,
            });
        }
        let head = Streaming {
            status: parts.status,
            headers: parts.headers,
            content_length,
            body,
            cap,
            read,
            deadline,
            deadline_len: self.config.deadline,
            got: 0,
            what: what.to_owned(),
        };
        if call.stream {
            Ok(Answer::Streaming(head))
        } else {
            head.into_reply().await.map(Answer::Full)
        }
    }
}

/// One request as its caller asks it: the body (content type and bytes),
/// the cap on the answer's body, what the call is (for errors), and
/// whether the body is streamed to the caller or read here.
struct Call<'a> {
    method: Method,
    target: &'a str,
    body: Option<(String, Bytes)>,
    cap: usize,
    what: &'a str,
    stream: bool,
}

/// What one exchange produced: a read body, or headers and a body to read.
enum Answer {
    Full(Reply),
    Streaming(Streaming),
}

impl Answer {
    fn status(&self) -> StatusCode {
        match self {
            Self::Full(r) => r.status,
            Self::Streaming(s) => s.status,
        }
    }

    fn headers(&self) -> &HeaderMap {
        match self {
            Self::Full(r) => &r.headers,
            Self::Streaming(s) => &s.headers,
        }
    }
}

/// A response whose body is read chunk by chunk, within its cap, the read
/// timeout per chunk and the call's deadline.
#[derive(Debug)]
pub(crate) struct Streaming {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) content_length: Option<u64>,
    body: Incoming,
    cap: usize,
    read: Duration,
    deadline: Instant,
    deadline_len: Duration,
    got: usize,
    what: String,
}

impl Streaming {
    /// The next chunk of the body, `None` at its end.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            let limit = (Instant::now() + self.read).min(self.deadline);
            let frame = match tokio::time::timeout_at(limit, self.body.frame()).await {
                Err(_) => {
                    let after = if Instant::now() >= self.deadline {
                        self.deadline_len
                    } else {
                        self.read
                    };
                    return Err(Error::Timeout {
                        what: self.what.clone(),
                        after,
                    });
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => {
                    return Err(Error::Connect {
                        what: self.what.clone(),
                        reason: format!("the response broke off after {} bytes: {e}", self.got),
                        unsent: false,
                    });
                }
                Ok(Some(Ok(f))) => f,
            };
            if let Ok(data) = frame.into_data() {
                if self.got.saturating_add(data.len()) > self.cap {
                    return Err(Error::TooLarge {
                        what: self.what.clone(),
                        limit: self.cap,
                    });
                }
                self.got += data.len();
                return Ok(Some(data));
            }
        }
    }

    /// Reads the whole (capped) body.
    async fn into_reply(mut self) -> Result<Reply, Error> {
        let mut buf = BytesMut::new();
        while let Some(data) = self.chunk().await? {
            buf.extend_from_slice(&data);
        }
        Ok(Reply {
            status: self.status,
            headers: self.headers,
            body: buf.freeze(),
        })
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(60)))
}

/// The chain of an error's causes, without URLs' credentials (we never put
/// any in URLs).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::backoff;

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        assert!(backoff(1, None) >= Duration::from_millis(400));
        assert!(backoff(2, None) >= Duration::from_millis(800));
        assert!(backoff(1, Some(Duration::from_secs(3))) == Duration::from_secs(3));
        assert!(backoff(30, None) <= Duration::from_millis(200 * 64 * 3 / 2));
    }
}
