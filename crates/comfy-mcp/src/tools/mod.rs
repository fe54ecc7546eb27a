//! The tool catalog: each tool's name, rate-limit category, description,
//! input and output schemas and annotations, from `catalog.json`.
//!
//! The input schema is the single source of truth for arguments: it is
//! what `tools/list` publishes (the peer's schemas, so clients see the
//! same parameters, types, defaults and constraints), what every call is
//! validated against before anything else runs (rmcp does not enforce
//! schemas), and where omitted arguments take their defaults from.

mod assets;
mod complete;
mod discovery;
mod files;
mod generate;
mod impls;
mod library;
mod media;
mod models;
mod names;
mod nodes;
mod progress;
pub mod prompts;
mod queue;
pub mod resources;
pub mod route;
mod search;
mod verdict;
mod workflow;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde::Deserialize;
use serde_json::{Map, Value};

pub use generate::{PendingCancels, Reporter};
pub use impls::{Output, Probes, ToolContext, ToolError, run};
pub(crate) use impls::{check_prompt_id, no_job, prompt_id};
pub use media::{MediaReply, SheetOut};
pub(crate) use models::download_platform;

/// The rate-limit category of a tool (the peer's intended mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Changes the queue or the server (cancel, interrupt, clear, settings).
    Workflow,
    /// Submits work.
    Generation,
    /// Moves files.
    FileOps,
    /// Only reads.
    ReadOnly,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 4] = [
        Category::Workflow,
        Category::Generation,
        Category::FileOps,
        Category::ReadOnly,
    ];

    /// The category with this name (its name in `rate_limits:`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Its name in `rate_limits:`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Category::Workflow => "workflow",
            Category::Generation => "generation",
            Category::FileOps => "file_ops",
            Category::ReadOnly => "read_only",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    name: String,
    category: Category,
    group: String,
    description: String,
    input_schema: JsonObject,
    #[serde(default)]
    output_schema: Option<JsonObject>,
    annotations: ToolAnnotations,
}

/// One tool.
pub struct ToolDef {
    /// Its name (`comfyui_*`).
    pub name: String,
    /// Its rate-limit category.
    pub category: Category,
    /// Its group (`tools.groups` enables groups).
    pub group: String,
    tool: Tool,
    /// Compiled on the tool's first call: compiling all 54 at start-up
    /// costs start-up time and memory for tools a session never calls.
    validator: std::sync::OnceLock<jsonschema::Validator>,
    schema: Value,
    defaults: Map<String, Value>,
    /// The parameters declared as JSON text that also take the JSON value
    /// itself (see [`json_text_parameters`]).
    json_text: Vec<String>,
    /// Whether the result is a string wrapped as `{"result": "..."}` (the
    /// peer's framework does this for string results).
    pub wraps_string: bool,
}

impl ToolDef {
    /// Whether the tool only reads (its `readOnlyHint`).
    pub fn read_only(&self) -> bool {
        self.tool.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true)
    }
}

/// Every tool, in `tools/list` order.
pub struct Catalog {
    tools: Vec<ToolDef>,
    index: HashMap<String, usize>,
}

const CATALOG: &str = include_str!("catalog.json");

static SHARED: LazyLock<Catalog> = LazyLock::new(Catalog::build);

impl Catalog {
    /// The catalog (parsed once).
    pub fn get() -> &'static Catalog {
        &SHARED
    }

    fn build() -> Self {
        // The catalog is a constant of this crate, checked by its tests.
        #[allow(clippy::expect_used, reason = "constant data, covered by tests")]
        let entries: Vec<Entry> = serde_json::from_str(CATALOG).expect("catalog.json is valid");
        let mut tools = Vec::with_capacity(entries.len());
        let mut index = HashMap::new();
        for e in entries {
            let schema = Value::Object(e.input_schema.clone());
            let defaults = e
                .input_schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|props| {
                    props
                        .iter()
                        .filter_map(|(k, p)| p.get("default").map(|d| (k.clone(), d.clone())))
                        .collect()
                })
                .unwrap_or_default();
            let json_text = json_text_parameters(&e.input_schema);
            let wraps_string = e
                .output_schema
                .as_ref()
                .is_some_and(|o| o.get("x-fastmcp-wrap-result").is_some());
            let mut tool = Tool::new(e.name.clone(), e.description, Arc::new(e.input_schema));
            tool.title = Some(title(&e.name));
            tool.output_schema = e.output_schema.map(Arc::new);
            tool.annotations = Some(e.annotations);
            index.insert(e.name.clone(), tools.len());
            tools.push(ToolDef {
                name: e.name,
                category: e.category,
                group: e.group,
                tool,
                validator: std::sync::OnceLock::new(),
                schema,
                defaults,
                json_text,
                wraps_string,
            });
        }
        Self { tools, index }
    }

    /// Every tool as `tools/list` publishes it.
    pub fn list(&self) -> Vec<Tool> {
        self.tools.iter().map(|t| t.tool.clone()).collect()
    }

    /// The tools of the enabled groups.
    pub fn list_enabled(&self, groups: &[String]) -> Vec<Tool> {
        self.tools
            .iter()
            .filter(|t| groups.contains(&t.group))
            .map(|t| t.tool.clone())
            .collect()
    }

    /// `comfy-mcp tools`: every tool as `tools/list` publishes it (only
    /// those of `category`, when given), under `"tools"`.
    pub fn listing(&self, category: Option<Category>) -> Value {
        let tools: Vec<&Tool> = self
            .tools
            .iter()
            .filter(|t| category.is_none_or(|c| t.category == c))
            .map(|t| &t.tool)
            .collect();
        serde_json::json!({ "tools": tools })
    }

    /// The tool called `name`.
    pub fn find(&self, name: &str) -> Option<&ToolDef> {
        self.index.get(name).map(|&i| &self.tools[i])
    }

    /// Every tool.
    pub fn all(&self) -> &[ToolDef] {
        &self.tools
    }
}

/// Whether tool `name` submits work to ComfyUI: the catalog's
/// `generation` category, the one list of such tools (job ownership, the
/// per-client queue cap, the `backend` argument and dispatch all ask here;
/// `comfy-mcp tools --category generation` prints it for the evals).
#[must_use]
pub fn submits(name: &str) -> bool {
    Catalog::get()
        .find(name)
        .is_some_and(|t| t.category == Category::Generation)
}

/// Every tool group, in documentation order.
pub const GROUPS: &[&str] = &[
    "generation",
    "jobs",
    "files",
    "discovery",
    "workflow",
    "custom_nodes",
    "models",
    "settings",
];

/// `comfyui_list_models` → `Comfyui List Models`, the peer's titles.
fn title(name: &str) -> String {
    name.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The parameters that carry JSON as text (`workflow`, `operations`,
/// `params`, the upload data) and also take the JSON value itself, as
/// models often send it: in the schema, `anyOf` a string and an object or
/// array, nested under the parameter (never at the top level, which
/// OpenAI's and Anthropic's tool rules forbid; `docs/compatibility.md`).
fn json_text_parameters(schema: &JsonObject) -> Vec<String> {
    let is_json = |alt: &Value| matches!(alt.get("type").and_then(Value::as_str), Some("object" | "array"));
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .filter(|(_, p)| {
                    p.get("anyOf").and_then(Value::as_array).is_some_and(|alts| {
                        alts.iter()
                            .any(|a| a.get("type").and_then(Value::as_str) == Some("string"))
                            && alts.iter().any(is_json)
                    })
                })
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// At most this many problems are listed in one argument error; the
/// rest are counted.
pub const MAX_PROBLEMS: usize = 20;

/// A value quoted in a problem is cut to this many characters, so a
/// misplaced workflow does not come back whole.
const MAX_QUOTED: usize = 60;

/// One problem of a call's arguments.
struct Problem {
    /// The argument's path (`limit`, `fields/0`); empty for the whole call.
    at: String,
    /// What is wrong.
    message: String,
    /// Where in the input schema the rule is (`/properties/limit/maximum`).
    schema: String,
}

fn join_path(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}/{name}")
    }
}

/// `value` as JSON, cut to [`MAX_QUOTED`] characters.
fn quote(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The argument error: every problem on its own line.
fn problem_report(tool: &str, problems: &[Problem]) -> String {
    let line = |p: &Problem| {
        let what = if p.at.is_empty() {
            "the arguments".to_owned()
        } else {
            format!("`{}`", p.at)
        };
        format!("{what}: {} (schema {})", p.message, p.schema)
    };
    if let [p] = problems {
        return format!("invalid arguments for {tool}: {}", line(p));
    }
    let mut out = format!(
        "invalid arguments for {tool}: {} problems; fix them all before calling again:",
        problems.len()
    );
    for p in problems.iter().take(MAX_PROBLEMS) {
        out.push_str("\n- ");
        out.push_str(&line(p));
    }
    if problems.len() > MAX_PROBLEMS {
        out.push_str("\n- and ");
        out.push_str(&(problems.len() - MAX_PROBLEMS).to_string());
        out.push_str(" more");
    }
    out
}

impl ToolDef {
    /// Checks `args` against the input schema and fills in defaults.
    ///
    /// # Errors
    /// One message naming every problem of the call (up to
    /// [`MAX_PROBLEMS`]), each with the argument's path and the schema
    /// keyword it breaks, so a model can fix them all in one round trip.
    pub fn prepare(&self, args: Option<Map<String, Value>>) -> Result<Map<String, Value>, String> {
        let mut args = args.unwrap_or_default();
        let value = Value::Object(args.clone());
        #[allow(clippy::expect_used, reason = "constant data; every schema is compiled by a test")]
        let validator = self
            .validator
            .get_or_init(|| jsonschema::validator_for(&self.schema).expect("input schemas compile"));
        let mut problems = Vec::new();
        for e in validator.iter_errors(&value) {
            problems.extend(self.describe(&e));
        }
        if !problems.is_empty() {
            return Err(problem_report(&self.name, &problems));
        }
        // A JSON value given for a JSON-text parameter becomes its text,
        // so the tools read one form (and parse it within their bounds).
        for name in &self.json_text {
            if let Some(v) = args.get_mut(name)
                && (v.is_object() || v.is_array())
            {
                *v = Value::String(v.to_string());
            }
        }
        for (k, d) in &self.defaults {
            args.entry(k.clone()).or_insert_with(|| d.clone());
        }
        Ok(args)
    }

    /// One validation error as problems (`additionalProperties` names
    /// several arguments at once: one problem each).
    fn describe(&self, e: &jsonschema::ValidationError<'_>) -> Vec<Problem> {
        use jsonschema::error::ValidationErrorKind as K;
        let at = e.instance_path().as_str().trim_start_matches('/').to_owned();
        let schema = e.schema_path().as_str().to_owned();
        let one = |message: String| {
            vec![Problem {
                at: at.clone(),
                message,
                schema: schema.clone(),
            }]
        };
        match e.kind() {
            K::AdditionalProperties { unexpected } => {
                let known = self.parameter_names(&at);
                unexpected
                    .iter()
                    .map(|name| Problem {
                        at: join_path(&at, name),
                        message: if known.is_empty() {
                            "is not accepted here (nothing more may be given)".to_owned()
                        } else {
                            format!("is not accepted here; the accepted names are {}", known.join(", "))
                        },
                        schema: schema.clone(),
                    })
                    .collect()
            }
            K::Required { property } => vec![Problem {
                at: join_path(&at, property.as_str().unwrap_or_default()),
                message: "is required but missing".to_owned(),
                schema: schema.clone(),
            }],
            K::AnyOf { context } | K::OneOfNotValid { context }
                if !comfy_audit::redact::is_secret_key(at.split('/').next().unwrap_or_default()) =>
            {
                let forms: Vec<String> = context
                    .iter()
                    .filter_map(|alternative| alternative.first())
                    .map(|sub| sub.masked_with("it").to_string())
                    .collect();
                one(format!(
                    "{} fits none of the accepted forms ({})",
                    quote(e.instance()),
                    forms.join("; ")
                ))
            }
            // A secret's value is never quoted back (not even cut short).
            _ if comfy_audit::redact::is_secret_key(at.split('/').next().unwrap_or_default()) => {
                one(e.masked_with("the value (not shown: a secret)").to_string())
            }
            _ => one(e.masked_with(quote(e.instance())).to_string()),
        }
    }

    /// The parameter names the schema accepts at `at` (top level only;
    /// nested objects name none).
    fn parameter_names(&self, at: &str) -> Vec<String> {
        if !at.is_empty() {
            return Vec::new();
        }
        self.schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().map(|k| format!("`{k}`")).collect())
            .unwrap_or_default()
    }

    /// The published definition.
    pub fn tool(&self) -> &Tool {
        &self.tool
    }
}

#[cfg(test)]
mod catalog_tests {
    use super::Catalog;

    #[test]
    fn every_input_schema_compiles() {
        for t in Catalog::get().all() {
            assert!(jsonschema::validator_for(&t.schema).is_ok(), "{}", t.name);
        }
    }
}

#[cfg(test)]
mod argument_error_tests {
    use serde_json::{Value, json};

    use super::{Catalog, MAX_PROBLEMS};

    fn prepare(tool: &str, args: Value) -> Result<serde_json::Map<String, Value>, String> {
        let Value::Object(args) = args else {
            unreachable!("tests pass objects")
        };
        Catalog::get()
            .find(tool)
            .map_or_else(|| Err("no tool".to_owned()), |t| t.prepare(Some(args)))
    }

    #[test]
    fn every_problem_is_named_with_its_path_and_rule() {
        let e = prepare(
            "comfyui_list_jobs",
            json!({"limit": 5000, "offset": -1, "sort_by": "name", "status": ["done"], "surprise": 1}),
        )
        .unwrap_err();
        assert!(
            e.starts_with("invalid arguments for comfyui_list_jobs: 5 problems"),
            "{e}"
        );
        for needle in [
            "`limit`: 5000 fits none of the accepted forms (it is greater than the maximum of 1000; it is not of type \"null\")",
            "`offset`: -1 is less than the minimum of 0 (schema /properties/offset/minimum)",
            "`sort_by`: \"name\" is not one of",
            "`status`: [\"done\"] fits none of the accepted forms",
            "`surprise`: is not accepted here; the accepted names are `status`, `workflow_id`",
        ] {
            assert!(e.contains(needle), "{needle} in {e}");
        }
        assert_eq!(e.lines().count(), 6, "{e}");
    }

    #[test]
    fn json_text_parameters_take_the_json_itself() {
        let wf = json!({"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}});
        let a = prepare("comfyui_validate_workflow", json!({"workflow": wf})).unwrap();
        assert_eq!(a["workflow"], json!(wf.to_string()));
        let a = prepare("comfyui_validate_workflow", json!({"workflow": wf.to_string()})).unwrap();
        assert_eq!(a["workflow"], json!(wf.to_string()));
        let ops = json!([{"op": "remove_node", "node_id": "1"}]);
        let a = prepare("comfyui_modify_workflow", json!({"workflow": wf, "operations": ops})).unwrap();
        assert_eq!(a["operations"], json!(ops.to_string()));
        let a = prepare(
            "comfyui_create_workflow",
            json!({"template": "txt2img", "params": {"seed": 1}}),
        )
        .unwrap();
        assert_eq!(a["params"], json!("{\"seed\":1}"));
        // Other JSON is still refused, naming both accepted forms.
        let e = prepare("comfyui_validate_workflow", json!({"workflow": 7})).unwrap_err();
        assert!(
            e.contains("it is not of type \"string\"; it is not of type \"object\""),
            "{e}"
        );
        let e = prepare("comfyui_modify_workflow", json!({"workflow": wf, "operations": [1]})).unwrap_err();
        assert!(e.contains("`operations`"), "{e}");
        let names: Vec<(&str, Vec<String>)> = Catalog::get()
            .all()
            .iter()
            .filter(|t| !t.json_text.is_empty())
            .map(|t| (t.name.as_str(), t.json_text.clone()))
            .collect();
        assert_eq!(names.len(), 10, "{names:?}");
    }

    #[test]
    fn a_missing_argument_and_a_single_problem() {
        let e = prepare("comfyui_get_node_info", json!({})).unwrap_err();
        assert_eq!(
            e,
            "invalid arguments for comfyui_get_node_info: `node_class`: is required but missing (schema /required)"
        );
    }

    #[test]
    fn quoted_values_are_short_and_the_list_is_bounded() {
        let long = "x".repeat(10_000);
        let e = prepare("comfyui_get_queue_status", json!({"a": long})).unwrap_err();
        assert!(e.len() < 300, "{e}");
        let e = prepare("comfyui_get_history", json!({"limit": long})).unwrap_err();
        assert!(e.len() < 300, "{e}");
        let many: serde_json::Map<String, Value> = (0..50).map(|i| (format!("k{i}"), json!(i))).collect();
        let e = prepare("comfyui_get_queue", Value::Object(many)).unwrap_err();
        assert_eq!(e.lines().count(), MAX_PROBLEMS + 2, "{e}");
        assert!(e.ends_with("- and 30 more"), "{e}");
    }
}
