//! The node catalog (`/object_info`) and the simulated model folders.
//!
//! The catalog is the one a real ComfyUI 0.8.0 served (recorded in
//! `fixtures/comfyui/http/get_object_info.body.json`, embedded at build
//! time). Its model combo lists are rewritten to the simulator's own model
//! folders, and `LoadImage`'s list follows the input directory, as ComfyUI's
//! lists follow the disk.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

const OBJECT_INFO: &str = include_str!("../../../fixtures/comfyui/http/get_object_info.body.json");

/// Paid API node entries exactly as the real 0.33.0 serves them
/// (`partner/` categories, `price_badge`, the newer fields), which the
/// 0.33.0 simulator serves in place of the recorded 0.8.0 ones (and adds,
/// for classes 0.8.0 did not have): `OpenAIDalle3`, `OpenAIChatNode`,
/// `ClaudeNode`, `ElevenLabsTextToSpeech`, and the helper
/// `OpenAIInputFiles`, which is not an API node.
const API_NODES_0_33: &str = include_str!("../../../fixtures/comfyui-0.33/object_info_api_nodes.json");

/// The classes added to the recorded catalog for `version`: its own
/// entries (0.33.0's API nodes), then the builder's `extra` ones.
pub(crate) fn extras(version: crate::ComfyVersion, extra: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    if version == crate::ComfyVersion::V0_33_0
        && let Ok(Value::Object(api)) = serde_json::from_str::<Value>(API_NODES_0_33)
    {
        out.extend(api);
    }
    out.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// Model folder names, in the order `/models` lists them.
pub(crate) const FOLDERS: &[&str] = &[
    "checkpoints",
    "configs",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "diffusers",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "latent_upscale_models",
    "custom_nodes",
    "hypernetworks",
    "photomaker",
    "classifiers",
    "model_patches",
    "audio_encoders",
];

/// The model files the recorded server had, which the simulator has by
/// default.
const RECORDED_MODELS: &[(&str, &[&str])] = &[
    (
        "checkpoints",
        &["sd_xl_base_1.0.safetensors", "v1-5-pruned-emaonly.safetensors"],
    ),
    ("loras", &["example_lora.safetensors"]),
    ("vae", &["vae-ft-mse-840000-ema-pruned.safetensors"]),
    ("upscale_models", &["RealESRGAN_x4plus.pth"]),
];

/// File endings ComfyUI lists in model folders (`supported_pt_extensions`).
const MODEL_EXTENSIONS: &[&str] = &[".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"];

/// Most files listed per model folder, to bound a hostile models directory.
const MAX_MODEL_FILES: usize = 10_000;

/// The files in each model folder, sorted as ComfyUI sorts them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Models {
    pub(crate) folders: BTreeMap<String, Vec<String>>,
}

impl Models {
    /// The recorded server's model files.
    pub(crate) fn recorded() -> Self {
        let mut folders = BTreeMap::new();
        for f in FOLDERS {
            folders.insert((*f).to_owned(), Vec::new());
        }
        for (f, files) in RECORDED_MODELS {
            folders.insert((*f).to_owned(), files.iter().map(|s| (*s).to_owned()).collect());
        }
        Self { folders }
    }

    /// The model files under `dir/<folder>/`, recursively, with `/`
    /// separators, filtered by ComfyUI's model extensions.
    pub(crate) fn scan(dir: &Path) -> std::io::Result<Self> {
        let mut folders = BTreeMap::new();
        for f in FOLDERS {
            let mut files = Vec::new();
            let root = dir.join(f);
            if root.is_dir() {
                walk(&root, "", &mut files, 0)?;
            }
            files.sort();
            folders.insert((*f).to_owned(), files);
        }
        Ok(Self { folders })
    }

    /// The files in `folder`, or `None` for a folder ComfyUI does not know.
    pub(crate) fn files(&self, folder: &str) -> Option<&[String]> {
        self.folders.get(folder).map(Vec::as_slice)
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>, depth: u32) -> std::io::Result<()> {
    if depth > 8 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        if out.len() >= MAX_MODEL_FILES {
            break;
        }
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let ty = entry.file_type()?;
        if ty.is_dir() {
            walk(&entry.path(), &rel, out, depth + 1)?;
        } else if MODEL_EXTENSIONS.iter().any(|e| name.ends_with(e)) {
            out.push(rel);
        }
    }
    Ok(())
}

/// The node catalog served at `/object_info`.
///
/// Nodes the simulator did not change are served from the recorded text
/// itself, so numbers JSON cannot hold exactly in an `i64`/`u64`/`f64`
/// (`-18446744073709551615`) come out as Python wrote them.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    nodes: Map<String, Value>,
    /// Recorded text per node, `None` where the simulator changed the node.
    raw: Vec<(String, Option<Box<RawValue>>)>,
}

/// The recorded catalog split into its nodes' raw texts, in order.
struct RawNodes(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for RawNodes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawNodes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of node definitions")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawNodes, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Box<RawValue>>()? {
                    out.push((k, v));
                }
                Ok(RawNodes(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl Catalog {
    /// The recorded catalog with its model lists rewritten for `models`,
    /// plus the `extra` classes (replacing recorded ones of the same name).
    pub(crate) fn new(models: &Models, extra: &Map<String, Value>) -> Self {
        let raw = serde_json::from_str::<RawNodes>(OBJECT_INFO)
            .map(|r| r.0)
            .unwrap_or_default();
        let mut nodes = Map::new();
        let mut served = Vec::with_capacity(raw.len());
        for (class, text) in raw {
            let Ok(mut node) = serde_json::from_str::<Value>(text.get()) else {
                continue;
            };
            let mut changed = false;
            for (folder, recorded) in RECORDED_MODELS {
                let ours = models.files(folder).unwrap_or_default();
                for_each_combo(&mut node, |options| {
                    let n = recorded.len();
                    if options.len() >= n
                        && options
                            .iter()
                            .take(n)
                            .zip(recorded.iter())
                            .all(|(a, b)| a.as_str() == Some(*b))
                    {
                        let rest: Vec<Value> = options.drain(n..).collect();
                        let before = options.clone();
                        options.clear();
                        options.extend(ours.iter().cloned().map(Value::String));
                        options.extend(rest);
                        changed |= *options != before;
                    }
                });
            }
            let keep = !changed && class != "LoadImage";
            served.push((class.clone(), keep.then_some(text)));
            nodes.insert(class, node);
        }
        for (class, node) in extra.iter().filter(|(_, n)| n.is_object()) {
            served.retain(|(c, _)| c != class);
            served.push((class.clone(), None));
            nodes.insert(class.clone(), node.clone());
        }
        Self { nodes, raw: served }
    }

    /// One node's definition.
    pub(crate) fn node(&self, class: &str) -> Option<&Value> {
        self.nodes.get(class)
    }

    /// The whole catalog as Python-formatted JSON text, with `LoadImage`'s
    /// list set to `input_files`.
    pub(crate) fn all_text(&self, input_files: &[String]) -> String {
        let mut out = String::with_capacity(OBJECT_INFO.len() + 1024);
        out.push('{');
        for (i, (class, raw)) in self.raw.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&crate::pyjson::to_string(class));
            out.push_str(": ");
            self.push_node(&mut out, class, raw.as_deref(), input_files);
        }
        out.push('}');
        out
    }

    /// `{class: definition}` for `/object_info/{class}` as Python-formatted
    /// text, or `{}` for an unknown class.
    pub(crate) fn one_text(&self, class: &str, input_files: &[String]) -> String {
        let Some((_, raw)) = self.raw.iter().find(|(c, _)| c == class) else {
            return "{}".to_owned();
        };
        let mut out = format!("{{{}: ", crate::pyjson::to_string(class));
        self.push_node(&mut out, class, raw.as_deref(), input_files);
        out.push('}');
        out
    }

    fn push_node(&self, out: &mut String, class: &str, raw: Option<&RawValue>, input_files: &[String]) {
        if let Some(text) = raw {
            out.push_str(text.get());
        } else {
            let mut node = self.nodes.get(class).cloned().unwrap_or(Value::Null);
            if class == "LoadImage" {
                set_image_list(&mut node, input_files);
            }
            out.push_str(&crate::pyjson::to_string(&node));
        }
    }
}

fn set_image_list(node: &mut Value, files: &[String]) {
    if let Some(Value::Array(spec)) = node.pointer_mut("/input/required/image")
        && let Some(Value::Array(opts)) = spec.first_mut()
    {
        *opts = files.iter().cloned().map(Value::String).collect();
    }
}

/// Calls `f` on the option list of every combo input of `node`, in both the
/// classic (`[[options], {...}]`) and the `COMBO` (`["COMBO", {"options"}]`)
/// spellings.
fn for_each_combo(node: &mut Value, mut f: impl FnMut(&mut Vec<Value>)) {
    for section in ["required", "optional"] {
        let Some(Value::Object(inputs)) = node.pointer_mut(&format!("/input/{section}")) else {
            continue;
        };
        for spec in inputs.values_mut() {
            let Value::Array(spec) = spec else { continue };
            match spec.as_mut_slice() {
                [Value::Array(opts), ..] => f(opts),
                [Value::String(t), Value::Object(cfg), ..] if t == "COMBO" => {
                    if let Some(Value::Array(opts)) = cfg.get_mut("options") {
                        f(opts);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The option list of a combo input spec, if it is one.
pub(crate) fn combo_options(spec: &Value) -> Option<&Vec<Value>> {
    match spec.as_array()?.as_slice() {
        [Value::Array(opts), ..] => Some(opts),
        [Value::String(t), Value::Object(cfg), ..] if t == "COMBO" => cfg.get("options")?.as_array(),
        _ => None,
    }
}
