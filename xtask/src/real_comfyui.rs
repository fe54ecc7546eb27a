//! `cargo xtask real-comfyui --source DIR|ARCHIVE [--keep]`: the end-to-end
//! suite against a real ComfyUI on the CPU.
//!
//! 1. The source: a ComfyUI checkout used where it is, or a `.tar.gz`
//!    archive unpacked under `target/real-comfyui/src/<version>`.
//! 2. Python: one virtualenv with the pinned torch wheels
//!    (`target/real-comfyui/venv`, about 5.5 GB, installed once; a stamp
//!    file says what is in it), and per ComfyUI version a small one on top
//!    of it (`venv-<version>`, reaching torch through a `.pth` file) with
//!    that version's `requirements.txt`, since the two versions pin
//!    different front-end packages. Both are reused while their stamps
//!    match, so a second run installs nothing.
//! 3. A temporary `--base-directory`: placeholder model files (empty, as
//!    the recordings had them), a header-only safetensors file with
//!    metadata and a preview image, and our test-only custom nodes
//!    (`fixtures/custom_nodes/fixture_nodes`) in its `custom_nodes/`.
//! 4. ComfyUI started with `--cpu --listen 127.0.0.1 --port <free>
//!    --disable-auto-launch`, in its own process group under a small shell
//!    supervisor whose standard input is a pipe from us: when we drop the
//!    guard, fail, or die (Ctrl-C included), the pipe closes and the
//!    supervisor stops the whole group. The guard also kills the group
//!    itself if the supervisor does not end in time.
//! 5. `GET /system_stats` polled until it answers (bounded), then the
//!    Python SDK suite run with `COMFY_MCP_TEST_COMFYUI_URL` and
//!    `COMFY_MCP_TEST_COMFYUI_DATA` pointing at it.
//!
//! Every step prints how long it took. `--keep` keeps the base directory
//! (and the server's log in it) after the run and prints where it is.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The torch wheels of `../shared/comfyui-src/README.md`: they satisfy
/// both 0.8.0 and 0.33.0, and the CUDA builds run fine with `--cpu`.
const TORCH: &[&str] = &["torch==2.14.1", "torchvision==0.29.2", "torchaudio==2.11.1"];
/// Packages ComfyUI imports without listing them in its `requirements.txt`
/// (0.8.0 imports `requests`, which 0.33.0 lists).
const EXTRA: &[&str] = &["requests"];
/// How long ComfyUI may take to answer `/system_stats` (it takes 30 to 45
/// seconds on two cores).
const START_TIMEOUT: Duration = Duration::from_mins(4);
/// How long the supervisor may take to stop ComfyUI before the group is
/// killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Parsed command line.
struct Options {
    source: PathBuf,
    keep: bool,
}

fn options(args: &[String]) -> Result<Options> {
    let mut source = None;
    let mut keep = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--source" => source = Some(PathBuf::from(it.next().context("--source needs a path")?)),
            "--keep" => keep = true,
            other => bail!("real-comfyui: unknown argument `{other}` (usage: --source DIR|ARCHIVE [--keep])"),
        }
    }
    Ok(Options {
        source: source.context("usage: cargo xtask real-comfyui --source DIR|ARCHIVE [--keep]")?,
        keep,
    })
}

/// Waits `d` (this command has no async runtime).
#[allow(clippy::disallowed_methods, reason = "xtask is synchronous: no runtime to sleep on")]
fn nap(d: Duration) {
    std::thread::sleep(d);
}

/// Runs `f`, printing how long it took.
fn timed<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("real-comfyui: {what} ...");
    let start = Instant::now();
    let out = f();
    eprintln!(
        "real-comfyui: {what} {} in {:.1}s",
        if out.is_ok() { "done" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    out
}

pub(crate) fn run(cargo: &str, args: &[String]) -> Result<()> {
    let opts = options(args)?;
    let total = Instant::now();
    let meta = crate::deps::metadata()?;
    let root = PathBuf::from(meta["workspace_root"].as_str().context("no workspace_root")?);
    let target = PathBuf::from(meta["target_directory"].as_str().context("no target_directory")?);
    let home = target.join("real-comfyui");
    std::fs::create_dir_all(&home)?;

    let source = timed("source", || source_tree(&opts.source, &home))?;
    let version = comfyui_version(&source)?;
    eprintln!("real-comfyui: ComfyUI {version} at {}", source.display());
    let base = timed("torch venv", || base_venv(&home.join("venv")))?;
    let python = timed(&format!("requirements of {version}"), || {
        version_venv(&home.join(format!("venv-{version}")), &base, &source)
    })?;
    let data = tempdir(&home)?;
    timed("base directory", || base_directory(&data, &root, &python))?;

    let result = (|| {
        let server = timed("start ComfyUI", || Server::start(&python, &source, &data))?;
        timed("wait for /system_stats", || server.wait_ready())?;
        let env = [
            ("COMFY_MCP_TEST_COMFYUI_URL", server.url()),
            ("COMFY_MCP_TEST_COMFYUI_DATA", data.to_string_lossy().into_owned()),
            ("COMFY_MCP_TEST_COMFYUI_VERSION", version.clone()),
        ];
        let suite = timed(&format!("end-to-end suite against ComfyUI {version}"), || {
            crate::pytest::suite(cargo, &env)
        });
        timed("stop ComfyUI", || {
            server.stop();
            Ok(())
        })?;
        suite
    })();
    if result.is_err() {
        print_log_tail(&data.join("comfyui.log"));
    }
    if opts.keep {
        eprintln!("real-comfyui: kept the base directory {}", data.display());
    } else {
        let _ = std::fs::remove_dir_all(&data);
    }
    eprintln!(
        "real-comfyui: ComfyUI {version}: {} in {:.1}s",
        if result.is_ok() { "passed" } else { "FAILED" },
        total.elapsed().as_secs_f64()
    );
    result
}

/// The ComfyUI tree: `source` itself when it is a directory, else the
/// archive unpacked (afresh) under `home/src/<version>`.
fn source_tree(source: &Path, home: &Path) -> Result<PathBuf> {
    if source.is_dir() {
        if !source.join("main.py").is_file() {
            bail!("{} is not a ComfyUI checkout (no main.py)", source.display());
        }
        return Ok(source.to_path_buf());
    }
    if !source.is_file() {
        bail!("{} is neither a directory nor an archive", source.display());
    }
    let src = home.join("src");
    let unpack = src.join(format!(".unpack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&unpack);
    std::fs::create_dir_all(&unpack)?;
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(source)
        .arg("-C")
        .arg(&unpack)
        .status()
        .context("cannot run tar")?;
    if !status.success() {
        bail!("tar could not unpack {}", source.display());
    }
    // One folder inside (ComfyUI-v0.33.0/), or the tree itself.
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&unpack)?.flatten().map(|e| e.path()).collect();
    let tree = match entries.as_mut_slice() {
        [one] if one.join("main.py").is_file() => one.clone(),
        _ if unpack.join("main.py").is_file() => unpack.clone(),
        _ => bail!("{} holds no ComfyUI tree (no main.py)", source.display()),
    };
    let version = comfyui_version(&tree)?;
    let dest = src.join(&version);
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&tree, &dest)?;
    let _ = std::fs::remove_dir_all(&unpack);
    Ok(dest)
}

/// `__version__` from `comfyui_version.py`, checked to be a plain version.
fn comfyui_version(tree: &Path) -> Result<String> {
    let text = std::fs::read_to_string(tree.join("comfyui_version.py"))
        .with_context(|| format!("{} has no comfyui_version.py", tree.display()))?;
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("__version__"))
        .and_then(|rest| rest.split(['"', '\'']).nth(1))
        .context("comfyui_version.py names no __version__")?;
    if version.is_empty()
        || version.len() > 32
        || !version.chars().all(|c| c.is_ascii_alphanumeric() || ".+-".contains(c))
    {
        bail!("unexpected ComfyUI version {version:?}");
    }
    Ok(version.to_owned())
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// The site-packages folder of a virtualenv.
fn site_packages(venv: &Path) -> Result<PathBuf> {
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        .output()
        .context("cannot run the virtualenv's python")?;
    if !out.status.success() {
        bail!("{} has no working python", venv.display());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Makes `venv` hold what `stamp` says, running `install` when it does not.
fn stamped(venv: &Path, stamp: &str, install: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let file = venv.join("installed.txt");
    if std::fs::read_to_string(&file).ok().as_deref() == Some(stamp) && venv.join("bin/python").exists() {
        eprintln!("real-comfyui: reusing {}", venv.display());
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(venv);
    crate::step("venv", &python(), &["-m", "venv", &venv.to_string_lossy()])?;
    install(venv)?;
    std::fs::write(&file, stamp)?;
    Ok(())
}

fn pip(venv: &Path, args: &[&str]) -> Result<()> {
    let mut all = vec!["install", "--quiet", "--disable-pip-version-check"];
    all.extend_from_slice(args);
    crate::step("pip install", &venv.join("bin/pip").to_string_lossy(), &all)
}

/// The torch virtualenv, installed once.
fn base_venv(venv: &Path) -> Result<PathBuf> {
    stamped(venv, &TORCH.join("\n"), |v| pip(v, TORCH))?;
    Ok(venv.to_path_buf())
}

/// The version's own virtualenv on top of the torch one; its python.
fn version_venv(venv: &Path, base: &Path, tree: &Path) -> Result<PathBuf> {
    let requirements = tree.join("requirements.txt");
    let wanted =
        std::fs::read_to_string(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    let base_site = site_packages(base)?;
    let stamp = format!("{}\n{}\n{wanted}", base_site.display(), EXTRA.join(" "));
    stamped(venv, &stamp, |v| {
        // torch and its CUDA packages come from the base virtualenv.
        std::fs::write(
            site_packages(v)?.join("comfy_mcp_torch.pth"),
            format!("{}\n", base_site.display()),
        )?;
        let mut args = vec!["-r", &*requirements.to_string_lossy()]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        args.extend(EXTRA.iter().map(|e| (*e).to_owned()));
        pip(v, &args.iter().map(String::as_str).collect::<Vec<_>>())
    })?;
    Ok(venv.join("bin/python"))
}

/// A fresh temporary directory under `home`.
fn tempdir(home: &Path) -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = home.join(format!("run-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The placeholder model files: the names of the recordings (empty, so
/// loaders fail at run time as they did there).
const PLACEHOLDERS: &[&str] = &[
    "checkpoints/sd_xl_base_1.0.safetensors",
    "checkpoints/v1-5-pruned-emaonly.safetensors",
    "loras/example_lora.safetensors",
    "vae/vae-ft-mse-840000-ema-pruned.safetensors",
    "upscale_models/RealESRGAN_x4plus.pth",
];

/// The name of the header-only safetensors file (with a preview image
/// next to it).
pub(crate) const META_MODEL: &str = "loras/header_only.safetensors";

/// Models, custom nodes, and the folders ComfyUI makes itself.
fn base_directory(data: &Path, root: &Path, python: &Path) -> Result<()> {
    let models = data.join("models");
    for p in PLACEHOLDERS {
        let path = models.join(p);
        std::fs::create_dir_all(path.parent().context("placeholder path")?)?;
        std::fs::write(&path, b"")?;
    }
    // A safetensors file with a header and no tensors: 8 bytes of header
    // length (little-endian), then the JSON header.
    let header = br#"{"__metadata__":{"modelspec.title":"Header only","modelspec.architecture":"stable-diffusion-v1/lora","ss_network_dim":"4"}}"#;
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header);
    std::fs::write(models.join(META_MODEL), file)?;
    // Its preview, a small PNG made by the virtualenv's Pillow.
    let preview = models.join(META_MODEL.replace(".safetensors", ".png"));
    let status = Command::new(python)
        .args([
            "-c",
            "import sys; from PIL import Image; Image.new('RGB', (16, 16), (200, 40, 40)).save(sys.argv[1])",
        ])
        .arg(&preview)
        .status()
        .context("cannot run python for the preview image")?;
    if !status.success() {
        bail!("could not write the preview image");
    }
    let nodes = data.join("custom_nodes/fixture_nodes");
    std::fs::create_dir_all(&nodes)?;
    std::fs::copy(
        root.join("fixtures/custom_nodes/fixture_nodes/__init__.py"),
        nodes.join("__init__.py"),
    )?;
    for d in ["input", "output", "temp", "user"] {
        std::fs::create_dir_all(data.join(d))?;
    }
    Ok(())
}

/// A free port on 127.0.0.1 (there is a short window before ComfyUI binds
/// it; nothing else here races for ports at that moment).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The running server: a supervisor shell (its own process group) and
/// ComfyUI under it. Dropping it stops both.
struct Server {
    supervisor: Option<Child>,
    port: u16,
    /// Where the supervisor writes ComfyUI's process id.
    pid_file: PathBuf,
}

/// The supervisor: starts ComfyUI in the background, waits until its
/// standard input closes (we dropped it, or we died), then stops the group:
/// SIGTERM, a grace period, SIGKILL.
const SUPERVISOR: &str = r#"
"$@" &
comfy=$!
echo "$comfy" > "$COMFY_PID_FILE"
trap '' INT
while read -r _ ; do :; done
kill -TERM "$comfy" 2>/dev/null
i=0
while kill -0 "$comfy" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL 0
"#;

impl Server {
    fn start(python: &Path, tree: &Path, data: &Path) -> Result<Self> {
        let port = free_port()?;
        let log = std::fs::File::create(data.join("comfyui.log"))?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(SUPERVISOR)
            .arg("comfyui-supervisor")
            .arg(python)
            .arg("main.py")
            .args(["--cpu", "--listen", "127.0.0.1", "--port", &port.to_string()])
            .arg("--disable-auto-launch")
            .arg("--base-directory")
            .arg(data)
            .current_dir(tree)
            .env("COMFY_PID_FILE", data.join("comfyui.pid"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd.spawn().context("cannot start the ComfyUI supervisor")?;
        eprintln!(
            "real-comfyui: ComfyUI starting on 127.0.0.1:{port} (log: {})",
            data.join("comfyui.log").display()
        );
        Ok(Self {
            supervisor: Some(child),
            port,
            pid_file: data.join("comfyui.pid"),
        })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Polls `/system_stats` until it answers 200, the server exits, or
    /// the start timeout passes.
    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if get_status(self.port, "/system_stats") == Some(200) {
                return Ok(());
            }
            if self.exited() {
                bail!("ComfyUI exited before it answered /system_stats");
            }
            if Instant::now() > deadline {
                bail!(
                    "ComfyUI did not answer /system_stats within {}s",
                    START_TIMEOUT.as_secs()
                );
            }
            nap(Duration::from_millis(500));
        }
    }

    /// Whether ComfyUI has ended (Linux: its `/proc` entry is gone).
    fn exited(&self) -> bool {
        let Some(pid) = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
        else {
            return false;
        };
        cfg!(target_os = "linux") && !Path::new(&format!("/proc/{pid}")).exists()
    }

    /// Closes the supervisor's input (it stops ComfyUI), waits for it
    /// within a bound, then kills the group in any case.
    fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(mut child) = self.supervisor.take() else {
            return;
        };
        drop(child.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            nap(Duration::from_millis(100));
        }
        // The group is ours (process_group(0) made the supervisor its
        // leader); kill whatever is left of it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The status code of a plain `GET`, or `None` when nothing answers.
fn get_status(port: u16, path: &str) -> Option<u16> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut head = [0u8; 16];
    let n = s.read(&mut head).ok()?;
    let text = std::str::from_utf8(&head[..n]).ok()?;
    text.split(' ').nth(1)?.parse().ok()
}

fn print_log_tail(log: &Path) {
    let Ok(text) = std::fs::read_to_string(log) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    eprintln!("real-comfyui: the last lines of {}:", log.display());
    for l in &lines[lines.len().saturating_sub(40)..] {
        eprintln!("  | {l}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("xtask-version-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("comfyui_version.py"),
            "# generated\n__version__ = \"0.33.0\"\n",
        )
        .unwrap();
        assert_eq!(comfyui_version(&dir).unwrap(), "0.33.0");
        std::fs::write(dir.join("comfyui_version.py"), "__version__ = \"../../x\"\n").unwrap();
        assert!(comfyui_version(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn options_need_a_source() {
        assert!(options(&[]).is_err());
        let o = options(&["--source".into(), "x.tar.gz".into(), "--keep".into()]).unwrap();
        assert!(o.keep && o.source == Path::new("x.tar.gz"));
        assert!(options(&["--bogus".into()]).is_err());
    }
}
