//! The server's inspection against the catalog: enforce mode runs what it
//! can vouch for (core classes, allowlisted packs, named classes), refuses
//! the rest when the client cannot be asked; audit mode warns with rule
//! ids; what is judged is what is sent (tokens expanded, ComfyUI's node
//! replacements applied), in validation as in the run path.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use comfy_sim::Sim;
use serde_json::{Map, Value, json};
use support::{ok, start_sim, text};

const LIMITS: &str = "rate_limits:\n  workflow: 1000\n  generation: 1000\n  file_ops: 1000\n  read_only: 1000\n";

fn fixture(rel: &str) -> Value {
    let path = format!("{}/../../fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The classes of `fixtures/inspector/object_info.json` that the recorded
/// catalog (which the simulator serves) does not have: the custom packs.
pub(crate) fn extra_nodes() -> Map<String, Value> {
    let recorded = fixture("comfyui/http/get_object_info.body.json");
    let Value::Object(all) = fixture("inspector/object_info.json") else {
        panic!("catalog")
    };
    all.into_iter().filter(|(k, _)| recorded.get(k).is_none()).collect()
}

fn core_graph() -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "p"}},
    })
}

fn with(class: &str, inputs: &Value) -> String {
    let mut wf = core_graph();
    wf["9"] = json!({"class_type": class, "inputs": inputs});
    wf.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_mode_runs_only_what_it_can_vouch_for() {
    let config = format!("{LIMITS}security:\n  mode: enforce\n");
    let s = start_sim(&config, Sim::builder().extra_nodes(extra_nodes())).await;
    // Core classes run.
    let r = s
        .call("comfyui_run_workflow", json!({"workflow": core_graph().to_string()}))
        .await;
    assert_eq!(ok(&r)["status"], "submitted");
    // A pack's class: the client cannot be asked, so refused.
    let kj = json!({"image": ["1", 0], "width": 32, "height": 32});
    let r = s
        .call("comfyui_run_workflow", json!({"workflow": with("ImageResizeKJ", &kj)}))
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text(&r).contains("Unvetted node type: ImageResizeKJ (node 9)"),
        "{}",
        text(&r)
    );
    // A curated core class that acts on paths.
    let r = s
        .call(
            "comfyui_run_workflow",
            json!({"workflow": with("LoadTrainingDataset", &json!({"folder_name": "training_dataset"}))}),
        )
        .await;
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    // A class the server does not have: refused outright.
    let r = s
        .call(
            "comfyui_run_workflow",
            json!({"workflow": with("TotallyHarmless", &json!({}))}),
        )
        .await;
    assert_eq!(
        text(&r),
        "Workflow blocked — node types enforce mode cannot vouch for (not in the server's /object_info): ['TotallyHarmless']"
    );
    let history = ok(&s.call("comfyui_get_history", json!({})).await).clone();
    assert_eq!(
        history["items"].as_array().map(Vec::len),
        Some(1),
        "only the core workflow ran"
    );
    s.client.cancel().await.unwrap();

    // The pack allowed by its module folder: its class runs.
    let config = format!("{LIMITS}security:\n  mode: enforce\n  allowed_node_packs: [custom_nodes.ComfyUI-KJNodes]\n");
    let s = start_sim(&config, Sim::builder().extra_nodes(extra_nodes())).await;
    let r = s
        .call("comfyui_run_workflow", json!({"workflow": with("ImageResizeKJ", &kj)}))
        .await;
    assert_eq!(ok(&r)["status"], "submitted", "{}", text(&r));
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_mode_warns_with_rule_ids_from_the_catalog() {
    let s = start_sim(LIMITS, Sim::builder().extra_nodes(extra_nodes())).await;
    let wf = with("Image Load", &json!({"image_path": "cat.png"}));
    let v = ok(&s.call("comfyui_validate_workflow", json!({"workflow": wf})).await).clone();
    assert_eq!(v["warnings"], json!(["Unvetted node type: Image Load (node 9)"]), "{v}");
    assert_eq!(v["findings"][0]["rule"], "node.provenance", "{v}");
    // Unknown classes are findings now that the catalog is used.
    let wf = with("NotInstalled", &json!({}));
    let v = ok(&s
        .call("comfyui_validate_workflow", json!({"workflow": wf.clone()}))
        .await)
    .clone();
    assert_eq!(v["findings"][0]["rule"], "node.unknown", "{v}");
    // Audit mode never blocks: the run is submitted... and ComfyUI refuses
    // the unknown class itself.
    let r = s
        .call(
            "comfyui_run_workflow",
            json!({"workflow": with("ImageResizeKJ", &json!({"image": ["1", 0], "width": 32, "height": 32}))}),
        )
        .await;
    let v = ok(&r).clone();
    assert_eq!(
        v["warnings"],
        json!(["Unvetted node type: ImageResizeKJ (node 9)"]),
        "{v}"
    );
    // The run's result names the rule too, as validation does.
    assert_eq!(v["findings"][0]["rule"], "node.provenance", "{v}");
    assert_eq!(v["findings"][0]["node"], "9", "{v}");
    // Core workflows stay clean.
    let v = ok(&s
        .call(
            "comfyui_validate_workflow",
            json!({"workflow": core_graph().to_string()}),
        )
        .await)
    .clone();
    assert_eq!(v["warnings"], json!([]), "{v}");
    assert!(v.get("findings").is_none());
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_judges_what_will_be_sent() {
    // A retired class that ComfyUI rewrites into SaveImage, carrying a path
    // that leaves the output folder only once it is a filename prefix.
    let table = json!({
        "OldSaver": [{
            "old_node_id": "OldSaver", "new_node_id": "SaveImage", "old_widget_ids": null,
            "input_mapping": [{"new_id": "images", "old_id": "images"}, {"new_id": "filename_prefix", "old_id": "label"}],
            "output_mapping": null,
        }],
    });
    let s = start_sim(LIMITS, Sim::builder().node_replacements(table)).await;
    let mut wf = core_graph();
    wf["3"] =
        json!({"class_type": "OldSaver", "inputs": {"images": ["2", 0], "label": "../../../../home/user/.bashrc"}});
    for tool in ["comfyui_validate_workflow", "comfyui_dry_run"] {
        let v = ok(&s.call(tool, json!({"workflow": wf.to_string()})).await).clone();
        let rules: Vec<&str> = v["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["rule"].as_str())
            .collect();
        assert!(rules.contains(&"input.path"), "{tool}: {v}");
    }
    // Front-end tokens: the prefix is a token that expands to the path.
    let mut wf = core_graph();
    wf["4"] = json!({"class_type": "PrimitiveString", "inputs": {"value": "../../../../etc/cron.d/job"}, "_meta": {"title": "P"}});
    wf["3"]["inputs"]["filename_prefix"] = json!("%P.value%");
    let v = ok(&s
        .call("comfyui_validate_workflow", json!({"workflow": wf.to_string()}))
        .await)
    .clone();
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert!(rules.contains(&"input.path"), "{v}");
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_submitting_tool_names_each_warnings_rule() {
    let config = format!("{LIMITS}limits:\n  max_steps: 8\n");
    let s = start_sim(&config, Sim::builder()).await;
    let rules = |v: &Value| -> Vec<String> {
        v["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["rule"].as_str().map(str::to_owned))
            .collect()
    };
    // A template tool over a job limit: warned, named, submitted.
    let v = ok(&s
        .call("comfyui_generate_image", json!({"prompt": "a lighthouse", "steps": 9}))
        .await)
    .clone();
    assert_eq!(v["status"], "submitted", "{v}");
    assert_eq!(rules(&v), ["limits.max_steps"], "{v}");
    assert_eq!(
        v["warnings"],
        json!(["Node 5 (KSampler): steps 9 is over the limit limits.max_steps = 8"]),
        "{v}"
    );
    // A limit value that cannot be worked out before the run.
    let mut wf = core_graph();
    wf["4"] = json!({"class_type": "GetImageSize", "inputs": {"image": ["1", 0]}});
    wf["5"] = json!({"class_type": "ComfyMathExpression", "inputs": {"expression": "a + 1", "values.a": ["4", 0]}});
    wf["1"]["inputs"]["batch_size"] = json!(["5", 1]);
    // (Whether ComfyUI then runs it or refuses it, the findings come back.)
    let r = s
        .call("comfyui_run_workflow", json!({"workflow": wf.to_string()}))
        .await;
    let v = r.structured_content.clone().unwrap_or_default();
    // (The simulated 0.8.0 catalog lacks the math node: `node.unknown` too.)
    assert_eq!(rules(&v), ["node.unknown", "limits.max_batch_size"], "{}", text(&r));
    assert_eq!(v["findings"][1]["severity"], "warning", "{v}");
    assert_eq!(
        v["warnings"].as_array().map(Vec::len),
        Some(2),
        "the peer's strings, one per finding: {v}"
    );
    // Code in a string: the inspector's rule, and the peer's string kept.
    let mut wf = core_graph();
    wf["6"] = json!({"class_type": "PrimitiveString", "inputs": {"value": "__import__('os').system('id')"}});
    let v = ok(&s
        .call("comfyui_run_workflow_stream", json!({"workflow": wf.to_string()}))
        .await)
    .clone();
    assert!(rules(&v).contains(&"input.code".to_owned()), "{v}");
    assert_eq!(
        v["warnings"].as_array().map(Vec::len),
        v["findings"].as_array().map(Vec::len),
        "one finding per warning: {v}"
    );
    // A clean run has neither.
    let v = ok(&s
        .call("comfyui_run_workflow", json!({"workflow": core_graph().to_string()}))
        .await)
    .clone();
    assert!(v.get("warnings").is_none() && v.get("findings").is_none(), "{v}");
    s.client.cancel().await.unwrap();
}
