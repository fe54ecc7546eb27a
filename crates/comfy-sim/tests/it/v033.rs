//! The simulator as ComfyUI 0.33.0 (`--comfyui-version 0.33.0`) against
//! the exchanges recorded from a real 0.33.0 in `fixtures/comfyui-0.33/`;
//! and as 0.8.0, where the same requests answer as the 0.8.0 recordings.

use comfy_sim::{ComfyVersion, Sim};
use serde_json::{Value, json};

use crate::support::{get, post_json, wait_history, wait_running};

fn recorded(name: &str) -> (u16, Value) {
    let dir = crate::support::fixtures().join("../comfyui-0.33/http");
    let head = std::fs::read_to_string(dir.join(format!("{name}.response_head.txt"))).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = std::fs::read(dir.join(format!("{name}.body.json"))).unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn request_body(name: &str) -> Value {
    let dir = crate::support::fixtures().join("../comfyui-0.33/http");
    let meta: Value = serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.meta.json"))).unwrap()).unwrap();
    meta["request"]["body"].clone()
}

#[tokio::test]
async fn refusals_and_routes_answer_as_recorded_from_0_33() {
    let sim = Sim::builder()
        .comfyui_version(ComfyVersion::V0_33_0)
        .start()
        .await
        .unwrap();
    for name in [
        "post_prompt_err_missing_node_type",
        "post_prompt_err_prompt_id_not_uuid",
    ] {
        let reply = post_json(sim.addr(), "/prompt", &request_body(name)).await;
        assert_eq!((reply.status, reply.json()), recorded(name), "{name}");
    }
    for (name, path) in [
        ("get_features", "/features"),
        ("get_global_subgraphs_unknown", "/global_subgraphs/no-such-blueprint"),
    ] {
        let reply = get(sim.addr(), path).await;
        assert_eq!((reply.status, reply.json()), recorded(name), "{name}");
    }
    let unknown = "/api/jobs/00000000-0000-4000-8000-000000000000/cancel";
    let reply = post_json(sim.addr(), unknown, &json!({})).await;
    assert_eq!((reply.status, reply.json()), recorded("post_api_jobs_cancel_unknown"));
    let reply = post_json(
        sim.addr(),
        "/api/jobs/cancel",
        &request_body("post_api_jobs_cancel_batch"),
    )
    .await;
    assert_eq!((reply.status, reply.json()), recorded("post_api_jobs_cancel_batch"));
    let stats = get(sim.addr(), "/system_stats").await.json();
    assert_eq!(stats["system"]["comfyui_version"], "0.33.0");
}

fn sleeper(seed: u64) -> Value {
    json!({"prompt": {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "FixtureSleep", "inputs": {"image": ["1", 0], "seconds": 30.0, "seed": seed}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}})
}

#[tokio::test]
async fn interrupted_jobs_are_cancelled_and_jobs_cancel_by_id_on_0_33_only() {
    for (version, interrupted) in [(ComfyVersion::V0_33_0, "cancelled"), (ComfyVersion::V0_8_0, "failed")] {
        let sim = Sim::builder().comfyui_version(version).start().await.unwrap();
        let a = post_json(sim.addr(), "/prompt", &sleeper(1)).await.prompt_id();
        let b = post_json(sim.addr(), "/prompt", &sleeper(2)).await.prompt_id();
        wait_running(sim.addr()).await;
        if version == ComfyVersion::V0_33_0 {
            // The queued one by id, then the running one.
            let reply = post_json(sim.addr(), &format!("/api/jobs/{b}/cancel"), &json!({})).await;
            assert_eq!((reply.status, reply.json()), recorded("post_api_jobs_cancel_pending"));
            let reply = post_json(sim.addr(), &format!("/api/jobs/{a}/cancel"), &json!({})).await;
            assert_eq!((reply.status, reply.json()), recorded("post_api_jobs_cancel_running"));
            let gone = get(sim.addr(), &format!("/api/jobs/{b}")).await;
            assert_eq!((gone.status, gone.json()), recorded("get_api_jobs_cancelled_pending"));
        } else {
            // 0.8.0 has no cancel route: 405, as the real 0.8.0 answers.
            let reply = post_json(sim.addr(), &format!("/api/jobs/{a}/cancel"), &json!({})).await;
            assert_eq!(reply.status, 405);
            post_json(sim.addr(), "/interrupt", &json!({"prompt_id": a})).await;
            post_json(sim.addr(), "/queue", &json!({"delete": [b]})).await;
        }
        wait_history(sim.addr(), &a).await;
        let job = get(sim.addr(), &format!("/api/jobs/{a}")).await.json();
        assert_eq!(job["status"], interrupted, "{version}: {job}");
        let listed = get(sim.addr(), &format!("/api/jobs?status={interrupted}")).await;
        assert_eq!(listed.status, 200, "{version}");
    }
}

#[tokio::test]
async fn the_batch_cancel_route_refuses_and_ignores_as_recorded_from_0_33() {
    let sim = Sim::builder()
        .comfyui_version(ComfyVersion::V0_33_0)
        .start()
        .await
        .unwrap();
    let raw = crate::support::request(
        sim.addr(),
        "POST",
        "/api/jobs/cancel",
        &[("Content-Type", "application/json")],
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(
        (raw.status, raw.json()),
        recorded("post_api_jobs_cancel_batch_not_json")
    );
    for name in [
        "post_api_jobs_cancel_batch_not_list",
        "post_api_jobs_cancel_batch_not_object",
        "post_api_jobs_cancel_batch_empty",
    ] {
        let reply = post_json(sim.addr(), "/api/jobs/cancel", &request_body(name)).await;
        assert_eq!((reply.status, reply.json()), recorded(name), "{name}");
    }
    // Ids are random: the recorded refusal lists the same kinds of bad ids.
    let reply = post_json(
        sim.addr(),
        "/api/jobs/cancel",
        &request_body("post_api_jobs_cancel_batch_invalid_ids"),
    )
    .await;
    let (status, body) = recorded("post_api_jobs_cancel_batch_invalid_ids");
    let sent = request_body("post_api_jobs_cancel_batch_invalid_ids");
    assert_eq!(reply.status, status);
    assert_eq!(reply.json()["error"], body["error"]);
    assert_eq!(reply.json()["invalid_ids"], body["invalid_ids"], "sent {sent}");
    // A finished job: a no-op, alone and in a batch.
    let done = post_json(
        sim.addr(),
        "/prompt",
        &json!({"prompt": {
            "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 5}},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}}),
    )
    .await
    .prompt_id();
    wait_history(sim.addr(), &done).await;
    let reply = post_json(sim.addr(), &format!("/api/jobs/{done}/cancel"), &json!({})).await;
    assert_eq!((reply.status, reply.json()), recorded("post_api_jobs_cancel_finished"));
    let reply = post_json(sim.addr(), "/api/jobs/cancel", &json!({"job_ids": [done]})).await;
    assert_eq!(
        (reply.status, reply.json()),
        recorded("post_api_jobs_cancel_batch_finished")
    );
    // A batch with a waiting job in it cancels it.
    let a = post_json(sim.addr(), "/prompt", &sleeper(41)).await.prompt_id();
    let b = post_json(sim.addr(), "/prompt", &sleeper(42)).await.prompt_id();
    wait_running(sim.addr()).await;
    let reply = post_json(sim.addr(), "/api/jobs/cancel", &json!({"job_ids": [done, b, a]})).await;
    assert_eq!((reply.status, reply.json()), (200, json!({"cancelled": true})));
    wait_history(sim.addr(), &a).await;
    assert_eq!(get(sim.addr(), &format!("/api/jobs/{b}")).await.status, 404);
}

/// The `execution_error` of a recorded history entry, without what differs
/// between runs (ids, times, the traceback's paths, what was cached).
fn error_message(entry: &Value) -> Value {
    let messages = entry["status"]["messages"].as_array().unwrap();
    let (_, data) = messages
        .iter()
        .filter_map(|m| Some((m[0].as_str()?, m[1].clone())))
        .find(|(kind, _)| *kind == "execution_error")
        .unwrap();
    json!({
        "node_id": data["node_id"], "node_type": data["node_type"],
        "exception_type": data["exception_type"], "exception_message": data["exception_message"],
        "current_inputs": data["current_inputs"],
    })
}

#[tokio::test]
async fn loaders_fail_on_placeholder_model_files_as_recorded_from_0_33() {
    let models = tempdir("placeholders");
    for p in [
        "checkpoints/v1-5-pruned-emaonly.safetensors",
        "upscale_models/RealESRGAN_x4plus.pth",
    ] {
        let path = models.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"").unwrap();
    }
    let sim = Sim::builder()
        .comfyui_version(ComfyVersion::V0_33_0)
        .models_dir(&models)
        .start()
        .await
        .unwrap();
    for kind in ["checkpoint", "upscale"] {
        let sent = request_body(&format!("post_prompt_placeholder_{kind}"));
        let id = post_json(sim.addr(), "/prompt", &sent).await.prompt_id();
        let ours = wait_history(sim.addr(), &id).await;
        let (status, theirs) = recorded(&format!("get_history_placeholder_{kind}"));
        assert_eq!(status, 200);
        let theirs = theirs.as_object().unwrap().values().next().unwrap().clone();
        assert_eq!(ours["status"]["status_str"], "error", "{kind}");
        assert_eq!(error_message(&ours), error_message(&theirs), "{kind}");
    }
    let _ = std::fs::remove_dir_all(&models);
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("comfy-sim-v033-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
