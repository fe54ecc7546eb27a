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

use std::fmt;

use unicode_normalization::UnicodeNormalization as _;

/// Longest file name, in bytes (after decoding).
pub const MAX_NAME_BYTES: usize = 255;
/// Longest subfolder, in bytes (after decoding).
pub const MAX_SUBFOLDER_BYTES: usize = 1024;
/// Default subfolder depth limit.
pub const DEFAULT_MAX_DEPTH: usize = 8;

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
        if name.len() > MAX_NAME_BYTES {
            return Err(fail(PathRule::TooLong, "longer than 255 bytes"));
        }
        check_chars(&name).map_err(|(rule, detail)| fail(rule, detail))?;
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
        if decoded.len() > MAX_SUBFOLDER_BYTES {
            return Err(fail(PathRule::TooLong, "longer than 1024 bytes"));
        }
        check_chars(&decoded).map_err(|(rule, detail)| fail(rule, detail))?;
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

/// One segment's rules (see [`SafeName`]).
fn check_segment(raw: &str, kind: PathKind) -> Result<(), PathError> {
    let fail = |rule, detail: &str| err(kind, rule, detail, raw);
    if raw.is_empty() {
        return Err(fail(PathRule::Empty, "the name is empty"));
    }
    if raw.len() > MAX_NAME_BYTES {
        return Err(fail(PathRule::TooLong, "longer than 255 bytes"));
    }
    check_chars(raw).map_err(|(rule, detail)| fail(rule, detail))?;
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
        if raw.len() > MAX_SUBFOLDER_BYTES {
            return Err(fail(PathRule::TooLong, "longer than 1024 bytes"));
        }
        check_chars(raw).map_err(|(rule, detail)| fail(rule, detail))?;
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
    if raw.len() > MAX_SUBFOLDER_BYTES {
        return Err(fail(PathRule::TooLong, "longer than 1024 bytes"));
    }
    check_chars(raw).map_err(|(rule, detail)| fail(rule, detail))?;
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

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `%XX` at `i` of `b`, if there is one.
fn percent_at(b: &[u8], i: usize) -> Option<u8> {
    if b.get(i) != Some(&b'%') {
        return None;
    }
    Some(hex(*b.get(i + 1)?)? * 16 + hex(*b.get(i + 2)?)?)
}

/// Decodes `%XX` sequences once. A `%` not followed by two hex digits is
/// kept as it is (`100%.png`); a result that still holds a `%XX` is
/// double encoding and refused.
fn decode_once(raw: &str) -> Result<String, (PathRule, &'static str)> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let Some(v) = percent_at(b, i) {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    if (0..out.len()).any(|i| percent_at(&out, i).is_some()) {
        return Err((PathRule::DoubleEncoding, "percent-encoded twice"));
    }
    String::from_utf8(out).map_err(|_| (PathRule::InvalidUtf8, "not valid UTF-8 once decoded"))
}

/// Characters that render as nothing (zero-width, bidi controls, tags,
/// variation selectors, soft hyphen).
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFFB}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Characters that pass for a dot or a slash without normalising to one.
fn is_lookalike(c: char) -> bool {
    matches!(
        c,
        '\u{2044}'
            | '\u{2215}'
            | '\u{2216}'
            | '\u{29F5}'
            | '\u{29F8}'
            | '\u{29F9}'
            | '\u{FE68}'
            | '\u{2024}'
            | '\u{2025}'
            | '\u{FE52}'
            | '\u{FF0E}'
            | '\u{FF0F}'
            | '\u{FF3C}'
    )
}

/// Punctuation of ordinary text that no file system or ComfyUI maps to a
/// dot: the ellipsis (NFKC makes it `...`, but nothing applies NFKC to
/// paths) and the ideographic full stops of CJK file names.
fn is_text_punctuation(c: char) -> bool {
    matches!(c, '\u{2026}' | '\u{3002}' | '\u{FF61}')
}

fn check_chars(s: &str) -> Result<(), (PathRule, &'static str)> {
    for c in s.chars() {
        if c.is_control() {
            return Err((PathRule::ControlCharacter, "a NUL or control character"));
        }
        if is_invisible(c) {
            return Err((PathRule::InvisibleCharacter, "an invisible or bidi-control character"));
        }
        if !c.is_ascii()
            && !is_text_punctuation(c)
            && (is_lookalike(c) || c.nfkc().any(|n| matches!(n, '.' | '/' | '\\')))
        {
            return Err((
                PathRule::LookalikeCharacter,
                "a character that stands for `.`, `/` or `\\`",
            ));
        }
    }
    Ok(())
}

/// Rules for one component (a file name, or one level of a subfolder).
fn check_component(part: &str) -> Result<(), (PathRule, &'static str)> {
    if part == "." || part.contains("..") {
        return Err((PathRule::Traversal, "`.` or `..`"));
    }
    if part.contains(':') {
        return Err((PathRule::Absolute, "a `:` (drive letter or NTFS stream)"));
    }
    if part.ends_with(['.', ' ']) {
        return Err((PathRule::TrailingDotOrSpace, "ends with a dot or a space"));
    }
    if is_reserved(part) {
        return Err((PathRule::ReservedName, "a Windows reserved device name"));
    }
    Ok(())
}

/// `CON`, `PRN`, `AUX`, `NUL`, `COM0`-`COM9`, `LPT0`-`LPT9` (and the
/// superscript-digit forms Windows also reserves), alone or before an
/// extension, any case.
fn is_reserved(part: &str) -> bool {
    let stem = part.split('.').next().unwrap_or(part).trim_end_matches(' ');
    let upper = stem.to_uppercase();
    if matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$") {
        return true;
    }
    let mut chars = upper.chars();
    let prefix: String = chars.by_ref().take(3).collect();
    let rest: Vec<char> = chars.collect();
    (prefix == "COM" || prefix == "LPT")
        && matches!(rest.as_slice(), [d] if d.is_ascii_digit() || matches!(d, '\u{00B9}' | '\u{00B2}' | '\u{00B3}'))
}

/// The last `.ext` of a name (with the dot), if it has one after a stem.
fn extension(name: &str) -> Option<&str> {
    let dot = name.rfind('.')?;
    (dot > 0).then(|| &name[dot..])
}
