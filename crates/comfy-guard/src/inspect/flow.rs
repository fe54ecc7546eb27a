//! Data flow: what text reaches an input through links, and which inputs
//! act on text (execute it, write or read files with it, fetch it).
//!
//! A string split over several nodes (`"__imp"` + `"ort__('os')"`) is
//! harmless piece by piece; the sink sees the joined value. ComfyUI's own
//! string nodes are evaluated here as ComfyUI would run them, so the sink's
//! value is judged as assembled. Where the value cannot be computed before
//! the workflow runs (a custom node, a regex, a value produced from an
//! image), it is *unknown*, and an unknown value reaching a sink is a
//! finding of its own.

use std::collections::HashMap;

use comfy_workflow::object_info::NodeDef;
use comfy_workflow::{Input, Link, Node, NodeId, Workflow};
use serde_json::Value;

use crate::eval::{Cast, MAX_ALTERNATIVES, Numbers, combinations};

mod pystr;

use pystr::{convert_case, product, py_format, py_replace, slice};

/// What an input does with its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sink {
    /// Runs or evaluates it (code, script, expression, command).
    Execute,
    /// Writes a file under that name (save prefixes, output paths).
    WriteFile,
    /// Reads a file under that name (load paths, model names).
    ReadFile,
    /// Fetches it (URLs).
    Fetch,
}

impl Sink {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Sink::Execute => "executes its text",
            Sink::WriteFile => "writes a file under that name",
            Sink::ReadFile => "reads a file under that name",
            Sink::Fetch => "fetches that address",
        }
    }
}

/// Core classes and common custom packs whose input names a file or
/// folder outside the catalog's types: `(class, input, what it does,
/// whether it unpickles what it reads)`.
const PATH_INPUTS: &[(&str, &str, Sink, bool)] = &[
    // ComfyUI's dataset and training nodes.
    ("SaveImageDataSetToFolder", "folder_name", Sink::WriteFile, false),
    ("SaveImageTextDataSetToFolder", "folder_name", Sink::WriteFile, false),
    ("SaveTrainingDataset", "folder_name", Sink::WriteFile, false),
    // `torch.load`s every `shard_*.pkl` of the folder (CVE-2026-68771).
    ("LoadTrainingDataset", "folder_name", Sink::ReadFile, true),
    ("LoadImageDataSetFromFolder", "folder", Sink::ReadFile, false),
    ("LoadImageTextDataSetFromFolder", "folder", Sink::ReadFile, false),
    ("LoadVideoDataSetFromFolder", "folder", Sink::ReadFile, false),
    ("LoadVideoTextDataSetFromFolder", "folder", Sink::ReadFile, false),
    // Video Helper Suite: any path on the host, or a URL.
    ("VHS_LoadImagePath", "image", Sink::ReadFile, false),
    ("VHS_LoadVideoPath", "video", Sink::ReadFile, false),
    ("VHS_LoadImagesPath", "directory", Sink::ReadFile, false),
    ("VHS_LoadAudio", "audio_file", Sink::ReadFile, false),
    // WAS Node Suite: image paths (or URLs) and pickled caches.
    ("Image Load", "image_path", Sink::ReadFile, false),
    ("Load Cache", "latent_path", Sink::ReadFile, true),
    ("Load Cache", "image_path", Sink::ReadFile, true),
    ("Load Cache", "conditioning_path", Sink::ReadFile, true),
    ("Save Text File", "path", Sink::WriteFile, false),
    // pysssss: text files under a chosen root.
    ("SaveText|pysssss", "file", Sink::WriteFile, false),
    ("LoadText|pysssss", "file", Sink::ReadFile, false),
];

/// Extensions of formats that unpickle (and can run code) when loaded.
const PICKLE_EXTENSIONS: &[&str] = &[".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".bin"];

/// Why a file read by `input` of a `class` node is a pickle finding, if it
/// is: the node unpickles whatever it reads (curated), or the value names a
/// pickle format and the loader is not one of ComfyUI's model loaders
/// (those load through `comfy.utils.load_torch_file`, restricted to
/// tensors with `weights_only=True`).
pub(crate) fn pickle_reason(class: &str, input: &str, value: &str) -> Option<String> {
    if value.trim().is_empty() {
        return None;
    }
    if PATH_INPUTS.iter().any(|(c, i, _, p)| *p && *c == class && *i == input) {
        return Some("the node unpickles (torch.load) what it reads there, and a pickle can run code".to_owned());
    }
    let lower = value.trim_end().to_ascii_lowercase();
    let ext = PICKLE_EXTENSIONS.iter().find(|e| lower.ends_with(*e))?;
    let model_loader = comfy_workflow::analysis::MODEL_INPUTS
        .iter()
        .any(|(c, i, _)| *c == class && *i == input);
    (!model_loader).then(|| {
        format!("a `{ext}` file is a pickle, and this loader is not one of ComfyUI's tensor-only model loaders")
    })
}

/// `photo.png [output]`: ComfyUI's folder annotation on a file name.
fn annotated(s: &str) -> bool {
    [" [input]", " [output]", " [temp]"].iter().any(|t| s.ends_with(t))
}

/// Classes whose listed input names a model file (`comfy_workflow`'s
/// loader table) or a file in the input folder.
fn reads_file(class: &str, input: &str) -> bool {
    if comfy_workflow::analysis::MODEL_INPUTS
        .iter()
        .any(|(c, i, _)| *c == class && *i == input)
    {
        return true;
    }
    class.starts_with("Load")
        && matches!(
            input,
            "image" | "video" | "audio" | "latent" | "file" | "mesh" | "model_file"
        )
}

/// What `input` of a `class` node does with text, judged from its declared
/// type when the catalog is known and from its name otherwise; a literal
/// written as a URL is fetched, whatever the input is called.
pub(crate) fn sink(class: &str, input: &str, def: Option<&NodeDef>, value: &Input) -> Option<Sink> {
    if let Input::Value(Value::String(s)) = value {
        if super::urls::looks_like_url(s) {
            return Some(Sink::Fetch);
        }
        // Every `Load*` class reads an annotated name (CVE-2026-56673).
        if class.starts_with("Load") && annotated(s) {
            return Some(Sink::ReadFile);
        }
    }
    if let Some((_, _, sink, _)) = PATH_INPUTS.iter().find(|(c, i, _, _)| *c == class && *i == input) {
        return Some(*sink);
    }
    if let Some(kind) = def.and_then(|d| d.input(input)).map(|i| i.kind.type_name()) {
        let is = |names: &[&str]| names.iter().any(|n| kind.eq_ignore_ascii_case(n));
        if is(&["CODE", "PYTHON", "SCRIPT", "COMMAND", "COMMANDLINE"]) {
            return Some(Sink::Execute);
        }
        if is(&["URL"]) {
            return Some(Sink::Fetch);
        }
        if is(&["FILE_PATH", "FILEPATH", "PATH"]) {
            return Some(Sink::WriteFile);
        }
    }
    if reads_file(class, input) {
        return Some(Sink::ReadFile);
    }
    let is = |names: &[&str]| names.iter().any(|n| input.eq_ignore_ascii_case(n));
    let ends = |suffixes: &[&str]| {
        suffixes.iter().any(|s| {
            input.len() >= s.len()
                && input.is_char_boundary(input.len() - s.len())
                && input[input.len() - s.len()..].eq_ignore_ascii_case(s)
        })
    };
    if is(&[
        "code",
        "script",
        "python",
        "command",
        "cmd",
        "shell",
        "expression",
        "expr",
        "eval",
        "exec",
    ]) || ends(&["_code", "_script", "_expression", "_command"])
    {
        return Some(Sink::Execute);
    }
    if is(&[
        "filename_prefix",
        "file_path",
        "filepath",
        "output_path",
        "save_path",
        "output_dir",
        "output_directory",
        "output_folder",
        "directory",
        "folder_path",
        "path",
        "filename",
        "file_name",
    ]) {
        return Some(Sink::WriteFile);
    }
    let contains = |needle: &str| {
        input
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    if contains("url") || contains("uri") || is(&["endpoint", "webhook", "api_base"]) {
        return Some(Sink::Fetch);
    }
    None
}

/// Whether `input` of a class can receive text through a link: not when
/// the catalog declares it as another type (a model, an image, a number).
pub(crate) fn may_carry_text(def: Option<&NodeDef>, input: &str) -> bool {
    def.and_then(|d| d.input(input))
        .is_none_or(|i| matches!(i.kind.type_name(), "STRING" | "*" | "COMBO") || i.kind.type_name().contains(','))
}

/// The text an input can carry: every alternative (a switch yields both
/// branches), or unknown with the node that makes it so.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Text {
    Known(Vec<String>),
    Unknown {
        node: NodeId,
        class: String,
        why: &'static str,
    },
}

/// Longest chain of string nodes followed.
const MAX_CHAIN: usize = 64;

/// Evaluates ComfyUI's string nodes over one workflow, memoised per node
/// output so shared upstream nodes are computed once.
pub(crate) struct Resolver<'a> {
    wf: &'a Workflow,
    max_len: usize,
    memo: HashMap<(NodeId, u32), Text>,
    numbers: Numbers<'a>,
}

/// The text of a literal as the node receives it: `{"__value__": v}`
/// unwrapped (ComfyUI's validation does), numbers as Python's `str()`
/// prints them, a list of strings joined as a node would join it.
fn literal_text(v: &Value) -> Option<Vec<String>> {
    let v = match v {
        Value::Object(m) => m.get("__value__")?,
        v => v,
    };
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Number(n) => Some(vec![n.to_string()]),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => {
            let parts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            Some(vec![parts.concat(), parts.join(" "), parts.join("\n")])
        }
        _ => None,
    }
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(wf: &'a Workflow, max_len: usize) -> Self {
        Self {
            wf,
            max_len,
            memo: HashMap::new(),
            numbers: Numbers::new(wf),
        }
    }

    /// The text `input` carries, or `None` when it is not text at all (a
    /// boolean, an object).
    pub(crate) fn input(&mut self, input: &Input) -> Option<Text> {
        self.input_at(input, 0)
    }

    fn input_at(&mut self, input: &Input, depth: usize) -> Option<Text> {
        match input {
            Input::Value(v) => literal_text(v).map(Text::Known),
            Input::Link(link) => Some(self.link(link, depth)),
        }
    }

    fn link(&mut self, link: &Link, depth: usize) -> Text {
        let key = (link.node.clone(), link.output);
        if let Some(done) = self.memo.get(&key) {
            return done.clone();
        }
        let text = self.compute(link, depth);
        self.memo.insert(key, text.clone());
        text
    }

    /// The integer alternatives of `name` on `node`, or the unknown that
    /// stops us.
    fn ints(&mut self, node: &Node, name: &str) -> Result<Option<Vec<i64>>, Text> {
        match self.numbers.input(node, name, Cast::Int) {
            Ok(v) => Ok(v.map(|v| v.into_iter().map(|x| x as i64).collect())),
            Err(u) => Err(unknown(
                u.node.as_ref().unwrap_or(&node.id),
                if u.node.is_some() { &u.class } else { &node.class_type },
                u.why,
            )),
        }
    }

    fn compute(&mut self, link: &Link, depth: usize) -> Text {
        let wf = self.wf;
        let Some(node) = wf.node(link.node.as_str()) else {
            return unknown(&link.node, "", "it links to a node that does not exist");
        };
        let class = node.class_type.as_str();
        if depth >= MAX_CHAIN {
            return unknown(&node.id, class, "the chain of string nodes is too long to follow");
        }
        let result = self.evaluate(node, link.output, depth);
        match result {
            Ok(values) if values.len() > MAX_ALTERNATIVES => {
                unknown(&node.id, class, "it yields too many alternatives to check")
            }
            Ok(values) if values.iter().any(|v| v.len() > self.max_len) => {
                unknown(&node.id, class, "it yields a string longer than the limit")
            }
            Ok(values) => Text::Known(values),
            Err(unknown) => unknown,
        }
    }

    /// Each operand: its text alternatives (empty text when the input is
    /// absent), or the unknown that stops us.
    fn arg(&mut self, node: &Node, name: &str, depth: usize) -> Result<Vec<String>, Text> {
        match node.input(name).and_then(|i| self.input_at(i, depth + 1)) {
            Some(Text::Known(v)) => Ok(v),
            Some(unknown) => Err(unknown),
            None => Ok(vec![String::new()]),
        }
    }

    /// Python's `text.replace(find, replace)` over every alternative of
    /// input `text`.
    fn replace(&mut self, node: &Node, text: &str, depth: usize) -> Result<Vec<String>, Text> {
        let (s, find, with) = (
            self.arg(node, text, depth)?,
            self.arg(node, "find", depth)?,
            self.arg(node, "replace", depth)?,
        );
        let mut out = Vec::new();
        for s in &s {
            for f in &find {
                for w in &with {
                    out.push(py_replace(s, f, w, self.max_len).ok_or_else(|| {
                        unknown(&node.id, &node.class_type, "it yields a string longer than the limit")
                    })?);
                }
            }
        }
        Ok(out)
    }

    /// `f` applied to every alternative of input `texts`.
    fn map(&mut self, node: &Node, depth: usize, f: impl Fn(&str) -> String) -> Result<Vec<String>, Text> {
        Ok(self.arg(node, "texts", depth)?.iter().map(|s| f(s)).collect())
    }

    fn evaluate(&mut self, node: &Node, output: u32, depth: usize) -> Result<Vec<String>, Text> {
        let class = node.class_type.as_str();
        let mode = || node.input("mode").and_then(Input::as_value).and_then(Value::as_str);
        match (class, output) {
            ("PrimitiveString" | "PrimitiveStringMultiline", 0) => self.arg(node, "value", depth),
            ("ConvertStringToComboNode", 0) => self.arg(node, "string", depth),
            ("CustomCombo", 0) => self.arg(node, "choice", depth),
            ("StringConcatenate", 0) => {
                let (a, d, b) = (
                    self.arg(node, "string_a", depth)?,
                    self.arg(node, "delimiter", depth)?,
                    self.arg(node, "string_b", depth)?,
                );
                Ok(product(&[a, d, b]))
            }
            ("StringReplace", 0) => self.replace(node, "string", depth),
            // The text nodes of ComfyUI's dataset pack (`nodes_dataset.py`):
            // each runs once per text of its `texts` list, so the texts are
            // alternatives here as everywhere.
            ("ReplaceText", 0) => self.replace(node, "texts", depth),
            ("TextToLowercase", 0) => self.map(node, depth, str::to_lowercase),
            ("TextToUppercase", 0) => self.map(node, depth, str::to_uppercase),
            ("StripWhitespace", 0) => self.map(node, depth, |s| s.trim_matches(crate::eval::py_space).to_owned()),
            ("AddTextPrefix", 0) => {
                let (prefix, texts) = (self.arg(node, "prefix", depth)?, self.arg(node, "texts", depth)?);
                Ok(product(&[prefix, texts]))
            }
            ("AddTextSuffix", 0) => {
                let (texts, suffix) = (self.arg(node, "texts", depth)?, self.arg(node, "suffix", depth)?);
                Ok(product(&[texts, suffix]))
            }
            ("TruncateText", 0) => {
                let texts = self.arg(node, "texts", depth)?;
                // Its declared default.
                let lengths = self.ints(node, "max_length")?.unwrap_or_else(|| vec![77]);
                let mut out = Vec::new();
                for s in &texts {
                    for &n in &lengths {
                        out.push(slice(s, 0, n));
                    }
                }
                Ok(out)
            }
            // Pass their texts on: merged, or shuffled with the images or
            // videos (the texts are the second output).
            ("MergeTextLists", 0) | ("ShuffleImageTextDataset" | "ShuffleVideoTextDataset", 1) => {
                self.arg(node, "texts", depth)
            }
            ("StringTrim", 0) => self.arg(node, "string", depth).map(|v| {
                v.into_iter()
                    .map(|s| match mode() {
                        Some("Left") => s.trim_start_matches(crate::eval::py_space).to_owned(),
                        Some("Right") => s.trim_end_matches(crate::eval::py_space).to_owned(),
                        Some("Both") => s.trim_matches(crate::eval::py_space).to_owned(),
                        _ => s,
                    })
                    .collect()
            }),
            ("CaseConverter", 0) => self
                .arg(node, "string", depth)
                .map(|v| v.into_iter().map(|s| convert_case(&s, mode())).collect()),
            ("StringSubstring", 0) => {
                let strings = self.arg(node, "string", depth)?;
                let starts = self.ints(node, "start")?.unwrap_or_else(|| vec![0]);
                let ends = self.ints(node, "end")?.unwrap_or_else(|| vec![0]);
                let mut out = Vec::new();
                for s in &strings {
                    for &a in &starts {
                        for &b in &ends {
                            out.push(slice(s, a, b));
                        }
                    }
                }
                Ok(out)
            }
            ("StringFormat", 0) => {
                let templates = self.arg(node, "f_string", depth)?;
                let mut fields: Vec<(String, Vec<String>)> = Vec::new();
                for (name, _) in &node.inputs {
                    if let Some(var) = name.strip_prefix("values.") {
                        fields.push((var.to_owned(), self.arg(node, name, depth)?));
                    }
                }
                let mut out = Vec::new();
                for t in &templates {
                    for combo in combinations(&fields) {
                        out.push(py_format(t, &combo).ok_or_else(|| {
                            unknown(
                                &node.id,
                                class,
                                "its format string uses more than plain `{name}` fields",
                            )
                        })?);
                    }
                }
                Ok(out)
            }
            ("ComfySwitchNode" | "ComfySoftSwitchNode", 0) => {
                let has = |n: &str| node.input(n).is_some();
                if class == "ComfySoftSwitchNode" && has("on_true") != has("on_false") {
                    return self.arg(node, if has("on_true") { "on_true" } else { "on_false" }, depth);
                }
                match self.numbers.input(node, "switch", Cast::Bool).ok().flatten().as_deref() {
                    Some([x]) if *x != 0.0 => self.arg(node, "on_true", depth),
                    Some([_]) => self.arg(node, "on_false", depth),
                    _ => {
                        let mut both = self.arg(node, "on_true", depth)?;
                        both.extend(self.arg(node, "on_false", depth)?);
                        Ok(both)
                    }
                }
            }
            _ => Err(unknown(
                &node.id,
                class,
                "its output is computed only when the workflow runs",
            )),
        }
    }
}

fn unknown(node: &NodeId, class: &str, why: &'static str) -> Text {
    Text::Unknown {
        node: node.clone(),
        class: class.to_owned(),
        why,
    }
}

/// What a value reaching an input that executes its text is, when it is
/// code: the text as it arrives (unless it was a literal, already scanned)
/// and the text reversed (a payload stored backwards for a node, or code,
/// that reads it `[::-1]`).
pub(crate) fn code_at_sink(value: &str, assembled: bool) -> Option<String> {
    if assembled && let Some(hit) = super::code::find_code(value) {
        return Some(format!("{} in text assembled from linked nodes", hit.describe()));
    }
    let reversed: String = value.chars().rev().collect();
    super::code::find_code(&reversed).map(|hit| format!("{} in the text read backwards", hit.describe()))
}
