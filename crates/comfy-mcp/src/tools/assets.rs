//! `comfyui_list_assets`: the files ComfyUI 0.33 indexes in its assets
//! system (`/api/assets`, with `--enable-assets`), hashes included and
//! the server's machine paths left out, bounded like the library's lists.

use serde_json::{Map, Value, json};

use super::impls::{Output, ToolContext, ToolError, str_arg};
use super::library::{MAX_ENTRIES, strs};

type Args = Map<String, Value>;

/// One asset without the server's machine paths.
fn asset_item(a: &Value) -> Value {
    let tags = strs(a.get("tags"));
    let folder = ["input", "output", "models"].into_iter().find(|f| tags.contains(f));
    let mut item = json!({
        "name": a["display_name"].as_str().or_else(|| a["name"].as_str()),
        "hash": a["asset_hash"].as_str().or_else(|| a["hash"].as_str()),
        "size": a["size"], "mime_type": a["mime_type"], "tags": a["tags"],
        "created_at": a["created_at"],
    });
    if let Some(f) = folder {
        item["folder"] = json!(f);
    }
    if let Some(p) = a["loader_path"].as_str() {
        item["path"] = json!(p);
    }
    for k in ["width", "height"] {
        if let Some(v) = a["metadata"].get(k).filter(|v| v.is_u64()) {
            item[k] = v.clone();
        }
    }
    item
}

/// `comfyui_list_assets`.
pub(super) async fn list_assets(args: &Args, cx: &ToolContext) -> Result<Output, ToolError> {
    let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(25);
    let offset = args.get("offset").and_then(Value::as_u64).unwrap_or(0);
    let mut query: Vec<(&str, String)> = vec![
        ("limit", limit.to_string()),
        ("offset", offset.to_string()),
        ("sort", str_arg(args, "sort").to_owned()),
        ("order", str_arg(args, "order").to_owned()),
    ];
    query.retain(|(_, v)| !v.is_empty());
    let tags = strs(args.get("tags"));
    if !tags.is_empty() {
        query.push(("tags_all", tags.join(",")));
    }
    let name = str_arg(args, "name_contains");
    if !name.is_empty() {
        query.push(("name_contains", name.to_owned()));
    }
    let reply = match cx.client().assets(&query).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return Err(ToolError::failed(
                "this ComfyUI has no assets system (GET /api/assets answered 404); it came with ComfyUI 0.33, \
                 started with --enable-assets",
            ));
        }
        Err(comfy_client::Error::Status { status: 503, .. }) => {
            return Err(ToolError::failed(
                "ComfyUI's assets system is off (GET /api/assets answered 503): start ComfyUI with --enable-assets",
            ));
        }
        Err(comfy_client::Error::Status { status: 400, body, .. }) => {
            return Err(ToolError::rejected(format!("ComfyUI refused the asset query: {body}")));
        }
        Err(e) => return Err(e.into()),
    };
    let items: Vec<Value> = reply["assets"]
        .as_array()
        .into_iter()
        .flatten()
        .take(MAX_ENTRIES)
        .map(asset_item)
        .collect();
    Ok(Output::Json(json!({
        "items": items,
        "total": reply["total"].as_u64().unwrap_or(0),
        "offset": offset,
        "limit": limit,
        "has_more": reply["has_more"].as_bool().unwrap_or(false),
    })))
}
