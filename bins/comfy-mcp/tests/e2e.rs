//! The real binary over stdio, driven by rmcp's client, against comfy-sim.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::path::Path;

use comfy_sim::Sim;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{Value, json};
use support::{Session, ok, records, start, start_at, start_sim, text};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_queue_tools_answer_from_comfyui() {
    let s = start("").await;
    let info = s.client.peer_info().unwrap();
    let server = info.server_info.clone().unwrap();
    assert_eq!(server.name, "ComfyUI");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    assert!(info.instructions.as_deref().unwrap().contains("comfyui_run_workflow"));
    let caps = serde_json::to_value(&info.capabilities).unwrap();
    for cap in ["tools", "resources", "prompts", "logging"] {
        assert!(
            caps.get(cap).is_some(),
            "the peer's capabilities: {cap} missing in {caps}"
        );
    }
    assert!(!info.capabilities.supports_tasks(), "tasks only with tasks.enabled");
    let tools = s.client.list_all_tools().await.unwrap();
    assert!(tools.len() >= 18);

    let models = s
        .call("comfyui_list_models", json!({"folder": "checkpoints", "limit": 2}))
        .await;
    let page = ok(&models);
    assert_eq!(page["limit"], 2);
    assert_eq!(page["offset"], 0);
    assert!(page["items"].as_array().unwrap().len() <= 2);
    assert!(page["total"].as_u64().unwrap() >= 1);

    let folders = ok(&s.call("comfyui_list_model_folders", json!({})).await).clone();
    assert!(folders["items"].as_array().unwrap().iter().any(|f| f == "checkpoints"));

    let nodes = ok(&s.call("comfyui_list_nodes", json!({"limit": 5, "offset": 10})).await).clone();
    assert_eq!(nodes["items"].as_array().unwrap().len(), 5);
    assert_eq!(nodes["total"], 571);
    let mut sorted = nodes["items"].as_array().unwrap().clone();
    sorted.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    assert_eq!(&sorted, nodes["items"].as_array().unwrap());

    let ks = ok(&s.call("comfyui_get_node_info", json!({"node_class": "KSampler"})).await).clone();
    assert!(ks.to_string().contains("sampler_name"));

    let sys = ok(&s.call("comfyui_get_system_info", json!({})).await).clone();
    assert!(sys["comfyui_version"].is_string());
    assert_eq!(sys["queue"], json!({"running": 0, "pending": 0}));
    let keys: Vec<&str> = sys.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["comfyui_version", "devices", "queue"],
        "only the whitelisted fields"
    );

    let queue = ok(&s.call("comfyui_get_queue", json!({})).await).clone();
    assert!(queue.get("queue_running").is_some());
    let status = ok(&s.call("comfyui_get_queue_status", json!({})).await).clone();
    assert_eq!(status["exec_info"]["queue_remaining"], 0);
    let history = ok(&s.call("comfyui_get_history", json!({})).await).clone();
    assert_eq!(history["items"], json!([]));
    assert_eq!(history["total"], 0);
    let audit = ok(&s.call("comfyui_audit_dangerous_nodes", json!({})).await).clone();
    assert_eq!(audit["total_nodes"], 571);
    ok(&s.call("comfyui_get_server_features", json!({})).await);
    ok(&s.call("comfyui_get_settings", json!({})).await);
    ok(&s.call("comfyui_list_extensions", json!({})).await);
    ok(&s
        .call("comfyui_list_jobs", json!({"status": ["completed"], "limit": 5}))
        .await);

    let cleared = s.call("comfyui_clear_queue", json!({})).await;
    assert_eq!(text(&cleared), "Queue cleared (running=False, pending=True)");
    assert_eq!(
        cleared.structured_content,
        Some(json!({"result": "Queue cleared (running=False, pending=True)"}))
    );
    let interrupted = s.call("comfyui_interrupt", json!({})).await;
    assert_eq!(text(&interrupted), "Interrupted current execution (global)");

    let progress = ok(&s
        .call(
            "comfyui_get_progress",
            json!({"prompt_id": "00000000-0000-0000-0000-000000000000"}),
        )
        .await)
    .clone();
    assert_eq!(
        progress,
        json!({"prompt_id": "00000000-0000-0000-0000-000000000000", "status": "unknown"})
    );
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_errors_that_name_the_problem() {
    let s = start("").await;
    for (tool, args, needle) in [
        ("comfyui_list_nodes", json!({"limit": 500}), "`limit`"),
        ("comfyui_list_nodes", json!({"offset": -1}), "`offset`"),
        ("comfyui_list_models", json!({"folder": "../../etc"}), "`folder`"),
        ("comfyui_get_node_info", json!({}), "node_class"),
        ("comfyui_get_node_info", json!({"node_class": ""}), "`node_class`"),
        (
            "comfyui_get_node_info",
            json!({"node_class": "NoSuchNode"}),
            "no node class",
        ),
        ("comfyui_get_job", json!({"prompt_id": "not-a-uuid"}), "lowercase UUID"),
        ("comfyui_list_jobs", json!({"sort_by": "name"}), "`sort_by`"),
        ("comfyui_get_queue", json!({"surprise": 1}), "surprise"),
        (
            "comfyui_no_such_tool",
            json!({}),
            "Unknown tool: 'comfyui_no_such_tool'",
        ),
    ] {
        let r = s.call(tool, args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{tool} {args}: {}", text(&r));
        assert!(text(&r).contains(needle), "{tool} {args}: {}", text(&r));
        assert!(!text(&r).contains("/tmp/"), "no host paths: {}", text(&r));
    }
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_apply_per_category_and_every_call_is_audited() {
    let s = start("rate_limits:\n  read_only: 3\n  workflow: 2\n").await;
    let mut refused = Vec::new();
    for _ in 0..4 {
        let r = s.call("comfyui_get_queue", json!({})).await;
        if r.is_error == Some(true) {
            refused.push(text(&r));
        }
    }
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with("Rate limit exceeded for tool 'comfyui_get_queue'. Max 3 requests/minute. Retry in ")
    );
    // Another category has its own bucket; read-only tools share one.
    assert_ne!(s.call("comfyui_interrupt", json!({})).await.is_error, Some(true));
    assert_eq!(s.call("comfyui_list_nodes", json!({})).await.is_error, Some(true));
    let audit_file = s.audit_file();
    let Session {
        client, home: _home, ..
    } = s;
    client.cancel().await.unwrap();
    // The server closes its log after stdin closes: wait for its last records.
    support::until("13 audit records", std::time::Duration::from_secs(10), || async {
        std::fs::read_to_string(&audit_file)
            .is_ok_and(|t| t.lines().count() >= 13)
            .then_some(())
    })
    .await;
    let log = records(&audit_file);
    let called: Vec<&Value> = log.iter().filter(|r| r["action"] == "called").collect();
    let completed: Vec<&Value> = log.iter().filter(|r| r["action"] == "completed").collect();
    assert_eq!(called.len(), 6);
    assert_eq!(completed.len(), 6);
    let outcomes: Vec<&str> = completed.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["ok", "ok", "ok", "rate_limited", "ok", "rate_limited"]);
    assert!(
        completed
            .iter()
            .all(|r| r["duration_ms"].is_number() && r["transport"] == "stdio")
    );
    assert!(called[0]["client"].as_str().unwrap().starts_with("rmcp"));
    let verified = comfy_audit::chain::verify(&[audit_file]).unwrap();
    assert_eq!(verified.problem, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_submits_waits_and_reports_progress() {
    let s = start("").await;
    let submitted = ok(&s.call("comfyui_generate_image", json!({"prompt": "a red fox"})).await).clone();
    assert_eq!(submitted["status"], "submitted");
    assert_eq!(submitted["prompt_id"].as_str().unwrap().len(), 36);
    assert!(
        submitted.get("warnings").is_none(),
        "no warnings key when clean: {submitted}"
    );

    let done = ok(&s
        .call_with_progress(
            "comfyui_generate_image",
            json!({"prompt": "a red fox", "steps": 4, "wait": true, "seed": 42}),
        )
        .await)
    .clone();
    assert_eq!(done["status"], "completed", "{done}");
    let outputs = done["outputs"].as_array().unwrap();
    assert!(
        !outputs.is_empty()
            && Path::new(outputs[0]["filename"].as_str().unwrap())
                .extension()
                .is_some_and(|e| e == "png"),
        "{done}"
    );
    assert!(done["elapsed_seconds"].is_number());
    let progress = s.progress.lock().unwrap().clone();
    assert!(!progress.is_empty(), "progress notifications arrive with a token");
    // Progress counts the nodes to run (the txt2img template's 7, less
    // those an earlier run left cached); the sampler's 4 steps add their
    // fraction, in its messages.
    let total = progress[0].total.unwrap();
    assert!(
        (1.0..=7.0).contains(&total) && progress.iter().all(|p| p.total == Some(total)),
        "{progress:?}"
    );
    assert!(
        progress
            .iter()
            .any(|p| p.message.as_deref().is_some_and(|m| m.contains("(KSampler): step 4/4"))),
        "{progress:?}"
    );

    // The job's history and progress agree.
    let id = done["prompt_id"].as_str().unwrap();
    let state = ok(&s.call("comfyui_get_progress", json!({"prompt_id": id})).await).clone();
    assert_eq!(state["status"], "completed");
    let job = ok(&s.call("comfyui_get_job", json!({"prompt_id": id})).await).clone();
    assert_eq!(job["id"], id);

    let bad = s
        .call(
            "comfyui_generate_image",
            json!({"prompt": "x", "model": "nope.safetensors"}),
        )
        .await;
    assert_eq!(bad.is_error, Some(true));
    assert!(
        text(&bad).starts_with("Model 'nope.safetensors' not found in folder 'checkpoints'"),
        "{}",
        text(&bad)
    );
    let bad = s
        .call("comfyui_generate_image", json!({"prompt": "x", "width": 8}))
        .await;
    assert!(text(&bad).contains("`width`"), "{}", text(&bad));
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_workflow_inspects_reports_node_errors_and_streams() {
    let s = start("").await;
    // ComfyUI refuses an out-of-range input; the refusal names the node.
    let broken = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "ok"}}
    });
    let r = s
        .call("comfyui_run_workflow", json!({"workflow": broken.to_string()}))
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("ComfyUI refused the workflow"), "{}", text(&r));
    assert!(text(&r).contains("node 1 (EmptyImage)"), "{}", text(&r));
    let details = r
        .structured_content
        .as_ref()
        .expect("node_errors as structured content");
    assert_eq!(details["node_errors"]["1"]["class_type"], "EmptyImage", "{details}");

    let fine = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "e2e"}}
    });
    let streamed = ok(&s
        .call("comfyui_run_workflow_stream", json!({"workflow": fine.to_string()}))
        .await)
    .clone();
    assert_eq!(streamed["status"], "completed", "{streamed}");
    let kinds: Vec<&str> = streamed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"execution_start") && kinds.contains(&"execution_success"),
        "{kinds:?}"
    );

    let r = s
        .call(
            "comfyui_run_workflow",
            json!({"workflow": fine.to_string(), "partial_execution_targets": ["9"]}),
        )
        .await;
    assert_eq!(text(&r), "partial_execution_targets reference unknown node IDs: ['9']");
    let r = s.call("comfyui_run_workflow", json!({"workflow": "{not json"})).await;
    assert!(
        text(&r).starts_with("`workflow` is not a valid workflow"),
        "{}",
        text(&r)
    );

    let mut dangerous = fine.clone();
    dangerous["4"] = json!({"class_type": "PrimitiveString", "inputs": {"value": "eval('1')"}});
    let warned = ok(&s
        .call("comfyui_run_workflow", json!({"workflow": dangerous.to_string()}))
        .await)
    .clone();
    assert_eq!(warned["status"], "submitted");
    assert_eq!(
        warned["warnings"],
        json!(["Suspicious input in node 4 (PrimitiveString), field 'value'"])
    );
    s.client.cancel().await.unwrap();

    // Enforce mode refuses the same workflow before it reaches ComfyUI.
    let s = start("security:\n  mode: enforce\n").await;
    let r = s
        .call("comfyui_run_workflow", json!({"workflow": dangerous.to_string()}))
        .await;
    assert_eq!(r.is_error, Some(true));
    assert_eq!(
        text(&r),
        "Workflow blocked — dangerous nodes: [\"Suspicious input in node 4 (PrimitiveString), field 'value'\"]"
    );
    let history = ok(&s.call("comfyui_get_history", json!({})).await).clone();
    assert_eq!(history["items"], json!([]), "nothing was submitted");
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_upload_transform_upscale_and_come_back() {
    let s = start("").await;
    let png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/comfyui/http/get_view_output_png.body.png"
    ))
    .unwrap();
    let b64 = data_encoding::BASE64.encode(&png);
    let up = s
        .call(
            "comfyui_upload_image",
            json!({"filename": "cat.png", "image_data": b64}),
        )
        .await;
    assert_eq!(text(&up), "Uploaded cat.png to ComfyUI input directory");
    assert_eq!(
        up.structured_content,
        Some(json!({"result": "Uploaded cat.png to ComfyUI input directory"}))
    );

    for (args, needle) in [
        (json!({"filename": "../cat.png", "image_data": b64}), "`filename`"),
        (json!({"filename": "cat.exe", "image_data": b64}), "`filename`"),
        (
            json!({"filename": "cat.jpg", "image_data": b64}),
            "do not match the extension",
        ),
        (
            json!({"filename": "cat.png", "image_data": format!("data:image/png,{b64}")}),
            "must be a base64 data: URI",
        ),
        (
            json!({"filename": "cat.jpg", "image_data": format!("data:image/jpeg;base64,{b64}")}),
            "do not match the extension",
        ),
        (json!({"filename": "cat.png", "image_data": "!!!"}), "not valid base64"),
        (
            json!({"filename": "cat.png", "image_data": b64, "subfolder": "a/../../b"}),
            "`subfolder`",
        ),
    ] {
        let r = s.call("comfyui_upload_image", args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{args}");
        assert!(text(&r).contains(needle), "{args}: {}", text(&r));
    }

    let done = ok(&s
        .call(
            "comfyui_transform_image",
            json!({"image": "cat.png", "prompt": "a painting", "steps": 2, "wait": true}),
        )
        .await)
    .clone();
    assert_eq!(done["status"], "completed", "{done}");
    let mask = s
        .call(
            "comfyui_upload_mask",
            json!({"filename": "mask.png", "mask_data": b64, "original_image": "cat.png"}),
        )
        .await;
    assert_eq!(
        text(&mask),
        "Uploaded mask mask.png to ComfyUI input directory",
        "{}",
        text(&mask)
    );
    let r = s
        .call(
            "comfyui_upload_mask",
            json!({"filename": "mask.png", "mask_data": b64, "original_image": "../cat.png"}),
        )
        .await;
    assert!(text(&r).contains("`original_image`"), "{}", text(&r));
    let inpainted = ok(&s
        .call(
            "comfyui_inpaint_image",
            json!({"image": "cat.png", "mask": "mask.png", "prompt": "a hat", "steps": 2, "wait": true}),
        )
        .await)
    .clone();
    assert_eq!(inpainted["status"], "completed", "{inpainted}");
    let upscaled = ok(&s
        .call("comfyui_upscale_image", json!({"image": "cat.png", "wait": true}))
        .await)
    .clone();
    assert_eq!(upscaled["status"], "completed", "{upscaled}");
    let r = s
        .call(
            "comfyui_transform_image",
            json!({"image": "../secret.png", "prompt": "x"}),
        )
        .await;
    assert!(text(&r).contains("`image`"), "{}", text(&r));

    let name = done["outputs"][0]["filename"].as_str().unwrap().to_owned();
    let image = s.call("comfyui_get_image", json!({"filename": name})).await;
    assert_ne!(image.is_error, Some(true), "{}", text(&image));
    assert!(text(&image).starts_with("data:image/png;base64,"));
    let decoded = data_encoding::BASE64
        .decode(text(&image).trim_start_matches("data:image/png;base64,").as_bytes())
        .unwrap();
    assert!(
        decoded.starts_with(b"\x89PNG\r\n\x1a\n") && decoded.len() > 100,
        "streamed encoding is whole"
    );
    assert!(
        image.content.iter().any(|c| c.as_image().is_some()),
        "image content for the client to show"
    );
    let url = s
        .call(
            "comfyui_get_image",
            json!({"filename": name, "response_format": "url", "base_url_override": "https://cdn.example/comfy/"}),
        )
        .await;
    assert_eq!(
        text(&url),
        format!("https://cdn.example/comfy/view?filename={name}&subfolder=&type=output")
    );
    let r = s
        .call("comfyui_get_image", json!({"filename": name, "preview_quality": 50}))
        .await;
    assert!(text(&r).contains("needs `preview_format`"));

    let outputs = ok(&s.call("comfyui_list_outputs", json!({})).await).clone();
    assert!(
        outputs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["filename"] == name.as_str()),
        "{outputs}"
    );
    let embedded = ok(&s
        .call("comfyui_get_workflow_from_image", json!({"filename": name}))
        .await)
    .clone();
    assert!(embedded["prompt"].is_object(), "{embedded}");
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_subgraph_settings_and_bulk_cancel_tools() {
    let s = start("").await;
    let detailed = ok(&s.call("comfyui_list_models_detailed", json!({})).await).clone();
    assert_eq!(detailed["folder"], "checkpoints");
    assert_eq!(detailed["count"], detailed["models"].as_array().unwrap().len());
    let preview = ok(&s
        .call(
            "comfyui_get_model_preview",
            json!({"folder": "checkpoints", "path_index": 0, "filename": "v1-5-pruned-emaonly.safetensors"}),
        )
        .await)
    .clone();
    assert_eq!(preview["available"], false);
    let r = s
        .call(
            "comfyui_get_model_preview",
            json!({"folder": "checkpoints", "path_index": 0, "filename": "../../x"}),
        )
        .await;
    assert!(text(&r).contains("`filename`"), "{}", text(&r));
    let r = s
        .call(
            "comfyui_get_model_metadata",
            json!({"folder": "..", "filename": "a.safetensors"}),
        )
        .await;
    assert!(text(&r).contains("`folder`"), "{}", text(&r));

    ok(&s.call("comfyui_list_workflows", json!({})).await);
    assert_eq!(ok(&s.call("comfyui_list_subgraphs", json!({})).await)["count"], 0);
    assert_eq!(
        ok(&s.call("comfyui_get_subgraph", json!({"subgraph_id": "nope"})).await).clone(),
        json!({"available": false, "subgraph_id": "nope"})
    );

    let updated = ok(&s
        .call("comfyui_update_settings", json!({"settings": {"Comfy.Test.Value": 3}}))
        .await)
    .clone();
    assert_eq!(
        updated,
        json!({"status": "updated", "settings": {"Comfy.Test.Value": 3}})
    );
    let settings = ok(&s.call("comfyui_get_settings", json!({})).await).clone();
    assert_eq!(settings["Comfy.Test.Value"], 3);
    let r = s.call("comfyui_update_settings", json!({"settings": {}})).await;
    assert!(text(&r).contains("non-empty"), "{}", text(&r));

    let id = "00000000-0000-0000-0000-000000000000";
    let bulk = ok(&s.call("comfyui_cancel_jobs", json!({"job_ids": [id]})).await).clone();
    assert_eq!(bulk["cancelled"], 0);
    assert_eq!(bulk["result"][id], "not queued or running");
    let r = s.call("comfyui_cancel_jobs", json!({"job_ids": ["x"]})).await;
    assert!(text(&r).contains("lowercase UUID"), "{}", text(&r));
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_are_listed_and_read_through_the_stack() {
    use rmcp::model::{ReadResourceRequestParams, ResourceContents};
    let s = start("").await;
    let resources = s.client.list_all_resources().await.unwrap();
    // The skills' files follow (tests/surface.rs).
    let uris: Vec<&str> = resources
        .iter()
        .map(|r| r.uri.as_str())
        .filter(|u| !u.starts_with("skill://"))
        .collect();
    assert_eq!(
        uris,
        [
            "comfyui://nodes/installed",
            "comfyui://queue",
            "comfyui://system",
            "comfyui://settings"
        ]
    );
    let templates = s.client.list_all_resource_templates().await.unwrap();
    assert_eq!(templates[0].uri_template, "comfyui://models/{folder}");

    let read = |uri: &str| {
        let params = ReadResourceRequestParams::new(uri.to_owned());
        let client = &s.client;
        async move { client.read_resource(params).await }
    };
    let json_of = |contents: &[ResourceContents]| -> Value {
        match &contents[0] {
            ResourceContents::TextResourceContents { text, mime_type, .. } => {
                assert_eq!(mime_type.as_deref(), Some("application/json"));
                serde_json::from_str(text).unwrap()
            }
            other => panic!("not text: {other:?}"),
        }
    };
    let queue = json_of(&read("comfyui://queue").await.unwrap().contents);
    assert_eq!(queue, json!({"running": 0, "pending": 0}));
    let nodes = json_of(&read("comfyui://nodes/installed").await.unwrap().contents);
    assert_eq!(nodes["count"], 571);
    let models = json_of(&read("comfyui://models/checkpoints").await.unwrap().contents);
    assert_eq!(models["folder"], "checkpoints");
    assert!(models["count"].as_u64().unwrap() >= 1);
    assert!(json_of(&read("comfyui://system").await.unwrap().contents)["comfyui_version"].is_string());
    assert!(read("comfyui://models/../../etc").await.is_err());
    assert!(read("comfyui://nope").await.is_err());
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_wait_ends_with_timeout_and_the_prompt_id() {
    let s = start_at("comfyui:\n  timeout_read: 1\n", 20.0).await;
    let started = std::time::Instant::now();
    let r = ok(&s
        .call(
            "comfyui_generate_image",
            json!({"prompt": "slow", "steps": 100, "wait": true}),
        )
        .await)
    .clone();
    assert_eq!(r["status"], "timeout", "{r}");
    let id = r["prompt_id"].as_str().unwrap().to_owned();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // The job was left running for the caller to poll.
    let state = ok(&s.call("comfyui_get_progress", json!({"prompt_id": id})).await).clone();
    assert!(
        matches!(state["status"].as_str(), Some("running" | "queued")),
        "{state}"
    );
    ok(&s.call("comfyui_cancel_job", json!({"prompt_id": id})).await);
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_interrupts_its_job() {
    let s = start_at("", 20.0).await;
    let Value::Object(args) = json!({"prompt": "slow", "steps": 100, "wait": true}) else {
        unreachable!()
    };
    let call = s
        .client
        .call_tool(CallToolRequestParams::new("comfyui_generate_image").with_arguments(args));
    // Dropping the call sends notifications/cancelled for it.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(700), call)
            .await
            .is_err()
    );
    support::until(
        "the job to stop after the call was cancelled",
        std::time::Duration::from_secs(5),
        || async {
            let queue = ok(&s.call("comfyui_get_queue", json!({})).await).clone();
            let busy =
                queue["queue_running"].as_array().unwrap().len() + queue["queue_pending"].as_array().unwrap().len();
            (busy == 0).then_some(())
        },
    )
    .await;
    let history = ok(&s.call("comfyui_get_history", json!({})).await).clone();
    let status = &history["items"][0]["status"];
    assert_ne!(status["status_str"], "success", "{history}");
    s.client.cancel().await.unwrap();
}

/// Representative results, snapshotted (ids and times redacted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn representative_results() {
    let s = start("").await;
    let mut results = serde_json::Map::new();
    for (name, tool, args) in [
        ("list_models", "comfyui_list_models", json!({"limit": 5})),
        ("list_model_folders", "comfyui_list_model_folders", json!({"limit": 3})),
        ("get_queue_status", "comfyui_get_queue_status", json!({})),
        ("clear_queue", "comfyui_clear_queue", json!({"clear_running": true})),
        (
            "generate_wait",
            "comfyui_generate_image",
            json!({"prompt": "a fox", "steps": 2, "wait": true, "seed": 1}),
        ),
        ("bad_limit", "comfyui_list_nodes", json!({"limit": 101})),
        ("unknown_folder", "comfyui_list_models", json!({"folder": "nope"})),
    ] {
        let mut r = serde_json::to_value(s.call(tool, args).await).unwrap();
        // Where the job was when it ended depends on timing; the rest does not.
        if let Some(sc) = r.get_mut("structuredContent").and_then(Value::as_object_mut) {
            for key in ["current_node", "step", "total_steps"] {
                sc.remove(key);
            }
        }
        results.insert(name.to_owned(), r);
    }
    insta::assert_json_snapshot!(results, {
        ".generate_wait.structuredContent.prompt_id" => "[prompt id]",
        ".generate_wait.structuredContent.outputs[].uri" => "[comfyui://output/{prompt id}/0]",
        ".generate_wait.structuredContent.elapsed_seconds" => "[seconds]",
        ".generate_wait.content[0].text" => "[json text of structuredContent]",
    });
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_over_the_budget_comes_as_a_preview_and_a_link() {
    let s = start("server:\n  max_inline_bytes: 300\n").await;
    let done = ok(&s
        .call(
            "comfyui_generate_image",
            json!({"prompt": "big", "steps": 2, "width": 640, "height": 512, "wait": true}),
        )
        .await)
    .clone();
    let name = done["outputs"][0]["filename"].as_str().unwrap().to_owned();
    let r = s.call("comfyui_get_image", json!({"filename": name})).await;
    let sc = ok(&r).clone();
    assert!(
        sc["result"]
            .as_str()
            .unwrap()
            .contains(&format!("/view?filename={name}&subfolder=&type=output")),
        "{sc}"
    );
    assert!(sc["size_bytes"].as_u64().unwrap() > 300);
    let (w, h) = (
        sc["preview"]["width"].as_u64().unwrap(),
        sc["preview"]["height"].as_u64().unwrap(),
    );
    assert!(w <= 1024 && h <= 1024 && w > h, "aspect kept: {w}x{h}");
    let image = r.content.iter().find_map(|c| c.as_image()).expect("a preview image");
    assert_eq!(image.mime_type, "image/jpeg");
    assert!(
        r.content.iter().any(|c| c.as_resource_link().is_some()),
        "a link to the full image"
    );
    assert!(text(&r).contains("over the inline budget of 300 bytes"), "{}", text(&r));
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_tools_presets_guides_and_prompts() {
    use rmcp::model::GetPromptRequestParams;
    let s = start("").await;
    let wf = ok(&s
        .call(
            "comfyui_create_workflow",
            json!({"template": "txt2img", "params": "{\"prompt\": \"a castle\", \"seed\": 7}"}),
        )
        .await)
    .clone();
    assert_eq!(wf["3"]["inputs"]["text"], "a castle");
    let r = s.call("comfyui_create_workflow", json!({"template": "nope"})).await;
    assert!(
        text(&r).starts_with("Unknown template 'nope'. Available: controlnet_canny, "),
        "{}",
        text(&r)
    );
    let r = s
        .call(
            "comfyui_create_workflow",
            json!({"template": "txt2img", "params": "[1]"}),
        )
        .await;
    assert!(text(&r).starts_with("params must be a JSON object"), "{}", text(&r));

    let modified = ok(&s
        .call("comfyui_modify_workflow", json!({"workflow": wf.to_string(), "operations": "[{\"op\": \"set_input\", \"node_id\": \"3\", \"input_name\": \"text\", \"value\": \"a dog\"}]"}))
        .await)
    .clone();
    assert_eq!(modified["3"]["inputs"]["text"], "a dog");
    let r = s
        .call(
            "comfyui_modify_workflow",
            json!({"workflow": wf.to_string(), "operations": "[{\"op\": \"remove_node\", \"node_id\": \"99\"}]"}),
        )
        .await;
    assert!(
        text(&r).contains("Operation 0") || text(&r).contains("operation 0"),
        "{}",
        text(&r)
    );

    let valid = ok(&s
        .call("comfyui_validate_workflow", json!({"workflow": wf.to_string()}))
        .await)
    .clone();
    assert_eq!(valid["valid"], true, "{valid}");
    assert_eq!(valid["pipeline"], "txt2img");
    let mut broken = wf.clone();
    broken["3"]["class_type"] = json!("NotInstalledNode");
    let invalid = ok(&s
        .call("comfyui_validate_workflow", json!({"workflow": broken.to_string()}))
        .await)
    .clone();
    assert_eq!(invalid["valid"], false);
    assert!(
        invalid["errors"][0]
            .as_str()
            .unwrap()
            .contains("class_type 'NotInstalledNode' not installed on server"),
        "{invalid}"
    );

    let analysis = ok(&s
        .call("comfyui_analyze_workflow", json!({"workflow": wf.to_string()}))
        .await)
    .clone();
    assert_eq!(analysis["pipeline"], "txt2img");
    assert_eq!(analysis["models"][0]["type"], "checkpoints");
    assert!(analysis["flow"][0]["inputs"].is_object());
    let summary = s
        .call("comfyui_summarize_workflow", json!({"workflow": wf.to_string()}))
        .await;
    assert!(
        text(&summary).starts_with("Workflow: 7 nodes\nPipeline: txt2img"),
        "{}",
        text(&summary)
    );
    let mermaid = s
        .call(
            "comfyui_summarize_workflow",
            json!({"workflow": wf.to_string(), "output_format": "mermaid"}),
        )
        .await;
    assert!(text(&mermaid).starts_with("flowchart LR"));

    let presets = ok(&s
        .call(
            "comfyui_get_model_presets",
            json!({"model_name": "sd_xl_base_1.0.safetensors"}),
        )
        .await)
    .clone();
    assert_eq!(presets["family"], "sdxl");
    let r = s.call("comfyui_get_model_presets", json!({})).await;
    assert_eq!(text(&r), "Provide either model_name or model_family");
    let guide = ok(&s
        .call("comfyui_get_prompting_guide", json!({"model_family": "flux"}))
        .await)
    .clone();
    assert_eq!(guide["family"], "flux");
    let r = s
        .call("comfyui_get_prompting_guide", json!({"model_family": "bogus"}))
        .await;
    assert_eq!(
        text(&r),
        "Unknown model family: bogus. Supported families: cascade, flux, sd15, sd3, sdxl"
    );

    let prompts = s.client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "txt2img_prompt",
            "img2img_prompt",
            "inpaint_prompt",
            "upscale_prompt",
            "gen",
            "workflow",
            "workflows",
            "status",
            "progress",
            "history",
            "models",
            "troubleshooting"
        ]
    );
    // A skill as a prompt: its SKILL.md body with the arguments in place.
    let Value::Object(args) = json!({"prompt": "a red fox", "model": "sdxl.safetensors"}) else {
        unreachable!()
    };
    let got = s
        .client
        .get_prompt(GetPromptRequestParams::new("gen").with_arguments(args))
        .await
        .unwrap();
    let first = serde_json::to_value(&got.messages[0]).unwrap();
    let body = first["content"]["text"].as_str().unwrap();
    assert!(body.starts_with("# Generate an image"), "{body}");
    assert!(
        body.contains("The request: prompt: a red fox\nmodel: sdxl.safetensors"),
        "{body}"
    );
    assert!(!body.contains("$ARGUMENTS"));
    assert!(
        got.description
            .unwrap()
            .starts_with("Generate an image from a text prompt")
    );
    let err = s
        .client
        .get_prompt(GetPromptRequestParams::new("gen"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("prompt gen needs the argument `prompt`"),
        "{err}"
    );
    let got = s
        .client
        .get_prompt(GetPromptRequestParams::new("status"))
        .await
        .unwrap();
    let first = serde_json::to_value(&got.messages[0]).unwrap();
    assert!(
        first["content"]["text"]
            .as_str()
            .unwrap()
            .contains("comfyui_get_queue()")
    );
    let Value::Object(args) = json!({"prompt": "a cat"}) else {
        unreachable!()
    };
    let got = s
        .client
        .get_prompt(GetPromptRequestParams::new("txt2img_prompt").with_arguments(args))
        .await
        .unwrap();
    let first = serde_json::to_value(&got.messages[0]).unwrap();
    assert!(
        first["content"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Use comfyui_generate_image"),
        "{first}"
    );
    assert!(
        s.client
            .get_prompt(GetPromptRequestParams::new("txt2img_prompt"))
            .await
            .is_err()
    );
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_groups_limit_the_surface() {
    let s = start("tools:\n  groups: [jobs, settings]\n").await;
    let names: Vec<String> = s
        .client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"comfyui_get_queue".to_owned()) && names.contains(&"comfyui_get_settings".to_owned()));
    assert!(
        !names
            .iter()
            .any(|n| n == "comfyui_generate_image" || n == "comfyui_list_nodes"),
        "{names:?}"
    );
    assert_eq!(names.len(), 12);
    let r = s.call("comfyui_list_nodes", json!({})).await;
    assert_eq!(
        text(&r),
        "comfyui_list_nodes is not enabled on this server (tools.groups does not include 'discovery')"
    );
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_downloads_go_through_the_validator_and_model_manager() {
    let url = "https://huggingface.co/org/repo/resolve/main/new-model.safetensors";
    // Without Model-Manager: the URL is still checked first, then a clear error.
    let s = start("").await;
    let r = s
        .call(
            "comfyui_download_model",
            json!({"url": "http://huggingface.co/a/b/resolve/main/x.safetensors", "folder": "checkpoints"}),
        )
        .await;
    assert!(text(&r).contains("https"), "{}", text(&r));
    let r = s
        .call("comfyui_download_model", json!({"url": url, "folder": "checkpoints"}))
        .await;
    assert!(
        text(&r).starts_with("ComfyUI-Model-Manager is not installed"),
        "{}",
        text(&r)
    );
    s.client.cancel().await.unwrap();

    let s = start_sim("", Sim::builder().steps_per_second(500.0).model_manager(true)).await;
    for (args, needle) in [
        (
            json!({"url": "https://evil.example/x.safetensors", "folder": "checkpoints"}),
            "evil.example",
        ),
        (
            json!({"url": "https://127.0.0.1/x.safetensors", "folder": "checkpoints"}),
            "IP",
        ),
        (
            json!({"url": "https://user:pw@huggingface.co/a/b/resolve/main/x.safetensors", "folder": "checkpoints"}),
            "user",
        ),
        (
            json!({"url": "https://huggingface.co/a/b/resolve/main/x.exe", "folder": "checkpoints"}),
            ".exe",
        ),
        (
            json!({"url": url, "folder": "checkpoints", "filename": "../../x.safetensors"}),
            "file name",
        ),
        (json!({"url": url, "folder": "../etc"}), "`folder`"),
        (
            json!({"url": "https://huggingface.co/a/b/resolve/main/v1-5-pruned-emaonly.safetensors", "folder": "checkpoints"}),
            "File already exists",
        ),
    ] {
        let r = s.call("comfyui_download_model", args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{args}");
        assert!(text(&r).contains(needle), "{args}: {}", text(&r));
    }
    let started = ok(&s
        .call("comfyui_download_model", json!({"url": url, "folder": "checkpoints"}))
        .await)
    .clone();
    assert_eq!(started["status"], "started");
    assert_eq!(started["filename"], "new-model.safetensors");
    let id = started["task_id"].as_str().unwrap().to_owned();
    let pickle = ok(&s
        .call(
            "comfyui_download_model",
            json!({"url": "https://huggingface.co/a/b/resolve/main/old.ckpt", "folder": "checkpoints"}),
        )
        .await)
    .clone();
    assert!(pickle["warnings"][0].as_str().unwrap().contains("pickle"), "{pickle}");

    let tasks = ok(&s.call("comfyui_get_download_tasks", json!({})).await).clone();
    assert!(
        tasks["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["taskId"] == id.as_str()),
        "{tasks}"
    );
    let cancelled = ok(&s.call("comfyui_cancel_download", json!({"task_id": id})).await).clone();
    assert_eq!(cancelled["success"], true);
    let r = s.call("comfyui_cancel_download", json!({"task_id": id})).await;
    assert!(text(&r).contains("not found"), "{}", text(&r));
    let r = s.call("comfyui_cancel_download", json!({"task_id": "../x"})).await;
    assert!(text(&r).contains("`task_id`"), "{}", text(&r));
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_nodes_through_the_manager_with_gates() {
    let s = start("").await;
    let r = s
        .call(
            "comfyui_install_custom_node",
            json!({"node_id": "https://evil.example/pack.git"}),
        )
        .await;
    assert!(text(&r).contains("`node_id`"), "{}", text(&r));
    let r = s
        .call("comfyui_install_custom_node", json!({"node_id": "comfyui-easynodes"}))
        .await;
    assert!(text(&r).starts_with("ComfyUI-Manager is not installed"), "{}", text(&r));
    s.client.cancel().await.unwrap();

    let s = start_sim("", Sim::builder().steps_per_second(500.0).manager(true)).await;
    for bad in ["../x", "a b", "", ".hidden", "x/y", "pack;rm"] {
        let r = s.call("comfyui_install_custom_node", json!({"node_id": bad})).await;
        assert_eq!(r.is_error, Some(true), "{bad}");
    }
    let r = s
        .call(
            "comfyui_install_custom_node",
            json!({"node_id": "comfyui-easynodes", "version": "1.2.7"}),
        )
        .await;
    let said = text(&r);
    assert!(
        said.starts_with("Node pack 'comfyui-easynodes' operation completed. Restart required"),
        "{said}"
    );
    assert!(said.contains("Security audit: 571 nodes scanned"), "{said}");
    let found = ok(&s.call("comfyui_search_custom_nodes", json!({"query": "easy"})).await).clone();
    assert_eq!(found["items"][0]["id"], "comfyui-easynodes");
    assert_eq!(found["items"][0]["version"], "1.2.7");
    assert_eq!(found["query"], "easy");
    let status = ok(&s.call("comfyui_get_custom_node_status", json!({})).await).clone();
    assert_eq!(status["is_processing"], false);
    let r = s
        .call(
            "comfyui_update_custom_node",
            json!({"node_id": "comfyui-easynodes", "restart": true}),
        )
        .await;
    assert!(text(&r).contains("ComfyUI restarted."), "{}", text(&r));
    let r = s
        .call("comfyui_uninstall_custom_node", json!({"node_id": "comfyui-easynodes"}))
        .await;
    assert_eq!(text(&r), "Node pack 'comfyui-easynodes' operation completed.");
    let found = ok(&s.call("comfyui_search_custom_nodes", json!({"query": "easy"})).await).clone();
    assert_eq!(found["total"], 0);
    s.client.cancel().await.unwrap();

    // Enforce mode: only packs on the allowlist.
    let s = start_sim(
        "security:\n  mode: enforce\n  allowed_custom_nodes: [comfyui-kjnodes]\n",
        Sim::builder().steps_per_second(500.0).manager(true),
    )
    .await;
    let r = s
        .call("comfyui_install_custom_node", json!({"node_id": "comfyui-easynodes"}))
        .await;
    assert_eq!(
        text(&r),
        "Refusing to install node pack 'comfyui-easynodes' in enforce mode: it is not in security.allowed_custom_nodes"
    );
    let r = s
        .call("comfyui_install_custom_node", json!({"node_id": "comfyui-kjnodes"}))
        .await;
    assert!(
        text(&r).starts_with("Node pack 'comfyui-kjnodes' operation completed."),
        "{}",
        text(&r)
    );
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_search_on_civitai_and_huggingface_sends_each_token_home() {
    let config = "model_search:\n  civitai_api_base: \"{sim}\"\n  huggingface_api_base: \"{sim}\"\n  civitai_api_key: civ-key-123\n  huggingface_token: hf_tokenvalue456\n  max_search_results: 3\n";
    let s = start_sim(config, Sim::builder().model_search(true)).await;
    let found = ok(&s.call("comfyui_search_models", json!({"query": "dream"})).await).clone();
    assert_eq!(found["source"], "civitai");
    assert_eq!(found["items"][0]["name"], "DreamShaper");
    assert_eq!(found["items"][0]["filename"], "dreamshaper_8.safetensors");
    assert!(
        found["items"][0]["url"]
            .as_str()
            .unwrap()
            .contains("/api/download/models/")
    );
    assert_eq!(found["items"][0]["size_mb"], 2033.8);
    let loras = ok(&s
        .call(
            "comfyui_search_models",
            json!({"query": "a", "model_type": "LORA", "limit": 10}),
        )
        .await)
    .clone();
    assert!(
        loras["items"].as_array().unwrap().iter().all(|i| i["type"] == "LORA"),
        "{loras}"
    );
    assert_eq!(loras["limit"], 3, "capped at max_search_results");
    let hf = ok(&s
        .call(
            "comfyui_search_models",
            json!({"query": "detail", "source": "huggingface"}),
        )
        .await)
    .clone();
    assert_eq!(hf["items"][0]["name"], "sim/detail-tweaker");
    assert_eq!(hf["items"][0]["filename"], "add_detail.safetensors");
    assert!(
        hf["items"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/sim/detail-tweaker/resolve/main/add_detail.safetensors")
    );
    let r = s.call("comfyui_search_models", json!({"query": ""})).await;
    assert!(text(&r).contains("`query`"), "{}", text(&r));
    let seen = s.sim.search_authorizations();
    assert!(
        seen.iter()
            .any(|a| a.starts_with("GET /api/v1/models: Bearer civ-key-123")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .filter(|a| a.contains("civ-key"))
            .all(|a| a.starts_with("GET /api/v1/")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .filter(|a| a.contains("hf_token"))
            .all(|a| a.starts_with("GET /api/models")),
        "{seen:?}"
    );
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_format_workflows_are_converted_for_every_workflow_tool() {
    let s = start("").await;
    let editor = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/workflows/editor/sdxl_simple_example.json"
    ))
    .unwrap();
    let valid = ok(&s.call("comfyui_validate_workflow", json!({"workflow": editor})).await).clone();
    assert!(valid["node_count"].as_u64().unwrap() > 5, "{valid}");
    let analysis = ok(&s.call("comfyui_analyze_workflow", json!({"workflow": editor})).await).clone();
    assert_eq!(analysis["pipeline"], "txt2img", "{analysis}");
    let summary = s.call("comfyui_summarize_workflow", json!({"workflow": editor})).await;
    assert!(text(&summary).starts_with("Workflow: "), "{}", text(&summary));
    s.client.cancel().await.unwrap();
}

/// A client that supports the tasks extension.
#[derive(Clone, Default)]
struct TaskClient;

impl ClientHandler for TaskClient {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        rmcp::model::ClientConfig::new(
            rmcp::model::ClientCapabilities::builder().enable_tasks().build(),
            rmcp::model::Implementation::new("task-client", "1.0"),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_generation_runs_as_an_mcp_task_when_enabled() {
    use rmcp::model::{CallToolResponse, CancelTaskParams, GetTaskParams, TaskStatus};
    let sim = Sim::builder().steps_per_second(20.0).start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".comfyui-mcp")).unwrap();
    std::fs::write(
        home.path().join(".comfyui-mcp/config.yaml"),
        "tasks:\n  enabled: true\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"));
    cmd.env("HOME", home.path())
        .env("COMFYUI_URL", sim.url())
        .env_remove("COMFYUI_MCP_CONFIG");
    let client = TaskClient.serve(TaskChildProcess(cmd)).await.unwrap();
    let info = client.peer_info().unwrap();
    assert!(info.capabilities.supports_tasks());

    let Value::Object(args) = json!({"prompt": "a fox", "steps": 3, "wait": true}) else {
        unreachable!()
    };
    let response = client
        .call_tool_once(CallToolRequestParams::new("comfyui_generate_image").with_arguments(args.clone()))
        .await
        .unwrap();
    let CallToolResponse::Task(created) = response else {
        panic!("expected a task, got {response:?}")
    };
    let id = created.task.task_id.clone();
    let finished = support::task_ended(&client, &id, std::time::Duration::from_secs(10)).await;
    assert_eq!(finished.task.status(), TaskStatus::Completed);
    let wire = serde_json::to_value(&finished).unwrap();
    assert_eq!(wire["result"]["structuredContent"]["status"], "completed", "{wire}");

    // A task cancelled mid-job ends as cancelled and its job is interrupted.
    let Value::Object(slow) = json!({"prompt": "slow", "steps": 100, "wait": true}) else {
        unreachable!()
    };
    let CallToolResponse::Task(created) = client
        .call_tool_once(CallToolRequestParams::new("comfyui_generate_image").with_arguments(slow))
        .await
        .unwrap()
    else {
        panic!("expected a task")
    };
    // Cancelled mid-job: once ComfyUI runs it.
    support::wait_running(&sim.url()).await;
    client
        .cancel_task(CancelTaskParams::new(created.task.task_id.clone()))
        .await
        .unwrap();
    let status = support::task_ended(&client, &created.task.task_id, std::time::Duration::from_secs(5))
        .await
        .task
        .status();
    assert_eq!(status, TaskStatus::Cancelled);
    assert!(client.get_task(GetTaskParams::new("nope")).await.is_err());

    // Without waiting, a call is answered at once as before.
    let mut quick = args;
    quick.insert("wait".to_owned(), json!(false));
    let response = client
        .call_tool_once(CallToolRequestParams::new("comfyui_generate_image").with_arguments(quick))
        .await
        .unwrap();
    assert!(matches!(response, CallToolResponse::Complete(_)), "{response:?}");
    client.cancel().await.unwrap();
}

/// `TokioChildProcess` for a command, as a function for readability.
#[allow(non_snake_case, reason = "reads like the transport's name")]
fn TaskChildProcess(cmd: Command) -> TokioChildProcess {
    TokioChildProcess::new(cmd).unwrap()
}
