//! `https://` and `wss://`: a TLS front (rustls, a fresh self-signed
//! certificate) that forwards to comfy-sim, as a reverse proxy would.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use comfy_client::{Client, Error, JobStatus, PromptOptions, Tracking};
use comfy_sim::SimHandle;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};

use crate::{basic, sim};

/// A TLS terminator in front of `sim`, and the CA file that trusts it.
struct TlsFront {
    url: String,
    ca_file: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

async fn tls_front(sim: &SimHandle) -> TlsFront {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let ca_file = std::env::temp_dir().join(format!("comfy-client-ca-{}.pem", uuid_like()));
    std::fs::write(&ca_file, certified.cert.pem()).unwrap();
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let backend: SocketAddr = sim.addr();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    TlsFront { url, ca_file, task }
}

fn uuid_like() -> String {
    format!("{}-{}", std::process::id(), fastrand::u64(..))
}

#[tokio::test]
async fn https_and_wss_work_with_an_extra_ca() {
    let sim = sim().await;
    let front = tls_front(&sim).await;
    let c = Client::builder(&front.url)
        .extra_ca(&front.ca_file)
        .poll_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    assert!(c.system_stats().await.unwrap()["system"].is_object());
    let mut job = c.submit(&basic(9), PromptOptions::default()).await.unwrap();
    assert_eq!(job.tracking(), Tracking::WebSocket);
    let outcome = job.wait(Duration::from_secs(20)).await.unwrap();
    assert_eq!(outcome.status, JobStatus::Completed);
    let image = c.view(&outcome.files[0].file, None).await.unwrap();
    assert!(image.bytes.starts_with(b"\x89PNG"));
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_unless_verification_is_off() {
    let sim = sim().await;
    let front = tls_front(&sim).await;
    let strict = Client::builder(&front.url).tries(1).build().unwrap();
    let err = strict.system_stats().await.unwrap_err();
    assert!(
        matches!(&err, Error::Connect { reason, .. } if reason.contains("certificate")),
        "{err}"
    );
    // The socket refuses it too, so a job falls back to polling, which
    // fails the same way: nothing is sent to an unverified server.
    assert!(strict.submit(&basic(1), PromptOptions::default()).await.is_err());

    let trusting = Client::builder(&front.url).tls_verify(false).build().unwrap();
    assert!(trusting.system_stats().await.unwrap()["system"].is_object());

    let missing = Client::builder(&front.url).extra_ca("/nonexistent/ca.pem").build();
    assert!(matches!(missing, Err(Error::Config(m)) if m.contains("/nonexistent/ca.pem")));
}
