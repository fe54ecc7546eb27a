//! One benchmark run, as `comfy-bench`'s arguments ask: the scale-out
//! table alone, or the suite against a fresh simulator (and the peer's, and
//! the other servers'), then the table printed, written into the
//! performance doc, saved as a baseline or checked against one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;

use crate::others::other_servers;
use crate::report::{check, machine, replace_block, table};
use crate::scale::scale;
use crate::suite::{Bench, run_suite};
use crate::tempdir;

/// What `comfy-bench` was asked.
#[derive(Debug, Default)]
pub struct Options {
    /// The `comfy-mcp` binary measured.
    pub bin: PathBuf,
    /// Fewer iterations.
    pub quick: bool,
    /// Only the scale-out table (replicas sharing Redis).
    pub scale_only: bool,
    /// The performance doc whose bench block is replaced.
    pub write: Option<PathBuf>,
    /// The baseline to check against.
    pub baseline: Option<PathBuf>,
    /// Where to save the figures as a new baseline.
    pub save: Option<PathBuf>,
    /// The peer's command, measured in the same run.
    pub peer: Option<PathBuf>,
    /// Other servers (`NAME|COMMAND|INSTALL_DIR`, or `NAME|skipped: WHY`).
    pub others: Vec<String>,
}

/// Runs the benchmark.
///
/// # Errors
/// A server, the simulator or a file fails, or a figure is over the
/// baseline's bound.
pub fn run(opts: Options) -> Result<()> {
    let Options {
        bin,
        quick,
        scale_only,
        write,
        baseline,
        save,
        peer,
        others,
    } = opts;
    let mut peer_measured = false;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    if scale_only {
        let rows = scale(&bin, &rt, quick)?;
        #[allow(clippy::print_stdout, reason = "the table is this program's output")]
        {
            println!("{}\n\n{rows}", machine());
        }
        return Ok(());
    }
    let sim_dir = tempdir::Dir::new()?;
    let sim = rt.block_on(
        comfy_sim::Sim::builder()
            .steps_per_second(50.0)
            .data_dir(sim_dir.path())
            .start(),
    )?;
    let mut b = Bench {
        bin,
        peer: false,
        sim: sim.url(),
        sim_dir: sim_dir.path().to_owned(),
        quick,
        figures: Vec::new(),
    };
    eprintln!(
        "bench: {} against comfy-sim at {}{}",
        b.bin.display(),
        b.sim,
        if quick { " (quick)" } else { "" }
    );
    run_suite(&mut b)?;
    if let Some(peer_bin) = peer {
        eprintln!("bench: the peer, {}", peer_bin.display());
        let mut p = Bench {
            bin: peer_bin,
            peer: true,
            sim: b.sim.clone(),
            sim_dir: b.sim_dir.clone(),
            quick,
            figures: Vec::new(),
        };
        run_suite(&mut p)?;
        for f in &mut b.figures {
            f.peer = p
                .figures
                .iter()
                .find(|g| g.key == f.key)
                .map(|g| g.value)
                .filter(|v| v.is_finite());
        }
        peer_measured = true;
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let peer_note = if peer_measured {
        "The peer's column was measured in the same run, against the same simulator, with the same driver: `comfyui-mcp-secure` 2.3.0 from PyPI in a virtualenv under CPython ≥ 3.12; where it has no figure the workload does not apply to it or was not run for it."
    } else {
        "The peer's column is its own recorded measurement on this kind of machine (CPython 3.12.1): no Python ≥ 3.12 was found to install it in this run."
    };
    let mut block = format!(
        "Run {date}, commit `{commit}`, on {}; `cargo xtask bench{}`. {peer_note}\n\n{}",
        machine(),
        if quick { " --quick" } else { "" },
        table(&b.figures, quick, peer_measured)
    );
    if !others.is_empty() {
        block.push_str(&other_servers(&others, &b, quick)?);
    }
    #[allow(clippy::print_stdout, reason = "the table is this program's output")]
    {
        println!("{block}");
    }
    if let Some(file) = write {
        replace_block(&file, &block)?;
        eprintln!("bench: wrote {}", file.display());
    }
    if let Some(file) = save {
        let map: BTreeMap<&str, f64> = b.figures.iter().map(|f| (f.key, f.value)).collect();
        std::fs::write(&file, serde_json::to_string_pretty(&map)? + "\n")?;
        eprintln!("bench: saved the baseline to {}", file.display());
    }
    if let Some(file) = baseline {
        check(&b.figures, &file)?;
    }
    drop(sim);
    Ok(())
}
