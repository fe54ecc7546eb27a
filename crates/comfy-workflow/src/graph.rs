//! The API-format workflow: node id → `{class_type, inputs, _meta?}`, where
//! an input is a link `[node_id, output_index]` or a literal value.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use smol_str::SmolStr;

use crate::error::type_name;
use crate::{Limits, NodeId, ParseError};

/// A link from another node's output.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Link {
    /// The node whose output is used.
    pub node: NodeId,
    /// Which of its outputs (0-based).
    pub output: u32,
}

/// One input of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Another node's output.
    Link(Link),
    /// A literal value (number, string, boolean, list, object, null).
    Value(Value),
}

impl Input {
    /// The link, if this input is one.
    pub fn as_link(&self) -> Option<&Link> {
        match self {
            Input::Link(l) => Some(l),
            Input::Value(_) => None,
        }
    }

    /// The literal, if this input is one.
    pub fn as_value(&self) -> Option<&Value> {
        match self {
            Input::Value(v) => Some(v),
            Input::Link(_) => None,
        }
    }

    /// The input as API-format JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Input::Link(l) => Value::Array(vec![Value::String(l.node.to_string()), Value::from(l.output)]),
            Input::Value(v) => v.clone(),
        }
    }
}

/// One node of a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Its id.
    pub id: NodeId,
    /// The node class ComfyUI runs (`KSampler`, `SaveImage`, ...). Class
    /// and input names are [`SmolStr`]s: almost all fit inline, so a parsed
    /// workflow allocates nothing for them.
    pub class_type: SmolStr,
    /// Inputs in document order.
    pub inputs: Vec<(SmolStr, Input)>,
    /// The `_meta` object (the editor puts the node title there). Boxed,
    /// like `extra`: most nodes have neither, and a small node keeps
    /// parsing and copying cheap.
    pub meta: Option<Box<Value>>,
    /// Any other keys of the node object, kept for round trips (`None`
    /// when there are none).
    pub extra: Option<Box<Map<String, Value>>>,
}

impl Node {
    /// A node with no inputs.
    pub fn new(id: NodeId, class_type: impl Into<SmolStr>) -> Self {
        Self {
            id,
            class_type: class_type.into(),
            inputs: Vec::new(),
            meta: None,
            extra: None,
        }
    }

    /// The input called `name`.
    pub fn input(&self, name: &str) -> Option<&Input> {
        self.inputs.iter().find(|(n, _)| n == name).map(|(_, i)| i)
    }

    /// The literal value of input `name`, if it has one.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.input(name).and_then(Input::as_value)
    }

    /// Sets input `name`, keeping its position if it exists.
    pub fn set_input(&mut self, name: impl Into<SmolStr>, input: Input) {
        let name = name.into();
        match self.inputs.iter_mut().find(|(n, _)| *n == name) {
            Some((_, slot)) => *slot = input,
            None => self.inputs.push((name, input)),
        }
    }

    /// Removes input `name`; returns it.
    pub fn remove_input(&mut self, name: &str) -> Option<Input> {
        let pos = self.inputs.iter().position(|(n, _)| n == name)?;
        Some(self.inputs.remove(pos).1)
    }

    /// The links into this node, with the input names.
    pub fn links(&self) -> impl Iterator<Item = (&str, &Link)> {
        self.inputs
            .iter()
            .filter_map(|(n, i)| i.as_link().map(|l| (n.as_str(), l)))
    }

    /// The title the editor gave the node, if any.
    pub fn title(&self) -> Option<&str> {
        self.meta.as_deref()?.get("title")?.as_str()
    }
}

/// An API-format workflow: nodes in document order.
///
/// Invariants: `index` maps every node's id to its position in `nodes`;
/// `order`, once computed, is the execution order of the nodes as they
/// are, and every `&mut self` method clears it (validation, analysis and
/// the model list each need the order, so a tool computes it once).
#[derive(Debug, Clone, Default)]
pub struct Workflow {
    nodes: Vec<Node>,
    index: HashMap<NodeId, usize, foldhash::fast::RandomState>,
    order: OnceLock<Result<Vec<usize>, Vec<usize>>>,
}

impl PartialEq for Workflow {
    fn eq(&self, other: &Self) -> bool {
        self.nodes == other.nodes
    }
}

impl Workflow {
    /// An empty workflow.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses API-format JSON under `limits`: duplicate keys, sizes and
    /// depth are checked while reading.
    ///
    /// # Errors
    /// Any [`ParseError`]; each names the node and field at fault.
    ///
    /// # Examples
    /// ```
    /// use comfy_workflow::{Limits, Workflow};
    /// let wf = Workflow::from_json(br#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 64}},
    ///                                  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}"#,
    ///                              &Limits::DEFAULT).unwrap();
    /// assert_eq!(wf.len(), 2);
    /// assert_eq!(wf.node("2").unwrap().links().next().unwrap().1.node.as_str(), "1");
    /// ```
    pub fn from_json(bytes: &[u8], limits: &Limits) -> Result<Self, ParseError> {
        crate::strict::parse_workflow(bytes, limits)
    }

    /// Builds a workflow from an already-parsed value, checking its shape and
    /// the node-count bound.
    ///
    /// # Errors
    /// [`ParseError::NotAnObject`], [`ParseError::TooManyNodes`],
    /// [`ParseError::InvalidNodeId`], [`ParseError::NodeNotObject`],
    /// [`ParseError::MissingClassType`], [`ParseError::InputsNotObject`],
    /// [`ParseError::BadLinkIndex`].
    pub fn from_value(value: Value, limits: &Limits) -> Result<Self, ParseError> {
        let Value::Object(map) = value else {
            return Err(ParseError::NotAnObject {
                found: type_name(&value),
            });
        };
        if map.len() > limits.max_nodes {
            return Err(ParseError::TooManyNodes { max: limits.max_nodes });
        }
        let mut wf = Workflow {
            nodes: Vec::with_capacity(map.len()),
            index: HashMap::with_capacity_and_hasher(map.len(), foldhash::fast::RandomState::default()),
            order: OnceLock::new(),
        };
        for (id, node) in map {
            let node_id = NodeId::new(id.clone()).map_err(|reason| ParseError::InvalidNodeId {
                id: id.escape_debug().to_string(),
                reason,
            })?;
            let node = parse_node(node_id, node)?;
            wf.index.insert(node.id.clone(), wf.nodes.len());
            wf.nodes.push(node);
        }
        Ok(wf)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The nodes in document order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node with id `id`.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.index.get(id).map(|&i| &self.nodes[i])
    }

    /// The execution order, computed by `sort` the first time it is asked
    /// for since the workflow last changed.
    pub(crate) fn cached_order(
        &self,
        sort: impl FnOnce() -> Result<Vec<usize>, Vec<usize>>,
    ) -> &Result<Vec<usize>, Vec<usize>> {
        self.order.get_or_init(sort)
    }

    /// The position of node `id` in document order.
    pub(crate) fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The node with id `id`, mutably.
    pub fn node_mut(&mut self, id: &str) -> Option<&mut Node> {
        self.order.take();
        self.index.get(id).map(|&i| &mut self.nodes[i])
    }

    /// Whether a node `id` exists.
    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// Adds `node` at the end.
    ///
    /// # Errors
    /// The id, when a node already has it.
    pub fn insert(&mut self, node: Node) -> Result<(), NodeId> {
        if self.index.contains_key(&node.id) {
            return Err(node.id);
        }
        self.order.take();
        self.index.insert(node.id.clone(), self.nodes.len());
        self.nodes.push(node);
        Ok(())
    }

    /// Adds `node`, whose id the caller has checked is not in use (one
    /// hash instead of two, for the parser).
    pub(crate) fn push_unique(&mut self, node: Node) {
        debug_assert!(!self.contains(node.id.as_str()));
        self.order.take();
        self.index.insert(node.id.clone(), self.nodes.len());
        self.nodes.push(node);
    }

    /// Removes node `id` and returns it. Links pointing at it are left alone.
    pub fn remove(&mut self, id: &str) -> Option<Node> {
        let pos = self.index.remove(id)?;
        self.order.take();
        let node = self.nodes.remove(pos);
        for i in self.index.values_mut() {
            if *i > pos {
                *i -= 1;
            }
        }
        Some(node)
    }

    /// The smallest integer id larger than every integer id in use, as the
    /// editor allocates new ids.
    pub fn next_id(&self) -> NodeId {
        let next = self
            .nodes
            .iter()
            .filter_map(|n| n.id.as_number())
            .max()
            .map_or(1, |m| m.saturating_add(1));
        NodeId::from_number(next)
    }

    /// The workflow as API-format JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The workflow as compact API-format JSON text.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn parse_node(id: NodeId, node: Value) -> Result<Node, ParseError> {
    let Value::Object(mut obj) = node else {
        return Err(ParseError::NodeNotObject {
            node: id.to_string(),
            found: type_name(&node),
        });
    };
    let Some(Value::String(class_type)) = obj.remove("class_type") else {
        return Err(ParseError::MissingClassType { node: id.to_string() });
    };
    let inputs = match obj.remove("inputs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => {
            let mut inputs = Vec::with_capacity(m.len());
            for (name, v) in m {
                let input = parse_input(&id, &name, v)?;
                inputs.push((SmolStr::from(name), input));
            }
            inputs
        }
        Some(other) => {
            return Err(ParseError::InputsNotObject {
                node: id.to_string(),
                found: type_name(&other),
            });
        }
    };
    let meta = obj.remove("_meta").map(Box::new);
    Ok(Node {
        id,
        class_type: class_type.into(),
        inputs,
        meta,
        extra: (!obj.is_empty()).then(|| Box::new(obj)),
    })
}

/// A two-element array `[string, integer]` is a link, as ComfyUI reads it.
pub(crate) fn parse_input(node: &NodeId, name: &str, v: Value) -> Result<Input, ParseError> {
    let Value::Array(items) = v else {
        return Ok(Input::Value(v));
    };
    let is_link = matches!(items.as_slice(), [Value::String(t), Value::Number(_)] if NodeId::check(t).is_ok());
    if !is_link {
        return Ok(Input::Value(Value::Array(items)));
    }
    let mut parts = items.into_iter();
    let (Some(Value::String(target)), Some(Value::Number(idx))) = (parts.next(), parts.next()) else {
        return Ok(Input::Value(Value::Null));
    };
    match idx.as_u64().and_then(|i| u32::try_from(i).ok()) {
        Some(output) => match NodeId::new(target) {
            Ok(node) => Ok(Input::Link(Link { node, output })),
            Err(_) => Ok(Input::Value(Value::Null)),
        },
        None => Err(ParseError::BadLinkIndex {
            node: node.to_string(),
            input: name.to_owned(),
            target,
            index: idx.to_string(),
        }),
    }
}

struct NodeBody<'a>(&'a Node);

impl Serialize for NodeBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let node = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("inputs", &Inputs(&node.inputs))?;
        m.serialize_entry("class_type", node.class_type.as_str())?;
        if let Some(meta) = &node.meta {
            m.serialize_entry("_meta", meta)?;
        }
        for (k, v) in node.extra.iter().flat_map(|m| m.iter()) {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

struct Inputs<'a>(&'a [(SmolStr, Input)]);

impl Serialize for Inputs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, input) in self.0 {
            match input {
                Input::Link(l) => m.serialize_entry(name.as_str(), &(l.node.as_str(), l.output))?,
                Input::Value(v) => m.serialize_entry(name.as_str(), v)?,
            }
        }
        m.end()
    }
}

impl Serialize for Workflow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.nodes.len()))?;
        for node in &self.nodes {
            m.serialize_entry(node.id.as_str(), &NodeBody(node))?;
        }
        m.end()
    }
}
