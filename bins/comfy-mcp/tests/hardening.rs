//! Server hardening (files, folders, names, uploads, image memory): the
//! real binary over stdio, driven by rmcp's client, against comfy-sim.
//! Each test is an attack that once got through.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use comfy_sim::Sim;
use rmcp::model::ReadResourceRequestParams;
use serde_json::json;
use support::{ok, start, start_sim, text};

/// Names that become part of a ComfyUI path are typed safe names: dot
/// segments, separators and `:` never reach ComfyUI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_in_comfyui_paths_refuse_dot_segments_separators_and_colons() {
    let s = start("").await;
    for (tool, args, rule) in [
        ("comfyui_get_node_info", json!({"node_class": ".."}), "path.traversal"),
        ("comfyui_get_node_info", json!({"node_class": "."}), "path.traversal"),
        ("comfyui_get_node_info", json!({"node_class": "a/b"}), "path.separator"),
        ("comfyui_get_node_info", json!({"node_class": "C:x"}), "path.absolute"),
        ("comfyui_get_subgraph", json!({"subgraph_id": ".."}), "path.traversal"),
        ("comfyui_get_subgraph", json!({"subgraph_id": "x\\y"}), "path.separator"),
        (
            "comfyui_get_model_preview",
            json!({"folder": "checkpoints", "path_index": 0, "filename": "v1-5-pruned-emaonly.safetensors:stream"}),
            "path.absolute",
        ),
        (
            "comfyui_get_model_metadata",
            json!({"folder": "checkpoints", "filename": "v1-5-pruned-emaonly.safetensors:stream"}),
            "path.absolute",
        ),
        (
            "comfyui_get_model_metadata",
            json!({"folder": "checkpoints", "filename": "sub/../../x.safetensors"}),
            "path.traversal",
        ),
        ("comfyui_list_models", json!({"folder": ".."}), "path.traversal"),
    ] {
        let r = s.call(tool, args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{tool} {args}: {}", text(&r));
        assert!(text(&r).contains(rule), "{tool} {args}: {}", text(&r));
    }
    assert_eq!(s.sim.requests("/object_info/{class}"), 0, "nothing reached ComfyUI");
    assert_eq!(s.sim.requests("/global_subgraphs/.."), 0, "nothing reached ComfyUI");
    assert_eq!(s.sim.requests("/models/{folder}"), 0, "nothing reached ComfyUI");
    // Real names still work, subfolders of a model folder included.
    let r = s.call("comfyui_get_node_info", json!({"node_class": "KSampler"})).await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let r = s
        .call(
            "comfyui_get_model_preview",
            json!({"folder": "checkpoints", "path_index": 0, "filename": "SDXL/x.safetensors"}),
        )
        .await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    s.client.cancel().await.unwrap();
}

/// A model download goes only to a weight folder: `custom_nodes` would
/// make it code ComfyUI imports at its next start, `configs` is no model
/// either, and a folder ComfyUI does not list is refused. The models
/// resource has the same rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_and_the_models_resource_take_only_weight_folders() {
    let s = start_sim("", Sim::builder().steps_per_second(500.0).model_manager(true)).await;
    let url = "https://huggingface.co/a/b/resolve/main/new-model.safetensors";
    for folder in ["custom_nodes", "configs", "Custom_Nodes", "no_such_folder"] {
        let r = s
            .call("comfyui_download_model", json!({"url": url, "folder": folder}))
            .await;
        assert_eq!(r.is_error, Some(true), "{folder}: {}", text(&r));
        assert!(text(&r).contains("download.folder"), "{folder}: {}", text(&r));
    }
    let tasks = ok(&s.call("comfyui_get_download_tasks", json!({})).await).clone();
    assert_eq!(tasks["tasks"], json!([]), "no download started");
    for folder in ["custom_nodes", "configs"] {
        let err = s
            .client
            .read_resource(ReadResourceRequestParams::new(format!("comfyui://models/{folder}")))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("download.folder"), "{folder}: {err}");
    }
    // Weight folders still work.
    s.client
        .read_resource(ReadResourceRequestParams::new("comfyui://models/checkpoints"))
        .await
        .unwrap();
    let started = ok(&s
        .call("comfyui_download_model", json!({"url": url, "folder": "loras"}))
        .await)
    .clone();
    assert_eq!(started["status"], "started");
    s.client.cancel().await.unwrap();
}
