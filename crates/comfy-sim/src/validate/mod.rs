//! `POST /prompt` validation, answering with ComfyUI 0.8.0's exact error
//! shapes (`error` + `node_errors`, `dependent_outputs`, conversion of
//! values, Python-formatted messages).
//!
//! Where the real server's order is a Python set's (output nodes, input
//! names), this module uses prompt order and `input_order`, which agrees with
//! every recorded response.

mod ctx;
mod python;

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use self::ctx::Ctx;
pub(crate) use self::python::{py_float, py_repr, py_str};
use crate::catalog::Catalog;

/// Deepest chain of links validated before the prompt counts as cyclic (the
/// real server hits Python's recursion limit).
const MAX_DEPTH: usize = 512;
const TB_FILE: &str = "  File \"/srv/comfy/ComfyUI/execution.py\", line ";

/// A prompt that passed: the outputs to execute and the errors of dropped
/// outputs.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) outputs: Vec<String>,
    pub(crate) node_errors: Value,
}

/// The 400 body for a request without a `prompt`.
pub(crate) fn no_prompt_error() -> Value {
    json!({"error": {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": {}}, "node_errors": {}})
}

/// The 400 body for a prompt without output nodes.
pub(crate) fn no_outputs_error() -> Value {
    error_body("prompt_no_outputs", "Prompt has no outputs", "", json!({}))
}

fn error_body(kind: &str, message: &str, details: &str, node_errors: Value) -> Value {
    let mut body = Map::new();
    body.insert(
        "error".into(),
        json!({"type": kind, "message": message, "details": details, "extra_info": {}}),
    );
    body.insert("node_errors".into(), node_errors);
    Value::Object(body)
}

/// An exception escaping `validate_inputs`.
#[derive(Debug, Clone)]
enum Exc {
    Key(String),
    Index,
    Type(String),
    /// Recursion limit or a cycle: the whole output fails silently.
    Recursion,
}

impl Exc {
    fn details(&self) -> String {
        match self {
            Exc::Key(k) => k.clone(),
            Exc::Index => "tuple index out of range".into(),
            Exc::Type(t) => t.clone(),
            Exc::Recursion => "maximum recursion depth exceeded".into(),
        }
    }
    fn type_name(&self) -> &'static str {
        match self {
            Exc::Key(_) => "KeyError",
            Exc::Index => "IndexError",
            Exc::Type(_) => "TypeError",
            Exc::Recursion => "RecursionError",
        }
    }
    fn raise_frame(&self) -> String {
        match self {
            Exc::Index => format!(
                "{TB_FILE}820, in validate_inputs\n    received_type = r[val[1]]\n                    ~^^^^^^^^\n"
            ),
            _ => format!(
                "{TB_FILE}818, in validate_inputs\n    o_class_type = prompt[o_id]['class_type']\n                   ~~~~~~^^^^^^\n"
            ),
        }
    }
}

fn outer_frame() -> String {
    format!(
        "{TB_FILE}1043, in validate_prompt\n    m = await validate_inputs(prompt_id, prompt, o, validated)\n        {}\n",
        "^".repeat(54)
    )
}

fn inner_frame() -> String {
    format!(
        "{TB_FILE}838, in validate_inputs\n    r = await validate_inputs(prompt_id, prompt, o_id, validated)\n        {}\n",
        "^".repeat(57)
    )
}

/// A declared input: name, whether it is required, and its spec.
type Declared = (String, bool, Value);

/// A node's class, its declared inputs in order, and the inputs it was given.
struct NodeInputs {
    class: String,
    declared: Vec<Declared>,
    given: Map<String, Value>,
}

/// The outcome of checking one input.
enum Check {
    Ok,
    Error(Value),
    /// A well-formed link whose target must be validated in turn.
    Follow(String),
}

/// `[type, options]` as ComfyUI reports an input's config in errors (the
/// options are `{}` when the declaration has none).
fn input_config(spec: &Value) -> Value {
    let input_type = spec.get(0).cloned().unwrap_or(Value::Null);
    let extra = spec
        .get(1)
        .filter(|_| spec.as_array().is_some_and(|a| a.len() == 2))
        .cloned()
        .unwrap_or_else(|| json!({}));
    json!([input_type, extra])
}

/// The error recorded on a linked node whose validation raised.
#[inline(never)]
fn inner_exception(x: &str, spec: &Value, link: Option<&Value>, ex: &Exc) -> Value {
    json!({"type": "exception_during_inner_validation", "message": "Exception when validating inner node", "details": ex.details(), "extra_info": {"input_name": x, "input_config": input_config(spec), "exception_message": ex.details(), "exception_type": ex.type_name(), "traceback": [inner_frame(), ex.raise_frame()], "linked_node": link}})
}

fn types_match(received: &Value, wanted: &Value) -> bool {
    if received == wanted {
        return true;
    }
    match (received, wanted) {
        (Value::Array(_), Value::String(t)) if t == "COMBO" => true,
        (Value::String(r), Value::String(t)) => {
            let rs: HashSet<&str> = r.split(',').map(str::trim).collect();
            let ts: HashSet<&str> = t.split(',').map(str::trim).collect();
            let special = |s: &HashSet<&str>| s.contains("*") || s.contains("COMFY_MATCHTYPE_V3");
            special(&rs) || special(&ts) || !rs.is_disjoint(&ts)
        }
        _ => false,
    }
}

/// Validates `prompt` as ComfyUI's `validate_prompt` does, converting input
/// values in place. `input_files` are the names in the input directory.
///
/// # Errors
/// The 400 body (`error` + `node_errors`) when the prompt cannot run.
pub(crate) fn validate(
    catalog: &Catalog,
    prompt: &mut Map<String, Value>,
    partial: Option<&Value>,
    input_files: &[String],
) -> Result<Outcome, Value> {
    let mut outputs = Vec::new();
    for (x, node) in prompt.iter() {
        let Some(class) = node.get("class_type") else {
            return Err(error_body(
                "invalid_prompt",
                "Cannot execute because a node is missing the class_type property.",
                &format!("Node ID '#{x}'"),
                json!({}),
            ));
        };
        let class_s = py_str(class);
        let Some(def) = class.as_str().and_then(|c| catalog.node(c)) else {
            return Err(error_body(
                "invalid_prompt",
                &format!("Cannot execute because node {class_s} does not exist."),
                &format!("Node ID '#{x}'"),
                json!({}),
            ));
        };
        if def.get("output_node").and_then(Value::as_bool) == Some(true) {
            let selected = match partial {
                None | Some(Value::Null) => true,
                Some(Value::Array(a)) => a.iter().any(|t| t.as_str() == Some(x.as_str())),
                Some(Value::String(s)) => s.contains(x.as_str()),
                Some(_) => false,
            };
            if selected {
                outputs.push(x.clone());
            }
        }
    }
    if outputs.is_empty() {
        return Err(no_outputs_error());
    }
    let mut ctx = Ctx {
        catalog,
        prompt,
        inputs_present: input_files.iter().cloned().collect(),
        validated: Vec::new(),
        index: HashMap::new(),
        in_progress: HashSet::new(),
    };
    let mut good = Vec::new();
    let mut failed: Vec<(String, Vec<Value>)> = Vec::new();
    let mut node_errors = Map::new();
    for o in &outputs {
        ctx.in_progress.clear();
        let (ok, reasons) = match ctx.validate_inputs(o, 0) {
            Ok(ok) => (
                ok,
                ctx.index
                    .get(o)
                    .map(|&i| ctx.validated[i].2.clone())
                    .unwrap_or_default(),
            ),
            Err(Exc::Recursion) => {
                ctx.set(o, false, Vec::new());
                (false, Vec::new())
            }
            Err(ex) => {
                let r = vec![
                    json!({"type": "exception_during_validation", "message": "Exception when validating node", "details": ex.details(), "extra_info": {"exception_type": ex.type_name(), "traceback": [outer_frame(), ex.raise_frame()]}}),
                ];
                ctx.set(o, false, r.clone());
                (false, r)
            }
        };
        if ok {
            good.push(o.clone());
            continue;
        }
        failed.push((o.clone(), reasons));
        for (id, ok, errs) in &ctx.validated {
            if *ok || errs.is_empty() {
                continue;
            }
            let entry = node_errors.entry(id.clone()).or_insert_with(|| {
                let class = ctx
                    .prompt
                    .get(id)
                    .and_then(|n| n.get("class_type"))
                    .cloned()
                    .unwrap_or(Value::Null);
                json!({"errors": errs, "dependent_outputs": [], "class_type": class})
            });
            if let Some(Value::Array(d)) = entry.get_mut("dependent_outputs") {
                d.push(Value::String(o.clone()));
            }
        }
    }
    if good.is_empty() {
        let details = failed
            .iter()
            .flat_map(|(_, rs)| rs.iter())
            .map(|r| {
                format!(
                    "{}: {}",
                    r.get("message").map(py_str).unwrap_or_default(),
                    r.get("details").map(py_str).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        return Err(error_body(
            "prompt_outputs_failed_validation",
            "Prompt outputs failed validation",
            &details,
            Value::Object(node_errors),
        ));
    }
    Ok(Outcome {
        outputs: good,
        node_errors: Value::Object(node_errors),
    })
}

#[cfg(test)]
mod tests;
