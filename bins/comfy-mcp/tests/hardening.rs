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

fn encoded(format: image::ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 5) as u8, 60])
    }));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), format).unwrap();
    out
}

const PICKLE: &[u8] = b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.";

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An upload must decode as the image its extension says, whole, with
/// nothing after it: polyglots (`GIF89a` and a pickle), appended data,
/// cut-short and lying headers are refused; real images and JSON pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_must_be_one_whole_image_of_their_kind() {
    let s = start("").await;
    let mut gif_pickle = b"GIF89a".to_vec();
    gif_pickle.extend_from_slice(PICKLE);
    let mut refused: Vec<(&str, Vec<u8>, &str)> = vec![("evil.gif", gif_pickle, "upload.")];
    for (name, format) in [
        ("a.png", image::ImageFormat::Png),
        ("a.jpg", image::ImageFormat::Jpeg),
        ("a.webp", image::ImageFormat::WebP),
        ("a.gif", image::ImageFormat::Gif),
    ] {
        let img = encoded(format, 24, 16);
        let up = s
            .call(
                "comfyui_upload_image",
                json!({"filename": name, "image_data": b64(&img)}),
            )
            .await;
        assert_ne!(up.is_error, Some(true), "{name}: {}", text(&up));
        let mut appended = img.clone();
        appended.extend_from_slice(PICKLE);
        refused.push((name, appended, "upload.trailing-data"));
    }
    // A PNG whose pixel data is broken (a valid structure, wrong CRC and
    // data): only a whole decode sees it.
    let mut broken = encoded(image::ImageFormat::Png, 24, 16);
    let idat = broken.windows(4).position(|w| w == b"IDAT").unwrap();
    for b in &mut broken[idat + 4..idat + 20] {
        *b ^= 0x5A;
    }
    refused.push(("broken.png", broken, "does not decode"));
    for (name, bytes, needle) in refused {
        let r = s
            .call(
                "comfyui_upload_image",
                json!({"filename": name, "image_data": b64(&bytes)}),
            )
            .await;
        assert_eq!(r.is_error, Some(true), "{name}: {}", text(&r));
        assert!(text(&r).contains(needle), "{name}: {}", text(&r));
    }
    let json_ok = s
        .call(
            "comfyui_upload_image",
            json!({"filename": "w.json", "image_data": b64(b"{\"a\": 1}")}),
        )
        .await;
    assert_ne!(json_ok.is_error, Some(true), "{}", text(&json_ok));
    let json_bad = s
        .call(
            "comfyui_upload_image",
            json!({"filename": "w.json", "image_data": b64(b"{\"a\": ")}),
        )
        .await;
    assert_eq!(json_bad.is_error, Some(true));
    s.client.cancel().await.unwrap();
}
