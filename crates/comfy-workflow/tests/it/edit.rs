//! Batch edits.

use comfy_workflow::{Edit, EditErrorKind, Input, Limits, Workflow};
use proptest::prelude::*;
use serde_json::json;

fn base() -> Workflow {
    let text = br#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 64}},
                    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
                    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}}"#;
    Workflow::from_json(text, &Limits::DEFAULT).unwrap()
}

fn edits(v: serde_json::Value) -> Vec<Edit> {
    serde_json::from_value(v).unwrap()
}

#[test]
fn each_operation_does_what_it_says() {
    let mut wf = base();
    let report = wf
        .apply(&edits(json!([
            {"op": "add_node", "class_type": "ImageScaleBy", "inputs": {"image": ["2", 0], "scale_by": 2.0}},
            {"op": "set_input", "node_id": "1", "input_name": "height", "value": 32},
            {"op": "connect", "from_node": "4", "from_output": 0, "to_node": "3", "to_input": "images"},
            {"op": "disconnect", "node_id": "4", "input_name": "image"},
            {"op": "remove_node", "node_id": "2"}
        ])))
        .unwrap();
    assert_eq!(
        report
            .added
            .iter()
            .map(comfy_workflow::NodeId::as_str)
            .collect::<Vec<_>>(),
        ["4"]
    );
    assert!(
        report.dropped_links.is_empty(),
        "node 4's link to 2 was disconnected first"
    );
    assert_eq!(
        wf.to_json_string(),
        r#"{"1":{"inputs":{"width":64,"height":32},"class_type":"EmptyImage"},"3":{"inputs":{"images":["4",0],"filename_prefix":"x"},"class_type":"SaveImage"},"4":{"inputs":{"scale_by":2.0},"class_type":"ImageScaleBy"}}"#
    );
}

#[test]
fn removing_a_node_drops_and_reports_links_to_it() {
    let mut wf = base();
    let report = wf
        .apply(&edits(json!([{"op": "remove_node", "node_id": "1"}])))
        .unwrap();
    assert_eq!(report.dropped_links.len(), 1);
    assert_eq!(
        (report.dropped_links[0].0.as_str(), report.dropped_links[0].1.as_str()),
        ("2", "image")
    );
    assert!(wf.node("2").unwrap().input("image").is_none());
}

#[test]
fn a_failing_batch_changes_nothing_and_names_the_operation() {
    let mut wf = base();
    let before = wf.clone();
    let cases = [
        (
            json!([{"op": "set_input", "node_id": "1", "input_name": "w", "value": 1}, {"op": "remove_node", "node_id": "9"}]),
            "operation 1 (remove_node): node `9` not found",
        ),
        (
            json!([{"op": "add_node", "class_type": "A", "node_id": "2"}]),
            "operation 0 (add_node): node `2` already exists",
        ),
        (
            json!([{"op": "disconnect", "node_id": "1", "input_name": "width"}]),
            "operation 0 (disconnect): input `width` of node `1` is not a link",
        ),
        (
            json!([{"op": "disconnect", "node_id": "1", "input_name": "nope"}]),
            "operation 0 (disconnect): node `1` has no input `nope`",
        ),
        (
            json!([{"op": "connect", "from_node": "1", "from_output": 0, "to_node": "1", "to_input": "x"}]),
            "operation 0 (connect): node `1` cannot be connected to itself",
        ),
        (
            json!([{"op": "connect", "from_node": "8", "from_output": 0, "to_node": "1", "to_input": "x"}]),
            "operation 0 (connect): node `8` not found",
        ),
        (
            json!([{"op": "set_input", "node_id": "1", "input_name": "", "value": 1}]),
            "operation 0 (set_input): input name must not be empty",
        ),
        (
            json!([{"op": "add_node", "class_type": ""}]),
            "operation 0 (add_node): class_type must not be empty",
        ),
        (
            json!([{"op": "set_input", "node_id": "1", "input_name": "x", "value": ["2", -1]}]),
            "operation 0 (set_input): input `x`: node `1` input `x` links to `2` with invalid output index -1",
        ),
    ];
    for (batch, message) in cases {
        let err = wf.apply(&edits(batch)).unwrap_err();
        assert_eq!(err.to_string(), message);
        assert_eq!(wf, before, "{message}: the workflow must be unchanged");
    }
    assert!(matches!(
        wf.apply(&edits(json!([{"op": "remove_node", "node_id": "7"}])))
            .unwrap_err()
            .kind,
        EditErrorKind::NodeNotFound(_)
    ));
}

#[test]
fn unknown_operations_and_fields_are_refused_when_read() {
    assert!(serde_json::from_value::<Vec<Edit>>(json!([{"op": "explode"}])).is_err());
    assert!(
        serde_json::from_value::<Vec<Edit>>(json!([{"op": "remove_node", "node_id": "1", "force": true}])).is_err()
    );
    assert!(serde_json::from_value::<Vec<Edit>>(json!([{"op": "remove_node", "node_id": ""}])).is_err());
}

fn any_edit() -> impl Strategy<Value = serde_json::Value> {
    let id = prop::sample::select(vec!["1", "2", "3", "4", "9"]);
    prop_oneof![
        (id.clone(), "[A-Z][a-z]{0,6}").prop_map(|(n, c)| json!({"op": "add_node", "class_type": c, "node_id": n})),
        id.clone().prop_map(|n| json!({"op": "remove_node", "node_id": n})),
        (id.clone(), "[a-z]{0,4}", any::<i32>())
            .prop_map(|(n, i, v)| json!({"op": "set_input", "node_id": n, "input_name": i, "value": v})),
        (id.clone(), 0u32..3, id.clone(), "[a-z]{0,4}").prop_map(
            |(a, o, b, i)| json!({"op": "connect", "from_node": a, "from_output": o, "to_node": b, "to_input": i})
        ),
        (id, "[a-z]{0,5}").prop_map(|(n, i)| json!({"op": "disconnect", "node_id": n, "input_name": i})),
    ]
}

proptest! {
    #[test]
    fn a_batch_applies_fully_or_not_at_all(batch in prop::collection::vec(any_edit(), 0..8)) {
        let batch: Vec<Edit> = serde_json::from_value(serde_json::Value::Array(batch)).unwrap();
        let mut wf = base();
        let before = wf.clone();
        match wf.apply(&batch) {
            Ok(_) => {
                // Applying one by one gives the same result.
                let mut step = before.clone();
                for e in &batch {
                    step.apply(std::slice::from_ref(e)).unwrap();
                }
                prop_assert_eq!(&step, &wf);
                // And the result still parses back to itself.
                let again = Workflow::from_json(wf.to_json_string().as_bytes(), &Limits::DEFAULT).unwrap();
                prop_assert_eq!(&again, &wf);
            }
            Err(e) => {
                prop_assert_eq!(&wf, &before);
                prop_assert!(e.index < batch.len());
            }
        }
        for node in wf.nodes() {
            for (_, input) in &node.inputs {
                if let Input::Link(l) = input {
                    prop_assert!(l.node != node.id);
                }
            }
        }
    }
}
