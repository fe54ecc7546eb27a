//! The soak test: mixed tool calls through the real binary, with ComfyUI
//! faults switched on and off during the run. At the end the server's RSS
//! must have stayed flat, its file descriptors and threads must not have
//! grown, and every call must have exactly one `called` and one `completed`
//! audit record. `SOAK_CALLS` sets the number of calls: by default 600 in a
//! debug build (`cargo test`: every fault stretch once) and 3000 in a
//! release build (`cargo xtask soak`). It prints its figures for
//! `docs/reliability.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::time::{Duration, Instant};

use comfy_sim::{Faults, HttpFault, Sim, WsFault};
use serde_json::{Value, json};
use support::{records, start_sim};

/// `(rss_kib, fds, threads)` of a process, from `/proc`.
fn usage(pid: u32) -> (u64, usize, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    (field("VmRSS:"), fds, field("Threads:"))
}

/// The calls of the mix, in turn.
fn mix(i: usize, last_job: Option<&str>) -> (&'static str, Value) {
    match i % 10 {
        0 => ("comfyui_get_queue", json!({})),
        1 => ("comfyui_list_nodes", json!({"limit": 5, "offset": i % 500})),
        2 => ("comfyui_get_system_info", json!({})),
        3 => (
            "comfyui_generate_image",
            json!({"prompt": format!("soak {i}"), "steps": 2, "wait": false}),
        ),
        4 => (
            "comfyui_get_job",
            json!({"prompt_id": last_job.unwrap_or("00000000-0000-4000-8000-000000000000")}),
        ),
        5 => (
            "comfyui_validate_workflow",
            json!({"workflow": r#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}}"#}),
        ),
        6 => ("comfyui_get_node_info", json!({"node_class": "KSampler"})),
        7 => (
            "comfyui_generate_image",
            json!({"prompt": format!("soak {i}"), "steps": 2, "wait": true}),
        ),
        8 => ("comfyui_get_history", json!({"limit": 5})),
        _ => ("comfyui_get_model_presets", json!({})),
    }
}

/// The fault in force for a stretch of the run.
fn fault(stretch: usize) -> Faults {
    match stretch % 6 {
        1 => Faults::none().route("/queue", HttpFault::Status(500)),
        2 => Faults::none().ws(WsFault::Junk),
        3 => Faults::none().latency(Duration::from_millis(20)),
        4 => Faults::none().route("/history", HttpFault::MalformedJson),
        5 => Faults::none().ws(WsFault::DropAfter(2)),
        _ => Faults::none(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak() {
    let calls: usize = std::env::var("SOAK_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 600 } else { 3000 });
    let config = "rate_limits:\n  workflow: 1000000\n  generation: 1000000\n  file_ops: 1000000\n  read_only: 1000000\n\
                  comfyui:\n  timeout_read: 5\n";
    let s = start_sim(config, Sim::builder().steps_per_second(2000.0)).await;
    let started = Instant::now();
    let warm_at = calls / 10;
    let mut warm = (0, 0, 0);
    let mut peak_rss = 0;
    let mut errors = 0;
    let mut last_job: Option<String> = None;
    for i in 0..calls {
        if i % 100 == 0 {
            s.sim.set_faults(fault(i / 100));
        }
        if i == warm_at {
            warm = usage(s.pid);
        }
        let (tool, args) = mix(i, last_job.as_deref());
        let r = s.call(tool, args).await;
        if r.is_error == Some(true) {
            errors += 1;
        } else if tool == "comfyui_generate_image"
            && let Some(id) = r.structured_content.as_ref().and_then(|v| v["prompt_id"].as_str())
        {
            last_job = Some(id.to_owned());
        }
        if i % 50 == 0 {
            peak_rss = peak_rss.max(usage(s.pid).0);
        }
    }
    s.sim.set_faults(Faults::none());
    let end = usage(s.pid);
    let took = started.elapsed();
    let log = records(&s.audit_file());
    let tool_records = |action: &str| {
        log.iter()
            .filter(|r| r["action"] == action && r["tool"].as_str().is_some_and(|t| t.starts_with("comfyui_")))
            .count()
    };
    let (called, completed) = (tool_records("called"), tool_records("completed"));
    eprintln!(
        "soak: {calls} calls in {:.1}s ({:.0}/s), {errors} error results (faults on 5 of every 6 stretches); \
         RSS {} KiB after warm-up, {} KiB at the end, peak {} KiB; fds {} -> {}; threads {} -> {}; \
         audit: {called} called, {completed} completed",
        took.as_secs_f64(),
        calls as f64 / took.as_secs_f64(),
        warm.0,
        end.0,
        peak_rss,
        warm.1,
        end.1,
        warm.2,
        end.2
    );
    assert_eq!((called, completed), (calls, calls), "one record pair per call");
    assert!(
        end.0 <= warm.0 + warm.0 / 4 + 8 * 1024,
        "RSS grew from {} to {} KiB",
        warm.0,
        end.0
    );
    assert!(
        end.1 <= warm.1 + 4,
        "file descriptors grew from {} to {}",
        warm.1,
        end.1
    );
    assert!(end.2 <= warm.2 + 2, "threads grew from {} to {}", warm.2, end.2);
    s.client.cancel().await.unwrap();
}
