//! The conformance fixture tools answer what the suite's scenarios check
//! (`tools-call-simple-text`, `-image`, `-audio`, `-embedded-resource`,
//! `-mixed-content`), and nothing else is a fixture. (Each family's file
//! under `src/fixtures/` tests what it builds; `cargo xtask conformance`
//! runs them all through the suite.)
use comfy_mcp::fixtures;
use rmcp::model::{ContentBlock, ResourceContents};

fn decode(data: &str) -> Vec<u8> {
    data_encoding::BASE64
        .decode(data.as_bytes())
        .unwrap_or_else(|e| panic!("not base64: {e}"))
}

/// Fixture tool `name`'s result, with no progress target.
fn call(name: &str) -> Option<rmcp::model::CallToolResult> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let args = rmcp::model::JsonObject::new();
    runtime.block_on(fixtures::call(
        name,
        &args,
        None,
        &comfy_mcp::tools::Reporter::default(),
    ))
}

/// Fixture tool `name`'s content, which must not be an error.
fn content(name: &str) -> Vec<ContentBlock> {
    let result = call(name).unwrap_or_else(|| panic!("no fixture {name}"));
    assert_ne!(result.is_error, Some(true), "{name}");
    assert!(!result.content.is_empty(), "{name}");
    result.content
}

#[test]
fn every_listed_fixture_answers_and_nothing_else_does() {
    let names: Vec<String> = fixtures::list().iter().map(|t| t.name.to_string()).collect();
    // Six that only answer, five that talk to the client, the JSON Schema
    // 2020-12 tool, the header tool and the capability tool.
    assert_eq!(names.len(), 14);
    for n in &names {
        assert!(fixtures::is_tool(n) && call(n).is_some(), "{n}");
    }
    for n in ["comfyui_generate_image", "test_missing", ""] {
        assert!(!fixtures::is_tool(n) && call(n).is_none(), "{n}");
    }
}

#[test]
fn image_audio_and_resource_are_what_the_suite_checks() {
    let image = content("test_image_content");
    match &image[0] {
        ContentBlock::Image(i) => {
            assert_eq!(i.mime_type, "image/png");
            assert!(decode(&i.data).starts_with(b"\x89PNG\r\n\x1a\n"));
        }
        other => panic!("not an image: {other:?}"),
    }
    let audio = content("test_audio_content");
    match &audio[0] {
        ContentBlock::Audio(a) => {
            assert_eq!(a.mime_type, "audio/wav");
            let bytes = decode(&a.data);
            assert!(bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WAVE");
        }
        other => panic!("not audio: {other:?}"),
    }
    let resource = content("test_embedded_resource");
    match &resource[0] {
        ContentBlock::Resource(r) => match &r.resource {
            ResourceContents::TextResourceContents {
                uri, mime_type, text, ..
            } => {
                assert!(!uri.is_empty() && !text.is_empty());
                assert_eq!(mime_type.as_deref(), Some("text/plain"));
            }
            other => panic!("not text: {other:?}"),
        },
        other => panic!("not a resource: {other:?}"),
    }
    let mixed = content("test_multiple_content_types");
    let kinds: Vec<&str> = mixed
        .iter()
        .map(|c| match c {
            ContentBlock::Text(_) => "text",
            ContentBlock::Image(_) => "image",
            ContentBlock::Resource(_) => "resource",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["text", "image", "resource"]);
    assert!(
        content("test_simple_text")[0]
            .as_text()
            .is_some_and(|t| !t.text.is_empty())
    );
}

#[test]
fn prompts_and_resources_are_what_the_suite_checks() {
    let args: rmcp::model::JsonObject =
        serde_json::from_value(serde_json::json!({"arg1": "testValue1", "arg2": "testValue2"})).unwrap_or_default();
    let with_args = fixtures::prompt("test_prompt_with_arguments", Some(&args))
        .and_then(Result::ok)
        .map(|r| serde_json::to_string(&r.messages).unwrap_or_default())
        .unwrap_or_default();
    assert!(
        with_args.contains("testValue1") && with_args.contains("testValue2"),
        "{with_args}"
    );
    assert!(matches!(
        fixtures::prompt("test_prompt_with_arguments", None),
        Some(Err(_))
    ));
    assert!(matches!(fixtures::prompt("test_simple_prompt", None), Some(Ok(_))));
    assert!(matches!(fixtures::prompt("test_prompt_with_image", None), Some(Ok(_))));
    assert!(fixtures::prompt("comfyui_prompt", None).is_none());
    let t = fixtures::resource("test://template/123/data").map(|r| serde_json::to_string(&r).unwrap_or_default());
    assert!(t.is_some_and(|t| t.contains("123")));
    assert!(fixtures::resource("test://static-text").is_some());
    assert!(fixtures::resource("test://static-binary").is_some());
    for hostile in [
        "test://template//data",
        "test://template/../x/data",
        "comfyui://models",
        "test://other",
    ] {
        assert!(fixtures::resource(hostile).is_none(), "{hostile}");
    }
}
