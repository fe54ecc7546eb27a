//! Project automation, run as `cargo xtask <command>`.
//!
//! - `ci`: exactly what CI runs: format check, clippy with warnings denied,
//!   the dependency-layering check, every test, `cargo install` of the
//!   three commands, the examples, the Python SDK suite, the conformance
//!   suite and the quick benchmark.
//! - `deps`: fails when a crate depends on one the layering forbids
//!   (`docs/architecture.md` explains the layers).
//! - `examples`: runs the `comfy-client` examples against `comfy-sim`
//!   (part of `ci`).
//! - `pytest`: the end-to-end suite through the official MCP Python SDK
//!   (a virtualenv under `target/pyenv`; part of `ci`).
//! - `bench`: the benchmarks, in release mode (figures go in
//!   `docs/performance.md`; `--scale`: replicas sharing Redis, for
//!   `docs/scaling.md`).

mod conformance;
mod deps;
mod examples;
mod fuzz;
mod pytest;

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("deps") => {
            let violations = deps::check(&deps::metadata()?)?;
            if violations.is_empty() {
                eprintln!("deps: every crate keeps to its layer");
                Ok(())
            } else {
                for v in &violations {
                    eprintln!("deps: {v}");
                }
                bail!("{} forbidden dependency edge(s)", violations.len())
            }
        }
        Some("examples") => examples::run(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())),
        Some("conformance") => conformance::run(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())),
        Some("fuzz") => {
            let rest: Vec<String> = std::env::args().skip(2).collect();
            fuzz::run(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()), &rest)
        }
        Some("soak") => step(
            "soak",
            &std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()),
            &[
                "test",
                "--release",
                "--locked",
                "-p",
                "comfy-mcp-bin",
                "--test",
                "soak",
                "--",
                "--ignored",
                "--nocapture",
            ],
        ),
        Some("pytest") => pytest::run(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())),
        Some("bench") => bench(args.get(1).map(String::as_str)),
        _ => bail!("usage: cargo xtask <ci|deps|examples|pytest|conformance|fuzz|bench|soak>"),
    }
}

pub(crate) fn step(name: &str, program: &str, args: &[&str]) -> Result<()> {
    eprintln!("==> {name}: {program} {}", args.join(" "));
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("cannot run `{program}`"))?;
    eprintln!(
        "<== {name}: {} in {:.1}s",
        if status.success() { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    if !status.success() {
        bail!("step `{name}` failed");
    }
    Ok(())
}

/// `cargo install --locked` from the repository path gives the three
/// commands the README promises (`comfy-mcp`, `comfyui-mcp-secure`,
/// `comfy-lint`). Checked with the dev profile into `target/install-check`,
/// reusing the test build, so it costs seconds; the release profile is
/// built by the benchmark step.
fn install_check(cargo: &str) -> Result<()> {
    let root = std::path::Path::new("target/install-check");
    let _ = std::fs::remove_dir_all(root);
    for package in ["bins/comfy-mcp", "bins/comfy-lint"] {
        step(
            "install",
            cargo,
            &[
                "install",
                "--locked",
                "--debug",
                "--quiet",
                "--path",
                package,
                "--root",
                "target/install-check",
                "--target-dir",
                "target",
            ],
        )?;
    }
    for bin in ["comfy-mcp", "comfyui-mcp-secure", "comfy-lint"] {
        let path = root.join("bin").join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
        let out = Command::new(&path)
            .arg("--version")
            .output()
            .with_context(|| format!("cargo install did not give {}", path.display()))?;
        if !out.status.success() {
            bail!("{} --version failed", path.display());
        }
    }
    eprintln!("<== install: comfy-mcp, comfyui-mcp-secure and comfy-lint installed and run");
    Ok(())
}

/// `cargo xtask bench [--quick]`: the end-to-end benchmark of the release
/// binary (`bins/comfy-bench`); the full run also runs the library
/// benchmarks and writes its table into `docs/performance.md`. `--quick`
/// runs fewer iterations and fails only on a gross regression against
/// `fixtures/bench/baseline.json` (a ratio, never an absolute time).
/// `--scale` measures calls per second through 1, 2 and 4 replicas
/// sharing a `redis-server` (the table for `docs/scaling.md`).
fn bench(mode: Option<&str>) -> Result<()> {
    let quick = mode == Some("--quick");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let meta = deps::metadata()?;
    let root = std::path::PathBuf::from(meta["workspace_root"].as_str().context("no workspace_root")?);
    let target = std::path::PathBuf::from(meta["target_directory"].as_str().context("no target_directory")?);
    step(
        "bench build",
        &cargo,
        &[
            "build",
            "--release",
            "--locked",
            "-p",
            "comfy-mcp-bin",
            "-p",
            "comfy-bench",
        ],
    )?;
    let bench = target.join("release/comfy-bench").to_string_lossy().into_owned();
    let bin = target.join("release/comfy-mcp").to_string_lossy().into_owned();
    if mode == Some("--scale") {
        return step("bench --scale", &bench, &["--bin", &bin, "--scale"]);
    }
    if quick {
        let baseline = root.join("fixtures/bench/baseline.json").to_string_lossy().into_owned();
        return step(
            "bench --quick",
            &bench,
            &["--bin", &bin, "--quick", "--check", &baseline],
        );
    }
    for (package, target) in [
        ("comfy-workflow", "workflow"),
        ("comfy-guard", "inspect"),
        ("comfy-audit", "audit"),
    ] {
        step(
            &format!("bench {package}"),
            &cargo,
            &["bench", "--locked", "-p", package, "--bench", target],
        )?;
    }
    let doc = root.join("docs/performance.md").to_string_lossy().into_owned();
    let mut args = vec!["--bin".to_owned(), bin, "--write".to_owned(), doc];
    match peer_venv(&target) {
        Ok(peer) => args.extend(["--peer".to_owned(), peer.to_string_lossy().into_owned()]),
        Err(e) => eprintln!("bench: the peer is not measured in this run: {e:#}"),
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    step("bench comfy-mcp", &bench, &args)
}

/// The peer, `comfyui-mcp-secure` 2.3.0 from PyPI, in a virtualenv under
/// `target/peer` made with the first Python ≥ 3.12 found (`PEER_PYTHON`,
/// `python3.13`, `python3.12`, or a pyenv version); its command.
fn peer_venv(target: &std::path::Path) -> Result<std::path::PathBuf> {
    const PEER: &str = "comfyui-mcp-secure==2.3.0";
    let venv = target.join("peer");
    let command = venv.join("bin/comfyui-mcp-secure");
    let stamp = venv.join("installed.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(PEER) && command.exists() {
        return Ok(command);
    }
    let mut candidates: Vec<String> = std::env::var("PEER_PYTHON").into_iter().collect();
    candidates.extend(["python3.13".to_owned(), "python3.12".to_owned()]);
    let pyenv = std::env::var("PYENV_ROOT")
        .map(std::path::PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| std::path::Path::new(&h).join(".pyenv")));
    if let Ok(root) = pyenv {
        let mut versions: Vec<String> = std::fs::read_dir(root.join("versions"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin/python3").to_string_lossy().into_owned())
            .collect();
        versions.sort();
        versions.reverse();
        candidates.extend(versions);
    }
    let python = candidates
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .context("no Python >= 3.12 (set PEER_PYTHON)")?;
    let _ = std::fs::remove_dir_all(&venv);
    step("peer venv", &python, &["-m", "venv", &venv.to_string_lossy()])?;
    step(
        "peer install",
        &venv.join("bin/pip").to_string_lossy(),
        &["install", "--quiet", "--disable-pip-version-check", PEER],
    )?;
    std::fs::write(&stamp, PEER)?;
    Ok(command)
}

fn ci() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let start = Instant::now();
    step("fmt", &cargo, &["fmt", "--all", "--check"])?;
    step(
        "clippy",
        &cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    step("deps", &cargo, &["xtask", "deps"])?;
    step("test", &cargo, &["test", "--workspace", "--locked"])?;
    install_check(&cargo)?;
    examples::run(&cargo)?;
    pytest::run(&cargo)?;
    conformance::run(&cargo)?;
    bench(Some("--quick"))?;
    eprintln!("ci: all steps passed in {:.1}s", start.elapsed().as_secs_f64());
    Ok(())
}
