//! What a workflow does: its models, key parameters, pipeline kind, prompt
//! nodes and flow. The text and Mermaid summaries are built from this one
//! analysis, so they never disagree.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::{Input, Node, NodeId, ObjectInfo, SmolStr, Workflow};

type FastSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Loader inputs that name a model file, and the model folder each reads.
pub const MODEL_INPUTS: &[(&str, &str, &str)] = &[
    ("CheckpointLoaderSimple", "ckpt_name", "checkpoints"),
    ("CheckpointLoader", "ckpt_name", "checkpoints"),
    ("ImageOnlyCheckpointLoader", "ckpt_name", "checkpoints"),
    ("unCLIPCheckpointLoader", "ckpt_name", "checkpoints"),
    ("LoraLoader", "lora_name", "loras"),
    ("LoraLoaderModelOnly", "lora_name", "loras"),
    ("VAELoader", "vae_name", "vae"),
    ("ControlNetLoader", "control_net_name", "controlnet"),
    ("DiffControlNetLoader", "control_net_name", "controlnet"),
    ("UpscaleModelLoader", "model_name", "upscale_models"),
    ("CLIPLoader", "clip_name", "text_encoders"),
    ("DualCLIPLoader", "clip_name1", "text_encoders"),
    ("DualCLIPLoader", "clip_name2", "text_encoders"),
    ("TripleCLIPLoader", "clip_name1", "text_encoders"),
    ("TripleCLIPLoader", "clip_name2", "text_encoders"),
    ("TripleCLIPLoader", "clip_name3", "text_encoders"),
    ("UNETLoader", "unet_name", "diffusion_models"),
    ("CLIPVisionLoader", "clip_name", "clip_vision"),
    ("StyleModelLoader", "style_model_name", "style_models"),
    ("GLIGENLoader", "gligen_name", "gligen"),
    ("HypernetworkLoader", "hypernetwork_name", "hypernetworks"),
    ("PhotoMakerLoader", "photomaker_model_name", "photomaker"),
    ("IPAdapterModelLoader", "ipadapter_file", "ipadapter"),
    ("ADE_AnimateDiffLoaderWithContext", "model_name", "animatediff_models"),
    ("FaceRestoreModelLoader", "model_name", "facerestore_models"),
    ("DownloadAndLoadWanModel", "model", "diffusion_models"),
];

/// A model file a workflow uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelRef {
    /// The file name as written in the workflow.
    pub name: String,
    /// The model folder it is read from (`checkpoints`, `loras`, ...).
    pub folder: String,
    /// The loader node.
    pub node: NodeId,
    /// The loader's class.
    pub loader: SmolStr,
}

/// The sampling parameters that matter to a person reading the workflow.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Parameters {
    /// Image width.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<Value>,
    /// Image height.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<Value>,
    /// Sampling steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Value>,
    /// Classifier-free guidance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cfg: Option<Value>,
    /// Sampler name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampler: Option<Value>,
    /// Scheduler name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<Value>,
    /// Seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<Value>,
    /// Denoise strength.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denoise: Option<Value>,
}

impl Parameters {
    /// The parameters that are set, as `(name, value)` in a fixed order.
    pub fn pairs(&self) -> Vec<(&'static str, &Value)> {
        let all = [
            ("width", &self.width),
            ("height", &self.height),
            ("steps", &self.steps),
            ("cfg", &self.cfg),
            ("sampler", &self.sampler),
            ("scheduler", &self.scheduler),
            ("seed", &self.seed),
            ("denoise", &self.denoise),
        ];
        all.into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect()
    }
}

/// One step of the flow, in execution order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The node.
    pub node_id: NodeId,
    /// Its class.
    pub class_type: SmolStr,
    /// Its title, else the server's display name, else the class.
    pub display_name: SmolStr,
    /// A short subtitle (`512x512`, `steps=20, cfg=7`, a model name, the
    /// start of a prompt), when one says something.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The analysis of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// Number of nodes.
    pub node_count: usize,
    /// Distinct classes, in flow order.
    pub class_types: Vec<SmolStr>,
    /// How many nodes of each class.
    pub class_counts: BTreeMap<SmolStr, usize>,
    /// The nodes in execution order (document order when there is a cycle).
    pub flow: Vec<Step>,
    /// Whether the links form a cycle.
    pub has_cycle: bool,
    /// Model files used.
    pub models: Vec<ModelRef>,
    /// Key sampling parameters (from the last sampler and latent source in
    /// flow order).
    pub parameters: Parameters,
    /// The main kind: `txt2img`, `img2img`, `inpaint`, `video`, `upscale`
    /// or `unknown`, with ` -> upscale` when an upscale follows.
    pub pipeline: String,
    /// Other features: `controlnet`, `ip_adapter`, `lora`, `face_restore`,
    /// `upscale`.
    pub features: Vec<String>,
    /// Text-encoder nodes feeding a sampler's `positive`.
    pub prompt_nodes: Vec<NodeId>,
    /// Text-encoder nodes feeding a sampler's `negative`.
    pub negative_nodes: Vec<NodeId>,
    /// Output nodes (when a catalog is given, its output nodes; otherwise
    /// `Save*`/`Preview*` classes).
    pub output_nodes: Vec<NodeId>,
}

fn is_sampler(class: &str) -> bool {
    class.starts_with("KSampler") || class.starts_with("SamplerCustom") || class == "WanTextToVideo"
}

fn is_text_encoder(node: &Node) -> bool {
    node.class_type.contains("TextEncode")
        || (node.class_type.contains("Encode") && matches!(node.value("text"), Some(Value::String(_))))
}

/// Display text of a JSON value (strings without quotes).
pub(crate) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The model files `nodes` name, in the order given.
fn models_of<'a>(nodes: impl Iterator<Item = &'a Node>) -> Vec<ModelRef> {
    let mut models = Vec::new();
    for n in nodes {
        for (class, input, folder) in MODEL_INPUTS {
            // Compared by length first: cheaper than searching each class
            // name for "Load".
            if n.class_type == *class
                && let Some(Value::String(name)) = n.value(input)
            {
                models.push(ModelRef {
                    name: name.clone(),
                    folder: (*folder).to_owned(),
                    node: n.id.clone(),
                    loader: n.class_type.clone(),
                });
            }
        }
    }
    models
}

/// What [`Workflow::analyze`] knows of each distinct class: its count,
/// display name and whether it is an output node.
struct Class {
    count: usize,
    display_name: SmolStr,
    output: bool,
}

impl Workflow {
    /// The model files the workflow's loaders name, in execution order
    /// (document order when there is a cycle): [`Analysis::models`]
    /// without the rest of the analysis.
    ///
    /// # Examples
    /// ```
    /// use comfy_workflow::{Limits, Workflow};
    /// let wf = Workflow::from_json(
    ///     br#"{"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}}}"#,
    ///     &Limits::DEFAULT,
    /// ).unwrap();
    /// let models = wf.models();
    /// assert_eq!((models[0].name.as_str(), models[0].folder.as_str()), ("sd15.safetensors", "checkpoints"));
    /// ```
    pub fn models(&self) -> Vec<ModelRef> {
        let nodes = self.nodes();
        match self.order_positions() {
            Ok(order) => models_of(order.iter().map(|&i| &nodes[i])),
            Err(_) => models_of(nodes.iter()),
        }
    }

    /// [`Analysis::pipeline`] and [`Analysis::features`] without the rest
    /// of the analysis: they depend only on which classes are present.
    ///
    /// # Examples
    /// ```
    /// use comfy_workflow::{Limits, Workflow};
    /// let wf = Workflow::from_json(br#"{"1": {"class_type": "UpscaleModelLoader", "inputs": {}}}"#, &Limits::DEFAULT).unwrap();
    /// assert_eq!(wf.pipeline(), ("upscale".to_owned(), vec!["upscale".to_owned()]));
    /// ```
    pub fn pipeline(&self) -> (String, Vec<String>) {
        let mut seen: FastSet<&str> = FastSet::default();
        let distinct: Vec<&str> = self
            .nodes()
            .iter()
            .map(|n| n.class_type.as_str())
            .filter(|c| seen.insert(c))
            .collect();
        pipeline(&distinct)
    }

    /// Analyses the workflow; `info`, when given, supplies display names and
    /// output nodes.
    pub fn analyze(&self, info: Option<&ObjectInfo>) -> Analysis {
        let nodes = self.nodes();
        let (ordered, has_cycle): (Vec<&Node>, bool) = match self.order_positions() {
            Ok(order) => (order.iter().map(|&i| &nodes[i]).collect(), false),
            Err(_) => (nodes.iter().collect(), true),
        };
        // What is known of each distinct class, judged once.
        let mut classes: FastMap<&str, Class> = FastMap::default();
        let mut class_types = Vec::new();
        for n in &ordered {
            if let Some(c) = classes.get_mut(n.class_type.as_str()) {
                c.count += 1;
                continue;
            }
            let def = info.and_then(|i| i.node(&n.class_type));
            classes.insert(
                &n.class_type,
                Class {
                    count: 1,
                    display_name: def.map_or_else(|| n.class_type.clone(), |d| SmolStr::new(&d.display_name)),
                    output: match def {
                        Some(def) => def.output_node,
                        None => n.class_type.starts_with("Save") || n.class_type.starts_with("Preview"),
                    },
                },
            );
            class_types.push(n.class_type.clone());
        }
        let class_counts: BTreeMap<SmolStr, usize> = class_types
            .iter()
            .map(|c| (c.clone(), classes.get(c.as_str()).map_or(0, |k| k.count)))
            .collect();
        let class = |n: &Node| classes.get(n.class_type.as_str());
        let models = models_of(ordered.iter().copied());
        let mut parameters = Parameters::default();
        for n in &ordered {
            let v = |k: &str| n.value(k).cloned();
            if is_sampler(&n.class_type) {
                parameters.steps = v("steps").or(parameters.steps);
                parameters.cfg = v("cfg").or(parameters.cfg);
                parameters.sampler = v("sampler_name").or(parameters.sampler);
                parameters.scheduler = v("scheduler").or(parameters.scheduler);
                parameters.seed = v("seed").or_else(|| v("noise_seed")).or(parameters.seed);
                parameters.denoise = v("denoise").or(parameters.denoise);
            }
            if n.class_type.starts_with("Empty") && n.class_type.contains("Latent") || n.class_type == "WanTextToVideo"
            {
                parameters.width = v("width").or(parameters.width);
                parameters.height = v("height").or(parameters.height);
            }
        }
        let (mut prompt_nodes, mut negative_nodes) = (Vec::new(), Vec::new());
        let (mut seen_prompt, mut seen_negative) = (FastSet::default(), FastSet::default());
        for n in ordered.iter().filter(|n| is_sampler(&n.class_type)) {
            for (input, list, seen) in [
                ("positive", &mut prompt_nodes, &mut seen_prompt),
                ("negative", &mut negative_nodes, &mut seen_negative),
            ] {
                if let Some(Input::Link(link)) = n.input(input) {
                    for id in self.encoders_behind(&link.node, link.output) {
                        if seen.insert(id.clone()) {
                            list.push(id);
                        }
                    }
                }
            }
        }
        let output_nodes = ordered
            .iter()
            .filter(|n| class(n).is_some_and(|c| c.output))
            .map(|n| n.id.clone())
            .collect();
        let distinct: Vec<&str> = class_types.iter().map(SmolStr::as_str).collect();
        let (pipeline, features) = pipeline(&distinct);
        let flow = ordered
            .iter()
            .map(|n| Step {
                node_id: n.id.clone(),
                class_type: n.class_type.clone(),
                display_name: n.title().map_or_else(
                    || class(n).map_or_else(|| n.class_type.clone(), |c| c.display_name.clone()),
                    SmolStr::new,
                ),
                detail: detail(n),
            })
            .collect();
        Analysis {
            node_count: self.len(),
            class_types,
            class_counts,
            flow,
            has_cycle,
            models,
            parameters,
            pipeline,
            features,
            prompt_nodes,
            negative_nodes,
            output_nodes,
        }
    }

    /// The text encoders whose conditioning reaches output `output` of
    /// `start`, following conditioning links back (combine, concat,
    /// ControlNet apply, ...). A node with both `positive` and `negative`
    /// inputs passes output 0 from `positive` and output 1 from `negative`.
    fn encoders_behind(&self, start: &NodeId, output: u32) -> Vec<NodeId> {
        const CONDITIONING: &[&str] = &[
            "conditioning",
            "conditioning_1",
            "conditioning_2",
            "conditioning_to",
            "conditioning_from",
            "positive",
            "negative",
        ];
        let mut out = Vec::new();
        let mut stack = vec![(start.clone(), output)];
        let mut seen = FastSet::default();
        while let Some((id, output)) = stack.pop() {
            if !seen.insert((id.clone(), output)) || seen.len() > 2 * self.len() + 2 {
                continue;
            }
            let Some(node) = self.node(id.as_str()) else { continue };
            if is_text_encoder(node) {
                if !out.contains(&id) {
                    out.push(id);
                }
                continue;
            }
            let paired = node.input("positive").is_some() && node.input("negative").is_some();
            for (name, link) in node.links() {
                let follow = match (paired, name, output) {
                    (true, "positive", 0) | (true, "negative", 1) => true,
                    (true, "positive" | "negative", _) => false,
                    _ => CONDITIONING.contains(&name),
                };
                if follow {
                    stack.push((link.node.clone(), link.output));
                }
            }
        }
        out.sort();
        out
    }
}

fn detail(n: &Node) -> Option<String> {
    use std::fmt::Write as _;
    // Written into one string, without a copy of each value first.
    fn put(out: &mut String, v: &Value) {
        match v {
            Value::String(s) => out.push_str(s),
            other => {
                let _ = write!(out, "{other}");
            }
        }
    }
    let mut out = String::new();
    if n.class_type.starts_with("Empty") && n.class_type.contains("Latent") {
        let (w, h) = (n.value("width")?, n.value("height")?);
        put(&mut out, w);
        out.push('x');
        put(&mut out, h);
        return Some(out);
    }
    if is_sampler(&n.class_type) {
        out.push_str("steps=");
        put(&mut out, n.value("steps")?);
        if let Some(cfg) = n.value("cfg") {
            out.push_str(", cfg=");
            put(&mut out, cfg);
        }
        return Some(out);
    }
    if let Some((_, input, _)) = MODEL_INPUTS.iter().find(|(c, _, _)| *c == n.class_type) {
        put(&mut out, n.value(input)?);
        return Some(out);
    }
    if is_text_encoder(n) {
        // The text (or the value's display), cut at 45 characters.
        let text: std::borrow::Cow<'_, str> = match n.value("text")? {
            Value::String(s) => s.as_str().into(),
            other => other.to_string().into(),
        };
        match text.char_indices().nth(45) {
            Some((cut, _)) => {
                out.push_str(&text[..cut]);
                out.push_str("...");
            }
            None => out.push_str(&text),
        }
        return Some(out);
    }
    None
}

/// The pipeline kind and features of a workflow with these distinct
/// classes.
fn pipeline(classes: &[&str]) -> (String, Vec<String>) {
    let has = |pred: &dyn Fn(&str) -> bool| classes.iter().any(|c| pred(c));
    let video = has(&|c| {
        c.contains("Video")
            || c.contains("AnimateDiff")
            || c.starts_with("ADE_")
            || c.contains("Wan")
            || c == "SaveAnimatedWEBP"
            || c == "SaveAnimatedPNG"
    });
    let inpaint = has(&|c| {
        matches!(
            c,
            "VAEEncodeForInpaint" | "InpaintModelConditioning" | "SetLatentNoiseMask" | "LoadImageMask"
        )
    });
    let img2img = has(&|c| matches!(c, "LoadImage" | "LoadImageOutput")) && has(&|c| c.starts_with("VAEEncode"));
    let txt2img = has(&|c| c.starts_with("Empty") && c.contains("Latent"));
    let upscale = has(&|c| c.contains("Upscale"));
    let sampler = has(&|c| is_sampler(c));
    let primary = if video {
        "video"
    } else if inpaint {
        "inpaint"
    } else if img2img {
        "img2img"
    } else if txt2img && sampler {
        "txt2img"
    } else if upscale {
        "upscale"
    } else {
        "unknown"
    };
    let mut pipeline = primary.to_owned();
    if upscale && primary != "upscale" {
        pipeline.push_str(" -> upscale");
    }
    let mut features = Vec::new();
    for (name, present) in [
        ("controlnet", has(&|c| c.contains("ControlNet"))),
        ("ip_adapter", has(&|c| c.starts_with("IPAdapter"))),
        (
            "lora",
            has(&|c| c.starts_with("Lora") || c.starts_with("CreateHookLora")),
        ),
        ("face_restore", has(&|c| c.contains("FaceRestore"))),
        ("upscale", upscale),
    ] {
        if present {
            features.push(name.to_owned());
        }
    }
    (pipeline, features)
}
