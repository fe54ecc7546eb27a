//! The three output formats: human (colour on a terminal only), JSON, and
//! SARIF 2.1.0 for code-scanning tools.

use std::fmt::Write as _;

use crate::inspect::{Finding, Inspection, RuleId, Severity};
use anstyle::{AnsiColor, Style};
use serde_json::{Value, json};

use super::input::Source;

/// What happened to one file.
pub struct FileReport {
    /// The file, as named on the command line.
    pub file: String,
    /// What happened to it.
    pub outcome: Outcome,
}

/// A file's outcome.
pub enum Outcome {
    /// Read and inspected.
    Inspected {
        /// What the file held.
        source: Source,
        /// The findings.
        inspection: Inspection,
        /// How it was judged, when the reader should know.
        note: Option<String>,
        /// The file's text, for locating nodes in SARIF output.
        text: Option<String>,
    },
    /// Not read or not parsed, and why.
    Failed(String),
}

/// Human-readable lines; `color` adds ANSI styles.
pub fn human(reports: &[FileReport], color: bool) -> String {
    let paint = |style: Style, text: &str| {
        if color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    };
    let error = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    let warning = Style::new().fg_color(Some(AnsiColor::Yellow.into())).bold();
    let dim = Style::new().dimmed();
    let bold = Style::new().bold();
    let mut out = String::new();
    let (mut errors, mut warnings, mut failed) = (0usize, 0usize, 0usize);
    for report in reports {
        match &report.outcome {
            Outcome::Failed(why) => {
                failed += 1;
                let _ = writeln!(
                    out,
                    "{}: {} {why}",
                    paint(bold, &report.file),
                    paint(error, "cannot lint:")
                );
            }
            Outcome::Inspected { inspection, note, .. } => {
                if let Some(note) = note {
                    let _ = writeln!(
                        out,
                        "{}: {}",
                        paint(bold, &report.file),
                        paint(dim, &format!("note: {note}"))
                    );
                }
                for f in &inspection.findings {
                    let (label, style) = match f.severity {
                        Severity::Error => {
                            errors += 1;
                            ("error", error)
                        }
                        Severity::Warning => {
                            warnings += 1;
                            ("warning", warning)
                        }
                    };
                    let _ = writeln!(
                        out,
                        "{}: {}{} {}: {}",
                        paint(bold, &report.file),
                        paint(style, label),
                        paint(dim, &format!("[{}]", f.rule.id())),
                        location(f),
                        f.message
                    );
                    let _ = writeln!(out, "    {}", paint(dim, &f.detail));
                }
                if let Some(blocked) = inspection.blocked() {
                    let _ = writeln!(out, "{}: {}", paint(bold, &report.file), paint(error, &blocked.message));
                }
            }
        }
    }
    let files = reports.len();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut summary = format!("{} checked: ", plural(files, "file"));
    if errors + warnings == 0 {
        summary.push_str("no findings");
    } else {
        let _ = write!(
            summary,
            "{} ({}, {})",
            plural(errors + warnings, "finding"),
            plural(errors, "error"),
            plural(warnings, "warning")
        );
    }
    if failed > 0 {
        let _ = write!(summary, "; {} could not be read", plural(failed, "file"));
    }
    let _ = writeln!(out, "{}", paint(bold, &summary));
    out
}

/// `node 4 (CustomRunner), input 'code'`.
fn location(f: &Finding) -> String {
    let mut out = String::new();
    if let Some(node) = &f.node {
        let _ = write!(out, "node {node}");
        if let Some(class) = &f.class {
            let _ = write!(out, " ({})", class.escape_debug());
        }
    }
    if let Some(input) = &f.input {
        let _ = write!(out, ", input '{input}'");
    }
    out
}

/// One JSON array, an object per file.
pub fn json(reports: &[FileReport]) -> Value {
    Value::Array(
        reports
            .iter()
            .map(|r| match &r.outcome {
                Outcome::Failed(why) => json!({"file": r.file, "error": why}),
                Outcome::Inspected {
                    source,
                    inspection,
                    note,
                    ..
                } => json!({
                    "file": r.file,
                    "source": source.name(),
                    "mode": inspection.mode,
                    "nodes": inspection.nodes_used.len(),
                    "findings": inspection.findings,
                    "warnings": inspection.warnings(),
                    "blocked": inspection.blocked(),
                    "note": note,
                }),
            })
            .collect(),
    )
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// The 1-based line where node `id` is defined in `text`, if it can be
/// found (`"id":` as an object key).
fn node_line(text: &str, id: &str) -> Option<usize> {
    let key = serde_json::to_string(id).ok()?;
    let mut from = 0;
    while let Some(pos) = text[from..].find(&key) {
        let at = from + pos;
        let after = text[at + key.len()..].trim_start();
        if after.starts_with(':') {
            return Some(text[..at].bytes().filter(|b| *b == b'\n').count() + 1);
        }
        from = at + key.len();
    }
    None
}

/// A SARIF 2.1.0 log: one run, the rule table, a result per finding and a
/// notification per file that could not be read.
pub fn sarif(reports: &[FileReport]) -> Value {
    let rules: Vec<Value> = RuleId::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.id(),
                "shortDescription": {"text": r.summary()},
                "defaultConfiguration": {"level": level(r.severity())},
            })
        })
        .collect();
    let mut results = Vec::new();
    let mut notifications = Vec::new();
    for report in reports {
        match &report.outcome {
            Outcome::Failed(why) => notifications.push(json!({
                "level": "error",
                "message": {"text": format!("{}: {why}", report.file)},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": report.file}}}],
            })),
            Outcome::Inspected { inspection, text, .. } => {
                for f in &inspection.findings {
                    let rule_index = RuleId::ALL.iter().position(|r| *r == f.rule).unwrap_or(0);
                    let line = f
                        .node
                        .as_deref()
                        .and_then(|id| text.as_deref().and_then(|t| node_line(t, id)))
                        .unwrap_or(1);
                    let mut logical = String::new();
                    if let Some(node) = &f.node {
                        let _ = write!(logical, "nodes/{node}");
                    }
                    if let Some(input) = &f.input {
                        let _ = write!(logical, "/inputs/{input}");
                    }
                    results.push(json!({
                        "ruleId": f.rule.id(),
                        "ruleIndex": rule_index,
                        "level": level(f.severity),
                        "message": {"text": format!("{} ({})", f.message, f.detail)},
                        "locations": [{
                            "physicalLocation": {
                                "artifactLocation": {"uri": report.file},
                                "region": {"startLine": line},
                            },
                            "logicalLocations": [{"fullyQualifiedName": logical, "kind": "object"}],
                        }],
                    }));
                }
            }
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "comfy-lint",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": notifications.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::{FileReport, Outcome, human, node_line};

    #[test]
    fn colour_is_added_only_when_asked() {
        let reports = [FileReport {
            file: "x.json".to_owned(),
            outcome: Outcome::Failed("broken".to_owned()),
        }];
        assert!(human(&reports, true).contains("\u{1b}["));
        assert_eq!(
            human(&reports, false),
            "x.json: cannot lint: broken\n1 file checked: no findings; 1 file could not be read\n"
        );
    }

    #[test]
    fn nodes_are_located_by_their_key() {
        let text = "{\n  \"1\": {\"inputs\": {\"x\": [\"1\", 0]}},\n  \"12\" : {}\n}";
        assert_eq!(node_line(text, "1"), Some(2));
        assert_eq!(node_line(text, "12"), Some(3));
        assert_eq!(node_line(text, "7"), None);
    }
}
