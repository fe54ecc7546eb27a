//! What the model reads, through the real binary and rmcp's client
//! against comfy-sim: argument errors that name every problem at once,
//! JSON-text parameters that also take the JSON itself, described
//! parameters, the peer's resource names and honest capabilities, and
//! the skills served through the MCP Skills extension.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use serde_json::json;
use support::{start, text};

const CONFIG: &str = "rate_limits:\n  workflow: 1000\n  generation: 1000\n  file_ops: 1000\n  read_only: 1000\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_argument_error_names_every_problem_at_once() {
    let s = start(CONFIG).await;
    let r = s
        .call(
            "comfyui_list_jobs",
            json!({"offset": -1, "sort_by": "name", "sort_order": "sideways", "surprise": true}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    let t = text(&r);
    assert!(t.contains("4 problems"), "{t}");
    for needle in [
        "`offset`: -1 is less than the minimum of 0 (schema /properties/offset/minimum)",
        "`sort_by`: \"name\" is not one of",
        "`sort_order`: \"sideways\" is not one of",
        "`surprise`: is not accepted here",
    ] {
        assert!(t.contains(needle), "{needle} in {t}");
    }
    // Fixed in one round trip, the call goes through.
    let fixed = s
        .call(
            "comfyui_list_jobs",
            json!({"offset": 0, "sort_by": "created_at", "sort_order": "desc"}),
        )
        .await;
    assert_ne!(fixed.is_error, Some(true), "{}", text(&fixed));
    s.client.cancel().await.unwrap();
}
