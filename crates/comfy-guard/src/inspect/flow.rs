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
use comfy_workflow::{Input, Link, NodeId, Workflow};
use serde_json::Value;

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
    if let Input::Value(Value::String(s)) = value
        && super::urls::looks_like_url(s)
    {
        return Some(Sink::Fetch);
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

/// Most alternatives followed before the value counts as unknown.
const MAX_ALTERNATIVES: usize = 8;
/// Longest chain of string nodes followed.
const MAX_CHAIN: usize = 64;

/// Evaluates ComfyUI's string nodes over one workflow, memoised per node
/// output so shared upstream nodes are computed once.
pub(crate) struct Resolver<'a> {
    wf: &'a Workflow,
    max_len: usize,
    memo: HashMap<(NodeId, u32), Text>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(wf: &'a Workflow, max_len: usize) -> Self {
        Self {
            wf,
            max_len,
            memo: HashMap::new(),
        }
    }

    /// The text `input` carries, or `None` when it is not text at all (a
    /// number, a list).
    pub(crate) fn input(&mut self, input: &Input) -> Option<Text> {
        self.input_at(input, 0)
    }

    fn input_at(&mut self, input: &Input, depth: usize) -> Option<Text> {
        match input {
            Input::Value(Value::String(s)) => Some(Text::Known(vec![s.clone()])),
            Input::Value(_) => None,
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

    fn compute(&mut self, link: &Link, depth: usize) -> Text {
        let Some(node) = self.wf.node(link.node.as_str()) else {
            return unknown(&link.node, "", "it links to a node that does not exist");
        };
        let class = node.class_type.as_str();
        if depth >= MAX_CHAIN {
            return unknown(&node.id, class, "the chain of string nodes is too long to follow");
        }
        // Each operand: its text alternatives, or the unknown that stops us.
        let mut arg = |name: &str| -> Result<Vec<String>, Text> {
            match node.input(name).and_then(|i| self.input_at(i, depth + 1)) {
                Some(Text::Known(v)) => Ok(v),
                Some(unknown) => Err(unknown),
                None => Ok(vec![String::new()]),
            }
        };
        let result: Result<Vec<String>, Text> = match (class, link.output) {
            ("PrimitiveString" | "PrimitiveStringMultiline", 0) => arg("value"),
            ("StringConcatenate", 0) => (|| {
                let (a, d, b) = (arg("string_a")?, arg("delimiter")?, arg("string_b")?);
                Ok(product(&[a, d, b]))
            })(),
            ("StringReplace", 0) => (|| {
                let (s, find, with) = (arg("string")?, arg("find")?, arg("replace")?);
                let mut out = Vec::new();
                for s in &s {
                    for f in &find {
                        for w in &with {
                            out.push(if f.is_empty() {
                                s.clone()
                            } else {
                                s.replace(f.as_str(), w)
                            });
                        }
                    }
                }
                Ok(out)
            })(),
            ("StringTrim", 0) => arg("string").map(|v| {
                let mode = node.input("mode").and_then(|i| i.as_value()).and_then(Value::as_str);
                v.into_iter()
                    .map(|s| match mode {
                        Some("Left") => s.trim_start().to_owned(),
                        Some("Right") => s.trim_end().to_owned(),
                        _ => s.trim().to_owned(),
                    })
                    .collect()
            }),
            ("CaseConverter", 0) => arg("string").map(|v| {
                let mode = node.input("mode").and_then(|i| i.as_value()).and_then(Value::as_str);
                v.into_iter().map(|s| convert_case(&s, mode)).collect()
            }),
            ("StringSubstring", 0) => {
                let bound = |name: &str| node.input(name).and_then(Input::as_value).and_then(Value::as_i64);
                match (bound("start"), bound("end")) {
                    (Some(start), Some(end)) => arg("string").map(|v| v.iter().map(|s| slice(s, start, end)).collect()),
                    _ => Err(unknown(&node.id, class, "its bounds come from another node")),
                }
            }
            ("ComfySwitchNode", 0) => {
                let switch = node.input("switch").and_then(Input::as_value).and_then(Value::as_bool);
                match switch {
                    Some(true) => arg("on_true"),
                    Some(false) => arg("on_false"),
                    None => (|| {
                        let mut both = arg("on_true")?;
                        both.extend(arg("on_false")?);
                        Ok(both)
                    })(),
                }
            }
            _ => Err(unknown(
                &node.id,
                class,
                "its output is computed only when the workflow runs",
            )),
        };
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
}

fn unknown(node: &NodeId, class: &str, why: &'static str) -> Text {
    Text::Unknown {
        node: node.clone(),
        class: class.to_owned(),
        why,
    }
}

/// Every concatenation of one alternative from each part, capped just past
/// [`MAX_ALTERNATIVES`] (the caller turns that into unknown).
fn product(parts: &[Vec<String>]) -> Vec<String> {
    let mut out = vec![String::new()];
    for part in parts {
        let mut next = Vec::new();
        'outer: for prefix in &out {
            for piece in part {
                next.push(format!("{prefix}{piece}"));
                if next.len() > MAX_ALTERNATIVES {
                    break 'outer;
                }
            }
        }
        out = next;
    }
    out
}

/// `CaseConverter`'s modes, as ComfyUI applies them.
fn convert_case(s: &str, mode: Option<&str>) -> String {
    match mode {
        Some("UPPERCASE") => s.to_uppercase(),
        Some("lowercase") => s.to_lowercase(),
        Some("Capitalize") => {
            let mut chars = s.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars.flat_map(char::to_lowercase)).collect(),
                None => String::new(),
            }
        }
        Some("Title Case") => {
            let mut out = String::with_capacity(s.len());
            let mut start = true;
            for c in s.chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.extend(c.to_lowercase());
                }
                start = !c.is_alphabetic();
            }
            out
        }
        _ => s.to_owned(),
    }
}

/// Python's `s[start:end]` over characters.
fn slice(s: &str, start: i64, end: i64) -> String {
    let len = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
    let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let (from, to) = (clamp(start), clamp(end));
    if from >= to {
        return String::new();
    }
    let skip = usize::try_from(from).unwrap_or(usize::MAX);
    let take = usize::try_from(to - from).unwrap_or(0);
    s.chars().skip(skip).take(take).collect()
}

#[cfg(test)]
mod tests {
    use super::{convert_case, product, slice};

    #[test]
    fn string_ops_match_python() {
        assert_eq!(slice("abcdef", 1, -1), "bcde");
        assert_eq!(slice("abcdef", -2, 100), "ef");
        assert_eq!(slice("abc", 2, 1), "");
        assert_eq!(convert_case("hello wORLD", Some("Title Case")), "Hello World");
        assert_eq!(convert_case("hello wORLD", Some("Capitalize")), "Hello world");
        assert_eq!(product(&[vec!["a".into(), "b".into()], vec!["1".into()]]), ["a1", "b1"]);
    }
}
