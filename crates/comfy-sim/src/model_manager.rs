//! ComfyUI-Model-Manager's routes, as recorded (`/model-manager/...`, also
//! under `/api/`), off unless the simulator is built with
//! [`crate::SimBuilder::model_manager`].
//!
//! The simulator has no network, so a download task behaves as the
//! recorded one whose URL could not be fetched: it is created, then sits
//! at `pause` with no progress. The quirks are kept: a create request
//! without `previewFile` fails with `Task <id> not found`, and a target
//! file that exists fails with `File already exists`.

use std::sync::Arc;

use http::Method;
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::api::{json as json_reply, read_body};
use crate::body::Body;
use crate::state::Shared;

/// One download task.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    id: String,
    folder: String,
    fullname: String,
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
            shared.model_tasks().push(Task {
                id: id.clone(),
                folder: folder.clone(),
                fullname: fullname.clone(),
            });
            ok(&json!({"taskId": id}))
        }
        (&Method::GET, ["download", "task"]) => {
            let tasks: Vec<Value> = shared
                .model_tasks()
                .iter()
                .map(|t| {
                    json!({"taskId": t.id, "type": t.folder, "fullname": t.fullname, "preview": "no-preview.png",
                           "status": "pause", "platform": "other", "downloadedSize": 0, "totalSize": 1024.0,
                           "progress": 0, "bps": 0, "error": null})
                })
                .collect();
            ok(&Value::Array(tasks))
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
