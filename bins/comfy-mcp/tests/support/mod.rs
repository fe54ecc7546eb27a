//! What the end-to-end tests share: the real binary started over stdio by
//! rmcp's client, against an in-process comfy-sim, with its own `$HOME`;
//! the binary over Streamable HTTP and `redis-server` (from
//! `comfy-test-support`); and the one bounded wait, [`until`].

#![allow(dead_code, reason = "each test crate uses part of it")]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use comfy_sim::{Sim, SimHandle};
pub(crate) use comfy_test_support::{HttpServer, Redis};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, NumberOrString, ProgressNotificationParam, ProgressToken, RequestMetaObject,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::process::Command;

/// A client that keeps the progress notifications it receives.
#[derive(Clone, Default)]
pub(crate) struct Collector {
    pub(crate) progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Collector {
    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        self.progress.lock().unwrap().push(params);
    }
}

pub(crate) struct Session {
    pub(crate) client: RunningService<RoleClient, Collector>,
    pub(crate) progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub(crate) home: tempfile::TempDir,
    pub(crate) sim: SimHandle,
    /// The server's process id.
    pub(crate) pid: u32,
}

impl Session {
    pub(crate) fn audit_file(&self) -> PathBuf {
        self.home.path().join(".comfyui-mcp/audit.log")
    }

    /// A call with a progress token.
    pub(crate) async fn call_with_progress(&self, tool: &str, args: Value) -> CallToolResult {
        let Value::Object(map) = args else {
            panic!("arguments must be an object")
        };
        let mut params = CallToolRequestParams::new(tool.to_owned()).with_arguments(map);
        let mut meta = RequestMetaObject::new();
        meta.set_progress_token(ProgressToken(NumberOrString::Number(7)));
        params.meta = Some(meta);
        self.client.call_tool(params).await.unwrap()
    }

    pub(crate) async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        let Value::Object(map) = args else {
            panic!("arguments must be an object")
        };
        self.client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(map))
            .await
            .unwrap()
    }
}

/// Writes `config` as the config file of the server whose `$HOME` is `home`.
pub(crate) fn write_config(home: &Path, config: &str) {
    let dir = home.join(".comfyui-mcp");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.yaml"), config).unwrap();
}

/// The binary with `$HOME` at `home` and none of the variables that would
/// override its config file; warnings logged.
pub(crate) fn comfy_mcp(home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_comfy-mcp"));
    cmd.env("HOME", home)
        .env_remove("COMFYUI_URL")
        .env_remove("COMFYUI_MCP_CONFIG")
        .env_remove("COMFYUI_MCP_AUTH_TOKEN")
        .env_remove("COMFYUI_MCP_REDIS_URL")
        .env("RUST_LOG", "warn");
    cmd
}

/// The binary with `config` (which enables the remote transport on port
/// 0) in a fresh `home`, against the ComfyUI at `comfyui_url`, once it
/// printed its address; for tests that are not async where they start it.
pub(crate) fn http_server(home: &Path, comfyui_url: &str, config: &str) -> HttpServer {
    write_config(home, config);
    let mut cmd = comfy_mcp(home);
    cmd.env("COMFYUI_URL", comfyui_url);
    HttpServer::start(&mut cmd).expect("the server printed its address")
}

/// `cmd` (its config enables the remote transport on port 0) serving
/// Streamable HTTP, once it printed its address.
pub(crate) async fn serve_http(mut cmd: std::process::Command) -> HttpServer {
    tokio::task::spawn_blocking(move || HttpServer::start(&mut cmd))
        .await
        .unwrap()
        .expect("the server serves Streamable HTTP")
}

/// A `redis-server` on a free port, or `None` (the test is skipped)
/// outside CI when it is not installed.
pub(crate) async fn redis() -> Option<Redis> {
    tokio::task::spawn_blocking(Redis::for_test).await.unwrap()
}

pub(crate) async fn start(config: &str) -> Session {
    start_at(config, 500.0).await
}

/// A session whose simulator samples `steps_per_second`.
pub(crate) async fn start_at(config: &str, steps_per_second: f64) -> Session {
    start_sim(config, Sim::builder().steps_per_second(steps_per_second)).await
}

/// A session against a simulator built by `sim`.
pub(crate) async fn start_sim(config: &str, sim: comfy_sim::SimBuilder) -> Session {
    let sim = sim.start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    // `{sim}` in the config stands for the simulator's URL, `{home}` for
    // the home directory.
    let config = config
        .replace("{sim}", &sim.url())
        .replace("{home}", &home.path().display().to_string());
    write_config(home.path(), &config);
    let mut cmd = comfy_mcp(home.path());
    cmd.env("COMFYUI_URL", sim.url());
    let cmd = Command::from(cmd);
    let collector = Collector::default();
    let progress = Arc::clone(&collector.progress);
    let child = TokioChildProcess::new(cmd).unwrap();
    let pid = child.id().unwrap();
    let client = collector.serve(child).await.unwrap();
    Session {
        client,
        progress,
        home,
        sim,
        pid,
    }
}

pub(crate) fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn ok(r: &CallToolResult) -> &Value {
    assert_ne!(r.is_error, Some(true), "tool failed: {}", text(r));
    r.structured_content.as_ref().expect("structured content")
}

/// The audit records in the log at `path`: its complete lines (one being
/// written while a test waits on the log has no newline yet, and is left
/// for the next read).
pub(crate) fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The shared bounded wait, for state that has no event to wait on.
pub(crate) use comfy_test_support::until;

/// Waits up to `limit` until the task `id`, read through `client`, is no
/// longer working; its last answer.
pub(crate) async fn task_ended<H: ClientHandler>(
    client: &RunningService<RoleClient, H>,
    id: &str,
    limit: Duration,
) -> rmcp::model::GetTaskResult {
    until(&format!("task {id} to end"), limit, || async {
        let got = client
            .get_task(rmcp::model::GetTaskParams::new(id.to_owned()))
            .await
            .unwrap();
        (got.task.status() != rmcp::model::TaskStatus::Working).then_some(got)
    })
    .await
}

/// Waits until the process `pid` (the server, which rmcp's transport
/// started) has exited: gone, or a zombie. Linux (`/proc`).
pub(crate) async fn exited(pid: u32) {
    until(&format!("process {pid} to exit"), Duration::from_secs(20), || async {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => Some(()),
            // The state follows the command name in parentheses.
            Ok(stat) => stat
                .rsplit(')')
                .next()?
                .trim_start()
                .starts_with(['Z', 'X'])
                .then_some(()),
        }
    })
    .await;
}

/// Waits until ComfyUI at `url` runs a job (`GET /queue`), or fails the
/// test after 20 s.
pub(crate) async fn wait_running(url: &str) {
    let comfyui = comfy_client::Client::builder(url.to_owned()).build().unwrap();
    until("a job running on ComfyUI", Duration::from_secs(20), || async {
        let queue = comfyui.queue_raw().await.ok()?;
        queue["queue_running"]
            .as_array()
            .is_some_and(|running| !running.is_empty())
            .then_some(())
    })
    .await;
}

/// One stateless MCP 2026-07-28 request to `addr` as raw HTTP/1.1 with
/// bearer `token` (none when empty): `method` with `params` (the caller sets their `_meta`),
/// `Mcp-Method` and `Mcp-Name: name` headers, and `headers` besides. The
/// answer's status line and its JSON-RPC message (the body's JSON, or the
/// SSE event carrying it; `Null` when there is none).
pub(crate) fn post_2026(
    addr: &str,
    token: &str,
    (method, name): (&str, &str),
    params: &Value,
    headers: &[(&str, &str)],
) -> (String, Value) {
    use std::io::{Read, Write};
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let auth = if token.is_empty() {
        String::new()
    } else {
        ["Authorization: Bearer ", token, "\r\n"].concat()
    };
    let extra = headers.iter().fold(auth, |mut out, (k, v)| {
        for part in [k, ": ", v, "\r\n"] {
            out.push_str(part);
        }
        out
    });
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: {method}\r\nMcp-Name: {name}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_mins(1))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, rest) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    // JSON (perhaps chunked), or one SSE event carrying it: the JSON-RPC
    // message is the one line holding `"jsonrpc"`.
    let message = rest
        .lines()
        .map(|l| l.strip_prefix("data:").unwrap_or(l).trim())
        .find(|l| l.starts_with('{') && l.contains("\"jsonrpc\""))
        .map_or(Value::Null, |l| serde_json::from_str(l).unwrap_or(Value::Null));
    (status, message)
}
