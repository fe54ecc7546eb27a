use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{py_repr, validate};
use crate::catalog::{Catalog, Models};

fn catalog() -> &'static Catalog {
    static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    CATALOG.get_or_init(|| Catalog::new(&Models::recorded(), &serde_json::Map::new()))
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A node-shaped value: a known or unknown class and inputs that are
/// literals or links to nearby ids.
fn any_node() -> impl Strategy<Value = Value> {
    let class = prop::sample::select(vec![
        "EmptyImage",
        "ImageInvert",
        "SaveImage",
        "PreviewImage",
        "LoadImage",
        "KSampler",
        "Nope",
    ]);
    let input = prop_oneof![
        any_json(),
        (0u8..6, -2i64..4).prop_map(|(id, idx)| json!([id.to_string(), idx])),
    ];
    let name = prop::sample::select(vec![
        "image",
        "images",
        "width",
        "height",
        "color",
        "batch_size",
        "seed",
        "steps",
        "x",
    ]);
    (class, prop::collection::btree_map(name, input, 0..6))
        .prop_map(|(c, inputs)| json!({"class_type": c, "inputs": Value::Object(inputs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())}))
}

proptest! {
    #[test]
    fn validation_never_panics_on_arbitrary_prompts(nodes in prop::collection::vec(prop_oneof![any_node(), any_json()], 0..6)) {
        let cat = catalog();
        let mut prompt: Map<String, Value> = nodes.into_iter().enumerate().map(|(i, n)| (i.to_string(), n)).collect();
        match validate(cat, &mut prompt, None, &[]) {
            Ok(outcome) => {
                prop_assert!(!outcome.outputs.is_empty());
                for o in &outcome.outputs {
                    prop_assert!(prompt.contains_key(o));
                }
            }
            Err(body) => {
                prop_assert!(body["error"]["type"].is_string());
                prop_assert!(body["node_errors"].is_object());
            }
        }
    }

    #[test]
    fn python_repr_of_strings_has_matching_quotes(s in ".{0,20}") {
        let r = py_repr(&Value::String(s));
        prop_assert!((r.starts_with('\'') && r.ends_with('\'')) || (r.starts_with('"') && r.ends_with('"')));
    }
}

#[test]
fn a_cycle_fails_its_output_without_node_errors() {
    let cat = catalog();
    let mut prompt: Map<String, Value> = serde_json::from_value(json!({
        "1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}
    }))
    .unwrap();
    let err = validate(cat, &mut prompt, None, &[]).unwrap_err();
    assert_eq!(err["error"]["type"], "prompt_outputs_failed_validation");
    assert_eq!(err["node_errors"], json!({}));
}

#[test]
fn a_very_long_chain_is_bounded() {
    let cat = catalog();
    let mut prompt = Map::new();
    prompt.insert(
        "0".into(),
        json!({"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}),
    );
    for i in 1..5000 {
        prompt.insert(
            i.to_string(),
            json!({"class_type": "ImageInvert", "inputs": {"image": [(i - 1).to_string(), 0]}}),
        );
    }
    prompt.insert(
        "out".into(),
        json!({"class_type": "PreviewImage", "inputs": {"images": ["4999", 0]}}),
    );
    // Deeper than the recursion bound: fails like Python's recursion limit, without overflowing the stack.
    assert!(validate(cat, &mut prompt, None, &[]).is_err());
}

#[test]
fn a_chain_within_the_bound_validates() {
    let cat = catalog();
    let mut prompt = Map::new();
    prompt.insert(
        "0".into(),
        json!({"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}),
    );
    for i in 1..500 {
        prompt.insert(
            i.to_string(),
            json!({"class_type": "ImageInvert", "inputs": {"image": [(i - 1).to_string(), 0]}}),
        );
    }
    prompt.insert(
        "out".into(),
        json!({"class_type": "PreviewImage", "inputs": {"images": ["499", 0]}}),
    );
    let outcome = validate(cat, &mut prompt, None, &[]).unwrap();
    assert_eq!(outcome.outputs, ["out"]);
}

#[test]
fn converted_values_are_written_back() {
    let cat = catalog();
    let mut prompt: Map<String, Value> = serde_json::from_value(json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": "64", "height": 32.9, "batch_size": {"__value__": 1}, "color": 0}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    }))
    .unwrap();
    validate(cat, &mut prompt, None, &[]).unwrap();
    assert_eq!(
        prompt["1"]["inputs"],
        json!({"width": 64, "height": 32, "batch_size": 1, "color": 0})
    );
}
