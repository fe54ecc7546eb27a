//! One validation's walk over a prompt: each output's inputs checked against
//! the catalog, following links, with the errors in ComfyUI's shapes. The long
//! part, in its own file; the parent's `validate` drives it.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::Check;
use super::Exc;
use super::MAX_DEPTH;
use super::NodeInputs;
use super::inner_exception;
use super::input_config;
use super::python::Num;
use super::python::py_eq;
use super::python::to_float;
use super::python::to_int;
use super::python::type_name;
use super::python::{py_repr, py_str};
use super::types_match;
use crate::catalog::Catalog;

pub(super) struct Ctx<'a> {
    pub(super) catalog: &'a Catalog,
    pub(super) prompt: &'a mut Map<String, Value>,
    pub(super) inputs_present: HashSet<String>,
    pub(super) validated: Vec<(String, bool, Vec<Value>)>,
    pub(super) index: HashMap<String, usize>,
    pub(super) in_progress: HashSet<String>,
}

impl Ctx<'_> {
    pub(super) fn set(&mut self, id: &str, ok: bool, errors: Vec<Value>) {
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

    pub(super) fn validate_inputs(&mut self, id: &str, depth: usize) -> Result<bool, Exc> {
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
