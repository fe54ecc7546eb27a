//! The flow, urls and cost families of the hostile corpus
//! (`fixtures/inspector/hostile/<family>/cases.json`): every case must
//! produce its rule in audit mode (a warning) and be refused in enforce
//! mode with the default configuration (a finding needs the user's
//! confirmation; a job over its limit is refused outright).

use comfy_guard::inspect::{Mode, Policy, inspect_json};
use comfy_guard::{JobLimits, check_job_in};
use comfy_workflow::{Limits, Workflow};
use serde_json::Value;

use crate::inspect::fixtures;

fn cases(family: &str) -> Vec<(String, String, Vec<u8>)> {
    let dir = fixtures().join("inspector/hostile").join(family);
    let list: Vec<Value> = serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    list.iter()
        .map(|c| {
            let file = c["file"].as_str().unwrap().to_owned();
            let bytes = std::fs::read(dir.join(&file)).unwrap();
            (file, c["rule"].as_str().unwrap().to_owned(), bytes)
        })
        .collect()
}

#[test]
fn flow_and_url_cases_warn_in_audit_and_are_refused_in_enforce() {
    for family in ["flow", "urls"] {
        let all = cases(family);
        assert!(all.len() >= 20, "{family}: {} cases", all.len());
        for (file, rule, bytes) in all {
            let audit = inspect_json(&bytes, &Policy::new(Mode::Audit), None).unwrap();
            let rules: Vec<&str> = audit.findings.iter().map(|f| f.rule.id()).collect();
            assert!(
                rules.contains(&rule.as_str()),
                "{family}/{file}: expected {rule}, got {rules:?}"
            );
            assert!(audit.blocked().is_none() && !audit.needs_confirmation());
            let enforce = inspect_json(&bytes, &Policy::new(Mode::Enforce), None).unwrap();
            assert!(enforce.needs_confirmation(), "{family}/{file}");
        }
    }
}

#[test]
fn cost_cases_are_refused_in_enforce_mode_with_the_default_limits() {
    let all = cases("cost");
    assert!(all.len() >= 20);
    for (file, rule, bytes) in all {
        let wf = Workflow::from_json(&bytes, &Limits::DEFAULT).unwrap();
        let over = check_job_in(&wf, &JobLimits::DEFAULT, Mode::Enforce);
        let limits: Vec<String> = over.iter().map(|o| format!("limits.{}", o.limit)).collect();
        assert!(limits.contains(&rule), "cost/{file}: expected {rule}, got {limits:?}");
    }
}
