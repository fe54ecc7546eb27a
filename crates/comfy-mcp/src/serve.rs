//! `comfy-mcp` (or `comfy-mcp serve`): the server over stdio, or over
//! Streamable HTTP when `transport.remote.enabled`, until the client goes
//! away or a signal comes; then the cancels of abandoned jobs are given
//! time to reach ComfyUI ([`SETTLE_CANCELS`]) and the audit log is synced.

use std::process::ExitCode;
use std::time::Duration;

use crate::{Config, Server};

/// How long the server waits on the way out for the cancels of abandoned
/// jobs to reach ComfyUI.
pub const SETTLE_CANCELS: Duration = Duration::from_secs(5);

/// Serves `config` until the stdio client leaves or `stop` completes (the
/// HTTP transport serves until `stop`).
///
/// # Errors
/// The server cannot start (configuration, listening address, TLS files)
/// or the MCP handshake over stdio fails.
pub async fn run(config: Config, stop: impl Future<Output = ()>) -> Result<ExitCode, String> {
    use rmcp::ServiceExt;
    let remote = config.transport.remote.clone();
    let server = Server::new(config, None).map_err(|e| e.to_string())?;
    if remote.enabled {
        let cancel = tokio_util::sync::CancellationToken::new();
        let addr = crate::http::serve(server.clone(), &remote, cancel.clone())
            .await
            .map_err(|e| e.to_string())?;
        let scheme = if remote.tls_cert.is_some() { "https" } else { "http" };
        eprintln!("comfy-mcp: MCP over Streamable HTTP at {scheme}://{addr}/mcp (health: /healthz)");
        stop.await;
        cancel.cancel();
        server.settle_cancels(SETTLE_CANCELS).await;
        server.close();
        return Ok(ExitCode::SUCCESS);
    }
    // Pipes and sockets are read and written on the reactor (see
    // `stdio`); their flags are put back when `_restore` drops, after the
    // transport has stopped.
    #[cfg(unix)]
    let (transport, _restore) = {
        let (input, output, restore) = crate::stdio::open();
        ((input, output), restore)
    };
    #[cfg(not(unix))]
    let transport = rmcp::transport::stdio();
    let running = server
        .clone()
        .serve(transport)
        .await
        .map_err(|e| format!("MCP handshake failed: {e}"))?;
    let cancel = running.cancellation_token();
    tokio::select! {
        quit = running.waiting() => {
            if let Err(e) = quit {
                tracing::error!("server task failed: {e}");
            }
        }
        () = stop => {
            tracing::info!("signal received, shutting down");
            cancel.cancel();
        }
    }
    // Abandoned calls' jobs are cancelled, and everything queued for the
    // audit log is written and synced.
    server.settle_cancels(SETTLE_CANCELS).await;
    server.close();
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGTERM or SIGINT (Ctrl-C); never, when those cannot be
/// listened for.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
