//! Node class names: the default dangerous list and look-alike detection.
//!
//! ComfyUI resolves a class by exact bytes, so the lists are compared
//! byte-exactly. A name that is not on a list but *looks* like a listed
//! dangerous one (other case, Unicode confusables, invisible characters,
//! separators, a copy suffix) is a finding of its own: either a renamed
//! copy of the dangerous node or bait for a human reviewer.

use std::collections::{BTreeSet, HashMap};

use unicode_normalization::UnicodeNormalization;

use crate::path::is_invisible;

/// The peer's default `security.dangerous_nodes` (159 classes: code
/// execution, network, file system, paid API nodes), one per line.
const DEFAULT_DANGEROUS: &str = include_str!("dangerous_nodes.txt");

/// The default dangerous node classes, in the peer's order.
pub fn default_dangerous_nodes() -> impl Iterator<Item = &'static str> {
    DEFAULT_DANGEROUS.lines().filter(|l| !l.is_empty())
}

/// Latin letters that Cyrillic and Greek letters pass for.
fn confusable(c: char) -> Option<char> {
    Some(match c {
        'а' | 'α' => 'a',
        'в' | 'β' => 'b',
        'с' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'ε' => 'e',
        'ɡ' => 'g',
        'һ' | 'η' => 'h',
        'і' | 'ι' | 'ӏ' => 'i',
        'ј' => 'j',
        'κ' | 'к' => 'k',
        'м' => 'm',
        'п' => 'n',
        'о' | 'ο' | 'σ' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'υ' | 'ս' => 'u',
        'ν' => 'v',
        'ԝ' | 'ω' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'γ' => 'y',
        _ => return None,
    })
}

/// The skeleton two names share when one passes for the other: NFKC,
/// no invisible characters, confusables mapped to Latin, lower case, copy
/// markers removed (`copy`, `(2)`, ` 2`, `_3`: digits set apart by a
/// separator, so `IdeogramV1` stays distinct from `IdeogramV3`), and only
/// letters and digits kept.
pub(crate) fn skeleton(name: &str) -> String {
    let mut folded = String::with_capacity(name.len());
    for c in name.nfkc().filter(|c| !is_invisible(*c)) {
        for lower in c.to_lowercase() {
            folded.push(confusable(lower).unwrap_or(lower));
        }
    }
    let is_sep = |c: char| !c.is_alphanumeric();
    let mut rest = folded.as_str();
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
    rest.chars().filter(char::is_ascii_alphanumeric).collect()
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
    use super::{default_dangerous_nodes, skeleton};

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
        for disguised in [
            "terminal",
            "TERMINAL",
            "Тerminal",
            "Ter\u{200b}minal",
            "Terminal_copy",
            "Terminal (2)",
            "Terminal 2 copy",
            "Ｔｅｒｍｉｎａｌ",
            "Term-inal",
        ] {
            assert_eq!(skeleton(disguised), "terminal", "{disguised}");
        }
        assert_eq!(skeleton("IdeogramV1"), "ideogramv1");
        assert_eq!(skeleton("Terminal2"), "terminal2");
    }
}
