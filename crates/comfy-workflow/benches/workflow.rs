//! Parsing, validating and analysing generated workflows of 100, 1,000 and
//! 10,000 nodes against the recorded ComfyUI catalog. Run with
//! `cargo xtask bench`; results go in `docs/performance.md`.

#![allow(missing_docs, clippy::unwrap_used, reason = "benchmark harness")]

use comfy_workflow::{Limits, ObjectInfo, Workflow};
use serde_json::Value;

#[path = "support/generate.rs"]
mod generate;
use generate::generate;

fn main() {
    divan::main();
}

const SIZES: &[usize] = &[100, 1_000, 10_000];

fn catalog() -> ObjectInfo {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/comfyui/http/get_object_info.body.json"
    );
    ObjectInfo::from_value(&serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
}

#[divan::bench(args = SIZES)]
fn parse(bencher: divan::Bencher, n: usize) {
    let bytes = generate(n);
    bencher.bench(|| Workflow::from_json(divan::black_box(&bytes), &Limits::DEFAULT).unwrap());
}

#[divan::bench(args = SIZES)]
fn validate(bencher: divan::Bencher, n: usize) {
    let info = catalog();
    let wf = Workflow::from_json(&generate(n), &Limits::DEFAULT).unwrap();
    bencher.bench(|| {
        let problems = divan::black_box(&wf).validate(&info);
        assert!(problems.is_empty());
    });
}

#[divan::bench(args = SIZES)]
fn analyze(bencher: divan::Bencher, n: usize) {
    let info = catalog();
    let wf = Workflow::from_json(&generate(n), &Limits::DEFAULT).unwrap();
    bencher.bench(|| divan::black_box(&wf).analyze(Some(&info)));
}

/// What a tool call does: parse, validate and analyse.
#[divan::bench(args = SIZES)]
fn parse_validate_analyze(bencher: divan::Bencher, n: usize) {
    let info = catalog();
    let bytes = generate(n);
    bencher.bench(|| {
        let wf = Workflow::from_json(divan::black_box(&bytes), &Limits::DEFAULT).unwrap();
        let problems = wf.validate(&info);
        (problems, wf.analyze(Some(&info)))
    });
}

/// Reference point: plain `serde_json` into a `Value`, no checks.
#[divan::bench(args = SIZES)]
fn serde_json_value_reference(bencher: divan::Bencher, n: usize) {
    let bytes = generate(n);
    bencher.bench(|| serde_json::from_slice::<Value>(divan::black_box(&bytes)).unwrap());
}

/// Reference point: `serde_json`'s tokenizer alone (every value skipped),
/// the floor for any parse built on it.
#[divan::bench(args = SIZES)]
fn serde_json_tokenizer_reference(bencher: divan::Bencher, n: usize) {
    let bytes = generate(n);
    bencher.bench(|| serde_json::from_slice::<serde::de::IgnoredAny>(divan::black_box(&bytes)).unwrap());
}
