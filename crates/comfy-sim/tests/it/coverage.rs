//! Parity for the rest of the recorded exchanges: answers whose bytes
//! cannot match (images re-encoded, machine paths, multi-run histories) are
//! compared by headers or by shape, and a manifest test makes sure every
//! recording is exercised by some test.

use std::time::Duration;

use comfy_sim::Sim;
use serde_json::{Value, json};

use crate::support::{
    Reply, fixtures, get, post_json, recorded_body, recorded_content_type, recorded_status, redact, replay,
    shapes_agree, skeleton, wait_history, wait_running,
};

/// The recorded value of response header `name` in exchange `exchange`.
fn recorded_header(exchange: &str, name: &str) -> Option<String> {
    let m = crate::support::exchange(exchange);
    m["response"]["headers"].as_array().and_then(|hs| {
        hs.iter()
            .find(|h| h[0].as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
            .and_then(|h| h[1].as_str())
            .map(str::to_owned)
    })
}

#[track_caller]
fn check_head(got: &Reply, name: &str) {
    assert_eq!(got.status, recorded_status(name), "{name}: status");
    assert_eq!(
        got.content_type().map(str::to_owned),
        recorded_content_type(name),
        "{name}: content type"
    );
    let disposition = got
        .headers
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(
        disposition,
        recorded_header(name, "Content-Disposition"),
        "{name}: content disposition"
    );
}

#[track_caller]
fn check_shape(got: &Reply, name: &str) {
    assert_eq!(got.status, recorded_status(name), "{name}: status");
    let want: Value = serde_json::from_slice(&recorded_body(name)).unwrap();
    let (g, w) = (skeleton(&got.json()), skeleton(&want));
    assert!(shapes_agree(&g, &w), "{name}: shape\n got: {g}\nwant: {w}");
}

#[track_caller]
fn check_redacted(got: &Reply, name: &str) {
    assert_eq!(got.status, recorded_status(name), "{name}: status");
    let want: Value = serde_json::from_slice(&recorded_body(name)).unwrap();
    assert_eq!(redact(&got.json()), redact(&want), "{name}: body");
}

/// The shapes of every item (job, or history entry) the recordings hold.
fn recorded_items(names: &[&str]) -> Vec<Value> {
    let mut shapes = Vec::new();
    for name in names {
        let v: Value = serde_json::from_slice(&recorded_body(name)).unwrap();
        let items: Vec<&Value> = match v.get("jobs") {
            Some(Value::Array(jobs)) => jobs.iter().collect(),
            _ => v.as_object().map(|m| m.values().collect()).unwrap_or_default(),
        };
        shapes.extend(items.into_iter().map(skeleton));
    }
    shapes
}

#[track_caller]
fn check_items<'a>(items: impl Iterator<Item = &'a Value>, pool: &[Value], name: &str) {
    for item in items {
        let s = skeleton(item);
        assert!(
            pool.iter().any(|p| shapes_agree(&s, p)),
            "{name}: no recorded item has this shape: {s}"
        );
    }
}

async fn run(addr: std::net::SocketAddr, exchange: &str) -> String {
    let r = replay(addr, exchange).await;
    check_shape(&r, exchange);
    let id = r.prompt_id();
    wait_history(addr, &id).await;
    id
}

#[tokio::test]
async fn view_variants_answer_with_the_recorded_headers() {
    let sim = Sim::builder().start().await.unwrap();
    run(sim.addr(), "post_prompt_valid_basic").await;
    let preview = run(sim.addr(), "post_prompt_valid_previewimage").await;
    for name in [
        "get_view_output_png_annotated",
        "get_view_output_png_no_type",
        "get_api_view_output_png",
        "get_view_channel_a",
        "get_view_channel_rgb",
        "get_view_preview_bogus_format",
        "get_view_preview_jpeg_50",
        "get_view_preview_webp_80",
    ] {
        check_head(&replay(sim.addr(), name).await, name);
    }
    let history = get(sim.addr(), &format!("/history/{preview}")).await.json();
    let temp = history[&preview]["outputs"]["2"]["images"][0]["filename"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = get(sim.addr(), &format!("/view?filename={temp}&type=temp&subfolder=")).await;
    assert_eq!(got.status, recorded_status("get_view_temp_png"));
    assert_eq!(
        got.content_type().map(str::to_owned),
        recorded_content_type("get_view_temp_png")
    );
    // The PNG's first chunk is IHDR with the image size, as recorded.
    let rgb = replay(sim.addr(), "get_view_channel_rgb").await;
    let want = recorded_body("get_view_channel_rgb");
    assert_eq!(rgb.bytes()[..24], want[..24], "signature and IHDR size");
}

#[tokio::test]
async fn every_kind_of_prompt_submission_answers_in_the_recorded_shape() {
    let sim = Sim::builder().steps_per_second(1000.0).start().await.unwrap();
    for name in [
        "post_prompt_valid_previewimage",
        "post_prompt_valid_progress_run",
        "post_prompt_valid_progress_run_again",
        "post_prompt_valid_progress_run_seed2",
        "post_prompt_valid_saveimagewebsocket",
        "post_prompt_without_client_id",
        "post_prompt_two_clients_A",
        "post_prompt_two_clients_B",
        "post_prompt_same_clientId_twice",
        "post_prompt_during_logs_subscription",
    ] {
        run(sim.addr(), name).await;
    }
    // Partial execution: only the targeted output runs.
    let id = run(sim.addr(), "post_prompt_partial_execution_targets").await;
    let outputs = get(sim.addr(), &format!("/history/{id}")).await.json()[&id]["outputs"].clone();
    assert_eq!(outputs.as_object().unwrap().keys().collect::<Vec<_>>(), ["3"]);
    // One bad output, one good: accepted, with the bad one's errors.
    let r = replay(sim.addr(), "post_prompt_err_one_bad_output_one_good").await;
    let mut want: Value = serde_json::from_slice(&recorded_body("post_prompt_err_one_bad_output_one_good")).unwrap();
    want["number"] = r.json()["number"].clone();
    assert_eq!(redact(&r.json()), redact(&want));
    // The sleeping prompts: queued, then cleared and interrupted.
    for name in [
        "post_prompt_sleep_for_global_interrupt",
        "post_prompt_sleep_for_targeted_interrupt",
    ] {
        check_shape(&replay(sim.addr(), name).await, name);
    }
    post_json(sim.addr(), "/queue", &json!({"clear": true})).await;
    check_head(
        &replay(sim.addr(), "post_interrupt_after_clear").await,
        "post_interrupt_after_clear",
    );
}

#[tokio::test]
async fn histories_and_job_lists_after_many_runs_match_the_recorded_shapes() {
    let sim = Sim::builder().start().await.unwrap();
    let first = run(sim.addr(), "post_prompt_valid_basic").await;
    let preview = run(sim.addr(), "post_prompt_valid_previewimage").await;
    check_redacted(
        &get(sim.addr(), &format!("/history/{preview}")).await,
        "get_history_by_id_previewimage",
    );
    // A runtime error leaves EmptyImage cached, as in the recording.
    let failed = run(sim.addr(), "post_prompt_valid_but_fails_at_runtime").await;

    // Interrupted runs: global, then by prompt id (a non-matching id first).
    let r = replay(sim.addr(), "post_prompt_sleep_for_global_interrupt").await;
    let interrupted = r.prompt_id();
    wait_running(sim.addr()).await;
    replay(sim.addr(), "post_interrupt_global_no_body").await;
    wait_history(sim.addr(), &interrupted).await;
    check_redacted(
        &get(sim.addr(), &format!("/history/{interrupted}")).await,
        "get_history_by_id_interrupted",
    );
    check_redacted(
        &get(sim.addr(), &format!("/api/jobs/{interrupted}")).await,
        "get_api_jobs_by_id_interrupted",
    );
    let r = replay(sim.addr(), "post_prompt_sleep_for_targeted_interrupt").await;
    let targeted = r.prompt_id();
    wait_running(sim.addr()).await;
    check_head(
        &replay(sim.addr(), "post_interrupt_nonmatching_prompt_id").await,
        "post_interrupt_nonmatching_prompt_id",
    );
    let r = post_json(sim.addr(), "/interrupt", &json!({"prompt_id": targeted})).await;
    check_head(&r, "post_interrupt_matching_prompt_id");
    wait_history(sim.addr(), &targeted).await;
    // The recording's newest entries were successful runs.
    run(sim.addr(), "post_prompt_valid_progress_run").await;
    run(sim.addr(), "post_prompt_valid_progress_run_seed2").await;

    // Every history entry and every job has the shape of one the real
    // server answered with somewhere in the recordings.
    let entries = recorded_items(&[
        "get_history_after_runs",
        "get_history_max_items_2",
        "get_history_max_items_1_offset_1",
        "get_api_history_max_items_1",
        "get_history_by_id_success",
        "get_history_by_id_execution_error",
        "get_history_by_id_interrupted",
        "get_history_by_id_previewimage",
    ]);
    for name in [
        "get_history_after_runs",
        "get_history_max_items_2",
        "get_history_max_items_1_offset_1",
        "get_api_history_max_items_1",
    ] {
        let got = replay(sim.addr(), name).await;
        assert_eq!(got.status, recorded_status(name), "{name}");
        check_items(got.json().as_object().unwrap().values(), &entries, name);
    }
    let jobs = recorded_items(&[
        "get_api_jobs_after_runs",
        "get_api_jobs_failed",
        "get_api_jobs_sort_duration_asc",
        "get_api_jobs_completed_limit2_offset1",
        "get_api_jobs_with_running_and_pending",
        "get_api_jobs_status_pending",
        "get_api_jobs_status_in_progress",
    ]);
    for name in [
        "get_api_jobs_after_runs",
        "get_api_jobs_failed",
        "get_api_jobs_sort_duration_asc",
        "get_api_jobs_completed_limit2_offset1",
    ] {
        let got = replay(sim.addr(), name).await;
        let want: Value = serde_json::from_slice(&recorded_body(name)).unwrap();
        assert_eq!(
            skeleton(&got.json()["pagination"]),
            skeleton(&want["pagination"]),
            "{name}: pagination"
        );
        check_items(got.json()["jobs"].as_array().unwrap().iter(), &jobs, name);
    }
    for name in [
        "get_internal_files_output_after_runs",
        "get_internal_files_temp_after_runs",
    ] {
        check_shape(&replay(sim.addr(), name).await, name);
    }
    let failed_job = get(sim.addr(), &format!("/api/jobs/{failed}")).await.json();
    assert_eq!(failed_job["status"], "failed");

    // Deleting one entry, then clearing.
    let r = post_json(sim.addr(), "/history", &json!({"delete": [first]})).await;
    check_head(&r, "post_history_delete_one");
    let gone = get(sim.addr(), &format!("/history/{first}")).await;
    assert_eq!(
        gone.bytes().as_ref(),
        recorded_body("get_history_id_after_delete").as_slice()
    );
    replay(sim.addr(), "post_history_clear").await;
    for name in [
        "get_history_after_clear",
        "get_api_jobs_after_history_clear",
        "get_queue_idle",
    ] {
        let got = replay(sim.addr(), name).await;
        assert_eq!(got.bytes().as_ref(), recorded_body(name).as_slice(), "{name}");
    }
}

#[tokio::test]
async fn queue_deletes_match_the_recording() {
    let sim = Sim::builder().start().await.unwrap();
    let run1 = replay(sim.addr(), "post_prompt_queue_run1_sleep").await.prompt_id();
    wait_running(sim.addr()).await;
    // Distinct creation times, so sorting by them is as in the recording.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let run2 = replay(sim.addr(), "post_prompt_queue_run2_pending").await.prompt_id();
    tokio::time::sleep(Duration::from_millis(5)).await;
    replay(sim.addr(), "post_prompt_queue_run3_pending_front").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    replay(sim.addr(), "post_prompt_queue_run4_pending_explicit_number_and_id").await;
    check_shape(
        &replay(sim.addr(), "get_api_jobs_with_running_and_pending").await,
        "get_api_jobs_with_running_and_pending",
    );
    check_redacted(
        &get(sim.addr(), &format!("/api/jobs/{run2}")).await,
        "get_api_jobs_pending_job_by_id",
    );
    let r = post_json(sim.addr(), "/queue", &json!({"delete": [run2]})).await;
    check_head(&r, "post_queue_delete_pending");
    check_redacted(&get(sim.addr(), "/queue").await, "get_queue_after_delete");
    let r = post_json(sim.addr(), "/queue", &json!({"delete": [run1]})).await;
    check_head(&r, "post_queue_delete_running_is_noop");
    assert_eq!(
        get(sim.addr(), "/queue").await.json()["queue_running"][0][1],
        json!(run1)
    );
    post_json(sim.addr(), "/queue", &json!({"clear": true})).await;
    post_json(sim.addr(), "/interrupt", &json!({})).await;
    wait_history(sim.addr(), &run1).await;
}

#[tokio::test]
async fn machine_dependent_answers_match_the_recorded_shapes() {
    let sim = Sim::builder().start().await.unwrap();
    for name in [
        "get_api_system_stats",
        "get_experiment_models",
        "get_internal_folder_paths",
        "get_internal_logs_raw",
    ] {
        check_shape(&replay(sim.addr(), name).await, name);
    }
    let logs = replay(sim.addr(), "get_internal_logs").await;
    assert_eq!(logs.status, recorded_status("get_internal_logs"));
    assert!(logs.json().as_str().unwrap().contains("Starting server"));
    for name in [
        "patch_internal_logs_subscribe_enable",
        "patch_internal_logs_subscribe_disable",
    ] {
        let got = replay(sim.addr(), name).await;
        assert_eq!(
            (got.status, got.bytes().is_empty()),
            (recorded_status(name), true),
            "{name}"
        );
    }
}

/// Recordings whose behaviour is tested by a test of its own (named here),
/// not by replaying them one by one.
const SEMANTIC: &[(&str, &str)] = &[
    (
        "ws_01_connect_without_clientId",
        "ws_replay::connect_variants_match_the_recordings",
    ),
    (
        "ws_16_api_prefixed_ws",
        "ws_replay::connect_variants_match_the_recordings",
    ),
    (
        "ws_12_two_clients_socket_A",
        "ws_replay::another_clients_run_reaches_a_socket_only_as_broadcasts",
    ),
    (
        "ws_12_two_clients_socket_B",
        "ws_replay::another_clients_run_reaches_a_socket_only_as_broadcasts",
    ),
    (
        "ws_14_queue_operations",
        "scenario::queue_with_one_running_and_three_pending_matches_the_recording",
    ),
    (
        "ws_15_same_clientId_first_socket",
        "ws_replay::a_second_socket_with_the_same_client_id_takes_over",
    ),
    (
        "ws_15_same_clientId_second_socket",
        "ws_replay::a_second_socket_with_the_same_client_id_takes_over",
    ),
];

/// Recordings the simulator does not answer yet, and why.
const NOT_SIMULATED: &[(&str, &str)] = &[
    (
        "get_root_index_html",
        "the front end is not served; its body was not recorded either",
    ),
    (
        "ws_manager_install_task_offline",
        "ComfyUI-Manager comes with the custom-node issue",
    ),
    (
        "ws_manager_legacy_install_offline",
        "ComfyUI-Manager comes with the custom-node issue",
    ),
    (
        "ws_model_manager_download_failure",
        "ComfyUI-Model-Manager comes with the model-download issue",
    ),
];

#[test]
fn every_core_recording_is_exercised_by_a_test() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut sources = String::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n != "coverage.rs") {
            sources.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    // This file's own tests count, but not its manifest lists.
    let this = std::fs::read_to_string(dir.join("coverage.rs")).unwrap();
    sources.push_str(this.split("const SEMANTIC").next().unwrap());
    let listed: Vec<&str> = SEMANTIC.iter().chain(NOT_SIMULATED).map(|(n, _)| *n).collect();
    let index = |file: &str| std::fs::read_to_string(fixtures().join(file)).unwrap();
    let mut missing = Vec::new();
    for line in index("index_http.tsv").lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols[0] == "http" && !sources.contains(&format!("\"{}\"", cols[1])) && !listed.contains(&cols[1]) {
            missing.push(cols[1].to_owned());
        }
    }
    for line in index("index_ws.tsv").lines().skip(1) {
        let name = line.split('\t').next().unwrap();
        if !sources.contains(&format!("\"{name}\"")) && !listed.contains(&name) {
            missing.push(name.to_owned());
        }
    }
    assert!(missing.is_empty(), "recordings no test exercises: {missing:#?}");
}
