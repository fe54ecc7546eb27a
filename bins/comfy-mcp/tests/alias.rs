//! `comfyui-mcp-secure` is a small program that starts the `comfy-mcp`
//! beside it with the same arguments, environment and standard streams,
//! and passes its exit status on (so `cargo install` builds the server
//! once, not twice).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

const ALIAS: &str = env!("CARGO_BIN_EXE_comfyui-mcp-secure");
const SERVER: &str = env!("CARGO_BIN_EXE_comfy-mcp");

fn size(path: &str) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn the_alias_is_not_a_second_copy_of_the_server() {
    // The server is tens of megabytes in any profile; a program that only
    // starts another is a fraction of that.
    assert!(
        size(ALIAS) * 5 < size(SERVER),
        "alias {} bytes, server {} bytes",
        size(ALIAS),
        size(SERVER)
    );
}

#[test]
fn arguments_environment_output_and_exit_status_pass_through() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(ALIAS)
        .arg("check")
        .env("HOME", home.path())
        .env_remove("COMFYUI_MCP_CONFIG")
        .env("COMFYUI_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("comfyui: FAILED (http://127.0.0.1:9)"),
        "{out:?}"
    );
    // The packages' name is the same program.
    let out = Command::new(env!("CARGO_BIN_EXE_comfy-mcp-rs"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")),
        "{out:?}"
    );
    // A usage error keeps clap's code.
    let out = Command::new(ALIAS).arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"),
        "{out:?}"
    );
}

#[test]
fn the_mcp_handshake_runs_over_the_alias_standard_streams() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(ALIAS)
        .env("HOME", home.path())
        .env_remove("COMFYUI_MCP_CONFIG")
        .env("COMFYUI_URL", "http://127.0.0.1:9")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            concat!(
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
                "\n",
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                "\n",
                r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
                "\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Read until the tools/list answer, then end the input: the server
    // stops at the end of its input.
    let mut text = String::new();
    let mut buf = vec![0u8; 65536];
    while !text.lines().any(|l| l.contains(r#""id":2"#)) {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed its output early: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(text.contains(r#""serverInfo""#), "{text}");
    assert!(text.contains("comfyui_generate_image"), "{text}");
}

#[test]
fn without_the_server_beside_it_the_alias_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join(Path::new(ALIAS).file_name().unwrap());
    std::fs::copy(ALIAS, &alone).unwrap();
    let out = Command::new(&alone).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot start"), "{err}");
    assert!(
        err.contains(&dir.path().join("comfy-mcp").display().to_string()),
        "{err}"
    );
}

/// On Linux the alias replaces itself with the server: the child's
/// process id runs `comfy-mcp`, so signals reach the server directly.
#[cfg(target_os = "linux")]
#[test]
fn on_linux_the_alias_becomes_the_server() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(ALIAS)
        .env("HOME", home.path())
        .env_remove("COMFYUI_MCP_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let exe = format!("/proc/{}/exe", child.id());
    let server = std::fs::canonicalize(SERVER).unwrap();
    // The server's answer to `initialize` means the exec is done.
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}"#
    )
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let mut answer = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut answer);
        let _ = tx.send(answer);
    });
    let answer = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("an answer to initialize within 20 s");
    assert!(answer.contains("\"serverInfo\""), "{answer}");
    let seen = std::fs::read_link(&exe).ok();
    drop(stdin);
    let _ = child.wait();
    assert_eq!(seen.as_deref(), Some(server.as_path()));
}
