//! What the handler makes of the stack's replies to `resources/read` and
//! `completion/complete`.

use rmcp::ErrorData;
use rmcp::model::{CompleteResult, CompletionInfo, ReadResourceResponse, ReadResourceResult, ResourceContents};

use crate::stack::Reply;

/// `resources/read`'s answer for `uri` from the stack's `reply`: an
/// unknown resource is "resource not found"; a skill is its text, an
/// output file (or a chunk of one) a blob, anything else JSON.
pub(super) fn resource_result(uri: String, reply: Reply) -> Result<ReadResourceResponse, ErrorData> {
    if let Some(message) = reply.error_text() {
        return Err(if message.starts_with("Unknown resource") {
            ErrorData::resource_not_found(message, Some(serde_json::json!({ "uri": uri })))
        } else {
            ErrorData::internal_error(format!("Error reading resource '{uri}': {message}"), None)
        });
    }
    if uri.starts_with(crate::skills::SCHEME) {
        let text = reply
            .result
            .content
            .iter()
            .find_map(|c| c.as_text().map(|t| t.text.clone()))
            .unwrap_or_default();
        return Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, uri).with_mime_type(crate::skills::MIME_TYPE),
        ])
        .into());
    }
    if uri.starts_with("comfyui://output/")
        && let Some(v) = &reply.result.structured_content
        && let Some(blob) = v.get("blob").and_then(|b| b.as_str())
    {
        // An output file (or a chunk of one): the bytes as a blob, the
        // rest (size, offset, length, next) in `_meta`.
        let mut meta = rmcp::model::JsonObject::new();
        for k in ["filename", "subfolder", "size", "offset", "length", "next", "media"] {
            if let Some(x) = v.get(k).filter(|x| !(k == "media" && x.is_null())) {
                meta.insert(k.to_owned(), x.clone());
            }
        }
        let mime = v
            .get("mime_type")
            .and_then(|m| m.as_str())
            .unwrap_or("application/octet-stream");
        let contents = ResourceContents::BlobResourceContents {
            uri: uri.clone(),
            mime_type: Some(mime.to_owned()),
            blob: blob.to_owned(),
            meta: Some(rmcp::model::MetaObject(meta)),
        };
        return Ok(ReadResourceResult::new(vec![contents]).into());
    }
    let text = reply
        .result
        .structured_content
        .map_or_else(String::new, |v| v.to_string());
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type("application/json"),
    ])
    .into())
}

/// `completion/complete`'s answer for `reference` from the stack's
/// `reply` (see the handler's `complete`).
pub(super) fn completion(reference: &str, reply: Reply) -> Result<CompleteResult, ErrorData> {
    if let Some(message) = reply.error_text() {
        return match reply.outcome {
            comfy_audit::Outcome::Rejected => Err(ErrorData::invalid_params(message, None)),
            comfy_audit::Outcome::Error => {
                tracing::warn!("completion for {reference} answered empty: {message}");
                Ok(CompleteResult::new(CompletionInfo::default()))
            }
            _ => Err(ErrorData::internal_error(message, None)),
        };
    }
    let v = reply.result.structured_content.unwrap_or_default();
    let values: Vec<String> = v
        .get("values")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .take(CompletionInfo::MAX_VALUES)
        .collect();
    let mut info = CompletionInfo::default();
    info.values = values;
    info.total = v
        .get("total")
        .and_then(serde_json::Value::as_u64)
        .map(|t| u32::try_from(t).unwrap_or(u32::MAX));
    info.has_more = v.get("has_more").and_then(serde_json::Value::as_bool);
    Ok(CompleteResult::new(info))
}
