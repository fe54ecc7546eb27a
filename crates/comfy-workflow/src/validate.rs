//! Validation against a server's `/object_info`: the problems ComfyUI would
//! reject a prompt for, found before it is sent, each naming the node and
//! input so an assistant can fix the workflow.

use std::fmt;

use serde::Serialize;
use serde_json::{Number, Value};

use crate::object_info::{InputKind, NodeDef, ObjectInfo};
use crate::{Input, NodeId, SmolStr, Workflow};

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The server has no such node class (named in [`Problem::class_type`]).
    UnknownClass,
    /// A required input is absent.
    MissingInput,
    /// A link to a node that does not exist.
    LinkToMissingNode {
        /// The missing node.
        target: NodeId,
    },
    /// A link to an output index the source node does not have.
    LinkToMissingOutput {
        /// The source node.
        target: NodeId,
        /// The index used.
        output: u32,
        /// How many outputs it has.
        outputs: usize,
    },
    /// A link whose type does not fit the input.
    TypeMismatch {
        /// What the input takes.
        expected: String,
        /// What the link carries.
        found: String,
    },
    /// A literal where a connection is required.
    ExpectedLink {
        /// The connection type.
        expected: String,
    },
    /// A literal of the wrong JSON type.
    WrongType {
        /// What the input takes.
        expected: String,
        /// The value given.
        value: Value,
    },
    /// A number outside the input's bounds.
    OutOfRange {
        /// The value.
        value: Value,
        /// The lower bound.
        min: Option<Number>,
        /// The upper bound.
        max: Option<Number>,
    },
    /// A value not among the input's options.
    NotInList {
        /// The value.
        value: Value,
        /// Up to 20 of the allowed options.
        options: Vec<Value>,
        /// How many options there are.
        option_count: usize,
    },
    /// Nodes on a cycle.
    Cycle {
        /// The nodes.
        nodes: Vec<NodeId>,
    },
    /// No node the server would run the graph towards.
    NoOutputNode,
}

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The node, when the problem has one.
    pub node: Option<NodeId>,
    /// The node's class, when known.
    pub class_type: Option<SmolStr>,
    /// The input, when the problem has one.
    pub input: Option<String>,
    /// What is wrong.
    #[serde(flatten)]
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.node, &self.input) {
            (Some(n), Some(i)) => write!(f, "node `{n}` input `{i}`: ")?,
            (Some(n), None) => write!(f, "node `{n}`: ")?,
            _ => {}
        }
        match &self.kind {
            ProblemKind::UnknownClass => {
                write!(
                    f,
                    "node class `{}` is not installed on the server",
                    self.class_type.as_deref().unwrap_or_default()
                )
            }
            ProblemKind::MissingInput => f.write_str("required input is missing"),
            ProblemKind::LinkToMissingNode { target } => write!(f, "links to node `{target}`, which does not exist"),
            ProblemKind::LinkToMissingOutput {
                target,
                output,
                outputs,
            } => {
                write!(
                    f,
                    "links to output {output} of node `{target}`, which has {outputs} output(s)"
                )
            }
            ProblemKind::TypeMismatch { expected, found } => write!(f, "expects {expected} but is linked to {found}"),
            ProblemKind::ExpectedLink { expected } => write!(f, "expects a {expected} connection, not a value"),
            ProblemKind::WrongType { expected, value } => write!(f, "expects {expected}, got {value}"),
            ProblemKind::OutOfRange { value, min, max } => {
                write!(f, "{value} is outside")?;
                match (min, max) {
                    (Some(lo), Some(hi)) => write!(f, " {lo}..={hi}"),
                    (Some(lo), None) => write!(f, " {lo}.."),
                    (None, Some(hi)) => write!(f, " ..={hi}"),
                    (None, None) => Ok(()),
                }
            }
            ProblemKind::NotInList {
                value,
                options,
                option_count,
            } => {
                let shown: Vec<String> = options.iter().map(Value::to_string).collect();
                write!(f, "{value} is not one of {}", shown.join(", "))?;
                if *option_count > options.len() {
                    write!(f, " (and {} more)", option_count - options.len())?;
                }
                Ok(())
            }
            ProblemKind::Cycle { nodes } => {
                let ids: Vec<String> = nodes.iter().map(|n| format!("`{n}`")).collect();
                write!(f, "workflow contains a cycle through {}", ids.join(", "))
            }
            ProblemKind::NoOutputNode => f.write_str("workflow has no output node (such as SaveImage or PreviewImage)"),
        }
    }
}

/// Whether a link carrying `found` fits an input taking `expected`, as
/// ComfyUI matches types (`*` matches anything; comma lists match any
/// member).
pub fn types_match(found: &str, expected: &str) -> bool {
    const MATCHTYPE: &str = "COMFY_MATCHTYPE_V3";
    if found == expected || found == "*" || expected == "*" || found == MATCHTYPE || expected == MATCHTYPE {
        return true;
    }
    let split = |s: &str| s.split(',').map(str::trim).map(str::to_owned).collect::<Vec<_>>();
    let (f, e) = (split(found), split(expected));
    f.iter().any(|t| t == "*" || e.contains(t)) || e.iter().any(|t| t == "*")
}

impl Workflow {
    /// Checks the workflow against `info`. Problems come in document order
    /// (per node, inputs in declared order), then graph-wide ones.
    ///
    /// # Examples
    /// ```
    /// use comfy_workflow::{Limits, ObjectInfo, Workflow};
    /// let info = ObjectInfo::from_value(&serde_json::json!({
    ///     "SaveImage": {"input": {"required": {"images": ["IMAGE"]}}, "output": [], "output_node": true}}));
    /// let wf = Workflow::from_json(br#"{"1": {"class_type": "SaveImage", "inputs": {}}}"#, &Limits::DEFAULT).unwrap();
    /// let problems = wf.validate(&info);
    /// assert_eq!(problems[0].to_string(), "node `1` input `images`: required input is missing");
    /// ```
    pub fn validate(&self, info: &ObjectInfo) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut has_output = false;
        // Each node's class, looked up once: links then find their
        // source's outputs by position.
        let defs: Vec<Option<&NodeDef>> = self.nodes().iter().map(|n| info.node(&n.class_type)).collect();
        for (node, def) in self.nodes().iter().zip(&defs) {
            let problem = |input: Option<&str>, kind| Problem {
                node: Some(node.id.clone()),
                class_type: Some(node.class_type.clone()),
                input: input.map(str::to_owned),
                kind,
            };
            let Some(def) = def else {
                out.push(problem(None, ProblemKind::UnknownClass));
                continue;
            };
            has_output |= def.output_node;
            self.check_inputs(node, &def.inputs, "", &defs, &mut out);
        }
        if let Err(stuck) = self.order_positions() {
            let nodes = self.nodes();
            out.push(Problem {
                node: None,
                class_type: None,
                input: None,
                kind: ProblemKind::Cycle {
                    nodes: stuck.iter().map(|&i| nodes[i].id.clone()).collect(),
                },
            });
        }
        if !has_output && !self.is_empty() {
            out.push(Problem {
                node: None,
                class_type: None,
                input: None,
                kind: ProblemKind::NoOutputNode,
            });
        }
        out
    }

    /// Checks `decls` (named `prefix` + name) against the node's inputs.
    fn check_inputs(
        &self,
        node: &crate::Node,
        decls: &[crate::object_info::InputDef],
        prefix: &str,
        defs: &[Option<&NodeDef>],
        out: &mut Vec<Problem>,
    ) {
        let problem = |input: &str, kind| Problem {
            node: Some(node.id.clone()),
            class_type: Some(node.class_type.clone()),
            input: Some(input.to_owned()),
            kind,
        };
        // Inputs usually come in the order the class declares them: look
        // at the next one first, and scan only when it is not the one.
        let mut next = 0;
        for decl in decls {
            let name: std::borrow::Cow<'_, str> = if prefix.is_empty() {
                decl.name.as_str().into()
            } else {
                format!("{prefix}{}", decl.name).into()
            };
            if let InputKind::Autogrow {
                prefix: entry,
                min,
                template,
            } = &decl.kind
            {
                let stem = format!("{name}.");
                let given: Vec<(&str, &Input)> = node
                    .inputs
                    .iter()
                    .filter(|(n, _)| n.starts_with(&stem))
                    .map(|(n, i)| (n.as_str(), i))
                    .collect();
                if decl.required && given.len() < *min {
                    out.push(problem(
                        &format!("{stem}{entry}{}", given.len()),
                        ProblemKind::MissingInput,
                    ));
                }
                if let Some(kind) = template.first().map(|t| &t.kind) {
                    for (n, input) in given {
                        let found = match input {
                            Input::Link(link) => self.check_link(link, kind, defs),
                            Input::Value(v) => check_value(v, kind),
                        };
                        if let Some(k) = found {
                            out.push(problem(n, k));
                        }
                    }
                }
                continue;
            }
            let given = match node.inputs.get(next) {
                Some((n, input)) if *n == *name => Some(input),
                _ => node.inputs.iter().position(|(n, _)| *n == *name).map(|i| {
                    next = i;
                    &node.inputs[i].1
                }),
            };
            if given.is_some() {
                next += 1;
            }
            let Some(given) = given else {
                if decl.required {
                    out.push(problem(&name, ProblemKind::MissingInput));
                }
                continue;
            };
            let kind = match given {
                Input::Link(link) => self.check_link(link, &decl.kind, defs),
                Input::Value(v) => check_value(v, &decl.kind),
            };
            if let Some(kind) = kind {
                out.push(problem(&name, kind));
                continue;
            }
            if let (InputKind::DynamicCombo(options), Input::Value(Value::String(key))) = (&decl.kind, given)
                && let Some(chosen) = options.iter().find(|o| &o.key == key)
            {
                self.check_inputs(node, &chosen.inputs, &format!("{name}."), defs, out);
            }
        }
    }

    fn check_link(&self, link: &crate::Link, kind: &InputKind, defs: &[Option<&NodeDef>]) -> Option<ProblemKind> {
        let Some(source) = self.position(link.node.as_str()) else {
            return Some(ProblemKind::LinkToMissingNode {
                target: link.node.clone(),
            });
        };
        let def = defs.get(source).copied().flatten()?;
        let Some(found) = def.outputs.get(link.output as usize) else {
            return Some(ProblemKind::LinkToMissingOutput {
                target: link.node.clone(),
                output: link.output,
                outputs: def.outputs.len(),
            });
        };
        let fits = match kind {
            // A widget converted to an input takes a link of its own type;
            // combos also take `COMBO` links (primitive nodes).
            InputKind::Combo(_) => types_match(found, "COMBO") || found.starts_with('['),
            other => types_match(found, other.type_name()),
        };
        (!fits).then(|| ProblemKind::TypeMismatch {
            expected: kind.type_name().to_owned(),
            found: found.clone(),
        })
    }
}

fn check_value(v: &Value, kind: &InputKind) -> Option<ProblemKind> {
    let wrong = |expected: &str| {
        Some(ProblemKind::WrongType {
            expected: expected.to_owned(),
            value: v.clone(),
        })
    };
    match kind {
        InputKind::Int { min, max } => match v.as_f64() {
            Some(x) if x.fract() == 0.0 => range(v, x, min.as_ref(), max.as_ref()),
            _ => wrong("an integer"),
        },
        InputKind::Float { min, max } => match v.as_f64() {
            Some(x) => range(v, x, min.as_ref(), max.as_ref()),
            None => wrong("a number"),
        },
        InputKind::String => (!v.is_string()).then(|| ProblemKind::WrongType {
            expected: "a string".into(),
            value: v.clone(),
        }),
        InputKind::Boolean => (!v.is_boolean()).then(|| ProblemKind::WrongType {
            expected: "a boolean".into(),
            value: v.clone(),
        }),
        InputKind::Combo(options) => {
            if options.is_empty() || options.contains(v) {
                None
            } else {
                Some(ProblemKind::NotInList {
                    value: v.clone(),
                    options: options.iter().take(20).cloned().collect(),
                    option_count: options.len(),
                })
            }
        }
        InputKind::DynamicCombo(options) => {
            let known = v.as_str().is_some_and(|k| options.iter().any(|o| o.key == k));
            (!known).then(|| ProblemKind::NotInList {
                value: v.clone(),
                options: options.iter().take(20).map(|o| Value::String(o.key.clone())).collect(),
                option_count: options.len(),
            })
        }
        InputKind::Link(t) => Some(ProblemKind::ExpectedLink { expected: t.clone() }),
        InputKind::Autogrow { .. } => Some(ProblemKind::ExpectedLink {
            expected: kind.type_name().to_owned(),
        }),
    }
}

/// Compares exactly when both sides are integers (seeds reach `u64::MAX`),
/// as floats otherwise.
fn less(a: &Value, x: f64, b: &Number) -> bool {
    match (a.as_i64(), a.as_u64(), b.as_i64(), b.as_u64()) {
        (Some(a), _, Some(b), _) => a < b,
        (_, Some(a), _, Some(b)) => a < b,
        (Some(a), _, _, Some(_)) => a < 0 || b.as_f64().is_some_and(|b| x < b),
        _ => b.as_f64().is_some_and(|b| x < b),
    }
}

fn greater(a: &Value, x: f64, b: &Number) -> bool {
    match (a.as_i64(), a.as_u64(), b.as_i64(), b.as_u64()) {
        (Some(a), _, Some(b), _) => a > b,
        (_, Some(a), _, Some(b)) => a > b,
        (Some(_), _, _, Some(_)) => false,
        _ => b.as_f64().is_some_and(|b| x > b),
    }
}

fn range(v: &Value, x: f64, min: Option<&Number>, max: Option<&Number>) -> Option<ProblemKind> {
    let below = min.is_some_and(|m| less(v, x, m));
    let above = max.is_some_and(|m| greater(v, x, m));
    (below || above).then(|| ProblemKind::OutOfRange {
        value: v.clone(),
        min: min.cloned(),
        max: max.cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::types_match;

    #[test]
    fn types_match_as_comfyui_matches_them() {
        assert!(types_match("IMAGE", "IMAGE"));
        assert!(types_match("*", "MODEL"));
        assert!(types_match("MODEL", "*"));
        assert!(types_match("IMAGE", "IMAGE,MASK"));
        assert!(types_match("MASK, IMAGE", "IMAGE"));
        assert!(types_match("COMFY_MATCHTYPE_V3", "LATENT"));
        assert!(!types_match("LATENT", "IMAGE"));
        assert!(!types_match("IMAGE,MASK", "LATENT"));
    }
}
