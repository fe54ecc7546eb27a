//! The tool catalog: each tool's name, rate-limit category, description,
//! input and output schemas and annotations, from `catalog.json`.
//!
//! The input schema is the single source of truth for arguments: it is
//! what `tools/list` publishes (the peer's schemas, so clients see the
//! same parameters, types, defaults and constraints), what every call is
//! validated against before anything else runs (rmcp does not enforce
//! schemas), and where omitted arguments take their defaults from.

mod discovery;
mod files;
mod generate;
mod impls;
mod models;
mod nodes;
mod progress;
pub mod prompts;
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

pub use generate::Reporter;
pub(crate) use impls::prompt_id;
pub use impls::{Output, Probes, ToolContext, ToolError, run};

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
    /// Whether the result is a string wrapped as `{"result": "..."}` (the
    /// peer's framework does this for string results).
    pub wraps_string: bool,
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

    /// The tool called `name`.
    pub fn find(&self, name: &str) -> Option<&ToolDef> {
        self.index.get(name).map(|&i| &self.tools[i])
    }

    /// Every tool.
    pub fn all(&self) -> &[ToolDef] {
        &self.tools
    }
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

impl ToolDef {
    /// Checks `args` against the input schema and fills in defaults.
    ///
    /// # Errors
    /// A message naming the argument and what is wrong with it.
    pub fn prepare(&self, args: Option<Map<String, Value>>) -> Result<Map<String, Value>, String> {
        let mut args = args.unwrap_or_default();
        let value = Value::Object(args.clone());
        #[allow(clippy::expect_used, reason = "constant data; every schema is compiled by a test")]
        let validator = self
            .validator
            .get_or_init(|| jsonschema::validator_for(&self.schema).expect("input schemas compile"));
        if let Some(e) = validator.iter_errors(&value).next() {
            let path = e.instance_path().to_string();
            let arg = path.trim_start_matches('/');
            return Err(if arg.is_empty() {
                format!("invalid arguments for {}: {e}", self.name)
            } else {
                format!("invalid argument `{arg}` for {}: {e}", self.name)
            });
        }
        for (k, d) in &self.defaults {
            args.entry(k.clone()).or_insert_with(|| d.clone());
        }
        Ok(args)
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
