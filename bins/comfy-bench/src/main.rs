//! `comfy-bench`: measures the real `comfy-mcp` binary against comfy-sim,
//! the way a user meets it: a process started by an MCP client over stdio
//! (or reached over Streamable HTTP), with the default audit log on.
//!
//! `cargo xtask bench` builds both in release mode and runs this; it prints a
//! table and, with `--write FILE`, replaces the block between
//! `<!-- bench:begin -->` and `<!-- bench:end -->` in `FILE` (the
//! performance doc) with the table, the machine, the date and the commit.
//! With `--peer BIN` the same workloads run against the peer (the Python
//! server, which `cargo xtask bench` installs when a CPython ≥ 3.12 is on
//! the machine) in the same run, for its column; without it the column
//! shows the peer's recorded figures and says so. `--quick` runs fewer
//! iterations; `--check BASELINE` fails
//! when a figure is more than 5 times worse than the baseline's, a ratio, so
//! a noisy machine does not fail a build.
//!
//! The driver is deliberately thin: raw JSON-RPC lines over the child's
//! pipes, so what is measured is the server, not a client library.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::others::other_servers;
use crate::report::{check, machine, replace_block, table};
use crate::scale::scale;
use crate::suite::{Bench, run_suite};

mod http;
mod inputs;
mod others;
mod process;
mod report;
mod scale;
mod suite;
mod tempdir;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut bin = None;
    let (mut quick, mut write, mut baseline, mut save, mut peer) = (false, None, None, None, None);
    let mut peer_measured = false;
    let mut scale_only = false;
    let mut others: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--bin" => bin = it.next().map(PathBuf::from),
            "--write" => write = it.next().map(PathBuf::from),
            "--check" => baseline = it.next().map(PathBuf::from),
            "--save-baseline" => save = it.next().map(PathBuf::from),
            "--peer" => peer = it.next().map(PathBuf::from),
            "--scale" => scale_only = true,
            "--other" => others.extend(it.next().cloned()),
            other => bail!(
                "unknown argument {other}; usage: comfy-bench --bin PATH [--quick] [--scale] [--write DOC] [--check BASELINE] [--save-baseline FILE] [--other 'NAME|COMMAND|INSTALL_DIR']..."
            ),
        }
    }
    let bin = bin.context("--bin PATH to the comfy-mcp binary is required")?;
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
