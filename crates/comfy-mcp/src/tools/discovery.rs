//! Discovery that fits a context window.
//!
//! ComfyUI's `/object_info` describes every node class with every input's
//! options and tooltips: megabytes on a server with a few node packs, far
//! more than an assistant can read. Two tools give it out in pieces:
//!
//! - `comfyui_list_nodes` filters classes (`category`, `name`,
//!   `input_type`, `output_type`, `pack`) and, with `fields`, returns a
//!   few chosen facts per class instead of the bare name (the peer's
//!   answer, still the default);
//! - `comfyui_get_node_info` returns a compact summary by default (inputs
//!   with their types, defaults, ranges and up to [`MAX_OPTIONS`] choices;
//!   outputs), and the entry exactly as ComfyUI gives it with `raw: true`.
//!
//! Everything here is a pure function of one `/object_info` entry.

use serde_json::{Map, Value, json};

use super::impls::{Args, ToolError, str_arg};

/// The most choices a summarised combo input lists (the rest are counted).
pub(super) const MAX_OPTIONS: usize = 100;

/// The facts `fields` may ask for, per class.
pub(super) const FIELDS: &[&str] = &[
    "display_name",
    "category",
    "description",
    "pack",
    "input_types",
    "output_types",
    "output_node",
    "deprecated",
    "experimental",
    "api_node",
    "service",
];

/// The node pack a class comes from, from its `python_module`:
/// `comfy_core` for ComfyUI's own nodes (`nodes`, `comfy_extras.*`),
/// `comfy_api_nodes` for its paid API nodes, and the folder name under
/// `custom_nodes/` for a custom pack.
pub(super) fn pack_of(info: &Value) -> String {
    let module = info.get("python_module").and_then(Value::as_str).unwrap_or_default();
    let mut parts = module.split('.');
    match parts.next().unwrap_or_default() {
        "nodes" | "comfy_extras" | "" => "comfy_core".to_owned(),
        "custom_nodes" => parts.next().unwrap_or("custom_nodes").to_owned(),
        other => other.to_owned(),
    }
}

/// Whether ComfyUI marks the class as a paid API node (`api_node: true`).
pub(super) fn is_api_node(info: &Value) -> bool {
    info.get("api_node").and_then(Value::as_bool) == Some(true)
}

/// The outside service an API node calls (as the inspector names it), or
/// `None` for a class that is not one.
pub(super) fn service_of(class: &str, info: &Value) -> Option<String> {
    if !is_api_node(info) {
        return None;
    }
    let text = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let def = comfy_workflow::object_info::NodeDef {
        name: class.to_owned(),
        display_name: text("display_name"),
        category: text("category"),
        inputs: Vec::new(),
        outputs: Vec::new(),
        output_node: false,
        python_module: text("python_module"),
        api_node: true,
    };
    Some(comfy_guard::inspect::api_nodes::service(&def))
}

/// An input's type: the type name, or `COMBO` for a list of choices.
fn input_type(spec: &Value) -> Option<&str> {
    match spec.get(0)? {
        Value::String(t) => Some(t),
        Value::Array(_) => Some("COMBO"),
        _ => None,
    }
}

/// The declared inputs of a class: `(name, spec, required)`, required
/// first, in `input_order` when the entry has one. Hidden inputs are the
/// server's business and are left out.
fn inputs(info: &Value) -> Vec<(&str, &Value, bool)> {
    let mut out = Vec::new();
    for (section, required) in [("required", true), ("optional", false)] {
        let Some(map) = info.pointer(&format!("/input/{section}")).and_then(Value::as_object) else {
            continue;
        };
        let order: Vec<&str> = info
            .pointer(&format!("/input_order/{section}"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut names: Vec<&str> = order.into_iter().filter(|n| map.contains_key(*n)).collect();
        for k in map.keys() {
            if !names.contains(&k.as_str()) {
                names.push(k);
            }
        }
        for name in names {
            if let Some(spec) = map.get(name) {
                out.push((name, spec, required));
            }
        }
    }
    out
}

fn input_types(info: &Value) -> Vec<String> {
    let mut types: Vec<String> = Vec::new();
    for (_, spec, _) in inputs(info) {
        if let Some(t) = input_type(spec)
            && !types.iter().any(|x| x == t)
        {
            types.push(t.to_owned());
        }
    }
    types
}

fn output_types(info: &Value) -> Vec<String> {
    let mut types: Vec<String> = Vec::new();
    for t in info.get("output").and_then(Value::as_array).into_iter().flatten() {
        let t = match t {
            Value::String(s) => s.as_str(),
            Value::Array(_) => "COMBO",
            _ => continue,
        };
        if !types.iter().any(|x| x == t) {
            types.push(t.to_owned());
        }
    }
    types
}

/// One fact about a class, for `fields`.
fn field(class: &str, info: &Value, name: &str) -> Value {
    match name {
        "display_name" => info.get("display_name").cloned().unwrap_or_else(|| Value::from(class)),
        "pack" => Value::from(pack_of(info)),
        "input_types" => Value::from(input_types(info)),
        "output_types" => Value::from(output_types(info)),
        "api_node" => Value::Bool(is_api_node(info)),
        "service" => service_of(class, info).map_or(Value::Null, Value::from),
        "output_node" | "deprecated" | "experimental" => {
            Value::Bool(info.get(name).and_then(Value::as_bool).unwrap_or(false))
        }
        _ => info.get(name).cloned().unwrap_or(Value::Null),
    }
}

/// The filters of a `comfyui_list_nodes` call: each given one must hold.
#[derive(Debug, Default)]
pub(super) struct NodeFilter {
    category: Option<String>,
    name: Option<String>,
    input_type: Option<String>,
    output_type: Option<String>,
    pack: Option<String>,
    api_node: Option<bool>,
    fields: Vec<String>,
}

impl NodeFilter {
    /// Reads the filters; text filters compare case-insensitively (type
    /// names too: `image` finds `IMAGE`).
    pub(super) fn from_args(args: &Args) -> Result<Self, ToolError> {
        let text = |k: &str| {
            let v = str_arg(args, k).trim();
            (!v.is_empty()).then(|| v.to_lowercase())
        };
        let mut fields = Vec::new();
        if let Some(list) = args.get("fields").and_then(Value::as_array) {
            for f in list {
                let f = f.as_str().unwrap_or_default();
                if !FIELDS.contains(&f) {
                    return Err(ToolError::rejected(format!(
                        "`fields` may hold {} (got {f:?})",
                        FIELDS.join(", ")
                    )));
                }
                if !fields.iter().any(|x| x == f) {
                    fields.push(f.to_owned());
                }
            }
        }
        Ok(Self {
            category: text("category"),
            name: text("name"),
            input_type: text("input_type"),
            output_type: text("output_type"),
            pack: text("pack"),
            api_node: args.get("api_node").and_then(Value::as_bool),
            fields,
        })
    }

    /// Whether class `class` (entry `info`) passes every filter.
    pub(super) fn matches(&self, class: &str, info: &Value) -> bool {
        let has = |hay: &str, needle: &str| hay.to_lowercase().contains(needle);
        if let Some(c) = &self.category
            && !has(info.get("category").and_then(Value::as_str).unwrap_or_default(), c)
        {
            return false;
        }
        if let Some(n) = &self.name
            && !has(class, n)
            && !has(info.get("display_name").and_then(Value::as_str).unwrap_or_default(), n)
        {
            return false;
        }
        if let Some(t) = &self.input_type
            && !input_types(info).iter().any(|x| x.to_lowercase() == *t)
        {
            return false;
        }
        if let Some(t) = &self.output_type
            && !output_types(info).iter().any(|x| x.to_lowercase() == *t)
        {
            return false;
        }
        if let Some(p) = &self.pack
            && !has(&pack_of(info), p)
        {
            return false;
        }
        if let Some(want) = self.api_node
            && is_api_node(info) != want
        {
            return false;
        }
        true
    }

    /// The list item for a class: its name, or with `fields` an object of
    /// the name and the chosen facts.
    pub(super) fn item(&self, class: &str, info: &Value) -> Value {
        if self.fields.is_empty() {
            return Value::from(class);
        }
        let mut m = Map::new();
        m.insert("name".to_owned(), Value::from(class));
        for f in &self.fields {
            m.insert(f.clone(), field(class, info, f));
        }
        Value::Object(m)
    }
}

/// A compact description of one input.
fn input_summary(name: &str, spec: &Value, required: bool) -> Value {
    let mut m = Map::new();
    m.insert("name".to_owned(), Value::from(name));
    m.insert("type".to_owned(), Value::from(input_type(spec).unwrap_or("UNKNOWN")));
    m.insert("required".to_owned(), Value::Bool(required));
    let opts = spec.get(1).and_then(Value::as_object);
    // Choices: inline (`[[a, b], {...}]`) or under `options` (`["COMBO", {"options": [...]}]`).
    let choices = match spec.get(0) {
        Some(Value::Array(a)) => Some(a),
        _ => opts.and_then(|o| o.get("options")).and_then(Value::as_array),
    };
    if let Some(choices) = choices {
        m.insert(
            "options".to_owned(),
            Value::from(choices.iter().take(MAX_OPTIONS).cloned().collect::<Vec<_>>()),
        );
        if choices.len() > MAX_OPTIONS {
            m.insert("options_total".to_owned(), Value::from(choices.len()));
        }
    }
    if let Some(o) = opts {
        for k in ["default", "min", "max", "step", "multiline"] {
            if let Some(v) = o.get(k) {
                m.insert(k.to_owned(), v.clone());
            }
        }
        if o.get("forceInput").and_then(Value::as_bool) == Some(true) {
            m.insert("link_only".to_owned(), Value::Bool(true));
        }
    }
    Value::Object(m)
}

/// The compact summary of a class `comfyui_get_node_info` gives by default.
pub(super) fn summary(class: &str, info: &Value) -> Value {
    let inputs: Vec<Value> = inputs(info)
        .into_iter()
        .map(|(name, spec, required)| input_summary(name, spec, required))
        .collect();
    let names = info.get("output_name").and_then(Value::as_array);
    let lists = info.get("output_is_list").and_then(Value::as_array);
    let outputs: Vec<Value> = info
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, t)| {
            let ty = t.as_str().unwrap_or("COMBO");
            json!({
                "index": i,
                "name": names.and_then(|n| n.get(i)).and_then(Value::as_str).unwrap_or(ty),
                "type": ty,
                "is_list": lists.and_then(|l| l.get(i)).and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect();
    let mut m = Map::new();
    m.insert("name".to_owned(), Value::from(class));
    for f in ["display_name", "category", "description", "pack", "output_node"] {
        m.insert(f.to_owned(), field(class, info, f));
    }
    for f in ["deprecated", "experimental"] {
        if info.get(f).and_then(Value::as_bool) == Some(true) {
            m.insert(f.to_owned(), Value::Bool(true));
        }
    }
    if let Some(service) = service_of(class, info) {
        m.insert("api_node".to_owned(), Value::Bool(true));
        m.insert("service".to_owned(), Value::from(service));
        m.insert(
            "spends_money".to_owned(),
            Value::from(
                "a paid API node: running it sends its inputs to this service and charges the user's Comfy account",
            ),
        );
    }
    m.insert("inputs".to_owned(), Value::from(inputs));
    m.insert("outputs".to_owned(), Value::from(outputs));
    m.insert(
        "note".to_owned(),
        Value::from("A summary: tooltips and hidden inputs are left out; `raw: true` gives ComfyUI's whole entry."),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Value {
        serde_json::from_str(include_str!(
            "../../../../fixtures/comfyui/http/get_object_info.body.json"
        ))
        .unwrap_or_default()
    }

    fn args(v: Value) -> Args {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn names(filter: &NodeFilter) -> Vec<String> {
        let cat = catalog();
        cat.as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| filter.matches(k, v))
            .map(|(k, _)| k.clone())
            .collect()
    }

    #[test]
    fn filters_narrow_the_recorded_catalog() {
        let all = names(&NodeFilter::default());
        assert_eq!(all.len(), 571);
        let f = NodeFilter::from_args(&args(json!({"category": "loaders"}))).unwrap_or_default();
        let loaders = names(&f);
        assert!(
            loaders.contains(&"CheckpointLoaderSimple".to_owned()) && loaders.len() < 60,
            "{loaders:?}"
        );
        let f =
            NodeFilter::from_args(&args(json!({"input_type": "latent", "output_type": "IMAGE"}))).unwrap_or_default();
        let decoders = names(&f);
        assert!(decoders.contains(&"VAEDecode".to_owned()), "{decoders:?}");
        assert!(!decoders.contains(&"KSampler".to_owned()));
        let f = NodeFilter::from_args(&args(json!({"name": "load checkpoint"}))).unwrap_or_default();
        assert!(
            names(&f).contains(&"CheckpointLoaderSimple".to_owned()),
            "display names match too"
        );
        let f = NodeFilter::from_args(&args(json!({"pack": "fixture_nodes"}))).unwrap_or_default();
        assert!(!names(&f).is_empty() && names(&f).len() < 5);
        let f = NodeFilter::from_args(&args(json!({"pack": "comfy_api_nodes"}))).unwrap_or_default();
        assert_eq!(names(&f).len(), 122);
        // `api_node` follows ComfyUI's mark, not the module: the module's
        // helpers (`OpenAIInputFiles`) are not API nodes.
        let f = NodeFilter::from_args(&args(json!({"api_node": true}))).unwrap_or_default();
        let api = names(&f);
        assert_eq!(api.len(), 109);
        assert!(api.contains(&"OpenAIDalle3".to_owned()) && !api.contains(&"OpenAIInputFiles".to_owned()));
        let f = NodeFilter::from_args(&args(json!({"api_node": false}))).unwrap_or_default();
        assert_eq!(names(&f).len(), 571 - 109);
        let f = NodeFilter::from_args(&args(json!({"api_node": null}))).unwrap_or_default();
        assert_eq!(names(&f).len(), 571);
        let f = NodeFilter::from_args(&args(json!({"category": "no such category"}))).unwrap_or_default();
        assert!(names(&f).is_empty());
    }

    #[test]
    fn fields_select_facts_and_reject_unknown_ones() {
        let cat = catalog();
        let f = NodeFilter::from_args(&args(json!({"fields": ["pack", "output_types", "pack"]}))).unwrap_or_default();
        assert_eq!(
            f.item("VAEDecode", &cat["VAEDecode"]),
            json!({"name": "VAEDecode", "pack": "comfy_core", "output_types": ["IMAGE"]})
        );
        let f = NodeFilter::from_args(&args(json!({"fields": ["api_node", "service"]}))).unwrap_or_default();
        assert_eq!(
            f.item("OpenAIDalle3", &cat["OpenAIDalle3"]),
            json!({"name": "OpenAIDalle3", "api_node": true, "service": "OpenAI"})
        );
        assert_eq!(
            f.item("VAEDecode", &cat["VAEDecode"]),
            json!({"name": "VAEDecode", "api_node": false, "service": null})
        );
        assert_eq!(
            NodeFilter::default().item("VAEDecode", &cat["VAEDecode"]),
            json!("VAEDecode")
        );
        let err = NodeFilter::from_args(&args(json!({"fields": ["python_code"]}))).err();
        assert!(err.is_some_and(|e| e.message.contains("`fields` may hold")));
    }

    #[test]
    fn the_summary_keeps_what_wiring_needs_and_is_much_smaller() {
        let cat = catalog();
        let s = summary("KSampler", &cat["KSampler"]);
        let inputs = s["inputs"].as_array().cloned().unwrap_or_default();
        let names: Vec<&str> = inputs.iter().filter_map(|i| i["name"].as_str()).collect();
        assert_eq!(
            names,
            [
                "model",
                "seed",
                "steps",
                "cfg",
                "sampler_name",
                "scheduler",
                "positive",
                "negative",
                "latent_image",
                "denoise"
            ]
        );
        assert_eq!(
            inputs[2],
            json!({"name": "steps", "type": "INT", "required": true, "default": 20, "min": 1, "max": 10000})
        );
        assert_eq!(inputs[4]["type"], "COMBO");
        assert!(
            inputs[4]["options"]
                .as_array()
                .is_some_and(|o| o.contains(&json!("euler")))
        );
        assert_eq!(
            s["outputs"],
            json!([{"index": 0, "name": "LATENT", "type": "LATENT", "is_list": false}])
        );
        assert_eq!(s["pack"], "comfy_core");
        let raw = cat["KSampler"].to_string().len();
        assert!(
            s.to_string().len() < raw,
            "summary {} vs raw {raw}",
            s.to_string().len()
        );
        // Every recorded class summarises without a panic and with its outputs.
        for (k, v) in cat.as_object().into_iter().flatten() {
            let s = summary(k, v);
            assert_eq!(
                s["outputs"].as_array().map(Vec::len),
                v["output"].as_array().map(Vec::len),
                "{k}"
            );
        }
    }

    #[test]
    fn long_choice_lists_are_capped_and_counted() {
        let many: Vec<String> = (0..250).map(|i| format!("model_{i}.safetensors")).collect();
        let info = json!({"input": {"required": {"ckpt_name": [many, {}]}}, "output": ["MODEL"]});
        let s = summary("X", &info);
        assert_eq!(s["inputs"][0]["options"].as_array().map(Vec::len), Some(MAX_OPTIONS));
        assert_eq!(s["inputs"][0]["options_total"], 250);
        let combo = json!({"input": {"optional": {"image": ["COMBO", {"options": ["a.png", "b.png"]}]}}});
        assert_eq!(
            summary("Y", &combo)["inputs"][0],
            json!({"name": "image", "type": "COMBO", "required": false, "options": ["a.png", "b.png"]})
        );
        // Hostile entries: wrong shapes give "UNKNOWN", never a panic.
        let odd =
            json!({"input": {"required": {"a": 5, "b": [], "c": [null]}}, "output": [1, ["x"]], "output_name": 3});
        let s = summary("Z", &odd);
        assert_eq!(s["inputs"][0]["type"], "UNKNOWN");
    }
}
