//! Secrets that reach ComfyUI but must never come back out: the Comfy
//! account API key paid API nodes are charged to
//! (`extra_data.api_key_comfy_org`), from a call's `api_key_comfy_org`
//! argument or `comfyui.api_key_comfy_org` in the config.
//!
//! ComfyUI 0.8.0 and 0.33.0 strip the key from the queue and the history
//! they serve, and the audit log masks it by its argument name and by its
//! shape (`comfyui-<hex>`). On top of that, every tool result and error
//! leaves the stack with each known key's exact text replaced by
//! [`MASK`], so neither a server that echoes it (an old or hostile one,
//! in an error page or a listing) nor a message quoting the argument can
//! hand it to the model.

use rmcp::model::{CallToolResult, JsonObject};
use serde_json::Value;

use crate::config::Config;

/// What a scrubbed key becomes.
pub const MASK: &str = "[REDACTED]";

/// The argument that carries the key.
pub const KEY_ARGUMENT: &str = "api_key_comfy_org";

/// Keys shorter than this are not scrubbed (a one-letter "key" would
/// garble every result; no real key is that short).
const MIN_SCRUBBED: usize = 8;

/// The secrets of one call: the config's key and the call's argument.
pub fn of_call(args: Option<&JsonObject>, config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |s: &str| {
        if s.len() >= MIN_SCRUBBED && !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    };
    if let Some(k) = &config.comfyui.api_key_comfy_org {
        add(k);
    }
    if let Some(k) = args.and_then(|a| a.get(KEY_ARGUMENT)).and_then(Value::as_str) {
        add(k);
    }
    out
}

/// `result` with every occurrence of each secret masked, in its text and
/// structured content alike. Costs one serialisation, and only when there
/// are secrets.
pub fn scrub(result: CallToolResult, secrets: &[String]) -> CallToolResult {
    if secrets.is_empty() {
        return result;
    }
    let Ok(mut v) = serde_json::to_value(&result) else {
        return result;
    };
    if !scrub_value(&mut v, secrets) {
        return result;
    }
    // A result that no longer reads back (it cannot happen: only string
    // contents changed) is replaced rather than returned unscrubbed.
    serde_json::from_value(v).unwrap_or_else(|_| {
        CallToolResult::error(vec![rmcp::model::ContentBlock::text(
            "the result was withheld: it held a secret that could not be masked",
        )])
    })
}

/// How much of a secret's start marks a copy of it: a message cut short
/// (`…`) may hold only its first part.
const HEAD: usize = 16;

/// `s` with every copy of each secret masked, also a copy cut short
/// (its first [`HEAD`] bytes or more, or the whole of a shorter secret);
/// `None` when there is none.
fn mask(s: &str, secrets: &[String]) -> Option<String> {
    let mut out = s.to_owned();
    let mut changed = false;
    for k in secrets {
        let mut head = k.len().min(HEAD);
        while !k.is_char_boundary(head) {
            head -= 1;
        }
        let head = &k[..head];
        if head.is_empty() {
            continue;
        }
        let mut from = 0;
        while let Some(at) = out[from..].find(head).map(|i| i + from) {
            // Extend over as much more of the secret as follows.
            let (a, b) = (out.as_bytes(), k.as_bytes());
            let mut len = head.len();
            while len < b.len() && at + len < a.len() && a[at + len] == b[len] {
                len += 1;
            }
            while !out.is_char_boundary(at + len) {
                len -= 1;
            }
            out.replace_range(at..at + len, MASK);
            changed = true;
            from = at + MASK.len();
        }
    }
    changed.then_some(out)
}

/// Masks every secret in every string and key of `v`; whether anything
/// changed.
fn scrub_value(v: &mut Value, secrets: &[String]) -> bool {
    let mut changed = false;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => {
                if let Some(m) = mask(s, secrets) {
                    *s = m;
                    changed = true;
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(map) => {
                let renamed: Vec<(String, String)> = map
                    .keys()
                    .filter_map(|k| mask(k, secrets).map(|m| (k.clone(), m)))
                    .collect();
                for (old, new) in renamed {
                    if let Some(item) = map.remove(&old) {
                        map.insert(new, item);
                        changed = true;
                    }
                }
                stack.extend(map.values_mut());
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use rmcp::model::ContentBlock;
    use serde_json::json;

    use super::*;

    const KEY: &str = "comfyui-0123456789abcdef0123456789abcdef";

    #[test]
    fn every_copy_is_masked_in_text_and_structure() {
        let mut r = CallToolResult::structured(json!({"a": format!("x{KEY}y"), "nested": [{KEY: KEY}]}));
        r.content.push(ContentBlock::text(format!("error: {KEY}")));
        let out = scrub(r, &[KEY.to_owned()]);
        let text = serde_json::to_string(&out).unwrap_or_default();
        assert!(!text.contains(KEY), "{text}");
        assert!(text.contains("x[REDACTED]y"), "{text}");
    }

    #[test]
    fn a_copy_cut_short_is_masked_too() {
        let secrets = [KEY.to_owned(), "kéy-with-ünicode-ß".to_owned()];
        assert_eq!(
            mask(&format!("msg {}…", &KEY[..20]), &secrets).as_deref(),
            Some("msg [REDACTED]…")
        );
        assert_eq!(
            mask(&format!("{KEY}{KEY}"), &secrets).as_deref(),
            Some("[REDACTED][REDACTED]")
        );
        assert_eq!(mask(&KEY[..15], &secrets), None, "shorter than the head: not a copy");
        assert_eq!(
            mask("a kéy-with-ünicode-ß b", &secrets).as_deref(),
            Some("a [REDACTED] b")
        );
        assert_eq!(mask("a kéy-with-ünicodX", &secrets).as_deref(), Some("a [REDACTED]X"));
    }

    #[test]
    fn short_or_absent_keys_are_not_scrubbed() {
        let mut config = Config::default();
        config.comfyui.api_key_comfy_org = Some("short".to_owned());
        let args: JsonObject = serde_json::from_value(json!({"api_key_comfy_org": KEY})).unwrap_or_default();
        assert_eq!(of_call(Some(&args), &config), [KEY]);
        assert!(of_call(None, &Config::default()).is_empty());
        let r = CallToolResult::structured(json!({"a": "short"}));
        assert_eq!(scrub(r.clone(), &[]), r);
    }
}
