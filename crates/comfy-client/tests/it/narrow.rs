//! Narrow transport rules checked with wiremock, where an exact answer
//! sequence matters more than ComfyUI's behaviour: `Retry-After`, the try
//! count, and the deadline that bounds them.

use std::time::{Duration, Instant};

use comfy_client::{Client, Error, PromptOptions};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::basic;

fn unavailable(retry_after: Option<&str>) -> ResponseTemplate {
    let r = ResponseTemplate::new(503).set_body_string("busy");
    match retry_after {
        Some(v) => r.insert_header("Retry-After", v),
        None => r,
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/system_stats"))
        .respond_with(unavailable(Some("1")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/system_stats"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"system": {}}"#))
        .mount(&server)
        .await;
    let c = Client::builder(server.uri()).build().unwrap();
    let start = Instant::now();
    assert!(c.system_stats().await.unwrap()["system"].is_object());
    assert!(start.elapsed() >= Duration::from_secs(1), "retried before Retry-After");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_gives_the_503_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(unavailable(Some("30")))
        .mount(&server)
        .await;
    let c = Client::builder(server.uri())
        .deadline(Duration::from_secs(5))
        .build()
        .unwrap();
    // Not a timeout: the client sees it cannot wait that long and says why.
    let err = c.system_stats().await.unwrap_err();
    assert!(matches!(err, Error::Status { status: 503, .. }), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn gets_stop_after_their_tries_and_posts_are_sent_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(unavailable(None))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(unavailable(None))
        .mount(&server)
        .await;
    let c = Client::builder(server.uri()).tries(3).websocket(false).build().unwrap();
    let err = c.queue().await.unwrap_err();
    assert!(matches!(err, Error::Status { status: 503, .. }), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);

    let err = c.submit(&basic(3), PromptOptions::default()).await.unwrap_err();
    assert!(matches!(err, Error::Status { status: 503, .. }), "{err}");
    let posts = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method == wiremock::http::Method::POST)
        .count();
    assert_eq!(posts, 1, "POST /prompt must never be retried");
}
