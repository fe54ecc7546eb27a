//! Asset hashes (ComfyUI 0.33 `--enable-assets`): exactly `blake3:` and 64
//! lowercase hex digits pass, as the one value with a `:`; every near miss
//! is refused, by the sanitizer and by the inspector at a file a node reads.

use comfy_guard::inspect::{Mode, Policy, RuleId, inspect_json};
use comfy_guard::path::{
    AssetHash, Extensions, FileOrHash, PathKind, PathRule, SafeFileName, SafeName, check_node_path,
};
use proptest::prelude::*;
use serde_json::json;

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn good() -> String {
    format!("blake3:{HEX}")
}

/// Values that look like a hash and are not one.
fn near_misses() -> Vec<String> {
    vec![
        format!("BLAKE3:{HEX}"),
        format!("Blake3:{HEX}"),
        format!("blake3:{}", HEX.to_uppercase()),
        format!("blake3:{}", &HEX[..63]),
        format!("blake3:{HEX}0"),
        format!("blake3:{}", &HEX[..62]),
        format!("sha256:{HEX}"),
        format!("blake2:{HEX}"),
        format!("blake3::{HEX}"),
        format!("blake3:{HEX}:"),
        format!("blake3:{}:{}", &HEX[..32], &HEX[32..]),
        format!("blake3:{HEX}:stream"),
        format!(" blake3:{HEX}"),
        format!("blake3:{HEX} "),
        format!("blake3: {}", &HEX[1..]),
        format!("blake3:{HEX}\n"),
        format!("blake3:\t{}", &HEX[1..]),
        // Unicode digits: Arabic-Indic zero, fullwidth zero and `a`, a superscript one.
        format!("blake3:\u{660}{}", &HEX[1..]),
        format!("blake3:\u{ff10}{}", &HEX[1..]),
        format!("blake3:\u{ff41}{}", &HEX[1..]),
        format!("blake3:\u{b9}{}", &HEX[1..]),
        format!("blake3\u{ff1a}{HEX}"),
        format!("blake3:{}g", &HEX[..63]),
        format!("blake3:../{}", &HEX[3..]),
        format!("blake3:{}/x", &HEX[..62]),
        "blake3:".to_owned(),
        "blake3".to_owned(),
        HEX.to_owned(),
    ]
}

#[test]
fn the_exact_form_passes_and_every_near_miss_is_refused() {
    assert_eq!(AssetHash::parse(&good()).unwrap().as_str(), good());
    for raw in near_misses() {
        let e = AssetHash::parse(&raw).expect_err(&raw);
        assert_eq!(e.kind, PathKind::AssetHash, "{raw:?}");
    }
}

#[test]
fn only_the_hash_type_takes_a_hash() {
    // The other typed names keep the `:` rule, hash or not.
    assert_eq!(SafeName::parse(&good()).unwrap_err().rule, PathRule::Absolute);
    assert_eq!(
        SafeFileName::parse(&good(), &Extensions::images()).unwrap_err().rule,
        PathRule::Absolute
    );
    let images = Extensions::images();
    assert!(FileOrHash::parse(&good(), &images).unwrap().is_hash());
    assert!(!FileOrHash::parse("cat.png", &images).unwrap().is_hash());
    for raw in near_misses() {
        assert!(FileOrHash::parse(&raw, &images).is_err(), "{raw:?}");
    }
    // Written as a hash: the hash's rule names the problem.
    let e = FileOrHash::parse(&format!("BLAKE3:{HEX}"), &images).unwrap_err();
    assert_eq!(e.kind, PathKind::AssetHash);
    assert!(e.to_string().contains("64 lowercase hex digits"), "{e}");
}

fn load_image(value: &str) -> Vec<RuleId> {
    let doc = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": value}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    });
    inspect_json(&serde_json::to_vec(&doc).unwrap(), &Policy::new(Mode::Audit), None)
        .unwrap()
        .findings
        .iter()
        .map(|f| f.rule)
        .collect()
}

#[test]
fn the_inspector_reads_a_hash_as_a_file_and_a_near_miss_as_a_bad_path() {
    assert!(load_image(&good()).is_empty(), "{:?}", load_image(&good()));
    assert!(load_image("cat.png").is_empty());
    assert!(load_image("cat.png [input]").is_empty());
    for raw in near_misses()
        .into_iter()
        .filter(|r| r.contains(':') || r.contains('\u{ff1a}'))
    {
        if raw.contains('\u{ff1a}') {
            continue; // a fullwidth colon is no `:`: a plain (odd) file name in the folder
        }
        let found = load_image(&raw);
        assert!(found.contains(&RuleId::PathEscape), "{raw:?}: {found:?}");
    }
    // Any other `:` in a file a node reads: an NTFS stream.
    assert!(load_image("cat.png:secret").contains(&RuleId::PathEscape));
    // A save prefix may hold `:` (the front end's `%date:yyyy-MM-dd%`).
    assert!(check_node_path("renders/%date:yyyy-MM-dd%/x").is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever passes is exactly the form.
    #[test]
    fn what_passes_is_exactly_the_form(raw in "(blake3|BLAKE3|sha256|b)?:?[0-9a-fA-F\u{660}\u{ff10} :]{0,70}|\\PC{0,80}") {
        if let Ok(h) = AssetHash::parse(&raw) {
            let hex = h.as_str().strip_prefix("blake3:").unwrap();
            prop_assert_eq!(hex.len(), 64);
            prop_assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            prop_assert_eq!(h.as_str(), raw.as_str());
        }
    }

    /// One change to a valid hash (a character replaced, inserted or
    /// removed) passes only when the result is again exactly the form.
    #[test]
    fn one_change_to_a_valid_hash_is_refused_unless_still_valid(
        at in 0usize..71,
        c in prop::char::any(),
        op in 0u8..3,
    ) {
        let mut chars: Vec<char> = good().chars().collect();
        let at = at.min(chars.len() - 1);
        match op {
            0 => chars[at] = c,
            1 => chars.insert(at, c),
            _ => { chars.remove(at); }
        }
        let raw: String = chars.into_iter().collect();
        let exact = raw.len() == 71
            && raw.starts_with("blake3:")
            && raw[7..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        prop_assert_eq!(AssetHash::parse(&raw).is_ok(), exact, "{:?}", raw);
        prop_assert_eq!(FileOrHash::parse(&raw, &Extensions::images()).is_ok_and(|f| f.is_hash()), exact);
    }
}
