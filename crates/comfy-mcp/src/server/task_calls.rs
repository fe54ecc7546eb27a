//! Calls run as MCP tasks (the tasks extension, SEP-2663): which calls
//! run as tasks, the run of one (with its waits for input), and the
//! `tasks/get`, `tasks/update` and `tasks/cancel` requests.

use rmcp::model::{
    CallToolRequestParams, CancelTaskParams, CreateTaskResult, GetTaskParams, GetTaskResult, UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use tracing::Instrument;

use super::{Origin, Server};
use crate::caller::{Caller, Principal};
use crate::tasks::{Input, Tasks, UpdateError};
use crate::tools::Catalog;

/// Whether the request's client supports the tasks extension: declared
/// in the request's `_meta` (SEP-2575), else at `initialize`.
fn supports_tasks(context: &RequestContext<RoleServer>) -> bool {
    context.client_capabilities().is_some_and(|c| c.supports_tasks())
}

/// `tasks/*` from a client that did not declare the extension: -32021.
fn tasks_undeclared() -> ErrorData {
    let required = serde_json::json!({"extensions": {(rmcp::model::TASKS_EXTENSION_ID): {}}});
    ErrorData::missing_required_client_capability(serde_json::from_value(required).unwrap_or_default())
}

/// Whether a call runs as an MCP task: a generation tool asked to wait
/// (or the streaming one), from a client that supports the extension.
pub(super) fn as_task(request: &CallToolRequestParams, context: &RequestContext<RoleServer>) -> bool {
    let supports = supports_tasks(context);
    let long = match Catalog::get().find(&request.name) {
        Some(def) if def.category == crate::tools::Category::Generation => {
            request.name == "comfyui_run_workflow_stream"
                || request
                    .arguments
                    .as_ref()
                    .and_then(|a| a.get("wait"))
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false)
        }
        _ => false,
    };
    supports && long
}

/// The answer for task `id` when there is none (or it is not the caller's).
fn no_task(id: &str) -> ErrorData {
    ErrorData::invalid_params(format!("no task {id:?}"), None)
}

impl Server {
    /// Starts the call `request` as a task of `tasks`: the task's
    /// description, at once; the call runs on ([`Server::run_task`]).
    pub(super) async fn start_task(
        &self,
        tasks: Tasks,
        request: CallToolRequestParams,
        mut context: RequestContext<RoleServer>,
    ) -> CreateTaskResult {
        let owner = Caller::of(Some(&context)).principal;
        let (id, task, cancel) = tasks.create(owner).await;
        // The task, not the request, now decides when the call stops.
        context.ct = cancel;
        let run = self.clone().run_task(tasks, id, request, context);
        tokio::spawn(run.in_current_span());
        CreateTaskResult::new(task)
    }

    /// Runs a call as task `id` to its end. A question for the user
    /// (an input-required result) parks the task until the client answers
    /// it through `tasks/update`; the call then runs again with the
    /// answers and the sealed request state, as a client would call again
    /// (the consent checks are the same), for at most
    /// [`crate::tasks::MAX_INPUT_ROUNDS`] rounds.
    async fn run_task(self, tasks: Tasks, id: String, request: CallToolRequestParams, ctx: RequestContext<RoleServer>) {
        let cancel = ctx.ct.clone();
        let (name, args) = (request.name.to_string(), request.arguments);
        let (mut responses, mut state) = (request.input_responses, request.request_state);
        let mut round = 0;
        loop {
            let origin = Origin::Mcp {
                ctx: ctx.clone(),
                input_responses: responses.take(),
                request_state: state.take(),
            };
            let reply = self.send(name.clone(), args.clone(), origin).await;
            let Some(question) = reply.input_required else {
                let cancelled = reply.outcome == comfy_audit::Outcome::Cancelled;
                tasks.finish(&id, reply.result, cancelled).await;
                return;
            };
            round += 1;
            let asked = question.input_requests.unwrap_or_default();
            if asked.is_empty() || round > crate::tasks::MAX_INPUT_ROUNDS {
                let why = format!(
                    "{name}: more than {} rounds of questions",
                    crate::tasks::MAX_INPUT_ROUNDS
                );
                tasks.fail(&id, &why).await;
                return;
            }
            match tasks.wait_for_input(&id, &asked, round, &cancel).await {
                Input::Answered(answers) => {
                    responses = Some(answers);
                    state = question.request_state;
                }
                Input::TimedOut => {
                    let why = format!("{name}: the question was not answered in time (tasks.input_timeout)");
                    tasks.fail(&id, &why).await;
                    return;
                }
                Input::Cancelled => {
                    let result = rmcp::model::CallToolResult::error(vec![rmcp::model::ContentBlock::text(
                        "cancelled while waiting for an answer",
                    )]);
                    tasks.finish(&id, result, true).await;
                    return;
                }
                Input::Gone => return,
            }
        }
    }

    /// The task store and the caller of a `tasks/*` request: `-32021`
    /// when the request's client did not declare the extension.
    fn task_caller(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<(Option<&Tasks>, Option<Principal>), ErrorData> {
        if !supports_tasks(context) {
            return Err(tasks_undeclared());
        }
        Ok((self.tasks.as_ref(), Caller::of(Some(context)).principal))
    }

    /// `tasks/get`.
    pub(super) async fn task_get(
        &self,
        request: GetTaskParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let (tasks, caller) = self.task_caller(context)?;
        let found = match tasks {
            Some(t) => t.get(&request.task_id, caller.as_ref()).await,
            None => None,
        };
        found.map(GetTaskResult::new).ok_or_else(|| no_task(&request.task_id))
    }

    /// `tasks/update`: answers for a task waiting for input.
    pub(super) async fn task_update(
        &self,
        request: UpdateTaskParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let (tasks, caller) = self.task_caller(context)?;
        let Some(tasks) = tasks else {
            return Err(no_task(&request.task_id));
        };
        match tasks
            .update(&request.task_id, caller.as_ref(), &request.input_responses)
            .await
        {
            Ok(()) => Ok(()),
            Err(UpdateError::NoTask) => Err(no_task(&request.task_id)),
            Err(UpdateError::Invalid(why)) => Err(ErrorData::invalid_params(why, None)),
        }
    }

    /// `tasks/cancel`.
    pub(super) async fn task_cancel(
        &self,
        request: CancelTaskParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let (tasks, caller) = self.task_caller(context)?;
        let cancelled = match tasks {
            Some(t) => t.cancel(&request.task_id, caller.as_ref()).await,
            None => false,
        };
        if cancelled {
            Ok(())
        } else {
            Err(no_task(&request.task_id))
        }
    }
}
