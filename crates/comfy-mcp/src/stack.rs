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

use std::convert::Infallible;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use comfy_audit::{AuditLog, Outcome, Record};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ContentBlock, InputRequiredResult, InputResponses, JsonObject, ProtocolVersion};
use rmcp::service::RequestContext;
use serde_json::{Value, json};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};
use tracing::Instrument;

use crate::config::Config;
use crate::consent::{Binding, Channel};
use crate::tools::{Catalog, Category, Output, Reporter, ToolContext, run};

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

/// The rate limiters, one per category: in this process, or shared by
/// every replica through Redis ([`crate::state`]) with these as the
/// fallback under `state.redis_failure = local`.
///
/// With two or more principals (named tokens on the HTTP transport), each
/// principal has buckets of its own at the `rate_limits` rates, and the
/// shared buckets become the ceiling for all of them together
/// (`rate_limits.total`, by default each rate times the number of
/// principals): one principal spending its calls cannot spend another's.
/// Otherwise (stdio, no token, one token) there is one bucket per category,
/// as before.
pub struct Limits {
    /// Per category: the rate each caller has, the ceiling over all
    /// principals, and the bucket of that ceiling.
    buckets: Vec<(Category, u32, u32, DefaultDirectRateLimiter)>,
    /// Each principal's buckets (in `buckets`' order), with several
    /// principals; the names are the configured tokens' names and OAuth
    /// subjects, at most [`MAX_PRINCIPAL_BUCKETS`].
    principals: Option<std::sync::Mutex<std::collections::HashMap<Arc<str>, Vec<DefaultDirectRateLimiter>>>>,
    shared: Option<Arc<crate::state::Shared>>,
}

/// Why a call was not let through.
enum Refusal {
    /// Over the rate.
    Limited(String),
    /// The shared buckets could not be read (`fail_closed`).
    Unavailable(String),
}

/// Most principals with buckets of their own at once.
pub const MAX_PRINCIPAL_BUCKETS: usize = 10_000;

fn bucket(n: u32) -> DefaultDirectRateLimiter {
    let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct(Quota::per_minute(n).allow_burst(n))
}

impl Limits {
    /// Buckets from `rate_limits:`, shared through `shared` when set.
    pub fn new(config: &Config, shared: Option<Arc<crate::state::Shared>>) -> Self {
        let r = config.rate_limits;
        let remote = &config.transport.remote;
        let principals = u32::try_from(remote.principal_count()).unwrap_or(u32::MAX);
        // Principals exist only on the HTTP transport.
        let several = remote.enabled && principals >= 2;
        let total = |own: u32, set: Option<u32>| match set {
            Some(t) if several => t,
            _ if several => own.saturating_mul(principals),
            _ => own,
        };
        let rates = [
            (Category::Workflow, r.workflow, r.total.workflow),
            (Category::Generation, r.generation, r.total.generation),
            (Category::FileOps, r.file_ops, r.total.file_ops),
            (Category::ReadOnly, r.read_only, r.total.read_only),
        ];
        Self {
            buckets: rates
                .iter()
                .map(|&(c, own, set)| {
                    let t = total(own, set);
                    (c, own, t, bucket(t))
                })
                .collect(),
            principals: several.then(std::sync::Mutex::default),
            shared,
        }
    }

    /// Takes one call from bucket `key` (Redis when shared, else `local`):
    /// `Ok(None)` when allowed, `Ok(Some(wait))` when refused.
    async fn take(
        &self,
        key: &str,
        n: u32,
        local: impl Fn() -> Result<(), Duration>,
    ) -> Result<Option<Duration>, Refusal> {
        if let Some(shared) = &self.shared {
            match shared.take(key, n, n).await {
                Ok(decided) => return Ok(decided),
                Err(e) if shared.fail_closed => {
                    return Err(Refusal::Unavailable(format!(
                        "The call was not run: the shared rate limits cannot be checked ({e}); \
                         state.redis_failure = fail_closed refuses calls until Redis is back."
                    )));
                }
                Err(e) => tracing::warn!("shared rate limits unavailable, using this replica's: {e}"),
            }
        }
        Ok(local().err())
    }

    /// Takes a token for `category` for `principal`; the refusal names the
    /// limit that refused and says when to retry.
    async fn check(
        &self,
        category: Category,
        tool: &str,
        principal: Option<&crate::caller::Principal>,
    ) -> Result<(), Refusal> {
        let Some(index) = self.buckets.iter().position(|(c, ..)| *c == category) else {
            return Ok(());
        };
        let (_, own, total, ceiling) = &self.buckets[index];
        let secs = |wait: Duration| wait.as_secs_f64().max(0.1);
        let now = || DefaultClock::default().now();
        if let (Some(table), Some(p)) = (&self.principals, principal) {
            let key = format!("{}:principal:{}", category.name(), p.0);
            let local = || {
                let mut table = table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                // OAuth subjects are not bounded by the configuration:
                // past the cap, one other principal's buckets start anew
                // (the ceiling over all of them still holds).
                if table.len() >= MAX_PRINCIPAL_BUCKETS
                    && !table.contains_key(&p.0)
                    && let Some(other) = table.keys().next().cloned()
                {
                    table.remove(&other);
                }
                let buckets = table
                    .entry(Arc::clone(&p.0))
                    .or_insert_with(|| self.buckets.iter().map(|(_, own, ..)| bucket(*own)).collect());
                buckets[index]
                    .check()
                    .map_err(|not_until| not_until.wait_time_from(now()))
            };
            if let Some(wait) = self.take(&key, *own, local).await? {
                return Err(Refusal::Limited(format!(
                    "Rate limit exceeded for tool '{tool}'. Max {own} requests/minute for principal '{}' \
                     (rate_limits.{}). Retry in {:.1} s.",
                    p.0,
                    category.name(),
                    secs(wait)
                )));
            }
            let local = || ceiling.check().map_err(|not_until| not_until.wait_time_from(now()));
            if let Some(wait) = self.take(category.name(), *total, local).await? {
                return Err(Refusal::Limited(format!(
                    "Rate limit exceeded for tool '{tool}': the server-wide limit of {total} requests/minute \
                     for all principals together (rate_limits.total.{}) is reached. Retry in {:.1} s.",
                    category.name(),
                    secs(wait)
                )));
            }
            return Ok(());
        }
        let local = || ceiling.check().map_err(|not_until| not_until.wait_time_from(now()));
        match self.take(category.name(), *total, local).await? {
            None => Ok(()),
            Some(wait) => Err(Refusal::Limited(format!(
                "Rate limit exceeded for tool '{tool}'. Max {own} requests/minute. Retry in {:.1} s.",
                secs(wait)
            ))),
        }
    }
}

/// Builds the stack around the tools: one [`ServiceBuilder`], outermost
/// layer first.
pub fn build(tools: Arc<ToolContext>, audit: Arc<AuditLog>, limits: Arc<Limits>) -> ToolService {
    let deadline = Duration::from_secs(tools.config.server.tool_deadline);
    let concurrency = tools.config.server.max_concurrent_calls;
    let core = service_fn(move |call: ToolCall| {
        let tools = Arc::clone(&tools);
        async move { Ok::<_, Infallible>(core(call, &tools).await) }
    });
    let stack = ServiceBuilder::new()
        .layer(TraceLayer)
        .layer(AuditLayer(audit))
        .layer(RateLimitLayer(limits))
        .layer(DeadlineLayer(deadline))
        .concurrency_limit(concurrency)
        .service(core);
    BoxCloneSyncService::new(stack)
}

/// What every layer's service returns.
type ReplyFuture = Pin<Box<dyn Future<Output = Result<Reply, Infallible>> + Send>>;

/// The services below a layer of ours: the rest of the stack.
trait Inner: Service<ToolCall, Response = Reply, Error = Infallible, Future: Send> + Clone + Send + 'static {}

impl<S> Inner for S where
    S: Service<ToolCall, Response = Reply, Error = Infallible, Future: Send> + Clone + Send + 'static
{
}

/// Our layers do their part in `call` and then send the call on through
/// a clone of the rest of the stack (`oneshot`), so whatever waits there
/// (a concurrency slot) waits inside the call, under its deadline.
macro_rules! always_ready {
    () => {
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
    };
}

/// The `tool_call` span: tool, session, principal, and (once known) the
/// backend, then the outcome and duration. Never the arguments: they may
/// hold secrets.
#[derive(Clone)]
struct TraceLayer;

/// [`TraceLayer`]'s service.
#[derive(Clone)]
struct Trace<S>(S);

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;
    fn layer(&self, inner: S) -> Trace<S> {
        Trace(inner)
    }
}

impl<S: Inner> Service<ToolCall> for Trace<S> {
    type Response = Reply;
    type Error = Infallible;
    type Future = ReplyFuture;
    always_ready!();

    fn call(&mut self, call: ToolCall) -> ReplyFuture {
        let who = crate::caller::Caller::of(call.ctx.as_ref());
        let span = tracing::info_span!(
            "tool_call",
            tool = %call.name,
            session = who.session_tag(),
            principal = who.principal.as_ref().map(|p| &*p.0),
            backend = tracing::field::Empty,
            outcome = tracing::field::Empty,
            duration = tracing::field::Empty,
        );
        let inner = self.0.clone();
        let done = span.clone();
        Box::pin(
            async move {
                let started = Instant::now();
                let reply = inner.oneshot(call).await?;
                done.record("outcome", reply.outcome.as_str());
                done.record("duration", tracing::field::debug(started.elapsed()));
                Ok(reply)
            }
            .instrument(span),
        )
    }
}

fn client_name(ctx: Option<&RequestContext<RoleServer>>) -> Option<String> {
    let info = ctx?.peer.peer_info()?;
    Some(format!("{}/{}", info.client_info.name, info.client_info.version))
}

/// The audit records of each call.
#[derive(Clone)]
struct AuditLayer(Arc<AuditLog>);

/// [`AuditLayer`]'s service.
#[derive(Clone)]
struct Audit<S> {
    inner: S,
    log: Arc<AuditLog>,
}

impl<S> Layer<S> for AuditLayer {
    type Service = Audit<S>;
    fn layer(&self, inner: S) -> Audit<S> {
        Audit {
            inner,
            log: Arc::clone(&self.0),
        }
    }
}

impl<S: Inner> Service<ToolCall> for Audit<S> {
    type Response = Reply;
    type Error = Infallible;
    type Future = ReplyFuture;
    always_ready!();

    fn call(&mut self, call: ToolCall) -> ReplyFuture {
        let (inner, log) = (self.inner.clone(), Arc::clone(&self.log));
        Box::pin(async move {
            let started = Instant::now();
            let name = call.name.clone();
            let client = client_name(call.ctx.as_ref());
            let who = crate::caller::Caller::of(call.ctx.as_ref());
            let (session, principal) = (who.session_tag(), who.principal.map(|p| p.0.to_string()));
            let transport = call.transport;
            let args = call
                .args
                .clone()
                .map_or(Value::Object(JsonObject::new()), Value::Object);
            let called = Record::new(&name, "called")
                .extra(json!({"arguments": args}))
                .peer(transport, client.clone(), session.clone())
                .principal(principal.clone());
            if let Err(e) = log.write(called).await {
                return Ok(Reply::error(
                    format!("The call was not run: its audit record could not be written ({e})."),
                    Outcome::Error,
                ));
            }
            let mut reply = inner.oneshot(call).await?;
            let mut done = Record::new(&name, "completed")
                .outcome(reply.outcome)
                .duration(started.elapsed())
                .peer(transport, client, session)
                .principal(principal);
            if let Some(text) = reply.error_text() {
                done = done.status(text.chars().take(500).collect::<String>());
            }
            if let Err(e) = log.write(done).await {
                reply = Reply::error(
                    format!("The call ran, but its result is withheld: its audit record could not be written ({e})."),
                    Outcome::Error,
                );
            }
            Ok(reply)
        })
    }
}

/// The rate limits ([`Limits`]).
#[derive(Clone)]
struct RateLimitLayer(Arc<Limits>);

/// [`RateLimitLayer`]'s service.
#[derive(Clone)]
struct RateLimit<S> {
    inner: S,
    limits: Arc<Limits>,
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            limits: Arc::clone(&self.0),
        }
    }
}

impl<S: Inner> Service<ToolCall> for RateLimit<S> {
    type Response = Reply;
    type Error = Infallible;
    type Future = ReplyFuture;
    always_ready!();

    fn call(&mut self, call: ToolCall) -> ReplyFuture {
        let (inner, limits) = (self.inner.clone(), Arc::clone(&self.limits));
        Box::pin(async move {
            let category = Catalog::get()
                .find(&call.name)
                .map_or(Category::ReadOnly, |t| t.category);
            let principal = crate::caller::Caller::of(call.ctx.as_ref()).principal;
            match limits.check(category, &call.name, principal.as_ref()).await {
                Ok(()) => {}
                Err(Refusal::Limited(message)) => return Ok(Reply::error(message, Outcome::RateLimited)),
                Err(Refusal::Unavailable(message)) => return Ok(Reply::error(message, Outcome::Error)),
            }
            inner.oneshot(call).await
        })
    }
}

/// The deadline (`server.tool_deadline`), over the wait for a concurrency
/// slot too. Not tower's `TimeoutLayer`: its timer covers only the
/// response future, not `poll_ready` where `ConcurrencyLimit` waits, and
/// its error does not name the tool.
#[derive(Clone)]
struct DeadlineLayer(Duration);

/// [`DeadlineLayer`]'s service.
#[derive(Clone)]
struct Deadline<S> {
    inner: S,
    deadline: Duration,
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            deadline: self.0,
        }
    }
}

impl<S: Inner> Service<ToolCall> for Deadline<S> {
    type Response = Reply;
    type Error = Infallible;
    type Future = ReplyFuture;
    always_ready!();

    fn call(&mut self, call: ToolCall) -> ReplyFuture {
        let (inner, deadline) = (self.inner.clone(), self.deadline);
        Box::pin(async move {
            let name = call.name.clone();
            match tokio::time::timeout(deadline, inner.oneshot(call)).await {
                Ok(reply) => reply,
                Err(_) => Ok(Reply::error(
                    format!(
                        "{name} did not finish within {} s (server.tool_deadline); the job, if any, keeps running in ComfyUI",
                        deadline.as_secs()
                    ),
                    Outcome::Error,
                )),
            }
        })
    }
}

/// The tool, with every known secret masked in what it returns
/// (see [`crate::secrets`]).
async fn core(call: ToolCall, tools: &ToolContext) -> Reply {
    // With several backends the tool names the one it goes to
    // (`backends::scope`).
    if !tools.pool.is_multi() {
        tracing::Span::current().record("backend", tools.pool.primary().name.as_str());
    }
    let secrets = crate::secrets::of_call(call.args.as_ref(), &tools.config);
    let mut reply = core_inner(call, tools).await;
    reply.result = crate::secrets::scrub(reply.result, &secrets);
    reply
}

async fn core_inner(mut call: ToolCall, tools: &ToolContext) -> Reply {
    if let Some(def) = Catalog::get().find(&call.name)
        && !tools.config.tools.groups.contains(&def.group)
    {
        return Reply::error(
            format!(
                "{} is not enabled on this server (tools.groups does not include '{}')",
                call.name, def.group
            ),
            Outcome::Rejected,
        );
    }
    // With several backends, some tools take a `backend` argument that
    // the catalog's (the peer's) schemas do not have: checked by the tool.
    let mut call_args = call.args;
    let backend = if tools.pool.is_multi() && crate::tools::route::takes_backend(&call.name) {
        call_args.as_mut().and_then(|a| a.remove("backend"))
    } else {
        None
    };
    let (def, args) = match Catalog::get().find(&call.name) {
        Some(def) => match def.prepare(call_args) {
            Ok(mut a) => {
                if let Some(b) = backend {
                    a.insert("backend".to_owned(), b);
                }
                (Some(def), a)
            }
            Err(message) => return Reply::error(message, Outcome::Rejected),
        },
        // Resource reads take no arguments; prompt and completion
        // arguments are checked where they are used.
        None if call.name.starts_with("resource:") => (None, JsonObject::new()),
        None if call.name.starts_with("prompt:") || call.name.starts_with("complete:") => {
            (None, call_args.unwrap_or_default())
        }
        // The conformance suite's fixture tools (test builds only): run
        // below, once the reporter exists.
        #[cfg(feature = "conformance-fixtures")]
        None if crate::fixtures::is_tool(&call.name) => (None, call_args.unwrap_or_default()),
        None => return Reply::error(format!("Unknown tool: '{}'", call.name), Outcome::Rejected),
    };
    let caller = crate::caller::Caller::of(call.ctx.as_ref());
    let reporter = Reporter {
        target: call
            .ctx
            .as_ref()
            .and_then(|c| Some((c.peer.clone(), c.meta.get_progress_token()?))),
        channel: channel(
            call.ctx.as_ref(),
            call.input_responses.take(),
            call.request_state.take(),
        ),
        binding: Binding::new(
            &call.name,
            &args,
            caller.principal.as_ref().map(|p| &*p.0).unwrap_or_default(),
        ),
        local: call.on_progress.clone(),
    };
    #[cfg(feature = "conformance-fixtures")]
    if def.is_none()
        && let Some(result) = crate::fixtures::call(&call.name, &args, call.ctx.as_ref(), &reporter).await
    {
        return Reply {
            result,
            outcome: Outcome::Ok,
            input_required: None,
        };
    }
    let owner = caller.owner().cloned();
    if let Some(owner) = &owner
        && let Err(e) = crate::jobs::before(&call.name, &args, owner, tools).await
    {
        return Reply::error(e.message, e.outcome);
    }
    let client = crate::jobs::client_key(&caller);
    let ticket = match &client {
        Some(c) => match crate::jobs::fair_before(&call.name, c, tools).await {
            Ok(t) => t,
            Err(e) => return Reply::error(e.message, e.outcome),
        },
        None => None,
    };
    // Boxed: the tool futures are large, and this one is awaited in place.
    // The ticket (if any) is released when the call ends, however it ends.
    let work = Box::pin(crate::jobs::client_scope(
        client,
        ticket,
        crate::jobs::scope(owner.clone(), run(&call.name, &args, tools, &reporter)),
    ));
    let result = match call.ctx.as_ref().map(|c| c.ct.clone()) {
        Some(ct) => tokio::select! {
            r = work => r,
            () = ct.cancelled() => return Reply::error("cancelled by the client", Outcome::Cancelled),
        },
        None => work.await,
    };
    match result {
        Ok(Output::Json(mut v)) => {
            if let Some(owner) = &owner {
                crate::jobs::after(&call.name, &mut v, owner, tools).await;
            }
            let mut result = CallToolResult::structured(v);
            // Tool results fit the inline budget (measured on the text the
            // result already carries, so a result within it costs nothing
            // more); a resource is read whole because the client asked for
            // exactly that document.
            let budget = tools.config.server.max_inline_bytes;
            let over = result
                .content
                .first()
                .and_then(|c| c.as_text())
                .is_some_and(|t| t.text.len() > budget);
            if over
                && !call.name.starts_with("resource:")
                && let Some(mut v) = result.structured_content.take()
            {
                let note = crate::budget::fit(&mut v, budget);
                result = CallToolResult::structured(v);
                if let Some(note) = note {
                    result.content.push(ContentBlock::text(note));
                }
            }
            Reply {
                result,
                outcome: Outcome::Ok,
                input_required: None,
            }
        }
        Ok(Output::Text(mut s)) => {
            let note = crate::budget::fit_text(&mut s, tools.config.server.max_inline_bytes);
            let mut result = CallToolResult::success(vec![ContentBlock::text(s.clone())]);
            if let Some(note) = note {
                result.content.push(ContentBlock::text(note));
            }
            if def.is_some_and(|d| d.wraps_string) {
                result.structured_content = Some(json!({"result": s}));
            }
            Reply {
                result,
                outcome: Outcome::Ok,
                input_required: None,
            }
        }
        Ok(Output::Image {
            data_uri,
            base64,
            mime,
            inline,
        }) => {
            let mut content = vec![ContentBlock::text(data_uri.clone())];
            if inline {
                content.push(ContentBlock::image(base64, mime));
            }
            let mut result = CallToolResult::success(content);
            result.structured_content = Some(json!({"result": data_uri}));
            Reply {
                result,
                outcome: Outcome::Ok,
                input_required: None,
            }
        }
        Ok(Output::LargeImage {
            url,
            size,
            budget,
            preview,
            width,
            height,
        }) => {
            let note = format!(
                "The image is {size} bytes, over the inline budget of {budget} bytes (server.max_inline_bytes): \
                 a {width}x{height} JPEG preview is attached, and the full image is at {url}"
            );
            let link = rmcp::model::Resource::new(url.clone(), "full image").with_mime_type("image/png");
            let mut result = CallToolResult::success(vec![
                ContentBlock::text(note),
                ContentBlock::image(preview, "image/jpeg"),
                ContentBlock::resource_link(link),
            ]);
            result.structured_content = Some(json!({
                "result": url,
                "size_bytes": size,
                "preview": {"width": width, "height": height, "mime_type": "image/jpeg"},
            }));
            Reply {
                result,
                outcome: Outcome::Ok,
                input_required: None,
            }
        }
        Ok(Output::Media(m)) => Reply {
            result: m.into_result(),
            outcome: Outcome::Ok,
            input_required: None,
        },
        Err(e) => {
            let mut reply = Reply::error(e.message, e.outcome);
            reply.result.structured_content = e.details;
            reply.input_required = e.input.map(|needed| needed.result());
            reply
        }
    }
}

/// How this call can ask the user: on MCP 2026-07-28 through an
/// input-required result (when the client declared elicitation, or is
/// answering one), before it through elicitation, from the command line
/// not at all.
fn channel(
    ctx: Option<&RequestContext<RoleServer>>,
    responses: Option<InputResponses>,
    state: Option<String>,
) -> Channel {
    let Some(ctx) = ctx else {
        return Channel::None;
    };
    if ctx
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28)
    {
        return Channel::Stateless {
            can_elicit: ctx.client_capabilities().is_some_and(|c| c.elicitation.is_some()),
            responses,
            state,
        };
    }
    Channel::Elicit(ctx.peer.clone())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use super::{Limits, MAX_PRINCIPAL_BUCKETS};
    use crate::caller::Principal;
    use crate::config::Config;
    use crate::tools::Category;

    #[tokio::test]
    async fn oauth_subjects_have_a_bounded_number_of_bucket_sets() {
        let mut config = Config::default();
        config.transport.remote.enabled = true;
        config.transport.remote.oauth.issuers = vec!["https://as.example".into()];
        config.rate_limits.total.read_only = Some(u32::MAX);
        let limits = Limits::new(&config, None);
        for i in 0..=MAX_PRINCIPAL_BUCKETS + 50 {
            let p = Principal(format!("oauth:https://as.example#s{i}").into());
            assert!(limits.check(Category::ReadOnly, "t", Some(&p)).await.is_ok());
        }
        let table = limits.principals.as_ref().expect("several principals with OAuth");
        assert_eq!(table.lock().unwrap().len(), MAX_PRINCIPAL_BUCKETS);
    }
}
