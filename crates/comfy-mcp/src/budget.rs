//! The inline budget: no tool result larger than `server.max_inline_bytes`
//! (1 MiB by default) reaches the client.
//!
//! An assistant pays for every byte of a result in its context window, and
//! a client may refuse or truncate a huge message mid-JSON. A result over
//! the budget is made smaller as JSON, never as bytes, so what arrives
//! always parses and keeps its shape (every key the output schema
//! requires stays):
//!
//! - a paged result (`items` with `offset`) keeps the first items that
//!   fit and says `has_more`; the note gives the `offset` to continue from;
//! - any other result has its largest arrays shortened, and then its
//!   longest strings cut (marked `…[truncated]`), until it fits.
//!
//! [`fit`] returns the note to send beside the result, naming the budget,
//! what was trimmed and how to get the rest.

use serde_json::{Value, json};

/// Bytes kept free for the fields a trimmed page gains.
const SLACK: usize = 256;

/// How many trimming rounds at most (each halves something).
const MAX_ROUNDS: usize = 64;

fn size(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

/// Makes `v` fit in `budget` bytes of JSON. Returns the note for the
/// client when something was trimmed.
pub fn fit(v: &mut Value, budget: usize) -> Option<String> {
    let before = size(v);
    if before <= budget {
        return None;
    }
    if let Some(note) = fit_page(v, budget, before) {
        return Some(note);
    }
    let mut trimmed: Vec<String> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        if size(v) <= budget {
            break;
        }
        let Some(path) = shrink_largest(v) else { break };
        if !trimmed.contains(&path) {
            trimmed.push(path);
        }
    }
    let shown: Vec<&str> = trimmed.iter().take(8).map(String::as_str).collect();
    Some(format!(
        "The result was {before} bytes, over the inline budget of {budget} bytes (server.max_inline_bytes): shortened \
         {}{}. Ask for less (filters, a smaller limit, paging with offset) to see the rest.",
        if shown.is_empty() {
            "nothing that could be".to_owned()
        } else {
            shown.join(", ")
        },
        if trimmed.len() > 8 { ", ..." } else { "" }
    ))
}

/// A paged result: the first items that fit.
fn fit_page(v: &mut Value, budget: usize, before: usize) -> Option<String> {
    let obj = v.as_object_mut()?;
    let offset = obj.get("offset").and_then(Value::as_u64)?;
    let items = obj.get_mut("items")?.as_array_mut()?;
    let all = std::mem::take(items);
    let n = all.len();
    let target = budget.saturating_sub(SLACK);
    // The envelope without items, then items one by one while they fit.
    let mut used = size(v);
    let mut keep = Vec::new();
    for item in all {
        let s = size(&item) + 1;
        if used + s > target {
            break;
        }
        used += s;
        keep.push(item);
    }
    let k = keep.len();
    let obj = v.as_object_mut()?;
    obj.insert("items".to_owned(), Value::Array(keep));
    obj.insert("has_more".to_owned(), json!(true));
    Some(format!(
        "The page was {before} bytes, over the inline budget of {budget} bytes (server.max_inline_bytes): it holds the \
         first {k} of its {n} items. Continue with offset={}, or ask for fewer fields or a smaller limit.",
        offset + k as u64
    ))
}

/// Halves the largest array in `v` (or, with no array left to shorten,
/// cuts the longest string). Returns the JSON path of what it shortened.
fn shrink_largest(v: &mut Value) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    find_largest(v, "", &mut best, true, 0);
    if best.is_none() {
        find_largest(v, "", &mut best, false, 0);
    }
    let (_, path) = best?;
    let target = pointer_mut(v, &path)?;
    match target {
        Value::Array(a) => {
            let keep = a.len() / 2;
            a.truncate(keep);
        }
        Value::String(s) => {
            let keep = s.len() / 2;
            let cut = (0..=keep).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            s.truncate(cut);
            s.push_str("…[truncated]");
        }
        _ => return None,
    }
    Some(if path.is_empty() {
        "the whole result".to_owned()
    } else {
        path
    })
}

/// The biggest array (with `arrays`) or string (without) worth shortening:
/// an array of at least one element, a string over 64 bytes.
fn find_largest(v: &Value, path: &str, best: &mut Option<(usize, String)>, arrays: bool, depth: usize) {
    if depth > 128 {
        return;
    }
    let candidate = match v {
        Value::Array(a) if arrays && !a.is_empty() => Some(size(v)),
        Value::String(s) if !arrays && s.len() > 64 => Some(s.len()),
        _ => None,
    };
    if let Some(s) = candidate
        && best.as_ref().is_none_or(|(b, _)| s > *b)
    {
        *best = Some((s, path.to_owned()));
    }
    match v {
        Value::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                find_largest(item, &format!("{path}/{i}"), best, arrays, depth + 1);
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                let key = k.replace('~', "~0").replace('/', "~1");
                find_largest(item, &format!("{path}/{key}"), best, arrays, depth + 1);
            }
        }
        _ => {}
    }
}

fn pointer_mut<'a>(v: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    if path.is_empty() { Some(v) } else { v.pointer_mut(path) }
}

/// Cuts a text result to the budget at a character boundary, with a note.
pub fn fit_text(s: &mut String, budget: usize) -> Option<String> {
    if s.len() <= budget {
        return None;
    }
    let before = s.len();
    let cut = (0..=budget).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
    s.truncate(cut);
    Some(format!(
        "The text was {before} bytes, over the inline budget of {budget} bytes (server.max_inline_bytes): the first \
         {cut} bytes are shown. Ask for less to see the rest."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_results_are_untouched() {
        let mut v = json!({"a": [1, 2, 3]});
        assert_eq!(fit(&mut v, 100), None);
        assert_eq!(v, json!({"a": [1, 2, 3]}));
    }

    #[test]
    fn a_page_keeps_the_items_that_fit_and_says_where_to_continue() {
        let items: Vec<Value> = (0..100)
            .map(|i| json!({"name": format!("Node{i:03}"), "pad": "x".repeat(50)}))
            .collect();
        let mut v = json!({"items": items, "total": 500, "offset": 200, "limit": 100, "has_more": true});
        let note = fit(&mut v, 2000).unwrap_or_default();
        assert!(size(&v) <= 2000, "{}", size(&v));
        let k = v["items"].as_array().map_or(0, Vec::len);
        assert!(k > 10 && k < 100, "{k}");
        assert_eq!(v["items"][0]["name"], "Node000");
        assert_eq!(v["has_more"], true);
        assert_eq!(v["total"], 500);
        assert!(
            note.contains(&format!("first {k} of its 100 items. Continue with offset={}", 200 + k)),
            "{note}"
        );
    }

    #[test]
    fn other_results_shrink_their_largest_parts_and_stay_valid() {
        let mut v = json!({
            "required_key": "kept",
            "outputs": (0..5000).map(|i| json!({"filename": format!("img_{i}.png")})).collect::<Vec<_>>(),
            "log": "y".repeat(50_000),
        });
        let note = fit(&mut v, 10_000).unwrap_or_default();
        assert!(size(&v) <= 10_000, "{}", size(&v));
        assert_eq!(v["required_key"], "kept");
        assert!(v["outputs"].is_array() && v["log"].is_string());
        assert!(v["log"].as_str().is_some_and(|s| s.ends_with("…[truncated]")));
        assert!(note.contains("/outputs") && note.contains("/log"), "{note}");
        // Re-serialised, it parses.
        let text = serde_json::to_string(&v).unwrap_or_default();
        assert!(serde_json::from_str::<Value>(&text).is_ok());
    }

    #[test]
    fn multibyte_strings_are_cut_on_character_boundaries() {
        let mut v = json!({"t": "é".repeat(10_000)});
        assert!(fit(&mut v, 1000).is_some());
        assert!(size(&v) <= 1000);
        let mut s = "日本".repeat(1000);
        let note = fit_text(&mut s, 1001);
        assert!(note.is_some() && s.len() <= 1001 && s.len().is_multiple_of(3));
    }

    #[test]
    fn an_impossible_budget_ends_without_looping_forever() {
        let mut v = json!({"k": [1, 2, 3], "s": "z".repeat(200)});
        let note = fit(&mut v, 5);
        assert!(note.is_some());
    }
}
