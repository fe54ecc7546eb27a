//! Finding Python and shell code in a string by parsing it.
//!
//! The peer matches a few words (`eval(`, `subprocess`, ...) in the raw
//! string, which a comment, a line continuation, `(exec)(...)` or an
//! encoding defeats, while prompts such as "tourists and locals
//! (crowd:1.2)" trip it. Here a string is judged as the program Python or
//! a shell would run:
//! - `python`: parsed with Ruff's Python parser; a program that uses an
//!   evaluating or reflective builtin, imports a system module, walks
//!   dunders or opens files is code. Text that does not parse is parsed
//!   line by line, and what still fails is judged on its Python tokens.
//! - `shell`: cut into commands and split into words as `sh` does; a
//!   shell, network tool or interpreter told to run something is code.
//! - `decode`: the same judgement after every decoding a node could
//!   apply (escapes, percent, rot13, base64, base85, hex, zlib), nested up
//!   to [`MAX_LAYERS`] deep within one fixed budget per string; and after
//!   NFKC normalisation with invisible characters removed.
//!
//! The cheap path stays cheap: one regular-expression scan for the words
//! any of this needs (and their rot13 forms) and one scan for encoded
//! blobs decide whether a string is looked at any closer; most prompts
//! stop there.
//!
//! What this does not promise: a node that computes its program from
//! inputs the inspector cannot evaluate (a model's output, a file's
//! content), or a language other than Python and POSIX/PowerShell command
//! lines, is out of its reach (see `docs/security.md`).

mod decode;
mod python;
mod shell;

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use unicode_normalization::UnicodeNormalization;

use self::decode::Budget;
use crate::path::is_invisible;

/// What was found, and how it was hidden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeHit {
    /// The construct, e.g. `a use of an evaluating or reflective builtin`.
    pub what: &'static str,
    /// The decodings applied before it showed (outermost first); empty when
    /// it was plain.
    pub hidden_by: Vec<&'static str>,
}

impl CodeHit {
    /// `a call of eval`, or `a call of eval (after base64)`.
    pub fn describe(&self) -> String {
        if self.hidden_by.is_empty() {
            self.what.to_owned()
        } else {
            format!("{} (after {})", self.what, self.hidden_by.join(", then "))
        }
    }
}

/// How many decodings deep a hidden payload is followed (five nested
/// encodings and a normalisation).
pub const MAX_LAYERS: usize = 6;
/// How much text the Python parser reads per inspected string, decodings
/// included; text that still holds trigger words past it is reported.
const PARSE_BUDGET: usize = 256 * 1024;

/// Words without which a string cannot be Python that reaches the system.
fn python_words() -> String {
    let mut words: Vec<&str> = vec![
        "eval",
        "exec",
        "execfile",
        "compile",
        "open",
        "globals",
        "locals",
        "vars",
        "getattr",
        "setattr",
        "delattr",
        "breakpoint",
        "import",
    ];
    words.extend(python::WALK_MODULES);
    format!(r"(?-u:\b)(?:{})(?-u:\b)|__\w+__", words.join("|"))
}

/// Words without which a string cannot be a dangerous command line.
const SHELL_WORDS: &str = r"/dev/(?:tcp|udp)/|(?-u:\b)(?:sh|bash|zsh|dash|ksh|fish|csh|tcsh|ash|mksh|nc|ncat|netcat|socat|telnet|ssh|scp|sftp|ftp|tftp|curl|wget|fetch|aria2c|pwsh|powershell|cmd|mshta|rundll32|regsvr32|certutil|bitsadmin|wscript|cscript|rm|chmod|chown|mkfifo|mknod|dd|base64|xxd|openssl|whoami|id|uname|hostname|ifconfig|crontab|systemctl|useradd|passwd|iptables|kill|pkill|killall|reboot|shutdown|awk|gawk|find|xterm|python[0-9.]*|py|perl|ruby|php|node|nodejs|lua|deno|bun|osascript)(?-u:\b)";

/// 0: Python words, 1: shell words, 2: Python words in rot13, 3: shell
/// words in rot13.
static TRIGGERS: LazyLock<(Regex, RegexSet)> = LazyLock::new(|| {
    let py = python_words();
    let sh = SHELL_WORDS.to_owned();
    // The table is fixed and tested; a failure here is a programming error
    // caught by every test that scans a string.
    #[allow(
        clippy::expect_used,
        reason = "constant patterns, compiled once and covered by tests"
    )]
    let patterns = [py.clone(), sh.clone(), rot13_pattern(&py), rot13_pattern(&sh)];
    #[allow(
        clippy::expect_used,
        reason = "constant patterns, compiled once and covered by tests"
    )]
    let any = Regex::new(&patterns.join("|")).expect("trigger patterns compile");
    #[allow(
        clippy::expect_used,
        reason = "constant patterns, compiled once and covered by tests"
    )]
    let set = RegexSet::new(patterns).expect("trigger patterns compile");
    (any, set)
});

/// Which trigger patterns `s` matches; the single pattern first, so text
/// with none (most prompts) costs one scan that stops early.
fn triggers(s: &str) -> regex::SetMatches {
    let (any, set) = &*TRIGGERS;
    if any.is_match(s) {
        set.matches(s)
    } else {
        set.matches("")
    }
}

/// A pattern matching the rot13 form of the words in `pattern` (letters
/// outside escapes and classes are rotated).
fn rot13_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut escaped = false;
    let mut in_group_flag = false;
    for c in pattern.chars() {
        if escaped {
            out.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                out.push(c);
            }
            '?' => {
                in_group_flag = true;
                out.push(c);
            }
            ':' | ')' => {
                in_group_flag = false;
                out.push(c);
            }
            c if in_group_flag => out.push(c),
            c => out.push_str(&decode::rot13(&c.to_string())),
        }
    }
    out
}

/// Most strings a cache may hold verdicts for; past it, strings are judged
/// without being remembered.
const CACHE_MAX: usize = 4096;

/// [`find_code`] with a memory: in one workflow the same strings repeat
/// (prompts, model names), and each distinct string that needs more than
/// the cheap check is judged once. Strings the cheap check clears are not
/// stored.
#[derive(Debug, Default)]
pub struct CodeCache {
    seen: HashMap<Box<str>, Option<CodeHit>>,
}

impl CodeCache {
    /// The verdict on `s`, as [`find_code`] gives it.
    pub fn find(&mut self, s: &str) -> Option<CodeHit> {
        if cheaply_clear(s) {
            return None;
        }
        if let Some(known) = self.seen.get(s) {
            return known.clone();
        }
        let verdict = find_code(s);
        if self.seen.len() < CACHE_MAX {
            self.seen.insert(s.into(), verdict.clone());
        }
        verdict
    }
}

/// Whether `s` cannot hold code: ASCII, no trigger word, nothing that
/// could be encoded (one scan each, no allocation).
fn cheaply_clear(s: &str) -> bool {
    s.is_ascii() && !TRIGGERS.0.is_match(s) && !decode::might_be_encoded(s)
}

/// Looks for code in `s` as written, normalised, and as it decodes.
pub fn find_code(s: &str) -> Option<CodeHit> {
    let mut work = Work {
        budget: Budget::new(),
        parsed: 0,
    };
    find(s, 0, &mut work)
}

struct Work {
    budget: Budget,
    /// Bytes handed to the Python parser so far.
    parsed: usize,
}

fn hit(what: &'static str, how: Option<&'static str>) -> CodeHit {
    CodeHit {
        what,
        hidden_by: how.into_iter().collect(),
    }
}

fn find(s: &str, layer: usize, work: &mut Work) -> Option<CodeHit> {
    find_in(s, layer, work, false)
}

/// `rotated`: `s` is the rot13 of the text above it (so it is not rotated
/// back).
fn find_in(s: &str, layer: usize, work: &mut Work, rotated: bool) -> Option<CodeHit> {
    let triggers = triggers(s);
    if (triggers.matched(0) || triggers.matched(1))
        && let Some(what) = judge(s, triggers.matched(0), triggers.matched(1), work)
    {
        return Some(hit(what, None));
    }
    if !s.is_ascii() {
        let normal: String = s.nfkc().filter(|c| !is_invisible(*c)).collect();
        if normal != s
            && layer < MAX_LAYERS
            && let Some(mut h) = find(&normal, layer + 1, work)
        {
            h.hidden_by.insert(0, "Unicode normalisation");
            return Some(h);
        }
    }
    if layer >= MAX_LAYERS {
        return None;
    }
    let encoded = decode::might_be_encoded(s);
    let candidates = if encoded {
        decode::candidates(s, &mut work.budget)
    } else {
        Vec::new()
    };
    for (name, decoded) in &candidates {
        if let Some(mut h) = find(decoded, layer + 1, work) {
            h.hidden_by.insert(0, name);
            return Some(h);
        }
    }
    // rot13: of words (the rotated trigger words show it), or of an
    // encoded blob (a run of letters and digits that decodes to nothing
    // as it is).
    if !rotated
        && (triggers.matched(2)
            || triggers.matched(3)
            || decode::has_blob(s)
            || rotated_escapes(s)
            || decode::has_b85_run(s))
        && work.budget.try_spend()
    {
        let turned = decode::rot13(s);
        if let Some(mut h) = find_in(&turned, layer + 1, work, true) {
            h.hidden_by.insert(0, "rot13");
            return Some(h);
        }
    }
    None
}

/// Escapes or percent-encoding that rot13 turned into something else
/// (`\\k5s` for `\\x5f`, `%5S` for `%5F`).
fn rotated_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(2)
        .any(|w| w[0] == b'\\' && matches!(w[1], b'k' | b'h' | b'H' | b'A'))
        || b.windows(3)
            .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_alphanumeric())
}

/// Python and shell judgement of text that holds trigger words.
fn judge(s: &str, py: bool, sh: bool, work: &mut Work) -> Option<&'static str> {
    if py {
        for chunk in chunks(s, python::WHOLE_MAX) {
            if !triggers(chunk).matched(0) {
                continue;
            }
            if work.parsed + chunk.len() > PARSE_BUDGET {
                return Some("code-like text too long to check (over the parse budget)");
            }
            work.parsed += chunk.len();
            if let Some(what) = python::judge(chunk) {
                return Some(what);
            }
        }
    }
    if sh {
        return shell::judge(s);
    }
    None
}

/// `s` in pieces of at most `max` bytes, cut after a newline where there
/// is one (else at a character boundary).
fn chunks(s: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(nl) = rest[..cut].rfind('\n') {
            cut = nl + 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out.push(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::find_code;

    #[test]
    fn plain_prompts_are_not_code() {
        for prompt in [
            "an executive at a desk",
            "exec-style architecture, evaluation chart",
            "a photo of an open door (masterpiece:1.2), best quality",
            "system of a down concert poster",
            "import car from japan",
        ] {
            assert_eq!(find_code(prompt), None, "{prompt}");
        }
    }
}
