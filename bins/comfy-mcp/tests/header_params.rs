//! The `Mcp-Param-*` header check (SEP-2243) through our HTTP gate, over
//! real HTTP: a tool argument marked `x-mcp-header` must come with a
//! header that carries the same value, plain or as `=?base64?...?=`. A
//! header that disagrees with the argument, is malformed, is missing or is
//! sent twice is refused with HTTP 400 and JSON-RPC `-32020` (header
//! mismatch), and the tool does not run. No shipped tool marks an argument
//! (`crates/comfy-mcp/tests/schemas.rs` checks that), so this runs against
//! the conformance fixture tool `test_header_param` (its `region` is
//! `Mcp-Param-Region`): the same `Server` and `http::serve` the shipped
//! binary runs, built with the test-only feature `conformance-fixtures`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use serde_json::{Value, json};

/// The server with the fixture tools over HTTP on a free port (no
/// tokens: loopback), its audit log in `home`; its address and what stops it.
async fn serve(home: &std::path::Path, comfyui: &str) -> (String, tokio_util::sync::CancellationToken) {
    let mut config = comfy_mcp::config::Config::default();
    config.transport.remote.enabled = true;
    "127.0.0.1".clone_into(&mut config.transport.remote.host);
    config.transport.remote.port = 0;
    comfyui.clone_into(&mut config.comfyui.url);
    config.logging.audit_file = home.join("audit.log").to_string_lossy().into_owned();
    let remote = config.transport.remote.clone();
    let server = comfy_mcp::Server::new(config, None).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let addr = comfy_mcp::http::serve(server, &remote, stop.clone()).await.unwrap();
    (addr.to_string(), stop)
}

/// One `tools/call` of `test_header_param` with `region` in the body and
/// `headers`: the status line and the JSON-RPC answer.
async fn call(addr: &str, region: &str, headers: &[(&'static str, &'static str)]) -> (String, Value) {
    let params = json!({
        "name": "test_header_param",
        "arguments": {"region": region},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    });
    let (addr, headers) = (addr.to_owned(), headers.to_vec());
    tokio::task::spawn_blocking(move || {
        support::post_2026(&addr, "", ("tools/call", "test_header_param"), &params, &headers)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_param_header_must_agree_with_its_argument() {
    let sim = comfy_sim::Sim::builder().start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (addr, stop) = serve(home.path(), &sim.url()).await;

    // Agreeing, plain and in Base64 ("eu-west"): the tool runs.
    for header in ["eu-west", "=?base64?ZXUtd2VzdA==?="] {
        let (status, answer) = call(&addr, "eu-west", &[("Mcp-Param-Region", header)]).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{header}: {status} {answer}");
        assert_eq!(answer["result"]["content"][0]["text"], "Region: eu-west", "{answer}");
    }

    // Disagreeing, malformed (bad Base64), missing, sent twice: HTTP 400
    // and -32020, and the tool does not run.
    let refused: [(&str, &[(&str, &str)]); 4] = [
        ("mismatch", &[("Mcp-Param-Region", "us-east")]),
        ("bad base64", &[("Mcp-Param-Region", "=?base64?!!not base64!!?=")]),
        ("missing", &[]),
        (
            "twice",
            &[("Mcp-Param-Region", "eu-west"), ("Mcp-Param-Region", "eu-west")],
        ),
    ];
    for (case, headers) in refused {
        let (status, answer) = call(&addr, "eu-west", headers).await;
        assert!(status.starts_with("HTTP/1.1 400"), "{case}: {status} {answer}");
        assert_eq!(answer["error"]["code"], -32020, "{case}: {answer}");
        assert!(answer.get("result").is_none(), "{case}: {answer}");
    }
    let message = call(&addr, "eu-west", &[("Mcp-Param-Region", "us-east")]).await.1["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("Mcp-Param-Region"), "{message}");
    stop.cancel();
}
