//! Reading an API-format workflow straight into [`Workflow`](crate::Workflow):
//! nodes, their inputs and links, with the same limits and duplicate-key
//! rule as [`value`](super::value). Its own file: it is the workflow's shape.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use smol_str::SmolStr;

use super::value::Head;
use super::value::HeadSeed;
use super::value::KeySeed;
use super::value::Seed;
use super::value::Seg;
use super::value::State;
use crate::{Input, Link, Node, NodeId, ParseError, Workflow};

pub(super) struct WorkflowVisitor<'a> {
    pub(super) state: &'a State,
}

impl<'de> Visitor<'de> for WorkflowVisitor<'_> {
    type Value = Workflow;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object keyed by node ids")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Workflow, A::Error> {
        let mut wf = Workflow::new();
        while let Some(id) = map.next_key_seed(KeySeed { state: self.state })? {
            let id = id.as_str();
            if wf.len() >= self.state.limits.max_nodes {
                return Err(self.state.fail(ParseError::TooManyNodes {
                    max: self.state.limits.max_nodes,
                }));
            }
            if wf.contains(id) {
                return Err(self.state.fail(ParseError::DuplicateKey {
                    path: "/".to_owned(),
                    key: id.to_owned(),
                }));
            }
            let node_id = NodeId::new(id).map_err(|reason| {
                self.state.fail(ParseError::InvalidNodeId {
                    id: id.escape_debug().to_string(),
                    reason,
                })
            })?;
            self.state.push(Seg::Node(node_id.clone()));
            let node = map.next_value_seed(NodeSeed {
                state: self.state,
                id: node_id,
            });
            self.state.pop();
            // Ids were checked unique above.
            wf.push_unique(node?);
        }
        Ok(wf)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Workflow, A::Error> {
        Err(self.state.fail(ParseError::NotAnObject { found: "an array" }))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Workflow, E> {
        Err(self.state.fail(ParseError::NotAnObject { found: "a string" }))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Workflow, E> {
        Err(self.state.fail(ParseError::NotAnObject { found: "a boolean" }))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Workflow, E> {
        Err(self.state.fail(ParseError::NotAnObject { found: "a number" }))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Workflow, E> {
        Err(self.state.fail(ParseError::NotAnObject { found: "a number" }))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Workflow, E> {
        Err(self.state.fail(ParseError::NotAnObject { found: "a number" }))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Workflow, E> {
        Err(self.state.fail(ParseError::NotAnObject { found: "null" }))
    }
}

pub(super) struct NodeSeed<'a> {
    pub(super) state: &'a State,
    pub(super) id: NodeId,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor {
            state: self.state,
            id: self.id,
        })
    }
}

pub(super) struct NodeVisitor<'a> {
    pub(super) state: &'a State,
    pub(super) id: NodeId,
}

impl NodeVisitor<'_> {
    fn not_object<E: de::Error>(&self, found: &'static str) -> E {
        self.state.fail(ParseError::NodeNotObject {
            node: self.id.to_string(),
            found,
        })
    }
}

impl<'de> Visitor<'de> for NodeVisitor<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a node object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        // Depths as the value parser counts them: the workflow object is 1,
        // a node 2, its inputs 3.
        let seed = Seed {
            state: self.state,
            depth: 2,
        };
        let mut node = Node::new(self.id.clone(), SmolStr::default());
        let mut class_type: Option<Head<'de>> = None;
        let mut seen_inputs = false;
        let mut seen_meta = false;
        while let Some(key) = map.next_key_seed(KeySeed { state: self.state })? {
            let duplicate = match key.as_str() {
                "class_type" => class_type.is_some(),
                "inputs" => seen_inputs,
                "_meta" => seen_meta,
                other => node.extra.as_ref().is_some_and(|m| m.contains_key(other)),
            };
            if duplicate {
                return Err(self.state.fail(ParseError::DuplicateKey {
                    path: self.state.path(),
                    key: key.into_string(),
                }));
            }
            self.state.push(match key.as_str() {
                "inputs" => Seg::Known("inputs"),
                "class_type" => Seg::Known("class_type"),
                "_meta" => Seg::Known("_meta"),
                other => Seg::Key(SmolStr::new(other)),
            });
            let read = match key.as_str() {
                "inputs" => {
                    seen_inputs = true;
                    map.next_value_seed(InputsSeed {
                        state: self.state,
                        id: &self.id,
                    })
                    .map(|inputs| node.inputs = inputs)
                }
                "class_type" => map.next_value_seed(HeadSeed(seed)).map(|v| class_type = Some(v)),
                "_meta" => {
                    seen_meta = true;
                    map.next_value_seed(seed).map(|v| node.meta = Some(Box::new(v)))
                }
                _ => map.next_value_seed(seed).map(|v| {
                    node.extra.get_or_insert_default().insert(key.into_string(), v);
                }),
            };
            self.state.pop();
            read?;
        }
        match class_type {
            Some(Head::Str(c)) => node.class_type = SmolStr::new(c.as_str()),
            _ => {
                return Err(self.state.fail(ParseError::MissingClassType {
                    node: self.id.to_string(),
                }));
            }
        }
        Ok(node)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Node, A::Error> {
        Err(self.not_object("an array"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Err(self.not_object("a string"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Err(self.not_object("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Err(self.not_object("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Err(self.not_object("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Err(self.not_object("a number"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Err(self.not_object("null"))
    }
}

pub(super) struct InputsSeed<'a> {
    pub(super) state: &'a State,
    pub(super) id: &'a NodeId,
}

impl<'de> DeserializeSeed<'de> for InputsSeed<'_> {
    type Value = Vec<(SmolStr, Input)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Inputs past this count are checked for duplicates with a set rather
/// than a scan, so a hostile node with many inputs stays linear.
pub(super) const SCAN_LIMIT: usize = 16;

impl InputsSeed<'_> {
    /// The error for an `inputs` that is `found` instead of an object.
    fn not_object<E: de::Error>(&self, found: &'static str) -> E {
        self.state.fail(ParseError::InputsNotObject {
            node: self.id.to_string(),
            found,
        })
    }
}

impl<'de> Visitor<'de> for InputsSeed<'_> {
    type Value = Vec<(SmolStr, Input)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an inputs object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let seed = Seed {
            state: self.state,
            depth: 3,
        };
        let mut out = std::mem::take(&mut *self.state.scratch.borrow_mut());
        out.clear();
        let mut names: Option<std::collections::HashSet<SmolStr, foldhash::fast::RandomState>> = None;
        // One bit per (length, last byte) seen: a name whose bit is clear
        // cannot be a repeat, so the scan runs only when it is set.
        let mut bits = 0u64;
        while let Some(key) = map.next_key_seed(KeySeed { state: self.state })? {
            let name = SmolStr::new(key.as_str());
            let bit = 1u64 << ((name.len() * 7 + usize::from(name.as_bytes().last().copied().unwrap_or(0))) % 64);
            let duplicate = if out.len() < SCAN_LIMIT {
                let maybe = bits & bit != 0;
                bits |= bit;
                maybe && out.iter().any(|(n, _)| *n == name)
            } else {
                let set = names.get_or_insert_with(|| out.iter().map(|(n, _)| n.clone()).collect());
                !set.insert(name.clone())
            };
            if duplicate {
                return Err(self.state.fail(ParseError::DuplicateKey {
                    path: self.state.path(),
                    key: key.into_string(),
                }));
            }
            self.state.push(Seg::Key(name.clone()));
            let input = map.next_value_seed(InputSeed {
                seed,
                node: self.id,
                name: &name,
            });
            self.state.pop();
            out.push((name, input?));
        }
        // Exactly sized; the scratch keeps its capacity for the next node.
        let mut inputs = Vec::with_capacity(out.len());
        inputs.append(&mut out);
        *self.state.scratch.borrow_mut() = out;
        Ok(inputs)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.not_object("an array"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(self.not_object("a string"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.not_object("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(self.not_object("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(self.not_object("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.not_object("a number"))
    }
}

/// Reads one input: a two-element array `[string, integer]` is a link, as
/// ComfyUI reads it, and becomes one without an intermediate [`Value`].
/// Anything else is a literal, read under the same checks as [`Seed`].
#[derive(Clone, Copy)]
pub(super) struct InputSeed<'a> {
    pub(super) seed: Seed<'a>,
    pub(super) node: &'a NodeId,
    pub(super) name: &'a str,
}

impl<'de> DeserializeSeed<'de> for InputSeed<'_> {
    type Value = Input;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Input, D::Error> {
        d.deserialize_any(self)
    }
}

impl InputSeed<'_> {
    /// The link `[target, index]`, when `target` is a node id.
    fn link<E: de::Error>(self, target: &str, index: &serde_json::Number) -> Result<Option<Input>, E> {
        if NodeId::check(target).is_err() {
            return Ok(None);
        }
        let Some(output) = index.as_u64().and_then(|i| u32::try_from(i).ok()) else {
            return Err(self.seed.state.fail(ParseError::BadLinkIndex {
                node: self.node.to_string(),
                input: self.name.to_owned(),
                target: target.to_owned(),
                index: index.to_string(),
            }));
        };
        // Checked above; an id is stored inline, so this allocates nothing.
        let node = NodeId::checked(target);
        Ok(Some(Input::Link(Link { node, output })))
    }
}

impl<'de> Visitor<'de> for InputSeed<'_> {
    type Value = Input;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an input value or link")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Input, E> {
        Ok(Input::Value(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Input, E> {
        Ok(Input::Value(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Input, E> {
        Ok(Input::Value(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Input, E> {
        self.seed.visit_f64(v).map(Input::Value)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Input, E> {
        self.seed.visit_str(v).map(Input::Value)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Input, E> {
        self.seed.visit_string(v).map(Input::Value)
    }

    fn visit_unit<E>(self) -> Result<Input, E> {
        Ok(Input::Value(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Input, E> {
        Ok(Input::Value(Value::Null))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Input, A::Error> {
        self.seed.visit_map(map).map(Input::Value)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Input, A::Error> {
        let inner = self.seed.enter::<A::Error>()?;
        let head = seq.next_element_seed(At::new(HeadSeed(inner), 0, inner.state));
        let mut out = Vec::new();
        match head? {
            None => return Ok(Input::Value(Value::Array(out))),
            Some(Head::Str(target)) => {
                let second = seq.next_element_seed(At::new(inner, 1, inner.state));
                match second? {
                    None => out.push(Value::String(target.into_string())),
                    Some(Value::Number(index)) => {
                        let third = seq.next_element_seed(At::new(inner, 2, inner.state));
                        match third? {
                            None => {
                                if let Some(link) = self.link(target.as_str(), &index)? {
                                    return Ok(link);
                                }
                                out.push(Value::String(target.into_string()));
                                out.push(Value::Number(index));
                            }
                            Some(v) => {
                                out.push(Value::String(target.into_string()));
                                out.push(Value::Number(index));
                                out.push(v);
                            }
                        }
                    }
                    Some(v) => {
                        out.push(Value::String(target.into_string()));
                        out.push(v);
                    }
                }
            }
            Some(head) => out.push(head.into_value()),
        }
        inner.rest(&mut seq, &mut out)?;
        Ok(Input::Value(Value::Array(out)))
    }
}

/// Element `index` of a two- or three-element input array, read with
/// `inner`. Its index joins the error path only where an error can arise
/// (a string over the limit, or a nested array or object), so reading a
/// link `[id, n]` touches the path not at all.
#[derive(Clone, Copy)]
pub(super) struct At<'a, V> {
    pub(super) inner: V,
    pub(super) index: usize,
    pub(super) state: &'a State,
}

impl<'a, V: Copy> At<'a, V> {
    fn new(inner: V, index: usize, state: &'a State) -> Self {
        Self { inner, index, state }
    }

    /// `read` with this element's index on the path.
    fn indexed<T>(self, read: impl FnOnce(V) -> T) -> T {
        self.state.push(Seg::Index(self.index));
        let out = read(self.inner);
        self.state.pop();
        out
    }

    fn too_long(&self, s: &str) -> bool {
        s.len() > self.state.limits.max_string
    }
}

impl<'de, V: Visitor<'de> + Copy> DeserializeSeed<'de> for At<'_, V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, V: Visitor<'de> + Copy> Visitor<'de> for At<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<V::Value, E> {
        self.inner.visit_bool(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<V::Value, E> {
        self.inner.visit_i64(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<V::Value, E> {
        self.inner.visit_u64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<V::Value, E> {
        self.inner.visit_f64(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        if self.too_long(v) {
            return self.indexed(|inner| inner.visit_str(v));
        }
        self.inner.visit_str(v)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        if self.too_long(v) {
            return self.indexed(|inner| inner.visit_borrowed_str(v));
        }
        self.inner.visit_borrowed_str(v)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        if self.too_long(&v) {
            return self.indexed(|inner| inner.visit_string(v));
        }
        self.inner.visit_string(v)
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.indexed(|inner| inner.visit_seq(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.indexed(|inner| inner.visit_map(map))
    }
}
