//! Our published schemas against the rules of the clients that feed them
//! to models: JSON Schema 2020-12 (the MCP revision's dialect), OpenAI's
//! function calling and Anthropic's tool use. Each rule is written down,
//! with where it comes from, in `docs/compatibility.md` ("Schemas every
//! client accepts"); a rule we cannot state precisely is not tested here.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use comfy_mcp::tools::Catalog;
use serde_json::{Value, json};

/// Keywords no client rule lets through at the top level of a tool's
/// parameters (OpenAI: `oneOf`, `anyOf`, `allOf`, `enum`, `not`, `const`;
/// Anthropic: `oneOf`, `anyOf`, `allOf`).
const NOT_AT_TOP: &[&str] = &["oneOf", "anyOf", "allOf", "enum", "not", "const"];

/// Keywords we keep out of every schema: OpenAI refuses `allOf` (and the
/// other combinators but `anyOf`) nested too, and references and
/// conditionals are where clients' converters differ most.
const NOWHERE: &[&str] = &[
    "allOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "$ref",
    "$dynamicRef",
    "$defs",
    "definitions",
    "patternProperties",
    "dependentSchemas",
    "unevaluatedProperties",
    "unevaluatedItems",
];

/// OpenAI's limit on nesting (strict mode; we keep to it everywhere).
const MAX_DEPTH: usize = 10;

/// The problems of one schema node and everything under it.
fn walk(path: &str, schema: &Value, depth: usize, problems: &mut Vec<String>) {
    let Some(m) = schema.as_object() else { return };
    if depth > MAX_DEPTH {
        problems.push(format!("{path}: nested deeper than {MAX_DEPTH}"));
    }
    for k in NOWHERE {
        if m.contains_key(*k) {
            problems.push(format!("{path}: `{k}`"));
        }
    }
    let types: Vec<&str> = match m.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.contains(&"array") && !m.contains_key("items") {
        problems.push(format!("{path}: an array without `items`"));
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            walk(&format!("{path}/properties/{k}"), p, depth + 1, problems);
        }
    }
    if let Some(items) = m.get("items") {
        walk(&format!("{path}/items"), items, depth + 1, problems);
    }
    if let Some(alts) = m.get("anyOf").and_then(Value::as_array) {
        for (i, a) in alts.iter().enumerate() {
            walk(&format!("{path}/anyOf/{i}"), a, depth + 1, problems);
        }
    }
    if let Some(extra) = m.get("additionalProperties").filter(|v| v.is_object()) {
        walk(&format!("{path}/additionalProperties"), extra, depth + 1, problems);
    }
}

/// Every rule for one tool's input schema.
fn problems_of(name: &str, schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !name_ok {
        problems.push(format!("{name}: not a name OpenAI and Anthropic accept"));
    }
    if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
        problems.push(format!("{name}: not a JSON Schema 2020-12 schema: {e}"));
    }
    if jsonschema::draft202012::new(schema).is_err() {
        problems.push(format!("{name}: does not compile"));
    }
    if schema.get("type") != Some(&json!("object")) {
        problems.push(format!("{name}: the top level is not `type: object`"));
    }
    for k in NOT_AT_TOP {
        if schema.get(*k).is_some() {
            problems.push(format!("{name}: `{k}` at the top level"));
        }
    }
    walk(name, schema, 0, &mut problems);
    problems
}

#[test]
fn every_input_schema_keeps_the_clients_rules() {
    let mut problems = Vec::new();
    for tool in Catalog::get().list() {
        problems.extend(problems_of(&tool.name, &Value::Object((*tool.input_schema).clone())));
        if let Some(out) = &tool.output_schema {
            let out = Value::Object((**out).clone());
            if let Err(e) = jsonschema::draft202012::meta::validate(&out) {
                problems.push(format!("{}: output schema: {e}", tool.name));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The checker itself: each rule catches what it is for.
#[test]
fn the_rules_catch_what_clients_refuse() {
    let cases = [
        (
            json!({"anyOf": [{"type": "object"}]}),
            "the top level is not `type: object`",
        ),
        (
            json!({"type": "object", "anyOf": [{"required": ["a"]}]}),
            "`anyOf` at the top level",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "array"}}}),
            "an array without `items`",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": ["array", "null"]}}}),
            "an array without `items`",
        ),
        (
            json!({"type": "object", "properties": {"a": {"allOf": [{"type": "string"}]}}}),
            "`allOf`",
        ),
        (
            json!({"type": "object", "properties": {"a": {"oneOf": [{"type": "string"}, {"type": "object"}]}}}),
            "`oneOf`",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "text"}}}),
            "2020-12",
        ),
    ];
    for (schema, needle) in cases {
        let problems = problems_of("t", &schema);
        assert!(problems.iter().any(|p| p.contains(needle)), "{needle}: {problems:?}");
    }
    let deep = (0..12).fold(
        json!({"type": "string"}),
        |inner, _| json!({"type": "object", "properties": {"x": inner}}),
    );
    assert!(problems_of("t", &deep).iter().any(|p| p.contains("deeper")));
    assert!(
        problems_of("comfyui.tool", &json!({"type": "object"}))
            .iter()
            .any(|p| p.contains("name"))
    );
    // The JSON-text form we publish passes.
    let ours =
        json!({"type": "object", "properties": {"workflow": {"anyOf": [{"type": "string"}, {"type": "object"}]}}});
    assert!(problems_of("t", &ours).is_empty());
}

/// Where a schema node lacks a description: every parameter, and under it
/// every property, array item and extra-property schema (the alternatives
/// of an `anyOf` are described by the parameter that holds them).
fn undescribed(path: &str, schema: &Value, out: &mut Vec<String>) {
    let described = schema
        .get("description")
        .and_then(Value::as_str)
        .is_some_and(|d| d.split_whitespace().count() >= 3);
    if !described {
        out.push(path.to_owned());
    }
    nested(path, schema, out);
}

fn nested(path: &str, schema: &Value, out: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            undescribed(&format!("{path}.{k}"), p, out);
        }
    }
    if let Some(items) = schema.get("items") {
        undescribed(&format!("{path}[]"), items, out);
    }
    if let Some(extra) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        undescribed(&format!("{path}.*"), extra, out);
    }
    for alt in schema.get("anyOf").and_then(Value::as_array).into_iter().flatten() {
        nested(path, alt, out);
    }
}

#[test]
fn every_parameter_and_prompt_argument_is_described() {
    let mut missing = Vec::new();
    for tool in Catalog::get().list() {
        nested(&tool.name, &Value::Object((*tool.input_schema).clone()), &mut missing);
    }
    for prompt in comfy_mcp::tools::prompts::list() {
        for a in prompt.arguments.iter().flatten() {
            if a.description
                .as_deref()
                .is_none_or(|d| d.split_whitespace().count() < 3)
            {
                missing.push(format!("prompt {}.{}", prompt.name, a.name));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} without a description: {missing:#?}",
        missing.len()
    );
}

#[test]
fn the_description_check_looks_at_every_level() {
    let schema = json!({"type": "object", "properties": {
        "a": {"type": "array", "description": "some list of things", "items": {"type": "object", "properties": {"b": {"type": "string"}}}},
        "c": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}], "description": "a list or nothing"},
    }});
    let mut missing = Vec::new();
    nested("t", &schema, &mut missing);
    assert_eq!(missing, ["t.a[]", "t.a[].b", "t.c[]"]);
}

/// No tool marks an argument with `x-mcp-header` (SEP-2243): the handler
/// gives rmcp every enabled tool's schema (`get_tool`), and
/// `docs/compatibility.md` says that no call's headers are checked beyond
/// `Mcp-Method` and `Mcp-Name` because none does. A tool that starts
/// marking one changes what its clients must send: say so there first.
#[test]
fn no_tool_marks_a_header_argument() {
    let marked: Vec<String> = Catalog::get()
        .list()
        .iter()
        .filter(|t| {
            Value::Object((*t.input_schema).clone())
                .to_string()
                .contains("\"x-mcp-header\"")
        })
        .map(|t| t.name.to_string())
        .collect();
    assert!(marked.is_empty(), "{marked:?}");
}
