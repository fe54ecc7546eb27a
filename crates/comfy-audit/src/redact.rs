//! Redaction: what never reaches the log.
//!
//! The peer drops keys by name and never looks at values. Here:
//! - a key whose lower-cased name contains a secret word keeps its place
//!   with the value masked, at any depth, in objects inside arrays and
//!   arrays of arrays;
//! - values that look like secrets are masked wherever they appear, in any
//!   string: bearer tokens, HuggingFace, OpenAI-style, GitHub and Comfy
//!   account (`comfyui-<hex>`) tokens,
//!   credentials in URL user info, and secret query parameters;
//! - large values (a base64 image, a whole workflow) are replaced by their
//!   size and a hash, so the log stays small and a value can still be
//!   matched against a known one.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

/// What a masked value becomes.
pub const MASK: &str = "[REDACTED]";

/// Key fragments that mark a secret (matched in the lower-cased key).
pub const SECRET_KEYS: &[&str] = &[
    "token",
    "password",
    "secret",
    "api_key",
    "apikey",
    "authorization",
    "access_token",
    "refresh_token",
    "credential",
    "private_key",
    "bearer",
    "session_id",
    "cookie",
];

/// Patterns of secret values, each with its replacement.
static VALUE_PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // The HTTP schemes, as headers write them ("basic shapes" in a
        // prompt stays).
        (r"\b(Bearer|bearer|BEARER|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", "$1 [REDACTED]"),
        (r"\bhf_[A-Za-z0-9]{10,}", "hf_[REDACTED]"),
        (r"\b(?:sk|rk)-[A-Za-z0-9_-]{16,}", "[REDACTED]"),
        (r"\bgh[pousr]_[A-Za-z0-9]{20,}", "[REDACTED]"),
        (r"\bAKIA[0-9A-Z]{16}\b", "[REDACTED]"),
        // A Comfy account API key (paid API nodes), as platform.comfy.org
        // issues them.
        (r"\bcomfyui-[0-9A-Fa-f]{32,}", "comfyui-[REDACTED]"),
        (r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s?#@]+@", "${1}[REDACTED]@"),
        (
            r"(?i)([?&;](?:token|key|api_key|apikey|access_token|auth|password|passwd|secret|sig|signature|x-amz-signature|x-amz-credential)=)[^&#\s]+",
            "${1}[REDACTED]",
        ),
    ]
    .into_iter()
    .filter_map(|(p, r)| Regex::new(p).ok().map(|re| (re, r)))
    .collect()
});

/// Size bounds for what is written as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redactor {
    /// Longest string written as is, in bytes.
    pub max_string: usize,
    /// Largest object or array written as is (serialised bytes).
    pub max_value: usize,
    /// Deepest nesting followed; deeper values are omitted.
    pub max_depth: usize,
}

impl Default for Redactor {
    fn default() -> Self {
        Self {
            max_string: 4 << 10,
            max_value: 64 << 10,
            max_depth: 64,
        }
    }
}

/// Whether `key` names a secret (lower-cased, `-` read as `_`, so
/// `X-Api-Key` counts).
pub fn is_secret_key(key: &str) -> bool {
    let lower = key.to_lowercase().replace('-', "_");
    SECRET_KEYS.iter().any(|k| lower.contains(k))
}

/// `s` with every secret-looking part masked.
pub fn mask_secrets(s: &str) -> std::borrow::Cow<'_, str> {
    let mut out = std::borrow::Cow::Borrowed(s);
    for (re, replacement) in VALUE_PATTERNS.iter() {
        if re.is_match(&out) {
            out = std::borrow::Cow::Owned(re.replace_all(&out, *replacement).into_owned());
        }
    }
    out
}

fn omitted(bytes: &[u8]) -> Value {
    let hex = crate::chain::sha256_hex(bytes);
    Value::String(format!("[omitted: {} bytes, sha256:{}]", bytes.len(), &hex[..16]))
}

impl Redactor {
    /// Redacts `value` in place. The value itself is kept (only what is
    /// inside it can be replaced), so a record stays an object.
    pub fn redact(&self, value: &mut Value) {
        self.walk(value, 0);
    }

    /// Redacts and returns the serialised size estimate of what remains.
    fn walk(&self, value: &mut Value, depth: usize) -> usize {
        if depth > self.max_depth {
            *value = Value::String("[omitted: nested too deep]".to_owned());
            return 28;
        }
        let size = match value {
            Value::String(s) => {
                if s.len() > self.max_string {
                    *value = omitted(s.as_bytes());
                } else if let std::borrow::Cow::Owned(masked) = mask_secrets(s) {
                    *s = masked;
                }
                value.as_str().map_or(0, str::len) + 2
            }
            Value::Array(items) => items.iter_mut().map(|v| self.walk(v, depth + 1) + 1).sum::<usize>() + 2,
            Value::Object(map) => self.walk_map(map, depth) + 2,
            Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        };
        // The top level (the record itself) is never replaced.
        if depth > 0 && size > self.max_value && matches!(value, Value::Array(_) | Value::Object(_)) {
            let bytes = serde_json::to_vec(value).unwrap_or_default();
            *value = omitted(&bytes);
            return 64;
        }
        size
    }

    fn walk_map(&self, map: &mut Map<String, Value>, depth: usize) -> usize {
        let mut size = 0;
        for (key, v) in map.iter_mut() {
            size += key.len() + 4;
            if is_secret_key(key) {
                *v = Value::String(MASK.to_owned());
                size += MASK.len() + 2;
            } else {
                size += self.walk(v, depth + 1);
            }
        }
        size
    }
}

#[cfg(test)]
mod tests {
    use super::{Redactor, mask_secrets};
    use serde_json::json;

    #[test]
    fn secret_values_are_masked_in_place() {
        for (raw, want) in [
            (
                "Authorization: Bearer abc.def-123_x",
                "Authorization: Bearer [REDACTED]",
            ),
            ("use hf_abcdefghijklmnopqrstu now", "use hf_[REDACTED] now"),
            ("https://user:pa55@example.com/x", "https://[REDACTED]@example.com/x"),
            (
                "https://civitai.com/api/download/1?token=abc123&type=Model",
                "https://civitai.com/api/download/1?token=[REDACTED]&type=Model",
            ),
            ("key sk-abcdefghijklmnopqrstuvwx", "key [REDACTED]"),
            (
                "extra comfyui-87d01e28d0123456789abcdef0123456789abcdef0123456789abcdef012345 end",
                "extra comfyui-[REDACTED] end",
            ),
            ("comfyui-manager and comfyui-0.33", "comfyui-manager and comfyui-0.33"),
            ("plain prompt, a red fox", "plain prompt, a red fox"),
        ] {
            assert_eq!(mask_secrets(raw), want, "{raw}");
        }
    }

    #[test]
    fn large_values_become_size_and_hash() {
        let r = Redactor {
            max_string: 10,
            max_value: 40,
            max_depth: 4,
        };
        let mut v = json!({"image": "x".repeat(11), "wf": {"a": "0123456789", "b": "0123456789", "c": "0123456789"}, "deep": [[[[[1]]]]]});
        r.redact(&mut v);
        assert_eq!(v["image"], "[omitted: 11 bytes, sha256:7668d2cd32a37eb4]");
        assert!(v["wf"].as_str().unwrap().starts_with("[omitted: "), "{v}");
        assert_eq!(v["deep"][0][0][0][0], "[omitted: nested too deep]");
    }
}
