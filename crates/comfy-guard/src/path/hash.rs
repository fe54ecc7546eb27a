//! The asset hash (`blake3:` and 64 lowercase hex digits), the one value with
//! a `:` that may become part of a ComfyUI path, and the file-or-hash choice
//! tools take. Its own file: it is the exception to the name rules.

use std::fmt;

use super::error::err;
use super::error::{PathError, PathKind, PathRule};
use crate::Extensions;
use crate::SafeFileName;

/// An asset hash as today's ComfyUI names assets: exactly `blake3:`
/// followed by 64 lowercase hex digits. The one value with a `:` that may
/// become part of a ComfyUI path; nothing looser passes.
///
/// ```
/// use comfy_guard::path::AssetHash;
/// let h = format!("blake3:{}", "0a".repeat(32));
/// assert_eq!(AssetHash::parse(&h).unwrap().as_str(), h);
/// assert!(AssetHash::parse(&h.to_uppercase()).is_err());
/// assert!(AssetHash::parse("blake3:../x").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AssetHash(String);

/// The asset hash prefix.
pub const ASSET_HASH_PREFIX: &str = "blake3:";

impl AssetHash {
    /// Checks `raw`.
    ///
    /// # Errors
    /// [`PathError`] with [`PathRule::Absolute`] (the `:` rule) for any other
    /// shape.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        let ok = raw.strip_prefix(ASSET_HASH_PREFIX).is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(err(
                PathKind::AssetHash,
                PathRule::Absolute,
                "an asset hash is `blake3:` and 64 lowercase hex digits",
                raw,
            ))
        }
    }

    /// The hash, `blake3:...`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `raw` is written as a content hash, right or wrong: a
    /// `name:` prefix of two or more ASCII letters or digits (`blake3:`,
    /// `BLAKE3:`, `sha256:`), not a URL (`://`). Such a value is judged by
    /// [`AssetHash::parse`] alone, so a near miss gets the hash's rule in
    /// its error, never a file name's. (A one-letter prefix is a drive.)
    ///
    /// ```
    /// use comfy_guard::path::AssetHash;
    /// assert!(AssetHash::is_attempt("BLAKE3:00"));
    /// assert!(AssetHash::is_attempt("sha256:00"));
    /// assert!(!AssetHash::is_attempt("C:x.png"));
    /// assert!(!AssetHash::is_attempt("https://example.com/x.png"));
    /// assert!(!AssetHash::is_attempt("cat.png"));
    /// ```
    #[must_use]
    pub fn is_attempt(raw: &str) -> bool {
        raw.split_once(':').is_some_and(|(algo, rest)| {
            algo.len() >= 2 && algo.bytes().all(|b| b.is_ascii_alphanumeric()) && !rest.starts_with("//")
        })
    }
}

/// A file a tool names: a checked file name, or an asset hash, which
/// ComfyUI 0.33 with `--enable-assets` resolves in `/view` in place of a
/// name (type and subfolder are then ignored).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileOrHash {
    /// A file name ([`SafeFileName`]'s rules).
    File(SafeFileName),
    /// An asset hash.
    Hash(AssetHash),
}

impl FileOrHash {
    /// `raw` as an asset hash when it is written as one
    /// ([`AssetHash::is_attempt`]), else as a file name with an extension
    /// in `allowed`.
    ///
    /// # Errors
    /// [`PathError`] of the one rule set that applies.
    ///
    /// ```
    /// use comfy_guard::path::{Extensions, FileOrHash, PathKind};
    /// let h = format!("blake3:{}", "ab".repeat(32));
    /// assert!(matches!(FileOrHash::parse(&h, &Extensions::images()), Ok(FileOrHash::Hash(_))));
    /// assert!(matches!(FileOrHash::parse("cat.png", &Extensions::images()), Ok(FileOrHash::File(_))));
    /// let near = format!("blake3:{}", "AB".repeat(32));
    /// assert_eq!(FileOrHash::parse(&near, &Extensions::images()).unwrap_err().kind, PathKind::AssetHash);
    /// ```
    pub fn parse(raw: &str, allowed: &Extensions) -> Result<Self, PathError> {
        if AssetHash::is_attempt(raw) {
            AssetHash::parse(raw).map(Self::Hash)
        } else {
            SafeFileName::parse(raw, allowed).map(Self::File)
        }
    }

    /// The name or the hash, as it goes to ComfyUI.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::File(f) => f.as_str(),
            Self::Hash(h) => h.as_str(),
        }
    }

    /// Whether this is an asset hash.
    #[must_use]
    pub fn is_hash(&self) -> bool {
        matches!(self, Self::Hash(_))
    }
}

impl fmt::Display for AssetHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
