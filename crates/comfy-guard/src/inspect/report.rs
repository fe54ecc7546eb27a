//! What an inspection returns: findings, the refusal enforce mode words, and
//! the errors for a workflow too big to look at. Data and its wording only;
//! [`run`](super::run) makes it.

use std::fmt::Write as _;

use comfy_workflow::{ParseError, SmolStr};
use serde::Serialize;

use super::api_nodes;
use super::policy::Mode;
use super::rules::{RuleId, Severity};

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
pub(super) fn python_str(s: &str) -> String {
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
