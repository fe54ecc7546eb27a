//! `comfy-mcp smoke`, the real binary against comfy-sim: with and without
//! Model-Manager, a download that completes, fails, stalls past its
//! timeout or is interrupted, and a server that is not there. Every path
//! leaves no task and no file behind.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::process::Stdio;
use std::time::Duration;

use comfy_sim::{Downloads, Sim, SimHandle};
use tokio::process::Command;

const URL: &str = "https://huggingface.co/org/tiny/resolve/main/tiny.safetensors";

fn smoke(home: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"));
    cmd.arg("smoke")
        .args(args)
        .env("HOME", home)
        .env_remove("COMFYUI_URL")
        .env_remove("COMFYUI_MCP_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

async fn run(sim: &SimHandle, extra: &[&str]) -> (Option<i32>, String) {
    let home = tempfile::tempdir().unwrap();
    let url = sim.url();
    let mut args = vec!["--url", url.as_str(), "--download-url", URL];
    args.extend_from_slice(extra);
    let out = smoke(home.path(), &args).output().await.unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Model-Manager's tasks and the files in `loras`, as the sim holds them.
async fn leftovers(sim: &SimHandle) -> (usize, Vec<String>) {
    let client = comfy_client::Client::builder(sim.url()).build().unwrap();
    let tasks = client.model_manager_tasks().await.unwrap();
    let n = tasks["data"].as_array().map_or(0, Vec::len);
    let dir = sim.data_dir().join("models/loras");
    let files = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    (n, files)
}

async fn sim(downloads: Option<Downloads>) -> SimHandle {
    let b = Sim::builder();
    let b = match downloads {
        Some(d) => b.model_manager(true).model_manager_downloads(d),
        None => b,
    };
    b.start().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_install_passes_every_check_and_the_download_leaves_nothing() {
    let s = sim(Some(Downloads::Complete)).await;
    let (code, out) = run(&s, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    for line in [
        "[     ok] connect: ComfyUI ",
        "[     ok] model folders: ",
        "[     ok] websocket: first message in ",
        "[skipped] ComfyUI-Manager: not installed (optional)",
        "[     ok] ComfyUI-Model-Manager: installed",
        "[     ok] download: comfy-mcp-smoke-",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(
        out.contains("downloaded into loras in ") && out.contains("listed, deleted"),
        "{out}"
    );
    assert!(out.ends_with("5 ok, 0 failed, 1 skipped\n"), "{out}");
    assert_eq!(leftovers(&s).await, (0, Vec::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_model_manager_or_with_no_download_the_download_is_skipped() {
    let s = sim(None).await;
    let (code, out) = run(&s, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("[skipped] ComfyUI-Model-Manager: not installed (optional)"),
        "{out}"
    );
    assert!(out.contains("[skipped] download: needs ComfyUI-Model-Manager"), "{out}");
    let s = sim(Some(Downloads::Complete)).await;
    let (code, out) = run(&s, &["--no-download"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("[skipped] download: --no-download"), "{out}");
    assert_eq!(leftovers(&s).await, (0, Vec::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_stalled_download_fails_the_check_and_is_cleaned_up() {
    let s = sim(Some(Downloads::Fail)).await;
    let (code, out) = run(&s, &[]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("[ FAILED] download: the download stopped at 50 %"),
        "{out}"
    );
    assert!(out.contains("cancelled"), "{out}");
    assert_eq!(leftovers(&s).await, (0, Vec::new()));

    let s = sim(Some(Downloads::Stall)).await;
    let (code, out) = run(&s, &["--timeout", "1"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("[ FAILED] download: not finished after 1 s"), "{out}");
    assert_eq!(leftovers(&s).await, (0, Vec::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_url_and_a_missing_server_fail_with_the_reason() {
    let s = sim(Some(Downloads::Complete)).await;
    let home = tempfile::tempdir().unwrap();
    let url = s.url();
    let out = smoke(
        home.path(),
        &["--url", &url, "--download-url", "https://evil.example/x.safetensors"],
    )
    .output()
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("[ FAILED] download: the download URL is refused"),
        "{text}"
    );

    let gone = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", probe.local_addr().unwrap())
    };
    let out = smoke(home.path(), &["--url", &gone]).output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("[ FAILED] connect: "), "{text}");
    assert!(text.ends_with("0 ok, 1 failed, 0 skipped\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_download_is_cleaned_up_and_exits_130() {
    let s = sim(Some(Downloads::Stall)).await;
    let home = tempfile::tempdir().unwrap();
    let url = s.url();
    let child = smoke(home.path(), &["--url", &url, "--download-url", URL])
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // Wait for the task to exist, then interrupt.
    let client = comfy_client::Client::builder(s.url()).build().unwrap();
    support::until("the download task", Duration::from_secs(10), || async {
        let tasks = client.model_manager_tasks().await.ok()?;
        tasks["data"].as_array().is_some_and(|t| !t.is_empty()).then_some(())
    })
    .await;
    let killed = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(
        text.contains("[ FAILED] download: interrupted; cleaned up: task "),
        "{text}"
    );
    assert_eq!(leftovers(&s).await, (0, Vec::new()));
}
