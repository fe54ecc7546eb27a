//! One test per fault knob, each showing the knob takes effect.

use std::time::{Duration, Instant};

use comfy_sim::{Faults, HttpFault, JobFault, Sim, WsFault};
use serde_json::json;

use crate::support::{
    Msg, basic_prompt, get, post_json, queue, request, wait_history, wait_running, ws_connect, ws_next,
};

#[tokio::test]
async fn latency_delays_every_response() {
    let sim = Sim::builder()
        .faults(Faults::none().latency(Duration::from_millis(300)))
        .start()
        .await
        .unwrap();
    let t = Instant::now();
    assert_eq!(get(sim.addr(), "/prompt").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    sim.set_faults(Faults::none());
    assert_eq!(sim.faults(), Faults::none());
}

#[tokio::test]
async fn status_fault_answers_the_chosen_code_on_both_spellings() {
    let sim = Sim::builder()
        .faults(Faults::none().route("/prompt", HttpFault::Status(503)))
        .start()
        .await
        .unwrap();
    let r = post_json(sim.addr(), "/api/prompt", &json!({"prompt": basic_prompt()})).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.bytes().as_ref(), b"503: Service Unavailable");
    assert_eq!(
        get(sim.addr(), "/queue").await.status,
        200,
        "other routes are untouched"
    );
}

#[tokio::test]
async fn malformed_json_and_wrong_content_type() {
    let sim = Sim::builder().start().await.unwrap();
    sim.set_faults(
        Faults::none()
            .route("/system_stats", HttpFault::MalformedJson)
            .route("/queue", HttpFault::WrongContentType),
    );
    let r = get(sim.addr(), "/system_stats").await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(r.bytes()).is_err());
    let r = get(sim.addr(), "/queue").await;
    assert_eq!(r.content_type(), Some("text/html; charset=utf-8"));
}

#[tokio::test]
async fn reset_mid_body_breaks_the_transfer() {
    let sim = Sim::builder()
        .faults(Faults::none().route("/object_info", HttpFault::ResetMidBody))
        .start()
        .await
        .unwrap();
    let r = get(sim.addr(), "/object_info").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.is_err(),
        "body must fail mid-way, got {} bytes",
        r.body.as_ref().map_or(0, bytes::Bytes::len)
    );
}

#[tokio::test]
async fn oversized_body_streams_the_requested_size() {
    let sim = Sim::builder()
        .faults(Faults::none().route("/history", HttpFault::Oversized(5_000_000)))
        .start()
        .await
        .unwrap();
    let r = get(sim.addr(), "/history").await;
    assert_eq!(r.bytes().len(), 5_000_000);
    assert!(r.bytes().starts_with(b"[0,0,"));
}

#[tokio::test]
async fn websocket_drop_silent_and_junk() {
    let sim = Sim::builder()
        .faults(Faults::none().ws(WsFault::DropAfter(1)))
        .start()
        .await
        .unwrap();
    let mut ws = ws_connect(sim.addr(), "/ws?clientId=d").await;
    assert!(matches!(
        ws_next(&mut ws, Duration::from_secs(5)).await,
        Some(Msg::Text(_))
    ));
    post_json(sim.addr(), "/prompt", &json!({"prompt": basic_prompt()})).await;
    assert_eq!(ws_next(&mut ws, Duration::from_secs(5)).await, Some(Msg::Closed));

    sim.set_faults(Faults::none().ws(WsFault::Silent));
    let mut ws = ws_connect(sim.addr(), "/ws?clientId=s").await;
    post_json(
        sim.addr(),
        "/prompt",
        &json!({"prompt": basic_prompt(), "client_id": "s"}),
    )
    .await;
    assert_eq!(ws_next(&mut ws, Duration::from_millis(500)).await, None);

    sim.set_faults(Faults::none().ws(WsFault::Junk));
    let mut ws = ws_connect(sim.addr(), "/ws?clientId=j").await;
    assert_eq!(
        ws_next(&mut ws, Duration::from_secs(5)).await,
        Some(Msg::Text(json!("{not json")))
    );
    assert!(matches!(ws_next(&mut ws, Duration::from_secs(5)).await, Some(Msg::Text(v)) if v["type"] == "status"));
}

#[tokio::test]
async fn job_faults_error_and_hang() {
    let sim = Sim::builder()
        .faults(Faults::none().job(JobFault::Error))
        .start()
        .await
        .unwrap();
    let id = queue(sim.addr(), &basic_prompt()).await;
    let entry = wait_history(sim.addr(), &id).await;
    assert_eq!(entry["status"]["messages"][2][0], "execution_error");

    sim.set_faults(Faults::none().job(JobFault::Hang));
    let mut p = basic_prompt();
    p["1"]["inputs"]["color"] = json!(7);
    let id = queue(sim.addr(), &p).await;
    // Running, so the interrupt below reaches it (the hang is shown by the
    // interrupted outcome: a job that ended on its own would be a success).
    wait_running(sim.addr()).await;
    let job = get(sim.addr(), &format!("/api/jobs/{id}")).await.json();
    assert_eq!(job["status"], "in_progress");
    request(sim.addr(), "POST", "/interrupt", &[], Vec::new()).await;
    let entry = wait_history(sim.addr(), &id).await;
    assert_eq!(entry["status"]["messages"][2][0], "execution_interrupted");
}

#[tokio::test]
async fn restart_forgets_queue_history_and_sockets() {
    let sim = Sim::builder().start().await.unwrap();
    let id = queue(sim.addr(), &basic_prompt()).await;
    wait_history(sim.addr(), &id).await;
    let mut ws = ws_connect(sim.addr(), "/ws?clientId=r").await;
    let _ = ws_next(&mut ws, Duration::from_secs(5)).await;
    sim.restart();
    assert_eq!(ws_next(&mut ws, Duration::from_secs(5)).await, Some(Msg::Closed));
    assert_eq!(get(sim.addr(), "/history").await.json(), json!({}));
    let again = post_json(sim.addr(), "/prompt", &json!({"prompt": basic_prompt()}))
        .await
        .json();
    assert_eq!(again["number"], json!(0), "the prompt counter restarts too");
}

/// Whether a TCP connect to `addr` succeeds `want` within 2 s.
async fn eventually_connects(addr: std::net::SocketAddr, want: bool) -> bool {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn refusing_connections_and_recovering() {
    let sim = Sim::builder().start().await.unwrap();
    sim.set_faults(Faults::none().refuse_connections(true));
    assert!(
        eventually_connects(sim.addr(), false).await,
        "connections must be refused"
    );
    sim.set_faults(Faults::none());
    assert!(
        eventually_connects(sim.addr(), true).await,
        "connections must be accepted again"
    );
    assert_eq!(get(sim.addr(), "/prompt").await.status, 200);
}
