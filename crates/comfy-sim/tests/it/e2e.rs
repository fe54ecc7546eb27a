//! End to end: submit a workflow, watch the socket, read the history and the
//! jobs view, download the PNG and read its metadata back.

use std::time::Duration;

use comfy_sim::Sim;
use serde_json::{Value, json};

use crate::support::{
    Msg, basic_prompt, get, post_json, queue, recorded_ws, wait_history, wait_running, ws_connect, ws_next,
    ws_until_done,
};

/// Replaces the volatile parts of a WebSocket message.
fn redact(mut v: Value, prompt_id: &str) -> Value {
    fn walk(v: &mut Value, id: &str) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k == "timestamp" {
                        *x = json!(0);
                    } else {
                        walk(x, id);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, id)),
            Value::String(s) if s == id => *s = "[prompt_id]".into(),
            _ => {}
        }
    }
    walk(&mut v, prompt_id);
    v
}

#[tokio::test]
async fn basic_run_streams_the_recorded_messages_and_saves_a_png_with_metadata() {
    let sim = Sim::builder().start().await.unwrap();
    let client = "a1a1a1a1-0000-4000-8000-00000000000a";
    let mut ws = ws_connect(sim.addr(), &format!("/ws?clientId={client}")).await;
    let first = ws_next(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(
        first,
        Some(Msg::Text(
            json!({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client}})
        ))
    );

    let workflow = json!({"note": "fixture workflow placeholder", "nodes": [], "links": [], "version": 0.4});
    let body =
        json!({"prompt": basic_prompt(), "client_id": client, "extra_data": {"extra_pnginfo": {"workflow": workflow}}});
    let reply = post_json(sim.addr(), "/prompt", &body).await;
    assert_eq!(reply.status, 200);
    let answer = reply.json();
    let id = answer["prompt_id"].as_str().unwrap().to_owned();
    assert_eq!(answer["number"], json!(0));
    assert_eq!(answer["node_errors"], json!({}));

    // The socket carries the same messages, in the same order, as the recording.
    let got: Vec<Value> = ws_until_done(&mut ws)
        .await
        .into_iter()
        .map(|m| match m {
            Msg::Text(v) => redact(v, &id),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let recorded = recorded_ws("ws_06_run_basic_saveimage");
    let rec_id = "7e341d85-0028-4f7f-8599-769a3ce4f8bf";
    let want: Vec<Value> = recorded
        .iter()
        .skip(1)
        .map(|f| redact(serde_json::from_str(f["text"].as_str().unwrap()).unwrap(), rec_id))
        .collect();
    assert_eq!(got, want);

    // History and the jobs view.
    let entry = wait_history(sim.addr(), &id).await;
    assert_eq!(entry["status"]["status_str"], "success");
    assert_eq!(
        entry["outputs"]["3"]["images"][0],
        json!({"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output"})
    );
    assert_eq!(entry["prompt"][3]["client_id"], client);
    let job = get(sim.addr(), &format!("/api/jobs/{id}")).await.json();
    assert_eq!(job["status"], "completed");
    assert_eq!(job["outputs_count"], 1);
    assert_eq!(job["preview_output"]["nodeId"], "3");

    // The PNG: right size, pixels inverted from blue (0x0000ff), prompt and workflow chunks.
    let png = get(sim.addr(), "/view?filename=ComfyUI_00001_.png&type=output&subfolder=").await;
    assert_eq!(png.status, 200);
    assert_eq!(png.content_type(), Some("image/png"));
    assert_eq!(
        png.headers.get("content-disposition").unwrap(),
        "filename=\"ComfyUI_00001_.png\""
    );
    let bytes = png.bytes().to_vec();
    let dec = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = dec.read_info().unwrap();
    let texts: Vec<(String, String)> = reader
        .info()
        .uncompressed_latin1_text
        .iter()
        .map(|t| (t.keyword.clone(), t.text.clone()))
        .collect();
    assert_eq!(texts[0].0, "prompt");
    assert_eq!(serde_json::from_str::<Value>(&texts[0].1).unwrap(), basic_prompt());
    assert_eq!(texts[1].0, "workflow");
    assert_eq!(serde_json::from_str::<Value>(&texts[1].1).unwrap(), workflow);
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (64, 32));
    assert!(buf.chunks(3).all(|px| px == [255, 255, 0]), "blue inverted is yellow");

    // The identical prompt again is served from the cache, as recorded.
    let again = post_json(sim.addr(), "/prompt", &body).await.json();
    let msgs = ws_until_done(&mut ws).await;
    let cached = msgs.iter().find_map(|m| match m {
        Msg::Text(v) if v["type"] == "execution_cached" => Some(v["data"]["nodes"].clone()),
        _ => None,
    });
    assert_eq!(cached, Some(json!(["1", "2", "3"])));
    assert_eq!(again["number"], json!(1));
    let queue = get(sim.addr(), "/queue").await.json();
    assert_eq!(queue, json!({"queue_running": [], "queue_pending": []}));
}

#[tokio::test]
async fn progress_run_sends_text_progress_and_preview_frames_like_the_recording() {
    let sim = Sim::builder().start().await.unwrap();
    let client = "a1a1a1a1-0000-4000-8000-00000000000a";
    let mut ws = ws_connect(sim.addr(), &format!("/ws?clientId={client}")).await;
    let _ = ws_next(&mut ws, Duration::from_secs(5)).await;
    let prompt = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "FixtureProgress", "inputs": {"image": ["1", 0], "steps": 3, "delay": 0.01, "seed": 1}},
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "fixture_progress"}}
    });
    post_json(sim.addr(), "/prompt", &json!({"prompt": prompt, "client_id": client})).await;
    let kinds: Vec<String> = ws_until_done(&mut ws)
        .await
        .into_iter()
        .map(|m| match m {
            Msg::Text(v) => v["type"].as_str().unwrap().to_owned(),
            Msg::Binary(b) => format!("binary{}", b[3]),
            Msg::Closed => "closed".into(),
        })
        .collect();
    let want: Vec<String> = recorded_ws("ws_03_run_success_legacy_previews")
        .iter()
        .skip(1)
        .map(|f| match f["kind"].as_str() {
            Some("binary") => format!("binary{}", f["event_type"]),
            _ => serde_json::from_str::<Value>(f["text"].as_str().unwrap()).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned(),
        })
        .collect();
    assert_eq!(kinds, want);
}

#[tokio::test]
async fn upload_then_load_image_and_queue_ops() {
    let sim = Sim::builder().start().await.unwrap();
    // Multipart upload, then the same bytes again (duplicate), then different bytes (renamed).
    let png = std::fs::read(crate::support::fixtures().join("http/get_view_uploaded_input.body.png")).unwrap();
    let upload = |data: Vec<u8>| {
        let mut body = b"--XB\r\nContent-Disposition: form-data; name=\"image\"; filename=\"up.png\"\r\nContent-Type: image/png\r\n\r\n".to_vec();
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\r\n--XB--\r\n");
        body
    };
    let ct = [("Content-Type", "multipart/form-data; boundary=XB")];
    let r1 = crate::support::request(sim.addr(), "POST", "/upload/image", &ct, upload(png.clone())).await;
    assert_eq!(
        r1.bytes().as_ref(),
        br#"{"name": "up.png", "subfolder": "", "type": "input"}"#
    );
    let r2 = crate::support::request(sim.addr(), "POST", "/upload/image", &ct, upload(png.clone())).await;
    assert_eq!(r2.json()["name"], "up.png");
    let mut other = png.clone();
    other.push(0);
    let r3 = crate::support::request(sim.addr(), "POST", "/api/upload/image", &ct, upload(other)).await;
    assert_eq!(r3.json()["name"], "up (1).png");
    let info = get(sim.addr(), "/object_info/LoadImage").await.json();
    assert!(
        info["LoadImage"]["input"]["required"]["image"][0]
            .as_array()
            .unwrap()
            .contains(&json!("up.png"))
    );

    // LoadImage → ImageScaleBy → PreviewImage runs and writes to temp.
    let prompt = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "up.png"}},
        "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact", "scale_by": 2.0}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}
    });
    let id = queue(sim.addr(), &prompt).await;
    let entry = wait_history(sim.addr(), &id).await;
    let item = &entry["outputs"]["3"]["images"][0];
    assert_eq!(item["type"], "temp");
    let name = item["filename"].as_str().unwrap();
    assert!(
        name.starts_with("ComfyUI_temp_") && name.ends_with("_00001_.png"),
        "{name}"
    );
    let view = get(sim.addr(), &format!("/view?filename={name}&type=temp")).await;
    assert_eq!(view.status, 200);
    let jpeg = get(sim.addr(), &format!("/view?filename={name}&type=temp&preview=jpeg;50")).await;
    assert_eq!(jpeg.content_type(), Some("image/jpeg"));

    // Queue: a job that sleeps, two pending, delete one, clear, interrupt.
    let sleep = |seed: u64| {
        json!({"prompt": {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "FixtureSleep", "inputs": {"image": ["1", 0], "seconds": 30.0, "seed": seed}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}})
    };
    let run1 = post_json(sim.addr(), "/prompt", &sleep(1)).await.prompt_id();
    let run2 = post_json(sim.addr(), "/prompt", &sleep(2)).await.prompt_id();
    let front = post_json(
        sim.addr(),
        "/prompt",
        &json!({"prompt": sleep(3)["prompt"], "front": true}),
    )
    .await
    .json();
    assert!(front["number"].as_i64().unwrap() < 0);
    wait_running(sim.addr()).await;
    let q = get(sim.addr(), "/queue").await.json();
    assert_eq!(q["queue_running"][0][1], json!(run1));
    assert_eq!(q["queue_pending"].as_array().unwrap().len(), 2);
    assert_eq!(
        get(sim.addr(), "/prompt").await.json(),
        json!({"exec_info": {"queue_remaining": 3}})
    );
    post_json(sim.addr(), "/queue", &json!({"delete": [run2]})).await;
    assert_eq!(
        get(sim.addr(), "/queue").await.json()["queue_pending"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    post_json(sim.addr(), "/queue", &json!({"clear": true})).await;
    assert_eq!(get(sim.addr(), "/queue").await.json()["queue_pending"], json!([]));
    post_json(sim.addr(), "/interrupt", &json!({"prompt_id": "not-running"})).await;
    post_json(sim.addr(), "/interrupt", &json!({"prompt_id": run1})).await;
    let entry = wait_history(sim.addr(), &run1).await;
    assert_eq!(entry["status"]["status_str"], "error");
    assert_eq!(entry["status"]["messages"][2][0], "execution_interrupted");
    let jobs = get(sim.addr(), "/api/jobs?status=failed").await.json();
    assert_eq!(jobs["jobs"][0]["id"], json!(run1));
}

#[tokio::test]
async fn runtime_error_and_validation_error_shapes() {
    let sim = Sim::builder().start().await.unwrap();
    let prompt = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "FixtureFail", "inputs": {"image": ["1", 0], "message": "fixture failure"}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}
    });
    let id = queue(sim.addr(), &prompt).await;
    let entry = wait_history(sim.addr(), &id).await;
    let err = &entry["status"]["messages"][2];
    assert_eq!(err[0], "execution_error");
    assert_eq!(err[1]["node_id"], "2");
    assert_eq!(err[1]["exception_message"], "fixture failure\n");
    assert_eq!(err[1]["exception_type"], "RuntimeError");
    assert_eq!(err[1]["executed"], json!(["1"]));
    let job = get(sim.addr(), &format!("/api/jobs/{id}")).await.json();
    assert_eq!(job["status"], "failed");
    assert_eq!(job["execution_error"]["node_type"], "FixtureFail");

    // A simulated GPU pipeline validates model names against the model folders.
    let bad = json!({
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "missing.safetensors"}},
        "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["1", 2]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "sim"}}
    });
    let r = post_json(sim.addr(), "/prompt", &json!({"prompt": bad})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["node_errors"]["1"]["errors"][0]["type"], "value_not_in_list");
}

#[tokio::test]
async fn simulated_sampler_pipeline_reports_progress_and_decodes_to_the_latent_size() {
    let dir = std::env::temp_dir().join(format!("comfy-sim-models-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("checkpoints/sd15")).unwrap();
    // A real safetensors header: 8-byte little-endian length, then JSON.
    let header = br#"{"__metadata__": {"ss_network_dim": "16"}}"#;
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header);
    std::fs::write(dir.join("checkpoints/sd15/tiny.safetensors"), file).unwrap();
    let sim = Sim::builder()
        .models_dir(&dir)
        .steps_per_second(1000.0)
        .previews(true)
        .start()
        .await
        .unwrap();
    assert_eq!(
        get(sim.addr(), "/models/checkpoints").await.json(),
        json!(["sd15/tiny.safetensors"])
    );
    let client = "k1";
    let mut ws = ws_connect(sim.addr(), &format!("/ws?clientId={client}")).await;
    let _ = ws_next(&mut ws, Duration::from_secs(5)).await;
    let prompt = json!({
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15/tiny.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 96, "height": 64, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 5, "steps": 4, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "sim/out"}}
    });
    let r = post_json(sim.addr(), "/prompt", &json!({"prompt": prompt, "client_id": client})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let msgs = ws_until_done(&mut ws).await;
    let progress: Vec<Value> = msgs
        .iter()
        .filter_map(|m| match m {
            Msg::Text(v) if v["type"] == "progress" => Some(v["data"]["value"].clone()),
            _ => None,
        })
        .collect();
    assert_eq!(progress, vec![json!(1), json!(2), json!(3), json!(4)]);
    assert_eq!(
        msgs.iter().filter(|m| matches!(m, Msg::Binary(b) if b[3] == 1)).count(),
        4,
        "one JPEG preview per step"
    );
    let id = r.prompt_id();
    let entry = wait_history(sim.addr(), &id).await;
    assert_eq!(
        entry["outputs"]["7"]["images"][0],
        json!({"filename": "out_00001_.png", "subfolder": "sim", "type": "output"})
    );
    let png = get(sim.addr(), "/view?filename=out_00001_.png&subfolder=sim").await;
    let reader = png::Decoder::new(std::io::Cursor::new(png.bytes().to_vec()))
        .read_info()
        .unwrap();
    assert_eq!(reader.info().size(), (96, 64));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn history_pages_with_max_items_and_offset_as_comfyui_does() {
    let sim = Sim::builder().start().await.unwrap();
    let mut ids = Vec::new();
    for color in [1, 2, 3] {
        let mut p = basic_prompt();
        p["1"]["inputs"]["color"] = json!(color);
        let id = queue(sim.addr(), &p).await;
        wait_history(sim.addr(), &id).await;
        ids.push(id);
    }
    let keys = |v: Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(get(sim.addr(), "/history").await.json()), ids);
    assert_eq!(keys(get(sim.addr(), "/history?max_items=2").await.json()), ids[1..]);
    assert_eq!(
        keys(get(sim.addr(), "/history?max_items=1&offset=1").await.json()),
        ids[1..2]
    );
    assert_eq!(keys(get(sim.addr(), "/api/history?offset=2").await.json()), ids[2..]);
    let page = get(sim.addr(), "/api/jobs?sort_order=asc&limit=2&offset=1")
        .await
        .json();
    assert_eq!(
        page["pagination"],
        json!({"offset": 1, "limit": 2, "total": 3, "has_more": false})
    );
    post_json(sim.addr(), "/history", &json!({"delete": [ids[0]]})).await;
    assert_eq!(keys(get(sim.addr(), "/history").await.json()), ids[1..]);
    post_json(sim.addr(), "/history", &json!({"clear": true})).await;
    assert_eq!(get(sim.addr(), "/history").await.json(), json!({}));
}

#[tokio::test]
async fn a_long_chain_of_real_nodes_runs() {
    let sim = Sim::builder().start().await.unwrap();
    let mut prompt = serde_json::Map::new();
    prompt.insert(
        "0".into(),
        json!({"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 0}}),
    );
    for i in 1..400 {
        prompt.insert(
            i.to_string(),
            json!({"class_type": "ImageInvert", "inputs": {"image": [(i - 1).to_string(), 0]}}),
        );
    }
    prompt.insert(
        "out".into(),
        json!({"class_type": "SaveImage", "inputs": {"images": ["399", 0], "filename_prefix": "chain"}}),
    );
    let id = queue(sim.addr(), &Value::Object(prompt)).await;
    let entry = wait_history(sim.addr(), &id).await;
    assert_eq!(entry["status"]["status_str"], "success");
    assert_eq!(entry["outputs"]["out"]["images"][0]["filename"], "chain_00001_.png");
}
