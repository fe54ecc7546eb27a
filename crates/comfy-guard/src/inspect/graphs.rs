//! Graphs inside graphs: where a workflow can carry another one, and how
//! the inspector reads each as a workflow of its own.
//!
//! A graph can sit anywhere a value can: an API-format graph (an object of
//! nodes with `class_type`) or an editor-format graph (an object with a
//! `nodes` array of objects with `type`) under any input, at any depth, in
//! `widgets_values` given as an object, or as JSON text in a string. The
//! inspector finds each while it walks an input and judges it as a nested
//! workflow (see `Run::scan_value`). An editor file adds places the
//! conversion to the API format never reads: subgraph definitions nested in
//! definitions, legacy group nodes (`extra.groupNodes`), and muted or
//! bypassed nodes, which do not run today but one click turns on;
//! [`editor_hidden`] gathers those.
//!
//! Every step is bounded: nesting by the subgraph depth, nodes by the node
//! limit (all graphs together), text by the string limit.

use std::collections::BTreeSet;

use comfy_workflow::{Input, Limits, Node, NodeId, Workflow};
use serde_json::Value;

/// An editor node's `mode`: muted (never runs).
const MUTED: u64 = 2;
/// An editor node's `mode`: bypassed (its inputs pass through).
const BYPASSED: u64 = 4;

/// Keys of an editor node that are not content: its class, id and mode
/// (read apart), and layout.
const LAYOUT_KEYS: &[&str] = &[
    "id", "type", "mode", "pos", "size", "flags", "order", "color", "bgcolor", "shape",
];

/// Whether `v` is an API-format graph: an object with at least one value
/// that is an object with a `class_type`.
pub(crate) fn is_api_graph(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.values().any(|n| n.get("class_type").is_some()))
}

/// Whether `v` is an editor-format graph: an object whose `nodes` is an
/// array holding at least one object with a string `type`.
pub(crate) fn is_editor_graph(v: &Value) -> bool {
    v.get("nodes")
        .and_then(Value::as_array)
        .is_some_and(|nodes| nodes.iter().any(|n| n.get("type").is_some_and(Value::is_string)))
}

/// Text that may be a JSON document holding a graph (checked cheaply
/// before parsing).
pub(crate) fn may_hold_graph(s: &str) -> bool {
    let t = s.trim_start();
    (t.starts_with('{') || t.starts_with('['))
        && (s.contains("class_type") || (s.contains("\"nodes\"") && s.contains("\"type\"")))
}

/// The nodes of an editor graph as an API-shaped workflow the inspector
/// can judge: each node's class, and every content key (`widgets_values`,
/// `properties` with its promoted widgets, `title`, and any other key) as
/// an input, so class and string checks, and the search for graphs inside,
/// apply. `keep` chooses the nodes (given each node's object). Nodes
/// without a class or an id are skipped.
///
/// # Errors
/// A message when the graph has more nodes than the limit, or an id
/// repeats or is not a valid id.
pub fn editor_graph_as_workflow(
    graph: &Value,
    prefix: &str,
    limits: &Limits,
    keep: &dyn Fn(&Value) -> bool,
    into: &mut Workflow,
) -> Result<(), String> {
    for node in graph.get("nodes").and_then(Value::as_array).into_iter().flatten() {
        let Some(class) = node.get("type").and_then(Value::as_str) else {
            continue;
        };
        if !keep(node) {
            continue;
        }
        let raw_id = match node.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(other @ Value::Number(_)) => other.to_string(),
            _ => continue,
        };
        let id = NodeId::new(format!("{prefix}{raw_id}"))
            .map_err(|reason| format!("editor node id {raw_id:?}: {reason}"))?;
        if into.len() >= limits.max_nodes {
            return Err(format!("more than {} nodes", limits.max_nodes));
        }
        let mut api = Node::new(id, class);
        for (key, value) in node.as_object().into_iter().flatten() {
            if !LAYOUT_KEYS.contains(&key.as_str()) {
                api.set_input(key.as_str(), Input::Value(value.clone()));
            }
        }
        into.insert(api)
            .map_err(|id| format!("duplicate editor node id {id}"))?;
    }
    Ok(())
}

/// What an editor file holds that its conversion to the API format never
/// reads, as one workflow to inspect: muted and bypassed nodes of every
/// graph (top level and subgraph definitions), every node of subgraph
/// definitions nested inside definitions (at any depth), and every node of
/// legacy group nodes (`extra.groupNodes`), and top-level nodes whose
/// content the conversion may drop (`widgets_values` given as an object;
/// subgraph instances with promoted widgets). Node ids are prefixed with where
/// they sit (`muted:`, `definitions/<i>/...:`, `groupNodes/<name>:`), and
/// the ids of muted or bypassed nodes come back apart, so findings about
/// them can say so. `carried` names the promoted values (top-level
/// instance id, index in its `widgets_values`) the conversion already
/// gives an inner node: judged there, they are left out here, so a
/// payload is reported once.
///
/// # Errors
/// A message when a limit is broken (nodes, nesting).
pub fn editor_hidden(
    doc: &Value,
    limits: &Limits,
    max_depth: usize,
    carried: &BTreeSet<(String, usize)>,
) -> Result<Hidden, String> {
    let mut wf = Workflow::new();
    let mut inactive = Vec::new();
    // Nodes whose content the conversion may not carry: inactive ones, and
    // nodes of a class (not a subgraph instance) with `widgets_values`
    // given as an object.
    let definitions: Vec<&str> = doc
        .pointer("/definitions/subgraphs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("id").and_then(Value::as_str))
        .collect();
    let instance = |node: &Value| {
        node.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| definitions.contains(&t))
    };
    // Subgraph instances with promoted widgets (`properties.proxyWidgets`):
    // the values they hold are the front end's to send, so their content is
    // judged (their "class" is a definition id, not judged).
    let hidden = |node: &Value| {
        is_inactive(node)
            || node.get("widgets_values").is_some_and(Value::is_object)
            || (instance(node) && node.pointer("/properties/proxyWidgets").is_some())
    };
    let note_inactive = |wf: &Workflow, before: usize, graph: &Value, prefix: &str, inactive: &mut Vec<String>| {
        for node in wf.nodes().iter().skip(before) {
            let raw = node.id.as_str().strip_prefix(prefix).unwrap_or(node.id.as_str());
            if find_editor_node(graph, raw).is_some_and(is_inactive) {
                inactive.push(node.id.to_string());
            }
        }
    };
    // The top level and its definitions: what the conversion skips.
    let before = wf.len();
    editor_graph_as_workflow(doc, "", limits, &hidden, &mut wf)?;
    note_inactive(&wf, before, doc, "", &mut inactive);
    for (id, index) in carried {
        if let Some(Input::Value(Value::Array(values))) = wf
            .node_mut(id)
            .and_then(|n| n.inputs.iter_mut().find(|(k, _)| k == "widgets_values"))
            .map(|(_, i)| i)
            && let Some(v) = values.get_mut(*index)
        {
            *v = Value::Null;
        }
    }
    // Definitions: (graph, prefix, depth). Top-level definitions (depth 1)
    // run when instantiated, so only their inactive nodes are hidden;
    // deeper ones are read by nothing but an attacker's hopes.
    let mut stack: Vec<(&Value, String, usize)> = vec![(doc, String::new(), 0)];
    while let Some((graph, prefix, depth)) = stack.pop() {
        let defs = graph.pointer("/definitions/subgraphs").and_then(Value::as_array);
        for (i, sg) in defs.into_iter().flatten().enumerate() {
            let here = format!("{prefix}definitions/{i}:");
            if depth + 1 > max_depth {
                return Err(format!("subgraph definitions nest deeper than {max_depth} levels"));
            }
            let before = wf.len();
            if depth == 0 {
                editor_graph_as_workflow(sg, &here, limits, &hidden, &mut wf)?;
            } else {
                editor_graph_as_workflow(sg, &here, limits, &|_| true, &mut wf)?;
            }
            note_inactive(&wf, before, sg, &here, &mut inactive);
            stack.push((sg, here, depth + 1));
        }
    }
    if let Some(groups) = doc.pointer("/extra/groupNodes").and_then(Value::as_object) {
        for (name, group) in groups {
            let prefix = format!("groupNodes/{}:", name.escape_debug());
            editor_graph_as_workflow(group, &prefix, limits, &|_| true, &mut wf)?;
        }
    }
    let instances: Vec<String> = wf
        .nodes()
        .iter()
        .filter(|n| definitions.contains(&n.class_type.as_str()))
        .map(|n| n.id.to_string())
        .collect();
    Ok(Hidden {
        workflow: wf,
        inactive,
        instances,
    })
}

/// What [`editor_hidden`] found.
#[derive(Debug)]
pub struct Hidden {
    /// The hidden nodes as one workflow.
    pub workflow: Workflow,
    /// Ids (in `workflow`) of nodes that are muted or bypassed.
    pub inactive: Vec<String>,
    /// Ids of subgraph instances, judged on their content only (their
    /// class is a definition id).
    pub instances: Vec<String>,
}

/// Whether an editor node is muted or bypassed.
fn is_inactive(node: &Value) -> bool {
    matches!(node.get("mode").and_then(Value::as_u64), Some(MUTED | BYPASSED))
}

/// The node of editor graph `graph` whose id prints as `id`.
fn find_editor_node<'a>(graph: &'a Value, id: &str) -> Option<&'a Value> {
    graph
        .get("nodes")
        .and_then(Value::as_array)?
        .iter()
        .find(|n| match n.get("id") {
            Some(Value::String(s)) => s == id,
            Some(Value::Number(n)) => n.to_string() == id,
            _ => false,
        })
}
