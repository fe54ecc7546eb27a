//! What the model reads, through the real binary and rmcp's client
//! against comfy-sim: argument errors that name every problem at once,
//! JSON-text parameters that also take the JSON itself, described
//! parameters, the peer's resource names and honest capabilities, and
//! the skills served through the MCP Skills extension.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use serde_json::{Value, json};
use support::{ok, start, text};

const CONFIG: &str = "rate_limits:\n  workflow: 1000\n  generation: 1000\n  file_ops: 1000\n  read_only: 1000\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_argument_error_names_every_problem_at_once() {
    let s = start(CONFIG).await;
    let r = s
        .call(
            "comfyui_list_jobs",
            json!({"offset": -1, "sort_by": "name", "sort_order": "sideways", "surprise": true}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    let t = text(&r);
    assert!(t.contains("4 problems"), "{t}");
    for needle in [
        "`offset`: -1 is less than the minimum of 0 (schema /properties/offset/minimum)",
        "`sort_by`: \"name\" is not one of",
        "`sort_order`: \"sideways\" is not one of",
        "`surprise`: is not accepted here",
    ] {
        assert!(t.contains(needle), "{needle} in {t}");
    }
    // Fixed in one round trip, the call goes through.
    let fixed = s
        .call(
            "comfyui_list_jobs",
            json!({"offset": 0, "sort_by": "created_at", "sort_order": "desc"}),
        )
        .await;
    assert_ne!(fixed.is_error, Some(true), "{}", text(&fixed));
    s.client.cancel().await.unwrap();
}

fn workflow() -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 255}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "surface"}},
    })
}

/// As an assistant sends them: the JSON itself where we declare a JSON
/// text, and the text; both give the same answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_text_parameters_take_the_json_itself() {
    let s = start(CONFIG).await;
    let wf = workflow();
    for tool in [
        "comfyui_validate_workflow",
        "comfyui_analyze_workflow",
        "comfyui_dry_run",
    ] {
        let as_object = ok(&s.call(tool, json!({"workflow": wf})).await).clone();
        let as_text = ok(&s.call(tool, json!({"workflow": wf.to_string()})).await).clone();
        assert_eq!(as_object, as_text, "{tool}");
    }
    let valid = ok(&s.call("comfyui_validate_workflow", json!({"workflow": wf})).await).clone();
    assert_eq!(valid["valid"], true, "{valid}");
    let summary = s
        .call(
            "comfyui_summarize_workflow",
            json!({"workflow": wf, "output_format": "mermaid"}),
        )
        .await;
    assert!(text(&summary).contains("n2 -->|IMAGE| n3"), "{}", text(&summary));

    let ops = json!([{"op": "set_input", "node_id": "1", "input_name": "width", "value": 32}]);
    let modified = ok(&s
        .call("comfyui_modify_workflow", json!({"workflow": wf, "operations": ops}))
        .await)
    .clone();
    assert_eq!(modified["1"]["inputs"]["width"], 32, "{modified}");
    let modified_text = ok(&s
        .call(
            "comfyui_modify_workflow",
            json!({"workflow": wf.to_string(), "operations": ops.to_string()}),
        )
        .await)
    .clone();
    assert_eq!(modified, modified_text);

    let created = ok(&s
        .call(
            "comfyui_create_workflow",
            json!({"template": "txt2img", "params": {"seed": 4242}}),
        )
        .await)
    .clone();
    assert!(created.to_string().contains("4242"), "{created}");

    let ran = ok(&s
        .call("comfyui_run_workflow", json!({"workflow": wf, "wait": true}))
        .await)
    .clone();
    assert_eq!(ran["status"], "completed", "{ran}");

    // MCP resource contents, as `resources/read` gives them, as an object.
    let png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/comfyui/http/get_view_output_png.body.png"
    ))
    .unwrap();
    let blob = data_encoding::BASE64.encode(&png);
    let contents = json!({"uri": "file:///cat.png", "mimeType": "image/png", "blob": blob});
    let up = s
        .call(
            "comfyui_upload_image",
            json!({"filename": "obj.png", "image_data": contents}),
        )
        .await;
    assert_eq!(text(&up), "Uploaded obj.png to ComfyUI input directory");

    // Any other JSON is refused with both accepted forms named.
    let bad = s.call("comfyui_validate_workflow", json!({"workflow": [1, 2]})).await;
    assert_eq!(bad.is_error, Some(true));
    assert!(
        text(&bad).contains("is not of type \"string\"; it is not of type \"object\""),
        "{}",
        text(&bad)
    );
    s.client.cancel().await.unwrap();
}

/// What a client lists: every parameter and prompt argument described.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sees_every_parameter_described() {
    let s = start(CONFIG).await;
    let tools = s.client.list_all_tools().await.unwrap();
    assert!(tools.len() > 50);
    let mut missing = Vec::new();
    for t in &tools {
        for (name, p) in t
            .input_schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if p["description"].as_str().is_none_or(|d| d.len() <= 15) {
                missing.push(format!("{}.{name}", t.name));
            }
        }
    }
    let prompts = s.client.list_all_prompts().await.unwrap();
    for p in &prompts {
        for a in p.arguments.iter().flatten() {
            if a.description.as_deref().is_none_or(|d| d.len() <= 15) {
                missing.push(format!("prompt {}.{}", p.name, a.name));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:?}");
    s.client.cancel().await.unwrap();
}

fn peer_fixture(name: &str) -> Value {
    let path = format!("{}/../../fixtures/peer/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A client written for the peer finds the resources by the peer's names,
/// and the capabilities promise list-change notifications only where we
/// send them (never: the lists are fixed for the life of the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_keep_the_peers_names_and_capabilities_are_honest() {
    let s = start(CONFIG).await;
    let names = |list: &Value, key: &str, uri: &str| -> Vec<(String, String)> {
        list[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r[uri].as_str().unwrap().to_owned(),
                    r["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let ours = serde_json::to_value(s.client.list_all_resources().await.unwrap()).unwrap();
    let ours = names(&json!({"resources": ours}), "resources", "uri");
    let theirs = names(&peer_fixture("resources.json"), "resources", "uri");
    // The peer's first, then the skills' files (below).
    assert_eq!(ours[..theirs.len()], theirs[..]);
    assert!(
        ours[theirs.len()..].iter().all(|(uri, _)| uri.starts_with("skill://")),
        "{ours:?}"
    );
    let ours = serde_json::to_value(s.client.list_all_resource_templates().await.unwrap()).unwrap();
    let ours = names(&json!({"t": ours}), "t", "uriTemplate");
    let theirs = names(
        &peer_fixture("resource_templates.json"),
        "resourceTemplates",
        "uriTemplate",
    );
    for t in &theirs {
        assert!(ours.contains(t), "{t:?} in {ours:?}");
    }
    for r in s.client.list_all_resources().await.unwrap() {
        if r.uri.starts_with("skill://") {
            continue;
        }
        assert!(
            r.title.as_deref().is_some_and(|t| !t.is_empty() && t != r.name),
            "{r:?}"
        );
    }

    let info = s.client.peer_info().unwrap();
    let caps = serde_json::to_value(&info.capabilities).unwrap();
    let peer = peer_fixture("initialize.json");
    // The same keys as the peer's, so a peer client sees the same shape...
    for key in ["prompts", "resources", "tools", "logging"] {
        assert!(caps.get(key).is_some(), "{key}: {caps}");
        let theirs: Vec<&String> = peer["capabilities"][key].as_object().unwrap().keys().collect();
        let mine: Vec<&String> = caps[key].as_object().unwrap().keys().collect();
        assert_eq!(mine, theirs, "{key}");
    }
    // ... and what we do: no list ever changes, no resource subscriptions.
    assert_eq!(caps["tools"]["listChanged"], false);
    assert_eq!(caps["prompts"]["listChanged"], false);
    assert_eq!(caps["resources"]["listChanged"], false);
    assert_eq!(caps["resources"]["subscribe"], false);
    s.client.cancel().await.unwrap();
}

/// The plugin's skills through the MCP Skills extension: listed with their
/// front matter and manifest, fetched one by one, and read from the binary
/// (the same bytes as `skills/<name>/SKILL.md`, checked against the
/// manifest's digest and size).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_skills_are_served_through_the_skills_extension() {
    use rmcp::model::{GetSkillRequestParams, ReadResourceRequestParams, ResourceContents, SkillResources};
    let s = start(CONFIG).await;
    let info = s.client.peer_info().unwrap();
    assert!(info.capabilities.supports_skills(), "{:?}", info.capabilities);
    let skills = s.client.list_all_skills().await.unwrap();
    let names: Vec<&str> = skills.iter().map(|k| k.frontmatter.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "gen",
            "workflow",
            "workflows",
            "status",
            "progress",
            "history",
            "models",
            "troubleshooting"
        ]
    );
    let listed: Vec<String> = s
        .client
        .list_all_resources()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.uri.clone())
        .collect();
    for skill in &skills {
        let name = skill.frontmatter.name.as_str();
        assert_eq!(skill.uri, format!("skill://{name}/SKILL.md"));
        assert!(listed.contains(&skill.uri), "{} not in resources/list", skill.uri);
        let on_disk = std::fs::read(format!("{}/../../skills/{name}/SKILL.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(
            String::from_utf8_lossy(&on_disk).contains(&skill.frontmatter.description),
            "{name}: description"
        );
        let fetched = s
            .client
            .get_skill(GetSkillRequestParams::new(&skill.uri))
            .await
            .unwrap();
        assert_eq!(fetched.skill, *skill);
        let read = s
            .client
            .read_resource(ReadResourceRequestParams::new(&skill.uri))
            .await
            .unwrap();
        let [ResourceContents::TextResourceContents { text, mime_type, .. }] = &read.contents[..] else {
            panic!("{name}: one text: {read:?}")
        };
        assert_eq!(mime_type.as_deref(), Some("text/markdown"));
        assert_eq!(text.as_bytes(), &on_disk[..], "{name}: the file's bytes");
        let SkillResources::Files(files) = &skill.resources else {
            panic!("{name}: a manifest")
        };
        files[0].verify(text.as_bytes()).unwrap();
    }
    let gen_skill = &skills[0];
    assert_eq!(
        gen_skill.frontmatter.extra["argument-hint"],
        "<prompt> [model=<checkpoint>] [size=<W>x<H>]"
    );
    // No skill at other URIs; the prompts of the same names are still there.
    assert!(
        s.client
            .get_skill(GetSkillRequestParams::new("skill://nope/SKILL.md"))
            .await
            .is_err()
    );
    assert!(
        s.client
            .read_resource(ReadResourceRequestParams::new("skill://gen/../../etc/SKILL.md"))
            .await
            .is_err()
    );
    let prompts = s.client.list_all_prompts().await.unwrap();
    assert!(prompts.iter().any(|p| p.name == "gen"));
    s.client.cancel().await.unwrap();
}
