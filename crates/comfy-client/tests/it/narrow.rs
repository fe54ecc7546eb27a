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

#[tokio::test]
async fn a_path_prefix_credentials_and_user_agent_reach_the_proxy() {
    use comfy_client::types::FileRef;
    use comfy_client::{Auth, Secret};
    use wiremock::matchers::{header, query_param};

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/comfy/system_stats"))
        .and(header("authorization", "Bearer t0ken"))
        .and(header("user-agent", "my-app/1.0"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"system": {}}"#))
        .expect(1)
        .mount(&server)
        .await;
    // "user:pass" in base64.
    Mock::given(method("GET"))
        .and(path("/comfy/view"))
        .and(query_param("filename", "a b&c.png"))
        .and(query_param("subfolder", "x/y"))
        .and(header("authorization", "Basic dXNlcjpwYXNz"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"png".to_vec()))
        .expect(1)
        .mount(&server)
        .await;
    let bearer = Client::builder(format!("{}/comfy/", server.uri()))
        .auth(Auth::Bearer(Secret::new("t0ken")))
        .user_agent("my-app/1.0")
        .build()
        .unwrap();
    assert!(bearer.system_stats().await.unwrap()["system"].is_object());
    let basic_auth = Client::builder(format!("{}/comfy", server.uri()))
        .auth(Auth::Basic {
            user: "user".into(),
            password: Secret::new("pass"),
        })
        .build()
        .unwrap();
    let file = FileRef {
        filename: "a b&c.png".into(),
        subfolder: "x/y".into(),
        kind: "output".into(),
    };
    assert_eq!(basic_auth.view(&file, None).await.unwrap().bytes.as_ref(), b"png");
    // A request the mocks do not match gets wiremock's 404.
    let err = basic_auth.system_stats().await.unwrap_err();
    assert!(matches!(err, Error::Status { status: 404, .. }), "{err}");
    let shown = format!("{basic_auth:?}");
    assert!(
        !shown.contains("\"pass\"") && !shown.contains("dXNlcjpwYXNz"),
        "{shown}"
    );
}

#[test]
fn a_client_is_cheap_to_share_between_tasks() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    fn movable<T: Send + 'static>() {}
    shareable::<Client>();
    movable::<comfy_client::Job>();
}
