//! The prompt queue and the history: queueing a prompt, reading, clearing and
//! interrupting the queue, reading and deleting history entries. One
//! `impl Client` block per family of endpoints keeps each file to one job.

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::check;
use super::decode;
use crate::PromptOptions;
use crate::name::Segment;
use crate::types::{HistoryEntry, PromptAccepted, Queue};
use crate::url::{segment, with_query};
use crate::{Client, Error};

impl Client {
    /// `POST /prompt`. Never retried.
    ///
    /// # Errors
    /// [`Error::ValidationFailed`] with ComfyUI's `error` and `node_errors`
    /// when it refuses the prompt.
    pub async fn queue_prompt(
        &self,
        workflow: &comfy_workflow::Workflow,
        options: PromptOptions,
    ) -> Result<PromptAccepted, Error> {
        let mut body = Map::new();
        body.insert("prompt".into(), workflow.to_value());
        body.insert("client_id".into(), Value::String(self.inner.client_id.clone()));
        if let Some(id) = options.prompt_id {
            body.insert("prompt_id".into(), Value::String(id));
        }
        if let Some(extra) = options.extra_data {
            body.insert("extra_data".into(), Value::Object(extra));
        }
        if options.front {
            body.insert("front".into(), Value::Bool(true));
        }
        if let Some(targets) = options.partial_execution_targets {
            body.insert("partial_execution_targets".into(), json!(targets));
        }
        let reply = self
            .post_json("/prompt", &Value::Object(body), "queueing the prompt")
            .await?;
        if reply.status == StatusCode::BAD_REQUEST
            && let Ok(v) = serde_json::from_slice::<Value>(&reply.body)
            && v.get("error").is_some()
        {
            return Err(Error::ValidationFailed {
                error: Box::new(v.get("error").cloned().unwrap_or(Value::Null)),
                node_errors: Box::new(v.get("node_errors").cloned().unwrap_or(Value::Null)),
            });
        }
        check(&reply, "queueing the prompt")?;
        decode(&reply.body, "queueing the prompt")
    }

    /// `GET /prompt`: how many prompts are queued or running.
    pub async fn queue_remaining(&self) -> Result<u64, Error> {
        let v: Value = self
            .get_json_capped("/prompt", self.inner.http.config.limits.json, "queue state")
            .await?;
        Ok(v.pointer("/exec_info/queue_remaining")
            .and_then(Value::as_u64)
            .unwrap_or(0))
    }

    /// `GET /queue`.
    pub async fn queue(&self) -> Result<Queue, Error> {
        let v: Value = self
            .get_json_capped("/queue", self.inner.http.config.limits.history, "queue")
            .await?;
        Ok(Queue::from_value(&v))
    }

    /// `POST /queue {"clear": true}`: drops every waiting prompt.
    pub async fn clear_queue(&self) -> Result<(), Error> {
        self.post_ok("/queue", &json!({"clear": true}), "clearing the queue")
            .await
    }

    /// `POST /queue {"delete": ids}`: drops these waiting prompts.
    pub async fn delete_from_queue(&self, prompt_ids: &[String]) -> Result<(), Error> {
        self.post_ok("/queue", &json!({"delete": prompt_ids}), "deleting from the queue")
            .await
    }

    /// `POST /interrupt`: stops the running prompt, or only `prompt_id` if
    /// it is the one running.
    pub async fn interrupt(&self, prompt_id: Option<&str>) -> Result<(), Error> {
        let body = prompt_id.map_or_else(|| json!({}), |id| json!({"prompt_id": id}));
        self.post_ok("/interrupt", &body, "interrupting").await
    }

    /// `GET /history?max_items=&offset=`.
    pub async fn history(&self, max_items: Option<u32>, offset: Option<u32>) -> Result<Map<String, Value>, Error> {
        let mut q = Vec::new();
        if let Some(m) = max_items {
            q.push(("max_items", m.to_string()));
        }
        if let Some(o) = offset {
            q.push(("offset", o.to_string()));
        }
        self.get_json_capped(
            &with_query("/history", &q),
            self.inner.http.config.limits.history,
            "history",
        )
        .await
    }

    /// `GET /history/{id}`: the entry, or `None` while it has not finished.
    /// `prompt_id` must be a [`Segment`] (it is checked here).
    pub async fn history_entry(&self, prompt_id: &str) -> Result<Option<HistoryEntry>, Error> {
        let id = Segment::new(prompt_id)?;
        let v: Map<String, Value> = self
            .get_json_capped(
                &format!("/history/{}", segment(id.as_str())),
                self.inner.http.config.limits.history,
                "history entry",
            )
            .await?;
        match v.get(prompt_id) {
            Some(e) => decode(&serde_json::to_vec(e).unwrap_or_default(), "history entry").map(Some),
            None => Ok(None),
        }
    }

    /// `POST /history {"clear": true}`.
    pub async fn clear_history(&self) -> Result<(), Error> {
        self.post_ok("/history", &json!({"clear": true}), "clearing history")
            .await
    }

    /// `POST /history {"delete": ids}`.
    pub async fn delete_history(&self, prompt_ids: &[String]) -> Result<(), Error> {
        self.post_ok("/history", &json!({"delete": prompt_ids}), "deleting history")
            .await
    }
}
