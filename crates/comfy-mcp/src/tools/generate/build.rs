//! The workflow a generation tool submits: built from a template and the
//! tool's arguments, or the caller's own workflow (API format, or editor
//! format converted with the server's catalog), with the checks that come
//! before inspection (image names, the checkpoint the caller named).
//! Kept apart from the submission so routing can read the same workflow
//! before choosing a backend.

use comfy_guard::path::{Extensions, SafeFileName};
use comfy_workflow::{Limits, Workflow, editor};
use serde_json::Value;

use super::{Args, ToolContext};
use crate::tools::impls::ToolError;

pub(super) fn text<'a>(args: &'a Args, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// An image name in ComfyUI's input folder, through the path sanitizer.
fn image_name(args: &Args, name: &str) -> Result<String, ToolError> {
    SafeFileName::parse(text(args, name), &Extensions::images())
        .map(|n| n.as_str().to_owned())
        .map_err(|e| ToolError::rejected(format!("`{name}`: {e}")))
}

/// The template and parameters a generation tool stands for.
pub(super) fn template_params(name: &str, args: &Args) -> Result<(&'static str, Args), ToolError> {
    let mut p = Args::new();
    let copy = |p: &mut Args, from: &str, to: &str| {
        if let Some(v) = args.get(from) {
            p.insert(to.to_owned(), v.clone());
        }
    };
    let template = match name {
        "comfyui_generate_image" => {
            for k in ["prompt", "negative_prompt", "width", "height", "steps", "cfg"] {
                copy(&mut p, k, k);
            }
            "txt2img"
        }
        "comfyui_transform_image" | "comfyui_inpaint_image" => {
            for k in ["prompt", "negative_prompt", "steps", "cfg"] {
                copy(&mut p, k, k);
            }
            copy(&mut p, "strength", "denoise");
            p.insert("image".to_owned(), Value::from(image_name(args, "image")?));
            if name == "comfyui_inpaint_image" {
                p.insert("mask".to_owned(), Value::from(image_name(args, "mask")?));
                "inpaint"
            } else {
                "img2img"
            }
        }
        "comfyui_upscale_image" => {
            p.insert("image".to_owned(), Value::from(image_name(args, "image")?));
            copy(&mut p, "upscale_model", "model_name");
            "upscale"
        }
        other => return Err(ToolError::rejected(format!("{other} is not a generation tool"))),
    };
    if name != "comfyui_upscale_image" {
        // The peer always used seed 0; a fresh seed per call unless given.
        let seed = args
            .get("seed")
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or_else(|| Value::from(fastrand::u32(..)));
        p.insert("seed".to_owned(), seed);
        let model = text(args, "model");
        if !model.is_empty() {
            p.insert("model".to_owned(), Value::from(model));
        }
    }
    Ok((template, p))
}

/// The current time in UTC, for the front end's `%date:...%` tokens.
pub(in crate::tools) fn now_utc() -> comfy_workflow::DateParts {
    // `2026-11-25T19:45:00Z`: the fields at fixed places.
    let t = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let num = |r: std::ops::Range<usize>| t.get(r).and_then(|s| s.parse().ok()).unwrap_or(0);
    comfy_workflow::DateParts {
        year: num(0..4),
        month: num(5..7),
        day: num(8..10),
        hour: num(11..13),
        minute: num(14..16),
        second: num(17..19),
    }
}

/// The caller's workflow: API format, or editor format converted with the
/// server's catalog.
pub(super) async fn parse_workflow(raw: &str, cx: &ToolContext) -> Result<Workflow, ToolError> {
    let limits = Limits::DEFAULT;
    // API format straight from the bytes; anything else (editor format, or
    // an error to report) takes the general path.
    if let Ok(wf) = Workflow::from_json(raw.as_bytes(), &limits) {
        return Ok(wf);
    }
    let doc = comfy_workflow::parse_json(raw.as_bytes(), &limits)
        .map_err(|e| ToolError::rejected(format!("`workflow` is not a valid workflow: {e}")))?;
    if editor::is_editor_format(&doc) {
        let info = cx.client().object_info().await?;
        return editor::to_api(&doc, &info, &limits)
            .map_err(|e| ToolError::rejected(format!("`workflow` (editor format) cannot be converted: {e}")));
    }
    Workflow::from_value(doc, &limits)
        .map_err(|e| ToolError::rejected(format!("`workflow` is not a valid workflow: {e}")))
}

pub(super) async fn check_checkpoint(model: &str, cx: &ToolContext) -> Result<(), ToolError> {
    if model.is_empty() {
        return Ok(());
    }
    comfy_guard::path::check_node_path(model).map_err(|e| ToolError::rejected(format!("`model`: {e}")))?;
    let checkpoints = comfy_client::name::Segment::new("checkpoints")?;
    let available = cx.client().models(&checkpoints).await?.unwrap_or_default();
    if available.iter().any(|m| m == model) {
        return Ok(());
    }
    Err(ToolError::rejected(format!(
        "Model '{model}' not found in folder 'checkpoints' (available: {} models). Use comfyui_list_models or the comfyui://models/checkpoints resource to discover available models.",
        available.len()
    )))
}
