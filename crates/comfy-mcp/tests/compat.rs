//! Our `tools/list` against the peer's (`fixtures/peer/tools.json`): for
//! every tool we serve, the same name, parameters, types, defaults,
//! constraints, required list, output schema and annotations.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeMap;

use comfy_mcp::tools::Catalog;
use serde_json::Value;

fn peer() -> BTreeMap<String, Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/peer/tools.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let list = doc.get("tools").cloned().unwrap_or(doc);
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t.clone()))
        .collect()
}

/// Tools the peer does not have; each is also in `docs/compatibility.md`.
const ADDED_TOOLS: &[&str] = &[
    "comfyui_dry_run",
    "comfyui_get_workflow_template",
    "comfyui_list_assets",
];

/// Additions we chose; each is also in `docs/compatibility.md`.
const ADDED_PARAMETERS: &[(&str, &str)] = &[
    ("comfyui_generate_image", "seed"),
    ("comfyui_list_nodes", "category"),
    ("comfyui_list_nodes", "name"),
    ("comfyui_list_nodes", "input_type"),
    ("comfyui_list_nodes", "output_type"),
    ("comfyui_list_nodes", "pack"),
    ("comfyui_list_nodes", "fields"),
    ("comfyui_get_node_info", "raw"),
    ("comfyui_get_image", "type"),
    ("comfyui_list_workflows", "source"),
    ("comfyui_list_workflows", "query"),
    ("comfyui_list_workflows", "category"),
    ("comfyui_list_workflows", "model"),
    ("comfyui_list_nodes", "api_node"),
    ("comfyui_run_workflow", "api_key_comfy_org"),
    ("comfyui_run_workflow_stream", "api_key_comfy_org"),
];

/// Parameters the peer declares as JSON text that also take the JSON value
/// itself (`anyOf` the peer's string and an object or array); each is also
/// in `docs/compatibility.md`.
const WIDENED: &[(&str, &str)] = &[
    ("comfyui_run_workflow", "workflow"),
    ("comfyui_run_workflow_stream", "workflow"),
    ("comfyui_upload_image", "image_data"),
    ("comfyui_upload_mask", "mask_data"),
    ("comfyui_create_workflow", "params"),
    ("comfyui_modify_workflow", "workflow"),
    ("comfyui_modify_workflow", "operations"),
    ("comfyui_validate_workflow", "workflow"),
    ("comfyui_analyze_workflow", "workflow"),
    ("comfyui_summarize_workflow", "workflow"),
];

/// Our schema as the peer would have it: without our descriptions, and
/// each widened parameter back to the peer's string. Fails when a widened
/// parameter does not accept everything the peer's accepts.
fn peer_form(tool: &str, mut schema: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if m.get("description").is_some_and(Value::is_string) {
                    m.remove("description");
                }
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let props = schema["properties"].as_object_mut().unwrap();
    for (name, p) in props.iter_mut() {
        if let Some(alts) = p.get("anyOf").and_then(Value::as_array)
            && alts.iter().any(|a| a["type"] == "string")
            && alts.iter().any(|a| a["type"] == "object" || a["type"] == "array")
        {
            assert!(
                WIDENED.contains(&(tool, name.as_str())),
                "{tool}.{name} is widened but not listed"
            );
            assert_eq!(
                alts[0],
                serde_json::json!({"type": "string"}),
                "{tool}.{name}: the peer's string first"
            );
            let m = p.as_object_mut().unwrap();
            m.remove("anyOf");
            m.insert("type".to_owned(), Value::from("string"));
        }
    }
    strip(&mut schema);
    schema
}

#[test]
fn every_tool_matches_the_peers_schema() {
    let peer = peer();
    let ours = Catalog::get().list();
    assert!(!ours.is_empty());
    for tool in &ours {
        let name = tool.name.as_ref();
        if ADDED_TOOLS.contains(&name) {
            continue;
        }
        let theirs = peer.get(name).unwrap_or_else(|| panic!("{name} is not a peer tool"));
        let mut input = Value::Object((*tool.input_schema).clone());
        for (t, p) in ADDED_PARAMETERS {
            if *t == name {
                input["properties"].as_object_mut().unwrap().remove(*p);
            }
        }
        assert_eq!(peer_form(name, input), theirs["inputSchema"], "{name}: input schema");
        let output = tool.output_schema.as_ref().map(|o| Value::Object((**o).clone()));
        assert_eq!(output.as_ref(), theirs.get("outputSchema"), "{name}: output schema");
        assert_eq!(
            serde_json::to_value(&tool.annotations).unwrap(),
            theirs["annotations"],
            "{name}: annotations"
        );
        assert!(
            tool.description.as_deref().is_some_and(|d| d.len() > 20),
            "{name}: a real description"
        );
    }
}

#[test]
fn every_peer_tool_is_served() {
    let ours: Vec<String> = Catalog::get().list().iter().map(|t| t.name.to_string()).collect();
    let theirs = peer();
    let missing: Vec<&String> = theirs.keys().filter(|name| !ours.contains(name)).collect();
    assert!(missing.is_empty(), "not served: {missing:?}");
    assert_eq!(ours.len(), 53 + ADDED_TOOLS.len());
}

#[test]
fn the_tool_list_is_stable() {
    let list: Vec<Value> = Catalog::get()
        .list()
        .iter()
        .map(|t| serde_json::to_value(t).unwrap())
        .collect();
    insta::assert_json_snapshot!(list);
}

#[test]
fn prompts_match_the_peers_names_and_arguments() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/peer/prompts.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let theirs: Vec<Value> = doc["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| serde_json::json!({"name": p["name"], "arguments": p["arguments"]}))
        .collect();
    // The peer's four come first; the plugin's skills follow (tests/skills.rs).
    let ours: Vec<Value> = comfy_mcp::tools::prompts::list()
        .iter()
        .take(theirs.len())
        .map(|p| {
            let args: Vec<Value> = p
                .arguments
                .iter()
                .flatten()
                .map(|a| serde_json::json!({"name": a.name, "required": a.required}))
                .collect();
            serde_json::json!({"name": p.name, "arguments": args})
        })
        .collect();
    assert_eq!(ours, theirs);
}
