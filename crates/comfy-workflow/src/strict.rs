//! Strict JSON: `serde_json` with duplicate keys rejected and every
//! [`Limits`] bound checked while the document is read.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::{Limits, ParseError};

/// Parses `bytes` as JSON under `limits`.
///
/// # Errors
/// [`ParseError::TooLarge`], [`ParseError::Json`],
/// [`ParseError::DuplicateKey`], [`ParseError::TooDeep`],
/// [`ParseError::StringTooLong`].
pub fn parse_json(bytes: &[u8], limits: &Limits) -> Result<Value, ParseError> {
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
    let result = Seed {
        state: &state,
        depth: 0,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
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

struct State {
    limits: Limits,
    path: RefCell<Vec<String>>,
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
            out.push_str(segment);
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
            self.state.path.borrow_mut().push(out.len().to_string());
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
            self.state.path.borrow_mut().push(key.clone());
            let value = map.next_value_seed(inner);
            self.state.path.borrow_mut().pop();
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
