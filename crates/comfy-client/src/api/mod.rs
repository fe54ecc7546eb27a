//! The typed REST methods.

mod files;
mod models;
mod queue;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::name::{RelPath, Segment};
use crate::url::{segment, with_query};
use crate::{Client, Error};

/// How long a parsed `/object_info` is reused. ComfyUI's node catalog
/// changes only when custom nodes are installed (and ComfyUI restarted), so
/// a short reuse saves a multi-megabyte fetch and parse per call.
pub(crate) const OBJECT_INFO_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Options for `POST /prompt`.
#[derive(Debug, Clone, Default)]
pub struct PromptOptions {
    /// Use this prompt id instead of letting ComfyUI pick one.
    pub prompt_id: Option<String>,
    /// `extra_data` (e.g. `extra_pnginfo.workflow`).
    pub extra_data: Option<Map<String, Value>>,
    /// Queue at the front.
    pub front: bool,
    /// Run only these output nodes.
    pub partial_execution_targets: Option<Vec<String>>,
}

/// Where an upload goes.
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    /// Subfolder of the target directory.
    pub subfolder: Option<String>,
    /// `input` (default), `temp` or `output`.
    pub kind: Option<String>,
    /// Replace a file of the same name.
    pub overwrite: bool,
}

/// A `/view` preview conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preview {
    /// WebP at this quality (1..=100).
    Webp(u8),
    /// JPEG at this quality (1..=100).
    Jpeg(u8),
}

pub(crate) fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Decode {
        what: what.to_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn check(reply: &crate::transport::Reply, what: &str) -> Result<(), Error> {
    if reply.status.is_success() {
        return Ok(());
    }
    let body = String::from_utf8_lossy(&reply.body[..reply.body.len().min(512)]).into_owned();
    Err(Error::Status {
        what: what.to_owned(),
        status: reply.status.as_u16(),
        body,
    })
}

fn multipart(boundary: &str, file_field: (&str, &str, &[u8]), fields: &[(&str, String)]) -> Bytes {
    let clean = |s: &str| s.replace(['"', '\r', '\n'], "_");
    let mut body = Vec::with_capacity(file_field.2.len() + 512);
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{value}\r\n",
                clean(name)
            )
            .as_bytes(),
        );
    }
    let (name, filename, data) = file_field;
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            clean(name),
            clean(filename)
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Bytes::from(body)
}

impl Client {
    async fn get_raw(&self, target: &str, cap: usize, what: &str) -> Result<crate::transport::Reply, Error> {
        self.inner.http.send(Method::GET, target, None, cap, what).await
    }

    async fn get_json_capped<T: DeserializeOwned>(&self, target: &str, cap: usize, what: &str) -> Result<T, Error> {
        let reply = self.get_raw(target, cap, what).await?;
        check(&reply, what)?;
        decode(&reply.body, what)
    }

    /// GETs JSON; a 404 is `None`.
    async fn get_json_or_none<T: DeserializeOwned>(
        &self,
        target: &str,
        cap: usize,
        what: &str,
    ) -> Result<Option<T>, Error> {
        let reply = self.get_raw(target, cap, what).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        check(&reply, what)?;
        decode(&reply.body, what).map(Some)
    }

    /// POSTs JSON and expects a success status.
    async fn post_ok(&self, target: &str, body: &Value, what: &str) -> Result<(), Error> {
        let reply = self.post_json(target, body, what).await?;
        check(&reply, what)
    }

    pub(crate) async fn post_json(
        &self,
        target: &str,
        body: &Value,
        what: &str,
    ) -> Result<crate::transport::Reply, Error> {
        let bytes = Bytes::from(serde_json::to_vec(body).map_err(|e| Error::Config(e.to_string()))?);
        let cap = self.inner.http.config.limits.json;
        self.inner
            .http
            .send(
                Method::POST,
                target,
                Some(("application/json".into(), bytes)),
                cap,
                what,
            )
            .await
    }

    /// `GET route` as JSON, for the fixed routes below. Private on purpose:
    /// the client's surface is its typed methods, and nothing public takes
    /// a free path.
    async fn get_value(&self, route: &'static str) -> Result<Value, Error> {
        self.get_json_capped(route, self.inner.http.config.limits.json, route)
            .await
    }

    /// `GET /queue` as ComfyUI sends it (`queue_running`, `queue_pending`).
    pub async fn queue_raw(&self) -> Result<Value, Error> {
        self.get_json_capped("/queue", self.inner.http.config.limits.history, "queue")
            .await
    }

    /// `GET /prompt` as ComfyUI sends it (`exec_info.queue_remaining`).
    pub async fn prompt_status(&self) -> Result<Value, Error> {
        self.get_value("/prompt").await
    }

    /// HuggingFace's model search, `GET /api/models?{query}` (for a client
    /// built on a HuggingFace API base).
    pub async fn huggingface_models(&self, query: &[(&str, String)]) -> Result<Value, Error> {
        self.get_json_capped(
            &with_query("/api/models", query),
            self.inner.http.config.limits.json,
            "HuggingFace model search",
        )
        .await
    }

    /// One HuggingFace model, `GET /api/models/{owner}/{name}`.
    pub async fn huggingface_model(&self, id: &RelPath) -> Result<Value, Error> {
        self.get_json_capped(
            &format!("/api/models/{}", id.encoded()),
            self.inner.http.config.limits.json,
            "HuggingFace model",
        )
        .await
    }

    /// Civitai's model search, `GET /api/v1/models?{query}` (for a client
    /// built on a Civitai API base).
    pub async fn civitai_models(&self, query: &[(&str, String)]) -> Result<Value, Error> {
        self.get_json_capped(
            &with_query("/api/v1/models", query),
            self.inner.http.config.limits.json,
            "Civitai model search",
        )
        .await
    }

    /// `GET /object_info`: every node class, parsed.
    pub async fn object_info(&self) -> Result<std::sync::Arc<comfy_workflow::ObjectInfo>, Error> {
        let cached = |c: &Self| {
            let slot = c
                .inner
                .object_info
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            slot.as_ref()
                .filter(|(at, _)| at.elapsed() < OBJECT_INFO_TTL)
                .map(|(_, info)| std::sync::Arc::clone(info))
        };
        if let Some(info) = cached(self) {
            return Ok(info);
        }
        let raw: Value = self.object_info_raw().await?;
        let info = std::sync::Arc::new(comfy_workflow::ObjectInfo::from_value(&raw));
        *self
            .inner
            .object_info
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((std::time::Instant::now(), std::sync::Arc::clone(&info)));
        Ok(info)
    }

    /// Drops the cached `/object_info`, so the next [`Client::object_info`]
    /// fetches it again (after installing or removing custom nodes).
    pub fn forget_object_info(&self) {
        *self
            .inner
            .object_info
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// `GET /object_info` as JSON.
    pub async fn object_info_raw(&self) -> Result<Value, Error> {
        self.get_json_capped("/object_info", self.inner.http.config.limits.object_info, "object_info")
            .await
    }

    /// `GET /object_info/{class}`: the class's definition, or `None`.
    pub async fn object_info_class(&self, class: &Segment) -> Result<Option<Value>, Error> {
        let v: Value = self
            .get_json_capped(
                &format!("/object_info/{}", segment(class.as_str())),
                self.inner.http.config.limits.json,
                "object_info",
            )
            .await?;
        Ok(v.get(class.as_str()).cloned())
    }

    /// `GET /system_stats`.
    pub async fn system_stats(&self) -> Result<Value, Error> {
        self.get_value("/system_stats").await
    }

    /// `GET /node_replacements` (ComfyUI 0.14 and later): the node
    /// replacements `POST /prompt` applies; `None` when the server has no
    /// such route (older ComfyUI).
    pub async fn node_replacements(&self) -> Result<Option<Value>, Error> {
        const WHAT: &str = "node replacements";
        let reply = self
            .get_raw("/node_replacements", self.inner.http.config.limits.json, WHAT)
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        check(&reply, WHAT)?;
        decode(&reply.body, WHAT).map(Some)
    }

    /// `GET /features`.
    pub async fn features(&self) -> Result<Value, Error> {
        self.get_value("/features").await
    }

    /// `GET /extensions`.
    pub async fn extensions(&self) -> Result<Vec<String>, Error> {
        self.get_json_capped("/extensions", self.inner.http.config.limits.json, "extensions")
            .await
    }

    /// `GET /embeddings`.
    pub async fn embeddings(&self) -> Result<Vec<String>, Error> {
        self.get_json_capped("/embeddings", self.inner.http.config.limits.json, "embeddings")
            .await
    }

    /// `GET /workflow_templates`: custom-node pack → example workflow names.
    pub async fn workflow_templates(&self) -> Result<Value, Error> {
        self.get_value("/workflow_templates").await
    }

    /// `GET /global_subgraphs`: the subgraph blueprints custom nodes ship.
    pub async fn subgraphs(&self) -> Result<Value, Error> {
        self.get_value("/global_subgraphs").await
    }

    /// `GET /global_subgraphs/{id}`, or `None` when there is no such one.
    pub async fn subgraph(&self, id: &Segment) -> Result<Option<Value>, Error> {
        let target = format!("/global_subgraphs/{}", segment(id.as_str()));
        self.get_json_or_none(&target, self.inner.http.config.limits.json, "subgraph")
            .await
    }

    /// `GET /templates/index.json`: the official workflow templates the
    /// `comfyui-workflow-templates` package gives ComfyUI (groups of
    /// templates with name, title, description, tags, models), or `None`
    /// when the server does not serve them (no package, or too old).
    pub async fn templates_index(&self) -> Result<Option<Value>, Error> {
        self.get_json_or_none(
            "/templates/index.json",
            self.inner.http.config.limits.json,
            "workflow templates",
        )
        .await
    }

    /// `GET /templates/{name}.json`: one official template (an editor-format
    /// workflow), or `None` when the server has no such template.
    pub async fn template(&self, name: &Segment) -> Result<Option<Value>, Error> {
        let target = format!("/templates/{}.json", segment(name.as_str()));
        self.get_json_or_none(&target, self.inner.http.config.limits.json, "workflow template")
            .await
    }

    /// `GET /api/assets` with `query` (tags, name, paging, order), as
    /// ComfyUI 0.33 with `--enable-assets` answers it; `None` when the
    /// server has no such route (before the assets system). A server that
    /// has the route with assets off answers 503 ([`Error::Status`]).
    pub async fn assets(&self, query: &[(&str, String)]) -> Result<Option<Value>, Error> {
        self.get_json_or_none(
            &with_query("/api/assets", query),
            self.inner.http.config.limits.history,
            "listing assets",
        )
        .await
    }

    /// `GET /settings`.
    pub async fn settings(&self) -> Result<Value, Error> {
        self.get_value("/settings").await
    }

    /// `POST /settings`: merges `settings` into ComfyUI's settings.
    pub async fn update_settings(&self, settings: &Map<String, Value>) -> Result<(), Error> {
        self.post_ok("/settings", &Value::Object(settings.clone()), "updating settings")
            .await
    }

    /// `GET /api/jobs` with the given query pairs (`status`, `limit`, ...).
    pub async fn jobs(&self, query: &[(&str, String)]) -> Result<Value, Error> {
        self.get_json_capped(
            &with_query("/api/jobs", query),
            self.inner.http.config.limits.history,
            "jobs",
        )
        .await
    }

    /// `GET /api/jobs/{id}`, or `None` when ComfyUI does not know it.
    /// `prompt_id` must be a [`Segment`] (it is checked here).
    pub async fn job_info(&self, prompt_id: &str) -> Result<Option<Value>, Error> {
        let target = format!("/api/jobs/{}", segment(Segment::new(prompt_id)?.as_str()));
        self.get_json_or_none(&target, self.inner.http.config.limits.history, "job")
            .await
    }
}
