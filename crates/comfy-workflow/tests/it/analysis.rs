//! Analysis and summaries.

use comfy_workflow::{Limits, Workflow};

use crate::fixtures;
use crate::validate::object_info;

fn load(name: &str) -> Workflow {
    let bytes = std::fs::read(fixtures().join(format!("workflows/analyze/{name}.json"))).unwrap();
    Workflow::from_json(&bytes, &Limits::DEFAULT).unwrap()
}

#[test]
fn mermaid_matches_the_python_server_line_for_line() {
    let wf = load("peer_txt2img");
    let ours = wf.to_mermaid(&wf.analyze(None), None);
    let theirs = std::fs::read_to_string(fixtures().join("peer/summarize_mermaid.txt")).unwrap();
    assert_eq!(ours, theirs.trim_end());
}

#[test]
fn text_summary_keeps_the_python_servers_lines_and_adds_what_it_missed() {
    let wf = load("peer_txt2img");
    let ours = wf.analyze(None).to_text();
    let theirs = std::fs::read_to_string(fixtures().join("peer/summarize_text.txt")).unwrap();
    // Same lines, except: the encoder wired to both positive and negative is
    // reported as both (the Python server reports only "Negative"), and the
    // seed is among the parameters.
    let ours_lines: Vec<&str> = ours.lines().collect();
    for line in theirs.lines().filter(|l| !l.starts_with("Parameters")) {
        assert!(ours_lines.contains(&line), "missing {line:?} in\n{ours}");
    }
    assert!(ours_lines.contains(&"Prompt: node 2 (CLIPTextEncode)"));
    assert!(ours_lines.contains(
        &"Parameters: width=512, height=512, steps=5, cfg=7, sampler=euler, scheduler=normal, seed=1, denoise=1"
    ));
}

#[test]
fn analysis_agrees_with_the_python_server_where_it_was_right() {
    let wf = load("peer_txt2img");
    let a = wf.analyze(None);
    let peer: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("peer/analyze_txt2img.json")).unwrap()).unwrap();
    assert_eq!(serde_json::to_value(&a.class_types).unwrap(), peer["class_types"]);
    assert_eq!(a.pipeline, peer["pipeline"]);
    assert_eq!(a.node_count, 6);
    let flow: Vec<&str> = a.flow.iter().map(|s| s.node_id.as_str()).collect();
    let peer_flow: Vec<&str> = peer["flow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(flow, peer_flow);
    assert_eq!(a.models[0].name, "model.safetensors");
    assert_eq!(a.models[0].folder, peer["models"][0]["type"]);
}

#[test]
fn a_richer_pipeline_is_analysed_and_summarised() {
    let wf = load("img2img_upscale_lora_controlnet");
    let a = wf.analyze(Some(object_info()));
    insta::assert_snapshot!("rich_text", a.to_text());
    insta::assert_snapshot!("rich_mermaid", wf.to_mermaid(&a, Some(object_info())));
    insta::assert_json_snapshot!("rich_analysis", a);
}

#[test]
fn pipeline_kinds() {
    let kinds = |classes: &[&str]| {
        let mut doc = serde_json::Map::new();
        for (i, c) in classes.iter().enumerate() {
            doc.insert((i + 1).to_string(), serde_json::json!({"class_type": c, "inputs": {}}));
        }
        Workflow::from_value(serde_json::Value::Object(doc), &Limits::DEFAULT)
            .unwrap()
            .analyze(None)
            .pipeline
    };
    assert_eq!(kinds(&["EmptyLatentImage", "KSampler", "SaveImage"]), "txt2img");
    assert_eq!(kinds(&["LoadImage", "VAEEncode", "KSampler", "SaveImage"]), "img2img");
    assert_eq!(
        kinds(&["LoadImage", "LoadImageMask", "VAEEncodeForInpaint", "KSampler"]),
        "inpaint"
    );
    assert_eq!(
        kinds(&["LoadImage", "UpscaleModelLoader", "ImageUpscaleWithModel", "SaveImage"]),
        "upscale"
    );
    assert_eq!(
        kinds(&["EmptyLatentImage", "KSampler", "LatentUpscale", "KSampler"]),
        "txt2img -> upscale"
    );
    assert_eq!(
        kinds(&[
            "ADE_AnimateDiffLoaderWithContext",
            "EmptyLatentImage",
            "KSampler",
            "SaveAnimatedWEBP"
        ]),
        "video"
    );
    assert_eq!(kinds(&["PrimitiveNode"]), "unknown");
}

#[test]
fn a_cycle_is_reported_not_looped_on() {
    let bytes = std::fs::read(fixtures().join("workflows/validate/cycle_and_no_output.json")).unwrap();
    let wf = Workflow::from_json(&bytes, &Limits::DEFAULT).unwrap();
    let a = wf.analyze(None);
    assert!(a.has_cycle);
    assert!(a.to_text().contains("cycle"));
}
