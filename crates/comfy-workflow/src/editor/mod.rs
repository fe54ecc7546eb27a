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
//! list of `[inner node id, widget name]`, or that list as JSON text) take
//! the instance's `widgets_values` in the same order, as the front end sets
//! them on the inner widgets when it loads the file: the value on the
//! instance is what the inner node sends. An entry `["-1", input]` promotes
//! a subgraph input: its value goes to the inner inputs linked from the
//! subgraph's input node, unless the instance's input is connected. An
//! instance without `proxyWidgets` promotes its inputs that carry a widget
//! (`inputs[].widget`), in order. An entry naming a nested instance sets
//! that instance's promoted widget of the same name, which sets its inner
//! node in turn, through at most [`MAX_NESTING`] levels; the whole
//! conversion follows at most [`MAX_STEPS`] links.
//!
//! Layout: `scope` reads the document into plain structs, `widgets` maps
//! widget values to inputs; this file follows the links and writes the API
//! nodes.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

mod scope;
mod widgets;

use crate::object_info::ObjectInfo;
use crate::{Input, Limits, Link, Node, NodeId, Workflow};
use scope::{Scope, Subgraph, UiInput, UiNode, parse_scope};
use widgets::assign_widgets;

/// Node types that exist only in the editor.
const VIRTUAL: &[&str] = &["Reroute", "PrimitiveNode", "Note", "MarkdownNote"];
/// Deepest chain of reroutes, bypasses and subgraphs followed.
const MAX_HOPS: usize = 256;
/// Deepest nesting of subgraph instances converted.
pub const MAX_NESTING: usize = 32;
/// Most links followed in one conversion, all chains together.
pub const MAX_STEPS: usize = 1_000_000;
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
    /// Subgraphs nest deeper than [`MAX_NESTING`], or converting takes
    /// more than [`MAX_STEPS`] steps.
    #[error("workflow is too intricate to convert: {0}")]
    TooIntricate(&'static str),
}

/// Where a subgraph's scope sits: the outer node and the outer scope's
/// context, so `-10` (subgraph input) links can be followed outwards, and
/// the values the instance promotes into it.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    scope: &'a Scope,
    prefix: &'a str,
    parent: Option<(&'a UiNode, &'a Subgraph, &'a Ctx<'a>)>,
    promos: &'a [Promo],
    depth: usize,
}

/// A value an instance promotes into its subgraph: for widget `widget` of
/// inner node `node` (`-1`: the subgraph input of that name).
#[derive(Debug, Clone)]
struct Promo {
    node: String,
    widget: String,
    value: Value,
    /// Where the value is written: the instance's id and the index in its
    /// `widgets_values`.
    source: (String, usize),
}

enum Source {
    Output(String, u32),
    Value(Value),
    Nothing,
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
    to_api_traced(doc, info, limits).map(|c| c.workflow)
}

/// A conversion, and which promoted values it carried.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Converted {
    /// The API-format workflow.
    pub workflow: Workflow,
    /// The promoted values the workflow carries to an inner node: the id
    /// of the subgraph instance that holds each (`5`, or `5:7` inside
    /// instance 5) and its index in that instance's `widgets_values`.
    pub promoted: BTreeSet<(String, usize)>,
}

/// [`to_api`], also saying which promoted widget values reached an inner
/// node (an inspector judges the others as content the conversion drops).
///
/// # Errors
/// As [`to_api`].
pub fn to_api_traced(doc: &Value, info: &ObjectInfo, limits: &Limits) -> Result<Converted, ConvertError> {
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
        steps: Cell::new(0),
        carried: RefCell::new(BTreeSet::new()),
    };
    let ctx = Ctx {
        scope: &top,
        prefix: "",
        parent: None,
        promos: &[],
        depth: 0,
    };
    conv.emit(&ctx)?;
    if !conv.unknown.is_empty() {
        conv.unknown.sort();
        conv.unknown.dedup();
        return Err(ConvertError::UnknownNodes(conv.unknown));
    }
    Ok(Converted {
        workflow: conv.out,
        promoted: conv.carried.into_inner(),
    })
}

/// The values instance `node` (id `id`) promotes into its subgraph: its
/// `proxyWidgets` entries (else its inputs that carry a widget, as `-1`
/// entries) with its `widgets_values` in order, each overridden by what
/// the scope around it (`outer`) promotes to that widget of the instance.
fn promos_of(node: &UiNode, id: &str, outer: &[Promo]) -> Vec<Promo> {
    let entries: Vec<(String, String)> = if node.proxies.is_empty() {
        node.inputs
            .iter()
            .filter(|i| i.widget)
            .map(|i| ("-1".to_owned(), i.name.clone()))
            .collect()
    } else {
        node.proxies.clone()
    };
    let values = node.widgets.as_array();
    let own_id = node.id.to_string();
    let mut out = Vec::new();
    for (i, (inner, widget)) in entries.into_iter().enumerate() {
        let over = outer.iter().find(|p| p.node == own_id && p.widget == widget);
        let (value, source) = match (over, values.and_then(|v| v.get(i))) {
            (Some(p), _) => (p.value.clone(), p.source.clone()),
            (None, Some(v)) => (v.clone(), (id.to_owned(), i)),
            (None, None) => continue,
        };
        out.push(Promo {
            node: inner,
            widget,
            value,
            source,
        });
    }
    out
}

struct Converter<'a> {
    info: &'a ObjectInfo,
    subgraphs: &'a HashMap<String, Subgraph>,
    out: Workflow,
    unknown: Vec<String>,
    limits: &'a Limits,
    /// Links followed so far, against [`MAX_STEPS`].
    steps: Cell<usize>,
    /// Promoted values that reached an inner node.
    carried: RefCell<BTreeSet<(String, usize)>>,
}

impl Converter<'_> {
    /// One more step of work; an error past the budget.
    fn step(&self) -> Result<(), ConvertError> {
        let n = self.steps.get() + 1;
        self.steps.set(n);
        if n > MAX_STEPS {
            return Err(ConvertError::TooIntricate(
                "it takes too many steps to follow its links",
            ));
        }
        Ok(())
    }

    /// The context of instance `node` of `sg`, inside `ctx`, with the
    /// values it promotes (kept in `promos`).
    fn enter<'c>(
        ctx: &'c Ctx<'c>,
        node: &'c UiNode,
        sg: &'c Subgraph,
        prefix: &'c str,
        promos: &'c [Promo],
    ) -> Result<Ctx<'c>, ConvertError> {
        if ctx.depth >= MAX_NESTING {
            return Err(ConvertError::TooIntricate("subgraphs nest too deeply"));
        }
        Ok(Ctx {
            scope: &sg.scope,
            prefix,
            parent: Some((node, sg, ctx)),
            promos,
            depth: ctx.depth + 1,
        })
    }

    fn emit(&mut self, ctx: &Ctx<'_>) -> Result<(), ConvertError> {
        for node in &ctx.scope.nodes {
            if node.mode == MUTED || node.mode == BYPASSED || VIRTUAL.contains(&node.kind.as_str()) {
                continue;
            }
            if let Some(sg) = self.subgraphs.get(&node.kind) {
                self.step()?;
                let id = format!("{}{}", ctx.prefix, node.id);
                let promos = promos_of(node, &id, ctx.promos);
                let prefix = format!("{id}:");
                let inner = Self::enter(ctx, node, sg, &prefix, &promos)?;
                self.emit(&inner)?;
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
            // The widgets the instance around promotes: the instance's value
            // is what is sent (only widget inputs the node declares; the
            // editor-only `control_after_generate` is not sent).
            let own_id = node.id.to_string();
            for p in ctx.promos.iter().filter(|p| p.node == own_id) {
                if def.inputs.iter().any(|d| d.kind.is_widget() && d.name == p.widget) {
                    api.set_input(p.widget.clone(), Input::Value(p.value.clone()));
                    self.carried.borrow_mut().insert(p.source.clone());
                }
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
        self.step()?;
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
                // Not connected outside: the value the instance promotes
                // to that input, if any.
                return Ok(match ctx.promos.iter().find(|p| p.node == "-1" && &p.widget == name) {
                    Some(p) => {
                        self.carried.borrow_mut().insert(p.source.clone());
                        Source::Value(p.value.clone())
                    }
                    None => Source::Nothing,
                });
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
            let id = format!("{}{}", ctx.prefix, origin.id);
            let promos = promos_of(origin, &id, ctx.promos);
            let prefix = format!("{id}:");
            let inner = Self::enter(ctx, origin, sg, &prefix, &promos)?;
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
