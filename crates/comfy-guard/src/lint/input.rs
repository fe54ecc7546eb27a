//! Reading one file into a workflow the inspector can judge.
//!
//! Accepted: API-format JSON; editor-format JSON (converted with the
//! catalog when `--object-info` is given, otherwise judged on what can be
//! judged without it: node classes and widget values); PNG and WebP images
//! with the `prompt` (API) or `workflow` (editor) text ComfyUI embeds.
//! Every read is bounded by the limits.
//!
//! An image may carry more than one text (several chunks, compressed ones,
//! chunks after `IEND`, WebP EXIF strings): every one is inspected, the
//! report says which one ComfyUI's front end would load, and texts that
//! disagree are a finding of their own (`image.disagree`).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use std::collections::BTreeSet;

use crate::inspect::{Finding, RuleId};
use comfy_workflow::embedded::{Chunk, Keyword};
use comfy_workflow::{Input, Limits, Node, NodeId, ObjectInfo, Workflow, editor, embedded};
use serde_json::Value;

/// Images may be far larger than the JSON they carry.
const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// What a file held, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// API-format JSON.
    Api,
    /// Editor-format JSON, converted with the catalog.
    Editor,
    /// Editor format judged without conversion.
    EditorUnconverted,
    /// A PNG's `prompt` text (API format).
    PngPrompt,
    /// A PNG's `workflow` text (editor format).
    PngWorkflow,
    /// A WebP's `prompt` text.
    WebpPrompt,
    /// A WebP's `workflow` text.
    WebpWorkflow,
}

impl Source {
    /// Its name in the reports.
    pub fn name(self) -> &'static str {
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
    /// The image's other embedded texts, each inspected too: a label for
    /// the report (`zTXt prompt at byte 120`), its workflow and, for an
    /// editor document, the document (what its conversion does not read).
    pub(crate) extra: Vec<(String, Workflow, Option<Value>)>,
    /// Findings about the file itself (embedded texts that disagree).
    pub(crate) findings: Vec<Finding>,
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
        return load_image(&bytes, info, limits, prompt_source, workflow_source);
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
            extra: Vec::new(),
            findings: Vec::new(),
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
                    extra: Vec::new(),
                    findings: Vec::new(),
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
        extra: Vec::new(),
        findings: Vec::new(),
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

/// A chunk for people: `tEXt prompt at byte 33 (after IEND)`.
fn label(c: &Chunk) -> String {
    let after = if c.after_end { " (after IEND)" } else { "" };
    format!("{} {} at byte {}{after}", c.container, c.written, c.offset)
}

/// Every embedded text of an image, inspected: the first prompt (else the
/// first workflow) as the file's workflow, as before, and every other text
/// beside it; the note names the text ComfyUI's front end would load.
fn load_image(
    bytes: &[u8],
    info: Option<&ObjectInfo>,
    limits: &Limits,
    prompt_source: Source,
    workflow_source: Source,
) -> Result<Loaded, String> {
    let chunks = embedded::read_all(bytes, limits.max_bytes).map_err(|e| e.to_string())?;
    let main = chunks
        .iter()
        .position(|c| c.keyword == Keyword::Prompt)
        .or_else(|| chunks.iter().position(|c| c.keyword == Keyword::Workflow))
        .ok_or("the image holds no embedded workflow (no `prompt` or `workflow` text)")?;
    let mut loaded: Option<Loaded> = None;
    let mut extra = Vec::new();
    let mut unreadable = Vec::new();
    let mut shown_classes: Option<BTreeSet<String>> = None;
    let mut prompt_classes: BTreeSet<String> = BTreeSet::new();
    for (i, c) in chunks.iter().enumerate() {
        let parsed = match c.keyword {
            Keyword::Prompt => Workflow::from_json(c.text.as_bytes(), limits)
                .map(|workflow| Loaded {
                    workflow,
                    source: prompt_source,
                    note: None,
                    text: None,
                    editor: None,
                    extra: Vec::new(),
                    findings: Vec::new(),
                })
                .map_err(|e| format!("embedded prompt: {e}")),
            Keyword::Workflow => comfy_workflow::parse_json(c.text.as_bytes(), limits)
                .map_err(|e| format!("embedded workflow: {e}"))
                .and_then(|doc| {
                    if shown_classes.is_none() {
                        shown_classes = editor_classes(&doc);
                    }
                    let mut l = from_editor(&doc, info, limits)?;
                    if l.source == Source::Editor {
                        l.source = workflow_source;
                    }
                    l.editor = Some(doc);
                    Ok(l)
                }),
        };
        if let (Keyword::Prompt, Ok(l)) = (c.keyword, &parsed) {
            prompt_classes.extend(l.workflow.nodes().iter().map(|n| n.class_type.to_string()));
        }
        match parsed {
            Ok(l) if i == main => loaded = Some(l),
            Ok(l) => extra.push((label(c), l.workflow, l.editor)),
            Err(e) if i == main => return Err(e),
            Err(e) => unreadable.push(format!("{}: {e}", label(c))),
        }
    }
    let Some(mut loaded) = loaded else {
        return Err("the image holds no readable embedded workflow".to_owned());
    };
    let mut notes: Vec<String> = loaded.note.take().into_iter().collect();
    if chunks.len() > 1 || embedded::frontend_choice(&chunks) != Some(main) {
        match embedded::frontend_choice(&chunks) {
            Some(pick) => notes.push(format!(
                "{} embedded texts inspected; ComfyUI's front end would load the {}",
                chunks.len(),
                label(&chunks[pick])
            )),
            None => notes.push(format!(
                "{} embedded texts inspected; ComfyUI's front end would load none of them",
                chunks.len()
            )),
        }
    }
    notes.extend(unreadable);
    loaded.note = (!notes.is_empty()).then(|| notes.join("; "));
    loaded.findings = disagreements(&chunks, &prompt_classes, shown_classes.as_ref());
    loaded.extra = extra;
    Ok(loaded)
}

/// The classes an editor-format workflow shows (its nodes and those of its
/// subgraph definitions), or `None` when it shows no node at all (a
/// placeholder) and so cannot be compared.
fn editor_classes(doc: &Value) -> Option<BTreeSet<String>> {
    let mut graphs = vec![doc];
    if let Some(subgraphs) = doc.pointer("/definitions/subgraphs").and_then(Value::as_array) {
        graphs.extend(subgraphs);
    }
    let classes: BTreeSet<String> = graphs
        .iter()
        .flat_map(|g| g.get("nodes").and_then(Value::as_array).into_iter().flatten())
        .filter_map(|n| n.get("type").and_then(Value::as_str).map(str::to_owned))
        .collect();
    (!classes.is_empty()).then_some(classes)
}

/// Findings about embedded texts that disagree: two different texts under
/// one keyword (whichever a reader picks, the other is hidden), or a
/// prompt that runs classes its editor workflow does not show.
fn disagreements(
    chunks: &[Chunk],
    prompt_classes: &BTreeSet<String>,
    shown: Option<&BTreeSet<String>>,
) -> Vec<Finding> {
    let mut why = Vec::new();
    for k in [Keyword::Prompt, Keyword::Workflow] {
        let texts: Vec<&Chunk> = chunks.iter().filter(|c| c.keyword == k).collect();
        if let Some(first) = texts.first()
            && let Some(other) = texts.iter().find(|c| c.text != first.text)
        {
            why.push(format!(
                "the {} and the {} hold different {} texts",
                label(first),
                label(other),
                k.name()
            ));
        }
    }
    if let Some(shown) = shown {
        let hidden: Vec<&str> = prompt_classes
            .iter()
            .filter(|c| !shown.contains(*c))
            .map(String::as_str)
            .collect();
        if !hidden.is_empty() {
            why.push(format!(
                "the prompt runs classes its editor workflow does not show: {}",
                hidden.join(", ")
            ));
        }
    }
    if why.is_empty() {
        return Vec::new();
    }
    vec![Finding {
        rule: RuleId::ImageDisagree,
        severity: RuleId::ImageDisagree.severity(),
        node: None,
        class: None,
        input: None,
        message: "Embedded workflows disagree: what one reader loads is not what another shows".to_owned(),
        detail: why.join("; "),
    }]
}
