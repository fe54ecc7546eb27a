//! The server `cargo xtask conformance` runs the MCP conformance suite's
//! fixture scenarios against: `comfy-mcp --sim` over Streamable HTTP (the
//! same handler, tower stack, HTTP gate and task store, from the config at
//! `COMFYUI_MCP_CONFIG` or `~/.comfyui-mcp/config.yaml`), built with the
//! `conformance-fixtures` feature, so it also serves the suite's fixture
//! tools, and with `tasks.enabled` (off by default), so the suite's task
//! scenarios have the tasks extension. Test code: an example, never part of an install.
//!
//! Prints `Streamable HTTP at <url>` on stderr once it listens; stops on
//! SIGINT (the xtask kills it).

use std::process::ExitCode;

async fn run() -> Result<(), String> {
    let env = |k: &str| std::env::var(k).ok();
    let mut config = comfy_mcp::config::load(None, &env).map_err(|e| e.to_string())?.config;
    config.transport.remote.enabled = true;
    // The suite's task scenarios need the tasks extension (off by default).
    config.tasks.enabled = true;
    let sim = comfy_sim::Sim::builder()
        .steps_per_second(20.0)
        .start()
        .await
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    config.comfyui.url = sim.url();
    config.comfyui.external_url = None;
    let remote = config.transport.remote.clone();
    let server = comfy_mcp::Server::new(config, None).map_err(|e| e.to_string())?;
    let stop = tokio_util::sync::CancellationToken::new();
    let addr = comfy_mcp::http::serve(server.clone(), &remote, stop.clone())
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("conformance-server: Streamable HTTP at http://{addr}/mcp");
    let _ = tokio::signal::ctrl_c().await;
    stop.cancel();
    server.close();
    drop(sim);
    Ok(())
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("conformance-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance-server: {e}");
            ExitCode::FAILURE
        }
    }
}
