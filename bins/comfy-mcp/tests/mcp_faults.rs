//! Faults on the MCP side: clients that go away mid-call, floods of calls,
//! and garbage on stdio. Each test drives the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use comfy_sim::Sim;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use support::{records, start_sim};

/// ComfyUI's `/queue` from the simulator, as JSON.
fn queue(url: &str) -> Value {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(format!("GET /queue HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str(body).unwrap()
}

fn busy(q: &Value) -> usize {
    q["queue_running"].as_array().unwrap().len() + q["queue_pending"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_mid_call_leaves_comfyui_idle_and_the_audit_complete() {
    abandon("", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_can_let_an_abandoned_job_finish() {
    abandon("server:\n  interrupt_abandoned_jobs: false\n", 1).await;
}

/// Starts a long waiting generation, disconnects mid-wait, and checks how
/// many jobs ComfyUI still has (`left`) and the audit record.
async fn abandon(config: &str, left: usize) {
    let s = start_sim(config, Sim::builder().steps_per_second(10.0)).await;
    let Value::Object(args) = json!({"prompt": "slow", "steps": 100, "wait": true}) else {
        unreachable!()
    };
    let call = s
        .client
        .call_tool(CallToolRequestParams::new("comfyui_generate_image").with_arguments(args));
    assert!(tokio::time::timeout(Duration::from_millis(1500), call).await.is_err());
    assert_eq!(busy(&queue(&s.sim.url())), 1, "the job runs while the call waits");
    // The client disconnects: stdin closes and the server exits.
    let support::Session {
        client, home, sim, pid, ..
    } = s;
    client.cancel().await.unwrap();
    if left == 0 {
        support::until("ComfyUI to have no job left", Duration::from_secs(10), || async {
            (busy(&queue(&sim.url())) == 0).then_some(())
        })
        .await;
    } else {
        // Once the server has exited nothing can stop the job any more.
        support::exited(pid).await;
    }
    assert_eq!(
        busy(&queue(&sim.url())),
        left,
        "ComfyUI keeps {left} job(s) after the client went away"
    );
    let log = records(&home.path().join(".comfyui-mcp/audit.log"));
    let done: Vec<&Value> = log
        .iter()
        .filter(|r| r["tool"] == "comfyui_generate_image" && r["action"] == "completed" && r.get("outcome").is_some())
        .collect();
    assert_eq!(done.len(), 1, "{log:?}");
    assert_eq!(done[0]["outcome"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_calls_gets_clear_answers_and_no_deadlock() {
    let config = "rate_limits:\n  read_only: 50\nserver:\n  max_concurrent_calls: 4\n";
    let s = start_sim(config, Sim::builder().steps_per_second(500.0)).await;
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let peer = s.client.peer().clone();
        set.spawn(async move {
            peer.call_tool(CallToolRequestParams::new("comfyui_get_queue"))
                .await
                .unwrap()
        });
    }
    let results = set.join_all().await;
    assert!(started.elapsed() < Duration::from_secs(30));
    let limited = results
        .iter()
        .filter(|r| {
            r.is_error == Some(true) && support::text(r).starts_with("Rate limit exceeded for tool 'comfyui_get_queue'")
        })
        .count();
    let fine = results.iter().filter(|r| r.is_error != Some(true)).count();
    assert_eq!(limited + fine, 200, "every call got a result or a rate-limit error");
    assert_eq!(fine, 50, "the bucket's 50 went through");
    // Still healthy, and every call has its audit pair.
    let log = records(&s.audit_file());
    let called = log.iter().filter(|r| r["action"] == "called").count();
    let completed = log.iter().filter(|r| r["action"] == "completed").count();
    assert_eq!((called, completed), (200, 200));
    s.client.cancel().await.unwrap();
}

#[test]
fn garbage_on_stdio_is_skipped_and_stdout_stays_mcp() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".comfyui-mcp")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"))
        .arg("--sim")
        .env("HOME", home.path())
        .env_remove("COMFYUI_MCP_CONFIG")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let mut input: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        vec![0xff, 0xfe, 0xfd],
        b"[".repeat(100_000),
        init.as_bytes().to_vec(),
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec(),
        b"{\"jsonrpc\":\"2.0\",\"id\":".to_vec(),
        vec![b'x'; 20 << 20],
        br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#.to_vec(),
    ];
    for line in &mut input {
        line.push(b'\n');
        stdin.write_all(line).unwrap();
    }
    stdin.flush().unwrap();
    let mut ids = Vec::new();
    while ids.len() < 2 {
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("an answer");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {line}"));
        assert_eq!(v["jsonrpc"], "2.0", "{line}");
        ids.push(v["id"].clone());
    }
    assert_eq!(ids, [json!(1), json!(2)]);
    assert!(child.try_wait().unwrap().is_none(), "still running");
    drop(stdin);
    let _ = child.wait();
}

/// The audit log's directory is replaced by a file mid-session: the
/// configured policy decides, and the log recovers once the path is fixed.
async fn audit_path_breaks(policy: &str) -> (support::Session, Vec<bool>) {
    let s = start_sim(
        &format!("logging:\n  audit_file: {{home}}/logs/audit.log\n  audit_failure: {policy}\n"),
        Sim::builder().steps_per_second(500.0),
    )
    .await;
    let logs = s.home.path().join("logs");
    let mut ok = Vec::new();
    ok.push(s.call("comfyui_get_queue", json!({})).await.is_error != Some(true));
    std::fs::remove_dir_all(&logs).unwrap();
    std::fs::write(&logs, "not a directory").unwrap();
    let broken = s.call("comfyui_get_queue", json!({})).await;
    if policy == "fail_closed" {
        assert!(
            support::text(&broken).contains("audit record could not be written"),
            "{}",
            support::text(&broken)
        );
    }
    ok.push(broken.is_error != Some(true));
    std::fs::remove_file(&logs).unwrap();
    ok.push(s.call("comfyui_get_queue", json!({})).await.is_error != Some(true));
    (s, ok)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_audit_log_fails_closed_by_default_and_recovers() {
    let (s, ok) = audit_path_breaks("fail_closed").await;
    assert_eq!(ok, [true, false, true]);
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_audit_log_fails_open_when_configured() {
    let (s, ok) = audit_path_breaks("fail_open").await;
    assert_eq!(ok, [true, true, true]);
    s.client.cancel().await.unwrap();
}
