//! Node class names: the default dangerous list, look-alike detection and
//! names that cannot be vouched for.
//!
//! ComfyUI resolves a class by exact bytes, so the lists are compared
//! byte-exactly. A name that is not on a list but *looks* like a listed
//! dangerous one is a finding of its own: either a renamed copy of the
//! dangerous node or bait for a human reviewer. "Looks like" is decided on
//! a key built from Unicode's own data rather than a hand-made map:
//! 1. invisible and bidi-control characters are dropped (after reading a
//!    right-to-left override the way it is displayed);
//! 2. NFKC folds compatibility forms (full-width letters, ligatures);
//! 3. the UTS #39 skeleton (`unicode-security`, Unicode's
//!    `confusables.txt`) maps every confusable to its prototype: Cyrillic,
//!    Greek, Armenian and Cherokee letters, small capitals, dotless i,
//!    digits that pass for letters (`1` for `l`, `0` for `O`); it
//!    decomposes first, so a combining mark that composes into another
//!    letter falls away with the rest of the non-ASCII; small capitals,
//!    which UTS #39 keeps apart, are read as their letter by their
//!    Unicode name;
//! 4. lower case (then the skeleton again, and `l` read as `i`, as the
//!    skeleton of `I` is `l`), then copy markers are removed (`Copy of X`, `X copy`,
//!    `X (2)`, `X_2`);
//! 5. everything but ASCII letters and digits is dropped.
//!
//! Separately, [`suspicious_characters`] says why a name with non-ASCII or
//! control characters cannot be vouched for (the caller reports it unless
//! the server's catalog has that exact name).

use std::collections::{BTreeSet, HashMap};

use unicode_normalization::UnicodeNormalization;
use unicode_security::MixedScript;

use crate::path::is_invisible;

/// The peer's default `security.dangerous_nodes` (159 classes: code
/// execution, network, file system, paid API nodes), one per line.
const DEFAULT_DANGEROUS: &str = include_str!("dangerous_nodes.txt");

/// The default dangerous node classes, in the peer's order.
pub fn default_dangerous_nodes() -> impl Iterator<Item = &'static str> {
    DEFAULT_DANGEROUS.lines().filter(|l| !l.is_empty())
}

/// Longest class name a key is built for (longer names are keyed on their
/// first part; no real class name comes near).
const MAX_NAME: usize = 512;

/// Explicit directional formatting characters that reverse what follows.
fn is_reversing(c: char) -> bool {
    matches!(c, '\u{202E}' | '\u{2067}' | '\u{202B}')
}

/// The name in the order it is displayed when it holds a right-to-left
/// override or isolate (the characters after it, up to its end mark,
/// reversed); `None` when it holds none.
fn displayed(name: &str) -> Option<String> {
    if !name.chars().any(is_reversing) {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<char> = Vec::new();
    let mut reversing = false;
    for c in name.chars() {
        if is_reversing(c) {
            reversing = true;
        } else if reversing && matches!(c, '\u{202C}' | '\u{2069}') {
            out.extend(run.drain(..).rev());
            reversing = false;
        } else if reversing {
            run.push(c);
        } else {
            out.push(c);
        }
    }
    out.extend(run.drain(..).rev());
    Some(out)
}

/// Removes copy markers: a `copy of ` prefix, and `copy`, `(2)`, ` 2`,
/// `_3` suffixes (digits set apart by a separator, so `IdeogramV3` keeps
/// its `3`). `folded` is lower case.
fn strip_copy_markers(folded: &str) -> &str {
    let is_sep = |c: char| !c.is_alphanumeric();
    let mut rest = folded.trim_matches(is_sep);
    while let Some(after) = rest.strip_prefix("copy of") {
        let after = after.trim_start_matches(is_sep);
        if after.is_empty() {
            break;
        }
        rest = after;
    }
    loop {
        let trimmed = rest.trim_end_matches(is_sep);
        let stripped = if let Some(before) = trimmed.strip_suffix("copy") {
            Some(before)
        } else {
            let before = trimmed.trim_end_matches(|c: char| c.is_ascii_digit());
            (before.len() < trimmed.len() && before.ends_with(is_sep)).then_some(before)
        };
        match stripped {
            Some(before) if !before.trim_end_matches(is_sep).is_empty() => rest = before,
            _ => break,
        }
    }
    rest
}

/// The key two names share when one passes for the other (see the module
/// documentation).
pub(crate) fn skeleton(name: &str) -> String {
    let name = truncate(name, MAX_NAME);
    let shown = displayed(name);
    let name = shown.as_deref().unwrap_or(name);
    let visible: String = name.nfkc().filter(|c| !is_invisible(*c)).collect();
    // The skeleton keeps case (`I` is `l`, `m` is `rn`, `M` is `M`): take
    // it, lower the case, take it again, and read `l` as `i` so that the
    // case of the letters cannot tell two keys apart.
    let once: String = unicode_security::skeleton(&visible)
        .flat_map(char::to_lowercase)
        .collect();
    let folded: String = unicode_security::skeleton(&once)
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'l' => 'i',
            c if c.is_ascii() => c,
            c => small_capital(c).unwrap_or(c),
        })
        .collect();
    strip_copy_markers(&folded)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// The letter a small capital stands for, by its Unicode name (`LATIN
/// LETTER SMALL CAPITAL T` is `t`). UTS #39 keeps small capitals apart from
/// their letters; in a class name they pass for them.
fn small_capital(c: char) -> Option<char> {
    let name = unicode_names2::name(c)?.to_string();
    let letter = name.strip_prefix("LATIN LETTER SMALL CAPITAL ")?;
    let mut chars = letter.chars();
    match (chars.next(), chars.next()) {
        (Some(l), None) => Some(l.to_ascii_lowercase()),
        _ => None,
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// Why a class name holds characters the inspector cannot vouch for:
/// control characters, invisible or bidi-control characters, or any other
/// non-ASCII (with the scripts it mixes). `None` for plain ASCII names.
pub(crate) fn suspicious_characters(name: &str) -> Option<String> {
    if name.is_ascii() && !name.chars().any(|c| c.is_ascii_control()) {
        return None;
    }
    if name.chars().any(char::is_control) {
        return Some("the class name holds control characters".to_owned());
    }
    if name.chars().any(is_invisible) {
        return Some("the class name holds invisible or bidi-control characters".to_owned());
    }
    if name.is_single_script() {
        Some("the class name holds non-ASCII characters".to_owned())
    } else {
        Some("the class name holds non-ASCII characters and mixes scripts".to_owned())
    }
}

/// The dangerous list with the skeleton index used for look-alikes.
#[derive(Debug, Clone)]
pub(crate) struct DangerousIndex {
    exact: BTreeSet<String>,
    skeletons: HashMap<String, String>,
}

impl DangerousIndex {
    pub(crate) fn new(names: &BTreeSet<String>) -> Self {
        let mut skeletons = HashMap::new();
        for name in names {
            let key = skeleton(name);
            if key.len() >= 3 {
                skeletons.entry(key).or_insert_with(|| name.clone());
            }
        }
        Self {
            exact: names.clone(),
            skeletons,
        }
    }

    pub(crate) fn names(&self) -> &BTreeSet<String> {
        &self.exact
    }

    pub(crate) fn is_dangerous(&self, class: &str) -> bool {
        self.exact.contains(class)
    }

    /// The listed dangerous class `class` passes for, when it is not one.
    pub(crate) fn lookalike_of(&self, class: &str) -> Option<&str> {
        if self.exact.contains(class) {
            return None;
        }
        self.skeletons.get(&skeleton(class)).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::{default_dangerous_nodes, skeleton, suspicious_characters};

    #[test]
    fn the_default_list_is_the_peers() {
        let names: Vec<&str> = default_dangerous_nodes().collect();
        assert_eq!(names.len(), 159);
        assert_eq!(names[0], "Terminal");
        assert!(names.contains(&"Equation1param _O"));
        assert!(names.contains(&"Veo3FirstLastFrameNode"));
    }

    #[test]
    fn skeletons_fold_disguises() {
        let terminal = skeleton("Terminal");
        for disguised in [
            "terminal",
            "TERMINAL",
            "Тerminal",
            "Ter\u{200b}minal",
            "Terminal_copy",
            "Terminal (2)",
            "Terminal 2 copy",
            "Copy of Terminal",
            "Ｔｅｒｍｉｎａｌ",
            "Term-inal",
            // Cherokee Ꭲ, small capital ᴛ, dotless ı.
            "\u{13A2}erminal",
            "\u{1D1B}erminal",
            "Term\u{0131}nal",
            // ı with a combining dot above reads as i.
            "Term\u{0131}\u{0307}nal",
            // Digits for letters.
            "Termina1",
            // Shown as "Terminal": a right-to-left override before the
            // reversed name.
            "\u{202E}lanimreT",
        ] {
            assert_eq!(skeleton(disguised), terminal, "{disguised:?}");
        }
        // Armenian օ for o.
        assert_eq!(skeleton("KY_Eval_Pyth\u{0585}n"), skeleton("KY_Eval_Python"));
        assert_ne!(skeleton("IdeogramV1"), skeleton("IdeogramV3"));
        assert_ne!(skeleton("Terminal2"), terminal);
    }

    #[test]
    fn names_outside_ascii_are_explained() {
        assert_eq!(suspicious_characters("KSampler"), None);
        assert!(suspicious_characters("K\u{0}Sampler").unwrap().contains("control"));
        assert!(suspicious_characters("K\u{200b}Sampler").unwrap().contains("invisible"));
        assert!(suspicious_characters("Кsampler").unwrap().contains("mixes scripts"));
        assert!(suspicious_characters("画像ローダー").is_some());
    }
}
