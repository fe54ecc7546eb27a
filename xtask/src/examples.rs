//! `cargo xtask examples`: runs every `comfy-client` example against a
//! freshly started `comfy-sim` binary on a free port, then stops it.
//!
//! Why a separate step: examples are programs a user runs by hand against
//! their ComfyUI; this runs them the same way (their real `main`, real
//! arguments) so they cannot rot.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use comfy_test_support::SimProcess;

pub(crate) fn run(cargo: &str) -> Result<()> {
    crate::step(
        "examples: build",
        cargo,
        &[
            "build",
            "--locked",
            "-p",
            "comfy-sim-bin",
            "-p",
            "comfy-client",
            "--examples",
            "--bins",
        ],
    )?;
    let meta = crate::deps::metadata()?;
    let target = PathBuf::from(
        meta["target_directory"]
            .as_str()
            .context("cargo metadata has no target_directory")?,
    )
    .join("debug");
    let work = std::env::temp_dir().join(format!("comfy-examples-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = run_in(&target, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run_in(target: &Path, work: &Path) -> Result<()> {
    let mut cmd = Command::new(target.join("comfy-sim"));
    cmd.args(["--port", "0", "--steps-per-second", "200", "--previews", "--data-dir"])
        .arg(work.join("sim"));
    let sim = SimProcess::start(&mut cmd).context("comfy-sim did not start")?;
    let url = sim.url.clone();

    let image = work.join("upload me.png");
    std::fs::write(&image, PNG_1X1)?;
    let out = work.join("out");
    let image_arg = image.to_string_lossy().into_owned();
    let out_arg = out.to_string_lossy().into_owned();
    example(target, "generate", &[&url, &out_arg])?;
    let saved = std::fs::read_dir(&out)?.count();
    if saved == 0 {
        bail!("example `generate` saved no image in {}", out.display());
    }
    example(target, "watch", &[&url])?;
    example(target, "upload", &[&url, &image_arg, "examples"])?;
    drop(sim);
    Ok(())
}

fn example(target: &Path, name: &str, args: &[&str]) -> Result<()> {
    let program = target.join("examples").join(name);
    eprintln!("==> example {name} {}", args.join(" "));
    let start = Instant::now();
    let mut child = Command::new(&program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", program.display()))?;
    // Bounded: an example that hangs fails the step instead of CI.
    let limit = Duration::from_mins(2);
    loop {
        if let Some(status) = child.try_wait()? {
            eprintln!(
                "<== example {name}: {} in {:.1}s",
                if status.success() { "ok" } else { "FAILED" },
                start.elapsed().as_secs_f64()
            );
            if !status.success() {
                bail!("example `{name}` failed");
            }
            return Ok(());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("example `{name}` did not finish in {limit:?}");
        }
        #[allow(clippy::disallowed_methods, reason = "a blocking supervisor polling a child process")]
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A 1x1 PNG (a valid image for ComfyUI's upload route).
const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d,
    0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];
