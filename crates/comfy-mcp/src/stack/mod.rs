//! The tower stack every tool call passes through, one `ServiceBuilder`,
//! outermost first:
//!
//! 0. **trace**: the call's `tool_call` span (tool, session, principal,
//!    backend, then outcome and duration; never the arguments), which the
//!    ComfyUI requests' spans nest under;
//! 1. **audit**: a `called` record (with the redacted arguments) before the
//!    call runs, and a `completed` record (outcome, duration) before its
//!    result is returned; under `fail_closed`, a call whose record cannot
//!    be written does not run, and a result whose record cannot be written
//!    is withheld;
//! 2. **rate limit**: a governor token bucket per category (`workflow`,
//!    `generation`, `file_ops`, `read_only`), N per minute with a burst of
//!    N; with several principals, one set per principal under a ceiling for
//!    all together ([`Limits`]); a refusal names its limit and says when to
//!    retry;
//! 3. **deadline**: the call ends with an error after
//!    `server.tool_deadline` seconds;
//! 4. **concurrency**: tower's `ConcurrencyLimitLayer`: at most
//!    `server.max_concurrent_calls` calls run at once; the rest wait;
//! 5. **core**: arguments checked against the tool's schema (defaults
//!    filled), then the tool, raced against the client's cancellation.
//!
//! The rmcp handler only builds a [`ToolCall`] and sends it here, so no
//! tool can skip a layer. Every layer answers with a [`Reply`] whose
//! outcome the audit layer records.
//!
//! Each of our steps is a `Step`: what it does around the rest of the
//! stack, one file each (`trace`, `audit`, `limits`, `deadline`); one
//! generic `StepLayer` makes any step a tower `Layer`. The core, the
//! innermost service, is in `tool`.

mod audit;
mod deadline;
mod limits;
mod tool;
mod trace;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use comfy_audit::{AuditLog, Outcome};
use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ContentBlock, InputRequiredResult, InputResponses, JsonObject};
use rmcp::service::RequestContext;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder, service_fn};

use crate::tools::ToolContext;
use audit::Audit;
use deadline::Deadline;
use limits::RateLimit;
pub use limits::{Limits, MAX_PRINCIPAL_BUCKETS};
use trace::Trace;

/// One tool call on its way through the stack.
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// Its arguments as sent.
    pub args: Option<JsonObject>,
    /// The MCP request (peer, cancellation, progress token); `None` when
    /// the call comes from the command line.
    pub ctx: Option<RequestContext<RoleServer>>,
    /// `stdio`, `http` or `cli`.
    pub transport: &'static str,
    /// Where progress goes for calls without an MCP request (the command
    /// line's progress bar).
    pub on_progress: Option<ProgressFn>,
    /// The answers of a call made again after an input-required result
    /// (MCP 2026-07-28's `inputResponses`).
    pub input_responses: Option<InputResponses>,
    /// The request state echoed with them (`requestState`).
    pub request_state: Option<String>,
}

/// A progress callback: `(progress, total, message)`.
pub type ProgressFn = Arc<dyn Fn(f64, Option<f64>, &str) + Send + Sync>;

/// A call's result and how it ended.
pub struct Reply {
    /// What the client receives.
    pub result: CallToolResult,
    /// What the audit log records.
    pub outcome: Outcome,
    /// Instead of `result`: the question for the user (MCP 2026-07-28);
    /// `result` then holds its text, for the audit log.
    pub input_required: Option<InputRequiredResult>,
}

impl Reply {
    /// An `isError` result with `message`.
    pub fn error(message: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            result: CallToolResult::error(vec![ContentBlock::text(message.into())]),
            outcome,
            input_required: None,
        }
    }

    /// The error text, when the result is an error.
    pub fn error_text(&self) -> Option<String> {
        if self.result.is_error != Some(true) {
            return None;
        }
        self.result
            .content
            .iter()
            .find_map(|c| c.as_text().map(|t| t.text.clone()))
    }
}

/// The boxed stack.
pub type ToolService = BoxCloneSyncService<ToolCall, Reply, Infallible>;

/// Builds the stack around the tools: one [`ServiceBuilder`], outermost
/// layer first.
pub fn build(tools: Arc<ToolContext>, audit: Arc<AuditLog>, limits: Arc<Limits>) -> ToolService {
    let deadline = Duration::from_secs(tools.config.server.tool_deadline);
    let concurrency = tools.config.server.max_concurrent_calls;
    let core = service_fn(move |call: ToolCall| {
        let tools = Arc::clone(&tools);
        async move { Ok::<_, Infallible>(tool::core(call, &tools).await) }
    });
    let stack = ServiceBuilder::new()
        .layer(StepLayer(Trace))
        .layer(StepLayer(Audit(audit)))
        .layer(StepLayer(RateLimit(limits)))
        .layer(StepLayer(Deadline(deadline)))
        .concurrency_limit(concurrency)
        .service(core);
    BoxCloneSyncService::new(stack)
}

/// What every step's service returns.
type ReplyFuture = Pin<Box<dyn Future<Output = Result<Reply, Infallible>> + Send>>;

/// The services below a step of ours: the rest of the stack.
trait Inner: Service<ToolCall, Response = Reply, Error = Infallible, Future: Send> + Clone + Send + 'static {}

impl<S> Inner for S where
    S: Service<ToolCall, Response = Reply, Error = Infallible, Future: Send> + Clone + Send + 'static
{
}

/// One step of the stack: its part of a call, around the rest.
///
/// A step does its part in `around` and then sends the call on through
/// `rest`, a clone of the rest of the stack (`oneshot`), so whatever waits
/// there (a concurrency slot) waits inside the call, under its deadline.
/// Each call gets its own clone of the step.
trait Step: Clone + Send + 'static {
    /// Runs `call` through this step and on through `rest`.
    fn around<S: Inner>(self, call: ToolCall, rest: S) -> impl Future<Output = Result<Reply, Infallible>> + Send;
}

/// Any [`Step`] as a tower `Layer`.
#[derive(Clone)]
struct StepLayer<T>(T);

impl<T: Clone, S> Layer<S> for StepLayer<T> {
    type Service = StepService<T, S>;
    fn layer(&self, inner: S) -> StepService<T, S> {
        StepService {
            step: self.0.clone(),
            inner,
        }
    }
}

/// [`StepLayer`]'s service: the step, then the rest of the stack. Always
/// ready: the waiting happens inside the call.
#[derive(Clone)]
struct StepService<T, S> {
    step: T,
    inner: S,
}

impl<T: Step, S: Inner> Service<ToolCall> for StepService<T, S> {
    type Response = Reply;
    type Error = Infallible;
    type Future = ReplyFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: ToolCall) -> ReplyFuture {
        Box::pin(self.step.clone().around(call, self.inner.clone()))
    }
}
