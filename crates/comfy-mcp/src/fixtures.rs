//! The MCP conformance suite's fixture tools (`test_simple_text`,
//! `test_image_content`, ...), compiled only with the `conformance-fixtures`
//! feature, which the shipped binary never enables (`cargo xtask deps`
//! checks it). They exist so `cargo xtask conformance` can run the suite's
//! tool scenarios through our real handler, tower stack and HTTP gate: the
//! stack calls [`call`] for a name the catalog does not know, and
//! `tools/list` appends [`list`].
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
const TOOLS: [(&str, &str); 5] = [
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

/// The result of fixture tool `name`, or `None` if there is no such fixture.
#[must_use]
pub fn call(name: &str) -> Option<CallToolResult> {
    let content = match name {
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
