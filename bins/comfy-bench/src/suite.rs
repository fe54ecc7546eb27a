//! The measurements themselves: one `Bench` per server measured, in the
//! table's order.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::http::{hammer, sim_get, spawn_http};
use crate::inputs::{big_png, hostile_png, workflow};
use crate::others::dir_size;
use crate::process::{McpProcess, proc_kib};
use crate::report::{Figure, ms, stats};
use crate::tempdir;

/// The raised rate limits (the peer's throughput runs raised them too).
pub(crate) const CONFIG: &str =
    "rate_limits:\n  workflow: 1000000\n  generation: 1000000\n  file_ops: 1000000\n  read_only: 1000000\n";

pub(crate) struct Bench {
    pub(crate) bin: PathBuf,
    /// Measuring the peer (fewer runs of its slow cases, no HTTP).
    pub(crate) peer: bool,
    pub(crate) sim: String,
    pub(crate) sim_dir: PathBuf,
    pub(crate) quick: bool,
    pub(crate) figures: Vec<Figure>,
}

impl Bench {
    pub(crate) fn home(config: &str) -> Result<tempdir::Dir> {
        let dir = tempdir::Dir::new()?;
        std::fs::create_dir_all(dir.path().join(".comfyui-mcp"))?;
        std::fs::write(dir.path().join(".comfyui-mcp/config.yaml"), config)?;
        Ok(dir)
    }

    pub(crate) fn session(&self, home: &Path) -> Result<McpProcess> {
        let mut s = McpProcess::spawn(&self.bin, home, &self.sim)?;
        s.initialize()?;
        Ok(s)
    }

    pub(crate) fn n(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }

    #[allow(clippy::too_many_arguments, reason = "one table row")]
    pub(crate) fn push(
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

    pub(crate) fn startup(&mut self) -> Result<()> {
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
    pub(crate) fn throughput(
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

    pub(crate) fn memory_after_calls(&mut self) -> Result<()> {
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

    pub(crate) fn concurrent_http(&mut self) -> Result<()> {
        if self.peer {
            return Ok(());
        }
        let home = Self::home(&format!(
            "{CONFIG}transport:\n  remote:\n    enabled: true\n    port: 0\n"
        ))?;
        let (server, addr) = spawn_http(&self.bin, home.path(), Some(&self.sim))?;
        let per_client = self.n(200, 40);
        let clients = 16;
        let (ok, took) = hammer(&[addr], clients, per_client);
        drop(server);
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

    pub(crate) fn validation(&mut self) -> Result<()> {
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

    pub(crate) fn generation(&mut self) -> Result<()> {
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
                    // Steps only: ours also announces each node that starts
                    // ("node 3 (KSampler) started ..."), which the
                    // simulator's step schedule does not include.
                    let message = v["params"]["message"].as_str().unwrap_or_default();
                    if v["method"] == "notifications/progress" && !message.contains(" started (") {
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

    pub(crate) fn get_image(&mut self) -> Result<()> {
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
    pub(crate) fn hostile_images(&mut self) -> Result<()> {
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

    pub(crate) fn binary_size(&mut self) -> Result<()> {
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
pub(crate) fn start_once(bin: &Path, home: &Path, sim: &str) -> Result<(f64, usize, f64)> {
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

/// Every measurement, in the table's order.
pub(crate) fn run_suite(b: &mut Bench) -> Result<()> {
    // A workload the peer cannot do is reported and skipped, not fatal.
    pub(crate) fn attempt(peer: bool, r: Result<()>) -> Result<()> {
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
