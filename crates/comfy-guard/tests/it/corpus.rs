//! The shared inspector corpus (`fixtures/inspector/`), run through the
//! library.
//!
//! Every family folder under `fixtures/inspector/hostile/` that exists is
//! walked (`provenance`, `names`, `code`, `graphs`, `flow`, `urls`, `cost`,
//! `images`; image cases are tested elsewhere and skipped here). Each case
//! listed in a family's `cases.json` must:
//! - in audit mode with the default policy, get at least one finding of its
//!   rule id, and never be blocked;
//! - in enforce mode with the default policy, be refused (blocked, or
//!   needing the user's confirmation);
//! - in enforce mode with its own classes allowlisted, still get a finding
//!   of its rule id (so deny-by-default cannot hide a detector that never
//!   fires).
//!
//! Every benign entry (`fixtures/inspector/benign/cases.json`) must get no
//! finding at all, in audit and enforce mode.
//!
//! The format is described in `fixtures/inspector/README.md`. Failures are
//! collected over the whole corpus and reported together, each naming its
//! file, what was expected and what was found.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use comfy_guard::inspect::{Inspection, Mode, Policy, inspect};
use comfy_guard::{JobLimits, check_job_in};
use comfy_workflow::{Limits, ObjectInfo, Workflow};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::inspect::fixtures;

fn corpus_dir() -> PathBuf {
    fixtures().join("inspector")
}

/// `fixtures/inspector/object_info.json` when it exists, else the recorded
/// ComfyUI 0.8.0 `/object_info`.
static CATALOG: LazyLock<ObjectInfo> = LazyLock::new(|| {
    let own = corpus_dir().join("object_info.json");
    let path = if own.exists() {
        own
    } else {
        fixtures().join("comfyui/http/get_object_info.body.json")
    };
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ObjectInfo::from_value(&serde_json::from_slice(&raw).unwrap())
});

/// One hostile case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostileCase {
    file: String,
    rule: String,
    why: String,
    #[serde(default)]
    catalog: bool,
}

/// One benign entry: a workflow file (relative to the benign folder), a
/// built-in template by name, or a prompt put into a plain txt2img
/// workflow.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BenignCase {
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    catalog: bool,
}

/// The families of hostile cases a library run skips (tested elsewhere).
const SKIPPED_EXTENSIONS: &[&str] = &["png", "webp"];

/// Reads a workflow file: API format as it is, editor format converted
/// with the catalog (as the server does before inspecting).
fn load(path: &Path) -> Result<Workflow, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
    if comfy_workflow::editor::is_editor_format(&doc) {
        comfy_workflow::editor::to_api(&doc, &CATALOG, &Limits::DEFAULT)
            .map_err(|e| format!("editor format, conversion failed: {e}"))
    } else {
        Workflow::from_value(doc, &Limits::DEFAULT).map_err(|e| format!("not a workflow: {e}"))
    }
}

/// A plain txt2img API workflow with `prompt` as its positive text.
pub(crate) fn txt2img(prompt: &str) -> Value {
    json!({
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

fn summary(report: &Inspection) -> String {
    if report.findings.is_empty() {
        return "no finding".to_owned();
    }
    let parts: Vec<String> = report
        .findings
        .iter()
        .map(|f| format!("{} ({})", f.rule, f.detail))
        .collect();
    parts.join("; ")
}

fn has_rule(report: &Inspection, rule: &str) -> bool {
    report.findings.iter().any(|f| f.rule.id() == rule)
}

/// Runs one hostile case in the three settings; returns what went wrong.
fn check_hostile(family: &str, dir: &Path, case: &HostileCase) -> Vec<String> {
    let name = format!("hostile/{family}/{}", case.file);
    let wf = match load(&dir.join(&case.file)) {
        Ok(wf) => wf,
        Err(e) => return vec![format!("{name}: {e}")],
    };
    if case.rule.starts_with("limits.") {
        return check_cost(&name, &wf, case);
    }
    let info = case.catalog.then_some(&*CATALOG);
    let mut problems = Vec::new();
    let audit = match inspect(&wf, &Policy::new(Mode::Audit), info) {
        Ok(r) => r,
        Err(e) => return vec![format!("{name}: expected `{}`, inspection refused: {e}", case.rule)],
    };
    if !has_rule(&audit, &case.rule) {
        problems.push(format!(
            "{name} ({}): audit mode: expected `{}`, found {}",
            case.why,
            case.rule,
            summary(&audit)
        ));
    }
    if let Some(b) = audit.blocked() {
        problems.push(format!("{name}: audit mode must not block, blocked: {}", b.message));
    }
    match inspect(&wf, &Policy::new(Mode::Enforce), info) {
        Ok(r) if r.blocked().is_some() || r.needs_confirmation() => {}
        Ok(r) => problems.push(format!(
            "{name} ({}): enforce mode, default policy: expected a refusal, it would run ({})",
            case.why,
            summary(&r)
        )),
        Err(e) => problems.push(format!("{name}: enforce mode: inspection refused: {e}")),
    }
    // Allowlisting a case's classes is what turns `node.provenance` off (it
    // is deny-by-default itself), so that check does not apply to it.
    if case.rule == "node.provenance" {
        return problems;
    }
    let classes: BTreeSet<String> = audit.nodes_used.iter().map(ToString::to_string).collect();
    match inspect(&wf, &Policy::new(Mode::Enforce).with_allowed(classes), info) {
        Ok(r) if has_rule(&r, &case.rule) => {}
        Ok(r) => problems.push(format!(
            "{name} ({}): enforce mode, its classes allowlisted: expected `{}`, found {}",
            case.why,
            case.rule,
            summary(&r)
        )),
        Err(e) => problems.push(format!("{name}: enforce mode, allowlisted: inspection refused: {e}")),
    }
    problems
}

/// A job-cost case (`limits.*`): the job limits as the server applies
/// them at submission: named with its rule in audit mode (a value that
/// cannot be worked out before the run too, as unchecked), refused in
/// enforce mode.
fn check_cost(name: &str, wf: &Workflow, case: &HostileCase) -> Vec<String> {
    let mut problems = Vec::new();
    for mode in [Mode::Audit, Mode::Enforce] {
        let over = check_job_in(wf, &JobLimits::DEFAULT, mode);
        let rules: Vec<&str> = over.iter().map(|o| o.finding(mode).rule.id()).collect();
        if !rules.contains(&case.rule.as_str()) {
            problems.push(format!(
                "{name} ({}): {mode:?} mode: expected `{}`, found {rules:?}",
                case.why, case.rule
            ));
        }
    }
    problems
}

/// Reads a family's `cases.json` and checks that it lists every workflow
/// file in the folder (and nothing that is not there).
fn family_cases(dir: &Path) -> Result<Vec<HostileCase>, String> {
    let list = dir.join("cases.json");
    let raw = std::fs::read(&list).map_err(|e| format!("{}: {e}", list.display()))?;
    let cases: Vec<HostileCase> =
        serde_json::from_slice(&raw).map_err(|e| format!("{}: not a list of cases: {e}", list.display()))?;
    let listed: BTreeSet<&str> = cases.iter().map(|c| c.file.as_str()).collect();
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let file = entry
            .map_err(|e| e.to_string())?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if file != "cases.json"
            && Path::new(&file).extension().is_some_and(|e| e == "json")
            && !listed.contains(file.as_str())
        {
            return Err(format!("{}: `{file}` is not listed", list.display()));
        }
    }
    for c in &cases {
        if !dir.join(&c.file).exists() {
            return Err(format!("{}: `{}` is listed but missing", list.display(), c.file));
        }
    }
    Ok(cases)
}

/// Every hostile case of every family present.
#[test]
fn hostile_corpus() {
    let root = corpus_dir().join("hostile");
    let mut families: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    families.sort();
    let mut problems = Vec::new();
    let mut checked = 0;
    for dir in &families {
        let family = dir.file_name().unwrap().to_string_lossy().into_owned();
        let cases = match family_cases(dir) {
            Ok(c) => c,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        for case in &cases {
            let ext = Path::new(&case.file).extension().and_then(|e| e.to_str()).unwrap_or("");
            if SKIPPED_EXTENSIONS.contains(&ext) {
                continue;
            }
            problems.extend(check_hostile(&family, dir, case));
            checked += 1;
        }
    }
    assert!(checked > 0, "no hostile case found under {}", root.display());
    let mut report = String::new();
    for p in &problems {
        let _ = writeln!(report, "- {p}");
    }
    assert!(
        problems.is_empty(),
        "{} of {checked} hostile cases failed:\n{report}",
        problems.len()
    );
}

/// The modules of the custom packs the built-in templates use.
fn template_packs() -> BTreeSet<String> {
    let path = fixtures().join("workflows/custom_nodes_object_info.json");
    let raw: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    raw.as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|v| v["python_module"].as_str())
        .map(str::to_owned)
        .collect()
}

/// Every benign entry: no finding in audit or enforce mode.
#[test]
fn benign_corpus() {
    let dir = corpus_dir().join("benign");
    let raw = std::fs::read(dir.join("cases.json")).unwrap();
    let cases: Vec<BenignCase> = serde_json::from_slice(&raw).unwrap();
    let mut problems = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let (name, wf) = match (&case.file, &case.template, &case.prompt) {
            (Some(file), None, None) => (format!("benign/{file}"), load(&dir.join(file))),
            (None, Some(t), None) => (
                format!("template {t}"),
                comfy_workflow::template::default_graph(t).map_err(|e| e.to_string()),
            ),
            (None, None, Some(p)) => (
                format!("prompt {p:?}"),
                Workflow::from_value(txt2img(p), &Limits::DEFAULT).map_err(|e| e.to_string()),
            ),
            _ => {
                problems.push(format!("benign entry {i}: exactly one of `file`, `template`, `prompt`"));
                continue;
            }
        };
        let wf = match wf {
            Ok(wf) => wf,
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        // Enforce mode vouches for classes from the catalog's provenance:
        // without a catalog it runs nothing, so it always has one here. The
        // packs the built-in templates use are allowed, as by a user who
        // runs those templates (and by the lint and server corpus runs).
        for (mode, info) in [
            (Mode::Audit, case.catalog.then_some(&*CATALOG)),
            (Mode::Enforce, Some(&*CATALOG)),
        ] {
            match inspect(&wf, &Policy::new(mode).with_allowed_packs(template_packs()), info) {
                Ok(r) if r.is_clean() => {}
                Ok(r) => problems.push(format!(
                    "{name}: {mode} mode: expected no finding, found {}",
                    summary(&r)
                )),
                Err(e) => problems.push(format!("{name}: {mode} mode: inspection refused: {e}")),
            }
        }
    }
    let mut report = String::new();
    for p in &problems {
        let _ = writeln!(report, "- {p}");
    }
    assert!(
        problems.is_empty(),
        "{} of {} benign entries failed:\n{report}",
        problems.len(),
        cases.len()
    );
}
