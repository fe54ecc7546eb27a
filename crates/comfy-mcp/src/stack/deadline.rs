//! The deadline step (`server.tool_deadline`), over the wait for a
//! concurrency slot too.

use std::convert::Infallible;
use std::time::Duration;

use comfy_audit::Outcome;
use tower::ServiceExt;

use super::{Inner, Reply, Step, ToolCall};

/// The deadline (`server.tool_deadline`), over the wait for a concurrency
/// slot too. Not tower's `TimeoutLayer`: its timer covers only the
/// response future, not `poll_ready` where `ConcurrencyLimit` waits, and
/// its error does not name the tool.
#[derive(Clone)]
pub(super) struct Deadline(pub(super) Duration);

impl Step for Deadline {
    async fn around<S: Inner>(self, call: ToolCall, rest: S) -> Result<Reply, Infallible> {
        let deadline = self.0;
        let name = call.name.clone();
        match tokio::time::timeout(deadline, rest.oneshot(call)).await {
            Ok(reply) => reply,
            Err(_) => Ok(Reply::error(
                format!(
                    "{name} did not finish within {} s (server.tool_deadline); the job, if any, keeps running in ComfyUI",
                    deadline.as_secs()
                ),
                Outcome::Error,
            )),
        }
    }
}
