//! The 14 built-in templates, with the Python server's names, graphs and
//! parameters (`data/templates.json`), built from parameters into a
//! [`Workflow`].
//!
//! Three graphs differ from the Python server's, because its versions
//! cannot run (see `docs/custom-node-templates.md`): `txt2vid_wan` uses
//! ComfyUI core's Wan support instead of two node classes that exist in no
//! pack, `ip_adapter` uses `IPAdapterAdvanced` (the current pack no longer
//! has `IPAdapterApply`, whose required inputs the old graph also missed),
//! and `face_restore` sets `facedetection` and `codeformer_fidelity` as the
//! pack names them.

use serde_json::{Map, Value};

use crate::{Limits, Workflow};

const DATA: &str = include_str!("../data/templates.json");

/// A built-in template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// Its name (`txt2img`, `controlnet_canny`, ...).
    pub name: &'static str,
    /// What it makes.
    pub description: &'static str,
    /// Custom node packs it needs beyond ComfyUI core.
    pub custom_nodes: &'static [&'static str],
}

/// Every template, in the Python server's order.
pub const TEMPLATES: &[Template] = &[
    Template {
        name: "txt2img",
        description: "Text to image with a Stable Diffusion 1.5 checkpoint.",
        custom_nodes: &[],
    },
    Template {
        name: "img2img",
        description: "Image to image: re-sample an input image guided by a prompt.",
        custom_nodes: &[],
    },
    Template {
        name: "upscale",
        description: "Upscale an image with an upscale model.",
        custom_nodes: &[],
    },
    Template {
        name: "inpaint",
        description: "Repaint the masked part of an image.",
        custom_nodes: &[],
    },
    Template {
        name: "txt2vid_animatediff",
        description: "Text to animation with an AnimateDiff motion module.",
        custom_nodes: &["ComfyUI-AnimateDiff-Evolved"],
    },
    Template {
        name: "txt2vid_wan",
        description: "Text to video with a Wan 2.1 model (ComfyUI core nodes).",
        custom_nodes: &[],
    },
    Template {
        name: "controlnet_canny",
        description: "Text to image following the edges of a reference image.",
        custom_nodes: &["comfyui_controlnet_aux"],
    },
    Template {
        name: "controlnet_depth",
        description: "Text to image following the depth of a reference image.",
        custom_nodes: &["comfyui_controlnet_aux"],
    },
    Template {
        name: "controlnet_openpose",
        description: "Text to image following the pose in a reference image.",
        custom_nodes: &["comfyui_controlnet_aux"],
    },
    Template {
        name: "ip_adapter",
        description: "Text to image in the style of a reference image (IP-Adapter).",
        custom_nodes: &["ComfyUI_IPAdapter_plus"],
    },
    Template {
        name: "lora_stack",
        description: "Text to image with two LoRAs applied.",
        custom_nodes: &[],
    },
    Template {
        name: "face_restore",
        description: "Upscale an image and restore its faces.",
        custom_nodes: &["facerestore_cf"],
    },
    Template {
        name: "flux_txt2img",
        description: "Text to image with a FLUX.1 checkpoint.",
        custom_nodes: &[],
    },
    Template {
        name: "sdxl_txt2img",
        description: "Text to image with an SDXL checkpoint.",
        custom_nodes: &[],
    },
];

/// How a parameter is applied: to which input of which node classes, and
/// what kind of value it takes.
struct Param {
    name: &'static str,
    targets: &'static [(&'static str, &'static str)],
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Number,
}

/// The Python server's parameter mapping; `prompt` and `negative_prompt`
/// are special: the first and second `CLIPTextEncode` in node order.
const PARAMS: &[Param] = &[
    Param {
        name: "width",
        targets: &[
            ("EmptyLatentImage", "width"),
            ("WanTextToVideo", "width"),
            ("EmptyHunyuanLatentVideo", "width"),
        ],
        kind: Kind::Int,
    },
    Param {
        name: "height",
        targets: &[
            ("EmptyLatentImage", "height"),
            ("WanTextToVideo", "height"),
            ("EmptyHunyuanLatentVideo", "height"),
        ],
        kind: Kind::Int,
    },
    Param {
        name: "steps",
        targets: &[("KSampler", "steps"), ("WanTextToVideo", "steps")],
        kind: Kind::Int,
    },
    Param {
        name: "cfg",
        targets: &[("KSampler", "cfg"), ("WanTextToVideo", "cfg")],
        kind: Kind::Number,
    },
    Param {
        name: "seed",
        targets: &[("KSampler", "seed"), ("WanTextToVideo", "seed")],
        kind: Kind::Int,
    },
    Param {
        name: "denoise",
        targets: &[("KSampler", "denoise")],
        kind: Kind::Number,
    },
    Param {
        name: "sampler_name",
        targets: &[("KSampler", "sampler_name")],
        kind: Kind::Text,
    },
    Param {
        name: "scheduler",
        targets: &[("KSampler", "scheduler")],
        kind: Kind::Text,
    },
    Param {
        name: "model",
        targets: &[("CheckpointLoaderSimple", "ckpt_name"), ("UNETLoader", "unet_name")],
        kind: Kind::Text,
    },
    Param {
        name: "model_name",
        targets: &[("UpscaleModelLoader", "model_name")],
        kind: Kind::Text,
    },
    Param {
        name: "motion_module",
        targets: &[("ADE_AnimateDiffLoaderWithContext", "model_name")],
        kind: Kind::Text,
    },
    Param {
        name: "frames",
        targets: &[
            ("EmptyLatentImage", "batch_size"),
            ("WanTextToVideo", "num_frames"),
            ("EmptyHunyuanLatentVideo", "length"),
        ],
        kind: Kind::Int,
    },
    Param {
        name: "image",
        targets: &[("LoadImage", "image")],
        kind: Kind::Text,
    },
    Param {
        name: "mask",
        targets: &[("LoadImageMask", "image")],
        kind: Kind::Text,
    },
    Param {
        name: "fps",
        targets: &[("SaveAnimatedWEBP", "fps")],
        kind: Kind::Number,
    },
    Param {
        name: "controlnet_model",
        targets: &[("ControlNetLoader", "control_net_name")],
        kind: Kind::Text,
    },
    Param {
        name: "control_strength",
        targets: &[("ControlNetApplyAdvanced", "strength")],
        kind: Kind::Number,
    },
    Param {
        name: "ipadapter_model",
        targets: &[("IPAdapterModelLoader", "ipadapter_file")],
        kind: Kind::Text,
    },
    Param {
        name: "ipadapter_weight",
        targets: &[("IPAdapterApply", "weight"), ("IPAdapterAdvanced", "weight")],
        kind: Kind::Number,
    },
    Param {
        name: "clip_vision_model",
        targets: &[("CLIPVisionLoader", "clip_name")],
        kind: Kind::Text,
    },
    Param {
        name: "lora_name",
        targets: &[("LoraLoader", "lora_name")],
        kind: Kind::Text,
    },
    Param {
        name: "lora_strength",
        targets: &[("LoraLoader", "strength_model"), ("LoraLoader", "strength_clip")],
        kind: Kind::Number,
    },
    Param {
        name: "face_restore_model",
        targets: &[("FaceRestoreModelLoader", "model_name")],
        kind: Kind::Text,
    },
    Param {
        name: "face_restore_fidelity",
        targets: &[
            ("FaceRestoreCFWithModel", "fidelity"),
            ("FaceRestoreCFWithModel", "codeformer_fidelity"),
        ],
        kind: Kind::Number,
    },
];

/// Every parameter name a template understands.
pub fn parameter_names() -> Vec<&'static str> {
    let mut names = vec!["prompt", "negative_prompt"];
    names.extend(PARAMS.iter().map(|p| p.name));
    names
}

/// Why a template could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// No template has that name.
    #[error("unknown template `{name}`; available: {}", TEMPLATES.iter().map(|t| t.name).collect::<Vec<_>>().join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// A parameter value of the wrong kind.
    #[error("parameter `{name}` must be {expected}, got {value}")]
    BadValue {
        /// The parameter.
        name: String,
        /// What it takes.
        expected: &'static str,
        /// What was given.
        value: Value,
    },
}

/// A built template.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// The workflow.
    pub workflow: Workflow,
    /// Parameters that no node of this template takes (ignored, as the
    /// Python server ignores them; worth telling the caller).
    pub unused: Vec<String>,
}

/// The template called `name`.
pub fn find(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

/// The template's default graph, unchanged.
///
/// # Errors
/// [`TemplateError::Unknown`].
pub fn default_graph(name: &str) -> Result<Workflow, TemplateError> {
    graphs()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, wf)| wf.clone())
        .ok_or_else(|| TemplateError::Unknown { name: name.to_owned() })
}

/// Every template's default graph, read from the embedded data once per
/// process (a tool builds templates many times; the data never changes).
/// A template whose data does not parse is left out, so it reads as
/// unknown, as before; the crate's tests build every template.
fn graphs() -> &'static [(&'static str, Workflow)] {
    static GRAPHS: std::sync::OnceLock<Vec<(&'static str, Workflow)>> = std::sync::OnceLock::new();
    GRAPHS.get_or_init(|| {
        let all: Value = serde_json::from_str(DATA).unwrap_or(Value::Null);
        TEMPLATES
            .iter()
            .filter_map(|t| {
                let graph = all.get(t.name)?.clone();
                Some((t.name, Workflow::from_value(graph, &Limits::DEFAULT).ok()?))
            })
            .collect()
    })
}

fn check(name: &str, kind: Kind, v: &Value) -> Result<(), TemplateError> {
    let ok = match kind {
        Kind::Text => v.is_string(),
        Kind::Int => v.is_i64() || v.is_u64(),
        Kind::Number => v.is_number(),
    };
    if ok {
        return Ok(());
    }
    let expected = match kind {
        Kind::Text => "a string",
        Kind::Int => "an integer",
        Kind::Number => "a number",
    };
    Err(TemplateError::BadValue {
        name: name.to_owned(),
        expected,
        value: v.clone(),
    })
}

/// Builds template `name` with `params` applied: each parameter sets its
/// input on every node of the classes it maps to; `prompt` and
/// `negative_prompt` set the first and second `CLIPTextEncode`.
///
/// # Errors
/// [`TemplateError::Unknown`] or [`TemplateError::BadValue`].
///
/// # Examples
/// ```
/// use comfy_workflow::template;
/// let params = serde_json::json!({"prompt": "a castle", "width": 768, "seed": 42});
/// let built = template::build("txt2img", params.as_object().unwrap()).unwrap();
/// let wf = built.workflow;
/// assert_eq!(wf.node("3").unwrap().value("text"), Some(&serde_json::json!("a castle")));
/// assert_eq!(wf.node("2").unwrap().value("width"), Some(&serde_json::json!(768)));
/// assert!(built.unused.is_empty());
/// ```
pub fn build(name: &str, params: &Map<String, Value>) -> Result<Built, TemplateError> {
    let mut wf = default_graph(name)?;
    let mut unused = Vec::new();
    for (key, value) in params {
        let mut used = false;
        if let Some(nth) = match key.as_str() {
            "prompt" => Some(0),
            "negative_prompt" => Some(1),
            _ => None,
        } {
            check(key, Kind::Text, value)?;
            let target = wf
                .nodes()
                .iter()
                .filter(|n| n.class_type == "CLIPTextEncode")
                .nth(nth)
                .map(|n| n.id.clone());
            if let Some(node) = target.and_then(|id| wf.node_mut(id.as_str())) {
                node.set_input("text", crate::Input::Value(value.clone()));
                used = true;
            }
        } else if let Some(param) = PARAMS.iter().find(|p| p.name == key) {
            check(key, param.kind, value)?;
            let ids: Vec<_> = wf.nodes().iter().map(|n| n.id.clone()).collect();
            for id in ids {
                let Some(node) = wf.node_mut(id.as_str()) else { continue };
                for (class, input) in param.targets {
                    if node.class_type == *class && node.input(input).is_some() {
                        node.set_input(*input, crate::Input::Value(value.clone()));
                        used = true;
                    }
                }
            }
        }
        if !used {
            unused.push(key.clone());
        }
    }
    Ok(Built { workflow: wf, unused })
}
