//! The text tokens ComfyUI's web front end replaces in string inputs when
//! it queues a workflow, so a workflow sent by an assistant runs as it
//! would from the browser:
//!
//! - `%date:FORMAT%`: the date and time, `FORMAT` built from `yyyy`,
//!   `yy`, `MM`, `M`, `dd`, `d`, `hh`, `h`, `mm`, `m`, `ss`, `s`
//!   (e.g. `ComfyUI_%date:yyyy-MM-dd%` → `ComfyUI_2026-11-25`);
//! - `%Title.input%`: the literal value of input `input` of the node whose
//!   title (`_meta.title`, else its class) is `Title`.
//!
//! A reference that names no node or no literal is left as written, as
//! the front end leaves it. ComfyUI's back end expands its own
//! `%year%`-style tokens in file names later; those are untouched here.

use serde::Serialize;
use serde_json::Value;

use crate::{Input, Workflow};

/// The moment the tokens are expanded for (the caller picks the clock and
/// the time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateParts {
    /// Year, e.g. 2026.
    pub year: u32,
    /// Month, 1–12.
    pub month: u32,
    /// Day, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
    /// Second, 0–59.
    pub second: u32,
}

/// One replaced input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenChange {
    /// The node.
    pub node: String,
    /// The input.
    pub input: String,
    /// The value as written.
    pub from: String,
    /// The value that runs.
    pub to: String,
}

fn format_date(format: &str, d: DateParts) -> String {
    let mut out = String::new();
    let mut rest = format;
    // Longest tokens first, so `yyyy` is not read as two `yy`.
    let tokens: [(&str, String); 12] = [
        ("yyyy", format!("{:04}", d.year)),
        ("yy", format!("{:02}", d.year % 100)),
        ("MM", format!("{:02}", d.month)),
        ("M", d.month.to_string()),
        ("dd", format!("{:02}", d.day)),
        ("d", d.day.to_string()),
        ("hh", format!("{:02}", d.hour)),
        ("h", d.hour.to_string()),
        ("mm", format!("{:02}", d.minute)),
        ("m", d.minute.to_string()),
        ("ss", format!("{:02}", d.second)),
        ("s", d.second.to_string()),
    ];
    'outer: while !rest.is_empty() {
        for (t, v) in &tokens {
            if let Some(after) = rest.strip_prefix(t) {
                out.push_str(v);
                rest = after;
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// The literal input `input` of the node titled (or of class) `title`.
fn reference(wf: &Workflow, title: &str, input: &str) -> Option<String> {
    let node = wf
        .nodes()
        .iter()
        .find(|n| n.title() == Some(title))
        .or_else(|| wf.nodes().iter().find(|n| n.class_type == title))?;
    match node.value(input)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `text` with its tokens expanded, or `None` when nothing changed.
fn expand(wf: &Workflow, text: &str, now: DateParts) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('%') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let token = &after[..end];
        let replaced = if let Some(format) = token.strip_prefix("date:") {
            Some(format_date(format, now))
        } else if let Some((title, input)) = token.rsplit_once('.')
            && !title.is_empty()
            && !input.is_empty()
        {
            reference(wf, title, input)
        } else {
            None
        };
        if let Some(v) = replaced {
            out.push_str(&v);
            changed = true;
            rest = &after[end + 1..];
        } else {
            // Not a token: keep the `%` and look again from the next one.
            out.push('%');
            rest = after;
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

impl Workflow {
    /// Expands the front end's tokens in every literal string input, as
    /// of `now`; returns what changed. References read the workflow as it
    /// was before any expansion.
    pub fn expand_frontend_tokens(&mut self, now: DateParts) -> Vec<TokenChange> {
        let mut changes = Vec::new();
        for node in self.nodes() {
            for (name, input) in &node.inputs {
                if let Input::Value(Value::String(s)) = input
                    && let Some(to) = expand(self, s, now)
                {
                    changes.push(TokenChange {
                        node: node.id.to_string(),
                        input: name.to_string(),
                        from: s.clone(),
                        to,
                    });
                }
            }
        }
        for c in &changes {
            if let Some(node) = self.node_mut(&c.node) {
                node.set_input(c.input.as_str(), Input::Value(Value::String(c.to.clone())));
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;
    use serde_json::json;

    const NOW: DateParts = DateParts {
        year: 2026,
        month: 3,
        day: 7,
        hour: 9,
        minute: 5,
        second: 1,
    };

    fn wf(v: Value) -> Workflow {
        Workflow::from_value(v, &Limits::default()).unwrap_or_default()
    }

    #[test]
    fn dates_and_references_expand_as_the_front_end_does() {
        let mut w = wf(json!({
            "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 832, "height": 1216}, "_meta": {"title": "Size"}},
            "2": {"class_type": "KSampler", "inputs": {"seed": 42}},
            "3": {"class_type": "SaveImage", "inputs": {
                "filename_prefix": "out/%date:yyyy-MM-dd%/img_%Size.width%x%Size.height%_s%KSampler.seed%_%date:hhmmss%"}},
            "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "100% cotton, 50% off %Nobody.x% %date%"}},
        }));
        let changes = w.expand_frontend_tokens(NOW);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].to, "out/2026-03-07/img_832x1216_s42_090501");
        assert_eq!(
            w.node("3").and_then(|n| n.value("filename_prefix")),
            Some(&json!("out/2026-03-07/img_832x1216_s42_090501"))
        );
        // Percent signs that are not tokens stay as written.
        assert_eq!(
            w.node("4").and_then(|n| n.value("text")),
            Some(&json!("100% cotton, 50% off %Nobody.x% %date%"))
        );
    }

    #[test]
    fn short_formats_and_odd_text() {
        assert_eq!(format_date("yy/M/d h:m:s", NOW), "26/3/7 9:5:1");
        assert_eq!(format_date("é yyyy", NOW), "é 2026");
        let w = wf(json!({}));
        assert_eq!(expand(&w, "%", NOW), None);
        assert_eq!(expand(&w, "%%%%", NOW), None);
        assert_eq!(expand(&w, "a%date:yyyy%", NOW).as_deref(), Some("a2026"));
        assert_eq!(expand(&w, "%date:%", NOW).as_deref(), Some(""));
    }
}
