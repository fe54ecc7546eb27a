//! `cargo xtask pytest`: the end-to-end suite that drives the real
//! `comfy-mcp` binary with the official MCP Python SDK
//! (`bins/comfy-mcp/tests/python`), then the eval harness's own tests
//! (`evals/tests`: every Inspect AI suite run by a scripted perfect
//! assistant, which must pass everything, and a scripted wrong one, which
//! must fail everything). Creates one virtualenv under the target
//! directory with both pinned requirement files (re-created when they
//! change), builds the two binaries, and runs pytest with their paths.
//! The OAuth tests need a real authorization server: npm's
//! `oidc-provider` ([`OIDC_PROVIDER`]) is installed once under the target
//! directory and named to pytest by `COMFY_MCP_OIDC_DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// The virtualenv, created or refreshed for `requirements`.
fn venv(target: &Path, requirements: &[PathBuf]) -> Result<PathBuf> {
    let dir = target.join("pyenv");
    let mut wanted = String::new();
    for r in requirements {
        wanted.push_str(&std::fs::read_to_string(r).with_context(|| format!("reading {}", r.display()))?);
    }
    let stamp = dir.join("requirements.installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    crate::step("pytest venv", &python(), &["-m", "venv", &dir.to_string_lossy()])?;
    let pip = dir.join("bin/pip");
    let mut args = vec![
        "install".to_owned(),
        "--quiet".to_owned(),
        "--disable-pip-version-check".to_owned(),
    ];
    for r in requirements {
        args.push("-r".to_owned());
        args.push(r.to_string_lossy().into_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::step("pytest requirements", &pip.to_string_lossy(), &args)?;
    std::fs::write(&stamp, wanted)?;
    Ok(dir)
}

pub(crate) fn run(cargo: &str) -> Result<()> {
    run_with(cargo, &[], true)
}

/// The SDK suite alone, with `env` added (`real-comfyui` passes the real
/// server there; the suite then runs against it instead of comfy-sim).
pub(crate) fn suite(cargo: &str, env: &[(&str, String)]) -> Result<()> {
    run_with(cargo, env, false)
}

/// The authorization server of the OAuth tests (it runs on Node 20 with a
/// warning that it prefers 22).
const OIDC_PROVIDER: &str = "oidc-provider@9.13.3";

/// Installs [`OIDC_PROVIDER`] under `target/oidc-provider` (once).
fn oidc_provider(target: &Path) -> Result<PathBuf> {
    let dir = target.join("oidc-provider");
    let stamp = dir.join("installed.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(OIDC_PROVIDER) {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let prefix = dir.to_string_lossy();
    crate::step(
        "pytest oidc-provider",
        "npm",
        &[
            "install",
            "--no-audit",
            "--no-fund",
            "--silent",
            "--prefix",
            &prefix,
            OIDC_PROVIDER,
        ],
    )?;
    std::fs::write(&stamp, OIDC_PROVIDER)?;
    Ok(dir)
}

fn run_with(cargo: &str, extra: &[(&str, String)], with_evals: bool) -> Result<()> {
    let meta = crate::deps::metadata()?;
    let root = PathBuf::from(meta["workspace_root"].as_str().context("no workspace_root")?);
    let target = PathBuf::from(meta["target_directory"].as_str().context("no target_directory")?);
    crate::step(
        "pytest build",
        cargo,
        &["build", "--locked", "-p", "comfy-mcp-bin", "-p", "comfy-sim-bin"],
    )?;
    let suite = root.join("bins/comfy-mcp/tests/python");
    let evals = root.join("evals");
    let env = venv(
        &target,
        &[suite.join("requirements.txt"), evals.join("requirements.txt")],
    )?;
    let oidc = oidc_provider(&target)?;
    let bin = target.join("debug");
    let mut runs = vec![suite];
    if with_evals {
        runs.push(evals.join("tests"));
    }
    for tests in runs {
        eprintln!("==> pytest {}", tests.display());
        let mut cmd = Command::new(env.join("bin/python"));
        // -rs: every skipped test is listed with its reason.
        cmd.args(["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"])
            .arg(&tests)
            .current_dir(&root)
            .env("COMFY_MCP_BIN", bin.join("comfy-mcp"))
            .env("COMFY_SIM_BIN", bin.join("comfy-sim"))
            .env("COMFY_MCP_OIDC_DIR", &oidc)
            .env("PYTHONDONTWRITEBYTECODE", "1");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let status = cmd.status().context("cannot run pytest")?;
        if !status.success() {
            bail!("pytest failed: {}", tests.display());
        }
    }
    Ok(())
}
