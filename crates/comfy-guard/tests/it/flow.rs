//! Data flow into sinks: text assembled over string nodes, switches,
//! primitives, formats and lists reaches an input that acts on it as the
//! value ComfyUI will compute; input names are judged like values; the
//! curated path inputs of core and custom-pack classes; pickles.

use comfy_guard::inspect::{Inspection, Mode, Policy, RuleId, inspect_json};
use serde_json::{Value, json};

fn run(doc: &Value) -> Inspection {
    inspect_json(&serde_json::to_vec(doc).unwrap(), &Policy::new(Mode::Audit), None).unwrap()
}

fn rules(doc: &Value) -> Vec<RuleId> {
    run(doc).findings.iter().map(|f| f.rule).collect()
}

/// `__imp` + `ort__('os').system('id')`: harmless apart, code joined.
const HEAD: &str = "__imp";
const TAIL: &str = "ort__('os').system('id')";

#[test]
fn replace_with_an_empty_find_inserts_as_python_does() {
    // "".replace("", "__imp") is "__imp" in Python, not "".
    let doc = json!({
        "1": {"class_type": "StringReplace", "inputs": {"string": "", "find": "", "replace": HEAD}},
        "2": {"class_type": "StringConcatenate", "inputs": {"string_a": ["1", 0], "string_b": TAIL, "delimiter": ""}},
        "3": {"class_type": "CustomRunner", "inputs": {"code": ["2", 0]}}
    });
    assert_eq!(rules(&doc), [RuleId::CodeInInput]);
}

#[test]
fn substring_bounds_and_switch_conditions_through_primitives_are_evaluated() {
    let doc = json!({
        "1": {"class_type": "PrimitiveInt", "inputs": {"value": 5}},
        "2": {"class_type": "StringSubstring", "inputs": {"string": "zzzzz__imp", "start": ["1", 0], "end": 100}},
        "3": {"class_type": "StringConcatenate", "inputs": {"string_a": ["2", 0], "string_b": TAIL, "delimiter": ""}},
        "4": {"class_type": "CustomRunner", "inputs": {"code": ["3", 0]}}
    });
    assert_eq!(rules(&doc), [RuleId::CodeInInput]);
    // A switch whose condition comes from a primitive: only the branch
    // taken is judged (the other, harmless-looking, would run nothing).
    let doc = json!({
        "1": {"class_type": "PrimitiveBoolean", "inputs": {"value": false}},
        "2": {"class_type": "StringConcatenate", "inputs": {"string_a": HEAD, "string_b": TAIL, "delimiter": ""}},
        "3": {"class_type": "ComfySoftSwitchNode", "inputs": {"switch": ["1", 0], "on_true": "print(1)", "on_false": ["2", 0]}},
        "4": {"class_type": "CustomRunner", "inputs": {"code": ["3", 0]}}
    });
    assert_eq!(rules(&doc), [RuleId::CodeInInput]);
    // A condition that cannot be worked out: both branches are judged.
    let doc = json!({
        "1": {"class_type": "SomeCustomBool", "inputs": {}},
        "2": {"class_type": "StringConcatenate", "inputs": {"string_a": HEAD, "string_b": TAIL, "delimiter": ""}},
        "3": {"class_type": "ComfySwitchNode", "inputs": {"switch": ["1", 0], "on_true": ["2", 0], "on_false": "print(1)"}},
        "4": {"class_type": "CustomRunner", "inputs": {"code": ["3", 0]}}
    });
    assert_eq!(rules(&doc), [RuleId::CodeInInput]);
    // Before: the bounds from a link made the value unknown (tainted).
    let doc = json!({
        "1": {"class_type": "PrimitiveInt", "inputs": {"value": "2"}},
        "2": {"class_type": "StringSubstring", "inputs": {"string": "xxrenders/cat", "start": ["1", 0], "end": 1000}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": ["2", 0]}}
    });
    assert!(run(&doc).is_clean(), "{:?}", run(&doc).findings);
}

#[test]
fn format_strings_and_string_lists_are_assembled() {
    let doc = json!({
        "1": {"class_type": "StringFormat", "inputs": {"f_string": "{a}{b}", "values.a": HEAD, "values.b": TAIL}},
        "2": {"class_type": "CustomRunner", "inputs": {"script": ["1", 0]}}
    });
    assert_eq!(rules(&doc), [RuleId::CodeInInput]);
    let doc = json!({"1": {"class_type": "CustomRunner", "inputs": {"code": [HEAD, TAIL, "#"]}}});
    assert_eq!(rules(&doc), [RuleId::CodeInInput]);
    // `{"__value__": ...}` is unwrapped by ComfyUI before the node sees it.
    let doc = json!({
        "1": {"class_type": "StringConcatenate", "inputs": {"string_a": {"__value__": HEAD}, "string_b": TAIL, "delimiter": ""}},
        "2": {"class_type": "CustomRunner", "inputs": {"code": ["1", 0]}}
    });
    assert_eq!(rules(&doc), [RuleId::CodeInInput]);
}

#[test]
fn reversed_code_at_an_executing_input_is_found() {
    let reversed: String = "__import__('os').system('id')".chars().rev().collect();
    let doc = json!({"1": {"class_type": "CustomRunner", "inputs": {"code": reversed}}});
    let report = run(&doc);
    assert_eq!(
        report.findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [RuleId::CodeInInput]
    );
    assert!(
        report.findings[0].detail.contains("read backwards"),
        "{}",
        report.findings[0].detail
    );
    let doc = json!({
        "1": {"class_type": "PrimitiveString", "inputs": {"value": reversed}},
        "2": {"class_type": "CustomRunner", "inputs": {"expression": ["1", 0]}}
    });
    assert_eq!(rules(&doc), [RuleId::CodeInInput]);
}

#[test]
fn an_input_name_is_judged_like_a_value() {
    let doc = json!({"1": {"class_type": "KSampler", "inputs": {"__import__('os').system('id')": 1, "seed": 1}}});
    let report = run(&doc);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].rule, RuleId::CodeInInput);
    assert!(report.findings[0].detail.contains("input name"));
}

#[test]
fn curated_path_inputs_are_sinks() {
    for (class, input, value) in [
        ("SaveImageDataSetToFolder", "folder_name", "../../../home/u/.ssh"),
        ("SaveTrainingDataset", "folder_name", "/etc"),
        ("LoadImageDataSetFromFolder", "folder", "../../.."),
        ("LoadImageOutput", "image", "../../../../home/u/.ssh/id_rsa [output]"),
        ("LoadAnythingNew", "source", "../../secrets.png [temp]"),
        ("VHS_LoadVideoPath", "video", "/home/u/private.mp4"),
        ("VHS_LoadImagePath", "image", "/etc/shadow"),
        ("VHS_LoadImagesPath", "directory", "C:\\Users"),
        ("Image Load", "image_path", "/root/.aws/credentials"),
        ("SaveText|pysssss", "file", "../../../.bashrc"),
    ] {
        // The code finder may also see `/etc/...` as a file read: that is
        // its business; the path rule must fire.
        let found = rules(&json!({"1": {"class_type": class, "inputs": {input: value}}}));
        assert!(
            found.contains(&RuleId::PathEscape),
            "{class}.{input} = {value}: {found:?}"
        );
    }
}

#[test]
fn pickles_in_loaders_are_findings() {
    for (class, input, value) in [
        ("LoadTrainingDataset", "folder_name", "my_dataset"),
        ("Load Cache", "latent_path", "cache/x.latent"),
        ("LoadCustomModel", "model_file", "evil.pkl"),
        ("LoadCustomModel", "model_file", "weights.PTH"),
        ("LoadImage", "image", "payload.pt [input]"),
    ] {
        assert_eq!(
            rules(&json!({"1": {"class_type": class, "inputs": {input: value}}})),
            [RuleId::PickleLoad],
            "{class}.{input} = {value}"
        );
    }
    // ComfyUI's own model loaders read tensors only (`weights_only=True`).
    for (class, input, value) in [
        ("UpscaleModelLoader", "model_name", "RealESRGAN_x4plus.pth"),
        ("CheckpointLoaderSimple", "ckpt_name", "v1-5-pruned-emaonly.ckpt"),
        ("LoadCustomModel", "model_file", "model.safetensors"),
    ] {
        assert!(
            rules(&json!({"1": {"class_type": class, "inputs": {input: value}}})).is_empty(),
            "{class}.{input} = {value}"
        );
    }
}

#[test]
fn urls_assembled_over_links_are_judged_as_urls() {
    // At a path input that also fetches URLs, and at an input with no sink
    // of its own: the assembled value is a URL, judged as one.
    for (class, input) in [("VHS_LoadImagePath", "image"), ("ImageFromWeb", "source")] {
        let doc = json!({
            "1": {"class_type": "StringConcatenate", "inputs": {"string_a": "http:", "string_b": "169.254.169.254/latest/", "delimiter": "//"}},
            "2": {"class_type": class, "inputs": {input: ["1", 0]}}
        });
        assert_eq!(rules(&doc), [RuleId::UnsafeUrl], "{class}.{input}");
        // A public address is fine at either.
        let doc = json!({
            "1": {"class_type": "StringConcatenate", "inputs": {"string_a": "https:", "string_b": "example.com/cat.png", "delimiter": "//"}},
            "2": {"class_type": class, "inputs": {input: ["1", 0]}}
        });
        assert!(rules(&doc).is_empty(), "{class}.{input}");
    }
    // An unknown value at an input with no sink is not a finding.
    let doc = json!({
        "1": {"class_type": "SomeCustomText", "inputs": {}},
        "2": {"class_type": "ImageFromWeb", "inputs": {"source": ["1", 0]}}
    });
    assert!(rules(&doc).is_empty());
}

#[test]
fn dataset_text_nodes_are_evaluated() {
    let runner = |from: &str, out: u32| json!({"class_type": "CustomRunner", "inputs": {"code": [from, out]}});
    // Prefix, suffix, case and whitespace as Python's str methods.
    let doc = json!({
        "1": {"class_type": "TextToUppercase", "inputs": {"texts": " ort__('os') "}},
        "2": {"class_type": "TextToLowercase", "inputs": {"texts": ["1", 0]}},
        "3": {"class_type": "StripWhitespace", "inputs": {"texts": ["2", 0]}},
        "4": {"class_type": "AddTextPrefix", "inputs": {"texts": ["3", 0], "prefix": HEAD}},
        "5": {"class_type": "AddTextSuffix", "inputs": {"texts": ["4", 0], "suffix": ".system('id')"}},
        "6": runner("5", 0)
    });
    assert_eq!(rules(&doc), [RuleId::CodeInInput]);
    // ReplaceText with an empty find, merged and shuffled lists.
    let doc = json!({
        "1": {"class_type": "ReplaceText", "inputs": {"texts": "", "find": "", "replace": HEAD}},
        "2": {"class_type": "AddTextSuffix", "inputs": {"texts": ["1", 0], "suffix": TAIL}},
        "3": {"class_type": "MergeTextLists", "inputs": {"texts": ["2", 0]}},
        "4": {"class_type": "ShuffleVideoTextDataset", "inputs": {"videos": ["9", 0], "texts": ["3", 0], "seed": 1}},
        "5": runner("4", 1)
    });
    assert_eq!(rules(&doc), [RuleId::CodeInInput]);
    // TruncateText keeps the first `max_length` characters (77 by default).
    let doc = json!({
        "1": {"class_type": "TruncateText", "inputs": {"texts": "../../x then words", "max_length": 7}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": ["1", 0]}}
    });
    assert_eq!(rules(&doc), [RuleId::PathEscape]);
    let doc = json!({
        "1": {"class_type": "TruncateText", "inputs": {"texts": "renders/cat ../../x"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": ["1", 0]}}
    });
    assert_eq!(rules(&doc), [RuleId::PathEscape]);
    let doc = json!({
        "1": {"class_type": "TruncateText", "inputs": {"texts": "renders/cat ../../x", "max_length": 11}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": ["1", 0]}}
    });
    assert!(rules(&doc).is_empty(), "{:?}", run(&doc).findings);
    // A shuffle's first output is the images, not text.
    let doc = json!({
        "1": {"class_type": "ShuffleImageTextDataset", "inputs": {"images": ["9", 0], "texts": "x", "seed": 1}},
        "2": runner("1", 0)
    });
    assert_eq!(rules(&doc), [RuleId::TaintedInput]);
}
