//! Security checks over ComfyUI workflows, usable alone as a lint library.
//!
//! This crate will own the workflow inspector (audit and enforce modes), the
//! path sanitizer for file names, subfolders and URL segments, and the
//! findings they report.
//!
//! Invariant: no network and no async runtime; every check is a pure function
//! of a workflow and a policy.
