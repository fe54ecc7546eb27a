//! The generation tools: build (from a template or the caller's
//! workflow), inspect, check models, submit, and optionally wait with
//! progress notifications. This file routes a call and assembles the
//! submission; each step has its own file:
//! - [`build`]: the workflow from a template or the caller's argument;
//! - [`inspect`]: the inspection gate (`comfy-guard` and the job limits;
//!   warnings in audit mode, refusal or the user's confirmation in
//!   enforce mode);
//! - [`submit`]: `POST /prompt` (never retried) and ComfyUI's validation
//!   verdict;
//! - [`wait`]: following the job to its end, with progress;
//! - [`watchdog`]: the wedge watchdog for jobs nobody waits on;
//! - [`cancel`]: interrupting or dequeuing the job of a call that was
//!   cancelled or ran out of time, so ComfyUI is never left busy for
//!   nobody;
//! - [`errors`]: a failed run's error, without host paths or tracebacks;
//! - [`reporter`]: progress notifications and the user's confirmation.

use std::collections::BTreeMap;

use comfy_client::PromptOptions;
use comfy_guard::inspect::python_list;
use comfy_workflow::{Limits, Workflow, template};
use serde_json::{Map, Value};

use super::impls::{Output, ToolContext, ToolError};

mod build;
mod cancel;
mod errors;
mod inspect;
mod reporter;
mod submit;
mod wait;
mod watchdog;

pub(super) use build::now_utc;
use build::{check_checkpoint, parse_workflow, template_params, text};
pub use cancel::PendingCancels;
use inspect::{inspect, missing_models};
pub use reporter::Reporter;
pub(super) use reporter::confirm;
use submit::submit;

type Args = Map<String, Value>;

/// Runs a generation tool.
///
/// # Errors
/// [`ToolError`] with what was wrong.
pub(super) async fn run(name: &str, args: &Args, cx: &ToolContext, reporter: &Reporter) -> Result<Output, ToolError> {
    if cx.pool.is_multi() && crate::backends::current().is_none() {
        // Several backends and none named: the route, from the models the
        // workflow references (a workflow that does not parse is refused
        // below, as with one backend).
        let (needs, parsed) = models_needed(name, args, cx).await.unwrap_or_default();
        let candidates = cx.pool.candidates(&needs).await;
        return crate::backends::scope_route(candidates, Box::pin(run_here(name, args, cx, reporter, parsed))).await;
    }
    run_here(name, args, cx, reporter, None).await
}

/// The model files a submission references, by folder, and the caller's
/// workflow when it gave one (parsed once, for routing and then running).
async fn models_needed(
    name: &str,
    args: &Args,
    cx: &ToolContext,
) -> Result<(Vec<(String, Vec<String>)>, Option<Workflow>), ToolError> {
    let (wf, given) = if matches!(name, "comfyui_run_workflow" | "comfyui_run_workflow_stream") {
        // An API-format workflow is the same wherever it runs, so it is
        // kept; an editor-format one is converted here with the primary's
        // catalog only to route, and again on the chosen backend.
        match Workflow::from_json(text(args, "workflow").as_bytes(), &Limits::DEFAULT) {
            Ok(wf) => (wf, true),
            Err(_) => (parse_workflow(text(args, "workflow"), cx).await?, false),
        }
    } else {
        let (template, params) = template_params(name, args)?;
        let built = template::build(template, &params).map_err(|e| ToolError::rejected(e.to_string()))?;
        (built.workflow, false)
    };
    let mut needs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in comfy_guard::models::referenced_models(&wf) {
        needs.entry(m.folder).or_default().push(m.name);
    }
    Ok((needs.into_iter().collect(), given.then_some(wf)))
}

/// Runs the submission on the backend in scope; `parsed` is the caller's
/// workflow when routing has already read it.
async fn run_here(
    name: &str,
    args: &Args,
    cx: &ToolContext,
    reporter: &Reporter,
    parsed: Option<Workflow>,
) -> Result<Output, ToolError> {
    let (wf, wait, stream, targets) = if matches!(name, "comfyui_run_workflow" | "comfyui_run_workflow_stream") {
        let mut wf = match parsed {
            Some(wf) => wf,
            None => parse_workflow(text(args, "workflow"), cx).await?,
        };
        // As the web front end does when it queues, then ComfyUI's node
        // replacements (comfyui_dry_run shows both): what is inspected is
        // what is sent.
        let _ = super::workflow::resolve(&mut wf, cx).await;
        let targets: Option<Vec<String>> = args
            .get("partial_execution_targets")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect());
        if let Some(t) = &targets {
            let unknown: Vec<String> = t.iter().filter(|id| !wf.contains(id)).cloned().collect();
            if !unknown.is_empty() {
                return Err(ToolError::rejected(format!(
                    "partial_execution_targets reference unknown node IDs: {}",
                    python_list(&unknown)
                )));
            }
        }
        let stream = name == "comfyui_run_workflow_stream";
        let wait = stream || args.get("wait").and_then(Value::as_bool).unwrap_or(false);
        (wf, wait, stream, targets)
    } else {
        let (template, params) = template_params(name, args)?;
        if name == "comfyui_generate_image" {
            check_checkpoint(text(args, "model"), cx).await?;
        }
        let built = template::build(template, &params).map_err(|e| ToolError::rejected(e.to_string()))?;
        let wait = args.get("wait").and_then(Value::as_bool).unwrap_or(false);
        (built.workflow, wait, false, None)
    };
    let short = name.trim_start_matches("comfyui_");
    let (mut warnings, api_nodes) = inspect(short, &wf, cx, reporter).await?;
    if matches!(
        name,
        "comfyui_generate_image" | "comfyui_run_workflow" | "comfyui_run_workflow_stream"
    ) {
        warnings.text.extend(missing_models(&wf, cx).await);
    }
    let mut options = PromptOptions {
        partial_execution_targets: targets,
        ..PromptOptions::default()
    };
    // The Comfy account key, only for a workflow with paid API nodes (the
    // only ones that read it): the call's, else the config's. Stack-level
    // scrubbing keeps it out of results and errors (`crate::secrets`).
    let key = args
        .get("api_key_comfy_org")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .or(cx.config.comfyui.api_key_comfy_org.as_deref().filter(|k| !k.is_empty()));
    if let Some(key) = key
        && !api_nodes.is_empty()
    {
        let mut extra = Map::new();
        extra.insert("api_key_comfy_org".to_owned(), Value::from(key));
        options.extra_data = Some(extra);
    }
    let out = submit(short, &wf, wait, stream, options, warnings, cx, reporter).await;
    // Which nodes spend money, and with whom (ours, additive).
    match out {
        Ok(Output::Json(Value::Object(mut v))) => {
            super::workflow::add_api_nodes(&mut v, &api_nodes);
            Ok(Output::Json(Value::Object(v)))
        }
        other => other,
    }
}
