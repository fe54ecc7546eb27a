//! The audit step: a `called` record (with the redacted arguments) before
//! the call runs, and a `completed` record (outcome, duration) before its
//! result is returned; under `fail_closed`, a call whose record cannot be
//! written does not run, and a result whose record cannot be written is
//! withheld.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use comfy_audit::{AuditLog, Outcome, Record};
use rmcp::RoleServer;
use rmcp::model::JsonObject;
use rmcp::service::RequestContext;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{Inner, Reply, Step, ToolCall};

/// The client's `name/version`, as it gave them in `initialize`.
fn client_name(ctx: Option<&RequestContext<RoleServer>>) -> Option<String> {
    let info = ctx?.peer.peer_info()?;
    Some(format!("{}/{}", info.client_info.name, info.client_info.version))
}

/// The audit records of each call.
#[derive(Clone)]
pub(super) struct Audit(pub(super) Arc<AuditLog>);

impl Step for Audit {
    async fn around<S: Inner>(self, call: ToolCall, rest: S) -> Result<Reply, Infallible> {
        let log = self.0;
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
        let mut reply = rest.oneshot(call).await?;
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
    }
}
