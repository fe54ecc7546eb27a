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
mod policy;
pub mod provenance;
mod report;
mod rules;
mod run;
mod urls;

use comfy_workflow::{ObjectInfo, Workflow};
use serde_json::Value;

pub use self::names::default_dangerous_nodes;
pub use self::policy::{Mode, Policy};
pub use self::report::{Blocked, Finding, InspectError, Inspection, python_list};
pub use self::rules::{RuleId, Severity};
use self::run::Run;

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
