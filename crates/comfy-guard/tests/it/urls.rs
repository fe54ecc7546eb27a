//! URLs a node would fetch, judged by the same rules as the server's own
//! downloads (`comfy-addr`): every address form that reaches the host or
//! its network, and URLs that Python and WHATWG read differently.

use comfy_guard::inspect::{Inspection, Mode, Policy, RuleId, inspect_json};
use serde_json::{Value, json};

fn run(doc: &Value) -> Inspection {
    inspect_json(&serde_json::to_vec(doc).unwrap(), &Policy::new(Mode::Audit), None).unwrap()
}

fn url_rules(class: &str, input: &str, value: &str) -> Vec<RuleId> {
    run(&json!({"1": {"class_type": class, "inputs": {input: value}}}))
        .findings
        .iter()
        .map(|f| f.rule)
        .collect()
}

#[test]
fn every_address_form_the_fetcher_refuses_is_a_finding() {
    for bad in [
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://100.100.100.200/latest/meta-data/",
        "http://100.64.0.7/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "https://localtest.me/",
        "https://127.0.0.1.nip.io/a.png",
        "https://10-0-0-1.sslip.io/",
        "https://lvh.me/",
        "http://localhost./",
        "169.254.169.254/latest/meta-data",
        r"http://evil\@169.254.169.254/",
        "http:example.com",
        "not a url at all",
    ] {
        assert_eq!(url_rules("Fetcher", "image_url", bad), [RuleId::UnsafeUrl], "{bad}");
    }
    for fine in [
        "https://example.com/cat.png",
        "https://huggingface.co/a/b/resolve/main/c.safetensors",
        "",
    ] {
        assert!(url_rules("Fetcher", "image_url", fine).is_empty(), "{fine}");
    }
}

#[test]
fn the_finding_says_why_in_words() {
    let report = run(&json!({"1": {"class_type": "Fetcher", "inputs": {"url": r"http://evil\@169.254.169.254/"}}}));
    assert_eq!(report.findings.len(), 1);
    assert!(
        report.findings[0]
            .detail
            .contains("Python's urllib reads `169.254.169.254`"),
        "{}",
        report.findings[0].detail
    );
}

#[test]
fn a_url_in_any_input_is_judged_as_a_url() {
    // Path inputs of custom packs that also take URLs (WAS `Image Load`),
    // and inputs whose name says nothing.
    assert_eq!(
        url_rules(
            "Image Load",
            "image_path",
            "http://169.254.169.254/latest/meta-data/iam"
        ),
        [RuleId::UnsafeUrl]
    );
    assert_eq!(
        url_rules("SomePackNode", "source", "http://[::1]:8188/prompt"),
        [RuleId::UnsafeUrl]
    );
    assert!(url_rules("SomePackNode", "source", "https://example.com/a.png").is_empty());
    // Prose that mentions an address is not a URL.
    assert!(url_rules("CLIPTextEncode", "text", "a poster saying http://127.0.0.1").is_empty());
}

#[test]
fn a_url_assembled_over_links_is_judged_whole() {
    let doc = json!({
        "1": {"class_type": "PrimitiveString", "inputs": {"value": "http://169.254."}},
        "2": {"class_type": "StringConcatenate", "inputs": {"string_a": ["1", 0], "string_b": "169.254/", "delimiter": ""}},
        "3": {"class_type": "Fetcher", "inputs": {"url": ["2", 0]}}
    });
    let rules: Vec<RuleId> = run(&doc).findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, [RuleId::UnsafeUrl]);
}
