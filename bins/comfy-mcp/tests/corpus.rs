//! The shared inspector corpus (`fixtures/inspector/`) through the server:
//! the real binary over stdio (rmcp's client) against comfy-sim serving
//! `fixtures/inspector/object_info.json` (the recorded catalog plus the
//! custom packs the cases use, through `SimBuilder::extra_nodes`).
//!
//! Every family folder under `hostile/` that exists is read; JSON cases
//! only (image cases go through the image tools elsewhere). In audit mode
//! each case is validated and must come back with a finding of its rule id
//! (`findings[].rule`), not refused; the cost family (job limits, judged
//! when a job is submitted) is run instead, and the submission's result
//! (or ComfyUI's refusal of it) must carry the finding; in enforce mode with the default
//! configuration, from a client that cannot be asked, running it must be
//! refused by the inspector (`Workflow blocked ...`), before ComfyUI sees
//! it. `lint-only/` is not read: what it holds (muted nodes, nested
//! definitions, group nodes) is not in the graph the server sends. Benign
//! entries (`benign/cases.json`) get no finding in either mode, with the
//! packs the templates use allowed.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::fmt::Write as _;
use std::path::PathBuf;

use comfy_sim::Sim;
use serde_json::{Map, Value, json};
use support::{start_sim, text};

const LIMITS: &str =
    "rate_limits:\n  workflow: 100000\n  generation: 100000\n  file_ops: 100000\n  read_only: 100000\n";

fn inspector() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/inspector")
}

fn read(path: &PathBuf) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The catalog's classes the simulator's recorded catalog lacks.
fn extra_nodes() -> Map<String, Value> {
    let recorded = read(&inspector().join("../comfyui/http/get_object_info.body.json"));
    let Value::Object(all) = read(&inspector().join("object_info.json")) else {
        panic!("catalog")
    };
    all.into_iter().filter(|(k, _)| recorded.get(k).is_none()).collect()
}

/// `(file, rule, why)` of every JSON case of every hostile family.
fn hostile() -> Vec<(PathBuf, String, String)> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(inspector().join("hostile"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let Ok(raw) = std::fs::read(dir.join("cases.json")) else {
            continue;
        };
        let list: Vec<Value> = serde_json::from_slice(&raw).unwrap();
        for case in list {
            let field = |k: &str| case[k].as_str().unwrap_or_default().to_owned();
            let file = dir.join(field("file"));
            if file.extension().is_some_and(|e| e == "json") {
                out.push((file, field("rule"), field("why")));
            }
        }
    }
    out
}

fn name(path: &std::path::Path) -> String {
    path.strip_prefix(inspector()).unwrap_or(path).display().to_string()
}

fn finding_rules(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["rule"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_cases_are_warned_in_audit_mode_and_refused_in_enforce_mode() {
    let cases = hostile();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut problems = String::new();

    let s = start_sim(LIMITS, Sim::builder().extra_nodes(extra_nodes())).await;
    for (file, rule, why) in &cases {
        let wf = std::fs::read_to_string(file).unwrap();
        if rule.starts_with("limits.") {
            // Submitted: the result, or ComfyUI's refusal (a class it does
            // not have), carries the finding.
            let r = s.call("comfyui_run_workflow", json!({"workflow": wf})).await;
            let found = r.structured_content.as_ref().map(finding_rules).unwrap_or_default();
            if text(&r).starts_with("Workflow blocked") || !found.contains(rule) {
                let _ = writeln!(
                    problems,
                    "{} ({why}): audit: expected {rule} on the submission, found {found:?}: {}",
                    name(file),
                    text(&r)
                );
            }
            continue;
        }
        let r = s.call("comfyui_validate_workflow", json!({"workflow": wf})).await;
        match (&r.is_error, &r.structured_content) {
            (Some(true), _) | (_, None) => {
                let _ = writeln!(problems, "{} ({why}): audit: refused: {}", name(file), text(&r));
            }
            (_, Some(v)) => {
                if !finding_rules(v).contains(rule) {
                    let _ = writeln!(
                        problems,
                        "{} ({why}): audit: expected {rule}, found {:?}",
                        name(file),
                        finding_rules(v)
                    );
                }
            }
        }
    }
    s.client.cancel().await.unwrap();

    let config = format!("{LIMITS}security:\n  mode: enforce\n");
    let s = start_sim(&config, Sim::builder().extra_nodes(extra_nodes())).await;
    for (file, _, why) in &cases {
        let wf = std::fs::read_to_string(file).unwrap();
        let r = s.call("comfyui_run_workflow", json!({"workflow": wf})).await;
        if r.is_error != Some(true) || !text(&r).starts_with("Workflow blocked") {
            let _ = writeln!(
                problems,
                "{} ({why}): enforce: not refused by the inspector: {}",
                name(file),
                text(&r)
            );
        }
    }
    let history = support::ok(&s.call("comfyui_get_history", json!({})).await).clone();
    s.client.cancel().await.unwrap();
    assert!(problems.is_empty(), "{problems}");
    assert_eq!(history["items"], json!([]), "nothing reached ComfyUI");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benign_entries_get_no_finding_in_either_mode() {
    let Ok(raw) = std::fs::read(inspector().join("benign/cases.json")) else {
        return;
    };
    let list: Vec<Value> = serde_json::from_slice(&raw).unwrap();
    let mut workflows: Vec<(String, String)> = Vec::new();
    for entry in &list {
        if let Some(file) = entry["file"].as_str() {
            let path = inspector().join("benign").join(file);
            workflows.push((file.to_owned(), std::fs::read_to_string(path).unwrap()));
        } else if let Some(t) = entry["template"].as_str() {
            // Built by the server itself (comfyui_create_workflow), below.
            workflows.push((format!("template {t}"), format!("template:{t}")));
        } else if let Some(prompt) = entry["prompt"].as_str() {
            workflows.push((format!("prompt {prompt:?}"), txt2img(prompt).to_string()));
        }
    }
    let packs: Vec<String> = template_packs().into_iter().map(|p| format!("\"{p}\"")).collect();
    let mut problems = String::new();
    for mode in ["audit", "enforce"] {
        let config = format!(
            "{LIMITS}security:\n  mode: {mode}\n  allowed_node_packs: [{}]\n",
            packs.join(", ")
        );
        let s = start_sim(&config, Sim::builder().extra_nodes(extra_nodes())).await;
        for (what, wf) in &workflows {
            let wf = match wf.strip_prefix("template:") {
                Some(t) => {
                    let built = s.call("comfyui_create_workflow", json!({"template": t})).await;
                    support::ok(&built).to_string()
                }
                None => wf.clone(),
            };
            let r = s.call("comfyui_validate_workflow", json!({"workflow": wf})).await;
            match &r.structured_content {
                Some(v) if r.is_error != Some(true) && finding_rules(v).is_empty() => {}
                _ => {
                    let _ = writeln!(problems, "{mode}: {what}: {}", text(&r));
                }
            }
        }
        s.client.cancel().await.unwrap();
    }
    assert!(problems.is_empty(), "{problems}");
}

/// The modules of the custom packs the built-in templates use.
fn template_packs() -> std::collections::BTreeSet<String> {
    let raw = read(&inspector().join("../workflows/custom_nodes_object_info.json"));
    raw.as_object()
        .unwrap()
        .values()
        .filter_map(|v| v["python_module"].as_str())
        .map(str::to_owned)
        .collect()
}

fn txt2img(prompt: &str) -> Value {
    json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, low quality", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 42, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}}
    })
}
