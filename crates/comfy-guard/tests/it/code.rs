//! Properties of the code detector: a dangerous call is found however the
//! Python grammar lets it be spaced, commented and continued, and under any
//! chain of the encodings a node could undo.

use std::fmt::Write as _;
use std::io::Write as _;

use comfy_guard::inspect::code::find_code;
use proptest::prelude::*;

/// Dangerous calls as Python tokens.
const CALLS: &[&[&str]] = &[
    &["__import__", "(", "'os'", ")", ".", "system", "(", "'id'", ")"],
    &["eval", "(", "payload", ")"],
    &["exec", "(", "compile", "(", "src", ",", "'x'", ",", "'exec'", ")", ")"],
    &["(", "exec", ")", "(", "payload", ")"],
    &[
        "getattr",
        "(",
        "__builtins__",
        ",",
        "'ev'",
        "+",
        "'al'",
        ")",
        "(",
        "'1'",
        ")",
    ],
    &["eval", ".", "__call__", "(", "payload", ")"],
    &["list", "(", "map", "(", "exec", ",", "[", "payload", "]", ")", ")"],
    &["open", "(", "'/etc/passwd'", ")", ".", "read", "(", ")"],
    &["subprocess", ".", "run", "(", "[", "'id'", "]", ")"],
    &[
        "(",
        ")",
        ".",
        "__class__",
        ".",
        "__base__",
        ".",
        "__subclasses__",
        "(",
        ")",
    ],
];

/// What may stand between two tokens: `gap` picks the kind, the rest pick
/// the spelling. Newlines and comments only inside brackets (the grammar
/// allows them nowhere else without a continuation).
fn gap(kind: u8, inside: bool, comment: &str) -> String {
    match kind % 6 {
        0 => String::new(),
        2 => "\t ".to_owned(),
        3 => " \\\n ".to_owned(),
        4 if inside => "\n    ".to_owned(),
        5 if inside => format!("  # {comment}\n  "),
        _ => " ".to_owned(),
    }
}

fn spell(tokens: &[&str], gaps: &[u8], comment: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate() {
        out.push_str(t);
        match *t {
            "(" | "[" => depth += 1,
            ")" | "]" => depth = depth.saturating_sub(1),
            _ => {}
        }
        if i + 1 < tokens.len() {
            // `.` after a name must not be followed by a space-led number;
            // every spelling here keeps Python's tokens apart.
            out.push_str(&gap(gaps.get(i).copied().unwrap_or(0), depth > 0, comment));
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
enum Encoding {
    Base64,
    Base64Groups,
    Base85,
    HexSpaced,
    ZlibBase64,
    Rot13,
    Percent,
    UnicodeEscape,
}

const ENCODINGS: [Encoding; 8] = [
    Encoding::Base64,
    Encoding::Base64Groups,
    Encoding::Base85,
    Encoding::HexSpaced,
    Encoding::ZlibBase64,
    Encoding::Rot13,
    Encoding::Percent,
    Encoding::UnicodeEscape,
];

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64.encode(bytes)
}

/// Python's `base64.b85encode`.
fn b85(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";
    let mut out = String::new();
    for chunk in bytes.chunks(4) {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        let mut acc = u32::from_be_bytes(word);
        let mut digits = [0u8; 5];
        for d in digits.iter_mut().rev() {
            *d = ALPHABET[(acc % 85) as usize];
            acc /= 85;
        }
        for d in &digits[..=chunk.len()] {
            out.push(char::from(*d));
        }
    }
    out
}

fn encode(text: &str, e: Encoding) -> String {
    match e {
        Encoding::Base64 => b64(text.as_bytes()),
        Encoding::Base64Groups => {
            let s = b64(text.as_bytes());
            let chunks: Vec<String> = s
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            chunks.join(" ")
        }
        Encoding::Base85 => b85(text.as_bytes()),
        Encoding::HexSpaced => {
            let parts: Vec<String> = text.bytes().map(|b| format!("{b:02x}")).collect();
            parts.join(" ")
        }
        Encoding::ZlibBase64 => {
            let compressed = zlib_stored(text.as_bytes());
            b64(&compressed)
        }
        Encoding::Rot13 => text
            .chars()
            .map(|c| match c {
                'a'..='m' | 'A'..='M' => char::from(c as u8 + 13),
                'n'..='z' | 'N'..='Z' => char::from(c as u8 - 13),
                _ => c,
            })
            .collect(),
        Encoding::Percent => text.bytes().fold(String::new(), |mut s, b| {
            let _ = write!(s, "%{b:02X}");
            s
        }),
        Encoding::UnicodeEscape => text.bytes().fold(String::new(), |mut s, b| {
            let _ = write!(s, "\\x{b:02x}");
            s
        }),
    }
}

/// zlib via a stored (uncompressed) deflate block: what a decoder must
/// inflate, without a compressor in the dev-dependencies.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    for (i, chunk) in data.chunks(65_535).enumerate() {
        let last = (i + 1) * 65_535 >= data.len();
        out.push(u8::from(last));
        let len = u16::try_from(chunk.len()).unwrap();
        out.write_all(&len.to_le_bytes()).unwrap();
        out.write_all(&(!len).to_le_bytes()).unwrap();
        out.extend_from_slice(chunk);
    }
    if data.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    // Adler-32.
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_call_survives_any_spacing_comments_and_continuations(
        call in 0..CALLS.len(),
        gaps in proptest::collection::vec(any::<u8>(), 16),
        comment in "[a-z ]{0,12}",
    ) {
        let text = spell(CALLS[call], &gaps, &comment);
        prop_assert!(find_code(&text).is_some(), "not found: {text:?}");
    }

    #[test]
    fn a_call_survives_any_chain_of_encodings(
        call in 0..CALLS.len(),
        chain in proptest::collection::vec(0..ENCODINGS.len(), 1..=5),
    ) {
        let mut text = spell(CALLS[call], &[], "");
        for &e in &chain {
            text = encode(&text, ENCODINGS[e]);
        }
        let names: Vec<Encoding> = chain.iter().map(|&e| ENCODINGS[e]).collect();
        prop_assert!(find_code(&text).is_some(), "not found after {names:?}: {text:?}");
    }
}

#[test]
fn every_encoding_alone_is_undone() {
    for call in CALLS {
        let plain = spell(call, &[], "");
        for e in ENCODINGS {
            let text = encode(&plain, e);
            assert!(find_code(&text).is_some(), "{e:?} of {plain:?}: {text:?}");
        }
    }
}
