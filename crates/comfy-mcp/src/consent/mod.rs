//! Asking the user before a risky step (an enforce-mode workflow with
//! findings, a paid API node, a custom node install), on every MCP
//! revision. One function decides whether to ask (the tool); this module
//! decides how, from the request:
//! - revisions before 2026-07-28, with a session: an elicitation request
//!   sent mid-call, answered by the client ([`Channel::Elicit`]);
//! - 2026-07-28 (SEP-2322, no session): the call ends with an
//!   input-required result carrying the question and a sealed request
//!   state; the client asks the user and calls again with the answer and
//!   the state ([`Channel::Stateless`]);
//! - nobody to ask (the command line, a client without elicitation): the
//!   tool's own rule for that case (enforce mode refuses).
//!
//! The request state is the only thing that turns a retry into a "yes", so
//! a client must not be able to make one. It is sealed with HMAC-SHA256
//! (rmcp's `RequestStateCodec`, key from the operating system's random
//! source, one per process) over
//! - associated data binding it to the tool, a digest of the call's
//!   arguments (as the tool read them, keys sorted) and the principal, so a
//!   state cannot answer other arguments, another tool or another token;
//! - a 5-minute expiry;
//! - a random 128-bit nonce, and a digest of the question, so a state
//!   answers the question the user was shown and nothing else (when the
//!   inspection of the same arguments has changed since, the user is asked
//!   again).
//!
//! The same sealing serves any exchange of input requests
//! ([`Consent::exchange`]): several requests at once (elicitation, sampling,
//! roots), several rounds (the answers of earlier rounds ride sealed in the
//! state), answers checked against the request they answer (a malformed
//! one is refused), a missing answer asked again with a fresh state, and
//! only requests the client declared it can answer. The confirmation
//! above is one such exchange of one round and one question.
//!
//! A state is good once: its nonce goes into a set of redeemed nonces
//! (kept until the state would have expired, at most [`MAX_REDEEMED`]),
//! and a second use is refused. What is not guaranteed: the key is this
//! process's, so a state minted by one replica (or before a restart) is
//! refused by another; without authentication every caller is the same
//! principal, so a state binds to tool and arguments only; the answer is
//! the client's report of what the user said (as with elicitation, a
//! client that lies to the server cannot be told apart from the user).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use rmcp::RoleServer;
use rmcp::model::{
    ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema, InputRequest,
    InputRequests, InputRequiredResult, InputResponses, RequestStateCodec,
};
use rmcp::service::Peer;
use serde_json::{Map, Value};

mod exchange;
#[cfg(test)]
mod tests;

pub use exchange::{Answerable, Exchange, check_answer};

/// How long a question stays answerable.
pub const STATE_TTL: Duration = Duration::from_mins(5);
/// Most redeemed nonces remembered at once (each for [`STATE_TTL`]).
pub const MAX_REDEEMED: usize = 65_536;
/// How long an elicitation waits for the user (older revisions).
const ELICIT_TIMEOUT: Duration = Duration::from_mins(5);
/// The key of the question in `inputRequests` / `inputResponses`.
pub const INPUT_KEY: &str = "confirm";

/// The confirmation the user answers.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Confirm {
    /// Go ahead with what the message describes.
    proceed: bool,
}

rmcp::elicit_safe!(Confirm);

/// How this call can ask the user.
#[derive(Default)]
pub enum Channel {
    /// A revision before 2026-07-28: elicitation mid-call.
    Elicit(Peer<RoleServer>),
    /// 2026-07-28: an input-required result, answered on the next call.
    Stateless {
        /// Whether the client declared elicitation in its capabilities.
        can_elicit: bool,
        /// The answers this call carries (`inputResponses`).
        responses: Option<InputResponses>,
        /// The request state this call carries (`requestState`).
        state: Option<String>,
    },
    /// Nobody to ask.
    #[default]
    None,
}

/// What a state is bound to: the tool, its arguments and the principal.
#[derive(Debug, Clone, Default)]
pub struct Binding {
    tool: String,
    args_digest: String,
    principal: String,
}

impl Binding {
    /// The binding of a call of `tool` with `args` by `principal` (empty
    /// without authentication).
    #[must_use]
    pub fn new(tool: &str, args: &Map<String, Value>, principal: &str) -> Self {
        let mut canonical = String::new();
        write_canonical(&Value::Object(args.clone()), &mut canonical);
        Self {
            tool: tool.to_owned(),
            args_digest: hex(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref()),
            principal: principal.to_owned(),
        }
    }

    /// The associated data of the seal: each part length-prefixed, so no
    /// two bindings share a text.
    fn associated_data(&self) -> String {
        format!(
            "comfy-mcp/consent/v1|{}:{}|{}|{}:{}",
            self.tool.len(),
            self.tool,
            self.args_digest,
            self.principal.len(),
            self.principal
        )
    }
}

/// JSON with object keys sorted at every level (the arguments' digest must
/// not depend on the order a client sends keys in).
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(inner) = map.get(k) {
                    write_canonical(inner, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// A question to put to the user through an input-required result.
#[derive(Debug, Clone)]
pub struct InputNeeded {
    /// What the user is asked.
    pub question: String,
    /// The input-required result that asks it.
    result: InputRequiredResult,
}

impl PartialEq for InputNeeded {
    fn eq(&self, other: &Self) -> bool {
        self.question == other.question && self.state() == other.state()
    }
}

impl Eq for InputNeeded {}

impl InputNeeded {
    /// The input-required result: one form elicitation (`{"proceed":
    /// boolean}`) under [`INPUT_KEY`], and the sealed state.
    #[must_use]
    pub fn result(&self) -> InputRequiredResult {
        self.result.clone()
    }

    /// The sealed request state.
    #[must_use]
    pub fn state(&self) -> Option<&str> {
        self.result.request_state.as_deref()
    }
}

/// The confirmation request: a form elicitation of `{"proceed": boolean}`.
fn confirm_request(question: &str) -> InputRequest {
    let schema = ElicitationSchema::from_type::<Confirm>()
        .unwrap_or_else(|_| ElicitationSchema::builder().required_bool("proceed").build_unchecked());
    InputRequest::Elicitation(ElicitRequest::new(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: question.to_owned(),
        requested_schema: schema,
    }))
}

/// What the user said, or why nothing could be learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Yes,
    /// Declined, dismissed or cancelled.
    No,
    /// The client cannot ask the user.
    CannotAsk,
    /// Ask through an input-required result (2026-07-28).
    Ask(InputNeeded),
    /// The call carried a request state or answers that do not hold (the
    /// message says why).
    Invalid(String),
}

/// The sealing key and the redeemed nonces.
pub struct Consent {
    /// `None` when the operating system gave no randomness for a key:
    /// then nobody can be asked this way (and enforce mode refuses).
    codec: Option<RequestStateCodec>,
    rng: SystemRandom,
    redeemed: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Consent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consent").finish_non_exhaustive()
    }
}

impl Default for Consent {
    fn default() -> Self {
        Self::new()
    }
}

impl Consent {
    /// A fresh key from the operating system's random source.
    #[must_use]
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let mut key = [0u8; 32];
        let codec = if rng.fill(&mut key).is_ok() {
            Some(RequestStateCodec::new_unchecked(key.to_vec()))
        } else {
            tracing::error!("no randomness for the request-state key: nobody can be asked on MCP 2026-07-28");
            None
        };
        Self {
            codec,
            rng,
            redeemed: Mutex::new(HashMap::new()),
        }
    }

    /// Asks `question` through `channel` for a call bound to `binding`.
    pub async fn ask(&self, channel: &Channel, binding: &Binding, question: &str) -> Decision {
        match channel {
            Channel::None => Decision::CannotAsk,
            Channel::Elicit(peer) => {
                match peer
                    .elicit_with_timeout::<Confirm>(question.to_owned(), Some(ELICIT_TIMEOUT))
                    .await
                {
                    Ok(Some(Confirm { proceed: true })) => Decision::Yes,
                    Err(rmcp::service::ElicitationError::CapabilityNotSupported) => Decision::CannotAsk,
                    Ok(_) | Err(_) => Decision::No,
                }
            }
            Channel::Stateless {
                can_elicit,
                responses,
                state,
            } => {
                // A client answering a question could be asked it.
                let can = Answerable {
                    elicitation: *can_elicit || state.is_some(),
                    ..Answerable::default()
                };
                let request = confirm_request(question);
                let next = |known: &Map<String, Value>| {
                    (!known.contains_key(INPUT_KEY))
                        .then(|| InputRequests::from([(INPUT_KEY.to_owned(), request.clone())]))
                };
                match self.exchange(binding, can, state.as_deref(), responses.as_ref(), true, next) {
                    Exchange::Ask(result) => Decision::Ask(InputNeeded {
                        question: question.to_owned(),
                        result,
                    }),
                    Exchange::Done { answers, .. } => {
                        let answer = answers
                            .get(INPUT_KEY)
                            .and_then(|a| serde_json::from_value::<ElicitResult>(a.clone()).ok());
                        let proceed = answer.is_some_and(|a| {
                            a.action == ElicitationAction::Accept
                                && a.content
                                    .as_ref()
                                    .and_then(|c| c.get("proceed"))
                                    .and_then(Value::as_bool)
                                    == Some(true)
                        });
                        if proceed { Decision::Yes } else { Decision::No }
                    }
                    Exchange::CannotAsk => Decision::CannotAsk,
                    Exchange::Invalid(why) => Decision::Invalid(why),
                }
            }
        }
    }
}
