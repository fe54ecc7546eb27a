//! Numbers and switches as ComfyUI will compute them, before the workflow
//! runs: literal inputs cast as ComfyUI's validation casts them (Python's
//! `int()`, `float()`, `bool()`, with `{"__value__": v}` unwrapped), and
//! values reached through primitive, switch and math nodes evaluated.
//!
//! The job-cost check ([`crate::cost`]) and the data-flow resolver
//! (`inspect::flow`, for substring bounds and switch conditions) read
//! values through here, so a limit cannot be dodged by writing `"10000"`,
//! `"1_0000"`, `"１００００"`, or by routing the number through a
//! `PrimitiveInt`, a `ComfySwitchNode` or `ComfyMathExpression`.
//!
//! A value is a set of alternatives (a switch whose condition is unknown
//! yields both branches), or unknown with the node that makes it so.
//! Everything is bounded: alternatives, chain length, expression size.

use std::collections::HashMap;

use comfy_workflow::{Input, Link, Node, NodeId, Workflow};
use serde_json::Value;

/// How ComfyUI casts a literal for an input of this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cast {
    /// `int(v)`.
    Int,
    /// `float(v)`.
    Float,
    /// `bool(v)`: truthiness.
    Bool,
}

/// Why a value cannot be worked out, and where.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Unknown {
    /// The node that makes it unknown (none: the literal itself).
    pub(crate) node: Option<NodeId>,
    /// Its class.
    pub(crate) class: String,
    /// Why.
    pub(crate) why: &'static str,
}

/// Most alternatives followed before a value counts as unknown.
pub(crate) const MAX_ALTERNATIVES: usize = 8;
/// Longest chain of nodes followed.
const MAX_CHAIN: usize = 64;
/// Longest math expression evaluated.
const MAX_EXPRESSION: usize = 1024;

/// The zero of every run of Unicode decimal digits (category Nd; Unicode
/// 14, as Python 3.11): Python's `int()` and `float()` accept them all.
const DIGIT_ZEROS: &[u32] = &[
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6, 0xE50, 0xED0,
    0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620,
    0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0,
    0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60,
    0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The value of a Unicode decimal digit.
fn digit(c: char) -> Option<u32> {
    let c = c as u32;
    DIGIT_ZEROS.iter().find(|&&z| (z..z + 10).contains(&c)).map(|z| c - z)
}

/// Python's `str.isspace()`: Unicode White_Space plus the four
/// information separators U+001C..U+001F.
pub(crate) fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `s` with Unicode digits made ASCII and underscores between digits
/// dropped, as Python reads a numeric literal; `None` when an underscore
/// is misplaced.
fn ascii_number(s: &str) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(chars.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            let between =
                i > 0 && i + 1 < chars.len() && digit(chars[i - 1]).is_some() && digit(chars[i + 1]).is_some();
            if !between {
                return None;
            }
            continue;
        }
        match digit(c) {
            Some(d) => out.push(char::from_digit(d, 10)?),
            None if c.is_ascii() => out.push(c),
            None => return None,
        }
    }
    Some(out)
}

/// Python's `int(s)` for a string.
pub(crate) fn py_int(s: &str) -> Option<f64> {
    let t = ascii_number(s.trim_matches(py_space))?;
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t.as_str()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: f64 = digits.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// Python's `float(s)` for a string.
pub(crate) fn py_float(s: &str) -> Option<f64> {
    let t = s.trim_matches(py_space);
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if lower.len() - unsigned.len() <= 1 && matches!(unsigned, "inf" | "infinity" | "nan") {
        let v = if unsigned == "nan" { f64::NAN } else { f64::INFINITY };
        return Some(if lower.starts_with('-') { -v } else { v });
    }
    let t = ascii_number(t)?;
    // What Rust's parser takes beyond Python's grammar: nothing here but
    // digits, one sign at the start and one after the exponent, a dot, an
    // exponent.
    if !t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        || !t.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    t.parse().ok()
}

/// A literal as ComfyUI's validation casts it for an input of type `cast`.
pub(crate) fn cast_literal(v: &Value, cast: Cast) -> Option<f64> {
    let v = match v {
        Value::Object(m) => m.get("__value__")?,
        v => v,
    };
    match (cast, v) {
        (Cast::Bool, v) => Some(f64::from(u8::from(truthy(v)))),
        (_, Value::Bool(b)) => Some(f64::from(u8::from(*b))),
        (Cast::Int, Value::Number(n)) => n.as_f64().map(f64::trunc),
        (Cast::Float, Value::Number(n)) => n.as_f64(),
        (Cast::Int, Value::String(s)) => py_int(s),
        (Cast::Float, Value::String(s)) => py_float(s),
        _ => None,
    }
}

/// Python's truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Evaluates numbers over one workflow, memoised per node output.
pub(crate) struct Numbers<'a> {
    wf: &'a Workflow,
    memo: HashMap<(NodeId, u32), Result<Vec<f64>, Unknown>>,
}

fn unknown(node: &NodeId, class: &str, why: &'static str) -> Unknown {
    Unknown {
        node: Some(node.clone()),
        class: class.to_owned(),
        why,
    }
}

impl<'a> Numbers<'a> {
    pub(crate) fn new(wf: &'a Workflow) -> Self {
        Self {
            wf,
            memo: HashMap::new(),
        }
    }

    /// The workflow evaluated.
    pub(crate) fn workflow(&self) -> &'a Workflow {
        self.wf
    }

    /// The values `input` of `node` can take, read as `cast`; `Ok(None)`
    /// when the node does not have the input.
    pub(crate) fn input(&mut self, node: &Node, name: &str, cast: Cast) -> Result<Option<Vec<f64>>, Unknown> {
        match node.input(name) {
            None => Ok(None),
            Some(i) => self.of(i, cast, 0).map(Some),
        }
    }

    fn of(&mut self, input: &Input, cast: Cast, depth: usize) -> Result<Vec<f64>, Unknown> {
        match input {
            Input::Value(v) => cast_literal(v, cast).map(|x| vec![x]).ok_or(Unknown {
                node: None,
                class: String::new(),
                why: "its value is not a number ComfyUI can read",
            }),
            Input::Link(link) => {
                let raw = self.link(link, depth)?;
                // Linked values are not cast by validation; the node reads
                // them as it likes, which for numbers is the same value.
                Ok(match cast {
                    Cast::Int => raw.into_iter().map(f64::trunc).collect(),
                    Cast::Float => raw,
                    Cast::Bool => raw.into_iter().map(|x| f64::from(u8::from(x != 0.0))).collect(),
                })
            }
        }
    }

    fn link(&mut self, link: &Link, depth: usize) -> Result<Vec<f64>, Unknown> {
        let key = (link.node.clone(), link.output);
        if let Some(done) = self.memo.get(&key) {
            return done.clone();
        }
        let got = self.compute(link, depth);
        self.memo.insert(key, got.clone());
        got
    }

    fn compute(&mut self, link: &Link, depth: usize) -> Result<Vec<f64>, Unknown> {
        let wf = self.wf;
        let Some(node) = wf.node(link.node.as_str()) else {
            return Err(Unknown {
                node: Some(link.node.clone()),
                class: String::new(),
                why: "it links to a node that does not exist",
            });
        };
        let class = node.class_type.as_str();
        if depth >= MAX_CHAIN {
            return Err(unknown(&node.id, class, "the chain of nodes is too long to follow"));
        }
        let mut arg = |name: &str, cast: Cast| -> Result<Vec<f64>, Unknown> {
            match node.input(name) {
                Some(i) => self.of(i, cast, depth + 1),
                None => Err(unknown(&node.id, class, "an input it needs is missing")),
            }
        };
        let values = match (class, link.output) {
            ("PrimitiveInt", 0) => arg("value", Cast::Int)?,
            ("PrimitiveFloat", 0) => arg("value", Cast::Float)?,
            ("PrimitiveBoolean", 0) => arg("value", Cast::Bool)?,
            ("ComfySwitchNode" | "ComfySoftSwitchNode", 0) => {
                let has = |n: &str| node.input(n).is_some();
                if class == "ComfySoftSwitchNode" && has("on_true") != has("on_false") {
                    // One side connected: it is the output whatever the switch.
                    arg(if has("on_true") { "on_true" } else { "on_false" }, Cast::Float)?
                } else {
                    match arg("switch", Cast::Bool).ok().as_deref() {
                        Some([x]) if *x != 0.0 => arg("on_true", Cast::Float)?,
                        Some([_]) => arg("on_false", Cast::Float)?,
                        _ => {
                            let mut both = arg("on_true", Cast::Float)?;
                            both.extend(arg("on_false", Cast::Float)?);
                            both
                        }
                    }
                }
            }
            ("ComfyMathExpression", 0..=2) => {
                let Some(Value::String(expr)) = node.input("expression").and_then(Input::as_value) else {
                    return Err(unknown(&node.id, class, "its expression comes from another node"));
                };
                let mut names: Vec<(String, Vec<f64>)> = Vec::new();
                for (name, _) in &node.inputs {
                    if let Some(var) = name.strip_prefix("values.") {
                        names.push((var.to_owned(), arg(name, Cast::Float)?));
                    }
                }
                let mut out = Vec::new();
                for combo in combinations(&names) {
                    let v = math::eval(expr, &combo).ok_or_else(|| {
                        unknown(&node.id, class, "its expression is beyond what the inspector evaluates")
                    })?;
                    out.push(match link.output {
                        0 => v,
                        1 => v.trunc(),
                        _ => f64::from(u8::from(v != 0.0)),
                    });
                }
                out
            }
            _ => {
                return Err(unknown(
                    &node.id,
                    class,
                    "its output is computed only when the workflow runs",
                ));
            }
        };
        if values.len() > MAX_ALTERNATIVES {
            return Err(unknown(&node.id, class, "it yields too many alternatives to check"));
        }
        Ok(values)
    }
}

/// Every assignment of one alternative to each name, at most
/// [`MAX_ALTERNATIVES`] + 1 of them.
pub(crate) fn combinations<T: Clone>(names: &[(String, Vec<T>)]) -> Vec<Vec<(String, T)>> {
    let mut out: Vec<Vec<(String, T)>> = vec![Vec::new()];
    for (name, values) in names {
        let mut next = Vec::new();
        for prefix in &out {
            for v in values {
                let mut p = prefix.clone();
                p.push((name.clone(), v.clone()));
                next.push(p);
                if next.len() > MAX_ALTERNATIVES {
                    return next;
                }
            }
        }
        out = next;
    }
    out
}

/// The arithmetic `ComfyMathExpression` evaluates (through `simpleeval`):
/// numbers, the input names, `values`-free arithmetic, comparisons are not
/// needed for sizes; `+ - * / // % **`, unary signs, parentheses and the
/// node's numeric functions. Anything else is beyond it (unknown).
pub(crate) mod math {
    use super::MAX_EXPRESSION;

    /// Evaluates `expr` with `names`; `None` when it cannot.
    pub(crate) fn eval(expr: &str, names: &[(String, f64)]) -> Option<f64> {
        if expr.len() > MAX_EXPRESSION {
            return None;
        }
        let mut p = Parser {
            s: expr.as_bytes(),
            i: 0,
            names,
            depth: 0,
        };
        let v = p.sum()?;
        p.ws();
        (p.i == p.s.len() && v.is_finite()).then_some(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
        names: &'a [(String, f64)],
        depth: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
                self.i += 1;
            }
        }
        fn eat(&mut self, tok: &str) -> bool {
            self.ws();
            if self.s[self.i..].starts_with(tok.as_bytes()) {
                self.i += tok.len();
                true
            } else {
                false
            }
        }
        fn sum(&mut self) -> Option<f64> {
            self.depth += 1;
            if self.depth > 64 {
                return None;
            }
            let mut v = self.product()?;
            loop {
                if self.eat("+") {
                    v += self.product()?;
                } else if self.eat("-") {
                    v -= self.product()?;
                } else {
                    break;
                }
            }
            self.depth -= 1;
            Some(v)
        }
        fn product(&mut self) -> Option<f64> {
            let mut v = self.unary()?;
            loop {
                if self.eat("//") {
                    let d = self.unary()?;
                    v = (v / d).floor();
                } else if self.eat("*") {
                    v *= self.unary()?;
                } else if self.eat("/") {
                    v /= self.unary()?;
                } else if self.eat("%") {
                    let d = self.unary()?;
                    v -= d * (v / d).floor();
                } else {
                    break;
                }
            }
            Some(v)
        }
        fn unary(&mut self) -> Option<f64> {
            if self.eat("-") {
                return self.unary().map(|v| -v);
            }
            if self.eat("+") {
                return self.unary();
            }
            self.power()
        }
        fn power(&mut self) -> Option<f64> {
            let base = self.atom()?;
            if self.eat("**") {
                let exp = self.unary()?;
                // simpleeval caps exponents too.
                if exp.abs() > 4000.0 {
                    return None;
                }
                return Some(base.powf(exp));
            }
            Some(base)
        }
        fn atom(&mut self) -> Option<f64> {
            self.ws();
            if self.eat("(") {
                let v = self.sum()?;
                return self.eat(")").then_some(v);
            }
            let start = self.i;
            while self
                .s
                .get(self.i)
                .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
            {
                self.i += 1;
            }
            let word = std::str::from_utf8(&self.s[start..self.i]).ok()?;
            if word.is_empty() {
                return None;
            }
            if word.as_bytes()[0].is_ascii_digit() || word.starts_with('.') {
                return super::py_float(word);
            }
            if self.eat("(") {
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.sum()?);
                        if self.eat(")") {
                            break;
                        }
                        if !self.eat(",") {
                            return None;
                        }
                    }
                }
                return call(word, &args);
            }
            self.names.iter().find(|(n, _)| n == word).map(|(_, v)| *v)
        }
    }

    fn call(f: &str, a: &[f64]) -> Option<f64> {
        let one = || (a.len() == 1).then(|| a[0]);
        Some(match f {
            "abs" => one()?.abs(),
            "sqrt" => one()?.sqrt(),
            "ceil" => one()?.ceil(),
            "floor" => one()?.floor(),
            "int" => one()?.trunc(),
            "float" => one()?,
            // Python rounds half to even.
            "round" => one()?.round_ties_even(),
            "min" if !a.is_empty() => a.iter().copied().fold(f64::INFINITY, f64::min),
            "max" if !a.is_empty() => a.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            "sum" => a.iter().sum(),
            "pow" if a.len() == 2 && a[1].abs() <= 4000.0 => a[0].powf(a[1]),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_match_python() {
        assert_eq!(py_int(" 1_000 "), Some(1000.0));
        assert_eq!(py_int("\u{665}\u{660}"), Some(50.0));
        assert_eq!(py_int("\u{ff11}\u{ff10}\u{ff10}"), Some(100.0));
        assert_eq!(py_int("-7"), Some(-7.0));
        assert_eq!(py_int("1__0"), None);
        assert_eq!(py_int("_1"), None);
        assert_eq!(py_int("5e3"), None);
        assert_eq!(py_int("0x10"), None);
        assert_eq!(py_int("1.5"), None);
        assert_eq!(py_float("5e3"), Some(5000.0));
        assert_eq!(py_float(" 1_0.5 "), Some(10.5));
        assert_eq!(py_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(py_float("0x10"), None);
        assert_eq!(py_float("."), None);
        assert!(py_float("nan").is_some_and(f64::is_nan));
        assert_eq!(cast_literal(&serde_json::json!(10000.9), Cast::Int), Some(10000.0));
        assert_eq!(
            cast_literal(&serde_json::json!({"__value__": "64"}), Cast::Int),
            Some(64.0)
        );
        assert_eq!(cast_literal(&serde_json::json!("false"), Cast::Bool), Some(1.0));
        assert_eq!(cast_literal(&serde_json::json!(""), Cast::Bool), Some(0.0));
    }

    #[test]
    fn math_matches_python() {
        let n = [("a".to_owned(), 7.0), ("b".to_owned(), 2.0)];
        assert_eq!(math::eval("a + b * 3", &n), Some(13.0));
        assert_eq!(math::eval("-a // b", &n), Some(-4.0));
        assert_eq!(math::eval("-a % b", &n), Some(1.0));
        assert_eq!(math::eval("2 ** 3 ** 2", &n), Some(512.0));
        assert_eq!(math::eval("-2 ** 2", &n), Some(-4.0));
        assert_eq!(math::eval("max(a, b, 100) * pow(b, 4)", &n), Some(1600.0));
        assert_eq!(math::eval("round(2.5) + round(3.5)", &n), Some(6.0));
        assert_eq!(math::eval("a.__class__", &n), None);
        assert_eq!(math::eval("10 ** 5000", &n), None);
    }
}
