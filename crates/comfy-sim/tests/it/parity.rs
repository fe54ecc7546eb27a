//! Fixture parity: recorded requests replayed against a fresh simulator get
//! the recorded status, content type and body, byte for byte.

use comfy_sim::Sim;

use crate::support::{exchange, recorded_body, recorded_content_type, recorded_status, replay};

/// Exchanges whose answer depends only on a fresh server's state.
const BYTE_EXACT: &[&str] = &[
    "get_api_prompt",
    "get_prompt",
    "get_api_queue",
    "get_queue_empty",
    "get_internal_files_output",
    "get_embeddings",
    "get_features",
    "get_system_stats",
    "head_system_stats",
    "get_models",
    "get_models_checkpoints",
    "get_api_models_checkpoints",
    "get_models_loras",
    "get_models_vae",
    "get_models_upscale_models",
    "get_models_nonexistent",
    "get_extensions",
    "get_object_info",
    "get_object_info_EmptyImage",
    "get_api_object_info_EmptyImage",
    "get_object_info_accept_gzip",
    "get_object_info_KSampler",
    "get_object_info_CheckpointLoaderSimple",
    "get_object_info_ImageInvert",
    "get_object_info_SaveImage",
    "get_object_info_PreviewImage",
    "get_object_info_FixtureProgress",
    "get_object_info_LoadImage",
    "get_object_info_NoSuchNode",
    "get_experiment_models_checkpoints",
    "get_view_metadata_empty_file",
    "get_history_empty",
    "get_history_unknown_id",
    "get_history_max_items_nan",
    "get_api_jobs_empty",
    "get_api_api_jobs",
    "get_api_jobs_workflow_id_filter",
    "get_api_jobs_bad_sort_by",
    "get_api_jobs_bad_sort_order",
    "get_api_jobs_bad_status",
    "get_api_jobs_limit_nan",
    "get_api_jobs_limit_zero",
    "get_api_jobs_offset_nan",
    "get_api_jobs_unknown",
    "get_jobs_unprefixed",
    "get_nonexistent_route",
    "get_api_internal_folder_paths",
    "get_internal_files_bogus",
    "put_prompt_method_not_allowed",
    "post_object_info_method_not_allowed",
    "delete_queue_method_not_allowed",
    "get_view_traversal_filename",
    "get_view_traversal_filename_encoded",
    "get_view_traversal_subfolder",
    "get_view_traversal_subfolder_deep",
    "get_view_absolute_filename",
    "get_view_empty_filename",
    "get_view_missing_file",
    "get_view_no_filename_param",
    "get_view_type_bogus",
    "get_ws_without_upgrade",
    "options_prompt",
    "post_prompt_origin_mismatch",
    "post_prompt_origin_localhost_vs_ip",
    "post_prompt_origin_matching",
    "post_prompt_no_content_type",
    "post_prompt_err_bad_combo_ckpt",
    "post_prompt_err_bad_combo_value",
    "post_prompt_err_body_is_json_array",
    "post_prompt_err_empty_body",
    "post_prompt_err_empty_prompt",
    "post_prompt_err_link_bad_output_index",
    "post_prompt_err_link_to_nonexistent_node",
    "post_prompt_err_link_wrong_output_type",
    "post_prompt_err_malformed_json",
    "post_prompt_err_missing_class_type",
    "post_prompt_err_missing_required_input",
    "post_prompt_err_multiple_errors_two_outputs",
    "post_prompt_err_no_output_node",
    "post_prompt_err_no_prompt_key",
    "post_prompt_err_node_is_not_dict",
    "post_prompt_err_number_above_max",
    "post_prompt_err_number_below_min",
    "post_prompt_err_number_wrong_type",
    "post_prompt_err_prompt_is_list",
    "post_prompt_err_prompt_is_string",
    "post_prompt_err_unknown_class_type",
    "post_prompt_partial_execution_targets_invalid",
    "post_interrupt_empty_object_idle",
    "post_interrupt_global_no_body",
    "post_interrupt_invalid_json_idle",
    "post_interrupt_nonmatching_prompt_id",
    "post_free",
    "post_queue_malformed_json",
    "post_history_clear",
    "get_settings",
    "get_settings_unknown_id",
    "get_users",
    "get_i18n",
    "get_global_subgraphs",
    "get_workflow_templates",
    "post_upload_image_traversal_filename",
    "post_upload_image_traversal_subfolder",
    "post_upload_image_type_bogus",
    "post_upload_image_missing_image_field",
];

#[tokio::test]
async fn replays_recorded_exchanges_byte_for_byte() {
    let sim = Sim::builder().start().await.unwrap();
    let mut failures = Vec::new();
    for name in BYTE_EXACT {
        let reply = replay(sim.addr(), name).await;
        let body = reply.body.clone().unwrap_or_default();
        let (status, content_type, response) =
            (recorded_status(name), recorded_content_type(name), recorded_body(name));
        let head = exchange(name)["request"]["method"] == "HEAD";
        if reply.status != status
            || reply.content_type() != content_type.as_deref()
            || (!head && body.as_ref() != response.as_slice())
        {
            failures.push(format!(
                "{name}: got {} {:?} {:?}\n   want {} {:?} {:?}",
                reply.status,
                reply.content_type(),
                String::from_utf8_lossy(&body[..body.len().min(400)]),
                status,
                content_type,
                String::from_utf8_lossy(&response[..response.len().min(400)])
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} exchanges differ:\n{}",
        failures.len(),
        BYTE_EXACT.len(),
        failures.join("\n")
    );
}
