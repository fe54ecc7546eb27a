//! The `/ws` event stream: a hub of connected sockets keyed by client id, and
//! the task that serves one socket, and the `GET /ws` upgrade that starts it.
//!
//! As in ComfyUI, a message with a `sid` goes to the socket registered under
//! that client id (if any) and a message without one goes to every socket; a
//! second socket opened with the same client id takes over the id, and the
//! first stays open but receives nothing more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, WebSocketError};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::api;
use crate::body::Body;
use crate::fault::WsFault;
use crate::pyjson;
use crate::state::Shared;

/// Messages queued for one socket before it counts as too slow and is
/// dropped, rather than letting the queue grow without bound.
const SOCKET_QUEUE: usize = 4096;

/// One message for a socket.
#[derive(Debug, Clone)]
pub(crate) enum WsMsg {
    Text(Arc<str>),
    Binary(Bytes),
    /// A control frame the reader owes the peer (pong, close echo).
    Control(OpCode, Bytes),
}

#[derive(Debug)]
struct Client {
    conn: u64,
    tx: mpsc::Sender<WsMsg>,
    preview_metadata: bool,
}

/// Every connected socket, by client id.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    inner: Mutex<HubInner>,
}

#[derive(Debug, Default)]
struct HubInner {
    clients: HashMap<String, Client>,
    /// Senders of sockets whose client id another socket took over: kept so
    /// those sockets stay open (and silent) until their peer closes them.
    orphans: HashMap<u64, mpsc::Sender<WsMsg>>,
    next_conn: u64,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a socket under `sid`, replacing any earlier one.
    fn register(&self, sid: &str) -> (u64, mpsc::Sender<WsMsg>, mpsc::Receiver<WsMsg>) {
        let (tx, rx) = mpsc::channel(SOCKET_QUEUE);
        let mut inner = self.lock();
        inner.next_conn += 1;
        let conn = inner.next_conn;
        let replaced = inner.clients.remove(sid);
        if let Some(old) = replaced {
            inner.orphans.insert(old.conn, old.tx);
        }
        inner.clients.insert(
            sid.to_owned(),
            Client {
                conn,
                tx: tx.clone(),
                preview_metadata: false,
            },
        );
        (conn, tx, rx)
    }

    fn unregister(&self, sid: &str, conn: u64) {
        let mut inner = self.lock();
        inner.orphans.remove(&conn);
        if inner.clients.get(sid).is_some_and(|c| c.conn == conn) {
            inner.clients.remove(sid);
        }
    }

    fn set_preview_metadata(&self, sid: &str, conn: u64, on: bool) {
        if let Some(c) = self.lock().clients.get_mut(sid).filter(|c| c.conn == conn) {
            c.preview_metadata = on;
        }
    }

    /// Whether the socket for `sid` announced `supports_preview_metadata`.
    pub(crate) fn preview_metadata(&self, sid: Option<&str>) -> bool {
        sid.is_some_and(|s| self.lock().clients.get(s).is_some_and(|c| c.preview_metadata))
    }

    /// Sends `{"type": event, "data": data}` to `sid`, or to all when `None`.
    pub(crate) fn send_json(&self, event: &str, data: Value, sid: Option<&str>) {
        let mut msg = serde_json::Map::new();
        msg.insert("type".into(), Value::String(event.to_owned()));
        msg.insert("data".into(), data);
        let text: Arc<str> = pyjson::to_string(&msg).into();
        self.send(&WsMsg::Text(text), sid);
    }

    /// Sends a binary frame to `sid`, or to all when `None`.
    pub(crate) fn send_binary(&self, bytes: Bytes, sid: Option<&str>) {
        self.send(&WsMsg::Binary(bytes), sid);
    }

    fn send(&self, msg: &WsMsg, sid: Option<&str>) {
        let mut inner = self.lock();
        let mut slow = Vec::new();
        match sid {
            Some(s) => {
                if let Some(c) = inner.clients.get(s)
                    && c.tx.try_send(msg.clone()).is_err()
                {
                    slow.push(s.to_owned());
                }
            }
            None => {
                for (s, c) in &inner.clients {
                    if c.tx.try_send(msg.clone()).is_err() {
                        slow.push(s.clone());
                    }
                }
            }
        }
        // A socket that cannot keep up (or is gone) is dropped: its sender is
        // removed, so its task sees the channel close and ends.
        for s in slow {
            inner.clients.remove(&s);
        }
    }

    /// Drops every socket (a simulated restart).
    pub(crate) fn disconnect_all(&self) {
        let mut inner = self.lock();
        inner.clients.clear();
        inner.orphans.clear();
    }

    /// Number of registered sockets.
    pub(crate) fn len(&self) -> usize {
        self.lock().clients.len()
    }
}

/// The session parameters of one accepted socket.
pub(crate) struct Session {
    pub(crate) sid: String,
    pub(crate) fault: Option<WsFault>,
    pub(crate) features: Value,
    /// The `status` message sent first, with `sid` added.
    pub(crate) status: Value,
}

/// Serves one upgraded socket until either side closes.
pub(crate) async fn serve(hub: Arc<Hub>, fut: fastwebsockets::upgrade::UpgradeFut, session: Session) {
    let Ok(ws) = fut.await else { return };
    let (mut rd, mut wr) = ws.split(tokio::io::split);
    let (conn, tx, mut rx) = hub.register(&session.sid);
    let sid = session.sid.clone();

    if session.fault != Some(WsFault::Silent) {
        let mut status = session.status;
        if let Some(obj) = status.as_object_mut() {
            obj.insert("sid".into(), Value::String(sid.clone()));
        }
        let first = pyjson::to_string(&json!({"type": "status", "data": status}));
        // Queued, not written, so the fault counting below sees it too.
        let _ = tx.try_send(WsMsg::Text(first.into()));
    }
    drop(tx);

    let reader_hub = hub.clone();
    let reader_sid = sid.clone();
    let control_tx = {
        // The reader needs a sender for pongs and feature_flags replies; it
        // takes a fresh one from the hub entry so a replaced socket's reader
        // still answers its own pings.
        let (ctx, crx) = mpsc::channel::<WsMsg>(16);
        (ctx, crx)
    };
    let (ctl_tx, mut ctl_rx) = control_tx;
    let features = session.features.clone();
    let reader = async move {
        let mut first = true;
        loop {
            let tx2 = ctl_tx.clone();
            let mut obligated = move |f: Frame<'_>| {
                let msg = WsMsg::Control(f.opcode, Bytes::copy_from_slice(&f.payload));
                let tx3 = tx2.clone();
                async move { tx3.send(msg).await.map_err(|_| WebSocketError::ConnectionClosed) }
            };
            let Ok(frame) = rd.read_frame(&mut obligated).await else {
                break;
            };
            match frame.opcode {
                OpCode::Close => break,
                OpCode::Text if first => {
                    first = false;
                    let Ok(v) = serde_json::from_slice::<Value>(&frame.payload) else {
                        continue;
                    };
                    if v.get("type").and_then(Value::as_str) == Some("feature_flags") {
                        let on = v.pointer("/data/supports_preview_metadata").and_then(Value::as_bool) == Some(true);
                        reader_hub.set_preview_metadata(&reader_sid, conn, on);
                        let reply = pyjson::to_string(&json!({"type": "feature_flags", "data": features}));
                        let _ = ctl_tx.send(WsMsg::Text(reply.into())).await;
                    }
                }
                _ => first = false,
            }
        }
    };
    let fault = session.fault;
    let writer = async move {
        let mut sent: u32 = 0;
        loop {
            let msg = tokio::select! {
                m = ctl_rx.recv() => m,
                m = rx.recv() => m,
            };
            let Some(msg) = msg else { break };
            if fault == Some(WsFault::Silent) && !matches!(msg, WsMsg::Control(..)) {
                continue;
            }
            if let Some(WsFault::DropAfter(n)) = fault
                && sent >= n
            {
                break;
            }
            if let Some(WsFault::OversizedFrame(n)) = fault
                && sent == 0
                && !matches!(msg, WsMsg::Control(..))
            {
                let mut big = Vec::with_capacity(n);
                big.extend_from_slice(br#"{"type": "sim_big", "data": ""#);
                big.resize(n.saturating_sub(3).max(big.len()), b'x');
                big.extend_from_slice(br#""}}"#);
                if wr.write_frame(Frame::text(Payload::Owned(big))).await.is_err() {
                    break;
                }
            }
            if fault == Some(WsFault::Foreign) && !matches!(msg, WsMsg::Control(..)) {
                let other = "00000000-0000-4000-8000-00000000f00d";
                let frames = [
                    format!(
                        r#"{{"type": "executing", "data": {{"node": "3", "display_node": "3", "prompt_id": "{other}"}}}}"#
                    ),
                    format!(
                        r#"{{"type": "progress", "data": {{"value": 1, "max": 1, "prompt_id": "{other}", "node": "3"}}}}"#
                    ),
                    format!(r#"{{"type": "execution_success", "data": {{"prompt_id": "{other}", "timestamp": 0}}}}"#),
                ];
                let one = frames[(sent as usize) % frames.len()].clone().into_bytes();
                if wr.write_frame(Frame::text(Payload::Owned(one))).await.is_err() {
                    break;
                }
            }
            if fault == Some(WsFault::Junk) && !matches!(msg, WsMsg::Control(..)) {
                let junk = match sent % 3 {
                    0 => Frame::text(Payload::Owned(b"{not json".to_vec())),
                    1 => Frame::text(Payload::Owned(br#"{"type": "sim_junk", "data": {"x": 1}}"#.to_vec())),
                    _ => Frame::binary(Payload::Owned(vec![0, 0, 0, 99, 1, 2, 3])),
                };
                if wr.write_frame(junk).await.is_err() {
                    break;
                }
            }
            let frame = match &msg {
                WsMsg::Text(t) => Frame::text(Payload::Owned(t.as_bytes().to_vec())),
                WsMsg::Binary(b) => Frame::binary(Payload::Owned(b.to_vec())),
                WsMsg::Control(op, b) => Frame::new(true, *op, None, Payload::Owned(b.to_vec())),
            };
            let is_close = matches!(msg, WsMsg::Control(OpCode::Close, _));
            if wr.write_frame(frame).await.is_err() || is_close {
                break;
            }
            if !matches!(msg, WsMsg::Control(..)) {
                sent += 1;
            }
        }
    };
    tokio::select! {
        () = reader => {}
        () = writer => {}
    }
    hub.unregister(&sid, conn);
}

/// `GET /ws`: upgrade, or aiohttp's 400 for a plain GET.
pub(crate) fn upgrade(shared: &Arc<Shared>, mut req: Request<Incoming>) -> Response<Body> {
    if !fastwebsockets::upgrade::is_upgrade_request(&req) {
        return api::text(
            400,
            "No WebSocket UPGRADE hdr: None\n Can \"Upgrade\" only to \"WebSocket\".",
        );
    }
    let q = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect::<Vec<_>>())
        .unwrap_or_default();
    let sid = api::param(&q, "clientId")
        .filter(|s| !s.is_empty())
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
    let Ok((resp, fut)) = fastwebsockets::upgrade::upgrade(&mut req) else {
        return api::text(
            400,
            "No WebSocket UPGRADE hdr: None\n Can \"Upgrade\" only to \"WebSocket\".",
        );
    };
    let session = Session {
        sid,
        fault: shared.faults.borrow().ws,
        features: shared.features(),
        status: json!({"status": {"exec_info": {"queue_remaining": shared.lock().remaining()}}}),
    };
    let hub = shared.hub.clone();
    if let Ok(mut s) = shared.sessions.lock() {
        while s.try_join_next().is_some() {}
        s.spawn(serve(hub, fut, session));
    }
    let (mut parts, _) = resp.into_parts();
    parts.headers.insert(
        http::header::SERVER,
        http::HeaderValue::from_static("Python/3.11 aiohttp/3.14.5"),
    );
    Response::from_parts(parts, Body::empty())
}
