//! The real binary over stdio, driven by rmcp's client, against comfy-sim.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::{Path, PathBuf};

use comfy_sim::{Sim, SimHandle};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::process::Command;

struct Session {
    client: RunningService<RoleClient, ()>,
    home: tempfile::TempDir,
    _sim: SimHandle,
}

impl Session {
    fn audit_file(&self) -> PathBuf {
        self.home.path().join(".comfyui-mcp/audit.log")
    }

    async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        let Value::Object(map) = args else {
            panic!("arguments must be an object")
        };
        self.client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(map))
            .await
            .unwrap()
    }
}

async fn start(config: &str) -> Session {
    let sim = Sim::builder().steps_per_second(500.0).start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let config_dir = home.path().join(".comfyui-mcp");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("config.yaml"), config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"));
    cmd.env("HOME", home.path())
        .env("COMFYUI_URL", sim.url())
        .env_remove("COMFYUI_MCP_CONFIG")
        .env("RUST_LOG", "warn");
    let client = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();
    Session {
        client,
        home,
        _sim: sim,
    }
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ok(r: &CallToolResult) -> &Value {
    assert_ne!(r.is_error, Some(true), "tool failed: {}", text(r));
    r.structured_content.as_ref().expect("structured content")
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_queue_tools_answer_from_comfyui() {
    let s = start("").await;
    let info = s.client.peer_info().unwrap();
    let server = info.server_info.clone().unwrap();
    assert_eq!(server.name, "ComfyUI");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    assert!(info.instructions.as_deref().unwrap().contains("comfyui_run_workflow"));
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
    // Give the server a moment to close its log after stdin closes.
    for _ in 0..50 {
        if std::fs::read_to_string(&audit_file).is_ok_and(|t| t.lines().count() >= 13) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
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
