//! Consent on both MCP revisions, through rmcp's own client against the
//! real binary: before 2026-07-28 the server asks through elicitation
//! mid-call; on 2026-07-28 (no session) it answers with an input-required
//! result and the client calls again with the answer and the sealed
//! request state. Enforce-mode workflows with findings, paid API nodes and
//! custom node installs all ask this way. Hostile cases: a forged state, a
//! state replayed, a state for other arguments, over stdio and, with two
//! principals, over stateless HTTP with raw requests (a state for another
//! principal). Expiry is in the unit tests of `consent/` (five minutes).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::sync::{Arc, Mutex};

use comfy_sim::{ComfyVersion, Sim, SimHandle};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, Implementation, InputResponses, ProtocolVersion,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RequestContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::{Value, json};
use support::text;
use tokio::process::Command;

mod support;

const LIMITS: &str = "rate_limits:\n  workflow: 1000\n  generation: 1000\n  file_ops: 1000\n  read_only: 1000\n";
const ENFORCE: &str = "security:\n  mode: enforce\n  allowed_custom_nodes: [comfyui-kjnodes]\n";

/// A client that answers every elicitation with `proceed` (or declines
/// with `None`), and keeps the questions.
#[derive(Clone)]
struct User {
    proceed: Arc<Mutex<Option<bool>>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl User {
    fn new(proceed: Option<bool>) -> Self {
        Self {
            proceed: Arc::new(Mutex::new(proceed)),
            asked: Arc::default(),
        }
    }

    fn questions(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl ClientHandler for User {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_elicitation().build(),
            Implementation::new("consent-test", "1"),
        )
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = &request {
            self.asked.lock().unwrap().push(message.clone());
        }
        Ok(match *self.proceed.lock().unwrap() {
            Some(p) => ElicitResult::new(ElicitationAction::Accept).with_content(json!({"proceed": p})),
            None => ElicitResult::new(ElicitationAction::Decline),
        })
    }
}

struct Running {
    client: RunningService<RoleClient, User>,
    user: User,
    sim: SimHandle,
    home: tempfile::TempDir,
}

impl Running {
    async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        self.client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args.as_object().unwrap().clone()))
            .await
            .unwrap()
    }

    async fn once(&self, params: CallToolRequestParams) -> CallToolResponse {
        self.client.call_tool_once(params).await.unwrap()
    }
}

/// The binary over stdio, speaking `version` (2026-07-28 without a
/// handshake, else `initialize`), against `sim`.
async fn start(config: &str, sim: comfy_sim::SimBuilder, version: ProtocolVersion, user: User) -> Running {
    let sim = sim.start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    support::write_config(home.path(), config);
    let mut cmd = support::comfy_mcp(home.path());
    cmd.env("COMFYUI_URL", sim.url());
    let cmd = Command::from(cmd);
    let child = TokioChildProcess::new(cmd).unwrap();
    let client = if version >= ProtocolVersion::V_2026_07_28 {
        user.clone()
            .serve_with_lifecycle(
                child,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![version],
                },
            )
            .await
            .unwrap()
    } else {
        user.clone().serve(child).await.unwrap()
    };
    Running {
        client,
        user,
        sim,
        home,
    }
}

fn manager() -> comfy_sim::SimBuilder {
    Sim::builder().steps_per_second(500.0).manager(true)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_revisions_ask_before_an_install_and_a_flagged_workflow() {
    for version in [ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28] {
        let s = start(
            &format!("{LIMITS}{ENFORCE}"),
            manager(),
            version.clone(),
            User::new(Some(true)),
        )
        .await;
        let r = s
            .call("comfyui_install_custom_node", json!({"node_id": "comfyui-kjnodes"}))
            .await;
        assert!(
            text(&r).starts_with("Node pack 'comfyui-kjnodes' operation completed."),
            "{version}: {}",
            text(&r)
        );
        let r = s.call("comfyui_run_workflow", json!({"workflow": flagged()})).await;
        assert_ne!(r.is_error, Some(true), "{version}: {}", text(&r));
        assert_eq!(r.structured_content.as_ref().unwrap()["status"], "submitted");
        let asked = s.user.questions();
        assert_eq!(asked.len(), 2, "{version}: {asked:?}");
        assert!(
            asked[0].starts_with("Install custom node pack 'comfyui-kjnodes'"),
            "{asked:?}"
        );
        assert!(
            asked[1].starts_with("Workflow has 1 warning(s) in enforce mode: ["),
            "{asked:?}"
        );
        // No: nothing runs.
        *s.user.proceed.lock().unwrap() = Some(false);
        let before = s.sim.requests("/prompt");
        let r = s.call("comfyui_run_workflow", json!({"workflow": flagged()})).await;
        assert_eq!(r.is_error, Some(true));
        assert!(
            text(&r).starts_with("Workflow blocked by user — dangerous nodes: ["),
            "{}",
            text(&r)
        );
        *s.user.proceed.lock().unwrap() = None;
        let r = s
            .call(
                "comfyui_install_custom_node",
                json!({"node_id": "comfyui-kjnodes", "version": "1.0.0"}),
            )
            .await;
        assert_eq!(
            text(&r),
            "The user declined to install node pack 'comfyui-kjnodes'",
            "{version}"
        );
        assert_eq!(s.sim.requests("/prompt"), before, "{version}: nothing was queued");
        s.client.cancel().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_api_node_asks_on_2026_07_28() {
    let paid = json!({
        "1": {"class_type": "OpenAIDalle3", "inputs": {"prompt": "a fox", "seed": 0, "quality": "standard", "style": "natural", "size": "1024x1024"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "paid"}},
    })
    .to_string();
    let s = start(
        &format!("{LIMITS}security:\n  mode: enforce\n"),
        Sim::builder().comfyui_version(ComfyVersion::V0_33_0),
        ProtocolVersion::V_2026_07_28,
        User::new(Some(true)),
    )
    .await;
    let r = s.call("comfyui_run_workflow", json!({"workflow": paid})).await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    assert_eq!(r.structured_content.as_ref().unwrap()["status"], "submitted");
    let asked = s.user.questions();
    assert!(
        asked.len() == 1 && asked[0].contains("Paid API node: OpenAIDalle3 (node 1)"),
        "{asked:?}"
    );
    s.client.cancel().await.unwrap();
}

/// How many Manager tasks the server queued (its audit log's `queued`
/// records: written just before the task is sent to ComfyUI-Manager).
fn queued(home: &tempfile::TempDir) -> usize {
    std::fs::read_to_string(home.path().join(".comfyui-mcp/audit.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(r#""action":"queued""#))
        .count()
}

/// The first round by hand: the input-required result's state.
async fn first_round(s: &Running, params: &CallToolRequestParams) -> String {
    match s.once(params.clone()).await {
        CallToolResponse::InputRequired(ir) => {
            let requests = ir.input_requests.expect("a question");
            assert!(requests.contains_key("confirm"), "{requests:?}");
            ir.request_state.expect("a request state")
        }
        other => panic!("expected a question, got {other:?}"),
    }
}

fn yes() -> InputResponses {
    let mut r = InputResponses::new();
    r.insert(
        "confirm".to_owned(),
        json!({"action": "accept", "content": {"proceed": true}}),
    );
    r
}

fn completed(r: CallToolResponse) -> CallToolResult {
    match r {
        CallToolResponse::Complete(r) => r,
        other => panic!("expected a result, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_forge_or_reuse_a_yes() {
    let s = start(
        &format!("{LIMITS}{ENFORCE}"),
        manager(),
        ProtocolVersion::V_2026_07_28,
        User::new(Some(true)),
    )
    .await;
    let install = |args: Value| {
        CallToolRequestParams::new("comfyui_install_custom_node").with_arguments(args.as_object().unwrap().clone())
    };
    let params = install(json!({"node_id": "comfyui-kjnodes"}));
    let state = first_round(&s, &params).await;
    let installs = || queued(&s.home);
    let refused = |r: &CallToolResult, why: &str| {
        assert_eq!(r.is_error, Some(true), "{why}: {}", text(r));
        assert!(text(r).contains("requestState"), "{why}: {}", text(r));
    };
    // A made-up state, and the real one altered.
    let mut altered = state.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    for (forged, why) in [
        ("rs1.AAAAAAAAAAA.AAAA".to_owned(), "a made-up state"),
        (altered, "an altered state"),
        ("yes".to_owned(), "a bare yes"),
    ] {
        let r = completed(
            s.once(params.clone().with_input_responses(yes()).with_request_state(forged))
                .await,
        );
        refused(&r, why);
    }
    // The real state for other arguments.
    let r = completed(
        s.once(
            install(json!({"node_id": "comfyui-kjnodes", "version": "9.9.9"}))
                .with_input_responses(yes())
                .with_request_state(state.clone()),
        )
        .await,
    );
    refused(&r, "other arguments");
    // Answers without a state: asked again, with a new state (a yes
    // counts only with the state of its question).
    match s.once(params.clone().with_input_responses(yes())).await {
        CallToolResponse::InputRequired(ir) => {
            assert!(ir.request_state.is_some_and(|n| n != state), "a new state");
        }
        other => panic!("answers without a state were not asked again: {other:?}"),
    }
    assert_eq!(installs(), 0, "nothing was installed");
    // The real state with a yes: once.
    let r = completed(
        s.once(
            params
                .clone()
                .with_input_responses(yes())
                .with_request_state(state.clone()),
        )
        .await,
    );
    assert!(
        text(&r).starts_with("Node pack 'comfyui-kjnodes' operation completed."),
        "{}",
        text(&r)
    );
    let done = installs();
    assert_eq!(done, 1);
    let r = completed(
        s.once(params.clone().with_input_responses(yes()).with_request_state(state))
            .await,
    );
    refused(&r, "a replayed state");
    assert!(text(&r).contains("used already"), "{}", text(&r));
    assert_eq!(installs(), done, "the replay installed nothing");
    // The audit log says what happened.
    let log = std::fs::read_to_string(s.home.path().join(".comfyui-mcp/audit.log")).unwrap();
    assert!(log.contains(r#""outcome":"input_required""#), "{log}");
    assert!(log.contains("elicitation_accepted"), "{log}");
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_elicitation_is_refused_in_enforce_mode_on_2026_07_28() {
    #[derive(Clone)]
    struct Mute;
    impl ClientHandler for Mute {}
    let sim = Sim::builder().steps_per_second(500.0).start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".comfyui-mcp")).unwrap();
    std::fs::write(
        home.path().join(".comfyui-mcp/config.yaml"),
        format!("{LIMITS}{ENFORCE}"),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"));
    cmd.env("HOME", home.path())
        .env("COMFYUI_URL", sim.url())
        .env_remove("COMFYUI_MCP_CONFIG");
    let client = Mute
        .serve_with_lifecycle(
            TokioChildProcess::new(cmd).unwrap(),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    let r = client
        .call_tool_once(
            CallToolRequestParams::new("comfyui_run_workflow")
                .with_arguments(json!({"workflow": flagged()}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let r = completed(r);
    assert_eq!(r.is_error, Some(true));
    assert!(
        text(&r).starts_with("Workflow blocked — dangerous nodes: ["),
        "{}",
        text(&r)
    );
    assert_eq!(sim.requests("/prompt"), 0);
    client.cancel().await.unwrap();
}

/// The binary with the remote transport and two principals.
fn start_http(sim: &SimHandle, home: &tempfile::TempDir) -> support::HttpServer {
    support::http_server(
        home.path(),
        &sim.url(),
        &format!(
            "{LIMITS}{ENFORCE}transport:\n  remote:\n    enabled: true\n    port: 0\n    auth_tokens:\n      alice: alice-token-0123456789\n      bob: bob-token-0123456789abc\n"
        ),
    )
}

/// One stateless 2026-07-28 `tools/call` as raw HTTP; the JSON-RPC answer.
fn call_2026(addr: &str, token: &str, args: &Value, state: Option<&str>) -> Value {
    let mut params = json!({
        "name": "comfyui_install_custom_node",
        "arguments": args,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
        },
    });
    if let Some(state) = state {
        params["requestState"] = json!(state);
        params["inputResponses"] = json!({"confirm": {"action": "accept", "content": {"proceed": true}}});
    }
    let call = ("tools/call", "comfyui_install_custom_node");
    let (status, message) = support::post_2026(addr, token, call, &params, &[]);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}: {message}");
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_stateless_http_a_state_answers_only_its_principal() {
    let sim = manager().start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = start_http(&sim, &home);
    let addr = server.addr().to_owned();
    let (alice, bob) = ("alice-token-0123456789", "bob-token-0123456789abc");
    let args = json!({"node_id": "comfyui-kjnodes"});
    let (a, b) = (addr.clone(), args.clone());
    let first = tokio::task::spawn_blocking(move || call_2026(&a, alice, &b, None))
        .await
        .unwrap();
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let question = &first["result"]["inputRequests"]["confirm"];
    assert_eq!(question["method"], "elicitation/create", "{first}");
    assert!(
        question["params"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Install custom node pack 'comfyui-kjnodes'"),
        "{first}"
    );
    let state = first["result"]["requestState"].as_str().unwrap().to_owned();
    // Bob with Alice's state: refused.
    let (a, b, st) = (addr.clone(), args.clone(), state.clone());
    let stolen = tokio::task::spawn_blocking(move || call_2026(&a, bob, &b, Some(&st)))
        .await
        .unwrap();
    assert_eq!(stolen["result"]["isError"], true, "{stolen}");
    assert!(stolen.to_string().contains("requestState is not valid"), "{stolen}");
    assert_eq!(queued(&home), 0, "nothing was queued for Bob");
    // Alice with her own: installed.
    let (a, b, st) = (addr.clone(), args.clone(), state.clone());
    let done = tokio::task::spawn_blocking(move || call_2026(&a, alice, &b, Some(&st)))
        .await
        .unwrap();
    assert!(
        done["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Node pack 'comfyui-kjnodes' operation completed."),
        "{done}"
    );
    assert_eq!(queued(&home), 1);
}
