//! comfy-audit against concurrency, crashes, hostile file systems and
//! tampering.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod anchor;
mod chain;
mod redact;
mod writer;

use std::path::Path;

use serde_json::Value;

/// Every line of `path`, parsed.
pub(crate) fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}
