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
//!
//! This is argument parsing only: the linting, reading and output formats
//! are `comfy_guard::lint`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use comfy_guard::inspect::Mode;
use comfy_guard::lint::{self, FileReport, Settings, output};

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

fn run(args: &Args) -> Result<ExitCode, String> {
    let mode = args.mode.map(|m| match m {
        ModeArg::Audit => Mode::Audit,
        ModeArg::Enforce => Mode::Enforce,
    });
    let settings = Settings::load(args.config.as_deref(), mode, args.object_info.as_deref())?;
    let reports: Vec<FileReport> = args.files.iter().map(|path| lint::lint(path, &settings)).collect();
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
    Ok(ExitCode::from(lint::exit_code(&reports)))
}
