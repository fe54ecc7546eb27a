//! Files in and out: `GET /view` (whole or streamed) and the image and mask
//! uploads with their multipart bodies. Apart because of the size caps and
//! streaming they carry.

use bytes::Bytes;
use http::Method;

use super::check;
use super::decode;
use super::multipart;
use crate::Preview;
use crate::UploadOptions;
use crate::types::{Download, FileRef, FileStream, Uploaded};
use crate::url::with_query;
use crate::{Client, Error};

impl Client {
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
}
