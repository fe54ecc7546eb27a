//! `comfy-bench`: measures the real `comfy-mcp` binary against comfy-sim,
//! the way a user meets it: a process started by an MCP client over stdio
//! (or reached over Streamable HTTP), with the default audit log on.
//!
//! `cargo xtask bench` builds both in release mode and runs this; it prints a
//! table and, with `--write FILE`, replaces the block between
//! `<!-- bench:begin -->` and `<!-- bench:end -->` in `FILE` (the
//! performance doc) with the table, the machine, the date and the commit.
//! With `--peer BIN` the same workloads run against the peer (the Python
//! server, which `cargo xtask bench` installs when a CPython ≥ 3.12 is on
//! the machine) in the same run, for its column; without it the column
//! shows the peer's recorded figures and says so. `--quick` runs fewer
//! iterations; `--check BASELINE` fails
//! when a figure is more than 5 times worse than the baseline's, a ratio, so
//! a noisy machine does not fail a build.
//!
//! The driver is deliberately thin: raw JSON-RPC lines over the child's
//! pipes, so what is measured is the server, not a client library.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The raised rate limits (the peer's throughput runs raised them too).
const CONFIG: &str =
    "rate_limits:\n  workflow: 1000000\n  generation: 1000000\n  file_ops: 1000000\n  read_only: 1000000\n";

/// One server over stdio, driven with raw JSON-RPC lines. Answers are read
/// on the calling thread (a reader thread would add a thread hand-off to
/// every measured call, for the peer as for us); a watchdog kills a server
/// that leaves a request unanswered for two minutes, which ends the read.
struct McpProcess {
    child: Arc<Mutex<Child>>,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// When the current wait gives up, in milliseconds since `epoch`
    /// (0: not waiting); read by the watchdog.
    deadline: Arc<AtomicU64>,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    pid: u32,
    next: u64,
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
    fn spawn(bin: &Path, home: &Path, sim: &str) -> Result<Self> {
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
    fn read_line(&mut self, waiting_for: &str) -> Result<String> {
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

    fn send(&mut self, msg: &Value) -> Result<()> {
        let mut line = msg.to_string();
        line.push('\n');
        self.send_line(&line)
    }

    fn send_line(&mut self, line: &str) -> Result<()> {
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.flush()?;
        Ok(())
    }

    /// A `tools/call` request as its line, serialised ahead of time so a
    /// large argument's encoding is not timed as the server's.
    fn call_line(&mut self, tool: &str, args: &Value) -> (u64, String) {
        let id = self.next;
        self.next += 1;
        let msg =
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}});
        (id, format!("{msg}\n"))
    }

    /// Sends a line from [`McpProcess::call_line`] and waits for its answer.
    fn request_line(&mut self, id: u64, line: &str) -> Result<Value> {
        self.send_line(line)?;
        self.answer(id, "tools/call", &mut |_, _| {})
    }

    /// Sends a request and waits for its answer, skipping notifications;
    /// `on_note` sees each notification with its arrival time.
    fn request_with(
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
    fn answer(&mut self, id: u64, method: &str, on_note: &mut dyn FnMut(&Value, Instant)) -> Result<Value> {
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

    fn request(&mut self, method: &str, params: &Value) -> Result<Value> {
        self.request_with(method, params, &mut |_, _| {})
    }

    fn initialize(&mut self) -> Result<()> {
        self.request(
            "initialize",
            &json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "comfy-bench", "version": "0"}}),
        )?;
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    }

    fn call(&mut self, tool: &str, args: &Value) -> Result<Value> {
        let r = self.request("tools/call", &json!({"name": tool, "arguments": args}))?;
        if r["isError"] == json!(true) {
            bail!("{tool} failed: {}", r["content"][0]["text"]);
        }
        Ok(r)
    }

    fn pid(&self) -> u32 {
        self.pid
    }
}

/// A field of `/proc/<pid>/status`, in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Median and 99th percentile of `xs` (sorted in place).
fn stats(xs: &mut [f64]) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let at = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "an index into a short list"
        )]
        let i = ((xs.len() - 1) as f64 * q).round() as usize;
        xs[i]
    };
    (at(0.5), at(0.99))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One measured figure.
struct Figure {
    key: &'static str,
    what: String,
    value: f64,
    unit: &'static str,
    /// Larger is better (throughput) rather than smaller (time, memory).
    higher_better: bool,
    detail: String,
    peer: Option<f64>,
    target: &'static str,
}

/// A workflow of `n` nodes shaped like the peer's measurement: a loader and
/// a chain of text encoders, each with its own text, ending in a save.
fn workflow(n: usize) -> String {
    let mut nodes = serde_json::Map::new();
    nodes.insert(
        "1".into(),
        json!({"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}}),
    );
    for i in 2..n {
        nodes.insert(
            i.to_string(),
            json!({"class_type": "CLIPTextEncode", "inputs": {"text": format!("a lighthouse, detail {i}"), "clip": ["1", 1]}}),
        );
    }
    nodes.insert(
        n.to_string(),
        json!({"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}),
    );
    nodes.insert(
        (n + 1).to_string(),
        json!({"class_type": "SaveImage", "inputs": {"images": [n.to_string(), 0], "filename_prefix": "bench"}}),
    );
    Value::Object(nodes).to_string()
}

/// A 4096×4096 PNG of noise (so it does not compress away), in `dir`.
fn big_png(dir: &Path) -> Result<u64> {
    let side = 4096u32;
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut px = vec![0u8; (side * side * 3) as usize];
    for b in &mut px {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = (state >> 24) as u8;
    }
    let path = dir.join("bench_4096.png");
    let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        file,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::NoFilter,
    );
    image::ImageEncoder::write_image(encoder, &px, side, side, image::ExtendedColorType::Rgb8)?;
    Ok(std::fs::metadata(&path)?.len())
}

/// A hostile PNG in `dir`: 2 MiB on disk whose header claims an
/// interlaced 16384×16384 RGB image (768 MiB of pixels once decoded), the
/// kind that took the server to 833 MB before decodes had a budget.
fn hostile_png(dir: &Path) -> Result<u64> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) -> Result<()> {
        out.extend_from_slice(&u32::try_from(data.len())?.to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
        Ok(())
    }
    let side = 16_384u32;
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 1]);
    chunk(&mut out, b"IHDR", &ihdr)?;
    // 2 MiB, as the real ones are (of compressed zeros): over the inline
    // budget, so the server must look inside it.
    let mut comment = b"Comment\0".to_vec();
    comment.resize(2 << 20, b'x');
    chunk(&mut out, b"tEXt", &comment)?;
    chunk(&mut out, b"IDAT", &[0x78, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])?;
    chunk(&mut out, b"IEND", &[])?;
    let path = dir.join("bench_hostile.png");
    std::fs::write(&path, &out)?;
    Ok(out.len() as u64)
}

/// A plain HTTP GET to the simulator; the body as JSON.
fn sim_get(sim: &str, path: &str) -> Result<Value> {
    let addr = sim.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let body = text.split("\r\n\r\n").nth(1).context("no body")?;
    Ok(serde_json::from_str(body)?)
}

/// One stateless (2026-07-28) `tools/call` over HTTP; whether it succeeded.
fn http_call(addr: &str, tool: &str) -> bool {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
    .to_string();
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: {tool}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.starts_with("HTTP/1.1 200") && text.contains("\"result\"") && !text.contains("\"isError\":true")
}

/// Starts `bin` with the Streamable HTTP transport (its config in
/// `home`), and returns it with the address it listens on.
fn spawn_http(bin: &Path, home: &Path, comfyui_url: Option<&str>) -> Result<(Child, String)> {
    let mut cmd = Command::new(bin);
    cmd.env("HOME", home)
        .env_remove("COMFYUI_MCP_CONFIG")
        .env_remove("COMFYUI_MCP_AUTH_TOKEN")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match comfyui_url {
        Some(url) => cmd.env("COMFYUI_URL", url),
        None => cmd.env_remove("COMFYUI_URL"),
    };
    let mut child = cmd.spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().context("the server exited")??;
        if let Some(rest) = line.split("Streamable HTTP at http://").nth(1) {
            break rest.split('/').next().unwrap_or_default().to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Ok((child, addr))
}

/// `clients` threads of `per_client` `comfyui_get_queue` calls each, client
/// i on `addrs[i % n]` (a load balancer's round robin): the calls that
/// succeeded and how long all took.
fn hammer(addrs: &[String], clients: usize, per_client: usize) -> (usize, Duration) {
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|i| {
            let addr = addrs[i % addrs.len()].clone();
            std::thread::spawn(move || {
                (0..per_client)
                    .filter(|_| http_call(&addr, "comfyui_get_queue"))
                    .count()
            })
        })
        .collect();
    let ok = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    (ok, started.elapsed())
}

struct Bench {
    bin: PathBuf,
    /// Measuring the peer (fewer runs of its slow cases, no HTTP).
    peer: bool,
    sim: String,
    sim_dir: PathBuf,
    quick: bool,
    figures: Vec<Figure>,
}

impl Bench {
    fn home(config: &str) -> Result<tempdir::Dir> {
        let dir = tempdir::Dir::new()?;
        std::fs::create_dir_all(dir.path().join(".comfyui-mcp"))?;
        std::fs::write(dir.path().join(".comfyui-mcp/config.yaml"), config)?;
        Ok(dir)
    }

    fn session(&self, home: &Path) -> Result<McpProcess> {
        let mut s = McpProcess::spawn(&self.bin, home, &self.sim)?;
        s.initialize()?;
        Ok(s)
    }

    fn n(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }

    #[allow(clippy::too_many_arguments, reason = "one table row")]
    fn push(
        &mut self,
        key: &'static str,
        what: String,
        value: f64,
        unit: &'static str,
        higher_better: bool,
        detail: String,
        peer: Option<f64>,
        target: &'static str,
    ) {
        eprintln!("  {what}: {value:.3} {unit} ({detail})");
        self.figures.push(Figure {
            key,
            what,
            value,
            unit,
            higher_better,
            detail,
            peer,
            target,
        });
    }

    fn startup(&mut self) -> Result<()> {
        let runs = self.n(30, 8);
        let home = Self::home(CONFIG)?;
        let mut times = Vec::new();
        let mut rss = Vec::new();
        for _ in 0..=runs {
            let (took, tools, mib) = start_once(&self.bin, home.path(), &self.sim)?;
            if tools < 50 {
                bail!("tools/list answered {tools} tools");
            }
            times.push(took);
            rss.push(mib);
        }
        times.remove(0); // the warm-up run
        rss.remove(0);
        let (t50, t99) = stats(&mut times);
        let (r50, _) = stats(&mut rss);
        self.push(
            "startup_ms",
            "start-up: spawn → initialize → tools/list answer".into(),
            t50,
            "ms",
            false,
            format!("median of {runs}, p99 {t99:.2} ms"),
            Some(2710.0),
            "< 10 ms",
        );
        self.push(
            "rss_start_mib",
            "resident memory 0.3 s after start".into(),
            r50,
            "MiB",
            false,
            format!("median of {runs}"),
            Some(99.9),
            "< 10 MiB",
        );
        Ok(())
    }

    /// Sequential calls of one tool: calls per second and latency.
    fn throughput(
        &mut self,
        key: &'static str,
        tool: &str,
        args: &Value,
        n: usize,
        peer: Option<f64>,
        target: &'static str,
    ) -> Result<()> {
        let home = Self::home(CONFIG)?;
        let mut s = self.session(home.path())?;
        for _ in 0..20 {
            s.call(tool, args)?;
        }
        let mut lat = Vec::with_capacity(n);
        let started = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            s.call(tool, args)?;
            lat.push(ms(t.elapsed()));
        }
        #[allow(clippy::cast_precision_loss, reason = "call counts")]
        let rate = n as f64 / started.elapsed().as_secs_f64();
        let (l50, l99) = stats(&mut lat);
        self.push(
            key,
            format!("`{tool}` calls per second, one stdio session"),
            rate,
            "calls/s",
            true,
            format!("{n} calls, latency median {l50:.3} ms, p99 {l99:.3} ms"),
            peer,
            target,
        );
        Ok(())
    }

    fn memory_after_calls(&mut self) -> Result<()> {
        let home = Self::home(CONFIG)?;
        let mut s = self.session(home.path())?;
        let calls: [(&str, Value); 5] = [
            ("comfyui_get_prompting_guide", json!({"model_family": "sdxl"})),
            (
                "comfyui_create_workflow",
                json!({"template": "txt2img", "params": "{\"prompt\": \"a cat\"}"}),
            ),
            ("comfyui_get_queue", json!({})),
            ("comfyui_list_models", json!({"folder": "checkpoints"})),
            ("comfyui_list_nodes", json!({"limit": 10})),
        ];
        for i in 0..1000 {
            let (tool, args) = &calls[i % calls.len()];
            s.call(tool, args)?;
        }
        #[allow(clippy::cast_precision_loss, reason = "KiB counts")]
        let rss = proc_kib(s.pid(), "VmRSS:") as f64 / 1024.0;
        self.push(
            "rss_after_mib",
            "resident memory after 1,000 mixed calls".into(),
            rss,
            "MiB",
            false,
            "guide, create_workflow, get_queue, list_models, list_nodes".into(),
            Some(99.6),
            "",
        );
        Ok(())
    }

    fn concurrent_http(&mut self) -> Result<()> {
        if self.peer {
            return Ok(());
        }
        let home = Self::home(&format!(
            "{CONFIG}transport:\n  remote:\n    enabled: true\n    port: 0\n"
        ))?;
        let (mut child, addr) = spawn_http(&self.bin, home.path(), Some(&self.sim))?;
        let per_client = self.n(200, 40);
        let clients = 16;
        let (ok, took) = hammer(&[addr], clients, per_client);
        let _ = child.kill();
        let _ = child.wait();
        if ok != clients * per_client {
            bail!(
                "{} of {} HTTP calls failed",
                clients * per_client - ok,
                clients * per_client
            );
        }
        #[allow(clippy::cast_precision_loss, reason = "call counts")]
        let rate = ok as f64 / took.as_secs_f64();
        self.push(
            "http16_calls_s",
            "`comfyui_get_queue` per second, 16 concurrent HTTP clients".into(),
            rate,
            "calls/s",
            true,
            format!("{ok} calls, a new connection each, stateless 2026-07-28"),
            None,
            "",
        );
        Ok(())
    }

    fn validation(&mut self) -> Result<()> {
        let home = Self::home(CONFIG)?;
        let mut s = self.session(home.path())?;
        for (key, n, peer) in [
            ("validate_1k_ms", 1_000, Some(116.0)),
            ("validate_10k_ms", 10_000, Some(6238.0)),
            ("validate_100k_ms", 100_000, None),
        ] {
            let doc = workflow(n);
            let args = json!({"workflow": doc});
            if self.peer && n > 10_000 {
                continue;
            }
            let runs = if self.peer { 3 } else { self.n(7, 3) };
            let mut times = Vec::new();
            let mut verdict = String::new();
            for _ in 0..runs {
                let (id, line) = s.call_line("comfyui_validate_workflow", &args);
                let t = Instant::now();
                let r = s.request_line(id, &line)?;
                times.push(ms(t.elapsed()));
                verdict = if r["isError"] == json!(true) {
                    format!(
                        "refused: {}",
                        r["content"][0]["text"]
                            .as_str()
                            .unwrap_or_default()
                            .chars()
                            .take(90)
                            .collect::<String>()
                    )
                } else {
                    format!("valid: {}", r["structuredContent"]["valid"])
                };
            }
            let (t50, _) = stats(&mut times);
            let target = if n == 10_000 { "< 10 ms" } else { "" };
            self.push(
                key,
                format!(
                    "`comfyui_validate_workflow`, {n} nodes ({} KiB of JSON)",
                    doc.len() >> 10
                ),
                t50,
                "ms",
                false,
                format!("median of {runs}; {verdict}"),
                peer,
                target,
            );
        }
        Ok(())
    }

    fn generation(&mut self) -> Result<()> {
        let home = Self::home(CONFIG)?;
        let mut s = self.session(home.path())?;
        let runs = self.n(5, 2);
        let mut overheads = Vec::new();
        let mut latencies = Vec::new();
        let mut walls = Vec::new();
        for run in 0..runs {
            // A new seed each time, so ComfyUI's cache never answers.
            let seed = 1000 + run + usize::from(self.peer) * 100;
            let t = Instant::now();
            let mut notes: Vec<Instant> = Vec::new();
            let r = s.request_with(
                "tools/call",
                &json!({"name": "comfyui_generate_image", "arguments": {"prompt": "bench", "steps": 20, "wait": true, "seed": seed},
                       "_meta": {"progressToken": 1}}),
                &mut |v, at| {
                    if v["method"] == "notifications/progress" {
                        notes.push(at);
                    }
                },
            )?;
            let wall = t.elapsed();
            let id = r["structuredContent"]["prompt_id"]
                .as_str()
                .context("no prompt id")?
                .to_owned();
            let history = sim_get(&self.sim, &format!("/history/{id}"))?;
            let messages = history[&id]["status"]["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let stamp = |kind: &str| {
                messages
                    .iter()
                    .find(|m| m[0] == kind)
                    .and_then(|m| m[1]["timestamp"].as_f64())
            };
            let (Some(start), Some(end)) = (stamp("execution_start"), stamp("execution_success")) else {
                bail!("no execution timestamps in the history of {id}");
            };
            let job = end - start;
            overheads.push((ms(wall) - job) / ms(wall) * 100.0);
            walls.push(ms(wall));
            // The simulator emits one progress message per step, evenly
            // spaced; the gap between the notifications' arrival and that
            // schedule bounds the forwarding latency from above.
            if notes.len() >= 2 {
                #[allow(clippy::cast_precision_loss, reason = "a few steps")]
                let step = job / notes.len() as f64;
                let first = notes[0];
                for (i, at) in notes.iter().enumerate() {
                    #[allow(clippy::cast_precision_loss, reason = "a few steps")]
                    let expected = step * i as f64;
                    latencies.push((ms(at.duration_since(first)) - expected).abs());
                }
            }
        }
        let (o50, _) = stats(&mut overheads);
        let (w50, _) = stats(&mut walls);
        let (l50, l99) = stats(&mut latencies);
        self.push(
            "gen_overhead_pct",
            "MCP overhead on a simulated generation (wait=true, 20 steps)".into(),
            o50,
            "% of wall time",
            false,
            format!("median of {runs}, wall {w50:.0} ms"),
            None,
            "< 1 %",
        );
        self.push(
            "progress_jitter_ms",
            "progress notifications against the simulator's step schedule".into(),
            l50,
            "ms",
            false,
            format!("median deviation, p99 {l99:.1} ms (an upper bound on forwarding latency)"),
            None,
            "",
        );
        Ok(())
    }

    fn get_image(&mut self) -> Result<()> {
        let size = big_png(&self.sim_dir.join("output"))?;
        let home = Self::home(CONFIG)?;
        let mut s = self.session(home.path())?;
        s.call("comfyui_get_queue", &json!({}))?;
        let before = proc_kib(s.pid(), "VmHWM:");
        let t = Instant::now();
        let r = s.call("comfyui_get_image", &json!({"filename": "bench_4096.png"}))?;
        let took = ms(t.elapsed());
        let after = proc_kib(s.pid(), "VmHWM:");
        let kinds: Vec<&str> = r["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["type"].as_str())
            .collect();
        #[allow(clippy::cast_precision_loss, reason = "byte counts")]
        let ratio = (after.saturating_sub(before) * 1024) as f64 / size as f64;
        self.push(
            "get_image_ms",
            format!("`comfyui_get_image` of a 4096×4096 PNG ({} MiB)", size >> 20),
            took,
            "ms",
            false,
            format!("result: {}", kinds.join(" + ")),
            None,
            "",
        );
        self.push(
            "get_image_peak_ratio",
            "peak memory growth returning it, as a multiple of the image's size".into(),
            ratio,
            "× image size",
            false,
            format!("VmHWM {before} → {after} KiB"),
            None,
            "< 2×",
        );
        Ok(())
    }

    /// Eight `comfyui_get_image` calls of a hostile image in flight at
    /// once (sent together over one stdio session): the server's peak
    /// memory growth, which the image memory budget bounds.
    fn hostile_images(&mut self) -> Result<()> {
        const CALLS: u64 = 8;
        if self.peer {
            // The row is about our budget; the peer has none to show, and
            // eight unbounded decodes could take this machine's memory.
            return Ok(());
        }
        hostile_png(&self.sim_dir.join("output"))?;
        let home = Self::home(CONFIG)?;
        let mut s = self.session(home.path())?;
        s.call("comfyui_get_queue", &json!({}))?;
        let before = proc_kib(s.pid(), "VmHWM:");
        let first = s.next;
        s.next += CALLS;
        for id in first..first + CALLS {
            s.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
                "name": "comfyui_get_image", "arguments": {"filename": "bench_hostile.png"}}}))?;
        }
        let (mut answered, mut refused) = (0, 0);
        while answered < CALLS {
            let line = s.read_line("comfyui_get_image")?;
            let v: Value = serde_json::from_str(&line).with_context(|| format!("stdout is not JSON: {line}"))?;
            let Some(id) = v.get("id").and_then(Value::as_u64) else {
                continue;
            };
            if !(first..first + CALLS).contains(&id) {
                continue;
            }
            answered += 1;
            if v["result"]["isError"] == json!(true) || v.get("error").is_some() {
                refused += 1;
            }
        }
        let after = proc_kib(s.pid(), "VmHWM:");
        #[allow(clippy::cast_precision_loss, reason = "KiB counts")]
        let grown = after.saturating_sub(before) as f64 / 1024.0;
        self.push(
            "hostile_images_peak_mib",
            "peak memory growth with eight concurrent `comfyui_get_image` of a hostile PNG (interlaced 16384×16384, 768 MiB decoded)".into(),
            grown,
            "MiB",
            false,
            format!("{refused} of {CALLS} refused over the image budget; VmHWM {before} → {after} KiB"),
            None,
            "bounded by `server.image_memory_mb`",
        );
        Ok(())
    }

    fn binary_size(&mut self) -> Result<()> {
        // The peer's footprint is its virtualenv (the command is in its bin/).
        let bytes = if self.peer {
            let venv = self
                .bin
                .parent()
                .and_then(Path::parent)
                .context("the peer's virtualenv")?;
            dir_size(venv)
        } else {
            std::fs::metadata(&self.bin)?.len()
        };
        #[allow(clippy::cast_precision_loss, reason = "byte counts")]
        let mib = bytes as f64 / (1024.0 * 1024.0);
        self.push(
            "binary_mib",
            "install footprint: the release binary (the peer: its virtualenv)".into(),
            mib,
            "MiB",
            false,
            "stripped, fat LTO, one codegen unit (profile.release)".into(),
            Some(137.0),
            "< 15 MB",
        );
        Ok(())
    }
}

/// Starts `bin`, initialises it and lists its tools: the milliseconds that
/// took, how many tools, and the resident MiB 0.3 s later (when the peer's
/// recorded figure was read).
fn start_once(bin: &Path, home: &Path, sim: &str) -> Result<(f64, usize, f64)> {
    let started = Instant::now();
    let mut s = McpProcess::spawn(bin, home, sim)?;
    s.initialize()?;
    let tools = s.request("tools/list", &json!({}))?;
    let took = ms(started.elapsed());
    #[allow(
        clippy::disallowed_methods,
        reason = "a synchronous driver waiting on another process"
    )]
    std::thread::sleep(Duration::from_millis(300));
    #[allow(clippy::cast_precision_loss, reason = "KiB counts")]
    let mib = proc_kib(s.pid(), "VmRSS:") as f64 / 1024.0;
    Ok((took, tools["tools"].as_array().map_or(0, Vec::len), mib))
}

/// Start-up, memory after start and install footprint of other ComfyUI MCP
/// servers a user might pick instead, each given as `NAME|COMMAND|DIR`
/// (`DIR` is what installing it took: its virtualenv or `node_modules`),
/// or `NAME|skipped: REASON` when it could not be installed here; the
/// Markdown table that compares them with ours.
fn other_servers(others: &[String], ours: &Bench, quick: bool) -> Result<String> {
    let value = |key: &str| ours.figures.iter().find(|f| f.key == key).map(|f| f.value);
    let (our_start, our_rss, our_size) = (value("startup_ms"), value("rss_start_mib"), value("binary_mib"));
    let mut rows = String::from(
        "\nOther ComfyUI MCP servers a user might pick instead, measured in the same run with the same driver (spawn → `initialize` → `tools/list`; resident memory 0.3 s later; what installing it put on disk), against the same simulator:\n\n| server | start-up | resident after start | install footprint | our start-up is |\n|---|---|---|---|---|\n",
    );
    let mut fastest: Option<f64> = None;
    for spec in others {
        let mut parts = spec.splitn(3, '|');
        let name = parts.next().unwrap_or_default();
        let (Some(command), Some(dir)) = (parts.next(), parts.next()) else {
            let why = spec.split_once('|').map_or("not installed", |(_, why)| why);
            let _ = writeln!(rows, "| {name} | – | – | – | {why} |");
            continue;
        };
        eprintln!("bench: {name}");
        let runs = if quick { 3 } else { 10 };
        let home = Bench::home(CONFIG)?;
        let (mut times, mut rss) = (Vec::new(), Vec::new());
        for _ in 0..=runs {
            let (took, tools, mib) = start_once(Path::new(command), home.path(), &ours.sim)?;
            if tools == 0 {
                bail!("{name}: tools/list answered no tools");
            }
            times.push(took);
            rss.push(mib);
        }
        times.remove(0); // the warm-up run
        rss.remove(0);
        let ((t50, _), (r50, _)) = (stats(&mut times), stats(&mut rss));
        #[allow(clippy::cast_precision_loss, reason = "byte counts")]
        let size = dir_size(Path::new(dir)) as f64 / (1024.0 * 1024.0);
        fastest = Some(fastest.map_or(t50, |f: f64| f.min(t50)));
        let versus = our_start.map_or_else(|| "–".to_owned(), |o| format!("{:.0}× faster", t50 / o));
        let _ = writeln!(
            rows,
            "| {name} | {t50:.0} ms (median of {runs}) | {r50:.1} MiB | {size:.1} MiB | {versus} |"
        );
    }
    let _ = writeln!(
        rows,
        "| ours (above) | {} | {} | {} | |",
        our_start.map_or_else(|| "–".to_owned(), |v| format!("{v:.1} ms")),
        our_rss.map_or_else(|| "–".to_owned(), |v| format!("{v:.1} MiB")),
        our_size.map_or_else(|| "–".to_owned(), |v| format!("{v:.1} MiB")),
    );
    if let (Some(f), Some(o)) = (fastest, our_start) {
        let _ = writeln!(
            rows,
            "\nAgainst the fastest of them our start-up is {:.0}× faster (target: ≥ 60×).",
            f / o
        );
    }
    Ok(rows)
}

/// Bytes in the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// A temporary directory removed on drop (std only).
mod tempdir {
    use std::path::{Path, PathBuf};

    pub(crate) struct Dir(PathBuf);

    impl Dir {
        pub(crate) fn new() -> std::io::Result<Self> {
            let path = std::env::temp_dir().join(format!(
                "comfy-bench-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ));
            std::fs::create_dir_all(&path)?;
            Ok(Self(path))
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The Markdown table of a run.
fn table(figures: &[Figure], quick: bool, peer_measured: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| figure | ours | peer ({}) | ratio | target | notes |\n|---|---|---|---|---|---|",
        if peer_measured { "this run" } else { "recorded" }
    );
    for f in figures {
        let peer = f.peer.map_or_else(|| "–".to_owned(), |p| format!("{p:.3}"));
        let ratio = f.peer.map_or_else(
            || "–".to_owned(),
            |p| {
                let r = if f.higher_better { f.value / p } else { p / f.value };
                format!("{r:.0}× better")
            },
        );
        let _ = writeln!(
            out,
            "| {} | {:.3} {} | {} | {} | {} | {} |",
            f.what,
            f.value,
            f.unit,
            peer,
            ratio,
            if f.target.is_empty() { "–" } else { f.target },
            f.detail
        );
    }
    if quick {
        out.push_str("\n(quick run: fewer iterations)\n");
    }
    out
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |k| k >> 20);
    format!("{cores} cores, {cpu}, {mem} GiB")
}

fn replace_block(file: &Path, block: &str) -> Result<()> {
    let text = std::fs::read_to_string(file)?;
    let (begin, end) = ("<!-- bench:begin -->", "<!-- bench:end -->");
    let (Some(a), Some(b)) = (text.find(begin), text.find(end)) else {
        bail!("{} has no {begin} … {end} block", file.display());
    };
    let new = format!("{}{begin}\n{block}{}", &text[..a], &text[b..]);
    std::fs::write(file, new)?;
    Ok(())
}

/// Fails when a figure is more than 5 times worse than the baseline's.
fn check(figures: &[Figure], baseline: &Path) -> Result<()> {
    let base: BTreeMap<String, f64> = serde_json::from_str(&std::fs::read_to_string(baseline)?)?;
    let mut bad = Vec::new();
    for f in figures {
        let Some(&b) = base.get(f.key) else { continue };
        let worse = if f.higher_better { b / f.value } else { f.value / b };
        if worse > 5.0 {
            bad.push(format!(
                "{}: {:.3} {} against a baseline of {b:.3} ({worse:.1}× worse)",
                f.key, f.value, f.unit
            ));
        }
    }
    if !bad.is_empty() {
        bail!("gross regressions:\n  {}", bad.join("\n  "));
    }
    eprintln!("bench: no figure is more than 5× worse than {}", baseline.display());
    Ok(())
}

/// Every measurement, in the table's order.
fn run_suite(b: &mut Bench) -> Result<()> {
    // A workload the peer cannot do is reported and skipped, not fatal.
    fn attempt(peer: bool, r: Result<()>) -> Result<()> {
        match r {
            Err(e) if peer => {
                eprintln!("  (the peer: {e:#})");
                Ok(())
            }
            other => other,
        }
    }
    let r = b.startup();
    attempt(b.peer, r)?;
    let n = b.n(3000, 600);
    let r = b.throughput(
        "guide_calls_s",
        "comfyui_get_prompting_guide",
        &json!({"model_family": "sdxl"}),
        n,
        Some(122.8),
        "≥ 50× the peer",
    );
    attempt(b.peer, r)?;
    let r = b.throughput(
        "create_calls_s",
        "comfyui_create_workflow",
        &json!({"template": "txt2img", "params": "{\"prompt\": \"a cat\"}"}),
        n,
        Some(112.5),
        "≥ 50× the peer",
    );
    attempt(b.peer, r)?;
    let r = b.throughput(
        "queue_calls_s",
        "comfyui_get_queue",
        &json!({}),
        b.n(2000, 400),
        None,
        "",
    );
    attempt(b.peer, r)?;
    let r = b.throughput(
        "models_calls_s",
        "comfyui_list_models",
        &json!({"folder": "checkpoints"}),
        b.n(2000, 400),
        None,
        "",
    );
    attempt(b.peer, r)?;
    let r = b.memory_after_calls();
    attempt(b.peer, r)?;
    let r = b.concurrent_http();
    attempt(b.peer, r)?;
    let r = b.validation();
    attempt(b.peer, r)?;
    let r = b.generation();
    attempt(b.peer, r)?;
    let r = b.get_image();
    attempt(b.peer, r)?;
    let r = b.hostile_images();
    attempt(b.peer, r)?;
    let r = b.binary_size();
    attempt(b.peer, r)?;
    Ok(())
}

/// `--scale`: calls per second through 1, 2 and 4 replicas over HTTP,
/// sharing a real `redis-server`, in front of two simulators; a Markdown
/// table for `docs/scaling.md`.
fn scale(bin: &Path, rt: &tokio::runtime::Runtime, quick: bool) -> Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let redis = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("redis-server (apt-get install redis-server)")?;
    // Stopped however this function ends.
    let redis = Reap(redis);
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
    }
    if !up {
        bail!("redis-server did not start");
    }
    let a = rt.block_on(comfy_sim::Sim::builder().start())?;
    let b = rt.block_on(comfy_sim::Sim::builder().start())?;
    let base = format!(
        "comfyui:\n  backends:\n    - name: a\n      url: {}\n    - name: b\n      url: {}\n\
         rate_limits:\n  read_only: 1000000\ntransport:\n  remote:\n    enabled: true\n    port: 0\n",
        a.url(),
        b.url()
    );
    let mut rows = String::from("| replicas | Redis | calls/s | calls |\n| --- | --- | --- | --- |\n");
    let clients = 16;
    let per_client = if quick { 25 } else { 500 };
    for (replicas, shared) in [(1usize, false), (1, true), (2, true), (4, true)] {
        let config = if shared {
            format!("{base}state:\n  redis_url: redis://127.0.0.1:{port}/\n")
        } else {
            base.clone()
        };
        let mut children = Vec::new();
        let mut homes = Vec::new();
        let mut addrs = Vec::new();
        for _ in 0..replicas {
            let home = Bench::home(&config)?;
            let (child, addr) = spawn_http(bin, home.path(), None)?;
            children.push(Reap(child));
            homes.push(home);
            addrs.push(addr);
        }
        let (ok, took) = hammer(&addrs, clients, per_client);
        drop(children);
        drop(homes);
        if ok != clients * per_client {
            bail!(
                "{} of {} calls failed with {replicas} replicas",
                clients * per_client - ok,
                clients * per_client
            );
        }
        #[allow(clippy::cast_precision_loss, reason = "call counts")]
        let rate = ok as f64 / took.as_secs_f64();
        let redis_col = if shared { "shared" } else { "none" };
        let _ = writeln!(rows, "| {replicas} | {redis_col} | {rate:.0} | {ok} |");
    }
    drop(redis);
    Ok(rows)
}

/// A child process killed and reaped when dropped.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut bin = None;
    let (mut quick, mut write, mut baseline, mut save, mut peer) = (false, None, None, None, None);
    let mut peer_measured = false;
    let mut scale_only = false;
    let mut others: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--bin" => bin = it.next().map(PathBuf::from),
            "--write" => write = it.next().map(PathBuf::from),
            "--check" => baseline = it.next().map(PathBuf::from),
            "--save-baseline" => save = it.next().map(PathBuf::from),
            "--peer" => peer = it.next().map(PathBuf::from),
            "--scale" => scale_only = true,
            "--other" => others.extend(it.next().cloned()),
            other => bail!(
                "unknown argument {other}; usage: comfy-bench --bin PATH [--quick] [--scale] [--write DOC] [--check BASELINE] [--save-baseline FILE] [--other 'NAME|COMMAND|INSTALL_DIR']..."
            ),
        }
    }
    let bin = bin.context("--bin PATH to the comfy-mcp binary is required")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    if scale_only {
        let rows = scale(&bin, &rt, quick)?;
        #[allow(clippy::print_stdout, reason = "the table is this program's output")]
        {
            println!("{}\n\n{rows}", machine());
        }
        return Ok(());
    }
    let sim_dir = tempdir::Dir::new()?;
    let sim = rt.block_on(
        comfy_sim::Sim::builder()
            .steps_per_second(50.0)
            .data_dir(sim_dir.path())
            .start(),
    )?;
    let mut b = Bench {
        bin,
        peer: false,
        sim: sim.url(),
        sim_dir: sim_dir.path().to_owned(),
        quick,
        figures: Vec::new(),
    };
    eprintln!(
        "bench: {} against comfy-sim at {}{}",
        b.bin.display(),
        b.sim,
        if quick { " (quick)" } else { "" }
    );
    run_suite(&mut b)?;
    if let Some(peer_bin) = peer {
        eprintln!("bench: the peer, {}", peer_bin.display());
        let mut p = Bench {
            bin: peer_bin,
            peer: true,
            sim: b.sim.clone(),
            sim_dir: b.sim_dir.clone(),
            quick,
            figures: Vec::new(),
        };
        run_suite(&mut p)?;
        for f in &mut b.figures {
            f.peer = p
                .figures
                .iter()
                .find(|g| g.key == f.key)
                .map(|g| g.value)
                .filter(|v| v.is_finite());
        }
        peer_measured = true;
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let peer_note = if peer_measured {
        "The peer's column was measured in the same run, against the same simulator, with the same driver: `comfyui-mcp-secure` 2.3.0 from PyPI in a virtualenv under CPython ≥ 3.12; where it has no figure the workload does not apply to it or was not run for it."
    } else {
        "The peer's column is its own recorded measurement on this kind of machine (CPython 3.12.1): no Python ≥ 3.12 was found to install it in this run."
    };
    let mut block = format!(
        "Run {date}, commit `{commit}`, on {}; `cargo xtask bench{}`. {peer_note}\n\n{}",
        machine(),
        if quick { " --quick" } else { "" },
        table(&b.figures, quick, peer_measured)
    );
    if !others.is_empty() {
        block.push_str(&other_servers(&others, &b, quick)?);
    }
    #[allow(clippy::print_stdout, reason = "the table is this program's output")]
    {
        println!("{block}");
    }
    if let Some(file) = write {
        replace_block(&file, &block)?;
        eprintln!("bench: wrote {}", file.display());
    }
    if let Some(file) = save {
        let map: BTreeMap<&str, f64> = b.figures.iter().map(|f| (f.key, f.value)).collect();
        std::fs::write(&file, serde_json::to_string_pretty(&map)? + "\n")?;
        eprintln!("bench: saved the baseline to {}", file.display());
    }
    if let Some(file) = baseline {
        check(&b.figures, &file)?;
    }
    drop(sim);
    Ok(())
}
