//! Redaction tables and the planted-secret property.

use comfy_audit::redact::{MASK, Redactor, is_secret_key};
use comfy_audit::{AuditConfig, AuditLog, FlushPolicy, Record};
use proptest::prelude::*;
use serde_json::{Value, json};

#[test]
fn secret_keys_are_masked_at_any_depth_and_in_arrays() {
    let mut v = json!({
        "prompt": "a red fox",
        "HF_Token": "hf_abcdefghijklmnopqrstuvwxyz",
        "nested": {"deeper": {"password": "hunter2", "ok": 1}},
        "list": [{"api_key": "k1"}, [[{"Authorization": "Basic eA=="}]], "plain"],
        "cookie_jar": {"x": 1},
        "session_id": 42,
        "tokens_used": 7
    });
    Redactor::default().redact(&mut v);
    assert_eq!(v["prompt"], "a red fox");
    assert_eq!(v["HF_Token"], MASK);
    assert_eq!(v["nested"]["deeper"]["password"], MASK);
    assert_eq!(v["nested"]["deeper"]["ok"], 1);
    assert_eq!(v["list"][0]["api_key"], MASK);
    assert_eq!(v["list"][1][0][0]["Authorization"], MASK);
    assert_eq!(v["list"][2], "plain");
    assert_eq!(v["cookie_jar"], MASK, "whole values under a secret key, objects too");
    assert_eq!(v["session_id"], MASK);
    assert_eq!(
        v["tokens_used"], MASK,
        "names that contain a secret word count, as in the peer"
    );
    for key in ["x-api-key", "ApiKey", "refresh_token", "privatekey"] {
        assert_eq!(is_secret_key(key), key != "privatekey", "{key}");
    }
}

#[test]
fn secret_values_are_masked_wherever_they_are() {
    let mut v = json!({
        "url": "https://user:s3cret@huggingface.co/x?token=abc&download=true",
        "headers": ["Authorization: Bearer eyJhbGciOi.J9.xyz"],
        "note": "my token is hf_AAAAAAAAAAAAAAAAAAAAAAAA ok",
        "civitai": "https://civitai.com/api/download/models/1?type=Model&key=0123456789abcdef"
    });
    Redactor::default().redact(&mut v);
    assert_eq!(
        v["url"],
        "https://[REDACTED]@huggingface.co/x?token=[REDACTED]&download=true"
    );
    assert_eq!(v["headers"][0], "Authorization: Bearer [REDACTED]");
    assert_eq!(v["note"], "my token is hf_[REDACTED] ok");
    assert_eq!(
        v["civitai"],
        "https://civitai.com/api/download/models/1?type=Model&key=[REDACTED]"
    );
    let mut prompt = json!("a basic drawing of a standard bearer, token economy");
    Redactor::default().redact(&mut prompt);
    assert_eq!(prompt, "a basic drawing of a standard bearer, token economy");
}

fn planted() -> impl Strategy<Value = (String, Value)> {
    let secret = "[A-Za-z0-9]{24,40}";
    (secret, 0usize..5, "[a-z ]{0,20}").prop_map(|(s, how, text)| {
        let doc = match how {
            0 => json!({"a": [{"b": {"access_token": s}}]}),
            1 => json!({"note": format!("{text} hf_{s} {text}")}),
            2 => json!({"u": format!("https://me:{s}@example.com/{text}")}),
            3 => json!({"h": format!("{text} Authorization: Bearer {s}")}),
            _ => json!({"q": format!("https://x.example/f?{text}&apikey={s}#frag")}),
        };
        (s, doc)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn no_planted_secret_reaches_the_file((secret, doc) in planted()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let mut cfg = AuditConfig::new(&path);
            cfg.flush = FlushPolicy::EveryRecord;
            let log = AuditLog::open(cfg).unwrap();
            log.write(Record::new("t", "called").extra(doc.clone())).await.unwrap();
            log.close();
        });
        let text = std::fs::read_to_string(&path).unwrap();
        prop_assert!(!text.contains(&secret), "{secret} leaked: {text}");
        let _: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    }
}
