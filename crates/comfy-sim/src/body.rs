//! The response body type: whole bodies, bodies of unknown length (sent
//! chunked, as aiohttp sends its 404), and the faulty bodies of
//! [`crate::HttpFault`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

const CHUNK: usize = 64 * 1024;

/// A response body.
#[derive(Debug)]
pub(crate) enum Body {
    /// Known length, sent with `Content-Length`.
    Full(Option<Bytes>),
    /// Unknown length, sent with `Transfer-Encoding: chunked`.
    Chunked(Option<Bytes>),
    /// Sends its bytes, waits a moment so they reach the peer, then fails
    /// so hyper resets the connection.
    Reset {
        data: Option<Bytes>,
        declared: u64,
        pause: Option<Pin<Box<tokio::time::Sleep>>>,
    },
    /// Declares `declared` bytes, sends fewer, then ends: the connection
    /// closes with the body cut short (no reset).
    Short { data: Option<Bytes>, declared: u64 },
    /// Streams `remaining` bytes of `[0,0,0,...` without holding them.
    /// `declared` sends a `Content-Length`; otherwise it goes chunked.
    Oversized {
        remaining: u64,
        started: bool,
        declared: bool,
    },
}

impl Body {
    pub(crate) fn full(data: impl Into<Bytes>) -> Self {
        Self::Full(Some(data.into()))
    }

    pub(crate) fn empty() -> Self {
        Self::Full(None)
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        let out = match this {
            Body::Full(data) | Body::Chunked(data) | Body::Short { data, .. } => {
                data.take().filter(|d| !d.is_empty()).map(|d| Ok(Frame::data(d)))
            }
            Body::Reset { data, pause, .. } => {
                if let Some(d) = data.take() {
                    Some(Ok(Frame::data(d)))
                } else {
                    let sleep = pause
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(std::time::Duration::from_millis(100))));
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    Some(Err(io::Error::new(io::ErrorKind::ConnectionReset, "injected reset")))
                }
            }
            Body::Oversized { remaining, started, .. } => {
                if *remaining == 0 {
                    None
                } else {
                    let n = (*remaining).min(CHUNK as u64) as usize;
                    let mut chunk = Vec::with_capacity(n);
                    if !*started {
                        chunk.push(b'[');
                        *started = true;
                    }
                    while chunk.len() < n {
                        chunk.extend_from_slice(b"0,");
                    }
                    chunk.truncate(n);
                    *remaining -= n as u64;
                    Some(Ok(Frame::data(Bytes::from(chunk))))
                }
            }
        };
        Poll::Ready(out)
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(d) => d.as_ref().is_none_or(Bytes::is_empty),
            Body::Chunked(_) | Body::Reset { .. } => false,
            Body::Short { data, .. } => data.is_none(),
            Body::Oversized { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(d) => SizeHint::with_exact(d.as_ref().map_or(0, |d| d.len() as u64)),
            Body::Chunked(_) => SizeHint::default(),
            Body::Reset { declared, .. } | Body::Short { declared, .. } => SizeHint::with_exact(*declared),
            Body::Oversized {
                remaining, declared, ..
            } => {
                if *declared {
                    SizeHint::with_exact(*remaining)
                } else {
                    SizeHint::default()
                }
            }
        }
    }
}
