//! The listener, the builder and the handle: starting, faulting, restarting
//! and stopping a simulator.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::catalog::{Catalog, Models};
use crate::fault::Faults;
use crate::state::Shared;
use crate::{Error, api};

/// Default simulated sampler speed.
pub const DEFAULT_STEPS_PER_SECOND: f64 = 50.0;

/// Configures and starts a simulator. Made by [`crate::Sim::builder`].
#[derive(Debug, Clone)]
pub struct SimBuilder {
    addr: SocketAddr,
    models_dir: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    steps_per_second: f64,
    previews: bool,
    faults: Faults,
    plugins: Plugins,
    node_replacements: Option<serde_json::Value>,
    extra_nodes: serde_json::Map<String, serde_json::Value>,
    version: crate::ComfyVersion,
    assets: bool,
}

/// The plugin simulations a [`SimBuilder`] turns on.
#[derive(Debug, Clone, Copy, Default)]
struct Plugins {
    model_manager: bool,
    manager: bool,
    model_search: bool,
    downloads: crate::model_manager::Downloads,
}

impl Default for SimBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            models_dir: None,
            data_dir: None,
            steps_per_second: DEFAULT_STEPS_PER_SECOND,
            previews: false,
            faults: Faults::default(),
            plugins: Plugins::default(),
            node_replacements: None,
            extra_nodes: serde_json::Map::new(),
            version: crate::ComfyVersion::default(),
            assets: false,
        }
    }
}

impl SimBuilder {
    /// Adds node classes to the recorded catalog (`/object_info` entries by
    /// class name; a recorded class of the same name is replaced), as a
    /// server with more custom node packs installed serves them. Entries
    /// that are not objects are ignored.
    #[must_use]
    pub fn extra_nodes(mut self, nodes: serde_json::Map<String, serde_json::Value>) -> Self {
        self.extra_nodes = nodes;
        self
    }

    /// Listens on this port of 127.0.0.1 (0, the default, picks a free one).
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.addr.set_port(port);
        self
    }

    /// Serves model folders from `dir/<folder>/` instead of the recorded
    /// server's model list.
    #[must_use]
    pub fn models_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.models_dir = Some(dir.into());
        self
    }

    /// Keeps `input/`, `output/` and `temp/` under `dir` (kept after stop)
    /// instead of a fresh temporary directory (removed on stop).
    #[must_use]
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// How many simulated sampler steps run per second (default 50).
    #[must_use]
    pub fn steps_per_second(mut self, steps: f64) -> Self {
        self.steps_per_second = steps;
        self
    }

    /// Sends a JPEG preview frame with every simulated sampler step, as
    /// ComfyUI does with `--preview-method` set.
    #[must_use]
    pub fn previews(mut self, on: bool) -> Self {
        self.previews = on;
        self
    }

    /// Serves ComfyUI-Model-Manager's routes (`/model-manager/...`), as a
    /// server with that plugin installed does (off by default).
    #[must_use]
    pub fn model_manager(mut self, on: bool) -> Self {
        self.plugins.model_manager = on;
        self
    }

    /// What Model-Manager downloads do (default: stall, as recorded
    /// without network).
    #[must_use]
    pub fn model_manager_downloads(mut self, downloads: crate::model_manager::Downloads) -> Self {
        self.plugins.downloads = downloads;
        self
    }

    /// Serves `GET /node_replacements` with `table` (an object of old class
    /// → list of entries), as ComfyUI 0.14 and later do; without it the
    /// route answers 404, as the recorded 0.8.0 does. `POST /prompt` does
    /// not apply them (the simulator validates what it is sent).
    #[must_use]
    pub fn node_replacements(mut self, table: serde_json::Value) -> Self {
        self.node_replacements = Some(table);
        self
    }

    /// Serves ComfyUI-Manager V4's routes (`/v2/manager/...`,
    /// `/v2/customnode/...`), as a server with that plugin does (off by
    /// default).
    #[must_use]
    pub fn manager(mut self, on: bool) -> Self {
        self.plugins.manager = on;
        self
    }

    /// Serves a small CivitAI and HuggingFace model-search simulation
    /// (`/api/v1/models`, `/api/models`) for tests (off by default).
    #[must_use]
    pub fn model_search(mut self, on: bool) -> Self {
        self.plugins.model_search = on;
        self
    }

    /// Turns the assets system on, as ComfyUI 0.33.0's `--enable-assets`:
    /// `GET /api/assets` lists the files of `input/` and `output/` with
    /// their BLAKE3 hashes, and `/view?filename=blake3:<hex>` serves a file
    /// by hash (off by default: 0.33.0 then answers `/api/assets` with 503;
    /// 0.8.0 has no such route either way).
    #[must_use]
    pub fn assets(mut self, on: bool) -> Self {
        self.assets = on;
        self
    }

    /// Answers as this ComfyUI release (default: 0.8.0, the recorded
    /// server; the `comfy-sim` command defaults to 0.33.0).
    #[must_use]
    pub fn comfyui_version(mut self, version: crate::ComfyVersion) -> Self {
        self.version = version;
        self
    }

    /// Starts with these faults in force.
    #[must_use]
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Binds the listener and starts serving on the current tokio runtime.
    ///
    /// # Errors
    /// [`Error::Bind`] when the address is taken, [`Error::Io`] when the
    /// data or models directory cannot be read or made, [`Error::Config`] for
    /// a non-positive step rate.
    pub async fn start(self) -> Result<SimHandle, Error> {
        if !(self.steps_per_second.is_finite() && self.steps_per_second > 0.0) {
            return Err(Error::Config(format!(
                "steps per second must be positive, got {}",
                self.steps_per_second
            )));
        }
        let models = match &self.models_dir {
            Some(dir) => Models::scan(dir).map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?,
            None => Models::recorded(),
        };
        let (root, owned) = match &self.data_dir {
            Some(d) => (d.clone(), false),
            None => (
                std::env::temp_dir().join(format!("comfy-sim-{}", uuid::Uuid::new_v4().simple())),
                true,
            ),
        };
        for sub in ["input", "output", "temp"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(|source| Error::Io { path: p, source })?;
        }
        // ComfyUI ships `output/_output_images_will_be_put_here` and
        // `input/example.png`; the recorded catalog lists the latter.
        let marker = root.join("output").join("_output_images_will_be_put_here");
        if !marker.exists() {
            std::fs::write(&marker, b"").map_err(|source| Error::Io {
                path: marker.clone(),
                source,
            })?;
        }
        let example = root.join("input").join("example.png");
        if !example.exists() {
            let png = crate::image::Frame::generated(64, 64, 1)
                .and_then(|f| f.to_png(&[]))
                .map_err(|e| Error::Config(e.to_string()))?;
            std::fs::write(&example, png).map_err(|source| Error::Io {
                path: example.clone(),
                source,
            })?;
        }
        let listener = TcpListener::bind(self.addr).await.map_err(|source| Error::Bind {
            addr: self.addr,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: self.addr,
            source,
        })?;
        let catalog = Catalog::new(&models, &crate::catalog::extras(self.version, &self.extra_nodes));
        let (faults_tx, faults_rx) = watch::channel(self.faults);
        let mut shared = Shared::new(
            catalog,
            models,
            self.models_dir.clone(),
            root.clone(),
            self.steps_per_second,
            self.previews,
            faults_tx,
        );
        shared.model_manager = self.plugins.model_manager;
        shared.downloads = self.plugins.downloads;
        shared.node_replacements = self.node_replacements;
        shared.manager_on = self.plugins.manager;
        shared.model_search = self.plugins.model_search;
        shared.assets = self.assets;
        shared.version = self.version;
        let shared = Arc::new(shared);
        shared.log.write(&shared.hub, "Starting server\n\n");
        shared
            .log
            .write(&shared.hub, &format!("To see the GUI go to: http://{addr}\n"));
        let mut tasks = JoinSet::new();
        tasks.spawn(crate::exec::worker(shared.clone()));
        tasks.spawn(accept_loop(listener, addr, shared.clone(), faults_rx));
        Ok(SimHandle {
            shared,
            addr,
            root,
            owned,
            tasks: Mutex::new(tasks),
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut faults: watch::Receiver<Faults>,
) {
    let mut listener = Some(listener);
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let refuse = faults.borrow().refuse_connections;
        if refuse {
            // Closing the listener makes the kernel refuse new connections.
            listener = None;
            conns.abort_all();
            if faults.changed().await.is_err() {
                return;
            }
            continue;
        }
        let l = match listener.take() {
            Some(l) => l,
            None => {
                if let Ok(l) = TcpListener::bind(addr).await {
                    l
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        };
        tokio::select! {
            accepted = l.accept() => {
                listener = Some(l);
                let Ok((stream, _)) = accepted else { continue };
                if faults.borrow().reset_connections {
                    drop(stream);
                    continue;
                }
                let shared = shared.clone();
                conns.spawn(async move {
                    let io = TokioIo::new(stream);
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(api::handle(shared, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .title_case_headers(true)
                        .serve_connection(io, svc)
                        .with_upgrades()
                        .await;
                });
            }
            changed = faults.changed() => {
                listener = Some(l);
                if changed.is_err() { return; }
                // A server that goes down or starts resetting drops the
                // connections it has, too (clients would reuse them).
                let f = faults.borrow();
                if f.refuse_connections || f.reset_connections {
                    conns.abort_all();
                }
            }
        }
    }
}

/// A running simulator. Dropping it stops the server, the worker and every
/// connection, and removes its temporary data directory.
#[derive(Debug)]
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    root: PathBuf,
    owned: bool,
    tasks: Mutex<JoinSet<()>>,
}

impl SimHandle {
    /// The `Authorization` headers the search simulation received, with
    /// the path each came with (`GET /api/v1/models: Bearer ...`).
    pub fn search_authorizations(&self) -> Vec<String> {
        self.shared.search_auth.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The WebSocket URL for `client_id`.
    pub fn ws_url(&self, client_id: &str) -> String {
        format!("ws://{}/ws?clientId={client_id}", self.addr)
    }

    /// The socket address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory holding `input/`, `output/` and `temp/`.
    pub fn data_dir(&self) -> &Path {
        &self.root
    }

    /// Replaces the faults in force.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.faults.send_replace(faults);
        self.shared.work.notify_one();
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.shared.faults.borrow().clone()
    }

    /// Simulates a restart: the queue, the running job, the history and the
    /// caches are forgotten and every WebSocket is dropped. Files on disk
    /// stay, as they would.
    pub fn restart(&self) {
        self.shared.restart();
    }

    /// How many requests reached the route at `path` (without `/api`, e.g.
    /// `"/prompt"`; parameterised routes as `"/history/{id}"`), faulted ones
    /// included.
    pub fn requests(&self, path: &str) -> u64 {
        self.shared
            .requests
            .lock()
            .map_or(0, |m| m.get(path).copied().unwrap_or(0))
    }

    /// Number of WebSocket clients currently registered.
    pub fn ws_clients(&self) -> usize {
        self.shared.hub.len()
    }

    /// Stops the simulator (the same as dropping the handle).
    pub fn stop(self) {}
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Ok(mut t) = self.tasks.lock() {
            t.abort_all();
        }
        self.shared.hub.disconnect_all();
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}
