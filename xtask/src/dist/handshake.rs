//! The MCP check every packaged command must pass: started as an MCP client
//! would start it (standard streams piped, a fresh `HOME`, no config file),
//! it answers `initialize` and `tools/list` over stdio with the tools of the
//! catalog, and exits by itself when its standard input closes.
//!
//! Every read is bounded in time ([`WAIT`]) and the child is killed on
//! every path, so a server that hangs fails the check instead of stalling
//! CI.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// How long one answer, or the exit after standard input closes, may take.
const WAIT: Duration = Duration::from_secs(30);

/// Most pages of `tools/list` followed (a server that hands out cursors
/// forever fails the check).
const MAX_PAGES: usize = 20;

/// A started command; killed and reaped when dropped.
struct Running {
    child: Child,
    lines: Receiver<std::io::Result<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(program: &Path, home: &Path) -> Result<Self> {
        let mut child = Command::new(program)
            .env("HOME", home)
            .env("USERPROFILE", home)
            .env_remove("COMFYUI_MCP_CONFIG")
            .env_remove("COMFYUI_MCP_AUTH_TOKEN")
            .env("COMFYUI_URL", "http://127.0.0.1:9")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, lines })
    }

    fn send(&mut self, message: &Value) -> Result<()> {
        let stdin = self.child.stdin.as_mut().context("standard input already closed")?;
        writeln!(stdin, "{message}").context("writing to the server")?;
        stdin.flush().context("writing to the server")
    }

    /// The answer to request `id` (notifications and log messages before it
    /// are skipped).
    fn answer(&mut self, id: u64) -> Result<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line.context("reading from the server")?,
                Err(RecvTimeoutError::Timeout) => bail!("no answer to request {id} within {WAIT:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("the server closed its output before answering request {id}")
                }
            };
            let message: Value = serde_json::from_str(&line)
                .with_context(|| format!("the server wrote a line that is not JSON: {line:.200}"))?;
            if message["id"] != json!(id) {
                continue;
            }
            if let Some(error) = message.get("error") {
                bail!("request {id} failed: {error}");
            }
            return message
                .get("result")
                .cloned()
                .with_context(|| format!("answer to {id} without a result: {message}"));
        }
    }

    /// Closes standard input and waits for the server to exit by itself.
    fn finish(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the server exited with {status} after its input closed");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the server did not exit within {WAIT:?} of its input closing");
            }
            #[allow(clippy::disallowed_methods, reason = "a synchronous build tool polling its child")]
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `program` as an MCP stdio server: `initialize`, `initialized`,
/// `tools/list` (every page); returns `serverInfo` and the tool names.
pub(crate) fn tools(program: &Path, home: &Path) -> Result<(Value, Vec<String>)> {
    std::fs::create_dir_all(home)?;
    let mut server = Running::start(program, home)?;
    server.send(&json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "xtask-dist", "version": env!("CARGO_PKG_VERSION")}
        }
    }))?;
    let init = server.answer(1)?;
    let info = init
        .get("serverInfo")
        .cloned()
        .context("initialize answered without serverInfo")?;
    server.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
    let mut names = Vec::new();
    let mut cursor: Option<Value> = None;
    for page in 0..MAX_PAGES {
        let id = 2 + page as u64;
        let params = cursor.take().map_or_else(|| json!({}), |c| json!({"cursor": c}));
        server.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params}))?;
        let result = server.answer(id)?;
        let tools = result["tools"]
            .as_array()
            .context("tools/list answered without a tools array")?;
        for tool in tools {
            names.push(tool["name"].as_str().context("a tool without a name")?.to_owned());
        }
        match result.get("nextCursor") {
            Some(next) if !next.is_null() => cursor = Some(next.clone()),
            _ => {
                server.finish()?;
                return Ok((info, names));
            }
        }
    }
    bail!("tools/list still had more pages after {MAX_PAGES}")
}

/// The handshake with `program`, whose tools must be exactly `catalog`
/// and whose `serverInfo.version` must be `version`; prints one line.
pub(crate) fn check(what: &str, program: &Path, home: &Path, catalog: &[String], version: &str) -> Result<()> {
    let start = Instant::now();
    let (info, mut names) = tools(program, home).with_context(|| format!("{what}: {}", program.display()))?;
    if info["version"] != json!(version) {
        bail!("{what}: serverInfo {info} does not carry version {version}");
    }
    names.sort();
    let mut expected = catalog.to_vec();
    expected.sort();
    if names != expected {
        let missing: Vec<&String> = expected.iter().filter(|n| !names.contains(n)).collect();
        let extra: Vec<&String> = names.iter().filter(|n| !expected.contains(n)).collect();
        bail!("{what}: tools/list differs from the catalog (missing {missing:?}, not in the catalog {extra:?})");
    }
    eprintln!(
        "<== {what}: initialize and tools/list ({} tools) over stdio in {:.2}s",
        names.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
