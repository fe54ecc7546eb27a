//! The workflow tools (create, modify, validate, analyse, summarise) and
//! the static model presets and prompting guides, on `comfy-workflow` and
//! `comfy-guard`. Every workflow argument may be API or editor format
//! (editor workflows are converted with the server's catalog), is bounded
//! (10 MiB, the parser's limits), and everything stays linear in the
//! number of nodes.

use std::collections::BTreeMap;

use comfy_workflow::validate::ProblemKind;
use comfy_workflow::{Edit, Limits, ObjectInfo, Workflow, editor, preset, template};

use serde_json::{Map, Value, json};

use super::impls::{Output, ToolContext, ToolError};

type Args = Map<String, Value>;

/// The peer's cap on every JSON-string argument.
const MAX_JSON: usize = 10 << 20;

fn text<'a>(args: &'a Args, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// A JSON-string argument, parsed strictly and bounded.
fn json_arg(args: &Args, name: &str, what: &str) -> Result<Value, ToolError> {
    let raw = text(args, name);
    if raw.len() > MAX_JSON {
        return Err(ToolError::rejected(format!(
            "{what} JSON exceeds maximum size ({MAX_JSON} bytes)"
        )));
    }
    comfy_workflow::parse_json(raw.as_bytes(), &Limits::DEFAULT.with_max_bytes(MAX_JSON))
        .map_err(|e| ToolError::rejected(format!("Invalid JSON {}: {e}", what.to_lowercase())))
}

/// The `workflow` argument as an API-format workflow; editor workflows are
/// converted with the catalog (fetched only for them).
async fn workflow_arg(args: &Args, cx: &ToolContext) -> Result<Workflow, ToolError> {
    // The common case, an API-format workflow, is read straight from the
    // argument's bytes (no `Value` in between); anything that is not one
    // takes the general path below, which gives the same errors as before.
    let raw = text(args, "workflow");
    if raw.len() <= MAX_JSON
        && let Ok(wf) = Workflow::from_json(raw.as_bytes(), &Limits::DEFAULT.with_max_bytes(MAX_JSON))
    {
        return Ok(wf);
    }
    let doc = json_arg(args, "workflow", "Workflow")?;
    if !doc.is_object() {
        return Err(ToolError::rejected("Workflow must be a JSON object keyed by node IDs"));
    }
    if editor::is_editor_format(&doc) {
        let info = cx.client().object_info().await?;
        return editor::to_api(&doc, &info, &Limits::DEFAULT.with_max_bytes(MAX_JSON))
            .map_err(|e| ToolError::rejected(format!("the editor-format workflow cannot be converted: {e}")));
    }
    Workflow::from_value(doc, &Limits::DEFAULT.with_max_bytes(MAX_JSON))
        .map_err(|e| ToolError::rejected(format!("Invalid workflow: {e}")))
}

/// The catalog, or `None` when ComfyUI cannot be reached (analysis and
/// summaries then work without display names).
async fn catalog(cx: &ToolContext) -> Option<std::sync::Arc<ObjectInfo>> {
    cx.client().object_info().await.ok()
}

/// Built-in template `name` with `params`; an unknown name is refused
/// with the list of those there are.
pub(super) fn build_template(name: &str, params: &Args) -> Result<template::Built, ToolError> {
    template::build(name, params).map_err(|e| match e {
        template::TemplateError::Unknown { .. } => {
            let mut names: Vec<&str> = template::TEMPLATES.iter().map(|t| t.name).collect();
            names.sort_unstable();
            ToolError::rejected(format!("Unknown template '{name}'. Available: {}", names.join(", ")))
        }
        other => ToolError::rejected(other.to_string()),
    })
}

/// Runs a workflow tool.
///
/// # Errors
/// [`ToolError`] with what was wrong.
pub(super) async fn run(name: &str, args: &Args, cx: &ToolContext) -> Result<Output, ToolError> {
    match name {
        "comfyui_create_workflow" => {
            let params = if text(args, "params").trim().is_empty() {
                Map::new()
            } else {
                match json_arg(args, "params", "Params")? {
                    Value::Object(m) => m,
                    _ => {
                        return Err(ToolError::rejected(
                            r#"params must be a JSON object (e.g. {"key": "value"})"#,
                        ));
                    }
                }
            };
            let name = text(args, "template");
            let built = build_template(name, &params)?;
            Ok(Output::Json(built.workflow.to_value()))
        }
        "comfyui_modify_workflow" => {
            let mut wf = workflow_arg(args, cx).await?;
            let ops = json_arg(args, "operations", "Operations")?;
            let Value::Array(items) = ops else {
                return Err(ToolError::rejected(
                    "Operations must be a JSON array of operation objects",
                ));
            };
            let mut edits = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                if !item.is_object() {
                    return Err(ToolError::rejected(
                        "Operations must be a JSON array of operation objects",
                    ));
                }
                let op = item.get("op").and_then(Value::as_str).unwrap_or_default().to_owned();
                let edit: Edit = serde_json::from_value(item).map_err(|e| {
                    ToolError::rejected(if e.to_string().contains("unknown variant") {
                        format!("Operation {i}: unknown op '{op}'")
                    } else {
                        format!("Operation {i} ({op}): {e}")
                    })
                })?;
                edits.push(edit);
            }
            wf.apply(&edits).map_err(|e| ToolError::rejected(e.to_string()))?;
            Ok(Output::Json(wf.to_value()))
        }
        "comfyui_validate_workflow" => validate(args, cx).await,
        "comfyui_dry_run" => dry_run(args, cx).await,
        "comfyui_analyze_workflow" => {
            let wf = workflow_arg(args, cx).await?;
            let info = catalog(cx).await;
            let mut v = analysis_json(&wf, info.as_deref());
            if let (Some(info), Some(m)) = (&info, v.as_object_mut()) {
                add_api_nodes(m, &comfy_guard::inspect::api_nodes::uses(&wf, info));
            }
            Ok(Output::Json(v))
        }
        "comfyui_summarize_workflow" => {
            let wf = workflow_arg(args, cx).await?;
            let info = catalog(cx).await;
            let analysis = wf.analyze(info.as_deref());
            Ok(Output::Text(if text(args, "output_format") == "mermaid" {
                wf.to_mermaid(&analysis, info.as_deref())
            } else {
                analysis.to_text()
            }))
        }
        "comfyui_get_model_presets" => {
            let family_arg = args
                .get("model_family")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            let name_arg = args.get("model_name").and_then(Value::as_str).filter(|s| !s.is_empty());
            let family = match (family_arg, name_arg) {
                (Some(f), _) => preset::family(f).ok_or_else(|| unknown_family(f))?,
                (None, Some(n)) => preset::infer_family(n)
                    .ok_or_else(|| ToolError::rejected(format!("Could not infer model family from: {n}")))?,
                (None, None) => return Err(ToolError::rejected("Provide either model_name or model_family")),
            };
            let p = preset::preset(family).ok_or_else(|| unknown_family(family))?;
            Ok(Output::Json(json!({
                "family": p.family,
                "recommended": {
                    "sampler": p.sampler, "scheduler": p.scheduler, "steps": p.steps, "cfg": p.cfg,
                    "resolution": format!("{}x{}", p.width, p.height), "clip_skip": p.clip_skip, "notes": p.notes,
                },
            })))
        }
        "comfyui_get_prompting_guide" => {
            let f = text(args, "model_family");
            let g = preset::guide(f).ok_or_else(|| unknown_family(f))?;
            Ok(Output::Json(json!({
                "family": g.family,
                "guide": {
                    "prompt_structure": g.prompt_structure, "weight_syntax": g.weight_syntax,
                    "quality_tags": g.quality_tags, "negative_prompt_tips": g.negative_prompt_tips,
                },
            })))
        }
        other => Err(ToolError::rejected(format!("{other} is not a workflow tool"))),
    }
}

fn unknown_family(f: &str) -> ToolError {
    let mut families: Vec<&str> = preset::PRESETS.iter().map(|p| p.family).collect();
    families.sort_unstable();
    ToolError::rejected(format!(
        "Unknown model family: {f}. Supported families: {}",
        families.join(", ")
    ))
}

/// The peer's analysis shape (`node_count`, `class_types`, `flow` with
/// each node's inputs, `models` as `{name, type}`, `parameters`,
/// `pipeline`, `prompt_nodes`, `negative_nodes`), plus ours (`features`,
/// `output_nodes`, `has_cycle`).
fn analysis_json(wf: &Workflow, info: Option<&ObjectInfo>) -> Value {
    let a = wf.analyze(info);
    let flow: Vec<Value> = a
        .flow
        .iter()
        .map(|step| {
            let inputs: Map<String, Value> = wf
                .node(step.node_id.as_str())
                .map(|n| n.inputs.iter().map(|(k, i)| (k.to_string(), i.to_json())).collect())
                .unwrap_or_default();
            json!({
                "node_id": step.node_id, "class_type": step.class_type,
                "display_name": step.display_name, "inputs": inputs,
            })
        })
        .collect();
    let models: Vec<Value> = a
        .models
        .iter()
        .map(|m| json!({"name": m.name, "type": m.folder}))
        .collect();
    let parameters: Map<String, Value> = a
        .parameters
        .pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect();
    json!({
        "node_count": a.node_count,
        "class_types": a.class_types,
        "flow": flow,
        "models": models,
        "parameters": parameters,
        "pipeline": a.pipeline,
        "prompt_nodes": a.prompt_nodes,
        "negative_nodes": a.negative_nodes,
        "features": a.features,
        "output_nodes": a.output_nodes,
        "has_cycle": a.has_cycle,
    })
}

/// `{valid, errors, warnings, node_count, pipeline}`: structure and the
/// server's catalog (errors), missing models and security findings
/// (warnings), plus `problems` with each error's structured form.
async fn validate(args: &Args, cx: &ToolContext) -> Result<Output, ToolError> {
    let mut wf = workflow_arg(args, cx).await?;
    // Judged as it would be sent (see `resolve`).
    let _ = resolve(&mut wf, cx).await;
    Ok(Output::Json(Value::Object(check(&wf, cx).await)))
}

/// Turns a workflow into what `comfyui_run_workflow` submits and ComfyUI
/// runs: the web front end's `%date:...%` and `%Title.input%` tokens
/// expanded, then (ComfyUI 0.14 and later) nodes of classes that are not
/// installed replaced as `/node_replacements` says, which `POST /prompt`
/// does first. The inspector judges this graph, in validation, the dry run
/// and the run path alike, so a payload that only appears after either step
/// is seen.
pub(super) async fn resolve(
    wf: &mut Workflow,
    cx: &ToolContext,
) -> (Vec<comfy_workflow::TokenChange>, Vec<comfy_workflow::Replaced>) {
    let changes = wf.expand_frontend_tokens(super::generate::now_utc());
    let mut replaced = Vec::new();
    if let Ok(Some(table)) = cx.client().node_replacements().await
        && let Ok(table) = comfy_workflow::Replacements::from_value(table)
        && !table.is_empty()
        && let Ok(info) = cx.client().object_info().await
    {
        replaced = wf.apply_replacements(&table, &|class| info.contains(class));
    }
    (changes, replaced)
}

/// The checks `comfyui_validate_workflow` reports, on a parsed workflow.
async fn check(wf: &Workflow, cx: &ToolContext) -> Map<String, Value> {
    let mut warnings: Vec<String> = Vec::new();
    let info = catalog(cx).await;
    let (problems, errors): (Vec<Value>, Vec<String>) = if let Some(info) = &info {
        let found = wf.validate(info);
        let errors = found.iter().map(peer_wording).collect();
        (
            found
                .iter()
                .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
                .collect(),
            errors,
        )
    } else {
        warnings.push("ComfyUI server unreachable — server validation skipped".to_owned());
        // Structure only: links need no catalog.
        let mut problems = Vec::new();
        let mut errors = Vec::new();
        for node in wf.nodes() {
            for (input, link) in node.links() {
                if !wf.contains(link.node.as_str()) {
                    errors.push(format!(
                        "Node '{}' input '{input}': references non-existent node '{}'",
                        node.id, link.node
                    ));
                    problems.push(json!({"node": node.id, "class_type": node.class_type, "input": input,
                                         "problem": "link_to_missing_node", "target": link.node}));
                }
            }
        }
        (problems, errors)
    };
    if info.is_some() {
        let mut listings = BTreeMap::new();
        for folder in comfy_guard::models::folders_needed(wf) {
            if let Ok(segment) = comfy_client::name::Segment::new(&folder)
                && let Ok(Some(list)) = cx.client().models(&segment).await
                && !list.is_empty()
            {
                listings.insert(folder, list);
            }
        }
        for m in comfy_guard::missing_models(wf, &listings) {
            warnings.push(format!(
                "Node '{}': model '{}' not found in '{}'",
                m.node, m.name, m.folder
            ));
        }
    }
    // With the server's catalog (cached), so provenance, unknown classes
    // and typed inputs are judged.
    let mut findings = Vec::new();
    let mut api_nodes = Vec::new();
    match comfy_guard::inspect(wf, &cx.policy, info.as_deref()) {
        Ok(report) => {
            warnings.extend(report.warnings());
            findings = report.findings;
            api_nodes = report.api_nodes;
        }
        Err(e) => warnings.push(format!("Security: {e}")),
    }
    // Job cost, as the run path judges it (in the configured mode), each
    // with its rule id (`limits.*`).
    let mode = cx.policy.mode();
    for o in comfy_guard::check_job_in(wf, &cx.config.limits, mode) {
        findings.push(o.finding(mode));
        warnings.push(o.message);
    }
    let (pipeline, _) = wf.pipeline();
    let v = json!({
        "valid": errors.is_empty(),
        "errors": errors,
        "warnings": warnings,
        "node_count": wf.len(),
        "pipeline": pipeline,
        "problems": problems,
    });
    let mut v = v;
    if !findings.is_empty()
        && let Some(m) = v.as_object_mut()
    {
        // The security warnings again, each with its rule id (ours; the
        // peer's `warnings` strings stay as they were).
        m.insert(
            "findings".to_owned(),
            serde_json::to_value(&findings).unwrap_or_default(),
        );
    }
    if let Some(m) = v.as_object_mut() {
        add_api_nodes(m, &api_nodes);
    }
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `api_nodes` (each paid API node: node, class, service) and `spending`
/// (one sentence), when the workflow has any; ours, additive.
pub(super) fn add_api_nodes(m: &mut Map<String, Value>, uses: &[comfy_guard::inspect::api_nodes::ApiNodeUse]) {
    if let Some(note) = comfy_guard::inspect::api_nodes::spending_note(uses) {
        m.insert("api_nodes".to_owned(), serde_json::to_value(uses).unwrap_or_default());
        m.insert("spending".to_owned(), Value::from(note));
    }
}

/// `comfyui_dry_run`: what `comfyui_run_workflow` would submit, checked,
/// with what changed on the way; nothing is queued.
async fn dry_run(args: &Args, cx: &ToolContext) -> Result<Output, ToolError> {
    let doc = json_arg(args, "workflow", "Workflow")?;
    let from_editor = doc.is_object() && editor::is_editor_format(&doc);
    let mut resolved = workflow_arg(args, cx).await?;
    let (changes, replaced) = resolve(&mut resolved, cx).await;
    let mut out = check(&resolved, cx).await;
    out.insert("queued".to_owned(), Value::Bool(false));
    out.insert("converted_from_editor".to_owned(), Value::Bool(from_editor));
    out.insert("changes".to_owned(), serde_json::to_value(&changes).unwrap_or_default());
    out.insert(
        "replacements".to_owned(),
        serde_json::to_value(&replaced).unwrap_or_default(),
    );
    out.insert("workflow".to_owned(), resolved.to_value());
    Ok(Output::Json(Value::Object(out)))
}

/// The peer's wording where it has one, ours otherwise.
fn peer_wording(p: &comfy_workflow::Problem) -> String {
    let node = p.node.as_ref().map(ToString::to_string).unwrap_or_default();
    match &p.kind {
        ProblemKind::UnknownClass => format!(
            "Node '{node}': class_type '{}' not installed on server",
            p.class_type.as_deref().unwrap_or_default()
        ),
        ProblemKind::LinkToMissingNode { target } => format!(
            "Node '{node}' input '{}': references non-existent node '{target}'",
            p.input.as_deref().unwrap_or_default()
        ),
        ProblemKind::Cycle { nodes } => {
            let ids: Vec<&str> = nodes.iter().map(comfy_workflow::NodeId::as_str).collect();
            format!("Workflow contains a cycle: {}", ids.join(" -> "))
        }
        _ => match &p.input {
            Some(i) => format!("Node '{node}' input '{i}': {}", problem_text(p)),
            None if !node.is_empty() => format!("Node '{node}': {}", problem_text(p)),
            None => problem_text(p),
        },
    }
}

/// The problem's own sentence without its `node ... input ...:` prefix.
fn problem_text(p: &comfy_workflow::Problem) -> String {
    let full = p.to_string();
    match full.split_once("`: ") {
        Some((_, rest)) if full.starts_with("node `") => rest.to_owned(),
        _ => full,
    }
}
