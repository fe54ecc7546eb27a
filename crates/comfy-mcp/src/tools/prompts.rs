//! The MCP prompts: each returns one user message, a recipe naming the
//! `comfyui_*` tools to call. Rendered through the same stack as tool
//! calls (as `prompt:<name>`), so they are audited and rate-limited.
//!
//! - The peer's four, with its names and arguments (`txt2img_prompt`,
//!   `img2img_prompt`, `inpaint_prompt`, `upscale_prompt`).
//! - The Claude Code plugin's eight skills (`gen`, `workflow`, `workflows`,
//!   `status`, `progress`, `history`, `models`, `troubleshooting`), so
//!   clients without skills get the same recipes. Their text is the
//!   repository's `skills/<name>/SKILL.md`, compiled in: one source for
//!   both, and the skills' own test checks every tool and parameter they
//!   name against the catalog.

use rmcp::model::{Prompt, PromptArgument};
use serde_json::{Map, Value, json};

use super::impls::{Output, ToolContext, ToolError};

/// An argument: name, whether it is required, and its description.
type ArgSpec = (&'static str, bool, &'static str);

/// A prompt: name, description, and its arguments.
type PromptSpec = (&'static str, &'static str, &'static [ArgSpec]);

const STYLE: ArgSpec = (
    "style",
    false,
    "The look to aim for, e.g. `watercolor` or `cinematic`; default `photorealistic`.",
);
const IMAGE: ArgSpec = (
    "image",
    true,
    "The source image: a file name in ComfyUI's input folder, e.g. `photo.png` (uploaded first if it is not there).",
);

const PROMPTS: &[PromptSpec] = &[
    (
        "txt2img_prompt",
        "A text-to-image recipe for a prompt and a style, using comfyui_generate_image.",
        &[
            (
                "prompt",
                true,
                "What the image should show, e.g. `a lighthouse at dusk`.",
            ),
            STYLE,
        ],
    ),
    (
        "img2img_prompt",
        "An image-to-image recipe: transform an uploaded image guided by a prompt and a style.",
        &[
            IMAGE,
            (
                "prompt",
                true,
                "What the image should become, e.g. `the same street in winter`.",
            ),
            STYLE,
        ],
    ),
    (
        "inpaint_prompt",
        "An inpainting recipe: repaint the masked part of an uploaded image.",
        &[
            IMAGE,
            (
                "mask",
                true,
                "The mask: a file name in ComfyUI's input folder; its transparent parts are repainted.",
            ),
            ("prompt", true, "What to paint into the masked part, e.g. `a red door`."),
            STYLE,
        ],
    ),
    (
        "upscale_prompt",
        "An upscaling recipe for an uploaded image and an upscale model.",
        &[
            IMAGE,
            (
                "upscale_model",
                false,
                "The upscale model file in `upscale_models`; default `RealESRGAN_x4plus.pth`.",
            ),
        ],
    ),
];

/// A skill offered as a prompt: name, its `SKILL.md`, and its arguments.
type SkillSpec = (&'static str, &'static str, &'static [ArgSpec]);

/// The plugin's skills, in the order the README lists them.
pub const SKILLS: &[SkillSpec] = &[
    (
        "gen",
        include_str!("../../../../skills/gen/SKILL.md"),
        &[
            ("prompt", true, "What the image should show, e.g. `a fox in the snow`."),
            (
                "model",
                false,
                "A checkpoint file name from `checkpoints`; default: an installed one that suits the request.",
            ),
            ("size", false, "Width and height in pixels as `WxH`, e.g. `1024x768`."),
        ],
    ),
    (
        "workflow",
        include_str!("../../../../skills/workflow/SKILL.md"),
        &[
            (
                "request",
                true,
                "What the workflow should do, in words, e.g. `upscale my photo four times`.",
            ),
            (
                "template",
                false,
                "A template to start from (`txt2img`, `img2img`, `inpaint`, ...); default: chosen from the request.",
            ),
        ],
    ),
    ("workflows", include_str!("../../../../skills/workflows/SKILL.md"), &[]),
    ("status", include_str!("../../../../skills/status/SKILL.md"), &[]),
    (
        "progress",
        include_str!("../../../../skills/progress/SKILL.md"),
        &[(
            "prompt_id",
            false,
            "The job's prompt id (a lowercase UUID); default: the latest job.",
        )],
    ),
    (
        "history",
        include_str!("../../../../skills/history/SKILL.md"),
        &[("limit", false, "How many recent jobs to show, e.g. `5`; default 10.")],
    ),
    (
        "models",
        include_str!("../../../../skills/models/SKILL.md"),
        &[(
            "folder",
            false,
            "A model folder such as `loras` or `vae`; default `checkpoints`.",
        )],
    ),
    (
        "troubleshooting",
        include_str!("../../../../skills/troubleshooting/SKILL.md"),
        &[(
            "problem",
            false,
            "The problem or the error message, as the user or a tool put it.",
        )],
    ),
];

/// The argument names of prompt `name`, or `None` if there is no such
/// prompt.
pub(super) fn argument_names(name: &str) -> Option<impl Iterator<Item = &'static str>> {
    PROMPTS
        .iter()
        .chain(SKILLS)
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, args)| args.iter().map(|(a, _, _)| *a))
}

/// A `SKILL.md` split into its front matter's `description` and its body.
/// `None` when the file has no front matter (the skills test rules that out).
pub fn split_skill(md: &str) -> Option<(&str, &str)> {
    let rest = md.strip_prefix("---\n")?;
    let (front, body) = rest.split_once("\n---\n")?;
    let description = front.lines().find_map(|l| l.strip_prefix("description:"))?.trim();
    Some((description, body.trim_start()))
}

/// The prompts as `prompts/list` gives them.
pub fn list() -> Vec<Prompt> {
    let peer = PROMPTS
        .iter()
        .map(|(name, description, args)| (*name, *description, *args));
    let skills = SKILLS
        .iter()
        .map(|(name, md, args)| (*name, split_skill(md).map_or("", |(d, _)| d), *args));
    peer.chain(skills)
        .map(|(name, description, args)| {
            let arguments = args
                .iter()
                .map(|(a, required, description)| {
                    PromptArgument::new(*a)
                        .with_description(*description)
                        .with_required(*required)
                })
                .collect();
            Prompt::new(name, Some(description), Some(arguments))
        })
        .collect()
}

/// Renders a skill prompt: its body, with `$ARGUMENTS` replaced by the
/// arguments given (`name: value`, one per line).
fn render_skill(name: &str, md: &str, spec: &[ArgSpec], args: &Map<String, Value>) -> Result<Output, ToolError> {
    let Some((description, body)) = split_skill(md) else {
        return Err(ToolError::failed(format!("prompt {name} has no text")));
    };
    let mut given = Vec::new();
    for (arg, required, _) in spec {
        match args.get(*arg).and_then(Value::as_str).map(str::trim) {
            Some(v) if !v.is_empty() => given.push(format!("{arg}: {v}")),
            _ if *required => return Err(ToolError::rejected(format!("prompt {name} needs the argument `{arg}`"))),
            _ => {}
        }
    }
    let arguments = if given.is_empty() {
        "(nothing more given)".to_owned()
    } else {
        given.join("\n")
    };
    let text = body.replace("$ARGUMENTS", &arguments);
    Ok(Output::Json(json!({"description": description, "text": text})))
}

/// Renders prompt `name`: `{"description", "text"}`.
///
/// # Errors
/// An unknown prompt or a missing required argument.
pub(super) fn render(name: &str, args: &Map<String, Value>) -> Result<Output, ToolError> {
    if let Some((_, md, spec)) = SKILLS.iter().find(|(n, _, _)| *n == name) {
        return render_skill(name, md, spec, args);
    }
    let Some((_, description, spec)) = PROMPTS.iter().find(|(n, _, _)| *n == name) else {
        return Err(ToolError::rejected(format!("Unknown prompt: '{name}'")));
    };
    for (arg, required, _) in *spec {
        let given = args
            .get(*arg)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty());
        if *required && !given {
            return Err(ToolError::rejected(format!("prompt {name} needs the argument `{arg}`")));
        }
    }
    let get = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default();
    let style = match get("style") {
        "" => "photorealistic",
        s => s,
    };
    let style_note = format!(
        "Target style: {style}.\nFor {style} results, pick settings that suit the style — use comfyui_get_model_presets \
         to look up the recommended sampler, steps and CFG for your model family, and comfyui_get_prompting_guide for \
         how to phrase the prompt."
    );
    let text = match name {
        "txt2img_prompt" => format!(
            "Use comfyui_generate_image to generate an image.\n\nPrompt: {}\n{style_note}",
            get("prompt")
        ),
        "img2img_prompt" => format!(
            "Use comfyui_transform_image to transform the image '{}' (upload it first with comfyui_upload_image if it \
             is not in ComfyUI's input folder).\n\nPrompt: {}\n{style_note}",
            get("image"),
            get("prompt")
        ),
        "inpaint_prompt" => format!(
            "Use comfyui_inpaint_image to repaint the masked part of '{}' with the mask '{}' (upload both first with \
             comfyui_upload_image if needed).\n\nPrompt: {}\n{style_note}",
            get("image"),
            get("mask"),
            get("prompt")
        ),
        _ => {
            let model = match get("upscale_model") {
                "" => "RealESRGAN_x4plus.pth",
                m => m,
            };
            format!(
                "Use comfyui_upscale_image to upscale '{}' with the upscale model '{model}' (comfyui_list_models with \
                 folder upscale_models lists the installed ones).",
                get("image")
            )
        }
    };
    Ok(Output::Json(json!({"description": description, "text": text})))
}

/// Keeps the signature uniform with the other tool modules.
pub(super) fn run(name: &str, args: &Map<String, Value>, _cx: &ToolContext) -> Result<Output, ToolError> {
    render(name, args)
}
