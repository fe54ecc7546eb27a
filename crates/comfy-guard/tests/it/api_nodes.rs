//! Paid API nodes: listed with their service whatever the mode, a
//! `node.api` warning in audit mode, the user's confirmation in enforce
//! mode, and neither with `security.allow_api_nodes`.

use comfy_guard::SecurityConfig;
use comfy_guard::inspect::{Mode, Policy, RuleId, inspect_json};
use comfy_workflow::ObjectInfo;
use serde_json::{Value, json};

use crate::inspect::fixtures;

/// The recorded 0.8.0 catalog with the five entries recorded from 0.33.0
/// (`partner/` categories) in place.
fn catalog() -> ObjectInfo {
    let read = |p: &str| -> Value { serde_json::from_slice(&std::fs::read(fixtures().join(p)).unwrap()).unwrap() };
    let mut all = read("comfyui/http/get_object_info.body.json");
    let newer = read("comfyui-0.33/object_info_api_nodes.json");
    for (k, v) in newer.as_object().unwrap() {
        all[k] = v.clone();
    }
    ObjectInfo::from_value(&all)
}

/// KSampler's neighbours are irrelevant here: each class on its own node.
fn wf(classes: &[&str]) -> Vec<u8> {
    let mut doc = serde_json::Map::new();
    for (i, c) in classes.iter().enumerate() {
        doc.insert((i + 1).to_string(), json!({"class_type": c, "inputs": {}}));
    }
    serde_json::to_vec(&doc).unwrap()
}

fn rules(r: &comfy_guard::inspect::Inspection) -> Vec<RuleId> {
    r.findings.iter().map(|f| f.rule).collect()
}

#[test]
fn api_nodes_are_listed_with_their_service_and_warned_about_in_audit_mode() {
    let info = catalog();
    // ClaudeNode and ElevenLabsTextToSpeech (0.33.0 only) are on no list;
    // OpenAIInputFiles lives in the module but calls nothing.
    let report = inspect_json(
        &wf(&["ClaudeNode", "OpenAIInputFiles", "ElevenLabsTextToSpeech", "KSampler"]),
        &Policy::new(Mode::Audit),
        Some(&info),
    )
    .unwrap();
    let listed: Vec<(&str, &str, &str)> = report
        .api_nodes
        .iter()
        .map(|u| (u.node.as_str(), u.class.as_str(), u.service.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("1", "ClaudeNode", "Anthropic"),
            ("3", "ElevenLabsTextToSpeech", "ElevenLabs")
        ]
    );
    // (The peer's dangerous list names the helper by name.)
    assert_eq!(
        rules(&report),
        [RuleId::ApiNode, RuleId::DangerousNode, RuleId::ApiNode]
    );
    assert_eq!(
        report.warnings()[0],
        "Paid API node: ClaudeNode (node 1) sends its inputs to Anthropic and charges the user's Comfy account"
    );
    assert!(report.findings[0].detail.contains("security.allow_api_nodes"));
    assert!(report.blocked().is_none() && !report.needs_confirmation());
    // The 0.8.0 spelling of the category (`api node/`) names the service too.
    let old = inspect_json(&wf(&["KlingTextToVideoNode"]), &Policy::new(Mode::Audit), Some(&info)).unwrap();
    assert_eq!(old.api_nodes[0].service, "Kling");
    assert_eq!(rules(&old), [RuleId::DangerousNode, RuleId::ApiNode]);
    // Without a catalog nothing says which classes are API nodes.
    let blind = inspect_json(&wf(&["ClaudeNode"]), &Policy::new(Mode::Audit), None).unwrap();
    assert!(blind.api_nodes.is_empty() && blind.is_clean());
}

#[test]
fn enforce_mode_asks_unless_the_config_allows_api_nodes() {
    let info = catalog();
    let enforce = Policy::new(Mode::Enforce);
    let report = inspect_json(&wf(&["ClaudeNode"]), &enforce, Some(&info)).unwrap();
    assert_eq!(rules(&report), [RuleId::ApiNode]);
    assert!(report.needs_confirmation() && report.blocked().is_none());

    let cfg: SecurityConfig = serde_json::from_value(json!({"mode": "enforce", "allow_api_nodes": true})).unwrap();
    let allowed = cfg.policy();
    assert!(allowed.allows_api_nodes());
    let report = inspect_json(&wf(&["ClaudeNode", "OpenAIDalle3"]), &allowed, Some(&info)).unwrap();
    // OpenAIDalle3 is on the peer's dangerous list as paid API: allowed
    // API nodes run without asking, still listed.
    assert!(report.is_clean(), "{:?}", report.findings);
    assert!(!report.needs_confirmation());
    assert_eq!(report.api_nodes.len(), 2);

    // In audit mode the flag drops `node.api`; the dangerous list's
    // warning (the peer's) stays.
    let audit = Policy::new(Mode::Audit).with_allow_api_nodes(true);
    let report = inspect_json(&wf(&["OpenAIDalle3"]), &audit, Some(&info)).unwrap();
    assert_eq!(rules(&report), [RuleId::DangerousNode]);

    // The waiver covers ComfyUI's own API nodes only: a pack's class with
    // a listed name (it replaced the core one) still asks.
    let mut raw: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("comfyui-0.33/object_info_api_nodes.json")).unwrap())
            .unwrap();
    raw["OpenAIDalle3"]["python_module"] = json!("custom_nodes.evil_pack");
    let hostile = ObjectInfo::from_value(&raw);
    let report = inspect_json(&wf(&["OpenAIDalle3"]), &allowed, Some(&hostile)).unwrap();
    assert!(rules(&report).contains(&RuleId::DangerousNode), "{:?}", report.findings);
    assert!(report.needs_confirmation());
}

#[test]
fn every_rule_has_an_id_and_node_api_is_one() {
    assert!(RuleId::ALL.contains(&RuleId::ApiNode));
    assert_eq!(RuleId::ApiNode.id(), "node.api");
    assert_eq!(serde_json::to_value(RuleId::ApiNode).unwrap(), "node.api");
}
