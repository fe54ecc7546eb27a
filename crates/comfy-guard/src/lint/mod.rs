//! The linter behind `comfy-lint`: the inspector over workflow files.
//!
//! Each file is an API-format or editor-format workflow (JSON), or a PNG or
//! WebP image with the workflow ComfyUI embeds (`input`). The run is judged
//! by [`Settings`]: the `security:` section of the server's config file
//! (mode, allowed and dangerous node lists) and its `limits:` section (what
//! one job may cost), and optionally a saved `/object_info` answer, which
//! converts editor workflows and makes node classes the server does not
//! have findings. Job limits are judged as the server judges them at
//! submission: over a limit is a finding of its rule (`limits.max_steps`,
//! ...), and so is a limit value that cannot be worked out before the run.
//! An editor file is also judged on what its conversion never reads: muted
//! and bypassed nodes, subgraph definitions nested in definitions and
//! legacy group nodes. [`output`] renders the reports (human, JSON,
//! SARIF); [`exit_code`] is the command's status.

mod input;
pub mod output;
mod settings;

use std::path::Path;

pub use input::Source;
pub use output::{FileReport, Outcome};
pub use settings::{MAX_SIDE_FILE, Settings};

use crate::inspect;

/// Lints the file at `path`.
pub fn lint(path: &Path, settings: &Settings) -> FileReport {
    let file = path.display().to_string();
    let limits = settings.policy.limits();
    let outcome = match input::load(path, settings.info.as_ref(), limits) {
        Err(why) => Outcome::Failed(why),
        Ok(loaded) => match inspect_all(&loaded, settings) {
            Ok(inspection) => Outcome::Inspected {
                source: loaded.source,
                inspection,
                note: loaded.note,
                text: loaded.text,
            },
            Err(e) => Outcome::Failed(e.to_string()),
        },
    };
    FileReport { file, outcome }
}

/// The exit status of a run: 2 when a file could not be read or parsed, 1
/// when there are findings, 0 when every file is clean.
pub fn exit_code(reports: &[FileReport]) -> u8 {
    let failed = reports.iter().any(|r| matches!(r.outcome, Outcome::Failed(_)));
    let findings = reports
        .iter()
        .any(|r| matches!(&r.outcome, Outcome::Inspected { inspection, .. } if !inspection.is_clean()));
    if failed { 2 } else { u8::from(findings) }
}

/// Inspects a file's workflow and, for an image, every other embedded
/// text (their findings' nodes prefixed with where the text sits), then
/// adds the findings about the file itself and what the job would cost
/// (the workflow the file runs, judged against the job limits as the
/// server judges a submission).
fn inspect_all(loaded: &input::Loaded, settings: &Settings) -> Result<inspect::Inspection, inspect::InspectError> {
    let (policy, info) = (&settings.policy, settings.info.as_ref());
    let mut inspection = inspect::inspect(&loaded.workflow, policy, info)?;
    let mode = inspection.mode;
    inspection.findings.extend(
        crate::check_job_in(&loaded.workflow, &settings.job_limits, mode)
            .iter()
            .map(|o| o.finding(mode)),
    );
    // An editor file: also what its conversion does not read.
    if let Some(doc) = &loaded.editor {
        let hidden = inspect::inspect_editor_hidden(doc, policy, info)?;
        absorb(&mut inspection, hidden, None);
    }
    for (label, wf, editor) in &loaded.extra {
        let other = inspect::inspect(wf, policy, info)?;
        absorb(&mut inspection, other, Some(label));
        if let Some(doc) = editor {
            let hidden = inspect::inspect_editor_hidden(doc, policy, info)?;
            absorb(&mut inspection, hidden, Some(label));
        }
    }
    inspection.findings.extend(loaded.findings.iter().cloned());
    Ok(inspection)
}

/// Adds `other`'s classes, findings (their node named after `label`, the
/// embedded text they come from, when there is one) and refused classes.
fn absorb(inspection: &mut inspect::Inspection, other: inspect::Inspection, label: Option<&str>) {
    inspection.nodes_used.extend(other.nodes_used);
    inspection.findings.extend(other.findings.into_iter().map(|mut f| {
        if let Some(label) = label {
            f.node = Some(format!("{label}: {}", f.node.unwrap_or_default()));
        }
        f
    }));
    for class in other.refused {
        if !inspection.refused.contains(&class) {
            inspection.refused.push(class);
        }
    }
}
