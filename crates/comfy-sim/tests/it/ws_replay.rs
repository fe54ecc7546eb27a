//! WebSocket parity: recorded sessions replayed against the simulator give
//! the recorded frames, in order, after redacting ids, times and the random
//! part of temp file names. Binary frames compare by layout (event type,
//! image type, TEXT payload, preview metadata), not by image bytes.

use comfy_sim::Sim;
use serde_json::{Value, json};
use std::time::Duration;

use crate::support::{Msg, Ws, fixtures, post_json, redact, request, ws_connect, ws_next};

fn ws_meta(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(format!("ws/{name}.meta.json"))).unwrap()).unwrap()
}

/// A binary frame by layout.
fn binary(bytes: &[u8]) -> Value {
    let word = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    match word(0) {
        1 => json!({"event": 1, "image_type": word(4)}),
        3 => {
            let n = word(4) as usize;
            json!({"event": 3, "node": String::from_utf8_lossy(&bytes[8..8 + n]), "text": String::from_utf8_lossy(&bytes[8 + n..])})
        }
        4 => {
            let n = word(4) as usize;
            json!({"event": 4, "metadata": redact(&serde_json::from_slice(&bytes[8..8 + n]).unwrap())})
        }
        other => json!({"event": other}),
    }
}

fn normalize(m: &Msg) -> Value {
    match m {
        Msg::Text(v) => redact(v),
        Msg::Binary(b) => binary(b),
        Msg::Closed => json!("closed"),
    }
}

/// The server-to-client frames of a recording, normalized.
fn recorded(name: &str) -> Vec<Value> {
    crate::support::recorded_ws(name)
        .iter()
        .filter(|f| f["dir"] == "server->client")
        .map(|f| match f["kind"].as_str() {
            Some("binary") => binary(
                &data_encoding::BASE64
                    .decode(f["base64"].as_str().unwrap().as_bytes())
                    .unwrap(),
            ),
            _ => redact(&serde_json::from_str(f["text"].as_str().unwrap()).unwrap()),
        })
        .collect()
}

/// What to do while a replayed run is in flight.
#[derive(Clone, Copy)]
enum During {
    Nothing,
    /// Global `POST /interrupt` once node 2 is executing.
    InterruptGlobal,
    /// A non-matching, then a matching, `POST /interrupt {"prompt_id"}`.
    InterruptById,
}

/// Connects as the recording did, posts its prompt and reads as many frames
/// as were recorded.
async fn replay(sim: &comfy_sim::SimHandle, name: &str, during: During) -> Vec<Value> {
    let meta = ws_meta(name);
    let mut ws = ws_connect(sim.addr(), meta["url"].as_str().unwrap()).await;
    let want = recorded(name).len();
    let mut got = vec![normalize(&ws_next(&mut ws, Duration::from_secs(5)).await.unwrap())];
    if let Some(flags) = meta.get("feature_flags_sent").filter(|f| !f.is_null()) {
        let msg = json!({"type": "feature_flags", "data": flags}).to_string();
        ws.write_frame(fastwebsockets::Frame::text(fastwebsockets::Payload::Owned(
            msg.into_bytes(),
        )))
        .await
        .unwrap();
        got.push(normalize(&ws_next(&mut ws, Duration::from_secs(5)).await.unwrap()));
    }
    let reply = post_json(sim.addr(), "/prompt", &meta["request_body"]).await;
    assert_eq!(reply.status, 200, "{name}: {:?}", reply.body);
    let id = reply.prompt_id();
    read_rest(sim, &mut ws, &mut got, want, &id, during).await;
    got
}

async fn read_rest(
    sim: &comfy_sim::SimHandle,
    ws: &mut Ws,
    got: &mut Vec<Value>,
    want: usize,
    id: &str,
    during: During,
) {
    while got.len() < want {
        let Some(m) = ws_next(ws, Duration::from_secs(20)).await else {
            break;
        };
        let v = normalize(&m);
        let executing_2 = v["type"] == "executing" && v["data"]["node"] == "2";
        got.push(v);
        if executing_2 {
            match during {
                During::Nothing => {}
                During::InterruptGlobal => {
                    request(sim.addr(), "POST", "/interrupt", &[], Vec::new()).await;
                }
                During::InterruptById => {
                    post_json(
                        sim.addr(),
                        "/interrupt",
                        &json!({"prompt_id": "00000000-0000-0000-0000-000000000000"}),
                    )
                    .await;
                    // Time is the subject: the recording's gap between the
                    // two interrupts.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    post_json(sim.addr(), "/interrupt", &json!({"prompt_id": id})).await;
                }
            }
        }
    }
}

#[tokio::test]
async fn recorded_sessions_replay_frame_for_frame() {
    let sim = Sim::builder().start().await.unwrap();
    // In recording order where the cache matters: 04 re-runs 03's prompt,
    // 05 and 13 reuse its EmptyImage, 10 and 11 reuse 09's.
    for (name, during) in [
        ("ws_03_run_success_legacy_previews", During::Nothing),
        ("ws_04_run_same_prompt_again_cached", During::Nothing),
        ("ws_05_run_success_metadata_previews", During::Nothing),
        ("ws_13_run_without_client_id_observer", During::Nothing),
        ("ws_06_run_basic_saveimage", During::Nothing),
        ("ws_07_run_previewimage", During::Nothing),
        ("ws_08_run_saveimagewebsocket", During::Nothing),
        ("ws_09_run_execution_error", During::Nothing),
        ("ws_10_run_interrupt_global", During::InterruptGlobal),
        ("ws_11_run_interrupt_by_prompt_id", During::InterruptById),
    ] {
        let got = replay(&sim, name, during).await;
        let want = recorded(name);
        assert_eq!(got.len(), want.len(), "{name}: frame count\n got: {got:#?}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{name}: frame {i}");
        }
    }
}

#[tokio::test]
async fn log_subscription_streams_log_lines_as_recorded() {
    let sim = Sim::builder().start().await.unwrap();
    // The recording's EmptyImage was cached by an earlier run.
    let warm = json!({"prompt": {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 16_711_680}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}});
    let id = post_json(sim.addr(), "/prompt", &warm).await.prompt_id();
    crate::support::wait_history(sim.addr(), &id).await;
    let name = "ws_17_logs_subscription";
    let mut ws = ws_connect(sim.addr(), ws_meta(name)["url"].as_str().unwrap()).await;
    let mut got = vec![normalize(&ws_next(&mut ws, Duration::from_secs(5)).await.unwrap())];
    crate::support::replay(sim.addr(), "patch_internal_logs_subscribe_enable").await;
    let reply = crate::support::replay(sim.addr(), "post_prompt_during_logs_subscription").await;
    let id = reply.prompt_id();
    let want = recorded(name);
    read_rest(&sim, &mut ws, &mut got, want.len(), &id, During::Nothing).await;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        // The duration in "Prompt executed in N seconds" varies.
        if w["type"] == "logs" && w.to_string().contains("Prompt executed in") {
            assert!(g.to_string().contains("Prompt executed in"), "{name}: frame {i}: {g}");
            continue;
        }
        assert_eq!(g, w, "{name}: frame {i}");
    }
    assert_eq!(got.len(), want.len());
}

#[tokio::test]
async fn connect_variants_match_the_recordings() {
    let sim = Sim::builder().start().await.unwrap();
    // No clientId: the server makes a 32-hex-digit sid.
    let mut ws = ws_connect(sim.addr(), "/ws").await;
    let Some(Msg::Text(first)) = ws_next(&mut ws, Duration::from_secs(5)).await else {
        panic!("no status")
    };
    let sid = first["data"]["sid"].as_str().unwrap();
    assert!(sid.len() == 32 && sid.chars().all(|c| c.is_ascii_hexdigit()), "{sid}");
    // Feature flags are answered with the server's.
    let name = "ws_02_connect_with_clientId_and_feature_flags";
    let mut ws = ws_connect(sim.addr(), ws_meta(name)["url"].as_str().unwrap()).await;
    let mut got = vec![normalize(&ws_next(&mut ws, Duration::from_secs(5)).await.unwrap())];
    let msg = json!({"type": "feature_flags", "data": {"supports_preview_metadata": true}}).to_string();
    ws.write_frame(fastwebsockets::Frame::text(fastwebsockets::Payload::Owned(
        msg.into_bytes(),
    )))
    .await
    .unwrap();
    got.push(normalize(&ws_next(&mut ws, Duration::from_secs(5)).await.unwrap()));
    assert_eq!(got, recorded(name));
    // /api/ws is the same endpoint.
    let mut ws = ws_connect(sim.addr(), "/api/ws?clientId=f6f6f6f6-0000-4000-8000-00000000000f").await;
    let first = ws_next(&mut ws, Duration::from_secs(5)).await;
    assert!(matches!(first, Some(Msg::Text(v)) if v["data"]["sid"] == "f6f6f6f6-0000-4000-8000-00000000000f"));
}

#[tokio::test]
async fn a_second_socket_with_the_same_client_id_takes_over() {
    let sim = Sim::builder().start().await.unwrap();
    let url = "/ws?clientId=f6f6f6f6-0000-4000-8000-00000000000f";
    let mut first = ws_connect(sim.addr(), url).await;
    let _ = ws_next(&mut first, Duration::from_secs(5)).await;
    let mut second = ws_connect(sim.addr(), url).await;
    let _ = ws_next(&mut second, Duration::from_secs(5)).await;
    let body = json!({"prompt": crate::support::basic_prompt(), "client_id": "f6f6f6f6-0000-4000-8000-00000000000f"});
    post_json(sim.addr(), "/prompt", &body).await;
    let run = crate::support::ws_until_done(&mut second).await;
    assert!(
        run.iter()
            .any(|m| matches!(m, Msg::Text(v) if v["type"] == "execution_success"))
    );
    assert_eq!(
        ws_next(&mut first, Duration::from_millis(300)).await,
        None,
        "the first socket hears nothing more"
    );
}

#[tokio::test]
async fn another_clients_run_reaches_a_socket_only_as_broadcasts() {
    let sim = Sim::builder().start().await.unwrap();
    let mut a = ws_connect(sim.addr(), "/ws?clientId=a1a1a1a1-0000-4000-8000-00000000000a").await;
    let _ = ws_next(&mut a, Duration::from_secs(5)).await;
    let mut b = ws_connect(sim.addr(), "/ws?clientId=b2b2b2b2-0000-4000-8000-00000000000b").await;
    let _ = ws_next(&mut b, Duration::from_secs(5)).await;
    let prompt = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "FixtureProgress", "inputs": {"image": ["1", 0], "steps": 2, "delay": 0.0, "seed": 9}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}
    });
    post_json(
        sim.addr(),
        "/prompt",
        &json!({"prompt": prompt, "client_id": "b2b2b2b2-0000-4000-8000-00000000000b"}),
    )
    .await;
    let b_run = crate::support::ws_until_done(&mut b).await;
    assert!(
        b_run
            .iter()
            .any(|m| matches!(m, Msg::Text(v) if v["type"] == "executed"))
    );
    let mut a_saw = Vec::new();
    while let Some(m) = ws_next(&mut a, Duration::from_millis(300)).await {
        a_saw.push(normalize(&m));
    }
    // A hears the queue status broadcasts and the node's TEXT frames, nothing of B's execution.
    let kinds: Vec<String> = a_saw
        .iter()
        .map(|v| {
            v["type"]
                .as_str()
                .map_or_else(|| format!("binary{}", v["event"]), str::to_owned)
        })
        .collect();
    assert_eq!(kinds, ["status", "status", "binary3", "binary3", "status"]);
}
