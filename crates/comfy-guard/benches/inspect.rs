//! Inspecting generated workflows of 100, 1,000 and 10,000 nodes (the
//! documents comfy-workflow's benchmark parses) against the recorded
//! ComfyUI catalog, and a string-heavy variant of the same graphs whose
//! prompts are long, code-like (words the code detector must parse and
//! clear) or encoded blobs. Run with `cargo xtask bench`; results go in
//! `docs/performance.md`.

#![allow(missing_docs, clippy::unwrap_used, reason = "benchmark harness")]

use comfy_guard::inspect::{Mode, Policy, inspect, inspect_json};
use comfy_workflow::{Limits, ObjectInfo, Workflow};
use serde_json::Value;

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

/// Benign prompts that make the detector work: long prose, words it must
/// parse before clearing (`open`, `import`, `locals (...)`, `bash`,
/// `python -`), wildcards, CJK, and blobs it must decode.
const HEAVY_PROMPTS: &[&str] = &[
    "a sprawling cyberpunk city at night, neon signs reflected in rain puddles, crowded streets, street food stalls, \
     flying cars, holographic billboards, volumetric fog, cinematic lighting, ultra detailed, 8k, sharp focus, \
     (masterpiece:1.2), (best quality:1.1), intricate details, depth of field, bokeh, photorealistic, octane render, \
     trending on artstation, by a famous concept artist, wide angle lens, dramatic composition, high contrast, \
     color grading, film grain, anamorphic lens flare, reflections, wet asphalt, steam rising from vents",
    "tourists and locals (crowd:1.2) at an open (market:1.1), a python snake charmer, import stalls, compile of \
     colours, the eval of the judges, a terminal showing a /bin/bash prompt, {party|bash|celebration}, an \
     executive's open(door) pose, open-air cafe; rm the background; python -ish vibes",
    "SGVsbG8sIHRoaXMgaXMgYSBsb25nIGJlbmlnbiBwcm9tcHQgYWJvdXQgYSBsaWdodGhvdXNlIGF0IGR1c2ssIG9pbCBwYWludGluZw== \
     68656c6c6f2c2074686973206973206865782061626f75742061206c69676874686f757365",
    "夕焼けの海辺、少女、（傑作：1.2）、東京の夜景、寿司職人、山水画，水墨，留白，（杰作:1.2），한복을 입은 여인",
    "{red|blue|green} dress, {sunny|rainy} day, {1-3$$cat|dog|bird}, __wildcards/hair__, <lora:detail:0.7>",
];

/// [`generate`] with every prompt replaced by one of [`HEAVY_PROMPTS`].
fn generate_heavy(n: usize) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(&generate(n)).unwrap();
    let mut i = 0usize;
    for node in doc.as_object_mut().unwrap().values_mut() {
        if node["class_type"] == "CLIPTextEncode" {
            node["inputs"]["text"] = Value::from(HEAVY_PROMPTS[i % HEAVY_PROMPTS.len()]);
            i += 1;
        }
    }
    serde_json::to_vec(&doc).unwrap()
}

/// The inspection alone, on the string-heavy variant.
#[divan::bench(args = SIZES)]
fn inspect_parsed_string_heavy(bencher: divan::Bencher, n: usize) {
    let info = catalog();
    let policy = Policy::new(Mode::Audit);
    let wf = Workflow::from_json(&generate_heavy(n), &Limits::DEFAULT).unwrap();
    bencher.bench(|| {
        let report = inspect(divan::black_box(&wf), &policy, Some(&info)).unwrap();
        assert!(report.is_clean(), "{:?}", report.findings.first());
    });
}
