//! The calling client, as the generation tools see it: where progress
//! notifications go, and how the user is asked to confirm a workflow the
//! inspector flagged (elicitation, or an input-required result on MCP
//! 2026-07-28: see [`crate::consent`]).

use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::Peer;

use super::ToolContext;
use crate::consent::{Binding, Channel, Decision};
use crate::tools::impls::ToolError;

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
    pub(in crate::tools) fn can_ask(&self) -> bool {
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
pub(in crate::tools) async fn confirm(
    cx: &ToolContext,
    reporter: &Reporter,
    message: String,
) -> Result<Option<bool>, ToolError> {
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
