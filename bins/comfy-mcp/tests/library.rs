//! Workflows to start from and assets, through the real binary over stdio
//! (rmcp's client) against comfy-sim answering as ComfyUI 0.33.0: the
//! official templates, subgraph blueprints and built-in templates listed,
//! searched and loaded as API workflows; `/api/assets` and files by hash.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use comfy_sim::{ComfyVersion, Sim};
use serde_json::{Value, json};
use support::{Session, ok, start, start_sim, text};

/// blake3 of `fixtures/comfyui-0.33/assets/input/red.png`, as the real 0.33.0 listed it.
const RED: &str = "blake3:b0b5839409fea03fe883f567310b8ecccbebb0d2132a45c9e5a712d1b8a804d0";

fn names(page: &Value) -> Vec<String> {
    let mut n: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    n.sort();
    n
}

async fn list(s: &Session, args: Value) -> Value {
    ok(&s.call("comfyui_list_workflows", args).await).clone()
}

async fn sim_0_33(assets: bool) -> (Session, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("input")).unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/comfyui-0.33/assets/input");
    for f in ["red.png", "blue.png"] {
        std::fs::copy(format!("{fixtures}/{f}"), data.path().join("input").join(f)).unwrap();
    }
    let sim = Sim::builder()
        .comfyui_version(ComfyVersion::V0_33_0)
        .data_dir(data.path())
        .assets(assets)
        .steps_per_second(500.0);
    (start_sim("", sim).await, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_templates_and_blueprints_are_listed_searched_and_loaded() {
    let (s, _data) = sim_0_33(false).await;
    // The peer's listing stays as it was.
    let packs = list(&s, json!({})).await;
    assert_eq!(packs["items"], json!([]));

    let all = list(&s, json!({"source": "templates"})).await;
    assert_eq!(
        names(&all),
        [
            "api_heygen_text_to_speech",
            "image_to_video_wan",
            "image_z_image_turbo",
            "utility_image_stitch"
        ]
    );
    let item = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "image_to_video_wan")
        .unwrap();
    assert_eq!(item["category"], "Video");
    assert_eq!(item["title"], "Wan 2.1 Image to Video");
    assert_eq!(
        names(&list(&s, json!({"source": "templates", "query": "STITCH"})).await),
        ["utility_image_stitch"]
    );
    assert_eq!(
        names(&list(&s, json!({"source": "templates", "category": "video"})).await),
        ["image_to_video_wan"]
    );
    assert_eq!(
        names(&list(&s, json!({"source": "templates", "category": "text to speech"})).await),
        ["api_heygen_text_to_speech"]
    );
    assert_eq!(
        names(&list(&s, json!({"source": "templates", "model": "z-image"})).await),
        ["image_z_image_turbo"]
    );

    let bps = list(&s, json!({"source": "blueprints"})).await;
    assert_eq!(
        names(&bps),
        [
            "Brightness and Contrast",
            "Image Blur",
            "Prompt Enhance",
            "Text to Image (Z-Image-Turbo)"
        ]
    );
    assert!(
        bps["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["category"].is_string() && i["id"].is_string())
    );
    assert_eq!(
        names(&list(&s, json!({"source": "blueprints", "category": "blur"})).await),
        ["Image Blur"]
    );
    assert_eq!(
        names(&list(&s, json!({"source": "blueprints", "model": "ae.safetensors"})).await),
        ["Text to Image (Z-Image-Turbo)"]
    );
    let every = list(&s, json!({"source": "all", "limit": 100})).await;
    assert_eq!(every["total"], 14 + 4 + 4);
    assert_eq!(
        list(&s, json!({"source": "builtin", "query": "canny"})).await["total"],
        1
    );

    // Loading: converted through the server's /object_info.
    let t = ok(&s
        .call("comfyui_get_workflow_template", json!({"name": "image_z_image_turbo"}))
        .await)
    .clone();
    assert_eq!(t["format"], "api");
    assert_eq!(t["category"], "Image");
    let wf = t["workflow"].as_object().unwrap();
    assert!(wf.values().any(|n| n["class_type"] == "KSampler"), "{t}");
    let models: Vec<&str> = t["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(models.contains(&"ae.safetensors"), "{models:?}");
    assert!(
        !t["missing_models"].as_array().unwrap().is_empty(),
        "the simulator has none of them"
    );

    let bp = ok(&s
        .call(
            "comfyui_get_workflow_template",
            json!({"source": "blueprints", "name": "text to image (z-image-turbo)"}),
        )
        .await)
    .clone();
    assert_eq!(bp["name"], "Text to Image (Z-Image-Turbo)");
    assert!(bp["category"].as_str().unwrap().contains("Text to image"));
    let wf = bp["workflow"].as_object().unwrap();
    assert!(
        wf.keys().all(|id| id.contains(':')),
        "subgraph nodes as outer:inner: {bp}"
    );
    assert!(wf.values().any(|n| n["class_type"] == "UNETLoader"));
    // A node the server lacks (the recorded 0.8.0 catalog has no GLSLShader):
    // named, and the stored form offered.
    let r = s
        .call(
            "comfyui_get_workflow_template",
            json!({"source": "blueprints", "name": "Image Blur"}),
        )
        .await;
    assert!(
        text(&r).contains("GLSLShader") && text(&r).contains("format editor"),
        "{}",
        text(&r)
    );
    let by_id = ok(&s
        .call(
            "comfyui_get_workflow_template",
            json!({"source": "blueprints", "name": bp["id"], "format": "editor"}),
        )
        .await)
    .clone();
    assert!(by_id["workflow"]["definitions"]["subgraphs"].is_array());

    let b = ok(&s
        .call(
            "comfyui_get_workflow_template",
            json!({"source": "builtin", "name": "txt2img"}),
        )
        .await)
    .clone();
    assert!(
        b["workflow"]
            .as_object()
            .unwrap()
            .values()
            .any(|n| n["class_type"] == "KSampler")
    );

    // Refusals and absences say what to do.
    let r = s
        .call("comfyui_get_workflow_template", json!({"name": "no_such"}))
        .await;
    assert!(text(&r).contains("comfyui_list_workflows"), "{}", text(&r));
    let r = s.call("comfyui_get_workflow_template", json!({"name": ".."})).await;
    assert!(text(&r).contains("path.traversal"), "{}", text(&r));
    let r = s.call("comfyui_list_workflows", json!({"category": "Image"})).await;
    assert_eq!(r.is_error, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_0_33_the_library_says_what_is_missing() {
    let s = start("").await;
    let r = s.call("comfyui_list_workflows", json!({"source": "templates"})).await;
    assert!(text(&r).contains("no official templates"), "{}", text(&r));
    let all = list(&s, json!({"source": "all"})).await;
    assert_eq!(all["total"], 14, "the built-in ones");
    assert!(all["notes"].to_string().contains("official templates"));
    let r = s.call("comfyui_list_assets", json!({})).await;
    assert!(text(&r).contains("no assets system"), "{}", text(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_listed_with_hashes_and_a_hash_names_a_file() {
    let (s, _data) = sim_0_33(true).await;
    let page = ok(&s
        .call("comfyui_list_assets", json!({"sort": "name", "order": "asc"}))
        .await)
    .clone();
    let red = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "red.png")
        .unwrap()
        .clone();
    assert_eq!(red["hash"], RED);
    assert_eq!(
        (red["folder"].as_str(), red["width"].as_u64()),
        (Some("input"), Some(8))
    );
    assert!(!page.to_string().contains("file_path"), "no machine paths: {page}");
    let only = ok(&s
        .call(
            "comfyui_list_assets",
            json!({"name_contains": "BLUE", "tags": ["input"]}),
        )
        .await)
    .clone();
    assert_eq!(names(&only), ["blue.png"]);

    // The hash stands for the file in get_image.
    let img = s.call("comfyui_get_image", json!({"filename": RED})).await;
    assert_ne!(img.is_error, Some(true), "{}", text(&img));
    assert!(img.content.iter().any(|c| c.as_image().is_some()));
    for near in [
        RED.to_uppercase(),
        format!("{RED}0"),
        RED.replace("blake3", "sha256"),
        format!(" {RED}"),
    ] {
        let r = s.call("comfyui_get_image", json!({"filename": near})).await;
        assert_eq!(r.is_error, Some(true), "{near}");
        assert!(text(&r).contains("`filename`"), "{near}: {}", text(&r));
    }
    let r = s
        .call("comfyui_get_image", json!({"filename": RED.to_uppercase()}))
        .await;
    assert!(text(&r).contains("asset hash"), "{}", text(&r));

    let (off, _d) = sim_0_33(false).await;
    let r = off.call("comfyui_list_assets", json!({})).await;
    assert!(text(&r).contains("--enable-assets"), "{}", text(&r));
}
