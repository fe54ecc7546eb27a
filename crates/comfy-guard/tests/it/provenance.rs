//! Enforce mode's provenance rule: with the default configuration a class
//! runs only when it is core (less the curated core classes that act on
//! paths or code), from an allowlisted pack, or named in the allowlist;
//! the rest asks the user, and a class nothing vouches for is refused.

use std::sync::LazyLock;

use comfy_guard::SecurityConfig;
use comfy_guard::inspect::provenance::{CORE_CLASSES_ON_PATHS_OR_CODE, Origin};
use comfy_guard::inspect::{Inspection, Mode, Policy, RuleId, inspect_json};
use comfy_workflow::ObjectInfo;
use serde_json::{Value, json};

use crate::inspect::fixtures;

/// The recorded 0.8.0 catalog plus a few custom packs.
static CATALOG: LazyLock<ObjectInfo> = LazyLock::new(|| {
    let raw = std::fs::read(fixtures().join("inspector/object_info.json")).unwrap();
    ObjectInfo::from_value(&serde_json::from_slice(&raw).unwrap())
});

fn graph(classes: &[&str]) -> Vec<u8> {
    let mut doc = serde_json::Map::new();
    for (i, class) in classes.iter().enumerate() {
        doc.insert((i + 1).to_string(), json!({"class_type": class, "inputs": {}}));
    }
    serde_json::to_vec(&Value::Object(doc)).unwrap()
}

fn run(classes: &[&str], policy: &Policy, catalog: bool) -> Inspection {
    inspect_json(&graph(classes), policy, catalog.then_some(&*CATALOG)).unwrap()
}

fn rules(report: &Inspection) -> Vec<(RuleId, String)> {
    report
        .findings
        .iter()
        .map(|f| (f.rule, f.class.clone().unwrap_or_default()))
        .collect()
}

const CORE: &[&str] = &[
    "CheckpointLoaderSimple",
    "CLIPTextEncode",
    "KSampler",
    "VAEDecode",
    "SaveImage",
    "ImageScaleBy",
];

#[test]
fn core_classes_run_in_enforce_mode_with_the_default_configuration() {
    let report = run(CORE, &Policy::new(Mode::Enforce), true);
    assert!(report.is_clean(), "{:?}", report.findings);
    assert!(report.blocked().is_none() && !report.needs_confirmation());
    // API nodes ship with ComfyUI too: provenance has nothing to say
    // about them (the spending rule, `node.api`, is their only finding).
    let api = CATALOG
        .names()
        .into_iter()
        .find(|n| {
            let def = CATALOG.node(n).unwrap();
            def.python_module.starts_with("comfy_api_nodes.") && !Policy::new(Mode::Enforce).is_dangerous(n)
        })
        .unwrap();
    let report = run(&[api], &Policy::new(Mode::Enforce), true);
    assert!(
        report.findings.iter().all(|f| f.rule == RuleId::ApiNode),
        "{:?}",
        report.findings
    );
    assert!(run(&[api], &Policy::new(Mode::Enforce).with_allow_api_nodes(true), true).is_clean());
}

#[test]
fn a_pack_class_asks_in_enforce_mode_and_warns_in_audit_mode() {
    for class in [
        "ImageResizeKJ",
        "TextTransform",
        "Image Load",
        "SaveText|pysssss",
        "SaveImageWebsocket",
    ] {
        let report = run(&[class], &Policy::new(Mode::Enforce), true);
        assert_eq!(rules(&report), [(RuleId::NodeProvenance, class.to_owned())], "{class}");
        assert!(report.needs_confirmation(), "{class}");
        assert!(report.blocked().is_none(), "{class}: asks, not refused outright");
        assert!(
            report.findings[0].detail.contains("custom_nodes."),
            "{}",
            report.findings[0].detail
        );

        let audit = run(&[class], &Policy::new(Mode::Audit), true);
        assert_eq!(rules(&audit), [(RuleId::NodeProvenance, class.to_owned())], "{class}");
        assert!(audit.blocked().is_none() && !audit.needs_confirmation());
    }
}

#[test]
fn modules_that_pass_for_core_are_not_core() {
    for class in ["LatentBlendPlus", "NodesHelper", "UpscaleHelper", "comfy_extras_loader"] {
        let report = run(&[class], &Policy::new(Mode::Enforce), true);
        assert_eq!(rules(&report), [(RuleId::NodeProvenance, class.to_owned())], "{class}");
    }
    assert_eq!(Origin::of("comfy_extras_plus.nodes_latent"), Origin::Unknown);
    assert_eq!(
        Origin::of("custom_nodes.comfy_extras"),
        Origin::Pack("custom_nodes.comfy_extras")
    );
}

#[test]
fn curated_core_classes_ask() {
    for (class, _) in CORE_CLASSES_ON_PATHS_OR_CODE {
        let Some(def) = CATALOG.node(class) else { continue };
        assert_eq!(Origin::of(&def.python_module), Origin::Core, "{class}");
        let report = run(&[class], &Policy::new(Mode::Enforce), true);
        assert_eq!(
            rules(&report),
            [(RuleId::NodeProvenance, (*class).to_owned())],
            "{class}"
        );
        assert!(report.findings[0].detail.starts_with("a core class that"));
        // Named in the allowlist, it runs (and so does nothing else).
        let allowed = Policy::new(Mode::Enforce).with_allowed([(*class).to_owned()]);
        assert!(run(&[class], &allowed, true).is_clean(), "{class}");
    }
    assert!(CATALOG.contains("LoadTrainingDataset") && CATALOG.contains("SaveImageDataSetToFolder"));
}

#[test]
fn unknown_classes_and_no_catalog_are_refused() {
    let report = run(&["KSampler", "EvilNode"], &Policy::new(Mode::Enforce), true);
    assert_eq!(
        rules(&report),
        [
            (RuleId::UnknownNode, "EvilNode".to_owned()),
            (RuleId::NodeProvenance, "EvilNode".to_owned())
        ]
    );
    let blocked = report.blocked().unwrap();
    assert_eq!(blocked.unapproved, ["EvilNode"]);
    assert_eq!(
        blocked.message,
        "Workflow blocked — node types enforce mode cannot vouch for (not in the server's /object_info): ['EvilNode']"
    );
    // Without a catalog nothing is vouched for.
    let report = run(&["KSampler", "SaveImage"], &Policy::new(Mode::Enforce), false);
    assert_eq!(report.blocked().unwrap().unapproved, ["KSampler", "SaveImage"]);
    // ... except what the allowlist names.
    let named = Policy::new(Mode::Enforce).with_allowed(["KSampler", "SaveImage"]);
    assert!(run(&["KSampler", "SaveImage"], &named, false).is_clean());
    // Audit mode without a catalog says nothing about provenance (as before).
    assert!(run(&["KSampler", "EvilNode"], &Policy::new(Mode::Audit), false).is_clean());
    // Audit mode with one: the unknown class, once.
    let audit = run(&["KSampler", "EvilNode"], &Policy::new(Mode::Audit), true);
    assert_eq!(rules(&audit), [(RuleId::UnknownNode, "EvilNode".to_owned())]);
}

#[test]
fn allowlisted_packs_run() {
    let cfg: SecurityConfig = serde_json::from_value(json!({
        "mode": "enforce",
        "allowed_node_packs": ["custom_nodes.ComfyUI-KJNodes"]
    }))
    .unwrap();
    cfg.check().unwrap();
    let policy = cfg.policy();
    let mut classes = CORE.to_vec();
    classes.push("ImageResizeKJ");
    classes.push("StringConstantMultiline");
    assert!(run(&classes, &policy, true).is_clean());
    // Another pack still asks; a pack is matched by its whole module.
    let report = run(&["ImageResizeKJ", "Image Load"], &policy, true);
    assert_eq!(rules(&report), [(RuleId::NodeProvenance, "Image Load".to_owned())]);
    let prefix = Policy::new(Mode::Enforce).with_allowed_packs(["custom_nodes.ComfyUI"]);
    assert!(!run(&["ImageResizeKJ"], &prefix, true).is_clean());
}

#[test]
fn an_explicit_allowlist_keeps_the_peers_behaviour() {
    let policy = Policy::new(Mode::Enforce)
        .with_allowed(["KSampler", "TextTransform"])
        .with_allowed_packs(["custom_nodes.ComfyUI-KJNodes"]);
    for catalog in [true, false] {
        let report = run(
            &["KSampler", "TextTransform", "SaveImage", "Image Load"],
            &policy,
            catalog,
        );
        let blocked = report.blocked().unwrap();
        assert_eq!(blocked.unapproved, ["SaveImage", "Image Load"]);
        assert_eq!(
            blocked.message,
            "Workflow blocked — unapproved node types: ['SaveImage', 'Image Load']"
        );
    }
    // The allowlisted pack's classes run with it (the catalog tells).
    assert!(run(&["KSampler", "ImageResizeKJ"], &policy, true).is_clean());
    // Audit mode ignores the allowlist's exclusivity, as the peer does, and
    // still reports what enforce mode would ask about.
    let audit = Policy::new(Mode::Audit).with_allowed(["KSampler"]);
    let report = run(&["KSampler", "SaveImage", "Image Load"], &audit, true);
    assert_eq!(rules(&report), [(RuleId::NodeProvenance, "Image Load".to_owned())]);
}

#[test]
fn other_rules_still_fire_for_allowlisted_classes() {
    // Deny-by-default must not hide a detector: with everything allowed,
    // the dangerous class and the code are still found.
    let doc = json!({"1": {"class_type": "TextTransform", "inputs": {"expression": "__import__('os').system('id')"}},
                     "2": {"class_type": "Terminal", "inputs": {}}});
    let policy = Policy::new(Mode::Enforce).with_allowed_packs(["custom_nodes.comfyui-text-utils-plus"]);
    let report = inspect_json(&serde_json::to_vec(&doc).unwrap(), &policy, Some(&CATALOG)).unwrap();
    let found: Vec<RuleId> = report.findings.iter().map(|f| f.rule).collect();
    assert!(found.contains(&RuleId::CodeInInput), "{found:?}");
    assert!(found.contains(&RuleId::DangerousNode), "{found:?}");
}
