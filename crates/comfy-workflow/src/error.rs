//! Why a workflow could not be read.

/// A workflow document was rejected. Messages are lower-case and name the
/// node, field or JSON path at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The document is larger than [`crate::Limits::max_bytes`].
    #[error("workflow is {size} bytes, more than the limit of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON, or not UTF-8.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// An object has the same key twice: another parser could pick the other
    /// value, so the graph checked would not be the graph run.
    #[error("duplicate key `{key}` at `{path}`")]
    DuplicateKey {
        /// The JSON path of the object.
        path: String,
        /// The repeated key.
        key: String,
    },
    /// Nesting deeper than [`crate::Limits::max_depth`].
    #[error("nesting deeper than {max} at `{path}`")]
    TooDeep {
        /// Where the limit was crossed.
        path: String,
        /// The limit.
        max: usize,
    },
    /// A string longer than [`crate::Limits::max_string`].
    #[error("string of {len} bytes at `{path}` is longer than the limit of {max}")]
    StringTooLong {
        /// Where.
        path: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More nodes than [`crate::Limits::max_nodes`].
    #[error("workflow has more than {max} nodes")]
    TooManyNodes {
        /// The limit.
        max: usize,
    },
    /// The top level is not an object keyed by node ids.
    #[error("workflow must be a JSON object keyed by node ids, got {found}")]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// A node id that cannot be one.
    #[error("invalid node id `{id}`: {reason}")]
    InvalidNodeId {
        /// The id (escaped).
        id: String,
        /// Why.
        reason: &'static str,
    },
    /// A node that is not an object.
    #[error("node `{node}` must be an object, got {found}")]
    NodeNotObject {
        /// The node id.
        node: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A node without a string `class_type`.
    #[error("node `{node}` has no `class_type` string")]
    MissingClassType {
        /// The node id.
        node: String,
    },
    /// A node whose `inputs` is present but not an object.
    #[error("node `{node}` field `inputs` must be an object, got {found}")]
    InputsNotObject {
        /// The node id.
        node: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A link whose output index is not a small non-negative integer.
    #[error("node `{node}` input `{input}` links to `{target}` with invalid output index {index}")]
    BadLinkIndex {
        /// The node id.
        node: String,
        /// The input name.
        input: String,
        /// The linked node id.
        target: String,
        /// The index as written.
        index: String,
    },
}

/// The JSON type name of a value, for messages.
pub(crate) fn type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
