//! The decodings a node (or the code it runs) could apply to a string
//! before it runs it: Python escapes (`unicode-escape`, `\N{...}`
//! included), percent-encoding, rot13, base64 (also with whitespace or in
//! groups, also URL-safe), base85 and Ascii85, hex (also with spaces or
//! colons), each possibly zlib- or gzip-compressed inside.
//!
//! Every decoding is paid for from one [`Budget`] per inspected string, so
//! nesting and many blobs cannot make a string cost more than a fixed
//! amount of work.
use data_encoding::HEXLOWER_PERMISSIVE;
use data_encoding::{BASE64_NOPAD, BASE64URL_NOPAD};
use ruff_python_ast::Expr;

/// Shortest base64 or hex text worth decoding (shorter cannot hold a
/// meaningful payload and is common in ordinary text).
const MIN_BLOB: usize = 16;
/// Shortest base85 run worth decoding.
const MIN_B85: usize = 16;
/// Largest output of one decompression.
const MAX_INFLATE: usize = 256 * 1024;

/// What decoding one string may cost in total.
#[derive(Debug)]
pub(super) struct Budget {
    /// Bytes of decoded output still allowed.
    bytes: usize,
    /// Decoding attempts still allowed.
    attempts: usize,
}

impl Budget {
    /// 1 MiB of decoded text and 256 attempts.
    pub(super) fn new() -> Self {
        Self {
            bytes: 1024 * 1024,
            attempts: 256,
        }
    }

    pub(super) fn try_spend(&mut self) -> bool {
        if self.attempts == 0 {
            return false;
        }
        self.attempts -= 1;
        true
    }

    fn take(&mut self, out: String) -> Option<String> {
        if out.len() > self.bytes {
            self.bytes = 0;
            return None;
        }
        self.bytes -= out.len();
        Some(out)
    }
}

/// Every decoding of `s` that gives text different from `s`, with its name.
pub(super) fn candidates(s: &str, budget: &mut Budget) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if s.contains('\\')
        && budget.try_spend()
        && let Some(t) = python_unescape(s)
        && let Some(t) = budget.take(t)
    {
        out.push(("escape sequences", t));
    }
    if has_percent_escape(s)
        && budget.try_spend()
        && let Ok(t) = percent_encoding::percent_decode_str(s).decode_utf8()
        && t != s
        && let Some(t) = budget.take(t.into_owned())
    {
        out.push(("percent-encoding", t));
    }
    decode_blobs(&mut out, budget, base64_blobs(s), "base64", base64);
    decode_blobs(&mut out, budget, hex_blobs(s), "hex", |blob| {
        HEXLOWER_PERMISSIVE.decode(blob.as_bytes()).ok()
    });
    for run in b85_runs(s) {
        if !budget.try_spend() {
            break;
        }
        for (name, raw) in [("base85", b85decode(&run)), ("Ascii85", a85decode(&run))] {
            if let Some(raw) = raw
                && let Some((how, t)) = text_of(raw, name)
                && let Some(t) = budget.take(t)
            {
                out.push((how, t));
            }
        }
    }
    out
}

/// The text of each blob that `decode` (a decoding called `name`) takes,
/// one attempt a blob, while the budget lasts.
fn decode_blobs(
    out: &mut Vec<(&'static str, String)>,
    budget: &mut Budget,
    blobs: Vec<String>,
    name: &'static str,
    decode: impl Fn(&str) -> Option<Vec<u8>>,
) {
    for blob in blobs {
        if !budget.try_spend() {
            break;
        }
        if let Some(raw) = decode(&blob)
            && let Some((how, t)) = text_of(raw, name)
            && let Some(t) = budget.take(t)
        {
            out.push((how, t));
        }
    }
}

/// rot13 of `s` (letters only), as `codecs.decode(s, 'rot13')`.
pub(super) fn rot13(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='m' | 'A'..='M' => char::from(c as u8 + 13),
            'n'..='z' | 'N'..='Z' => char::from(c as u8 - 13),
            _ => c,
        })
        .collect()
}

/// Decoded bytes as text, inflated first when they are zlib or gzip data.
fn text_of(raw: Vec<u8>, name: &'static str) -> Option<(&'static str, String)> {
    let inflated = match raw.as_slice() {
        [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..] => {
            miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&raw, MAX_INFLATE).ok()
        }
        // gzip with no optional header fields.
        [0x1f, 0x8b, 8, 0, ..] if raw.len() > 18 => {
            miniz_oxide::inflate::decompress_to_vec_with_limit(&raw[10..raw.len() - 8], MAX_INFLATE).ok()
        }
        _ => None,
    };
    match inflated {
        Some(bytes) => String::from_utf8(bytes).ok().map(|t| {
            let how = match name {
                "base64" => "zlib inside base64",
                "hex" => "zlib inside hex",
                _ => "zlib inside base85",
            };
            (how, t)
        }),
        None => String::from_utf8(raw).ok().map(|t| (name, t)),
    }
}

/// Whether `s` could hold anything [`candidates`] or rot13 would decode: a
/// backslash or `%`, a word of [`MIN_BLOB`] characters or more, a run of
/// base64 groups, or a run of two-digit hex groups. One pass, no
/// allocation.
pub(super) fn might_be_encoded(s: &str) -> bool {
    if s.contains(['\\', '%']) {
        return true;
    }
    let mut group_len = 0usize;
    let mut group_words = 0usize;
    let mut hex_pairs = 0usize;
    for word in s.split_whitespace() {
        if word.len() >= MIN_BLOB.min(MIN_B85) {
            return true;
        }
        if word.len().is_multiple_of(4) && word.chars().all(is_b64) {
            group_len += word.len();
            group_words += 1;
            if group_words >= 2 && group_len >= MIN_BLOB {
                return true;
            }
        } else {
            group_len = 0;
            group_words = 0;
        }
        let w = word.trim_end_matches([':', ',', '-']);
        if w.len() == 2 && w.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex_pairs += 1;
            if hex_pairs >= MIN_BLOB / 2 {
                return true;
            }
        } else {
            hex_pairs = 0;
        }
    }
    false
}

/// Whether `s` looks like encoded text: at least [`MIN_BLOB`] characters
/// of base64's alphabet (or `%`), making up nearly all of it apart from
/// whitespace.
pub(super) fn has_blob(s: &str) -> bool {
    let mut alphabet = 0usize;
    let mut other = 0usize;
    for c in s.chars() {
        if is_b64(c) || c == '%' {
            alphabet += 1;
        } else if !c.is_whitespace() {
            other += 1;
        }
    }
    alphabet >= MIN_BLOB
        && other * 10 <= alphabet
        && (mixed_case(s) || s.bytes().filter(u8::is_ascii_hexdigit).count() >= MIN_BLOB)
}

/// Encoded text of any length has upper- and lower-case letters (or digits
/// only, for hex); names such as `v1-5-pruned-emaonly` do not.
fn mixed_case(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_uppercase()) && s.bytes().any(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Whether `s` holds a run that could be base85.
pub(super) fn has_b85_run(s: &str) -> bool {
    s.split_whitespace()
        .any(|r| r.len() >= MIN_B85 && mixed_case(r) && r.bytes().all(|b| (b'!'..=b'~').contains(&b)))
}

fn has_percent_escape(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

fn is_b64(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_')
}

/// Base64 text: runs of its alphabet, and runs split by whitespace into
/// groups (`X19p bXBv cnRf`, or lines of 76), joined.
fn base64_blobs(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut group: Vec<&str> = Vec::new();
    let flush = |group: &mut Vec<&str>, out: &mut Vec<String>| {
        if group.len() >= 2 {
            let joined: String = group.concat();
            if joined.len() >= MIN_BLOB && mixed_case(&joined) {
                out.push(joined);
            }
        }
        group.clear();
    };
    for token in s.split(|c: char| !is_b64(c) && !c.is_whitespace()) {
        for word in token.split_whitespace() {
            if word.len() >= MIN_BLOB && mixed_case(word) {
                out.push(word.to_owned());
            }
            if word.len() % 4 == 0 || word.ends_with('=') {
                group.push(word);
            } else {
                group.push(word);
                flush(&mut group, &mut out);
            }
        }
        flush(&mut group, &mut out);
    }
    out.dedup();
    out
}

fn base64(blob: &str) -> Option<Vec<u8>> {
    let trimmed = blob.trim_end_matches('=');
    BASE64_NOPAD
        .decode(trimmed.as_bytes())
        .or_else(|_| BASE64URL_NOPAD.decode(trimmed.as_bytes()))
        .ok()
}

/// Hex text: even runs of hex digits, or two-digit groups separated by
/// spaces, colons, commas or dashes (`65 76 61 6c`), joined; `0x` and `\x`
/// prefixes dropped.
fn hex_blobs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for run in s.split(|c: char| !c.is_ascii_hexdigit()) {
        if run.len() >= MIN_BLOB && run.len().is_multiple_of(2) {
            out.push(run.to_owned());
        }
    }
    let mut joined = String::new();
    let mut pairs = 0;
    for token in s.split(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | '-')) {
        let t = token.strip_prefix("0x").unwrap_or(token);
        if t.len() == 2 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            joined.push_str(t);
            pairs += 1;
        } else if !t.is_empty() {
            if pairs >= MIN_BLOB / 2 {
                out.push(std::mem::take(&mut joined));
            }
            joined.clear();
            pairs = 0;
        }
    }
    if pairs >= MIN_BLOB / 2 {
        out.push(joined);
    }
    out
}

/// Python's `b85` alphabet.
const B85: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";

/// Runs that could be base85 or Ascii85: the text between `<~` and `~>`
/// (whitespace removed), and whitespace-separated runs of printable
/// characters that are not only base64's or hex's alphabet.
fn b85_runs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(start) = s.find("<~")
        && let Some(len) = s[start + 2..].find("~>")
    {
        out.push(s[start + 2..start + 2 + len].split_whitespace().collect());
    }
    for run in s.split_whitespace() {
        if run.len() >= MIN_B85
            && mixed_case(run)
            && run.bytes().all(|b| (b'!'..=b'~').contains(&b))
            && !run
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
            && !run.starts_with("<~")
        {
            out.push(run.to_owned());
        }
    }
    out
}

/// `base64.b85decode`.
fn b85decode(s: &str) -> Option<Vec<u8>> {
    let digits: Option<Vec<u32>> = s
        .bytes()
        .map(|b| B85.iter().position(|&a| a == b).and_then(|p| u32::try_from(p).ok()))
        .collect();
    decode85(&digits?, b'~')
}

/// `base64.a85decode` (`z` for four zero bytes).
fn a85decode(s: &str) -> Option<Vec<u8>> {
    let mut digits = Vec::with_capacity(s.len());
    let mut zeros = Vec::new();
    for b in s.bytes() {
        match b {
            b'z' => zeros.push(digits.len()),
            b'!'..=b'u' => digits.push(u32::from(b - b'!')),
            _ => return None,
        }
    }
    if !zeros.is_empty() {
        // Rare in text payloads; only whole groups of `z` are supported.
        return None;
    }
    decode85(&digits, b'u')
}

/// Groups of five base-85 digits to four bytes, the last group padded
/// with the highest digit as Python does.
fn decode85(digits: &[u32], _pad: u8) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(digits.len() * 4 / 5 + 4);
    for chunk in digits.chunks(5) {
        let mut acc: u64 = 0;
        for i in 0..5 {
            acc = acc * 85 + u64::from(chunk.get(i).copied().unwrap_or(84));
        }
        let word = u32::try_from(acc).ok()?;
        let bytes = word.to_be_bytes();
        let keep = if chunk.len() == 5 {
            4
        } else {
            chunk.len().checked_sub(1)?
        };
        out.extend_from_slice(&bytes[..keep]);
    }
    Some(out)
}

/// Python string-literal escapes (`\xNN`, `\uNNNN`, `\UNNNNNNNN`, octal,
/// `\N{NAME}`, the single-character ones), as `unicode-escape` or `eval`
/// of a literal would apply them. The text is read by the Python parser as
/// the body of a triple-quoted string; when it cannot be put in one, the
/// escapes other than `\N{...}` are applied by hand. `None` when nothing
/// changed.
pub(super) fn python_unescape(s: &str) -> Option<String> {
    if s.len() <= super::python::WHOLE_MAX && !s.contains("\"\"\"") && !s.ends_with('"') && !s.ends_with('\\') {
        let literal = format!("\"\"\"{s}\"\"\"");
        if let Ok(parsed) = ruff_python_parser::parse_expression(&literal)
            && let Expr::StringLiteral(lit) = parsed.expr()
        {
            let value = lit.value.to_str();
            return (value != s).then(|| value.to_owned());
        }
    }
    manual_unescape(s)
}

fn manual_unescape(s: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::{a85decode, b85decode, python_unescape, rot13};

    #[test]
    fn escapes_decode_as_python_does() {
        assert_eq!(python_unescape(r"\x65\u0076al\101\n\\").as_deref(), Some("evalA\n\\"));
        assert_eq!(
            python_unescape(r"\N{LOW LINE}\N{LOW LINE}import").as_deref(),
            Some("__import")
        );
        assert_eq!(python_unescape(r"no escapes here \q"), None);
    }

    #[test]
    fn base85_as_python() {
        // base64.b85encode(b"eval('1')") and base64.a85encode(b"eval('1')").
        assert_eq!(b85decode("Wp-g~C?_!|DF").as_deref(), Some(&b"eval('1')"[..]));
        assert_eq!(a85decode("AThKu-mp_s.0").as_deref(), Some(&b"eval('1')"[..]));
        assert_eq!(rot13("riny('1')"), "eval('1')");
    }
}
