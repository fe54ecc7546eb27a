//! `comfy-mcp hook post-tool-use`: the Claude Code plugin's security hook.
//!
//! Claude Code runs it after the tools that inspect workflows or custom
//! nodes (`hooks/hooks.json`) and writes the hook input on stdin: a JSON
//! object with `tool_name`, `tool_input` and `tool_response`. The hook looks
//! through the response for what the server reports about security:
//!
//! - the workflow inspector's findings (`Dangerous node type: X`,
//!   `Suspicious input in node N (X), field 'f'`, unsafe paths and URLs,
//!   unknown, unapproved and look-alike node types, uninspectable
//!   subgraphs), wherever they are: a `warnings` list, an error text, a
//!   line of a text result;
//! - a dangerous-node count above zero: `"dangerous": {"count": N}` from
//!   `comfyui_audit_dangerous_nodes`, or `N dangerous` in the
//!   "Security audit:" line an install or update ends with.
//!
//! Text that is itself JSON (MCP tool results carry their JSON as text
//! content) is parsed and searched too, a few levels deep.
//!
//! When something is found it prints one line: by default the JSON object
//! Claude Code reads from a hook (`systemMessage` shows the warning to the
//! user, `additionalContext` gives it to the model), with `--format text`
//! the bare warning. Otherwise it prints nothing. It always exits 0: it
//! warns and never blocks, and a malformed or oversized input is searched
//! as plain text and noted on stderr rather than failing the tool call.
//!
//! It reads no config, opens no file and starts no runtime, so it stays
//! fast and works wherever the binary runs (no shell, `jq` or Python).

use std::fmt::Write as _;
use std::io::Read;

use serde_json::{Map, Value, json};

/// The most of stdin that is read; the rest is ignored (and said so).
pub const MAX_INPUT: u64 = 16 << 20;

/// How many levels of JSON-inside-a-string are followed.
const MAX_EMBEDDED: u8 = 4;

/// How long the printed warning may be, in characters.
const MAX_MESSAGE: usize = 700;

/// Text that marks a line as a security finding. Each is the start or a
/// fixed part of a message `comfy_guard` or the server writes.
const MARKERS: &[&str] = &[
    "Dangerous node type",
    "looks like dangerous node type",
    "class name that cannot be vouched for",
    "Suspicious input in node",
    "Unsafe path in node",
    "Unsafe URL in node",
    "Unverifiable input in node",
    "Unknown node type:",
    "Unapproved node type:",
    "unexpanded subgraph",
    "exceeds max subgraph depth",
    "Workflow blocked",
    "DANGEROUS:",
];

/// How a warning is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The hook JSON Claude Code reads (`systemMessage`, `additionalContext`).
    Json,
    /// The warning line alone.
    Text,
}

/// What a tool response reports about security.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Finding lines, in order of appearance, without repeats.
    pub findings: Vec<String>,
    /// The largest dangerous-node count seen (the same report can appear
    /// both as text and as structured content, so counts are not added).
    pub dangerous: u64,
    /// Dangerous node classes named next to the count.
    pub dangerous_classes: Vec<String>,
}

impl Report {
    fn is_clean(&self) -> bool {
        self.findings.is_empty() && self.dangerous == 0
    }

    fn finding(&mut self, line: &str) {
        let line = line.trim();
        if !line.is_empty() && self.findings.len() < 1000 && !self.findings.iter().any(|f| f == line) {
            self.findings.push(line.to_owned());
        }
    }

    fn dangerous_count(&mut self, n: u64) {
        self.dangerous = self.dangerous.max(n);
    }

    fn dangerous_class(&mut self, class: &str) {
        if self.dangerous_classes.len() < 100 && !self.dangerous_classes.iter().any(|c| c == class) {
            self.dangerous_classes.push(class.to_owned());
        }
    }

    /// Searches a JSON value.
    fn value(&mut self, v: &Value, embedded: u8) {
        match v {
            Value::Object(m) => self.object(m, embedded),
            Value::Array(items) => items.iter().for_each(|i| self.value(i, embedded)),
            Value::String(s) => self.text(s, embedded),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn object(&mut self, m: &Map<String, Value>, embedded: u8) {
        match m.get("dangerous") {
            Some(Value::Object(d)) => {
                if let Some(n) = d.get("count").and_then(Value::as_u64) {
                    self.dangerous_count(n);
                }
                for node in d.get("nodes").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(class) = node.get("class").and_then(Value::as_str) {
                        self.dangerous_class(class);
                    }
                }
            }
            Some(Value::Number(n)) => self.dangerous_count(n.as_u64().unwrap_or(0)),
            _ => {}
        }
        for child in m.values() {
            self.value(child, embedded);
        }
    }

    /// Searches a string: as JSON when it is JSON, else line by line.
    fn text(&mut self, s: &str, embedded: u8) {
        let t = s.trim_start();
        if embedded < MAX_EMBEDDED
            && (t.starts_with('{') || t.starts_with('['))
            && let Ok(inner) = serde_json::from_str::<Value>(t)
        {
            self.value(&inner, embedded + 1);
            return;
        }
        for line in s.lines() {
            if MARKERS.iter().any(|m| line.contains(m)) {
                self.finding(line);
            }
            if let Some(n) = audit_line_dangerous(line) {
                self.dangerous_count(n);
            }
            if let Some(rest) = line.trim_start().strip_prefix("DANGEROUS:") {
                let class = rest.split(" — ").next().unwrap_or_default().trim();
                if !class.is_empty() {
                    self.dangerous_class(class);
                }
            }
        }
    }
}

/// `N` from "Security audit: T nodes scanned, N dangerous, S suspicious.".
fn audit_line_dangerous(line: &str) -> Option<u64> {
    let (_, rest) = line.split_once("Security audit:")?;
    rest.split(',')
        .find_map(|part| part.trim().strip_suffix(" dangerous")?.trim().parse().ok())
}

/// Searches a hook input: the JSON Claude Code sends, or anything else as
/// text. Returns the report and the tool's name when the input gave one.
pub fn scan(input: &str) -> (Report, Option<String>, bool) {
    let mut report = Report::default();
    let Ok(v) = serde_json::from_str::<Value>(input) else {
        report.text(input, MAX_EMBEDDED);
        return (report, None, false);
    };
    let tool = v.get("tool_name").and_then(Value::as_str).map(str::to_owned);
    // The response is what the tool returned; the input is what the model
    // sent and is not a finding. Without a response field the whole value
    // is searched.
    match v.get("tool_response") {
        Some(r) => report.value(r, 0),
        None => report.value(&v, 0),
    }
    (report, tool, true)
}

/// Characters a terminal or a model should not receive raw: control
/// characters (newlines included, so the warning stays one line) and the
/// invisible formatting ones, written as `\u{..}`.
fn sanitize(s: &str, out: &mut String) {
    for c in s.chars() {
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
        {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
}

/// The one-line warning for a report, or `None` when it is clean.
pub fn warning(report: &Report, tool: Option<&str>) -> Option<String> {
    if report.is_clean() {
        return None;
    }
    let mut raw = String::from("SECURITY: ");
    if let Some(tool) = tool {
        // `mcp__plugin_comfy_comfyui__comfyui_run_workflow` → the tool itself.
        let short = tool.rsplit("__").next().unwrap_or(tool);
        raw.push_str(short);
        raw.push_str(": ");
    }
    if report.dangerous > 0 {
        let _ = write!(raw, "{} dangerous node type(s) on the server", report.dangerous);
        if !report.dangerous_classes.is_empty() {
            let shown: Vec<&str> = report.dangerous_classes.iter().take(5).map(String::as_str).collect();
            let _ = write!(raw, " ({}", shown.join(", "));
            if report.dangerous_classes.len() > 5 {
                let _ = write!(raw, ", …");
            }
            raw.push(')');
        }
        raw.push_str(if report.findings.is_empty() { ". " } else { "; " });
    }
    if !report.findings.is_empty() {
        let n = report.findings.len();
        let _ = write!(raw, "{n} finding(s): ");
        let shown: Vec<&str> = report.findings.iter().take(3).map(String::as_str).collect();
        raw.push_str(&shown.join("; "));
        if n > 3 {
            let _ = write!(raw, "; and {} more", n - 3);
        }
        raw.push_str(". ");
    }
    raw.push_str("Review the results above before proceeding.");
    let mut line = String::with_capacity(raw.len());
    sanitize(&raw, &mut line);
    if line.chars().count() > MAX_MESSAGE {
        let cut: String = line.chars().take(MAX_MESSAGE - 1).collect();
        line = format!("{cut}…");
    }
    Some(line)
}

/// What the hook prints for an input: the stdout line (if any) and a note
/// for stderr (if any).
pub fn post_tool_use(input: &[u8], truncated: bool, format: Format) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(input);
    let (report, tool, was_json) = scan(&text);
    let note = if truncated {
        Some(format!(
            "comfy-mcp hook: the hook input is over {} MiB; searched its first part as text",
            MAX_INPUT >> 20
        ))
    } else if !was_json && !text.trim().is_empty() {
        Some("comfy-mcp hook: the hook input is not JSON; searched it as text".to_owned())
    } else {
        None
    };
    let line = warning(&report, tool.as_deref()).map(|w| match format {
        Format::Text => w,
        Format::Json => json!({
            "systemMessage": w,
            "hookSpecificOutput": {"hookEventName": "PostToolUse", "additionalContext": w},
        })
        .to_string(),
    });
    (line, note)
}

/// Runs the hook on stdin. Always succeeds: a hook that fails would turn a
/// warning into a broken tool call.
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a hook answers on stdout, notes on stderr"
)]
pub fn run(format: Format) {
    let mut input = Vec::new();
    let read = std::io::stdin().lock().take(MAX_INPUT + 1).read_to_end(&mut input);
    if let Err(e) = read {
        eprintln!("comfy-mcp hook: cannot read the hook input: {e}");
    }
    let truncated = input.len() as u64 > MAX_INPUT;
    input.truncate(usize::try_from(MAX_INPUT).unwrap_or(usize::MAX));
    let (line, note) = post_tool_use(&input, truncated, format);
    if let Some(note) = note {
        eprintln!("{note}");
    }
    if let Some(line) = line {
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(tool: &str, response: &Value) -> String {
        json!({"hook_event_name": "PostToolUse", "tool_name": tool, "tool_input": {}, "tool_response": response})
            .to_string()
    }

    fn text_of(input: &str) -> Option<String> {
        post_tool_use(input.as_bytes(), false, Format::Text).0
    }

    #[test]
    fn a_clean_generation_prints_nothing() {
        let r = json!([{"type": "text", "text": "{\"prompt_id\":\"p\",\"status\":\"completed\",\"outputs\":[]}"}]);
        assert_eq!(text_of(&hook("mcp__comfyui__comfyui_generate_image", &r)), None);
        let r = json!({"content": [], "structuredContent": {"dangerous": {"count": 0, "nodes": []}, "suspicious": {"count": 3}}});
        assert_eq!(text_of(&hook("mcp__comfyui__comfyui_audit_dangerous_nodes", &r)), None);
    }

    #[test]
    fn workflow_warnings_inside_text_content_are_found() {
        let result = json!({"prompt_id": "p", "status": "completed", "warnings": [
            "Dangerous node type: KY_Eval_Python",
            "Suspicious input in node 1 (KY_Eval_Python), field 'code'",
            "Model 'x.safetensors' not found",
        ]});
        let r = json!([{"type": "text", "text": result.to_string()}]);
        let line = text_of(&hook("mcp__plugin_comfy_comfyui__comfyui_run_workflow", &r)).unwrap_or_default();
        assert_eq!(
            line,
            "SECURITY: comfyui_run_workflow: 2 finding(s): Dangerous node type: KY_Eval_Python; Suspicious input in \
             node 1 (KY_Eval_Python), field 'code'. Review the results above before proceeding."
        );
    }

    #[test]
    fn dangerous_counts_from_the_audit_and_from_an_install() {
        let audit = json!({"total_nodes": 3, "dangerous": {"count": 2, "nodes": [
            {"class": "Terminal", "reason": "x"}, {"class": "KY_Eval_Python", "reason": "y"}]}, "suspicious": {"count": 0}});
        let r = json!([{"type": "text", "text": audit.to_string()}]);
        let line = text_of(&hook("mcp__comfyui__comfyui_audit_dangerous_nodes", &r)).unwrap_or_default();
        assert_eq!(
            line,
            "SECURITY: comfyui_audit_dangerous_nodes: 2 dangerous node type(s) on the server (Terminal, \
             KY_Eval_Python). Review the results above before proceeding."
        );
        let text = "Installed comfyui-foo. Restart required for nodes to become active. Security audit: 571 nodes \
                    scanned, 1 dangerous, 0 suspicious.\n  DANGEROUS: Terminal — code execution";
        let line = text_of(&hook("mcp__comfyui__comfyui_install_custom_node", &json!(text))).unwrap_or_default();
        assert!(line.starts_with("SECURITY: comfyui_install_custom_node: 1 dangerous node type(s) on the server (Terminal); 1 finding(s): DANGEROUS: Terminal — code execution."), "{line}");
        let clean = "Installed comfyui-foo. Security audit: 571 nodes scanned, 0 dangerous, 2 suspicious.";
        assert_eq!(
            text_of(&hook("mcp__comfyui__comfyui_update_custom_node", &json!(clean))),
            None
        );
    }

    #[test]
    fn the_json_form_is_what_claude_code_reads() {
        let r = json!({"warnings": ["Unknown node type: Foo (node 3) is not installed on the server"]});
        let (line, note) = post_tool_use(hook("x", &r).as_bytes(), false, Format::Json);
        assert_eq!(note, None);
        let v: Value = serde_json::from_str(&line.unwrap_or_default()).unwrap_or_default();
        let msg = v["systemMessage"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("SECURITY: x: 1 finding(s): Unknown node type: Foo"),
            "{msg}"
        );
        assert_eq!(v["hookSpecificOutput"]["hookEventName"], "PostToolUse");
        assert_eq!(v["hookSpecificOutput"]["additionalContext"], msg);
    }

    #[test]
    fn the_tool_input_is_not_a_finding() {
        let input =
            json!({"tool_name": "t", "tool_input": {"workflow": "Dangerous node type: X"}, "tool_response": "ok"});
        assert_eq!(text_of(&input.to_string()), None);
    }

    #[test]
    fn malformed_input_is_searched_as_text_and_noted() {
        let (line, note) = post_tool_use(b"not json at all", false, Format::Text);
        assert_eq!(line, None);
        assert!(note.unwrap_or_default().contains("not JSON"));
        let (line, _) = post_tool_use(
            b"{\"tool_response\": \"Dangerous node type: Terminal",
            false,
            Format::Text,
        );
        assert!(line.unwrap_or_default().contains("Dangerous node type: Terminal"));
        let (line, note) = post_tool_use(&[0xff, 0xfe, b'{'], false, Format::Json);
        assert_eq!((line, note.is_some()), (None, true));
        assert_eq!(post_tool_use(b"", false, Format::Json), (None, None));
    }

    #[test]
    fn the_warning_is_one_bounded_line_without_control_characters() {
        let many: Vec<String> = (0..50)
            .map(|i| format!("Dangerous node type: Evil\u{202e}\u{1b}[31m{i}{}", "x".repeat(100)))
            .collect();
        let line = text_of(&hook("t", &json!({"warnings": many}))).unwrap_or_default();
        assert!(line.chars().count() <= MAX_MESSAGE);
        assert!(!line.chars().any(|c| c.is_control() || c == '\u{202e}'), "{line:?}");
        assert!(line.contains("\\u{202e}\\u{1b}"));
        assert!(line.contains("50 finding(s)"));
    }

    #[test]
    fn deep_or_nested_json_does_not_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let (line, note) = post_tool_use(deep.as_bytes(), false, Format::Text);
        assert_eq!(line, None);
        assert!(note.is_some());
        // JSON in a string in a string ... is followed a few levels only.
        let mut s = json!({"warnings": ["Dangerous node type: X"]}).to_string();
        for _ in 0..10 {
            s = json!({"text": s}).to_string();
        }
        let _ = text_of(&hook("t", &json!(s)));
    }
}
