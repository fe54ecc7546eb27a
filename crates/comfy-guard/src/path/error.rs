//! Why a path was refused: the rule it broke, the kind of path, and the
//! error that names both with the offending text (escaped and cut short).
//! Shared by every parser in this module.

use std::fmt;

/// The rule a rejected path broke. `id()` is stable and appears in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathRule {
    /// Nothing left to name a file.
    Empty,
    /// A `%` sequence that still decodes after one decoding.
    DoubleEncoding,
    /// Not UTF-8 after decoding (overlong forms included).
    InvalidUtf8,
    /// Longer than the limit.
    TooLong,
    /// Deeper than the limit.
    TooDeep,
    /// NUL or another control character.
    ControlCharacter,
    /// A zero-width, invisible or bidi-control character.
    InvisibleCharacter,
    /// A character that normalises to (or passes for) `.`, `/` or `\`.
    LookalikeCharacter,
    /// `..` in any form, or a `.` component.
    Traversal,
    /// A `/` or `\` in a file name, or an empty subfolder component.
    Separator,
    /// An absolute, drive, UNC or device path, or a `:`.
    Absolute,
    /// A Windows reserved device name.
    ReservedName,
    /// A component ending in a dot or a space.
    TrailingDotOrSpace,
    /// No extension, or one not on the allowlist.
    Extension,
}

impl PathRule {
    /// The rule's stable id (`path.traversal`, ...).
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            Self::Empty => "path.empty",
            Self::DoubleEncoding => "path.double-encoding",
            Self::InvalidUtf8 => "path.invalid-utf8",
            Self::TooLong => "path.too-long",
            Self::TooDeep => "path.too-deep",
            Self::ControlCharacter => "path.control-character",
            Self::InvisibleCharacter => "path.invisible-character",
            Self::LookalikeCharacter => "path.lookalike-character",
            Self::Traversal => "path.traversal",
            Self::Separator => "path.separator",
            Self::Absolute => "path.absolute",
            Self::ReservedName => "path.reserved-name",
            Self::TrailingDotOrSpace => "path.trailing-dot-or-space",
            Self::Extension => "path.extension",
        }
    }
}

impl fmt::Display for PathRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// What kind of value was rejected, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathKind {
    /// A file name.
    FileName,
    /// A subfolder.
    Subfolder,
    /// A path a node will write to or read from, relative to its folder
    /// (a save prefix, a load path).
    NodePath,
    /// A name or id that becomes one segment of a ComfyUI path (a node
    /// class, a subgraph id, a model folder, a task id).
    Name,
    /// A model file, possibly in a subfolder of its model folder.
    ModelFile,
    /// An asset hash (`blake3:` and 64 lowercase hex digits).
    AssetHash,
}

/// A rejected file name or subfolder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} rejected ({rule}): {detail}: {shown}", match kind {
    PathKind::FileName => "file name",
    PathKind::Subfolder => "subfolder",
    PathKind::NodePath => "path",
    PathKind::Name => "name",
    PathKind::ModelFile => "model file",
    PathKind::AssetHash => "asset hash",
})]
pub struct PathError {
    /// The rule it broke.
    pub rule: PathRule,
    /// File name or subfolder.
    pub kind: PathKind,
    /// What exactly was wrong.
    pub detail: String,
    /// The value as given, escaped and shortened for display.
    pub shown: String,
}

pub(crate) fn err(kind: PathKind, rule: PathRule, detail: &str, raw: &str) -> PathError {
    let mut shown: String = raw.chars().take(80).collect::<String>().escape_debug().to_string();
    if raw.chars().count() > 80 {
        shown.push_str("...");
    }
    PathError {
        rule,
        kind,
        detail: detail.to_owned(),
        shown: format!("\"{shown}\""),
    }
}
