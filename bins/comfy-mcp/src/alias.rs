//! `comfyui-mcp-secure`: the peer's command name, so MCP client configs
//! written for the Python server work unchanged; also the whole of
//! `comfy-mcp-rs` (`alias_pkg.rs`), the name of the Python and npm
//! packages, which `uvx` and `npx` run.
//!
//! It is not a second copy of the server. It starts the `comfy-mcp` that
//! sits in the same directory (where `cargo install`, pip and the release
//! archives put both) with the same arguments, environment and standard
//! streams, and ends with its exit status. Being a separate small program
//! keeps `cargo install` to one fat-LTO build of the server instead of two.
//!
//! On Unix the alias replaces itself with `comfy-mcp` (`exec`): same
//! process id, so signals, the parent's wait and the standard streams reach
//! the server directly. Windows has no `exec`: the alias starts the server
//! as a child, waits for it and exits with its code (see
//! `docs/architecture.md` on what differs there).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// The server's file name in the alias's directory.
const SERVER: &str = "comfy-mcp";

pub(crate) fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let me = args
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "comfyui-mcp-secure".to_owned());
    let server = match server_path() {
        Ok(path) => path,
        Err(e) => {
            eprintln!("{me}: cannot find the directory this program is in: {e}");
            return ExitCode::from(127);
        }
    };
    let args: Vec<OsString> = args.collect();
    run(&me, &server, &args)
}

/// `comfy-mcp` beside this program (symbolic links resolved, as
/// `current_exe` does on Linux, so a link to the alias still finds it).
fn server_path() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| std::io::Error::other("the program's path has no directory"))?;
    Ok(dir.join(format!("{SERVER}{}", std::env::consts::EXE_SUFFIX)))
}

/// Replaces this process with the server; returns only on failure.
#[cfg(unix)]
fn run(me: &str, server: &std::path::Path, args: &[OsString]) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let e = Command::new(server).args(args).exec();
    eprintln!("{me}: cannot start {}: {e}", server.display());
    // 126/127: the shell's codes for "found but not runnable" and "not found".
    ExitCode::from(if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}

/// Runs the server as a child with the inherited streams and exits with its
/// code (Windows exit codes are 32 bits, so `exit` rather than `ExitCode`).
#[cfg(not(unix))]
fn run(me: &str, server: &std::path::Path, args: &[OsString]) -> ExitCode {
    match Command::new(server).args(args).status() {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(e) => {
            eprintln!("{me}: cannot start {}: {e}", server.display());
            ExitCode::from(if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            })
        }
    }
}
