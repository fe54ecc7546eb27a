//! The one queue worker: takes the lowest-numbered prompt, runs its nodes in
//! dependency order and streams ComfyUI's WebSocket events, then writes the
//! history entry.
//!
//! Nodes that need no weights really run (`EmptyImage`, `ImageInvert`,
//! `ImageScale`, `ImageScaleBy`, `ImageBatch`, `LoadImage`, `SaveImage`,
//! `PreviewImage`, and the recording's `Fixture*` nodes). The video and audio save nodes
//! (`SaveVideo`, `SaveWEBM`, `SaveAnimatedWEBP`, `SaveAnimatedPNG`,
//! `SaveAudio`, `SaveAudioMP3`, `SaveAudioOpus`) write real files the real
//! ComfyUI made, whatever their input. Nodes that would need a GPU are
//! simulated: samplers step at the configured rate with `progress` events,
//! decoders yield a generated picture of the latent's size, and any other
//! node yields opaque values of its declared output types.

mod nodes;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use self::nodes::fail;
use crate::fault::JobFault;
use crate::image::Frame;
use crate::state::{Job, Shared, now_ms};

/// One node output value.
#[derive(Debug, Clone)]
pub(crate) enum Out {
    Images(Arc<Vec<Frame>>),
    Latent {
        width: u64,
        height: u64,
        batch: u64,
        seed: u64,
    },
    Opaque,
}

/// A cached node result.
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    outputs: Vec<Out>,
    ui: Option<Value>,
}

/// Why a run stopped early.
enum Stop {
    Interrupted,
    Failed { message: String, kind: String },
    Restarted,
}

/// Runs queued prompts until the simulator stops.
pub(crate) async fn worker(shared: Arc<Shared>) {
    loop {
        let next = {
            let mut st = shared.lock();
            st.heap_pop().map(|job| {
                st.running = Some(job.clone());
                st.interrupt = false;
                (job, st.epoch, st.remaining())
            })
        };
        let Some((job, epoch, remaining)) = next else {
            shared.work.notified().await;
            continue;
        };
        shared.broadcast_status(remaining);
        let mut run = Run::new(&shared, &job, epoch);
        let started = std::time::Instant::now();
        let entry = run.execute().await;
        let remaining = {
            let mut st = shared.lock();
            if st.epoch != epoch {
                continue;
            }
            st.running = None;
            st.cache = std::mem::take(&mut run.new_cache);
            st.remaining()
        };
        let finished = entry.is_some();
        if let Some(entry) = entry {
            shared.add_history(job.id.clone(), entry);
        }
        shared.broadcast_status(remaining);
        if let Some(sid) = &run.sid {
            shared
                .hub
                .send_json("executing", json!({"node": null, "prompt_id": job.id}), Some(sid));
        }
        if finished {
            let line = format!("Prompt executed in {:.2} seconds\n", started.elapsed().as_secs_f64());
            shared.log.write(&shared.hub, &line);
        }
    }
}

struct Run<'a> {
    shared: &'a Shared,
    job: &'a Job,
    epoch: u64,
    sid: Option<String>,
    prompt: Map<String, Value>,
    messages: Vec<Value>,
    progress: Map<String, Value>,
    results: HashMap<String, Vec<Out>>,
    executed: Vec<String>,
    outputs: Map<String, Value>,
    meta: Map<String, Value>,
    new_cache: HashMap<String, Cached>,
}

impl<'a> Run<'a> {
    fn new(shared: &'a Shared, job: &'a Job, epoch: u64) -> Self {
        Self {
            shared,
            job,
            epoch,
            sid: job.client_id(),
            prompt: job.prompt.as_object().cloned().unwrap_or_default(),
            messages: Vec::new(),
            progress: Map::new(),
            results: HashMap::new(),
            executed: Vec::new(),
            outputs: Map::new(),
            meta: Map::new(),
            new_cache: HashMap::new(),
        }
    }

    fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// An execution event: recorded in history, sent only to the prompt's
    /// client.
    fn message(&mut self, event: &str, mut data: Value) {
        if let Some(o) = data.as_object_mut() {
            o.insert("timestamp".into(), json!(now_ms()));
        }
        if let Some(sid) = self.sid.clone() {
            self.shared.hub.send_json(event, data.clone(), Some(&sid));
        }
        self.messages.push(json!([event, data]));
    }

    fn progress_state(&mut self, node: &str, value: &Value, max: &Value, state: &str) {
        let id = &self.job.id;
        self.progress.insert(
            node.to_owned(),
            json!({"value": value, "max": max, "state": state, "node_id": node, "prompt_id": id, "display_node_id": node, "parent_node_id": null, "real_node_id": node}),
        );
        let data = json!({"prompt_id": id, "nodes": self.progress});
        self.shared.hub.send_json("progress_state", data, self.sid());
    }

    /// A node's UI output: `executed` to the prompt's client, and the
    /// node's entries in the history's `outputs` and `meta`.
    fn report_ui(&mut self, node: &str, ui: Value) {
        if let Some(sid) = self.sid.clone() {
            let data = json!({"node": node, "display_node": node, "output": ui, "prompt_id": self.job.id});
            self.shared.hub.send_json("executed", data, Some(&sid));
        }
        self.outputs.insert(node.to_owned(), ui);
        self.meta.insert(
            node.to_owned(),
            json!({"node_id": node, "display_node": node, "parent_node": null, "real_node_id": node}),
        );
    }

    fn stopped(&self) -> Option<Stop> {
        let st = self.shared.lock();
        if st.epoch != self.epoch {
            Some(Stop::Restarted)
        } else if st.interrupt {
            Some(Stop::Interrupted)
        } else {
            None
        }
    }

    /// Waits `dur`, checking for interrupts every 20 ms.
    async fn pause(&self, dur: Duration) -> Result<(), Stop> {
        let deadline = tokio::time::Instant::now() + dur;
        loop {
            if let Some(s) = self.stopped() {
                return Err(s);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(());
            }
            tokio::time::sleep((deadline - now).min(Duration::from_millis(20))).await;
        }
    }

    fn signature(&self, id: &str, sigs: &mut HashMap<String, String>, depth: usize) -> String {
        if let Some(s) = sigs.get(id) {
            return s.clone();
        }
        let node = self.prompt.get(id).cloned().unwrap_or(Value::Null);
        let mut parts = vec![node.get("class_type").map(crate::pyjson::to_string).unwrap_or_default()];
        if let Some(Value::Object(inputs)) = node.get("inputs") {
            let mut keys: Vec<&String> = inputs.keys().collect();
            keys.sort();
            for k in keys {
                let v = &inputs[k];
                let s = match v.as_array().map(Vec::as_slice) {
                    Some([Value::String(up), idx]) if depth < 512 && self.prompt.contains_key(up) => {
                        format!("{k}=<{}>[{idx}]", self.signature(up, sigs, depth + 1))
                    }
                    _ => format!("{k}={}", crate::pyjson::to_string(v)),
                };
                parts.push(s);
            }
        }
        let class = node.get("class_type").and_then(Value::as_str).unwrap_or_default();
        // Never cached: its IS_CHANGED is the time (SaveImageWebsocket), or
        // failing again is its point (FixtureFail).
        if matches!(class, "SaveImageWebsocket" | "FixtureFail") {
            static UNIQUE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            parts.push(format!(
                "#{}",
                UNIQUE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
        }
        let sig = parts.join("|");
        sigs.insert(id.to_owned(), sig.clone());
        sig
    }

    /// Runs the job; `None` when a restart swallowed it.
    async fn execute(&mut self) -> Option<Value> {
        let id = self.job.id.clone();
        self.message("execution_start", json!({"prompt_id": id}));
        let mut sigs = HashMap::new();
        let old_cache = self.shared.lock().cache.clone();
        // Nodes needed, in dependency order, skipping cached ones.
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        let mut cached = HashSet::new();
        for o in self.job.outputs.clone() {
            self.visit(&o, &mut sigs, &old_cache, &mut order, &mut seen, &mut cached, 0);
        }
        // ComfyUI lists every node of the prompt whose result is cached,
        // including the upstream nodes of a cached output that it never visits.
        let keys: Vec<String> = self.prompt.keys().cloned().collect();
        let cached_list: Vec<String> = keys
            .into_iter()
            .filter(|k| cached.contains(k) || old_cache.contains_key(&self.signature(k, &mut sigs, 0)))
            .collect();
        self.message("execution_cached", json!({"nodes": cached_list, "prompt_id": id}));
        for node in &cached_list {
            if let Some(c) = old_cache.get(&sigs[node]) {
                self.results.insert(node.clone(), c.outputs.clone());
                self.new_cache.insert(sigs[node].clone(), c.clone());
                if let Some(ui) = c.ui.clone().filter(|_| self.job.outputs.contains(node)) {
                    // Upstream quirk: a cached output reaches the history
                    // only when the prompt has a client id.
                    if self.sid.is_some() {
                        self.report_ui(node, ui);
                    }
                    self.progress_state(node, &json!(1), &json!(1), "finished");
                }
            }
        }
        let fault = self.shared.faults.borrow().job;
        for node in order {
            let class = self
                .prompt
                .get(&node)
                .and_then(|n| n.get("class_type"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            self.progress_state(&node, &json!(0.0), &json!(1.0), "running");
            if let Some(sid) = self.sid.clone() {
                self.shared.hub.send_json(
                    "executing",
                    json!({"node": node, "display_node": node, "prompt_id": id}),
                    Some(&sid),
                );
            }
            let result = match fault {
                Some(JobFault::Error) => Err(Stop::Failed {
                    message: "simulated failure (comfy-sim job fault)".into(),
                    kind: "RuntimeError".into(),
                }),
                Some(JobFault::Hang) => match self.pause(Duration::from_secs(u64::MAX / 4)).await {
                    Ok(()) => Err(Stop::Interrupted),
                    Err(s) => Err(s),
                },
                None => match self.stopped() {
                    Some(s) => Err(s),
                    None => self.run_node(&node, &class).await,
                },
            };
            match result {
                Ok((outs, ui)) => {
                    self.results.insert(node.clone(), outs.clone());
                    self.new_cache.insert(
                        sigs[&node].clone(),
                        Cached {
                            outputs: outs,
                            ui: ui.clone(),
                        },
                    );
                    self.executed.push(node.clone());
                    if let Some(ui) = ui {
                        self.report_ui(&node, ui);
                    }
                    let max = self
                        .progress
                        .get(&node)
                        .and_then(|p| p.get("max"))
                        .cloned()
                        .unwrap_or(json!(1.0));
                    self.progress_state(&node, &max, &max, "finished");
                }
                Err(Stop::Restarted) => return None,
                Err(Stop::Interrupted) => {
                    let mut data =
                        json!({"prompt_id": id, "node_id": node, "node_type": class, "executed": self.executed});
                    if let Some(o) = data.as_object_mut() {
                        o.insert("timestamp".into(), json!(now_ms()));
                    }
                    self.shared
                        .hub
                        .send_json("execution_interrupted", data.clone(), self.sid());
                    self.messages.push(json!(["execution_interrupted", data]));
                    return Some(self.entry(false));
                }
                Err(Stop::Failed { message, kind }) => {
                    let inputs = self
                        .prompt
                        .get(&node)
                        .and_then(|n| n.get("inputs"))
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    let current_inputs: Map<String, Value> = inputs
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                if v.is_array() {
                                    json!(["<linked value>"])
                                } else {
                                    json!([v])
                                },
                            )
                        })
                        .collect();
                    let data = json!({
                        "prompt_id": id, "node_id": node, "node_type": class, "executed": self.executed,
                        "exception_message": format!("{message}\n"), "exception_type": kind,
                        "traceback": [format!("  File \"comfy-sim\", in {class}\n")],
                        "current_inputs": current_inputs, "current_outputs": self.prompt.keys().collect::<Vec<_>>(),
                    });
                    self.message("execution_error", data);
                    return Some(self.entry(false));
                }
            }
        }
        self.message("execution_success", json!({"prompt_id": id}));
        Some(self.entry(true))
    }

    #[allow(clippy::too_many_arguments, reason = "a recursive walk with its accumulators")]
    fn visit(
        &self,
        id: &str,
        sigs: &mut HashMap<String, String>,
        cache: &HashMap<String, Cached>,
        order: &mut Vec<String>,
        seen: &mut HashSet<String>,
        cached: &mut HashSet<String>,
        depth: usize,
    ) {
        if depth > 512 || !seen.insert(id.to_owned()) {
            return;
        }
        let sig = self.signature(id, sigs, 0);
        if cache.contains_key(&sig) {
            cached.insert(id.to_owned());
            return;
        }
        if let Some(Value::Object(inputs)) = self.prompt.get(id).and_then(|n| n.get("inputs")) {
            for v in inputs.values() {
                if let Some([Value::String(up), _]) = v.as_array().map(Vec::as_slice)
                    && self.prompt.contains_key(up)
                {
                    self.visit(up, sigs, cache, order, seen, cached, depth + 1);
                }
            }
        }
        order.push(id.to_owned());
    }

    fn entry(&self, success: bool) -> Value {
        json!({
            "prompt": self.job.tuple(),
            "outputs": self.outputs,
            "status": {"status_str": if success { "success" } else { "error" }, "completed": success, "messages": self.messages},
            "meta": self.meta,
        })
    }

    fn input(&self, node: &str, name: &str) -> Option<Value> {
        self.prompt.get(node)?.get("inputs")?.get(name).cloned()
    }

    fn linked(&self, node: &str, name: &str) -> Option<Out> {
        let v = self.input(node, name)?;
        let [Value::String(up), Value::Number(idx)] = v.as_array()?.as_slice() else {
            return None;
        };
        let outs = self.results.get(up)?;
        let idx = idx.as_i64()?;
        let idx = if idx < 0 { idx + outs.len() as i64 } else { idx };
        outs.get(usize::try_from(idx).ok()?).cloned()
    }

    fn int(&self, node: &str, name: &str, default: u64) -> u64 {
        self.input(node, name)
            .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64)))
            .unwrap_or(default)
    }

    fn float(&self, node: &str, name: &str, default: f64) -> f64 {
        self.input(node, name).and_then(|v| v.as_f64()).unwrap_or(default)
    }

    fn images(&self, node: &str, name: &str) -> Result<Arc<Vec<Frame>>, Stop> {
        match self.linked(node, name) {
            Some(Out::Images(i)) => Ok(i),
            Some(Out::Latent {
                width, height, seed, ..
            }) => Ok(Arc::new(vec![Frame::generated(width, height, seed).map_err(fail)?])),
            _ => Ok(Arc::new(vec![Frame::generated(64, 64, 0).map_err(fail)?])),
        }
    }
}
