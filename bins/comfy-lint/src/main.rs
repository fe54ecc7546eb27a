//! `comfy-lint`: the workflow inspector on the command line.
//!
//! ```text
//! comfy-lint [--mode audit|enforce] [--config FILE] [--object-info FILE]
//!            [--format human|json|sarif] FILE...
//! ```
//!
//! Each FILE is an API-format or editor-format workflow (JSON), or a PNG or
//! WebP image with the workflow ComfyUI embeds. `--config` reads the
//! `security:` section of the server's config file (mode, allowed and
//! dangerous node lists) and its `limits:` section (what one job may cost,
//! the defaults otherwise); `--mode` overrides its mode. Job limits are
//! judged as the server judges them at submission: over a limit is a
//! finding of its rule (`limits.max_steps`, ...), and so is a limit value
//! that cannot be worked out before the run (a warning in audit mode). `--object-info`, a
//! saved `/object_info` answer, converts editor workflows and makes node
//! classes the server does not have findings. An editor file is also
//! judged on what its conversion never reads: muted and bypassed nodes
//! (one click turns them on), subgraph definitions nested in definitions
//! and legacy group nodes.
//!
//! Exit status: 0 when every file is clean, 1 when there are findings, 2 on
//! a usage error or a file that cannot be read or parsed.

mod input;
mod output;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use comfy_guard::inspect::{self, Mode};
use comfy_guard::{JobLimits, SecurityConfig};
use comfy_workflow::{Limits, ObjectInfo};
use serde::Deserialize;

use crate::output::{FileReport, Outcome};

#[derive(Parser)]
#[command(name = "comfy-lint", version, about = "Security lint for ComfyUI workflows")]
struct Args {
    /// Workflow files: API or editor JSON, or PNG/WebP images with an embedded workflow.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// audit: report findings; enforce: also block classes outside the allowlist.
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// The server's config file (its `security:` section gives the lists and the mode, `limits:` the job limits).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A saved `/object_info` answer: converts editor workflows, and unknown classes become findings.
    #[arg(long, value_name = "FILE")]
    object_info: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Audit,
    Enforce,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
    Sarif,
}

/// The parts of the config file comfy-lint reads; everything else is
/// ignored, as the server ignores unknown keys.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ConfigFile {
    security: SecurityConfig,
    limits: JobLimits,
}

/// Largest config or catalog file read.
const MAX_SIDE_FILE: u64 = 256 << 20;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("comfy-lint: {message}");
            ExitCode::from(2)
        }
    }
}

fn read_side_file(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{what} {}: {}", path.display(), e.kind()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SIDE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{what} {}: {}", path.display(), e.kind()))?;
    if bytes.len() as u64 > MAX_SIDE_FILE {
        return Err(format!("{what} {}: larger than {MAX_SIDE_FILE} bytes", path.display()));
    }
    Ok(bytes)
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let (security, job_limits) = match &args.config {
        Some(path) => {
            let text = String::from_utf8(read_side_file(path, "config")?)
                .map_err(|_| format!("config {}: not UTF-8", path.display()))?;
            let file: ConfigFile = if text.trim().is_empty() {
                ConfigFile::default()
            } else {
                serde_norway::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))?
            };
            file.security
                .check()
                .map_err(|e| format!("config {}: {e}", path.display()))?;
            (file.security, file.limits)
        }
        None => (SecurityConfig::default(), JobLimits::DEFAULT),
    };
    let mut security = security;
    if let Some(mode) = args.mode {
        security.mode = match mode {
            ModeArg::Audit => Mode::Audit,
            ModeArg::Enforce => Mode::Enforce,
        };
    }
    let policy = security.policy();
    let info = match &args.object_info {
        Some(path) => {
            let bytes = read_side_file(path, "object info")?;
            let value: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| format!("object info {}: {e}", path.display()))?;
            if !value.is_object() {
                return Err(format!("object info {}: not a JSON object", path.display()));
            }
            Some(ObjectInfo::from_value(&value))
        }
        None => None,
    };
    let limits = *policy.limits();
    let reports: Vec<FileReport> = args
        .files
        .iter()
        .map(|path| lint(path, &policy, info.as_ref(), &limits, &job_limits))
        .collect();

    let rendered = match args.format {
        Format::Human => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            output::human(&reports, color)
        }
        Format::Json => format!("{:#}\n", output::json(&reports)),
        Format::Sarif => format!("{:#}\n", output::sarif(&reports)),
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`comfy-lint ... | head`) is not an error worth a panic.
    let _ = stdout.write_all(rendered.as_bytes());
    let _ = stdout.flush();

    let failed = reports.iter().any(|r| matches!(r.outcome, Outcome::Failed(_)));
    let findings = reports
        .iter()
        .any(|r| matches!(&r.outcome, Outcome::Inspected { inspection, .. } if !inspection.is_clean()));
    Ok(if failed {
        ExitCode::from(2)
    } else if findings {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn lint(
    path: &Path,
    policy: &inspect::Policy,
    info: Option<&ObjectInfo>,
    limits: &Limits,
    job_limits: &JobLimits,
) -> FileReport {
    let file = path.display().to_string();
    let outcome = match input::load(path, info, limits) {
        Err(why) => Outcome::Failed(why),
        Ok(loaded) => match inspect_all(&loaded, policy, info, job_limits) {
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

/// Inspects a file's workflow and, for an image, every other embedded
/// text (their findings' nodes prefixed with where the text sits), then
/// adds the findings about the file itself and what the job would cost
/// (the workflow the file runs, judged against `job_limits` as the server
/// judges a submission).
fn inspect_all(
    loaded: &input::Loaded,
    policy: &inspect::Policy,
    info: Option<&ObjectInfo>,
    job_limits: &JobLimits,
) -> Result<inspect::Inspection, inspect::InspectError> {
    let mut inspection = inspect::inspect(&loaded.workflow, policy, info)?;
    let mode = inspection.mode;
    inspection.findings.extend(
        comfy_guard::check_job_in(&loaded.workflow, job_limits, mode)
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
