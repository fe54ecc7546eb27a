//! The node auditor and the model checker.

use std::collections::BTreeMap;

use comfy_guard::inspect::{Mode, Policy};
use comfy_guard::{audit_catalog, missing_models};
use comfy_workflow::{Limits, Workflow};
use serde_json::{Value, json};

use crate::inspect::fixtures;

#[test]
fn a_hand_made_catalog_gets_each_reason() {
    let catalog = json!({
        "KSampler": {"input": {"required": {"seed": ["INT", {"default": 0}]}}, "description": "Denoises latents."},
        "RunPythonCode": {"input": {"required": {"source": ["CODE", {}]}}},
        "Python Runner": {"input": {}},
        "Fetcher": {"input": {"required": {"where": ["STRING", {"tooltip": "will download the file"}]}}},
        "Terminal": {"input": {}},
        "Тerminal": {"input": {}},
        "Helper": {"input": {"required": {"code": ["STRING", {}]}}, "description": "Executes a snippet"},
        "Dict form": {"input": {"required": {"u": {"type": "url"}}}},
        "not an object": 7
    });
    let audit = audit_catalog(&catalog, &Policy::new(Mode::Audit));
    insta::assert_json_snapshot!(audit);
}

#[test]
fn the_recorded_catalog_flags_the_listed_api_nodes_and_spares_the_core() {
    let raw: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("comfyui/http/get_object_info.body.json")).unwrap())
            .unwrap();
    let audit = audit_catalog(&raw, &Policy::new(Mode::Audit));
    assert_eq!(audit.total_nodes, 571);
    let flagged: Vec<&str> = audit.dangerous.nodes.iter().map(|n| n.class.as_str()).collect();
    for listed in ["OpenAIChatNode", "GeminiNode", "KlingTextToVideoNode"] {
        assert!(flagged.contains(&listed), "{listed} not flagged");
    }
    for core in [
        "KSampler",
        "CheckpointLoaderSimple",
        "SaveImage",
        "LoadImage",
        "CLIPTextEncode",
        "VAEDecode",
    ] {
        assert!(!flagged.contains(&core), "{core} flagged");
        assert!(
            audit.suspicious.nodes.iter().all(|n| n.class != core),
            "{core} suspicious"
        );
    }
    assert_eq!(audit.dangerous.count, audit.dangerous.nodes.len());
    let shape = serde_json::to_value(&audit).unwrap();
    assert!(shape["dangerous"]["nodes"][0]["reason"].is_string());
}

#[test]
fn missing_models_are_named_in_the_peers_words() {
    let wf = Workflow::from_value(
        json!({
            "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "absent.safetensors"}},
            "2": {"class_type": "LoraLoader", "inputs": {"lora_name": "SDXL\\style.safetensors", "model": ["1", 0], "clip": ["1", 1]}},
            "3": {"class_type": "VAELoader", "inputs": {"vae_name": "unlisted-folder.safetensors"}}
        }),
        &Limits::DEFAULT,
    )
    .unwrap();
    assert_eq!(
        comfy_guard::models::folders_needed(&wf),
        ["checkpoints", "loras", "vae"]
    );
    let listings = BTreeMap::from([
        ("checkpoints".to_owned(), vec!["present.safetensors".to_owned()]),
        ("loras".to_owned(), vec!["SDXL/style.safetensors".to_owned()]),
    ]);
    let missing = missing_models(&wf, &listings);
    assert_eq!(missing.len(), 1);
    assert_eq!(
        (missing[0].name.as_str(), missing[0].node.as_str()),
        ("absent.safetensors", "1")
    );
    assert_eq!(
        missing[0].message,
        "Missing model: 'absent.safetensors' not found in checkpoints. Use comfyui_search_models to find and comfyui_download_model to install it."
    );
}
