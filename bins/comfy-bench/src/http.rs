//! The Streamable HTTP side: starting a server on it, single calls and the
//! many-client hammer, and plain GETs to the simulator.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use comfy_test_support::HttpServer;
use serde_json::{Value, json};

/// A plain HTTP GET to the simulator; the body as JSON.
pub(crate) fn sim_get(sim: &str, path: &str) -> Result<Value> {
    let addr = sim.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let body = text.split("\r\n\r\n").nth(1).context("no body")?;
    Ok(serde_json::from_str(body)?)
}

/// One stateless (2026-07-28) `tools/call` over HTTP; whether it succeeded.
pub(crate) fn http_call(addr: &str, tool: &str) -> bool {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
    .to_string();
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: {tool}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.starts_with("HTTP/1.1 200") && text.contains("\"result\"") && !text.contains("\"isError\":true")
}

/// Starts `bin` with the Streamable HTTP transport (its config in
/// `home`), and returns it (stopped on drop) with the address it listens
/// on.
pub(crate) fn spawn_http(bin: &Path, home: &Path, comfyui_url: Option<&str>) -> Result<(HttpServer, String)> {
    let mut cmd = Command::new(bin);
    cmd.env("HOME", home)
        .env_remove("COMFYUI_MCP_CONFIG")
        .env_remove("COMFYUI_MCP_AUTH_TOKEN")
        .env("RUST_LOG", "error");
    match comfyui_url {
        Some(url) => cmd.env("COMFYUI_URL", url),
        None => cmd.env_remove("COMFYUI_URL"),
    };
    let server = HttpServer::start(&mut cmd).with_context(|| format!("{} did not serve HTTP", bin.display()))?;
    let addr = server.addr().to_owned();
    Ok((server, addr))
}

/// `clients` threads of `per_client` `comfyui_get_queue` calls each, client
/// i on `addrs[i % n]` (a load balancer's round robin): the calls that
/// succeeded and how long all took.
pub(crate) fn hammer(addrs: &[String], clients: usize, per_client: usize) -> (usize, Duration) {
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|i| {
            let addr = addrs[i % addrs.len()].clone();
            std::thread::spawn(move || {
                (0..per_client)
                    .filter(|_| http_call(&addr, "comfyui_get_queue"))
                    .count()
            })
        })
        .collect();
    let ok = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    (ok, started.elapsed())
}
