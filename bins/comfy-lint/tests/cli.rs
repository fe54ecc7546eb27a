//! comfy-lint as a user runs it: the built binary over the fixture corpus,
//! in every output format, with exit codes checked.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Runs comfy-lint from the fixtures folder, so paths in its output are
/// the relative ones given here.
fn lint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_comfy-lint"))
        .args(args)
        .current_dir(fixtures())
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Every `.json` file in a fixtures folder, relative to the fixtures root,
/// sorted.
fn files(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| format!("{dir}/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    names.sort();
    names
}

const CATALOG: &str = "comfyui/http/get_object_info.body.json";

#[test]
fn hostile_workflows_are_reported_in_every_format() {
    let hostile = files("workflows/hostile");
    assert_eq!(hostile.len(), 4);
    let args = |format: &'static str| -> Vec<&str> {
        let mut a = vec!["--format", format];
        a.extend(hostile.iter().map(String::as_str));
        a
    };
    let human = lint(&args("human"));
    assert_eq!(human.status.code(), Some(1));
    let text = stdout(&human);
    assert!(!text.contains('\u{1b}'), "no colour when stdout is not a terminal");
    insta::assert_snapshot!("hostile_human", text);

    let json = lint(&args("json"));
    assert_eq!(json.status.code(), Some(1));
    let parsed: Value = serde_json::from_slice(&json.stdout).unwrap();
    insta::assert_json_snapshot!("hostile_json", parsed);

    let sarif = lint(&args("sarif"));
    assert_eq!(sarif.status.code(), Some(1));
    let parsed: Value = serde_json::from_slice(&sarif.stdout).unwrap();
    assert_eq!(parsed["version"], "2.1.0");
    insta::assert_json_snapshot!("hostile_sarif", parsed, {".runs[0].tool.driver.version" => "[version]"});
}

#[test]
fn the_whole_fixture_corpus_lints_in_every_format() {
    let mut corpus = Vec::new();
    for dir in ["workflows/analyze", "workflows/validate", "workflows/editor"] {
        corpus.extend(files(dir));
    }
    corpus.push("comfyui/png/ComfyUI_00001_.png".to_owned());
    corpus.push("comfyui/http/get_view_output_png.body.png".to_owned());
    // The only findings: the validation fixture built to contain a class
    // the server lacks, and two real templates that use paid API nodes on
    // the peer's default dangerous list (each also `node.api`: it spends
    // money).
    let expected = [
        ("workflows/validate/every_problem.json", "NotInstalledNode"),
        ("workflows/editor/api_bfl_flux_pro_t2i.json", "FluxProUltraImageNode"),
        ("workflows/editor/api_bfl_flux_pro_t2i.json", "FluxProUltraImageNode"),
        (
            "workflows/editor/template_contact_sheet-step_1.app.json",
            "GeminiImage2Node",
        ),
        (
            "workflows/editor/template_contact_sheet-step_1.app.json",
            "GeminiImage2Node",
        ),
    ];
    for format in ["human", "json", "sarif"] {
        let mut args = vec!["--object-info", CATALOG, "--format", format];
        args.extend(corpus.iter().map(String::as_str));
        let out = lint(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = stdout(&out);
        match format {
            "human" => {
                assert!(
                    text.ends_with(&format!(
                        "{} files checked: 5 findings (2 errors, 3 warnings)\n",
                        corpus.len()
                    )),
                    "{text}"
                );
            }
            "json" => {
                let files: Vec<Value> = serde_json::from_str(&text).unwrap();
                assert_eq!(files.len(), corpus.len());
                let flagged: Vec<(&str, &str)> = files
                    .iter()
                    .flat_map(|f| {
                        f["findings"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(move |x| (f["file"].as_str().unwrap(), x["class"].as_str().unwrap()))
                    })
                    .collect();
                assert_eq!(flagged, expected);
                assert!(files.iter().all(|f| f["error"].is_null()), "{text}");
            }
            _ => {
                let log: Value = serde_json::from_str(&text).unwrap();
                let results = log["runs"][0]["results"].as_array().unwrap();
                let rules: Vec<&str> = results.iter().map(|r| r["ruleId"].as_str().unwrap()).collect();
                assert_eq!(
                    rules,
                    [
                        "node.unknown",
                        "node.dangerous",
                        "node.api",
                        "node.dangerous",
                        "node.api"
                    ]
                );
                assert_eq!(log["runs"][0]["invocations"][0]["executionSuccessful"], true);
            }
        }
    }
}

#[test]
fn clean_files_exit_zero_and_editor_files_without_a_catalog_get_a_note() {
    let out = lint(&[
        "workflows/analyze/peer_txt2img.json",
        "workflows/validate/txt2img_valid.json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "2 files checked: no findings\n");

    let out = lint(&["workflows/editor/flux_schnell.json"]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!("editor_without_catalog", stdout(&out));

    // Without a catalog, an editor file is still judged on its classes.
    let out = lint(&["--format", "json", "workflows/editor/api_bfl_flux_pro_t2i.json"]);
    assert_eq!(out.status.code(), Some(1));
    let files: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(files[0]["source"], "editor (unconverted)");
    assert_eq!(files[0]["warnings"][0], "Dangerous node type: FluxProUltraImageNode");
}

#[test]
fn enforce_mode_from_the_config_blocks_classes_outside_the_allowlist() {
    let dir = std::env::temp_dir().join(format!("comfy-lint-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        "comfyui:\n  url: http://127.0.0.1:8188\nsecurity:\n  mode: enforce\n  allowed_nodes: [CheckpointLoaderSimple, CLIPTextEncode, EmptyLatentImage, KSampler, VAEDecode]\n",
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    let out = lint(&["--config", config_arg, "workflows/analyze/peer_txt2img.json"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("Workflow blocked — unapproved node types: ['SaveImage']"),
        "{text}"
    );
    // --mode overrides the config's mode.
    let out = lint(&[
        "--config",
        config_arg,
        "--mode",
        "audit",
        "workflows/analyze/peer_txt2img.json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    std::fs::write(&config, "security:\n  max_upload_size_mb: 0\n").unwrap();
    let out = lint(&["--config", config_arg, "workflows/analyze/peer_txt2img.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_upload_size_mb must be at least 1"));
    std::fs::write(&config, "security:\n  mode: Enforce\n").unwrap();
    let out = lint(&["--config", config_arg, "workflows/analyze/peer_txt2img.json"]);
    assert_eq!(out.status.code(), Some(2), "the mode is case-sensitive, as in the peer");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn job_limits_come_from_the_configs_limits_section() {
    let dir = std::env::temp_dir().join(format!("comfy-lint-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    let config_arg = config.to_str().unwrap();
    let rules = |args: &[&str]| -> Vec<String> {
        let out = lint(args);
        let files: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        files[0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap().to_owned())
            .collect()
    };
    let wf = "workflows/analyze/peer_txt2img.json";
    // 5 steps: within the default limits.
    assert!(rules(&["--format", "json", wf]).is_empty());
    // A lower limit from the config makes them a finding in audit mode...
    std::fs::write(&config, "limits:\n  max_steps: 3\nother_section: ignored\n").unwrap();
    assert_eq!(
        rules(&["--format", "json", "--config", config_arg, wf]),
        ["limits.max_steps"]
    );
    let out = lint(&["--config", config_arg, wf]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("[limits.max_steps] node 3 (KSampler), input 'steps': Node 3 (KSampler): steps 5 is over the limit limits.max_steps = 3"),
        "{}",
        stdout(&out)
    );
    // ... and 0 turns the limit off.
    std::fs::write(&config, "limits:\n  max_steps: 0\n").unwrap();
    assert!(rules(&["--format", "json", "--config", config_arg, wf]).is_empty());
    // A misspelt key is refused, not ignored.
    std::fs::write(&config, "limits:\n  max_stepz: 10\n").unwrap();
    assert_eq!(lint(&["--config", config_arg, wf]).status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unreadable_or_invalid_input_is_exit_two_with_a_reason() {
    let out = lint(&[
        "workflows/invalid/duplicate_node_id.json",
        "workflows",
        "no/such/file.json",
        "comfyui/README.md",
        "workflows/analyze/peer_txt2img.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("unreadable", stdout(&out));

    let out = lint(&["--format", "sarif", "no/such/file.json"]);
    assert_eq!(out.status.code(), Some(2));
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log["runs"][0]["invocations"][0]["executionSuccessful"], false);

    for usage in [
        &["--format", "xml", "a.json"][..],
        &[][..],
        &["--mode", "strict", "a.json"][..],
    ] {
        assert_eq!(lint(usage).status.code(), Some(2), "{usage:?}");
    }
}
