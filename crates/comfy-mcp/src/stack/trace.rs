//! The trace step: the call's `tool_call` span, which the ComfyUI
//! requests' spans nest under.

use std::convert::Infallible;
use std::time::Instant;

use tower::ServiceExt;
use tracing::Instrument;

use super::{Inner, Reply, Step, ToolCall};

/// The `tool_call` span: tool, session, principal, and (once known) the
/// backend, then the outcome and duration. Never the arguments: they may
/// hold secrets.
#[derive(Clone)]
pub(super) struct Trace;

impl Step for Trace {
    fn around<S: Inner>(self, call: ToolCall, rest: S) -> impl Future<Output = Result<Reply, Infallible>> + Send {
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
        let done = span.clone();
        async move {
            let started = Instant::now();
            let reply = rest.oneshot(call).await?;
            done.record("outcome", reply.outcome.as_str());
            done.record("duration", tracing::field::debug(started.elapsed()));
            Ok(reply)
        }
        .instrument(span)
    }
}
