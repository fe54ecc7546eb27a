//! `cargo xtask dist [--target TRIPLE] [--keep]`: the packages that carry the
//! `comfy-mcp` binary, built into `target/dist/`, then each installed into a
//! clean place and started as an MCP client would start it.
//!
//! - The Python wheel (`comfy_mcp_rs-VERSION-py3-none-PLATFORM.whl`): maturin
//!   with `bindings = "bin"` (`bins/comfy-mcp/pyproject.toml`), so
//!   `uvx comfy-mcp-rs` / `pipx install comfy-mcp-rs` install the commands
//!   `comfy-mcp`, `comfyui-mcp-secure` and `comfy-mcp-rs`. maturin runs the release build
//!   itself; without `--target` it is the same build as the benchmark's
//!   (same package, profile and features), so in CI it finds everything
//!   fresh and nothing is compiled twice. On Linux, `auditwheel show` must
//!   find the wheel manylinux-compliant with the tag it carries.
//! - The npm packages, esbuild-style: `comfy-mcp-rs` (a small launcher,
//!   `packaging/npm/launcher.js`, with one optional dependency per platform)
//!   and `comfy-mcp-rs-OS-CPU` for this platform (the binary; npm installs
//!   only the one whose `os`/`cpu` match), so `npx comfy-mcp-rs` starts the
//!   server.
//! - The archive a release attaches (`comfy-mcp-VERSION-TARGET.tar.gz`, a
//!   `.zip` on Windows): the three commands and the README.
//!
//! Then the wheel goes into a fresh virtualenv (pip, no index), the npm
//! packages into a fresh prefix (the two tarballs), the archive into a fresh
//! directory; every installed command completes an MCP handshake and a
//! `tools/list` over stdio whose tools must be the catalog's
//! (`comfy-mcp tools` of the built binary), and all of it is removed.
//!
//! `--target TRIPLE` is the release workflow's mode: one of
//! `packaging/platforms.json`'s targets, built for that triple, and the
//! wheel must carry exactly the platform tag listed there (Linux wheels are
//! linked with maturin's zig, from the `ziglang` package, for the
//! `manylinux_2_17` floor). `--check` only validates the packaging files
//! ([`check`]). Nothing is published.
//!
//! The packages carry the default features, the simulator behind `--sim`
//! (`sim`) included: the same release build as the benchmark's, linked
//! once (the trade-off is in `docs/architecture.md`, Distribution).
//!
//! maturin, auditwheel and ziglang come from pip into `target/dist-tools`,
//! once per pinned set ([`TOOLS`]).

pub(crate) mod check;
mod handshake;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;

use check::Packaging;

/// The pinned build tools, from pip.
const TOOLS: [&str; 2] = ["maturin==1.16.0", "auditwheel==6.8.2"];
/// Zig for manylinux_2_17 Linux wheels in release builds.
const ZIG: &str = "ziglang==0.17.0";

struct Options {
    check: bool,
    target: Option<String>,
    keep: bool,
}

fn options(args: &[String]) -> Result<Options> {
    let mut options = Options {
        check: false,
        target: None,
        keep: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => options.check = true,
            "--keep" => options.keep = true,
            "--target" => options.target = Some(args.next().context("--target needs a target triple")?.clone()),
            other => {
                bail!("dist: unknown argument {other:?} (usage: cargo xtask dist [--check] [--target TRIPLE] [--keep])")
            }
        }
    }
    Ok(options)
}

/// `python3`, or `PYTHON`.
fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| if cfg!(windows) { "python" } else { "python3" }.to_owned())
}

/// A command installed in a virtualenv.
fn venv_bin(venv: &Path, name: &str) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join(format!("{name}.exe"))
    } else {
        venv.join("bin").join(name)
    }
}

/// `program args` with its output captured; fails with its stderr.
fn output(program: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed ({}): {}",
            program.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The host's target triple, from `rustc -vV`.
fn host() -> Result<String> {
    let text = output(Path::new("rustc"), &["-vV"])?;
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
}

/// The virtualenv with the build tools, made once per pinned set.
fn tools(target_dir: &Path, zig: bool) -> Result<PathBuf> {
    let dir = target_dir.join("dist-tools");
    let mut wanted: Vec<&str> = TOOLS.to_vec();
    if zig {
        wanted.push(ZIG);
    }
    let wanted = wanted.join("\n");
    let stamp = dir.join("installed.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    crate::step("dist tools venv", &python(), &["-m", "venv", &dir.to_string_lossy()])?;
    let pip = venv_bin(&dir, "pip");
    let mut args = vec!["install", "--quiet", "--disable-pip-version-check"];
    args.extend(wanted.lines());
    crate::step("dist tools install", &pip.to_string_lossy(), &args)?;
    std::fs::write(&stamp, wanted)?;
    Ok(dir)
}

/// The one file in `dir` whose name starts with `prefix` and ends with `suffix`.
fn the_file(dir: &Path, prefix: &str, suffix: &str) -> Result<PathBuf> {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(suffix))
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!("expected one {prefix}*{suffix} in {}, found {found:?}", dir.display()),
    }
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = options(args)?;
    let meta = crate::deps::metadata()?;
    let root = PathBuf::from(meta["workspace_root"].as_str().context("no workspace_root")?);
    let target_dir = PathBuf::from(meta["target_directory"].as_str().context("no target_directory")?);
    let packaging = check::run(&root)?;
    if options.check {
        return Ok(());
    }
    let start = Instant::now();
    let version = check::workspace_version(&root)?;
    let triple = match &options.target {
        Some(t) => t.clone(),
        None => host()?,
    };
    let platform = packaging
        .platforms
        .iter()
        .find(|p| p.target == triple)
        .with_context(|| format!("no packaging entry for {triple} in packaging/platforms.json"))?;
    let linux = triple.contains("-linux-");
    let zig = options.target.is_some() && linux;
    let dist = target_dir.join("dist");
    let _ = std::fs::remove_dir_all(&dist);
    std::fs::create_dir_all(&dist)?;
    let tools = tools(&target_dir, zig)?;

    // The wheel; maturin runs the release build.
    let mut maturin = vec![
        "build".to_owned(),
        "--release".to_owned(),
        "--manifest-path".to_owned(),
        root.join("bins/comfy-mcp/Cargo.toml").to_string_lossy().into_owned(),
        "--out".to_owned(),
        dist.to_string_lossy().into_owned(),
    ];
    if let Some(t) = &options.target {
        maturin.extend(["--target".to_owned(), t.clone()]);
        if zig {
            let floor = check::manylinux_floor(&platform.wheel)
                .with_context(|| format!("{}: {} is not a manylinux tag", platform.target, platform.wheel))?;
            maturin.extend(["--zig".to_owned(), "--compatibility".to_owned(), floor]);
        }
    }
    let maturin: Vec<&str> = maturin.iter().map(String::as_str).collect();
    crate::step(
        "dist wheel (maturin)",
        &venv_bin(&tools, "maturin").to_string_lossy(),
        &maturin,
    )?;
    let wheel = the_file(
        &dist,
        &format!("{}-{version}-py3-none-", packaging.pypi.replace('-', "_")),
        ".whl",
    )?;
    let wheel_name = wheel
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    if options.target.is_some() && wheel_name != check::wheel_name(&packaging, &version, platform) {
        bail!(
            "maturin made {wheel_name}, the release expects {}",
            check::wheel_name(&packaging, &version, platform)
        );
    }
    if linux {
        auditwheel(&tools, &wheel, &wheel_name)?;
    }

    let bin_dir = match &options.target {
        Some(t) => target_dir.join(t).join("release"),
        None => target_dir.join("release"),
    };
    let exe = std::env::consts::EXE_SUFFIX;
    let server = bin_dir.join(format!("comfy-mcp{exe}"));
    let aliases = [
        bin_dir.join(format!("comfyui-mcp-secure{exe}")),
        bin_dir.join(format!("{}{exe}", packaging.pypi)),
    ];
    let catalog = catalog(&server)?;

    let (main_tgz, platform_tgz) = npm_packages(&root, &dist, &packaging, platform, &version, &server)?;
    let archive = archive(&root, &dist, platform, &version, &[&server, &aliases[0], &aliases[1]])?;

    // Each package installed into a clean place and started.
    let scratch = target_dir.join("dist-test");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let home = scratch.join("home");
    let result = (|| -> Result<()> {
        let venv = scratch.join("venv");
        crate::step("dist: fresh venv", &python(), &["-m", "venv", &venv.to_string_lossy()])?;
        crate::step(
            "dist: pip install the wheel",
            &venv_bin(&venv, "pip").to_string_lossy(),
            &[
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-index",
                "--no-deps",
                &wheel.to_string_lossy(),
            ],
        )?;
        for command in ["comfy-mcp", "comfyui-mcp-secure", packaging.pypi.as_str()] {
            let program = venv_bin(&venv, command);
            version_line(&program, &version)?;
            handshake::check(&format!("wheel {command}"), &program, &home, &catalog, &version)?;
        }

        let prefix = scratch.join("npm");
        std::fs::create_dir_all(&prefix)?;
        crate::step(
            "dist: npm install the packages",
            "npm",
            &[
                "install",
                "--prefix",
                &prefix.to_string_lossy(),
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                &main_tgz.to_string_lossy(),
                &platform_tgz.to_string_lossy(),
            ],
        )?;
        for command in [packaging.npm.as_str(), "comfy-mcp", "comfyui-mcp-secure"] {
            let shim = if cfg!(windows) {
                format!("{command}.cmd")
            } else {
                command.to_owned()
            };
            let program = prefix.join("node_modules/.bin").join(shim);
            handshake::check(&format!("npm {command}"), &program, &home, &catalog, &version)?;
        }

        let unpacked = scratch.join("archive");
        std::fs::create_dir_all(&unpacked)?;
        crate::step(
            "dist: unpack the archive",
            "tar",
            &["-xf", &archive.to_string_lossy(), "-C", &unpacked.to_string_lossy()],
        )?;
        let top = unpacked.join(archive_dir(&version, &platform.target));
        for command in ["comfy-mcp", "comfyui-mcp-secure", packaging.pypi.as_str()] {
            let program = top.join(format!("{command}{exe}"));
            handshake::check(&format!("archive {command}"), &program, &home, &catalog, &version)?;
        }
        Ok(())
    })();
    if !options.keep {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    result?;
    eprintln!(
        "dist: {} built, installed, started and removed in {:.1}s: {}",
        platform.target,
        start.elapsed().as_secs_f64(),
        [&wheel, &main_tgz, &platform_tgz, &archive]
            .iter()
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// `auditwheel show`: the wheel is manylinux-compliant and its tag is one
/// auditwheel finds it consistent with.
fn auditwheel(tools: &Path, wheel: &Path, name: &str) -> Result<()> {
    let report = output(&venv_bin(tools, "auditwheel"), &["show", &wheel.to_string_lossy()])?;
    let report = report.split_whitespace().collect::<Vec<_>>().join(" ");
    let tag = name
        .trim_end_matches(".whl")
        .rsplit('-')
        .next()
        .and_then(|t| t.split('.').next())
        .unwrap_or_default();
    if !tag.starts_with("manylinux_") {
        bail!("{name} is not tagged manylinux");
    }
    if !report.contains(&format!("consistent with the following platform tag: \"{tag}\"")) {
        bail!("auditwheel does not find {name} consistent with {tag}: {report}");
    }
    eprintln!("<== dist: auditwheel: {name} is consistent with {tag}");
    Ok(())
}

/// The tool names of the catalog, from the built server.
fn catalog(server: &Path) -> Result<Vec<String>> {
    let text = output(server, &["tools"])?;
    let value: serde_json::Value = serde_json::from_str(&text).context("comfy-mcp tools printed no JSON")?;
    let names: Vec<String> = value["tools"]
        .as_array()
        .context("comfy-mcp tools printed no tools")?
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    if names.is_empty() {
        bail!("comfy-mcp tools listed no tools");
    }
    Ok(names)
}

/// `program --version` names `version`.
fn version_line(program: &Path, version: &str) -> Result<()> {
    let text = output(program, &["--version"])?;
    if !text.split_whitespace().any(|w| w == version) {
        bail!("{} --version printed {text:?}, not {version}", program.display());
    }
    Ok(())
}

/// The main npm package and this platform's, packed into `dist`; their
/// tarballs.
fn npm_packages(
    root: &Path,
    dist: &Path,
    packaging: &Packaging,
    platform: &check::Platform,
    version: &str,
    server: &Path,
) -> Result<(PathBuf, PathBuf)> {
    let work = dist.join("npm");
    let main = work.join("main");
    let plat = work.join("platform");
    std::fs::create_dir_all(main.join("bin"))?;
    std::fs::create_dir_all(plat.join("bin"))?;
    let (os, cpu) = platform.npm.split_once('-').context("npm platform without os-cpu")?;

    std::fs::copy(root.join("packaging/npm/launcher.js"), main.join("bin/comfy-mcp.js"))?;
    let optional: serde_json::Map<String, serde_json::Value> = packaging
        .platforms
        .iter()
        .map(|p| (check::npm_platform_package(packaging, p), json!(version)))
        .collect();
    let main_json = json!({
        "name": packaging.npm,
        "version": version,
        "description": "A secure MCP server for ComfyUI (comfy-mcp, one native binary): npx comfy-mcp-rs",
        "license": "MIT OR Apache-2.0",
        "keywords": ["mcp", "comfyui", "model-context-protocol"],
        "bin": {
            packaging.npm.as_str(): "bin/comfy-mcp.js",
            "comfy-mcp": "bin/comfy-mcp.js",
            "comfyui-mcp-secure": "bin/comfy-mcp.js"
        },
        "files": ["bin/comfy-mcp.js"],
        "engines": {"node": ">=18"},
        "optionalDependencies": optional
    });
    std::fs::write(main.join("package.json"), serde_json::to_string_pretty(&main_json)?)?;
    std::fs::write(main.join("README.md"), readme(packaging, None))?;

    let exe = std::env::consts::EXE_SUFFIX;
    let binary = plat.join("bin").join(format!("comfy-mcp{exe}"));
    std::fs::copy(server, &binary)?;
    let mut plat_json = json!({
        "name": check::npm_platform_package(packaging, platform),
        "version": version,
        "description": format!("The comfy-mcp binary for {} (installed by {})", platform.target, packaging.npm),
        "license": "MIT OR Apache-2.0",
        "os": [os],
        "cpu": [cpu],
        "files": ["bin/"],
        "preferUnplugged": true
    });
    if os == "linux" {
        // The binary links glibc; npm skips it on musl systems.
        plat_json["libc"] = json!(["glibc"]);
    }
    std::fs::write(plat.join("package.json"), serde_json::to_string_pretty(&plat_json)?)?;
    std::fs::write(plat.join("README.md"), readme(packaging, Some(&platform.target)))?;

    for dir in [&main, &plat] {
        crate::step(
            "dist npm pack",
            "npm",
            &[
                "pack",
                "--silent",
                "--pack-destination",
                &dist.to_string_lossy(),
                &dir.to_string_lossy(),
            ],
        )?;
    }
    std::fs::remove_dir_all(&work)?;
    let main_tgz = dist.join(format!("{}-{version}.tgz", packaging.npm));
    let plat_tgz = dist.join(check::npm_tarball(packaging, platform, version));
    for tgz in [&main_tgz, &plat_tgz] {
        if !tgz.is_file() {
            bail!("npm pack did not write {}", tgz.display());
        }
    }
    Ok((main_tgz, plat_tgz))
}

/// The npm packages' README.
fn readme(packaging: &Packaging, target: Option<&str>) -> String {
    let what = target.map_or_else(
        || "The comfy-mcp MCP server for ComfyUI: a small launcher that starts the native binary of this platform's package.".to_owned(),
        |t| format!("The comfy-mcp binary for `{t}`, installed as an optional dependency of `{}`; install that one.", packaging.npm),
    );
    format!(
        "# {}\n\n{what}\n\nStart it as an MCP stdio server with `npx {}` (also installed as `comfy-mcp` and `comfyui-mcp-secure`). \
         Documentation: the project's README.\n",
        target.map_or_else(
            || packaging.npm.clone(),
            |_| format!("{}-{}", packaging.npm, target.unwrap_or_default())
        ),
        packaging.npm
    )
}

/// The top directory inside a release archive.
fn archive_dir(version: &str, target: &str) -> String {
    format!("comfy-mcp-{version}-{target}")
}

/// The release archive: `files` and the README under one directory.
fn archive(root: &Path, dist: &Path, platform: &check::Platform, version: &str, files: &[&Path]) -> Result<PathBuf> {
    let top = archive_dir(version, &platform.target);
    let staging = dist.join(&top);
    std::fs::create_dir_all(&staging)?;
    for file in files {
        let name = file.file_name().context("a file without a name")?;
        std::fs::copy(file, staging.join(name)).with_context(|| format!("copying {}", file.display()))?;
    }
    std::fs::copy(root.join("README.md"), staging.join("README.md"))?;
    let name = check::archive_name(platform, version);
    let flags = if platform.archive == "zip" { "-a -cf" } else { "-czf" };
    let mut args: Vec<&str> = flags.split(' ').collect();
    args.extend([name.as_str(), top.as_str()]);
    let status = Command::new("tar")
        .args(&args)
        .current_dir(dist)
        .status()
        .context("cannot run tar")?;
    if !status.success() {
        bail!("tar {} failed", args.join(" "));
    }
    std::fs::remove_dir_all(&staging)?;
    Ok(dist.join(name))
}
