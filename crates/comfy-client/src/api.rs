//! The typed REST methods.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::name::{RelPath, Segment};
use crate::types::{Download, FileRef, FileStream, HistoryEntry, PromptAccepted, Queue, Uploaded};
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

    /// `GET /view`: a file, read whole, bounded by the file size cap.
    pub async fn view(&self, file: &FileRef, preview: Option<Preview>) -> Result<Download, Error> {
        let mut stream = self.view_stream(file, preview).await?;
        let mut bytes = Vec::with_capacity(stream.content_length().map_or(0, |n| {
            usize::try_from(n).unwrap_or(0).min(self.inner.http.config.limits.file)
        }));
        while let Some(chunk) = stream.next_chunk().await? {
            bytes.extend_from_slice(&chunk);
        }
        Ok(Download {
            bytes: Bytes::from(bytes),
            content_type: stream.content_type,
        })
    }

    /// `GET /view`, streamed: returns once ComfyUI has answered with a
    /// success status; the body then comes chunk by chunk from
    /// [`FileStream::next_chunk`], still bounded by the file size cap, the
    /// read timeout and the call's deadline.
    pub async fn view_stream(&self, file: &FileRef, preview: Option<Preview>) -> Result<FileStream, Error> {
        const WHAT: &str = "downloading a file";
        if file.filename.is_empty() {
            return Err(Error::InvalidArgument {
                name: "filename",
                reason: "must not be empty".into(),
            });
        }
        let mut q = vec![
            ("filename", file.filename.clone()),
            ("type", file.kind.clone()),
            ("subfolder", file.subfolder.clone()),
        ];
        match preview {
            Some(Preview::Webp(q_)) => q.push(("preview", format!("webp;{}", q_.clamp(1, 100)))),
            Some(Preview::Jpeg(q_)) => q.push(("preview", format!("jpeg;{}", q_.clamp(1, 100)))),
            None => {}
        }
        let target = with_query("/view", &q);
        let mut head = self
            .inner
            .http
            .open(&target, self.inner.http.config.limits.file, WHAT)
            .await?;
        if !head.status.is_success() {
            // Read a little of the error body for the message.
            let mut body = Vec::new();
            while body.len() < 512
                && let Ok(Some(chunk)) = head.chunk().await
            {
                body.extend_from_slice(&chunk);
            }
            body.truncate(512);
            return Err(Error::Status {
                what: WHAT.to_owned(),
                status: head.status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        let content_type = head
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(FileStream { content_type, head })
    }

    /// `POST /upload/image`.
    pub async fn upload_image(&self, filename: &str, data: &[u8], options: &UploadOptions) -> Result<Uploaded, Error> {
        self.upload("/upload/image", filename, data, options, None).await
    }

    /// `POST /upload/mask`: `data` is the mask; its alpha is applied to
    /// `original`.
    pub async fn upload_mask(
        &self,
        filename: &str,
        data: &[u8],
        original: &FileRef,
        options: &UploadOptions,
    ) -> Result<Uploaded, Error> {
        self.upload("/upload/mask", filename, data, options, Some(original))
            .await
    }

    async fn upload(
        &self,
        route: &str,
        filename: &str,
        data: &[u8],
        options: &UploadOptions,
        original: Option<&FileRef>,
    ) -> Result<Uploaded, Error> {
        if filename.is_empty() {
            return Err(Error::InvalidArgument {
                name: "filename",
                reason: "must not be empty".into(),
            });
        }
        let mut fields = vec![("overwrite", if options.overwrite { "true" } else { "false" }.to_owned())];
        fields.push(("type", options.kind.clone().unwrap_or_else(|| "input".into())));
        if let Some(sub) = &options.subfolder {
            fields.push(("subfolder", sub.clone()));
        }
        if let Some(orig) = original {
            fields.push(("original_ref", serde_json::to_string(orig).unwrap_or_default()));
        }
        let boundary = format!("comfy-client-{}", uuid::Uuid::new_v4().simple());
        let body = multipart(&boundary, ("image", filename, data), &fields);
        let ct = format!("multipart/form-data; boundary={boundary}");
        let reply = self
            .inner
            .http
            .send(
                Method::POST,
                route,
                Some((ct, body)),
                self.inner.http.config.limits.json,
                "uploading",
            )
            .await?;
        check(&reply, "uploading")?;
        decode(&reply.body, "uploading")
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

    /// `GET /models`: the model folder names.
    pub async fn model_folders(&self) -> Result<Vec<String>, Error> {
        self.get_json_capped("/models", self.inner.http.config.limits.json, "model folders")
            .await
    }

    /// `GET /models/{folder}`: the files, or `None` for an unknown folder.
    pub async fn models(&self, folder: &Segment) -> Result<Option<Vec<String>>, Error> {
        let target = format!("/models/{}", segment(folder.as_str()));
        self.get_json_or_none(&target, self.inner.http.config.limits.json, "model list")
            .await
    }

    /// `GET /experiment/models/{folder}`: the folder's files with their
    /// path index and dates, or `None` for an unknown folder.
    pub async fn models_detailed(&self, folder: &Segment) -> Result<Option<Value>, Error> {
        let target = format!("/experiment/models/{}", segment(folder.as_str()));
        self.get_json_or_none(&target, self.inner.http.config.limits.json, "model details")
            .await
    }

    /// `GET /experiment/models/preview/{folder}/{path_index}/{filename}`:
    /// the model's preview image, or `None` when it has none.
    pub async fn model_preview(
        &self,
        folder: &Segment,
        path_index: u64,
        filename: &RelPath,
    ) -> Result<Option<Download>, Error> {
        const WHAT: &str = "model preview";
        let target = format!(
            "/experiment/models/preview/{}/{path_index}/{}",
            segment(folder.as_str()),
            filename.encoded()
        );
        let reply = self.get_raw(&target, self.inner.http.config.limits.file, WHAT).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        check(&reply, WHAT)?;
        let content_type = reply
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Some(Download {
            bytes: reply.body,
            content_type,
        }))
    }

    /// `GET /view_metadata/{folder}?filename=`: a safetensors file's
    /// `__metadata__`, or `None` when it has none.
    pub async fn model_metadata(&self, folder: &Segment, filename: &RelPath) -> Result<Option<Value>, Error> {
        let target = with_query(
            &format!("/view_metadata/{}", segment(folder.as_str())),
            &[("filename", filename.as_str().to_owned())],
        );
        self.get_json_or_none(&target, self.inner.http.config.limits.json, "model metadata")
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

    /// Whether ComfyUI-Model-Manager is installed (`GET /model-manager/models`
    /// answers `{"success": true, ...}`).
    pub async fn model_manager_available(&self) -> Result<bool, Error> {
        let reply = self
            .get_raw(
                "/model-manager/models",
                self.inner.http.config.limits.json,
                "Model-Manager probe",
            )
            .await?;
        if !reply.status.is_success() {
            return Ok(false);
        }
        Ok(serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("success").and_then(Value::as_bool))
            .unwrap_or(false))
    }

    /// `POST /model-manager/model` (form-encoded): asks Model-Manager to
    /// download a model. Returns its `{success, data | error}` answer.
    pub async fn model_manager_download(&self, form: &[(&str, &str)]) -> Result<Value, Error> {
        const WHAT: &str = "Model-Manager download";
        // The serializer is not `Send`: finish it before any await.
        let bytes = {
            let mut body = form_urlencoded::Serializer::new(String::new());
            for (k, v) in form {
                body.append_pair(k, v);
            }
            Bytes::from(body.finish())
        };
        let cap = self.inner.http.config.limits.json;
        let reply = self
            .inner
            .http
            .send(
                Method::POST,
                "/model-manager/model",
                Some(("application/x-www-form-urlencoded".into(), bytes)),
                cap,
                WHAT,
            )
            .await?;
        check(&reply, WHAT)?;
        decode(&reply.body, WHAT)
    }

    /// `GET /model-manager/download/task`: Model-Manager's download tasks.
    pub async fn model_manager_tasks(&self) -> Result<Value, Error> {
        self.get_json_capped(
            "/model-manager/download/task",
            self.inner.http.config.limits.json,
            "Model-Manager tasks",
        )
        .await
    }

    /// `DELETE /model-manager/download/{task_id}`: cancels and removes a
    /// download task. Returns Model-Manager's `{success, error?}` answer.
    pub async fn model_manager_cancel(&self, task_id: &Segment) -> Result<Value, Error> {
        let target = format!("/model-manager/download/{}", segment(task_id.as_str()));
        self.delete_json(&target, "Model-Manager cancel").await
    }

    /// `DELETE target`, answered with JSON.
    async fn delete_json(&self, target: &str, what: &str) -> Result<Value, Error> {
        let reply = self
            .inner
            .http
            .send(Method::DELETE, target, None, self.inner.http.config.limits.json, what)
            .await?;
        check(&reply, what)?;
        decode(&reply.body, what)
    }

    /// `GET /model-manager/models/{folder}`: the files Model-Manager sees in
    /// a model folder (its `{success, data | error}` answer).
    pub async fn model_manager_models(&self, folder: &Segment) -> Result<Value, Error> {
        let target = format!("/model-manager/models/{}", segment(folder.as_str()));
        self.get_json_capped(&target, self.inner.http.config.limits.json, "Model-Manager model list")
            .await
    }

    /// `DELETE /model-manager/model/{folder}/{index}/{fullname}`: deletes a
    /// model file (with its preview and notes). Only the operator smoke
    /// test uses it, on the file it downloaded itself; no tool reaches it.
    /// `fullname` may name a subfolder: each of its segments is encoded.
    pub async fn model_manager_delete_model(
        &self,
        folder: &Segment,
        index: u32,
        fullname: &RelPath,
    ) -> Result<Value, Error> {
        let target = format!(
            "/model-manager/model/{}/{index}/{}",
            segment(folder.as_str()),
            fullname.encoded()
        );
        self.delete_json(&target, "Model-Manager model delete").await
    }

    /// ComfyUI-Manager's version (`GET /v2/manager/version`), or `None`
    /// when it is not installed.
    pub async fn manager_version(&self) -> Result<Option<String>, Error> {
        let reply = self
            .get_raw(
                "/v2/manager/version",
                self.inner.http.config.limits.json,
                "Manager probe",
            )
            .await?;
        if !reply.status.is_success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&reply.body).trim().to_owned();
        Ok((!text.is_empty() && text.len() < 64).then_some(text))
    }

    /// `GET /v2/customnode/getmappings?mode=local`: ComfyUI-Manager's map
    /// of node packs (by URL) to the node classes they provide,
    /// `{url: [[class, ...], {title, title_aux, ...}]}`.
    pub async fn manager_mappings(&self) -> Result<Value, Error> {
        self.get_value("/v2/customnode/getmappings?mode=local").await
    }

    /// `GET /v2/customnode/installed`: the installed node packs.
    pub async fn manager_installed(&self) -> Result<Value, Error> {
        self.get_value("/v2/customnode/installed").await
    }

    /// `POST /v2/manager/queue/task`: queues an install, uninstall or
    /// update task.
    pub async fn manager_queue_task(&self, task: &Value) -> Result<(), Error> {
        self.post_ok("/v2/manager/queue/task", task, "queueing a Manager task")
            .await
    }

    /// `GET /v2/manager/queue/start`: runs the queued tasks.
    pub async fn manager_queue_start(&self) -> Result<(), Error> {
        const WHAT: &str = "starting the Manager queue";
        let reply = self
            .get_raw("/v2/manager/queue/start", self.inner.http.config.limits.json, WHAT)
            .await?;
        check(&reply, WHAT)
    }

    /// `GET /v2/manager/queue/status`.
    pub async fn manager_queue_status(&self) -> Result<Value, Error> {
        self.get_value("/v2/manager/queue/status").await
    }

    /// `GET /v2/manager/reboot`: restarts ComfyUI.
    pub async fn manager_reboot(&self) -> Result<(), Error> {
        const WHAT: &str = "restarting ComfyUI";
        let reply = self
            .get_raw("/v2/manager/reboot", self.inner.http.config.limits.json, WHAT)
            .await?;
        check(&reply, WHAT)
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
