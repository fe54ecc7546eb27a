//! The `/ws` event stream: one socket per client, shared by every job it
//! follows. Messages are reassembled under a total size cap (fastwebsockets
//! only caps single frames), decoded into typed [`Event`]s, and routed to
//! the job they belong to. A dropped socket is reopened with backoff and the
//! same `clientId`; jobs are told (`Reconnected`) so they reconcile their
//! state from the history and the queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fastwebsockets::{OpCode, WebSocket};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::Error;
use crate::transport::Transport;

/// Events queued for one job before newer ones are dropped (the job then
/// reconciles from `/history`, so nothing is lost for good).
const JOB_QUEUE: usize = 1024;

/// Format of a preview image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageFormat {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// Something else (the raw type number or MIME type is lost).
    Other,
}

/// A message from ComfyUI's `/ws`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// Queue size changed.
    Status {
        /// Prompts queued or running.
        queue_remaining: u64,
    },
    /// A prompt started.
    ExecutionStart {
        /// The prompt.
        prompt_id: String,
    },
    /// Nodes served from the cache.
    ExecutionCached {
        /// The prompt.
        prompt_id: String,
        /// The cached nodes.
        nodes: Vec<String>,
    },
    /// A node started (`None`: the prompt finished).
    Executing {
        /// The prompt.
        prompt_id: String,
        /// The node.
        node: Option<String>,
    },
    /// A step of a node.
    Progress {
        /// The prompt.
        prompt_id: String,
        /// The node.
        node: String,
        /// Steps done.
        value: u64,
        /// Steps in all.
        max: u64,
    },
    /// A node produced output.
    Executed {
        /// The prompt.
        prompt_id: String,
        /// The node.
        node: String,
        /// Its UI output (`{"images": [...]}`).
        output: Value,
    },
    /// The prompt finished well.
    ExecutionSuccess {
        /// The prompt.
        prompt_id: String,
    },
    /// The prompt failed; `data` is ComfyUI's error report.
    ExecutionError {
        /// The prompt.
        prompt_id: String,
        /// ComfyUI's `execution_error` data.
        data: Value,
    },
    /// The prompt was interrupted.
    ExecutionInterrupted {
        /// The prompt.
        prompt_id: String,
        /// ComfyUI's `execution_interrupted` data.
        data: Value,
    },
    /// A preview image.
    Preview {
        /// The prompt, when ComfyUI says (metadata previews) or it is known.
        prompt_id: Option<String>,
        /// The node, when ComfyUI says.
        node: Option<String>,
        /// Image format.
        format: ImageFormat,
        /// Image bytes.
        image: Bytes,
    },
    /// A progress text from a node.
    Text {
        /// The node.
        node: String,
        /// The text.
        text: String,
    },
    /// The socket was reopened after a drop: state may have moved on.
    Reconnected,
    /// A message this client does not type, kept as it came.
    Other {
        /// Its `type`.
        kind: String,
        /// Its `data`.
        data: Value,
    },
}

impl Event {
    /// The prompt this event belongs to, when it says.
    pub fn prompt_id(&self) -> Option<&str> {
        match self {
            Event::ExecutionStart { prompt_id }
            | Event::ExecutionCached { prompt_id, .. }
            | Event::Executing { prompt_id, .. }
            | Event::Progress { prompt_id, .. }
            | Event::Executed { prompt_id, .. }
            | Event::ExecutionSuccess { prompt_id }
            | Event::ExecutionError { prompt_id, .. }
            | Event::ExecutionInterrupted { prompt_id, .. } => Some(prompt_id),
            Event::Preview { prompt_id, .. } => prompt_id.as_deref(),
            Event::Other { data, .. } => data.get("prompt_id").and_then(Value::as_str),
            _ => None,
        }
    }
}

fn text_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Decodes a text message; `None` for junk (not JSON, no `type`).
pub(crate) fn decode_text(bytes: &[u8]) -> Option<Event> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let kind = v.get("type")?.as_str()?.to_owned();
    let data = v.get("data").cloned().unwrap_or(Value::Null);
    let pid = || text_of(&data, "prompt_id");
    let ev = match kind.as_str() {
        "status" => Event::Status {
            queue_remaining: data
                .pointer("/status/exec_info/queue_remaining")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        },
        "execution_start" => Event::ExecutionStart { prompt_id: pid()? },
        "execution_cached" => Event::ExecutionCached {
            prompt_id: pid()?,
            nodes: data
                .get("nodes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
        },
        "executing" => Event::Executing {
            prompt_id: pid()?,
            node: text_of(&data, "node"),
        },
        "progress" => Event::Progress {
            prompt_id: pid()?,
            node: text_of(&data, "node").unwrap_or_default(),
            value: data
                .get("value")
                .and_then(Value::as_f64)
                .map_or(0, |v| v.max(0.0) as u64),
            max: data.get("max").and_then(Value::as_f64).map_or(0, |v| v.max(0.0) as u64),
        },
        "executed" => Event::Executed {
            prompt_id: pid()?,
            node: text_of(&data, "node").unwrap_or_default(),
            output: data.get("output").cloned().unwrap_or(Value::Null),
        },
        "execution_success" => Event::ExecutionSuccess { prompt_id: pid()? },
        "execution_error" => Event::ExecutionError {
            prompt_id: pid()?,
            data,
        },
        "execution_interrupted" => Event::ExecutionInterrupted {
            prompt_id: pid()?,
            data,
        },
        _ => Event::Other { kind, data },
    };
    Some(ev)
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

/// Decodes a binary frame as ComfyUI lays them out; `None` for junk.
pub(crate) fn decode_binary(b: &[u8]) -> Option<Event> {
    match be32(b, 0)? {
        1 | 2 => {
            let format = match be32(b, 4)? {
                1 => ImageFormat::Jpeg,
                2 => ImageFormat::Png,
                _ => ImageFormat::Other,
            };
            Some(Event::Preview {
                prompt_id: None,
                node: None,
                format,
                image: Bytes::copy_from_slice(b.get(8..)?),
            })
        }
        3 => {
            let n = be32(b, 4)?;
            let node = String::from_utf8_lossy(b.get(8..8 + n)?).into_owned();
            let text = String::from_utf8_lossy(b.get(8 + n..)?).into_owned();
            Some(Event::Text { node, text })
        }
        4 => {
            let n = be32(b, 4)?;
            let meta: Value = serde_json::from_slice(b.get(8..8 + n)?).ok()?;
            let format = match meta.get("image_type").and_then(Value::as_str) {
                Some("image/jpeg") => ImageFormat::Jpeg,
                Some("image/png") => ImageFormat::Png,
                _ => ImageFormat::Other,
            };
            Some(Event::Preview {
                prompt_id: text_of(&meta, "prompt_id"),
                node: text_of(&meta, "node_id"),
                format,
                image: Bytes::copy_from_slice(b.get(8 + n..)?),
            })
        }
        _ => None,
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

struct SpawnExecutor;

impl<F> hyper::rt::Executor<F> for SpawnExecutor
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(fut);
    }
}

type Socket = WebSocket<TokioIo<hyper::upgrade::Upgraded>>;

/// Opens the socket (TCP, TLS for `https`, the WebSocket handshake).
async fn connect(http: &Transport, client_id: &str) -> Result<Socket, Error> {
    let base = &http.base;
    let fail = |e: &dyn std::fmt::Display| Error::WebSocket(format!("cannot connect: {e}"));
    // TCP and TLS together within the connect timeout.
    let io = tokio::time::timeout(http.config.connect_timeout, async {
        let tcp = TcpStream::connect((base.host.as_str(), base.port))
            .await
            .map_err(|e| fail(&e))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = if base.https {
            let name = rustls_pki_types::ServerName::try_from(base.host.clone()).map_err(|e| fail(&e))?;
            let tls = tokio_rustls::TlsConnector::from(http.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| fail(&e))?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        Ok::<_, Error>(io)
    })
    .await
    .map_err(|_| Error::WebSocket("connect timed out".into()))??;
    let mut req = http::Request::get(base.ws_target(client_id))
        .header(http::header::HOST, base.authority())
        .header(http::header::UPGRADE, "websocket")
        .header(http::header::CONNECTION, "upgrade")
        .header("Sec-WebSocket-Key", fastwebsockets::handshake::generate_key())
        .header("Sec-WebSocket-Version", "13")
        .header(http::header::USER_AGENT, http.config.user_agent.as_str());
    if let Some(auth) = http.authorization() {
        req = req.header(http::header::AUTHORIZATION, auth);
    }
    let req = req.body(Empty::<Bytes>::new()).map_err(|e| fail(&e))?;
    let (mut ws, _) = tokio::time::timeout(
        http.config.connect_timeout,
        fastwebsockets::handshake::client(&SpawnExecutor, req, io),
    )
    .await
    .map_err(|_| Error::WebSocket("handshake timed out".into()))?
    .map_err(|e| fail(&e))?;
    ws.set_max_message_size(http.config.limits.ws_message);
    ws.set_auto_pong(true);
    Ok(ws)
}

/// Opens a socket of its own and waits up to `limit` for ComfyUI's first
/// message (it sends `status` on connect); then closes it.
pub(crate) async fn probe(http: &Transport, client_id: &str, limit: Duration) -> Result<(), Error> {
    let mut ws = connect(http, client_id).await?;
    let first = tokio::time::timeout(limit, read_message(&mut ws, http.config.limits.ws_message))
        .await
        .map_err(|_| Error::WebSocket(format!("connected, but no message came within {limit:?}")))?;
    match first? {
        Some(_) => Ok(()),
        None => Err(Error::WebSocket("connected, then closed before any message".into())),
    }
}

/// Reads one whole message, reassembling continuation frames under `cap`.
async fn read_message<S>(ws: &mut WebSocket<S>, cap: usize) -> Result<Option<(OpCode, Bytes)>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::new();
    let mut kind = None;
    loop {
        let frame = ws
            .read_frame()
            .await
            .map_err(|e| Error::WebSocket(format!("read failed: {e}")))?;
        match frame.opcode {
            OpCode::Close => return Ok(None),
            OpCode::Ping | OpCode::Pong => continue,
            OpCode::Text | OpCode::Binary => kind = Some(frame.opcode),
            OpCode::Continuation => {}
        }
        if buf.len() + frame.payload.len() > cap {
            return Err(Error::WebSocket(format!(
                "message larger than the limit of {cap} bytes"
            )));
        }
        buf.extend_from_slice(&frame.payload);
        if frame.fin {
            return Ok(kind.map(|k| (k, buf.freeze())));
        }
    }
}

/// How the socket's first attempts went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Contact {
    /// Still trying for the first time.
    #[default]
    Pending,
    /// The first attempt failed; retries go on.
    Failed,
    /// Connected at least once.
    Connected,
}

/// The shared socket and who listens to it.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    subscribers: Mutex<HashMap<String, mpsc::Sender<Event>>>,
    connected: AtomicBool,
    /// How the first attempts went: `Connected` once any succeeded (it
    /// never goes back), `Failed` if the first failed and none succeeded.
    contact: watch::Sender<Contact>,
    junk: AtomicU64,
    /// The prompt this client's socket last saw executing (for previews
    /// and texts, which do not name their prompt).
    current: Mutex<Option<String>>,
    /// The last `status` message's `queue_remaining`, and when it came.
    status: Mutex<Option<(u64, std::time::Instant)>>,
}

impl Hub {
    /// Registers a job; its events arrive on the returned receiver.
    pub(crate) fn subscribe(&self, prompt_id: &str) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(JOB_QUEUE);
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(prompt_id.to_owned(), tx);
        rx
    }

    pub(crate) fn unsubscribe(&self, prompt_id: &str) {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(prompt_id);
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Waits up to `limit` for the first connection; `true` once connected.
    /// Waits up to `limit` for the first attempt to end; `true` when the
    /// socket has connected (now or before). A failed first attempt does
    /// not wait for the retries: the caller polls meanwhile.
    pub(crate) async fn wait_first_connection(&self, limit: Duration) -> bool {
        let mut rx = self.contact.subscribe();
        matches!(
            tokio::time::timeout(limit, rx.wait_for(|c| *c != Contact::Pending)).await,
            Ok(Ok(c)) if *c == Contact::Connected
        )
    }

    /// Junk messages skipped so far.
    pub(crate) fn junk(&self) -> u64 {
        self.junk.load(Ordering::Relaxed)
    }

    /// The queue length the socket last reported, and when.
    pub(crate) fn last_status(&self) -> Option<(u64, std::time::Instant)> {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn route(&self, mut ev: Event) {
        if let Event::Status { queue_remaining, .. } = &ev {
            *self.status.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((*queue_remaining, std::time::Instant::now()));
        }
        let subs = self.subscribers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Event::Executing { prompt_id, .. } = &ev {
            *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(prompt_id.clone());
        }
        if let Event::Preview {
            prompt_id: pid @ None, ..
        } = &mut ev
        {
            pid.clone_from(&self.current.lock().unwrap_or_else(PoisonError::into_inner));
        }
        let target = match &ev {
            Event::Text { .. } => self.current.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            other => other.prompt_id().map(str::to_owned),
        };
        match target {
            Some(pid) => {
                if let Some(tx) = subs.get(&pid) {
                    let _ = tx.try_send(ev);
                }
            }
            None => {
                for tx in subs.values() {
                    let _ = tx.try_send(ev.clone());
                }
            }
        }
    }

    /// Runs the socket until the client is dropped: connect, read, route,
    /// and on any failure reconnect with backoff.
    pub(crate) async fn run(self: Arc<Self>, http: Arc<Transport>, client_id: String) {
        let mut failures: u32 = 0;
        loop {
            match connect(&http, &client_id).await {
                Ok(mut ws) => {
                    let reconnect = self.contact.send_replace(Contact::Connected) == Contact::Connected;
                    self.connected.store(true, Ordering::SeqCst);
                    failures = 0;
                    if reconnect {
                        self.route(Event::Reconnected);
                    }
                    loop {
                        match read_message(&mut ws, http.config.limits.ws_message).await {
                            Ok(Some((OpCode::Text, bytes))) => match decode_text(&bytes) {
                                Some(ev) => self.route(ev),
                                None => {
                                    self.junk.fetch_add(1, Ordering::Relaxed);
                                }
                            },
                            Ok(Some((_, bytes))) => match decode_binary(&bytes) {
                                Some(ev) => self.route(ev),
                                None => {
                                    self.junk.fetch_add(1, Ordering::Relaxed);
                                }
                            },
                            Ok(None) | Err(_) => break,
                        }
                    }
                    self.connected.store(false, Ordering::SeqCst);
                }
                Err(e) => {
                    self.contact.send_if_modified(|c| {
                        let first = *c == Contact::Pending;
                        if first {
                            *c = Contact::Failed;
                        }
                        first
                    });
                    failures = failures.saturating_add(1);
                    tracing::debug!(error = %e, failures, "websocket connect failed");
                }
            }
            let wait = Duration::from_millis((100u64 << failures.min(6)).min(5_000) + fastrand::u64(0..100));
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests;
