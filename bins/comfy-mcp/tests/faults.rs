//! The backend fault matrix: each ComfyUI fault (comfy-sim's knobs), met
//! through the real binary and rmcp's client. For every row the test checks
//! the tool's outcome, that the call ended within its deadline, that the
//! next call is healthy once the fault is gone, and that the audit log has
//! the call's `completed` record. `docs/reliability.md` lists the rows.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::time::{Duration, Instant};

use comfy_sim::{Faults, HttpFault, Sim};
use serde_json::{Value, json};
use support::{Session, records, start_sim, text};

/// Config for the matrix: short ComfyUI timeouts, a 15 s tool deadline,
/// rate limits out of the way.
const CONFIG: &str = "comfyui:\n  timeout_connect: 2\n  timeout_read: 3\nserver:\n  tool_deadline: 15\n\
                      rate_limits:\n  workflow: 1000\n  generation: 1000\n  file_ops: 1000\n  read_only: 1000\n";

/// What a row expects.
enum Expect {
    /// Success.
    Ok,
    /// An error whose text contains this.
    Error(&'static str),
}

/// Runs `tool` under `faults`, checks the outcome, the time, the audit
/// record, and that the same call succeeds once the fault is cleared.
async fn row(s: &Session, name: &str, faults: Faults, tool: &str, args: Value, expect: Expect) {
    s.sim.set_faults(faults);
    let before = records(&s.audit_file()).len();
    let started = Instant::now();
    let r = s.call(tool, args.clone()).await;
    let elapsed = started.elapsed();
    s.sim.set_faults(Faults::none());
    assert!(elapsed < Duration::from_secs(15), "{name}: took {elapsed:?}");
    match expect {
        Expect::Ok => assert_ne!(r.is_error, Some(true), "{name}: {}", text(&r)),
        Expect::Error(needle) => {
            assert_eq!(r.is_error, Some(true), "{name}: expected an error, got {r:?}");
            assert!(text(&r).contains(needle), "{name}: {:?} lacks {needle:?}", text(&r));
        }
    }
    let new: Vec<Value> = records(&s.audit_file()).into_iter().skip(before).collect();
    let done: Vec<&Value> = new
        .iter()
        .filter(|r| r["action"] == "completed" && r["tool"] == tool)
        .collect();
    assert_eq!(done.len(), 1, "{name}: one completed record, got {new:?}");
    let want = if matches!(expect, Expect::Ok) { "ok" } else { "error" };
    assert_eq!(done[0]["outcome"], want, "{name}: {:?}", done[0]);
    // Healthy again.
    let again = s.call(tool, args).await;
    assert_ne!(again.is_error, Some(true), "{name}: after the fault: {}", text(&again));
}

/// The faults every route can meet: the server down or resetting, and the
/// route hanging, failing, or answering with a broken body.
fn connection_and_body_faults(path: &str) -> Vec<(&'static str, Faults, Expect)> {
    let route = |f: HttpFault| Faults::none().route(path, f);
    vec![
        (
            "down",
            Faults::none().refuse_connections(true),
            Expect::Error("ComfyUI"),
        ),
        (
            "reset on accept",
            Faults::none().reset_connections(true),
            Expect::Error("ComfyUI"),
        ),
        ("blackhole", route(HttpFault::Hang), Expect::Error("ComfyUI")),
        ("500", route(HttpFault::Status(500)), Expect::Error("500")),
        (
            "503 with Retry-After",
            route(HttpFault::RetryAfter(1)),
            Expect::Error("503"),
        ),
        (
            "malformed JSON",
            route(HttpFault::MalformedJson),
            Expect::Error("ComfyUI"),
        ),
        ("HTML with 200", route(HttpFault::Html), Expect::Error("ComfyUI")),
        (
            "oversized body",
            route(HttpFault::Oversized(64 << 20)),
            Expect::Error("ComfyUI"),
        ),
        ("truncated body", route(HttpFault::Truncated), Expect::Error("ComfyUI")),
        (
            "reset mid-body",
            route(HttpFault::ResetMidBody),
            Expect::Error("ComfyUI"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_faults_on_a_read() {
    let s = start_sim(CONFIG, Sim::builder().steps_per_second(500.0)).await;
    let mut rows = connection_and_body_faults("/queue");
    rows.push((
        "slow within the deadline",
        Faults::none().latency(Duration::from_millis(800)),
        Expect::Ok,
    ));
    rows.push((
        "slow beyond the deadline",
        Faults::none().latency(Duration::from_secs(30)),
        Expect::Error("ComfyUI"),
    ));
    rows.push((
        "oversized chunked body",
        Faults::none().route("/queue", HttpFault::OversizedChunked(64 << 20)),
        Expect::Error("ComfyUI"),
    ));
    for (name, faults, expect) in rows {
        row(&s, name, faults, "comfyui_get_queue", json!({}), expect).await;
    }
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_faults_on_submit_never_send_the_prompt_twice() {
    let s = start_sim(CONFIG, Sim::builder().steps_per_second(500.0)).await;
    let rows = connection_and_body_faults("/prompt");
    for (name, faults, expect) in rows {
        let sent = s.sim.requests("/prompt");
        let args = json!({"prompt": "x", "steps": 2, "wait": false});
        row(&s, name, faults, "comfyui_generate_image", args, expect).await;
        // The faulted call and the healthy one after it: at most one POST each.
        let posts = s.sim.requests("/prompt") - sent;
        assert!(posts <= 2, "{name}: POST /prompt sent {posts} times for two calls");
        if name != "down" && name != "reset on accept" {
            assert_eq!(posts, 2, "{name}: each call sends its prompt exactly once");
        }
    }
    s.client.cancel().await.unwrap();
}

/// A waiting generation that must complete, whatever the WebSocket does.
async fn completes_despite(s: &Session, name: &str, faults: Faults) {
    let args = json!({"prompt": "x", "steps": 8, "wait": true});
    s.sim.set_faults(faults);
    let started = Instant::now();
    let r = s.call("comfyui_generate_image", args).await;
    s.sim.set_faults(Faults::none());
    assert!(started.elapsed() < Duration::from_secs(15), "{name}");
    assert_ne!(r.is_error, Some(true), "{name}: {}", text(&r));
    let v = r.structured_content.clone().unwrap();
    assert_eq!(v["status"], "completed", "{name}: {v}");
    assert!(!v["outputs"].as_array().unwrap().is_empty(), "{name}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_faults_do_not_fail_a_job() {
    use comfy_sim::WsFault;
    let s = start_sim(CONFIG, Sim::builder().steps_per_second(40.0)).await;
    let rows: Vec<(&str, Faults)> = vec![
        ("refused (polling)", Faults::none().route("/ws", HttpFault::Status(403))),
        ("dropped mid-job", Faults::none().ws(WsFault::DropAfter(3))),
        ("silent", Faults::none().ws(WsFault::Silent)),
        ("other prompts' events", Faults::none().ws(WsFault::Foreign)),
        ("junk and binary frames", Faults::none().ws(WsFault::Junk)),
        ("oversized frame", Faults::none().ws(WsFault::OversizedFrame(48 << 20))),
    ];
    for (name, faults) in rows {
        completes_despite(&s, name, faults).await;
    }
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_faults() {
    use comfy_sim::JobFault;
    let config = "comfyui:\n  timeout_connect: 2\n  timeout_read: 4\nserver:\n  tool_deadline: 10\n";
    let s = start_sim(config, Sim::builder().steps_per_second(40.0)).await;

    // An execution error: ComfyUI's message, trimmed, no traceback.
    s.sim.set_faults(Faults::none().job(JobFault::Error));
    let r = s
        .call(
            "comfyui_generate_image",
            json!({"prompt": "x", "steps": 2, "wait": true}),
        )
        .await;
    s.sim.set_faults(Faults::none());
    let v = r.structured_content.clone().unwrap();
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(
        v["error"]["exception_message"], "simulated failure (comfy-sim job fault)",
        "{v}"
    );
    assert_eq!(v["error"]["node_type"], "CheckpointLoaderSimple", "{v}");
    assert!(
        !v.to_string().contains("traceback") && !v.to_string().contains("File "),
        "{v}"
    );

    // A job that never finishes: the wait ends before the deadline with the
    // prompt id (as the peer answers), the job is cancelled with it, and the
    // next job runs normally.
    s.sim.set_faults(Faults::none().job(JobFault::Hang));
    let started = Instant::now();
    let r = s
        .call(
            "comfyui_generate_image",
            json!({"prompt": "x", "steps": 2, "wait": true}),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let v = r.structured_content.clone().unwrap();
    assert_eq!(v["status"], "timeout", "{v}");
    s.sim.set_faults(Faults::none());
    let cancelled = s.call("comfyui_cancel_job", json!({"prompt_id": v["prompt_id"]})).await;
    assert_ne!(cancelled.is_error, Some(true), "{}", text(&cancelled));
    let next = s
        .call(
            "comfyui_generate_image",
            json!({"prompt": "x", "steps": 2, "wait": true}),
        )
        .await;
    assert_eq!(next.structured_content.unwrap()["status"], "completed");

    // ComfyUI restarts during a job: reported lost, not resubmitted. The
    // job hangs, so only the restart can end it (a job that finished
    // before the test got to restart was the rare failure here), and the
    // restart waits for the server's `submitted` record: once the server
    // holds the prompt id, not while ComfyUI's answer to the POST is still
    // on its way (a restart then drops that answer, and the call fails
    // without a job to call lost).
    let sent = s.sim.requests("/prompt");
    let submitted = || {
        records(&s.audit_file())
            .iter()
            .filter(|r| r["action"] == "submitted")
            .count()
    };
    let before = submitted();
    s.sim.set_faults(Faults::none().job(JobFault::Hang));
    let call = s.call(
        "comfyui_generate_image",
        json!({"prompt": "x", "steps": 60, "wait": true}),
    );
    let restart = async {
        support::until("the server's submitted record", Duration::from_secs(10), || async {
            (submitted() > before).then_some(())
        })
        .await;
        support::wait_running(&s.sim.url()).await;
        s.sim.restart();
    };
    let (r, ()) = tokio::join!(call, restart);
    s.sim.set_faults(Faults::none());
    let shown = format!("{}{}", text(&r), r.structured_content.clone().unwrap_or_default());
    assert!(shown.contains("lost"), "{shown}");
    assert_eq!(s.sim.requests("/prompt") - sent, 1, "not resubmitted");
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_never_ends_is_interrupted_at_the_wait_limit_when_configured() {
    use comfy_sim::JobFault;
    let config = "comfyui:\n  timeout_read: 2\nserver:\n  tool_deadline: 10\n  interrupt_on_wait_timeout: true\n";
    let s = start_sim(config, Sim::builder().steps_per_second(40.0)).await;
    s.sim.set_faults(Faults::none().job(JobFault::Hang));
    let started = Instant::now();
    let r = s
        .call(
            "comfyui_generate_image",
            json!({"prompt": "x", "steps": 2, "wait": true}),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.structured_content.unwrap()["status"], "timeout");
    s.sim.set_faults(Faults::none());
    // No cancel needed: the queue is free and the next job runs normally.
    let next = s
        .call(
            "comfyui_generate_image",
            json!({"prompt": "x", "steps": 2, "wait": true}),
        )
        .await;
    assert_eq!(next.structured_content.unwrap()["status"], "completed");
    s.client.cancel().await.unwrap();
}
