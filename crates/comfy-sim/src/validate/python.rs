//! Values as Python sees them: `str()`, `repr()`, `int()` and `float()`
//! conversions and equality, so validation messages print what ComfyUI's
//! Python prints. Apart from the checks that use them.

use serde_json::{Number, Value};

use crate::pyjson::py_float_repr;

/// Python `float(v)` of an explicit `number`.
pub(crate) fn py_float(v: &Value) -> Option<f64> {
    to_float(v).ok().map(Num::f)
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

pub(super) fn num_str(n: &Number) -> String {
    if n.is_f64() {
        n.as_f64().map(py_float_repr).unwrap_or_default()
    } else {
        n.to_string()
    }
}

pub(super) fn type_name(v: &Value) -> &'static str {
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
pub(super) enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    pub(super) fn of(n: &Number) -> Option<Self> {
        if let Some(i) = n.as_i64() {
            Some(Num::Int(i128::from(i)))
        } else if let Some(u) = n.as_u64() {
            Some(Num::Int(i128::from(u)))
        } else {
            n.as_f64().map(Num::Float)
        }
    }
    pub(super) fn lt(self, other: Num) -> bool {
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
    pub(super) fn to_value(self) -> Value {
        match self {
            Num::Int(i) => i64::try_from(i)
                .map(Value::from)
                .or_else(|_| u64::try_from(i).map(Value::from))
                .unwrap_or_else(|_| Number::from_f64(i as f64).map_or(Value::Null, Value::Number)),
            Num::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        }
    }
    pub(super) fn show(self) -> String {
        match self {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => py_float_repr(f),
        }
    }
}

pub(super) fn to_int(v: &Value) -> Result<Num, String> {
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

pub(super) fn to_float(v: &Value) -> Result<Num, String> {
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
pub(super) fn py_eq(a: &Value, b: &Value) -> bool {
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
