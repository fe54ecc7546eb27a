//! The path sanitizer: file names and subfolders from tool arguments become
//! [`SafeFileName`] and [`SafeSubfolder`] values, or an error naming the rule
//! they broke.
//!
//! Why types: "parse, don't validate". Code that sends a name to ComfyUI or
//! joins it to a folder takes a `SafeFileName`, so it cannot forget the
//! check, and the check runs once.
//!
//! The rules, in order (each rejection names its [`PathRule`]):
//! 1. percent-decoding, exactly once; what still decodes is double encoding
//!    and is refused, never decoded again;
//! 2. the bytes must be UTF-8 (so overlong forms such as `%C0%AE` fail);
//! 3. length (255 bytes for a name, 1024 for a subfolder) and depth;
//! 4. character by character: NUL and control characters, invisible and
//!    bidi characters, and characters whose NFKC form is a dot, slash or
//!    backslash (or that look like one: division and fraction slashes);
//! 5. per component: `.` and `..` (and any `..` run), empty components,
//!    absolute, drive, UNC and device paths, `:` (drives and NTFS streams),
//!    Windows reserved names (`CON`, `com1.png`, ...) and trailing dots or
//!    spaces;
//! 6. for file names: no separator of either kind, and an extension on the
//!    allowlist, compared case-insensitively.

mod checks;
mod error;
mod hash;

use std::fmt;

use self::checks::check_chars;
use self::checks::check_component;
use self::checks::decode_once;
use self::checks::extension;
pub(crate) use self::checks::is_invisible;
pub(crate) use self::error::err;
pub use self::error::{PathError, PathKind, PathRule};
pub use self::hash::{ASSET_HASH_PREFIX, AssetHash, FileOrHash};

/// Longest file name, in bytes (after decoding).
pub const MAX_NAME_BYTES: usize = 255;
/// Longest subfolder, in bytes (after decoding).
pub const MAX_SUBFOLDER_BYTES: usize = 1024;
/// Default subfolder depth limit.
pub const DEFAULT_MAX_DEPTH: usize = 8;

/// The extensions a name may have, lower-case with their dot (`.png`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extensions(Vec<String>);

impl Extensions {
    /// From a configured list; entries are lower-cased and given a leading
    /// dot if they lack one.
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(list: I) -> Self {
        let mut v: Vec<String> = list
            .into_iter()
            .map(|e| {
                let e = e.as_ref().trim().to_lowercase();
                if e.starts_with('.') { e } else { format!(".{e}") }
            })
            .filter(|e| e.len() > 1)
            .collect();
        v.sort();
        v.dedup();
        Self(v)
    }

    /// The peer's default image list: `.png .jpg .jpeg .webp .gif .json`.
    #[must_use]
    pub fn images() -> Self {
        Self::new([".png", ".jpg", ".jpeg", ".webp", ".gif", ".json"])
    }

    /// The peer's default model list: `.safetensors .ckpt .pt .pth .bin`.
    #[must_use]
    pub fn models() -> Self {
        Self::new([".safetensors", ".ckpt", ".pt", ".pth", ".bin"])
    }

    /// Whether `ext` (with its dot, any case) is allowed.
    #[must_use]
    pub fn allows(&self, ext: &str) -> bool {
        let ext = ext.to_lowercase();
        self.0.contains(&ext)
    }

    /// The allowed extensions, sorted.
    #[must_use]
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// A file name that is safe to send to ComfyUI or join to a folder: one
/// component, decoded, no traversal, an allowed extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SafeFileName(String);

impl SafeFileName {
    /// Checks `raw` against every rule; `raw` may be percent-encoded once.
    ///
    /// # Errors
    /// [`PathError`] naming the first rule broken.
    pub fn parse(raw: &str, extensions: &Extensions) -> Result<Self, PathError> {
        let fail = |rule, detail: &str| err(PathKind::FileName, rule, detail, raw);
        let name = decode_once(raw).map_err(|(rule, detail)| fail(rule, detail))?;
        if name.is_empty() {
            return Err(fail(PathRule::Empty, "the name is empty"));
        }
        check_size_and_chars(&name, MAX_NAME_BYTES, &fail)?;
        if name.contains(['/', '\\']) {
            return Err(fail(PathRule::Separator, "a file name cannot contain `/` or `\\`"));
        }
        check_component(&name).map_err(|(rule, detail)| fail(rule, detail))?;
        let ext = extension(&name).unwrap_or("");
        if ext.is_empty() || !extensions.allows(ext) {
            let detail = format!(
                "extension `{}` is not allowed (allowed: {})",
                ext,
                extensions.as_slice().join(", ")
            );
            return Err(fail(PathRule::Extension, &detail));
        }
        Ok(Self(name))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The extension, lower-case, with its dot.
    #[must_use]
    pub fn extension(&self) -> String {
        extension(&self.0).unwrap_or("").to_lowercase()
    }
}

impl fmt::Display for SafeFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A subfolder that is safe to send to ComfyUI: relative, `/`-separated
/// components (a `\` is read as `/`), none of them traversal, at most a
/// given depth. Empty means the folder itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SafeSubfolder(String);

impl SafeSubfolder {
    /// Checks `raw` with the default depth limit.
    ///
    /// # Errors
    /// [`PathError`] naming the first rule broken.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        Self::parse_with_depth(raw, DEFAULT_MAX_DEPTH)
    }

    /// Checks `raw`, allowing at most `max_depth` components.
    ///
    /// # Errors
    /// [`PathError`] naming the first rule broken.
    pub fn parse_with_depth(raw: &str, max_depth: usize) -> Result<Self, PathError> {
        let fail = |rule, detail: &str| err(PathKind::Subfolder, rule, detail, raw);
        let decoded = decode_once(raw).map_err(|(rule, detail)| fail(rule, detail))?;
        check_size_and_chars(&decoded, MAX_SUBFOLDER_BYTES, &fail)?;
        let unified = decoded.replace('\\', "/");
        if unified.starts_with('/') {
            return Err(fail(
                PathRule::Absolute,
                "an absolute, UNC or device path is not a subfolder",
            ));
        }
        let trimmed = unified.strip_suffix('/').unwrap_or(&unified);
        if trimmed.is_empty() {
            return Ok(Self::default());
        }
        let parts: Vec<&str> = trimmed.split('/').collect();
        if parts.len() > max_depth {
            return Err(fail(
                PathRule::TooDeep,
                &format!("{} levels deep (at most {max_depth})", parts.len()),
            ));
        }
        for part in &parts {
            if part.is_empty() {
                return Err(fail(PathRule::Separator, "an empty component (`//`)"));
            }
            check_component(part).map_err(|(rule, detail)| fail(rule, detail))?;
        }
        Ok(Self(parts.join("/")))
    }

    /// The subfolder (`""` for none).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }
}

impl fmt::Display for SafeSubfolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name or id that becomes one segment of a ComfyUI path: a node class
/// (`/object_info/{class}`), a subgraph id (`/global_subgraphs/{id}`), a
/// model folder (`/models/{folder}`), a download task id. Nothing is
/// percent-decoded (the client encodes the segment, ComfyUI decodes it
/// once, so what is checked is what ComfyUI sees).
///
/// Rules: not empty, at most 255 bytes, no control, invisible or
/// look-alike characters, no `/` or `\\`, no `:` (the one form with a `:`
/// is [`AssetHash`], a type of its own), and not a dot segment (`.`, `..`,
/// or dots alone).
///
/// ```
/// use comfy_guard::path::{PathRule, SafeName};
/// assert_eq!(SafeName::parse("KSampler").unwrap().as_str(), "KSampler");
/// assert!(SafeName::parse("Image Blend (v2) | pysssss").is_ok());
/// assert_eq!(SafeName::parse("..").unwrap_err().rule, PathRule::Traversal);
/// assert_eq!(SafeName::parse("a/b").unwrap_err().rule, PathRule::Separator);
/// assert_eq!(SafeName::parse("x:stream").unwrap_err().rule, PathRule::Absolute);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SafeName(String);

impl SafeName {
    /// Checks `raw` (taken as it is, never decoded).
    ///
    /// # Errors
    /// [`PathError`] naming the first rule broken.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        check_segment(raw, PathKind::Name).map(|()| Self(raw.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SafeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// At most `max` bytes, then [`check_chars`]; `fail` makes the error.
fn check_size_and_chars(s: &str, max: usize, fail: &dyn Fn(PathRule, &str) -> PathError) -> Result<(), PathError> {
    if s.len() > max {
        return Err(fail(PathRule::TooLong, &format!("longer than {max} bytes")));
    }
    check_chars(s).map_err(|(rule, detail)| fail(rule, detail))
}

/// One segment's rules (see [`SafeName`]).
fn check_segment(raw: &str, kind: PathKind) -> Result<(), PathError> {
    let fail = |rule, detail: &str| err(kind, rule, detail, raw);
    if raw.is_empty() {
        return Err(fail(PathRule::Empty, "the name is empty"));
    }
    check_size_and_chars(raw, MAX_NAME_BYTES, &fail)?;
    if raw.contains(['/', '\\']) {
        return Err(fail(PathRule::Separator, "a name cannot contain `/` or `\\`"));
    }
    if raw.chars().all(|c| c == '.') {
        return Err(fail(PathRule::Traversal, "a `.` or `..` segment"));
    }
    if raw.contains(':') {
        return Err(fail(PathRule::Absolute, "a `:` (drive letter or NTFS stream)"));
    }
    Ok(())
}

/// A model file as ComfyUI lists it in its folder: a file name, possibly
/// under subfolders (`SDXL/model.safetensors`; a Windows server lists
/// `SDXL\\model.safetensors`, and either separator is read as one). Each
/// component follows the file name rules: no `.` or `..`, no `:` (so no
/// NTFS stream such as `name:stream`), no reserved device names, no
/// trailing dot or space, no control, invisible or look-alike characters.
/// Not absolute, at most 1024 bytes and [`DEFAULT_MAX_DEPTH`] levels.
/// Nothing is percent-decoded.
///
/// ```
/// use comfy_guard::path::{PathRule, SafeModelFile};
/// assert!(SafeModelFile::parse("SDXL/juggernaut.safetensors").is_ok());
/// assert_eq!(SafeModelFile::parse("m.safetensors:x").unwrap_err().rule, PathRule::Absolute);
/// assert_eq!(SafeModelFile::parse("../m.ckpt").unwrap_err().rule, PathRule::Traversal);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SafeModelFile(String);

impl SafeModelFile {
    /// Checks `raw`.
    ///
    /// # Errors
    /// [`PathError`] naming the first rule broken.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        let fail = |rule, detail: &str| err(PathKind::ModelFile, rule, detail, raw);
        if raw.is_empty() {
            return Err(fail(PathRule::Empty, "the name is empty"));
        }
        check_size_and_chars(raw, MAX_SUBFOLDER_BYTES, &fail)?;
        if raw.starts_with(['/', '\\']) {
            return Err(fail(PathRule::Absolute, "an absolute, UNC or device path"));
        }
        let parts: Vec<&str> = raw.split(['/', '\\']).collect();
        if parts.len() > DEFAULT_MAX_DEPTH + 1 {
            return Err(fail(
                PathRule::TooDeep,
                &format!("{} levels deep (at most {})", parts.len(), DEFAULT_MAX_DEPTH + 1),
            ));
        }
        for part in &parts {
            if part.is_empty() {
                return Err(fail(PathRule::Separator, "an empty component (`//` or a trailing `/`)"));
            }
            check_component(part).map_err(|(rule, detail)| fail(rule, detail))?;
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The extension of the last component, lower-case, with its dot (`""`
    /// when it has none).
    #[must_use]
    pub fn extension(&self) -> String {
        let last = self.0.rsplit(['/', '\\']).next().unwrap_or(&self.0);
        extension(last).unwrap_or("").to_lowercase()
    }
}

impl fmt::Display for SafeModelFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a path a node resolves against its own folder (a save prefix
/// such as `renders/cat`, a load path): it must stay inside that folder.
/// Unlike [`SafeSubfolder`], nothing is percent-decoded (ComfyUI does not
/// decode these), and the last component may be any prefix.
///
/// # Errors
/// [`PathError`] naming the rule: absolute, drive, UNC or device paths,
/// `..` or `.` components, control, invisible or look-alike characters.
///
/// ```
/// use comfy_guard::path::{PathRule, check_node_path};
/// assert!(check_node_path("renders/%year%/cat").is_ok());
/// assert_eq!(check_node_path("../../.ssh/x").unwrap_err().rule, PathRule::Traversal);
/// assert_eq!(check_node_path("C:\\Windows\\x").unwrap_err().rule, PathRule::Absolute);
/// ```
pub fn check_node_path(raw: &str) -> Result<(), PathError> {
    let fail = |rule, detail: &str| err(PathKind::NodePath, rule, detail, raw);
    check_size_and_chars(raw, MAX_SUBFOLDER_BYTES, &fail)?;
    let unified = raw.replace('\\', "/");
    let bytes = unified.as_bytes();
    if unified.starts_with('/') || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':') {
        return Err(fail(
            PathRule::Absolute,
            "an absolute, drive, UNC or device path leaves the folder",
        ));
    }
    if unified
        .split('/')
        .any(|part| matches!(part.trim_end_matches([' ', '.']), "" if !part.is_empty()))
    {
        return Err(fail(PathRule::Traversal, "a `.` or `..` component"));
    }
    Ok(())
}
