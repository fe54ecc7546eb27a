//! The path sanitizer: every rule has inputs it must reject and near
//! misses it must accept; proptest checks that nothing panics and that what
//! passes never holds a separator or `..`.

use comfy_guard::path::{Extensions, PathKind, PathRule, SafeFileName, SafeSubfolder};
use proptest::prelude::*;

/// File names that must be rejected, with the rule that rejects them.
const HOSTILE_NAMES: &[(&str, PathRule)] = &[
    ("", PathRule::Empty),
    ("%2e%2e", PathRule::Traversal),
    ("..", PathRule::Traversal),
    ("...png", PathRule::Traversal),
    ("a..png", PathRule::Traversal),
    (".", PathRule::Traversal),
    ("../x.png", PathRule::Separator),
    ("..\\..\\x.png", PathRule::Separator),
    ("sub/x.png", PathRule::Separator),
    ("/etc/passwd.png", PathRule::Separator),
    ("%2Fetc%2Fpasswd.png", PathRule::Separator),
    ("..%2fx.png", PathRule::Separator),
    ("%252e%252e%252fx.png", PathRule::DoubleEncoding),
    ("x%2541.png", PathRule::DoubleEncoding),
    ("%c0%ae%c0%ae.png", PathRule::InvalidUtf8),
    ("%e0%80%ae.png", PathRule::InvalidUtf8),
    ("%ff.png", PathRule::InvalidUtf8),
    ("a\0.png", PathRule::ControlCharacter),
    ("x.png%00.txt", PathRule::ControlCharacter),
    ("a\nb.png", PathRule::ControlCharacter),
    ("a\u{7f}.png", PathRule::ControlCharacter),
    ("a\u{85}.png", PathRule::ControlCharacter),
    ("a\u{200b}.png", PathRule::InvisibleCharacter),
    ("gnp.\u{202e}exe.png", PathRule::InvisibleCharacter),
    ("a\u{feff}.png", PathRule::InvisibleCharacter),
    ("a\u{2066}.png", PathRule::InvisibleCharacter),
    ("\u{ff0e}\u{ff0e}\u{ff0f}x.png", PathRule::LookalikeCharacter),
    ("x\u{2024}png", PathRule::LookalikeCharacter),
    ("a\u{2215}b.png", PathRule::LookalikeCharacter),
    ("a\u{2044}b.png", PathRule::LookalikeCharacter),
    ("a\u{ff3c}b.png", PathRule::LookalikeCharacter),
    ("a\u{fe52}png", PathRule::LookalikeCharacter),
    ("C:x.png", PathRule::Absolute),
    ("x.png:evil.exe", PathRule::Absolute),
    ("CON.png", PathRule::ReservedName),
    ("con.png", PathRule::ReservedName),
    ("nul.png", PathRule::ReservedName),
    ("Com1.png", PathRule::ReservedName),
    ("lpt9.png", PathRule::ReservedName),
    ("COM\u{b9}.png", PathRule::ReservedName),
    ("aux .png", PathRule::ReservedName),
    ("x.png.", PathRule::TrailingDotOrSpace),
    ("x.png ", PathRule::TrailingDotOrSpace),
    ("cat.exe", PathRule::Extension),
    ("cat", PathRule::Extension),
    (".png", PathRule::Extension),
    ("x.png.sh", PathRule::Extension),
];

/// File names that look close to a rule but are fine.
const NEAR_MISS_NAMES: &[(&str, &str)] = &[
    ("cat.png", "cat.png"),
    ("Cat.PNG", "Cat.PNG"),
    ("cat photo.jpeg", "cat photo.jpeg"),
    ("cat%20photo.png", "cat photo.png"),
    ("100%.png", "100%.png"),
    ("50%off.png", "50%off.png"),
    ("v1.5.png", "v1.5.png"),
    (".hidden.png", ".hidden.png"),
    ("a.b.c.webp", "a.b.c.webp"),
    ("ComfyUI_00001_.png", "ComfyUI_00001_.png"),
    ("console.png", "console.png"),
    ("com10.png", "com10.png"),
    ("lpt.png", "lpt.png"),
    ("auxiliary.png", "auxiliary.png"),
    ("café.png", "café.png"),
    ("猫.png", "猫.png"),
    ("emoji🐱.gif", "emoji🐱.gif"),
    ("workflow.json", "workflow.json"),
];

#[test]
fn hostile_file_names_are_rejected_by_their_rule() {
    let ext = Extensions::images();
    for (raw, rule) in HOSTILE_NAMES {
        match SafeFileName::parse(raw, &ext) {
            Ok(ok) => panic!("{raw:?} was accepted as {ok:?}"),
            Err(e) => {
                assert_eq!(e.rule, *rule, "{raw:?}: {e}");
                assert_eq!(e.kind, PathKind::FileName);
                assert!(e.to_string().contains(rule.id()), "{e}");
            }
        }
    }
    let long = format!("{}.png", "a".repeat(252));
    assert_eq!(SafeFileName::parse(&long, &ext).unwrap_err().rule, PathRule::TooLong);
}

#[test]
fn near_misses_are_accepted() {
    let ext = Extensions::images();
    for (raw, expected) in NEAR_MISS_NAMES {
        let name = SafeFileName::parse(raw, &ext).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
        assert_eq!(name.as_str(), *expected);
    }
    let longest = format!("{}.png", "a".repeat(251));
    assert_eq!(SafeFileName::parse(&longest, &ext).unwrap().as_str().len(), 255);
    let models = Extensions::models();
    assert_eq!(
        SafeFileName::parse("model.SafeTensors", &models).unwrap().extension(),
        ".safetensors"
    );
    assert_eq!(
        SafeFileName::parse("x.gguf", &Extensions::new(["gguf", " .SAFETENSORS "]))
            .unwrap()
            .as_str(),
        "x.gguf"
    );
}

#[test]
fn hostile_subfolders_are_rejected_and_near_misses_accepted() {
    let hostile: &[(&str, PathRule)] = &[
        ("..", PathRule::Traversal),
        ("a/../../etc", PathRule::Traversal),
        ("a/./b", PathRule::Traversal),
        ("..%2F..%2Fetc", PathRule::Traversal),
        ("%252e%252e", PathRule::DoubleEncoding),
        ("/etc", PathRule::Absolute),
        ("/", PathRule::Absolute),
        ("\\\\server\\share", PathRule::Absolute),
        ("\\\\?\\C:\\x", PathRule::Absolute),
        ("\\\\.\\PhysicalDrive0", PathRule::Absolute),
        ("C:\\Windows", PathRule::Absolute),
        ("c:", PathRule::Absolute),
        ("a//b", PathRule::Separator),
        ("a\0b", PathRule::ControlCharacter),
        ("a\rb", PathRule::ControlCharacter),
        ("a\u{200d}b", PathRule::InvisibleCharacter),
        ("\u{ff0e}\u{ff0e}", PathRule::LookalikeCharacter),
        ("a/CON", PathRule::ReservedName),
        ("a./b", PathRule::TrailingDotOrSpace),
        ("a /b", PathRule::TrailingDotOrSpace),
        ("1/2/3/4/5/6/7/8/9", PathRule::TooDeep),
    ];
    for (raw, rule) in hostile {
        let e = SafeSubfolder::parse(raw).expect_err(raw);
        assert_eq!((e.rule, e.kind), (*rule, PathKind::Subfolder), "{raw:?}: {e}");
    }
    let long = "a/".repeat(600);
    assert_eq!(
        SafeSubfolder::parse_with_depth(&long, 1000).unwrap_err().rule,
        PathRule::TooLong
    );
    let fine: &[(&str, &str)] = &[
        ("", ""),
        ("a", "a"),
        ("a/", "a"),
        ("a/b", "a/b"),
        ("a\\b", "a/b"),
        ("my%20dir/sub", "my dir/sub"),
        ("v1.5/x.y", "v1.5/x.y"),
        ("1/2/3/4/5/6/7/8", "1/2/3/4/5/6/7/8"),
        ("console", "console"),
    ];
    for (raw, expected) in fine {
        let s = SafeSubfolder::parse(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
        assert_eq!(s.as_str(), *expected);
    }
    assert_eq!(
        SafeSubfolder::parse("a/b/c").unwrap().components().collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
}

#[test]
fn errors_show_the_value_escaped_and_shortened() {
    let e = SafeFileName::parse("a\u{202e}b\n.png", &Extensions::images()).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("file name rejected (path.invisible-character)"),
        "{text}"
    );
    assert!(text.contains("\\u{202e}") && !text.contains('\u{202e}'), "{text}");
    let e = SafeSubfolder::parse(&format!("{}\0", "x".repeat(500))).unwrap_err();
    assert!(e.to_string().len() < 300, "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_input_panics_and_what_passes_is_one_plain_component(raw in "\\PC{0,40}|[./\\\\%a-f0-9CON:]{0,24}") {
        let ext = Extensions::new(["png", "txt"]);
        if let Ok(name) = SafeFileName::parse(&raw, &ext) {
            let s = name.as_str();
            prop_assert!(!s.contains('/') && !s.contains('\\') && !s.contains(".."));
            prop_assert!(!s.chars().any(char::is_control));
            prop_assert!(s.len() <= 255);
        }
        if let Ok(sub) = SafeSubfolder::parse(&raw) {
            let s = sub.as_str();
            prop_assert!(!s.starts_with('/') && !s.contains('\\') && !s.contains("..") && !s.contains("//"));
            prop_assert!(sub.components().all(|c| c != "."));
        }
    }

    #[test]
    fn encoded_input_is_decoded_exactly_once(
        name in "[a-z]{1,10}".prop_filter("Windows reserved names are refused", |n| !matches!(n.as_str(), "con" | "prn" | "aux" | "nul"))
    ) {
        let encoded = format!("{name}.png").bytes().fold(String::new(), |mut out, b| {
            use std::fmt::Write as _;
            let _ = write!(out, "%{b:02X}");
            out
        });
        let ext = Extensions::images();
        let decoded = SafeFileName::parse(&encoded, &ext).unwrap();
        prop_assert_eq!(decoded.as_str(), format!("{name}.png"));
        let twice = encoded.replace('%', "%25");
        prop_assert_eq!(SafeFileName::parse(&twice, &ext).unwrap_err().rule, PathRule::DoubleEncoding);
    }
}
