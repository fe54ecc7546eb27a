//! The node auditor: which installed node classes can do dangerous things,
//! judged from a server's `/object_info` catalog.
//!
//! The result has the peer's shape (`{total_nodes, dangerous: {count,
//! nodes: [{class, reason}]}, suspicious: {...}}`) and keeps its checks
//! (name, input type, option and description patterns, with its reason
//! wording) so existing consumers read it unchanged. On top of them: the
//! policy's dangerous list (byte-exact) and look-alikes of it, input types
//! in the list form real catalogs use (the peer only read a dict form
//! ComfyUI does not send), and inputs whose name says they take code.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use serde_json::Value;

use crate::inspect::Policy;

/// The audit of one catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeAudit {
    /// Classes in the catalog.
    pub total_nodes: usize,
    /// Classes that can run code, reach the network or the file system.
    pub dangerous: AuditGroup,
    /// Classes whose description suggests it.
    pub suspicious: AuditGroup,
}

/// One group of audited classes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditGroup {
    /// How many.
    pub count: usize,
    /// Which, in catalog order.
    pub nodes: Vec<AuditedNode>,
}

/// One flagged class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditedNode {
    /// The class name.
    pub class: String,
    /// Every reason, joined with `; `.
    pub reason: String,
}

/// The peer's name patterns (case-insensitive), in its order; the first
/// that matches is the reason.
const NAME_PATTERNS: &[&str] = &[
    r"\bexec\b",
    r"\beval\b",
    r"\bshell\b",
    r"\bcmd\b",
    r"\bcommand\b",
    r"\bpythonexec\b",
    r"\brunpython\b",
    r"\bos\.system\b",
    r"\bsubprocess\b",
    r"\bterminal\b",
    r"\bconsole\b",
    r"\bscript\b.*exec\b",
    r"\bhttp\b",
    r"\brequest\b",
    r"\bfetch\b",
    r"\bdownload\b",
    r"\bupload\b",
    r"file.{0,20}path",
    r"load.{0,20}file",
    r"save.{0,20}file",
    r"interpreter",
    r"python",
];

/// The peer's description patterns (case-insensitive).
const DESCRIPTION_PATTERNS: &[&str] = &[r"execute", r"run.*code", r"python.*run", r"script.*run"];

/// Input types that carry code, commands, addresses or paths.
const DANGEROUS_TYPES: &[&str] = &[
    "CODE",
    "PYTHON",
    "COMMAND",
    "COMMANDLINE",
    "URL",
    "FILE_PATH",
    "FILEPATH",
    "SCRIPT",
];

/// Input names that say the input takes code.
const CODE_INPUT_NAMES: &[&str] = &["code", "python_code", "script", "python", "command", "cmd", "shell"];

fn compile(patterns: &[&'static str]) -> Vec<(&'static str, Regex)> {
    patterns
        .iter()
        .filter_map(|p| Regex::new(&format!("(?i){p}")).ok().map(|r| (*p, r)))
        .collect()
}

static NAMES: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| compile(NAME_PATTERNS));
static DESCRIPTIONS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| compile(DESCRIPTION_PATTERNS));

fn first_match<'a>(patterns: &'a [(&'static str, Regex)], text: &str) -> Option<&'a str> {
    patterns.iter().find(|(_, r)| r.is_match(text)).map(|(p, _)| *p)
}

/// Audits an `/object_info` catalog against `policy`'s dangerous list.
/// Entries that are not objects are skipped, as the peer skips them.
pub fn audit_catalog(catalog: &Value, policy: &Policy) -> NodeAudit {
    let mut audit = NodeAudit {
        total_nodes: 0,
        dangerous: AuditGroup::default(),
        suspicious: AuditGroup::default(),
    };
    let Some(entries) = catalog.as_object() else {
        return audit;
    };
    for (class, entry) in entries {
        let Some(def) = entry.as_object() else { continue };
        audit.total_nodes += 1;
        let mut dangerous: Vec<String> = Vec::new();
        if policy.is_dangerous(class) {
            dangerous.push("On the dangerous node list".to_owned());
        } else if let Some(target) = policy.lookalike_of(class) {
            dangerous.push(format!("Looks like dangerous node type '{target}'"));
        }
        if let Some(p) = first_match(&NAMES, class) {
            dangerous.push(format!("Name matches pattern: {p}"));
        }
        let mut suspicious: Vec<String> = Vec::new();
        for (section, inputs) in def
            .get("input")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.iter())
        {
            if section == "hidden" {
                continue;
            }
            for (name, spec) in inputs.as_object().into_iter().flat_map(|m| m.iter()) {
                audit_input(name, spec, &mut dangerous, &mut suspicious);
            }
        }
        let description = def.get("description").and_then(Value::as_str).unwrap_or_default();
        if let Some(p) = first_match(&DESCRIPTIONS, description) {
            suspicious.push(format!("Description matches: {p}"));
        }
        if !dangerous.is_empty() {
            audit.dangerous.nodes.push(AuditedNode {
                class: class.clone(),
                reason: dangerous.join("; "),
            });
        } else if !suspicious.is_empty() {
            audit.suspicious.nodes.push(AuditedNode {
                class: class.clone(),
                reason: suspicious.join("; "),
            });
        }
    }
    audit.dangerous.count = audit.dangerous.nodes.len();
    audit.suspicious.count = audit.suspicious.nodes.len();
    audit
}

/// One input spec: `["TYPE", {options}]` as ComfyUI sends it, or the
/// `{"type": ...}` form the peer read.
fn audit_input(name: &str, spec: &Value, dangerous: &mut Vec<String>, suspicious: &mut Vec<String>) {
    let (type_name, options) = match spec {
        Value::Array(items) => (
            items.first().and_then(Value::as_str),
            items.get(1).and_then(Value::as_object),
        ),
        Value::Object(m) => (m.get("type").and_then(Value::as_str), Some(m)),
        _ => (None, None),
    };
    if let Some(t) = type_name {
        let upper = t.to_ascii_uppercase();
        if DANGEROUS_TYPES.contains(&upper.as_str()) {
            dangerous.push(format!("Has dangerous input type: {upper}"));
        }
    }
    for value in options.into_iter().flat_map(|m| m.values()).filter_map(Value::as_str) {
        if let Some(p) = first_match(&NAMES, value) {
            dangerous.push(format!("Option '{name}' contains: {p}"));
            break;
        }
    }
    if CODE_INPUT_NAMES.contains(&name.to_ascii_lowercase().as_str()) && type_name.is_some_and(|t| t == "STRING") {
        suspicious.push(format!("Input '{name}' takes text named as code"));
    }
}
