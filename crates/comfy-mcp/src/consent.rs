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
//! A state is good once: its nonce goes into a set of redeemed nonces
//! (kept until the state would have expired, at most [`MAX_REDEEMED`]),
//! and a second use is refused. What is not guaranteed: the key is this
//! process's, so a state minted by one replica (or before a restart) is
//! refused by another; without authentication every caller is the same
//! principal, so a state binds to tool and arguments only; the answer is
//! the client's report of what the user said (as with elicitation, a
//! client that lies to the server cannot be told apart from the user).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use rmcp::RoleServer;
use rmcp::model::{
    ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema, InputRequest,
    InputRequests, InputRequiredResult, InputResponses, RequestStateCodec, SealOptions,
};
use rmcp::service::Peer;
use serde_json::{Map, Value};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputNeeded {
    /// What the user is asked.
    pub question: String,
    /// The sealed request state.
    pub state: String,
}

impl InputNeeded {
    /// The input-required result: one form elicitation (`{"proceed":
    /// boolean}`) under [`INPUT_KEY`], and the state.
    #[must_use]
    pub fn result(&self) -> InputRequiredResult {
        let schema = ElicitationSchema::from_type::<Confirm>()
            .unwrap_or_else(|_| ElicitationSchema::builder().required_bool("proceed").build_unchecked());
        let ask = ElicitRequest::new(ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: self.question.clone(),
            requested_schema: schema,
        });
        let mut requests = InputRequests::new();
        requests.insert(INPUT_KEY.to_owned(), InputRequest::Elicitation(ask));
        InputRequiredResult::new(Some(requests), Some(self.state.clone()))
    }
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

/// The state's payload.
#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    /// The nonce, hex.
    n: String,
    /// SHA-256 of the question, hex.
    q: String,
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
            } => match state {
                Some(state) => self.redeem(state, responses.as_ref(), binding, question),
                None if responses.is_some() => Decision::Invalid(
                    "the call carries inputResponses without the requestState they answer; \
                     call again without inputResponses to be asked"
                        .to_owned(),
                ),
                None if !can_elicit => Decision::CannotAsk,
                None => self.seal(binding, question).map_or(Decision::CannotAsk, Decision::Ask),
            },
        }
    }

    /// A new question's state.
    fn seal(&self, binding: &Binding, question: &str) -> Option<InputNeeded> {
        let codec = self.codec.as_ref()?;
        let mut nonce = [0u8; 16];
        self.rng.fill(&mut nonce).ok()?;
        let payload = Payload {
            n: hex(&nonce),
            q: hex(ring::digest::digest(&ring::digest::SHA256, question.as_bytes()).as_ref()),
        };
        let body = serde_json::to_vec(&payload).unwrap_or_default();
        let ad = binding.associated_data();
        let state = codec.seal_with(&body, &SealOptions::new().associated_data(ad.as_bytes()).ttl(STATE_TTL));
        Some(InputNeeded {
            question: question.to_owned(),
            state,
        })
    }

    /// Reads the answer to a question this process asked.
    fn redeem(&self, state: &str, responses: Option<&InputResponses>, binding: &Binding, question: &str) -> Decision {
        const AGAIN: &str = "call the tool again without requestState and inputResponses to be asked again";
        if state.len() > 4096 {
            return Decision::Invalid(format!("the requestState is not one this server issued; {AGAIN}"));
        }
        let Some(codec) = self.codec.as_ref() else {
            return Decision::CannotAsk;
        };
        let ad = binding.associated_data();
        // One answer for every way a state fails to open (SEP-2322 and
        // rmcp ask for that); the log says which.
        let opened = match codec.open_with(state, ad.as_bytes()) {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(tool = binding.tool, "refused a request state: {e}");
                return Decision::Invalid(format!(
                    "the requestState is not valid: not issued by this server for this tool, these arguments \
                     and this caller, or older than {} minutes; {AGAIN}",
                    STATE_TTL.as_secs() / 60
                ));
            }
        };
        let Ok(payload) = serde_json::from_slice::<Payload>(&opened) else {
            return Decision::Invalid(format!("the requestState cannot be read; {AGAIN}"));
        };
        let asked = hex(ring::digest::digest(&ring::digest::SHA256, question.as_bytes()).as_ref());
        if payload.q != asked {
            // The same arguments now raise another question (the catalog
            // changed): that one is asked instead.
            return self.seal(binding, question).map_or(Decision::CannotAsk, Decision::Ask);
        }
        let Some(answer) = responses.and_then(|r| r.get(INPUT_KEY)) else {
            return Decision::Invalid(format!(
                "the call carries the requestState but no answer under inputResponses.{INPUT_KEY}; {AGAIN}"
            ));
        };
        let Ok(answer) = serde_json::from_value::<ElicitResult>(answer.clone()) else {
            return Decision::Invalid(format!(
                "inputResponses.{INPUT_KEY} is not an elicitation result; {AGAIN}"
            ));
        };
        if !self.take(&payload.n) {
            tracing::warn!(tool = binding.tool, "refused a request state used before");
            return Decision::Invalid(format!("the requestState has been used already; {AGAIN}"));
        }
        let proceed = answer.action == ElicitationAction::Accept
            && answer
                .content
                .as_ref()
                .and_then(|c| c.get("proceed"))
                .and_then(Value::as_bool)
                == Some(true);
        if proceed { Decision::Yes } else { Decision::No }
    }

    /// Marks `nonce` redeemed; `false` when it was already, or when the
    /// set is full of unexpired nonces (fail closed).
    fn take(&self, nonce: &str) -> bool {
        let mut redeemed = self.redeemed.lock().unwrap_or_else(PoisonError::into_inner);
        if redeemed.len() >= MAX_REDEEMED {
            redeemed.retain(|_, at| at.elapsed() < STATE_TTL);
        }
        if redeemed.contains_key(nonce) || redeemed.len() >= MAX_REDEEMED {
            return false;
        }
        redeemed.insert(nonce.to_owned(), Instant::now());
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use rmcp::model::{InputRequest, InputResponses, RequestStateCodec, SealOptions};
    use serde_json::{Map, Value, json};

    use super::{Binding, Channel, Consent, Decision, INPUT_KEY, Payload, STATE_TTL};

    fn args(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn answer(proceed: bool) -> InputResponses {
        let mut r = InputResponses::new();
        r.insert(
            INPUT_KEY.to_owned(),
            json!({"action": "accept", "content": {"proceed": proceed}}),
        );
        r
    }

    fn stateless(state: Option<&str>, responses: Option<InputResponses>) -> Channel {
        Channel::Stateless {
            can_elicit: true,
            responses,
            state: state.map(str::to_owned),
        }
    }

    async fn first(c: &Consent, b: &Binding, q: &str) -> String {
        match c.ask(&stateless(None, None), b, q).await {
            Decision::Ask(needed) => {
                let result = needed.result();
                let Some(InputRequest::Elicitation(_)) = result.input_requests.as_ref().unwrap().get(INPUT_KEY) else {
                    panic!("one elicitation under {INPUT_KEY}");
                };
                needed.state
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_yes_is_good_once_and_only_for_its_call() {
        let c = Consent::new();
        let b = Binding::new("t", &args(json!({"a": 1, "b": [1, {"x": 2, "w": 3}]})), "alice");
        let state = first(&c, &b, "Proceed?").await;
        // The same arguments in another order bind the same call.
        let same = Binding::new("t", &args(json!({"b": [1, {"w": 3, "x": 2}], "a": 1})), "alice");
        for (binding, why) in [
            (
                Binding::new("t", &args(json!({"a": 2, "b": [1, {"x": 2, "w": 3}]})), "alice"),
                "other arguments",
            ),
            (
                Binding::new("u", &args(json!({"a": 1, "b": [1, {"x": 2, "w": 3}]})), "alice"),
                "another tool",
            ),
            (
                Binding::new("t", &args(json!({"a": 1, "b": [1, {"x": 2, "w": 3}]})), "bob"),
                "another principal",
            ),
        ] {
            let d = c
                .ask(&stateless(Some(&state), Some(answer(true))), &binding, "Proceed?")
                .await;
            assert!(matches!(d, Decision::Invalid(_)), "{why}: {d:?}");
        }
        assert_eq!(
            c.ask(&stateless(Some(&state), Some(answer(true))), &same, "Proceed?")
                .await,
            Decision::Yes
        );
        let again = c
            .ask(&stateless(Some(&state), Some(answer(true))), &same, "Proceed?")
            .await;
        assert!(
            matches!(&again, Decision::Invalid(m) if m.contains("used already")),
            "{again:?}"
        );
        let no = first(&c, &b, "Proceed?").await;
        assert_eq!(
            c.ask(&stateless(Some(&no), Some(answer(false))), &b, "Proceed?").await,
            Decision::No
        );
    }

    #[tokio::test]
    async fn forged_expired_and_incomplete_states_are_refused() {
        let c = Consent::new();
        let b = Binding::new("t", &args(json!({})), "");
        // Sealed with another key, as a client guessing at the format would.
        let forged = RequestStateCodec::new_unchecked(vec![1u8; 32]).seal_with(
            &serde_json::to_vec(&Payload {
                n: "00".into(),
                q: "00".into(),
            })
            .unwrap(),
            &SealOptions::new().associated_data(b.associated_data().as_bytes()),
        );
        let state = first(&c, &b, "Q").await;
        let mut tampered = state.clone();
        tampered.pop();
        tampered.push(if state.ends_with('A') { 'B' } else { 'A' });
        for bad in [forged.as_str(), tampered.as_str(), "", "rs1.x.y", &"x".repeat(10_000)] {
            let d = c.ask(&stateless(Some(bad), Some(answer(true))), &b, "Q").await;
            assert!(matches!(d, Decision::Invalid(_)), "{bad:.40}: {d:?}");
        }
        // Expired: sealed by this codec with a TTL already over.
        let expired = c.codec.as_ref().unwrap().seal_with(
            &serde_json::to_vec(&Payload {
                n: "ab".into(),
                q: "cd".into(),
            })
            .unwrap(),
            &SealOptions::new()
                .associated_data(b.associated_data().as_bytes())
                .ttl(std::time::Duration::from_millis(1)),
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let d = c.ask(&stateless(Some(&expired), Some(answer(true))), &b, "Q").await;
        assert!(
            matches!(&d, Decision::Invalid(m) if m.contains("older than 5 minutes")),
            "{d:?}"
        );
        // No answer, or an answer without a state.
        let d = c.ask(&stateless(Some(&state), None), &b, "Q").await;
        assert!(matches!(d, Decision::Invalid(_)), "{d:?}");
        let d = c.ask(&stateless(None, Some(answer(true))), &b, "Q").await;
        assert!(matches!(d, Decision::Invalid(_)), "{d:?}");
        // The state was not spent by the refusals: the real answer works.
        assert_eq!(
            c.ask(&stateless(Some(&state), Some(answer(true))), &b, "Q").await,
            Decision::Yes
        );
        // Another question for the same call is asked anew.
        let other = first(&c, &b, "Q1").await;
        assert!(matches!(
            c.ask(&stateless(Some(&other), Some(answer(true))), &b, "Q2").await,
            Decision::Ask(_)
        ));
        assert!(STATE_TTL.as_secs() == 300);
    }

    #[tokio::test]
    async fn a_client_without_elicitation_cannot_be_asked() {
        let c = Consent::new();
        let b = Binding::new("t", &Map::new(), "");
        let ch = Channel::Stateless {
            can_elicit: false,
            responses: None,
            state: None,
        };
        assert_eq!(c.ask(&ch, &b, "Q").await, Decision::CannotAsk);
        assert_eq!(c.ask(&Channel::None, &b, "Q").await, Decision::CannotAsk);
    }
}
