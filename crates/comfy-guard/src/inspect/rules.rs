//! The rule ids a finding names and their severities: stable names (SARIF
//! rules, JSON output), kept in one place so the list reads as a catalog.

use std::fmt;

use serde::Serialize;

/// Which rule a finding broke. The ids are stable (they name SARIF rules
/// and appear in JSON output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum RuleId {
    /// `node.dangerous`: a class on the dangerous list.
    #[serde(rename = "node.dangerous")]
    DangerousNode,
    /// `node.lookalike`: a class that passes for a dangerous one.
    #[serde(rename = "node.lookalike")]
    LookalikeNode,
    /// `node.nonascii`: a class name with non-ASCII or control characters
    /// that the server's catalog does not have byte for byte.
    #[serde(rename = "node.nonascii")]
    NonAsciiNode,
    /// `node.unknown`: a class the server does not have.
    #[serde(rename = "node.unknown")]
    UnknownNode,
    /// `node.unapproved`: a class outside the enforce-mode allowlist.
    #[serde(rename = "node.unapproved")]
    UnapprovedNode,
    /// `node.provenance`: a class enforce mode cannot vouch for (from a pack
    /// not allowlisted, a core class that acts on paths or code, or of
    /// unknown origin).
    #[serde(rename = "node.provenance")]
    NodeProvenance,
    /// `node.api`: a paid partner node (`api_node` in `/object_info`): it
    /// sends its inputs to an outside service and charges the user's Comfy
    /// account.
    #[serde(rename = "node.api")]
    ApiNode,
    /// `input.code`: code in a string that reaches a node.
    #[serde(rename = "input.code")]
    CodeInInput,
    /// `input.tainted`: text that cannot be computed before running
    /// reaches an input that acts on it.
    #[serde(rename = "input.tainted")]
    TaintedInput,
    /// `input.path`: a file path that leaves its folder.
    #[serde(rename = "input.path")]
    PathEscape,
    /// `input.url`: an address a node would fetch that is local, private or
    /// not http(s).
    #[serde(rename = "input.url")]
    UnsafeUrl,
    /// `input.pickle`: a loader reads a pickle (which can run code when
    /// loaded).
    #[serde(rename = "input.pickle")]
    PickleLoad,
    /// `image.disagree`: an image carries embedded workflows that disagree
    /// (two different texts under one keyword, or a prompt that runs
    /// classes its editor workflow does not show).
    #[serde(rename = "image.disagree")]
    ImageDisagree,
    /// `subgraph.depth`: subgraphs nested deeper than inspected.
    #[serde(rename = "subgraph.depth")]
    SubgraphDepth,
    /// `subgraph.unexpanded`: a subgraph node whose graph was not found.
    #[serde(rename = "subgraph.unexpanded")]
    SubgraphUnexpanded,
    /// `limits.max_pixels`: an image over `limits.max_pixels`, or whose size
    /// cannot be worked out before the run (see [`crate::cost`]).
    #[serde(rename = "limits.max_pixels")]
    MaxPixels,
    /// `limits.max_batch_size`: a batch over the limit, or of a size that
    /// cannot be worked out before the run.
    #[serde(rename = "limits.max_batch_size")]
    MaxBatchSize,
    /// `limits.max_frames`: a video over the limit, or of a length that
    /// cannot be worked out before the run.
    #[serde(rename = "limits.max_frames")]
    MaxFrames,
    /// `limits.max_steps`: sampler steps over the limit, or a count that
    /// cannot be worked out before the run.
    #[serde(rename = "limits.max_steps")]
    MaxSteps,
    /// `limits.max_upscale_factor`: an upscale (along its chain) over the
    /// limit, or a factor that cannot be worked out before the run.
    #[serde(rename = "limits.max_upscale_factor")]
    MaxUpscaleFactor,
}

impl RuleId {
    /// Every rule, for documentation and SARIF rule tables.
    pub const ALL: &[RuleId] = &[
        RuleId::DangerousNode,
        RuleId::LookalikeNode,
        RuleId::NonAsciiNode,
        RuleId::UnknownNode,
        RuleId::UnapprovedNode,
        RuleId::NodeProvenance,
        RuleId::ApiNode,
        RuleId::CodeInInput,
        RuleId::TaintedInput,
        RuleId::PathEscape,
        RuleId::UnsafeUrl,
        RuleId::PickleLoad,
        RuleId::ImageDisagree,
        RuleId::SubgraphDepth,
        RuleId::SubgraphUnexpanded,
        RuleId::MaxPixels,
        RuleId::MaxBatchSize,
        RuleId::MaxFrames,
        RuleId::MaxSteps,
        RuleId::MaxUpscaleFactor,
    ];

    /// The stable id (`node.dangerous`, ...).
    pub fn id(self) -> &'static str {
        match self {
            RuleId::DangerousNode => "node.dangerous",
            RuleId::LookalikeNode => "node.lookalike",
            RuleId::NonAsciiNode => "node.nonascii",
            RuleId::UnknownNode => "node.unknown",
            RuleId::UnapprovedNode => "node.unapproved",
            RuleId::NodeProvenance => "node.provenance",
            RuleId::ApiNode => "node.api",
            RuleId::CodeInInput => "input.code",
            RuleId::TaintedInput => "input.tainted",
            RuleId::PathEscape => "input.path",
            RuleId::UnsafeUrl => "input.url",
            RuleId::PickleLoad => "input.pickle",
            RuleId::ImageDisagree => "image.disagree",
            RuleId::SubgraphDepth => "subgraph.depth",
            RuleId::SubgraphUnexpanded => "subgraph.unexpanded",
            RuleId::MaxPixels => "limits.max_pixels",
            RuleId::MaxBatchSize => "limits.max_batch_size",
            RuleId::MaxFrames => "limits.max_frames",
            RuleId::MaxSteps => "limits.max_steps",
            RuleId::MaxUpscaleFactor => "limits.max_upscale_factor",
        }
    }

    /// How serious a finding of this rule is.
    pub fn severity(self) -> Severity {
        match self {
            RuleId::DangerousNode
            | RuleId::LookalikeNode
            | RuleId::NonAsciiNode
            | RuleId::UnapprovedNode
            | RuleId::NodeProvenance
            | RuleId::CodeInInput
            | RuleId::PathEscape
            | RuleId::UnsafeUrl
            | RuleId::PickleLoad
            | RuleId::ImageDisagree
            | RuleId::MaxPixels
            | RuleId::MaxBatchSize
            | RuleId::MaxFrames
            | RuleId::MaxSteps
            | RuleId::MaxUpscaleFactor => Severity::Error,
            RuleId::UnknownNode
            | RuleId::ApiNode
            | RuleId::TaintedInput
            | RuleId::SubgraphDepth
            | RuleId::SubgraphUnexpanded => Severity::Warning,
        }
    }

    /// One line on what the rule catches.
    pub fn summary(self) -> &'static str {
        match self {
            RuleId::DangerousNode => {
                "A node class on the dangerous list (code execution, network, file system, paid API)."
            }
            RuleId::LookalikeNode => {
                "A node class that passes for a listed dangerous one (case, confusable or invisible characters, suffixes)."
            }
            RuleId::NonAsciiNode => {
                "A node class name with non-ASCII, invisible or control characters that the server's catalog does not list byte for byte."
            }
            RuleId::UnknownNode => "A node class the ComfyUI server does not have.",
            RuleId::UnapprovedNode => "A node class outside the enforce-mode allowlist.",
            RuleId::NodeProvenance => {
                "A node class enforce mode cannot vouch for: from a pack not allowlisted, a core class that acts on paths or code, or of unknown origin."
            }
            RuleId::ApiNode => {
                "A paid partner node (API node): it sends its inputs to an outside service and charges the user's Comfy account."
            }
            RuleId::CodeInInput => "Python or shell code in a string that reaches a node, plain or encoded.",
            RuleId::TaintedInput => {
                "Text that cannot be computed before the run reaches an input that executes, writes, reads or fetches it."
            }
            RuleId::PathEscape => "A file path that leaves the folder the node reads or writes.",
            RuleId::UnsafeUrl => "An address a node would fetch that is local, private or not http(s).",
            RuleId::PickleLoad => "A loader reads a pickle file, which can run code when it is loaded.",
            RuleId::ImageDisagree => {
                "An image's embedded workflows disagree: what one reader loads is not what another shows."
            }
            RuleId::SubgraphDepth => "Subgraphs nested deeper than the inspector follows.",
            RuleId::SubgraphUnexpanded => "A subgraph node whose inner graph could not be found.",
            RuleId::MaxPixels => "An image larger than the job limit, or of a size known only when the job runs.",
            RuleId::MaxBatchSize => "A batch larger than the job limit, or of a size known only when the job runs.",
            RuleId::MaxFrames => "A video longer than the job limit, or of a length known only when the job runs.",
            RuleId::MaxSteps => "More sampler steps than the job limit, or a count known only when the job runs.",
            RuleId::MaxUpscaleFactor => {
                "An upscale (with the upscales before it) over the job limit, or a factor known only when the job runs."
            }
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// How serious a finding is (SARIF levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Warning,
    /// Dangerous.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}
