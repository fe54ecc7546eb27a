//! Scale-out, end to end: the real binary, driven by rmcp's client, in
//! front of several in-process simulators, and several replicas sharing a
//! real `redis-server` (installed by `.ci/run`; outside CI the Redis tests
//! are skipped with a note when it is missing).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::many_single_char_names,
    reason = "tests"
)]

mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use comfy_sim::{Faults, Sim, SimHandle};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use support::{Collector, ok, text};
use tokio::process::Command;

type Client = RunningService<RoleClient, Collector>;

/// Starts the binary over stdio with `config` as its config file.
async fn serve(home: &Path, config: &str) -> Client {
    serve_as(Collector::default(), home, config).await
}

/// [`serve`] with `handler` as the client.
async fn serve_as<H: rmcp::ClientHandler>(handler: H, home: &Path, config: &str) -> RunningService<RoleClient, H> {
    let dir = home.join(".comfyui-mcp");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"));
    cmd.env("HOME", home)
        .env_remove("COMFYUI_URL")
        .env_remove("COMFYUI_MCP_CONFIG")
        .env_remove("COMFYUI_MCP_REDIS_URL")
        .env("RUST_LOG", "error")
        .stderr(Stdio::null());
    handler.serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap()
}

async fn call(c: &Client, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(map) = args else {
        panic!("arguments must be an object")
    };
    c.call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(map))
        .await
        .unwrap()
}

fn backends(sims: &[(&str, &SimHandle)]) -> String {
    let mut s = String::from("comfyui:\n  health_interval: 1\n  backends:\n");
    for (name, sim) in sims {
        let _ = writeln!(s, "    - name: {name}\n      url: {}", sim.url());
    }
    s
}

/// Slow samplers, so jobs stay queued while the test looks.
async fn slow_sim() -> SimHandle {
    Sim::builder().steps_per_second(5.0).start().await.unwrap()
}

/// A 20 s job, each with its own seed (a repeat would come from the cache).
fn long_job() -> Value {
    static SEED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let seed = SEED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    json!({"prompt": "x", "steps": 100, "width": 64, "height": 64, "seed": seed})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_jobs_go_to_the_shortest_queue_and_calls_find_them_where_they_run() {
    let (a, b) = (slow_sim().await, slow_sim().await);
    let home = tempfile::tempdir().unwrap();
    let c = serve(home.path(), &backends(&[("a", &a), ("b", &b)])).await;

    // Both idle: configuration order; then the shorter queue.
    let mut placed = Vec::new();
    for _ in 0..3 {
        let r = ok(&call(&c, "comfyui_generate_image", long_job()).await).clone();
        placed.push((
            r["backend"].as_str().unwrap().to_owned(),
            r["prompt_id"].as_str().unwrap().to_owned(),
        ));
    }
    let names: Vec<&str> = placed.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(names, ["a", "b", "a"], "{placed:?}");

    // A job is found on its backend, and only asked there.
    let before_a = a.requests("/jobs");
    let job = ok(&call(&c, "comfyui_get_job", json!({"prompt_id": placed[1].1})).await).clone();
    assert_eq!(job["backend"], "b", "{job}");
    assert_eq!(job["id"], placed[1].1.as_str());
    assert_eq!(a.requests("/jobs"), before_a, "backend a was not asked about b's job");
    let progress = ok(&call(&c, "comfyui_get_progress", json!({"prompt_id": placed[0].1})).await).clone();
    assert_eq!(progress["backend"], "a", "{progress}");

    // Listings merge both backends and say where each item is.
    let queue = ok(&call(&c, "comfyui_get_queue", json!({})).await).clone();
    for (backend, id) in &placed {
        assert_eq!(queue["backend_of"][id.as_str()], backend.as_str(), "{queue}");
    }
    let n = queue["queue_running"].as_array().unwrap().len() + queue["queue_pending"].as_array().unwrap().len();
    assert_eq!(n, 3, "{queue}");
    let status = ok(&call(&c, "comfyui_get_queue_status", json!({})).await).clone();
    assert_eq!(status["exec_info"]["queue_remaining"], 3, "{status}");
    let jobs = ok(&call(&c, "comfyui_list_jobs", json!({})).await).clone();
    let mut seen: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["backend"].as_str().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, ["a", "a", "b"], "{jobs}");
    let info = ok(&call(&c, "comfyui_get_system_info", json!({})).await).clone();
    let info_names: Vec<&str> = info["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(info_names, ["a", "b"], "{info}");
    assert!(
        info["backends"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["healthy"] == true),
        "{info}"
    );

    // The `backend` argument is published with the names, and obeyed.
    let tools = c.list_all_tools().await.unwrap();
    let run = tools.iter().find(|t| t.name == "comfyui_run_workflow").unwrap();
    assert_eq!(run.input_schema["properties"]["backend"]["enum"], json!(["a", "b"]));
    let mut on_b = long_job();
    on_b["backend"] = json!("b");
    let r = ok(&call(&c, "comfyui_generate_image", on_b).await).clone();
    assert_eq!(r["backend"], "b");
    let mut on_c = long_job();
    on_c["backend"] = json!("c");
    let refused = call(&c, "comfyui_generate_image", on_c).await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).contains("`backend` must be one of a, b"),
        "{}",
        text(&refused)
    );

    // Cancelling reaches each job's backend.
    let mut ids: Vec<&str> = placed.iter().map(|(_, id)| id.as_str()).collect();
    ids.push(r["prompt_id"].as_str().unwrap());
    let cancelled = ok(&call(&c, "comfyui_cancel_jobs", json!({"job_ids": ids})).await).clone();
    assert_eq!(cancelled["cancelled"], 4, "{cancelled}");
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_jobs_go_where_their_models_are() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for (dir, model) in dirs.iter().zip(["only-on-a.safetensors", "only-on-b.safetensors"]) {
        std::fs::create_dir_all(dir.path().join("checkpoints")).unwrap();
        // A readable safetensors header (an empty file fails the loader,
        // as on a real ComfyUI).
        std::fs::write(dir.path().join("checkpoints").join(model), b"\x02\0\0\0\0\0\0\0{}").unwrap();
    }
    let a = Sim::builder().models_dir(dirs[0].path()).start().await.unwrap();
    let b = Sim::builder().models_dir(dirs[1].path()).start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let c = serve(home.path(), &backends(&[("a", &a), ("b", &b)])).await;
    for (model, backend) in [("only-on-b.safetensors", "b"), ("only-on-a.safetensors", "a")] {
        let r = ok(&call(
            &c,
            "comfyui_generate_image",
            json!({"prompt": "x", "model": model, "steps": 2, "wait": true}),
        )
        .await)
        .clone();
        assert_eq!(r["backend"], backend, "{model}: {r}");
        assert_eq!(r["status"], "completed", "{r}");
    }
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_is_down_gets_no_new_jobs_and_its_jobs_are_reported_lost() {
    let (a, b) = (slow_sim().await, slow_sim().await);
    let home = tempfile::tempdir().unwrap();
    let c = serve(home.path(), &backends(&[("a", &a), ("b", &b)])).await;
    // Uploads reach every backend, so a later job finds its input anywhere.
    let png = base64_png();
    let up = call(
        &c,
        "comfyui_upload_image",
        json!({"filename": "everywhere.png", "image_data": png}),
    )
    .await;
    assert_ne!(up.is_error, Some(true), "{}", text(&up));
    for sim in [&a, &b] {
        assert!(sim.data_dir().join("input/everywhere.png").is_file());
    }

    a.set_faults(Faults::none().refuse_connections(true));
    for _ in 0..2 {
        let r = ok(&call(&c, "comfyui_generate_image", long_job()).await).clone();
        assert_eq!(r["backend"], "b", "{r}");
    }
    let info = ok(&call(&c, "comfyui_get_system_info", json!({})).await).clone();
    let a_state = &info["backends"][0];
    assert_eq!(
        (a_state["name"].as_str(), a_state["healthy"].as_bool()),
        (Some("a"), Some(false)),
        "{info}"
    );
    assert_eq!(info["backends"][1]["healthy"], true, "{info}");

    // b's job, with b gone: lost, and said to be.
    let job = ok(&call(&c, "comfyui_generate_image", long_job()).await).clone();
    b.set_faults(Faults::none().refuse_connections(true));
    let p = ok(&call(&c, "comfyui_get_progress", json!({"prompt_id": job["prompt_id"]})).await).clone();
    assert_eq!(
        (p["status"].as_str(), p["backend"].as_str()),
        (Some("lost"), Some("b")),
        "{p}"
    );
    // Nothing was sent again anywhere: a, back, has none of the jobs.
    a.set_faults(Faults::none());
    let q = support::until("backend a answering again", Duration::from_secs(4), || async {
        let q = call(&c, "comfyui_get_queue", json!({"backend": "a"})).await;
        (q.is_error != Some(true)).then_some(q)
    })
    .await;
    let q = ok(&q);
    assert_eq!(q["queue_running"], json!([]), "{q}");
    assert_eq!(q["queue_pending"], json!([]), "{q}");
    c.cancel().await.unwrap();
}

fn base64_png() -> String {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/comfyui/png/ComfyUI_00001_.png"
    ))
    .unwrap();
    data_encoding::BASE64.encode(&bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_rate_limits_and_the_jobs_through_redis() {
    let Some(redis) = support::redis().await else { return };
    let (a, b) = (slow_sim().await, slow_sim().await);
    let config = format!(
        "{}rate_limits:\n  read_only: 6\nstate:\n  redis_url: {}\n",
        backends(&[("a", &a), ("b", &b)]),
        redis.url()
    );
    let (h1, h2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (r1, r2) = (serve(h1.path(), &config).await, serve(h2.path(), &config).await);

    // Jobs started through one replica are found through the other, on
    // the right backend, without asking the others.
    let j1 = ok(&call(&r1, "comfyui_generate_image", long_job()).await).clone();
    let j2 = ok(&call(&r1, "comfyui_generate_image", long_job()).await).clone();
    assert_eq!((j1["backend"].as_str(), j2["backend"].as_str()), (Some("a"), Some("b")));
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let stored: Option<String> = redis::cmd("HGET")
        .arg(format!("comfy-mcp:job:{}", j2["prompt_id"].as_str().unwrap()))
        .arg("backend")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some("b"));
    let before = (a.requests("/jobs"), b.requests("/jobs"));
    let found = ok(&call(&r2, "comfyui_get_job", json!({"prompt_id": j2["prompt_id"]})).await).clone();
    assert_eq!(found["backend"], "b");
    assert_eq!(a.requests("/jobs"), before.0, "replica 2 knew the backend from Redis");
    assert_eq!(b.requests("/jobs"), before.1 + 1);

    // read_only: 6 a minute, for both replicas together. (get_job above
    // took one.)
    let mut allowed = 1;
    let mut refused = 0;
    for i in 0..10 {
        let r = call(
            if i % 2 == 0 { &r1 } else { &r2 },
            "comfyui_get_queue_status",
            json!({}),
        )
        .await;
        if r.is_error == Some(true) {
            assert!(text(&r).contains("Rate limit exceeded"), "{}", text(&r));
            refused += 1;
        } else {
            allowed += 1;
        }
    }
    assert_eq!((allowed, refused), (6, 5));
    let _ = call(
        &r1,
        "comfyui_cancel_jobs",
        json!({"job_ids": [j1["prompt_id"], j2["prompt_id"]]}),
    )
    .await;
    r1.cancel().await.unwrap();
    r2.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_goes_away_limits_fall_back_or_calls_are_refused_as_configured() {
    let Some(redis) = support::redis().await else { return };
    let sim = Sim::builder().start().await.unwrap();
    let port = redis.port();
    let config = |policy: &str| {
        format!(
            "comfyui:\n  url: {}\nstate:\n  redis_url: {}\n  redis_failure: {policy}\n",
            sim.url(),
            redis.url()
        )
    };
    let (h1, h2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let local = serve(h1.path(), &config("local")).await;
    let closed = serve(h2.path(), &config("fail_closed")).await;
    for c in [&local, &closed] {
        ok(&call(c, "comfyui_get_queue_status", json!({})).await);
    }
    drop(redis);
    // `local`: this replica's own buckets.
    ok(&call(&local, "comfyui_get_queue_status", json!({})).await);
    // `fail_closed`: refused, saying why.
    let r = call(&closed, "comfyui_get_queue_status", json!({})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("fail_closed"), "{}", text(&r));
    // Redis back: calls go through again.
    let _redis = tokio::task::spawn_blocking(move || support::Redis::on(port))
        .await
        .unwrap()
        .unwrap();
    support::until(
        "calls to resume when Redis is back",
        Duration::from_secs(10),
        || async { (call(&closed, "comfyui_get_queue_status", json!({})).await.is_error != Some(true)).then_some(()) },
    )
    .await;
    local.cancel().await.unwrap();
    closed.cancel().await.unwrap();
}

/// A client that supports the tasks extension.
#[derive(Clone, Default)]
struct TaskClient;

impl rmcp::ClientHandler for TaskClient {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        rmcp::model::ClientConfig::new(
            rmcp::model::ClientCapabilities::builder().enable_tasks().build(),
            rmcp::model::Implementation::new("task-client", "1.0"),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_started_through_one_replica_is_read_and_cancelled_through_another() {
    use rmcp::model::{CallToolResponse, CancelTaskParams, GetTaskParams, TaskStatus};
    let Some(redis) = support::redis().await else { return };
    let sim = Sim::builder().steps_per_second(20.0).start().await.unwrap();
    let config = format!(
        "comfyui:\n  url: {}\ntasks:\n  enabled: true\nstate:\n  redis_url: {}\n",
        sim.url(),
        redis.url()
    );
    let (h1, h2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (r1, r2) = (
        serve_as(TaskClient, h1.path(), &config).await,
        serve_as(TaskClient, h2.path(), &config).await,
    );
    let start = |prompt: &str, steps: u64| {
        let Value::Object(args) = json!({"prompt": prompt, "steps": steps, "wait": true}) else {
            unreachable!()
        };
        CallToolRequestParams::new("comfyui_generate_image").with_arguments(args)
    };
    let status_via = |c: &RunningService<RoleClient, TaskClient>, id: String| {
        let peer = c.peer().clone();
        async move { peer.get_task(GetTaskParams::new(id)).await.unwrap() }
    };

    // Finished through replica 1, read through replica 2, result included.
    let CallToolResponse::Task(quick) = r1.call_tool_once(start("a fox", 3)).await.unwrap() else {
        panic!("expected a task")
    };
    let id = quick.task.task_id.clone();
    // As seen through replica 2.
    let done = support::task_ended(&r2, &id, Duration::from_secs(10)).await;
    assert_eq!(done.task.status(), TaskStatus::Completed);
    let wire = serde_json::to_value(&done).unwrap();
    assert_eq!(wire["result"]["structuredContent"]["status"], "completed", "{wire}");

    // Started through replica 1, cancelled through replica 2.
    let CallToolResponse::Task(slow) = r1.call_tool_once(start("slow", 100)).await.unwrap() else {
        panic!("expected a task")
    };
    let id = slow.task.task_id.clone();
    assert_eq!(status_via(&r2, id.clone()).await.task.status(), TaskStatus::Working);
    r2.cancel_task(CancelTaskParams::new(id.clone())).await.unwrap();
    let status = support::task_ended(&r2, &id, Duration::from_secs(5))
        .await
        .task
        .status();
    assert_eq!(status, TaskStatus::Cancelled);
    assert_eq!(status_via(&r1, id).await.task.status(), TaskStatus::Cancelled);
    assert!(r2.get_task(GetTaskParams::new("nope")).await.is_err());
    r1.cancel().await.unwrap();
    r2.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waited_on_whose_backend_dies_is_lost_not_run_again() {
    let (a, b) = (slow_sim().await, slow_sim().await);
    let home = tempfile::tempdir().unwrap();
    let c = serve(home.path(), &backends(&[("a", &a), ("b", &b)])).await;
    let mut job = long_job();
    job["backend"] = json!("b");
    job["wait"] = json!(true);
    let mut b = Some(b);
    let b_url = b.as_ref().map(SimHandle::url).unwrap_or_default();
    let (r, ()) = tokio::join!(call(&c, "comfyui_generate_image", job), async {
        // Mid-job: once b runs it.
        support::wait_running(&b_url).await;
        // The machine goes away: its socket and its server stop.
        drop(b.take());
    });
    let r = ok(&r).clone();
    assert_eq!(
        (r["status"].as_str(), r["backend"].as_str()),
        (Some("lost"), Some("b")),
        "{r}"
    );
    let q = ok(&call(&c, "comfyui_get_queue", json!({"backend": "a"})).await).clone();
    assert_eq!(
        (q["queue_running"].clone(), q["queue_pending"].clone()),
        (json!([]), json!([])),
        "{q}"
    );
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_each_backend() {
    let (a, b) = (
        Sim::builder().start().await.unwrap(),
        Sim::builder().start().await.unwrap(),
    );
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".comfyui-mcp");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.yaml"), backends(&[("a", &a), ("b", &b)])).unwrap();
    let check = || async {
        Command::new(env!("CARGO_BIN_EXE_comfy-mcp"))
            .arg("check")
            .env("HOME", home.path())
            .env_remove("COMFYUI_URL")
            .env_remove("COMFYUI_MCP_CONFIG")
            .output()
            .await
            .unwrap()
    };
    let out = check().await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("backend a: ok (version "), "{text}");
    assert!(text.contains("backend b: ok (version "), "{text}");
    drop(b);
    let out = check().await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("backend a: ok"), "{text}");
    assert!(text.contains("backend b: FAILED: "), "{text}");
}
