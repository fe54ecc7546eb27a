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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Map, Value, json};

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

    async fn run_node(&mut self, node: &str, class: &str) -> Result<(Vec<Out>, Option<Value>), Stop> {
        let one = |o: Out| Ok((vec![o], None));
        if let Some(inputs) = self
            .prompt
            .get(node)
            .and_then(|n| n.get("inputs"))
            .and_then(Value::as_object)
            && let Some((message, kind)) = crate::loaders::failure(self.shared, class, inputs)
        {
            return Err(Stop::Failed { message, kind });
        }
        match class {
            "EmptyImage" => {
                let (w, h, b) = (
                    self.int(node, "width", 512),
                    self.int(node, "height", 512),
                    self.int(node, "batch_size", 1).clamp(1, 64),
                );
                let f = Frame::solid(w, h, self.int(node, "color", 0) as u32).map_err(fail)?;
                one(Out::Images(Arc::new(vec![f; b as usize])))
            }
            "ImageInvert" => {
                let imgs = self.images(node, "image")?;
                one(Out::Images(Arc::new(imgs.iter().map(Frame::inverted).collect())))
            }
            "ImageScale" => {
                let imgs = self.images(node, "image")?;
                let (mut w, mut h) = (self.int(node, "width", 512), self.int(node, "height", 512));
                let first = imgs
                    .first()
                    .map_or((64, 64), |f| (u64::from(f.width), u64::from(f.height)));
                if w == 0 && h == 0 {
                    return one(Out::Images(imgs));
                } else if w == 0 {
                    w = (first.0 * h / first.1.max(1)).max(1);
                } else if h == 0 {
                    h = (first.1 * w / first.0.max(1)).max(1);
                }
                let out: Result<Vec<_>, _> = imgs.iter().map(|f| f.resized(w, h)).collect();
                one(Out::Images(Arc::new(out.map_err(fail)?)))
            }
            "ImageScaleBy" => {
                let imgs = self.images(node, "image")?;
                let s = self.float(node, "scale_by", 1.0);
                let out: Result<Vec<_>, _> = imgs
                    .iter()
                    .map(|f| {
                        f.resized(
                            (f64::from(f.width) * s).round_ties_even().max(1.0) as u64,
                            (f64::from(f.height) * s).round_ties_even().max(1.0) as u64,
                        )
                    })
                    .collect();
                one(Out::Images(Arc::new(out.map_err(fail)?)))
            }
            "LoadImage" => {
                let name = self
                    .input(node, "image")
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let path = crate::files::resolve_input(self.shared, &name).ok_or_else(|| Stop::Failed {
                    message: format!("Invalid image file: {name}"),
                    kind: "FileNotFoundError".into(),
                })?;
                let bytes = tokio::fs::read(&path).await.map_err(|e| Stop::Failed {
                    message: e.to_string(),
                    kind: "OSError".into(),
                })?;
                let f = Frame::from_png(&bytes).map_err(|e| Stop::Failed {
                    message: e.to_string(),
                    kind: "PIL.UnidentifiedImageError".into(),
                })?;
                Ok((vec![Out::Images(Arc::new(vec![f])), Out::Opaque], None))
            }
            "SaveImage" | "PreviewImage" => {
                let imgs = self.images(node, "images")?;
                let ui = crate::files::save_images(
                    self.shared,
                    node,
                    class,
                    &imgs,
                    &self.job.prompt,
                    &self.job.extra_data,
                    self.input(node, "filename_prefix"),
                )
                .await
                .map_err(|m| Stop::Failed {
                    message: m,
                    kind: "Exception".into(),
                })?;
                Ok((Vec::new(), Some(ui)))
            }
            "ImageBatch" => {
                // image2 scaled to image1's size, then appended.
                let (a, b) = (self.images(node, "image1")?, self.images(node, "image2")?);
                let (w, h) = a
                    .first()
                    .map_or((64, 64), |f| (u64::from(f.width), u64::from(f.height)));
                let mut all: Vec<Frame> = a.iter().cloned().collect();
                for f in b.iter() {
                    all.push(f.resized(w, h).map_err(fail)?);
                }
                one(Out::Images(Arc::new(all)))
            }
            // A video is its frames here; the save nodes write files the
            // real ComfyUI 0.33.0 made (`crate::files::media`), named and
            // listed as it names and lists them.
            "CreateVideo" => one(Out::Images(self.images(node, "images")?)),
            "SaveVideo" | "SaveWEBM" | "SaveAnimatedWEBP" | "SaveAnimatedPNG" => {
                let input = if class == "SaveVideo" { "video" } else { "images" };
                let imgs = self.images(node, input)?;
                let size = imgs.first().map_or((0, 0), |f| (f.width, f.height));
                let still = imgs.len() == 1 && matches!(class, "SaveAnimatedWEBP" | "SaveAnimatedPNG");
                let (ext, bytes, default_prefix): (&str, std::borrow::Cow<'static, [u8]>, &str) = match class {
                    "SaveVideo" => ("mp4", crate::files::media::MP4.into(), "video/ComfyUI"),
                    "SaveWEBM" => ("webm", crate::files::media::WEBM.into(), "ComfyUI"),
                    // One frame: a still image, as Pillow writes it.
                    "SaveAnimatedWEBP" if still => (
                        "webp",
                        imgs.first()
                            .map(Frame::to_webp)
                            .transpose()
                            .map_err(fail)?
                            .unwrap_or_default()
                            .into(),
                        "ComfyUI",
                    ),
                    "SaveAnimatedWEBP" => ("webp", crate::files::media::WEBP.into(), "ComfyUI"),
                    _ if still => (
                        "png",
                        imgs.first()
                            .map(|f| f.to_png(&[]))
                            .transpose()
                            .map_err(fail)?
                            .unwrap_or_default()
                            .into(),
                        "ComfyUI",
                    ),
                    _ => ("png", crate::files::media::APNG.into(), "ComfyUI"),
                };
                let save = crate::files::MediaSave {
                    prefix: self
                        .input(node, "filename_prefix")
                        .map_or_else(|| default_prefix.to_owned(), |v| crate::validate::py_str(&v)),
                    ext,
                    trailing_underscore: true,
                    key: "images",
                    animated: !still,
                    size,
                };
                let ui = crate::files::save_media(self.shared, save, &bytes)
                    .await
                    .map_err(|m| Stop::Failed {
                        message: m,
                        kind: "Exception".into(),
                    })?;
                Ok((vec![Out::Images(imgs)], Some(ui)))
            }
            "SaveAudio" | "SaveAudioMP3" | "SaveAudioOpus" => {
                let (ext, bytes) = match class {
                    "SaveAudio" => ("flac", crate::files::media::FLAC),
                    "SaveAudioMP3" => ("mp3", crate::files::media::MP3),
                    _ => ("opus", crate::files::media::OPUS),
                };
                let save = crate::files::MediaSave {
                    prefix: self
                        .input(node, "filename_prefix")
                        .map_or_else(|| "audio/ComfyUI".to_owned(), |v| crate::validate::py_str(&v)),
                    ext,
                    // 0.8.0 names audio `ComfyUI_00001_.flac`, 0.33.0
                    // `ComfyUI_00001.flac`.
                    trailing_underscore: !self.shared.version.newer(),
                    key: "audio",
                    animated: false,
                    size: (0, 0),
                };
                let ui = crate::files::save_media(self.shared, save, bytes)
                    .await
                    .map_err(|m| Stop::Failed {
                        message: m,
                        kind: "Exception".into(),
                    })?;
                Ok((Vec::new(), Some(ui)))
            }
            "SaveImageWebsocket" => {
                let imgs = self.images(node, "images")?;
                let n = imgs.len() as u64;
                for (step, img) in imgs.iter().enumerate() {
                    let bytes = img.to_png(&[]).map_err(fail)?;
                    self.step_progress(node, step as u64, n, Some(Preview { bytes, png: true }));
                }
                Ok((Vec::new(), None))
            }
            "FixtureFail" => {
                let msg = self
                    .input(node, "message")
                    .map_or_else(|| "fixture failure".to_owned(), |v| crate::validate::py_str(&v));
                Err(Stop::Failed {
                    message: msg,
                    kind: "RuntimeError".into(),
                })
            }
            "FixtureSleep" => {
                let imgs = self.images(node, "image")?;
                self.pause(Duration::from_secs_f64(
                    self.float(node, "seconds", 5.0).clamp(0.0, 600.0),
                ))
                .await?;
                one(Out::Images(imgs))
            }
            "FixtureProgress" => {
                let imgs = self.images(node, "image")?;
                let steps = self.int(node, "steps", 3).clamp(1, 100);
                let delay = Duration::from_secs_f64(self.float(node, "delay", 0.2).clamp(0.0, 10.0));
                for i in 1..=steps {
                    self.pause(delay).await?;
                    self.shared
                        .hub
                        .send_binary(text_frame(node, &format!("step {i}/{steps}")), None);
                    self.step_progress(node, i, steps, imgs.first().and_then(Preview::jpeg));
                }
                one(Out::Images(imgs))
            }
            "EmptyLatentImage" | "EmptySD3LatentImage" | "EmptyHunyuanLatentVideo" => one(Out::Latent {
                width: self.int(node, "width", 512),
                height: self.int(node, "height", 512),
                batch: self.int(node, "batch_size", 1).clamp(1, 64),
                seed: 0,
            }),
            c if c.starts_with("KSampler") || c.starts_with("SamplerCustom") => {
                let steps = self.int(node, "steps", 20).clamp(1, 10_000);
                let seed = self.int(node, "seed", self.int(node, "noise_seed", 0));
                let (width, height, batch) = match self.linked(node, "latent_image") {
                    Some(Out::Latent {
                        width, height, batch, ..
                    }) => (width, height, batch),
                    _ => (512, 512, 1),
                };
                let step = Duration::from_secs_f64(1.0 / self.shared.steps_per_second);
                let preview = if self.shared.previews {
                    Frame::generated(width.min(512), height.min(512), seed)
                        .ok()
                        .as_ref()
                        .and_then(Preview::jpeg)
                } else {
                    None
                };
                for i in 1..=steps {
                    self.pause(step).await?;
                    self.step_progress(node, i, steps, preview.clone());
                }
                one(Out::Latent {
                    width,
                    height,
                    batch,
                    seed,
                })
            }
            "VAEDecode" | "VAEDecodeTiled" => {
                let out = match self.linked(node, "samples") {
                    Some(Out::Latent {
                        width,
                        height,
                        batch,
                        seed,
                    }) => {
                        let f = Frame::generated(width, height, seed).map_err(fail)?;
                        vec![f; batch as usize]
                    }
                    _ => vec![Frame::generated(512, 512, 0).map_err(fail)?],
                };
                one(Out::Images(Arc::new(out)))
            }
            "VAEEncode" | "VAEEncodeForInpaint" => {
                let imgs = self.images(node, "pixels")?;
                let (w, h) = imgs
                    .first()
                    .map_or((512, 512), |f| (u64::from(f.width), u64::from(f.height)));
                one(Out::Latent {
                    width: w,
                    height: h,
                    batch: imgs.len() as u64,
                    seed: 0,
                })
            }
            // A paid API node without a Comfy account key: what ComfyUI's
            // API client says when the partner API answers 401.
            other
                if !self.job.account_key
                    && self
                        .shared
                        .catalog
                        .node(other)
                        .and_then(|d| d.get("api_node"))
                        .and_then(Value::as_bool)
                        == Some(true) =>
            {
                Err(Stop::Failed {
                    message: "Unauthorized: Please login first to use this node.".into(),
                    kind: "Exception".into(),
                })
            }
            other => {
                let types = self
                    .shared
                    .catalog
                    .node(other)
                    .and_then(|d| d.get("output"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut outs = Vec::new();
                for t in types {
                    outs.push(match t.as_str() {
                        Some("IMAGE") => Out::Images(Arc::new(vec![Frame::generated(512, 512, 0).map_err(fail)?])),
                        Some("LATENT") => Out::Latent {
                            width: 512,
                            height: 512,
                            batch: 1,
                            seed: 0,
                        },
                        _ => Out::Opaque,
                    });
                }
                Ok((outs, None))
            }
        }
    }

    /// One progress step: `progress_state`, then a metadata preview (type
    /// 4) or `progress` followed by a plain preview (type 1), as ComfyUI
    /// orders them.
    fn step_progress(&mut self, node: &str, value: u64, max: u64, preview: Option<Preview>) {
        self.progress_state(node, &json!(value), &json!(max), "running");
        let meta = self.shared.hub.preview_metadata(self.sid());
        if let (Some(p), true) = (&preview, meta) {
            let mime = if p.png { "image/png" } else { "image/jpeg" };
            let md = crate::pyjson::to_string(
                &json!({"node_id": node, "prompt_id": self.job.id, "display_node_id": node, "parent_node_id": null, "real_node_id": node, "image_type": mime}),
            );
            let mut b = BytesMut::with_capacity(8 + md.len() + p.bytes.len());
            b.put_u32(4);
            b.put_u32(md.len() as u32);
            b.put_slice(md.as_bytes());
            b.put_slice(&p.bytes);
            self.shared.hub.send_binary(b.freeze(), self.sid());
        }
        self.shared.hub.send_json(
            "progress",
            json!({"value": value, "max": max, "prompt_id": self.job.id, "node": node}),
            self.sid(),
        );
        if let (Some(p), false) = (preview, meta) {
            let mut b = BytesMut::with_capacity(8 + p.bytes.len());
            b.put_u32(1);
            b.put_u32(if p.png { 2 } else { 1 });
            b.put_slice(&p.bytes);
            self.shared.hub.send_binary(b.freeze(), self.sid());
        }
    }
}

/// An image sent with a progress step.
#[derive(Clone)]
struct Preview {
    bytes: Vec<u8>,
    png: bool,
}

impl Preview {
    /// A sampler-style preview: scaled into 512x512, JPEG at quality 95.
    fn jpeg(frame: &Frame) -> Option<Self> {
        let scale = 512.0 / f64::from(frame.width.max(frame.height));
        let (w, h) = (
            (f64::from(frame.width) * scale).round().max(1.0) as u64,
            (f64::from(frame.height) * scale).round().max(1.0) as u64,
        );
        let bytes = frame.resized(w, h).ok()?.to_jpeg(95).ok()?;
        Some(Self { bytes, png: false })
    }
}

#[allow(clippy::needless_pass_by_value, reason = "shaped for `map_err`")]
fn fail(e: crate::image::ImageError) -> Stop {
    Stop::Failed {
        message: e.to_string(),
        kind: "ValueError".into(),
    }
}

/// A binary TEXT frame (event type 3).
fn text_frame(node: &str, text: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + node.len() + text.len());
    b.put_u32(3);
    b.put_u32(node.len() as u32);
    b.put_slice(node.as_bytes());
    b.put_slice(text.as_bytes());
    b.freeze()
}
