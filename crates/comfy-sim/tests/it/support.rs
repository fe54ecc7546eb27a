//! A minimal HTTP and WebSocket client over hyper and fastwebsockets, so the
//! tests do not depend on the crates under test elsewhere in the workspace.

use bytes::Bytes;
use fastwebsockets::{FragmentCollector, OpCode};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpStream;

pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/comfyui")
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Result<Bytes, String>,
}

impl Reply {
    pub(crate) fn content_type(&self) -> Option<&str> {
        self.headers.get("content-type").and_then(|v| v.to_str().ok())
    }
    pub(crate) fn bytes(&self) -> &Bytes {
        self.body.as_ref().expect("body")
    }
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(self.bytes()).expect("json body")
    }
    /// The `prompt_id` of a `POST /prompt` answer.
    pub(crate) fn prompt_id(&self) -> String {
        self.json()["prompt_id"].as_str().expect("prompt_id").to_owned()
    }
}

/// Queues `prompt` (the node map) and returns its prompt id.
pub(crate) async fn queue(addr: std::net::SocketAddr, prompt: &Value) -> String {
    post_json(addr, "/prompt", &serde_json::json!({ "prompt": prompt }))
        .await
        .prompt_id()
}

pub(crate) async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header("Host", addr.to_string());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tokio::time::timeout(
        Duration::from_secs(30),
        sender.send_request(req.body(Full::new(Bytes::from(body))).unwrap()),
    )
    .await
    .expect("response in time")
    .expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| e.to_string());
    Reply { status, headers, body }
}

pub(crate) async fn get(addr: std::net::SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], Vec::new()).await
}

pub(crate) async fn post_json(addr: std::net::SocketAddr, path: &str, body: &Value) -> Reply {
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

pub(crate) type Ws = FragmentCollector<TokioIo<hyper::upgrade::Upgraded>>;

pub(crate) async fn ws_connect(addr: std::net::SocketAddr, path: &str) -> Ws {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let req = Request::get(path)
        .header("Host", addr.to_string())
        .header("Upgrade", "websocket")
        .header("Connection", "upgrade")
        .header("Sec-WebSocket-Key", fastwebsockets::handshake::generate_key())
        .header("Sec-WebSocket-Version", "13")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let (ws, _) = fastwebsockets::handshake::client(&TokioExecutor::new(), req, stream)
        .await
        .expect("ws handshake");
    FragmentCollector::new(ws)
}

/// A WebSocket message as the tests see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Msg {
    Text(Value),
    Binary(Vec<u8>),
    Closed,
}

pub(crate) async fn ws_next(ws: &mut Ws, wait: Duration) -> Option<Msg> {
    loop {
        let frame = match tokio::time::timeout(wait, ws.read_frame()).await {
            Err(_) => return None,
            Ok(Err(_)) => return Some(Msg::Closed),
            Ok(Ok(f)) => f,
        };
        return Some(match frame.opcode {
            OpCode::Text => Msg::Text(
                serde_json::from_slice(&frame.payload)
                    .unwrap_or(Value::String(String::from_utf8_lossy(&frame.payload).into_owned())),
            ),
            OpCode::Binary => Msg::Binary(frame.payload.to_vec()),
            OpCode::Close => Msg::Closed,
            _ => continue,
        });
    }
}

/// Reads text messages until one of type `until` for `prompt_id`
/// (`executing` with node null ends a run).
pub(crate) async fn ws_until_done(ws: &mut Ws) -> Vec<Msg> {
    let mut out = Vec::new();
    while let Some(m) = ws_next(ws, Duration::from_secs(20)).await {
        let done = matches!(&m, Msg::Text(v) if v["type"] == "executing" && v["data"]["node"].is_null());
        let closed = m == Msg::Closed;
        out.push(m);
        if done || closed {
            break;
        }
    }
    out
}

/// The recorded frames of a WebSocket session.
pub(crate) fn recorded_ws(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("ws").join(format!("{name}.jsonl"))).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

pub(crate) fn basic_prompt() -> Value {
    serde_json::json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 32, "batch_size": 1, "color": 255}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "ComfyUI"}}
    })
}

/// The shared bounded wait, for state that has no event to wait on.
pub(crate) use comfy_test_support::until;

/// Waits until the history holds `id`, or panics after 20 s.
pub(crate) async fn wait_history(addr: std::net::SocketAddr, id: &str) -> Value {
    until(
        &format!("prompt {id} in the history"),
        Duration::from_secs(20),
        || async {
            let h = get(addr, &format!("/history/{id}")).await.json();
            h.get(id).cloned()
        },
    )
    .await
}

/// The `.meta.json` of recorded exchange `name`.
pub(crate) fn exchange(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(format!("http/{name}.meta.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The recorded status of exchange `name`.
pub(crate) fn recorded_status(name: &str) -> u16 {
    exchange(name)["response"]["status"].as_u64().unwrap() as u16
}

/// The recorded `Content-Type` of exchange `name`, if it had one.
pub(crate) fn recorded_content_type(name: &str) -> Option<String> {
    let m = exchange(name);
    m["response"]["headers"].as_array().and_then(|hs| {
        hs.iter()
            .find(|h| h[0].as_str().is_some_and(|k| k.eq_ignore_ascii_case("content-type")))
            .and_then(|h| h[1].as_str())
            .map(str::to_owned)
    })
}

/// The recorded response body of exchange `name` (empty when it had none).
pub(crate) fn recorded_body(name: &str) -> Vec<u8> {
    exchange(name)["response"]["body_file"]
        .as_str()
        .map_or_else(Vec::new, |f| std::fs::read(fixtures().join("http").join(f)).unwrap())
}

/// Sends the recorded request of exchange `name`: method, path, headers and
/// body, as recorded.
pub(crate) async fn replay(addr: std::net::SocketAddr, name: &str) -> Reply {
    let m = exchange(name);
    let req = &m["request"];
    let headers: Vec<(String, String)> = req["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let body = match (req.get("body_base64").and_then(Value::as_str), &req["body"]) {
        (Some(b64), _) => data_encoding::BASE64.decode(b64.as_bytes()).unwrap(),
        (None, Value::String(s)) => s.clone().into_bytes(),
        (None, Value::Null) => Vec::new(),
        (None, other) => other.to_string().into_bytes(),
    };
    request(
        addr,
        req["method"].as_str().unwrap(),
        req["path"].as_str().unwrap(),
        &headers,
        body,
    )
    .await
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Redacts what differs between two runs by nature: prompt ids (the
/// recordings' fixed client ids `xxxxxxxx-0000-4000-8000-...` are kept),
/// times, queue numbers, Python tracebacks and the random part of temp file
/// names.
pub(crate) fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let x = match k.as_str() {
                        "timestamp"
                        | "create_time"
                        | "execution_start_time"
                        | "execution_end_time"
                        | "priority"
                        | "modified"
                        | "created" => Value::String("[time]".into()),
                        "traceback" | "current_inputs" => Value::String("[python]".into()),
                        // A log line's local time.
                        "t" if x.is_string() => Value::String("[time]".into()),
                        _ => redact(x),
                    };
                    (if is_uuid(k) { "[id]".to_owned() } else { k.clone() }, x)
                })
                .collect(),
        ),
        Value::Array(a) => {
            let mut out: Vec<Value> = a.iter().map(redact).collect();
            // A queue/history tuple: [number, id, prompt, extra_data, outputs].
            if a.len() == 5 && a[1].as_str().is_some_and(is_uuid) && a[0].is_i64() {
                out[0] = Value::String("[number]".into());
            }
            Value::Array(out)
        }
        Value::String(s) if is_uuid(s) && !s.contains("-0000-4000-8000-") => Value::String("[id]".into()),
        Value::String(s) if s.starts_with("ComfyUI_temp_") && s.len() > 18 => {
            Value::String(format!("ComfyUI_temp_XXXXX{}", &s[18..]))
        }
        other => other.clone(),
    }
}

/// The shape of a JSON value: its keys and the kinds of its leaves. Maps
/// keyed by ids (UUIDs or node numbers) collapse to one `[key]` entry, and
/// lists to the shape of their first item.
pub(crate) fn skeleton(v: &Value) -> Value {
    match v {
        Value::Object(m) if !m.is_empty() && m.keys().all(|k| is_uuid(k) || k.parse::<u64>().is_ok()) => {
            let mut out = serde_json::Map::new();
            out.insert("[key]".into(), skeleton(m.values().next().unwrap()));
            Value::Object(out)
        }
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), skeleton(x))).collect()),
        Value::Array(a) => Value::Array(a.first().map(skeleton).into_iter().collect()),
        Value::String(_) => Value::String("string".into()),
        Value::Number(n) if n.is_f64() => Value::String("float".into()),
        Value::Number(_) => Value::String("int".into()),
        Value::Bool(_) => Value::String("bool".into()),
        Value::Null => Value::Null,
    }
}

/// Waits until `GET /queue` shows a running prompt, or panics after 5 s.
pub(crate) async fn wait_running(addr: std::net::SocketAddr) {
    until("a running prompt", Duration::from_secs(5), || async {
        get(addr, "/queue").await.json()["queue_running"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
            .then_some(())
    })
    .await;
}

/// Whether two shapes (from [`skeleton`]) agree, where an empty map or list
/// agrees with any map or list (a run with no outputs has `{}` where another
/// has its images).
pub(crate) fn shapes_agree(ours: &Value, theirs: &Value) -> bool {
    match (ours, theirs) {
        (Value::Object(mine), Value::Object(other)) => {
            mine.is_empty()
                || other.is_empty()
                || (mine.len() == other.len()
                    && mine
                        .iter()
                        .all(|(key, shape)| other.get(key).is_some_and(|o| shapes_agree(shape, o))))
        }
        (Value::Array(mine), Value::Array(other)) => match (mine.first(), other.first()) {
            (Some(shape), Some(o)) => shapes_agree(shape, o),
            _ => true,
        },
        _ => ours == theirs,
    }
}
