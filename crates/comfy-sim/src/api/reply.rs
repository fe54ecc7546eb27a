//! Building responses and reading requests the way aiohttp does.
//!
//! Every handler of the simulator (core routes and plugins alike) answers
//! through these helpers, so the `Server` header, content types and
//! ComfyUI's error bodies stay the same byte for byte everywhere.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use crate::body::Body;
use crate::pyjson;

/// aiohttp's `Server` header, which the recorded server sent.
const SERVER: &str = "Python/3.11 aiohttp/3.14.5";
/// aiohttp's body for an unhandled exception in a handler.
const ERROR_500: &str = "500 Internal Server Error\n\nServer got itself in trouble";
/// The upload cap ComfyUI announces in `/features` (100 MiB).
pub(crate) const MAX_UPLOAD: usize = 100 * 1024 * 1024;
/// Cap on JSON request bodies.
pub(super) const MAX_JSON_BODY: usize = 32 * 1024 * 1024;
/// Builds a response with aiohttp's `Server` header.
pub(crate) fn response(status: u16, content_type: Option<&str>, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(ct) = content_type
        && let Ok(v) = HeaderValue::from_str(ct)
    {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r.headers_mut().insert(header::SERVER, HeaderValue::from_static(SERVER));
    r
}

/// `json_response(value)`.
pub(crate) fn json(status: u16, value: &Value) -> Response<Body> {
    response(
        status,
        Some("application/json; charset=utf-8"),
        Body::full(pyjson::to_string(value)),
    )
}

/// `json_response` of text that is already Python-formatted JSON.
pub(crate) fn json_text(status: u16, text: String) -> Response<Body> {
    response(status, Some("application/json; charset=utf-8"), Body::full(text))
}

/// `web.Response(status=...)`: no body, no content type.
pub(crate) fn empty(status: u16) -> Response<Body> {
    response(status, None, Body::empty())
}

/// `web.Response(text=...)`.
pub(crate) fn text(status: u16, body: &str) -> Response<Body> {
    response(status, Some("text/plain; charset=utf-8"), Body::full(body.to_owned()))
}

/// An unhandled exception in a handler.
pub(crate) fn server_error() -> Response<Body> {
    text(500, ERROR_500)
}

/// The 404 ComfyUI answers for a route it does not have.
pub(crate) fn not_found_route() -> Response<Body> {
    response(404, Some("application/octet-stream"), Body::Chunked(None))
}

pub(super) fn reason(status: u16) -> String {
    let phrase = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    format!("{status}: {phrase}")
}

/// The query string as ordered pairs.
pub(crate) fn query(req: &http::request::Parts) -> Vec<(String, String)> {
    req.uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// The first value of query parameter `name`.
pub(crate) fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Reads the request body up to `cap` bytes; `None` when it is longer or
/// the connection fails.
pub(crate) async fn read_body(body: Incoming, cap: usize) -> Option<Bytes> {
    Limited::new(body, cap)
        .collect()
        .await
        .ok()
        .map(http_body_util::Collected::to_bytes)
}

/// Parses a JSON body as aiohttp's `request.json()` does: an empty or
/// broken body is an exception (500).
pub(crate) async fn read_json(body: Incoming) -> Result<Value, Response<Body>> {
    let bytes = read_body(body, MAX_JSON_BODY).await.ok_or_else(server_error)?;
    serde_json::from_slice(&bytes).map_err(|_| server_error())
}
