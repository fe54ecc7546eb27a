use serde_json::json;

use super::{py_float_repr, to_string, to_string_indented};

#[test]
fn separators_and_order_match_python() {
    let v = json!({"exec_info": {"queue_remaining": 0}, "b": [1, 2.0, "x", null, true]});
    assert_eq!(
        to_string(&v),
        r#"{"exec_info": {"queue_remaining": 0}, "b": [1, 2.0, "x", null, true]}"#
    );
}

#[test]
fn floats_print_as_python_repr() {
    let cases = [
        (1.0, "1.0"),
        (0.5, "0.5"),
        (6.0, "6.0"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.5e-7, "1.5e-07"),
        (1e16, "1e+16"),
        (123_456_789_012_345.6, "123456789012345.6"),
        (-2.5, "-2.5"),
        (7.5, "7.5"),
        (0.1 + 0.2, "0.30000000000000004"),
    ];
    for (value, want) in cases {
        assert_eq!(py_float_repr(value), want, "repr of {value:e}");
    }
}

#[test]
fn non_ascii_is_escaped_like_ensure_ascii() {
    let v = json!({"s": "caf\u{e9} \u{1f600} \u{7f} \"q\" \\ \n\t\u{1}"});
    assert_eq!(
        to_string(&v),
        r#"{"s": "caf\u00e9 \ud83d\ude00 \u007f \"q\" \\ \n\t\u0001"}"#
    );
}

proptest::proptest! {
    #[test]
    fn float_repr_round_trips(x in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
        let text = py_float_repr(x);
        proptest::prop_assert_eq!(text.parse::<f64>().unwrap().to_bits(), x.to_bits(), "{}", text);
        proptest::prop_assert!(text.contains('.') || text.contains('e'), "{}", text);
    }

    #[test]
    fn output_is_json_that_reads_back(s in ".{0,40}", n in proptest::num::i64::ANY) {
        let v = json!({"s": s, "n": n, "a": [s.clone(), n]});
        let text = to_string(&v);
        proptest::prop_assert!(text.is_ascii());
        proptest::prop_assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
    }
}

#[test]
fn indent_matches_python() {
    let v = json!({"Comfy.FixtureTest": 42, "Comfy.A": "x", "Comfy.B": [1, 2], "e": [], "o": {}});
    let want = "{\n    \"Comfy.FixtureTest\": 42,\n    \"Comfy.A\": \"x\",\n    \"Comfy.B\": [\n        1,\n        2\n    ],\n    \"e\": [],\n    \"o\": {}\n}";
    assert_eq!(to_string_indented(&v, 4), want);
}
