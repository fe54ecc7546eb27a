//! Workflows to start from: `comfyui_list_workflows`
//! (custom-node packs' examples, as the peer lists them, and, with
//! `source`, ComfyUI's official templates, its subgraph blueprints and our
//! 14 built-in templates, searchable by words, category and model),
//! `comfyui_get_workflow_template` (one of them, converted to the API format
//! with the server's `/object_info`, with the model files it needs and
//! which the server lacks). `comfyui_list_assets` is in [`super::assets`].
//!
//! Blueprint details (category, description, model files) are only in each
//! blueprint's own document, so a listing fetches them, at most
//! [`FETCH_AT_ONCE`] at a time, and keeps them [`CACHE_FOR`] (bounded by
//! [`CACHE_MAX`]); every list is bounded before it is searched.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use comfy_client::name::Segment;
use comfy_workflow::{Limits, editor, template};
use futures_util::stream::{self, StreamExt as _};
use serde_json::{Map, Value, json};

use super::impls::{Output, ToolContext, ToolError, paginate, str_arg};

type Args = Map<String, Value>;

/// Blueprint documents fetched at once.
const FETCH_AT_ONCE: usize = 8;
/// How long a blueprint's details are kept.
const CACHE_FOR: Duration = Duration::from_mins(10);
/// Most blueprints kept.
const CACHE_MAX: usize = 2_000;
/// Most entries read from any listing (templates, blueprints).
pub(super) const MAX_ENTRIES: usize = 5_000;
/// Most model files named by one workflow, and model folders asked about.
const MAX_MODELS: usize = 200;
const MAX_FOLDERS: usize = 16;
/// Largest workflow document read (a blueprint's `data`).
const MAX_DOC: usize = 10 << 20;

/// A blueprint as a listing shows it.
#[derive(Clone)]
struct Blueprint {
    category: String,
    description: String,
    models: Vec<ModelFile>,
}

/// A model file a workflow's nodes declare (`properties.models`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ModelFile {
    name: String,
    directory: String,
    url: String,
}

impl ModelFile {
    fn to_value(&self) -> Value {
        json!({"name": self.name, "directory": self.directory, "url": self.url})
    }
}

type Cache = Mutex<HashMap<String, (Instant, Blueprint)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

/// The search of `comfyui_list_workflows`.
struct Filter {
    words: Vec<String>,
    category: String,
    model: String,
}

impl Filter {
    fn new(args: &Args) -> Self {
        Self {
            words: str_arg(args, "query").split_whitespace().map(lower).collect(),
            category: lower(str_arg(args, "category").trim()),
            model: lower(str_arg(args, "model").trim()),
        }
    }

    fn keeps(&self, text: &str, categories: &[&str], models: &[&str]) -> bool {
        let text = lower(text);
        self.words.iter().all(|w| text.contains(w.as_str()))
            && (self.category.is_empty() || categories.iter().any(|c| lower(c).contains(&self.category)))
            && (self.model.is_empty() || models.iter().any(|m| lower(m).contains(&self.model)))
    }
}

pub(super) fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Every `properties.models` entry of a workflow document's nodes, its
/// subgraph definitions included.
fn declared_models(doc: &Value) -> Vec<ModelFile> {
    let mut out = std::collections::BTreeSet::new();
    let mut node_lists: Vec<&Value> = vec![&doc["nodes"]];
    for sg in doc["definitions"]["subgraphs"]
        .as_array()
        .into_iter()
        .flatten()
        .take(MAX_ENTRIES)
    {
        node_lists.push(&sg["nodes"]);
    }
    for nodes in node_lists {
        for node in nodes.as_array().into_iter().flatten().take(MAX_ENTRIES) {
            for m in node["properties"]["models"].as_array().into_iter().flatten() {
                if out.len() >= MAX_MODELS {
                    break;
                }
                let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                if !s("name").is_empty() {
                    out.insert(ModelFile {
                        name: s("name"),
                        directory: s("directory"),
                        url: s("url"),
                    });
                }
            }
        }
    }
    out.into_iter().collect()
}

/// A blueprint document's `data` (the workflow as JSON text), parsed.
fn blueprint_doc(entry: &Value) -> Option<Value> {
    let data = entry.get("data")?.as_str()?;
    if data.len() > MAX_DOC {
        return None;
    }
    comfy_workflow::parse_json(data.as_bytes(), &Limits::DEFAULT.with_max_bytes(MAX_DOC)).ok()
}

/// Category and description of a blueprint: its first subgraph's.
fn blueprint_of(doc: &Value) -> Blueprint {
    let sg = &doc["definitions"]["subgraphs"][0];
    let s = |k: &str| sg.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    Blueprint {
        category: s("category"),
        description: s("description"),
        models: declared_models(doc),
    }
}

/// The blueprints ComfyUI lists, with their details (cached).
async fn blueprints(cx: &ToolContext) -> Result<Vec<(String, Value, Option<Blueprint>)>, ToolError> {
    let c = cx.client();
    let listing = c.subgraphs().await?;
    let entries: Vec<(String, Value)> = listing
        .as_object()
        .into_iter()
        .flatten()
        .take(MAX_ENTRIES)
        .map(|(id, v)| (id.clone(), v.clone()))
        .collect();
    let now = Instant::now();
    let known: HashMap<String, Blueprint> = {
        let map = cache().lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .filter_map(|(id, _)| {
                map.get(id)
                    .filter(|(at, _)| now.duration_since(*at) < CACHE_FOR)
                    .map(|(_, b)| (id.clone(), b.clone()))
            })
            .collect()
    };
    let missing: Vec<String> = entries
        .iter()
        .filter(|(id, _)| !known.contains_key(id))
        .map(|(id, _)| id.clone())
        .collect();
    let fetched: Vec<(String, Option<Blueprint>)> = stream::iter(missing)
        .map(|id| {
            let c = c.clone();
            async move {
                let found = match Segment::new(&id) {
                    Ok(seg) => c.subgraph(&seg).await.ok().flatten(),
                    Err(_) => None,
                };
                let details = found.as_ref().and_then(blueprint_doc).map(|d| blueprint_of(&d));
                (id, details)
            }
        })
        .buffer_unordered(FETCH_AT_ONCE)
        .collect()
        .await;
    {
        let mut map = cache().lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, (at, _)| now.duration_since(*at) < CACHE_FOR);
        for (id, b) in &fetched {
            if let Some(b) = b
                && map.len() < CACHE_MAX
            {
                map.insert(id.clone(), (now, b.clone()));
            }
        }
    }
    let mut fetched: HashMap<String, Option<Blueprint>> = fetched.into_iter().collect();
    Ok(entries
        .into_iter()
        .map(|(id, v)| {
            let b = known.get(&id).cloned().or_else(|| fetched.remove(&id).flatten());
            (id, v, b)
        })
        .collect())
}

fn no_templates() -> ToolError {
    ToolError::failed(
        "this ComfyUI serves no official templates (GET /templates/index.json answered 404: the \
         comfyui-workflow-templates package is not installed)",
    )
}

/// The official templates: `(group title, entry)`.
async fn templates(cx: &ToolContext) -> Result<Vec<(String, Value)>, ToolError> {
    let index = cx.client().templates_index().await?.ok_or_else(no_templates)?;
    let mut out = Vec::new();
    for group in index.as_array().into_iter().flatten().take(MAX_ENTRIES) {
        let title = group["title"].as_str().unwrap_or_default();
        for t in group["templates"].as_array().into_iter().flatten() {
            if out.len() >= MAX_ENTRIES {
                break;
            }
            out.push((title.to_owned(), t.clone()));
        }
    }
    Ok(out)
}

fn template_item(group: &str, t: &Value) -> Value {
    let mut item = json!({
        "source": "templates",
        "name": t["name"], "title": t["title"], "description": t["description"],
        "category": group, "tags": t["tags"], "models": t["models"],
    });
    for (from, to) in [("openSource", "open_source"), ("date", "date"), ("size", "size_bytes")] {
        if let Some(v) = t.get(from) {
            item[to] = v.clone();
        }
    }
    item
}

fn keep_template(f: &Filter, group: &str, t: &Value) -> bool {
    let text = format!(
        "{} {} {}",
        t["name"].as_str().unwrap_or_default(),
        t["title"].as_str().unwrap_or_default(),
        t["description"].as_str().unwrap_or_default()
    );
    let mut cats = strs(t.get("tags"));
    cats.push(group);
    f.keeps(&text, &cats, &strs(t.get("models")))
}

fn blueprint_item(id: &str, v: &Value, b: Option<&Blueprint>) -> Value {
    let mut item = json!({
        "source": "blueprints", "id": id, "name": v["name"],
        "origin": v["info"]["node_pack"],
    });
    if let Some(b) = b {
        item["category"] = json!(b.category);
        item["description"] = json!(b.description);
        item["models"] = json!(b.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>());
    }
    item
}

fn keep_blueprint(f: &Filter, v: &Value, b: Option<&Blueprint>) -> bool {
    let name = v["name"].as_str().unwrap_or_default();
    let (cat, desc) = b.map_or(("", ""), |b| (b.category.as_str(), b.description.as_str()));
    let models: Vec<&str> = b
        .map(|b| b.models.iter().map(|m| m.name.as_str()).collect())
        .unwrap_or_default();
    f.keeps(&format!("{name} {desc}"), &[cat], &models)
}

fn builtin_items(f: &Filter) -> Vec<Value> {
    template::TEMPLATES
        .iter()
        .filter(|t| f.keeps(&format!("{} {}", t.name, t.description), &[], &[]))
        .map(|t| json!({"source": "builtin", "name": t.name, "description": t.description, "custom_nodes": t.custom_nodes}))
        .collect()
}

/// `comfyui_list_workflows`.
pub(super) async fn list_workflows(args: &Args, cx: &ToolContext) -> Result<Output, ToolError> {
    let source = match str_arg(args, "source") {
        "" => "custom_nodes",
        s => s,
    };
    let filter = Filter::new(args);
    let mut items = Vec::new();
    let mut notes = Vec::new();
    match source {
        "custom_nodes" => {
            if !filter.category.is_empty() || !filter.model.is_empty() {
                return Err(ToolError::rejected(
                    "`category` and `model` apply to source templates, blueprints, builtin or all; custom-node \
                     packs' examples have only names (use `query`)",
                ));
            }
            let packs = cx.client().workflow_templates().await?;
            for (package, names) in packs.as_object().into_iter().flatten().take(MAX_ENTRIES) {
                if filter.words.is_empty() {
                    // The peer's listing, unchanged.
                    items.push(json!({"package": package, "templates": names}));
                    continue;
                }
                let all = strs(Some(names));
                let kept: Vec<&str> = if filter.keeps(package, &[], &[]) {
                    all
                } else {
                    all.into_iter()
                        .filter(|n| filter.keeps(&format!("{package} {n}"), &[], &[]))
                        .collect()
                };
                if !kept.is_empty() {
                    items.push(json!({"package": package, "templates": kept}));
                }
            }
        }
        "templates" | "blueprints" | "builtin" | "all" => {
            if matches!(source, "builtin" | "all") {
                items.extend(builtin_items(&filter));
            }
            if matches!(source, "templates" | "all") {
                match templates(cx).await {
                    Ok(list) => items.extend(
                        list.iter()
                            .filter(|(g, t)| keep_template(&filter, g, t))
                            .map(|(g, t)| template_item(g, t)),
                    ),
                    Err(e) if source == "all" => notes.push(format!("official templates: {}", e.message)),
                    Err(e) => return Err(e),
                }
            }
            if matches!(source, "blueprints" | "all") {
                match blueprints(cx).await {
                    Ok(list) => {
                        if list.is_empty() && source == "blueprints" {
                            notes.push(
                                "this ComfyUI lists no subgraph blueprints (they came with ComfyUI 0.10 or so)"
                                    .to_owned(),
                            );
                        }
                        items.extend(
                            list.iter()
                                .filter(|(_, v, b)| keep_blueprint(&filter, v, b.as_ref()))
                                .map(|(id, v, b)| blueprint_item(id, v, b.as_ref())),
                        );
                    }
                    Err(e) if source == "all" => notes.push(format!("blueprints: {}", e.message)),
                    Err(e) => return Err(e),
                }
            }
        }
        other => return Err(ToolError::rejected(format!("unknown source '{other}'"))),
    }
    let mut page = paginate(items, args);
    if !notes.is_empty() {
        page["notes"] = json!(notes);
    }
    Ok(Output::Json(page))
}

/// Which of `models` the server does not list in their folders.
async fn missing_models(cx: &ToolContext, models: &[ModelFile]) -> Vec<Value> {
    let c = cx.client();
    let mut folders: BTreeMap<&str, Option<Vec<String>>> = BTreeMap::new();
    for m in models {
        if folders.len() >= MAX_FOLDERS || folders.contains_key(m.directory.as_str()) {
            continue;
        }
        let listed = match Segment::new(&m.directory) {
            Ok(seg) => c.models(&seg).await.ok().flatten(),
            Err(_) => None,
        };
        folders.insert(&m.directory, listed);
    }
    models
        .iter()
        .filter(|m| match folders.get(m.directory.as_str()) {
            Some(Some(list)) => !list.iter().any(|n| n == &m.name || n.replace('\\', "/") == m.name),
            Some(None) => true,
            None => false,
        })
        .map(ModelFile::to_value)
        .collect()
}

/// `comfyui_get_workflow_template`.
pub(super) async fn get_template(args: &Args, cx: &ToolContext) -> Result<Output, ToolError> {
    let source = match str_arg(args, "source") {
        "" => "templates",
        s => s,
    };
    let name = str_arg(args, "name");
    let editor_format = str_arg(args, "format") == "editor";
    let c = cx.client();
    let mut out = json!({"source": source, "name": name});
    let doc = match source {
        "builtin" => {
            if editor_format {
                return Err(ToolError::rejected(
                    "built-in templates exist only in the API format (use format api)",
                ));
            }
            let built = super::workflow::build_template(name, &Map::new())?;
            if let Some(t) = template::TEMPLATES.iter().find(|t| t.name == name) {
                out["description"] = json!(t.description);
                out["custom_nodes"] = json!(t.custom_nodes);
            }
            out["workflow"] = built.workflow.to_value();
            out["note"] = json!("comfyui_create_workflow builds it with your settings (prompt, size, model, ...)");
            return Ok(Output::Json(out));
        }
        "templates" => {
            let (_, seg) = super::names::name_arg(args, "name")?;
            let doc = c.template(&seg).await?.ok_or_else(|| {
                ToolError::failed(format!(
                    "ComfyUI has no official template '{name}' (comfyui_list_workflows with source templates lists them)"
                ))
            })?;
            if let Ok(list) = templates(cx).await
                && let Some((group, t)) = list.iter().find(|(_, t)| t["name"] == name)
            {
                let item = template_item(group, t);
                for k in ["title", "description", "category", "tags", "open_source"] {
                    if let Some(v) = item.get(k) {
                        out[k] = v.clone();
                    }
                }
                out["model_families"] = item["models"].clone();
            }
            doc
        }
        "blueprints" => {
            let is_id = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
            let id = if is_id {
                name.to_owned()
            } else {
                let listing = c.subgraphs().await?;
                let found = listing
                    .as_object()
                    .into_iter()
                    .flatten()
                    .take(MAX_ENTRIES)
                    .find(|(_, v)| v["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
                    .map(|(id, _)| id.clone());
                found.ok_or_else(|| {
                    ToolError::failed(format!(
                        "ComfyUI has no subgraph blueprint named '{name}' (comfyui_list_workflows with source blueprints lists them)"
                    ))
                })?
            };
            let seg = Segment::new(&id).map_err(|e| ToolError::rejected(e.to_string()))?;
            let entry = c
                .subgraph(&seg)
                .await?
                .filter(Value::is_object)
                .ok_or_else(|| ToolError::failed(format!("ComfyUI has no subgraph blueprint with id '{id}'")))?;
            let doc = blueprint_doc(&entry).ok_or_else(|| {
                ToolError::failed(format!(
                    "blueprint '{id}' holds no readable workflow (its `data` is not JSON within 10 MiB)"
                ))
            })?;
            let b = blueprint_of(&doc);
            out["id"] = json!(id);
            out["name"] = entry["name"].clone();
            out["origin"] = entry["info"]["node_pack"].clone();
            out["category"] = json!(b.category);
            out["description"] = json!(b.description);
            doc
        }
        other => return Err(ToolError::rejected(format!("unknown source '{other}'"))),
    };
    let models = declared_models(&doc);
    out["models"] = json!(models.iter().map(ModelFile::to_value).collect::<Vec<_>>());
    out["missing_models"] = json!(missing_models(cx, &models).await);
    if editor_format {
        out["format"] = json!("editor");
        out["workflow"] = doc;
        return Ok(Output::Json(out));
    }
    let info = c.object_info().await?;
    let wf = editor::to_api(&doc, &info, &Limits::DEFAULT.with_max_bytes(MAX_DOC)).map_err(|e| {
        ToolError::failed(format!(
            "'{name}' cannot be converted to the API format with this server's nodes: {e} (format editor returns it as stored)"
        ))
    })?;
    let problems: Vec<String> = wf.validate(&info).iter().take(50).map(ToString::to_string).collect();
    out["format"] = json!("api");
    out["node_count"] = json!(wf.len());
    if !problems.is_empty() {
        out["to_connect"] = json!(problems);
        out["note"] = json!(
            "ComfyUI would refuse it as it is: connect or set what `to_connect` names (a blueprint's open inputs, \
             files to upload) with comfyui_modify_workflow, then check with comfyui_validate_workflow"
        );
    }
    out["workflow"] = wf.to_value();
    Ok(Output::Json(out))
}
