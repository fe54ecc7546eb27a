//! One MCP server process over stdio, driven with raw JSON-RPC lines, and
//! what `/proc` says about its memory.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// One server over stdio, driven with raw JSON-RPC lines. Answers are read
/// on the calling thread (a reader thread would add a thread hand-off to
/// every measured call, for the peer as for us); a watchdog kills a server
/// that leaves a request unanswered for two minutes, which ends the read.
pub(crate) struct McpProcess {
    child: Arc<Mutex<Child>>,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// When the current wait gives up, in milliseconds since `epoch`
    /// (0: not waiting); read by the watchdog.
    deadline: Arc<AtomicU64>,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    pid: u32,
    pub(crate) next: u64,
}

impl Drop for McpProcess {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl McpProcess {
    pub(crate) fn spawn(bin: &Path, home: &Path, sim: &str) -> Result<Self> {
        let mut child = Command::new(bin)
            .env("HOME", home)
            .env("COMFYUI_URL", sim)
            // Where PyPI `comfy-mcp`, one of the other servers measured,
            // looks for ComfyUI.
            .env("COMFY_LOCAL_URL", sim)
            .env_remove("COMFYUI_MCP_CONFIG")
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let pid = child.id();
        let child = Arc::new(Mutex::new(child));
        let (deadline, stop, epoch) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
            Instant::now(),
        );
        {
            let (child, deadline, stop) = (Arc::clone(&child), Arc::clone(&deadline), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::park_timeout(Duration::from_millis(500));
                    let due = deadline.load(Ordering::Relaxed);
                    let now = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
                    if due != 0 && now > due {
                        if let Ok(mut child) = child.lock() {
                            let _ = child.kill();
                        }
                        return;
                    }
                }
            });
        }
        Ok(Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            deadline,
            epoch,
            stop,
            pid,
            next: 1,
        })
    }

    /// The next line from the server, or an error once the watchdog has
    /// stopped a server that did not answer in two minutes.
    pub(crate) fn read_line(&mut self, waiting_for: &str) -> Result<String> {
        let due = self.epoch.elapsed() + Duration::from_mins(2);
        self.deadline
            .store(u64::try_from(due.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
        let mut line = String::new();
        let read = self.stdout.read_line(&mut line);
        self.deadline.store(0, Ordering::Relaxed);
        match read {
            Ok(0) => {
                bail!("no answer to {waiting_for} (the server closed its output or was stopped after two minutes)")
            }
            Ok(_) => Ok(line),
            Err(e) => bail!("no answer to {waiting_for}: {e}"),
        }
    }

    pub(crate) fn send(&mut self, msg: &Value) -> Result<()> {
        let mut line = msg.to_string();
        line.push('\n');
        self.send_line(&line)
    }

    pub(crate) fn send_line(&mut self, line: &str) -> Result<()> {
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.flush()?;
        Ok(())
    }

    /// A `tools/call` request as its line, serialised ahead of time so a
    /// large argument's encoding is not timed as the server's.
    pub(crate) fn call_line(&mut self, tool: &str, args: &Value) -> (u64, String) {
        let id = self.next;
        self.next += 1;
        let msg =
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}});
        (id, format!("{msg}\n"))
    }

    /// Sends a line from [`McpProcess::call_line`] and waits for its answer.
    pub(crate) fn request_line(&mut self, id: u64, line: &str) -> Result<Value> {
        self.send_line(line)?;
        self.answer(id, "tools/call", &mut |_, _| {})
    }

    /// Sends a request and waits for its answer, skipping notifications;
    /// `on_note` sees each notification with its arrival time.
    pub(crate) fn request_with(
        &mut self,
        method: &str,
        params: &Value,
        on_note: &mut dyn FnMut(&Value, Instant),
    ) -> Result<Value> {
        let id = self.next;
        self.next += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        self.answer(id, method, on_note)
    }

    /// The result of request `id`; `on_note` sees what arrives before it.
    pub(crate) fn answer(&mut self, id: u64, method: &str, on_note: &mut dyn FnMut(&Value, Instant)) -> Result<Value> {
        loop {
            let line = self.read_line(method)?;
            let at = Instant::now();
            let v: Value = serde_json::from_str(&line).with_context(|| format!("stdout is not JSON: {line}"))?;
            if v.get("id") == Some(&json!(id)) {
                if let Some(e) = v.get("error") {
                    bail!("{method} failed: {e}");
                }
                return Ok(v["result"].clone());
            }
            on_note(&v, at);
        }
    }

    pub(crate) fn request(&mut self, method: &str, params: &Value) -> Result<Value> {
        self.request_with(method, params, &mut |_, _| {})
    }

    pub(crate) fn initialize(&mut self) -> Result<()> {
        self.request(
            "initialize",
            &json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "comfy-bench", "version": "0"}}),
        )?;
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    }

    pub(crate) fn call(&mut self, tool: &str, args: &Value) -> Result<Value> {
        let r = self.request("tools/call", &json!({"name": tool, "arguments": args}))?;
        if r["isError"] == json!(true) {
            bail!("{tool} failed: {}", r["content"][0]["text"]);
        }
        Ok(r)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }
}

/// A field of `/proc/<pid>/status`, in KiB.
pub(crate) fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
