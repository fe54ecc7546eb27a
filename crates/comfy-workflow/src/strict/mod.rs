//! Strict JSON: `serde_json` with duplicate keys rejected and every
//! [`Limits`] bound checked while the document is read.

mod value;
mod workflow;

use std::cell::RefCell;

use serde::de::{DeserializeSeed, Deserializer};
use serde_json::Value;

use self::value::Seed;
use self::value::State;
use self::workflow::WorkflowVisitor;
use crate::{Limits, ParseError, Workflow};

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
        scratch: RefCell::new(Vec::new()),
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
