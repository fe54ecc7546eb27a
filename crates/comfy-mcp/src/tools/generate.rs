//! The generation tools: build (from a template or the caller's
//! workflow), inspect, check models, submit, and optionally wait with
//! progress notifications.
//!
//! Every workflow is inspected by `comfy-guard` before it is submitted.
//! In audit mode the findings come back as `warnings` (the peer's
//! wording) and again as `findings`, each with its rule id (ours; job
//! limits included, as `limits.*`); in enforce mode a workflow with classes outside the allowlist
//! is refused, and one with other findings runs only if the user confirms
//! (elicitation, or on MCP 2026-07-28 an input-required result: see
//! [`crate::consent`]; refused when the client cannot ask).
//! `POST /prompt` is never retried. A waiting call that the client cancels
//! (or that the deadline ends) interrupts or dequeues its job, so ComfyUI
//! is never left busy for nobody.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use comfy_audit::Record;
use comfy_client::{JobStatus, PromptOptions};
use comfy_guard::inspect::api_nodes::ApiNodeUse;
use comfy_guard::inspect::{Inspection, Mode, RuleId, python_list};
use comfy_guard::path::{Extensions, SafeFileName};
use comfy_workflow::{Limits, Workflow, editor, template};
use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::Peer;
use serde_json::{Map, Value, json};
use tracing::Instrument;

use super::impls::{Output, ToolContext, ToolError};
use crate::consent::{Binding, Channel, Decision};

/// The calling client: where progress goes (its progress token, when it
/// sent one), and how to ask the user for confirmation (and what the
/// answer is bound to).
#[derive(Default)]
pub struct Reporter {
    pub(crate) target: Option<(Peer<RoleServer>, ProgressToken)>,
    pub(crate) channel: Channel,
    pub(crate) binding: Binding,
    pub(crate) local: Option<crate::stack::ProgressFn>,
}

impl Reporter {
    /// Whether the user may be asked (or has answered) on this call.
    pub(super) fn can_ask(&self) -> bool {
        match &self.channel {
            Channel::Elicit(_) => true,
            Channel::Stateless { can_elicit, state, .. } => *can_elicit || state.is_some(),
            Channel::None => false,
        }
    }
}

/// Asks the user `message` (elicitation, or an input-required result on
/// MCP 2026-07-28): `Some(true)` to go on, `Some(false)` when declined or
/// dismissed, `None` when the client cannot be asked.
///
/// # Errors
/// The input-required result to send (the call ends there, and the client
/// calls again with the answer), or a refusal of a request state or answer
/// that does not hold.
pub(super) async fn confirm(cx: &ToolContext, reporter: &Reporter, message: String) -> Result<Option<bool>, ToolError> {
    match cx.consent.ask(&reporter.channel, &reporter.binding, &message).await {
        Decision::Yes => Ok(Some(true)),
        Decision::No => Ok(Some(false)),
        Decision::CannotAsk => Ok(None),
        Decision::Ask(needed) => Err(ToolError::input_needed(needed)),
        Decision::Invalid(why) => Err(ToolError::rejected(format!("Not run: {why}."))),
    }
}

impl Reporter {
    /// Sends one progress notification (and to the local callback).
    pub(crate) async fn report(&self, progress: f64, total: Option<f64>, message: String) {
        if let Some(local) = &self.local {
            local(progress, total, &message);
        }
        if let Some((peer, token)) = &self.target {
            let mut p = ProgressNotificationParam::new(token.clone(), progress).with_message(message);
            if let Some(t) = total {
                p = p.with_total(t);
            }
            let _ = peer.notify_progress(p).await;
        }
    }
}

type Args = Map<String, Value>;

/// What a submission carries back: the peer's warning strings (inspector,
/// job limits, missing models) and the inspector's and job limits'
/// findings with their rule ids.
#[derive(Default)]
struct Warned {
    text: Vec<String>,
    findings: Vec<comfy_guard::Finding>,
}

impl Warned {
    /// Adds `warnings` and `findings` (when there are any) to `map`.
    fn add_to(&self, map: &mut Map<String, Value>) {
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

fn text<'a>(args: &'a Args, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// An image name in ComfyUI's input folder, through the path sanitizer.
fn image_name(args: &Args, name: &str) -> Result<String, ToolError> {
    SafeFileName::parse(text(args, name), &Extensions::images())
        .map(|n| n.as_str().to_owned())
        .map_err(|e| ToolError::rejected(format!("`{name}`: {e}")))
}

/// The template and parameters a generation tool stands for.
fn template_params(name: &str, args: &Args) -> Result<(&'static str, Args), ToolError> {
    let mut p = Args::new();
    let copy = |p: &mut Args, from: &str, to: &str| {
        if let Some(v) = args.get(from) {
            p.insert(to.to_owned(), v.clone());
        }
    };
    let template = match name {
        "comfyui_generate_image" => {
            for k in ["prompt", "negative_prompt", "width", "height", "steps", "cfg"] {
                copy(&mut p, k, k);
            }
            "txt2img"
        }
        "comfyui_transform_image" | "comfyui_inpaint_image" => {
            for k in ["prompt", "negative_prompt", "steps", "cfg"] {
                copy(&mut p, k, k);
            }
            copy(&mut p, "strength", "denoise");
            p.insert("image".to_owned(), Value::from(image_name(args, "image")?));
            if name == "comfyui_inpaint_image" {
                p.insert("mask".to_owned(), Value::from(image_name(args, "mask")?));
                "inpaint"
            } else {
                "img2img"
            }
        }
        "comfyui_upscale_image" => {
            p.insert("image".to_owned(), Value::from(image_name(args, "image")?));
            copy(&mut p, "upscale_model", "model_name");
            "upscale"
        }
        other => return Err(ToolError::rejected(format!("{other} is not a generation tool"))),
    };
    if name != "comfyui_upscale_image" {
        // The peer always used seed 0; a fresh seed per call unless given.
        let seed = args
            .get("seed")
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or_else(|| Value::from(fastrand::u32(..)));
        p.insert("seed".to_owned(), seed);
        let model = text(args, "model");
        if !model.is_empty() {
            p.insert("model".to_owned(), Value::from(model));
        }
    }
    Ok((template, p))
}

/// The current time in UTC, for the front end's `%date:...%` tokens.
pub(super) fn now_utc() -> comfy_workflow::DateParts {
    // `2026-11-25T19:45:00Z`: the fields at fixed places.
    let t = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let num = |r: std::ops::Range<usize>| t.get(r).and_then(|s| s.parse().ok()).unwrap_or(0);
    comfy_workflow::DateParts {
        year: num(0..4),
        month: num(5..7),
        day: num(8..10),
        hour: num(11..13),
        minute: num(14..16),
        second: num(17..19),
    }
}

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

/// The caller's workflow: API format, or editor format converted with the
/// server's catalog.
async fn parse_workflow(raw: &str, cx: &ToolContext) -> Result<Workflow, ToolError> {
    let limits = Limits::DEFAULT;
    // API format straight from the bytes; anything else (editor format, or
    // an error to report) takes the general path.
    if let Ok(wf) = Workflow::from_json(raw.as_bytes(), &limits) {
        return Ok(wf);
    }
    let doc = comfy_workflow::parse_json(raw.as_bytes(), &limits)
        .map_err(|e| ToolError::rejected(format!("`workflow` is not a valid workflow: {e}")))?;
    if editor::is_editor_format(&doc) {
        let info = cx.client().object_info().await?;
        return editor::to_api(&doc, &info, &limits)
            .map_err(|e| ToolError::rejected(format!("`workflow` (editor format) cannot be converted: {e}")));
    }
    Workflow::from_value(doc, &limits)
        .map_err(|e| ToolError::rejected(format!("`workflow` is not a valid workflow: {e}")))
}

async fn check_checkpoint(model: &str, cx: &ToolContext) -> Result<(), ToolError> {
    if model.is_empty() {
        return Ok(());
    }
    comfy_guard::path::check_node_path(model).map_err(|e| ToolError::rejected(format!("`model`: {e}")))?;
    let checkpoints = comfy_client::name::Segment::new("checkpoints")?;
    let available = cx.client().models(&checkpoints).await?.unwrap_or_default();
    if available.iter().any(|m| m == model) {
        return Ok(());
    }
    Err(ToolError::rejected(format!(
        "Model '{model}' not found in folder 'checkpoints' (available: {} models). Use comfyui_list_models or the comfyui://models/checkpoints resource to discover available models.",
        available.len()
    )))
}

/// Inspects `wf`: warnings in audit mode; in enforce mode a refusal for
/// classes outside the allowlist, and for other findings the user's
/// confirmation when the client can ask for it (a refusal otherwise).
async fn inspect(
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
async fn missing_models(wf: &Workflow, cx: &ToolContext) -> Vec<String> {
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

/// Interrupts or dequeues a job when dropped while armed (the caller was
/// cancelled or timed out mid-wait).
/// How long the WebSocket may stay quiet during a wait before ComfyUI is
/// asked directly whether the job ended.
const SILENCE: Duration = Duration::from_secs(1);

/// Cancels of abandoned jobs still on their way to ComfyUI, so that the
/// server can let them land before it exits (a client that goes away
/// closes stdin, and the process would otherwise end mid-request).
#[derive(Debug, Default)]
pub struct PendingCancels {
    count: AtomicUsize,
    done: tokio::sync::Notify,
}

impl PendingCancels {
    /// Runs `stop_job` for `prompt_id` in the background, counted.
    fn spawn(self: &Arc<Self>, rt: &tokio::runtime::Handle, client: comfy_client::Client, prompt_id: String) {
        self.count.fetch_add(1, Ordering::AcqRel);
        let me = Arc::clone(self);
        rt.spawn(
            async move {
                let _ = client.stop_job(&prompt_id).await;
                if me.count.fetch_sub(1, Ordering::AcqRel) == 1 {
                    me.done.notify_waiters();
                }
            }
            .in_current_span(),
        );
    }

    /// Waits until no cancel is on its way, or `limit` passes.
    pub async fn settle(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let notified = self.done.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.count.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }
}

struct JobGuard {
    client: comfy_client::Client,
    prompt_id: String,
    armed: bool,
    pending: Arc<PendingCancels>,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            self.pending
                .spawn(&rt, self.client.clone(), std::mem::take(&mut self.prompt_id));
        }
    }
}

/// Whether an event shows a job doing something (for the wedge watchdog).
fn is_activity(ev: &comfy_client::Event) -> bool {
    matches!(
        ev,
        comfy_client::Event::ExecutionStart { .. }
            | comfy_client::Event::Executing { .. }
            | comfy_client::Event::Progress { .. }
            | comfy_client::Event::Executed { .. }
            | comfy_client::Event::ExecutionCached { .. }
    )
}

/// Most jobs the background watchdog follows at once; more go unwatched.
const MAX_WATCHED: usize = 256;

static WATCHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts a watched job for as long as it lives.
struct WatchSlot;

impl WatchSlot {
    fn take() -> Option<Self> {
        use std::sync::atomic::Ordering;
        let mut n = WATCHED.load(Ordering::Relaxed);
        loop {
            if n >= MAX_WATCHED {
                return None;
            }
            match WATCHED.compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(Self),
                Err(now) => n = now,
            }
        }
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        WATCHED.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The wedge watchdog for a job submitted without `wait`: follows its
/// events in a background task until it ends, and interrupts it (with a
/// `stalled` audit record) when it has started and then reports nothing
/// for `stall`. Only jobs followed over the WebSocket are watched; at most
/// [`MAX_WATCHED`] at once.
fn watch_detached(
    mut job: comfy_client::Job,
    stall: Duration,
    client: comfy_client::Client,
    audit: Arc<comfy_audit::AuditLog>,
    short: String,
    mut nodes: super::progress::RunProgress,
) {
    let Some(slot) = WatchSlot::take() else {
        tracing::debug!(
            "watchdog: {MAX_WATCHED} jobs already watched; {} is not",
            job.prompt_id()
        );
        return;
    };
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        let _slot = slot;
        let prompt_id = job.prompt_id().to_owned();
        let started = Instant::now();
        let mut running = false;
        let mut last_activity = Instant::now();
        let mut events = job.events();
        // No polling while the job waits or runs with events flowing: only
        // when a started job has been quiet for `stall` is ComfyUI asked
        // whether it ended without telling the socket.
        loop {
            match tokio::time::timeout(Duration::from_secs(5).min(stall), events.next()).await {
                // The job ended (or is not followed over the socket).
                Ok(None) => {
                    super::progress::note(&prompt_id, None);
                    return;
                }
                Ok(Some(ev)) => {
                    if nodes.on_event(&ev).is_some() {
                        super::progress::note(&prompt_id, nodes.running());
                    }
                    if is_activity(&ev) {
                        running = true;
                        last_activity = Instant::now();
                    }
                }
                Err(_) if running && last_activity.elapsed() >= stall => match client.job_info(&prompt_id).await {
                    Ok(Some(j)) if j.get("status").and_then(Value::as_str) == Some("in_progress") => break,
                    // Ended, forgotten or unreachable: nothing to stop.
                    _ => return,
                },
                Err(_) => {}
            }
        }
        super::progress::note(&prompt_id, None);
        let _ = client.stop_job(&prompt_id).await;
        let _ = audit
            .write(
                Record::new(&short, "stalled")
                    .prompt_id(prompt_id.as_str())
                    .status("stalled")
                    .duration(started.elapsed())
                    .extra(json!({"stall_timeout_s": stall.as_secs(), "node": job.progress().node.as_deref(), "waited": false})),
            )
            .await;
    }.in_current_span());
}

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
async fn submit(
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
            let mut verdict = super::verdict::validation(&error, &node_errors, &classes);
            // With ComfyUI-Manager, the pack a missing class comes from.
            let unknown = verdict["problems"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["error_type"] == "unknown_class"));
            if unknown
                && super::nodes::available(cx).await.unwrap_or(false)
                && let Ok(mappings) = cx.client().manager_mappings().await
            {
                super::verdict::add_pack_hints(&mut verdict, &mappings);
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
            super::progress::RunProgress::new(wf),
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

/// Follows a queued job: records it, then returns at once or waits for
/// its end (progress, events, the wedge watchdog), on the backend that
/// took it.
#[allow(clippy::too_many_arguments, reason = "the call's parts, passed once from submit")]
async fn follow(
    short: &str,
    mut job: comfy_client::Job,
    wait: bool,
    stream: bool,
    warnings: Warned,
    cx: &ToolContext,
    reporter: &Reporter,
    mut nodes: super::progress::RunProgress,
) -> Result<Output, ToolError> {
    let prompt_id = job.prompt_id().to_owned();
    crate::jobs::submitted(&prompt_id, &cx.jobs).await;
    let _ = cx
        .audit
        .write(Record::new(short, "submitted").prompt_id(prompt_id.as_str()))
        .await;
    let with_warnings = |mut v: Map<String, Value>| {
        warnings.add_to(&mut v);
        Output::Json(Value::Object(v))
    };
    if !wait {
        // Nobody waits on this job: the watchdog follows it in the
        // background, so it too cannot wedge a shared GPU.
        let stall = Duration::from_secs(cx.config.server.stall_timeout);
        if !stall.is_zero() {
            watch_detached(job, stall, cx.client(), Arc::clone(&cx.audit), short.to_owned(), nodes);
        }
        let mut v = Map::new();
        v.insert("status".to_owned(), Value::from("submitted"));
        v.insert("prompt_id".to_owned(), Value::from(prompt_id));
        return Ok(with_warnings(v));
    }
    let mut guard = JobGuard {
        client: cx.client(),
        prompt_id: prompt_id.clone(),
        armed: cx.config.server.interrupt_abandoned_jobs,
        pending: Arc::clone(&cx.cancels),
    };
    // Learn how this server cancels while the job runs (once per server),
    // so an abandoned call's cancel is a single request.
    if guard.armed {
        let client = cx.client();
        tokio::spawn(
            async move {
                client.cancel_method().await;
            }
            .in_current_span(),
        );
    }
    // End before the tool deadline so the caller gets a result to act on.
    let limit = Duration::from_secs(cx.config.comfyui.timeout_read).min(Duration::from_secs(
        cx.config.server.tool_deadline.saturating_sub(5).max(1),
    ));
    let started = Instant::now();
    let mut events = Vec::new();
    let mut silent = false;
    let mut lost = false;
    let multi = cx.pool.is_multi();
    // The wedge watchdog (`server.stall_timeout`): a job that has started
    // and then reports nothing for that long is interrupted, so it cannot
    // hold a shared GPU.
    let stall = Duration::from_secs(cx.config.server.stall_timeout);
    let mut stalled = false;
    {
        let mut running = false;
        let mut last_activity = Instant::now();
        let mut stream_events = job.events();
        let client = cx.client();
        let read = async {
            loop {
                let ev = match tokio::time::timeout(SILENCE, stream_events.next()).await {
                    Ok(Some(ev)) => ev,
                    Ok(None) => break,
                    Err(_) => {
                        // The socket has said nothing for a while: it may be
                        // connected but dead. Ask ComfyUI whether the job ended.
                        match client.job_info(&prompt_id).await {
                            // ComfyUI no longer knows the job (it restarted).
                            Ok(None) => {
                                lost = true;
                                break;
                            }
                            Ok(Some(j))
                                if matches!(
                                    j.get("status").and_then(Value::as_str),
                                    Some("completed" | "failed" | "cancelled")
                                ) =>
                            {
                                silent = true;
                                break;
                            }
                            Ok(Some(j)) => {
                                if j.get("status").and_then(Value::as_str) == Some("in_progress") {
                                    running = true;
                                }
                                if running && !stall.is_zero() && last_activity.elapsed() >= stall {
                                    stalled = true;
                                    break;
                                }
                                continue;
                            }
                            // With several backends, one that cannot be
                            // reached has lost the job (never resubmitted).
                            Err(comfy_client::Error::Connect { .. }) if multi && !cx.backend().probe().await => {
                                lost = true;
                                break;
                            }
                            Err(_) => continue,
                        }
                    }
                };
                if is_activity(&ev) {
                    running = true;
                    last_activity = Instant::now();
                }
                // Every node that starts, and steps inside a node.
                if let Some((progress, total, message)) = nodes.on_event(&ev) {
                    super::progress::note(&prompt_id, nodes.running());
                    reporter.report(progress, Some(total), message).await;
                }
                if stream && let Some(e) = event_json(&ev) {
                    events.push(e);
                }
            }
        };
        let _ = tokio::time::timeout(limit, read).await;
        super::progress::note(&prompt_id, None);
    }
    if stalled {
        guard.armed = false;
        let _ = cx.client().stop_job(&prompt_id).await;
        let progress = job.progress();
        let message = format!(
            "The job reported no progress for {} s (server.stall_timeout) and was interrupted{}",
            stall.as_secs(),
            progress
                .node
                .as_ref()
                .map(|n| format!(" while running node {n}"))
                .unwrap_or_default()
        );
        let _ = cx
            .audit
            .write(
                Record::new(short, "stalled")
                    .prompt_id(prompt_id.as_str())
                    .status("stalled")
                    .duration(started.elapsed())
                    .extra(json!({"stall_timeout_s": stall.as_secs(), "node": progress.node.as_deref()})),
            )
            .await;
        let mut v = Map::new();
        v.insert("prompt_id".to_owned(), Value::from(prompt_id));
        v.insert("status".to_owned(), Value::from("stalled"));
        if let Some(n) = &progress.node {
            v.insert("current_node".to_owned(), Value::from(n.as_str()));
        }
        v.insert(
            "elapsed_seconds".to_owned(),
            json!((started.elapsed().as_secs_f64() * 100.0).round() / 100.0),
        );
        v.insert("message".to_owned(), Value::from(message));
        return Ok(with_warnings(v));
    }
    if silent {
        job.follow_by_polling();
    }
    // By default the job outlives the wait (the peer's answer: `timeout`
    // with the prompt id to poll or cancel); `server.interrupt_on_wait_timeout`
    // stops it instead, so a job that never ends cannot hold the queue.
    job.set_cancel_on_timeout(cx.config.server.interrupt_on_wait_timeout);
    // A lost job is not waited for (nor resubmitted: POST /prompt is never
    // retried).
    let outcome = if lost {
        None
    } else {
        match job.wait(limit.saturating_sub(started.elapsed())).await {
            Ok(o) => Some(o),
            // As above: the job's backend is gone, so is the job.
            Err(comfy_client::Error::Connect { .. }) if multi && !cx.backend().probe().await => None,
            Err(e) => return Err(e.into()),
        }
    };
    guard.armed = false;
    let status = match outcome.as_ref().map(|o| &o.status) {
        Some(JobStatus::Completed) => "completed",
        Some(JobStatus::Error) => "error",
        Some(JobStatus::Interrupted) => "interrupted",
        Some(JobStatus::Timeout) => "timeout",
        Some(JobStatus::Lost) | None => "lost",
        _ => "unknown",
    };
    let elapsed = outcome.as_ref().map_or_else(|| started.elapsed(), |o| o.elapsed);
    let _ = cx
        .audit
        .write(
            Record::new(short, "completed")
                .prompt_id(prompt_id.as_str())
                .status(status)
                .duration(elapsed),
        )
        .await;
    let progress = job.progress();
    let mut v = Map::new();
    v.insert("prompt_id".to_owned(), Value::from(prompt_id.as_str()));
    v.insert("status".to_owned(), Value::from(status));
    if let Some(n) = &progress.node {
        v.insert("current_node".to_owned(), Value::from(n.as_str()));
    }
    if let Some(s) = progress.step {
        v.insert("step".to_owned(), Value::from(s));
    }
    if let Some(t) = progress.total {
        v.insert("total_steps".to_owned(), Value::from(t));
    }
    v.insert(
        "elapsed_seconds".to_owned(),
        json!((elapsed.as_secs_f64() * 100.0).round() / 100.0),
    );
    if status == "lost" {
        v.insert(
            "message".to_owned(),
            Value::from("ComfyUI no longer knows this job (it restarted or dropped it); it was not resubmitted"),
        );
    }
    // Each output also names its resource (`comfyui://output/{id}/{i}`,
    // `i` counting every file of the job), where the full file can be read.
    // A video, animation or audio file is marked `media` (`video`,
    // `audio`); comfyui_get_image describes it.
    let outputs: Vec<Value> = outcome
        .iter()
        .flat_map(|o| o.files.iter().enumerate().map(move |(i, f)| (o, i, f)))
        .filter(|(_, _, f)| super::media::LISTED_KEYS.contains(&f.media.as_str()))
        .map(|(o, i, f)| {
            let mut v = json!({"node_id": f.node_id, "filename": f.file.filename, "subfolder": f.file.subfolder,
                   "type": f.file.kind, "uri": format!("comfyui://output/{prompt_id}/{i}")});
            if let Some(m) = super::media::kind_of(&f.media, &f.file.filename, o.outputs.get(&f.node_id)) {
                v["media"] = Value::from(m);
            }
            v
        })
        .collect();
    if !outputs.is_empty() {
        v.insert("outputs".to_owned(), Value::Array(outputs));
    }
    if let Some(err) = outcome.and_then(|o| o.error).filter(|_| status == "error") {
        v.insert("error".to_owned(), execution_error(&err));
    }
    if stream {
        v.insert("events".to_owned(), Value::Array(events));
    }
    Ok(with_warnings(v))
}

/// Longest exception message passed on.
const MAX_ERROR_MESSAGE: usize = 500;

/// ComfyUI's `execution_error` as the assistant needs it: which node, the
/// exception's type and message (trimmed, host paths cut to file names),
/// and nothing of the traceback, the inputs or the server's layout.
fn execution_error(err: &Value) -> Value {
    let field = |k: &str| err.get(k).cloned().unwrap_or(Value::Null);
    let message = err.get("exception_message").and_then(Value::as_str).map(|m| {
        let m = without_host_paths(m.trim());
        match m.char_indices().nth(MAX_ERROR_MESSAGE) {
            Some((i, _)) => format!("{}…", &m[..i]),
            None => m,
        }
    });
    let hint = super::verdict::execution_hint(
        err.get("exception_type").and_then(Value::as_str).unwrap_or_default(),
        err.get("exception_message").and_then(Value::as_str).unwrap_or_default(),
    );
    let mut v = json!({
        "node_id": field("node_id"),
        "node_type": field("node_type"),
        "exception_type": field("exception_type"),
        "exception_message": message,
    });
    if let Some(h) = hint {
        v["hint"] = Value::from(h);
    }
    v
}

/// `text` with every absolute path (`/home/me/ComfyUI/models/x.safetensors`,
/// `C:\\ComfyUI\\models\\x.ckpt`) cut to its file name (`…/x.safetensors`).
fn without_host_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '(' | ')' | ',' | '[' | ']'))
            .unwrap_or(rest.len());
        let (token, tail) = rest.split_at(split);
        let bytes = token.as_bytes();
        let unix = token.starts_with('/') && token[1..].contains('/');
        let windows =
            bytes.len() > 3 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && matches!(bytes[2], b'\\' | b'/');
        if unix || windows {
            let name = token.rsplit(['/', '\\']).next().unwrap_or_default();
            out.push('…');
            out.push(if unix { '/' } else { '\\' });
            out.push_str(name);
        } else {
            out.push_str(token);
        }
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// A socket event as `{type, data}` for the stream tool.
fn event_json(ev: &comfy_client::Event) -> Option<Value> {
    use comfy_client::Event as E;
    Some(match ev {
        E::Status { queue_remaining } => {
            json!({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": queue_remaining}}}})
        }
        E::ExecutionStart { prompt_id } => json!({"type": "execution_start", "data": {"prompt_id": prompt_id}}),
        E::ExecutionCached { prompt_id, nodes } => {
            json!({"type": "execution_cached", "data": {"prompt_id": prompt_id, "nodes": nodes}})
        }
        E::Executing { prompt_id, node } => {
            json!({"type": "executing", "data": {"prompt_id": prompt_id, "node": node}})
        }
        E::Progress {
            prompt_id,
            node,
            value,
            max,
        } => json!({"type": "progress", "data": {"prompt_id": prompt_id, "node": node, "value": value, "max": max}}),
        E::Executed {
            prompt_id,
            node,
            output,
        } => json!({"type": "executed", "data": {"prompt_id": prompt_id, "node": node, "output": output}}),
        E::ExecutionSuccess { prompt_id } => json!({"type": "execution_success", "data": {"prompt_id": prompt_id}}),
        E::ExecutionError { data, .. } => json!({"type": "execution_error", "data": data}),
        E::ExecutionInterrupted { data, .. } => json!({"type": "execution_interrupted", "data": data}),
        _ => return None,
    })
}

#[cfg(test)]
mod error_tests {
    use super::{execution_error, without_host_paths};
    use serde_json::json;

    #[test]
    fn host_paths_become_file_names() {
        assert_eq!(
            without_host_paths("Error while loading '/home/me/ComfyUI/models/checkpoints/x.safetensors': bad header"),
            "Error while loading '…/x.safetensors': bad header"
        );
        assert_eq!(
            without_host_paths(r"cannot open C:\ComfyUI\models\y.ckpt"),
            r"cannot open …\y.ckpt"
        );
        assert_eq!(without_host_paths("a/b and /tmp and 1/2"), "a/b and /tmp and 1/2");
    }

    #[test]
    fn tracebacks_and_inputs_are_dropped() {
        let e = execution_error(&json!({
            "node_id": "4", "node_type": "KSampler", "exception_type": "RuntimeError",
            "exception_message": format!("  {}  ", "x".repeat(2000)),
            "traceback": ["  File \"/srv/comfy/execution.py\", line 1"],
            "current_inputs": {"seed": [1]},
        }));
        assert_eq!(e["node_type"], "KSampler");
        assert!(e.get("traceback").is_none() && e.get("current_inputs").is_none());
        let m = e["exception_message"].as_str().unwrap();
        assert_eq!(m.chars().count(), 501);
        assert!(m.starts_with('x') && m.ends_with('…'));
    }
}
