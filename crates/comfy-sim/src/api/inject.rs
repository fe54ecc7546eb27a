//! Fault injection on HTTP routes ([`HttpFault`]).
//!
//! Apart from the handlers so that each handler stays what ComfyUI does;
//! this module is what a broken proxy or server in between would do
//! instead. A fault either answers before the route runs ([`before`]) or
//! spoils the answer the route gave ([`after`]).

use bytes::Bytes;
use http::Response;
use http::header::{self, HeaderValue};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::json;

use super::reply::{json, read_body, reason, response, text};
use crate::body::Body;
use crate::fault::HttpFault;

/// The answer a fault gives in place of the route, if it gives one;
/// otherwise the request body, untouched, for the route. A hanging route
/// never returns.
pub(super) async fn before(fault: Option<&HttpFault>, body: Incoming) -> Result<Incoming, Response<Body>> {
    match fault {
        Some(HttpFault::Status(code)) => return Err(text(*code, &reason(*code))),
        Some(HttpFault::Hang) => std::future::pending::<()>().await,
        Some(HttpFault::RetryAfter(secs)) => {
            let mut r = text(503, &reason(503));
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Err(r);
        }
        Some(HttpFault::Echo) => {
            let sent = read_body(body, 1 << 20).await.unwrap_or_default();
            let sent = String::from_utf8_lossy(&sent).into_owned();
            return Err(json(
                400,
                &json!({"error": {"type": "echo", "message": sent, "details": sent, "extra_info": {}}, "node_errors": {}}),
            ));
        }
        Some(HttpFault::Html) => {
            return Err(response(
                200,
                Some("text/html; charset=utf-8"),
                Body::full("<!DOCTYPE html><html><head><title>Sign in</title></head><body>Proxy login</body></html>"),
            ));
        }
        Some(fault @ (HttpFault::Oversized(n) | HttpFault::OversizedChunked(n))) => {
            return Err(response(
                200,
                Some("application/json; charset=utf-8"),
                Body::Oversized {
                    remaining: *n,
                    started: false,
                    declared: matches!(fault, HttpFault::Oversized(_)),
                },
            ));
        }
        _ => {}
    }
    Ok(body)
}

/// The route's answer, spoiled as the fault says.
pub(super) async fn after(fault: Option<&HttpFault>, resp: Response<Body>) -> Response<Body> {
    match fault {
        Some(HttpFault::MalformedJson) => halve(resp, |half, _| Body::full(half)).await,
        Some(HttpFault::WrongContentType) => {
            let mut r = resp;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        Some(HttpFault::Truncated) => {
            halve(resp, |half, declared| Body::Short {
                data: Some(half),
                declared,
            })
            .await
        }
        Some(HttpFault::ResetMidBody) => {
            halve(resp, |half, declared| Body::Reset {
                data: Some(half),
                declared,
                pause: None,
            })
            .await
        }
        _ => resp,
    }
}

/// The route's answer with only the first half of its body, sent as the
/// body `cut` makes of that half and the whole body's length; the
/// route's `Content-Length` is dropped.
async fn halve(resp: Response<Body>, cut: impl FnOnce(Bytes, u64) -> Body) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    let declared = bytes.len() as u64;
    let half = bytes.slice(..bytes.len() / 2);
    Response::from_parts(parts, cut(half, declared))
}
