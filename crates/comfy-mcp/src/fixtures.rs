//! The MCP conformance suite's fixture tools (`test_simple_text`,
//! `test_image_content`, ...), compiled only with the `conformance-fixtures`
//! feature, which the shipped binary never enables (`cargo xtask deps`
//! checks it). They exist so `cargo xtask conformance` can run the suite's
//! tool scenarios through our real handler, tower stack and HTTP gate: the
//! stack calls [`call`] for a name the catalog does not know, and
//! `tools/list` appends [`list`]. The fixture prompts ([`prompt`]) and
//! resources ([`resource`]) are answered by the handler before the stack
//! (behind the HTTP gate, outside the audit log and rate limits).
//!
//! Each result is what the suite's scenario checks (read from the pinned
//! suite's source): a text block, a PNG image, a WAV audio clip, an
//! embedded text resource, and the three together.

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, ResourceContents, Tool};

/// A 1x1 red PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
/// Eight samples of silence, 8 kHz mono 8-bit WAV.
const WAV: &str = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";

/// The fixture tools: name and description (none takes arguments).
const TOOLS: [(&str, &str); 6] = [
    (
        "test_tool_with_progress",
        "Conformance fixture: reports progress three times (0, 50, 100 of 100), then answers.",
    ),
    ("test_simple_text", "Conformance fixture: answers with one text block."),
    (
        "test_image_content",
        "Conformance fixture: answers with a 1x1 PNG image.",
    ),
    (
        "test_audio_content",
        "Conformance fixture: answers with a short WAV clip.",
    ),
    (
        "test_embedded_resource",
        "Conformance fixture: answers with an embedded text resource.",
    ),
    (
        "test_multiple_content_types",
        "Conformance fixture: answers with text, an image and an embedded resource.",
    ),
];

/// The fixture tools, for `tools/list`.
#[must_use]
pub fn list() -> Vec<Tool> {
    let mut schema = rmcp::model::JsonObject::new();
    schema.insert("type".to_owned(), "object".into());
    schema.insert("properties".to_owned(), serde_json::json!({}));
    let schema = Arc::new(schema);
    TOOLS
        .iter()
        .map(|(name, description)| Tool::new(*name, *description, Arc::clone(&schema)))
        .collect()
}

fn embedded() -> ContentBlock {
    ContentBlock::resource(
        ResourceContents::text("This is an embedded resource content.", "test://embedded-resource")
            .with_mime_type("text/plain"),
    )
}

/// Whether `name` is a fixture tool.
#[must_use]
pub fn is_tool(name: &str) -> bool {
    TOOLS.iter().any(|(n, _)| *n == name)
}

/// The result of fixture tool `name`, or `None` if there is no such
/// fixture; progress goes to `reporter`.
pub async fn call(name: &str, reporter: &crate::tools::Reporter) -> Option<CallToolResult> {
    let content = match name {
        "test_tool_with_progress" => {
            for step in [0.0, 50.0, 100.0] {
                reporter.report(step, Some(100.0), format!("step {step} of 100")).await;
            }
            vec![ContentBlock::text("Progress reported three times.")]
        }
        "test_simple_text" => vec![ContentBlock::text("This is a simple text response for testing.")],
        "test_image_content" => vec![ContentBlock::image(PNG, "image/png")],
        "test_audio_content" => vec![ContentBlock::audio(WAV, "audio/wav")],
        "test_embedded_resource" => vec![embedded()],
        "test_multiple_content_types" => vec![
            ContentBlock::text("Multiple content types test:"),
            ContentBlock::image(PNG, "image/png"),
            embedded(),
        ],
        _ => return None,
    };
    Some(CallToolResult::success(content))
}

/// Fixture prompt `name` with `args`, or `None` if there is no such
/// fixture; `Err` names a missing argument.
pub fn prompt(
    name: &str,
    args: Option<&rmcp::model::JsonObject>,
) -> Option<Result<rmcp::model::GetPromptResult, String>> {
    use rmcp::model::{GetPromptResult, PromptMessage, Role};
    let arg = |k: &str| -> Result<String, String> {
        args.and_then(|a| a.get(k))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("prompt {name} needs the string argument '{k}'"))
    };
    let messages = match name {
        "test_simple_prompt" => Ok(vec![PromptMessage::new_text(
            Role::User,
            "This is a simple prompt for testing.",
        )]),
        "test_prompt_with_arguments" => arg("arg1").and_then(|a1| {
            let a2 = arg("arg2")?;
            Ok(vec![PromptMessage::new_text(
                Role::User,
                format!("Prompt with arguments: arg1='{a1}', arg2='{a2}'"),
            )])
        }),
        "test_prompt_with_embedded_resource" => arg("resourceUri").map(|uri| {
            vec![
                PromptMessage::new(
                    Role::User,
                    ContentBlock::resource(
                        ResourceContents::text("Embedded resource content for testing.", uri)
                            .with_mime_type("text/plain"),
                    ),
                ),
                PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
            ]
        }),
        "test_prompt_with_image" => Ok(vec![
            PromptMessage::new(Role::User, ContentBlock::image(PNG, "image/png")),
            PromptMessage::new_text(Role::User, "Please analyze the image above."),
        ]),
        _ => return None,
    };
    Some(messages.map(GetPromptResult::new))
}

/// Fixture resource `uri` (`test://static-text`, `test://static-binary`,
/// `test://template/{id}/data`), or `None` if there is no such fixture.
#[must_use]
pub fn resource(uri: &str) -> Option<rmcp::model::ReadResourceResult> {
    let contents = match uri {
        "test://static-text" => {
            ResourceContents::text("This is the content of the static text resource.", uri).with_mime_type("text/plain")
        }
        "test://static-binary" => ResourceContents::blob(PNG, uri).with_mime_type("image/png"),
        _ => {
            let id = uri.strip_prefix("test://template/")?.strip_suffix("/data")?;
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return None;
            }
            ResourceContents::text(format!("{{\"id\":\"{id}\",\"templateTest\":true}}"), uri)
                .with_mime_type("application/json")
        }
    };
    Some(rmcp::model::ReadResourceResult::new(vec![contents]))
}
