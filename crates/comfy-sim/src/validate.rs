//! `POST /prompt` validation, answering with ComfyUI 0.8.0's exact error
//! shapes (`error` + `node_errors`, `dependent_outputs`, conversion of
//! values, Python-formatted messages).
//!
//! Where the real server's order is a Python set's (output nodes, input
//! names), this module uses prompt order and `input_order`, which agrees with
//! every recorded response.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Number, Value, json};

use crate::catalog::Catalog;
use crate::pyjson::py_float_repr;

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

/// Python `float(v)` of an explicit `number`.
pub(crate) fn py_float(v: &Value) -> Option<f64> {
    to_float(v).ok().map(Num::f)
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

/// Python `str()` of a JSON value.
pub(crate) fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python `repr()` of a JSON value.
pub(crate) fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => num_str(n),
        Value::String(s) => {
            if s.contains('\'') && !s.contains('"') {
                format!("\"{s}\"")
            } else {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        }
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", py_repr(&Value::String(k.clone())), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn num_str(n: &Number) -> String {
    if n.is_f64() {
        n.as_f64().map(py_float_repr).unwrap_or_default()
    } else {
        n.to_string()
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// A numeric value for comparisons: integers exactly, floats as floats.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn of(n: &Number) -> Option<Self> {
        if let Some(i) = n.as_i64() {
            Some(Num::Int(i128::from(i)))
        } else if let Some(u) = n.as_u64() {
            Some(Num::Int(i128::from(u)))
        } else {
            n.as_f64().map(Num::Float)
        }
    }
    fn lt(self, other: Num) -> bool {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a < b,
            (a, b) => a.f() < b.f(),
        }
    }
    fn f(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
    fn to_value(self) -> Value {
        match self {
            Num::Int(i) => i64::try_from(i)
                .map(Value::from)
                .or_else(|_| u64::try_from(i).map(Value::from))
                .unwrap_or_else(|_| Number::from_f64(i as f64).map_or(Value::Null, Value::Number)),
            Num::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        }
    }
    fn show(self) -> String {
        match self {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => py_float_repr(f),
        }
    }
}

fn to_int(v: &Value) -> Result<Num, String> {
    match v {
        Value::Bool(b) => Ok(Num::Int(i128::from(*b))),
        Value::Number(n) => match Num::of(n) {
            Some(Num::Float(f)) if !f.is_finite() => Err(if f.is_nan() {
                "cannot convert float NaN to integer".into()
            } else {
                "cannot convert float infinity to integer".into()
            }),
            Some(Num::Float(f)) => Ok(Num::Int(f.trunc() as i128)),
            Some(i) => Ok(i),
            None => Err("invalid number".into()),
        },
        Value::String(s) => {
            let t = s.trim();
            let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
            let ok = !digits.is_empty()
                && !digits.starts_with('_')
                && !digits.ends_with('_')
                && !digits.contains("__")
                && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
            let parsed = if ok {
                t.replace('_', "").parse::<i128>().ok()
            } else {
                None
            };
            parsed
                .map(Num::Int)
                .ok_or_else(|| format!("invalid literal for int() with base 10: {}", py_repr(v)))
        }
        other => Err(format!(
            "int() argument must be a string, a bytes-like object or a real number, not '{}'",
            type_name(other)
        )),
    }
}

fn to_float(v: &Value) -> Result<Num, String> {
    match v {
        Value::Bool(b) => Ok(Num::Float(f64::from(u8::from(*b)))),
        Value::Number(n) => n.as_f64().map(Num::Float).ok_or_else(|| "invalid number".into()),
        Value::String(s) => {
            let t = s.trim();
            let lower = t.to_ascii_lowercase();
            let special = matches!(lower.trim_start_matches(['+', '-']), "inf" | "infinity" | "nan");
            if !special && t.chars().any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') {
                return Err(format!("could not convert string to float: {}", py_repr(v)));
            }
            t.replace('_', "")
                .parse::<f64>()
                .map(Num::Float)
                .map_err(|_| format!("could not convert string to float: {}", py_repr(v)))
        }
        other => Err(format!(
            "float() argument must be a string or a real number, not '{}'",
            type_name(other)
        )),
    }
}

/// Python `==` between JSON values (1 == 1.0 == True).
fn py_eq(a: &Value, b: &Value) -> bool {
    let num = |v: &Value| match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y).is_eq(),
        _ => a == b,
    }
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

struct Ctx<'a> {
    catalog: &'a Catalog,
    prompt: &'a mut Map<String, Value>,
    inputs_present: HashSet<String>,
    validated: Vec<(String, bool, Vec<Value>)>,
    index: HashMap<String, usize>,
    in_progress: HashSet<String>,
}

impl Ctx<'_> {
    fn set(&mut self, id: &str, ok: bool, errors: Vec<Value>) {
        if let Some(&i) = self.index.get(id) {
            self.validated[i] = (id.to_owned(), ok, errors);
        } else {
            self.index.insert(id.to_owned(), self.validated.len());
            self.validated.push((id.to_owned(), ok, errors));
        }
    }

    fn ok(&self, id: &str) -> Option<bool> {
        self.index.get(id).map(|&i| self.validated[i].1)
    }

    fn validate_inputs(&mut self, id: &str, depth: usize) -> Result<bool, Exc> {
        if let Some(ok) = self.ok(id) {
            return Ok(ok);
        }
        if depth > MAX_DEPTH || !self.in_progress.insert(id.to_owned()) {
            return Err(Exc::Recursion);
        }
        let result = self.validate_node(id, depth);
        self.in_progress.remove(id);
        result
    }

    /// Validates one node. Only the loop and the recursion live in this
    /// frame; the per-input work is in non-inlined helpers, so a deep chain
    /// of links costs little stack per level.
    fn validate_node(&mut self, id: &str, depth: usize) -> Result<bool, Exc> {
        let NodeInputs {
            class,
            declared,
            given: inputs,
        } = self.declared_inputs(id)?;
        let mut errors = Vec::new();
        let mut valid = true;
        for (x, required, spec) in declared {
            match self.check_input(id, &class, &x, required, &spec, inputs.get(&x))? {
                Check::Ok => {}
                Check::Error(e) => errors.push(e),
                Check::Follow(o_id) => match self.validate_inputs(&o_id, depth + 1) {
                    Ok(true) => {}
                    Ok(false) => valid = false,
                    Err(Exc::Recursion) => return Err(Exc::Recursion),
                    Err(ex) => {
                        let e = inner_exception(&x, &spec, inputs.get(&x), &ex);
                        self.set(&o_id, false, vec![e]);
                        valid = false;
                    }
                },
            }
        }
        let ok = valid && errors.is_empty();
        self.set(id, ok, errors);
        Ok(ok)
    }

    /// The node's class, its declared inputs in `input_order` (required,
    /// then optional) with their specs, and the inputs it was given.
    #[inline(never)]
    fn declared_inputs(&self, id: &str) -> Result<NodeInputs, Exc> {
        let class = self
            .prompt
            .get(id)
            .and_then(|n| n.get("class_type"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(def) = self.catalog.node(class) else {
            return Err(Exc::Key(py_repr(&Value::String(class.to_owned()))));
        };
        let Some(Value::Object(inputs)) = self.prompt.get(id).and_then(|n| n.get("inputs")) else {
            return Err(Exc::Key("'inputs'".into()));
        };
        let mut declared = Vec::new();
        for (section, required) in [("required", true), ("optional", false)] {
            let order: Vec<String> = def
                .pointer(&format!("/input_order/{section}"))
                .and_then(Value::as_array)
                .map_or_else(
                    || {
                        def.pointer(&format!("/input/{section}"))
                            .and_then(Value::as_object)
                            .map(|m| m.keys().cloned().collect())
                            .unwrap_or_default()
                    },
                    |a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                );
            for name in order {
                if let Some(spec) = def.pointer(&format!("/input/{section}/{name}")) {
                    declared.push((name, required, spec.clone()));
                }
            }
        }
        Ok(NodeInputs {
            class: class.to_owned(),
            declared,
            given: inputs.clone(),
        })
    }

    /// Checks one declared input: a missing required input, a link (its
    /// shape, target and type), or a literal (conversion, range, combo,
    /// custom validation). Converted literals are written back.
    #[inline(never)]
    fn check_input(
        &mut self,
        id: &str,
        class: &str,
        x: &str,
        required: bool,
        spec: &Value,
        given: Option<&Value>,
    ) -> Result<Check, Exc> {
        let info = input_config(spec);
        let (input_type, extra) = (info[0].clone(), info[1].clone());
        let Some(val) = given.cloned() else {
            return Ok(if required {
                Check::Error(
                    json!({"type": "required_input_missing", "message": "Required input is missing", "details": x, "extra_info": {"input_name": x}}),
                )
            } else {
                Check::Ok
            });
        };
        if let Value::Array(link) = &val {
            if link.len() != 2 {
                return Ok(Check::Error(
                    json!({"type": "bad_linked_input", "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]", "details": x, "extra_info": {"input_name": x, "input_config": info, "received_value": val}}),
                ));
            }
            let o_id = match &link[0] {
                Value::String(s) => s.clone(),
                Value::Array(_) => return Err(Exc::Type("unhashable type: 'list'".into())),
                Value::Object(_) => return Err(Exc::Type("unhashable type: 'dict'".into())),
                other => return Err(Exc::Key(py_repr(other))),
            };
            let Some(o_class) = self
                .prompt
                .get(&o_id)
                .and_then(|n| n.get("class_type"))
                .and_then(Value::as_str)
            else {
                return Err(Exc::Key(py_repr(&Value::String(o_id))));
            };
            let outputs = self
                .catalog
                .node(o_class)
                .and_then(|d| d.get("output"))
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            let idx = match &link[1] {
                Value::Number(n) if n.is_i64() || n.is_u64() => n.as_i64().unwrap_or(i64::MAX),
                Value::Bool(b) => i64::from(*b),
                other => {
                    return Err(Exc::Type(format!(
                        "tuple indices must be integers or slices, not {}",
                        type_name(other)
                    )));
                }
            };
            let len = outputs.len() as i64;
            let pos = if idx < 0 { idx + len } else { idx };
            if pos < 0 || pos >= len {
                return Err(Exc::Index);
            }
            let received = outputs[pos as usize].clone();
            if !types_match(&received, &input_type) {
                return Ok(Check::Error(
                    json!({"type": "return_type_mismatch", "message": "Return type mismatch between linked nodes", "details": format!("{x}, received_type({}) mismatch input_type({})", py_str(&received), py_str(&input_type)), "extra_info": {"input_name": x, "input_config": info, "received_type": received, "linked_node": val}}),
                ));
            }
            return Ok(Check::Follow(o_id));
        }
        let mut val = val;
        if let Some(inner) = val.get("__value__").cloned() {
            val = inner;
        }
        let raw = val.clone();
        let converted = match input_type.as_str() {
            Some("INT") => to_int(&val).map(Num::to_value).map(Some),
            Some("FLOAT") => to_float(&val).map(Num::to_value).map(Some),
            Some("STRING") => Ok(Some(Value::String(py_str(&val)))),
            Some("BOOLEAN") => Ok(Some(Value::Bool(crate::state::truthy(&val)))),
            _ => Ok(None),
        };
        match converted {
            Err(msg) => {
                let t = py_str(&input_type);
                return Ok(Check::Error(
                    json!({"type": "invalid_input_type", "message": format!("Failed to convert an input value to a {t} value"), "details": format!("{x}, {}, {msg}", py_str(&raw)), "extra_info": {"input_name": x, "input_config": info, "received_value": raw, "exception_message": msg}}),
                ));
            }
            Ok(Some(v)) => val = v,
            Ok(None) => {}
        }
        if let Some(Value::Object(node)) = self.prompt.get_mut(id)
            && let Some(Value::Object(ins)) = node.get_mut("inputs")
        {
            ins.insert(x.to_owned(), val.clone());
        }
        // Nodes whose own VALIDATE_INPUTS replaces the combo check.
        if matches!(class, "LoadImage" | "LoadImageMask") && x == "image" {
            let name = val.as_str().unwrap_or_default();
            let plain = name.trim_end_matches(" [input]");
            if !name.is_empty() && !self.inputs_present.contains(plain) {
                return Ok(Check::Error(
                    json!({"type": "custom_validation_failed", "message": "Custom validation failed for node", "details": format!("{x} - Invalid image file: {name}"), "extra_info": {"input_name": x}}),
                ));
            }
            return Ok(Check::Ok);
        }
        let vnum = match &val {
            Value::Number(n) => Num::of(n),
            _ => None,
        };
        if let (Some(v), Some(min)) = (vnum, extra.get("min").and_then(Value::as_number).and_then(Num::of))
            && v.lt(min)
        {
            return Ok(Check::Error(
                json!({"type": "value_smaller_than_min", "message": format!("Value {} smaller than min of {}", v.show(), min.show()), "details": x, "extra_info": {"input_name": x, "input_config": info, "received_value": val}}),
            ));
        }
        if let (Some(v), Some(max)) = (vnum, extra.get("max").and_then(Value::as_number).and_then(Num::of))
            && max.lt(v)
        {
            return Ok(Check::Error(
                json!({"type": "value_bigger_than_max", "message": format!("Value {} bigger than max of {}", v.show(), max.show()), "details": x, "extra_info": {"input_name": x, "input_config": info, "received_value": val}}),
            ));
        }
        if let Some(options) = crate::catalog::combo_options(spec)
            && !options.iter().any(|o| py_eq(o, &val))
        {
            let (list_info, cfg) = if options.len() > 20 {
                (format!("(list of length {})", options.len()), Value::Null)
            } else {
                (py_repr(&Value::Array(options.clone())), info.clone())
            };
            return Ok(Check::Error(
                json!({"type": "value_not_in_list", "message": "Value not in list", "details": format!("{x}: '{}' not in {list_info}", py_str(&val)), "extra_info": {"input_name": x, "input_config": cfg, "received_value": val}}),
            ));
        }
        Ok(Check::Ok)
    }
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
