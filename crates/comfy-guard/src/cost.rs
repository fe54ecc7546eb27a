//! What a job may cost: limits on image size, batch size, video length,
//! sampler steps and upscale factor, checked before a workflow is queued.
//!
//! One workflow can hold a shared GPU for hours (a 8192² image, a batch of
//! 64, 2,000 video frames, 10,000 steps). [`check_job`] reads the values a
//! workflow sets and names every one over its limit, so the server can
//! refuse the job (enforce mode) or warn about it (audit mode) before it
//! reaches the queue.
//!
//! Values are read as ComfyUI will read them: a literal is cast as its
//! validation casts it (Python's `int()` and `float()`: `"10000"`,
//! `"1_0000"`, full-width digits, `{"__value__": 10000}`, `5000.7` for an
//! integer input are all read), and a linked value is evaluated through
//! primitive, switch and math nodes (see `eval`); a switch whose condition
//! cannot be worked out counts with its worse branch. Upscale factors
//! multiply along a chain: eight `ImageScaleBy` nodes of 8× each are one
//! upscale of 8⁸, judged at the last (an absolute resize, a node with
//! `width` and `height`, starts the chain over).
//!
//! A value computed by any other node cannot be known before the job runs.
//! In audit mode it is named as unchecked (a warning, never a refusal); in
//! enforce mode ([`check_job_in`]) it counts as over the limit, since the
//! limit would otherwise be one custom node away from meaningless. A
//! literal ComfyUI cannot read at all fails its validation and never runs,
//! so it is not judged.
//!
//! Each [`OverLimit`] names its rule (`limits.max_steps`, ...; the limit's
//! config key) and turns into an inspector [`Finding`] with
//! [`OverLimit::finding`], so job cost reports like every other rule.
//!
//! | limit | inputs read |
//! | --- | --- |
//! | `max_pixels` | `width` × `height` on the same node |
//! | `max_batch_size` | `batch_size`, `amount` |
//! | `max_frames` | `length`, `frames`, `num_frames`, `frame_count`, `video_frames` |
//! | `max_steps` | `steps` |
//! | `max_upscale_factor` | `scale_by`, `upscale_by`, `scale_factor`, `upscale_factor` |

use std::collections::HashMap;

use comfy_workflow::{Input, Node, NodeId, Workflow};
use serde::{Deserialize, Serialize};

use crate::eval::{Cast, Numbers, Unknown};
use crate::inspect::{Finding, Mode, RuleId, Severity};

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
    /// The value cannot be worked out before the run (`value` is then
    /// infinite): over the limit in enforce mode, unchecked in audit mode.
    pub unknown: bool,
}

impl OverLimit {
    /// The rule: the limit's config key (`limits.max_steps`, ...).
    pub fn rule(&self) -> RuleId {
        match self.limit {
            "max_pixels" => RuleId::MaxPixels,
            "max_batch_size" => RuleId::MaxBatchSize,
            "max_frames" => RuleId::MaxFrames,
            "max_upscale_factor" => RuleId::MaxUpscaleFactor,
            _ => RuleId::MaxSteps,
        }
    }

    /// As an inspector finding: an error when over the limit, a warning
    /// when the value cannot be worked out in audit mode.
    pub fn finding(&self, mode: Mode) -> Finding {
        let detail = if self.unknown {
            format!(
                "limits.{} cannot be checked before the run; {}",
                self.limit,
                if mode == Mode::Enforce {
                    "counted as over in enforce mode"
                } else {
                    "not refused in audit mode"
                }
            )
        } else {
            format!(
                "{} over limits.{} = {}",
                shown(self.value),
                self.limit,
                shown(self.allowed)
            )
        };
        Finding {
            rule: self.rule(),
            severity: if self.unknown && mode == Mode::Audit {
                Severity::Warning
            } else {
                Severity::Error
            },
            node: Some(self.node.clone()),
            class: Some(self.class.clone()),
            input: Some(self.input.clone()),
            message: self.message.clone(),
            detail,
        }
    }
}

const BATCH: &[&str] = &["batch_size", "amount"];
const FRAMES: &[&str] = &["length", "frames", "num_frames", "frame_count", "video_frames"];
const UPSCALE: &[&str] = &["scale_by", "upscale_by", "scale_factor", "upscale_factor"];

/// Every value in `wf` over a limit in `limits`, in node order, as audit
/// mode reads it (values that cannot be worked out are named as
/// unchecked).
pub fn check_job(wf: &Workflow, limits: &JobLimits) -> Vec<OverLimit> {
    check_job_in(wf, limits, Mode::Audit)
}

/// A number shown as people write it.
fn shown(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// What one input holds: its alternatives, nothing (absent, or a literal
/// ComfyUI refuses), or unknown with the node that makes it so.
enum Read {
    Values(Vec<f64>),
    Absent,
    Unknown(Unknown),
}

fn read(numbers: &mut Numbers<'_>, node: &Node, name: &str, cast: Cast) -> Read {
    match numbers.input(node, name, cast) {
        Ok(Some(v)) if !v.is_empty() => Read::Values(v),
        Ok(_) => Read::Absent,
        Err(u) if u.node.is_none() => Read::Absent,
        Err(_) if measured(numbers.workflow(), node, name) => Read::Absent,
        Err(u) => Read::Unknown(u),
    }
}

/// Core classes whose numbers are the size of an image the job already
/// holds (ComfyUI's `GetImageSize`: width, height, batch size).
const MEASURING: &[&str] = &["GetImageSize"];

/// Whether `name` of `node` is linked straight to a measuring node: a size
/// taken from an image the job already has (its making was judged where it
/// was loaded, generated or upscaled) adds no new cost, so it is not
/// judged. Through any other node (math, a custom node) it is unknown as
/// before.
fn measured(wf: &Workflow, node: &Node, name: &str) -> bool {
    match node.input(name) {
        Some(Input::Link(l)) => wf
            .node(l.node.as_str())
            .is_some_and(|from| MEASURING.contains(&from.class_type.as_str())),
        _ => false,
    }
}

fn max_of(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// Every value in `wf` over a limit in `limits`, in node order, and every
/// limit input whose value cannot be worked out before the run: over the
/// limit in [`Mode::Enforce`], named as unchecked in [`Mode::Audit`].
pub fn check_job_in(wf: &Workflow, limits: &JobLimits, mode: Mode) -> Vec<OverLimit> {
    let mut numbers = Numbers::new(wf);
    let chained = chained_factors(wf, &mut numbers);
    let mut out = Vec::new();
    let enforce = mode == Mode::Enforce;
    for node in wf.nodes() {
        let mut over = |input: String, value: f64, limit: &'static str, allowed: f64, unknown: Option<&Unknown>| {
            let message = match unknown {
                Some(u) => {
                    let from = u
                        .node
                        .as_ref()
                        .map_or_else(String::new, |n| format!("node {n} ({}): ", u.class));
                    if enforce {
                        format!(
                            "Node {} ({}): {input} cannot be worked out before the run ({from}{}); in enforce mode that counts as over the limit limits.{limit} = {}",
                            node.id,
                            node.class_type,
                            u.why,
                            shown(allowed)
                        )
                    } else {
                        format!(
                            "Node {} ({}): {input} cannot be worked out before the run ({from}{}), so the limit limits.{limit} = {} is not checked for it (enforce mode would refuse the job)",
                            node.id,
                            node.class_type,
                            u.why,
                            shown(allowed)
                        )
                    }
                }
                None => format!(
                    "Node {} ({}): {input} {} is over the limit limits.{limit} = {}",
                    node.id,
                    node.class_type,
                    shown(value),
                    shown(allowed)
                ),
            };
            out.push(OverLimit {
                node: node.id.to_string(),
                class: node.class_type.to_string(),
                input,
                value,
                limit,
                allowed,
                message,
                unknown: unknown.is_some(),
            });
        };
        if limits.max_pixels > 0 {
            let allowed = limits.max_pixels as f64;
            match (
                read(&mut numbers, node, "width", Cast::Int),
                read(&mut numbers, node, "height", Cast::Int),
            ) {
                (Read::Values(w), Read::Values(h)) => {
                    let (w, h) = (max_of(&w), max_of(&h));
                    if w * h > allowed {
                        over(format!("width×height {w}×{h} ="), w * h, "max_pixels", allowed, None);
                    }
                }
                (Read::Unknown(u), Read::Values(_) | Read::Unknown(_)) | (Read::Values(_), Read::Unknown(u)) => {
                    over(
                        "width×height".to_owned(),
                        f64::INFINITY,
                        "max_pixels",
                        allowed,
                        Some(&u),
                    );
                }
                _ => {}
            }
        }
        let checks: [(&[&str], f64, &'static str, Cast); 4] = [
            (BATCH, limits.max_batch_size as f64, "max_batch_size", Cast::Int),
            (FRAMES, limits.max_frames as f64, "max_frames", Cast::Int),
            (&["steps"], limits.max_steps as f64, "max_steps", Cast::Int),
            (UPSCALE, limits.max_upscale_factor, "max_upscale_factor", Cast::Float),
        ];
        for (names, allowed, limit, cast) in checks {
            if allowed <= 0.0 {
                continue;
            }
            for name in names {
                match read(&mut numbers, node, name, cast) {
                    Read::Values(v) => {
                        let mut value = max_of(&v);
                        let mut input = (*name).to_owned();
                        if limit == "max_upscale_factor"
                            && let Some(&total) = chained.get(&node.id)
                            && total > value
                        {
                            value = total;
                            input = format!("{name} (with the upscales before it)");
                        }
                        if value > allowed {
                            over(input, value, limit, allowed, None);
                        }
                    }
                    Read::Unknown(u) => over((*name).to_owned(), f64::INFINITY, limit, allowed, Some(&u)),
                    Read::Absent => {}
                }
            }
        }
    }
    out
}

/// For every node with an upscale factor, the product of its factor and
/// the factors of the upscales before it, through whatever nodes lie
/// between (an absolute resize starts over). Nodes in execution order, so
/// every source is done before its consumers; a graph with a cycle (which
/// ComfyUI refuses) has no chains.
fn chained_factors(wf: &Workflow, numbers: &mut Numbers<'_>) -> HashMap<NodeId, f64> {
    let mut total: HashMap<NodeId, f64> = HashMap::new();
    let mut at_upscale = HashMap::new();
    let Ok(order) = wf.execution_order() else {
        return at_upscale;
    };
    for id in order {
        let Some(node) = wf.node(id.as_str()) else { continue };
        if node.input("width").is_some() && node.input("height").is_some() {
            total.insert(id, 1.0);
            continue;
        }
        let upstream = node
            .inputs
            .iter()
            .filter_map(|(_, i)| match i {
                Input::Link(l) => total.get(&l.node).copied(),
                Input::Value(_) => None,
            })
            .fold(1.0, f64::max);
        let own = UPSCALE.iter().find_map(|n| match read(numbers, node, n, Cast::Float) {
            Read::Values(v) => Some(max_of(&v)),
            _ => None,
        });
        let here = upstream * own.unwrap_or(1.0);
        if own.is_some() {
            at_upscale.insert(id.clone(), here);
        }
        total.insert(id, here.min(f64::MAX));
    }
    at_upscale
}

#[cfg(test)]
mod tests {
    use super::*;
    use comfy_workflow::Limits;
    use serde_json::{Value, json};

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
            // Not a literal anywhere: named as unchecked in audit mode.
            "3": {"class_type": "KSampler", "inputs": {"steps": ["2", 0]}},
            "4": {"class_type": "X", "inputs": {"steps": "many", "width": 10000}},
        }));
        let found = check_job(&linked, &JobLimits::DEFAULT);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].node.as_str(), found[0].value), ("2", 5000.0));
        assert_eq!((found[1].node.as_str(), found[1].unknown), ("3", true));
    }

    #[test]
    fn limits_parse_from_config_with_unknown_keys_refused() {
        let l: JobLimits = serde_json::from_value(json!({"max_steps": 50})).unwrap_or(JobLimits::NONE);
        assert_eq!(l.max_steps, 50);
        assert_eq!(l.max_pixels, JobLimits::DEFAULT.max_pixels);
        assert!(serde_json::from_value::<JobLimits>(json!({"max_stepz": 50})).is_err());
    }
}
