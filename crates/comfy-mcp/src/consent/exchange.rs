//! One exchange of input requests (SEP-2322): what a client can answer,
//! the checks of its answers, and the sealed request state that carries
//! an exchange from one call to the next ([`Consent::exchange`]).

use std::sync::PoisonError;
use std::time::Instant;

use ring::rand::SecureRandom;
use rmcp::model::{
    ElicitResult, ElicitationAction, InputRequest, InputRequests, InputRequiredResult, InputResponses, SealOptions,
};
use serde_json::{Map, Value};

use super::{Binding, Consent, MAX_REDEEMED, STATE_TTL, hex, write_canonical};

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
pub(super) struct Payload {
    /// The nonce, hex.
    pub(super) n: String,
    /// SHA-256 of the requests asked (canonical JSON), hex.
    pub(super) q: String,
    /// The answers of earlier rounds, by key.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub(super) a: Map<String, Value>,
}

/// SHA-256 (hex) of `requests` as canonical JSON.
fn requests_digest(requests: &InputRequests) -> String {
    let mut canonical = String::new();
    write_canonical(&serde_json::to_value(requests).unwrap_or_default(), &mut canonical);
    hex(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
}

/// Whether `answer` reads as a `T` (named `what` when it does not).
fn reads_as<T: serde::de::DeserializeOwned>(answer: &Value, what: &str) -> Result<(), String> {
    serde_json::from_value::<T>(answer.clone())
        .map(drop)
        .map_err(|_| format!("not {what}"))
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
            reason = "sampling and roots are deprecated by SEP-2577 but still 2026-07-28 input requests"
        )]
        InputRequest::CreateMessage(_) => {
            reads_as::<rmcp::model::CreateMessageResult>(answer, "a sampling result (role, content, model)")
        }
        #[allow(deprecated, reason = "as above")]
        InputRequest::ListRoots(_) => reads_as::<rmcp::model::ListRootsResult>(answer, "a roots list (roots)"),
        _ => Err("an answer to a kind of request this server does not make".to_owned()),
    }
}

impl Consent {
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
