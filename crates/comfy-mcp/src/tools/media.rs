//! Video, animation and audio outputs in tool results.
//!
//! ComfyUI lists what a job saved under its node's output keys: `images`
//! (still images, and also `SaveVideo`, `SaveWEBM`, `SaveAnimatedWEBP`
//! and `SaveAnimatedPNG`, which add `animated: [true]`), `gifs` and
//! `videos` (Video Helper Suite's `VHS_VideoCombine`) and `audio`
//! (`SaveAudio`, `SaveAudioMP3`, `SaveAudioOpus`). [`kind_of`] says which
//! of those files are video or audio, so the result lists can mark them
//! (`media`), and [`describe`] is what `comfyui_get_image` answers for
//! them: the facts [`crate::media`] reads from the file, a contact sheet of
//! evenly spaced frames (image content within `server.max_inline_bytes`),
//! the sound itself as audio content when it fits that budget, and a link
//! to the whole file. A file whose format is not read here, too large to
//! read, or broken still gets a link and what is known (type and size):
//! never an error, since the job did make it.
//!
//! Why the whole file is read: an MP4's index (`moov`) is often at its
//! end. It is read into memory taken from the image memory budget
//! (`server.image_memory_mb`), as is the decode of a sheet
//! ([`crate::media::plan`] says what that costs before anything is
//! allocated).

use comfy_client::types::FileRef;
use comfy_guard::path::Extensions;
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value, json};
use std::fmt::Write as _;

use super::impls::{Output, ToolContext, ToolError};
use crate::media::{self, Info, Kind, MediaError};

/// Extensions of the video files ComfyUI and its common custom nodes save.
pub(super) const VIDEO_EXTENSIONS: &[&str] = &["mp4", "webm", "mov", "mkv", "m4v"];

/// Extensions of the audio files they save.
pub(super) const AUDIO_EXTENSIONS: &[&str] = &["flac", "mp3", "opus", "ogg", "wav", "m4a"];

/// The node output keys whose files the result lists give.
pub(super) const LISTED_KEYS: &[&str] = &["images", "gifs", "videos", "audio"];

/// Most bytes read of a file whose size ComfyUI does not say.
const UNKNOWN_LENGTH_CAP: usize = 64 << 20;

fn extension(filename: &str) -> String {
    filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether `filename` names a video or audio file (by its extension).
pub(super) fn is_media_name(filename: &str) -> bool {
    let e = extension(filename);
    VIDEO_EXTENSIONS.contains(&e.as_str()) || AUDIO_EXTENSIONS.contains(&e.as_str())
}

/// What `comfyui_get_image` accepts: the image extensions and the video
/// and audio ones.
pub(super) fn extensions() -> Extensions {
    let mut all: Vec<&str> = vec!["png", "jpg", "jpeg", "webp", "gif", "json"];
    all.extend(VIDEO_EXTENSIONS);
    all.extend(AUDIO_EXTENSIONS);
    Extensions::new(all)
}

/// `video` or `audio` for a file a node listed under `key` (its node's
/// output object is `node`, which says `animated`), `None` for a still
/// image or anything else.
#[must_use]
pub(super) fn kind_of(key: &str, filename: &str, node: Option<&Value>) -> Option<&'static str> {
    let e = extension(filename);
    if key == "audio" || AUDIO_EXTENSIONS.contains(&e.as_str()) {
        return Some("audio");
    }
    if matches!(key, "gifs" | "videos") || VIDEO_EXTENSIONS.contains(&e.as_str()) {
        return Some("video");
    }
    let animated = node
        .and_then(|n| n.get("animated"))
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v.as_bool() == Some(true)));
    (animated && matches!(e.as_str(), "gif" | "webp" | "png")).then_some("video")
}

/// One file of a node-output map, as the listing tools give it.
pub(super) struct Listed {
    /// The node that saved it.
    pub(super) node_id: String,
    /// `filename`, `subfolder`, `type` as ComfyUI wrote them.
    pub(super) item: Value,
    /// [`kind_of`].
    pub(super) media: Option<&'static str>,
}

/// Every file under [`LISTED_KEYS`] of a node-output map
/// (`{node: {images: [...], audio: [...], animated: [...]}}`), with its kind.
pub(super) fn listed(outputs: &Map<String, Value>) -> Vec<Listed> {
    let mut out = Vec::new();
    for (node, value) in outputs {
        for key in LISTED_KEYS {
            for item in value.get(*key).and_then(Value::as_array).into_iter().flatten() {
                let name = item.get("filename").and_then(Value::as_str).unwrap_or_default();
                out.push(Listed {
                    node_id: node.clone(),
                    item: item.clone(),
                    media: kind_of(key, name, Some(value)),
                });
            }
        }
    }
    out
}

/// A contact sheet in a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetOut {
    /// The JPEG, base64.
    pub base64: String,
    /// Its width.
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// The frames it shows, 0-based.
    pub frames: Vec<u64>,
    /// Only key frames were decoded.
    pub key_frames_only: bool,
}

/// What `comfyui_get_image` answers for a video, an animation or audio.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaReply {
    /// Where the whole file is (`/view` on ComfyUI).
    pub url: String,
    /// Its MIME type (from the file when it was read, else ComfyUI's).
    pub mime: String,
    /// Its size in bytes, when known.
    pub size: Option<u64>,
    /// The facts ([`Info::to_json`]).
    pub facts: Option<Value>,
    /// One line saying what it is.
    pub summary: String,
    /// Evenly spaced frames on one JPEG.
    pub sheet: Option<SheetOut>,
    /// The sound itself, base64, when it fits the inline budget.
    pub audio: Option<String>,
    /// An animated image within the inline budget: the data URI, as the
    /// peer returns every image (`result` and the first text block), and
    /// the base64 for image content.
    pub inline_file: Option<(String, String)>,
    /// Why something is missing (no sheet, no audio, no facts).
    pub notes: Vec<String>,
}

impl MediaReply {
    /// The MCP result: the file inline first when it is an animated image
    /// within the budget (the peer's shape), then the summary and notes,
    /// the contact sheet or the audio, and a resource link to the file;
    /// `structuredContent` has `result` (the data URI of an inline file,
    /// else the URL), `url`, `size_bytes`, `media` and `contact_sheet`.
    #[must_use]
    pub fn into_result(self) -> CallToolResult {
        let mut content = Vec::new();
        let mut structured = Map::new();
        if let Some((data_uri, base64)) = &self.inline_file {
            content.push(ContentBlock::text(data_uri.clone()));
            content.push(ContentBlock::image(base64.clone(), self.mime.clone()));
            structured.insert("result".to_owned(), Value::from(data_uri.clone()));
        } else {
            structured.insert("result".to_owned(), Value::from(self.url.clone()));
        }
        let mut text = self.summary.clone();
        if let Some(s) = &self.sheet {
            let _ = write!(
                text,
                ". Attached: a contact sheet of {} {}frames ({}), {}x{} JPEG",
                s.frames.len(),
                if s.key_frames_only { "key " } else { "" },
                s.frames.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
                s.width,
                s.height
            );
        }
        if self.audio.is_some() {
            text.push_str(". Attached: the audio");
        }
        let _ = write!(text, ". The whole file is at {}", self.url);
        for n in &self.notes {
            let _ = write!(text, "\nNote: {n}");
        }
        content.push(ContentBlock::text(text));
        if let Some(s) = &self.sheet {
            content.push(ContentBlock::image(s.base64.clone(), "image/jpeg"));
            structured.insert(
                "contact_sheet".to_owned(),
                json!({"width": s.width, "height": s.height, "mime_type": "image/jpeg",
                       "frames": s.frames, "key_frames_only": s.key_frames_only}),
            );
        }
        if let Some(a) = &self.audio {
            content.push(ContentBlock::audio(a.clone(), self.mime.clone()));
        }
        let name = self.url.rsplit_once("filename=").map_or("file", |(_, n)| n);
        let name = name.split('&').next().unwrap_or("file");
        let link = rmcp::model::Resource::new(self.url.clone(), name.to_owned()).with_mime_type(self.mime.clone());
        content.push(ContentBlock::resource_link(link));
        structured.insert("url".to_owned(), Value::from(self.url));
        structured.insert("mime_type".to_owned(), Value::from(self.mime));
        if let Some(n) = self.size {
            structured.insert("size_bytes".to_owned(), Value::from(n));
        }
        if let Some(f) = self.facts {
            structured.insert("media".to_owned(), f);
        }
        if !self.notes.is_empty() {
            structured.insert("notes".to_owned(), json!(self.notes));
        }
        let mut result = CallToolResult::success(content);
        result.structured_content = Some(Value::Object(structured));
        result
    }
}

/// Whether ComfyUI's content type for a file may be passed on: never
/// HTML, scripts, SVG or other XML (which a browser may run).
fn safe_type(mime: &str) -> bool {
    let m = mime.to_ascii_lowercase();
    !(m.starts_with("text/") || m.contains("xml") || m.contains("javascript") || m.contains("html"))
}

/// The first words of a summary for a file whose format was not read.
fn unread_summary(mime: &str, size: Option<u64>) -> String {
    match size {
        Some(n) => format!("A {mime} file of {n} bytes"),
        None => format!("A {mime} file"),
    }
}

/// What `comfyui_get_image` answers for `file` when its name is a video's
/// or an audio file's: see the module documentation. `url` is where the
/// client can fetch it.
///
/// # Errors
/// [`ToolError`] when ComfyUI cannot be asked or answers with a type that
/// is never passed on (HTML, SVG, scripts).
pub(super) async fn describe(file: &FileRef, url: String, cx: &ToolContext) -> Result<Output, ToolError> {
    let mut reply = MediaReply {
        url,
        ..MediaReply::default()
    };
    if let Some((bytes, permit)) = fetch(file, &mut reply, cx).await? {
        let inline = cx.config.server.max_inline_bytes;
        fill(&mut reply, bytes, inline, cx).await;
        drop(permit);
    }
    Ok(Output::Media(Box::new(reply)))
}

/// The facts of `file` ([`Info::to_json`]) for `_meta` of an output
/// resource read, when it is read here; `None` otherwise.
pub(super) async fn facts(file: &FileRef, cx: &ToolContext) -> Option<Value> {
    let mut reply = MediaReply::default();
    let (bytes, permit) = fetch(file, &mut reply, cx).await.ok()??;
    let info = tokio::task::spawn_blocking(move || media::probe(&bytes)).await.ok()??;
    drop(permit);
    Some(info.to_json())
}

/// Reads `file` whole from `/view` into memory taken from the image
/// budget, filling `reply`'s type, size and summary; `None` (with a note)
/// when it is too large or the budget is busy.
async fn fetch(
    file: &FileRef,
    reply: &mut MediaReply,
    cx: &ToolContext,
) -> Result<Option<(Vec<u8>, tokio::sync::OwnedSemaphorePermit)>, ToolError> {
    let mut stream = cx.client().view_stream(file, None).await?;
    let mime = stream
        .content_type()
        .unwrap_or("application/octet-stream")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !safe_type(&mime) {
        return Err(ToolError::rejected(format!(
            "refusing to return {mime:?}: only images, video and audio are returned"
        )));
    }
    let size = stream.content_length();
    reply.summary = unread_summary(&mime, size);
    reply.mime = mime;
    reply.size = size;
    let images = crate::images::global(cx.config.server.image_memory_mb);
    let cap = size.map_or(UNKNOWN_LENGTH_CAP, |n| usize::try_from(n).unwrap_or(usize::MAX));
    if cap > images.total() {
        reply.notes.push(format!(
            "the file is larger than the image memory budget of {} MiB (server.image_memory_mb), so it was not read \
             here; fetch it from the link",
            images.total() >> 20
        ));
        return Ok(None);
    }
    let permit = match images.acquire(cap, super::files::image_wait(cx)).await {
        Ok(p) => p,
        Err(e) => {
            reply.notes.push(format!("the file was not read: {e}"));
            return Ok(None);
        }
    };
    let mut bytes = Vec::with_capacity(cap.min(1 << 20));
    while let Some(chunk) = stream.next_chunk().await? {
        if bytes.len() + chunk.len() > cap {
            reply.notes.push(format!(
                "the file is longer than the {cap} bytes read here, so it was not described; fetch it from the link"
            ));
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    reply.size = Some(bytes.len() as u64);
    reply.summary = unread_summary(&reply.mime, reply.size);
    Ok(Some((bytes, permit)))
}

/// An animated GIF, WebP or PNG that `comfyui_get_image` read whole
/// (`bytes`, also returned inline as `data_uri` / `base64` when it fit the
/// budget): its facts and contact sheet, or `None` when it is a still
/// image.
pub(super) async fn animated(
    bytes: bytes::Bytes,
    mime: &str,
    url: String,
    inline_file: Option<(String, String)>,
    cx: &ToolContext,
) -> Option<Output> {
    let info = media::probe(&bytes).filter(|i| i.kind == Kind::Video && i.frames.unwrap_or(0) > 1)?;
    let mut reply = MediaReply {
        url,
        mime: mime.to_owned(),
        size: Some(bytes.len() as u64),
        summary: info.summary(),
        facts: Some(info.to_json()),
        inline_file,
        ..MediaReply::default()
    };
    let inline = cx.config.server.max_inline_bytes;
    sheet(&mut reply, &info, bytes, inline, cx).await;
    Some(Output::Media(Box::new(reply)))
}

/// Facts, then a sheet (video) or the sound (audio), into `reply`.
async fn fill(reply: &mut MediaReply, bytes: Vec<u8>, inline: usize, cx: &ToolContext) {
    let (bytes, info) = match tokio::task::spawn_blocking(move || {
        let info = media::probe(&bytes);
        (bytes, info)
    })
    .await
    {
        Ok(r) => r,
        Err(e) => {
            reply.notes.push(format!("reading the file failed: {e}"));
            return;
        }
    };
    let Some(info) = info else {
        reply.notes.push(
            "its format is not one read here (MP4/MOV, WebM/MKV, GIF, WebP, APNG, FLAC, MP3, Ogg, WAV)".to_owned(),
        );
        return;
    };
    info.mime.clone_into(&mut reply.mime);
    reply.summary = info.summary();
    reply.facts = Some(info.to_json());
    match info.kind {
        Kind::Audio => {
            if bytes.len().div_ceil(3) * 4 <= inline {
                reply.audio = Some(data_encoding::BASE64.encode(&bytes));
            } else {
                reply.notes.push(format!(
                    "the audio is {} bytes, over the inline budget of {inline} bytes (server.max_inline_bytes), so \
                     only the link is given",
                    bytes.len()
                ));
            }
        }
        Kind::Video => sheet(reply, &info, bytes.into(), inline, cx).await,
    }
}

/// A contact sheet of `bytes` (described by `info`) into `reply`, its
/// decode's memory taken from the image budget; a note when there is none.
async fn sheet(reply: &mut MediaReply, info: &Info, bytes: bytes::Bytes, inline: usize, cx: &ToolContext) {
    let no_sheet = |e: &MediaError| format!("no contact sheet: {e}");
    let plan = match media::plan(info, &bytes) {
        Ok(p) => p,
        Err(e) => {
            reply.notes.push(no_sheet(&e));
            return;
        }
    };
    let images = crate::images::global(cx.config.server.image_memory_mb);
    let permit = match images.acquire(plan.cost, super::files::image_wait(cx)).await {
        Ok(p) => p,
        Err(e) => {
            reply.notes.push(format!("no contact sheet: {e}"));
            return;
        }
    };
    let max_alloc = images.total();
    let info = info.clone();
    let made = tokio::task::spawn_blocking(move || {
        let made = media::contact_sheet(&info, &plan, &bytes, inline, max_alloc);
        drop(permit);
        made
    })
    .await;
    match made {
        Ok(Ok(s)) => {
            reply.sheet = Some(SheetOut {
                base64: data_encoding::BASE64.encode(&s.jpeg),
                width: s.width,
                height: s.height,
                frames: s.frames,
                key_frames_only: s.key_frames_only,
            });
        }
        Ok(Err(e)) => reply.notes.push(no_sheet(&e)),
        Err(e) => reply.notes.push(format!("no contact sheet: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{kind_of, listed};

    #[test]
    fn media_outputs_are_told_from_images() {
        let animated = json!({"animated": [true]});
        let still = json!({"animated": [false]});
        // SaveVideo and SaveWEBM list under `images` with `animated`.
        assert_eq!(
            kind_of("images", "video/ComfyUI_00001_.mp4", Some(&animated)),
            Some("video")
        );
        assert_eq!(kind_of("images", "ComfyUI_00001_.webm", Some(&animated)), Some("video"));
        assert_eq!(kind_of("images", "ComfyUI_00001_.webp", Some(&animated)), Some("video"));
        assert_eq!(kind_of("images", "ComfyUI_00001_.png", Some(&animated)), Some("video"));
        assert_eq!(kind_of("images", "ComfyUI_00001_.webp", Some(&still)), None);
        assert_eq!(kind_of("images", "ComfyUI_00001_.png", None), None);
        // Video Helper Suite.
        assert_eq!(kind_of("gifs", "AnimateDiff_00001.gif", None), Some("video"));
        assert_eq!(kind_of("gifs", "AnimateDiff_00001.mp4", None), Some("video"));
        assert_eq!(kind_of("videos", "x.webm", None), Some("video"));
        // Audio.
        assert_eq!(kind_of("audio", "audio/ComfyUI_00001_.flac", None), Some("audio"));
        assert_eq!(kind_of("gifs", "AnimateDiff_00001-audio.MP3", None), Some("audio"));
    }

    #[test]
    fn listed_files_come_from_the_known_keys_only() {
        let outputs = json!({
            "9": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]},
            "10": {"images": [{"filename": "v_00001_.mp4", "subfolder": "video", "type": "output"}], "animated": [true]},
            "11": {"audio": [{"filename": "s_00001_.flac", "subfolder": "audio", "type": "output"}]},
            "12": {"text": ["hello"], "3d": [{"filename": "m.glb"}]},
        });
        let l = listed(outputs.as_object().unwrap_or(&serde_json::Map::new()));
        let got: Vec<(String, Option<&str>)> = l.iter().map(|x| (x.node_id.clone(), x.media)).collect();
        assert_eq!(
            got,
            vec![
                ("9".into(), None),
                ("10".into(), Some("video")),
                ("11".into(), Some("audio"))
            ]
        );
    }
}
