//! The unit tests of consent: sealing, binding, rounds, answers.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use rmcp::model::{InputRequest, InputRequests, InputResponses, RequestStateCodec, SealOptions};
use serde_json::{Map, Value, json};

use super::exchange::Payload;
use super::{Answerable, Binding, Channel, Consent, Decision, Exchange, INPUT_KEY, STATE_TTL};

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
