//! `POST /prompt`: taking a prompt in, validating it and queueing it.
//!
//! The biggest single handler of the simulator, so it has its own file: the
//! body checks ComfyUI makes before validation, the 0.33.0 refusal shape
//! for missing classes, the queue cap, and the reply.

use http::Response;
use serde_json::{Map, Number, Value, json};

use super::{Job, Shared, now_ms, truthy};
use crate::api::{self, json as json_resp};
use crate::body::Body;

/// Queue entries accepted before `POST /prompt` is refused with a 500, to
/// bound memory.
const MAX_QUEUE: usize = 10_000;

impl Shared {
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
