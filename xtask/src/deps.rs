//! The layering check: which crate may depend on which, read from
//! `cargo metadata` (normal dependencies only, transitively); that the
//! default build (what an install builds) enables no test-only feature;
//! and that the server's commands build without the simulator
//! ([`without_sim`]).

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

/// Crates that do network or async I/O.
const IO: &[&str] = &[
    "tokio",
    "hyper",
    "hyper-util",
    "hyper-rustls",
    "fastwebsockets",
    "rustls",
    "tokio-rustls",
    "mio",
    "socket2",
];
/// Crates that belong to the MCP layer. `tower-service` (the one-trait
/// crate hyper-util's client and server are built on) is not among them:
/// it carries no middleware.
const MCP: &[&str] = &["rmcp", "tower", "tower-layer", "tower-governor", "governor"];

/// What each workspace crate must never have in its dependency tree.
fn forbidden(krate: &str) -> Vec<&'static str> {
    let mut f: Vec<&'static str> = Vec::new();
    match krate {
        // The address rules: a leaf both the fetcher and the inspector use.
        "comfy-addr" => {
            f.extend(IO);
            f.extend(MCP);
            f.extend([
                "comfy-workflow",
                "comfy-client",
                "comfy-guard",
                "comfy-audit",
                "comfy-mcp",
                "comfy-sim",
            ]);
        }
        "comfy-workflow" => {
            f.extend(IO);
            f.extend(MCP);
            f.extend([
                "comfy-addr",
                "comfy-client",
                "comfy-guard",
                "comfy-audit",
                "comfy-mcp",
                "comfy-sim",
            ]);
        }
        // The linter works offline, on files: no network, no server.
        "comfy-guard" | "comfy-lint" => {
            f.extend(IO);
            f.extend(MCP);
            f.extend(["comfy-client", "comfy-audit", "comfy-mcp", "comfy-sim"]);
        }
        "comfy-audit" => {
            f.extend(MCP);
            f.extend([
                "hyper",
                "fastwebsockets",
                "comfy-client",
                "comfy-guard",
                "comfy-mcp",
                "comfy-sim",
            ]);
        }
        "comfy-client" => {
            f.extend(MCP);
            f.extend(["comfy-guard", "comfy-audit", "comfy-mcp", "comfy-sim"]);
        }
        "comfy-sim" => {
            f.extend(MCP);
            f.extend([
                "comfy-client",
                "comfy-guard",
                "comfy-audit",
                "comfy-mcp",
                "comfy-workflow",
            ]);
        }
        // The library never depends on the simulator; only the binary
        // may wire it in, behind its `sim` feature.
        "comfy-mcp" => f.push("comfy-sim"),
        _ => {}
    }
    // The test fixtures are a dev-dependency only: apart from the tools
    // that start the same processes (the bench, xtask), nothing has them
    // as a normal dependency.
    if !matches!(krate, "comfy-test-support" | "comfy-bench" | "xtask") {
        f.push("comfy-test-support");
    }
    f
}

/// Features that exist for tests only (the conformance suite's fixture
/// tools): the default build must leave them off.
const TEST_ONLY_FEATURES: &[&str] = &["conformance-fixtures"];

/// `cargo check` of the `comfy-mcp` commands without default features, so
/// without the `sim` feature (the simulator behind `--sim`): the build a
/// package may ship must keep compiling. The layering above already keeps
/// the library (`comfy-mcp`) off the simulator in every build.
pub(crate) fn without_sim(cargo: &str) -> Result<()> {
    crate::step(
        "deps: comfy-mcp without the simulator",
        cargo,
        &[
            "check",
            "--locked",
            "--quiet",
            "-p",
            "comfy-mcp-bin",
            "--no-default-features",
            "--bins",
        ],
    )
}

/// `cargo metadata` for the workspace.
pub(crate) fn metadata() -> Result<Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .context("cannot run `cargo metadata`")?;
    anyhow::ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).context("cargo metadata printed invalid JSON")
}

/// Every forbidden edge, as `crate -> dependency (via path)` lines.
pub(crate) fn check(meta: &Value) -> Result<Vec<String>> {
    let packages = meta["packages"].as_array().context("no packages")?;
    let name_of: HashMap<&str, &str> = packages
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let nodes = meta["resolve"]["nodes"].as_array().context("no resolve graph")?;
    let mut normal: HashMap<&str, Vec<&str>> = HashMap::new();
    for n in nodes {
        let id = n["id"].as_str().unwrap_or_default();
        let deps = n["deps"].as_array().map(Vec::as_slice).unwrap_or_default();
        let kids = deps
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .is_some_and(|ks| ks.iter().any(|k| k["kind"].is_null()))
            })
            .filter_map(|d| d["pkg"].as_str())
            .collect();
        normal.insert(id, kids);
    }
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .context("no members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut violations = Vec::new();
    for n in nodes {
        let id = n["id"].as_str().unwrap_or_default();
        let on = n["features"].as_array().map(Vec::as_slice).unwrap_or_default();
        for f in TEST_ONLY_FEATURES {
            if on.iter().any(|x| x.as_str() == Some(f)) {
                let name = name_of.get(id).copied().unwrap_or_default();
                violations.push(format!(
                    "`{name}` has the test-only feature `{f}` on in the default build"
                ));
            }
        }
    }
    for m in members {
        let krate = name_of.get(m).copied().unwrap_or_default();
        let banned = forbidden(krate);
        if banned.is_empty() {
            continue;
        }
        // Breadth-first walk, remembering one path to each crate.
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut queue = vec![(m, vec![krate])];
        while let Some((id, path)) = queue.pop() {
            for &d in normal.get(id).map(Vec::as_slice).unwrap_or_default() {
                if !seen.insert(d) {
                    continue;
                }
                let dn = name_of.get(d).copied().unwrap_or_default();
                let mut p = path.clone();
                p.push(dn);
                if banned.contains(&dn) {
                    violations.push(format!("`{krate}` must not depend on `{dn}` (via {})", p.join(" -> ")));
                }
                queue.push((d, p));
            }
        }
    }
    violations.sort();
    Ok(violations)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{check, metadata};

    #[test]
    fn workspace_keeps_its_layers() {
        let v = check(&metadata().unwrap()).unwrap();
        assert!(v.is_empty(), "{v:#?}");
    }

    #[test]
    fn a_forbidden_transitive_edge_is_reported() {
        let meta = json!({
            "packages": [
                {"id": "w", "name": "comfy-workflow"},
                {"id": "s", "name": "serde"},
                {"id": "t", "name": "tokio"}
            ],
            "workspace_members": ["w"],
            "resolve": {"nodes": [
                {"id": "w", "deps": [{"pkg": "s", "dep_kinds": [{"kind": null}]}]},
                {"id": "s", "deps": [{"pkg": "t", "dep_kinds": [{"kind": null}]}]},
                {"id": "t", "deps": []}
            ]}
        });
        assert_eq!(
            check(&meta).unwrap(),
            vec!["`comfy-workflow` must not depend on `tokio` (via comfy-workflow -> serde -> tokio)".to_owned()]
        );
    }

    #[test]
    fn a_test_only_feature_in_the_default_build_is_reported() {
        let meta = json!({
            "packages": [{"id": "m", "name": "comfy-mcp"}],
            "workspace_members": ["m"],
            "resolve": {"nodes": [
                {"id": "m", "deps": [], "features": ["conformance-fixtures"]}
            ]}
        });
        assert_eq!(
            check(&meta).unwrap(),
            vec!["`comfy-mcp` has the test-only feature `conformance-fixtures` on in the default build".to_owned()]
        );
    }

    #[test]
    fn the_test_fixtures_are_a_dev_dependency_only() {
        let meta = json!({
            "packages": [
                {"id": "m", "name": "comfy-mcp-bin"},
                {"id": "b", "name": "comfy-bench"},
                {"id": "t", "name": "comfy-test-support"}
            ],
            "workspace_members": ["m", "b", "t"],
            "resolve": {"nodes": [
                {"id": "m", "deps": [{"pkg": "t", "dep_kinds": [{"kind": null}]}]},
                {"id": "b", "deps": [{"pkg": "t", "dep_kinds": [{"kind": null}]}]},
                {"id": "t", "deps": []}
            ]}
        });
        assert_eq!(
            check(&meta).unwrap(),
            vec![
                "`comfy-mcp-bin` must not depend on `comfy-test-support` (via comfy-mcp-bin -> comfy-test-support)"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn dev_dependencies_do_not_count() {
        let meta = json!({
            "packages": [{"id": "w", "name": "comfy-workflow"}, {"id": "t", "name": "tokio"}],
            "workspace_members": ["w"],
            "resolve": {"nodes": [
                {"id": "w", "deps": [{"pkg": "t", "dep_kinds": [{"kind": "dev"}]}]},
                {"id": "t", "deps": []}
            ]}
        });
        assert!(check(&meta).unwrap().is_empty());
    }
}
