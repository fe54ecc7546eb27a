//! Reading one file into a workflow the inspector can judge.
//!
//! Accepted: API-format JSON; editor-format JSON (converted with the
//! catalog when `--object-info` is given, otherwise judged on what can be
//! judged without it: node classes and widget values); PNG and WebP images
//! with the `prompt` (API) or `workflow` (editor) text ComfyUI embeds.
//! Every read is bounded by the limits.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use comfy_workflow::{Input, Limits, Node, NodeId, ObjectInfo, Workflow, editor, embedded};
use serde_json::Value;

/// Images may be far larger than the JSON they carry.
const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// What a file held, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Api,
    Editor,
    /// Editor format judged without conversion.
    EditorUnconverted,
    PngPrompt,
    PngWorkflow,
    WebpPrompt,
    WebpWorkflow,
}

impl Source {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Editor => "editor",
            Source::EditorUnconverted => "editor (unconverted)",
            Source::PngPrompt => "png prompt",
            Source::PngWorkflow => "png workflow",
            Source::WebpPrompt => "webp prompt",
            Source::WebpWorkflow => "webp workflow",
        }
    }
}

/// A workflow read from a file, with what it came from and anything the
/// reader should know about how it was judged.
pub(crate) struct Loaded {
    pub(crate) workflow: Workflow,
    pub(crate) source: Source,
    pub(crate) note: Option<String>,
    /// The file's text, for locating nodes in SARIF output.
    pub(crate) text: Option<String>,
    /// The editor document, when the file was one: what its conversion
    /// does not read (muted and bypassed nodes, nested definitions, group
    /// nodes) is inspected from it too.
    pub(crate) editor: Option<Value>,
}

/// Reads and parses `path`.
pub(crate) fn load(path: &Path, info: Option<&ObjectInfo>, limits: &Limits) -> Result<Loaded, String> {
    let bytes = read_bounded(path, (limits.max_bytes as u64).max(MAX_IMAGE_BYTES))?;
    let image = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some((Source::PngPrompt, Source::PngWorkflow))
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some((Source::WebpPrompt, Source::WebpWorkflow))
    } else {
        None
    };
    if let Some((prompt_source, workflow_source)) = image {
        let found = embedded::read(&bytes, limits.max_bytes).map_err(|e| e.to_string())?;
        if let Some(prompt) = found.prompt {
            let workflow =
                Workflow::from_json(prompt.as_bytes(), limits).map_err(|e| format!("embedded prompt: {e}"))?;
            return Ok(Loaded {
                workflow,
                source: prompt_source,
                note: None,
                text: None,
                editor: None,
            });
        }
        if let Some(text) = found.workflow {
            let doc =
                comfy_workflow::parse_json(text.as_bytes(), limits).map_err(|e| format!("embedded workflow: {e}"))?;
            let mut loaded = from_editor(&doc, info, limits)?;
            if loaded.source == Source::Editor {
                loaded.source = workflow_source;
            }
            loaded.editor = Some(doc);
            return Ok(loaded);
        }
        return Err("the image holds no embedded workflow (no `prompt` or `workflow` text)".to_owned());
    }
    if bytes.len() > limits.max_bytes {
        return Err(format!("{} bytes, over the limit of {}", bytes.len(), limits.max_bytes));
    }
    let doc = comfy_workflow::parse_json(&bytes, limits).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).ok();
    let mut loaded = if editor::is_editor_format(&doc) {
        let mut loaded = from_editor(&doc, info, limits)?;
        loaded.editor = Some(doc);
        loaded
    } else {
        Loaded {
            workflow: Workflow::from_value(doc, limits).map_err(|e| e.to_string())?,
            source: Source::Api,
            note: None,
            text: None,
            editor: None,
        }
    };
    loaded.text = text;
    Ok(loaded)
}

fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {}", e.kind()))?;
    let meta = file.metadata().map_err(|e| format!("cannot stat: {}", e.kind()))?;
    if !meta.is_file() {
        return Err("not a regular file".to_owned());
    }
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {}", e.kind()))?;
    if bytes.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(bytes)
}

fn from_editor(doc: &Value, info: Option<&ObjectInfo>, limits: &Limits) -> Result<Loaded, String> {
    let why = match info {
        Some(info) => match editor::to_api(doc, info, limits) {
            Ok(workflow) => {
                return Ok(Loaded {
                    workflow,
                    source: Source::Editor,
                    note: None,
                    text: None,
                    editor: None,
                });
            }
            Err(e) => format!("could not convert with the catalog ({e})"),
        },
        None => "no --object-info given".to_owned(),
    };
    Ok(Loaded {
        workflow: unconverted(doc, limits)?,
        source: Source::EditorUnconverted,
        note: Some(format!(
            "editor-format workflow judged without conversion ({why}): node classes and widget values only"
        )),
        text: None,
        editor: None,
    })
}

/// Classes the editor draws but ComfyUI never runs.
const UI_ONLY: &[&str] = &["Note", "MarkdownNote", "Reroute"];

/// The editor nodes (top level and inside subgraph definitions) as an
/// API-shaped workflow: each node's class, and its widget values as one
/// input, so class and string checks apply. Muted (2) and bypassed (4)
/// nodes do not run and are left out.
fn unconverted(doc: &Value, limits: &Limits) -> Result<Workflow, String> {
    let mut wf = Workflow::new();
    let mut graphs: Vec<(String, &Value)> = vec![(String::new(), doc)];
    if let Some(subgraphs) = doc.pointer("/definitions/subgraphs").and_then(Value::as_array) {
        for (i, sg) in subgraphs.iter().enumerate() {
            graphs.push((format!("subgraph{i}:"), sg));
        }
    }
    for (prefix, graph) in graphs {
        for node in graph.get("nodes").and_then(Value::as_array).into_iter().flatten() {
            let Some(class) = node.get("type").and_then(Value::as_str) else {
                continue;
            };
            let mode = node.get("mode").and_then(Value::as_u64).unwrap_or(0);
            if UI_ONLY.contains(&class) || mode == 2 || mode == 4 {
                continue;
            }
            let raw_id = match node.get("id") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => continue,
            };
            let id = NodeId::new(format!("{prefix}{raw_id}"))
                .map_err(|reason| format!("editor node id {raw_id:?}: {reason}"))?;
            if wf.len() >= limits.max_nodes {
                return Err(format!("more than {} nodes", limits.max_nodes));
            }
            let mut api = Node::new(id, class);
            if let Some(values) = node.get("widgets_values") {
                api.set_input("widgets_values", Input::Value(values.clone()));
            }
            wf.insert(api).map_err(|id| format!("duplicate editor node id {id}"))?;
        }
    }
    Ok(wf)
}
