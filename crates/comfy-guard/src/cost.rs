//! What a job may cost: limits on image size, batch size, video length,
//! sampler steps and upscale factor, checked before a workflow is queued.
//!
//! One workflow can hold a shared GPU for hours (a 8192² image, a batch of
//! 64, 2,000 video frames, 10,000 steps). [`check_job`] reads the values a
//! workflow sets and names every one over its limit, so the server can
//! refuse the job (enforce mode) or warn about it (audit mode) before it
//! reaches the queue.
//!
//! Values are read where ComfyUI's nodes take them: literal inputs, or a
//! link to a node that holds a literal `value` (the primitive nodes) one
//! step away. A value computed at run time by other nodes cannot be known
//! before the job runs and is not judged.
//!
//! | limit | inputs read |
//! | --- | --- |
//! | `max_pixels` | `width` × `height` on the same node |
//! | `max_batch_size` | `batch_size`, `amount` |
//! | `max_frames` | `length`, `frames`, `num_frames`, `frame_count`, `video_frames` |
//! | `max_steps` | `steps` |
//! | `max_upscale_factor` | `scale_by`, `upscale_by`, `scale_factor`, `upscale_factor` |

use comfy_workflow::{Input, Node, Workflow};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The limits; `0` turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobLimits {
    /// Pixels in one image (width × height).
    pub max_pixels: u64,
    /// Images or latents in one batch.
    pub max_batch_size: u64,
    /// Frames of one video.
    pub max_frames: u64,
    /// Sampler steps.
    pub max_steps: u64,
    /// Factor of one upscale.
    pub max_upscale_factor: f64,
}

impl JobLimits {
    /// 4096 × 4096 pixels, batches of 16, 1,000 frames, 200 steps, 8× upscales.
    pub const DEFAULT: Self = Self {
        max_pixels: 4096 * 4096,
        max_batch_size: 16,
        max_frames: 1000,
        max_steps: 200,
        max_upscale_factor: 8.0,
    };

    /// No limits.
    pub const NONE: Self = Self {
        max_pixels: 0,
        max_batch_size: 0,
        max_frames: 0,
        max_steps: 0,
        max_upscale_factor: 0.0,
    };
}

impl Default for JobLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One value over its limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverLimit {
    /// The node's id.
    pub node: String,
    /// Its class.
    pub class: String,
    /// The input (for pixels, `width×height`).
    pub input: String,
    /// The value the workflow sets.
    pub value: f64,
    /// The limit's config key (`limits.max_pixels`, ...).
    pub limit: &'static str,
    /// The limit's value.
    pub allowed: f64,
    /// A sentence naming all of it.
    pub message: String,
}

const BATCH: &[&str] = &["batch_size", "amount"];
const FRAMES: &[&str] = &["length", "frames", "num_frames", "frame_count", "video_frames"];
const UPSCALE: &[&str] = &["scale_by", "upscale_by", "scale_factor", "upscale_factor"];

/// A number an input holds: a literal, or the literal `value` of the node
/// a link points at.
fn number(wf: &Workflow, node: &Node, name: &str) -> Option<f64> {
    match node.input(name)? {
        Input::Value(v) => v.as_f64(),
        Input::Link(l) => wf.node(l.node.as_str())?.value("value").and_then(Value::as_f64),
    }
}

/// Every value in `wf` over a limit in `limits`, in node order.
pub fn check_job(wf: &Workflow, limits: &JobLimits) -> Vec<OverLimit> {
    let mut out = Vec::new();
    for node in wf.nodes() {
        let mut over = |input: String, value: f64, limit: &'static str, allowed: f64| {
            let shown = |x: f64| {
                if x.fract() == 0.0 && x.abs() < 1e15 {
                    format!("{}", x as i64)
                } else {
                    format!("{x}")
                }
            };
            let message = format!(
                "Node {} ({}): {input} {} is over the limit limits.{limit} = {}",
                node.id,
                node.class_type,
                shown(value),
                shown(allowed)
            );
            out.push(OverLimit {
                node: node.id.to_string(),
                class: node.class_type.to_string(),
                input,
                value,
                limit,
                allowed,
                message,
            });
        };
        if limits.max_pixels > 0
            && let (Some(w), Some(h)) = (number(wf, node, "width"), number(wf, node, "height"))
            && w * h > limits.max_pixels as f64
        {
            over(
                format!("width×height {w}×{h} ="),
                w * h,
                "max_pixels",
                limits.max_pixels as f64,
            );
        }
        let checks: [(&[&str], f64, &'static str); 4] = [
            (BATCH, limits.max_batch_size as f64, "max_batch_size"),
            (FRAMES, limits.max_frames as f64, "max_frames"),
            (&["steps"], limits.max_steps as f64, "max_steps"),
            (UPSCALE, limits.max_upscale_factor, "max_upscale_factor"),
        ];
        for (names, allowed, limit) in checks {
            if allowed <= 0.0 {
                continue;
            }
            for name in names {
                if let Some(v) = number(wf, node, name)
                    && v > allowed
                {
                    over((*name).to_owned(), v, limit, allowed);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use comfy_workflow::Limits;
    use serde_json::json;

    fn wf(v: Value) -> Workflow {
        Workflow::from_value(v, &Limits::default()).unwrap_or_default()
    }

    #[test]
    fn each_limit_is_named_with_its_node_and_value() {
        let w = wf(json!({
            "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 8192, "height": 8192, "batch_size": 64}},
            "2": {"class_type": "KSampler", "inputs": {"steps": 10000, "seed": 1}},
            "3": {"class_type": "EmptyHunyuanLatentVideo", "inputs": {"width": 512, "height": 512, "length": 5000, "batch_size": 1}},
            "4": {"class_type": "ImageScaleBy", "inputs": {"image": ["9", 0], "scale_by": 16.0, "upscale_method": "lanczos"}},
        }));
        let found = check_job(&w, &JobLimits::DEFAULT);
        let limits: Vec<&str> = found.iter().map(|o| o.limit).collect();
        assert_eq!(
            limits,
            [
                "max_pixels",
                "max_batch_size",
                "max_steps",
                "max_frames",
                "max_upscale_factor"
            ]
        );
        assert_eq!(
            found[0].message,
            "Node 1 (EmptyLatentImage): width×height 8192×8192 = 67108864 is over the limit limits.max_pixels = 16777216"
        );
        assert_eq!(
            found[2].message,
            "Node 2 (KSampler): steps 10000 is over the limit limits.max_steps = 200"
        );
        assert_eq!(
            found[4].message,
            "Node 4 (ImageScaleBy): scale_by 16 is over the limit limits.max_upscale_factor = 8"
        );
        assert!(check_job(&w, &JobLimits::NONE).is_empty());
    }

    #[test]
    fn ordinary_jobs_pass_and_values_through_primitives_count() {
        let ok = wf(json!({
            "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 4}},
            "2": {"class_type": "KSampler", "inputs": {"steps": 30, "latent_image": ["1", 0]}},
            "3": {"class_type": "ImageScaleBy", "inputs": {"scale_by": 2.0}},
        }));
        assert!(check_job(&ok, &JobLimits::DEFAULT).is_empty());
        let linked = wf(json!({
            "1": {"class_type": "PrimitiveInt", "inputs": {"value": 5000}},
            "2": {"class_type": "KSampler", "inputs": {"steps": ["1", 0]}},
            // Not a literal anywhere: not judged.
            "3": {"class_type": "KSampler", "inputs": {"steps": ["2", 0]}},
            "4": {"class_type": "X", "inputs": {"steps": "many", "width": 10000}},
        }));
        let found = check_job(&linked, &JobLimits::DEFAULT);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].node.as_str(), found[0].value), ("2", 5000.0));
    }

    #[test]
    fn limits_parse_from_config_with_unknown_keys_refused() {
        let l: JobLimits = serde_json::from_value(json!({"max_steps": 50})).unwrap_or(JobLimits::NONE);
        assert_eq!(l.max_steps, 50);
        assert_eq!(l.max_pixels, JobLimits::DEFAULT.max_pixels);
        assert!(serde_json::from_value::<JobLimits>(json!({"max_stepz": 50})).is_err());
    }
}
