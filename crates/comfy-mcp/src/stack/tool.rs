//! The core of the stack, below every step: the tool's group and
//! arguments checked against its schema (defaults filled), the job and
//! fairness gates, then the tool raced against the client's cancellation,
//! its output made an MCP result within the inline budget, and every known
//! secret masked in it.

use comfy_audit::Outcome;
use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ContentBlock, InputResponses, JsonObject, ProtocolVersion};
use rmcp::service::RequestContext;
use serde_json::json;

use super::{Reply, ToolCall};
use crate::consent::{Binding, Channel};
use crate::tools::{Catalog, Output, Reporter, ToolContext, run};

/// The tool, with every known secret masked in what it returns
/// (see [`crate::secrets`]).
pub(super) async fn core(call: ToolCall, tools: &ToolContext) -> Reply {
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
