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
