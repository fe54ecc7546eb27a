//! The Streamable HTTP transport of the real binary: safe defaults, the
//! bearer token, the refusal to serve a public address without one.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use comfy_test_support::HttpServer;

struct Running {
    _server: HttpServer,
    addr: String,
    _home: tempfile::TempDir,
}

/// Starts `comfy-mcp --sim` with the remote transport on a free port.
fn start(remote: &str, env: &[(&str, &str)]) -> Running {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".comfyui-mcp")).unwrap();
    std::fs::write(
        home.path().join(".comfyui-mcp/config.yaml"),
        format!("transport:\n  remote:\n    enabled: true\n    port: 0\n{remote}"),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"));
    cmd.arg("--sim")
        .env("HOME", home.path())
        .env_remove("COMFYUI_MCP_CONFIG")
        .env_remove("COMFYUI_MCP_AUTH_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let server = HttpServer::start(&mut cmd).expect("the server printed its address");
    Running {
        addr: server.addr().to_owned(),
        _server: server,
        _home: home,
    }
}

/// Sends one raw HTTP/1.1 request; returns the status line and the rest.
fn send(addr: &str, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer and close before reading everything (413):
    // what it said is read below either way.
    let _ = s.write_all(request.as_bytes());
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the headers and some body, or the connection closes.
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&out);
                if text.contains("\r\n\r\n") && (text.contains("\"jsonrpc\"") || !text.contains("event-stream")) {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

fn post(addr: &str, extra_headers: &str, body: &str) -> (u16, String) {
    send(
        addr,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{extra_headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn safe_defaults_on_loopback() {
    let s = start("", &[]);
    let (status, body) = send(
        &s.addr,
        &format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", s.addr),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = post(&s.addr, "", INIT);
    assert_eq!(status, 200, "a loopback client initialises");
    for origin in [
        "https://evil.example",
        "null",
        "http://localhost.evil.example:80",
        "http://127.0.0.1.nip.io:80",
    ] {
        let (status, _) = post(&s.addr, &format!("Origin: {origin}\r\n"), INIT);
        assert_eq!(status, 403, "Origin {origin}");
    }
    let (status, _) = post(&s.addr, "Origin: http://localhost:3000\r\n", INIT);
    assert_eq!(status, 200, "a loopback origin passes");
    let (status, _) = send(
        &s.addr,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{INIT}",
            INIT.len()
        ),
    );
    assert_eq!(status, 403, "a foreign Host (DNS rebinding)");
    let (status, _) = send(
        &s.addr,
        &format!(
            "GET /elsewhere HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            s.addr
        ),
    );
    assert_eq!(status, 404);
    // A declared length over 4 MiB is refused before the body is sent.
    let (status, _) = send(
        &s.addr,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            s.addr,
            5 << 20
        ),
    );
    assert_eq!(status, 413, "bodies are bounded");
    for (body, code, needle) in [
        ("{not json", "-32700", "Parse error"),
        (
            &format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)) as &str,
            "-32700",
            "64 levels",
        ),
        (
            &format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":{}1{}}}}}"#,
                "[".repeat(80),
                "]".repeat(80)
            ),
            "-32700",
            "64 levels",
        ),
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
            "-32600",
            "batches are not supported",
        ),
    ] {
        let (status, text) = post(&s.addr, "", body);
        assert_eq!(status, 400, "{text}");
        let json = text.split("\r\n\r\n").nth(1).unwrap();
        assert!(
            json.contains(&format!(r#""code":{code}"#)) && json.contains(needle),
            "{json}"
        );
        assert!(
            json.contains(r#""jsonrpc":"2.0""#) && json.contains(r#""id":null"#),
            "{json}"
        );
    }
}

#[test]
fn repeated_or_malformed_hosts_and_origins_are_refused() {
    let s = start(
        "    auth_tokens:\n      alice: alice-token-0123456789\n      bob: bob-token-0123456789abc\n",
        &[],
    );
    let addr = &s.addr;
    let port = addr.rsplit(':').next().unwrap();
    let auth = "Authorization: Bearer alice-token-0123456789\r\n";
    let request = |target: &str, head: &str| {
        format!(
            "POST {target} HTTP/1.1\r\n{head}{auth}Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{INIT}",
            INIT.len()
        )
    };
    // What passes: a loopback Host, also in absolute form.
    assert_eq!(send(addr, &request("/mcp", &format!("Host: {addr}\r\n"))).0, 200);
    assert_eq!(
        send(
            addr,
            &request(&format!("http://{addr}/mcp"), &format!("Host: {addr}\r\n"))
        )
        .0,
        200
    );
    for (why, target, head, expected) in [
        (
            "two Host headers, the first loopback",
            "/mcp".to_owned(),
            format!("Host: {addr}\r\nHost: evil.example\r\n"),
            400,
        ),
        (
            "two Host headers, the second loopback",
            "/mcp".to_owned(),
            format!("Host: evil.example\r\nHost: {addr}\r\n"),
            400,
        ),
        (
            "two Origin headers, the first loopback",
            "/mcp".to_owned(),
            format!("Host: {addr}\r\nOrigin: http://localhost:3000\r\nOrigin: https://evil.example\r\n"),
            400,
        ),
        (
            "two session ids",
            "/mcp".to_owned(),
            format!("Host: {addr}\r\nMcp-Session-Id: a\r\nMcp-Session-Id: b\r\n"),
            400,
        ),
        (
            "a trailing dot after the port",
            "/mcp".to_owned(),
            format!("Host: 127.0.0.1:{port}.\r\n"),
            400,
        ),
        (
            "user info in Host",
            "/mcp".to_owned(),
            format!("Host: evil.example@127.0.0.1:{port}\r\n"),
            400,
        ),
        (
            "an absolute-form target naming a foreign host",
            "http://evil.example/mcp".to_owned(),
            format!("Host: {addr}\r\n"),
            403,
        ),
        (
            "an absolute-form target naming a foreign host with a port",
            format!("http://evil.example:{port}/mcp"),
            format!("Host: {addr}\r\n"),
            403,
        ),
    ] {
        let (status, text) = send(addr, &request(&target, &head));
        assert_eq!(status, expected, "{why}: {text}");
    }
    // Two Authorization headers (Alice's, then Bob's) are refused too.
    let (status, text) = send(
        addr,
        &request(
            "/mcp",
            &format!("Host: {addr}\r\nAuthorization: Bearer bob-token-0123456789abc\r\n"),
        ),
    );
    assert_eq!(status, 400, "{text}");
}

/// The `Mcp-Session-Id` of an `initialize` answer.
fn session_of(text: &str) -> String {
    text.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("mcp-session-id")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no session id in {text}"))
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "time is the subject: the server is another process, its idle timer runs on the real clock, \
              and any request to the session would renew it"
)]
fn sessions_are_capped_and_expire_when_idle() {
    let s = start("    max_sessions: 2\n    session_idle_timeout: 2\n", &[]);
    let (status, first) = post(&s.addr, "", INIT);
    assert_eq!(status, 200, "{first}");
    let first = session_of(&first);
    let (status, second) = post(&s.addr, "", INIT);
    assert_eq!(status, 200);
    let second = session_of(&second);
    let (status, text) = post(&s.addr, "", INIT);
    assert_eq!(status, 503, "a third session is refused: {text}");
    assert!(text.to_lowercase().contains("retry-after: 30"), "{text}");
    // Ending one makes room.
    let (status, _) = send(
        &s.addr,
        &format!(
            "DELETE /mcp HTTP/1.1\r\nHost: {}\r\nMcp-Session-Id: {second}\r\nConnection: close\r\n\r\n",
            s.addr
        ),
    );
    assert_eq!(status, 204, "DELETE of a live session");
    let (status, third) = post(&s.addr, "", INIT);
    assert_eq!(status, 200, "{third}");
    // A used session lives on; an idle one is gone (404, start again).
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    let session = |id: &str| format!("Mcp-Session-Id: {id}\r\nMCP-Protocol-Version: 2025-11-25\r\n");
    let (status, text) = post(&s.addr, &session(&first), ping);
    assert_eq!(status, 200, "{text}");
    std::thread::sleep(Duration::from_millis(2500));
    let (status, text) = post(&s.addr, &session(&first), ping);
    assert_eq!(status, 404, "an idle session expires: {text}");
    // Expired sessions no longer count against the cap.
    assert_eq!(post(&s.addr, "", INIT).0, 200);
    assert_eq!(post(&s.addr, "", INIT).0, 200);
}

#[test]
fn slow_clients_cannot_hold_a_connection() {
    let s = start("    header_timeout: 1\n    request_timeout: 1\n", &[]);
    // Headers that never end (slow loris): the server hangs up.
    let started = std::time::Instant::now();
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        .unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the server waited {:?}",
        started.elapsed()
    );
    // A body that never arrives: 408.
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"jsonrpc\"",
            s.addr
        )
        .as_bytes(),
    )
    .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = c.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[test]
fn the_bearer_token_is_required_and_never_taken_from_the_query() {
    let s = start("    auth_token: s3cret-token\n", &[]);
    let (status, text) = post(&s.addr, "", INIT);
    assert_eq!(status, 401);
    assert!(text.to_lowercase().contains("www-authenticate: bearer"), "{text}");
    let (status, _) = post(&s.addr, "Authorization: Bearer wrong\r\n", INIT);
    assert_eq!(status, 401);
    let (status, _) = post(&s.addr, "Authorization: Bearer s3cret-token\r\n", INIT);
    assert_eq!(status, 200);
    let (status, _) = send(
        &s.addr,
        &format!(
            "POST /mcp?token=s3cret-token HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{INIT}",
            s.addr,
            INIT.len()
        ),
    );
    assert_eq!(status, 400, "no tokens in URLs");
    // The environment variable works too.
    let s = start("", &[("COMFYUI_MCP_AUTH_TOKEN", "from-env")]);
    assert_eq!(post(&s.addr, "", INIT).0, 401);
    assert_eq!(post(&s.addr, "Authorization: Bearer from-env\r\n", INIT).0, 200);
}

#[test]
fn a_public_address_needs_a_token_or_an_explicit_opt_out() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".comfyui-mcp")).unwrap();
    std::fs::write(
        home.path().join(".comfyui-mcp/config.yaml"),
        "transport:\n  remote:\n    enabled: true\n    host: 0.0.0.0\n    port: 0\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"))
        .arg("--sim")
        .env("HOME", home.path())
        .env_remove("COMFYUI_MCP_CONFIG")
        .env_remove("COMFYUI_MCP_AUTH_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("refusing to serve on 0.0.0.0 without transport.remote.auth_token")
    );
}

#[test]
fn tls_with_a_certificate_and_key() {
    use rustls_pki_types::{CertificateDer, ServerName};

    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let s = start(
        &format!(
            "    auth_token: tls-t0ken-0123456789\n    tls_cert: {}\n    tls_key: {}\n",
            cert.display(),
            key.display()
        ),
        &[],
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(certified.cert.der().to_vec())).unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(&s.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer tls-t0ken-0123456789\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{INIT}",
            s.addr,
            INIT.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"serverInfo\""), "{answer}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let (status, _) = post(&s.addr, "Authorization: Bearer tls-t0ken-0123456789\r\n", INIT);
    assert_eq!(status, 0);
}

#[test]
fn a_missing_tls_key_stops_the_start_with_its_name() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".comfyui-mcp")).unwrap();
    std::fs::write(
        home.path().join(".comfyui-mcp/config.yaml"),
        "transport:\n  remote:\n    enabled: true\n    port: 0\n    tls_cert: /nonexistent/cert.pem\n    tls_key: /nonexistent/key.pem\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"))
        .arg("--sim")
        .env("HOME", home.path())
        .env_remove("COMFYUI_MCP_CONFIG")
        .env_remove("COMFYUI_MCP_AUTH_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("transport.remote.tls_cert /nonexistent/cert.pem"),
        "{stderr}"
    );
}

#[test]
fn older_protocol_revisions_keep_working() {
    let s = start("", &[]);
    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let init = INIT.replace("2025-11-25", version);
        let (status, text) = post(&s.addr, "", &init);
        assert_eq!(status, 200, "{version}: {text}");
        assert!(
            text.contains(&format!(r#""protocolVersion":"{version}""#)),
            "{version}: {text}"
        );
        let session = format!("Mcp-Session-Id: {}\r\n", session_of(&text));
        let (status, _) = post(
            &s.addr,
            &session,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        );
        assert_eq!(status, 202, "{version}");
        let (status, text) = post(&s.addr, &session, r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
        assert_eq!(status, 200, "{version}: {text}");
        assert!(text.contains(r#""tools":[{"#), "{version}: {text}");
    }
}

/// Sends `INIT` with `host` as `Host` and `origin` (if any) as `Origin`.
fn init_as(addr: &str, host: &str, origin: Option<&str>) -> (u16, String) {
    let origin = origin.map(|o| format!("Origin: {o}\r\n")).unwrap_or_default();
    send(
        addr,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: {host}\r\n{origin}Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{INIT}",
            INIT.len()
        ),
    )
}

#[test]
fn allowed_hosts_and_origins_widen_the_loopback_defaults() {
    let s = start(
        "    allowed_hosts: [\"mcp.example.com:8443\", gpu-box.example]\n    allowed_origins: [\"https://app.example:443\", \"https://ide.example:*\"]\n",
        &[],
    );
    let addr = &s.addr;
    let port = addr.rsplit(':').next().unwrap();
    for (host, origin, expected, why) in [
        (addr.clone(), None, 200, "loopback Host stays allowed"),
        (format!("localhost:{port}"), None, 200, "localhost stays allowed"),
        (format!("[::1]:{port}"), None, 200, "::1 stays allowed"),
        (
            "mcp.example.com:8443".to_owned(),
            None,
            200,
            "a configured host with its port",
        ),
        (
            "MCP.example.com:8443".to_owned(),
            None,
            200,
            "host names are case-insensitive",
        ),
        (
            "gpu-box.example:1234".to_owned(),
            None,
            200,
            "a configured name without a port: any port",
        ),
        (
            "mcp.example.com:443".to_owned(),
            None,
            403,
            "a configured host on another port",
        ),
        (
            "mcp.example.com".to_owned(),
            None,
            403,
            "a configured host without its port",
        ),
        (
            "evil.example".to_owned(),
            None,
            403,
            "DNS rebinding: the attacker's name",
        ),
        (
            format!("127.0.0.1.nip.io:{port}"),
            None,
            403,
            "a name that resolves to loopback",
        ),
        (
            addr.clone(),
            Some("http://localhost:3000"),
            200,
            "a loopback origin stays allowed",
        ),
        (
            addr.clone(),
            Some("https://127.0.0.1:9"),
            200,
            "a loopback https origin",
        ),
        (
            addr.clone(),
            Some("https://app.example"),
            200,
            "the default port of a configured origin",
        ),
        (
            addr.clone(),
            Some("https://app.example:443"),
            200,
            "a configured origin",
        ),
        (
            addr.clone(),
            Some("https://ide.example:7777"),
            200,
            "`:*` allows any port",
        ),
        (
            addr.clone(),
            Some("https://app.example:8443"),
            403,
            "a configured origin on another port",
        ),
        (
            addr.clone(),
            Some("http://app.example:443"),
            403,
            "a configured origin over another scheme",
        ),
        (
            addr.clone(),
            Some("https://app.example.evil.example"),
            403,
            "a longer name",
        ),
        (addr.clone(), Some("null"), 403, "the null origin"),
        (addr.clone(), Some("https://evil.example"), 403, "a foreign origin"),
        (
            "mcp.example.com:8443".to_owned(),
            Some("https://evil.example"),
            403,
            "an allowed host, a foreign origin",
        ),
    ] {
        let (status, text) = init_as(addr, &host, origin);
        assert_eq!(status, expected, "{why} (Host {host}, Origin {origin:?}): {text}");
    }
}

#[test]
fn loopback_can_be_dropped_for_a_remote_deployment() {
    let s = start(
        "    allow_loopback: false\n    allowed_hosts: [mcp.example.com]\n    allowed_origins: [\"https://app.example:443\"]\n",
        &[],
    );
    let addr = &s.addr;
    let port = addr.rsplit(':').next().unwrap();
    assert_eq!(init_as(addr, &format!("mcp.example.com:{port}"), None).0, 200);
    assert_eq!(
        init_as(addr, &format!("mcp.example.com:{port}"), Some("https://app.example")).0,
        200
    );
    for (host, origin) in [
        (addr.clone(), None),
        (format!("localhost:{port}"), None),
        (format!("mcp.example.com:{port}"), Some("http://localhost:3000")),
        (format!("mcp.example.com:{port}"), Some("http://127.0.0.1:8188")),
    ] {
        let (status, text) = init_as(addr, &host, origin);
        assert_eq!(status, 403, "Host {host}, Origin {origin:?}: {text}");
    }
}

/// Runs the binary with `remote` and expects it to refuse to start with
/// `needle` on stderr.
fn refuses_to_start(remote: &str, needle: &str) {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".comfyui-mcp")).unwrap();
    std::fs::write(
        home.path().join(".comfyui-mcp/config.yaml"),
        format!("transport:\n  remote:\n    enabled: true\n    port: 0\n{remote}"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_comfy-mcp"))
        .arg("--sim")
        .env("HOME", home.path())
        .env_remove("COMFYUI_MCP_CONFIG")
        .env_remove("COMFYUI_MCP_AUTH_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{remote}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(needle), "{remote}: {stderr}");
}

#[test]
fn unclear_host_and_origin_settings_stop_the_start() {
    refuses_to_start(
        "    allowed_origins: [\"https://app.example\"]\n",
        "transport.remote.allowed_origins: \"https://app.example\" has no port",
    );
    refuses_to_start(
        "    allowed_origins: [\"null\"]\n",
        "transport.remote.allowed_origins: \"null\"",
    );
    refuses_to_start(
        "    allowed_hosts: [\"http://mcp.example.com\"]\n",
        "transport.remote.allowed_hosts: \"http://mcp.example.com\"",
    );
    refuses_to_start("    allow_loopback: false\n", "transport.remote.allowed_hosts is empty");
}

#[test]
fn deleting_a_session_ends_it_for_good() {
    let s = start("", &[]);
    let addr = &s.addr;
    let delete = |id: &str| {
        send(
            addr,
            &format!(
                "DELETE /mcp HTTP/1.1\r\nHost: {addr}\r\nMcp-Session-Id: {id}\r\nMCP-Protocol-Version: 2025-11-25\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    let (status, text) = post(addr, "", INIT);
    assert_eq!(status, 200, "{text}");
    let id = session_of(&text);
    let (status, text) = delete(&id);
    assert_eq!(status, 204, "an ended session: {text}");
    assert!(!text.to_lowercase().contains("content-length: 1"), "no body: {text}");
    let (status, text) = delete(&id);
    assert_eq!(status, 404, "ending it again: {text}");
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    let (status, text) = post(
        addr,
        &format!("Mcp-Session-Id: {id}\r\nMCP-Protocol-Version: 2025-11-25\r\n"),
        ping,
    );
    assert_eq!(status, 404, "the id is unknown afterwards: {text}");
    let (status, text) = delete("00000000-0000-4000-8000-000000000000");
    assert_eq!(status, 404, "a session that never existed: {text}");
    // Without a session id, rmcp's own refusal stands.
    let (status, _) = send(
        addr,
        &format!("DELETE /mcp HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 400);
    // The Host check comes first: a foreign Host ends nothing.
    let (status, text) = post(addr, "", INIT);
    assert_eq!(status, 200);
    let id = session_of(&text);
    let (status, _) = send(
        addr,
        &format!("DELETE /mcp HTTP/1.1\r\nHost: evil.example\r\nMcp-Session-Id: {id}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 403);
    assert_eq!(delete(&id).0, 204, "the session survived the refused DELETE");
}
