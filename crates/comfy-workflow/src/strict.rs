//! Strict JSON: `serde_json` with duplicate keys rejected and every
//! [`Limits`] bound checked while the document is read.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::{Input, Limits, Node, NodeId, ParseError, Workflow};

/// Parses `bytes` as JSON under `limits`.
///
/// # Errors
/// [`ParseError::TooLarge`], [`ParseError::Json`],
/// [`ParseError::DuplicateKey`], [`ParseError::TooDeep`],
/// [`ParseError::StringTooLong`].
pub fn parse_json(bytes: &[u8], limits: &Limits) -> Result<Value, ParseError> {
    run(bytes, limits, |state, de| Seed { state, depth: 0 }.deserialize(de))
}

/// Parses API-format bytes straight into a [`Workflow`], without building
/// a `Value` for the node and input objects; every check of
/// [`parse_json`] and of [`Workflow::from_value`] applies.
pub(crate) fn parse_workflow(bytes: &[u8], limits: &Limits) -> Result<Workflow, ParseError> {
    run(bytes, limits, |state, de| de.deserialize_any(WorkflowVisitor { state }))
}

type SliceDeserializer<'a> = serde_json::Deserializer<serde_json::de::SliceRead<'a>>;

fn run<T>(
    bytes: &[u8],
    limits: &Limits,
    read: impl FnOnce(&State, &mut SliceDeserializer<'_>) -> Result<T, serde_json::Error>,
) -> Result<T, ParseError> {
    if bytes.len() > limits.max_bytes {
        return Err(ParseError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let state = State {
        limits: *limits,
        path: RefCell::new(Vec::new()),
        failure: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = read(&state, &mut de).and_then(|v| de.end().map(|()| v));
    match result {
        Ok(v) => Ok(v),
        Err(e) => Err(state.failure.into_inner().unwrap_or_else(|| ParseError::Json {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })),
    }
}

fn strip_position(msg: &str) -> String {
    msg.rsplit_once(" at line ").map_or(msg, |(m, _)| m).to_owned()
}

/// One step of the JSON path, kept only to name where an error is.
enum Seg {
    Key(String),
    Index(usize),
    Node(NodeId),
}

struct State {
    limits: Limits,
    path: RefCell<Vec<Seg>>,
    failure: RefCell<Option<ParseError>>,
}

impl State {
    fn path(&self) -> String {
        let p = self.path.borrow();
        if p.is_empty() {
            return "/".to_owned();
        }
        let mut out = String::new();
        for segment in p.iter() {
            out.push('/');
            match segment {
                Seg::Key(k) => out.push_str(k),
                Seg::Index(i) => out.push_str(&i.to_string()),
                Seg::Node(id) => out.push_str(id.as_str()),
            }
        }
        out
    }

    fn fail<E: de::Error>(&self, err: ParseError) -> E {
        let msg = err.to_string();
        *self.failure.borrow_mut() = Some(err);
        E::custom(msg)
    }

    fn check_string<E: de::Error>(&self, s: &str) -> Result<(), E> {
        if s.len() > self.limits.max_string {
            return Err(self.fail(ParseError::StringTooLong {
                path: self.path(),
                len: s.len(),
                max: self.limits.max_string,
            }));
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Seed<'a> {
    state: &'a State,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.state.check_string(v)?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.state.check_string(&v)?;
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.enter::<A::Error>()?;
        let mut out = Vec::new();
        loop {
            self.state.path.borrow_mut().push(Seg::Index(out.len()));
            let item = seq.next_element_seed(inner);
            self.state.path.borrow_mut().pop();
            match item? {
                Some(v) => out.push(v),
                None => break,
            }
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.enter::<A::Error>()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.state.check_string::<A::Error>(&key)?;
            if out.contains_key(&key) {
                return Err(self.state.fail(ParseError::DuplicateKey {
                    path: self.state.path(),
                    key,
                }));
            }
            // The key rides on the path stack while its value is read, and
            // comes back for the insert: no copy per key.
            self.state.path.borrow_mut().push(Seg::Key(key));
            let value = map.next_value_seed(inner);
            let key = match self.state.path.borrow_mut().pop() {
                Some(Seg::Key(k)) => k,
                _ => String::new(),
            };
            out.insert(key, value?);
        }
        Ok(Value::Object(out))
    }
}

impl Seed<'_> {
    fn enter<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= self.state.limits.max_depth {
            return Err(self.state.fail(ParseError::TooDeep {
                path: self.state.path(),
                max: self.state.limits.max_depth,
            }));
        }
        Ok(Seed {
            state: self.state,
            depth: self.depth + 1,
        })
    }
}

struct WorkflowVisitor<'a> {
    state: &'a State,
}

impl<'de> Visitor<'de> for WorkflowVisitor<'_> {
    type Value = Workflow;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object keyed by node ids")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Workflow, A::Error> {
        let mut wf = Workflow::new();
        while let Some(id) = map.next_key::<String>()? {
            self.state.check_string::<A::Error>(&id)?;
            if wf.len() >= self.state.limits.max_nodes {
                return Err(self.state.fail(ParseError::TooManyNodes {
                    max: self.state.limits.max_nodes,
                }));
            }
            if let Err(reason) = NodeId::check(&id) {
                return Err(self.state.fail(ParseError::InvalidNodeId {
                    id: id.escape_debug().to_string(),
                    reason,
                }));
            }
            if wf.contains(&id) {
                return Err(self.state.fail(ParseError::DuplicateKey {
                    path: "/".to_owned(),
                    key: id,
                }));
            }
            let node_id = NodeId::new(id).map_err(|reason| {
                self.state.fail(ParseError::InvalidNodeId {
                    id: String::new(),
                    reason,
                })
            })?;
            self.state.path.borrow_mut().push(Seg::Node(node_id.clone()));
            let node = map.next_value_seed(NodeSeed {
                state: self.state,
                id: node_id,
            });
            self.state.path.borrow_mut().pop();
            // Ids were checked unique above.
            let _ = wf.insert(node?);
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

struct NodeSeed<'a> {
    state: &'a State,
    id: NodeId,
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

struct NodeVisitor<'a> {
    state: &'a State,
    id: NodeId,
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
        let mut node = Node::new(self.id.clone(), String::new());
        let mut class_type: Option<Value> = None;
        let mut seen_inputs = false;
        let mut seen_meta = false;
        while let Some(key) = map.next_key::<String>()? {
            self.state.check_string::<A::Error>(&key)?;
            let duplicate = match key.as_str() {
                "class_type" => class_type.is_some(),
                "inputs" => seen_inputs,
                "_meta" => seen_meta,
                other => node.extra.contains_key(other),
            };
            if duplicate {
                return Err(self.state.fail(ParseError::DuplicateKey {
                    path: self.state.path(),
                    key,
                }));
            }
            if key == "inputs" {
                seen_inputs = true;
                self.state.path.borrow_mut().push(Seg::Key(key));
                let inputs = map.next_value_seed(InputsSeed {
                    state: self.state,
                    id: &self.id,
                });
                self.state.path.borrow_mut().pop();
                node.inputs = inputs?;
                continue;
            }
            self.state.path.borrow_mut().push(Seg::Key(key));
            let value = map.next_value_seed(seed);
            let key = match self.state.path.borrow_mut().pop() {
                Some(Seg::Key(k)) => k,
                _ => String::new(),
            };
            let value = value?;
            match key.as_str() {
                "class_type" => class_type = Some(value),
                "_meta" => {
                    seen_meta = true;
                    node.meta = Some(value);
                }
                _ => {
                    node.extra.insert(key, value);
                }
            }
        }
        match class_type {
            Some(Value::String(c)) => node.class_type = c,
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

struct InputsSeed<'a> {
    state: &'a State,
    id: &'a NodeId,
}

impl<'de> DeserializeSeed<'de> for InputsSeed<'_> {
    type Value = Vec<(String, Input)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InputsSeed<'_> {
    type Value = Vec<(String, Input)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an inputs object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let seed = Seed {
            state: self.state,
            depth: 3,
        };
        let mut out: Vec<(String, Input)> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            self.state.check_string::<A::Error>(&name)?;
            if out.iter().any(|(n, _)| *n == name) {
                return Err(self.state.fail(ParseError::DuplicateKey {
                    path: self.state.path(),
                    key: name,
                }));
            }
            self.state.path.borrow_mut().push(Seg::Key(name));
            let value = map.next_value_seed(seed);
            let name = match self.state.path.borrow_mut().pop() {
                Some(Seg::Key(k)) => k,
                _ => String::new(),
            };
            let input = crate::graph::parse_input(self.id, &name, value?).map_err(|e| self.state.fail(e))?;
            out.push((name, input));
        }
        Ok(out)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.state.fail(ParseError::InputsNotObject {
            node: self.id.to_string(),
            found: "an array",
        }))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(self.state.fail(ParseError::InputsNotObject {
            node: self.id.to_string(),
            found: "a string",
        }))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.state.fail(ParseError::InputsNotObject {
            node: self.id.to_string(),
            found: "a boolean",
        }))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(self.state.fail(ParseError::InputsNotObject {
            node: self.id.to_string(),
            found: "a number",
        }))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(self.state.fail(ParseError::InputsNotObject {
            node: self.id.to_string(),
            found: "a number",
        }))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.state.fail(ParseError::InputsNotObject {
            node: self.id.to_string(),
            found: "a number",
        }))
    }
}
