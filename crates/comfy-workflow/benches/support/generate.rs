//! The benchmark workflows, shared with comfy-guard's benchmark (included
//! there by path, so both measure the same documents).

use serde_json::{Map, Value, json};

/// A workflow of `n` nodes: repeated txt2img blocks of 10 nodes (loader,
/// LoRA, two prompts, latent, sampler, decode, upscale by, invert, save),
/// as realistic as large graphs get.
pub(crate) fn generate(n: usize) -> Vec<u8> {
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
