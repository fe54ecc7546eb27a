//! The simulator's shared state: the queue (a binary min-heap laid out as
//! CPython's `heapq` lays it out, since `GET /queue` shows the raw array),
//! the running job, the history, settings, and the WebSocket hub.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::{Map, Number, Value, json};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::api::{self, json as json_resp};
use crate::body::Body;
use crate::catalog::{Catalog, Models};
use crate::fault::Faults;
use crate::ws::{self, Hub, Session};

/// History entries kept, as ComfyUI's `MAXIMUM_HISTORY_SIZE`.
const MAX_HISTORY: usize = 10_000;
/// Queue entries accepted before `POST /prompt` is refused with a 500, to
/// bound memory.
const MAX_QUEUE: usize = 10_000;

/// Milliseconds since the epoch, as ComfyUI's `int(time.time() * 1000)`.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One queued prompt.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) number: Number,
    pub(crate) id: String,
    pub(crate) prompt: Value,
    pub(crate) extra_data: Value,
    pub(crate) outputs: Vec<String>,
    /// Whether the submission carried a Comfy account key
    /// (`extra_data.api_key_comfy_org`), which ComfyUI keeps apart from
    /// the queue and the history for paid API nodes.
    pub(crate) account_key: bool,
}

impl Job {
    pub(crate) fn client_id(&self) -> Option<String> {
        self.extra_data
            .get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    pub(crate) fn create_time(&self) -> Option<u64> {
        self.extra_data.get("create_time").and_then(Value::as_u64)
    }

    /// The 5-element queue/history tuple.
    pub(crate) fn tuple(&self) -> Value {
        json!([self.number, self.id, self.prompt, self.extra_data, self.outputs])
    }

    /// Heap order: number, then prompt id.
    fn less(&self, other: &Job) -> bool {
        let (a, b) = (
            self.number.as_f64().unwrap_or(0.0),
            other.number.as_f64().unwrap_or(0.0),
        );
        a < b || (a.total_cmp(&b).is_eq() && self.id < other.id)
    }
}

/// Mutable state behind one lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) pending: Vec<Job>,
    pub(crate) running: Option<Job>,
    pub(crate) counter: i64,
    pub(crate) history: Map<String, Value>,
    /// Set by `POST /interrupt`; cleared when the next prompt starts.
    pub(crate) interrupt: bool,
    /// Bumped by a simulated restart, so a job that was running then does
    /// not write its outcome afterwards.
    pub(crate) epoch: u64,
    /// Node signature → (outputs, ui) of the last prompt (ComfyUI's classic
    /// cache keeps only what the latest prompt used).
    pub(crate) cache: std::collections::HashMap<String, crate::exec::Cached>,
    /// `PreviewImage` name suffix per (node id, class), kept while cached.
    pub(crate) preview_suffix: std::collections::HashMap<String, String>,
}

impl State {
    pub(crate) fn remaining(&self) -> usize {
        self.pending.len() + usize::from(self.running.is_some())
    }

    fn heap_push(&mut self, job: Job) {
        self.pending.push(job);
        let last = self.pending.len() - 1;
        sift_down(&mut self.pending, 0, last);
    }

    /// `heapq.heappop`.
    pub(crate) fn heap_pop(&mut self) -> Option<Job> {
        let last = self.pending.pop()?;
        if self.pending.is_empty() {
            return Some(last);
        }
        let top = std::mem::replace(&mut self.pending[0], last);
        sift_up(&mut self.pending, 0);
        Some(top)
    }

    fn heapify(&mut self) {
        let n = self.pending.len();
        for i in (0..n / 2).rev() {
            sift_up(&mut self.pending, i);
        }
    }
}

/// CPython `heapq._siftdown`: moves the item at `pos` up towards `start`.
fn sift_down(heap: &mut [Job], start: usize, mut pos: usize) {
    while pos > start {
        let parent = (pos - 1) / 2;
        if heap[pos].less(&heap[parent]) {
            heap.swap(pos, parent);
            pos = parent;
        } else {
            break;
        }
    }
}

/// CPython `heapq._siftup`: sinks the item at `pos` to a leaf along the
/// smaller children, then sifts it back up.
fn sift_up(heap: &mut [Job], mut pos: usize) {
    let end = heap.len();
    let start = pos;
    let mut child = 2 * pos + 1;
    while child < end {
        let right = child + 1;
        if right < end && !heap[child].less(&heap[right]) {
            child = right;
        }
        heap.swap(pos, child);
        pos = child;
        child = 2 * pos + 1;
    }
    sift_down(heap, start, pos);
}

/// Everything the handlers and the worker share.
#[derive(Debug)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent switches: previews and the three plugin simulations"
)]
pub(crate) struct Shared {
    pub(crate) catalog: Catalog,
    pub(crate) models: Models,
    /// The `--models-dir`, when model files are real.
    pub(crate) models_root: Option<PathBuf>,
    pub(crate) root: PathBuf,
    pub(crate) steps_per_second: f64,
    pub(crate) previews: bool,
    pub(crate) faults: watch::Sender<Faults>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) work: Notify,
    pub(crate) state: Mutex<State>,
    pub(crate) extensions: Value,
    pub(crate) sessions: Mutex<JoinSet<()>>,
    pub(crate) log: crate::log::Log,
    /// Requests served, by route path without `/api`.
    pub(crate) requests: Mutex<std::collections::HashMap<String, u64>>,
    /// Serialises read-modify-write of the settings file.
    pub(crate) settings_lock: Mutex<()>,
    /// Whether ComfyUI-Model-Manager's routes are served.
    pub(crate) model_manager: bool,
    /// The ComfyUI release answered as.
    pub(crate) version: crate::ComfyVersion,
    /// Model-Manager download tasks.
    pub(crate) model_tasks: Mutex<Vec<crate::model_manager::Task>>,
    /// What Model-Manager downloads do.
    pub(crate) downloads: crate::model_manager::Downloads,
    /// `GET /node_replacements`'s table (none: 404, as ComfyUI 0.8.0).
    pub(crate) node_replacements: Option<Value>,
    /// Whether ComfyUI-Manager's routes are served.
    pub(crate) manager_on: bool,
    /// Whether the CivitAI/HuggingFace search simulation is served.
    pub(crate) model_search: bool,
    /// Requests to the search simulation that carried `Authorization`.
    pub(crate) search_auth: Mutex<Vec<String>>,
    /// ComfyUI-Manager's state.
    pub(crate) manager_state: Mutex<crate::manager::ManagerState>,
    /// Whether the assets system is on (0.33.0's `--enable-assets`).
    pub(crate) assets: bool,
}

impl Shared {
    pub(crate) fn new(
        catalog: Catalog,
        models: Models,
        models_root: Option<PathBuf>,
        root: PathBuf,
        steps_per_second: f64,
        previews: bool,
        faults: watch::Sender<Faults>,
    ) -> Self {
        let extensions = serde_json::from_str(include_str!("../../../fixtures/comfyui/http/get_extensions.body.json"))
            .unwrap_or_else(|_| json!([]));
        Self {
            catalog,
            models,
            models_root,
            root,
            steps_per_second,
            previews,
            faults,
            hub: Arc::new(Hub::default()),
            work: Notify::new(),
            state: Mutex::new(State::default()),
            extensions,
            sessions: Mutex::new(JoinSet::new()),
            settings_lock: Mutex::new(()),
            requests: Mutex::new(std::collections::HashMap::new()),
            log: crate::log::Log::default(),
            model_manager: false,
            version: crate::ComfyVersion::default(),
            model_tasks: Mutex::new(Vec::new()),
            downloads: crate::model_manager::Downloads::default(),
            node_replacements: None,
            manager_on: false,
            model_search: false,
            search_auth: Mutex::new(Vec::new()),
            manager_state: Mutex::new(crate::manager::ManagerState::default()),
            assets: false,
        }
    }

    pub(crate) fn manager(&self) -> MutexGuard<'_, crate::manager::ManagerState> {
        self.manager_state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn model_tasks(&self) -> MutexGuard<'_, Vec<crate::model_manager::Task>> {
        self.model_tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn dir(&self, kind: &str) -> PathBuf {
        self.root.join(kind)
    }

    pub(crate) fn count_request(&self, route: &str) {
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(route.to_owned())
            .or_insert(0) += 1;
    }

    /// Broadcasts the queue size, as ComfyUI does on every queue change.
    pub(crate) fn broadcast_status(&self, remaining: usize) {
        self.hub.send_json(
            "status",
            json!({"status": {"exec_info": {"queue_remaining": remaining}}}),
            None,
        );
    }

    pub(crate) fn prompt_info(&self) -> Value {
        json!({"exec_info": {"queue_remaining": self.lock().remaining()}})
    }

    pub(crate) fn features(&self) -> Value {
        if self.version.newer() {
            // As recorded from 0.33.0 (fixtures/comfyui-0.33/http/get_features).
            return json!({"supports_preview_metadata": true, "supports_model_type_tags": true, "max_upload_size": api::MAX_UPLOAD, "extension": {"manager": {"supports_v4": true}}, "node_replacements": true, "assets": false});
        }
        json!({"supports_preview_metadata": true, "max_upload_size": api::MAX_UPLOAD, "extension": {"manager": {"supports_v4": true}}})
    }

    pub(crate) fn system_stats(&self) -> Value {
        let mut stats = Self::system_stats_0_8();
        if self.version.newer()
            && let Some(sys) = stats.get_mut("system").and_then(Value::as_object_mut)
        {
            sys.insert("comfyui_version".into(), json!("0.33.0"));
            sys.insert("required_frontend_version".into(), json!("1.48.7"));
            sys.insert("installed_templates_version".into(), json!("0.11.41"));
            sys.insert("required_templates_version".into(), json!("0.11.41"));
            sys.insert(
                "comfy_package_versions".into(),
                json!([
                    {"name": "comfyui-frontend-package", "installed": "1.48.7", "required": "1.48.7"},
                    {"name": "comfyui-workflow-templates", "installed": "0.11.41", "required": "0.11.41"},
                    {"name": "comfyui-embedded-docs", "installed": "0.5.9", "required": "0.5.9"}
                ]),
            );
            sys.insert("deploy_environment".into(), json!("local-git"));
        }
        stats
    }

    fn system_stats_0_8() -> Value {
        json!({
            "system": {
                "os": "linux", "ram_total": 25_276_063_744_u64, "ram_free": 23_744_385_024_u64,
                "comfyui_version": "0.8.0", "required_frontend_version": "1.35.9",
                "installed_templates_version": "0.7.67", "required_templates_version": "0.7.67",
                "python_version": "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]",
                "pytorch_version": "2.11.0+cu130", "embedded_python": false,
                "argv": ["main.py", "--cpu", "--listen", "127.0.0.1", "--port", "8188"]
            },
            "devices": [{
                "name": "cpu", "type": "cpu", "index": null,
                "vram_total": 25_276_063_744_u64, "vram_free": 23_744_385_024_u64,
                "torch_vram_total": 25_276_063_744_u64, "torch_vram_free": 23_744_385_024_u64
            }]
        })
    }

    pub(crate) fn folder_paths(&self) -> Value {
        let models = self.root.join("models");
        let mut m = Map::new();
        for f in crate::catalog::FOLDERS {
            m.insert((*f).to_owned(), json!([models.join(f).to_string_lossy()]));
        }
        Value::Object(m)
    }

    pub(crate) fn experiment_models(&self) -> Value {
        let models = self.root.join("models");
        Value::Array(
            crate::catalog::FOLDERS
                .iter()
                .filter(|f| !matches!(**f, "configs" | "custom_nodes"))
                .map(|f| json!({"name": f, "folders": [models.join(f).to_string_lossy()]}))
                .collect(),
        )
    }

    /// The `LoadImage` list: image files at the top of the input
    /// directory, sorted, as ComfyUI filters them by content type.
    pub(crate) fn input_files(&self) -> Vec<String> {
        let mut files: Vec<String> = crate::files::list_dir(&self.dir("input"))
            .into_iter()
            .filter(|f| {
                let lower = f.to_ascii_lowercase();
                [".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"]
                    .iter()
                    .any(|e| lower.ends_with(e))
            })
            .collect();
        files.sort();
        files
    }

    /// `POST /prompt`.
    pub(crate) fn submit(&self, body: Value) -> Response<Body> {
        self.log.write(&self.hub, "got prompt\n");
        let mut st = self.lock();
        let Value::Object(mut body) = body else {
            // `"number" in [..]` is a membership test: a list body takes a
            // number, then has no prompt; other non-objects raise.
            if body.is_array() {
                st.counter += 1;
                return json_resp(400, &crate::validate::no_prompt_error());
            }
            return if body.is_string() {
                json_resp(400, &crate::validate::no_prompt_error())
            } else {
                api::server_error()
            };
        };
        let number = if let Some(n) = body.get("number") {
            match crate::validate::py_float(n).and_then(Number::from_f64) {
                Some(n) => n,
                None => return api::server_error(),
            }
        } else {
            let mut n = st.counter;
            if body.get("front").is_some_and(truthy) {
                n = -n;
            }
            st.counter += 1;
            Number::from(n)
        };
        let Some(prompt) = body.remove("prompt") else {
            return json_resp(400, &crate::validate::no_prompt_error());
        };
        let Value::Object(mut prompt) = prompt else {
            return match prompt {
                Value::Array(a) if a.is_empty() => json_resp(400, &crate::validate::no_outputs_error()),
                Value::String(s) if s.is_empty() => json_resp(400, &crate::validate::no_outputs_error()),
                _ => api::server_error(),
            };
        };
        if prompt.values().any(|n| !n.is_object() && !n.is_string()) {
            return api::server_error();
        }
        let input_files = crate::files::list_dir(&self.dir("input"));
        let partial = body.get("partial_execution_targets");
        let validated = crate::validate::validate(&self.catalog, &mut prompt, partial, &input_files);
        let mut extra = match body.remove("extra_data") {
            Some(Value::Object(m)) => m,
            None => Map::new(),
            Some(_) => return api::server_error(),
        };
        if let Some(c) = body.get("client_id") {
            extra.insert("client_id".into(), c.clone());
        }
        let outcome = match validated {
            Ok(o) => o,
            Err(body) if self.version.newer() => return json_resp(400, &missing_node_type(&prompt, body)),
            Err(body) => return json_resp(400, &body),
        };
        if st.pending.len() >= MAX_QUEUE {
            return api::server_error();
        }
        let id = match body.get("prompt_id") {
            Some(v) => crate::validate::py_str(v),
            None => uuid::Uuid::new_v4().to_string(),
        };
        if self.version.newer() && body.get("prompt_id").is_some() && !crate::version::is_canonical_uuid(&id) {
            return json_resp(
                400,
                &json!({"error": {"type": "invalid_prompt_id", "message": "prompt_id must be a valid UUID", "details": "prompt_id must be a UUID string in canonical lowercase hyphenated form; omit it to let the server generate one", "extra_info": {}}, "node_errors": {}}),
            );
        }
        let account_key = [extra.remove("auth_token_comfy_org"), extra.remove("api_key_comfy_org")]
            .iter()
            .flatten()
            .any(|v| v.as_str().is_some_and(|s| !s.is_empty()));
        extra.insert("create_time".into(), json!(now_ms()));
        let job = Job {
            number: number.clone(),
            id: id.clone(),
            prompt: Value::Object(prompt),
            extra_data: Value::Object(extra),
            outputs: outcome.outputs,
            account_key,
        };
        st.heap_push(job);
        let remaining = st.remaining();
        drop(st);
        self.broadcast_status(remaining);
        self.work.notify_one();
        json_resp(
            200,
            &json!({"prompt_id": id, "number": number, "node_errors": outcome.node_errors}),
        )
    }

    pub(crate) fn queue_json(&self) -> Value {
        let st = self.lock();
        json!({
            "queue_running": st.running.iter().map(Job::tuple).collect::<Vec<_>>(),
            "queue_pending": st.pending.iter().map(Job::tuple).collect::<Vec<_>>(),
        })
    }

    /// `POST /queue`: clear and/or delete pending items.
    pub(crate) fn queue_post(&self, body: &Value) {
        if body.get("clear").is_some_and(truthy) {
            let remaining = {
                let mut st = self.lock();
                st.pending.clear();
                st.remaining()
            };
            self.broadcast_status(remaining);
        }
        if let Some(Value::Array(ids)) = body.get("delete") {
            for id in ids.iter().filter_map(Value::as_str) {
                let mut st = self.lock();
                let Some(pos) = st.pending.iter().position(|j| j.id == id) else {
                    continue;
                };
                let sends = if st.pending.len() == 1 { 2 } else { 1 };
                st.pending.remove(pos);
                st.heapify();
                let remaining = st.remaining();
                drop(st);
                for _ in 0..sends {
                    self.broadcast_status(remaining);
                }
            }
        }
    }

    /// `POST /api/jobs/{id}/cancel` (0.33.0): interrupts the job when it
    /// runs, removes it when it waits; whether it did either.
    pub(crate) fn cancel_job(&self, id: &str) -> bool {
        let (running, pending) = {
            let st = self.lock();
            (
                st.running.as_ref().is_some_and(|j| j.id == id),
                st.pending.iter().any(|j| j.id == id),
            )
        };
        if running {
            self.log.write(&self.hub, &format!("Cancelling running prompt {id}\n"));
            let mut st = self.lock();
            if st.running.as_ref().is_some_and(|j| j.id == id) {
                st.interrupt = true;
            }
        } else if pending {
            self.log.write(&self.hub, &format!("Cancelling pending prompt {id}\n"));
            self.queue_post(&json!({"delete": [id]}));
        }
        running || pending
    }

    /// `POST /interrupt`: global, or only if `prompt_id` is running; logged
    /// as ComfyUI logs it.
    pub(crate) fn interrupt(&self, prompt_id: Option<&str>) {
        let line = {
            let mut st = self.lock();
            match prompt_id {
                Some(id) if st.running.as_ref().is_none_or(|j| j.id != id) => {
                    format!("Prompt {id} is not currently running, skipping interrupt\n")
                }
                Some(id) => {
                    st.interrupt = true;
                    format!("Interrupting prompt {id}\n")
                }
                None => {
                    st.interrupt = true;
                    "Global interrupt (no prompt_id specified)\n".to_owned()
                }
            }
        };
        self.log.write(&self.hub, &line);
    }

    pub(crate) fn history_json(&self, max_items: Option<i64>, offset: i64) -> Value {
        let st = self.lock();
        let len = st.history.len() as i64;
        let mut offset = offset;
        if offset < 0
            && let Some(max) = max_items
        {
            offset = len - max;
        }
        let mut out = Map::new();
        for (i, (k, v)) in st.history.iter().enumerate() {
            if i as i64 >= offset {
                out.insert(k.clone(), v.clone());
                if max_items.is_some_and(|max| out.len() as i64 >= max) {
                    break;
                }
            }
        }
        Value::Object(out)
    }

    pub(crate) fn history_one(&self, id: &str) -> Value {
        let st = self.lock();
        st.history.get(id).map_or_else(|| json!({}), |e| json!({ id: e }))
    }

    pub(crate) fn history_post(&self, body: &Value) {
        let mut st = self.lock();
        if body.get("clear").is_some_and(truthy) {
            st.history.clear();
        }
        if let Some(Value::Array(ids)) = body.get("delete") {
            for id in ids.iter().filter_map(Value::as_str) {
                st.history.shift_remove(id);
            }
        }
    }

    pub(crate) fn add_history(&self, id: String, entry: Value) {
        let mut st = self.lock();
        if st.history.len() >= MAX_HISTORY
            && let Some(oldest) = st.history.keys().next().cloned()
        {
            st.history.shift_remove(&oldest);
        }
        st.history.insert(id, entry);
    }

    /// A simulated restart: forget the queue, the running job, the history
    /// and the caches, and drop every socket.
    pub(crate) fn restart(&self) {
        {
            let mut st = self.lock();
            let epoch = st.epoch + 1;
            *st = State {
                epoch,
                ..State::default()
            };
        }
        self.hub.disconnect_all();
        if let Ok(mut s) = self.sessions.lock() {
            s.abort_all();
        }
        self.work.notify_one();
    }
}

/// Python truthiness of a JSON value.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `GET /ws`: upgrade, or aiohttp's 400 for a plain GET.
pub(crate) fn ws_upgrade(shared: &Arc<Shared>, mut req: Request<Incoming>) -> Response<Body> {
    if !fastwebsockets::upgrade::is_upgrade_request(&req) {
        return api::text(
            400,
            "No WebSocket UPGRADE hdr: None\n Can \"Upgrade\" only to \"WebSocket\".",
        );
    }
    let q = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect::<Vec<_>>())
        .unwrap_or_default();
    let sid = api::param(&q, "clientId")
        .filter(|s| !s.is_empty())
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
    let Ok((resp, fut)) = fastwebsockets::upgrade::upgrade(&mut req) else {
        return api::text(
            400,
            "No WebSocket UPGRADE hdr: None\n Can \"Upgrade\" only to \"WebSocket\".",
        );
    };
    let session = Session {
        sid,
        fault: shared.faults.borrow().ws,
        features: shared.features(),
        status: json!({"status": {"exec_info": {"queue_remaining": shared.lock().remaining()}}}),
    };
    let hub = shared.hub.clone();
    if let Ok(mut s) = shared.sessions.lock() {
        while s.try_join_next().is_some() {}
        s.spawn(ws::serve(hub, fut, session));
    }
    let (mut parts, _) = resp.into_parts();
    parts.headers.insert(
        http::header::SERVER,
        http::HeaderValue::from_static("Python/3.11 aiohttp/3.14.5"),
    );
    Response::from_parts(parts, Body::empty())
}

/// ComfyUI 0.33.0's refusal of a class it does not have: the 0.8.0
/// `invalid_prompt` ("Cannot execute because node X does not exist.") as
/// `missing_node_type` with the class and node in `extra_info`; any other
/// refusal unchanged.
fn missing_node_type(prompt: &Map<String, Value>, body: Value) -> Value {
    let error = body.get("error");
    let class = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .and_then(|m| m.strip_prefix("Cannot execute because node "))
        .and_then(|r| r.strip_suffix(" does not exist."));
    let node = error
        .and_then(|e| e.get("details"))
        .and_then(Value::as_str)
        .and_then(|d| d.strip_prefix("Node ID '#"))
        .and_then(|d| d.strip_suffix('\''));
    let (Some(class), Some(node)) = (class, node) else {
        return body;
    };
    let title = prompt
        .get(node)
        .and_then(|n| n.pointer("/_meta/title"))
        .and_then(Value::as_str)
        .unwrap_or(class);
    json!({"error": {
        "type": "missing_node_type",
        "message": format!("Node '{title}' not found. The custom node may not be installed."),
        "details": format!("Node ID '#{node}'"),
        "extra_info": {"node_id": node, "class_type": class, "node_title": title},
    }, "node_errors": {}})
}
