//! The workflow inspector: every check a workflow passes before it runs.
//!
//! What it judges, in order:
//! 1. limits (node count, nesting depth, string size), before anything
//!    else, so a hostile document is rejected rather than scanned slowly;
//! 2. node classes: on the dangerous list (byte-exact, as ComfyUI resolves
//!    classes), looking like a listed one, unknown to the server, or not
//!    vouched for by their provenance in enforce mode (see [`provenance`]);
//! 3. every string and object key in every input, for code (see
//!    [`code`]);
//! 4. inputs that act on text (execute it, write or read files, fetch
//!    URLs), judged on the value that reaches them through links (see
//!    `flow`), with file paths held to [`check_node_path`](crate::path::check_node_path);
//! 5. graphs inside the workflow, wherever they sit (under any input at
//!    any depth, as JSON text in a string, editor graphs in
//!    `widgets_values`), inspected as workflows of their own (depth 10, the
//!    node limit counting every graph); see [`graphs`], which also reads
//!    what an editor file hides from its conversion.
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

pub mod api_nodes;
pub mod code;
mod flow;
pub mod graphs;
mod names;
pub mod provenance;
mod urls;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt::{self, Write as _};

use comfy_workflow::{Input, Limits, ObjectInfo, ParseError, SmolStr, Workflow};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::flow::{Resolver, Sink, Text};
use self::names::DangerousIndex;
pub use self::names::default_dangerous_nodes;
use self::provenance::Verdict;
use crate::path::check_node_path;

/// How findings affect a run, as the peer's `security.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Findings are warnings; the workflow runs.
    #[default]
    Audit,
    /// Only classes it can vouch for run: core classes (less a curated
    /// list), classes of allowlisted packs, classes named in the allowlist
    /// (and with an explicit allowlist, only those). Any other finding
    /// needs the user's confirmation; see [`provenance`].
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
    allowed_packs: BTreeSet<String>,
    allow_api_nodes: bool,
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
            allowed_packs: BTreeSet::new(),
            allow_api_nodes: false,
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

    /// Sets the packs whose classes enforce mode runs
    /// (`security.allowed_node_packs`, each `custom_nodes.<folder>` as
    /// `/object_info`'s `python_module` names it).
    #[must_use]
    pub fn with_allowed_packs<I: IntoIterator<Item = S>, S: Into<String>>(mut self, modules: I) -> Self {
        self.allowed_packs = modules.into_iter().map(Into::into).collect();
        self
    }

    /// Lets paid API nodes run without the `node.api` finding
    /// (`security.allow_api_nodes`): in enforce mode they then run without
    /// asking, also when the dangerous list names them (it names many as
    /// paid API); in audit mode the `node.api` warning goes, the dangerous
    /// list's warnings stay. They are listed in
    /// [`Inspection::api_nodes`] either way.
    #[must_use]
    pub fn with_allow_api_nodes(mut self, allow: bool) -> Self {
        self.allow_api_nodes = allow;
        self
    }

    /// Whether paid API nodes run without asking.
    pub fn allows_api_nodes(&self) -> bool {
        self.allow_api_nodes
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
    /// `node.provenance`: a class enforce mode cannot vouch for (from a pack
    /// not allowlisted, a core class that acts on paths or code, or of
    /// unknown origin).
    #[serde(rename = "node.provenance")]
    NodeProvenance,
    /// `node.api`: a paid partner node (`api_node` in `/object_info`): it
    /// sends its inputs to an outside service and charges the user's Comfy
    /// account.
    #[serde(rename = "node.api")]
    ApiNode,
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
    /// `input.pickle`: a loader reads a pickle (which can run code when
    /// loaded).
    #[serde(rename = "input.pickle")]
    PickleLoad,
    /// `image.disagree`: an image carries embedded workflows that disagree
    /// (two different texts under one keyword, or a prompt that runs
    /// classes its editor workflow does not show).
    #[serde(rename = "image.disagree")]
    ImageDisagree,
    /// `subgraph.depth`: subgraphs nested deeper than inspected.
    #[serde(rename = "subgraph.depth")]
    SubgraphDepth,
    /// `subgraph.unexpanded`: a subgraph node whose graph was not found.
    #[serde(rename = "subgraph.unexpanded")]
    SubgraphUnexpanded,
    /// `limits.max_pixels`: an image over `limits.max_pixels`, or whose size
    /// cannot be worked out before the run (see [`crate::cost`]).
    #[serde(rename = "limits.max_pixels")]
    MaxPixels,
    /// `limits.max_batch_size`: a batch over the limit, or of a size that
    /// cannot be worked out before the run.
    #[serde(rename = "limits.max_batch_size")]
    MaxBatchSize,
    /// `limits.max_frames`: a video over the limit, or of a length that
    /// cannot be worked out before the run.
    #[serde(rename = "limits.max_frames")]
    MaxFrames,
    /// `limits.max_steps`: sampler steps over the limit, or a count that
    /// cannot be worked out before the run.
    #[serde(rename = "limits.max_steps")]
    MaxSteps,
    /// `limits.max_upscale_factor`: an upscale (along its chain) over the
    /// limit, or a factor that cannot be worked out before the run.
    #[serde(rename = "limits.max_upscale_factor")]
    MaxUpscaleFactor,
}

impl RuleId {
    /// Every rule, for documentation and SARIF rule tables.
    pub const ALL: &[RuleId] = &[
        RuleId::DangerousNode,
        RuleId::LookalikeNode,
        RuleId::NonAsciiNode,
        RuleId::UnknownNode,
        RuleId::UnapprovedNode,
        RuleId::NodeProvenance,
        RuleId::ApiNode,
        RuleId::CodeInInput,
        RuleId::TaintedInput,
        RuleId::PathEscape,
        RuleId::UnsafeUrl,
        RuleId::PickleLoad,
        RuleId::ImageDisagree,
        RuleId::SubgraphDepth,
        RuleId::SubgraphUnexpanded,
        RuleId::MaxPixels,
        RuleId::MaxBatchSize,
        RuleId::MaxFrames,
        RuleId::MaxSteps,
        RuleId::MaxUpscaleFactor,
    ];

    /// The stable id (`node.dangerous`, ...).
    pub fn id(self) -> &'static str {
        match self {
            RuleId::DangerousNode => "node.dangerous",
            RuleId::LookalikeNode => "node.lookalike",
            RuleId::NonAsciiNode => "node.nonascii",
            RuleId::UnknownNode => "node.unknown",
            RuleId::UnapprovedNode => "node.unapproved",
            RuleId::NodeProvenance => "node.provenance",
            RuleId::ApiNode => "node.api",
            RuleId::CodeInInput => "input.code",
            RuleId::TaintedInput => "input.tainted",
            RuleId::PathEscape => "input.path",
            RuleId::UnsafeUrl => "input.url",
            RuleId::PickleLoad => "input.pickle",
            RuleId::ImageDisagree => "image.disagree",
            RuleId::SubgraphDepth => "subgraph.depth",
            RuleId::SubgraphUnexpanded => "subgraph.unexpanded",
            RuleId::MaxPixels => "limits.max_pixels",
            RuleId::MaxBatchSize => "limits.max_batch_size",
            RuleId::MaxFrames => "limits.max_frames",
            RuleId::MaxSteps => "limits.max_steps",
            RuleId::MaxUpscaleFactor => "limits.max_upscale_factor",
        }
    }

    /// How serious a finding of this rule is.
    pub fn severity(self) -> Severity {
        match self {
            RuleId::DangerousNode
            | RuleId::LookalikeNode
            | RuleId::NonAsciiNode
            | RuleId::UnapprovedNode
            | RuleId::NodeProvenance
            | RuleId::CodeInInput
            | RuleId::PathEscape
            | RuleId::UnsafeUrl
            | RuleId::PickleLoad
            | RuleId::ImageDisagree
            | RuleId::MaxPixels
            | RuleId::MaxBatchSize
            | RuleId::MaxFrames
            | RuleId::MaxSteps
            | RuleId::MaxUpscaleFactor => Severity::Error,
            RuleId::UnknownNode
            | RuleId::ApiNode
            | RuleId::TaintedInput
            | RuleId::SubgraphDepth
            | RuleId::SubgraphUnexpanded => Severity::Warning,
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
            RuleId::NodeProvenance => {
                "A node class enforce mode cannot vouch for: from a pack not allowlisted, a core class that acts on paths or code, or of unknown origin."
            }
            RuleId::ApiNode => {
                "A paid partner node (API node): it sends its inputs to an outside service and charges the user's Comfy account."
            }
            RuleId::CodeInInput => "Python or shell code in a string that reaches a node, plain or encoded.",
            RuleId::TaintedInput => {
                "Text that cannot be computed before the run reaches an input that executes, writes, reads or fetches it."
            }
            RuleId::PathEscape => "A file path that leaves the folder the node reads or writes.",
            RuleId::UnsafeUrl => "An address a node would fetch that is local, private or not http(s).",
            RuleId::PickleLoad => "A loader reads a pickle file, which can run code when it is loaded.",
            RuleId::ImageDisagree => {
                "An image's embedded workflows disagree: what one reader loads is not what another shows."
            }
            RuleId::SubgraphDepth => "Subgraphs nested deeper than the inspector follows.",
            RuleId::SubgraphUnexpanded => "A subgraph node whose inner graph could not be found.",
            RuleId::MaxPixels => "An image larger than the job limit, or of a size known only when the job runs.",
            RuleId::MaxBatchSize => "A batch larger than the job limit, or of a size known only when the job runs.",
            RuleId::MaxFrames => "A video longer than the job limit, or of a length known only when the job runs.",
            RuleId::MaxSteps => "More sampler steps than the job limit, or a count known only when the job runs.",
            RuleId::MaxUpscaleFactor => {
                "An upscale (with the upscales before it) over the job limit, or a factor known only when the job runs."
            }
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
#[non_exhaustive]
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
    /// What an editor file hides could not be read within the limits.
    #[error("workflow rejected: {0}")]
    Hidden(String),
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
    /// In enforce mode, classes refused outright because nothing says
    /// where they come from (not in the catalog, or no catalog), in
    /// first-use order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
    /// Every node that is a paid API node (with the server's catalog
    /// only), in document order, whatever the mode and
    /// `security.allow_api_nodes` say: running the workflow spends money.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_nodes: Vec<api_nodes::ApiNodeUse>,
}

/// Why enforce mode refuses to run a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocked {
    /// The classes refused, in first-use order.
    pub unapproved: Vec<String>,
    /// `Workflow blocked — unapproved node types: ['A', 'B']`, as the peer
    /// words it (classes outside an explicit allowlist), or ours for
    /// classes of unknown origin.
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

    /// In enforce mode, the refusal naming every class outside an explicit
    /// allowlist, or else every class of unknown origin.
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
            if self.refused.is_empty() {
                return None;
            }
            let message = format!(
                "Workflow blocked — node types enforce mode cannot vouch for (not in the server's /object_info): {}",
                python_list(&self.refused)
            );
            return Some(Blocked {
                unapproved: self.refused.clone(),
                message,
            });
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
            refused: Vec::new(),
            api_nodes: Vec::new(),
        },
        nodes_seen: 0,
        graphs_found: 0,
        code: code::CodeCache::default(),
    };
    run.workflow(wf, "", 0)?;
    Ok(run.out)
}

/// Inspects what an editor file hides from its conversion (see
/// [`graphs::editor_hidden`]): muted and bypassed nodes, subgraph
/// definitions nested in definitions, legacy group nodes. Findings about a
/// muted or bypassed node say so in their detail. The caller adds these to
/// the inspection of the converted workflow.
///
/// # Errors
/// [`InspectError`] when a limit is broken.
pub fn inspect_editor_hidden(
    doc: &Value,
    policy: &Policy,
    info: Option<&ObjectInfo>,
) -> Result<Inspection, InspectError> {
    // Promoted values the conversion gives an inner node are judged there.
    let carried = info
        .and_then(|info| comfy_workflow::editor::to_api_traced(doc, info, &policy.limits).ok())
        .map(|c| c.promoted)
        .unwrap_or_default();
    let hidden =
        graphs::editor_hidden(doc, &policy.limits, MAX_SUBGRAPH_DEPTH, &carried).map_err(InspectError::Hidden)?;
    let mut report = inspect(&hidden.workflow, policy, info)?;
    let inactive = &hidden.inactive;
    // A subgraph instance's class is a definition id: only its content counts.
    let class_rules = [
        RuleId::DangerousNode,
        RuleId::LookalikeNode,
        RuleId::UnknownNode,
        RuleId::UnapprovedNode,
        RuleId::NodeProvenance,
        RuleId::SubgraphUnexpanded,
    ];
    report
        .findings
        .retain(|f| !(class_rules.contains(&f.rule) && f.node.as_ref().is_some_and(|n| hidden.instances.contains(n))));
    let instance_classes: Vec<String> = hidden
        .workflow
        .nodes()
        .iter()
        .filter(|n| hidden.instances.iter().any(|i| i == n.id.as_str()))
        .map(|n| n.class_type.to_string())
        .collect();
    report.refused.retain(|c| !instance_classes.contains(c));
    // What is hidden does not run now: it spends nothing (its `node.api`
    // findings stay, marked below).
    report.api_nodes.clear();
    for f in &mut report.findings {
        if let Some(node) = &f.node
            && inactive.iter().any(|id| id == node)
        {
            f.detail.push_str(
                " (in a muted or bypassed node: it does not run now, but one click in the editor turns it on)",
            );
        }
    }
    Ok(report)
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
    /// Nested graphs found so far.
    graphs_found: usize,
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
            if let Some(d) = def.filter(|d| api_nodes::is_api_node(d)) {
                self.out.api_nodes.push(api_nodes::ApiNodeUse {
                    node: id.to_string(),
                    class: class.to_owned(),
                    service: api_nodes::service(d),
                });
            }
            let flagged = *judged.entry(class).or_insert_with(|| self.class_flagged(class, def));
            if flagged {
                self.class_findings(&id, class, def);
            }
            let graphs_before = self.graphs_found;
            for (name, input) in &node.inputs {
                // An input name reaches the node as a keyword: judged like a value.
                if let Some(hit) = code::find_code(name) {
                    self.suspicious(&id, class, name, format!("{} in an input name", hit.describe()));
                }
                match input {
                    Input::Value(v) => self.scan_value(&id, class, name, v, depth)?,
                    Input::Link(_) => {}
                }
                if let Some(sink) = flow::sink(class, name, def, input) {
                    self.sink(&mut resolver, &id, class, name, input, sink);
                } else if matches!(input, Input::Link(_)) && flow::may_carry_text(def, name) {
                    // A URL literal is judged at any input; so is one assembled over links.
                    self.linked_url(&mut resolver, &id, class, name, input);
                }
            }
            if contains_ignore_ascii_case(class, "subgraph") && self.graphs_found == graphs_before {
                self.push(
                    RuleId::SubgraphUnexpanded,
                    &id,
                    class,
                    None,
                    format!("Node {id} ({class}) contains unexpanded subgraph — cannot fully inspect"),
                    "no nested graph found in its inputs".to_owned(),
                );
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
    fn class_flagged(&self, class: &str, def: Option<&comfy_workflow::object_info::NodeDef>) -> bool {
        self.policy.is_dangerous(class)
            || self.policy.lookalike_of(class).is_some()
            || (def.is_none() && names::suspicious_characters(class).is_some())
            || (self.info.is_some() && def.is_none())
            || self.provenance(class, def).is_some()
            || def.is_some_and(api_nodes::is_api_node)
    }

    /// What provenance says about `class` in this mode, when it says
    /// anything. Audit mode reports what enforce mode would ask about
    /// (with a catalog only, and ignoring that an explicit allowlist is
    /// exclusive, as the peer's audit mode ignores it); enforce mode
    /// reports every class it would not run.
    fn provenance(&self, class: &str, def: Option<&comfy_workflow::object_info::NodeDef>) -> Option<Verdict> {
        let p = self.policy;
        let catalog = self.info.is_some();
        let verdict = provenance::verdict(class, def, catalog, &p.allowed, &p.allowed_packs);
        if p.mode == Mode::Enforce {
            return (verdict != Verdict::Runs).then_some(verdict);
        }
        match verdict {
            v @ Verdict::Ask(_) => Some(v),
            Verdict::NotListed if catalog => {
                match provenance::verdict(class, def, catalog, &BTreeSet::new(), &p.allowed_packs) {
                    v @ Verdict::Ask(_) => Some(v),
                    _ => None,
                }
            }
            Verdict::Runs | Verdict::NotListed | Verdict::Refuse(_) => None,
        }
    }

    fn class_findings(&mut self, id: &str, class: &str, def: Option<&comfy_workflow::object_info::NodeDef>) {
        let known = def.is_some();
        // With `security.allow_api_nodes`, enforce mode runs ComfyUI's own
        // API nodes without asking, although the dangerous list names many
        // of them (as paid API).
        let waived = self.policy.mode == Mode::Enforce
            && self.policy.allow_api_nodes
            && def.is_some_and(api_nodes::is_core_api_node);
        if self.policy.is_dangerous(class) && !waived {
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
        match self.provenance(class, def) {
            None | Some(Verdict::Runs) => {}
            Some(Verdict::NotListed) => self.push(
                RuleId::UnapprovedNode,
                id,
                class,
                None,
                format!("Unapproved node type: {} (node {id})", shown(class)),
                "not in security.allowed_nodes".to_owned(),
            ),
            Some(Verdict::Ask(why)) => self.push(
                RuleId::NodeProvenance,
                id,
                class,
                None,
                format!("Unvetted node type: {} (node {id})", shown(class)),
                why,
            ),
            Some(Verdict::Refuse(why)) => {
                if !self.out.refused.iter().any(|c| c == class) {
                    self.out.refused.push(class.to_owned());
                }
                self.push(
                    RuleId::NodeProvenance,
                    id,
                    class,
                    None,
                    format!("Unvetted node type: {} (node {id})", shown(class)),
                    why,
                );
            }
        }
        if let Some(d) = def
            && api_nodes::is_api_node(d)
            && !self.policy.allow_api_nodes
        {
            let service = api_nodes::service(d);
            self.push(
                RuleId::ApiNode,
                id,
                class,
                None,
                format!(
                    "Paid API node: {} (node {id}) sends its inputs to {service} and charges the user's Comfy account",
                    shown(class)
                ),
                format!(
                    "a partner node (api_node in /object_info, module {}): running it costs money; security.allow_api_nodes: true runs API nodes without asking",
                    shown(&d.python_module)
                ),
            );
        }
    }

    /// Scans a literal input: every string and key at any depth.
    /// Scans a literal input: every string and key at any depth; a graph
    /// found inside (an object, or JSON text in a string) is inspected as a
    /// nested workflow instead of as plain values.
    fn scan_value(
        &mut self,
        id: &str,
        class: &str,
        name: &str,
        value: &Value,
        graph_depth: usize,
    ) -> Result<(), InspectError> {
        let max_depth = self.policy.limits.max_depth;
        let max_string = self.policy.limits.max_string;
        match value {
            // Most inputs: a scalar at the top, no path to build.
            Value::Null | Value::Bool(_) | Value::Number(_) => return Ok(()),
            Value::String(s) if s.len() <= max_string && !graphs::may_hold_graph(s) => {
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
            if graphs::is_api_graph(v) || graphs::is_editor_graph(v) {
                self.nested(id, class, &path, v, graph_depth)?;
                continue;
            }
            match v {
                Value::String(s) => {
                    text_check(s)?;
                    if let Some(hit) = self.code.find(s) {
                        self.suspicious(id, class, &path, hit.describe());
                    }
                    if graphs::may_hold_graph(s)
                        && let Ok(doc) = comfy_workflow::parse_json(s.as_bytes(), &self.policy.limits)
                    {
                        let here = format!("{path} (JSON text)");
                        if graphs::is_api_graph(&doc) || graphs::is_editor_graph(&doc) {
                            self.nested(id, class, &here, &doc, graph_depth)?;
                        } else if graph_depth + 1 < MAX_SUBGRAPH_DEPTH {
                            // JSON text around a graph: each level of
                            // text counts as a level of nesting.
                            self.scan_value(id, class, &here, &doc, graph_depth + 1)?;
                        } else {
                            self.push(
                                RuleId::SubgraphDepth,
                                id,
                                class,
                                Some(&here),
                                format!("Node {id} ({class}) exceeds max subgraph depth ({MAX_SUBGRAPH_DEPTH}) — deeper nesting not inspected"),
                                "JSON text nested too deep to inspect".to_owned(),
                            );
                        }
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
                    // A value written as a URL is fetched by the nodes that
                    // read paths or URLs (Video Helper Suite, WAS): judged
                    // as the URL it is, as a literal would be.
                    let sink = if sink != Sink::Execute && urls::looks_like_url(&value) {
                        Sink::Fetch
                    } else {
                        sink
                    };
                    match sink {
                        // A literal string was scanned with every other string.
                        Sink::Execute => {
                            let assembled = linked || !matches!(input, Input::Value(Value::String(_)));
                            if let Some(detail) = flow::code_at_sink(&value, assembled) {
                                self.suspicious(id, class, name, detail);
                                return;
                            }
                        }
                        Sink::WriteFile | Sink::ReadFile => {
                            let path = if sink == Sink::ReadFile {
                                strip_folder_tag(&value)
                            } else {
                                &value
                            };
                            if sink == Sink::ReadFile && crate::path::AssetHash::parse(path).is_ok() {
                                // A content hash (ComfyUI 0.33 `--enable-assets`): no path at all.
                                continue;
                            }
                            let checked = if sink == Sink::ReadFile {
                                read_colon(path).and_then(|()| check_node_path(path))
                            } else {
                                check_node_path(path)
                            };
                            if let Err(e) = checked {
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
                            if sink == Sink::ReadFile
                                && let Some(why) = flow::pickle_reason(class, name, path)
                            {
                                self.push(
                                    RuleId::PickleLoad,
                                    id,
                                    class,
                                    Some(name),
                                    format!("Pickle file in node {id} ({class}), field '{name}'"),
                                    why,
                                );
                                return;
                            }
                        }
                        Sink::Fetch => {
                            if let Some(why) = urls::unsafe_url(&value) {
                                self.unsafe_url(id, class, name, why);
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

    /// Judges the value a linked input with no sink of its own carries,
    /// when it is a URL; anything else there is not the inspector's
    /// business (an unknown value included).
    fn linked_url(&mut self, resolver: &mut Resolver<'_>, id: &str, class: &str, name: &str, input: &Input) {
        let Some(Text::Known(values)) = resolver.input(input) else {
            return;
        };
        if let Some(why) = values
            .iter()
            .filter(|v| urls::looks_like_url(v))
            .find_map(|v| urls::unsafe_url(v))
        {
            self.unsafe_url(id, class, name, format!("text assembled from linked nodes: {why}"));
        }
    }

    fn unsafe_url(&mut self, id: &str, class: &str, name: &str, why: String) {
        self.push(
            RuleId::UnsafeUrl,
            id,
            class,
            Some(name),
            format!("Unsafe URL in node {id} ({class}), field '{name}'"),
            why,
        );
    }

    /// Inspects `graph`, found in input `path` of node `id`, as a nested
    /// workflow (node ids `id:inner`).
    fn nested(&mut self, id: &str, class: &str, path: &str, graph: &Value, depth: usize) -> Result<(), InspectError> {
        self.graphs_found += 1;
        if depth + 1 >= MAX_SUBGRAPH_DEPTH {
            self.push(
                RuleId::SubgraphDepth,
                id,
                class,
                Some(path),
                format!("Node {id} ({class}) exceeds max subgraph depth ({MAX_SUBGRAPH_DEPTH}) — deeper nesting not inspected"),
                "nested too deep to inspect".to_owned(),
            );
            return Ok(());
        }
        let limits = &self.policy.limits;
        let nested = if graphs::is_api_graph(graph) {
            Workflow::from_value(graph.clone(), limits).map_err(|e| e.to_string())
        } else {
            let mut wf = Workflow::new();
            graphs::editor_graph_as_workflow(graph, "", limits, &|_: &Value| true, &mut wf).map(|()| wf)
        };
        match nested {
            Ok(wf) => self.workflow(&wf, &format!("{id}:"), depth + 1),
            Err(why) => {
                // Not a graph ComfyUI could run as one: its strings are
                // still judged.
                self.push(
                    RuleId::SubgraphUnexpanded,
                    id,
                    class,
                    Some(path),
                    format!("Node {id} ({class}) contains unexpanded subgraph — cannot fully inspect"),
                    format!("a nested graph that does not parse ({why})"),
                );
                self.scan_plain(id, class, path, graph);
                Ok(())
            }
        }
    }

    /// Judges every string of `value` for code, without looking for graphs.
    fn scan_plain(&mut self, id: &str, class: &str, path: &str, value: &Value) {
        let mut stack: Vec<&Value> = vec![value];
        let mut seen = 0usize;
        while let Some(v) = stack.pop() {
            seen += 1;
            if seen > self.policy.limits.max_nodes.saturating_mul(64) {
                break;
            }
            match v {
                Value::String(s) if s.len() <= self.policy.limits.max_string => {
                    if let Some(hit) = code::find_code(s) {
                        self.suspicious(id, class, path, hit.describe());
                    }
                }
                Value::Array(items) => stack.extend(items.iter()),
                Value::Object(map) => stack.extend(map.values()),
                _ => {}
            }
        }
    }
}

/// Whether `haystack` contains `needle`, ASCII case-insensitively.
fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// `photo.png [input]` → `photo.png`: ComfyUI's folder annotation.
/// A `:` in a file a node reads: the one allowed form is an exact asset
/// hash (checked before); a value written as a hash that is not one gets
/// the hash's rule, any other `:` (an NTFS stream, a drive-relative path)
/// the `:` rule. URLs are the URL rule's business.
fn read_colon(path: &str) -> Result<(), crate::path::PathError> {
    use crate::path::AssetHash;
    if AssetHash::is_attempt(path) {
        return AssetHash::parse(path).map(|_| ());
    }
    if path.contains(':') && !path.contains("://") {
        return Err(crate::path::err(
            crate::path::PathKind::NodePath,
            crate::path::PathRule::Absolute,
            "a `:` in a file name (an NTFS stream or a drive); the one name with a `:` is an asset hash, \
             `blake3:` and 64 lowercase hex digits",
            path,
        ));
    }
    Ok(())
}

fn strip_folder_tag(s: &str) -> &str {
    for tag in [" [input]", " [output]", " [temp]"] {
        if let Some(stripped) = s.strip_suffix(tag) {
            return stripped;
        }
    }
    s
}

/// A class name for a message: escaped so invisible characters show.
fn shown(class: &str) -> String {
    if class.chars().all(|c| !c.is_control() && !crate::path::is_invisible(c)) {
        class.to_owned()
    } else {
        class.escape_debug().to_string()
    }
}
