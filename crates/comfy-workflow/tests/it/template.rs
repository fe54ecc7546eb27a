//! Built-in templates, presets and prompting guides.

use comfy_workflow::template::{self, TEMPLATES, TemplateError};
use comfy_workflow::validate::ProblemKind;
use comfy_workflow::{Limits, ObjectInfo, Workflow, preset};
use serde_json::{Value, json};

use crate::fixtures;
use crate::validate::object_info;

fn peer_templates() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("peer/templates.json")).unwrap()).unwrap()
}

/// The Python server's graphs, except three of its graphs that cannot run
/// (see `docs/custom-node-templates.md`), which are fixed.
const FIXED: &[&str] = &["txt2vid_wan", "ip_adapter", "face_restore"];

#[test]
fn every_template_has_the_python_servers_default_graph_unless_fixed() {
    let peer = peer_templates();
    assert_eq!(TEMPLATES.len(), 14);
    for t in TEMPLATES {
        let wf = template::default_graph(t.name).unwrap();
        let theirs = Workflow::from_value(peer[t.name].clone(), &Limits::DEFAULT).unwrap();
        assert_eq!(
            wf.to_value() == theirs.to_value(),
            !FIXED.contains(&t.name),
            "{}",
            t.name
        );
    }
}

#[test]
fn building_with_parameters_matches_the_python_server() {
    let calls: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("peer/create_workflow.json")).unwrap()).unwrap();
    assert!(!calls.is_empty());
    for call in calls {
        let args = &call["arguments"];
        let params: Value = args
            .get("params")
            .and_then(Value::as_str)
            .map_or(json!({}), |p| serde_json::from_str(p).unwrap());
        let built = template::build(args["template"].as_str().unwrap(), params.as_object().unwrap()).unwrap();
        let theirs = Workflow::from_value(call["result"].clone(), &Limits::DEFAULT).unwrap();
        assert_eq!(built.workflow.to_value(), theirs.to_value(), "{args}");
    }
}

#[test]
fn parameters_reach_every_node_they_map_to() {
    let params = json!({"prompt": "p", "negative_prompt": "n", "lora_name": "a.safetensors", "lora_strength": 0.5, "steps": 9, "nonsense": 1});
    let built = template::build("lora_stack", params.as_object().unwrap()).unwrap();
    let wf = &built.workflow;
    let loras: Vec<_> = wf.nodes().iter().filter(|n| n.class_type == "LoraLoader").collect();
    assert_eq!(loras.len(), 2);
    for l in loras {
        assert_eq!(l.value("lora_name"), Some(&json!("a.safetensors")));
        assert_eq!(l.value("strength_model"), Some(&json!(0.5)));
        assert_eq!(l.value("strength_clip"), Some(&json!(0.5)));
    }
    let texts: Vec<_> = wf
        .nodes()
        .iter()
        .filter(|n| n.class_type == "CLIPTextEncode")
        .map(|n| n.value("text").unwrap().clone())
        .collect();
    assert_eq!(texts, [json!("p"), json!("n")]);
    assert_eq!(built.unused, ["nonsense"]);
}

#[test]
fn unknown_templates_and_bad_values_are_errors() {
    let err = template::build("nope", &serde_json::Map::new()).unwrap_err();
    assert!(matches!(err, TemplateError::Unknown { .. }));
    assert!(
        err.to_string()
            .starts_with("unknown template `nope`; available: txt2img, img2img, upscale")
    );
    let bad = json!({"width": "wide"});
    assert_eq!(
        template::build("txt2img", bad.as_object().unwrap())
            .unwrap_err()
            .to_string(),
        "parameter `width` must be an integer, got \"wide\""
    );
}

/// Whether a problem is only about which files a server has installed.
fn about_installed_files(p: &comfy_workflow::Problem) -> bool {
    matches!(&p.kind, ProblemKind::NotInList { value: Value::String(v), .. }
        if [".safetensors", ".pth", ".ckpt", ".bin", ".png", ".jpg"].iter().any(|e| v.ends_with(e)))
}

/// Core templates validate clean against the recorded server's catalog
/// (file names aside: which models a server has is its own business).
/// What validation finds in a template's default graph, other than the
/// model files a server may lack.
fn problems_of(name: &str, info: &ObjectInfo) -> Vec<String> {
    template::default_graph(name)
        .unwrap()
        .validate(info)
        .into_iter()
        .filter(|p| !about_installed_files(p))
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn core_templates_are_valid_against_the_servers_catalog() {
    for t in TEMPLATES.iter().filter(|t| t.custom_nodes.is_empty()) {
        let problems = problems_of(t.name, object_info());
        assert!(problems.is_empty(), "{}: {problems:#?}", t.name);
    }
}

#[test]
fn presets_and_guides_match_the_python_server() {
    let flux = preset::preset("flux").unwrap();
    assert_eq!(
        (flux.sampler, flux.scheduler, flux.steps, flux.width, flux.height),
        ("euler", "simple", 20, 1024, 1024)
    );
    assert!((flux.cfg - 1.0).abs() < f64::EPSILON);
    assert_eq!(flux.notes, "Flow-matching models expect low CFG and concise language.");
    let sdxl = preset::guide("sdxl").unwrap();
    assert_eq!(sdxl.prompt_structure, "subject + environment + mood + camera framing");
    assert_eq!(sdxl.quality_tags, ["cinematic lighting", "high detail", "sharp focus"]);
    for alias in ["SD 1.5", "stable-diffusion-1.5", " sd1.5 ", "stable_diffusion_1_5"] {
        assert_eq!(preset::family(alias), Some("sd15"), "{alias}");
    }
    assert_eq!(preset::family("Stable Diffusion XL"), Some("sdxl"));
    assert_eq!(preset::family("bogus"), None);
    // Better than the Python server, which does not recognise `sd_xl_base`.
    assert_eq!(preset::infer_family("sd_xl_base_1.0.safetensors"), Some("sdxl"));
    assert_eq!(preset::infer_family("flux1-dev.safetensors"), Some("flux"));
    assert_eq!(preset::infer_family("v1-5-pruned-emaonly.safetensors"), Some("sd15"));
    assert_eq!(preset::infer_family("mystery.safetensors"), None);
}

/// Custom-node templates validate against the core catalog plus their
/// packs' node definitions (`fixtures/workflows/custom_nodes_object_info.json`,
/// read from the packs' sources).
#[test]
fn custom_node_templates_are_valid_against_their_packs() {
    let mut catalog: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("comfyui/http/get_object_info.body.json")).unwrap())
            .unwrap();
    let custom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("workflows/custom_nodes_object_info.json")).unwrap())
            .unwrap();
    for (k, v) in custom.as_object().unwrap() {
        catalog[k] = v.clone();
    }
    let info = comfy_workflow::ObjectInfo::from_value(&catalog);
    for t in TEMPLATES.iter().filter(|t| !t.custom_nodes.is_empty()) {
        let problems = problems_of(t.name, &info);
        assert!(problems.is_empty(), "{}: {problems:#?}", t.name);
    }
}

#[test]
fn fixed_templates_take_the_python_servers_parameters() {
    let wan = template::build(
        "txt2vid_wan",
        json!({"width": 640, "height": 384, "frames": 33, "model": "wan.safetensors"})
            .as_object()
            .unwrap(),
    )
    .unwrap();
    assert!(wan.unused.is_empty());
    let latent = wan
        .workflow
        .nodes()
        .iter()
        .find(|n| n.class_type == "EmptyHunyuanLatentVideo")
        .unwrap();
    assert_eq!(
        (latent.value("width"), latent.value("height"), latent.value("length")),
        (Some(&json!(640)), Some(&json!(384)), Some(&json!(33)))
    );
    let ip = template::build("ip_adapter", json!({"ipadapter_weight": 0.5}).as_object().unwrap()).unwrap();
    assert_eq!(ip.workflow.node("7").unwrap().value("weight"), Some(&json!(0.5)));
    let face = template::build(
        "face_restore",
        json!({"face_restore_fidelity": 0.3}).as_object().unwrap(),
    )
    .unwrap();
    assert_eq!(
        face.workflow.node("5").unwrap().value("codeformer_fidelity"),
        Some(&json!(0.3))
    );
}

/// The text and Mermaid summaries of every built-in template (no catalog,
/// so class names stand for display names).
#[test]
fn every_template_summarises() {
    use std::fmt::Write as _;
    let mut out = String::new();
    for t in comfy_workflow::template::TEMPLATES {
        let wf = comfy_workflow::template::default_graph(t.name).unwrap();
        let analysis = wf.analyze(None);
        let _ = write!(
            out,
            "## {}\n\n{}\n\n{}\n\n",
            t.name,
            analysis.to_text(),
            wf.to_mermaid(&analysis, None)
        );
    }
    insta::assert_snapshot!(out);
}
