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

/// The kinds of input request a client declared it can answer (its
/// `elicitation`, `sampling` and `roots` capabilities).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answerable {
    /// `elicitation/create`.
    pub elicitation: bool,
    /// `sampling/createMessage`.
    pub sampling: bool,
    /// `roots/list`.
    pub roots: bool,
}

impl Answerable {
    /// What a client with `caps` can answer (nothing without them).
    #[must_use]
    pub fn of(caps: Option<&rmcp::model::ClientCapabilities>) -> Self {
        caps.map_or_else(Self::default, |c| Self {
            elicitation: c.elicitation.is_some(),
            sampling: c.sampling.is_some(),
            roots: c.roots.is_some(),
        })
    }

    /// Whether the client can answer `request`.
    #[must_use]
    pub fn allows(self, request: &InputRequest) -> bool {
        match request {
            InputRequest::Elicitation(_) => self.elicitation,
            InputRequest::CreateMessage(_) => self.sampling,
            InputRequest::ListRoots(_) => self.roots,
            _ => false,
        }
    }
}

/// How an exchange of input requests stands after one call
/// ([`Consent::exchange`]).
#[derive(Debug, Clone)]
pub enum Exchange {
    /// Send this input-required result (the requests still unanswered and
    /// a new sealed state); the call ends there.
    Ask(InputRequiredResult),
    /// Every request is answered.
    Done {
        /// The answers, by the keys of the requests.
        answers: Map<String, Value>,
        /// Whether the call carried a state this server sealed for it.
        verified: bool,
    },
    /// A request still needed is of a kind the client did not declare it
    /// can answer (or this process has no sealing key).
    CannotAsk,
    /// The request state, or an answer, does not hold (the message says
    /// why): to be refused as invalid parameters.
    Invalid(String),
}

/// Why a state or answer is refused, with what to do about it.
const AGAIN: &str = "call again without requestState and inputResponses to be asked again";
/// Longest request state accepted (the answers of earlier rounds ride in it).
const MAX_STATE: usize = 16_384;
/// Most rounds one call goes through (answers carried plus answers sent).
const MAX_ROUNDS: usize = 16;

/// The state's payload.
#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    /// The nonce, hex.
    n: String,
    /// SHA-256 of the requests asked (canonical JSON), hex.
    q: String,
    /// The answers of earlier rounds, by key.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    a: Map<String, Value>,
}

/// SHA-256 (hex) of `requests` as canonical JSON.
fn requests_digest(requests: &InputRequests) -> String {
    let mut canonical = String::new();
    write_canonical(&serde_json::to_value(requests).unwrap_or_default(), &mut canonical);
    hex(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
}

/// Whether `answer` is a well-formed answer to `request`: an elicitation
/// result (accepted with a content object holding the schema's required
/// fields, or declined or cancelled), a sampling result, or a roots list.
///
/// # Errors
/// What is wrong with it.
pub fn check_answer(request: &InputRequest, answer: &Value) -> Result<(), String> {
    match request {
        InputRequest::Elicitation(ask) => {
            let result = serde_json::from_value::<ElicitResult>(answer.clone())
                .map_err(|_| "not an elicitation result (an action, and content when accepted)".to_owned())?;
            if result.action != ElicitationAction::Accept {
                return Ok(());
            }
            let Some(Value::Object(content)) = &result.content else {
                return Err("an accepted elicitation result without a content object".to_owned());
            };
            let params = serde_json::to_value(&ask.params).unwrap_or_default();
            let required = params
                .get("requestedSchema")
                .and_then(|s| s.get("required"))
                .and_then(Value::as_array);
            match required
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .find(|k| !content.contains_key(*k))
            {
                Some(missing) => Err(format!("the content lacks the required field {missing:?}")),
                None => Ok(()),
            }
        }
        #[allow(
            deprecated,
            reason = "sampling is deprecated by SEP-2577 but still a 2026-07-28 input request"
        )]
        InputRequest::CreateMessage(_) => serde_json::from_value::<rmcp::model::CreateMessageResult>(answer.clone())
            .map(drop)
            .map_err(|_| "not a sampling result (role, content, model)".to_owned()),
        #[allow(
            deprecated,
            reason = "roots are deprecated by SEP-2577 but still a 2026-07-28 input request"
        )]
        InputRequest::ListRoots(_) => serde_json::from_value::<rmcp::model::ListRootsResult>(answer.clone())
            .map(drop)
            .map_err(|_| "not a roots list (roots)".to_owned()),
        _ => Err("an answer to a kind of request this server does not make".to_owned()),
    }
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

    /// One call of an exchange of input requests (SEP-2322) for a call
    /// bound to `binding`, from a client that can answer `can`, carrying
    /// `state` and `responses`. `next` says what is still to ask given the
    /// answers known so far (`None` when nothing is), so an exchange may
    /// run several rounds; the answers of earlier rounds ride sealed in
    /// the state.
    ///
    /// An answer counts when it answers every request of its round and is
    /// well-formed ([`check_answer`]; a malformed one is [`Exchange::Invalid`]),
    /// and, when `sealed_only`, only if it comes with the state sealed when
    /// those very requests were asked (for a confirmation: nothing else may
    /// turn a call into a "yes"). Without `sealed_only`, answers sent
    /// unasked with the first call count too (information the client
    /// volunteers). Anything missing is asked (again) with a new state; the
    /// state presented is spent then, and when the exchange is done, so
    /// each state serves once.
    pub fn exchange<F>(
        &self,
        binding: &Binding,
        can: Answerable,
        state: Option<&str>,
        responses: Option<&InputResponses>,
        sealed_only: bool,
        next: F,
    ) -> Exchange
    where
        F: Fn(&Map<String, Value>) -> Option<InputRequests>,
    {
        let (mut known, mut asked_before, mut nonce) = match state {
            None => (Map::new(), None, None),
            Some(state) => match self.open(state, binding) {
                Ok(p) => (p.a, Some(p.q), Some(p.n)),
                Err(why) => return Exchange::Invalid(why),
            },
        };
        let verified = nonce.is_some();
        let no_answers = InputResponses::new();
        let responses = responses.unwrap_or(&no_answers);
        for _ in 0..MAX_ROUNDS {
            let Some(asked) = next(&known).filter(|a| !a.is_empty()) else {
                if let Some(n) = nonce.take()
                    && !self.take(&n)
                {
                    tracing::warn!(tool = binding.tool, "refused a request state used before");
                    return Exchange::Invalid(format!("the requestState has been used already; {AGAIN}"));
                }
                return Exchange::Done {
                    answers: known,
                    verified,
                };
            };
            if !asked.values().all(|r| can.allows(r)) {
                return Exchange::CannotAsk;
            }
            let digest = requests_digest(&asked);
            let trusted = asked_before.take().is_some_and(|q| q == digest);
            if (trusted || !sealed_only) && asked.keys().all(|k| responses.contains_key(k)) {
                for (key, request) in &asked {
                    let Some(answer) = responses.get(key) else { continue };
                    if let Err(why) = check_answer(request, answer) {
                        return Exchange::Invalid(format!("inputResponses.{key} does not answer its request: {why}"));
                    }
                    known.insert(key.clone(), answer.clone());
                }
                continue;
            }
            // Asked (again): the state presented is spent.
            if let Some(n) = nonce.take()
                && !self.take(&n)
            {
                return Exchange::Invalid(format!("the requestState has been used already; {AGAIN}"));
            }
            return match self.seal(binding, &digest, &known) {
                Some(Ok(state)) => Exchange::Ask(InputRequiredResult::new(Some(asked), Some(state))),
                Some(Err(why)) => Exchange::Invalid(why),
                None => Exchange::CannotAsk,
            };
        }
        Exchange::Invalid(format!("more than {MAX_ROUNDS} rounds of questions in one call"))
    }

    /// A new state for `binding`, asking the requests of digest `asked`,
    /// carrying the answers `known`: `None` without a key or randomness.
    fn seal(&self, binding: &Binding, asked: &str, known: &Map<String, Value>) -> Option<Result<String, String>> {
        let codec = self.codec.as_ref()?;
        let mut nonce = [0u8; 16];
        self.rng.fill(&mut nonce).ok()?;
        let payload = Payload {
            n: hex(&nonce),
            q: asked.to_owned(),
            a: known.clone(),
        };
        let body = serde_json::to_vec(&payload).unwrap_or_default();
        // Base64 and the seal grow it by a third and a little.
        if body.len() > MAX_STATE / 4 * 3 - 256 {
            return Some(Err(format!(
                "the answers so far are too large to carry in a request state (over {} bytes)",
                MAX_STATE / 4 * 3 - 256
            )));
        }
        let ad = binding.associated_data();
        Some(Ok(codec.seal_with(
            &body,
            &SealOptions::new().associated_data(ad.as_bytes()).ttl(STATE_TTL),
        )))
    }

    /// Opens a state this process sealed for `binding`.
    fn open(&self, state: &str, binding: &Binding) -> Result<Payload, String> {
        if state.len() > MAX_STATE {
            return Err(format!("the requestState is not one this server issued; {AGAIN}"));
        }
        let Some(codec) = self.codec.as_ref() else {
            return Err(format!("this server cannot read request states; {AGAIN}"));
        };
        let ad = binding.associated_data();
        // One answer for every way a state fails to open (SEP-2322 and
        // rmcp ask for that); the log says which.
        let opened = codec.open_with(state, ad.as_bytes()).map_err(|e| {
            tracing::warn!(tool = binding.tool, "refused a request state: {e}");
            format!(
                "the requestState is not valid: not issued by this server for this call, these arguments \
                 and this caller, or older than {} minutes; {AGAIN}",
                STATE_TTL.as_secs() / 60
            )
        })?;
        serde_json::from_slice::<Payload>(&opened).map_err(|_| format!("the requestState cannot be read; {AGAIN}"))
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

    use rmcp::model::{InputRequest, InputRequests, InputResponses, RequestStateCodec, SealOptions};
    use serde_json::{Map, Value, json};

    use super::{Answerable, Binding, Channel, Consent, Decision, Exchange, INPUT_KEY, Payload, STATE_TTL};

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
                needed.state().unwrap().to_owned()
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
                a: Map::new(),
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
                a: Map::new(),
            })
            .unwrap(),
            &SealOptions::new()
                .associated_data(b.associated_data().as_bytes())
                .ttl(std::time::Duration::from_millis(1)),
        );
        // Time is the subject: the 1 ms time to live runs out.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let d = c.ask(&stateless(Some(&expired), Some(answer(true))), &b, "Q").await;
        assert!(
            matches!(&d, Decision::Invalid(m) if m.contains("older than 5 minutes")),
            "{d:?}"
        );
        // A malformed answer is refused.
        let mut malformed = InputResponses::new();
        malformed.insert(INPUT_KEY.to_owned(), json!(12345));
        let d = c.ask(&stateless(Some(&state), Some(malformed)), &b, "Q").await;
        assert!(
            matches!(&d, Decision::Invalid(m) if m.contains("elicitation result")),
            "{d:?}"
        );
        // The state was not spent by the refusals: the real answer works.
        assert_eq!(
            c.ask(&stateless(Some(&state), Some(answer(true))), &b, "Q").await,
            Decision::Yes
        );
        // A state without its answer, or an answer without a state: asked
        // again, with a new state (the one presented is spent).
        let state = first(&c, &b, "Q").await;
        let Decision::Ask(again) = c.ask(&stateless(Some(&state), None), &b, "Q").await else {
            panic!("not asked again");
        };
        assert_ne!(again.state(), Some(state.as_str()));
        let d = c.ask(&stateless(Some(&state), Some(answer(true))), &b, "Q").await;
        assert!(
            matches!(&d, Decision::Invalid(m) if m.contains("used already")),
            "{d:?}"
        );
        let d = c.ask(&stateless(None, Some(answer(true))), &b, "Q").await;
        assert!(matches!(d, Decision::Ask(_)), "{d:?}");
        assert_eq!(
            c.ask(&stateless(again.state(), Some(answer(true))), &b, "Q").await,
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

    fn request(v: Value) -> InputRequest {
        serde_json::from_value(v).unwrap()
    }

    fn name_request(key: &str, field: &str) -> InputRequests {
        InputRequests::from([(
            key.to_owned(),
            request(json!({"method": "elicitation/create", "params": {
                "message": format!("Your {field}?"),
                "requestedSchema": {"type": "object", "properties": {field: {"type": "string"}}, "required": [field]},
            }})),
        )])
    }

    fn responses(v: Value) -> InputResponses {
        serde_json::from_value(v).unwrap()
    }

    const ALL: Answerable = Answerable {
        elicitation: true,
        sampling: true,
        roots: true,
    };

    fn asked(e: Exchange) -> (Vec<String>, String) {
        match e {
            Exchange::Ask(r) => (
                r.input_requests.unwrap().into_keys().collect(),
                r.request_state.unwrap(),
            ),
            other => panic!("not asked: {other:?}"),
        }
    }

    #[test]
    fn an_exchange_runs_rounds_carrying_earlier_answers_in_the_state() {
        let c = Consent::new();
        let b = Binding::new("multi", &Map::new(), "");
        let next = |known: &Map<String, Value>| {
            if !known.contains_key("step1") {
                Some(name_request("step1", "name"))
            } else if !known.contains_key("step2") {
                Some(name_request("step2", "color"))
            } else {
                None
            }
        };
        let (keys, s1) = asked(c.exchange(&b, ALL, None, None, true, next));
        assert_eq!(keys, ["step1"]);
        let r1 = responses(json!({"step1": {"action": "accept", "content": {"name": "Ada"}}}));
        let (keys, s2) = asked(c.exchange(&b, ALL, Some(&s1), Some(&r1), true, next));
        assert_eq!(keys, ["step2"]);
        assert_ne!(s1, s2);
        // The first state is spent.
        assert!(matches!(
            c.exchange(&b, ALL, Some(&s1), Some(&r1), true, next),
            Exchange::Invalid(_)
        ));
        // A wrong key is no answer: asked again.
        let wrong = responses(json!({"other": {"action": "accept", "content": {"color": "red"}}}));
        let (keys, s3) = asked(c.exchange(&b, ALL, Some(&s2), Some(&wrong), true, next));
        assert_eq!(keys, ["step2"]);
        // A missing required field is a malformed answer.
        let bad = responses(json!({"step2": {"action": "accept", "content": {"colour": "red"}}}));
        assert!(matches!(
            c.exchange(&b, ALL, Some(&s3), Some(&bad), true, next),
            Exchange::Invalid(m) if m.contains("\"color\"")
        ));
        let r2 = responses(json!({"step2": {"action": "accept", "content": {"color": "red"}}}));
        match c.exchange(&b, ALL, Some(&s3), Some(&r2), true, next) {
            Exchange::Done { answers, verified } => {
                assert!(verified);
                assert_eq!(answers["step1"]["content"]["name"], "Ada");
                assert_eq!(answers["step2"]["content"]["color"], "red");
            }
            other => panic!("{other:?}"),
        }
        // Sealed only: answers without a state are asked for again; else
        // they count.
        let both = responses(json!({
            "step1": {"action": "accept", "content": {"name": "Ada"}},
            "step2": {"action": "accept", "content": {"color": "red"}},
        }));
        assert!(matches!(
            c.exchange(&b, ALL, None, Some(&both), true, next),
            Exchange::Ask(_)
        ));
        assert!(matches!(
            c.exchange(&b, ALL, None, Some(&both), false, next),
            Exchange::Done { verified: false, .. }
        ));
    }

    #[test]
    fn an_exchange_checks_each_kind_of_answer_and_the_clients_capabilities() {
        let c = Consent::new();
        let b = Binding::new("several", &Map::new(), "");
        let mut all = name_request("user_name", "name");
        all.insert(
            "greeting".to_owned(),
            request(json!({"method": "sampling/createMessage", "params": {
                "messages": [{"role": "user", "content": {"type": "text", "text": "Hi"}}], "maxTokens": 5}})),
        );
        all.insert("roots".to_owned(), request(json!({"method": "roots/list"})));
        let next = |known: &Map<String, Value>| known.is_empty().then(|| all.clone());
        let (keys, state) = asked(c.exchange(&b, ALL, None, None, true, next));
        assert_eq!(keys, ["greeting", "roots", "user_name"]);
        for caps in [
            Answerable { sampling: false, ..ALL },
            Answerable { roots: false, ..ALL },
            Answerable {
                elicitation: false,
                ..ALL
            },
        ] {
            assert!(matches!(
                c.exchange(&b, caps, None, None, true, next),
                Exchange::CannotAsk
            ));
        }
        let good = json!({
            "user_name": {"action": "accept", "content": {"name": "Ada"}},
            "greeting": {"role": "assistant", "content": {"type": "text", "text": "Hello"}, "model": "m"},
            "roots": {"roots": [{"uri": "file:///r", "name": "r"}]},
        });
        for (key, bad) in [
            ("greeting", json!({"text": "Hello"})),
            ("roots", json!([1])),
            ("user_name", json!({"action": "accept"})),
            ("user_name", Value::Null),
        ] {
            let mut r = good.clone();
            r[key] = bad;
            assert!(
                matches!(c.exchange(&b, ALL, Some(&state), Some(&responses(r)), true, next), Exchange::Invalid(m) if m.contains(key)),
                "{key}"
            );
        }
        // A declined elicitation is a well-formed answer.
        let mut r = good.clone();
        r["user_name"] = json!({"action": "decline"});
        assert!(matches!(
            c.exchange(&b, ALL, Some(&state), Some(&responses(r)), true, next),
            Exchange::Done { verified: true, .. }
        ));
        assert_eq!(
            Answerable::of(Some(&serde_json::from_value(json!({"sampling": {}})).unwrap())),
            Answerable {
                sampling: true,
                ..Answerable::default()
            }
        );
    }
}
