//! `comfy-mcp check`: one line per check, in order: the configuration,
//! ComfyUI (each backend, when there are several), the optional plugins
//! (ComfyUI-Manager, ComfyUI-Model-Manager) and the audit log. Exit code 0
//! when nothing failed, 1 when something did.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

use crate::{Config, Server};

/// The optional plugins, each with a tool that needs it.
const PLUGINS: [(&str, &str); 2] = [
    ("ComfyUI-Manager", "comfyui_get_custom_node_status"),
    ("ComfyUI-Model-Manager", "comfyui_get_download_tasks"),
];

#[allow(clippy::print_stdout, reason = "the checklist is the command's output")]
fn line(text: &str) {
    println!("{text}");
}

/// The configuration could not be loaded: its line, and the exit code.
pub fn config_failed(error: &str) -> ExitCode {
    line(&format!("config: FAILED: {error}"));
    ExitCode::from(1)
}

/// The configuration loaded from `file` (none: the defaults).
pub fn config_ok(file: Option<&Path>) {
    let file = file.map_or_else(|| "none (defaults)".to_owned(), |f| f.display().to_string());
    line(&format!("config: ok ({file})"));
}

/// The checks after the configuration's, on a server for `config`.
///
/// # Errors
/// The server cannot be built from `config`.
pub async fn run(config: Config) -> Result<ExitCode, String> {
    let url = config.comfyui.url.clone();
    let server = Server::new(config, None).map_err(|e| e.to_string())?;
    let mut ok = true;
    let reply = server.call("comfyui_get_system_info", None).await;
    if let (Some(info), Some(false) | None) = (&reply.result.structured_content, reply.result.is_error) {
        if let Some(backends) = info.get("backends").and_then(Value::as_array) {
            // Several backends: each one's state; any down fails the check.
            for b in backends {
                ok &= backend(b);
            }
        } else {
            line(&format!(
                "comfyui: ok ({url}, version {})",
                info.get("comfyui_version").and_then(Value::as_str).unwrap_or("unknown")
            ));
        }
    } else {
        ok = false;
        line(&format!(
            "comfyui: FAILED ({url}): {}",
            reply.error_text().unwrap_or_default()
        ));
    }
    if ok {
        for (plugin, tool) in PLUGINS {
            let r = server.call(tool, None).await;
            match r.error_text() {
                None => line(&format!("plugin {plugin}: installed")),
                Some(t) if t.contains("is not installed") => {
                    line(&format!("plugin {plugin}: not installed (optional)"));
                }
                Some(t) => line(&format!("plugin {plugin}: unknown ({t})")),
            }
        }
    }
    // The calls above wrote their records: the audit log is writable if
    // none was refused for that reason.
    if reply.error_text().is_some_and(|t| t.contains("audit record")) {
        ok = false;
        line(&format!(
            "audit log: FAILED: {}",
            reply.error_text().unwrap_or_default()
        ));
    } else {
        line("audit log: ok");
    }
    server.close();
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// One backend's line from `comfyui_get_system_info`; whether it is up.
fn backend(b: &Value) -> bool {
    let name = b.get("name").and_then(Value::as_str).unwrap_or("?");
    if b.get("healthy").and_then(Value::as_bool) == Some(true) {
        line(&format!(
            "backend {name}: ok (version {}, queue {})",
            b.get("comfyui_version").and_then(Value::as_str).unwrap_or("unknown"),
            b.get("queue_depth").and_then(Value::as_u64).unwrap_or(0)
        ));
        true
    } else {
        line(&format!(
            "backend {name}: FAILED: {}",
            b.get("error").and_then(Value::as_str).unwrap_or("unreachable")
        ));
        false
    }
}
