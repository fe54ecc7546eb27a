//! Parsing, validating and analysing generated workflows of 100, 1,000 and
//! 10,000 nodes against the recorded ComfyUI catalog. Run with
//! `cargo xtask bench`; results go in `docs/performance.md`.

#![allow(missing_docs, clippy::unwrap_used, reason = "benchmark harness")]

use comfy_workflow::{Limits, ObjectInfo, Workflow};
use serde_json::{Map, Value, json};

fn main() {
    divan::main();
}

const SIZES: &[usize] = &[100, 1_000, 10_000];

/// A workflow of `n` nodes: repeated txt2img blocks of 10 nodes (loader,
/// LoRA, two prompts, latent, sampler, decode, upscale by, invert, save),
/// as realistic as large graphs get.
fn generate(n: usize) -> Vec<u8> {
    let mut doc = Map::new();
    let mut id = 0usize;
    let mut next = || {
        id += 1;
        id.to_string()
    };
    while doc.len() + 10 <= n.max(10) {
        let ckpt = next();
        let lora = next();
        let pos = next();
        let neg = next();
        let latent = next();
        let sampler = next();
        let decode = next();
        let scale = next();
        let invert = next();
        let save = next();
        doc.insert(
            ckpt.clone(),
            json!({"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}}),
        );
        doc.insert(lora.clone(), json!({"class_type": "LoraLoader", "inputs": {"lora_name": "example_lora.safetensors", "strength_model": 0.8, "strength_clip": 0.8, "model": [ckpt, 0], "clip": [ckpt, 1]}}));
        doc.insert(pos.clone(), json!({"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse on a cliff at dawn, volumetric light", "clip": [lora, 1]}}));
        doc.insert(
            neg.clone(),
            json!({"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, low quality", "clip": [lora, 1]}}),
        );
        doc.insert(
            latent.clone(),
            json!({"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768, "batch_size": 1}}),
        );
        doc.insert(sampler.clone(), json!({"class_type": "KSampler", "inputs": {"seed": 1234, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0, "model": [lora, 0], "positive": [pos, 0], "negative": [neg, 0], "latent_image": [latent, 0]}}));
        doc.insert(
            decode.clone(),
            json!({"class_type": "VAEDecode", "inputs": {"samples": [sampler, 0], "vae": [ckpt, 2]}}),
        );
        doc.insert(scale.clone(), json!({"class_type": "ImageScaleBy", "inputs": {"image": [decode, 0], "upscale_method": "nearest-exact", "scale_by": 1.5}}));
        doc.insert(
            invert.clone(),
            json!({"class_type": "ImageInvert", "inputs": {"image": [scale, 0]}}),
        );
        doc.insert(
            save,
            json!({"class_type": "SaveImage", "inputs": {"images": [invert, 0], "filename_prefix": "bench"}}),
        );
    }
    serde_json::to_vec(&Value::Object(doc)).unwrap()
}

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
