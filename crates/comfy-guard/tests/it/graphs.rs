//! Graphs inside graphs: every graph is inspected wherever it sits, and an
//! editor file's hidden parts (muted and bypassed nodes, nested
//! definitions, group nodes) are read too; all within bounds.

use comfy_guard::inspect::{Mode, Policy, RuleId, inspect_editor_hidden, inspect_json};
use serde_json::{Value, json};

fn rules_of(doc: &Value) -> Vec<(RuleId, String)> {
    inspect_json(&serde_json::to_vec(doc).unwrap(), &Policy::new(Mode::Audit), None)
        .unwrap()
        .findings
        .into_iter()
        .map(|f| (f.rule, f.node.unwrap_or_default()))
        .collect()
}

#[test]
fn a_graph_anywhere_in_an_input_is_inspected() {
    let term = json!({"1": {"class_type": "Terminal", "inputs": {}}});
    let editor = json!({"nodes": [{"id": 1, "type": "Terminal", "mode": 0}], "links": []});
    for (what, value) in [
        ("object", json!({"a": {"b": term}})),
        ("list", json!([1, term])),
        ("JSON text", Value::from(term.to_string())),
        ("editor graph", editor.clone()),
        ("editor graph as text", Value::from(editor.to_string())),
        (
            "text in a list in text",
            Value::from(json!([{"x": term.to_string()}]).to_string()),
        ),
    ] {
        let doc = json!({"9": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "extra": value}}});
        assert_eq!(rules_of(&doc), [(RuleId::DangerousNode, "9:1".to_owned())], "{what}");
    }
}

#[test]
fn nesting_is_bounded_and_a_subgraph_node_needs_its_graph() {
    let mut deep = json!({"1": {"class_type": "Terminal", "inputs": {}}});
    for _ in 0..12 {
        deep = json!({"1": {"class_type": "Subgraph", "inputs": {"subgraph": deep}}});
    }
    let found = rules_of(&deep);
    assert!(found.iter().any(|(r, _)| *r == RuleId::SubgraphDepth), "{found:?}");
    assert!(!found.iter().any(|(r, _)| *r == RuleId::DangerousNode), "{found:?}");
    // JSON text nested in JSON text counts as nesting too.
    let mut text = json!({"1": {"class_type": "Terminal", "inputs": {}}}).to_string();
    for _ in 0..12 {
        text = json!([{"class_type_hint": text}]).to_string();
    }
    let doc = json!({"9": {"class_type": "PrimitiveString", "inputs": {"value": text}}});
    assert_eq!(rules_of(&doc), [(RuleId::SubgraphDepth, "9".to_owned())]);
    let empty = json!({"9": {"class_type": "MySubgraph", "inputs": {"name": "x"}}});
    assert_eq!(rules_of(&empty), [(RuleId::SubgraphUnexpanded, "9".to_owned())]);
}

#[test]
fn what_an_editor_file_hides_is_read() {
    let doc = json!({
        "nodes": [
            {"id": 1, "type": "EmptyImage", "mode": 0, "widgets_values": [64, 64, 1, 0]},
            {"id": 2, "type": "Terminal", "mode": 2},
            {"id": 3, "type": "PrimitiveStringMultiline", "mode": 4, "widgets_values": ["eval(input())"]}
        ],
        "links": [],
        "definitions": {"subgraphs": [{
            "id": "aaaaaaaa-0000-4000-8000-000000000001", "nodes": [{"id": 1, "type": "ImageInvert", "mode": 0}],
            "definitions": {"subgraphs": [{"id": "b", "nodes": [{"id": 7, "type": "KY_Eval_Python", "mode": 0}]}]}
        }]},
        "extra": {"groupNodes": {"Helper": {"nodes": [{"id": 1, "type": "Terminal", "mode": 0}]}}}
    });
    let report = inspect_editor_hidden(&doc, &Policy::new(Mode::Audit), None).unwrap();
    let found: Vec<(RuleId, String)> = report
        .findings
        .iter()
        .map(|f| (f.rule, f.node.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        found,
        [
            (RuleId::DangerousNode, "2".to_owned()),
            (RuleId::CodeInInput, "3".to_owned()),
            (RuleId::DangerousNode, "definitions/0:definitions/0:7".to_owned()),
            (RuleId::DangerousNode, "groupNodes/Helper:1".to_owned()),
        ]
    );
    assert!(report.findings[0].detail.contains("muted or bypassed"));
    assert!(!report.findings[2].detail.contains("muted or bypassed"));
    // The active top-level nodes are left to the conversion.
    assert!(!report.nodes_used.iter().any(|c| c == "EmptyImage"));
}

#[test]
fn a_promoted_value_the_conversion_carries_is_reported_once() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/inspector/hostile/graphs/promoted_nested_chain.json"
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let info_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/inspector/object_info.json");
    let info =
        comfy_workflow::ObjectInfo::from_value(&serde_json::from_slice(&std::fs::read(info_path).unwrap()).unwrap());
    let policy = Policy::new(Mode::Audit);
    // Without a catalog nothing is converted: the hidden pass judges it.
    let without = inspect_editor_hidden(&doc, &policy, None).unwrap();
    assert!(without.findings.iter().any(|f| f.rule == RuleId::CodeInInput));
    // With one, the converted graph carries it to the inner node, where it
    // is judged; the hidden pass leaves it out. Nested instances are
    // judged on content, not as unknown classes.
    let with = inspect_editor_hidden(&doc, &policy, Some(&info)).unwrap();
    assert!(with.findings.is_empty(), "{:?}", with.findings);
}
