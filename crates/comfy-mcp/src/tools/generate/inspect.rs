//! The inspection gate: every workflow passes `comfy-guard`'s inspector
//! and the job limits before it is submitted.
//!
//! In audit mode the findings come back as `warnings` (the peer's
//! wording) and again as `findings`, each with its rule id (ours; job
//! limits included, as `limits.*`); in enforce mode a workflow with
//! classes outside the allowlist, or over the job limits, is refused, and
//! one with other findings runs only if the user confirms (refused when
//! the client cannot ask). Each verdict is written to the audit log before
//! anything reaches ComfyUI.

use std::collections::BTreeMap;

use comfy_audit::Record;
use comfy_guard::inspect::api_nodes::ApiNodeUse;
use comfy_guard::inspect::{Inspection, Mode, RuleId, python_list};
use comfy_workflow::Workflow;
use serde_json::{Map, Value, json};

use super::ToolContext;
use super::reporter::{Reporter, confirm};
use crate::tools::impls::ToolError;

/// What a submission carries back: the peer's warning strings (inspector,
/// job limits, missing models) and the inspector's and job limits'
/// findings with their rule ids.
#[derive(Default)]
pub(super) struct Warned {
    pub(super) text: Vec<String>,
    pub(super) findings: Vec<comfy_guard::Finding>,
}

impl Warned {
    /// Adds `warnings` and `findings` (when there are any) to `map`.
    pub(super) fn add_to(&self, map: &mut Map<String, Value>) {
        if !self.text.is_empty() {
            map.insert("warnings".to_owned(), json!(self.text));
        }
        if !self.findings.is_empty() {
            map.insert(
                "findings".to_owned(),
                serde_json::to_value(&self.findings).unwrap_or_default(),
            );
        }
    }
}

/// Inspects `wf`: warnings in audit mode; in enforce mode a refusal for
/// classes outside the allowlist, and for other findings the user's
/// confirmation when the client can ask for it (a refusal otherwise).
pub(super) async fn inspect(
    short: &str,
    wf: &Workflow,
    cx: &ToolContext,
    reporter: &Reporter,
) -> Result<(Warned, Vec<ApiNodeUse>), ToolError> {
    // With the server's catalog (cached by the client, dropped when nodes
    // are installed or removed): provenance, unknown classes and typed
    // inputs are judged. Without one, enforce mode refuses what it cannot
    // vouch for and audit mode judges what it can.
    let info = cx.client().object_info().await.ok();
    let report: Inspection =
        comfy_guard::inspect(wf, &cx.policy, info.as_deref()).map_err(|e| ToolError::rejected(e.to_string()))?;
    let mut warnings = report.warnings();
    let api_nodes = report.api_nodes.clone();
    // What the job may cost (`limits:`): refused in enforce mode, warned
    // about in audit mode (a value that cannot be worked out before the
    // run too), named either way.
    let costly = comfy_guard::check_job_in(wf, &cx.config.limits, report.mode);
    let mut findings = report.findings.clone();
    findings.extend(costly.iter().map(|o| o.finding(report.mode)));
    let over: Vec<String> = costly.into_iter().map(|o| o.message).collect();
    if report.mode == Mode::Enforce && !over.is_empty() {
        let message = format!("Workflow blocked — over the job limits: {}", over.join("; "));
        let _ = cx
            .audit
            .write(
                Record::new(short, "inspected")
                    .nodes_used(report.nodes_used.iter().map(ToString::to_string).collect())
                    .warnings(over.clone()),
            )
            .await;
        let mut e = ToolError::rejected(message);
        let mut details = Map::new();
        Warned { text: over, findings }.add_to(&mut details);
        e.details = Some(Value::Object(details));
        return Err(e);
    }
    warnings.extend(over);
    let record = Record::new(short, "inspected")
        .nodes_used(report.nodes_used.iter().map(ToString::to_string).collect())
        .warnings(warnings.clone());
    cx.audit
        .write(record)
        .await
        .map_err(|e| ToolError::failed(format!("not submitted: its audit record could not be written ({e})")))?;
    if let Some(blocked) = report.blocked() {
        return Err(ToolError::rejected(blocked.message));
    }
    if report.mode == Mode::Enforce && report.needs_confirmation() {
        let list = python_list(&warnings);
        if reporter.can_ask() {
            let message = format!(
                "Workflow has {} warning(s) in enforce mode: {list}. Proceed with submission?",
                warnings.len()
            );
            let _ = cx
                .audit
                .write(Record::new(short, "eliciting_confirmation").warnings(warnings.clone()))
                .await;
            match confirm(cx, reporter, message).await? {
                Some(true) => {
                    let _ = cx.audit.write(Record::new(short, "elicitation_accepted")).await;
                    return Ok((
                        Warned {
                            text: warnings,
                            findings,
                        },
                        api_nodes,
                    ));
                }
                Some(false) => {
                    let _ = cx.audit.write(Record::new(short, "elicitation_declined")).await;
                    return Err(ToolError::rejected(format!(
                        "Workflow blocked by user — dangerous nodes: {list}"
                    )));
                }
                None => {}
            }
        }
        let hint = if report.findings.iter().any(|f| f.rule == RuleId::ApiNode) {
            " (paid API nodes need the user's confirmation, or security.allow_api_nodes: true in the server's config)"
        } else {
            ""
        };
        return Err(ToolError::rejected(format!(
            "Workflow blocked — dangerous nodes: {list}{hint}"
        )));
    }
    Ok((
        Warned {
            text: warnings,
            findings,
        },
        api_nodes,
    ))
}

/// The peer's model checker: referenced models the server does not list.
pub(super) async fn missing_models(wf: &Workflow, cx: &ToolContext) -> Vec<String> {
    let mut listings = BTreeMap::new();
    for folder in comfy_guard::models::folders_needed(wf) {
        if let Ok(segment) = comfy_client::name::Segment::new(&folder)
            && let Ok(Some(list)) = cx.client().models(&segment).await
        {
            listings.insert(folder, list);
        }
    }
    comfy_guard::missing_models(wf, &listings)
        .into_iter()
        .map(|m| m.message)
        .collect()
}
