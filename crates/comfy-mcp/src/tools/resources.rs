//! The peer's resources: `comfyui://nodes/installed`, `comfyui://queue`,
//! `comfyui://system`, `comfyui://settings` and the template
//! `comfyui://models/{folder}`. Reads go through the same stack as tool
//! calls (as `resource:<uri>`, read-only category), so they are audited
//! and rate-limited.

use rmcp::model::{Resource, ResourceTemplate};
use serde_json::{Value, json};

use super::impls::{Output, ToolContext, ToolError};

/// The fixed resources.
pub fn list() -> Vec<Resource> {
    [
        (
            "comfyui://nodes/installed",
            "installed_nodes",
            "Installed node classes, sorted, with their count.",
        ),
        ("comfyui://queue", "queue", "How many jobs are running and pending."),
        (
            "comfyui://system",
            "system",
            "ComfyUI version, GPU devices with VRAM in MiB, queue size.",
        ),
        ("comfyui://settings", "settings", "The ComfyUI user settings."),
    ]
    .into_iter()
    .map(|(uri, name, description)| {
        Resource::new(uri, name)
            .with_description(description)
            .with_mime_type("application/json")
    })
    .collect()
}

/// The resource templates.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("comfyui://models/{folder}", "models")
            .with_description("Model files in one folder (checkpoints, loras, vae, ...), with their count.")
            .with_mime_type("application/json"),
    ]
}

/// Reads `uri`.
///
/// # Errors
/// [`ToolError`] naming the resource and the problem.
pub(super) async fn read(uri: &str, cx: &ToolContext) -> Result<Output, ToolError> {
    let c = &cx.client;
    let json = match uri {
        "comfyui://nodes/installed" => {
            let raw = c.object_info_raw().await?;
            let mut nodes: Vec<&String> = raw.as_object().map(|m| m.keys().collect()).unwrap_or_default();
            nodes.sort();
            json!({"nodes": nodes, "count": nodes.len()})
        }
        "comfyui://queue" => {
            let q = c.queue().await?;
            json!({"running": q.running.len(), "pending": q.pending.len()})
        }
        "comfyui://system" => {
            return super::impls::run(
                "comfyui_get_system_info",
                &serde_json::Map::new(),
                cx,
                &super::Reporter::default(),
            )
            .await;
        }
        "comfyui://settings" => c.settings().await?,
        other => {
            let Some(folder) = other.strip_prefix("comfyui://models/") else {
                return Err(ToolError::rejected(format!("Unknown resource: '{other}'")));
            };
            let valid = !folder.is_empty()
                && folder.len() <= 64
                && !folder.starts_with('.')
                && folder
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'));
            if !valid {
                return Err(ToolError::rejected(format!(
                    "Unknown resource: '{other}' (the folder must be a model folder name such as checkpoints)"
                )));
            }
            match c.models(folder).await? {
                Some(models) => json!({"folder": folder, "models": models, "count": models.len()}),
                None => return Err(ToolError::failed(format!("ComfyUI has no model folder '{folder}'"))),
            }
        }
    };
    Ok(Output::Json(Value::clone(&json)))
}
