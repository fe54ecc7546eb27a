//! Finding Python and shell code in a string by its structure.
//!
//! The peer matches a few words (`eval(`, `subprocess`, ...) in the raw
//! string, so `ｅｖａｌ(`, `ev\u{200b}al(`, a base64 blob or
//! `getattr(__builtins__, 'ev'+'al')` pass. Here a string is judged as the
//! code ComfyUI or Python would see: after NFKC normalisation (what Python
//! applies to identifiers) with invisible characters removed, after
//! Python-style `\x`/`\u` escapes, and inside base64 and hex blobs a node
//! could decode. What counts is structure (a call of an evaluating builtin,
//! an import of a system module, a walk from a module to an attribute, a
//! dunder, a builtins lookup by name, a shell pipeline), never a bare word,
//! so prompts such as "an executive at a desk" stay clean.

use std::sync::LazyLock;

use regex::RegexSet;
use unicode_normalization::UnicodeNormalization;

use crate::path::is_invisible;

/// What was found, and how it was hidden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeHit {
    /// The construct, e.g. `a call of eval`.
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

/// Python modules whose import means system access.
const MODULES: &str = "os|sys|subprocess|socket|shutil|importlib|ctypes|pickle|cPickle|marshal|builtins|__builtin__|pty|io|posix|nt|runpy|requests|urllib|urllib2|urllib3|httplib|http|telnetlib|ftplib|smtplib|webbrowser|multiprocessing|asyncio|signal|tempfile|pathlib|glob|zipfile|tarfile|codecs|base64|dill|cloudpickle|platform|sysconfig|types|inspect|gc|code|codeop|imp|threading|_thread|select|selectors|ssl|paramiko|fcntl|resource|mmap";

/// The subset of [`MODULES`] whose names are not also English words, so a
/// walk from one (`os.system(`) is code wherever it appears.
const WALK_MODULES: &str = "os|sys|subprocess|socket|shutil|importlib|ctypes|pickle|cPickle|marshal|builtins|__builtin__|pty|io|posix|nt|runpy|urllib|urllib2|urllib3|httplib|telnetlib|ftplib|smtplib|webbrowser|multiprocessing|asyncio|tempfile|pathlib|zipfile|tarfile|codecs|base64|dill|cloudpickle|sysconfig|codeop|_thread|selectors|paramiko|fcntl|mmap";

/// The patterns, each with what it means. Order matters only for which
/// description a string gets when several match.
static PATTERNS: LazyLock<(RegexSet, Vec<&'static str>)> = LazyLock::new(|| {
    let table: Vec<(String, &'static str)> = vec![
        (
            r"\b(?:eval|exec|execfile|compile|__import__|breakpoint)\s*\(".to_owned(),
            "a call of an evaluating builtin",
        ),
        (
            r"\b(?:getattr|setattr|delattr|globals|locals|vars)\s*\(".to_owned(),
            "a reflective builtin call",
        ),
        (
            r"__(?:import|builtins|builtin|globals|subclasses|class|mro|bases?|code|dict|getattribute|reduce|reduce_ex|loader|spec|closure|func|self|module)__".to_owned(),
            "a dunder attribute",
        ),
        (
            format!(r"(?m)^[ \t]*(?:import[ \t]+(?:{MODULES})\b|from[ \t]+(?:{MODULES})(?:\.\w+)*[ \t]+import\b)"),
            "an import of a system module",
        ),
        (
            format!(r"(?m)[;:][ \t]*(?:import[ \t]+(?:{MODULES})\b|from[ \t]+(?:{MODULES})(?:\.\w+)*[ \t]+import\b)"),
            "an import of a system module",
        ),
        (
            format!(r"(?:^|[^\w.])(?:{WALK_MODULES})\s*\.\s*[A-Za-z_]\w*\s*[(\[.]"),
            "an attribute walk from a system module",
        ),
        (
            r"\bos\s*\.\s*(?:system|popen|exec\w*|spawn\w*|fork|kill|remove|unlink|rmdir|removedirs|rename|chmod|chown|environ|getenv|putenv|listdir|scandir|walk|makedirs|mkdir|startfile|dup2)\b".to_owned(),
            "an attribute walk from a system module",
        ),
        (
            r#"\[\s*['"](?:eval|exec|compile|__import__|open|system|popen|getattr|__builtins__)['"]\s*\]"#.to_owned(),
            "a builtins lookup by name",
        ),
        (r#"\bopen\s*\(\s*[rbfuRBFU]{0,2}['"]"#.to_owned(), "a file opened by name"),
        (
            r"\.\s*(?:read|write|readlines|writelines|read_text|write_text|read_bytes|write_bytes)\s*\(".to_owned(),
            "a file read or write",
        ),
        (
            r"/bin/(?:ba|z|da|k|c|tc|fi)?sh\b|/dev/(?:tcp|udp)/|/etc/(?:passwd|shadow|sudoers)\b|\bcmd(?:\.exe)?\s+/[ck]\b|\bpowershell(?:\.exe)?\s+-".to_owned(),
            "a shell command",
        ),
        (
            r"(?:^|[;&|`]|\$\()\s*(?:rm\s+-[A-Za-z]*[rf]|curl\s+\S|wget\s+\S|nc\s+-|ncat\s|netcat\s|bash\s+-|sh\s+-c\b|zsh\s+-c\b|python[23]?\s+-c\b|perl\s+-e\b|chmod\s+[+0-7]|mkfifo\b|base64\s+-d\b|whoami\b|id\s*(?:$|[;&|`)]))".to_owned(),
            "a shell command",
        ),
        (r"\|\s*(?:ba|z|da)?sh\b".to_owned(), "a shell command"),
        (r"\b(?:curl|wget)\s+(?:-\S+\s+)*https?://".to_owned(), "a shell command"),
    ];
    let (patterns, labels): (Vec<String>, Vec<&'static str>) = table.into_iter().unzip();
    // The table is fixed and tested; a failure here is a programming error
    // caught by every test that scans a string.
    #[allow(
        clippy::expect_used,
        reason = "constant patterns, compiled once and covered by tests"
    )]
    let set = RegexSet::new(patterns).expect("code patterns compile");
    (set, labels)
});

/// How many decodings deep a hidden payload is followed.
const MAX_LAYERS: usize = 3;
/// Shortest base64 or hex run worth decoding (shorter ones cannot hold a
/// meaningful payload and are common in ordinary text).
const MIN_BLOB: usize = 16;

/// Looks for code in `s` as written and as it decodes.
pub fn find_code(s: &str) -> Option<CodeHit> {
    find(s, 0)
}

fn find(s: &str, layer: usize) -> Option<CodeHit> {
    if let Some(what) = scan(s) {
        return Some(CodeHit {
            what,
            hidden_by: Vec::new(),
        });
    }
    if !s.is_ascii() {
        let normal: String = s.nfkc().filter(|c| !is_invisible(*c)).collect();
        if normal != s
            && let Some(mut hit) = find(&normal, layer + 1)
        {
            hit.hidden_by.insert(0, "Unicode normalisation");
            return Some(hit);
        }
    }
    if layer >= MAX_LAYERS {
        return None;
    }
    if s.contains('\\')
        && let Some(unescaped) = python_unescape(s)
        && let Some(mut hit) = find(&unescaped, layer + 1)
    {
        hit.hidden_by.insert(0, "escape sequences");
        return Some(hit);
    }
    for blob in blobs(s) {
        for (name, decoded) in decodings(blob) {
            if let Some(mut hit) = find(&decoded, layer + 1) {
                hit.hidden_by.insert(0, name);
                return Some(hit);
            }
        }
    }
    None
}

/// The plain scan. A cheap byte test skips strings with none of the
/// characters every pattern needs (most prompts).
fn scan(s: &str) -> Option<&'static str> {
    let worth = s
        .bytes()
        .any(|b| matches!(b, b'(' | b'.' | b'_' | b'$' | b'`' | b'|' | b'/' | b'[' | b':' | b';'))
        || s.contains("import")
        || s.contains(" -");
    if !worth {
        return None;
    }
    let (set, labels) = &*PATTERNS;
    set.matches(s).iter().next().map(|i| labels[i])
}

/// Python string-literal escapes (`\xNN`, `\uNNNN`, `\UNNNNNNNN`, `\NNN`
/// octal, and the single-character ones), as `eval` of a literal or
/// `codecs.decode(..., 'unicode_escape')` would apply them. `None` when
/// nothing changed.
fn python_unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let mut changed = false;
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&next) = chars.peek() else {
            out.push(c);
            break;
        };
        let hex_len = match next {
            'x' => Some(2),
            'u' => Some(4),
            'U' => Some(8),
            _ => None,
        };
        if let Some(len) = hex_len {
            let digits: String = chars.clone().skip(1).take(len).collect();
            if digits.len() == len
                && let Ok(code) = u32::from_str_radix(&digits, 16)
                && let Some(ch) = char::from_u32(code)
            {
                for _ in 0..=len {
                    chars.next();
                }
                out.push(ch);
                changed = true;
                continue;
            }
        } else if next.is_digit(8) {
            let digits: String = chars.clone().take(3).take_while(|d| d.is_digit(8)).collect();
            if let Ok(code) = u32::from_str_radix(&digits, 8)
                && let Some(ch) = char::from_u32(code)
            {
                for _ in 0..digits.len() {
                    chars.next();
                }
                out.push(ch);
                changed = true;
                continue;
            }
        } else if let Some(ch) = match next {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            '\'' | '"' | '\\' => Some(next),
            _ => None,
        } {
            chars.next();
            out.push(ch);
            changed = true;
            continue;
        }
        out.push(c);
    }
    changed.then_some(out)
}

/// Runs of base64 or hex alphabet long enough to hold a payload.
fn blobs(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_')))
        .filter(|run| run.len() >= MIN_BLOB)
}

/// The text a blob decodes to, under each encoding that accepts it.
fn decodings(blob: &str) -> Vec<(&'static str, String)> {
    use data_encoding::{BASE64_NOPAD, BASE64URL_NOPAD, HEXLOWER_PERMISSIVE};
    let mut out = Vec::new();
    let bytes = blob.as_bytes();
    if bytes.len().is_multiple_of(2)
        && bytes.iter().all(u8::is_ascii_hexdigit)
        && let Ok(raw) = HEXLOWER_PERMISSIVE.decode(bytes)
        && let Ok(text) = String::from_utf8(raw)
    {
        out.push(("hex", text));
    }
    // Padding is optional in practice; decoders without it accept both.
    let trimmed = blob.trim_end_matches('=');
    let decoded = BASE64_NOPAD
        .decode(trimmed.as_bytes())
        .or_else(|_| BASE64URL_NOPAD.decode(trimmed.as_bytes()));
    if let Ok(raw) = decoded
        && let Ok(text) = String::from_utf8(raw)
    {
        out.push(("base64", text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{find_code, python_unescape};

    #[test]
    fn escapes_decode_as_python_does() {
        assert_eq!(python_unescape(r"\x65\u0076al\101\n\\").as_deref(), Some("evalA\n\\"));
        assert_eq!(python_unescape(r"no escapes here \q"), None);
    }

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
