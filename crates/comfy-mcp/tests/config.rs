//! The configuration: the peer's keys, defaults and environment variables,
//! errors that name file, key and value, warnings for unknown keys.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::HashMap;
use std::path::Path;

use comfy_guard::inspect::Mode;
use comfy_mcp::config::{AuditFailure, AuditFlush, ConfigError, RedisFailure, Source, load};

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |k: &str| map.get(k).cloned()
}

fn file(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("config.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn no_file_means_the_peers_defaults() {
    let home = tempfile::tempdir().unwrap();
    let home_str = home.path().to_str().unwrap().to_owned();
    let loaded = load(None, &env_of(&[("HOME", &home_str)])).unwrap();
    let c = &loaded.config;
    assert_eq!(c.comfyui.url, "http://127.0.0.1:8188");
    assert_eq!((c.comfyui.timeout_connect, c.comfyui.timeout_read), (30, 300));
    assert!(c.comfyui.tls_verify && c.comfyui.external_url.is_none());
    assert_eq!(c.security.mode, Mode::Audit);
    assert_eq!(c.security.max_upload_size_mb, 50);
    assert_eq!(c.security.allowed_download_domains, ["huggingface.co", "civitai.com"]);
    assert_eq!(
        (
            c.rate_limits.workflow,
            c.rate_limits.generation,
            c.rate_limits.file_ops,
            c.rate_limits.read_only
        ),
        (10, 10, 30, 60)
    );
    assert_eq!(c.logging.audit_file, "~/.comfyui-mcp/audit.log");
    assert_eq!(
        (c.logging.audit_anchor.as_deref(), c.logging.audit_anchor_every),
        (None, 100)
    );
    assert_eq!(
        (
            c.transport.remote.enabled,
            c.transport.remote.host.as_str(),
            c.transport.remote.port
        ),
        (false, "127.0.0.1", 8080)
    );
    assert_eq!(c.model_search.max_search_results, 10);
    assert_eq!((c.tasks.enabled, c.tasks.backend_url.as_str()), (false, "memory://"));
    assert!(loaded.file.is_none() && loaded.warnings.is_empty());
    assert!(loaded.sources.values().all(|s| *s == Source::Default));
}

#[test]
fn environment_variables_are_parsed_the_peers_way() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        dir.path(),
        "comfyui:\n  url: http://file:8188\nsecurity:\n  mode: audit\n",
    );
    let env = env_of(&[
        ("COMFYUI_URL", "https://gpu.example:8443"),
        ("COMFYUI_EXTERNAL_URL", ""),
        ("COMFYUI_TLS_VERIFY", "on"),
        ("COMFYUI_TIMEOUT_READ", "90"),
        ("COMFYUI_SECURITY_MODE", "enforce"),
        ("COMFYUI_ALLOWED_DOWNLOAD_DOMAINS", " huggingface.co, ,example.org "),
        ("COMFYUI_TASKS_ENABLED", "YES"),
        ("COMFYUI_HUGGINGFACE_TOKEN", "hf_secret_value"),
    ]);
    let loaded = load(Some(&path), &env).unwrap();
    let c = &loaded.config;
    assert_eq!(c.comfyui.url, "https://gpu.example:8443");
    assert_eq!(c.comfyui.external_url, None, "set but empty means none");
    assert!(!c.comfyui.tls_verify, "only true/1/yes are true");
    assert_eq!(c.comfyui.timeout_read, 90);
    assert_eq!(c.security.mode, Mode::Enforce);
    assert_eq!(c.security.allowed_download_domains, ["huggingface.co", "example.org"]);
    assert!(c.tasks.enabled);
    assert_eq!(loaded.sources["comfyui.url"], Source::Env("COMFYUI_URL"));
    assert_eq!(loaded.sources["security.mode"], Source::Env("COMFYUI_SECURITY_MODE"));
    let shown = loaded.show();
    assert!(
        shown.contains("model_search.huggingface_token: \"***\"  # env COMFYUI_HUGGINGFACE_TOKEN"),
        "{shown}"
    );
    assert!(!shown.contains("hf_secret_value"));
    assert!(shown.contains("comfyui.timeout_connect: 30  # default"));
    assert!(!format!("{c:?}").contains("hf_secret_value"), "Debug masks secrets");
}

/// Environment variables for one case.
type Env<'a> = &'a [(&'a str, &'a str)];

#[test]
fn bad_values_name_the_origin_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, Env<'_>, &str)] = &[
        (
            "comfyui:\n  url: ftp://x\n",
            &[],
            "`comfyui.url` = \"ftp://x\": URL must use http or https",
        ),
        ("comfyui:\n  url: http://\n", &[], "URL must have a valid host"),
        ("security:\n  mode: Enforce\n", &[], "security.mode"),
        (
            "security:\n  max_upload_size_mb: 501\n",
            &[],
            "max_upload_size_mb must not exceed 500",
        ),
        ("rate_limits:\n  generation: 0\n", &[], "`rate_limits.generation`"),
        ("comfyui:\n  timeout_read: soon\n", &[], "timeout_read"),
        (
            "",
            &[("COMFYUI_TIMEOUT_CONNECT", "ten")],
            "environment variable COMFYUI_TIMEOUT_CONNECT: `comfyui.timeout_connect` = \"ten\"",
        ),
        (
            "",
            &[("COMFYUI_SECURITY_MODE", "strict")],
            "must be `audit` or `enforce`",
        ),
        ("comfyui: [1, 2\n", &[], "config file"),
        (
            "tools:\n  groups: [jobs, nope]\n",
            &[],
            "`tools.groups` = \"nope\": unknown group",
        ),
        (
            "logging:\n  audit_anchor_every: 0\n",
            &[],
            "`logging.audit_anchor_every` = \"0\": must be at least 1 record",
        ),
        ("logging:\n  audit_anchor: ''\n", &[], "`logging.audit_anchor`"),
        (
            "logging:\n  audit_flush: always\n",
            &[],
            "`logging.audit_flush`: unknown variant `always`, expected `interval` or `every_record`",
        ),
        (
            "logging:\n  audit_failure: open\n",
            &[],
            "`logging.audit_failure`: unknown variant `open`, expected `fail_closed` or `fail_open`",
        ),
        (
            "state:\n  redis_failure: Local\n",
            &[],
            "`state.redis_failure`: unknown variant `Local`, expected `local` or `fail_closed`",
        ),
    ];
    for (text, env, needle) in cases {
        let path = file(dir.path(), text);
        let err = load(Some(&path), &env_of(env)).unwrap_err();
        assert!(err.to_string().contains(needle), "{text:?} {env:?}: {err}");
    }
    let err = load(Some(&dir.path().join("absent.yaml")), &env_of(&[])).unwrap_err();
    assert!(
        matches!(err, ConfigError::Read { .. }),
        "an explicit file must exist: {err}"
    );
}

#[test]
fn closed_sets_take_their_documented_spellings() {
    let dir = tempfile::tempdir().unwrap();
    let defaults = load(Some(&file(dir.path(), "")), &env_of(&[])).unwrap();
    let c = &defaults.config;
    assert_eq!(
        (c.logging.audit_flush, c.logging.audit_failure, c.state.redis_failure),
        (AuditFlush::Interval, AuditFailure::FailClosed, RedisFailure::Local)
    );
    let path = file(
        dir.path(),
        "logging:\n  audit_flush: every_record\n  audit_failure: fail_open\nstate:\n  redis_failure: fail_closed\n",
    );
    let loaded = load(Some(&path), &env_of(&[])).unwrap();
    let c = &loaded.config;
    assert_eq!(
        (c.logging.audit_flush, c.logging.audit_failure, c.state.redis_failure),
        (
            AuditFlush::EveryRecord,
            AuditFailure::FailOpen,
            RedisFailure::FailClosed
        )
    );
    let shown = loaded.show();
    for line in [
        "logging.audit_flush: \"every_record\"  # file",
        "logging.audit_failure: \"fail_open\"  # file",
        "state.redis_failure: \"fail_closed\"  # file",
    ] {
        assert!(shown.contains(line), "{line}: {shown}");
    }
}

#[test]
fn unknown_keys_warn_with_the_nearest_known_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        dir.path(),
        "comfyui:\n  urll: http://x\nsecurity:\n  allowed_node: [A]\nwhatever: 1\n",
    );
    let loaded = load(Some(&path), &env_of(&[])).unwrap();
    assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].ends_with("unknown key `comfyui.urll` is ignored (did you mean `comfyui.url`?)"));
    assert!(loaded.warnings[1].ends_with("(did you mean `security.allowed_nodes`?)"));
    assert!(loaded.warnings[2].ends_with("unknown key `whatever` is ignored"));
}

#[test]
fn the_file_can_be_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "comfyui:\n  url: http://chosen:1\n");
    let env = env_of(&[("COMFYUI_MCP_CONFIG", path.to_str().unwrap())]);
    assert_eq!(load(None, &env).unwrap().config.comfyui.url, "http://chosen:1");
    assert_eq!(load(None, &env).unwrap().sources["comfyui.url"], Source::File);
}

/// Known keys, a few unknown ones, and YAML's awkward corners.
fn yaml_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let key = prop_oneof![
        proptest::sample::select(comfy_mcp::config::KNOWN).prop_map(str::to_owned),
        "[a-z_.]{1,20}".prop_map(|s| s),
    ];
    let value = prop_oneof![
        Just("null".to_owned()),
        Just("~".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("&a [*a]".to_owned()),
        Just("!!binary aGk=".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "\\PC{0,30}".prop_map(|s| format!("{s:?}")),
        "[ -~]{0,30}",
    ];
    prop_oneof![
        proptest::collection::vec((key, value), 0..8).prop_map(|kv| {
            use std::fmt::Write as _;
            let mut text = String::new();
            for (k, v) in kv {
                // A dotted key becomes nested mappings.
                let parts: Vec<&str> = k.split('.').collect();
                for (depth, p) in parts.iter().enumerate() {
                    let _ = write!(text, "{}{p}:", "  ".repeat(depth));
                    if depth + 1 < parts.len() {
                        text.push('\n');
                    }
                }
                let _ = writeln!(text, " {v}");
            }
            text
        }),
        "\\PC{0,200}",
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 128, ..Default::default() })]

    /// Fuzz target `config_loader`: any file and any environment values
    /// give a config or an error, never a panic.
    #[test]
    fn fuzz_config_loader_never_panics(
        text in yaml_text(),
        env_values in proptest::collection::vec("\\PC{0,12}", 13),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), &text);
        let names = ["COMFYUI_URL", "COMFYUI_EXTERNAL_URL", "COMFYUI_TLS_VERIFY", "COMFYUI_TIMEOUT_CONNECT",
            "COMFYUI_TIMEOUT_READ", "COMFYUI_SECURITY_MODE", "COMFYUI_AUDIT_FILE", "COMFYUI_HUGGINGFACE_TOKEN",
            "COMFYUI_CIVITAI_API_KEY", "COMFYUI_MAX_SEARCH_RESULTS", "COMFYUI_ALLOWED_DOWNLOAD_DOMAINS",
            "COMFYUI_TASKS_ENABLED", "COMFYUI_TASKS_BACKEND_URL"];
        let pairs: Vec<(&str, &str)> = names.iter().copied().zip(env_values.iter().map(String::as_str)).collect();
        let _ = load(Some(&path), &env_of(&pairs));
        let _ = load(Some(&path), &env_of(&[]));
    }
}

#[test]
fn an_oversized_config_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), &format!("# {}\n", "x".repeat(2 << 20)));
    let err = load(Some(&path), &env_of(&[])).unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
}
