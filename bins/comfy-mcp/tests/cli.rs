//! The binary's own commands: audit verify and tail, config show, tools.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::process::{Command, Output};

use comfy_audit::{AuditConfig, AuditLog, Record};

fn run(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_comfy-mcp"))
        .args(args)
        .env("HOME", home)
        .env_remove("COMFYUI_MCP_CONFIG")
        .env_remove("COMFYUI_URL")
        .output()
        .unwrap()
}

#[tokio::test]
async fn audit_verify_reports_intact_and_tampered_logs() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(".comfyui-mcp/audit.log");
    let log = AuditLog::open(AuditConfig::new(&path)).unwrap();
    for i in 0..5 {
        log.write(Record::new("comfyui_get_queue", "called").extra(serde_json::json!({"i": i})))
            .await
            .unwrap();
    }
    log.close();
    // The configured log, found without naming it.
    let out = run(home.path(), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "audit verify: intact: 6 records in 1 file\n"
    );

    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"i\":2", "\"i\":7")).unwrap();
    let out = run(home.path(), &["audit", "verify", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("TAMPERED") && said.contains(":4: the record does not match its hash (modified)"),
        "{said}"
    );

    let out = run(home.path(), &["audit", "verify", "/no/such/log"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A log under `home` rotated into `audit.log` and `audit.log.1` to `.N`.
async fn rotated_log(home: &std::path::Path) {
    let path = home.join(".comfyui-mcp/audit.log");
    let mut cfg = AuditConfig::new(&path);
    cfg.rotate_bytes = Some(2 << 10);
    cfg.keep = 10;
    let log = AuditLog::open(cfg).unwrap();
    for i in 0..30 {
        log.write(Record::new("t", "called").extra(serde_json::json!({"i": i, "pad": "p".repeat(100)})))
            .await
            .unwrap();
    }
    log.close();
}

#[tokio::test]
async fn audit_verify_names_a_deleted_rotated_file_and_a_cut_beginning() {
    let home = tempfile::tempdir().unwrap();
    rotated_log(home.path()).await;
    let out = run(home.path(), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));

    // `audit.log.1` deleted: `.2` and the rest are still found and read.
    let one = home.path().join(".comfyui-mcp/audit.log.1");
    std::fs::remove_file(&one).unwrap();
    let out = run(home.path(), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with(&format!("audit verify: TAMPERED: {}: missing", one.display())),
        "{said}"
    );

    // The first lines of a log without rotated files cut.
    let home = tempfile::tempdir().unwrap();
    let path2 = home.path().join(".comfyui-mcp/audit.log");
    let log = AuditLog::open(AuditConfig::new(&path2)).unwrap();
    for i in 0..5 {
        log.write(Record::new("comfyui_get_queue", "called").extra(serde_json::json!({"i": i})))
            .await
            .unwrap();
    }
    log.close();
    let text = std::fs::read_to_string(&path2).unwrap();
    let rest: Vec<&str> = text.lines().skip(2).collect();
    std::fs::write(&path2, rest.join("\n") + "\n").unwrap();
    let out = run(home.path(), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(
            "audit.log:1: the file does not begin with a chain start: its first records were removed (removed)"
        ),
        "{said}"
    );
}

#[tokio::test]
async fn audit_verify_reports_an_over_long_line_as_damage() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(".comfyui-mcp/audit.log");
    let log = AuditLog::open(AuditConfig::new(&path)).unwrap();
    log.write(Record::new("comfyui_get_queue", "called")).await.unwrap();
    log.close();
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&"x".repeat(comfy_audit::chain::MAX_LINE * 2));
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    let out = run(home.path(), &["audit", "verify"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "audit.log:3: the line is longer than {} bytes (not read further) (malformed)",
            comfy_audit::chain::MAX_LINE
        )),
        "{said}"
    );
}

#[tokio::test]
async fn audit_verify_with_an_anchor_reports_a_cut_tail() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".comfyui-mcp");
    let (path, anchor) = (dir.join("audit.log"), dir.join("anchor.log"));
    let mut cfg = AuditConfig::new(&path);
    cfg.anchor = Some(comfy_audit::AnchorTarget::File(anchor.clone()));
    let log = AuditLog::open(cfg).unwrap();
    for i in 0..6 {
        log.write(Record::new("comfyui_get_queue", "called").extra(serde_json::json!({"i": i})))
            .await
            .unwrap();
    }
    log.close();
    let anchor_arg = anchor.to_str().unwrap();
    let out = run(home.path(), &["audit", "verify", "--anchor", anchor_arg]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("audit verify: anchored: the last record (6) matches"),
        "{said}"
    );

    // The last two records cut: intact without the anchor, cut with it.
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text.lines().take(5).collect();
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    assert_eq!(run(home.path(), &["audit", "verify"]).status.code(), Some(0));
    let out = run(home.path(), &["audit", "verify", "--anchor", anchor_arg]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("audit.log:5: the log ends at record 4, but the anchor at ")
            && said.contains("says record 6 was written: records were cut from the end (truncated)"),
        "{said}"
    );

    // The configured anchor is used when the configured log is checked.
    std::fs::write(
        dir.join("config.yaml"),
        format!("logging:\n  audit_anchor: {anchor_arg}\n"),
    )
    .unwrap();
    let out = run(home.path(), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(truncated)"));

    // syslog: not readable from here, and said so, with the head to compare.
    let out = run(
        home.path(),
        &["audit", "verify", "--anchor", "syslog", path.to_str().unwrap()],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("the anchors are in syslog, which this command cannot read: check that the last `audit anchor` message there names record 4 with hash "),
        "{said}"
    );
}

#[test]
fn config_show_and_tools_print_without_a_server() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["config", "show"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("# config file: none (defaults)\n"), "{text}");
    assert!(text.contains("rate_limits.generation: 10  # default"));

    let out = run(home.path(), &["tools"]);
    assert_eq!(out.status.code(), Some(0));
    let tools: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "comfyui_get_queue")
    );

    std::fs::create_dir_all(home.path().join(".comfyui-mcp")).unwrap();
    std::fs::write(
        home.path().join(".comfyui-mcp/config.yaml"),
        "security:\n  mode: Enforce\n",
    )
    .unwrap();
    let out = run(home.path(), &["config", "show"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`security.mode`"));
}

#[test]
fn tools_of_one_category_are_listed_by_name() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["tools", "--category", "generation"]);
    assert_eq!(out.status.code(), Some(0));
    let tools: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "comfyui_generate_image",
            "comfyui_transform_image",
            "comfyui_inpaint_image",
            "comfyui_upscale_image",
            "comfyui_run_workflow",
            "comfyui_run_workflow_stream",
        ]
    );
    let out = run(home.path(), &["tools", "--category", "gpu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("file_ops"));
}

#[test]
fn call_runs_one_tool_through_the_stack() {
    let home = tempfile::tempdir().unwrap();
    // Nothing listens on port 9: the call fails with a clear error, and is audited.
    let out = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"))
        .args(["call", "comfyui_get_queue", "{}"])
        .env("HOME", home.path())
        .env("COMFYUI_URL", "http://127.0.0.1:9")
        .env("COMFYUI_TIMEOUT_CONNECT", "2")
        .env_remove("COMFYUI_MCP_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["isError"], true);
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("cannot reach ComfyUI"),
        "{result}"
    );
    let log = std::fs::read_to_string(home.path().join(".comfyui-mcp/audit.log")).unwrap();
    assert!(
        log.contains("\"transport\":\"cli\"") && log.contains("\"outcome\":\"error\""),
        "{log}"
    );
}

#[test]
fn sim_runs_every_tool_without_a_comfyui() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"))
        .args([
            "--sim",
            "call",
            "comfyui_generate_image",
            r#"{"prompt": "a fox", "steps": 2, "wait": true}"#,
        ])
        .env("HOME", home.path())
        // Ignored with --sim: the simulator takes comfyui.url's place.
        .env("COMFYUI_URL", "http://127.0.0.1:9")
        .env_remove("COMFYUI_MCP_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["structuredContent"]["status"], "completed", "{result}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--sim: using the ComfyUI simulator at http://127.0.0.1:"));
    assert!(
        !stderr.contains('\u{1b}'),
        "no progress bar when stderr is not a terminal"
    );
}

#[test]
fn validation_without_a_server_checks_structure_only() {
    let home = tempfile::tempdir().unwrap();
    let wf = r#"{"1": {"class_type": "A", "inputs": {"x": ["9", 0]}}}"#;
    let args = serde_json::json!({"workflow": wf}).to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"))
        .args(["call", "comfyui_validate_workflow", &args])
        .env("HOME", home.path())
        .env("COMFYUI_URL", "http://127.0.0.1:9")
        .env("COMFYUI_TIMEOUT_CONNECT", "2")
        .env_remove("COMFYUI_MCP_CONFIG")
        .output()
        .unwrap();
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &result["structuredContent"];
    assert_eq!(v["valid"], false, "{result}");
    assert_eq!(v["errors"][0], "Node '1' input 'x': references non-existent node '9'");
    assert_eq!(
        v["warnings"][0],
        "ComfyUI server unreachable — server validation skipped"
    );
}

#[test]
fn check_reports_comfyui_plugins_and_the_audit_log() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["--sim", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("comfyui: ok (http://127.0.0.1:"), "{text}");
    assert!(text.contains("version 0.8.0"), "{text}");
    assert!(text.contains("plugin ComfyUI-Manager: installed"), "{text}");
    assert!(text.contains("plugin ComfyUI-Model-Manager: installed"), "{text}");
    assert!(text.contains("audit log: ok"), "{text}");

    let out = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"))
        .arg("check")
        .env("HOME", home.path())
        .env("COMFYUI_URL", "http://127.0.0.1:9")
        .env("COMFYUI_TIMEOUT_CONNECT", "2")
        .env_remove("COMFYUI_MCP_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("comfyui: FAILED (http://127.0.0.1:9)"));
}

/// The version the workspace manifest sets (`[workspace.package] version`),
/// read from the file, so a crate that kept its own version would differ.
fn manifest_version() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let section = text.split("[workspace.package]").nth(1).unwrap();
    let line = section.lines().find(|l| l.trim_start().starts_with("version")).unwrap();
    line.split('"').nth(1).unwrap().to_owned()
}

#[test]
fn version_comes_from_the_workspace_manifest_and_is_released() {
    let version = manifest_version();
    assert_ne!(version, "0.0.0", "the workspace has no real version");
    assert_eq!(env!("CARGO_PKG_VERSION"), version);
    let home = tempfile::tempdir().unwrap();
    for bin in [
        env!("CARGO_BIN_EXE_comfy-mcp"),
        env!("CARGO_BIN_EXE_comfyui-mcp-secure"),
    ] {
        let out = Command::new(bin)
            .arg("--version")
            .env("HOME", home.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.trim().rsplit(' ').next(), Some(version.as_str()), "{text}");
    }
    // Every release has its changelog entry.
    let changelog =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../CHANGELOG.md")).unwrap();
    assert!(
        changelog.contains(&format!("## [{version}]")),
        "CHANGELOG.md has no entry for {version}"
    );
}
