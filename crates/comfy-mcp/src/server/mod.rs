//! The MCP handler: `initialize`, `tools/list`, and `tools/call` sent into
//! the tower stack.

use std::sync::Arc;
use std::time::Duration;

use comfy_audit::{AuditConfig, AuditLog};
use comfy_client::Client;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, CompleteRequestParams, CompleteResult,
    GetPromptRequestParams, GetPromptResponse, GetPromptResult, GetSkillRequestParams, GetSkillResult, GetTaskParams,
    GetTaskResult, Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListSkillsResult, ListToolsResult, PaginatedRequestParams, PromptMessage, ReadResourceRequestParams,
    ReadResourceResponse, Role, ServerCapabilities, ServerConfig, UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tower::ServiceExt;

use crate::config::Config;
use crate::stack::{self, Limits, Reply, ToolCall, ToolService};
use crate::tasks::Tasks;

mod replies;
mod task_calls;

use crate::tools::{Catalog, ToolContext, prompts, resources};
use replies::{completion, resource_result};
use task_calls::as_task;

/// What the server tells clients at `initialize` (the peer's text, with
/// the real tool names).
pub const INSTRUCTIONS: &str = "Secure MCP server for generating images and managing workflows via ComfyUI. \
Use comfyui_generate_image for quick text-to-image, or comfyui_run_workflow for custom workflows. \
Use comfyui_list_models and comfyui_list_nodes to discover available resources. \
IMPORTANT: Before running custom workflows with comfyui_run_workflow, always check the response for warnings \
about dangerous nodes or suspicious inputs. If warnings are present, inform the user and ask for confirmation \
before proceeding with execution.";

/// Where a call comes from.
#[allow(
    clippy::large_enum_variant,
    reason = "one lives per call, briefly, and is moved into the call at once"
)]
enum Origin {
    /// The command line (`comfy-mcp call`) or a test, with where progress
    /// goes.
    Cli(Option<crate::stack::ProgressFn>),
    /// An MCP request, with the answers of a call made again after an
    /// input-required result (and its request state).
    Mcp {
        ctx: RequestContext<RoleServer>,
        input_responses: Option<rmcp::model::InputResponses>,
        request_state: Option<String>,
    },
}

impl Origin {
    /// An MCP request that answers nothing.
    fn mcp(ctx: RequestContext<RoleServer>) -> Self {
        Self::Mcp {
            ctx,
            input_responses: None,
            request_state: None,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The ComfyUI client could not be built from the configuration.
    #[error("comfyui: {0}")]
    Client(#[from] comfy_client::Error),
    /// The audit log could not be started.
    #[error("{0}")]
    Audit(#[from] comfy_audit::AuditError),
    /// The shared state (Redis) is misconfigured.
    #[error("{0}")]
    State(#[from] crate::state::StateError),
}

/// The server: the stack, and the audit log to close on the way out.
#[derive(Clone)]
pub struct Server {
    stack: ToolService,
    audit: Arc<AuditLog>,
    transport: &'static str,
    groups: Arc<Vec<String>>,
    /// The backends' names, with several (then some tools take `backend`).
    backends: Arc<Vec<String>>,
    /// MCP tasks, when `tasks.enabled`.
    tasks: Option<Tasks>,
    /// Cancels of abandoned jobs still on their way to ComfyUI.
    cancels: Arc<crate::tools::PendingCancels>,
}

impl Server {
    /// Builds the server for `config`, talking to ComfyUI through `client`
    /// (or one built from `comfyui.url` when `None`).
    ///
    /// # Errors
    /// [`StartError`].
    pub fn new(config: Config, client: Option<Client>) -> Result<Self, StartError> {
        let shared = crate::state::Shared::open(&config.state)?.map(Arc::new);
        let pool = Arc::new(crate::backends::Pool::new(&config, client, shared.clone())?);
        pool.start_health_checks(Duration::from_secs(config.comfyui.health_interval));
        let mut audit = AuditConfig::new(comfy_audit::expand_home(&config.logging.audit_file));
        audit.flush = config.logging.audit_flush.into();
        audit.failure = config.logging.audit_failure.into();
        audit.rotate_bytes = (config.logging.audit_rotate_mb > 0).then_some(config.logging.audit_rotate_mb << 20);
        audit.keep = config.logging.audit_keep;
        audit.anchor = config
            .logging
            .audit_anchor
            .as_deref()
            .map(comfy_audit::AnchorTarget::parse);
        audit.anchor_every = config.logging.audit_anchor_every;
        let audit = Arc::new(AuditLog::open(audit)?);
        let limits = Arc::new(Limits::new(&config, shared.clone()));
        let policy = config.security.policy();
        let groups = Arc::new(config.tools.groups.clone());
        let backends = Arc::new(if pool.is_multi() {
            pool.names().into_iter().map(str::to_owned).collect()
        } else {
            Vec::new()
        });
        let input_timeout = Duration::from_secs(config.tasks.input_timeout);
        let tasks = config.tasks.enabled.then(|| Tasks::new(shared.clone(), input_timeout));
        let cancels = Arc::new(crate::tools::PendingCancels::default());
        let tools = Arc::new(ToolContext {
            pool,
            config: Arc::new(config),
            policy,
            audit: Arc::clone(&audit),
            probes: std::sync::Mutex::default(),
            jobs: crate::jobs::Jobs::new(shared),
            cancels: Arc::clone(&cancels),
            consent: crate::consent::Consent::new(),
        });
        let stack = stack::build(tools, Arc::clone(&audit), limits);
        Ok(Self {
            stack,
            audit,
            transport: "stdio",
            groups,
            backends,
            tasks,
            cancels,
        })
    }

    /// The same server, recording `transport` in the audit log.
    #[must_use]
    pub fn with_transport(&self, transport: &'static str) -> Self {
        let mut s = self.clone();
        s.transport = transport;
        s
    }

    /// Runs one call through the stack (for `comfy-mcp call` and tests).
    pub async fn call(&self, name: &str, args: Option<rmcp::model::JsonObject>) -> Reply {
        self.call_with_progress(name, args, None).await
    }

    /// Runs one call through the stack, reporting progress to `on_progress`.
    pub async fn call_with_progress(
        &self,
        name: &str,
        args: Option<rmcp::model::JsonObject>,
        on_progress: Option<crate::stack::ProgressFn>,
    ) -> Reply {
        self.send(name.to_owned(), args, Origin::Cli(on_progress)).await
    }

    /// Builds the call and sends it through the stack: the one way every
    /// tool call, prompt and resource read runs. The future owns what it
    /// needs, so it can also run in a task of its own.
    fn send(
        &self,
        name: String,
        args: Option<rmcp::model::JsonObject>,
        origin: Origin,
    ) -> impl Future<Output = Reply> + Send + 'static {
        let call = match origin {
            Origin::Cli(on_progress) => ToolCall {
                name,
                args,
                ctx: None,
                transport: "cli",
                on_progress,
                input_responses: None,
                request_state: None,
            },
            Origin::Mcp {
                ctx,
                input_responses,
                request_state,
            } => ToolCall {
                name,
                args,
                ctx: Some(ctx),
                transport: self.transport,
                on_progress: None,
                input_responses,
                request_state,
            },
        };
        let stack = self.stack.clone();
        async move {
            match stack.oneshot(call).await {
                Ok(reply) => reply,
                Err(never) => match never {},
            }
        }
    }

    /// Waits, at most `limit`, for the cancels of jobs whose calls were
    /// abandoned to reach ComfyUI; call on the way out, before
    /// [`Server::close`].
    pub async fn settle_cancels(&self, limit: std::time::Duration) {
        self.cancels.settle(limit).await;
    }

    /// Writes and syncs the audit log; call once on the way out.
    pub fn close(&self) {
        self.audit.close();
    }
}

/// The peer's capability keys, with what we do: the tool, prompt and
/// resource lists never change while the server runs (they follow from
/// the configuration), so no `list_changed` notification is ever sent and
/// `listChanged` is `false` (the peer says `true`);
/// resources cannot be subscribed to (`subscribe: false`, as the peer).
fn honest_list_changed(capabilities: &mut ServerCapabilities) {
    if let Some(t) = capabilities.tools.as_mut() {
        t.list_changed = Some(false);
    }
    if let Some(p) = capabilities.prompts.as_mut() {
        p.list_changed = Some(false);
    }
    if let Some(r) = capabilities.resources.as_mut() {
        r.list_changed = Some(false);
        r.subscribe = Some(false);
    }
}

impl ServerHandler for Server {
    #[allow(
        deprecated,
        reason = "the peer declares the logging capability, deprecated upstream (SEP-2577)"
    )]
    fn get_info(&self) -> ServerConfig {
        let builder = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_tools()
            .enable_skills();
        let mut capabilities = if self.tasks.is_some() {
            builder.enable_tasks().build()
        } else {
            builder.build()
        };
        honest_list_changed(&mut capabilities);
        let mut info = ServerConfig::new(capabilities).with_instructions(INSTRUCTIONS);
        info.server_info = Implementation::new("ComfyUI", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = Catalog::get().list_enabled(&self.groups);
        if !self.backends.is_empty() {
            let names: Vec<&str> = self.backends.iter().map(String::as_str).collect();
            for t in &mut tools {
                if crate::tools::route::takes_backend(&t.name) {
                    let mut schema = (*t.input_schema).clone();
                    if let Some(props) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
                        props.insert("backend".to_owned(), crate::tools::route::backend_property(&names));
                    }
                    t.input_schema = Arc::new(schema);
                }
            }
        }
        #[cfg(feature = "conformance-fixtures")]
        tools.extend(crate::fixtures::list());
        #[cfg(feature = "conformance-fixtures")]
        tools.extend(crate::fixtures::input_required::list());
        #[cfg(feature = "conformance-fixtures")]
        tools.extend(crate::fixtures::tasks::list());
        Ok(ListToolsResult::with_all_items(tools))
    }

    /// A listed tool's definition: rmcp checks a call's `Mcp-Param-*`
    /// headers (SEP-2243) against the arguments its input schema marks
    /// with `x-mcp-header`. (No catalog tool marks any.)
    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        #[cfg(feature = "conformance-fixtures")]
        if let Some(tool) = crate::fixtures::tool(name) {
            return Some(tool);
        }
        let def = Catalog::get().find(name)?;
        self.groups.contains(&def.group).then(|| def.tool().clone())
    }

    /// `logging/setLevel`: accepted, as the peer accepts it. The server's
    /// logs go to stderr (`--log-level`, `RUST_LOG`); MCP log messages are
    /// deprecated (SEP-2577) and none are sent.
    #[allow(
        deprecated,
        reason = "the logging capability is deprecated upstream but the peer declares it"
    )]
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        tracing::debug!("client asked for log level {:?}", request.level);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        #[cfg(feature = "conformance-fixtures")]
        if let Some(result) = crate::fixtures::input_required::get_prompt(&request, &context) {
            return result;
        }
        #[cfg(feature = "conformance-fixtures")]
        if let Some(result) = crate::fixtures::prompt(&request.name, request.arguments.as_ref()) {
            return result.map(Into::into).map_err(|m| ErrorData::invalid_params(m, None));
        }
        let reply = self
            .send(
                format!("prompt:{}", request.name),
                request.arguments,
                Origin::mcp(context),
            )
            .await;
        if let Some(message) = reply.error_text() {
            return Err(ErrorData::invalid_params(message, None));
        }
        let v = reply.result.structured_content.unwrap_or_default();
        let text = v.get("text").and_then(|t| t.as_str()).unwrap_or_default().to_owned();
        let mut result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]);
        if let Some(d) = v.get("description").and_then(|d| d.as_str()) {
            result = result.with_description(d);
        }
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let mut list = resources::list();
        list.extend(crate::skills::listings());
        Ok(ListResourcesResult::with_all_items(list))
    }

    /// SEP-2640 `skills/list`: the plugin's skills, compiled in.
    async fn list_skills(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListSkillsResult, ErrorData> {
        Ok(ListSkillsResult::with_all_items(crate::skills::list()))
    }

    /// SEP-2640 `skills/get`.
    async fn get_skill(
        &self,
        request: GetSkillRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetSkillResult, ErrorData> {
        crate::skills::get(&request.uri)
            .map(GetSkillResult::new)
            .ok_or_else(|| ErrorData::invalid_params(format!("no skill at {}", request.uri), None))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(resources::templates()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        #[cfg(feature = "conformance-fixtures")]
        if let Some(result) = crate::fixtures::resource(&request.uri) {
            return Ok(result.into());
        }
        let uri = request.uri.clone();
        let reply = self.send(format!("resource:{uri}"), None, Origin::mcp(context)).await;
        resource_result(uri, reply)
    }

    /// `completion/complete`: values for an argument of one of our prompts
    /// or resource templates (`tools::complete` says which), through the
    /// stack as `complete:<reference>`, so audited and rate-limited as a
    /// read-only request. An unknown prompt, template or argument, or a
    /// context value that fails its check, is `-32602`; when ComfyUI
    /// cannot be asked the answer is an empty completion (a hint the client
    /// can do without; the audit log records the failure); a rate-limit
    /// refusal is an error.
    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        #[cfg(feature = "conformance-fixtures")]
        if let Some(result) = crate::fixtures::complete(&request) {
            return Ok(result);
        }
        let reference = match &request.r#ref {
            rmcp::model::Reference::Prompt(p) => format!("prompt:{}", p.name),
            rmcp::model::Reference::Resource(r) => format!("resource:{}", r.uri),
            other => {
                return Err(ErrorData::invalid_params(
                    format!(
                        "completions are offered for ref/prompt and ref/resource, not {}",
                        other.reference_type()
                    ),
                    None,
                ));
            }
        };
        let mut args = rmcp::model::JsonObject::new();
        args.insert("argument".to_owned(), request.argument.name.into());
        args.insert("value".to_owned(), request.argument.value.into());
        if let Some(given) = request.context.and_then(|c| c.arguments) {
            let given: rmcp::model::JsonObject = given.into_iter().map(|(k, v)| (k, v.into())).collect();
            args.insert("context".to_owned(), given.into());
        }
        let reply = self
            .send(format!("complete:{reference}"), Some(args), Origin::mcp(context))
            .await;
        completion(&reference, reply)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        #[cfg(feature = "conformance-fixtures")]
        crate::fixtures::refuse(&request.name, &context)?;
        #[cfg(feature = "conformance-fixtures")]
        if let Some(result) = crate::fixtures::input_required::call_tool(&request, &context) {
            return result;
        }
        #[cfg(feature = "conformance-fixtures")]
        if let Some(result) = crate::fixtures::tasks::call_tool(self.tasks.as_ref(), &request, &context).await {
            return result;
        }
        if let Some(tasks) = self.tasks.clone().filter(|_| as_task(&request, &context)) {
            return Ok(CallToolResponse::Task(self.start_task(tasks, request, context).await));
        }
        let origin = Origin::Mcp {
            ctx: context,
            input_responses: request.input_responses,
            request_state: request.request_state,
        };
        let reply = self.send(request.name.to_string(), request.arguments, origin);
        match reply.await {
            // MCP 2026-07-28: the user is asked, and the client calls again
            // with the answer and the request state.
            Reply {
                input_required: Some(question),
                ..
            } => Ok(CallToolResponse::InputRequired(question)),
            reply => Ok(reply.result.into()),
        }
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        self.task_get(request, &context).await
    }

    /// `tasks/update`: answers to the questions of a task waiting for
    /// input, from the principal that started it.
    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.task_update(request, &context).await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.task_cancel(request, &context).await
    }
}
