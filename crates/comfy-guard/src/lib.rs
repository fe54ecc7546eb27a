//! Security checks over ComfyUI content, usable alone as a lint library.
//!
//! Why a crate of its own: every security decision about content (file
//! names, subfolders, local files, and, as they land, workflows, download
//! URLs, installed nodes and referenced models) lives here, away from the
//! network and the protocol, so it can be tested exhaustively and reused.
//!
//! What it holds:
//! - [`inspect`](mod@inspect): the workflow inspector ([`inspect()`], [`Policy`],
//!   [`Finding`]);
//! - [`path`]: the path sanitizer and typed safe names ([`SafeFileName`],
//!   [`SafeSubfolder`], [`SafeName`], [`SafeModelFile`], [`AssetHash`],
//!   [`path::check_node_path`]);
//! - [`local`]: bounded, symlink-refusing reads of local files;
//! - [`upload`]: where an uploaded image ends, so data after it is refused;
//! - [`download`]: the download validator ([`check_download`]);
//! - [`catalog`]: the node auditor over an `/object_info` catalog
//!   ([`audit_catalog`]);
//! - [`models`]: the model checker ([`missing_models`]);
//! - [`config`]: the `security:` config section and the policy it makes;
//! - [`lint`]: the linter behind `comfy-lint` (workflow files and images
//!   in, human, JSON or SARIF reports out).
//!
//! Invariant: no network and no async runtime; every check is a pure
//! function of its input and a policy (local reads and the linter's file
//! reads are the exceptions, and they only read).
//!
//! ```
//! use comfy_guard::path::{Extensions, PathRule, SafeFileName, SafeSubfolder};
//! let name = SafeFileName::parse("cat%20photo.PNG", &Extensions::images()).unwrap();
//! assert_eq!(name.as_str(), "cat photo.PNG");
//! let bad = SafeSubfolder::parse("..%2F..%2Fetc").unwrap_err();
//! assert_eq!(bad.rule, PathRule::Traversal);
//! ```

pub mod catalog;
pub mod config;
pub mod cost;
pub mod download;
mod eval;
pub mod inspect;
pub mod lint;
pub mod local;
pub mod models;
pub mod path;
pub mod upload;

pub use catalog::{NodeAudit, audit_catalog};
pub use config::SecurityConfig;
pub use cost::{JobLimits, OverLimit, check_job, check_job_in};
pub use download::{DownloadError, DownloadPolicy, DownloadRule, SafeDownload, check_download};
pub use inspect::{Finding, Inspection, Mode, Policy, RuleId, Severity, inspect, inspect_json};
pub use local::{LocalFileError, read_regular_file};
pub use models::{MissingModel, missing_models};
pub use path::{
    AssetHash, Extensions, FileOrHash, PathError, PathRule, SafeFileName, SafeModelFile, SafeName, SafeSubfolder,
};
