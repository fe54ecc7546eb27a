//! Parsing: every invalid fixture is refused with a message naming what is
//! wrong; valid documents round-trip; nothing panics.

use std::fmt::Write as _;

use comfy_workflow::{Input, Limits, ParseError, Workflow};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::fixtures;

/// Each file under `fixtures/workflows/invalid/` with the error it gets.
#[test]
fn invalid_documents_are_refused_with_a_precise_error() {
    let dir = fixtures().join("workflows/invalid");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut report = String::new();
    for name in names {
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        let limits = Limits::DEFAULT.with_max_depth(32);
        match Workflow::from_json(&bytes, &limits) {
            Ok(_) => panic!("{name} was accepted"),
            Err(e) => writeln!(report, "{name}: {e}").unwrap(),
        }
    }
    insta::assert_snapshot!(report);
}

#[test]
fn size_string_and_node_limits_are_enforced() {
    let big = format!(
        r#"{{"1": {{"class_type": "A", "inputs": {{"t": "{}"}}}}}}"#,
        "x".repeat(100)
    );
    let err = Workflow::from_json(big.as_bytes(), &Limits::DEFAULT.with_max_bytes(50)).unwrap_err();
    assert!(matches!(err, ParseError::TooLarge { max: 50, .. }), "{err}");
    let err = Workflow::from_json(big.as_bytes(), &Limits::DEFAULT.with_max_string(10)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "string of 100 bytes at `/1/inputs/t` is longer than the limit of 10"
    );
    let many: serde_json::Map<String, Value> = (0..20).map(|i| (i.to_string(), json!({"class_type": "A"}))).collect();
    let text = serde_json::to_vec(&many).unwrap();
    let err = Workflow::from_json(&text, &Limits::DEFAULT.with_max_nodes(10)).unwrap_err();
    assert_eq!(err, ParseError::TooManyNodes { max: 10 });
}

#[test]
fn links_values_meta_and_extra_keys_are_kept_in_order() {
    let text = br#"{"9": {"inputs": {"b": 2, "a": ["3", 1], "list": [1, 2, 3], "pair": [1, 2]}, "class_type": "K", "_meta": {"title": "Mine"}, "is_changed": ["x"]},
                    "3": {"class_type": "L"}}"#;
    let wf = Workflow::from_json(text, &Limits::DEFAULT).unwrap();
    let ids: Vec<&str> = wf.nodes().iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["9", "3"]);
    let n = wf.node("9").unwrap();
    let names: Vec<&str> = n.inputs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["b", "a", "list", "pair"]);
    assert!(matches!(n.input("a"), Some(Input::Link(l)) if l.node.as_str() == "3" && l.output == 1));
    assert_eq!(
        n.value("pair"),
        Some(&json!([1, 2])),
        "a pair of numbers is a value, not a link"
    );
    assert_eq!(n.title(), Some("Mine"));
    assert_eq!(n.extra.as_ref().and_then(|m| m.get("is_changed")), Some(&json!(["x"])));
    assert_eq!(
        wf.to_json_string(),
        r#"{"9":{"inputs":{"b":2,"a":["3",1],"list":[1,2,3],"pair":[1,2]},"class_type":"K","_meta":{"title":"Mine"},"is_changed":["x"]},"3":{"inputs":{},"class_type":"L"}}"#
    );
}

#[test]
fn link_shapes_are_read_as_comfyui_reads_them() {
    let text = br#"{"1": {"class_type": "A"},
                    "2": {"class_type": "B", "inputs": {"back": ["1", 0], "fwd": ["3", 2], "esc": ["\u0031", 1],
                          "three": ["1", 0, 0], "one": ["1"], "num_first": [1, "1"], "empty": [], "bad_id": ["", 0]}},
                    "3": {"class_type": "C"}}"#;
    let wf = Workflow::from_json(text, &Limits::DEFAULT).unwrap();
    let n = wf.node("2").unwrap();
    let link = |name: &str| {
        n.input(name)
            .and_then(Input::as_link)
            .map(|l| (l.node.as_str(), l.output))
    };
    assert_eq!(link("back"), Some(("1", 0)));
    assert_eq!(link("fwd"), Some(("3", 2)), "a link to a later node");
    assert_eq!(link("esc"), Some(("1", 1)), "an escaped id is the same id");
    assert_eq!(n.value("three"), Some(&json!(["1", 0, 0])));
    assert_eq!(n.value("one"), Some(&json!(["1"])));
    assert_eq!(n.value("num_first"), Some(&json!([1, "1"])));
    assert_eq!(n.value("empty"), Some(&json!([])));
    assert_eq!(n.value("bad_id"), Some(&json!(["", 0])));

    let err = Workflow::from_json(
        br#"{"1": {"class_type": "A", "inputs": {"x": ["1", -1]}}}"#,
        &Limits::DEFAULT,
    )
    .unwrap_err();
    assert!(matches!(err, ParseError::BadLinkIndex { .. }), "{err}");
    let err = Workflow::from_json(
        br#"{"1": {"class_type": "A", "inputs": {"x": ["1", 0, "xxxxxxxxxxxx"]}}}"#,
        &Limits::DEFAULT.with_max_string(11),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "string of 12 bytes at `/1/inputs/x/2` is longer than the limit of 11"
    );
    // Every element of a would-be link names its index when it is at fault
    // (the parser adds it to the path only then).
    for (doc, path) in [
        (r#"["xxxxxxxxxxxx", 0]"#, "/1/inputs/x/0"),
        (r#"["1", "xxxxxxxxxxxx"]"#, "/1/inputs/x/1"),
        (r#"["1", ["xxxxxxxxxxxx"]]"#, "/1/inputs/x/1/0"),
        (r#"["1", {"k": "xxxxxxxxxxxx"}]"#, "/1/inputs/x/1/k"),
        (r#"[["xxxxxxxxxxxx"], 0]"#, "/1/inputs/x/0/0"),
    ] {
        let json = format!(r#"{{"1": {{"class_type": "A", "inputs": {{"x": {doc}}}}}}}"#);
        let err = Workflow::from_json(json.as_bytes(), &Limits::DEFAULT.with_max_string(11)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("string of 12 bytes at `{path}` is longer than the limit of 11"),
            "{doc}"
        );
    }
    let err = Workflow::from_json(
        br#"{"1": {"class_type": "A", "inputs": {"x": ["1", [[[0]]]]}}}"#,
        &Limits::DEFAULT.with_max_depth(5),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/1/inputs/x/1/0"), "{err}");
}

#[test]
fn duplicate_inputs_are_found_among_many() {
    for count in [3, 16, 17, 40, 5_000] {
        let mut inputs: Vec<String> = (0..count).map(|i| format!("\"in{i}\": {i}")).collect();
        let clean = format!(r#"{{"1": {{"class_type": "A", "inputs": {{{}}}}}}}"#, inputs.join(","));
        let wf = Workflow::from_json(clean.as_bytes(), &Limits::DEFAULT).unwrap();
        assert_eq!(wf.node("1").unwrap().inputs.len(), count);
        inputs.push(format!("\"in{}\": 0", count / 2));
        let dup = format!(r#"{{"1": {{"class_type": "A", "inputs": {{{}}}}}}}"#, inputs.join(","));
        let err = Workflow::from_json(dup.as_bytes(), &Limits::DEFAULT).unwrap_err();
        assert!(
            matches!(&err, ParseError::DuplicateKey { key, .. } if *key == format!("in{}", count / 2)),
            "{count}: {err}"
        );
    }
}

fn node_id() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9]{1,4}", "[0-9]{1,3}:[0-9]{1,3}", "[a-z_]{1,8}"]
}

fn literal() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        "[ -~]{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop::collection::vec(inner, 0..3).prop_map(Value::Array)
    })
    // `[string, number]` is a link (or, with a bad index, refused), never a literal.
    .prop_filter("not link-shaped", |v| {
        !matches!(
            v.as_array().map(Vec::as_slice),
            Some([Value::String(_), Value::Number(_)])
        )
    })
}

fn workflow_json() -> impl Strategy<Value = Value> {
    let input = prop_oneof![literal(), (node_id(), 0u32..8).prop_map(|(n, i)| json!([n, i]))];
    let node = (
        "[A-Za-z]{1,12}",
        prop::collection::btree_map("[a-z_]{1,10}", input, 0..5),
    )
        .prop_map(|(class, inputs)| json!({"inputs": inputs, "class_type": class}));
    prop::collection::btree_map(node_id(), node, 0..8).prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest! {
    #[test]
    fn parse_serialise_parse_round_trips(doc in workflow_json()) {
        let text = serde_json::to_vec(&doc).unwrap();
        let wf = Workflow::from_json(&text, &Limits::DEFAULT).unwrap();
        let again = Workflow::from_json(wf.to_json_string().as_bytes(), &Limits::DEFAULT).unwrap();
        prop_assert_eq!(&wf, &again);
        prop_assert_eq!(wf.to_value(), doc);
    }

    #[test]
    fn the_direct_parser_agrees_with_the_value_parser(doc in workflow_json(), junk in literal()) {
        for value in [doc, serde_json::json!({"1": junk.clone()}), serde_json::json!({"1": {"class_type": "A", "inputs": junk}})] {
            let text = serde_json::to_vec(&value).unwrap();
            let direct = Workflow::from_json(&text, &Limits::DEFAULT);
            let via_value = comfy_workflow::parse_json(&text, &Limits::DEFAULT).and_then(|v| Workflow::from_value(v, &Limits::DEFAULT));
            prop_assert_eq!(direct, via_value);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Workflow::from_json(&bytes, &Limits::DEFAULT);
    }

    #[test]
    fn arbitrary_json_never_panics(doc in literal()) {
        let text = serde_json::to_vec(&json!({"1": {"class_type": "A", "inputs": {"x": doc.clone()}}, "2": doc})).unwrap();
        let _ = Workflow::from_json(&text, &Limits::DEFAULT);
    }
}
