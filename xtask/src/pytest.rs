//! `cargo xtask pytest`: the end-to-end suite that drives the real
//! `comfy-mcp` binary with the official MCP Python SDK
//! (`bins/comfy-mcp/tests/python`). Creates a virtualenv under the target
//! directory with the pinned requirements (re-created when they change),
//! builds the two binaries, and runs pytest with their paths.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// The virtualenv, created or refreshed for `requirements`.
fn venv(target: &Path, requirements: &Path) -> Result<PathBuf> {
    let dir = target.join("pyenv");
    let wanted = std::fs::read_to_string(requirements).context("reading requirements.txt")?;
    let stamp = dir.join("requirements.installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    crate::step("pytest venv", &python(), &["-m", "venv", &dir.to_string_lossy()])?;
    let pip = dir.join("bin/pip");
    crate::step(
        "pytest requirements",
        &pip.to_string_lossy(),
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            &requirements.to_string_lossy(),
        ],
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(dir)
}

pub(crate) fn run(cargo: &str) -> Result<()> {
    let meta = crate::deps::metadata()?;
    let root = PathBuf::from(meta["workspace_root"].as_str().context("no workspace_root")?);
    let target = PathBuf::from(meta["target_directory"].as_str().context("no target_directory")?);
    crate::step(
        "pytest build",
        cargo,
        &["build", "--locked", "-p", "comfy-mcp-bin", "-p", "comfy-sim-bin"],
    )?;
    let suite = root.join("bins/comfy-mcp/tests/python");
    let env = venv(&target, &suite.join("requirements.txt"))?;
    let bin = target.join("debug");
    eprintln!("==> pytest {}", suite.display());
    let status = Command::new(env.join("bin/python"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&suite)
        .env("COMFY_MCP_BIN", bin.join("comfy-mcp"))
        .env("COMFY_SIM_BIN", bin.join("comfy-sim"))
        .status()
        .context("cannot run pytest")?;
    if !status.success() {
        bail!("pytest failed");
    }
    Ok(())
}
