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
    data_encoding::BASE64.encode(bytes)
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

/// The header of an interlaced `side`×`side` RGB PNG with empty image
/// data: a file of 2 KB that decodes to `side² × 3` bytes.
fn hostile_png(side: u32) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 1]);
    chunk(&mut out, b"IHDR", &ihdr);
    // A comment makes it bigger than the inline budget, as the real ones
    // (2 MB of compressed zeros) are.
    let mut comment = b"Comment\0".to_vec();
    comment.resize(2000, b'x');
    chunk(&mut out, b"tEXt", &comment);
    chunk(&mut out, b"IDAT", &[0x78, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A hostile image (interlaced 16384×16384 PNG, 768 MiB of pixels) gets
/// no decode: over the image memory budget, the call is refused with the
/// budget named and the file's URL; uploads of it likewise. The server's
/// memory stays bounded (a coarse check of its peak RSS on Linux).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_images_are_refused_within_the_image_memory_budget() {
    let s = start("server:\n  max_inline_bytes: 300\n  image_memory_mb: 64\n").await;
    let out = s.sim.data_dir().join("output");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("hostile.png"), hostile_png(16_384)).unwrap();
    let calls = (0..8).map(|_| s.call("comfyui_get_image", json!({"filename": "hostile.png"})));
    for r in futures_util::future::join_all(calls).await {
        assert_eq!(r.is_error, Some(true), "{}", text(&r));
        let t = text(&r);
        assert!(t.contains("server.image_memory_mb"), "{t}");
        assert!(t.contains("hostile.png"), "the URL is given: {t}");
    }
    let up = s
        .call(
            "comfyui_upload_image",
            json!({"filename": "h.png", "image_data": b64(&hostile_png(16_384))}),
        )
        .await;
    assert_eq!(up.is_error, Some(true), "{}", text(&up));
    assert!(text(&up).contains("server.image_memory_mb"), "{}", text(&up));
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid)).unwrap_or_default();
        let peak_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        assert!(peak_kb < 300 * 1024, "peak RSS {peak_kb} kB");
    }
    s.client.cancel().await.unwrap();
}

/// Audit mode: a workflow the inspector warned about, whose submission then
/// fails for another reason than ComfyUI's validation (here a 500), comes
/// back with the inspector's warnings too, in the text and the details.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_submission_still_carries_the_inspectors_warnings() {
    let s = start("").await;
    s.sim
        .set_faults(comfy_sim::Faults::none().route("/prompt", comfy_sim::HttpFault::Status(500)));
    let wf = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "PrimitiveString", "inputs": {"value": "eval('1')"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "warned"}}
    });
    let r = s
        .call("comfyui_run_workflow", json!({"workflow": wf.to_string()}))
        .await;
    s.sim.set_faults(comfy_sim::Faults::none());
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let t = text(&r);
    assert!(t.contains("500"), "{t}");
    assert!(
        t.contains("Suspicious input in node 2 (PrimitiveString), field 'value'"),
        "the warnings are missing: {t}"
    );
}
