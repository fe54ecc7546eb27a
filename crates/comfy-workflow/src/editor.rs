//! The editor ("UI") format the ComfyUI front end saves — `nodes`, `links`,
//! `widgets_values`, groups, reroutes, primitive nodes, muted and bypassed
//! nodes, subgraphs — converted to the API format `POST /prompt` takes.
//!
//! Widget values are matched to input names with the server's
//! `/object_info`: each widget input (numbers, strings, booleans, combos)
//! takes one value in declaration order, and the editor's extra widgets
//! (`control_after_generate` after a seed, the upload button after an image
//! combo) take a value that is not sent. Links are resolved through
//! reroutes, primitive nodes (whose value becomes a literal), bypassed nodes
//! (which pass an input of the link's type through) and subgraphs (whose
//! nodes get ids `outer:inner`); muted nodes are dropped.
//!
//! A subgraph instance's promoted widgets (`properties.proxyWidgets`, a
//! list of `[inner node id, widget name]`) take the instance's
//! `widgets_values` in the same order, as the front end sets them on the
//! inner widgets when it loads the file: the value on the instance is what
//! the inner node sends. Entries that promote a subgraph input (`-1`) or a
//! widget of a nested instance's own promotion are not followed.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::object_info::{InputDef, InputKind, ObjectInfo};
use crate::{Input, Limits, Link, Node, NodeId, Workflow};

/// Node types that exist only in the editor.
const VIRTUAL: &[&str] = &["Reroute", "PrimitiveNode", "Note", "MarkdownNote"];
/// Deepest chain of reroutes, bypasses and subgraphs followed.
const MAX_HOPS: usize = 256;
/// Mode of a muted ("never") node.
const MUTED: i64 = 2;
/// Mode of a bypassed node.
const BYPASSED: i64 = 4;

/// Why an editor-format workflow could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// Not an editor-format document.
    #[error("not an editor-format workflow: {0}")]
    NotEditorFormat(&'static str),
    /// Node classes the server does not have.
    #[error("node types not known to the server: {}", .0.join(", "))]
    UnknownNodes(Vec<String>),
    /// A link that points nowhere, or a chain too long to follow.
    #[error("node `{node}` input `{input}`: {reason}")]
    BadLink {
        /// The node.
        node: String,
        /// The input.
        input: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// More nodes than the limit.
    #[error("workflow has more than {max} nodes")]
    TooManyNodes {
        /// The limit.
        max: usize,
    },
}

#[derive(Debug, Clone)]
struct UiLink {
    origin: i64,
    origin_slot: usize,
    target: i64,
    target_slot: usize,
    kind: String,
}

#[derive(Debug, Clone)]
struct UiInput {
    name: String,
    kind: String,
    link: Option<i64>,
}

#[derive(Debug, Clone)]
struct UiNode {
    id: i64,
    kind: String,
    mode: i64,
    title: Option<String>,
    inputs: Vec<UiInput>,
    widgets: Value,
    /// Promoted widgets of a subgraph instance: `(inner node id, widget)`.
    proxies: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct Scope {
    nodes: Vec<UiNode>,
    by_id: HashMap<i64, usize>,
    links: HashMap<i64, UiLink>,
}

#[derive(Debug)]
struct Subgraph {
    scope: Scope,
    inputs: Vec<String>,
}

/// Where a subgraph's scope sits: the outer node and the outer scope's
/// context, so `-10` (subgraph input) links can be followed outwards.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    scope: &'a Scope,
    prefix: &'a str,
    parent: Option<(&'a UiNode, &'a Subgraph, &'a Ctx<'a>)>,
}

enum Source {
    Output(String, u32),
    Value(Value),
    Nothing,
}

fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
}

fn parse_scope(nodes: &[Value], links: &[Value]) -> Scope {
    let mut scope = Scope::default();
    for n in nodes {
        let Some(id) = int(n.get("id")) else { continue };
        let inputs = n
            .get("inputs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|i| UiInput {
                        name: i.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        kind: i.get("type").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        link: int(i.get("link")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        scope.by_id.insert(id, scope.nodes.len());
        scope.nodes.push(UiNode {
            id,
            kind: n.get("type").and_then(Value::as_str).unwrap_or_default().to_owned(),
            mode: n.get("mode").and_then(Value::as_i64).unwrap_or(0),
            title: n.get("title").and_then(Value::as_str).map(str::to_owned),
            inputs,
            widgets: n.get("widgets_values").cloned().unwrap_or(Value::Null),
            proxies: n
                .pointer("/properties/proxyWidgets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    let part = |i: usize| match p.get(i) {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Number(n)) => n.to_string(),
                        _ => String::new(),
                    };
                    (part(0), part(1))
                })
                .collect(),
        });
    }
    for l in links {
        // Top-level links are arrays, subgraph links objects.
        let parsed = match l {
            Value::Array(a) => int(a.first()).map(|id| {
                (
                    id,
                    UiLink {
                        origin: int(a.get(1)).unwrap_or(i64::MIN),
                        origin_slot: int(a.get(2)).unwrap_or(0).max(0) as usize,
                        target: int(a.get(3)).unwrap_or(i64::MIN),
                        target_slot: int(a.get(4)).unwrap_or(0).max(0) as usize,
                        kind: a.get(5).and_then(Value::as_str).unwrap_or("*").to_owned(),
                    },
                )
            }),
            Value::Object(o) => int(o.get("id")).map(|id| {
                (
                    id,
                    UiLink {
                        origin: int(o.get("origin_id")).unwrap_or(i64::MIN),
                        origin_slot: int(o.get("origin_slot")).unwrap_or(0).max(0) as usize,
                        target: int(o.get("target_id")).unwrap_or(i64::MIN),
                        target_slot: int(o.get("target_slot")).unwrap_or(0).max(0) as usize,
                        kind: o.get("type").and_then(Value::as_str).unwrap_or("*").to_owned(),
                    },
                )
            }),
            _ => None,
        };
        if let Some((id, link)) = parsed {
            scope.links.insert(id, link);
        }
    }
    scope
}

/// The editor's extra widgets after a combo: an upload button.
fn has_upload(decl: &InputDef) -> bool {
    matches!(decl.kind, InputKind::Combo(_))
        && ["image_upload", "video_upload", "audio_upload", "file_upload"]
            .iter()
            .any(|k| decl.options.get(*k).and_then(Value::as_bool) == Some(true))
}

/// The value a widget starts with in the editor.
fn default_value(decl: &InputDef) -> Option<Value> {
    if let Some(d) = decl.options.get("default") {
        return Some(d.clone());
    }
    match &decl.kind {
        InputKind::Combo(options) => options.first().cloned(),
        InputKind::DynamicCombo(options) => options.first().map(|o| Value::String(o.key.clone())),
        _ => None,
    }
}

/// Sets the node's widget inputs from `widgets_values`: a list consumed in
/// widget order (with the editor's unsent extra widgets, and a dynamic
/// combo's sub-widgets after it), or an object by name. Widgets the saved
/// workflow has no value for (added to the node since) take their default.
fn assign_widgets(api: &mut Node, decls: &[InputDef], prefix: &str, values: &Value) {
    let mut list = match values {
        Value::Array(v) => Some(v.iter()),
        _ => None,
    };
    assign_from(api, decls, prefix, values, &mut list);
}

fn assign_from<'a>(
    api: &mut Node,
    decls: &[InputDef],
    prefix: &str,
    values: &'a Value,
    list: &mut Option<std::slice::Iter<'a, Value>>,
) {
    for decl in decls.iter().filter(|d| d.kind.is_widget()) {
        let name = format!("{prefix}{}", decl.name);
        let value = match (list.as_mut(), values) {
            (Some(iter), _) => iter.next().cloned(),
            (None, Value::Object(map)) => map.get(&name).or_else(|| map.get(&decl.name)).cloned(),
            _ => None,
        };
        if let Some(iter) = list.as_mut() {
            if decl.has_control_after_generate() {
                iter.next();
            }
            if has_upload(decl) {
                iter.next();
            }
        }
        let Some(value) = value.or_else(|| default_value(decl)) else {
            continue;
        };
        if let (InputKind::DynamicCombo(options), Value::String(key)) = (&decl.kind, &value)
            && let Some(chosen) = options.iter().find(|o| &o.key == key)
        {
            api.set_input(name.clone(), Input::Value(value.clone()));
            assign_from(api, &chosen.inputs, &format!("{name}."), values, list);
            continue;
        }
        api.set_input(name, Input::Value(value));
    }
}

/// Sets the widgets of inner node `id` that its subgraph instance `outer`
/// promotes to the values the instance holds (its `widgets_values`, in the
/// order of its `proxyWidgets`). Only widget inputs the node declares are
/// set; the editor-only `control_after_generate` is not sent.
fn promoted(api: &mut Node, decls: &[InputDef], id: i64, outer: &UiNode) {
    let Value::Array(values) = &outer.widgets else {
        return;
    };
    let id = id.to_string();
    for ((node, widget), value) in outer.proxies.iter().zip(values) {
        if *node == id && decls.iter().any(|d| d.kind.is_widget() && d.name == *widget) {
            api.set_input(widget.clone(), Input::Value(value.clone()));
        }
    }
}

/// Whether `doc` looks like an editor-format workflow (has `nodes` and
/// `links` lists) rather than the API format.
pub fn is_editor_format(doc: &Value) -> bool {
    doc.get("nodes").is_some_and(Value::is_array) && doc.get("links").is_some_and(Value::is_array)
}

/// Converts an editor-format workflow to the API format using `info`.
///
/// # Errors
/// [`ConvertError`]: not the editor format, node types the server does not
/// have (all named), broken links, or more nodes than `limits` allow.
pub fn to_api(doc: &Value, info: &ObjectInfo, limits: &Limits) -> Result<Workflow, ConvertError> {
    if !is_editor_format(doc) {
        return Err(ConvertError::NotEditorFormat("expected `nodes` and `links` lists"));
    }
    let empty = Vec::new();
    let list = |v: Option<&Value>| v.and_then(Value::as_array).unwrap_or(&empty).clone();
    let top = parse_scope(&list(doc.get("nodes")), &list(doc.get("links")));
    let mut subgraphs = HashMap::new();
    for sg in list(doc.pointer("/definitions/subgraphs")) {
        let Some(id) = sg.get("id").and_then(Value::as_str) else {
            continue;
        };
        let inputs = list(sg.get("inputs"))
            .iter()
            .map(|i| i.get("name").and_then(Value::as_str).unwrap_or_default().to_owned())
            .collect();
        subgraphs.insert(
            id.to_owned(),
            Subgraph {
                scope: parse_scope(&list(sg.get("nodes")), &list(sg.get("links"))),
                inputs,
            },
        );
    }
    let mut conv = Converter {
        info,
        subgraphs: &subgraphs,
        out: Workflow::new(),
        unknown: Vec::new(),
        limits,
    };
    let ctx = Ctx {
        scope: &top,
        prefix: "",
        parent: None,
    };
    conv.emit(&ctx, 0)?;
    if !conv.unknown.is_empty() {
        conv.unknown.sort();
        conv.unknown.dedup();
        return Err(ConvertError::UnknownNodes(conv.unknown));
    }
    Ok(conv.out)
}

struct Converter<'a> {
    info: &'a ObjectInfo,
    subgraphs: &'a HashMap<String, Subgraph>,
    out: Workflow,
    unknown: Vec<String>,
    limits: &'a Limits,
}

impl Converter<'_> {
    fn emit(&mut self, ctx: &Ctx<'_>, depth: usize) -> Result<(), ConvertError> {
        if depth > MAX_HOPS {
            return Err(ConvertError::BadLink {
                node: ctx.prefix.to_owned(),
                input: String::new(),
                reason: "subgraphs nest too deeply",
            });
        }
        for node in &ctx.scope.nodes {
            if node.mode == MUTED || node.mode == BYPASSED || VIRTUAL.contains(&node.kind.as_str()) {
                continue;
            }
            if let Some(sg) = self.subgraphs.get(&node.kind) {
                let prefix = format!("{}{}:", ctx.prefix, node.id);
                let inner = Ctx {
                    scope: &sg.scope,
                    prefix: &prefix,
                    parent: Some((node, sg, ctx)),
                };
                self.emit(&inner, depth + 1)?;
                continue;
            }
            let Some(def) = self.info.node(&node.kind) else {
                self.unknown.push(node.kind.clone());
                continue;
            };
            if self.out.len() >= self.limits.max_nodes {
                return Err(ConvertError::TooManyNodes {
                    max: self.limits.max_nodes,
                });
            }
            let id = NodeId::new(format!("{}{}", ctx.prefix, node.id)).map_err(|reason| ConvertError::BadLink {
                node: node.id.to_string(),
                input: String::new(),
                reason,
            })?;
            let mut api = Node::new(id, node.kind.clone());
            assign_widgets(&mut api, &def.inputs, "", &node.widgets);
            if let Some((outer, _, _)) = ctx.parent {
                promoted(&mut api, &def.inputs, node.id, outer);
            }
            for input in &node.inputs {
                let Some(link) = input.link else { continue };
                match self.resolve(ctx, link, &node.id.to_string(), &input.name, 0)? {
                    Source::Output(from, slot) => {
                        let from = NodeId::new(from).map_err(|reason| ConvertError::BadLink {
                            node: node.id.to_string(),
                            input: input.name.clone(),
                            reason,
                        })?;
                        api.set_input(
                            input.name.clone(),
                            Input::Link(Link {
                                node: from,
                                output: slot,
                            }),
                        );
                    }
                    Source::Value(v) => api.set_input(input.name.clone(), Input::Value(v)),
                    // A link cut by a muted or passed-through node, or an
                    // unconnected subgraph input: a widget keeps its own
                    // value, a connection is left out.
                    Source::Nothing => {}
                }
            }
            let title = node.title.clone().unwrap_or_else(|| def.display_name.clone());
            let mut meta = Map::new();
            meta.insert("title".into(), Value::String(title));
            api.meta = Some(Box::new(Value::Object(meta)));
            // Ids are unique within a scope and prefixed across scopes.
            let _ = self.out.insert(api);
        }
        Ok(())
    }

    /// Follows link `link_id` of `ctx` to the output, value or nothing that
    /// feeds it.
    fn resolve(
        &self,
        ctx: &Ctx<'_>,
        link_id: i64,
        node: &str,
        input: &str,
        hops: usize,
    ) -> Result<Source, ConvertError> {
        let bad = |reason| ConvertError::BadLink {
            node: node.to_owned(),
            input: input.to_owned(),
            reason,
        };
        if hops > MAX_HOPS {
            return Err(bad("the link chain is too long (a reroute or subgraph loop?)"));
        }
        let Some(link) = ctx.scope.links.get(&link_id) else {
            return Err(bad("link does not exist"));
        };
        if link.origin == -10 {
            // A subgraph input: follow the outer node's input of that name.
            let Some((outer, sg, parent)) = ctx.parent else {
                return Ok(Source::Nothing);
            };
            let Some(name) = sg.inputs.get(link.origin_slot) else {
                return Ok(Source::Nothing);
            };
            let Some(outer_link) = outer.inputs.iter().find(|i| &i.name == name).and_then(|i| i.link) else {
                return Ok(Source::Nothing);
            };
            return self.resolve(parent, outer_link, node, input, hops + 1);
        }
        let Some(&pos) = ctx.scope.by_id.get(&link.origin) else {
            return Err(bad("link comes from a node that does not exist"));
        };
        let origin = &ctx.scope.nodes[pos];
        if origin.mode == MUTED {
            return Ok(Source::Nothing);
        }
        match origin.kind.as_str() {
            "Reroute" => {
                return match origin.inputs.first().and_then(|i| i.link) {
                    Some(l) => self.resolve(ctx, l, node, input, hops + 1),
                    None => Ok(Source::Nothing),
                };
            }
            "PrimitiveNode" => {
                return Ok(match &origin.widgets {
                    Value::Array(v) if !v.is_empty() => Source::Value(v[0].clone()),
                    _ => Source::Nothing,
                });
            }
            "Note" | "MarkdownNote" => return Ok(Source::Nothing),
            _ => {}
        }
        if origin.mode == BYPASSED {
            // Pass through the input of the same slot if its type fits,
            // else the first input of the link's type.
            let fits = |i: &UiInput| i.kind == link.kind || i.kind == "*" || link.kind == "*";
            let through = origin
                .inputs
                .get(link.origin_slot)
                .filter(|i| fits(i))
                .or_else(|| origin.inputs.iter().find(|i| fits(i)));
            return match through.and_then(|i| i.link) {
                Some(l) => self.resolve(ctx, l, node, input, hops + 1),
                None => Ok(Source::Nothing),
            };
        }
        if let Some(sg) = self.subgraphs.get(&origin.kind) {
            // A subgraph's output: the inner link into its output node.
            let prefix = format!("{}{}:", ctx.prefix, origin.id);
            let inner = Ctx {
                scope: &sg.scope,
                prefix: &prefix,
                parent: Some((origin, sg, ctx)),
            };
            // Links into the subgraph's output node have target -20.
            let inner_link = sg
                .scope
                .links
                .iter()
                .find(|(_, l)| l.target == -20 && l.target_slot == link.origin_slot)
                .map(|(id, _)| *id);
            return match inner_link {
                Some(l) => self.resolve(&inner, l, node, input, hops + 1),
                None => Ok(Source::Nothing),
            };
        }
        let slot = u32::try_from(link.origin_slot).map_err(|_| bad("output slot out of range"))?;
        Ok(Source::Output(format!("{}{}", ctx.prefix, origin.id), slot))
    }
}
