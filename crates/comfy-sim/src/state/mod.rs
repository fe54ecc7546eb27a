//! The simulator's shared state: [`Shared`], which every handler and the
//! worker hold, and the lock around its mutable part ([`State`]).
//!
//! Layout: this file holds the struct, its locks and what touches all of
//! it (restart); [`queue`] the queue heap and the queue and history
//! routes; [`submit`] `POST /prompt`; [`info`] the server's answers about
//! itself. The WebSocket upgrade lives with the hub in `crate::ws`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::catalog::{Catalog, Models};
use crate::fault::Faults;
use crate::ws::Hub;

/// Milliseconds since the epoch, as ComfyUI's `int(time.time() * 1000)`.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

mod info;
mod queue;
mod submit;

pub(crate) use queue::{Job, State};

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
        let extensions = serde_json::from_str(include_str!(
            "../../../../fixtures/comfyui/http/get_extensions.body.json"
        ))
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
