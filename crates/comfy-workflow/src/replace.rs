//! ComfyUI's node replacements (`GET /node_replacements`, ComfyUI 0.14 and
//! later): when a prompt names a class that is not installed and a
//! replacement for it is registered, `POST /prompt` rewrites the node
//! before validating it. [`Workflow::apply_replacements`] does the same
//! rewrite, so a dry run shows the graph that will really run.
//!
//! The rewrite, as the server does it: only a node whose class is not
//! installed is replaced, by the first entry registered for its class, and
//! only when that entry's new class is installed. The new node starts with
//! no inputs and keeps `_meta`; each `input_mapping` entry either copies an
//! old input (value or link, by name) or sets a value; outputs are matched
//! by index (`output_mapping`), and every link to a mapped output of the
//! node is moved to the new index. An input with no mapping is dropped.
//! Where the server would fail (an `old_id` the node does not have raises
//! there), the node is left as it is and the problem is reported.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Input, Link, Workflow};

/// One `input_mapping` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum InputMap {
    /// The new input takes the old input's value or link.
    FromOld {
        /// The new node's input.
        new_id: String,
        /// The old node's input.
        old_id: String,
    },
    /// The new input takes a fixed value.
    SetValue {
        /// The new node's input.
        new_id: String,
        /// Its value.
        set_value: Value,
    },
}

/// One `output_mapping` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct OutputMap {
    /// The old node's output index.
    pub old_idx: u32,
    /// The new node's output index.
    pub new_idx: u32,
}

/// One registered replacement.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Replacement {
    /// The class it replaces.
    pub old_node_id: String,
    /// The class it becomes.
    pub new_node_id: String,
    /// The inputs of the new node.
    #[serde(default)]
    pub input_mapping: Option<Vec<InputMap>>,
    /// Where links to the old node's outputs go.
    #[serde(default)]
    pub output_mapping: Option<Vec<OutputMap>>,
}

/// Most replacement entries read (the table is small: core registers 8).
pub const MAX_REPLACEMENTS: usize = 10_000;

/// The registered replacements, by old class, in ComfyUI's order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replacements {
    entries: Map<String, Value>,
}

/// Why the table could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node replacements: {0}")]
pub struct ReplacementsError(String);

impl Replacements {
    /// Reads ComfyUI's `/node_replacements` answer: an object of old class
    /// → list of entries. Malformed entries are skipped (as ComfyUI would
    /// never register them); a document that is not such an object, or has
    /// more than [`MAX_REPLACEMENTS`] entries, is refused.
    ///
    /// # Errors
    /// [`ReplacementsError`] naming what was wrong.
    pub fn from_value(v: Value) -> Result<Self, ReplacementsError> {
        let Value::Object(entries) = v else {
            return Err(ReplacementsError("not an object of class → list".to_owned()));
        };
        let count: usize = entries.values().map(|l| l.as_array().map_or(0, Vec::len)).sum();
        if count > MAX_REPLACEMENTS {
            return Err(ReplacementsError(format!(
                "{count} entries, more than the {MAX_REPLACEMENTS} read"
            )));
        }
        Ok(Self { entries })
    }

    /// The first well-formed entry registered for `class`.
    #[must_use]
    pub fn first_for(&self, class: &str) -> Option<Replacement> {
        let list = self.entries.get(class)?.as_array()?;
        list.iter()
            .find_map(|e| serde_json::from_value::<Replacement>(e.clone()).ok())
    }

    /// Whether no replacement is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What happened to one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replaced {
    /// The node.
    pub node: String,
    /// Its class as written.
    pub from: String,
    /// The class it became (the same when it could not be replaced).
    pub to: String,
    /// Inputs dropped because no mapping names them.
    pub dropped_inputs: Vec<String>,
    /// Why it was left as it was, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Workflow {
    /// Rewrites the nodes whose class `installed` does not know and for
    /// which `table` has a replacement, as ComfyUI's `POST /prompt` does;
    /// returns what was replaced.
    pub fn apply_replacements(&mut self, table: &Replacements, installed: &dyn Fn(&str) -> bool) -> Vec<Replaced> {
        let mut done = Vec::new();
        if table.is_empty() {
            return done;
        }
        let ids: Vec<String> = self.nodes().iter().map(|n| n.id.to_string()).collect();
        for id in ids {
            let Some(node) = self.node(&id) else { continue };
            if installed(&node.class_type) {
                continue;
            }
            let Some(r) = table.first_for(&node.class_type) else {
                continue;
            };
            if !installed(&r.new_node_id) {
                continue;
            }
            let from = node.class_type.to_string();
            let nid = node.id.clone();
            let mut inputs: Vec<(String, Input)> = Vec::new();
            let mut used = Vec::new();
            let mut problem = None;
            for m in r.input_mapping.iter().flatten() {
                match m {
                    InputMap::FromOld { new_id, old_id } => {
                        let Some(i) = node.input(old_id) else {
                            problem = Some(format!(
                                "the replacement maps input '{old_id}', which node {id} does not have \
                                 (ComfyUI fails on it)"
                            ));
                            break;
                        };
                        inputs.push((new_id.clone(), i.clone()));
                        used.push(old_id.clone());
                    }
                    InputMap::SetValue { new_id, set_value } => {
                        inputs.push((new_id.clone(), Input::Value(set_value.clone())));
                    }
                }
            }
            if let Some(problem) = problem {
                done.push(Replaced {
                    node: id.clone(),
                    from: from.clone(),
                    to: from,
                    dropped_inputs: Vec::new(),
                    problem: Some(problem),
                });
                continue;
            }
            let dropped_inputs: Vec<String> = node
                .inputs
                .iter()
                .map(|(n, _)| n.to_string())
                .filter(|n| !used.contains(n))
                .collect();
            if let Some(node) = self.node_mut(&id) {
                node.class_type = r.new_node_id.as_str().into();
                node.inputs.clear();
                for (name, input) in inputs {
                    node.set_input(name.as_str(), input);
                }
            }
            // Links to the old outputs move to the new indices.
            let outputs = r.output_mapping.clone().unwrap_or_default();
            if !outputs.is_empty() {
                let targets: Vec<(String, String, u32)> = self
                    .nodes()
                    .iter()
                    .flat_map(|n| {
                        n.links()
                            .filter(|(_, l)| l.node.as_str() == id)
                            .map(|(input, l)| (n.id.to_string(), input.to_owned(), l.output))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                for (target, input, old) in targets {
                    if let Some(m) = outputs.iter().find(|m| m.old_idx == old)
                        && let Some(n) = self.node_mut(&target)
                    {
                        let link = Link {
                            node: nid.clone(),
                            output: m.new_idx,
                        };
                        n.set_input(input.as_str(), Input::Link(link));
                    }
                }
            }
            done.push(Replaced {
                node: id,
                from,
                to: r.new_node_id,
                dropped_inputs,
                problem: None,
            });
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;
    use serde_json::json;

    fn table() -> Replacements {
        Replacements::from_value(json!({
            "ResizeImagesByLongerEdge": [{
                "new_node_id": "ImageScaleToMaxDimension",
                "old_node_id": "ResizeImagesByLongerEdge",
                "old_widget_ids": ["longer_edge"],
                "input_mapping": [
                    {"new_id": "image", "old_id": "images"},
                    {"new_id": "largest_size", "old_id": "longer_edge"},
                    {"new_id": "upscale_method", "set_value": "lanczos"}],
                "output_mapping": [{"new_idx": 0, "old_idx": 1}]}],
            "Gone": [{"new_node_id": "AlsoGone", "old_node_id": "Gone", "input_mapping": null, "output_mapping": null}],
        }))
        .unwrap()
    }

    fn installed(c: &str) -> bool {
        matches!(c, "LoadImage" | "ImageScaleToMaxDimension" | "SaveImage")
    }

    #[test]
    fn a_missing_class_is_rewritten_as_comfyui_does() {
        let mut wf = Workflow::from_value(
            json!({
                "1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
                "2": {"class_type": "ResizeImagesByLongerEdge", "inputs": {"images": ["1", 0], "longer_edge": 512, "extra": 1},
                      "_meta": {"title": "Resize"}},
                "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 1]}},
            }),
            &Limits::DEFAULT,
        )
        .unwrap();
        let done = wf.apply_replacements(&table(), &installed);
        assert_eq!(
            done,
            [Replaced {
                node: "2".into(),
                from: "ResizeImagesByLongerEdge".into(),
                to: "ImageScaleToMaxDimension".into(),
                dropped_inputs: vec!["extra".into()],
                problem: None,
            }]
        );
        assert_eq!(
            wf.to_value(),
            json!({
                "1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
                "2": {"class_type": "ImageScaleToMaxDimension",
                      "inputs": {"image": ["1", 0], "largest_size": 512, "upscale_method": "lanczos"},
                      "_meta": {"title": "Resize"}},
                "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}},
            })
        );
    }

    #[test]
    fn installed_classes_and_uninstalled_targets_are_left_alone() {
        let mut wf = Workflow::from_value(
            json!({"1": {"class_type": "Gone", "inputs": {}}, "2": {"class_type": "SaveImage", "inputs": {}}}),
            &Limits::DEFAULT,
        )
        .unwrap();
        let before = wf.to_value();
        assert!(wf.apply_replacements(&table(), &installed).is_empty());
        assert_eq!(wf.to_value(), before);
    }

    #[test]
    fn a_mapping_of_an_input_the_node_lacks_is_reported_not_applied() {
        let mut wf = Workflow::from_value(
            json!({"2": {"class_type": "ResizeImagesByLongerEdge", "inputs": {"images": "x"}}}),
            &Limits::DEFAULT,
        )
        .unwrap();
        let done = wf.apply_replacements(&table(), &installed);
        assert!(
            done[0].problem.as_deref().unwrap().contains("'longer_edge'"),
            "{done:?}"
        );
        assert_eq!(wf.node("2").unwrap().class_type, "ResizeImagesByLongerEdge");
    }

    #[test]
    fn a_table_that_is_not_an_object_is_refused() {
        assert!(Replacements::from_value(json!([1, 2])).is_err());
        assert!(Replacements::from_value(json!({})).unwrap().is_empty());
    }
}
