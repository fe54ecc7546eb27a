//! Tasks that wait for input (the tasks extension, SEP-2663, on MCP
//! 2026-07-28), through rmcp's own client against the real binary: an
//! enforce-mode workflow with findings run as a task parks on its consent
//! question (`input_required`, the question in `inputRequests`), and
//! `tasks/update` answers it; a malformed answer is refused and one to a
//! key nobody asked is ignored, while the task keeps waiting; another
//! principal's update is refused as for an unknown task (raw HTTP with two
//! tokens), also through a second replica sharing Redis; an unanswered
//! task fails at `tasks.input_timeout`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::time::Duration;

use comfy_sim::{Sim, SimHandle};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig, GetTaskParams, GetTaskResult,
    Implementation, InputResponses, ProtocolVersion, TaskStatus, UpdateTaskParams,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};
use tokio::process::Command;

mod support;

const CONFIG: &str = "rate_limits:\n  workflow: 1000\n  generation: 1000\n  file_ops: 1000\n  read_only: 1000\nsecurity:\n  mode: enforce\n";
const LIMIT: Duration = Duration::from_secs(30);

/// A 2026-07-28 client that declares elicitation and tasks, and answers
/// questions only through `tasks/update`.
#[derive(Clone)]
struct TaskUser;

impl ClientHandler for TaskUser {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder()
                .enable_elicitation()
                .enable_tasks()
                .build(),
            Implementation::new("task-input-test", "1"),
        )
    }
}

/// A workflow the inspector flags (code in a string) that enforce mode
/// runs only with a yes.
fn flagged() -> String {
    json!({
        "1": {"class_type": "PrimitiveString", "inputs": {"value": "eval('1')"}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
    })
    .to_string()
}

/// The binary over stdio with `tasks` settings, speaking 2026-07-28.
async fn start(tasks: &str) -> (RunningService<RoleClient, TaskUser>, SimHandle, tempfile::TempDir) {
    let sim = Sim::builder().steps_per_second(500.0).start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    support::write_config(home.path(), &format!("{CONFIG}tasks:\n  enabled: true\n{tasks}"));
    let mut cmd = support::comfy_mcp(home.path());
    cmd.env("COMFYUI_URL", sim.url());
    let child = TokioChildProcess::new(Command::from(cmd)).unwrap();
    let client = TaskUser
        .serve_with_lifecycle(
            child,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    (client, sim, home)
}

/// Starts the flagged workflow as a task; its id.
async fn start_task(client: &RunningService<RoleClient, TaskUser>) -> String {
    let Value::Object(args) = json!({"workflow": flagged(), "wait": true}) else {
        unreachable!()
    };
    let started = client
        .call_tool_once(CallToolRequestParams::new("comfyui_run_workflow").with_arguments(args))
        .await
        .unwrap();
    match started {
        CallToolResponse::Task(created) => created.task.task_id,
        other => panic!("expected a task, got {other:?}"),
    }
}

/// The task's state once it waits for input; its one question's key.
async fn parked(client: &RunningService<RoleClient, TaskUser>, id: &str) -> String {
    let got = support::task_ended(client, id, LIMIT).await;
    let wire = serde_json::to_value(&got).unwrap();
    assert_eq!(wire["status"], "input_required", "{wire}");
    let requests = wire["inputRequests"].as_object().unwrap();
    assert_eq!(requests.len(), 1, "{wire}");
    let (key, question) = requests.iter().next().unwrap();
    assert_eq!(question["method"], "elicitation/create", "{wire}");
    assert!(
        question["params"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Workflow has 1 warning(s) in enforce mode: ["),
        "{wire}"
    );
    assert!(wire.get("requestState").is_none(), "{wire}");
    key.clone()
}

fn answer(key: &str, answer: Value) -> InputResponses {
    InputResponses::from([(key.to_owned(), answer)])
}

fn status(got: &GetTaskResult) -> TaskStatus {
    got.task.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_waits_for_its_consent_question_and_resumes_on_tasks_update() {
    let (client, sim, _home) = start("").await;
    let id = start_task(&client).await;
    let key = parked(&client, &id).await;
    assert_eq!(sim.requests("/prompt"), 0, "nothing runs before the yes");
    let yes = answer(&key, json!({"action": "accept", "content": {"proceed": true}}));
    client
        .update_task(UpdateTaskParams::new(id.clone(), yes.clone()))
        .await
        .unwrap();
    let done = support::task_ended(&client, &id, LIMIT).await;
    let wire = serde_json::to_value(&done).unwrap();
    assert_eq!(wire["status"], "completed", "{wire}");
    assert_ne!(wire["result"]["isError"], true, "{wire}");
    assert_eq!(sim.requests("/prompt"), 1);
    // The task is over: a second answer is acknowledged and changes nothing.
    client
        .update_task(UpdateTaskParams::new(id.clone(), yes))
        .await
        .unwrap();
    let after = client.get_task(GetTaskParams::new(id.clone())).await.unwrap();
    assert_eq!(status(&after), TaskStatus::Completed);
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_answer_is_refused_and_a_no_blocks_the_workflow() {
    let (client, sim, _home) = start("").await;
    let id = start_task(&client).await;
    let key = parked(&client, &id).await;
    // Accepted without the schema's required field; not an answer.
    for bad in [
        answer(&key, json!({"action": "accept", "content": {}})),
        answer(&key, json!("yes")),
    ] {
        let err = client
            .update_task(UpdateTaskParams::new(id.clone(), bad.clone()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not answer its request"), "{bad:?}: {err}");
    }
    // A key nobody asked is ignored (SEP-2663): acknowledged, no answer.
    let stray = answer("1.other", json!({"action": "accept", "content": {"proceed": true}}));
    client
        .update_task(UpdateTaskParams::new(id.clone(), stray))
        .await
        .unwrap();
    let got = client.get_task(GetTaskParams::new(id.clone())).await.unwrap();
    assert_eq!(status(&got), TaskStatus::InputRequired, "still waiting: {got:?}");
    let no = answer(&key, json!({"action": "accept", "content": {"proceed": false}}));
    client.update_task(UpdateTaskParams::new(id.clone(), no)).await.unwrap();
    let done = support::task_ended(&client, &id, LIMIT).await;
    let wire = serde_json::to_value(&done).unwrap();
    assert_eq!(wire["status"], "completed", "{wire}");
    assert_eq!(wire["result"]["isError"], true, "{wire}");
    assert!(
        wire["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Workflow blocked by user — dangerous nodes: ["),
        "{wire}"
    );
    assert_eq!(sim.requests("/prompt"), 0, "nothing was queued");
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_task_fails_at_its_deadline() {
    let (client, sim, _home) = start("  input_timeout: 1\n").await;
    let id = start_task(&client).await;
    parked(&client, &id).await;
    let ended = support::until("the task to fail", LIMIT, || async {
        let got = client.get_task(GetTaskParams::new(id.clone())).await.unwrap();
        (status(&got) != TaskStatus::InputRequired).then_some(got)
    })
    .await;
    let wire = serde_json::to_value(&ended).unwrap();
    assert_eq!(wire["status"], "failed", "{wire}");
    assert!(
        wire["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not answered in time"),
        "{wire}"
    );
    assert_eq!(sim.requests("/prompt"), 0);
    client.cancel().await.unwrap();
}

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789abc";

/// One stateless 2026-07-28 request as raw HTTP with `token`: the
/// JSON-RPC answer. `name` is the request's `Mcp-Name`.
fn rpc(addr: &str, token: &str, method: &str, name: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {
            "elicitation": {"form": {}},
            "extensions": {"io.modelcontextprotocol/tasks": {}},
        },
    });
    let (status, message) = support::post_2026(addr, token, (method, name), &params, &[]);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}: {message}");
    message
}

/// `rpc` off the test's runtime.
async fn rpc_async(addr: &str, token: &'static str, method: &'static str, name: &str, params: Value) -> Value {
    let (addr, name) = (addr.to_owned(), name.to_owned());
    tokio::task::spawn_blocking(move || rpc(&addr, token, method, &name, params))
        .await
        .unwrap()
}

/// The binary with the remote transport, two principals and tasks.
fn serve_http(home: &tempfile::TempDir, sim: &SimHandle, extra: &str) -> support::HttpServer {
    support::http_server(
        home.path(),
        &sim.url(),
        &format!(
            "{CONFIG}tasks:\n  enabled: true\ntransport:\n  remote:\n    enabled: true\n    port: 0\n    auth_tokens:\n      alice: {ALICE}\n      bob: {BOB}\n{extra}"
        ),
    )
}

/// Alice starts the flagged workflow as a task at `addr`: its id.
async fn start_raw(addr: &str) -> String {
    let call = json!({"name": "comfyui_run_workflow", "arguments": {"workflow": flagged(), "wait": true}});
    let created = rpc_async(addr, ALICE, "tools/call", "comfyui_run_workflow", call).await;
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    created["result"]["taskId"].as_str().unwrap().to_owned()
}

/// Waits until Alice reads task `id` at `addr` in `status`: its state.
async fn raw_status(addr: &str, id: &str, status: &str) -> Value {
    support::until(&format!("task {id} to be {status}"), LIMIT, || async {
        let got = rpc_async(addr, ALICE, "tasks/get", id, json!({"taskId": id})).await;
        (got["result"]["status"] == status).then_some(got)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_principal_that_started_a_task_may_answer_it() {
    let sim = Sim::builder().steps_per_second(500.0).start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = serve_http(&home, &sim, "");
    let addr = server.addr().to_owned();
    let id = start_raw(&addr).await;
    let get = json!({"taskId": id});
    let waiting = raw_status(&addr, &id, "input_required").await;
    let key = waiting["result"]["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let update = json!({"taskId": id, "inputResponses": {key: {"action": "accept", "content": {"proceed": true}}}});
    // Bob holding the id and the key: the answer for an unknown task.
    let stolen = rpc_async(&addr, BOB, "tasks/update", &id, update.clone()).await;
    assert_eq!(stolen["error"]["code"], -32602, "{stolen}");
    assert_eq!(stolen["error"]["message"], format!("no task {id:?}"), "{stolen}");
    let peek = rpc_async(&addr, BOB, "tasks/get", &id, get.clone()).await;
    assert_eq!(peek["error"]["code"], -32602, "{peek}");
    let still = rpc_async(&addr, ALICE, "tasks/get", &id, get.clone()).await;
    assert_eq!(still["result"]["status"], "input_required", "{still}");
    assert_eq!(sim.requests("/prompt"), 0, "Bob's yes ran nothing");
    // Alice's answer: acknowledged, and the workflow runs.
    let ack = rpc_async(&addr, ALICE, "tasks/update", &id, update).await;
    assert_eq!(ack["result"], json!({"resultType": "complete"}), "{ack}");
    let done = raw_status(&addr, &id, "completed").await;
    assert_ne!(done["result"]["result"]["isError"], true, "{done}");
    assert_eq!(sim.requests("/prompt"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_waiting_at_one_replica_is_answered_through_another() {
    let Some(redis) = support::redis().await else { return };
    let sim = Sim::builder().steps_per_second(500.0).start().await.unwrap();
    let shared = format!("state:\n  redis_url: {}\n", redis.url());
    let (h1, h2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (s1, s2) = (serve_http(&h1, &sim, &shared), serve_http(&h2, &sim, &shared));
    let (one, two) = (s1.addr().to_owned(), s2.addr().to_owned());
    let id = start_raw(&one).await;
    // Replica 2 shows the question replica 1's task waits on.
    let waiting = raw_status(&two, &id, "input_required").await;
    let requests = waiting["result"]["inputRequests"].as_object().unwrap();
    assert_eq!(requests.len(), 1, "{waiting}");
    let key = requests.keys().next().unwrap().clone();
    let update = |a: Value| json!({"taskId": id, "inputResponses": {key.clone(): a}});
    let yes = json!({"action": "accept", "content": {"proceed": true}});
    // There too, Bob is refused and a malformed answer is refused.
    let stolen = rpc_async(&two, BOB, "tasks/update", &id, update(yes.clone())).await;
    assert_eq!(stolen["error"]["code"], -32602, "{stolen}");
    let bad = rpc_async(&two, ALICE, "tasks/update", &id, update(json!({"action": "accept"}))).await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    assert!(bad.to_string().contains("does not answer its request"), "{bad}");
    assert_eq!(sim.requests("/prompt"), 0);
    // Alice's answer through replica 2 resumes the task on replica 1.
    let ack = rpc_async(&two, ALICE, "tasks/update", &id, update(yes)).await;
    assert_eq!(ack["result"], json!({"resultType": "complete"}), "{ack}");
    let done = raw_status(&two, &id, "completed").await;
    assert_ne!(done["result"]["result"]["isError"], true, "{done}");
    assert_eq!(sim.requests("/prompt"), 1);
}
