//! Fixture parity for stateful exchanges: the recorded scenario is replayed
//! request by request, and each answer is compared with the recorded one
//! after redacting what differs by nature (prompt ids, times, queue numbers).

use std::time::Duration;

use comfy_sim::Sim;
use serde_json::{Value, json};

use crate::support::{
    Reply, fixtures, get, recorded_body, recorded_status, redact, replay, request, wait_history, wait_running,
};

fn recorded_json(name: &str) -> Value {
    serde_json::from_slice(&recorded_body(name)).unwrap()
}

#[track_caller]
fn check(got: &Reply, recorded: &str) {
    let want = recorded_json(recorded);
    assert_eq!(got.status, recorded_status(recorded), "{recorded}: status");
    assert_eq!(redact(&got.json()), redact(&want), "{recorded}: body");
}

#[tokio::test]
async fn basic_run_history_job_and_png_match_the_recording() {
    let sim = Sim::builder().start().await.unwrap();
    let r = replay(sim.addr(), "post_prompt_valid_basic").await;
    assert_eq!(r.status, 200);
    let id = r.prompt_id();
    wait_history(sim.addr(), &id).await;
    check(
        &get(sim.addr(), &format!("/history/{id}")).await,
        "get_history_by_id_success",
    );
    check(
        &get(sim.addr(), &format!("/api/jobs/{id}")).await,
        "get_api_jobs_by_id_completed",
    );

    let png = replay(sim.addr(), "get_view_output_png").await;
    assert_eq!(png.status, 200);
    assert_eq!(png.content_type(), Some("image/png"));
    let chunks: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("png/png_chunks.json")).unwrap()).unwrap();
    let want = &chunks["ComfyUI_00001_.png"]["chunks"];
    let got = png_chunks(png.bytes());
    let want: Vec<(String, Option<String>)> = want
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().to_owned(),
                c.get("text").and_then(Value::as_str).map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(got, want, "chunk types, order and tEXt contents");
}

/// The chunk types of a PNG, with the text of `tEXt` chunks.
fn png_chunks(bytes: &[u8]) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut i = 8;
    while i + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
        let kind = String::from_utf8_lossy(&bytes[i + 4..i + 8]).into_owned();
        let data = &bytes[i + 8..i + 8 + len];
        let text = (kind == "tEXt").then(|| {
            let nul = data.iter().position(|b| *b == 0).unwrap();
            String::from_utf8_lossy(&data[nul + 1..]).into_owned()
        });
        out.push((kind, text));
        i += 12 + len;
    }
    out
}

#[tokio::test]
async fn runtime_error_history_and_job_match_the_recording() {
    let sim = Sim::builder().start().await.unwrap();
    let r = replay(sim.addr(), "post_prompt_valid_but_fails_at_runtime").await;
    let id = r.prompt_id();
    wait_history(sim.addr(), &id).await;
    check(
        &get(sim.addr(), &format!("/history/{id}")).await,
        "get_history_by_id_execution_error",
    );
    check(
        &get(sim.addr(), &format!("/api/jobs/{id}")).await,
        "get_api_jobs_by_id_failed",
    );
}

#[tokio::test]
async fn queue_with_one_running_and_three_pending_matches_the_recording() {
    let sim = Sim::builder().start().await.unwrap();
    let run1 = replay(sim.addr(), "post_prompt_queue_run1_sleep").await.prompt_id();
    wait_running(sim.addr()).await;
    // Distinct creation times (millisecond clock), so the jobs view sorts
    // them as in the recording.
    tokio::time::sleep(Duration::from_millis(5)).await;
    replay(sim.addr(), "post_prompt_queue_run2_pending").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let front = replay(sim.addr(), "post_prompt_queue_run3_pending_front").await.json();
    assert!(front["number"].as_i64().unwrap() < 0);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let explicit = replay(sim.addr(), "post_prompt_queue_run4_pending_explicit_number_and_id").await;
    assert_eq!(
        explicit.bytes().as_ref(),
        recorded_body("post_prompt_queue_run4_pending_explicit_number_and_id").as_slice()
    );
    check(&get(sim.addr(), "/queue").await, "get_queue_one_running_three_pending");
    check(
        &replay(sim.addr(), "get_prompt_queue_remaining_4").await,
        "get_prompt_queue_remaining_4",
    );
    check(
        &replay(sim.addr(), "get_api_jobs_status_pending").await,
        "get_api_jobs_status_pending",
    );
    check(
        &replay(sim.addr(), "get_api_jobs_status_in_progress").await,
        "get_api_jobs_status_in_progress",
    );
    check(
        &get(sim.addr(), &format!("/api/jobs/{run1}")).await,
        "get_api_jobs_running_job_by_id",
    );
    // Deleting the running prompt is a no-op; clearing leaves only it.
    request(
        sim.addr(),
        "POST",
        "/queue",
        &[("Content-Type", "application/json")],
        json!({"delete": [run1]}).to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        get(sim.addr(), "/queue").await.json()["queue_running"][0][1],
        json!(run1)
    );
    replay(sim.addr(), "post_queue_clear").await;
    check(&get(sim.addr(), "/queue").await, "get_queue_after_clear");
    replay(sim.addr(), "post_interrupt_global_no_body").await;
    wait_history(sim.addr(), &run1).await;
    check(&get(sim.addr(), "/queue").await, "get_queue_idle_after_interrupt");
}

#[tokio::test]
async fn upload_sequence_matches_the_recording_byte_for_byte() {
    let sim = Sim::builder().start().await.unwrap();
    for name in [
        "post_upload_image_new",
        "post_upload_image_same_name_same_content",
        "post_upload_image_same_name_different_content",
        "post_upload_image_overwrite_true",
        "post_upload_image_subfolder",
        "post_upload_image_type_output",
        "post_upload_image_type_temp",
        "post_upload_image_non_image_file",
        "post_upload_image_traversal_filename",
        "post_upload_image_traversal_subfolder",
        "post_upload_image_empty_filename",
        "post_upload_image_missing_image_field",
        "post_upload_image_type_bogus",
        "post_upload_mask",
        "post_upload_mask_original_traversal",
        "post_upload_mask_missing_original_ref",
        "get_object_info_LoadImage_after_uploads",
        "get_internal_files_input",
        "get_view_uploaded_input",
        "get_view_uploaded_input_subfolder",
        "get_view_uploaded_text_file",
        "get_view_uploaded_mask",
    ] {
        let got = replay(sim.addr(), name).await;
        assert_eq!(got.status, recorded_status(name), "{name}: status");
        let want = recorded_body(name);
        assert_eq!(
            String::from_utf8_lossy(got.bytes()),
            String::from_utf8_lossy(&want),
            "{name}: body"
        );
    }
}

#[tokio::test]
async fn settings_and_userdata_sequence_matches_the_recording() {
    let sim = Sim::builder().start().await.unwrap();
    for name in [
        "get_v2_userdata",
        "get_settings",
        "post_settings_id",
        "post_settings_merge",
        "get_settings_after_post",
        "get_settings_id_after_post",
        "get_settings_unknown_id",
        "get_userdata_workflows",
        "post_userdata_workflow",
        "post_userdata_workflow_overwrite_false",
        "post_userdata_workflow_full_info",
        "get_userdata_list_workflows",
        "get_userdata_list_workflows_full_info",
        "get_userdata_list_split",
        "get_userdata_file",
        "get_userdata_missing_file",
        "get_userdata_traversal",
        "get_userdata_no_dir",
        "get_v2_userdata_after",
        "post_userdata_move",
        "delete_userdata_file",
    ] {
        let got = replay(sim.addr(), name).await;
        assert_eq!(got.status, recorded_status(name), "{name}: status");
        let want = recorded_body(name);
        match serde_json::from_slice::<Value>(&want) {
            Ok(w) if !want.is_empty() => assert_eq!(redact(&got.json()), redact(&w), "{name}: body"),
            _ => assert_eq!(
                String::from_utf8_lossy(got.bytes()),
                String::from_utf8_lossy(&want),
                "{name}: body"
            ),
        }
    }
    // Settings live in the user directory, so a restart keeps them.
    sim.restart();
    assert_eq!(get(sim.addr(), "/settings/Comfy.FixtureTest").await.json(), json!(42));
}
