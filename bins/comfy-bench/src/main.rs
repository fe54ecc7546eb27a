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

//!
//! This is argument parsing only; the library (`src/lib.rs`) measures.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use comfy_bench::Options;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = Options::default();
    let mut bin = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--bin" => bin = it.next().map(PathBuf::from),
            "--write" => opts.write = it.next().map(PathBuf::from),
            "--check" => opts.baseline = it.next().map(PathBuf::from),
            "--save-baseline" => opts.save = it.next().map(PathBuf::from),
            "--peer" => opts.peer = it.next().map(PathBuf::from),
            "--scale" => opts.scale_only = true,
            "--other" => opts.others.extend(it.next().cloned()),
            other => bail!(
                "unknown argument {other}; usage: comfy-bench --bin PATH [--quick] [--scale] [--write DOC] [--check BASELINE] [--save-baseline FILE] [--other 'NAME|COMMAND|INSTALL_DIR']..."
            ),
        }
    }
    opts.bin = bin.context("--bin PATH to the comfy-mcp binary is required")?;
    comfy_bench::run(opts)
}
