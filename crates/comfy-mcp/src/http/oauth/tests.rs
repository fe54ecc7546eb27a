//! Unit tests of the OAuth settings, scopes, key cache and fetches.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use super::fetch::metadata_urls;
use super::*;

#[test]
fn calls_need_the_scope_of_their_kind() {
    for (method, tool, need) in [
        ("tools/call", Some("comfyui_list_models"), Some(Need::Read)),
        ("tools/call", Some("comfyui_get_image"), Some(Need::Read)),
        ("tools/call", Some("comfyui_generate_image"), Some(Need::Generate)),
        ("tools/call", Some("comfyui_upload_image"), Some(Need::Generate)),
        ("tools/call", Some("comfyui_cancel_job"), Some(Need::Generate)),
        ("tools/call", Some("comfyui_install_custom_node"), Some(Need::Nodes)),
        ("tools/call", Some("comfyui_search_custom_nodes"), Some(Need::Read)),
        ("tools/call", Some("comfyui_download_model"), Some(Need::Models)),
        ("tools/call", Some("comfyui_update_settings"), Some(Need::Settings)),
        ("tools/call", Some("nope"), Some(Need::Read)),
        ("resources/read", None, Some(Need::Read)),
        ("prompts/get", None, Some(Need::Read)),
        ("tools/list", None, None),
        ("initialize", None, None),
    ] {
        assert_eq!(Need::of(method, tool), need, "{method} {tool:?}");
    }
    // Every tool that writes needs more than reading.
    for t in crate::tools::Catalog::get().all() {
        let need = Need::of("tools/call", Some(&t.name));
        assert_eq!(need == Some(Need::Read), t.read_only(), "{}", t.name);
    }
}

#[test]
fn metadata_urls_follow_rfc_8414_then_openid() {
    let u = |s: &str| {
        metadata_urls(&url::Url::parse(s).unwrap())
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        u("https://as.example"),
        [
            "https://as.example/.well-known/oauth-authorization-server",
            "https://as.example/.well-known/openid-configuration"
        ]
    );
    assert_eq!(
        u("https://as.example/realms/x/"),
        [
            "https://as.example/.well-known/oauth-authorization-server/realms/x",
            "https://as.example/realms/x/.well-known/openid-configuration"
        ]
    );
}

use data_encoding::BASE64URL_NOPAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const AUD: &str = "https://mcp.example/mcp";

fn ec_key(kid: &str) -> (EcdsaKeyPair, Value) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let p = k.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": BASE64URL_NOPAD.encode(&p[1..33]), "y": BASE64URL_NOPAD.encode(&p[33..])});
    (k, jwk)
}

fn token(k: &EcdsaKeyPair, kid: &str, iss: &str) -> String {
    let enc = |v: Value| BASE64URL_NOPAD.encode(v.to_string().as_bytes());
    let signed = format!(
        "{}.{}",
        enc(json!({"alg": "ES256", "kid": kid, "typ": "at+jwt"})),
        enc(json!({"iss": iss, "aud": AUD, "sub": "alice", "exp": now_secs() + 300, "scope": "comfyui:read"}))
    );
    let sig = k.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
    format!("{signed}.{}", BASE64URL_NOPAD.encode(sig.as_ref()))
}

/// How the fake issuer answers a path.
#[derive(Clone)]
enum Answer {
    Json(Value),
    NotFound,
    /// Never answers.
    Silent,
    /// Streams bytes without a length, forever.
    Endless,
}

/// A local issuer: answers by path, counts requests by path.
struct FakeIssuer {
    url: String,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    total: Arc<AtomicUsize>,
}

impl FakeIssuer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let total = Arc::new(AtomicUsize::new(0));
        let (a, h, t) = (Arc::clone(&answers), Arc::clone(&hits), Arc::clone(&total));
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let (a, h, t) = (Arc::clone(&a), Arc::clone(&h), Arc::clone(&t));
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
                    t.fetch_add(1, Ordering::SeqCst);
                    *h.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let answer = a.lock().unwrap().get(&path).cloned().unwrap_or(Answer::NotFound);
                    match answer {
                        Answer::Json(v) => {
                            let body = v.to_string();
                            let reply = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = tcp.write_all(reply.as_bytes()).await;
                        }
                        Answer::NotFound => {
                            let _ = tcp
                                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                .await;
                        }
                        Answer::Silent => tokio::time::sleep(Duration::from_mins(1)).await,
                        Answer::Endless => {
                            let _ = tcp
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"keys\":[")
                                .await;
                            let chunk = vec![b' '; 64 * 1024];
                            for _ in 0..1024 {
                                if tcp.write_all(&chunk).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Self {
            url,
            answers,
            hits,
            total,
        }
    }

    /// An issuer with OpenID metadata and one EC key, `kid`, at `/jwks`.
    async fn serving(kid: &str) -> (Self, EcdsaKeyPair) {
        let issuer = Self::start().await;
        issuer.openid();
        let (k, jwk) = ec_key(kid);
        issuer.answer("/jwks", Answer::Json(json!({"keys": [jwk]})));
        (issuer, k)
    }

    fn answer(&self, path: &str, a: Answer) {
        self.answers.lock().unwrap().insert(path.to_owned(), a);
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// OpenID metadata naming `jwks` at `/jwks`.
    fn openid(&self) {
        self.answer(
            "/.well-known/openid-configuration",
            Answer::Json(json!({"issuer": self.url, "jwks_uri": format!("{}/jwks", self.url)})),
        );
    }

    fn verifier(&self, refresh: u64) -> Verifier {
        let c = OAuthConfig {
            issuers: vec![self.url.clone()],
            resource: Some(AUD.into()),
            algorithms: vec!["ES256".into()],
            jwks_refresh_interval: refresh,
            jwks_cache: 600,
            ..OAuthConfig::default()
        };
        Verifier::new(Settings::from_config(&c).unwrap())
    }
}

#[tokio::test]
async fn a_token_of_a_foreign_issuer_fetches_nothing() {
    let issuer = FakeIssuer::start().await;
    issuer.openid();
    let v = issuer.verifier(30);
    let (k, _) = ec_key("k1");
    let r = v.verify(&token(&k, "k1", "http://127.0.0.1:1")).await;
    assert!(matches!(r, Err(OAuthError::Token(JwtError::Issuer))), "{r:?}");
    assert_eq!(issuer.total.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn keys_come_from_the_metadata_and_a_flood_of_unknown_kids_fetches_once() {
    let (issuer, k) = FakeIssuer::serving("k1").await;
    let v = issuer.verifier(30);
    let grant = v.verify(&token(&k, "k1", &issuer.url)).await.unwrap();
    assert_eq!(grant.principal, format!("oauth:{}#alice", issuer.url));
    assert!(grant.scopes.contains("comfyui:read"));
    assert_eq!(
        issuer.hits("/.well-known/oauth-authorization-server"),
        1,
        "RFC 8414 first"
    );
    assert_eq!(issuer.hits("/jwks"), 1);
    // Cached: no more fetches for known keys.
    for _ in 0..5 {
        v.verify(&token(&k, "k1", &issuer.url)).await.unwrap();
    }
    assert_eq!(issuer.hits("/jwks"), 1);
    // A hundred made-up kids, many at once, within the refresh
    // interval of the first fetch: no fetch at all.
    let (other, _) = ec_key("x");
    let tokens: Vec<String> = (0..100)
        .map(|i| token(&other, &format!("made-up-{i}"), &issuer.url))
        .collect();
    let v = Arc::new(v);
    let mut tasks = Vec::new();
    for t in tokens {
        let v = Arc::clone(&v);
        tasks.push(tokio::spawn(async move { v.verify(&t).await }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        assert!(matches!(r, Err(OAuthError::Token(JwtError::UnknownKey))), "{r:?}");
    }
    assert_eq!(issuer.hits("/jwks"), 1, "no refresh for the flood");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_after_the_refresh_interval() {
    let (issuer, old) = FakeIssuer::serving("old").await;
    let v = issuer.verifier(1);
    v.verify(&token(&old, "old", &issuer.url)).await.unwrap();
    let (new, new_jwk) = ec_key("new");
    issuer.answer("/jwks", Answer::Json(json!({"keys": [new_jwk]})));
    // Within the interval the new kid is not fetched for.
    let r = v.verify(&token(&new, "new", &issuer.url)).await;
    assert!(matches!(r, Err(OAuthError::Token(JwtError::UnknownKey))), "{r:?}");
    // Time is the subject: the 1 s refresh interval, on the real clock
    // (the verifier's `Instant`) while a real HTTP issuer answers.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    v.verify(&token(&new, "new", &issuer.url)).await.unwrap();
    assert_eq!(issuer.hits("/jwks"), 2);
}

#[tokio::test]
async fn a_silent_or_endless_key_endpoint_is_bounded() {
    for answer in [Answer::Silent, Answer::Endless] {
        let issuer = FakeIssuer::start().await;
        issuer.openid();
        issuer.answer("/jwks", answer);
        let v = issuer.verifier(30);
        let (k, _) = ec_key("k1");
        let started = Instant::now();
        let r = v.verify(&token(&k, "k1", &issuer.url)).await;
        assert!(matches!(r, Err(OAuthError::KeysUnavailable(_))), "{r:?}");
        assert!(started.elapsed() < FETCH_TIMEOUT + Duration::from_secs(1));
        // Refused again at once, without another fetch, until the interval passes.
        let started = Instant::now();
        let r = v.verify(&token(&k, "k1", &issuer.url)).await;
        assert!(matches!(r, Err(OAuthError::KeysUnavailable(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(issuer.hits("/jwks"), 1);
    }
}

#[tokio::test]
async fn metadata_of_another_issuer_or_a_huge_key_set_is_refused() {
    let issuer = FakeIssuer::start().await;
    issuer.answer(
        "/.well-known/openid-configuration",
        Answer::Json(json!({"issuer": "https://evil.example", "jwks_uri": format!("{}/jwks", issuer.url)})),
    );
    let (k, jwk) = ec_key("k1");
    issuer.answer("/jwks", Answer::Json(json!({"keys": [jwk]})));
    let v = issuer.verifier(30);
    let r = v.verify(&token(&k, "k1", &issuer.url)).await;
    assert!(matches!(r, Err(OAuthError::KeysUnavailable(_))), "{r:?}");
    assert_eq!(issuer.hits("/jwks"), 0);

    let issuer = FakeIssuer::start().await;
    issuer.openid();
    let padding = "x".repeat(MAX_DOCUMENT_BYTES);
    issuer.answer("/jwks", Answer::Json(json!({"keys": [jwk], "padding": padding})));
    let v = issuer.verifier(30);
    let r = v.verify(&token(&k, "k1", &issuer.url)).await;
    assert!(matches!(r, Err(OAuthError::KeysUnavailable(_))), "{r:?}");
}

fn config() -> OAuthConfig {
    OAuthConfig {
        issuers: vec!["https://as.example".into()],
        resource: Some("https://mcp.example/mcp".into()),
        ..OAuthConfig::default()
    }
}

#[test]
fn settings_are_checked() {
    assert!(Settings::from_config(&config()).is_ok());
    let bad = |f: &dyn Fn(&mut OAuthConfig)| {
        let mut c = config();
        f(&mut c);
        Settings::from_config(&c).err().map(|(key, ..)| key)
    };
    assert_eq!(
        bad(&|c| c.issuers = vec!["http://as.example".into()]),
        Some("transport.remote.oauth.issuers")
    );
    assert_eq!(bad(&|c| c.issuers = vec!["http://127.0.0.1:9000".into()]), None);
    assert_eq!(
        bad(&|c| c.issuers = vec!["https://as.example/#x".into()]),
        Some("transport.remote.oauth.issuers")
    );
    assert_eq!(bad(&|c| c.resource = None), Some("transport.remote.oauth.resource"));
    assert_eq!(
        bad(&|c| c.algorithms = vec!["HS256".into()]),
        Some("transport.remote.oauth.algorithms")
    );
    assert_eq!(
        bad(&|c| c.algorithms = vec!["none".into()]),
        Some("transport.remote.oauth.algorithms")
    );
    assert_eq!(
        bad(&|c| c.algorithms.clear()),
        Some("transport.remote.oauth.algorithms")
    );
    assert_eq!(
        bad(&|c| c.scopes.read = "a b".into()),
        Some("transport.remote.oauth.scopes.read")
    );
    assert_eq!(
        bad(&|c| c.jwks_refresh_interval = 0),
        Some("transport.remote.oauth.jwks_cache")
    );
    assert_eq!(bad(&|c| c.leeway = 3600), Some("transport.remote.oauth.leeway"));
}
