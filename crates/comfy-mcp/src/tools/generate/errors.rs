//! A failed run's error as the assistant needs it: ComfyUI's
//! `execution_error` cut down to the node, the exception's type and a
//! trimmed message with host paths reduced to file names, so no traceback,
//! input value or server layout leaks into a result.

use serde_json::{Value, json};

/// Longest exception message passed on.
const MAX_ERROR_MESSAGE: usize = 500;

/// ComfyUI's `execution_error` as the assistant needs it: which node, the
/// exception's type and message (trimmed, host paths cut to file names),
/// and nothing of the traceback, the inputs or the server's layout.
pub(super) fn execution_error(err: &Value) -> Value {
    let field = |k: &str| err.get(k).cloned().unwrap_or(Value::Null);
    let message = err.get("exception_message").and_then(Value::as_str).map(|m| {
        let m = without_host_paths(m.trim());
        match m.char_indices().nth(MAX_ERROR_MESSAGE) {
            Some((i, _)) => format!("{}…", &m[..i]),
            None => m,
        }
    });
    let hint = crate::tools::verdict::execution_hint(
        err.get("exception_type").and_then(Value::as_str).unwrap_or_default(),
        err.get("exception_message").and_then(Value::as_str).unwrap_or_default(),
    );
    let mut v = json!({
        "node_id": field("node_id"),
        "node_type": field("node_type"),
        "exception_type": field("exception_type"),
        "exception_message": message,
    });
    if let Some(h) = hint {
        v["hint"] = Value::from(h);
    }
    v
}

/// `text` with every absolute path (`/home/me/ComfyUI/models/x.safetensors`,
/// `C:\\ComfyUI\\models\\x.ckpt`) cut to its file name (`…/x.safetensors`).
fn without_host_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '(' | ')' | ',' | '[' | ']'))
            .unwrap_or(rest.len());
        let (token, tail) = rest.split_at(split);
        let bytes = token.as_bytes();
        let unix = token.starts_with('/') && token[1..].contains('/');
        let windows =
            bytes.len() > 3 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && matches!(bytes[2], b'\\' | b'/');
        if unix || windows {
            let name = token.rsplit(['/', '\\']).next().unwrap_or_default();
            out.push('…');
            out.push(if unix { '/' } else { '\\' });
            out.push_str(name);
        } else {
            out.push_str(token);
        }
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

#[cfg(test)]
mod error_tests {
    use super::{execution_error, without_host_paths};
    use serde_json::json;

    #[test]
    fn host_paths_become_file_names() {
        assert_eq!(
            without_host_paths("Error while loading '/home/me/ComfyUI/models/checkpoints/x.safetensors': bad header"),
            "Error while loading '…/x.safetensors': bad header"
        );
        assert_eq!(
            without_host_paths(r"cannot open C:\ComfyUI\models\y.ckpt"),
            r"cannot open …\y.ckpt"
        );
        assert_eq!(without_host_paths("a/b and /tmp and 1/2"), "a/b and /tmp and 1/2");
    }

    #[test]
    fn tracebacks_and_inputs_are_dropped() {
        let e = execution_error(&json!({
            "node_id": "4", "node_type": "KSampler", "exception_type": "RuntimeError",
            "exception_message": format!("  {}  ", "x".repeat(2000)),
            "traceback": ["  File \"/srv/comfy/execution.py\", line 1"],
            "current_inputs": {"seed": [1]},
        }));
        assert_eq!(e["node_type"], "KSampler");
        assert!(e.get("traceback").is_none() && e.get("current_inputs").is_none());
        let m = e["exception_message"].as_str().unwrap();
        assert_eq!(m.chars().count(), 501);
        assert!(m.starts_with('x') && m.ends_with('…'));
    }
}
