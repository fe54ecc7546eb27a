//! Submitting a workflow that passed the gate: `POST /prompt` once (never
//! retried; with several backends, one that certainly never received it
//! hands it to the next on the route), ComfyUI's validation refusal turned
//! into a verdict with hints, then the job handed to [`super::wait`].

use std::fmt::Write as _;

use comfy_client::PromptOptions;
use comfy_workflow::Workflow;
use serde_json::{Map, Value, json};

use super::ToolContext;
use super::inspect::Warned;
use super::reporter::Reporter;
use super::wait::follow;
use crate::tools::impls::{Output, ToolError};

fn node_errors_text(error: &Value, node_errors: &Value) -> String {
    let mut out = format!(
        "ComfyUI refused the workflow: {}",
        error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("validation failed")
    );
    if let Some(details) = error.get("details").and_then(Value::as_str).filter(|d| !d.is_empty()) {
        let _ = write!(out, " ({details})");
    }
    if let Some(nodes) = node_errors.as_object() {
        for (id, ne) in nodes {
            let class = ne.get("class_type").and_then(Value::as_str).unwrap_or("?");
            for e in ne.get("errors").and_then(Value::as_array).into_iter().flatten() {
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("error");
                let details = e.get("details").and_then(Value::as_str).unwrap_or("");
                let _ = write!(out, "\n- node {id} ({class}): {msg}");
                if !details.is_empty() {
                    let _ = write!(out, ": {details}");
                }
            }
        }
    }
    out.push_str("\nFix the named inputs (comfyui_get_node_info shows what each node accepts) and submit again.");
    out
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are the call's parts"
)]
pub(super) async fn submit(
    short: &str,
    wf: &Workflow,
    wait: bool,
    stream: bool,
    options: PromptOptions,
    warnings: Warned,
    cx: &ToolContext,
    reporter: &Reporter,
) -> Result<Output, ToolError> {
    // With several backends, the route the call was given (best first):
    // a submission that certainly never reached one goes to the next.
    let mut route = crate::backends::route();
    let mut backend = cx.backend();
    let submitted = loop {
        match backend.client.submit(wf, options.clone()).await {
            Err(e) if e.never_sent() && !route.is_empty() => {
                backend.failed(&e);
                tracing::warn!("backend {} is unreachable ({e}); trying the next", backend.name);
                backend = route.remove(0);
            }
            other => break other,
        }
    };
    if let Err(e) = &submitted
        && e.never_sent()
    {
        backend.failed(e);
    }
    let job = match submitted {
        Ok(job) => job,
        Err(comfy_client::Error::ValidationFailed { error, node_errors }) => {
            // The verdict, with hints from the installed classes when
            // ComfyUI's catalog can be read.
            let info = cx.client().object_info().await.ok();
            let classes: Vec<&str> = info.as_deref().map(|i| i.names()).unwrap_or_default();
            let mut verdict = crate::tools::verdict::validation(&error, &node_errors, &classes);
            // With ComfyUI-Manager, the pack a missing class comes from.
            let unknown = verdict["problems"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["error_type"] == "unknown_class"));
            if unknown
                && crate::tools::nodes::available(cx).await.unwrap_or(false)
                && let Ok(mappings) = cx.client().manager_mappings().await
            {
                crate::tools::verdict::add_pack_hints(&mut verdict, &mappings);
            }
            let mut text = node_errors_text(&error, &node_errors);
            let hints: Vec<String> = verdict["problems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let hint = p.get("hint")?.get("text")?.as_str()?;
                    Some(format!("- node {}: {hint}", p["node_id"].as_str().unwrap_or("?")))
                })
                .collect();
            if !hints.is_empty() {
                let _ = write!(text, "\nHints:\n{}", hints.join("\n"));
            }
            // The inspector's warnings come back with the refusal too.
            if !warnings.text.is_empty() {
                let list: Vec<String> = warnings.text.iter().map(|w| format!("- {w}")).collect();
                let _ = write!(text, "\nWarnings:\n{}", list.join("\n"));
            }
            let mut e = ToolError::failed(text);
            let mut details = Map::new();
            details.insert("error".to_owned(), *error);
            details.insert("node_errors".to_owned(), *node_errors);
            details.insert("verdict".to_owned(), verdict);
            warnings.add_to(&mut details);
            e.details = Some(Value::Object(details));
            return Err(e);
        }
        Err(other) => {
            // Whatever stopped the submission, what the inspector found
            // comes back with it.
            let mut e = ToolError::from(other);
            if !warnings.text.is_empty() || !warnings.findings.is_empty() {
                if !warnings.text.is_empty() {
                    let list: Vec<String> = warnings.text.iter().map(|w| format!("- {w}")).collect();
                    let _ = write!(e.message, "\nWarnings:\n{}", list.join("\n"));
                }
                let mut details = e.details.take().unwrap_or_else(|| json!({}));
                if let Some(map) = details.as_object_mut() {
                    warnings.add_to(map);
                }
                e.details = Some(details);
            }
            return Err(e);
        }
    };
    backend.sent();
    cx.pool.record(job.prompt_id(), &backend).await;
    let on = cx.pool.is_multi().then(|| backend.name.clone());
    let out = crate::backends::scope(
        backend,
        follow(
            short,
            job,
            wait,
            stream,
            warnings,
            cx,
            reporter,
            crate::tools::progress::RunProgress::new(wf),
        ),
    )
    .await;
    // Which backend took it (with several: additive, so one-backend
    // results stay the peer's).
    match (on, out) {
        (Some(name), Ok(Output::Json(Value::Object(mut v)))) => {
            v.insert("backend".to_owned(), Value::from(name));
            Ok(Output::Json(Value::Object(v)))
        }
        (_, out) => out,
    }
}
