//! Model-family presets (recommended sampler, scheduler, steps, cfg,
//! resolution) and prompting guides, as data, with the Python server's
//! families, aliases and name inference.

use serde::Serialize;

/// Recommended settings for a model family.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Preset {
    /// The family (`sd15`, `sdxl`, `flux`, `sd3`, `cascade`).
    pub family: &'static str,
    /// Sampler name.
    pub sampler: &'static str,
    /// Scheduler name.
    pub scheduler: &'static str,
    /// Steps.
    pub steps: u32,
    /// Classifier-free guidance.
    pub cfg: f64,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// CLIP skip.
    pub clip_skip: u32,
    /// A note on prompting.
    pub notes: &'static str,
}

/// How to prompt a model family.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Guide {
    /// The family.
    pub family: &'static str,
    /// How to structure a prompt.
    pub prompt_structure: &'static str,
    /// How to weight terms.
    pub weight_syntax: &'static str,
    /// Quality tags that help.
    pub quality_tags: &'static [&'static str],
    /// Advice on negative prompts.
    pub negative_prompt_tips: &'static str,
}

/// Every preset.
pub const PRESETS: &[Preset] = &[
    Preset {
        family: "sd15",
        sampler: "euler_ancestral",
        scheduler: "normal",
        steps: 28,
        cfg: 7.0,
        width: 512,
        height: 768,
        clip_skip: 1,
        notes: "Tag-heavy prompts and negative prompts work well.",
    },
    Preset {
        family: "sdxl",
        sampler: "dpmpp_2m",
        scheduler: "karras",
        steps: 30,
        cfg: 5.5,
        width: 1024,
        height: 1024,
        clip_skip: 1,
        notes: "Prefer natural language prompts with clear scene composition.",
    },
    Preset {
        family: "flux",
        sampler: "euler",
        scheduler: "simple",
        steps: 20,
        cfg: 1.0,
        width: 1024,
        height: 1024,
        clip_skip: 1,
        notes: "Flow-matching models expect low CFG and concise language.",
    },
    Preset {
        family: "sd3",
        sampler: "dpmpp_2m",
        scheduler: "sgm_uniform",
        steps: 28,
        cfg: 4.5,
        width: 1024,
        height: 1024,
        clip_skip: 1,
        notes: "Use detailed, descriptive prompts; avoid over-weighting terms.",
    },
    Preset {
        family: "cascade",
        sampler: "dpmpp_2m",
        scheduler: "simple",
        steps: 24,
        cfg: 4.0,
        width: 1024,
        height: 1024,
        clip_skip: 1,
        notes: "Cascade benefits from broad composition instructions first.",
    },
];

/// Every prompting guide.
pub const GUIDES: &[Guide] = &[
    Guide {
        family: "sd15",
        prompt_structure: "subject, style, lighting, lens/composition, quality tags",
        weight_syntax: "(token:1.2)",
        quality_tags: &["masterpiece", "best quality", "high detail"],
        negative_prompt_tips: "Use negatives for anatomy artifacts and low-quality tokens.",
    },
    Guide {
        family: "sdxl",
        prompt_structure: "subject + environment + mood + camera framing",
        weight_syntax: "(token:1.1)",
        quality_tags: &["cinematic lighting", "high detail", "sharp focus"],
        negative_prompt_tips: "Keep negatives shorter than SD1.5 to avoid over-constraining.",
    },
    Guide {
        family: "flux",
        prompt_structure: "natural language sentence describing subject, setting, and style",
        weight_syntax: "Avoid heavy weighting unless necessary",
        quality_tags: &["natural lighting", "detailed texture"],
        negative_prompt_tips: "Use short negatives only for hard constraints (e.g. watermark).",
    },
    Guide {
        family: "sd3",
        prompt_structure: "clear scene description with explicit style and camera intent",
        weight_syntax: "Light weighting only; rely on plain language first",
        quality_tags: &["balanced composition", "fine detail"],
        negative_prompt_tips: "Use focused negatives for specific defects, not long keyword lists.",
    },
    Guide {
        family: "cascade",
        prompt_structure: "high-level composition first, then style modifiers",
        weight_syntax: "(token:1.1) for minor emphasis",
        quality_tags: &["clean composition", "color harmony"],
        negative_prompt_tips: "Keep negatives concise; tune guidance before adding many tokens.",
    },
];

/// The family a name or alias means (`"SD 1.5"`, `stable-diffusion-xl`,
/// `flux.1`, ...), after trimming and lower-casing.
pub fn family(name: &str) -> Option<&'static str> {
    let key = name.trim().to_lowercase();
    let alias = match key.as_str() {
        "sd1.5" | "sd 1.5" | "stable-diffusion-1.5" | "stable diffusion 1.5" | "stable_diffusion_1_5" => "sd15",
        "stable-diffusion-xl" | "stable diffusion xl" | "stable_diffusion_xl" => "sdxl",
        "flux.1" => "flux",
        "sd3.5" => "sd3",
        "stable-cascade" => "cascade",
        other => other,
    };
    PRESETS.iter().find(|p| p.family == alias).map(|p| p.family)
}

/// The family a model file name suggests: the first of `flux`, `sdxl` (or
/// `sd_xl`), `sd3`, `cascade` found in it; `dreamshaper` and `anything`
/// mean SD 1.5.
pub fn infer_family(model_name: &str) -> Option<&'static str> {
    let lower = model_name.to_lowercase();
    [
        ("flux", "flux"),
        ("sdxl", "sdxl"),
        ("sd_xl", "sdxl"),
        ("sd3", "sd3"),
        ("cascade", "cascade"),
        ("dreamshaper", "sd15"),
        ("anything", "sd15"),
        ("v1-5", "sd15"),
        ("sd15", "sd15"),
    ]
    .into_iter()
    .find(|(needle, _)| lower.contains(needle))
    .map(|(_, family)| family)
}

/// The preset of a family (by name or alias).
pub fn preset(name: &str) -> Option<&'static Preset> {
    let f = family(name)?;
    PRESETS.iter().find(|p| p.family == f)
}

/// The prompting guide of a family (by name or alias).
pub fn guide(name: &str) -> Option<&'static Guide> {
    let f = family(name)?;
    GUIDES.iter().find(|g| g.family == f)
}

#[cfg(test)]
mod tests {
    use super::{GUIDES, PRESETS, guide, preset};

    #[test]
    fn every_family_has_a_preset_and_a_guide() {
        assert_eq!(PRESETS.len(), GUIDES.len());
        for p in PRESETS {
            assert_eq!(preset(p.family).map(|x| x.family), Some(p.family));
            assert_eq!(guide(p.family).map(|g| g.family), Some(p.family));
        }
    }
}
