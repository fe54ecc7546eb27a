//! `cargo xtask fuzz [--minutes N]`: the property-based fuzz targets, run
//! for longer than `cargo test` runs them.
//!
//! Each target is a proptest property that feeds hostile input to one
//! parser or checker and asserts it answers without panicking (and within
//! its bounds). `cargo test` (so CI) runs every target with its normal
//! case count; this command repeats them in release mode with many more
//! cases and fresh random seeds until the time is up (default 5 minutes),
//! and stops at the first failure, which proptest prints shrunk.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// `(name, cargo test arguments, test-name filter)`.
pub(crate) const TARGETS: &[(&str, &[&str], &str)] = &[
    ("workflow parser", &["-p", "comfy-workflow", "--test", "it"], "parse::"),
    (
        "editor-format converter",
        &["-p", "comfy-workflow", "--test", "it"],
        "editor::conversion_never_panics",
    ),
    (
        "workflow editor",
        &["-p", "comfy-workflow", "--test", "it"],
        "edit::a_batch_applies_fully_or_not_at_all",
    ),
    ("path sanitizer", &["-p", "comfy-guard", "--test", "it"], "paths::"),
    (
        "workflow inspector",
        &["-p", "comfy-guard", "--test", "it"],
        "inspect::no_",
    ),
    ("WebSocket decoder", &["-p", "comfy-client", "--lib"], "fuzz_ws_decoder"),
    (
        "config loader",
        &["-p", "comfy-mcp", "--test", "config"],
        "fuzz_config_loader",
    ),
];

/// Cases per target per round.
const CASES: &str = "20000";

pub(crate) fn run(cargo: &str, args: &[String]) -> Result<()> {
    let minutes: u64 = match args {
        [] => 5,
        [flag, n] if flag == "--minutes" => n.parse().context("--minutes takes a whole number")?,
        _ => bail!("usage: cargo xtask fuzz [--minutes N]"),
    };
    let budget = Duration::from_secs(minutes * 60);
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < budget {
        round += 1;
        for (name, target, filter) in TARGETS {
            if started.elapsed() >= budget {
                break;
            }
            eprintln!("==> fuzz round {round}: {name}");
            let status = Command::new(cargo)
                .args(["test", "--release", "--locked", "-q"])
                .args(*target)
                .args(["--", filter])
                .env("PROPTEST_CASES", CASES)
                .env("PROPTEST_DISABLE_FAILURE_PERSISTENCE", "true")
                .status()
                .with_context(|| format!("cannot run {cargo}"))?;
            if !status.success() {
                bail!("fuzz target `{name}` failed in round {round}");
            }
        }
    }
    eprintln!(
        "fuzz: {round} round(s) of {} targets, {} cases each, in {:.0}s, no failure",
        TARGETS.len(),
        CASES,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
