//! Models: the folders and files ComfyUI lists, their previews and metadata,
//! and the ComfyUI-Model-Manager and ComfyUI-Manager endpoints. Apart because
//! they are optional servers' APIs more than ComfyUI's own.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;

use super::check;
use super::decode;
use crate::name::{RelPath, Segment};
use crate::types::Download;
use crate::url::{segment, with_query};
use crate::{Client, Error};

impl Client {
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
}
