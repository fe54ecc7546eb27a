//! The body checks before rmcp reads a request: JSON, not nested too
//! deep, not a batch (JSON-RPC errors, not rmcp's plain-text 415), and the
//! probes the dispatch needs (is it `initialize`, which method and tool).

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use super::{MAX_JSON_DEPTH, Reply};

/// What a JSON-RPC request body asks for: its method and, for a tool
/// call, the tool's name.
pub(super) fn method_and_tool(body: &[u8]) -> Option<(String, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Params {
        name: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        method: Option<String>,
        params: Option<Params>,
    }
    let p = serde_json::from_slice::<Probe>(body).ok()?;
    Some((p.method?, p.params.and_then(|p| p.name)))
}

/// A JSON-RPC error response with no id (the request could not be read).
fn jsonrpc_error(status: StatusCode, code: i32, message: &str) -> Reply {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// Whether the JSON text in `body` nests arrays and objects more than
/// `max` deep (brackets inside strings do not count). A byte scan, so it
/// costs nothing like a parse and cannot itself recurse.
fn nested_deeper_than(body: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Checks a POST body before rmcp reads it: JSON, not too deep, not a batch.
pub(super) fn check_body(body: &[u8]) -> Result<(), Box<Reply>> {
    if nested_deeper_than(body, MAX_JSON_DEPTH) {
        return Err(Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32700,
            &format!("Parse error: JSON nested more than {MAX_JSON_DEPTH} levels deep"),
        )));
    }
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        return Err(Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32700,
            &format!("Parse error: {e}"),
        )));
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32600,
            "Invalid Request: JSON-RPC batches are not supported (removed in MCP 2025-06-18); send one message per request",
        )));
    }
    Ok(())
}

/// Whether `body` is an `initialize` request.
pub(super) fn is_initialize(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Probe<'_>>(body).is_ok_and(|p| p.method.as_deref() == Some("initialize"))
}

#[cfg(test)]
mod tests {
    use super::nested_deeper_than;

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        assert!(!nested_deeper_than(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(nested_deeper_than(br#"{"a":[1,{"b":[2]}]}"#, 3));
        assert!(!nested_deeper_than(br#"{"a":"[[[[[[\"[[[["}"#, 1));
        assert!(nested_deeper_than(&vec![b'['; 100_000], 64));
        assert!(
            !nested_deeper_than(br#"{"a":"\\"}"#, 1),
            "an escaped backslash ends the escape"
        );
    }
}
