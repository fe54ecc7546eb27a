//! The workflow inspector: every check a workflow passes before it runs.
//!
//! What it judges, in order:
//! 1. limits (node count, nesting depth, string size), before anything
//!    else, so a hostile document is rejected rather than scanned slowly;
//! 2. node classes: on the dangerous list (byte-exact, as ComfyUI resolves
//!    classes), looking like a listed one, unknown to the server, or not
//!    on the allowlist in enforce mode;
//! 3. every string and object key in every input, for code (see
//!    [`code`]);
//! 4. inputs that act on text (execute it, write or read files, fetch
//!    URLs), judged on the value that reaches them through links (see
//!    `flow`), with file paths held to [`check_node_path`](crate::path::check_node_path);
//! 5. nested subgraphs, inspected as workflows of their own (depth 10).
//!
//! Findings keep the peer's warning wording (`Dangerous node type: X`,
//! `Suspicious input in node N (X), field 'f'`) in [`Finding::message`],
//! with the reason in [`Finding::detail`], so hooks that match the peer's
//! text keep working.
//!
//! ```
//! use comfy_guard::inspect::{Mode, Policy, RuleId, inspect_json};
//! let wf = br#"{"1": {"class_type": "KY_Eval_Python",
//!                     "inputs": {"code": "__import__('os').system('id')"}}}"#;
//! let report = inspect_json(wf, &Policy::new(Mode::Audit), None).unwrap();
//! assert_eq!(report.warnings(), [
//!     "Suspicious input in node 1 (KY_Eval_Python), field 'code'",
//!     "Dangerous node type: KY_Eval_Python",
//! ]);
//! assert_eq!(report.findings[0].rule, RuleId::DangerousNode);
//! assert_eq!(report.findings[1].rule, RuleId::CodeInInput);
//! assert!(report.blocked().is_none(), "audit mode never blocks");
//! ```

pub mod code;
mod flow;
mod names;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt::{self, Write as _};

use comfy_workflow::{Input, Limits, ObjectInfo, ParseError, SmolStr, Workflow};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::flow::{Resolver, Sink, Text};
use self::names::DangerousIndex;
pub use self::names::default_dangerous_nodes;
use crate::path::check_node_path;

/// How findings affect a run, as the peer's `security.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Findings are warnings; the workflow runs.
    #[default]
    Audit,
    /// Only allow-listed classes run (when the allowlist is set); any other
    /// finding needs the user's confirmation.
    Enforce,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Audit => "audit",
            Mode::Enforce => "enforce",
        })
    }
}

/// What the inspector checks against.
#[derive(Debug, Clone)]
pub struct Policy {
    mode: Mode,
    allowed: BTreeSet<String>,
    dangerous: DangerousIndex,
    limits: Limits,
}

impl Policy {
    /// The peer's defaults: its 159 dangerous classes, no allowlist, the
    /// default limits.
    pub fn new(mode: Mode) -> Self {
        let dangerous: BTreeSet<String> = default_dangerous_nodes().map(str::to_owned).collect();
        Self {
            mode,
            allowed: BTreeSet::new(),
            dangerous: DangerousIndex::new(&dangerous),
            limits: Limits::DEFAULT,
        }
    }

    /// Replaces the dangerous list (the peer's `security.dangerous_nodes`
    /// replaces the default when set).
    #[must_use]
    pub fn with_dangerous<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        let set: BTreeSet<String> = names.into_iter().map(Into::into).collect();
        self.dangerous = DangerousIndex::new(&set);
        self
    }

    /// Adds to the dangerous list.
    #[must_use]
    pub fn with_extra_dangerous<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        let mut set = self.dangerous.names().clone();
        set.extend(names.into_iter().map(Into::into));
        self.dangerous = DangerousIndex::new(&set);
        self
    }

    /// Sets the enforce-mode allowlist (`security.allowed_nodes`).
    #[must_use]
    pub fn with_allowed<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.allowed = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the limits checked before anything else.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether `class` is on the dangerous list (byte-exact).
    pub fn is_dangerous(&self, class: &str) -> bool {
        self.dangerous.is_dangerous(class)
    }

    /// The listed dangerous class `class` passes for, when it is not one
    /// itself.
    pub fn lookalike_of(&self, class: &str) -> Option<&str> {
        self.dangerous.lookalike_of(class)
    }
}

/// Which rule a finding broke. The ids are stable (they name SARIF rules
/// and appear in JSON output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum RuleId {
    /// `node.dangerous`: a class on the dangerous list.
    #[serde(rename = "node.dangerous")]
    DangerousNode,
    /// `node.lookalike`: a class that passes for a dangerous one.
    #[serde(rename = "node.lookalike")]
    LookalikeNode,
    /// `node.nonascii`: a class name with non-ASCII or control characters
    /// that the server's catalog does not have byte for byte.
    #[serde(rename = "node.nonascii")]
    NonAsciiNode,
    /// `node.unknown`: a class the server does not have.
    #[serde(rename = "node.unknown")]
    UnknownNode,
    /// `node.unapproved`: a class outside the enforce-mode allowlist.
    #[serde(rename = "node.unapproved")]
    UnapprovedNode,
    /// `input.code`: code in a string that reaches a node.
    #[serde(rename = "input.code")]
    CodeInInput,
    /// `input.tainted`: text that cannot be computed before running
    /// reaches an input that acts on it.
    #[serde(rename = "input.tainted")]
    TaintedInput,
    /// `input.path`: a file path that leaves its folder.
    #[serde(rename = "input.path")]
    PathEscape,
    /// `input.url`: an address a node would fetch that is local, private or
    /// not http(s).
    #[serde(rename = "input.url")]
    UnsafeUrl,
    /// `subgraph.depth`: subgraphs nested deeper than inspected.
    #[serde(rename = "subgraph.depth")]
    SubgraphDepth,
    /// `subgraph.unexpanded`: a subgraph node whose graph was not found.
    #[serde(rename = "subgraph.unexpanded")]
    SubgraphUnexpanded,
}

impl RuleId {
    /// Every rule, for documentation and SARIF rule tables.
    pub const ALL: [RuleId; 11] = [
        RuleId::DangerousNode,
        RuleId::LookalikeNode,
        RuleId::NonAsciiNode,
        RuleId::UnknownNode,
        RuleId::UnapprovedNode,
        RuleId::CodeInInput,
        RuleId::TaintedInput,
        RuleId::PathEscape,
        RuleId::UnsafeUrl,
        RuleId::SubgraphDepth,
        RuleId::SubgraphUnexpanded,
    ];

    /// The stable id (`node.dangerous`, ...).
    pub fn id(self) -> &'static str {
        match self {
            RuleId::DangerousNode => "node.dangerous",
            RuleId::LookalikeNode => "node.lookalike",
            RuleId::NonAsciiNode => "node.nonascii",
            RuleId::UnknownNode => "node.unknown",
            RuleId::UnapprovedNode => "node.unapproved",
            RuleId::CodeInInput => "input.code",
            RuleId::TaintedInput => "input.tainted",
            RuleId::PathEscape => "input.path",
            RuleId::UnsafeUrl => "input.url",
            RuleId::SubgraphDepth => "subgraph.depth",
            RuleId::SubgraphUnexpanded => "subgraph.unexpanded",
        }
    }

    /// How serious a finding of this rule is.
    pub fn severity(self) -> Severity {
        match self {
            RuleId::DangerousNode
            | RuleId::LookalikeNode
            | RuleId::NonAsciiNode
            | RuleId::UnapprovedNode
            | RuleId::CodeInInput
            | RuleId::PathEscape
            | RuleId::UnsafeUrl => Severity::Error,
            RuleId::UnknownNode | RuleId::TaintedInput | RuleId::SubgraphDepth | RuleId::SubgraphUnexpanded => {
                Severity::Warning
            }
        }
    }

    /// One line on what the rule catches.
    pub fn summary(self) -> &'static str {
        match self {
            RuleId::DangerousNode => {
                "A node class on the dangerous list (code execution, network, file system, paid API)."
            }
            RuleId::LookalikeNode => {
                "A node class that passes for a listed dangerous one (case, confusable or invisible characters, suffixes)."
            }
            RuleId::NonAsciiNode => {
                "A node class name with non-ASCII, invisible or control characters that the server's catalog does not list byte for byte."
            }
            RuleId::UnknownNode => "A node class the ComfyUI server does not have.",
            RuleId::UnapprovedNode => "A node class outside the enforce-mode allowlist.",
            RuleId::CodeInInput => "Python or shell code in a string that reaches a node, plain or encoded.",
            RuleId::TaintedInput => {
                "Text that cannot be computed before the run reaches an input that executes, writes, reads or fetches it."
            }
            RuleId::PathEscape => "A file path that leaves the folder the node reads or writes.",
            RuleId::UnsafeUrl => "An address a node would fetch that is local, private or not http(s).",
            RuleId::SubgraphDepth => "Subgraphs nested deeper than the inspector follows.",
            RuleId::SubgraphUnexpanded => "A subgraph node whose inner graph could not be found.",
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// How serious a finding is (SARIF levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Warning,
    /// Dangerous.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule.
    pub rule: RuleId,
    /// Its severity.
    pub severity: Severity,
    /// The node (`outer:inner` inside subgraphs), when the finding is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The node's class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The input path (`code`, `a.b`, `list[0]`), when about an input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The message, in the peer's wording where it has one.
    pub message: String,
    /// Why, in a few words.
    pub detail: String,
}

/// Why inspection refused to look at a workflow at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InspectError {
    /// The document broke a limit or is not a workflow.
    #[error("workflow rejected: {0}")]
    Parse(#[from] ParseError),
    /// An input nests deeper than the depth limit.
    #[error("workflow rejected: input `{input}` of node {node} nests deeper than {max} levels")]
    TooDeep {
        /// The node.
        node: String,
        /// The input.
        input: String,
        /// The limit.
        max: usize,
    },
    /// A string is longer than the string limit.
    #[error("workflow rejected: a string in input `{input}` of node {node} is {len} bytes, over the limit of {max}")]
    StringTooLong {
        /// The node.
        node: String,
        /// The input.
        input: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More nodes than the node limit (subgraphs included).
    #[error("workflow rejected: more than {max} nodes")]
    TooManyNodes {
        /// The limit.
        max: usize,
    },
}

/// The result of inspecting one workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// The mode it was inspected in.
    pub mode: Mode,
    /// The class of every node in document order, duplicates kept (the
    /// peer's `nodes_used`).
    pub nodes_used: Vec<SmolStr>,
    /// Every finding, in document order.
    pub findings: Vec<Finding>,
}

/// Why enforce mode refuses to run a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocked {
    /// The classes outside the allowlist, in first-use order.
    pub unapproved: Vec<String>,
    /// `Workflow blocked — unapproved node types: ['A', 'B']`, as the peer
    /// words it.
    pub message: String,
}

impl Inspection {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// The findings as the peer's warning strings: everything else first,
    /// then one `Dangerous node type: X` per dangerous node.
    pub fn warnings(&self) -> Vec<String> {
        let (dangerous, other): (Vec<&Finding>, Vec<&Finding>) =
            self.findings.iter().partition(|f| f.rule == RuleId::DangerousNode);
        other.into_iter().chain(dangerous).map(|f| f.message.clone()).collect()
    }

    /// In enforce mode with an allowlist, the refusal naming every class
    /// outside it.
    pub fn blocked(&self) -> Option<Blocked> {
        if self.mode != Mode::Enforce {
            return None;
        }
        let mut unapproved: Vec<String> = Vec::new();
        for f in self.findings.iter().filter(|f| f.rule == RuleId::UnapprovedNode) {
            if let Some(class) = &f.class
                && !unapproved.contains(class)
            {
                unapproved.push(class.clone());
            }
        }
        if unapproved.is_empty() {
            return None;
        }
        let message = format!("Workflow blocked — unapproved node types: {}", python_list(&unapproved));
        Some(Blocked { unapproved, message })
    }

    /// In enforce mode, whether the findings need the user's confirmation
    /// before the workflow runs (the peer asks through elicitation).
    pub fn needs_confirmation(&self) -> bool {
        self.mode == Mode::Enforce && !self.findings.is_empty()
    }
}

/// A list as Python's `repr` prints a list of strings: `['a', 'b']`.
pub fn python_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| python_str(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A string as Python's `repr` prints it.
fn python_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Parses `bytes` under the policy's limits, then inspects them.
///
/// # Errors
/// [`InspectError`] when the document breaks a limit or is not an
/// API-format workflow.
pub fn inspect_json(bytes: &[u8], policy: &Policy, info: Option<&ObjectInfo>) -> Result<Inspection, InspectError> {
    let wf = Workflow::from_json(bytes, &policy.limits)?;
    inspect(&wf, policy, info)
}

/// Inspects a workflow. `info`, the server's `/object_info` when known,
/// makes unknown classes findings and gives input types.
///
/// # Errors
/// [`InspectError`] when the workflow breaks a limit (checked first).
pub fn inspect(wf: &Workflow, policy: &Policy, info: Option<&ObjectInfo>) -> Result<Inspection, InspectError> {
    let mut run = Run {
        policy,
        info,
        out: Inspection {
            mode: policy.mode,
            nodes_used: Vec::with_capacity(wf.len()),
            findings: Vec::new(),
        },
        nodes_seen: 0,
        code: code::CodeCache::default(),
    };
    run.workflow(wf, "", 0)?;
    Ok(run.out)
}

/// Subgraphs nested deeper than this are reported, not inspected (the
/// peer's limit).
const MAX_SUBGRAPH_DEPTH: usize = 10;

struct Run<'a> {
    policy: &'a Policy,
    info: Option<&'a ObjectInfo>,
    out: Inspection,
    /// Nodes inspected so far, subgraphs included, against the node limit.
    nodes_seen: usize,
    /// Verdicts on strings already judged in this inspection.
    code: code::CodeCache,
}

impl Run<'_> {
    fn workflow(&mut self, wf: &Workflow, prefix: &str, depth: usize) -> Result<(), InspectError> {
        self.nodes_seen += wf.len();
        if self.nodes_seen > self.policy.limits.max_nodes {
            return Err(InspectError::TooManyNodes {
                max: self.policy.limits.max_nodes,
            });
        }
        let mut resolver = Resolver::new(wf, self.policy.limits.max_string);
        // Class verdicts repeat across nodes: judge each class once.
        let mut judged: HashMap<&str, bool> = HashMap::new();
        for node in wf.nodes() {
            let id: Cow<'_, str> = if prefix.is_empty() {
                Cow::Borrowed(node.id.as_str())
            } else {
                Cow::Owned(format!("{prefix}{}", node.id))
            };
            let class = node.class_type.as_str();
            let def = self.info.and_then(|i| i.node(class));
            self.out.nodes_used.push(node.class_type.clone());
            let flagged = *judged
                .entry(class)
                .or_insert_with(|| self.class_flagged(class, def.is_some()));
            if flagged {
                self.class_findings(&id, class, def.is_some());
            }
            for (name, input) in &node.inputs {
                match input {
                    Input::Value(v) => self.scan_value(&id, class, name, v)?,
                    Input::Link(_) => {}
                }
                if let Some(sink) = flow::sink(class, name, def) {
                    self.sink(&mut resolver, &id, class, name, input, sink);
                }
            }
            if contains_ignore_ascii_case(class, "subgraph") {
                self.subgraph(node, &id, class, depth)?;
            }
        }
        Ok(())
    }

    fn push(&mut self, rule: RuleId, node: &str, class: &str, input: Option<&str>, message: String, detail: String) {
        self.out.findings.push(Finding {
            rule,
            severity: rule.severity(),
            node: Some(node.to_owned()),
            class: Some(class.to_owned()),
            input: input.map(str::to_owned),
            message,
            detail,
        });
    }

    /// Whether [`Run::class_findings`] has anything to say about `class`.
    fn class_flagged(&self, class: &str, known: bool) -> bool {
        self.policy.is_dangerous(class)
            || self.policy.lookalike_of(class).is_some()
            || (!known && names::suspicious_characters(class).is_some())
            || (self.info.is_some() && !known)
            || (self.policy.mode == Mode::Enforce
                && !self.policy.allowed.is_empty()
                && !self.policy.allowed.contains(class))
    }

    fn class_findings(&mut self, id: &str, class: &str, known: bool) {
        if self.policy.is_dangerous(class) {
            self.push(
                RuleId::DangerousNode,
                id,
                class,
                None,
                format!("Dangerous node type: {class}"),
                "on the dangerous node list".to_owned(),
            );
        } else if let Some(target) = self.policy.lookalike_of(class) {
            let target = target.to_owned();
            self.push(
                RuleId::LookalikeNode,
                id,
                class,
                None,
                format!("Node {id} ({}) looks like dangerous node type '{target}'", shown(class)),
                format!("the class name differs from `{target}` only by case, confusable characters (Unicode confusables), invisible or bidi-control characters, separators or a copy marker"),
            );
        }
        if !known && let Some(why) = names::suspicious_characters(class) {
            self.push(
                RuleId::NonAsciiNode,
                id,
                class,
                None,
                format!(
                    "Node {id} ({}) has a class name that cannot be vouched for",
                    shown(class)
                ),
                format!("{why}, and the server's catalog does not list it byte for byte"),
            );
        }
        if self.info.is_some() && !known {
            self.push(
                RuleId::UnknownNode,
                id,
                class,
                None,
                format!(
                    "Unknown node type: {} (node {id}) is not installed on the server",
                    shown(class)
                ),
                "not in the server's /object_info".to_owned(),
            );
        }
        if self.policy.mode == Mode::Enforce && !self.policy.allowed.is_empty() && !self.policy.allowed.contains(class)
        {
            self.push(
                RuleId::UnapprovedNode,
                id,
                class,
                None,
                format!("Unapproved node type: {} (node {id})", shown(class)),
                "not in security.allowed_nodes".to_owned(),
            );
        }
    }

    /// Scans a literal input: every string and key at any depth.
    fn scan_value(&mut self, id: &str, class: &str, name: &str, value: &Value) -> Result<(), InspectError> {
        let max_depth = self.policy.limits.max_depth;
        let max_string = self.policy.limits.max_string;
        match value {
            // Most inputs: a scalar at the top, no path to build.
            Value::Null | Value::Bool(_) | Value::Number(_) => return Ok(()),
            Value::String(s) if s.len() <= max_string => {
                if let Some(hit) = self.code.find(s) {
                    self.suspicious(id, class, name, hit.describe());
                }
                return Ok(());
            }
            _ => {}
        }
        let mut stack: Vec<(String, &Value, usize)> = vec![(name.to_owned(), value, 0)];
        while let Some((path, v, depth)) = stack.pop() {
            if depth > max_depth {
                return Err(InspectError::TooDeep {
                    node: id.to_owned(),
                    input: name.to_owned(),
                    max: max_depth,
                });
            }
            let text_check = |s: &str| {
                if s.len() > max_string {
                    Err(InspectError::StringTooLong {
                        node: id.to_owned(),
                        input: name.to_owned(),
                        len: s.len(),
                        max: max_string,
                    })
                } else {
                    Ok(())
                }
            };
            match v {
                Value::String(s) => {
                    text_check(s)?;
                    if let Some(hit) = self.code.find(s) {
                        self.suspicious(id, class, &path, hit.describe());
                    }
                }
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate().rev() {
                        stack.push((format!("{path}[{i}]"), item, depth + 1));
                    }
                }
                Value::Object(map) => {
                    let mut children = Vec::with_capacity(map.len());
                    for (k, item) in map {
                        let child = format!("{path}.{k}");
                        text_check(k)?;
                        if let Some(hit) = self.code.find(k) {
                            self.suspicious(id, class, &child, format!("{} in an object key", hit.describe()));
                        }
                        children.push((child, item, depth + 1));
                    }
                    stack.extend(children.into_iter().rev());
                }
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
            }
        }
        Ok(())
    }

    fn suspicious(&mut self, id: &str, class: &str, path: &str, detail: String) {
        self.push(
            RuleId::CodeInInput,
            id,
            class,
            Some(path),
            format!("Suspicious input in node {id} ({class}), field '{path}'"),
            detail,
        );
    }

    /// Judges the value reaching an input that acts on text.
    fn sink(&mut self, resolver: &mut Resolver<'_>, id: &str, class: &str, name: &str, input: &Input, sink: Sink) {
        let linked = matches!(input, Input::Link(_));
        match resolver.input(input) {
            None => {}
            Some(Text::Known(values)) => {
                for value in values {
                    match sink {
                        // Literals were scanned with every other string.
                        Sink::Execute if linked => {
                            if let Some(hit) = self.code.find(&value) {
                                self.suspicious(
                                    id,
                                    class,
                                    name,
                                    format!("{} in text assembled from linked nodes", hit.describe()),
                                );
                                return;
                            }
                        }
                        Sink::Execute => {}
                        Sink::WriteFile | Sink::ReadFile => {
                            let path = if sink == Sink::ReadFile {
                                strip_folder_tag(&value)
                            } else {
                                &value
                            };
                            if let Err(e) = check_node_path(path) {
                                self.push(
                                    RuleId::PathEscape,
                                    id,
                                    class,
                                    Some(name),
                                    format!("Unsafe path in node {id} ({class}), field '{name}'"),
                                    format!("{} ({}): {}", sink.describe(), e.rule, e.detail),
                                );
                                return;
                            }
                        }
                        Sink::Fetch => {
                            if let Some(why) = unsafe_url(&value) {
                                self.push(
                                    RuleId::UnsafeUrl,
                                    id,
                                    class,
                                    Some(name),
                                    format!("Unsafe URL in node {id} ({class}), field '{name}'"),
                                    why.to_owned(),
                                );
                                return;
                            }
                        }
                    }
                }
            }
            Some(Text::Unknown { node, class: from, why }) => {
                self.push(
                    RuleId::TaintedInput,
                    id,
                    class,
                    Some(name),
                    format!("Unverifiable input in node {id} ({class}), field '{name}'"),
                    format!(
                        "the input {}, and its text from node {node} ({}) cannot be checked: {why}",
                        sink.describe(),
                        shown(&from)
                    ),
                );
            }
        }
    }

    fn subgraph(
        &mut self,
        node: &comfy_workflow::Node,
        id: &str,
        class: &str,
        depth: usize,
    ) -> Result<(), InspectError> {
        if depth + 1 >= MAX_SUBGRAPH_DEPTH {
            self.push(
                RuleId::SubgraphDepth,
                id,
                class,
                None,
                format!("Node {id} ({class}) exceeds max subgraph depth ({MAX_SUBGRAPH_DEPTH}) — deeper nesting not inspected"),
                "nested too deep to inspect".to_owned(),
            );
            return Ok(());
        }
        let preferred = ["subgraph", "nodes", "graph"].iter().filter_map(|k| node.value(k));
        let rest = node.inputs.iter().filter_map(|(_, i)| i.as_value());
        let Some(inner) = preferred.chain(rest).find(|v| looks_like_graph(v)) else {
            self.push(
                RuleId::SubgraphUnexpanded,
                id,
                class,
                None,
                format!("Node {id} ({class}) contains unexpanded subgraph — cannot fully inspect"),
                "no nested graph found in its inputs".to_owned(),
            );
            return Ok(());
        };
        let nested = Workflow::from_value(inner.clone(), &self.policy.limits)?;
        self.workflow(&nested, &format!("{id}:"), depth + 1)
    }
}

/// Whether `haystack` contains `needle`, ASCII case-insensitively.
fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// A non-empty object with at least one value that is an object with a
/// `class_type`: a nested API-format graph.
fn looks_like_graph(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.values().any(|n| n.get("class_type").is_some()))
}

/// `photo.png [input]` → `photo.png`: ComfyUI's folder annotation.
fn strip_folder_tag(s: &str) -> &str {
    for tag in [" [input]", " [output]", " [temp]"] {
        if let Some(stripped) = s.strip_suffix(tag) {
            return stripped;
        }
    }
    s
}

/// Why a node must not fetch `raw`, if it must not.
fn unsafe_url(raw: &str) -> Option<&'static str> {
    let Ok(url) = url::Url::parse(raw.trim()) else {
        return None;
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Some("not an http or https address (file, ftp, gopher and the like reach local resources)");
    }
    match url.host() {
        Some(url::Host::Ipv4(ip))
            if ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified() =>
        {
            Some("a loopback, private or link-local address")
        }
        Some(url::Host::Ipv6(ip))
            if ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80 =>
        {
            Some("a loopback, private or link-local address")
        }
        Some(url::Host::Domain(d))
            if d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost") =>
        {
            Some("a loopback, private or link-local address")
        }
        _ => None,
    }
}

/// A class name for a message: escaped so invisible characters show.
fn shown(class: &str) -> String {
    if class.chars().all(|c| !c.is_control() && !crate::path::is_invisible(c)) {
        class.to_owned()
    } else {
        class.escape_debug().to_string()
    }
}
