//! One audit record: what happened, as the caller describes it.
//!
//! The peer's fields come first and in its order (`timestamp`, `tool`,
//! `action`, then `prompt_id`, `nodes_used`, `warnings`, `duration_ms`,
//! `status`, `extra`, each only when set), so `grep` and `jq` recipes
//! written for its log keep working. Ours follow: `outcome`, `transport`,
//! `client`, `session`, and the chain fields the writer adds (`seq`,
//! `prev`, `hash`).

use serde::Serialize;
use serde_json::Value;

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It failed (a ComfyUI error, a timeout, bad input).
    Error,
    /// A security check refused it.
    Rejected,
    /// The rate limiter refused it.
    RateLimited,
    /// The client cancelled it.
    Cancelled,
    /// It ended with a question for the user (MCP 2026-07-28's
    /// input-required result); the client calls again with the answer.
    InputRequired,
}

impl Outcome {
    /// Its name as the log writes it (`ok`, `rate_limited`, ...).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Rejected => "rejected",
            Self::RateLimited => "rate_limited",
            Self::Cancelled => "cancelled",
            Self::InputRequired => "input_required",
        }
    }
}

/// An audit record before the writer stamps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Record {
    /// The tool (`comfyui_generate_image`) or domain (`generate_image`).
    pub tool: String,
    /// What happened (`called`, `inspected`, `submitted`, ...).
    pub action: String,
    /// The ComfyUI prompt id, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// Node classes of an inspected workflow.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes_used: Vec<String>,
    /// Security warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// How long the call took, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// A short status (`allowed`, `completed`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Anything else; redacted before it is written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
    /// How the call ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// `stdio` or `http`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// The client's name and version, when it said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The MCP session, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Who authenticated (the bearer token's principal), when there is
    /// authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

impl Record {
    /// A record of `action` by `tool`.
    pub fn new(tool: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            tool: tool.into(),
            action: action.into(),
            ..Self::default()
        }
    }

    /// Sets the prompt id.
    #[must_use]
    pub fn prompt_id(mut self, id: impl Into<String>) -> Self {
        self.prompt_id = Some(id.into());
        self
    }

    /// Sets the node classes.
    #[must_use]
    pub fn nodes_used(mut self, nodes: Vec<String>) -> Self {
        self.nodes_used = nodes;
        self
    }

    /// Sets the warnings.
    #[must_use]
    pub fn warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }

    /// Sets the duration.
    #[must_use]
    pub fn duration(mut self, d: std::time::Duration) -> Self {
        self.duration_ms = Some((d.as_secs_f64() * 1e6).round() / 1e3);
        self
    }

    /// Sets the status.
    #[must_use]
    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.status = Some(status.into());
        self
    }

    /// Sets `extra`.
    #[must_use]
    pub fn extra(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }

    /// Sets the outcome.
    #[must_use]
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// Sets transport, client and session.
    #[must_use]
    pub fn peer(mut self, transport: impl Into<String>, client: Option<String>, session: Option<String>) -> Self {
        self.transport = Some(transport.into());
        self.client = client;
        self.session = session;
        self
    }

    /// Sets who authenticated.
    #[must_use]
    pub fn principal(mut self, principal: Option<String>) -> Self {
        self.principal = principal;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome;

    #[test]
    fn outcome_names_are_the_logged_ones() {
        for o in [
            Outcome::Ok,
            Outcome::Error,
            Outcome::Rejected,
            Outcome::RateLimited,
            Outcome::Cancelled,
            Outcome::InputRequired,
        ] {
            assert_eq!(serde_json::to_value(o).ok(), Some(serde_json::json!(o.as_str())));
        }
    }
}
