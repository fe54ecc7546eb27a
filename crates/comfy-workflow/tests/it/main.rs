//! Integration tests of comfy-workflow.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests may panic on broken fixtures"
)]

mod analysis;
mod edit;
mod editor;
mod embedded;
mod parse;
mod template;
mod validate;

use std::path::PathBuf;

/// The repository's `fixtures/` folder.
pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}
