//! The shared inspector corpus (`fixtures/inspector/`) through the built
//! comfy-lint, with `--object-info fixtures/inspector/object_info.json`, in
//! audit and enforce mode.
//!
//! Every family folder that exists is read (`hostile/<family>/cases.json`,
//! and `lint-only/<family>/cases.json` for what only an editor file shows:
//! muted and bypassed nodes, nested definitions, group nodes, which the
//! server never sends). Each case must be warned about with its rule id in
//! audit mode (exit status 1, never blocked) and refused in enforce mode
//! with the default configuration (blocked, or findings that need the
//! user's yes). The cost family is judged against the default `limits:`,
//! as the server judges a submission. Every benign entry (`benign/cases.json`) must get no
//! finding in either mode.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn inspector() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/inspector")
}

/// One run of comfy-lint over `files` in `mode` (with `config` when
/// given), JSON output by file.
fn lint(mode: &str, files: &[PathBuf], config: Option<&Path>) -> Vec<Value> {
    if files.is_empty() {
        return Vec::new();
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_comfy-lint"));
    cmd.args(["--format", "json", "--mode", mode, "--object-info"])
        .arg(inspector().join("object_info.json"));
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let out = cmd.args(files).output().unwrap();
    let reports: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    reports.as_array().unwrap().clone()
}

/// `(file, rule, why)` of every case in every family under `group`.
fn cases(group: &str) -> Vec<(PathBuf, String, String)> {
    let mut out = Vec::new();
    let Ok(families) = std::fs::read_dir(inspector().join(group)) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = families.map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for dir in dirs {
        let Ok(raw) = std::fs::read(dir.join("cases.json")) else {
            continue;
        };
        let list: Vec<Value> = serde_json::from_slice(&raw).unwrap();
        for case in list {
            let field = |k: &str| case[k].as_str().unwrap_or_default().to_owned();
            out.push((dir.join(field("file")), field("rule"), field("why")));
        }
    }
    out
}

fn rules(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["rule"].as_str().map(str::to_owned))
        .collect()
}

fn name(path: &Path) -> String {
    let root = inspector();
    path.strip_prefix(&root).unwrap_or(path).display().to_string()
}

#[test]
fn every_hostile_case_is_warned_in_audit_mode_and_refused_in_enforce_mode() {
    let mut all = cases("hostile");
    all.extend(cases("lint-only"));
    assert!(all.len() >= 40, "the corpus has {} cases", all.len());
    let files: Vec<PathBuf> = all.iter().map(|(f, _, _)| f.clone()).collect();
    let audit = lint("audit", &files, None);
    let enforce = lint("enforce", &files, None);
    let mut problems = String::new();
    for (i, (file, rule, why)) in all.iter().enumerate() {
        let a = &audit[i];
        if a.get("error").is_some() {
            let _ = writeln!(problems, "{}: cannot lint: {}", name(file), a["error"]);
            continue;
        }
        let found = rules(a);
        if !found.contains(rule) {
            let _ = writeln!(
                problems,
                "{} ({why}): audit: expected {rule}, found {found:?}",
                name(file)
            );
        }
        if !a["blocked"].is_null() {
            let _ = writeln!(problems, "{}: audit mode blocked", name(file));
        }
        let e = &enforce[i];
        let refused = !e["blocked"].is_null() || !rules(e).is_empty();
        if !refused {
            let _ = writeln!(problems, "{} ({why}): enforce: not refused", name(file));
        }
    }
    assert!(problems.is_empty(), "{problems}");
}

#[test]
fn benign_entries_get_no_finding() {
    let Ok(raw) = std::fs::read(inspector().join("benign/cases.json")) else {
        return;
    };
    let list: Vec<Value> = serde_json::from_slice(&raw).unwrap();
    let tmp = std::env::temp_dir().join(format!("comfy-lint-benign-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut files = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        if let Some(file) = entry["file"].as_str() {
            files.push(inspector().join("benign").join(file));
        } else if let Some(name) = entry["template"].as_str() {
            let wf = comfy_workflow::template::default_graph(name).unwrap();
            let path = tmp.join(format!("template-{i}.json"));
            std::fs::write(&path, wf.to_value().to_string()).unwrap();
            files.push(path);
        } else if let Some(prompt) = entry["prompt"].as_str() {
            let path = tmp.join(format!("prompt-{i}.json"));
            std::fs::write(&path, txt2img(prompt).to_string()).unwrap();
            files.push(path);
        }
    }
    // The packs the templates use are allowed, as by a user who runs them;
    // no other.
    let config = tmp.join("config.yaml");
    let packs: Vec<String> = template_packs().into_iter().map(|p| format!("\"{p}\"")).collect();
    std::fs::write(
        &config,
        format!("security:\n  allowed_node_packs: [{}]\n", packs.join(", ")),
    )
    .unwrap();
    let mut problems = String::new();
    for mode in ["audit", "enforce"] {
        for (file, report) in files.iter().zip(lint(mode, &files, Some(&config))) {
            if report.get("error").is_some() || !rules(&report).is_empty() || !report["blocked"].is_null() {
                let _ = writeln!(problems, "{mode}: {}: {report}", file.display());
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(problems.is_empty(), "{problems}");
}

/// The modules of the custom packs the built-in templates use.
pub(crate) fn template_packs() -> std::collections::BTreeSet<String> {
    let path = inspector().join("../workflows/custom_nodes_object_info.json");
    let raw: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    raw.as_object()
        .unwrap()
        .values()
        .filter_map(|v| v["python_module"].as_str())
        .map(str::to_owned)
        .collect()
}

fn txt2img(prompt: &str) -> Value {
    serde_json::json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, low quality", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 42, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}}
    })
}
