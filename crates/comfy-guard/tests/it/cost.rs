//! Job cost as ComfyUI will read it: strings cast as its validation casts
//! them, values through primitives, switches and math nodes, upscale
//! factors multiplied along a chain, and (enforce mode) a value that cannot
//! be worked out counted as over the limit.

use comfy_guard::inspect::{Mode, Severity};
use comfy_guard::{JobLimits, check_job, check_job_in};
use comfy_workflow::{Limits, Workflow};
use serde_json::{Value, json};

fn wf(v: Value) -> Workflow {
    Workflow::from_value(v, &Limits::default()).unwrap()
}

fn limits_hit(v: Value, mode: Mode) -> Vec<&'static str> {
    check_job_in(&wf(v), &JobLimits::DEFAULT, mode)
        .iter()
        .map(|o| o.limit)
        .collect()
}

#[test]
fn strings_are_cast_as_comfyui_casts_them() {
    for steps in [
        json!("10000"),
        json!(" 1_0000 "),
        json!("\u{ff11}\u{ff10}\u{ff10}\u{ff10}"),
        json!({"__value__": 5000}),
        json!(5000.7),
    ] {
        let doc = json!({"1": {"class_type": "KSampler", "inputs": {"steps": steps}}});
        assert_eq!(limits_hit(doc, Mode::Audit), ["max_steps"], "{steps}");
    }
    let doc = json!({"1": {"class_type": "ImageScaleBy", "inputs": {"scale_by": "1.6e1"}}});
    assert_eq!(limits_hit(doc, Mode::Audit), ["max_upscale_factor"]);
    let doc = json!({"1": {"class_type": "EmptyLatentImage", "inputs": {"width": "8192", "height": "8192", "batch_size": "1"}}});
    assert_eq!(limits_hit(doc, Mode::Audit), ["max_pixels"]);
}

#[test]
fn values_through_switches_and_math_are_evaluated() {
    let doc = json!({
        "1": {"class_type": "PrimitiveInt", "inputs": {"value": 100}},
        "2": {"class_type": "ComfyMathExpression", "inputs": {"expression": "a * 100", "values.a": ["1", 0]}},
        "3": {"class_type": "KSampler", "inputs": {"steps": ["2", 1]}}
    });
    assert_eq!(limits_hit(doc, Mode::Audit), ["max_steps"]);
    let doc = json!({
        "1": {"class_type": "PrimitiveBoolean", "inputs": {"value": true}},
        "2": {"class_type": "PrimitiveInt", "inputs": {"value": 20}},
        "3": {"class_type": "PrimitiveInt", "inputs": {"value": 999}},
        "4": {"class_type": "ComfySwitchNode", "inputs": {"switch": ["1", 0], "on_true": ["3", 0], "on_false": ["2", 0]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": ["4", 0]}}
    });
    assert_eq!(limits_hit(doc, Mode::Audit), ["max_batch_size"]);
    // A condition that cannot be worked out: the worse branch counts.
    let doc = json!({
        "1": {"class_type": "SomeCustomBool", "inputs": {}},
        "2": {"class_type": "ComfySwitchNode", "inputs": {"switch": ["1", 0], "on_true": 30, "on_false": 5000}},
        "3": {"class_type": "KSampler", "inputs": {"steps": ["2", 0]}}
    });
    assert_eq!(limits_hit(doc, Mode::Audit), ["max_steps"]);
}

#[test]
fn upscale_factors_multiply_along_a_chain() {
    let mut doc = serde_json::Map::new();
    doc.insert(
        "0".into(),
        json!({"class_type": "LoadImage", "inputs": {"image": "a.png"}}),
    );
    for i in 1..=8 {
        doc.insert(
            i.to_string(),
            json!({"class_type": "ImageScaleBy", "inputs": {"image": [(i - 1).to_string(), 0], "scale_by": 8.0, "upscale_method": "nearest-exact"}}),
        );
    }
    let found = check_job_in(&wf(Value::Object(doc)), &JobLimits::DEFAULT, Mode::Audit);
    let last = found.last().unwrap();
    assert_eq!(last.limit, "max_upscale_factor");
    assert!((last.value - 8f64.powi(8)).abs() < 1.0, "{}", last.value);
    assert_eq!(last.node, "8");
    // Two 2x steps are fine (4x), and an absolute resize starts over.
    let doc = json!({
        "1": {"class_type": "ImageScaleBy", "inputs": {"image": ["0", 0], "scale_by": 2.0}},
        "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "scale_by": 2.0}},
        "3": {"class_type": "ImageScale", "inputs": {"image": ["2", 0], "width": 512, "height": 512}},
        "4": {"class_type": "ImageScaleBy", "inputs": {"image": ["3", 0], "scale_by": 4.0}}
    });
    assert!(limits_hit(doc, Mode::Audit).is_empty());
}

#[test]
fn in_enforce_mode_a_value_that_cannot_be_worked_out_is_over_the_limit() {
    let doc = json!({
        "1": {"class_type": "SomeLLMNode", "inputs": {"prompt": "pick a number"}},
        "2": {"class_type": "KSampler", "inputs": {"steps": ["1", 0]}}
    });
    let found = check_job_in(&wf(doc.clone()), &JobLimits::DEFAULT, Mode::Enforce);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].limit, "max_steps");
    assert_eq!(
        found[0].message,
        "Node 2 (KSampler): steps cannot be worked out before the run (node 1 (SomeLLMNode): its output is computed only when the workflow runs); in enforce mode that counts as over the limit limits.max_steps = 200"
    );
    // A literal ComfyUI cannot read fails validation and never runs.
    let doc = json!({"1": {"class_type": "KSampler", "inputs": {"steps": "many"}}});
    assert!(limits_hit(doc.clone(), Mode::Enforce).is_empty());
    // `check_job` is the audit reading.
    let audit = check_job(&wf(doc.clone()), &JobLimits::DEFAULT);
    assert_eq!(audit, check_job_in(&wf(doc), &JobLimits::DEFAULT, Mode::Audit));
}

#[test]
fn in_audit_mode_a_value_that_cannot_be_worked_out_is_named_with_its_rule() {
    let doc = json!({
        "1": {"class_type": "SomeLLMNode", "inputs": {"prompt": "pick a number"}},
        "2": {"class_type": "KSampler", "inputs": {"steps": ["1", 0]}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": ["1", 0], "height": 512, "batch_size": 1}}
    });
    let found = check_job(&wf(doc), &JobLimits::DEFAULT);
    let rules: Vec<(&str, &str, Severity)> = found
        .iter()
        .map(|o| {
            let f = o.finding(Mode::Audit);
            (f.rule.id(), o.node.as_str(), f.severity)
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("limits.max_steps", "2", Severity::Warning),
            ("limits.max_pixels", "3", Severity::Warning)
        ]
    );
    assert!(found.iter().all(|o| o.unknown));
    assert_eq!(
        found[0].message,
        "Node 2 (KSampler): steps cannot be worked out before the run (node 1 (SomeLLMNode): its output is computed only when the workflow runs), so the limit limits.max_steps = 200 is not checked for it (enforce mode would refuse the job)"
    );
    // A value over the limit is an error finding in either mode.
    let over = check_job(
        &wf(json!({"1": {"class_type": "KSampler", "inputs": {"steps": 5000}}})),
        &JobLimits::DEFAULT,
    );
    let f = over[0].finding(Mode::Audit);
    assert_eq!((f.rule.id(), f.severity), ("limits.max_steps", Severity::Error));
    assert_eq!(f.detail, "5000 over limits.max_steps = 200");
    assert!(!over[0].unknown);
    // A size measured straight from an image the job already holds is not
    // new cost; through a math node it is unknown again.
    let doc = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
        "2": {"class_type": "GetImageSize", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": ["2", 0], "height": ["2", 1], "batch_size": ["2", 2]}},
        "4": {"class_type": "ComfyMathExpression", "inputs": {"expression": "a * 64", "values.a": ["2", 0]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": ["4", 1], "height": 512, "batch_size": 1}}
    });
    let found = check_job(&wf(doc), &JobLimits::DEFAULT);
    let nodes: Vec<(&str, &str)> = found.iter().map(|o| (o.node.as_str(), o.limit)).collect();
    assert_eq!(nodes, [("5", "max_pixels")]);
}
