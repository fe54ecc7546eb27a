//! Packaging: the Claude Code plugin (manifests, skills, hook), the
//! generated completions and man page, and the Docker files, checked
//! against the binary they wrap.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn json_file(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"));
    c.env_remove("COMFYUI_MCP_CONFIG").env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("COMFYUI_") {
            c.env_remove(k);
        }
    }
    c
}

fn with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // A writer thread: the hook may stop reading early.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Every tool `comfy-mcp tools` lists (what `tools/list` returns), with its
/// input schema.
fn tools() -> BTreeMap<String, Value> {
    let out = bin().arg("tools").output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t["inputSchema"].clone()))
        .collect()
}

const SKILLS: [&str; 8] = [
    "gen",
    "workflow",
    "workflows",
    "status",
    "progress",
    "history",
    "models",
    "troubleshooting",
];

#[test]
fn plugin_manifests_parse_and_point_at_what_exists() {
    let plugin = json_file(".claude-plugin/plugin.json");
    assert_eq!(plugin["name"], "comfy");
    assert_eq!(plugin["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(plugin["license"], env!("CARGO_PKG_LICENSE"));
    assert_eq!(plugin["homepage"], env!("CARGO_PKG_REPOSITORY"));
    assert!(plugin["description"].as_str().unwrap().len() > 20);

    // The marketplace lets `/plugin marketplace add <clone>` find it.
    let market = json_file(".claude-plugin/marketplace.json");
    let entry = &market["plugins"][0];
    assert_eq!(entry["name"], plugin["name"]);
    assert!(
        root()
            .join(entry["source"].as_str().unwrap())
            .join(".claude-plugin/plugin.json")
            .is_file()
    );

    // .mcp.json starts a command this package installs, with the two URLs.
    let mcp = json_file(".mcp.json");
    let server = &mcp["mcpServers"]["comfyui"];
    assert_eq!(server["command"], "comfy-mcp");
    let manifest = read("bins/comfy-mcp/Cargo.toml");
    assert!(manifest.contains("name = \"comfy-mcp\""));
    let env: Vec<&str> = server["env"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(env, ["COMFYUI_URL", "COMFYUI_EXTERNAL_URL"]);
    // Their default expansions are values the server accepts.
    let home = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["config", "show"])
        .env("HOME", home.path())
        .env("COMFYUI_URL", "http://127.0.0.1:8188")
        .env("COMFYUI_EXTERNAL_URL", "")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        shown.contains("comfyui.url: \"http://127.0.0.1:8188\"  # env COMFYUI_URL"),
        "{shown}"
    );
    assert!(
        shown.contains("comfyui.external_url: null  # env COMFYUI_EXTERNAL_URL"),
        "{shown}"
    );

    // Every skill directory has its SKILL.md; nothing else is there.
    let mut dirs: Vec<String> = std::fs::read_dir(root().join("skills"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut want = SKILLS.map(str::to_owned).to_vec();
    want.sort();
    assert_eq!(dirs, want);
}

#[test]
fn the_hook_config_runs_our_subcommand_after_the_five_tools() {
    let hooks = json_file("hooks/hooks.json");
    let post = hooks["hooks"]["PostToolUse"].as_array().unwrap();
    assert_eq!(post.len(), 1);
    let matcher = regex::Regex::new(&format!("^(?:{})$", post[0]["matcher"].as_str().unwrap())).unwrap();
    let watched = [
        "audit_dangerous_nodes",
        "install_custom_node",
        "update_custom_node",
        "run_workflow",
        "generate_image",
    ];
    let tools = tools();
    for tool in tools.keys() {
        let short = tool.strip_prefix("comfyui_").unwrap();
        // As a user-configured server and as the plugin's own server.
        for name in [
            format!("mcp__comfyui__{tool}"),
            format!("mcp__plugin_comfy_comfyui__{tool}"),
        ] {
            assert_eq!(matcher.is_match(&name), watched.contains(&short), "{name}");
        }
    }
    let hook = &post[0]["hooks"][0];
    assert_eq!(hook["type"], "command");
    let command = hook["command"].as_str().unwrap();
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some("comfy-mcp"));
    let args: Vec<&str> = words.collect();
    // The command line parses, and answers a clean result with nothing.
    let clean = json!({"tool_name": "mcp__comfyui__comfyui_run_workflow", "tool_response": {"status": "completed"}});
    let mut cmd = bin();
    cmd.args(&args);
    let out = with_stdin(cmd, clean.to_string().as_bytes());
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

/// Calls `comfyui_x(a=..., b=...)` in a skill: the tool and each argument
/// name. A mention without parentheses has no argument list.
fn tool_mentions(text: &str) -> Vec<(String, Option<Vec<String>>)> {
    let re = regex::Regex::new(r"\bcomfyui_[a-z_]+").unwrap();
    let mut out = Vec::new();
    for m in re.find_iter(text) {
        let after = &text[m.end()..];
        let args = after.strip_prefix('(').map(|rest| {
            let inner = &rest[..rest.find(')').expect("unclosed call")];
            // Split at the commas outside brackets and quotes.
            let (mut parts, mut depth, mut quoted, mut start) = (Vec::new(), 0i32, false, 0);
            for (i, c) in inner.char_indices() {
                match c {
                    '"' => quoted = !quoted,
                    '[' | '{' | '<' if !quoted => depth += 1,
                    ']' | '}' | '>' if !quoted => depth -= 1,
                    ',' if !quoted && depth == 0 => {
                        parts.push(&inner[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            parts.push(&inner[start..]);
            parts
                .into_iter()
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| a.split('=').next().unwrap().trim().to_owned())
                .collect()
        });
        out.push((m.as_str().to_owned(), args));
    }
    out
}

#[test]
fn skills_name_only_tools_and_parameters_that_exist() {
    let tools = tools();
    let mut calls = 0;
    for skill in SKILLS {
        let path = format!("skills/{skill}/SKILL.md");
        let md = read(&path);
        // Front matter as Claude Code reads it: YAML between --- lines.
        let rest = md
            .strip_prefix("---\n")
            .unwrap_or_else(|| panic!("{path}: no front matter"));
        let (front, body) = rest.split_once("\n---\n").unwrap();
        let meta: BTreeMap<String, String> = serde_norway::from_str(front).unwrap();
        assert_eq!(meta["name"], skill, "{path}");
        assert!(meta["description"].len() > 40, "{path}: description too short");
        for key in meta.keys() {
            assert!(
                ["name", "description", "argument-hint"].contains(&key.as_str()),
                "{path}: {key}"
            );
        }
        assert!(body.trim_start().starts_with("# "), "{path}: no title");
        // Arguments reach the skill only where it says $ARGUMENTS, and the
        // MCP prompt of the same name takes arguments exactly then.
        let spec = comfy_mcp::tools::prompts::SKILLS
            .iter()
            .find(|(n, _, _)| *n == skill)
            .unwrap();
        assert_eq!(body.contains("$ARGUMENTS"), !spec.2.is_empty(), "{path}");
        assert_eq!(meta.contains_key("argument-hint"), !spec.2.is_empty(), "{path}");
        assert_eq!(spec.1, md, "{path}: the prompt is compiled from another text");

        for (tool, args) in tool_mentions(body) {
            let schema = tools
                .get(&tool)
                .unwrap_or_else(|| panic!("{path} names {tool}, which tools/list does not have"));
            let Some(args) = args else { continue };
            calls += 1;
            let props = schema["properties"].as_object().unwrap();
            for a in &args {
                assert!(props.contains_key(a), "{path}: {tool} has no parameter `{a}`");
            }
            for req in schema["required"].as_array().into_iter().flatten() {
                let req = req.as_str().unwrap();
                assert!(
                    args.iter().any(|a| a == req),
                    "{path}: {tool}(...) leaves out required `{req}`"
                );
            }
        }
    }
    assert!(calls > 40, "only {calls} tool calls checked");
    // The checker itself finds a wrong tool and a wrong parameter.
    let bad = tool_mentions("`comfyui_generate_image(prompt=x, sharpness=2)` then comfyui_make_coffee");
    assert_eq!(
        bad[0].1.as_deref(),
        Some(&["prompt".to_owned(), "sharpness".to_owned()][..])
    );
    let nested = tool_mentions(r#"comfyui_list_jobs(status=["a", "b"], limit=<n, m>, sort_by="x,y")"#);
    assert_eq!(
        nested[0].1.as_deref(),
        Some(&["status".to_owned(), "limit".to_owned(), "sort_by".to_owned()][..])
    );
    assert!(
        !tools["comfyui_generate_image"]["properties"]
            .as_object()
            .unwrap()
            .contains_key("sharpness")
    );
    assert!(!tools.contains_key(&bad[1].0));
}

#[test]
fn the_hook_subcommand_warns_on_findings_and_always_exits_zero() {
    let hook = |format: &str, input: &[u8]| {
        let mut cmd = bin();
        cmd.args(["hook", "post-tool-use", "--format", format]);
        let out = with_stdin(cmd, input);
        assert!(out.status.success(), "exit {:?}", out.status);
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    // Clean: nothing at all.
    let clean = json!({"tool_name": "mcp__comfyui__comfyui_generate_image",
        "tool_response": [{"type": "text", "text": "{\"status\":\"completed\",\"outputs\":[]}"}]});
    assert_eq!(
        hook("json", clean.to_string().as_bytes()),
        (String::new(), String::new())
    );

    // Warnings from the inspector, as MCP text content.
    let result = json!({"status": "completed", "warnings": ["Dangerous node type: Terminal"]});
    let warn = json!({"tool_name": "mcp__comfyui__comfyui_run_workflow",
        "tool_input": {"workflow": "{}"}, "tool_response": [{"type": "text", "text": result.to_string()}]});
    let (out, err) = hook("json", warn.to_string().as_bytes());
    assert_eq!(err, "");
    assert_eq!(out.lines().count(), 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    let expected = "SECURITY: comfyui_run_workflow: 1 finding(s): Dangerous node type: Terminal. Review the results \
                    above before proceeding.";
    assert_eq!(v["systemMessage"], expected);
    assert_eq!(v["hookSpecificOutput"]["additionalContext"], expected);
    let (out, _) = hook("text", warn.to_string().as_bytes());
    assert_eq!(out, format!("{expected}\n"));

    // The dangerous-node audit with a non-zero count.
    let audit = json!({"tool_name": "mcp__plugin_comfy_comfyui__comfyui_audit_dangerous_nodes",
        "tool_response": {"structuredContent": {"total_nodes": 9, "dangerous": {"count": 1, "nodes": [{"class": "Terminal", "reason": "r"}]}}}});
    let (out, _) = hook("text", audit.to_string().as_bytes());
    assert!(
        out.starts_with("SECURITY: comfyui_audit_dangerous_nodes: 1 dangerous node type(s) on the server (Terminal)."),
        "{out}"
    );

    // Malformed input: searched as text, noted on stderr, still exit 0.
    let (out, err) = hook(
        "json",
        b"{\"tool_response\": \"Suspicious input in node 4 (X), field 'code'",
    );
    assert!(out.contains("Suspicious input in node 4"), "{out}");
    assert!(err.contains("not JSON"), "{err}");
    let (out, err) = hook("json", &[0xff, 0x00, 0x13, b'\n']);
    assert_eq!(out, "");
    assert!(err.contains("not JSON"));
    let (out, err) = hook("json", b"");
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    // Oversized: the first 16 MiB are searched, the rest ignored.
    let mut big = b"Dangerous node type: Terminal\n".to_vec();
    big.resize(17 << 20, b' ');
    let (out, err) = hook("text", &big);
    assert!(out.contains("Dangerous node type: Terminal"), "{out}");
    assert!(err.contains("over 16 MiB"), "{err}");
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        for sub in ["serve", "tools", "audit", "hook", "completions"] {
            assert!(text.contains(sub), "{shell} completions lack {sub}");
        }
    }
    let out = bin().args(["completions", "tcsh"]).output().unwrap();
    assert!(!out.status.success());
    let out = bin().arg("man").output().unwrap();
    assert!(out.status.success());
    let man = String::from_utf8(out.stdout).unwrap();
    assert!(man.contains(".TH comfy-mcp 1"), "{man}");
    assert!(man.contains("completions") && man.contains("\\-\\-config"));
}

/// The instructions of a Dockerfile stage by stage, continuation lines
/// joined.
fn dockerfile_stages(text: &str) -> Vec<Vec<(String, String)>> {
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    let mut line = String::new();
    for raw in text.lines() {
        let t = raw.trim();
        if line.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(part) = t.strip_suffix('\\') {
            line.push_str(part);
            line.push(' ');
            continue;
        }
        line.push_str(t);
        let (op, arg) = line.split_once(' ').unwrap_or((&line, ""));
        let (op, arg) = (op.to_uppercase(), arg.trim().to_owned());
        if op == "FROM" {
            stages.push(Vec::new());
        }
        stages.last_mut().expect("FROM first").push((op, arg));
        line.clear();
    }
    stages
}

#[test]
fn docker_image_and_compose_file_match_what_the_binary_reads() {
    let stages = dockerfile_stages(&read("deploy/docker/Dockerfile"));
    assert_eq!(stages.len(), 2, "multi-stage: build, then runtime");
    let build = &stages[0];
    assert!(build[0].1.ends_with(" AS build"));
    let run_line = build
        .iter()
        .find(|(op, a)| op == "RUN" && a.contains("cargo build"))
        .unwrap();
    assert!(run_line.1.contains("--locked --release -p comfy-mcp-bin -p comfy-lint"));
    let runtime = &stages[1];
    let get = |op: &str| -> Vec<&str> {
        runtime
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, a)| a.as_str())
            .collect()
    };
    assert_eq!(get("USER"), ["app"], "runs as the unprivileged user");
    assert_eq!(
        get("ENV"),
        ["HOME=/home/app"],
        "no variable that would override a mounted config"
    );
    assert_eq!(get("ENTRYPOINT"), ["[\"comfy-mcp\"]"]);
    assert_eq!(get("CMD"), ["[\"serve\"]"], "stdio by default");
    assert_eq!(get("VOLUME"), ["[\"/home/app/.comfyui-mcp/logs\"]"]);
    let setup = get("RUN").join(" ");
    assert!(setup.contains("adduser -D -h /home/app") && setup.contains("chmod 700 /home/app/.comfyui-mcp"));
    // The three binaries the build stage copies are the ones Cargo builds.
    for b in ["comfy-mcp", "comfy-lint", "comfyui-mcp-secure"] {
        assert!(run_line.1.contains(&format!("target/release/{b}")), "{b}");
    }
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l == "target"));

    let compose: Value = serde_norway::from_str(&read("deploy/docker/docker-compose.yml")).unwrap();
    let svc = &compose["services"]["comfy-mcp"];
    assert_eq!(svc["build"]["dockerfile"], "deploy/docker/Dockerfile");
    assert_eq!(svc["stdin_open"], true);
    let volumes: Vec<&str> = svc["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        volumes,
        [
            "./config.yaml:/home/app/.comfyui-mcp/config.yaml:ro",
            "audit-logs:/home/app/.comfyui-mcp/logs"
        ]
    );
    assert!(compose["volumes"].get("audit-logs").is_some());
    let env = svc["environment"].as_object().unwrap();
    let keys: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(keys, ["COMFYUI_URL", "COMFYUI_SECURITY_MODE", "COMFYUI_AUDIT_FILE"]);

    // The binary, run as the image runs it (HOME=/home/app, the compose
    // file's variables with their defaults, the config mounted where the
    // compose file mounts it), reads what the files say.
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".comfyui-mcp");
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::copy(root().join("deploy/docker/config.yaml"), dir.join("config.yaml")).unwrap();
    let default_of = |v: &Value| -> String {
        let s = v.as_str().unwrap();
        // ${NAME:-default} → default
        s.split_once(":-")
            .map_or(s, |(_, d)| d.trim_end_matches('}'))
            .replace("/home/app", &home.path().to_string_lossy())
    };
    let mut cmd = bin();
    cmd.args(["config", "show"]).env("HOME", home.path());
    for (k, v) in env {
        cmd.env(k, default_of(v));
    }
    let out = cmd.output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        shown.starts_with(&format!("# config file: {}", dir.join("config.yaml").display())),
        "{shown}"
    );
    assert!(shown.contains("comfyui.url: \"http://comfyui:8188\"  # env COMFYUI_URL"));
    assert!(shown.contains("security.mode: \"audit\"  # env COMFYUI_SECURITY_MODE"));
    assert!(shown.contains(&format!(
        "logging.audit_file: \"{}\"  # env COMFYUI_AUDIT_FILE",
        dir.join("logs/audit.log").display()
    )));
    // And writes its audit log into the volume.
    let out = {
        let mut cmd = bin();
        cmd.args(["call", "comfyui_get_prompting_guide", "{\"model_family\": \"sdxl\"}"])
            .env("HOME", home.path())
            .env("COMFYUI_AUDIT_FILE", dir.join("logs/audit.log"));
        cmd.output().unwrap()
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = std::fs::read_to_string(dir.join("logs/audit.log")).unwrap();
    for action in ["\"action\":\"called\"", "\"action\":\"completed\""] {
        assert!(
            log.lines()
                .any(|l| l.contains("comfyui_get_prompting_guide") && l.contains(action)),
            "{log}"
        );
    }
}
