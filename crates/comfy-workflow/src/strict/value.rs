//! Reading any JSON value under the limits: the path kept to name where an
//! error is, the depth, size and string checks, duplicate keys refused. The
//! generic part, apart from what a workflow's shape adds.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use smol_str::SmolStr;

use crate::{Input, Limits, NodeId, ParseError};

/// One step of the JSON path, kept only to name where an error is.
/// Keys are [`SmolStr`]s: pushing one allocates nothing for short keys.
pub(super) enum Seg {
    Key(SmolStr),
    /// A key the parser knows (`class_type`, `inputs`, `_meta`).
    Known(&'static str),
    Index(usize),
    Node(NodeId),
}

pub(super) struct State {
    pub(super) limits: Limits,
    pub(super) path: RefCell<Vec<Seg>>,
    pub(super) failure: RefCell<Option<ParseError>>,
    /// Reused for each node's inputs, so the node's own list is allocated
    /// once at its final size.
    pub(super) scratch: RefCell<Vec<(SmolStr, Input)>>,
}

impl State {
    pub(super) fn path(&self) -> String {
        let p = self.path.borrow();
        if p.is_empty() {
            return "/".to_owned();
        }
        let mut out = String::new();
        for segment in p.iter() {
            out.push('/');
            match segment {
                Seg::Key(k) => out.push_str(k),
                Seg::Known(k) => out.push_str(k),
                Seg::Index(i) => out.push_str(&i.to_string()),
                Seg::Node(id) => out.push_str(id.as_str()),
            }
        }
        out
    }

    pub(super) fn push(&self, seg: Seg) {
        self.path.borrow_mut().push(seg);
    }

    pub(super) fn pop(&self) {
        self.path.borrow_mut().pop();
    }

    pub(super) fn fail<E: de::Error>(&self, err: ParseError) -> E {
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

/// A string from the document: borrowed when it has no escapes.
pub(super) enum Text<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Text<'_> {
    pub(super) fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }

    pub(super) fn into_string(self) -> String {
        match self {
            Text::Borrowed(s) => s.to_owned(),
            Text::Owned(s) => s,
        }
    }
}

/// Reads an object key without copying it when it can be borrowed.
pub(super) struct KeySeed<'a> {
    pub(super) state: &'a State,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Text<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Text<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        self.state.check_string(v)?;
        Ok(Text::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        self.state.check_string(v)?;
        Ok(Text::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
        self.state.check_string(&v)?;
        Ok(Text::Owned(v))
    }
}

/// A value that may be a string wanted as such (a class name, the first
/// element of a link): the string is not wrapped in a [`Value`] first.
pub(super) enum Head<'de> {
    Str(Text<'de>),
    Other(Value),
}

impl Head<'_> {
    pub(super) fn into_value(self) -> Value {
        match self {
            Head::Str(t) => Value::String(t.into_string()),
            Head::Other(v) => v,
        }
    }
}

/// Reads a [`Head`] under the same checks as [`Seed`].
#[derive(Clone, Copy)]
pub(super) struct HeadSeed<'a>(pub(super) Seed<'a>);

impl<'a> HeadSeed<'a> {
    fn key(self) -> KeySeed<'a> {
        KeySeed { state: self.0.state }
    }
}

impl<'de> DeserializeSeed<'de> for HeadSeed<'_> {
    type Value = Head<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Head<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HeadSeed<'_> {
    type Value = Head<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    // A string is read as an object key is (same check, borrowed when it
    // can be).
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Head<'de>, E> {
        self.key().visit_borrowed_str(v).map(Head::Str)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Head<'de>, E> {
        self.key().visit_str(v).map(Head::Str)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Head<'de>, E> {
        self.key().visit_string(v).map(Head::Str)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Head<'de>, E> {
        Ok(Head::Other(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Head<'de>, E> {
        Ok(Head::Other(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Head<'de>, E> {
        Ok(Head::Other(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Head<'de>, E> {
        self.0.visit_f64(v).map(Head::Other)
    }

    fn visit_unit<E>(self) -> Result<Head<'de>, E> {
        Ok(Head::Other(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Head<'de>, E> {
        Ok(Head::Other(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Head<'de>, A::Error> {
        self.0.visit_seq(seq).map(Head::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Head<'de>, A::Error> {
        self.0.visit_map(map).map(Head::Other)
    }
}

#[derive(Clone, Copy)]
pub(super) struct Seed<'a> {
    pub(super) state: &'a State,
    pub(super) depth: usize,
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
        inner.rest(&mut seq, &mut out)?;
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.enter::<A::Error>()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(KeySeed { state: self.state })? {
            if out.contains_key(key.as_str()) {
                return Err(self.state.fail(ParseError::DuplicateKey {
                    path: self.state.path(),
                    key: key.into_string(),
                }));
            }
            self.state.push(Seg::Key(SmolStr::new(key.as_str())));
            let value = map.next_value_seed(inner);
            self.state.pop();
            out.insert(key.into_string(), value?);
        }
        Ok(Value::Object(out))
    }
}

impl Seed<'_> {
    /// Reads the remaining elements of `seq` into `out`, numbering them
    /// from `out.len()`.
    pub(super) fn rest<'de, A: SeqAccess<'de>>(self, seq: &mut A, out: &mut Vec<Value>) -> Result<(), A::Error> {
        loop {
            self.state.push(Seg::Index(out.len()));
            let item = seq.next_element_seed(self);
            self.state.pop();
            match item? {
                Some(v) => out.push(v),
                None => return Ok(()),
            }
        }
    }

    pub(super) fn enter<E: de::Error>(self) -> Result<Self, E> {
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
