//! Typed answers. Every type tolerates fields it does not know (ComfyUI
//! versions differ) and keeps what it does not type as JSON.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /prompt` accepted the prompt.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PromptAccepted {
    /// The prompt id.
    pub prompt_id: String,
    /// Its queue number (negative when queued at the front).
    pub number: Value,
    /// Errors of outputs that were dropped (others ran).
    #[serde(default)]
    pub node_errors: Value,
}

/// One entry of the queue: `[number, prompt_id, prompt, extra_data, outputs]`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    /// Queue number.
    pub number: Value,
    /// Prompt id.
    pub prompt_id: String,
    /// The prompt.
    pub prompt: Value,
    /// Extra data (client id, creation time, ...).
    pub extra_data: Value,
}

/// `GET /queue`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Queue {
    /// Running prompts (at most one).
    pub running: Vec<QueueItem>,
    /// Waiting prompts, in ComfyUI's order.
    pub pending: Vec<QueueItem>,
}

impl Queue {
    pub(crate) fn from_value(v: &Value) -> Self {
        let items = |key: &str| -> Vec<QueueItem> {
            v.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|item| {
                            let item = item.as_array()?;
                            Some(QueueItem {
                                number: item.first().cloned().unwrap_or(Value::Null),
                                prompt_id: item.get(1)?.as_str()?.to_owned(),
                                prompt: item.get(2).cloned().unwrap_or(Value::Null),
                                extra_data: item.get(3).cloned().unwrap_or(Value::Null),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            running: items("queue_running"),
            pending: items("queue_pending"),
        }
    }

    /// Whether `prompt_id` is running.
    pub fn is_running(&self, prompt_id: &str) -> bool {
        self.running.iter().any(|i| i.prompt_id == prompt_id)
    }

    /// 1-based position of `prompt_id` among the waiting prompts, in the
    /// order ComfyUI will run them (lowest number first).
    pub fn position(&self, prompt_id: &str) -> Option<usize> {
        let mut pending: Vec<&QueueItem> = self.pending.iter().collect();
        pending.sort_by(|a, b| {
            a.number
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b.number.as_f64().unwrap_or(0.0))
        });
        pending.iter().position(|i| i.prompt_id == prompt_id).map(|p| p + 1)
    }
}

/// A file ComfyUI wrote or holds: what `/view` takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub struct FileRef {
    /// File name.
    pub filename: String,
    /// Subfolder (may be empty).
    #[serde(default)]
    pub subfolder: String,
    /// `output`, `input` or `temp`.
    #[serde(rename = "type", default = "output")]
    pub kind: String,
}

fn output() -> String {
    "output".to_owned()
}

/// An image (or other file) a node produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputFile {
    /// The node that produced it.
    pub node_id: String,
    /// The output kind (`images`, `gifs`, `videos`, ...).
    pub media: String,
    /// Where it is.
    #[serde(flatten)]
    pub file: FileRef,
}

/// Every file-like output in a node-output map (`{node: {images: [...]}}`).
pub fn output_files(outputs: &Map<String, Value>) -> Vec<OutputFile> {
    let mut out = Vec::new();
    for (node, value) in outputs {
        let Some(kinds) = value.as_object() else { continue };
        for (media, items) in kinds {
            let Some(items) = items.as_array() else { continue };
            for item in items {
                if let Ok(file) = serde_json::from_value::<FileRef>(item.clone()) {
                    out.push(OutputFile {
                        node_id: node.clone(),
                        media: media.clone(),
                        file,
                    });
                }
            }
        }
    }
    out
}

/// The status part of a history entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct HistoryStatus {
    /// `success` or `error`.
    #[serde(default)]
    pub status_str: String,
    /// Whether it completed.
    #[serde(default)]
    pub completed: bool,
    /// `[[event, data], ...]`.
    #[serde(default)]
    pub messages: Vec<Value>,
}

/// One `/history` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct HistoryEntry {
    /// `[number, prompt_id, prompt, extra_data, outputs]`.
    #[serde(default)]
    pub prompt: Value,
    /// Node outputs.
    #[serde(default)]
    pub outputs: Map<String, Value>,
    /// How it ended.
    #[serde(default)]
    pub status: Option<HistoryStatus>,
}

impl HistoryEntry {
    /// The files it produced.
    pub fn files(&self) -> Vec<OutputFile> {
        output_files(&self.outputs)
    }

    /// The data of the message `event` (`execution_error`, ...), if any.
    pub fn message(&self, event: &str) -> Option<&Value> {
        self.status.as_ref()?.messages.iter().find_map(|m| {
            let m = m.as_array()?;
            (m.first()?.as_str()? == event).then(|| m.get(1)).flatten()
        })
    }
}

/// `POST /upload/image` (or `/upload/mask`) stored the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Uploaded {
    /// The name it was stored under (may differ: `name (1).png`).
    pub name: String,
    /// Subfolder.
    #[serde(default)]
    pub subfolder: String,
    /// `input`, `temp` or `output`.
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// A downloaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// Its bytes.
    pub bytes: bytes::Bytes,
    /// Its content type, as ComfyUI sent it.
    pub content_type: Option<String>,
}

/// A file being downloaded from `/view`, read chunk by chunk.
#[derive(Debug)]
pub struct FileStream {
    pub(crate) content_type: Option<String>,
    pub(crate) head: crate::transport::Streaming,
}

impl FileStream {
    /// The content type, as ComfyUI sent it.
    #[must_use]
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The size ComfyUI announced, if it did.
    #[must_use]
    pub fn content_length(&self) -> Option<u64> {
        self.head.content_length
    }

    /// The next chunk; `None` at the end of the file.
    ///
    /// # Errors
    /// When the body breaks off, stalls past the read timeout, runs past
    /// the call's deadline, or grows beyond the file size cap.
    pub async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, crate::Error> {
        self.head.chunk().await
    }
}
