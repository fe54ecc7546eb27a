//! Loader nodes that fail at run time on a model file that cannot be read,
//! as ComfyUI does.
//!
//! Why: tests against a real ComfyUI run it without weights, with empty
//! placeholder model files (`cargo xtask real-comfyui`). The names validate
//! (the files are listed), and the job fails when the loader opens the file.
//! Given such a folder as `--models-dir`, the simulator fails the same job
//! at the same node with the same exception type and message, so tools
//! that report run-time errors meet the real shape here too.
//!
//! What ComfyUI 0.33.0 answers (seen on the real server, torch 2.14):
//! - `.safetensors` and `.sft` go to the `safetensors` library:
//!   `safetensors._safetensors_rust.SafetensorError`, `Error while
//!   deserializing header: ...` with `header too small` (under 8 bytes),
//!   `header too large` (a declared length over 100,000,000),
//!   `invalid header length` (longer than the file), `invalid UTF-8 in
//!   header: ...`, `invalid JSON in header: ...` (serde's message for
//!   safetensors' own header struct, which this module mirrors).
//! - other extensions go to `torch.load`: an empty file is `EOFError` with an
//!   empty message.
//!
//! Not imitated: a non-empty file `torch.load` cannot unpickle (its message
//! depends on torch's unpickler and the file's first byte), and a readable
//! header that holds no model. Both load as the simulated model.

use std::collections::HashMap;
use std::io::Read;

use serde::Deserialize;
use serde_json::Value;

use crate::state::Shared;

/// Loader classes, the input naming the file, and its model folder.
const LOADERS: &[(&str, &str, &str)] = &[
    ("CheckpointLoaderSimple", "ckpt_name", "checkpoints"),
    ("ImageOnlyCheckpointLoader", "ckpt_name", "checkpoints"),
    ("unCLIPCheckpointLoader", "ckpt_name", "checkpoints"),
    ("VAELoader", "vae_name", "vae"),
    ("LoraLoader", "lora_name", "loras"),
    ("LoraLoaderModelOnly", "lora_name", "loras"),
    ("UpscaleModelLoader", "model_name", "upscale_models"),
    ("ControlNetLoader", "control_net_name", "controlnet"),
    ("DiffControlNetLoader", "control_net_name", "controlnet"),
    ("CLIPVisionLoader", "clip_name", "clip_vision"),
    ("StyleModelLoader", "style_model_name", "style_models"),
    ("UNETLoader", "unet_name", "diffusion_models"),
    ("CLIPLoader", "clip_name", "text_encoders"),
    ("DualCLIPLoader", "clip_name1", "text_encoders"),
    ("DualCLIPLoader", "clip_name2", "text_encoders"),
    ("GLIGENLoader", "gligen_name", "gligen"),
    ("HypernetworkLoader", "hypernetwork_name", "hypernetworks"),
];

/// The `safetensors` library's largest header.
const MAX_HEADER: u64 = 100_000_000;
/// Largest header this module reads to check its JSON; a longer one that
/// fits the file is taken as readable.
const MAX_CHECKED_HEADER: u64 = 16 << 20;

const SAFETENSOR_ERROR: &str = "safetensors._safetensors_rust.SafetensorError";

/// The `safetensors` library's header, for serde's messages about it.
#[derive(Deserialize)]
#[allow(dead_code, reason = "parsed only for the errors serde gives")]
struct HashMetadata {
    #[serde(rename = "__metadata__")]
    metadata: Option<HashMap<String, String>>,
    #[serde(flatten)]
    tensors: HashMap<String, TensorInfo>,
}

#[derive(Deserialize)]
#[allow(dead_code, reason = "parsed only for the errors serde gives")]
struct TensorInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

/// The failure (exception message without its trailing newline, exception
/// type) of `class` run with `inputs`, when it is a loader whose model file
/// in `--models-dir` cannot be read; `None` otherwise.
pub(crate) fn failure(
    shared: &Shared,
    class: &str,
    inputs: &serde_json::Map<String, Value>,
) -> Option<(String, String)> {
    let root = shared.models_root.as_ref()?;
    for (_, input, folder) in LOADERS.iter().filter(|(c, _, _)| *c == class) {
        let Some(name) = inputs.get(*input).and_then(Value::as_str) else {
            continue;
        };
        if !shared
            .models
            .files(folder)
            .is_some_and(|files| files.iter().any(|f| f == name))
        {
            continue;
        }
        let Some(path) = crate::files::inside(&root.join(folder), name) else {
            continue;
        };
        if let Some(fail) = unreadable(&path, name) {
            return Some(fail);
        }
    }
    None
}

fn unreadable(path: &std::path::Path, name: &str) -> Option<(String, String)> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let safetensors = std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors") || e.eq_ignore_ascii_case("sft"));
    if !safetensors {
        return (len == 0).then(|| (String::new(), "EOFError".to_owned()));
    }
    let header_error = |what: String| {
        Some((
            format!("Error while deserializing header: {what}"),
            SAFETENSOR_ERROR.to_owned(),
        ))
    };
    let mut size = [0u8; 8];
    if len < 8 || file.read_exact(&mut size).is_err() {
        return header_error("header too small".into());
    }
    let n = u64::from_le_bytes(size);
    if n > MAX_HEADER {
        return header_error("header too large".into());
    }
    if n > len - 8 {
        return header_error("invalid header length".into());
    }
    if n > MAX_CHECKED_HEADER {
        return None;
    }
    let mut header = Vec::new();
    file.take(n).read_to_end(&mut header).ok()?;
    let text = match std::str::from_utf8(&header) {
        Ok(t) => t,
        Err(e) => return header_error(format!("invalid UTF-8 in header: {e}")),
    };
    match serde_json::from_str::<HashMetadata>(text) {
        Ok(_) => None,
        Err(e) => header_error(format!("invalid JSON in header: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], name: &str) -> Option<(String, String)> {
        let dir = std::env::temp_dir().join(format!("comfy-sim-loaders-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = unreadable(&path, name);
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    fn with_len(n: u64, rest: &[u8]) -> Vec<u8> {
        let mut v = n.to_le_bytes().to_vec();
        v.extend_from_slice(rest);
        v
    }

    /// The messages a real ComfyUI 0.33.0 gave for these files.
    #[test]
    fn headers_fail_as_the_safetensors_library_says() {
        let msg = |m: &str| {
            Some((
                format!("Error while deserializing header: {m}"),
                SAFETENSOR_ERROR.to_owned(),
            ))
        };
        assert_eq!(check(b"", "empty.safetensors"), msg("header too small"));
        assert_eq!(check(b"1234567", "seven.safetensors"), msg("header too small"));
        assert_eq!(check(b"not a model\n", "garbage.safetensors"), msg("header too large"));
        assert_eq!(
            check(&with_len(100, br#"{"a":1}"#), "trunc.sft"),
            msg("invalid header length")
        );
        assert_eq!(
            check(&with_len(5, b"nope!"), "badjson.safetensors"),
            msg("invalid JSON in header: expected ident at line 1 column 2")
        );
        assert_eq!(
            check(&with_len(2, b"[]"), "notobj.safetensors"),
            msg("invalid JSON in header: invalid type: sequence, expected struct HashMetadata at line 1 column 0")
        );
        assert_eq!(
            check(&with_len(0, b""), "zero.safetensors"),
            msg("invalid JSON in header: EOF while parsing a value at line 1 column 0")
        );
        assert_eq!(
            check(&with_len(4, b"\xff\xfe{}"), "badutf.safetensors"),
            msg("invalid UTF-8 in header: invalid utf-8 sequence of 1 bytes from index 0")
        );
        assert_eq!(
            check(&with_len(19, br#"{"__metadata__":{}}"#), "meta.safetensors"),
            None
        );
    }

    #[test]
    fn an_empty_pickle_file_is_an_eof_error_and_a_full_one_loads() {
        assert_eq!(check(b"", "x.pth"), Some((String::new(), "EOFError".to_owned())));
        assert_eq!(check(b"", "x.CKPT"), Some((String::new(), "EOFError".to_owned())));
        assert_eq!(check(b"not a model", "x.ckpt"), None);
    }
}
