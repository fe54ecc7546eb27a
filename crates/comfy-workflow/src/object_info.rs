//! The node catalog a ComfyUI server describes at `/object_info`: for each
//! node class, its inputs (type or option list, bounds), outputs, and
//! whether it is an output node.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

/// What kind of value an input takes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InputKind {
    /// `INT`, with optional bounds.
    Int {
        /// Smallest value.
        min: Option<Number>,
        /// Largest value.
        max: Option<Number>,
    },
    /// `FLOAT`, with optional bounds.
    Float {
        /// Smallest value.
        min: Option<Number>,
        /// Largest value.
        max: Option<Number>,
    },
    /// `STRING`.
    String,
    /// `BOOLEAN`.
    Boolean,
    /// A choice from a list (a classic `[[...]]` combo or a `COMBO` with
    /// `options`). An empty list means the options are dynamic.
    Combo(Vec<Value>),
    /// A typed connection (`MODEL`, `IMAGE`, `CONDITIONING`, `*`, ...).
    Link(String),
    /// A V3 dynamic combo: the chosen key decides which sub-inputs follow,
    /// sent as `name.sub`.
    DynamicCombo(Vec<DynamicOption>),
    /// A V3 growing list of connections, sent as `name.prefixN`.
    Autogrow {
        /// The name prefix of each entry (`image` for `images.image0`).
        prefix: String,
        /// Fewest entries.
        min: usize,
        /// The entry's own declaration.
        template: Vec<InputDef>,
    },
}

/// One choice of a [`InputKind::DynamicCombo`].
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicOption {
    /// The value that selects it.
    pub key: String,
    /// The inputs it adds.
    pub inputs: Vec<InputDef>,
}

impl InputKind {
    /// Whether the input is a widget (a literal value in the editor) rather
    /// than a connection.
    pub fn is_widget(&self) -> bool {
        !matches!(self, InputKind::Link(_) | InputKind::Autogrow { .. })
    }

    /// The type name as ComfyUI writes it (`INT`, `COMBO`, `MODEL`, ...).
    pub fn type_name(&self) -> &str {
        match self {
            InputKind::Int { .. } => "INT",
            InputKind::Float { .. } => "FLOAT",
            InputKind::String => "STRING",
            InputKind::Boolean => "BOOLEAN",
            InputKind::Combo(_) => "COMBO",
            InputKind::Link(t) => t,
            InputKind::DynamicCombo(_) => "COMFY_DYNAMICCOMBO_V3",
            InputKind::Autogrow { .. } => "COMFY_AUTOGROW_V3",
        }
    }
}

/// One declared input of a node class.
#[derive(Debug, Clone, PartialEq)]
pub struct InputDef {
    /// Its name.
    pub name: String,
    /// Whether it is required.
    pub required: bool,
    /// What it takes.
    pub kind: InputKind,
    /// Its options object (`default`, `tooltip`, `control_after_generate`...).
    pub options: Map<String, Value>,
}

impl InputDef {
    /// Whether the editor adds a "control after generate" widget after this
    /// one (seeds), which takes a slot in `widgets_values`.
    pub fn has_control_after_generate(&self) -> bool {
        self.options.get("control_after_generate").and_then(Value::as_bool) == Some(true)
    }
}

/// One node class.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDef {
    /// The class name.
    pub name: String,
    /// The name the editor shows.
    pub display_name: String,
    /// The editor's category path (`sampling`, `loaders`, ...).
    pub category: String,
    /// Inputs: required ones, then optional ones, each in `input_order`.
    pub inputs: Vec<InputDef>,
    /// Output types, by index.
    pub outputs: Vec<String>,
    /// Whether ComfyUI runs the graph towards this node.
    pub output_node: bool,
    /// The Python module that registered the class (`nodes`,
    /// `comfy_extras.nodes_mask`, `custom_nodes.<folder>`); empty when the
    /// server does not say (where a class comes from, for enforce mode).
    pub python_module: String,
    /// Whether ComfyUI marks the class as a paid partner node (`api_node:
    /// true`): it sends its inputs to an outside service and charges the
    /// user's Comfy account.
    pub api_node: bool,
}

impl NodeDef {
    /// The input called `name`.
    pub fn input(&self, name: &str) -> Option<&InputDef> {
        self.inputs.iter().find(|i| i.name == name)
    }
}

/// A parsed `/object_info` catalog.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectInfo {
    /// On foldhash (seeded per process): looked up once or twice per node
    /// of every workflow checked.
    nodes: HashMap<String, NodeDef, foldhash::fast::RandomState>,
}

impl ObjectInfo {
    /// Reads a catalog; entries that do not have the expected shape are
    /// skipped rather than failing the whole catalog.
    pub fn from_value(value: &Value) -> Self {
        let mut nodes = HashMap::default();
        if let Some(map) = value.as_object() {
            for (name, def) in map {
                if let Some(def) = parse_def(name, def) {
                    nodes.insert(name.clone(), def);
                }
            }
        }
        Self { nodes }
    }

    /// The class `name`.
    pub fn node(&self, name: &str) -> Option<&NodeDef> {
        self.nodes.get(name)
    }

    /// Whether the class is known.
    pub fn contains(&self, name: &str) -> bool {
        self.nodes.contains_key(name)
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every class name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.nodes.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

fn parse_def(name: &str, def: &Value) -> Option<NodeDef> {
    let def = def.as_object()?;
    let mut inputs = Vec::new();
    for (section, required) in [("required", true), ("optional", false)] {
        let Some(declared) = def.get("input").and_then(|i| i.get(section)).and_then(Value::as_object) else {
            continue;
        };
        let order: Vec<&str> = def
            .get("input_order")
            .and_then(|o| o.get(section))
            .and_then(Value::as_array)
            .map_or_else(
                || declared.keys().map(String::as_str).collect(),
                |a| a.iter().filter_map(Value::as_str).collect(),
            );
        for input in order {
            if let Some(spec) = declared.get(input) {
                inputs.push(parse_input(input, required, spec));
            }
        }
    }
    let strings = |key: &str| -> Vec<String> {
        def.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let text = |key: &str| def.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    Some(NodeDef {
        name: name.to_owned(),
        display_name: def
            .get("display_name")
            .and_then(Value::as_str)
            .unwrap_or(name)
            .to_owned(),
        category: text("category"),
        inputs,
        outputs: strings("output"),
        output_node: def.get("output_node").and_then(Value::as_bool) == Some(true),
        python_module: text("python_module"),
        api_node: def.get("api_node").and_then(Value::as_bool) == Some(true),
    })
}

/// `{"required": {...}, "optional": {...}}` as declarations, in key order.
fn parse_group(group: Option<&Value>) -> Vec<InputDef> {
    let mut out = Vec::new();
    for (section, required) in [("required", true), ("optional", false)] {
        if let Some(Value::Object(m)) = group.and_then(|g| g.get(section)) {
            for (name, spec) in m {
                out.push(parse_input(name, required, spec));
            }
        }
    }
    out
}

fn parse_input(name: &str, required: bool, spec: &Value) -> InputDef {
    let items = spec.as_array().map(Vec::as_slice).unwrap_or_default();
    let options = items.get(1).and_then(Value::as_object).cloned().unwrap_or_default();
    let bound = |k: &str| options.get(k).and_then(Value::as_number).cloned();
    let kind = match items.first() {
        Some(Value::Array(list)) => InputKind::Combo(list.clone()),
        Some(Value::String(t)) => match t.as_str() {
            "INT" => InputKind::Int {
                min: bound("min"),
                max: bound("max"),
            },
            "FLOAT" => InputKind::Float {
                min: bound("min"),
                max: bound("max"),
            },
            "STRING" => InputKind::String,
            "BOOLEAN" => InputKind::Boolean,
            "COMBO" => InputKind::Combo(
                options
                    .get("options")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            ),
            "COMFY_DYNAMICCOMBO_V3" => InputKind::DynamicCombo(
                options
                    .get("options")
                    .and_then(Value::as_array)
                    .map(|opts| {
                        opts.iter()
                            .map(|o| DynamicOption {
                                key: o.get("key").and_then(Value::as_str).unwrap_or_default().to_owned(),
                                inputs: parse_group(o.get("inputs")),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            "COMFY_AUTOGROW_V3" => {
                let template = options.get("template");
                InputKind::Autogrow {
                    prefix: template
                        .and_then(|t| t.get("prefix"))
                        .and_then(Value::as_str)
                        .unwrap_or(name)
                        .to_owned(),
                    min: template.and_then(|t| t.get("min")).and_then(Value::as_u64).unwrap_or(1) as usize,
                    template: parse_group(template.and_then(|t| t.get("input"))),
                }
            }
            other => InputKind::Link(other.to_owned()),
        },
        _ => InputKind::Link("*".to_owned()),
    };
    InputDef {
        name: name.to_owned(),
        required,
        kind,
        options,
    }
}
