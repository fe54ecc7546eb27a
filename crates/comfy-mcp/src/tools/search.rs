//! `comfyui_search_models`: CivitAI and HuggingFace model search, as the
//! peer does it, through the same bounded HTTP client as ComfyUI calls.
//! The API bases are configurable (`model_search.civitai_api_base`,
//! `model_search.huggingface_api_base`, `HF_ENDPOINT`), which is also how
//! tests point them at a simulation. Each token is sent only to its own
//! service.

use comfy_client::{Auth, Client, Secret};
use serde_json::{Map, Value, json};

use super::impls::{Output, ToolContext, ToolError, paginate};

type Args = Map<String, Value>;

fn text<'a>(args: &'a Args, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn client(base: &str, token: &str) -> Result<Client, ToolError> {
    let mut b = Client::builder(base).user_agent(concat!("comfy-mcp/", env!("CARGO_PKG_VERSION")));
    if !token.is_empty() {
        b = b.auth(Auth::Bearer(Secret::new(token)));
    }
    b.build()
        .map_err(|e| ToolError::failed(format!("model search is misconfigured: {e}")))
}

/// A failed search call, naming the service that failed: the client's own
/// messages speak of ComfyUI, which is not the server asked here.
fn service_failed(service: &str, e: &comfy_client::Error) -> ToolError {
    use comfy_client::Error as E;
    let why = match e {
        E::Connect { reason, .. } => format!("cannot reach the {service} API: {reason}"),
        E::Timeout { after, .. } => format!("the {service} API did not answer within {after:?}"),
        E::Status { status, body, .. } if body.is_empty() => format!("the {service} API answered {status}"),
        E::Status { status, body, .. } => format!("the {service} API answered {status}: {body}"),
        E::TooLarge { limit, .. } => format!("the {service} API's answer is larger than {limit} bytes"),
        E::Decode { reason, .. } => format!("unexpected answer from the {service} API: {reason}"),
        other => other.to_string(),
    };
    ToolError::failed(format!("{service} search failed: {why}"))
}

/// Runs the search.
///
/// # Errors
/// [`ToolError`] naming the service that failed.
pub(super) async fn run(args: &Args, cx: &ToolContext) -> Result<Output, ToolError> {
    let ms = &cx.config.model_search;
    let query = text(args, "query");
    let source = text(args, "source");
    let model_type = text(args, "model_type");
    let max = ms.max_search_results.max(1) as usize;
    let fetch = max.to_string();
    let items: Vec<Value> = if source == "huggingface" {
        let hf = client(&ms.huggingface_api_base, &ms.huggingface_token)?;
        let mut pairs = vec![("search", query.to_owned()), ("limit", fetch.clone())];
        if !model_type.is_empty() {
            pairs.push(("pipeline_tag", model_type.to_owned()));
        }
        let found = hf
            .huggingface_models(&pairs)
            .await
            .map_err(|e| service_failed("HuggingFace", &e))?;
        let exts = &cx.config.security.allowed_model_extensions;
        let mut out = Vec::new();
        for m in found.as_array().into_iter().flatten().take(max) {
            let Some(id) = m.get("id").and_then(Value::as_str) else {
                continue;
            };
            // Ids are `org/name`; anything else is not followed.
            let safe = id.split('/').count() == 2
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
                && !id.contains("..");
            let Some(path) = safe.then(|| comfy_client::name::RelPath::new(id).ok()).flatten() else {
                continue;
            };
            let detail = hf.huggingface_model(&path).await.ok();
            let filename = detail
                .as_ref()
                .and_then(|d| d.get("siblings"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| s.get("rfilename").and_then(Value::as_str))
                .find(|f| exts.iter().any(|e| f.to_lowercase().ends_with(&e.to_lowercase())))
                .map(str::to_owned);
            let url = filename.as_ref().map(|f| {
                format!(
                    "{}/{id}/resolve/main/{f}",
                    ms.huggingface_api_base.trim_end_matches('/')
                )
            });
            out.push(json!({
                "name": id, "type": m.get("pipeline_tag").cloned().unwrap_or(Value::Null),
                "url": url, "filename": filename, "size_mb": null,
                "downloads": m.get("downloads").cloned().unwrap_or(Value::Null),
                "likes": m.get("likes").cloned().unwrap_or(Value::Null), "source": "huggingface",
            }));
        }
        out
    } else {
        let civitai = client(&ms.civitai_api_base, &ms.civitai_api_key)?;
        let mut pairs = vec![
            ("query", query.to_owned()),
            ("limit", fetch.clone()),
            ("sort", "Most Downloaded".to_owned()),
        ];
        if !model_type.is_empty() {
            pairs.push(("types", model_type.to_owned()));
        }
        let found = civitai
            .civitai_models(&pairs)
            .await
            .map_err(|e| service_failed("CivitAI", &e))?;
        found
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .take(max)
            .map(|m| {
                let file = m.pointer("/modelVersions/0/files/0");
                let field = |k: &str| file.and_then(|f| f.get(k)).cloned().unwrap_or(Value::Null);
                let size_mb = file
                    .and_then(|f| f.get("sizeKB"))
                    .and_then(Value::as_f64)
                    .map(|kb| (kb / 1024.0 * 10.0).round() / 10.0);
                json!({
                    "name": m.get("name").cloned().unwrap_or(Value::Null),
                    "type": m.get("type").cloned().unwrap_or(Value::Null),
                    "url": field("downloadUrl"), "filename": field("name"), "size_mb": size_mb,
                    "downloads": m.pointer("/stats/downloadCount").cloned().unwrap_or(Value::Null),
                    "rating": m.pointer("/stats/rating").cloned().unwrap_or(Value::Null), "source": "civitai",
                })
            })
            .collect()
    };
    let mut paging = args.clone();
    let limit = args
        .get("limit")
        .and_then(Value::as_u64)
        .filter(|l| *l > 0)
        .unwrap_or(5);
    paging.insert("limit".to_owned(), Value::from(limit.min(max as u64)));
    let mut page = paginate(items, &paging);
    page["query"] = Value::from(query);
    page["source"] = Value::from(if source == "huggingface" {
        "huggingface"
    } else {
        "civitai"
    });
    Ok(Output::Json(page))
}
