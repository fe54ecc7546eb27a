//! Batch edits: add, remove, set, connect, disconnect. A batch applies all
//! or nothing, and an error names the operation's index and what was wrong.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{Input, Link, Node, NodeId, Workflow};

/// One edit, as JSON: `{"op": "add_node", ...}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Edit {
    /// Adds a node; its id defaults to the next free integer.
    AddNode {
        /// The node class.
        class_type: String,
        /// The id to use.
        #[serde(default)]
        node_id: Option<NodeId>,
        /// Initial inputs (links as `[node_id, output]`).
        #[serde(default)]
        inputs: Map<String, Value>,
    },
    /// Removes a node, and the inputs of other nodes linked to it.
    RemoveNode {
        /// The node.
        node_id: NodeId,
    },
    /// Sets one input to a literal value (or a link, written as one).
    SetInput {
        /// The node.
        node_id: NodeId,
        /// The input.
        input_name: String,
        /// The value.
        value: Value,
    },
    /// Links `from_node`'s output `from_output` into `to_node`'s `to_input`.
    Connect {
        /// The source node.
        from_node: NodeId,
        /// The source output index.
        from_output: u32,
        /// The target node.
        to_node: NodeId,
        /// The target input.
        to_input: String,
    },
    /// Removes an input that is a link.
    Disconnect {
        /// The node.
        node_id: NodeId,
        /// The input.
        input_name: String,
    },
}

impl Edit {
    /// The operation's name, as in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Edit::AddNode { .. } => "add_node",
            Edit::RemoveNode { .. } => "remove_node",
            Edit::SetInput { .. } => "set_input",
            Edit::Connect { .. } => "connect",
            Edit::Disconnect { .. } => "disconnect",
        }
    }
}

/// What a batch changed beyond what it asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EditReport {
    /// Ids of the nodes added, in order.
    pub added: Vec<NodeId>,
    /// Inputs removed because they linked to a removed node: (node, input).
    pub dropped_links: Vec<(NodeId, String)>,
}

/// Why an edit failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditErrorKind {
    /// No node has that id.
    #[error("node `{0}` not found")]
    NodeNotFound(NodeId),
    /// The id is taken.
    #[error("node `{0}` already exists")]
    NodeExists(NodeId),
    /// An input name that is empty.
    #[error("input name must not be empty")]
    EmptyInputName,
    /// A class name that is empty.
    #[error("class_type must not be empty")]
    EmptyClassType,
    /// The input exists but is not a link.
    #[error("input `{input}` of node `{node}` is not a link")]
    NotALink {
        /// The node.
        node: NodeId,
        /// The input.
        input: String,
    },
    /// The input does not exist.
    #[error("node `{node}` has no input `{input}`")]
    NoSuchInput {
        /// The node.
        node: NodeId,
        /// The input.
        input: String,
    },
    /// A link value in `inputs` or `value` that is malformed.
    #[error("input `{input}`: {reason}")]
    BadInput {
        /// The input.
        input: String,
        /// Why.
        reason: String,
    },
    /// Connecting a node to itself.
    #[error("node `{0}` cannot be connected to itself")]
    SelfLink(NodeId),
}

/// An edit batch failed: nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operation {index} ({op}): {kind}")]
pub struct EditError {
    /// The failing operation's index in the batch.
    pub index: usize,
    /// Its name.
    pub op: &'static str,
    /// What was wrong.
    pub kind: EditErrorKind,
}

fn to_input(node: &NodeId, name: &str, v: Value) -> Result<Input, EditErrorKind> {
    // Reuse the parser's reading of links, so an edit can never create a
    // link the parser would read differently.
    let mut one = Map::new();
    one.insert("class_type".into(), Value::String("_".into()));
    one.insert(
        "inputs".into(),
        Value::Object(std::iter::once((name.to_owned(), v)).collect()),
    );
    let doc = Value::Object(std::iter::once((node.to_string(), Value::Object(one))).collect());
    let wf = Workflow::from_value(doc, &crate::Limits::DEFAULT).map_err(|e| EditErrorKind::BadInput {
        input: name.to_owned(),
        reason: e.to_string(),
    })?;
    wf.nodes()
        .first()
        .and_then(|n| n.inputs.first())
        .map(|(_, i)| i.clone())
        .ok_or_else(|| EditErrorKind::BadInput {
            input: name.to_owned(),
            reason: "no value".into(),
        })
}

impl Workflow {
    /// Applies `edits` in order, all or nothing.
    ///
    /// # Errors
    /// [`EditError`] naming the first failing operation; the workflow is
    /// then unchanged.
    ///
    /// # Examples
    /// ```
    /// use comfy_workflow::{Edit, Limits, Workflow};
    /// let mut wf = Workflow::from_json(br#"{"1": {"class_type": "EmptyImage", "inputs": {}}}"#, &Limits::DEFAULT).unwrap();
    /// let edits: Vec<Edit> = serde_json::from_str(r#"[
    ///     {"op": "add_node", "class_type": "SaveImage"},
    ///     {"op": "connect", "from_node": "1", "from_output": 0, "to_node": "2", "to_input": "images"}
    /// ]"#).unwrap();
    /// wf.apply(&edits).unwrap();
    /// assert_eq!(wf.to_json_string(), r#"{"1":{"inputs":{},"class_type":"EmptyImage"},"2":{"inputs":{"images":["1",0]},"class_type":"SaveImage"}}"#);
    /// ```
    pub fn apply(&mut self, edits: &[Edit]) -> Result<EditReport, EditError> {
        let mut next = self.clone();
        let mut report = EditReport::default();
        for (index, edit) in edits.iter().enumerate() {
            next.apply_one(edit, &mut report).map_err(|kind| EditError {
                index,
                op: edit.name(),
                kind,
            })?;
        }
        *self = next;
        Ok(report)
    }

    fn apply_one(&mut self, edit: &Edit, report: &mut EditReport) -> Result<(), EditErrorKind> {
        match edit {
            Edit::AddNode {
                class_type,
                node_id,
                inputs,
            } => {
                if class_type.is_empty() {
                    return Err(EditErrorKind::EmptyClassType);
                }
                let id = node_id.clone().unwrap_or_else(|| self.next_id());
                let mut node = Node::new(id.clone(), class_type.clone());
                for (name, v) in inputs {
                    node.set_input(name.clone(), to_input(&id, name, v.clone())?);
                }
                self.insert(node).map_err(EditErrorKind::NodeExists)?;
                report.added.push(id);
            }
            Edit::RemoveNode { node_id } => {
                self.remove(node_id.as_str())
                    .ok_or_else(|| EditErrorKind::NodeNotFound(node_id.clone()))?;
                let ids: Vec<NodeId> = self.nodes().iter().map(|n| n.id.clone()).collect();
                for id in ids {
                    let Some(node) = self.node_mut(id.as_str()) else {
                        continue;
                    };
                    let dropped: Vec<String> = node
                        .links()
                        .filter(|(_, l)| l.node == *node_id)
                        .map(|(n, _)| n.to_owned())
                        .collect();
                    for name in dropped {
                        node.remove_input(&name);
                        report.dropped_links.push((id.clone(), name));
                    }
                }
            }
            Edit::SetInput {
                node_id,
                input_name,
                value,
            } => {
                if input_name.is_empty() {
                    return Err(EditErrorKind::EmptyInputName);
                }
                let input = to_input(node_id, input_name, value.clone())?;
                let node = self
                    .node_mut(node_id.as_str())
                    .ok_or_else(|| EditErrorKind::NodeNotFound(node_id.clone()))?;
                node.set_input(input_name.clone(), input);
            }
            Edit::Connect {
                from_node,
                from_output,
                to_node,
                to_input,
            } => {
                if to_input.is_empty() {
                    return Err(EditErrorKind::EmptyInputName);
                }
                if from_node == to_node {
                    return Err(EditErrorKind::SelfLink(from_node.clone()));
                }
                if !self.contains(from_node.as_str()) {
                    return Err(EditErrorKind::NodeNotFound(from_node.clone()));
                }
                let node = self
                    .node_mut(to_node.as_str())
                    .ok_or_else(|| EditErrorKind::NodeNotFound(to_node.clone()))?;
                node.set_input(
                    to_input.clone(),
                    Input::Link(Link {
                        node: from_node.clone(),
                        output: *from_output,
                    }),
                );
            }
            Edit::Disconnect { node_id, input_name } => {
                let node = self
                    .node_mut(node_id.as_str())
                    .ok_or_else(|| EditErrorKind::NodeNotFound(node_id.clone()))?;
                match node.input(input_name) {
                    Some(Input::Link(_)) => {
                        node.remove_input(input_name);
                    }
                    Some(Input::Value(_)) => {
                        return Err(EditErrorKind::NotALink {
                            node: node_id.clone(),
                            input: input_name.clone(),
                        });
                    }
                    None => {
                        return Err(EditErrorKind::NoSuchInput {
                            node: node_id.clone(),
                            input: input_name.clone(),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
