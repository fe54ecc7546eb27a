//! ComfyUI-Manager V4's routes the MCP server uses, as recorded
//! (`/v2/manager/...`, `/v2/customnode/...`, also under `/api/`), off
//! unless the simulator is built with [`crate::SimBuilder::manager`].
//!
//! The recorded Manager had no network, so its installs failed; this one
//! pretends they succeed, so the whole flow (queue a task, start the
//! queue, poll its status, reboot) can be exercised: `install` adds the
//! pack to `/v2/customnode/installed`, `uninstall` removes it, `update`
//! bumps its version. `/v2/manager/reboot` answers without restarting.

use std::sync::Arc;

use http::Method;
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::api::{empty, json as json_reply, read_body, text};
use crate::body::Body;
use crate::state::Shared;

/// The Manager's state: installed packs and the task queue.
#[derive(Debug, Default)]
pub(crate) struct ManagerState {
    installed: serde_json::Map<String, Value>,
    pending: Vec<(String, Value)>,
    done: u64,
}

/// An excerpt of the recorded `GET /v2/customnode/getmappings?mode=local`.
const MAPPINGS: &str =
    include_str!("../../../fixtures/comfyui/manager_v4/get_customnode_getmappings_local.excerpt.json");

const KINDS: &[&str] = &[
    "install",
    "uninstall",
    "update",
    "update-comfyui",
    "fix",
    "disable",
    "enable",
    "install-model",
];

/// Serves `path` (without `/api`) when it is a Manager route.
pub(crate) async fn handle(shared: &Arc<Shared>, method: &Method, path: &str, body: Incoming) -> http::Response<Body> {
    match (method, path) {
        (&Method::GET, "/v2/manager/version") => text(200, "V4.0.4"),
        // Which pack provides which node classes: three packs of the
        // recorded 3,341 (the whole map is 1 MB), in its shape.
        (&Method::GET, "/v2/customnode/getmappings") => {
            json_reply(200, &serde_json::from_str::<Value>(MAPPINGS).unwrap_or(Value::Null))
        }
        (&Method::GET, "/v2/customnode/installed") => {
            json_reply(200, &Value::Object(shared.manager().installed.clone()))
        }
        (&Method::GET, "/v2/manager/queue/status") => {
            let m = shared.manager();
            let pending = m.pending.len() as u64;
            json_reply(
                200,
                &json!({"total_count": pending, "done_count": m.done, "in_progress_count": 0,
                        "pending_count": pending, "is_processing": false}),
            )
        }
        (&Method::POST, "/v2/manager/queue/task") => {
            let parsed = read_body(body, 1 << 20)
                .await
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
            let Some(task) = parsed else {
                return text(400, "Invalid task data: body is not JSON");
            };
            let kind = task.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
            let complete =
                task.get("ui_id").is_some() && task.get("client_id").is_some() && task.get("params").is_some();
            if !complete {
                return text(
                    400,
                    "Invalid task data: 3 validation errors for QueueTaskItem (ui_id, client_id, params: Field required)",
                );
            }
            if !KINDS.contains(&kind.as_str()) {
                return text(
                    400,
                    &format!(
                        "Invalid task data: 1 validation error for QueueTaskItem\nkind\n  Input should be 'install', 'uninstall', 'update', 'update-comfyui', 'fix', 'disable', 'enable' or 'install-model' [type=enum, input_value='{kind}', input_type=str]"
                    ),
                );
            }
            let params = task.get("params").cloned().unwrap_or(Value::Null);
            shared.manager().pending.push((kind, params));
            empty(200)
        }
        (&Method::GET, "/v2/manager/queue/start") => {
            let mut m = shared.manager();
            let tasks: Vec<(String, Value)> = m.pending.drain(..).collect();
            for (kind, params) in tasks {
                let id = params
                    .get("id")
                    .or_else(|| params.get("node_name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                match kind.as_str() {
                    "install" => {
                        let ver = params.get("version").and_then(Value::as_str).unwrap_or("latest");
                        let ver = if ver == "latest" { "1.0.0" } else { ver };
                        m.installed.insert(
                            id.clone(),
                            json!({"ver": ver, "cnr_id": id, "aux_id": null, "enabled": true}),
                        );
                    }
                    "uninstall" => {
                        m.installed.remove(&id);
                    }
                    "update" => {
                        if let Some(entry) = m.installed.get_mut(&id) {
                            entry["ver"] = json!("1.0.1");
                        }
                    }
                    _ => {}
                }
                m.done += 1;
            }
            empty(200)
        }
        (&Method::GET, "/v2/manager/reboot") => empty(200),
        _ => crate::api::not_found_route(),
    }
}
