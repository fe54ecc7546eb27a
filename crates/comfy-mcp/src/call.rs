//! `comfy-mcp call TOOL 'JSON'`: one tool call through the same checks,
//! limits and audit log as a client's, its result printed as JSON on
//! stdout (exit 1 when the result is an error), with a progress bar on
//! stderr when stderr is a terminal.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use rmcp::model::JsonObject;

use crate::stack::ProgressFn;
use crate::{Config, Server};

/// Width of the progress bar, in characters.
const BAR: usize = 30;

/// The call's arguments, from the command line's JSON text.
///
/// # Errors
/// The text is not JSON, or not a JSON object.
pub fn arguments(text: &str) -> Result<JsonObject, String> {
    let parsed: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("arguments are not JSON: {e}"))?;
    let serde_json::Value::Object(map) = parsed else {
        return Err("arguments must be a JSON object".to_owned());
    };
    Ok(map)
}

/// One progress line: a bar when the total is known, else the message.
fn progress_line(done: f64, total: Option<f64>, message: &str) -> String {
    match total.filter(|t| *t > 0.0) {
        Some(t) => {
            let filled = ((done / t).clamp(0.0, 1.0) * BAR as f64).round() as usize;
            format!(
                "[{}{}] {done}/{t} {message}",
                "#".repeat(filled),
                ".".repeat(BAR - filled)
            )
        }
        None => message.to_owned(),
    }
}

/// Calls `tool` with `args` on a server for `config` and prints the result.
///
/// # Errors
/// The server cannot start, or the result cannot be written as JSON.
pub async fn run(config: Config, tool: &str, args: JsonObject) -> Result<ExitCode, String> {
    let server = Server::new(config, None).map_err(|e| e.to_string())?;
    let bar: Option<ProgressFn> = std::io::stderr().is_terminal().then(|| {
        let draw: ProgressFn = Arc::new(|done: f64, total: Option<f64>, message: &str| {
            eprint!("\r\x1b[2K{}", progress_line(done, total, message));
        });
        draw
    });
    let reply = server.call_with_progress(tool, Some(args), bar.clone()).await;
    if bar.is_some() {
        eprintln!();
    }
    server.close();
    let text = serde_json::to_string_pretty(&reply.result).map_err(|e| e.to_string())?;
    #[allow(clippy::print_stdout, reason = "the result is the command's output")]
    {
        println!("{text}");
    }
    Ok(if reply.result.is_error == Some(true) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::{arguments, progress_line};

    #[test]
    fn arguments_must_be_a_json_object() {
        assert_eq!(arguments(r#"{"a": 1}"#).map(|m| m.len()), Ok(1));
        assert_eq!(arguments("[1]"), Err("arguments must be a JSON object".to_owned()));
        assert!(arguments("{").is_err_and(|e| e.starts_with("arguments are not JSON")));
    }

    #[test]
    fn the_bar_is_filled_by_the_fraction_done() {
        assert_eq!(
            progress_line(1.0, Some(2.0), "step"),
            format!("[{}{}] 1/2 step", "#".repeat(15), ".".repeat(15))
        );
        assert_eq!(progress_line(5.0, None, "waiting"), "waiting");
        assert_eq!(progress_line(3.0, Some(0.0), "waiting"), "waiting");
    }
}
