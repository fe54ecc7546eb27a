//! The SSRF-safe fetcher against a local server (wiremock on 127.0.0.1,
//! trusted by exact address, as a LAN host would be): redirects are
//! re-checked, bodies capped, waits bounded; and what is refused before
//! any connection.

use std::net::SocketAddr;
use std::time::Duration;

use comfy_client::fetch::{FetchError, FetchPolicy, fetch};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n0000IHDR";

fn trusted(server: &MockServer) -> FetchPolicy {
    let addr: SocketAddr = *server.address();
    let mut p = FetchPolicy::new(vec!["127.0.0.1".into()], 1000);
    // Plain http reaches a trusted address without `allow_http`.
    p.trusted_addresses = vec![addr];
    p.timeout = Duration::from_secs(5);
    p
}

#[tokio::test]
async fn a_trusted_server_is_fetched_and_redirects_are_followed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/img.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PNG, "image/png"))
        .mount(&server)
        .await;
    Mock::given(path("/r1"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "/r2"))
        .mount(&server)
        .await;
    Mock::given(path("/r2"))
        .respond_with(ResponseTemplate::new(301).insert_header("Location", "img.png"))
        .mount(&server)
        .await;
    let got = fetch(&format!("{}/r1", server.uri()), &trusted(&server)).await.unwrap();
    assert_eq!(got.bytes, PNG);
    assert_eq!(got.content_type.as_deref(), Some("image/png"));
    assert!(got.final_url.ends_with("/img.png"));
}

#[tokio::test]
async fn redirects_are_checked_like_the_first_url() {
    let server = MockServer::start().await;
    let other = MockServer::start().await;
    for (from, to) in [
        ("/to-untrusted", format!("{}/img.png", other.uri())),
        ("/to-metadata", "http://169.254.169.254/latest/meta-data/".to_owned()),
        ("/to-other-host", "https://evil.example/x.png".to_owned()),
        ("/to-ftp", "ftp://127.0.0.1/x".to_owned()),
        ("/loop", "/loop".to_owned()),
    ] {
        Mock::given(path(from))
            .respond_with(ResponseTemplate::new(307).insert_header("Location", to.as_str()))
            .mount(&server)
            .await;
    }
    let policy = trusted(&server);
    let go = |p: &'static str| {
        let policy = policy.clone();
        let url = format!("{}{p}", server.uri());
        async move { fetch(&url, &policy).await.unwrap_err() }
    };
    assert!(matches!(go("/to-untrusted").await, FetchError::PrivateAddress { .. }));
    // The host is checked before any DNS or connection.
    assert!(matches!(go("/to-metadata").await, FetchError::HostNotAllowed(h) if h == "169.254.169.254"));
    assert!(matches!(go("/to-other-host").await, FetchError::HostNotAllowed(h) if h == "evil.example"));
    assert!(matches!(go("/to-ftp").await, FetchError::Invalid(_)));
    assert!(matches!(go("/loop").await, FetchError::TooManyRedirects(3)));
    // A redirect to the metadata address with every host allowed: refused
    // for the address.
    let mut open = policy.clone();
    open.allowed_hosts = vec!["*".into()];
    let err = fetch(&format!("{}/to-metadata", server.uri()), &open)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::PrivateAddress { .. }), "{err}");
}

#[tokio::test]
async fn bodies_are_capped_and_waits_bounded() {
    let server = MockServer::start().await;
    Mock::given(path("/big"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![0u8; 5000]))
        .mount(&server)
        .await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    Mock::given(path("/missing"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let mut policy = trusted(&server);
    let err = fetch(&format!("{}/big", server.uri()), &policy).await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge(1000)), "{err}");
    let err = fetch(&format!("{}/missing", server.uri()), &policy).await.unwrap_err();
    assert_eq!(err.to_string(), "127.0.0.1 answered 404");
    policy.timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = fetch(&format!("{}/slow", server.uri()), &policy).await.unwrap_err();
    assert!(matches!(err, FetchError::Timeout(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn refused_before_connecting() {
    let server = MockServer::start().await;
    let mut policy = FetchPolicy::new(
        vec!["127.0.0.1".into(), "localhost".into(), "[::1]".into(), "::1".into()],
        1000,
    );
    // Loopback without trust: refused, by address literal and after DNS.
    policy.allow_http = true;
    let err = fetch(&format!("{}/x.png", server.uri()), &policy).await.unwrap_err();
    assert!(matches!(err, FetchError::PrivateAddress { .. }), "{err}");
    let port = server.address().port();
    // A loopback name is refused on its name, before DNS.
    let err = fetch(&format!("http://localhost:{port}/x.png"), &policy)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::LocalName { .. }), "{err}");
    let err = fetch(&format!("http://[::1]:{port}/x.png"), &policy).await.unwrap_err();
    assert!(matches!(err, FetchError::PrivateAddress { .. }), "{err}");
    // Plain http is refused unless allowed or trusted; user info always.
    policy.allow_http = false;
    policy.allowed_hosts.push("*".into());
    let err = fetch("http://1.1.1.1/x.png", &policy).await.unwrap_err();
    assert_eq!(err.to_string(), "the URL must be https (got http:)");
    policy.allowed_hosts.pop();
    let err = fetch("https://user:pw@127.0.0.1/x.png", &policy).await.unwrap_err();
    assert!(err.to_string().contains("user name or password"));
    let err = fetch("https://example.com/x.png", &policy).await.unwrap_err();
    assert!(matches!(err, FetchError::HostNotAllowed(_)));
    let err = fetch("not a url", &policy).await.unwrap_err();
    assert!(matches!(err, FetchError::Invalid(_)));
    // Nothing reached the server.
    assert!(server.received_requests().await.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn names_and_forms_that_reach_local_addresses_are_refused_before_dns() {
    let mut policy = FetchPolicy::new(vec!["*".into()], 1000);
    policy.timeout = Duration::from_secs(5);
    for url in [
        "https://localtest.me/x.png",
        "https://127.0.0.1.nip.io/x.png",
        "https://169-254-169-254.sslip.io/x.png",
        "https://lvh.me/x.png",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://example.com./x.png",
        "https://intranet/x.png",
    ] {
        let err = fetch(url, &policy).await.unwrap_err();
        assert!(matches!(err, FetchError::LocalName { .. }), "{url}: {err}");
    }
    // WHATWG reads `evil`, Python would read the metadata address: refused
    // as a URL the two standards disagree on.
    let err = fetch(r"https://evil\@169.254.169.254/", &policy).await.unwrap_err();
    assert!(matches!(err, FetchError::Invalid(_)), "{err}");
    // IPv4 inside IPv6, and carrier-grade NAT.
    for url in [
        "https://[::ffff:a9fe:a9fe]/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://100.100.100.200/",
    ] {
        let err = fetch(url, &policy).await.unwrap_err();
        assert!(matches!(err, FetchError::PrivateAddress { .. }), "{url}: {err}");
    }
}
