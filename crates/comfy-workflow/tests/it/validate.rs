//! Validation against the recorded server's `/object_info`.

use std::fmt::Write as _;
use std::sync::OnceLock;

use comfy_workflow::{Limits, ObjectInfo, Workflow};

use crate::fixtures;

pub(crate) fn object_info() -> &'static ObjectInfo {
    static INFO: OnceLock<ObjectInfo> = OnceLock::new();
    INFO.get_or_init(|| {
        let bytes = std::fs::read(fixtures().join("comfyui/http/get_object_info.body.json")).unwrap();
        ObjectInfo::from_value(&serde_json::from_slice(&bytes).unwrap())
    })
}

#[track_caller]
fn check(name: &str) -> String {
    let bytes = std::fs::read(fixtures().join(format!("workflows/validate/{name}.json"))).unwrap();
    let wf = Workflow::from_json(&bytes, &Limits::DEFAULT).unwrap();
    let mut out = String::new();
    for p in wf.validate(object_info()) {
        writeln!(out, "{p}").unwrap();
    }
    out
}

#[test]
fn a_valid_txt2img_has_no_problems() {
    assert_eq!(check("txt2img_valid"), "");
}

#[test]
fn every_kind_of_problem_is_found_and_located() {
    insta::assert_snapshot!(check("every_problem"));
}

#[test]
fn cycles_and_missing_outputs_are_graph_problems() {
    insta::assert_snapshot!(check("cycle_and_no_output"));
}

#[test]
fn problems_serialise_for_an_assistant() {
    let bytes = std::fs::read(fixtures().join("workflows/validate/every_problem.json")).unwrap();
    let wf = Workflow::from_json(&bytes, &Limits::DEFAULT).unwrap();
    let problems = wf.validate(object_info());
    insta::assert_json_snapshot!(problems[..3]);
}

#[test]
fn execution_order_follows_links_and_document_order() {
    let bytes = std::fs::read(fixtures().join("workflows/validate/txt2img_valid.json")).unwrap();
    let wf = Workflow::from_json(&bytes, &Limits::DEFAULT).unwrap();
    let order: Vec<String> = wf.execution_order().unwrap().into_iter().map(String::from).collect();
    assert_eq!(order, ["4", "5", "6", "7", "3", "8", "9"]);
}

#[test]
fn the_kept_execution_order_follows_every_change() {
    use comfy_workflow::{Input, Link, Node, NodeId};
    let order = |wf: &Workflow| -> Result<Vec<String>, Vec<String>> {
        wf.execution_order()
            .map(|o| o.into_iter().map(String::from).collect())
            .map_err(|c| c.nodes.into_iter().map(String::from).collect())
    };
    let mut wf = Workflow::from_json(
        br#"{"1": {"class_type": "A", "inputs": {}}, "2": {"class_type": "B", "inputs": {"x": ["1", 0]}}}"#,
        &Limits::DEFAULT,
    )
    .unwrap();
    // Analysis, validation and the model list share the order; asking
    // first keeps it, and each change below must be seen.
    let _ = wf.analyze(None);
    assert_eq!(order(&wf), Ok(vec!["1".into(), "2".into()]));
    let mut first = Node::new(NodeId::new("0").unwrap(), "C");
    first.set_input(
        "y",
        Input::Link(Link {
            node: NodeId::new("2").unwrap(),
            output: 0,
        }),
    );
    wf.insert(first).unwrap();
    assert_eq!(order(&wf), Ok(vec!["1".into(), "2".into(), "0".into()]));
    wf.node_mut("1").unwrap().set_input(
        "z",
        Input::Link(Link {
            node: NodeId::new("2").unwrap(),
            output: 0,
        }),
    );
    assert_eq!(wf.models(), []);
    assert_eq!(order(&wf), Err(vec!["1".into(), "2".into(), "0".into()]));
    wf.remove("2");
    assert_eq!(order(&wf), Ok(vec!["1".into(), "0".into()]));
}
