//! The low-level rules the parsers share: percent-decoding once, the
//! character checks (control, invisible, look-alike) and the per-component
//! checks (dots, drives, reserved device names), and the extension.

use unicode_normalization::UnicodeNormalization as _;

use super::error::PathRule;

pub(super) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `%XX` at `i` of `b`, if there is one.
pub(super) fn percent_at(b: &[u8], i: usize) -> Option<u8> {
    if b.get(i) != Some(&b'%') {
        return None;
    }
    Some(hex(*b.get(i + 1)?)? * 16 + hex(*b.get(i + 2)?)?)
}

/// Decodes `%XX` sequences once. A `%` not followed by two hex digits is
/// kept as it is (`100%.png`); a result that still holds a `%XX` is
/// double encoding and refused.
pub(super) fn decode_once(raw: &str) -> Result<String, (PathRule, &'static str)> {
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
pub(super) fn is_lookalike(c: char) -> bool {
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
pub(super) fn is_text_punctuation(c: char) -> bool {
    matches!(c, '\u{2026}' | '\u{3002}' | '\u{FF61}')
}

pub(super) fn check_chars(s: &str) -> Result<(), (PathRule, &'static str)> {
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
pub(super) fn check_component(part: &str) -> Result<(), (PathRule, &'static str)> {
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
pub(super) fn is_reserved(part: &str) -> bool {
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
pub(super) fn extension(name: &str) -> Option<&str> {
    let dot = name.rfind('.')?;
    (dot > 0).then(|| &name[dot..])
}
