//! rmcp's own client over Streamable HTTP, against the real binary with
//! bearer tokens: the per-client cap on queued jobs (fairness), and one
//! principal not reaching another's jobs, sessions or tasks. rmcp's HTTP client needs an HTTP
//! backend; this one is hyper (the stack the server is built on), so the
//! tests add no HTTP client crate.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use comfy_sim::Sim;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError, StreamableHttpPostResponse,
};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use support::{HttpServer, text};

/// rmcp's Streamable HTTP client backend on hyper; it keeps the last
/// session id the server gave it.
#[derive(Clone)]
struct HyperClient(Hyper<HttpConnector, Full<Bytes>>, Arc<Mutex<Option<String>>>);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ClientError(String);

type Fail = StreamableHttpError<ClientError>;

fn fail(e: impl std::fmt::Display) -> Fail {
    StreamableHttpError::Client(ClientError(e.to_string()))
}

impl HyperClient {
    fn new() -> Self {
        Self(Hyper::builder(TokioExecutor::new()).build_http(), Arc::default())
    }

    fn request(
        method: Method,
        uri: &str,
        session: Option<&str>,
        auth: Option<&str>,
        headers: HashMap<HeaderName, HeaderValue>,
    ) -> http::request::Builder {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::ACCEPT, "text/event-stream, application/json");
        if let Some(s) = session {
            b = b.header("Mcp-Session-Id", s);
        }
        if let Some(a) = auth {
            b = b.header(http::header::AUTHORIZATION, format!("Bearer {a}"));
        }
        for (k, v) in headers {
            b = b.header(k, v);
        }
        b
    }
}

impl StreamableHttpClient for HyperClient {
    type Error = ClientError;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Fail> {
        let body = serde_json::to_vec(&message).map_err(fail)?;
        let req = Self::request(
            Method::POST,
            &uri,
            session_id.as_deref(),
            auth_header.as_deref(),
            custom_headers,
        )
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(fail)?;
        let resp = self.0.request(req).await.map_err(fail)?;
        let status = resp.status();
        if matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        let session = resp
            .headers()
            .get("Mcp-Session-Id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(s) = &session {
            *self.1.lock().unwrap() = Some(s.clone());
        }
        let kind = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if kind.starts_with("text/event-stream") {
            let events = sse_stream::SseStream::new(resp.into_body());
            return Ok(StreamableHttpPostResponse::Sse(Box::pin(events), session));
        }
        let bytes = resp.into_body().collect().await.map_err(fail)?.to_bytes();
        if !status.is_success() && !kind.starts_with("application/json") {
            return Err(fail(format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes))));
        }
        if bytes.is_empty() {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        let message: ServerJsonRpcMessage = serde_json::from_slice(&bytes)?;
        Ok(StreamableHttpPostResponse::Json(message, session))
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Fail> {
        let req = Self::request(
            Method::DELETE,
            &uri,
            Some(&session_id),
            auth_header.as_deref(),
            custom_headers,
        )
        .body(Full::new(Bytes::new()))
        .map_err(fail)?;
        self.0.request(req).await.map_err(fail)?;
        Ok(())
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<futures_core::stream::BoxStream<'static, Result<sse_stream::Sse, sse_stream::Error>>, Fail> {
        let mut b = Self::request(
            Method::GET,
            &uri,
            session_id.as_deref(),
            auth_header.as_deref(),
            custom_headers,
        );
        if let Some(id) = last_event_id {
            b = b.header("Last-Event-ID", id);
        }
        let resp = self
            .0
            .request(b.body(Full::new(Bytes::new())).map_err(fail)?)
            .await
            .map_err(fail)?;
        if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status())));
        }
        Ok(Box::pin(sse_stream::SseStream::new(resp.into_body())))
    }
}

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789abc";

/// The binary serving HTTP on a free port; the running server and its
/// `/mcp` URL.
async fn serve(home: &std::path::Path, sim: &str, remote: &str) -> (HttpServer, String) {
    serve_with(home, sim, "", remote).await
}

/// [`serve`] with more top-level configuration.
async fn serve_with(home: &std::path::Path, sim: &str, top: &str, remote: &str) -> (HttpServer, String) {
    support::write_config(
        home,
        &format!(
            "comfyui:\n  url: {sim}\nlimits:\n  max_steps: 0\n{top}transport:\n  remote:\n    enabled: true\n    port: 0\n\
             {remote}    auth_tokens:\n      alice: {ALICE}\n      bob: {BOB}\n"
        ),
    );
    let server = support::serve_http(support::comfy_mcp(home)).await;
    let url = server.url.clone();
    (server, url)
}

async fn connect(url: &str, token: &str) -> RunningService<RoleClient, ()> {
    connect_as((), url, token).await.0
}

/// A client with `handler`, and the session id the server gave it.
async fn connect_as<H: ClientHandler>(handler: H, url: &str, token: &str) -> (RunningService<RoleClient, H>, String) {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned());
    let http = HyperClient::new();
    let session = Arc::clone(&http.1);
    let transport = StreamableHttpClientTransport::with_client(http, config);
    let client = handler.serve(transport).await.unwrap();
    let id = session.lock().unwrap().clone().expect("a session id");
    (client, id)
}

/// A client that supports the tasks extension.
#[derive(Clone, Default)]
struct TaskClient;

impl ClientHandler for TaskClient {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        rmcp::model::ClientConfig::new(
            rmcp::model::ClientCapabilities::builder().enable_tasks().build(),
            rmcp::model::Implementation::new("task-client", "1.0"),
        )
    }
}

/// One raw request to `url` with `token` and `session`: its status and
/// (for anything but an event stream) its body.
async fn raw(method: Method, url: &str, token: &str, session: &str, body: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::ACCEPT, "application/json, text/event-stream")
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("Mcp-Session-Id", session)
        .header("MCP-Protocol-Version", "2025-11-25")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let resp = HyperClient::new().0.request(req).await.unwrap();
    let status = resp.status();
    let stream = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if stream {
        return (status, String::new());
    }
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn call(c: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(map) = args else {
        panic!("arguments must be an object")
    };
    c.call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(map))
        .await
        .unwrap()
}

/// A job of 5,000 steps (10 s at 500 steps/s), each with its own seed.
fn long(seed: u64) -> Value {
    json!({"workflow": json!({
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "x", "clip": ["1", 1]}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "4": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0],
              "latent_image": ["3", 0], "seed": seed, "steps": 5000, "cfg": 7.0, "sampler_name": "euler",
              "scheduler": "normal", "denoise": 1.0}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "fair"}},
    }).to_string()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_may_have_only_so_many_jobs_and_no_one_elses() {
    let sim = Sim::builder().steps_per_second(500.0).start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (_server, url) = serve(home.path(), &sim.url(), "    max_queued_jobs_per_client: 2\n").await;
    let alice = connect(&url, ALICE).await;
    let bob = connect(&url, BOB).await;

    let mut mine = Vec::new();
    for seed in 1..=2 {
        let r = call(&alice, "comfyui_run_workflow", long(seed)).await;
        assert_ne!(r.is_error, Some(true), "{}", text(&r));
        mine.push(r.structured_content.unwrap()["prompt_id"].as_str().unwrap().to_owned());
    }
    let third = call(&alice, "comfyui_run_workflow", long(3)).await;
    assert_eq!(third.is_error, Some(true));
    assert!(
        text(&third).contains("max_queued_jobs_per_client = 2"),
        "{}",
        text(&third)
    );
    // Another client is not held back, and cannot see or cancel Alice's jobs.
    let theirs = call(&bob, "comfyui_run_workflow", long(4)).await;
    assert_ne!(theirs.is_error, Some(true), "{}", text(&theirs));
    let peek = call(&bob, "comfyui_get_job", json!({"prompt_id": mine[0]})).await;
    assert_eq!(peek.is_error, Some(true));
    assert!(text(&peek).contains("has no job"), "{}", text(&peek));
    let cancel = call(&bob, "comfyui_cancel_job", json!({"prompt_id": mine[1]})).await;
    assert_eq!(cancel.is_error, Some(true));
    let queue = call(&bob, "comfyui_get_queue", json!({})).await;
    let q = queue.structured_content.unwrap();
    let listed = q["queue_running"].to_string() + &q["queue_pending"].to_string();
    assert!(!listed.contains(&mine[0]) && !listed.contains(&mine[1]), "{q}");

    // Alice cancels hers; Bob his.
    let done = call(&alice, "comfyui_cancel_jobs", json!({"job_ids": mine})).await;
    assert_ne!(done.is_error, Some(true), "{}", text(&done));
    let bob_id = theirs.structured_content.unwrap()["prompt_id"].clone();
    call(&bob, "comfyui_cancel_jobs", json!({"job_ids": [bob_id]})).await;
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_answers_only_the_principal_that_opened_it() {
    let sim = Sim::builder().start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (_server, url) = serve(home.path(), &sim.url(), "").await;
    let (alice, hers) = connect_as((), &url, ALICE).await;
    let (bob, _) = connect_as((), &url, BOB).await;

    // Bob's token with Alice's session id: 404 whatever the method, as for
    // a session that does not exist.
    let list = r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#;
    let (status, body) = raw(Method::POST, &url, BOB, &hers, list).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "POST: {body}");
    assert!(!body.contains("comfyui_"), "{body}");
    let (status, _) = raw(Method::GET, &url, BOB, &hers, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "GET stream");
    let (status, _) = raw(Method::DELETE, &url, BOB, &hers, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "DELETE");
    let unknown = "0".repeat(hers.len());
    assert_eq!(
        raw(Method::POST, &url, BOB, &unknown, list).await.0,
        StatusCode::NOT_FOUND
    );

    // Alice's session lived through it; Bob's own works.
    assert!(!alice.list_all_tools().await.unwrap().is_empty());
    assert!(!bob.list_all_tools().await.unwrap().is_empty());
    // Her own token still reaches it (and DELETE ends it).
    let (status, body) = raw(Method::POST, &url, ALICE, &hers, list).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_answers_only_the_principal_that_started_it() {
    use rmcp::model::{CallToolResponse, CancelTaskParams, GetTaskParams, TaskStatus};
    let sim = Sim::builder().steps_per_second(20.0).start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (_server, url) = serve_with(home.path(), &sim.url(), "tasks:\n  enabled: true\n", "").await;
    let (alice, _) = connect_as(TaskClient, &url, ALICE).await;
    let (bob, _) = connect_as(TaskClient, &url, BOB).await;

    let Value::Object(args) = json!({"prompt": "slow", "steps": 100, "wait": true}) else {
        unreachable!()
    };
    let started = alice
        .call_tool_once(CallToolRequestParams::new("comfyui_generate_image").with_arguments(args))
        .await
        .unwrap();
    let CallToolResponse::Task(created) = started else {
        panic!("expected a task, got {started:?}")
    };
    let id = created.task.task_id.clone();

    // Bob holding the id learns nothing and stops nothing: the answer is
    // the one for an id that does not exist.
    let peek = bob
        .get_task(GetTaskParams::new(id.clone()))
        .await
        .unwrap_err()
        .to_string();
    let none = bob.get_task(GetTaskParams::new("nope")).await.unwrap_err().to_string();
    assert_eq!(peek.replace(&id, "X"), none.replace("nope", "X"));
    assert!(bob.cancel_task(CancelTaskParams::new(id.clone())).await.is_err());
    // The refusal is the whole of Bob's cancel (it stops nothing in the
    // background): the job still runs on ComfyUI, and the task reads so.
    support::wait_running(&sim.url()).await;
    let mine = alice.get_task(GetTaskParams::new(id.clone())).await.unwrap();
    assert_eq!(
        mine.task.status(),
        TaskStatus::Working,
        "Bob's cancel did nothing: {mine:?}"
    );

    // Alice reads and cancels her own.
    alice.cancel_task(CancelTaskParams::new(id.clone())).await.unwrap();
    let status = support::task_ended(&alice, &id, std::time::Duration::from_secs(5))
        .await
        .task
        .status();
    assert_eq!(status, TaskStatus::Cancelled);
    // The id is a random (version 4) UUID.
    assert_eq!(uuid::Uuid::try_parse(&id).unwrap().get_version_num(), 4, "{id}");
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}

/// One `initialize` with `token`, as a raw request: its status and body.
async fn initialize(url: &str, token: &str) -> (StatusCode, String) {
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let req = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::ACCEPT, "application/json, text/event-stream")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(init.as_bytes())))
        .unwrap();
    let resp = HyperClient::new().0.request(req).await.unwrap();
    let status = resp.status();
    if status == StatusCode::OK {
        return (status, String::new());
    }
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_principal_cannot_take_every_session() {
    let sim = Sim::builder().start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    // Four sessions in all: an equal share is two each.
    let (_server, url) = serve(home.path(), &sim.url(), "    max_sessions: 4\n").await;
    let (a1, _) = connect_as((), &url, ALICE).await;
    let (a2, _) = connect_as((), &url, ALICE).await;
    let (status, body) = initialize(&url, ALICE).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body.contains("principal 'alice': at most 2 (transport.remote.max_sessions_per_principal)"),
        "{body}"
    );
    // Bob still gets his.
    let (b1, _) = connect_as((), &url, BOB).await;
    let (b2, _) = connect_as((), &url, BOB).await;
    assert!(!b2.list_all_tools().await.unwrap().is_empty());
    assert_eq!(initialize(&url, BOB).await.0, StatusCode::TOO_MANY_REQUESTS);
    // Ending one of hers makes room for her.
    a2.cancel().await.unwrap();
    let (a3, _) = connect_as((), &url, ALICE).await;
    for c in [a1, a3, b1, b2] {
        c.cancel().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_principal_has_its_own_rate_under_a_ceiling_for_all() {
    let sim = Sim::builder().start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (_server, url) = serve_with(
        home.path(),
        &sim.url(),
        "rate_limits:\n  read_only: 3\n  total:\n    read_only: 5\n",
        "",
    )
    .await;
    let alice = connect(&url, ALICE).await;
    let bob = connect(&url, BOB).await;
    for _ in 0..3 {
        let r = call(&alice, "comfyui_get_queue", json!({})).await;
        assert_ne!(r.is_error, Some(true), "{}", text(&r));
    }
    let r = call(&alice, "comfyui_get_queue", json!({})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text(&r).starts_with(
            "Rate limit exceeded for tool 'comfyui_get_queue'. Max 3 requests/minute for principal 'alice' (rate_limits.read_only)."
        ),
        "{}",
        text(&r)
    );
    // Alice's spent calls are hers: Bob has his own, until the ceiling.
    for _ in 0..2 {
        let r = call(&bob, "comfyui_get_queue", json!({})).await;
        assert_ne!(r.is_error, Some(true), "{}", text(&r));
    }
    let r = call(&bob, "comfyui_get_queue", json!({})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text(&r).contains(
            "server-wide limit of 5 requests/minute for all principals together (rate_limits.total.read_only)"
        ),
        "{}",
        text(&r)
    );
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}

/// A GET of `url` with `headers`: status, headers and body.
async fn get(url: &str, headers: &[(&str, &str)]) -> (StatusCode, http::HeaderMap, String) {
    let mut b = Request::builder().method(Method::GET).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = HyperClient::new()
        .0
        .request(b.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_resource_metadata_is_served_and_named_on_401() {
    let sim = Sim::builder().start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (_server, url) = serve(home.path(), &sim.url(), "").await;
    let base = url.strip_suffix("/mcp").unwrap();
    // Both well-known forms, without a token, name the MCP endpoint.
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let (status, headers, body) = get(&format!("{base}{path}"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(
            headers[http::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let meta: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(meta["resource"], url, "{path}: {meta}");
        assert_eq!(meta["bearer_methods_supported"], json!(["header"]));
        assert!(
            meta.get("authorization_servers").is_none(),
            "no OAuth configured: {meta}"
        );
    }
    // A 401 says where the metadata is; a wrong token is an invalid one.
    let (status, headers, _) = get(&url, &[("Accept", "text/event-stream")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = headers[http::header::WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
        )),
        "{challenge}"
    );
    let (status, headers, _) = get(&url, &[("Authorization", "Bearer nope")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers[http::header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // A foreign Host gets no metadata naming it.
    let (status, _, body) = get(
        &format!("{base}/.well-known/oauth-protected-resource"),
        &[("Host", "evil.example")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // The tokens still work with a real client.
    let alice = connect(&url, ALICE).await;
    assert!(!alice.list_all_tools().await.unwrap().is_empty());
    alice.cancel().await.unwrap();
}

/// A valid 1x1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_principal_cannot_overwrite_another_principals_files() {
    let sim = Sim::builder().start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (_server, url) = serve(home.path(), &sim.url(), "").await;
    let alice = connect(&url, ALICE).await;
    let bob = connect(&url, BOB).await;
    let upload = |name: &str, folder: &str, sub: &str, overwrite: bool| json!({"filename": name, "image_data": PNG, "destination": folder, "subfolder": sub, "overwrite": overwrite});

    // Alice's upload: Bob cannot replace it, however he spells the folder.
    let r = call(
        &alice,
        "comfyui_upload_image",
        upload("hers.png", "input", "pics", false),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    for sub in ["pics", "pics/", "/pics"] {
        let r = call(&bob, "comfyui_upload_image", upload("hers.png", "input", sub, true)).await;
        assert_eq!(r.is_error, Some(true), "{sub}: {}", text(&r));
        assert!(text(&r).contains("belongs to another client"), "{}", text(&r));
    }
    let r = call(
        &bob,
        "comfyui_upload_mask",
        json!({"filename": "hers.png", "mask_data": PNG,
        "original_image": "hers.png", "original_subfolder": "pics", "subfolder": "pics", "overwrite": true}),
    )
    .await;
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    assert!(text(&r).contains("belongs to another client"), "{}", text(&r));
    // Without overwrite ComfyUI keeps both (or, for the same bytes, the
    // one file); Alice may replace her own.
    let r = call(&bob, "comfyui_upload_image", upload("hers.png", "input", "pics", false)).await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let r = call(
        &alice,
        "comfyui_upload_image",
        upload("hers.png", "input", "pics", true),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));

    // An output of Alice's job: Bob cannot overwrite it either.
    let done = call(
        &alice,
        "comfyui_generate_image",
        json!({"prompt": "x", "steps": 2, "wait": true}),
    )
    .await;
    let done = done.structured_content.unwrap();
    let output = &done["outputs"][0];
    let (name, sub) = (
        output["filename"].as_str().unwrap(),
        output["subfolder"].as_str().unwrap_or_default(),
    );
    let r = call(&bob, "comfyui_upload_image", upload(name, "output", sub, true)).await;
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    assert!(text(&r).contains("belongs to another client"), "{}", text(&r));

    // Bob's own files are his to replace.
    let r = call(&bob, "comfyui_upload_image", upload("his.png", "temp", "", false)).await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let r = call(&bob, "comfyui_upload_image", upload("his.png", "temp", "", true)).await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_stay_apart_across_replicas_sharing_redis() {
    use rmcp::model::{CallToolResponse, CancelTaskParams, GetTaskParams};
    let Some(redis) = support::redis().await else { return };
    let sim = Sim::builder().steps_per_second(20.0).start().await.unwrap();
    let top = format!(
        "tasks:\n  enabled: true\nrate_limits:\n  read_only: 2\nstate:\n  redis_url: {}\n",
        redis.url()
    );
    let (h1, h2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_s1, url1) = serve_with(h1.path(), &sim.url(), &top, "").await;
    let (_s2, url2) = serve_with(h2.path(), &sim.url(), &top, "").await;
    let (alice1, _) = connect_as(TaskClient, &url1, ALICE).await;
    let (alice2, _) = connect_as(TaskClient, &url2, ALICE).await;
    let (bob2, _) = connect_as(TaskClient, &url2, BOB).await;

    // A task started through replica 1: Alice reads it through replica 2,
    // Bob there gets "no task" and cannot cancel it.
    let Value::Object(args) = json!({"prompt": "slow", "steps": 100, "wait": true}) else {
        unreachable!()
    };
    let started = alice1
        .call_tool_once(CallToolRequestParams::new("comfyui_generate_image").with_arguments(args))
        .await
        .unwrap();
    let CallToolResponse::Task(created) = started else {
        panic!("expected a task, got {started:?}")
    };
    let id = created.task.task_id.clone();
    assert!(alice2.get_task(GetTaskParams::new(id.clone())).await.is_ok());
    assert!(bob2.get_task(GetTaskParams::new(id.clone())).await.is_err());
    assert!(bob2.cancel_task(CancelTaskParams::new(id.clone())).await.is_err());

    // An upload through replica 1 is Alice's on replica 2 too.
    let up = |overwrite: bool| json!({"filename": "shared.png", "image_data": PNG, "overwrite": overwrite});
    let r = alice1
        .call_tool(
            CallToolRequestParams::new("comfyui_upload_image").with_arguments(up(false).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let r = bob2
        .call_tool(
            CallToolRequestParams::new("comfyui_upload_image").with_arguments(up(true).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert!(text(&r).contains("belongs to another client"), "{}", text(&r));

    // Alice's own rate is shared by the replicas; Bob's is his.
    let queue = || CallToolRequestParams::new("comfyui_get_queue").with_arguments(serde_json::Map::new());
    for c in [&alice1, &alice1] {
        let r = c.call_tool(queue()).await.unwrap();
        assert_ne!(r.is_error, Some(true), "{}", text(&r));
    }
    let r = alice2.call_tool(queue()).await.unwrap();
    assert!(text(&r).contains("for principal 'alice'"), "{}", text(&r));
    let r = bob2.call_tool(queue()).await.unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text(&r));

    alice2.cancel_task(CancelTaskParams::new(id)).await.unwrap();
    for c in [alice1, alice2, bob2] {
        c.cancel().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_stay_apart_across_replicas_sharing_redis() {
    use rmcp::model::ReadResourceRequestParams;
    let Some(redis) = support::redis().await else { return };
    let sim = Sim::builder().start().await.unwrap();
    let top = format!("state:\n  redis_url: {}\n", redis.url());
    let (h1, h2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_s1, url1) = serve_with(h1.path(), &sim.url(), &top, "").await;
    let (_s2, url2) = serve_with(h2.path(), &sim.url(), &top, "").await;
    let (alice1, _) = connect_as((), &url1, ALICE).await;
    let (alice2, _) = connect_as((), &url2, ALICE).await;
    let (bob2, _) = connect_as((), &url2, BOB).await;

    // A job Alice ran through replica 1: its outputs are hers to read as
    // resources through replica 2 (its owner comes from Redis), not Bob's.
    let workflow = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "apart"}}
    });
    let args = json!({"workflow": workflow, "wait": true});
    let r = call(&alice1, "comfyui_run_workflow", args).await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let done = r.structured_content.clone().unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    let uri = format!("comfyui://output/{}/0", done["prompt_id"].as_str().unwrap());
    let read = alice2.read_resource(ReadResourceRequestParams::new(uri.clone())).await;
    assert!(read.is_ok(), "{read:?}");
    let refused = bob2
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("no such job among yours"), "{refused}");
    for c in [alice1, alice2, bob2] {
        c.cancel().await.unwrap();
    }
}

/// An authorization server's metadata and keys, served from 127.0.0.1
/// (OpenID metadata at its well-known path, the key set at `/jwks`), and
/// the key that signs its tokens: enough of an issuer for the server to
/// verify tokens as it would a real one's.
struct Issuer {
    url: String,
    key: ring::signature::EcdsaKeyPair,
}

impl Issuer {
    async fn start() -> Self {
        use data_encoding::BASE64URL_NOPAD;
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let p = key.public_key().as_ref();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
            "x": BASE64URL_NOPAD.encode(&p[1..33]), "y": BASE64URL_NOPAD.encode(&p[33..])}]})
        .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let meta = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")}).to_string();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let (meta, jwks) = (meta.clone(), jwks.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let body = match head.split(' ').nth(1) {
                        Some("/.well-known/openid-configuration") => meta,
                        Some("/jwks") => jwks,
                        _ => {
                            let _ = tcp
                                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                .await;
                            return;
                        }
                    };
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tcp.write_all(reply.as_bytes()).await;
                });
            }
        });
        Self { url, key }
    }

    /// A token with `claims` over the defaults (this issuer, the test
    /// resource, subject `carol`, five minutes).
    fn token(&self, claims: &Value) -> String {
        use data_encoding::BASE64URL_NOPAD;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut c = json!({"iss": self.url, "aud": RESOURCE, "sub": "carol", "exp": now + 300, "iat": now});
        for (k, v) in claims.as_object().unwrap() {
            c[k] = v.clone();
        }
        let enc = |v: Value| BASE64URL_NOPAD.encode(v.to_string().as_bytes());
        let signed = format!(
            "{}.{}",
            enc(json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"})),
            enc(c)
        );
        let sig = self
            .key
            .sign(&ring::rand::SystemRandom::new(), signed.as_bytes())
            .unwrap();
        format!("{signed}.{}", BASE64URL_NOPAD.encode(sig.as_ref()))
    }
}

/// The canonical resource URI the OAuth tests configure.
const RESOURCE: &str = "https://mcp.test/mcp";

/// A POST of `body` with `token` (and `session` when not empty): the
/// status, headers and body.
async fn post_as(url: &str, token: &str, session: &str, body: &str) -> (StatusCode, http::HeaderMap, String) {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::ACCEPT, "application/json, text/event-stream")
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("MCP-Protocol-Version", "2025-11-25");
    if !session.is_empty() {
        b = b.header("Mcp-Session-Id", session);
    }
    let resp = HyperClient::new()
        .0
        .request(b.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await
        .unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    if headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
    {
        return (status, headers, String::new());
    }
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_access_tokens_are_verified_scoped_and_their_subject_is_the_principal() {
    let sim = Sim::builder().steps_per_second(500.0).start().await.unwrap();
    let issuer = Issuer::start().await;
    let home = tempfile::tempdir().unwrap();
    let (_server, url) = serve(
        home.path(),
        &sim.url(),
        &format!(
            "    oauth:\n      issuers: [\"{}\"]\n      resource: {RESOURCE}\n      algorithms: [ES256]\n",
            issuer.url
        ),
    )
    .await;
    let base = url.strip_suffix("/mcp").unwrap();
    let metadata_url = "https://mcp.test/.well-known/oauth-protected-resource/mcp";

    // The metadata names the authorization server and the scopes.
    let (status, _, body) = get(&format!("{base}/.well-known/oauth-protected-resource/mcp"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let meta: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(meta["resource"], RESOURCE);
    assert_eq!(meta["authorization_servers"], json!([issuer.url]));
    assert_eq!(
        meta["scopes_supported"],
        json!([
            "comfyui:read",
            "comfyui:generate",
            "comfyui:nodes",
            "comfyui:models",
            "comfyui:settings"
        ])
    );

    // No token: 401 naming the metadata and the scope to start with.
    let (status, headers, _) = get(&url, &[("Accept", "text/event-stream")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = headers[http::header::WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"comfyui:read\""), "{challenge}");

    // Refused tokens: expired, another audience, another issuer, a
    // signature that does not verify.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let tampered = {
        let t = issuer.token(&json!({"scope": "comfyui:read"}));
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        parts[2] = parts[2].chars().rev().collect();
        parts.join(".")
    };
    for (token, why) in [
        (issuer.token(&json!({"exp": now - 3600})), "expired"),
        (issuer.token(&json!({"aud": "https://other.test/mcp"})), "aud"),
        (issuer.token(&json!({"iss": "https://evil.test"})), "issuer"),
        (tampered, "signature"),
    ] {
        let (status, headers, body) = post_as(&url, &token, "", INIT).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
        let challenge = headers[http::header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.contains("error=\"invalid_token\""), "{why}: {challenge}");
        assert!(
            challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
            "{challenge}"
        );
    }

    // A read-only token reads, and gets 403 with the scope to ask for when
    // it generates.
    let reader = issuer.token(&json!({"scope": "comfyui:read", "sub": "reader"}));
    let (client, session) = connect_as((), &url, &reader).await;
    assert!(!client.list_all_tools().await.unwrap().is_empty());
    let queue = call(&client, "comfyui_get_queue", json!({})).await;
    assert_ne!(queue.is_error, Some(true), "{}", text(&queue));
    let run = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "comfyui_run_workflow", "arguments": long(1)}})
    .to_string();
    let (status, headers, body) = post_as(&url, &reader, &session, &run).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let challenge = headers[http::header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
    assert!(challenge.contains("scope=\"comfyui:generate\""), "{challenge}");
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    // Installing nodes needs its own scope.
    let install = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
        "params": {"name": "comfyui_install_custom_node", "arguments": {"node_id": "x"}}})
    .to_string();
    let (status, headers, _) = post_as(&url, &reader, &session, &install).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        headers[http::header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("scope=\"comfyui:nodes\"")
    );
    client.cancel().await.unwrap();

    // With the generate scope the job runs; it is carol's: a static
    // token's principal cannot see it, and a token of carol's with
    // another `jti` can.
    let carol = issuer.token(&json!({"scope": "comfyui:read comfyui:generate"}));
    let c = connect(&url, &carol).await;
    let r = call(&c, "comfyui_run_workflow", long(2)).await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let id = r.structured_content.unwrap()["prompt_id"].as_str().unwrap().to_owned();
    let alice = connect(&url, ALICE).await;
    let peek = call(&alice, "comfyui_get_job", json!({"prompt_id": id})).await;
    assert_eq!(peek.is_error, Some(true), "{}", text(&peek));
    let again = connect(
        &url,
        &issuer.token(&json!({"scope": "comfyui:read comfyui:generate", "jti": "2"})),
    )
    .await;
    let mine = call(&again, "comfyui_get_job", json!({"prompt_id": id})).await;
    assert_ne!(mine.is_error, Some(true), "{}", text(&mine));
    let done = call(&again, "comfyui_cancel_jobs", json!({"job_ids": [id]})).await;
    assert_ne!(done.is_error, Some(true), "{}", text(&done));
    for client in [c, alice, again] {
        client.cancel().await.unwrap();
    }
}

/// An `initialize` request body.
const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
