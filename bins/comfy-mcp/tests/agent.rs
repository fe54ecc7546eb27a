//! Agent experience, through the real binary and rmcp's client against
//! comfy-sim: discovery that fits a context window, limits on what a job
//! may cost, and the wedge watchdog.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::time::{Duration, Instant};

use comfy_sim::{Faults, JobFault, Sim};
use serde_json::{Value, json};
use support::{ok, records, start, start_sim, text};

const CONFIG: &str = "rate_limits:\n  workflow: 1000\n  generation: 1000\n  file_ops: 1000\n  read_only: 1000\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_discovery_on_the_full_recorded_catalog() {
    let s = start(CONFIG).await;
    // The peer's answer is unchanged: bare names, 571 classes.
    let all = ok(&s.call("comfyui_list_nodes", json!({"limit": 2})).await).clone();
    assert_eq!(all["total"], 571);
    assert!(all["items"][0].is_string());

    let loaders = ok(&s
        .call(
            "comfyui_list_nodes",
            json!({"category": "loaders", "output_type": "model", "fields": ["pack", "output_types"], "limit": 100}),
        )
        .await)
    .clone();
    let items = loaders["items"].as_array().unwrap();
    assert!(loaders["total"].as_u64().unwrap() < 30, "{loaders}");
    assert!(items.iter().any(|i| i["name"] == "CheckpointLoaderSimple"));
    for i in items {
        assert!(i["output_types"].as_array().unwrap().contains(&json!("MODEL")), "{i}");
    }
    let ck = items.iter().find(|i| i["name"] == "CheckpointLoaderSimple").unwrap();
    assert_eq!(ck["pack"], "comfy_core");

    let decoders = ok(&s
        .call(
            "comfyui_list_nodes",
            json!({"input_type": "LATENT", "output_type": "IMAGE", "name": "decode"}),
        )
        .await)
    .clone();
    assert!(
        decoders["items"].as_array().unwrap().contains(&json!("VAEDecode")),
        "{decoders}"
    );
    let api = ok(&s.call("comfyui_list_nodes", json!({"pack": "comfy_api_nodes"})).await).clone();
    assert_eq!(api["total"], 122);

    let bad = s.call("comfyui_list_nodes", json!({"fields": ["secrets"]})).await;
    assert_eq!(bad.is_error, Some(true));
    assert!(text(&bad).contains("fields"), "{}", text(&bad));

    // Node info: a compact summary by default, ComfyUI's entry on request.
    let summary = ok(&s.call("comfyui_get_node_info", json!({"node_class": "KSampler"})).await).clone();
    let steps = summary["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "steps")
        .unwrap();
    assert_eq!(steps["type"], "INT");
    assert_eq!(steps["default"], 20);
    assert_eq!(summary["outputs"][0]["type"], "LATENT");
    let raw = ok(&s
        .call("comfyui_get_node_info", json!({"node_class": "KSampler", "raw": true}))
        .await)
    .clone();
    assert!(raw["input"]["required"]["seed"][1]["tooltip"].is_string());
    assert!(summary.to_string().len() < raw.to_string().len());
    s.client.cancel().await.unwrap();
}

fn workflow(width: u64, steps: u64) -> String {
    json!({
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["1", 1]}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": width, "height": width, "batch_size": 1}},
        "4": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0],
              "latent_image": ["3", 0], "seed": 1, "steps": steps, "cfg": 7.0, "sampler_name": "euler",
              "scheduler": "normal", "denoise": 1.0}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "t"}},
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_limits_warn_in_audit_mode_and_refuse_in_enforce_mode() {
    let limits = "limits:\n  max_pixels: 1048576\n  max_steps: 50\n";
    let s = start(&format!("{CONFIG}{limits}")).await;
    // Within the limits: no warning.
    let fine = ok(&s
        .call(
            "comfyui_run_workflow",
            json!({"workflow": workflow(1024, 20), "wait": true}),
        )
        .await)
    .clone();
    assert_eq!(fine["status"], "completed", "{fine}");
    assert!(fine.get("warnings").is_none(), "{fine}");
    // Over two limits in audit mode: the job runs, both are named.
    let over = ok(&s
        .call(
            "comfyui_run_workflow",
            json!({"workflow": workflow(2048, 80), "wait": true}),
        )
        .await)
    .clone();
    assert_eq!(over["status"], "completed");
    let warnings: Vec<&str> = over["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(
        warnings,
        [
            "Node 3 (EmptyLatentImage): width×height 2048×2048 = 4194304 is over the limit limits.max_pixels = 1048576",
            "Node 4 (KSampler): steps 80 is over the limit limits.max_steps = 50",
        ]
    );
    // The validator reports them too, before anything is queued.
    let checked = ok(&s
        .call("comfyui_validate_workflow", json!({"workflow": workflow(2048, 20)}))
        .await)
    .clone();
    assert!(
        checked["warnings"].to_string().contains("limits.max_pixels"),
        "{checked}"
    );
    s.client.cancel().await.unwrap();

    let s = start(&format!("{CONFIG}{limits}security:\n  mode: enforce\n")).await;
    let queued = s.sim.requests("/prompt");
    let refused = s
        .call("comfyui_run_workflow", json!({"workflow": workflow(1024, 80)}))
        .await;
    assert_eq!(refused.is_error, Some(true));
    assert_eq!(
        text(&refused),
        "Workflow blocked — over the job limits: Node 4 (KSampler): steps 80 is over the limit limits.max_steps = 50"
    );
    let refused = s
        .call("comfyui_generate_image", json!({"prompt": "x", "steps": 60}))
        .await;
    assert!(text(&refused).contains("limits.max_steps = 50"), "{}", text(&refused));
    assert_eq!(s.sim.requests("/prompt"), queued, "nothing reached the queue");
    let audit = records(&s.audit_file());
    assert!(
        audit
            .iter()
            .any(|r| r["action"] == "inspected" && r["warnings"].to_string().contains("limits.max_steps")),
        "{audit:?}"
    );
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_job_is_interrupted_by_the_watchdog() {
    let config = format!("{CONFIG}comfyui:\n  timeout_read: 30\nserver:\n  tool_deadline: 60\n  stall_timeout: 2\n");
    let s = start_sim(&config, Sim::builder().steps_per_second(40.0)).await;
    s.sim.set_faults(Faults::none().job(JobFault::Hang));
    let started = Instant::now();
    let r = s
        .call(
            "comfyui_generate_image",
            json!({"prompt": "x", "steps": 2, "wait": true}),
        )
        .await;
    let elapsed = started.elapsed();
    s.sim.set_faults(Faults::none());
    let v = ok(&r).clone();
    assert_eq!(v["status"], "stalled", "{v}");
    assert!(v["message"].as_str().unwrap().contains("no progress for 2 s"), "{v}");
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(15),
        "{elapsed:?}"
    );
    // Recorded, and the GPU is free: the next job runs at once.
    let audit = records(&s.audit_file());
    let stalled: Vec<&Value> = audit.iter().filter(|r| r["action"] == "stalled").collect();
    assert_eq!(stalled.len(), 1, "{audit:?}");
    assert_eq!(stalled[0]["prompt_id"], v["prompt_id"]);
    let next = ok(&s
        .call(
            "comfyui_generate_image",
            json!({"prompt": "x", "steps": 2, "wait": true}),
        )
        .await)
    .clone();
    assert_eq!(next["status"], "completed");
    // A job nobody waits on is watched in the background the same way.
    s.sim.set_faults(Faults::none().job(JobFault::Hang));
    let submitted = ok(&s
        .call("comfyui_generate_image", json!({"prompt": "x", "steps": 2}))
        .await)
    .clone();
    assert_eq!(submitted["status"], "submitted");
    let id = submitted["prompt_id"].clone();
    let r = support::until("the detached job's stalled record", Duration::from_secs(20), || async {
        records(&s.audit_file())
            .into_iter()
            .find(|r| r["action"] == "stalled" && r["prompt_id"] == id)
    })
    .await;
    assert_eq!(r["extra"]["waited"], false, "{r}");
    s.sim.set_faults(Faults::none());
    let next = ok(&s
        .call(
            "comfyui_generate_image",
            json!({"prompt": "x", "steps": 2, "wait": true}),
        )
        .await)
    .clone();
    assert_eq!(next["status"], "completed", "the queue is free again");
    // A job that keeps reporting progress is never stalled, however long.
    let slow = start_sim(
        &format!("{CONFIG}server:\n  stall_timeout: 1\n"),
        Sim::builder().steps_per_second(2.0),
    )
    .await;
    let r = ok(&slow
        .call(
            "comfyui_generate_image",
            json!({"prompt": "x", "steps": 6, "wait": true}),
        )
        .await)
    .clone();
    assert_eq!(r["status"], "completed", "{r}");
    slow.client.cancel().await.unwrap();
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_over_the_inline_budget_are_trimmed_as_json_with_a_note() {
    let s = start(&format!("{CONFIG}server:\n  max_inline_bytes: 4000\n")).await;
    // A page: the first items that fit, and where to continue.
    let r = s
        .call(
            "comfyui_list_nodes",
            json!({"fields": ["display_name", "category", "description"], "limit": 100}),
        )
        .await;
    let page = ok(&r).clone();
    let json_text = r.content[0].as_text().unwrap().text.clone();
    assert!(json_text.len() <= 4000, "{}", json_text.len());
    assert_eq!(serde_json::from_str::<Value>(&json_text).unwrap(), page);
    let k = page["items"].as_array().unwrap().len();
    assert!(k > 0 && k < 100, "{k}");
    assert_eq!(page["has_more"], true);
    let note = r.content[1].as_text().unwrap().text.clone();
    assert!(note.contains(&format!("Continue with offset={k}")), "{note}");
    // Continuing from there gives the next classes.
    let next = ok(&s
        .call(
            "comfyui_list_nodes",
            json!({"fields": ["display_name"], "limit": 5, "offset": k}),
        )
        .await)
    .clone();
    assert_ne!(next["items"][0]["name"], page["items"][k - 1]["name"]);
    // Any other result: its largest parts shortened, still valid JSON.
    let r = s
        .call(
            "comfyui_get_node_info",
            json!({"node_class": "ModelMergeQwenImage", "raw": true}),
        )
        .await;
    let raw = ok(&r).clone();
    assert!(raw.to_string().len() <= 4000);
    assert!(raw["input"]["required"]["model1"].is_array(), "{raw}");
    assert_eq!(raw["name"], "ModelMergeQwenImage");
    assert!(r.content[1].as_text().unwrap().text.contains("server.max_inline_bytes"));
    // Within the budget, no note.
    let r = s.call("comfyui_get_queue", json!({})).await;
    assert_eq!(r.content.len(), 1);
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_workflows_come_back_with_a_verdict_and_repair_hints() {
    let s = start(CONFIG).await;
    // A near-miss model name: the closest installed checkpoint.
    let wf = workflow(512, 20).replace("v1-5-pruned-emaonly.safetensors", "v1-5-pruned-emaonly.ckpt");
    let r = s.call("comfyui_run_workflow", json!({"workflow": wf})).await;
    assert_eq!(r.is_error, Some(true));
    let shown = text(&r);
    assert!(
        shown.contains("Hints:\n- node 1: `ckpt_name` must be one of 2 choices; the closest to 'v1-5-pruned-emaonly.ckpt' is 'v1-5-pruned-emaonly.safetensors'"),
        "{shown}"
    );
    let verdict = &r.structured_content.as_ref().unwrap()["verdict"];
    assert_eq!(verdict["kind"], "validation_failed");
    let p = &verdict["problems"][0];
    assert_eq!(
        (p["node_id"].as_str(), p["input"].as_str()),
        (Some("1"), Some("ckpt_name"))
    );
    assert_eq!(p["hint"]["closest"], "v1-5-pruned-emaonly.safetensors");

    // Out of range: the allowed range.
    let r = s
        .call(
            "comfyui_run_workflow",
            json!({"workflow": workflow(512, 20).replace("\"steps\":20", "\"steps\":20000")}),
        )
        .await;
    let p = &r.structured_content.as_ref().unwrap()["verdict"]["problems"][0];
    assert_eq!(p["input"], "steps");
    assert_eq!(p["hint"]["max"], 10000, "{p}");
    // The inspector warned (audit mode: over the job limits); ComfyUI then
    // refused: the warnings come back with the refusal.
    let warnings = &r.structured_content.as_ref().unwrap()["warnings"];
    assert!(warnings.as_array().is_some_and(|w| !w.is_empty()), "{warnings}");
    assert!(text(&r).contains("Warnings:\n- "), "{}", text(&r));

    // A misspelt class: the closest installed class.
    let r = s
        .call(
            "comfyui_run_workflow",
            json!({"workflow": workflow(512, 20).replace("\"VAEDecode\"", "\"VAEDecod\"")}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    let p = &r.structured_content.as_ref().unwrap()["verdict"]["problems"][0];
    assert_eq!(p["error_type"], "unknown_class", "{p}");
    assert_eq!(p["hint"]["closest"], "VAEDecode");
    assert!(
        text(&r).contains("the closest installed one is 'VAEDecode'"),
        "{}",
        text(&r)
    );
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_resources_read_in_chunks_and_usable_as_upload_sources() {
    use rmcp::model::{ReadResourceRequestParams, ResourceContents};
    // Chunks follow the inline budget (3/4 of it, for base64): small here.
    let s = start(&format!("{CONFIG}server:\n  max_inline_bytes: 2000\n")).await;
    let b64 = data_encoding::BASE64;

    // A data: URI is an upload source (the peer refuses it).
    let wf = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 255}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "seed"}},
    });
    let done = ok(&s
        .call(
            "comfyui_run_workflow",
            json!({"workflow": wf.to_string(), "wait": true}),
        )
        .await)
    .clone();
    let img = s
        .call("comfyui_get_image", json!({"filename": done["outputs"][0]["filename"]}))
        .await;
    let png = b64
        .decode(text(&img).trim_start_matches("data:image/png;base64,").as_bytes())
        .unwrap();
    let up = s
        .call(
            "comfyui_upload_image",
            json!({"filename": "from_data_uri.png", "image_data": format!("data:image/png;base64,{}", b64.encode(&png))}),
        )
        .await;
    assert_eq!(text(&up), "Uploaded from_data_uri.png to ComfyUI input directory");

    // A job's outputs name their resources.
    let wf = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "from_data_uri.png"}},
        "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact", "scale_by": 8.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "big"}},
    });
    let done = ok(&s
        .call(
            "comfyui_run_workflow",
            json!({"workflow": wf.to_string(), "wait": true}),
        )
        .await)
    .clone();
    assert_eq!(done["status"], "completed", "{done}");
    let uri = done["outputs"][0]["uri"].as_str().unwrap().to_owned();
    assert_eq!(
        uri,
        format!("comfyui://output/{}/0", done["prompt_id"].as_str().unwrap())
    );
    let templates = s.client.list_all_resource_templates().await.unwrap();
    assert!(
        templates
            .iter()
            .any(|t| t.uri_template == "comfyui://output/{prompt_id}/{index}")
    );

    // Read it whole, chunk by chunk, and compare with get_image's bytes.
    let mut bytes = Vec::new();
    let mut next = Some(uri.clone());
    let mut reads = 0;
    let mut size = None;
    while let Some(u) = next.take() {
        let r = s
            .client
            .read_resource(ReadResourceRequestParams::new(u.clone()))
            .await
            .unwrap();
        let ResourceContents::BlobResourceContents {
            blob, mime_type, meta, ..
        } = &r.contents[0]
        else {
            panic!("not a blob: {r:?}")
        };
        assert_eq!(mime_type.as_deref(), Some("image/png"));
        let meta = &meta.as_ref().unwrap().0;
        assert_eq!(meta["offset"].as_u64().unwrap(), bytes.len() as u64);
        bytes.extend(b64.decode(blob.as_bytes()).unwrap());
        size = meta["size"].as_u64();
        next = meta["next"].as_str().map(str::to_owned);
        reads += 1;
        assert!(reads < 50);
    }
    assert_eq!(Some(bytes.len() as u64), size);
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(bytes.len() > 1500, "{}", bytes.len());
    assert!(reads > 1, "a file over the chunk size comes in chunks");

    // Bad output URIs are errors naming the problem.
    for (bad, needle) in [
        (format!("{uri}9"), "output file(s)"),
        ("comfyui://output/not-a-uuid/0".to_owned(), "prompt id"),
        (format!("{uri}?offset=99999999999"), "past the end"),
        (format!("{uri}?length=5"), "only query parameter"),
    ] {
        let err = s
            .client
            .read_resource(ReadResourceRequestParams::new(bad.clone()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{bad}: {err}");
    }

    // An output is an upload source: fed back as an input without the client.
    let up = s
        .call(
            "comfyui_upload_image",
            json!({"filename": "again.png", "image_data": uri}),
        )
        .await;
    assert_eq!(text(&up), "Uploaded again.png to ComfyUI input directory");
    let bad = s
        .call(
            "comfyui_upload_image",
            json!({"filename": "x.png", "image_data": "comfyui://output/00000000-0000-4000-8000-000000000000/0"}),
        )
        .await;
    assert!(text(&bad).contains("no finished job"), "{}", text(&bad));

    // A resource the client holds (read from this or another server) is an
    // upload source too, as resources/read returned it or embedded.
    let held = ResourceContents::BlobResourceContents {
        uri: "file:///elsewhere/held.png".to_owned(),
        mime_type: Some("image/png".to_owned()),
        blob: b64.encode(&png),
        meta: None,
    };
    let as_read = serde_json::to_string(&held).unwrap();
    let embedded = json!({"type": "resource", "resource": serde_json::to_value(&held).unwrap()}).to_string();
    for (file, source) in [("held.png", as_read), ("embedded.png", embedded)] {
        let up = s
            .call("comfyui_upload_image", json!({"filename": file, "image_data": source}))
            .await;
        assert_eq!(text(&up), format!("Uploaded {file} to ComfyUI input directory"));
    }
    for (source, needle) in [
        (json!({"uri": "file:///x"}).to_string(), "`blob` (base64) or `text`"),
        (
            json!({"uri": "file:///x", "blob": "%%%"}).to_string(),
            "not valid base64",
        ),
        (
            json!({"uri": "file:///x", "text": "hello"}).to_string(),
            "do not match the extension",
        ),
        ("{not json".to_owned(), "not valid"),
    ] {
        let bad = s
            .call(
                "comfyui_upload_image",
                json!({"filename": "x.png", "image_data": source}),
            )
            .await;
        assert_eq!(bad.is_error, Some(true));
        assert!(text(&bad).contains(needle), "{needle}: {}", text(&bad));
    }
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_from_urls_go_through_the_ssrf_safe_fetcher() {
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    // Off by default, with the key to turn it on named.
    let s = start(CONFIG).await;
    let r = s
        .call(
            "comfyui_upload_image",
            json!({"filename": "u.png", "image_data": "https://example.com/u.png"}),
        )
        .await;
    assert!(text(&r).contains("security.allowed_fetch_domains"), "{}", text(&r));
    s.client.cancel().await.unwrap();

    // A "remote" host: a local server, trusted by exact address as a LAN
    // host would be.
    let web = MockServer::start().await;
    let png = {
        // A 1x1 PNG (a whole, valid one: uploads are decoded).
        data_encoding::BASE64
            .decode(b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==")
            .unwrap()
    };
    Mock::given(path("/cat.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(png, "image/png"))
        .mount(&web)
        .await;
    Mock::given(path("/page.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html>not an image</html>", "text/html"))
        .mount(&web)
        .await;
    Mock::given(path("/huge.png"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![0u8; 2 << 20]))
        .mount(&web)
        .await;
    Mock::given(path("/to-metadata"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "http://169.254.169.254/latest/meta-data/"))
        .mount(&web)
        .await;
    Mock::given(path("/to-loopback"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "http://127.0.0.1:9/x.png"))
        .mount(&web)
        .await;
    let addr = web.address();
    let config = format!(
        "{CONFIG}security:\n  max_upload_size_mb: 1\n  allowed_fetch_domains: [\"*\"]\n  fetch_trusted_addresses: [\"{addr}\"]\n"
    );
    let s = start(&config).await;
    let up = s
        .call(
            "comfyui_upload_image",
            json!({"filename": "cat.png", "image_data": format!("{}/cat.png", web.uri())}),
        )
        .await;
    assert_eq!(text(&up), "Uploaded cat.png to ComfyUI input directory");
    for (url, needle) in [
        (format!("{}/page.png", web.uri()), "do not match the extension"),
        (format!("{}/huge.png", web.uri()), "larger than"),
        (
            format!("{}/to-metadata", web.uri()),
            "169.254.169.254, which is not a public address",
        ),
        (
            format!("{}/to-loopback", web.uri()),
            "127.0.0.1, which is not a public address",
        ),
        (
            "http://localhost:9/x.png".to_owned(),
            "the host localhost is the local machine",
        ),
        (
            "https://10.0.0.8/x.png".to_owned(),
            "10.0.0.8, which is not a public address",
        ),
        ("https://user:pw@example.com/x.png".to_owned(), "user name or password"),
        ("ftp://example.com/x.png".to_owned(), "not valid base64"),
    ] {
        let r = s
            .call("comfyui_upload_image", json!({"filename": "x.png", "image_data": url}))
            .await;
        assert_eq!(r.is_error, Some(true), "{url}");
        assert!(text(&r).contains(needle), "{url}: {}", text(&r));
    }
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_what_would_run_without_queueing() {
    let s = start(CONFIG).await;
    // An editor-format workflow (as the web page saves it) with front-end tokens.
    let editor = json!({
        "last_node_id": 3, "last_link_id": 2,
        "nodes": [
            {"id": 1, "type": "EmptyImage", "order": 0, "mode": 0, "title": "Canvas",
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}],
             "widgets_values": [640, 480, 1, 0]},
            {"id": 2, "type": "ImageInvert", "order": 1, "mode": 0,
             "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2]}], "widgets_values": []},
            {"id": 3, "type": "SaveImage", "order": 2, "mode": 0,
             "inputs": [{"name": "images", "type": "IMAGE", "link": 2}],
             "widgets_values": ["run_%date:yyyy%/%Canvas.width%w"]}
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]],
        "groups": [], "config": {}, "extra": {}, "version": 0.4
    });
    let queued = s.sim.requests("/prompt");
    let r = s.call("comfyui_dry_run", json!({"workflow": editor.to_string()})).await;
    let v = ok(&r).clone();
    assert_eq!(v["queued"], false);
    assert_eq!(v["converted_from_editor"], true);
    assert_eq!(v["valid"], true, "{v}");
    let year = super_year();
    let change = &v["changes"][0];
    assert_eq!(change["node"], "3");
    assert_eq!(change["from"], "run_%date:yyyy%/%Canvas.width%w");
    assert_eq!(change["to"], format!("run_{year}/640w"));
    assert_eq!(
        v["workflow"]["3"]["inputs"]["filename_prefix"],
        format!("run_{year}/640w")
    );
    assert_eq!(v["workflow"]["1"]["class_type"], "EmptyImage");
    assert_eq!(s.sim.requests("/prompt"), queued, "nothing was queued");

    // Problems in the final graph are reported, still without queueing.
    let bad = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8192, "height": 8192, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImag", "inputs": {"images": ["1", 0]}},
    });
    let v = ok(&s.call("comfyui_dry_run", json!({"workflow": bad.to_string()})).await).clone();
    assert_eq!(v["valid"], false);
    assert!(v["errors"].to_string().contains("SaveImag"), "{v}");
    assert!(v["warnings"].to_string().contains("limits.max_pixels"), "{v}");
    assert_eq!(v["converted_from_editor"], false);
    assert_eq!(s.sim.requests("/prompt"), queued);

    // run_workflow submits exactly what the dry run showed.
    let r = ok(&s
        .call(
            "comfyui_run_workflow",
            json!({"workflow": editor.to_string(), "wait": true}),
        )
        .await)
    .clone();
    assert!(
        r["outputs"][0]["filename"]
            .as_str()
            .unwrap()
            .starts_with(&format!("run_{year}/640w"))
            || r["outputs"][0]["subfolder"] == format!("run_{year}"),
        "{r}"
    );
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_applies_the_servers_node_replacements() {
    // A server (ComfyUI 0.14+) that replaces a retired class by an
    // installed one, renaming its input and moving its output.
    let table = json!({
        "OldInvert": [{
            "old_node_id": "OldInvert", "new_node_id": "ImageInvert", "old_widget_ids": null,
            "input_mapping": [{"new_id": "image", "old_id": "picture"}],
            "output_mapping": [{"old_idx": 1, "new_idx": 0}],
        }],
        "Retired": [{"old_node_id": "Retired", "new_node_id": "NotInstalledEither", "input_mapping": null, "output_mapping": null}],
    });
    let s = start_sim(CONFIG, Sim::builder().node_replacements(table)).await;
    let wf = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "OldInvert", "inputs": {"picture": ["1", 0], "strength": 2}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 1], "filename_prefix": "r"}},
    });
    let v = ok(&s.call("comfyui_dry_run", json!({"workflow": wf.to_string()})).await).clone();
    assert_eq!(
        v["replacements"],
        json!([{"node": "2", "from": "OldInvert", "to": "ImageInvert", "dropped_inputs": ["strength"]}]),
        "{v}"
    );
    assert_eq!(
        v["workflow"]["2"],
        json!({"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}})
    );
    assert_eq!(v["workflow"]["3"]["inputs"]["images"], json!(["2", 0]));
    assert_eq!(v["valid"], true, "the replaced graph is what is checked: {v}");
    // A class whose replacement is not installed either stays, and is reported unknown.
    let wf = json!({"1": {"class_type": "Retired", "inputs": {}}});
    let v = ok(&s.call("comfyui_dry_run", json!({"workflow": wf.to_string()})).await).clone();
    assert_eq!(v["replacements"], json!([]));
    assert!(v["errors"].to_string().contains("Retired"), "{v}");
    s.client.cancel().await.unwrap();

    // A server without the route (the recorded 0.8.0): nothing replaced.
    let s = start(CONFIG).await;
    let wf = json!({"1": {"class_type": "OldInvert", "inputs": {}}});
    let v = ok(&s.call("comfyui_dry_run", json!({"workflow": wf.to_string()})).await).clone();
    assert_eq!(v["replacements"], json!([]));
    assert_eq!(v["valid"], false);
    s.client.cancel().await.unwrap();
}

fn super_year() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Good for this century: days to years, leap days included.
    let days = secs / 86_400;
    let mut year = 1970;
    let mut left = days;
    loop {
        let len = if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
            366
        } else {
            365
        };
        if left < len {
            return year;
        }
        left -= len;
        year += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_class_names_the_pack_that_provides_it_when_manager_is_there() {
    let s = start_sim(CONFIG, Sim::builder().steps_per_second(500.0).manager(true)).await;
    let wf = json!({
        "1": {"class_type": "ImpactWildcardProcessor", "inputs": {"wildcard_text": "a cat"}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
    });
    let r = s
        .call("comfyui_run_workflow", json!({"workflow": wf.to_string()}))
        .await;
    assert_eq!(r.is_error, Some(true));
    let p = &r.structured_content.as_ref().unwrap()["verdict"]["problems"][0];
    assert_eq!(p["error_type"], "unknown_class", "{p}");
    assert_eq!(
        p["hint"]["packs"][0]["url"],
        "https://github.com/ltdrdata/ComfyUI-Impact-Pack"
    );
    assert!(
        text(&r).contains("it comes from the custom node pack 'Impact Pack'"),
        "{}",
        text(&r)
    );
    s.client.cancel().await.unwrap();
}
