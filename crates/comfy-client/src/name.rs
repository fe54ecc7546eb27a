//! Values that may become part of a ComfyUI request path.
//!
//! Why types: percent-encoding keeps a name inside its segment, but `.` and
//! `..` are unreserved characters, so `/object_info/..` would reach
//! ComfyUI as a dot segment, and a `:` in a model name (`name:stream`) is
//! an NTFS stream once ComfyUI joins it to a folder. Every client method
//! that builds a path from a caller's value takes a [`Segment`] or a
//! [`RelPath`], whose constructors refuse those shapes, so an unchecked
//! string cannot reach a path. (Applications with their own, stricter
//! checks, such as `comfy-guard`'s typed names, convert into these.)
//!
//! ```
//! use comfy_client::name::{RelPath, Segment};
//! assert!(Segment::new("KSampler").is_ok());
//! assert!(Segment::new("..").is_err());
//! assert!(Segment::new("a/b").is_err());
//! assert!(Segment::new("x:y").is_err());
//! assert!(Segment::asset_hash(&format!("blake3:{}", "f".repeat(64))).is_ok());
//! assert!(RelPath::new("SDXL/model.safetensors").is_ok());
//! assert!(RelPath::new("model.safetensors:stream").is_err());
//! ```
//!
//! A plain string cannot stand in for a checked one:
//!
//! ```compile_fail
//! # async fn f(c: comfy_client::Client) {
//! let _ = c.object_info_class("..").await;
//! # }
//! ```
//!
//! and there is no method that fetches a free path:
//!
//! ```compile_fail
//! # async fn f(c: comfy_client::Client) {
//! let _ = c.get_json("/internal/logs").await;
//! # }
//! ```

use std::fmt;

use crate::Error;

/// Longest segment, in bytes.
const MAX_SEGMENT: usize = 255;
/// Longest relative path, in bytes.
const MAX_PATH: usize = 1024;

/// One path segment: not empty, at most 255 bytes, no control character,
/// no `/`, `\` or `:`, and not made of dots alone. The one segment with a
/// `:` is an asset hash, made by [`Segment::asset_hash`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Segment(String);

fn invalid(name: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        name,
        reason: reason.into(),
    }
}

fn check(s: &str, name: &'static str) -> Result<(), Error> {
    if s.is_empty() {
        return Err(invalid(name, "must not be empty"));
    }
    if s.len() > MAX_SEGMENT {
        return Err(invalid(name, "longer than 255 bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(name, "contains a control character"));
    }
    if s.contains(['/', '\\']) {
        return Err(invalid(name, "contains a path separator"));
    }
    if s.chars().all(|c| c == '.') {
        return Err(invalid(name, "is a dot segment"));
    }
    if s.contains(':') {
        return Err(invalid(name, "contains a `:`"));
    }
    Ok(())
}

impl Segment {
    /// Checks `s`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] saying which rule `s` broke.
    pub fn new(s: &str) -> Result<Self, Error> {
        check(s, "name").map(|()| Self(s.to_owned()))
    }

    /// An asset hash: exactly `blake3:` and 64 lowercase hex digits.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for any other shape.
    pub fn asset_hash(s: &str) -> Result<Self, Error> {
        let ok = s.strip_prefix("blake3:").is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(invalid("hash", "must be `blake3:` and 64 lowercase hex digits"))
        }
    }

    /// The segment, not encoded.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A relative path of [`Segment`]s (a model file under subfolders of its
/// folder): `/` or `\` separate them, no empty ones, at most 1024 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelPath(String);

impl RelPath {
    /// Checks `s`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] saying which rule `s` broke.
    pub fn new(s: &str) -> Result<Self, Error> {
        if s.len() > MAX_PATH {
            return Err(invalid("path", "longer than 1024 bytes"));
        }
        if s.is_empty() {
            return Err(invalid("path", "must not be empty"));
        }
        for part in s.split(['/', '\\']) {
            check(part, "path")?;
        }
        Ok(Self(s.to_owned()))
    }

    /// The path as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its segments, each percent-encoded, joined by `/`.
    pub(crate) fn encoded(&self) -> String {
        self.0
            .split(['/', '\\'])
            .map(crate::url::segment)
            .collect::<Vec<_>>()
            .join("/")
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
