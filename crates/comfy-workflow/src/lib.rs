//! The ComfyUI workflow graph model.
//!
//! Why: every other crate reads, builds, checks and explains workflows, and
//! a workflow is untrusted input. This crate parses it strictly (duplicate
//! keys are an error, sizes and depth are bounded before the work is done),
//! keeps node and input order (stable output, readable diffs), and gives
//! the graph back as equivalent JSON.
//!
//! - [`Workflow`], [`Node`], [`Input`], [`Link`], [`NodeId`]: the API
//!   format `POST /prompt` takes.
//! - [`Limits`] and [`ParseError`]: the bounds and what breaks them.
//! - [`embedded`]: the `prompt` and `workflow` texts ComfyUI embeds in the
//!   PNG and WebP files it saves.
//! - [`Edit`] and [`Workflow::apply`]: batch edits, all or nothing.
//! - [`ObjectInfo`], [`Workflow::validate`] and [`Problem`]: checks against
//!   a server's node catalog; [`Workflow::execution_order`] and [`Cycle`].
//! - [`Workflow::analyze`] and [`Analysis`]: models, key parameters,
//!   pipeline kind, prompt nodes and flow, with text and Mermaid summaries
//!   ([`Analysis::to_text`], [`Workflow::to_mermaid`]) built from it.
//! - [`editor`]: the editor (UI) format converted to the API format with a
//!   server's `/object_info`.
//! - [`template`]: the 14 built-in templates, built from parameters;
//!   [`preset`]: model-family presets and prompting guides.
//!
//! Invariant: pure data. No I/O, no tokio, no network, and no other
//! `comfy-*` crate; `cargo xtask deps` enforces it. Nothing here panics on
//! any input.
//!
//! ```
//! use comfy_workflow::{Input, Limits, Workflow};
//!
//! let text = br#"{"3": {"class_type": "KSampler", "inputs": {"seed": 5, "model": ["4", 0]}},
//!                 "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}}}"#;
//! let wf = Workflow::from_json(text, &Limits::DEFAULT).unwrap();
//! assert_eq!(wf.node("3").unwrap().value("seed"), Some(&serde_json::json!(5)));
//! assert!(matches!(wf.node("3").unwrap().input("model"), Some(Input::Link(_))));
//! // Duplicate keys are refused: the graph checked must be the graph run.
//! let twice = br#"{"1": {"class_type": "A"}, "1": {"class_type": "B"}}"#;
//! assert!(Workflow::from_json(twice, &Limits::DEFAULT).is_err());
//! ```

pub mod analysis;
mod edit;
pub mod editor;
pub mod embedded;
mod error;
mod graph;
mod id;
mod limits;
pub mod object_info;
mod order;
pub mod preset;
pub mod replace;
mod strict;
mod summary;
pub mod template;
pub mod tokens;
pub mod validate;

pub use analysis::Analysis;
pub use edit::{Edit, EditError, EditErrorKind, EditReport};
pub use error::ParseError;
pub use graph::{Input, Link, Node, Workflow};
pub use id::{MAX_NODE_ID_LEN, NodeId};
pub use limits::Limits;
pub use object_info::ObjectInfo;
pub use order::Cycle;
pub use replace::{Replaced, Replacements};
/// The string type of class and input names (re-exported so callers need
/// not depend on `smol_str` themselves).
pub use smol_str::SmolStr;
pub use strict::parse_json;
pub use tokens::{DateParts, TokenChange};
pub use validate::{Problem, ProblemKind};
