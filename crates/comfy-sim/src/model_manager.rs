//! ComfyUI-Model-Manager's routes, as recorded (`/model-manager/...`, also
//! under `/api/`), off unless the simulator is built with
//! [`crate::SimBuilder::model_manager`].
//!
//! The simulator has no network. By default ([`Downloads::Stall`]) a
//! download task behaves as the recorded one whose URL could not be
//! fetched: it is created, then sits at `pause` with no progress. With
//! [`Downloads::Complete`] it runs as the plugin's worker does (`doing`,
//! progress, then the file lands in the models folder, a
//! `complete_download_task` event is sent and the task leaves the list);
//! with [`Downloads::Fail`] it stops at `pause` below 100 % after an
//! `update_download_task` event carrying the error, as a failed download
//! does. The quirks are kept: a create request without `previewFile`
//! fails with `Task <id> not found`, and a target file that exists fails
//! with `File already exists`. Files can be listed
//! (`GET /model-manager/models/{folder}`) and deleted
//! (`DELETE /model-manager/model/{folder}/{index}/{fullname}`).

use std::sync::Arc;

use http::Method;
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::api::{json as json_reply, read_body};
use crate::body::Body;
use crate::state::Shared;

/// What a Model-Manager download does in the simulator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Downloads {
    /// Sits at `pause` with no progress (the recording: no network).
    #[default]
    Stall,
    /// Runs to completion: the file (`sizeBytes`, at most 1 MiB, of zeros)
    /// lands in the models folder.
    Complete,
    /// Fails half way, as a download answered 404 does.
    Fail,
}

/// One download task.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    id: String,
    folder: String,
    fullname: String,
    status: &'static str,
    progress: f64,
    total: f64,
}

impl Task {
    fn to_json(&self) -> Value {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "sizes are small")]
        let downloaded = (self.total * self.progress / 100.0) as u64;
        json!({"taskId": self.id, "type": self.folder, "fullname": self.fullname, "preview": "no-preview.png",
               "status": self.status, "platform": "other", "downloadedSize": downloaded, "totalSize": self.total,
               "progress": self.progress, "bps": 0, "error": null})
    }
}

/// Where Model-Manager keeps a folder's files.
fn folder_dir(shared: &Shared, folder: &str) -> std::path::PathBuf {
    shared
        .models_root
        .clone()
        .unwrap_or_else(|| shared.root.join("models"))
        .join(folder)
}

/// A folder or relative file name that stays where it is put.
fn safe(part: &str) -> bool {
    !part.is_empty()
        && !part.starts_with('/')
        && !part.contains('\\')
        && part.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Runs download `id` as `shared.downloads` says.
fn run_download(shared: &Arc<Shared>, id: String) {
    let mode = shared.downloads;
    if mode == Downloads::Stall {
        return;
    }
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let set = |status: &'static str, progress: f64| {
            let mut tasks = shared.model_tasks();
            let task = tasks.iter_mut().find(|t| t.id == id)?;
            task.status = status;
            task.progress = progress;
            Some(task.clone())
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let Some(task) = set("doing", 50.0) else { return };
        shared.hub.send_json("update_download_task", task.to_json(), None);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if mode == Downloads::Fail {
            if let Some(task) = set("pause", 50.0) {
                let mut event = task.to_json();
                event["error"] = Value::from(format!("Failed to download {}, status code: 404", task.fullname));
                shared.hub.send_json("update_download_task", event, None);
            }
            return;
        }
        let Some(task) = set("doing", 100.0) else { return };
        let path = folder_dir(&shared, &task.folder).join(&task.fullname);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "capped at 1 MiB")]
        let size = task.total.clamp(0.0, f64::from(1u32 << 20)) as usize;
        let written = match path.parent() {
            Some(dir) => std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, vec![0u8; size])),
            None => Ok(()),
        };
        if let Err(e) = written {
            let _ = set("pause", 100.0);
            let mut event = task.to_json();
            event["error"] = Value::from(format!("Failed to save {}: {e}", task.fullname));
            shared.hub.send_json("update_download_task", event, None);
            return;
        }
        shared.model_tasks().retain(|t| t.id != id);
        shared
            .hub
            .send_json("complete_download_task", Value::from(id.as_str()), None);
    });
}

fn ok(data: &Value) -> http::Response<Body> {
    json_reply(200, &json!({"success": true, "data": data}))
}

fn fail(error: &str) -> http::Response<Body> {
    json_reply(200, &json!({"success": false, "error": error}))
}

/// Serves `path` (without `/api`) when it is a Model-Manager route.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    body: Incoming,
) -> Option<http::Response<Body>> {
    let rest = path.strip_prefix("/model-manager/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    Some(match (method, parts.as_slice()) {
        (&Method::GET, ["models"]) => {
            let root = shared.root.join("models");
            let folders: serde_json::Map<String, Value> = crate::catalog::FOLDERS
                .iter()
                .filter(|f| !matches!(**f, "configs" | "custom_nodes"))
                .map(|f| ((*f).to_owned(), json!([root.join(f).display().to_string()])))
                .collect();
            ok(&Value::Object(folders))
        }
        (&Method::POST, ["model"]) => {
            let Some(bytes) = read_body(body, 1 << 20).await else {
                return Some(fail("Create model download task failed: unreadable body"));
            };
            let form: std::collections::HashMap<String, String> = form_urlencoded::parse(&bytes).into_owned().collect();
            let id = format!("{:032x}", fastrand::u128(..));
            let (Some(folder), Some(fullname)) = (form.get("type"), form.get("fullname")) else {
                return Some(fail("Create model download task failed: 'type'"));
            };
            if !form.contains_key("previewFile") {
                return Some(fail(&format!("Create model download task failed: Task {id} not found")));
            }
            if shared
                .models
                .files(folder)
                .is_some_and(|files| files.iter().any(|f| f == fullname))
            {
                return Some(fail(&format!(
                    "Create model download task failed: File already exists: {}",
                    shared.root.join("models").join(folder).join(fullname).display()
                )));
            }
            if !safe(folder) || !safe(fullname) {
                return Some(fail(&format!(
                    "Create model download task failed: invalid path {folder}/{fullname}"
                )));
            }
            if folder_dir(shared, folder).join(fullname).exists() {
                return Some(fail(&format!(
                    "Create model download task failed: File already exists: {}",
                    folder_dir(shared, folder).join(fullname).display()
                )));
            }
            let total = form
                .get("sizeBytes")
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .unwrap_or(1024.0);
            shared.model_tasks().push(Task {
                id: id.clone(),
                folder: folder.clone(),
                fullname: fullname.clone(),
                status: "pause",
                progress: 0.0,
                total,
            });
            run_download(shared, id.clone());
            ok(&json!({"taskId": id}))
        }
        (&Method::GET, ["download", "task"]) => {
            let tasks: Vec<Value> = shared.model_tasks().iter().map(Task::to_json).collect();
            ok(&Value::Array(tasks))
        }
        (&Method::GET, ["models", folder]) if safe(folder) => {
            let Ok(entries) = std::fs::read_dir(folder_dir(shared, folder)) else {
                return Some(fail(&format!("Read models failed: '{folder}'")));
            };
            let files: Vec<Value> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let (base, ext) = name.rsplit_once('.')?;
                    let size = e.metadata().map_or(0, |m| m.len());
                    Some(
                        json!({"type": folder, "subFolder": "", "isFolder": false, "basename": base,
                                "extension": format!(".{ext}"), "pathIndex": 0, "sizeBytes": size}),
                    )
                })
                .collect();
            ok(&Value::Array(files))
        }
        (&Method::DELETE, ["model", folder, "0", name @ ..]) if !name.is_empty() => {
            let fullname = name.join("/");
            let path = folder_dir(shared, folder).join(&fullname);
            if !safe(folder) || !safe(&fullname) || !path.is_file() {
                return Some(fail(&format!("Delete model failed: File {fullname} not found")));
            }
            match std::fs::remove_file(&path) {
                Ok(()) => json_reply(200, &json!({"success": true})),
                Err(e) => fail(&format!("Delete model failed: {e}")),
            }
        }
        (&Method::DELETE, ["download", id]) => {
            let mut tasks = shared.model_tasks();
            let before = tasks.len();
            tasks.retain(|t| t.id != *id);
            if tasks.len() == before {
                fail(&format!("Delete download task failed: Task {id} not found"))
            } else {
                json_reply(200, &json!({"success": true}))
            }
        }
        _ => crate::api::empty(404),
    })
}
