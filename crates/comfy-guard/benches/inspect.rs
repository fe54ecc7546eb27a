//! Inspecting generated workflows of 100, 1,000 and 10,000 nodes (the
//! documents comfy-workflow's benchmark parses) against the recorded
//! ComfyUI catalog. Run with `cargo xtask bench`; results go in
//! `docs/performance.md`.

#![allow(missing_docs, clippy::unwrap_used, reason = "benchmark harness")]

use comfy_guard::inspect::{Mode, Policy, inspect, inspect_json};
use comfy_workflow::{Limits, ObjectInfo, Workflow};

#[path = "../../comfy-workflow/benches/support/generate.rs"]
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

/// The inspection alone, on a parsed workflow.
#[divan::bench(args = SIZES)]
fn inspect_parsed(bencher: divan::Bencher, n: usize) {
    let info = catalog();
    let policy = Policy::new(Mode::Audit);
    let wf = Workflow::from_json(&generate(n), &Limits::DEFAULT).unwrap();
    bencher.bench(|| {
        let report = inspect(divan::black_box(&wf), &policy, Some(&info)).unwrap();
        assert!(report.is_clean());
    });
}

/// What a tool call does with a request body: parse under the limits, then
/// inspect.
#[divan::bench(args = SIZES)]
fn parse_and_inspect(bencher: divan::Bencher, n: usize) {
    let info = catalog();
    let policy = Policy::new(Mode::Audit);
    let bytes = generate(n);
    bencher.bench(|| inspect_json(divan::black_box(&bytes), &policy, Some(&info)).unwrap());
}
