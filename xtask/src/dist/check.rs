//! `cargo xtask dist --check`: what can be validated here of a release that
//! only runs on GitHub. `packaging/platforms.json` is the one list of
//! platforms; the check fails, naming the difference, when
//!
//! - `.github/workflows/release.yml` does not parse, is not started by a
//!   tag, or its build matrix names a target without a packaging entry, or
//!   misses one that has an entry, or puts it on another runner;
//! - its build job does not run `cargo xtask dist --target` for the
//!   matrix's target or does not upload `target/dist/`;
//! - an artifact a platform produces (wheel, npm package, archive) matches
//!   none of the files the release job attaches;
//! - a platform entry contradicts itself (a wheel tag or npm `os`/`cpu`
//!   for another system or processor, a zip off Windows);
//! - the wheel's name in `bins/comfy-mcp/pyproject.toml` is not the
//!   entry's, or its maturin bindings are not `bin`;
//! - the npm launcher does not pick its package by Node's
//!   `process.platform-process.arch`, the names the entries use.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

/// `packaging/platforms.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Packaging {
    /// The Python package's name.
    pub(crate) pypi: String,
    /// The main npm package's name; platform packages add `-OS-CPU`.
    pub(crate) npm: String,
    pub(crate) platforms: Vec<Platform>,
}

/// One platform a release builds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Platform {
    /// The Rust target triple.
    pub(crate) target: String,
    /// The GitHub runner that builds it natively.
    pub(crate) runner: String,
    /// Node's `process.platform-process.arch` there.
    pub(crate) npm: String,
    /// The wheel's platform tag.
    pub(crate) wheel: String,
    /// `tar.gz` or `zip`.
    pub(crate) archive: String,
}

/// The workspace's version (`[workspace.package] version`).
pub(crate) fn workspace_version(root: &Path) -> Result<String> {
    let text = std::fs::read_to_string(root.join("Cargo.toml"))?;
    toml_value(&text, "workspace.package", "version").context("Cargo.toml has no [workspace.package] version")
}

/// A `key = "value"` line of `[section]` in a TOML file (the simple form
/// these files use; enough without a TOML parser).
fn toml_value(text: &str, section: &str, key: &str) -> Option<String> {
    toml_values(text, section, key).into_iter().next()
}

/// Every such value (`[[section]]` tables included).
fn toml_values(text: &str, section: &str, key: &str) -> Vec<String> {
    let mut current = "";
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim_start_matches('[').trim_end_matches(']').trim();
        } else if current == section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
            && let Some(v) = v.trim().strip_prefix('"').and_then(|v| v.strip_suffix('"'))
        {
            out.push(v.to_owned());
        }
    }
    out
}

/// The wheel's file name for `platform`.
pub(crate) fn wheel_name(packaging: &Packaging, version: &str, platform: &Platform) -> String {
    format!(
        "{}-{version}-py3-none-{}.whl",
        packaging.pypi.replace('-', "_"),
        platform.wheel
    )
}

/// The npm package that carries `platform`'s binary.
pub(crate) fn npm_platform_package(packaging: &Packaging, platform: &Platform) -> String {
    format!("{}-{}", packaging.npm, platform.npm)
}

/// Its tarball, as `npm pack` names it.
pub(crate) fn npm_tarball(packaging: &Packaging, platform: &Platform, version: &str) -> String {
    format!("{}-{version}.tgz", npm_platform_package(packaging, platform))
}

/// The release archive of `platform`.
pub(crate) fn archive_name(platform: &Platform, version: &str) -> String {
    format!("comfy-mcp-{version}-{}.{}", platform.target, platform.archive)
}

/// `manylinux_2_17` of `manylinux_2_17_x86_64`.
pub(crate) fn manylinux_floor(tag: &str) -> Option<String> {
    let parts: Vec<&str> = tag.split('_').collect();
    match parts.as_slice() {
        ["manylinux", major, minor, _, ..] if major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok() => {
            Some(format!("manylinux_{major}_{minor}"))
        }
        _ => None,
    }
}

/// `*`-only glob match of a file name.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
        }
    }
}

/// What a platform entry says of itself agrees.
fn platform_problems(p: &Platform) -> Vec<String> {
    let mut problems = Vec::new();
    let (arch, rest) = p.target.split_once('-').unwrap_or((p.target.as_str(), ""));
    let (os, wheel_arch, node_os) = if rest.contains("-linux-") {
        ("linux", arch.to_owned(), "linux")
    } else if rest.contains("-darwin") {
        (
            "macos",
            if arch == "aarch64" { "arm64" } else { arch }.to_owned(),
            "darwin",
        )
    } else if rest.contains("-windows-") {
        (
            "windows",
            if arch == "x86_64" { "amd64" } else { arch }.to_owned(),
            "win32",
        )
    } else {
        problems.push(format!("{}: not a Linux, macOS or Windows target", p.target));
        return problems;
    };
    let node_cpu = match arch {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    if p.npm != format!("{node_os}-{node_cpu}") {
        problems.push(format!(
            "{}: npm platform {:?}, Node calls it {node_os}-{node_cpu}",
            p.target, p.npm
        ));
    }
    let tag_ok = match os {
        "linux" => manylinux_floor(&p.wheel).is_some() && p.wheel.ends_with(&format!("_{wheel_arch}")),
        "macos" => p.wheel.starts_with("macosx_") && p.wheel.ends_with(&format!("_{wheel_arch}")),
        _ => p.wheel == format!("win_{wheel_arch}"),
    };
    if !tag_ok {
        problems.push(format!(
            "{}: wheel tag {:?} is not a {os} {wheel_arch} tag",
            p.target, p.wheel
        ));
    }
    let archive = if os == "windows" { "zip" } else { "tar.gz" };
    if p.archive != archive {
        problems.push(format!("{}: archive {:?}, expected {archive}", p.target, p.archive));
    }
    problems
}

/// The files of the packaging, read from the repository.
pub(crate) struct Files {
    pub(crate) platforms: String,
    pub(crate) workflow: String,
    pub(crate) pyproject: String,
    pub(crate) launcher: String,
    /// `bins/comfy-mcp/Cargo.toml`.
    pub(crate) cargo: String,
    pub(crate) version: String,
}

impl Files {
    fn read(root: &Path) -> Result<Self> {
        let read = |p: &str| std::fs::read_to_string(root.join(p)).with_context(|| format!("reading {p}"));
        Ok(Self {
            platforms: read("packaging/platforms.json")?,
            workflow: read(".github/workflows/release.yml")?,
            pyproject: read("bins/comfy-mcp/pyproject.toml")?,
            launcher: read("packaging/npm/launcher.js")?,
            cargo: read("bins/comfy-mcp/Cargo.toml")?,
            version: workspace_version(root)?,
        })
    }
}

/// Every disagreement between the files, each naming what is wrong.
pub(crate) fn problems(files: &Files) -> Result<(Packaging, Vec<String>)> {
    let packaging: Packaging =
        serde_json::from_str(&files.platforms).context("packaging/platforms.json is not a valid packaging list")?;
    let workflow: Value =
        serde_norway::from_str(&files.workflow).context(".github/workflows/release.yml is not valid YAML")?;
    let mut problems = Vec::new();
    if packaging.platforms.is_empty() {
        problems.push("packaging/platforms.json lists no platform".to_owned());
    }
    let mut seen = BTreeSet::new();
    for p in &packaging.platforms {
        if !seen.insert(p.target.as_str()) {
            problems.push(format!("packaging/platforms.json lists {} twice", p.target));
        }
        problems.extend(platform_problems(p));
    }

    // The Python package.
    match toml_value(&files.pyproject, "project", "name") {
        Some(name) if name == packaging.pypi => {}
        other => problems.push(format!(
            "bins/comfy-mcp/pyproject.toml names the wheel {other:?}, platforms.json {:?}",
            packaging.pypi
        )),
    }
    if toml_value(&files.pyproject, "tool.maturin", "bindings").as_deref() != Some("bin") {
        problems.push("bins/comfy-mcp/pyproject.toml: [tool.maturin] bindings must be \"bin\"".to_owned());
    }
    // `uvx NAME` runs the command NAME of the package NAME.
    let bins = toml_values(&files.cargo, "bin", "name");
    for command in ["comfy-mcp", "comfyui-mcp-secure", packaging.pypi.as_str()] {
        if !bins.iter().any(|b| b == command) {
            problems.push(format!("bins/comfy-mcp/Cargo.toml has no [[bin]] named {command}"));
        }
    }
    if packaging.npm != packaging.pypi {
        problems.push(format!(
            "the npm package {:?} and the wheel {:?} differ: the commands are named after one",
            packaging.npm, packaging.pypi
        ));
    }
    // The npm launcher finds `NAME-OS-CPU`.
    for needle in ["`${process.platform}-${process.arch}`", "`${pkg.name}-${platform}`"] {
        if !files.launcher.contains(needle) {
            problems.push(format!(
                "packaging/npm/launcher.js does not build its package name with {needle}"
            ));
        }
    }

    // The workflow.
    let tags = &workflow["on"]["push"]["tags"];
    if tags.as_array().is_none_or(Vec::is_empty) {
        problems.push("release.yml: not started by pushing a tag (on.push.tags)".to_owned());
    }
    let jobs = workflow["jobs"].as_object().cloned().unwrap_or_default();
    let build = jobs.iter().find(|(_, j)| j["strategy"]["matrix"]["include"].is_array());
    let Some((build_name, build)) = build else {
        problems.push("release.yml: no job with a build matrix (strategy.matrix.include)".to_owned());
        return Ok((packaging, problems));
    };
    let mut matrix = BTreeSet::new();
    for entry in build["strategy"]["matrix"]["include"].as_array().into_iter().flatten() {
        let (Some(target), Some(runner)) = (entry["target"].as_str(), entry["runner"].as_str()) else {
            problems.push(format!(
                "release.yml: a matrix entry without target and runner: {entry}"
            ));
            continue;
        };
        if !matrix.insert(target.to_owned()) {
            problems.push(format!("release.yml: {target} is in the matrix twice"));
        }
        match packaging.platforms.iter().find(|p| p.target == target) {
            None => problems.push(format!(
                "release.yml builds {target}, which has no entry in packaging/platforms.json"
            )),
            Some(p) if p.runner != runner => problems.push(format!(
                "release.yml builds {target} on {runner}, packaging/platforms.json on {}",
                p.runner
            )),
            Some(_) => {}
        }
    }
    for p in &packaging.platforms {
        if !matrix.contains(&p.target) {
            problems.push(format!(
                "release.yml does not build {}, which packaging/platforms.json lists",
                p.target
            ));
        }
    }
    if build["runs-on"].as_str() != Some("${{ matrix.runner }}") {
        problems.push(format!(
            "release.yml: job {build_name} must run on ${{{{ matrix.runner }}}}"
        ));
    }
    let steps = |job: &Value| -> Vec<Value> { job["steps"].as_array().cloned().unwrap_or_default() };
    let build_steps = steps(build);
    if !build_steps.iter().any(|s| {
        s["run"]
            .as_str()
            .is_some_and(|r| r.contains("cargo xtask dist --target ${{ matrix.target }}"))
    }) {
        problems.push(format!(
            "release.yml: job {build_name} does not run `cargo xtask dist --target ${{{{ matrix.target }}}}`"
        ));
    }
    if !build_steps.iter().any(|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
            && s["with"]["path"]
                .as_str()
                .is_some_and(|p| p.trim_end_matches('/') == "target/dist")
    }) {
        problems.push(format!("release.yml: job {build_name} does not upload target/dist/"));
    }

    // What the release attaches: `dist/...` words of the other jobs' steps.
    let globs: Vec<String> = jobs
        .iter()
        .filter(|(name, _)| name.as_str() != build_name.as_str())
        .flat_map(|(_, job)| steps(job))
        .filter_map(|s| s["run"].as_str().map(str::to_owned))
        .flat_map(|run| {
            run.split_whitespace()
                .filter_map(|w| w.trim_matches('"').strip_prefix("dist/").map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect();
    let version = &files.version;
    let mut artifacts = vec![format!("{}-{version}.tgz", packaging.npm)];
    for p in &packaging.platforms {
        artifacts.extend([
            wheel_name(&packaging, version, p),
            npm_tarball(&packaging, p, version),
            archive_name(p, version),
        ]);
    }
    for artifact in artifacts {
        if !globs.iter().any(|g| glob(g, &artifact)) {
            problems.push(format!(
                "release.yml attaches none of the files named like {artifact} (it attaches dist/{})",
                globs.join(", dist/")
            ));
        }
    }
    Ok((packaging, problems))
}

/// Runs the check on the repository at `root`; the packaging list.
pub(crate) fn run(root: &Path) -> Result<Packaging> {
    let (packaging, problems) = problems(&Files::read(root)?)?;
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("dist --check: {p}");
        }
        bail!("{} problem(s) in the release packaging", problems.len());
    }
    eprintln!(
        "<== dist --check: release.yml and packaging/platforms.json agree on {} platforms ({})",
        packaging.platforms.len(),
        packaging
            .platforms
            .iter()
            .map(|p| p.target.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(packaging)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn repo() -> Files {
        Files::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap()
    }

    fn problems_of(files: &Files) -> Vec<String> {
        problems(files).unwrap().1
    }

    #[test]
    fn the_repository_passes() {
        assert_eq!(problems_of(&repo()), Vec::<String>::new());
    }

    #[test]
    fn a_target_only_the_workflow_builds_is_named() {
        let mut files = repo();
        files.workflow = files.workflow.replace(
            "          - { target: x86_64-pc-windows-msvc, runner: windows-2022 }\n",
            "          - { target: x86_64-pc-windows-msvc, runner: windows-2022 }\n          - { target: riscv64gc-unknown-linux-gnu, runner: ubuntu-24.04 }\n",
        );
        let problems = problems_of(&files);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("builds riscv64gc-unknown-linux-gnu, which has no entry")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_platform_the_workflow_forgets_is_named() {
        let mut files = repo();
        files.workflow = files
            .workflow
            .replace("          - { target: aarch64-apple-darwin, runner: macos-14 }\n", "");
        let problems = problems_of(&files);
        assert_eq!(
            problems,
            vec!["release.yml does not build aarch64-apple-darwin, which packaging/platforms.json lists".to_owned()]
        );
    }

    #[test]
    fn another_runner_is_named() {
        let mut files = repo();
        files.workflow = files.workflow.replace("runner: macos-13", "runner: macos-15");
        let problems = problems_of(&files);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("on macos-15, packaging/platforms.json on macos-13")),
            "{problems:?}"
        );
    }

    #[test]
    fn broken_yaml_is_an_error() {
        let mut files = repo();
        files.workflow.push_str("\n  release: [unclosed\n");
        assert!(problems(&files).is_err());
    }

    #[test]
    fn artifacts_the_release_does_not_attach_are_named() {
        let mut files = repo();
        files.workflow = files.workflow.replace(" dist/*.zip", "");
        let problems = problems_of(&files);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("comfy-mcp-0.") && problems[0].contains("x86_64-pc-windows-msvc.zip"));
    }

    #[test]
    fn the_build_job_must_run_dist_and_upload_it() {
        let mut files = repo();
        files.workflow = files
            .workflow
            .replace("cargo xtask dist --target", "cargo build --release --target")
            .replace("path: target/dist/", "path: target/release/");
        let problems = problems_of(&files);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn a_platform_entry_that_contradicts_itself_is_named() {
        let mut files = repo();
        files.platforms = files
            .platforms
            .replace(
                "\"wheel\": \"manylinux_2_17_aarch64\"",
                "\"wheel\": \"manylinux_2_17_x86_64\"",
            )
            .replace("\"npm\": \"darwin-arm64\"", "\"npm\": \"darwin-aarch64\"");
        let problems = problems_of(&files);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("aarch64-unknown-linux-gnu: wheel tag")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("Node calls it darwin-arm64")),
            "{problems:?}"
        );
    }

    #[test]
    fn the_wheel_and_launcher_names_must_agree() {
        let mut files = repo();
        files.pyproject = files
            .pyproject
            .replace("name = \"comfy-mcp-rs\"", "name = \"comfy-mcp\"");
        files.launcher = files
            .launcher
            .replace("${process.arch}", "${process.arch.toUpperCase()}");
        files.cargo = files
            .cargo
            .replace("name = \"comfy-mcp-rs\"", "name = \"comfy-mcp-py\"");
        let problems = problems_of(&files);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("has no [[bin]] named comfy-mcp-rs")),
            "{problems:?}"
        );
    }

    #[test]
    fn unknown_keys_in_the_platform_list_are_refused() {
        let mut files = repo();
        files.platforms = files.platforms.replacen("\"runner\"", "\"runnr\"", 1);
        assert!(problems(&files).is_err());
    }

    #[test]
    fn glob_and_floor() {
        assert!(glob("*.whl", "a-1-py3-none-win_amd64.whl"));
        assert!(glob("*.tar.gz", "comfy-mcp-0.1.0-x86_64-apple-darwin.tar.gz"));
        assert!(!glob("*.tar.gz", "comfy-mcp-0.1.0.tgz"));
        assert!(glob("a*b*c", "aXbYc") && !glob("a*b*c", "aXbY"));
        assert_eq!(
            manylinux_floor("manylinux_2_17_x86_64").as_deref(),
            Some("manylinux_2_17")
        );
        assert_eq!(
            manylinux_floor("manylinux_2_17_aarch64").as_deref(),
            Some("manylinux_2_17")
        );
        assert_eq!(manylinux_floor("macosx_11_0_arm64"), None);
        assert_eq!(
            toml_value("[a]\nx = \"1\"\n[b]\nx = \"2\"\n", "b", "x").as_deref(),
            Some("2")
        );
    }
}
