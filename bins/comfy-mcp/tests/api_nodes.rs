//! Paid API nodes end to end, against the 0.33.0 simulator (which serves
//! entries recorded from the real 0.33.0): the tools say which nodes spend
//! money and with whom, enforce mode asks (or refuses when it cannot ask)
//! unless `security.allow_api_nodes`, and the Comfy account key reaches
//! ComfyUI but never the audit log, a result or an error, even from a
//! server that echoes it back.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use comfy_sim::{ComfyVersion, Faults, HttpFault, Sim};
use serde_json::{Value, json};
use support::{ok, start_sim, text};

const LIMITS: &str = "rate_limits:\n  workflow: 1000\n  generation: 1000\n  file_ops: 1000\n  read_only: 1000\n";

/// A key in the shape platform.comfy.org issues.
const KEY: &str = "comfyui-87d01e28d0c4a7f1e9b2356d8a0f4c1be7d9a2c6f3b5e8d1a4c7f0b3e6d9a2c5";
/// A key of another shape, given as the argument.
const ARG_KEY: &str = "my-own-comfy-key-4f1e9b2356d8a0f4";

fn sim() -> comfy_sim::SimBuilder {
    Sim::builder().comfyui_version(ComfyVersion::V0_33_0)
}

/// `OpenAIDalle3` into `SaveImage`.
fn paid() -> String {
    json!({
        "1": {"class_type": "OpenAIDalle3", "inputs": {"prompt": "a fox", "seed": 0, "quality": "standard", "style": "natural", "size": "1024x1024"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "paid"}},
    })
    .to_string()
}

/// Asserts neither key appears anywhere in `haystack`.
fn clean(what: &str, haystack: &str) {
    for k in [KEY, ARG_KEY, &KEY[..40]] {
        assert!(!haystack.contains(k), "{what} leaks a key: {haystack}");
    }
}

fn whole(r: &rmcp::model::CallToolResult) -> String {
    serde_json::to_string(r).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tools_say_which_nodes_spend_money_and_with_whom() {
    let s = start_sim(LIMITS, sim()).await;
    let v = ok(&s
        .call(
            "comfyui_list_nodes",
            json!({"api_node": true, "limit": 100, "fields": ["service", "category"]}),
        )
        .await)
    .clone();
    let items = v["items"].as_array().unwrap();
    let find = |c: &str| items.iter().find(|i| i["name"] == c).cloned();
    assert_eq!(find("ClaudeNode").unwrap()["service"], "Anthropic", "{v}");
    assert_eq!(find("ClaudeNode").unwrap()["category"], "partner/text/Anthropic");
    assert!(find("OpenAIInputFiles").is_none(), "a helper, not an API node");
    let not = ok(&s
        .call("comfyui_list_nodes", json!({"api_node": false, "name": "openai"}))
        .await)
    .clone();
    assert!(
        not["items"].as_array().unwrap().iter().all(|i| i != "OpenAIDalle3"),
        "{not}"
    );
    let info = ok(&s
        .call("comfyui_get_node_info", json!({"node_class": "ClaudeNode"}))
        .await)
    .clone();
    assert_eq!(
        (info["api_node"].clone(), info["service"].clone()),
        (json!(true), json!("Anthropic"))
    );

    for tool in [
        "comfyui_validate_workflow",
        "comfyui_dry_run",
        "comfyui_analyze_workflow",
    ] {
        let v = ok(&s.call(tool, json!({"workflow": paid()})).await).clone();
        assert_eq!(
            v["api_nodes"],
            json!([{"node": "1", "class": "OpenAIDalle3", "service": "OpenAI"}]),
            "{tool}: {v}"
        );
        assert!(
            v["spending"]
                .as_str()
                .unwrap()
                .contains("charges the user's Comfy account"),
            "{tool}"
        );
    }
    let v = ok(&s.call("comfyui_validate_workflow", json!({"workflow": paid()})).await).clone();
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "node.api"),
        "{v}"
    );
    // Audit mode runs it with a warning; without a key ComfyUI's API
    // client refuses as the real one does.
    let r = s
        .call("comfyui_run_workflow", json!({"workflow": paid(), "wait": true}))
        .await;
    let all = whole(&r);
    assert!(
        all.contains("Paid API node: OpenAIDalle3 (node 1) sends its inputs to OpenAI"),
        "{all}"
    );
    assert!(
        all.contains("Unauthorized: Please login first to use this node."),
        "{all}"
    );
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_mode_refuses_without_a_yes_unless_the_config_allows_them() {
    let config = format!("{LIMITS}security:\n  mode: enforce\n");
    let s = start_sim(&config, sim()).await;
    let r = s.call("comfyui_run_workflow", json!({"workflow": paid()})).await;
    assert_eq!(r.is_error, Some(true));
    let t = text(&r);
    assert!(t.contains("Paid API node: OpenAIDalle3 (node 1)"), "{t}");
    assert!(t.contains("security.allow_api_nodes: true"), "{t}");
    assert_eq!(s.sim.requests("/prompt"), 0, "nothing was queued");
    s.client.cancel().await.unwrap();

    let config = format!("{LIMITS}security:\n  mode: enforce\n  allow_api_nodes: true\n");
    let s = start_sim(&config, sim()).await;
    let r = s.call("comfyui_run_workflow", json!({"workflow": paid()})).await;
    let v = ok(&r).clone();
    assert_eq!(v["status"], "submitted", "{v}");
    assert_eq!(v["api_nodes"][0]["service"], "OpenAI", "still said: {v}");
    assert!(v.get("warnings").is_none(), "{v}");
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_key_reaches_comfyui_and_nothing_else() {
    // The key from the config, and another as the argument.
    let config = format!("{LIMITS}comfyui:\n  api_key_comfy_org: {KEY}\n");
    let s = start_sim(&config, sim()).await;
    let mut outputs = Vec::new();
    // From the config: the job runs (the simulator, like ComfyUI, fails an
    // API node that comes without a key).
    let r = s
        .call("comfyui_run_workflow", json!({"workflow": paid(), "wait": true}))
        .await;
    let v = ok(&r).clone();
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["api_nodes"][0]["class"], "OpenAIDalle3");
    outputs.push(whole(&r));
    // From the argument, through the streaming tool too.
    for (tool, mut args) in [
        ("comfyui_run_workflow", json!({"wait": true})),
        ("comfyui_run_workflow_stream", json!({})),
    ] {
        args["workflow"] = json!(paid());
        args["api_key_comfy_org"] = json!(ARG_KEY);
        let r = s.call(tool, args).await;
        assert_ne!(r.is_error, Some(true), "{}", text(&r));
        outputs.push(whole(&r));
    }
    // The key inside the workflow itself, where a confused user might put
    // it, and everything that lists jobs afterwards.
    let in_graph = json!({"1": {"class_type": "OpenAIDalle3", "inputs": {"prompt": format!("key {KEY}")}},
                          "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "k"}}});
    outputs.push(whole(
        &s.call("comfyui_validate_workflow", json!({"workflow": in_graph.to_string()}))
            .await,
    ));
    for (tool, args) in [
        ("comfyui_get_queue", json!({})),
        ("comfyui_get_history", json!({})),
        ("comfyui_list_jobs", json!({})),
    ] {
        outputs.push(whole(&s.call(tool, args).await));
    }
    // A server (or proxy) that quotes the request back in its refusal.
    s.sim.set_faults(Faults::none().route("/prompt", HttpFault::Echo));
    for args in [
        json!({"workflow": paid()}),
        json!({"workflow": paid(), "api_key_comfy_org": ARG_KEY}),
    ] {
        let r = s.call("comfyui_run_workflow", args).await;
        assert_eq!(r.is_error, Some(true));
        let all = whole(&r);
        assert!(all.contains("[REDACTED]"), "the echo came back, masked: {all}");
        outputs.push(all);
    }
    s.sim.set_faults(Faults::none());
    // A malformed key argument is not quoted in the refusal.
    let long = format!("{ARG_KEY}{}", "x".repeat(600));
    let r = s
        .call(
            "comfyui_run_workflow",
            json!({"workflow": paid(), "api_key_comfy_org": long}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("not shown: a secret"), "{}", text(&r));
    outputs.push(whole(&r));
    for (i, o) in outputs.iter().enumerate() {
        clean(&format!("result {i}"), o);
    }
    let audit_file = s.audit_file();
    let home = s.home;
    s.client.cancel().await.unwrap();
    let audit = std::fs::read_to_string(audit_file).unwrap();
    drop(home);
    assert!(audit.contains("OpenAIDalle3"), "the calls were audited");
    clean("the audit log", &audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_is_sent_for_a_workflow_without_api_nodes() {
    let config = format!("{LIMITS}comfyui:\n  api_key_comfy_org: {KEY}\n");
    let s = start_sim(&config, sim()).await;
    // The simulator's history would show `extra_data` as sent, less the
    // keys ComfyUI strips; what it strips it cannot show, so ask it to
    // echo the submission instead.
    s.sim.set_faults(Faults::none().route("/prompt", HttpFault::Echo));
    let plain = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "p"}},
    });
    let r = s
        .call("comfyui_run_workflow", json!({"workflow": plain.to_string()}))
        .await;
    let all = whole(&r);
    assert!(all.contains("EmptyImage"), "the echo: {all}");
    assert!(!all.contains("api_key_comfy_org"), "a key was sent: {all}");
    let r = s.call("comfyui_run_workflow", json!({"workflow": paid()})).await;
    assert!(
        whole(&r).contains("api_key_comfy_org"),
        "the key is sent with API nodes"
    );
    s.client.cancel().await.unwrap();
}

#[test]
fn the_simulator_fixture_is_the_real_0_33_shape() {
    let path = format!(
        "{}/../../fixtures/comfyui-0.33/object_info_api_nodes.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(v["ClaudeNode"]["api_node"], true);
    assert_eq!(v["OpenAIDalle3"]["category"], "partner/image/OpenAI");
    assert!(v["OpenAIDalle3"]["price_badge"].is_object());
    assert!(v["OpenAIInputFiles"].get("api_node").is_none_or(|a| a == false));
}
