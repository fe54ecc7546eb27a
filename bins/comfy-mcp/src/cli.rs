//! The command line: argument parsing and wiring only.
//!
//! - `comfy-mcp` (or `comfy-mcp serve`): the MCP server over stdio;
//! - `comfy-mcp tools`: every tool with its schemas, as `tools/list` gives them;
//! - `comfy-mcp call TOOL 'JSON'`: one call through the same stack;
//! - `comfy-mcp config show`: the effective configuration and where each
//!   value came from (secrets masked);
//! - `comfy-mcp check`: configuration, ComfyUI, audit log;
//! - `comfy-mcp smoke`: the operator's checklist against a live ComfyUI
//!   (`smoke.rs`);
//! - `comfy-mcp audit verify [FILE...]` and `comfy-mcp audit tail [FILE]`;
//! - `comfy-mcp hook post-tool-use`: the Claude Code plugin's security hook;
//! - `comfy-mcp completions SHELL` and `comfy-mcp man`: shell completions
//!   and the man page, generated from this definition.
//!
//! Logs go to stderr only; stdout carries MCP messages (serve) or the
//! command's output.

#![allow(clippy::print_stdout, reason = "a command-line front end prints its output")]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use comfy_mcp::config::{self, Loaded};
use comfy_mcp::{Config, Server};

#[derive(Parser)]
#[command(name = "comfy-mcp", version, about = "A secure MCP server for ComfyUI")]
struct Args {
    /// The config file (default: $COMFYUI_MCP_CONFIG, else ~/.comfyui-mcp/config.yaml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log level for stderr (overridden by RUST_LOG).
    #[arg(long, global = true, default_value = "warn")]
    log_level: String,
    /// Start an in-process ComfyUI simulator (comfy-sim) and use it instead of
    /// comfyui.url: try every tool without a GPU. Never used unless asked.
    #[arg(long, global = true)]
    sim: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over stdio (the default).
    Serve,
    /// Print every tool with its input and output schemas (JSON).
    Tools,
    /// Run one tool through the same checks, limits and audit log as a client call.
    Call {
        /// The tool, e.g. comfyui_get_queue.
        tool: String,
        /// Its arguments as a JSON object.
        #[arg(default_value = "{}")]
        arguments: String,
    },
    /// Show or check the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Check the configuration, the ComfyUI server and the audit log.
    Check,
    /// Check a live ComfyUI: connection, model folders, WebSocket, plugins,
    /// and a tiny Model-Manager download (created, followed, listed, deleted).
    Smoke {
        /// The ComfyUI to check (default: comfyui.url).
        #[arg(long)]
        url: Option<String>,
        /// Skip the download check.
        #[arg(long)]
        no_download: bool,
        /// The file to download (it must pass security.allowed_download_domains).
        #[arg(long, default_value = comfy_mcp::smoke::DEFAULT_URL)]
        download_url: String,
        /// The model folder it goes to (it is deleted again).
        #[arg(long, default_value = "loras")]
        folder: String,
        /// Seconds the download may take.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Verify or follow the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Claude Code hooks (the plugin's hooks/hooks.json runs these).
    Hook {
        #[command(subcommand)]
        event: HookEvent,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `comfy-mcp man > comfy-mcp.1`.
    Man,
}

#[derive(Subcommand)]
enum HookEvent {
    /// Read a PostToolUse hook input on stdin; print one warning line when the
    /// tool's result carries security findings. Always exits 0.
    PostToolUse {
        /// `json`: the hook output Claude Code reads; `text`: the bare warning.
        #[arg(long, value_enum, default_value = "json")]
        format: HookFormat,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// The effective configuration, each value with its source.
    Show,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exits 1 on the first modified, removed, inserted, reordered or cut record.
    Verify {
        /// Files, oldest first (default: the configured log and its rotated files).
        files: Vec<PathBuf>,
        /// The anchor file holding copies of the chain head (`logging.audit_anchor`), to catch a cut
        /// tail; `syslog` prints the head to compare by hand (default: the configured anchor, when no
        /// files are named).
        #[arg(long, value_name = "FILE|syslog")]
        anchor: Option<String>,
    },
    /// Print the last records, then new ones as they are written (Ctrl-C stops).
    Tail {
        /// The log (default: the configured one).
        file: Option<PathBuf>,
        /// How many existing records to show first.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
    },
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn load(args: &Args) -> Result<Loaded, String> {
    let loaded = config::load(args.config.as_deref(), &env).map_err(|e| e.to_string())?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    Ok(loaded)
}

/// With `--sim`, a simulator on a free loopback port, and the config
/// pointed at it. The handle stops the simulator when dropped.
async fn with_sim(args: &Args, mut config: Config) -> Result<(Config, Option<comfy_sim::SimHandle>), String> {
    if !args.sim {
        return Ok((config, None));
    }
    let sim = comfy_sim::Sim::builder()
        .steps_per_second(20.0)
        .model_manager(true)
        .manager(true)
        .model_search(true)
        .start()
        .await
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    tracing::warn!("--sim: using the ComfyUI simulator at {}", sim.url());
    config.comfyui.url = sim.url();
    config.comfyui.external_url = None;
    // The simulator also answers CivitAI's and HuggingFace's search APIs.
    config.model_search.civitai_api_base = sim.url();
    config.model_search.huggingface_api_base = sim.url();
    Ok((config, Some(sim)))
}

pub(crate) fn main() -> ExitCode {
    let args = Args::parse();
    // Commands that need no logging, config or runtime answer at once.
    match &args.command {
        Some(Command::Hook {
            event: HookEvent::PostToolUse { format },
        }) => {
            comfy_mcp::hook::run(match format {
                HookFormat::Json => comfy_mcp::hook::Format::Json,
                HookFormat::Text => comfy_mcp::hook::Format::Text,
            });
            return ExitCode::SUCCESS;
        }
        Some(Command::Completions { shell }) => {
            let mut cmd = Args::command();
            clap_complete::generate(*shell, &mut cmd, "comfy-mcp", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Some(Command::Man) => {
            return match clap_mangen::Man::new(Args::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("comfy-mcp: cannot write the man page: {e}");
                    ExitCode::from(2)
                }
            };
        }
        _ => {}
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("comfy-mcp: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("comfy-mcp: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, String> {
    match &args.command {
        None | Some(Command::Serve) => {
            let loaded = load(&args)?;
            let (config, _sim) = with_sim(&args, loaded.config).await?;
            serve(config).await
        }
        Some(Command::Tools) => {
            let tools = comfy_mcp::tools::Catalog::get().list();
            let text =
                serde_json::to_string_pretty(&serde_json::json!({ "tools": tools })).map_err(|e| e.to_string())?;
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Call { tool, arguments }) => {
            let loaded = load(&args)?;
            let parsed: serde_json::Value =
                serde_json::from_str(arguments).map_err(|e| format!("arguments are not JSON: {e}"))?;
            let serde_json::Value::Object(map) = parsed else {
                return Err("arguments must be a JSON object".to_owned());
            };
            let (config, _sim) = with_sim(&args, loaded.config).await?;
            let server = Server::new(config, None).map_err(|e| e.to_string())?;
            // A progress bar on stderr, when it is a terminal.
            let bar: Option<comfy_mcp::stack::ProgressFn> = std::io::stderr().is_terminal().then(|| {
                let draw: comfy_mcp::stack::ProgressFn =
                    std::sync::Arc::new(|done: f64, total: Option<f64>, message: &str| {
                        let line = match total.filter(|t| *t > 0.0) {
                            Some(t) => {
                                let filled = ((done / t).clamp(0.0, 1.0) * 30.0).round() as usize;
                                format!(
                                    "[{}{}] {done}/{t} {message}",
                                    "#".repeat(filled),
                                    ".".repeat(30 - filled)
                                )
                            }
                            None => message.to_owned(),
                        };
                        eprint!("\r\x1b[2K{line}");
                    });
                draw
            });
            let reply = server.call_with_progress(tool, Some(map), bar.clone()).await;
            if bar.is_some() {
                eprintln!();
            }
            server.close();
            let text = serde_json::to_string_pretty(&reply.result).map_err(|e| e.to_string())?;
            println!("{text}");
            Ok(if reply.result.is_error == Some(true) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Some(Command::Config {
            command: ConfigCommand::Show,
        }) => {
            let loaded = load(&args)?;
            print!("{}", loaded.show());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Check) => check(&args).await,
        Some(Command::Smoke {
            url,
            no_download,
            download_url,
            folder,
            timeout,
        }) => {
            let loaded = load(&args)?;
            let (config, _sim) = with_sim(&args, loaded.config).await?;
            let opts = comfy_mcp::smoke::Options {
                url: url.clone(),
                no_download: *no_download,
                download_url: download_url.clone(),
                folder: folder.clone(),
                timeout: std::time::Duration::from_secs(*timeout),
            };
            Ok(comfy_mcp::smoke::run(&config, &opts, shutdown_signal()).await)
        }
        Some(Command::Audit { command }) => audit(&args, command),
        Some(Command::Hook { .. } | Command::Completions { .. } | Command::Man) => Ok(ExitCode::SUCCESS),
    }
}

fn audit_path(args: &Args) -> Result<PathBuf, String> {
    Ok(comfy_audit::expand_home(&load(args)?.config.logging.audit_file))
}

fn audit(args: &Args, command: &AuditCommand) -> Result<ExitCode, String> {
    match command {
        AuditCommand::Verify { files, anchor } => {
            let (set, anchor) = if files.is_empty() {
                let logging = load(args)?.config.logging;
                let set = comfy_audit::cli::log_files(&comfy_audit::expand_home(&logging.audit_file));
                (set, anchor.clone().or(logging.audit_anchor))
            } else {
                (comfy_audit::cli::LogFiles::given(files.clone()), anchor.clone())
            };
            let anchor = anchor.as_deref().map(comfy_audit::AnchorTarget::parse);
            let code = comfy_audit::cli::run_verify(&set, anchor.as_ref(), &mut std::io::stdout());
            Ok(ExitCode::from(code))
        }
        AuditCommand::Tail { file, lines } => {
            let path = match file {
                Some(f) => f.clone(),
                None => audit_path(args)?,
            };
            let mut forever = || true;
            comfy_audit::cli::run_tail(&path, *lines, &mut forever, &mut std::io::stdout())
                .map_err(|e| format!("audit tail {}: {e}", path.display()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn check(args: &Args) -> Result<ExitCode, String> {
    let loaded = match load(args) {
        Ok(l) => l,
        Err(e) => {
            println!("config: FAILED: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let file = loaded
        .file
        .as_ref()
        .map_or_else(|| "none (defaults)".to_owned(), |f| f.display().to_string());
    println!("config: ok ({file})");
    let (config, _sim) = with_sim(args, loaded.config).await?;
    let url = config.comfyui.url.clone();
    let server = Server::new(config, None).map_err(|e| e.to_string())?;
    let mut ok = true;
    let reply = server.call("comfyui_get_system_info", None).await;
    if let (Some(info), Some(false) | None) = (&reply.result.structured_content, reply.result.is_error) {
        if let Some(backends) = info.get("backends").and_then(|b| b.as_array()) {
            // Several backends: each one's state; any down fails the check.
            for b in backends {
                let name = b.get("name").and_then(|v| v.as_str()).unwrap_or("?");
                if b.get("healthy").and_then(serde_json::Value::as_bool) == Some(true) {
                    println!(
                        "backend {name}: ok (version {}, queue {})",
                        b.get("comfyui_version").and_then(|v| v.as_str()).unwrap_or("unknown"),
                        b.get("queue_depth").and_then(serde_json::Value::as_u64).unwrap_or(0)
                    );
                } else {
                    ok = false;
                    println!(
                        "backend {name}: FAILED: {}",
                        b.get("error").and_then(|v| v.as_str()).unwrap_or("unreachable")
                    );
                }
            }
        } else {
            println!(
                "comfyui: ok ({url}, version {})",
                info.get("comfyui_version")
                    .and_then(|v| v.as_str())
                    .unwrap_or("unknown")
            );
        }
    } else {
        ok = false;
        println!("comfyui: FAILED ({url}): {}", reply.error_text().unwrap_or_default());
    }
    if ok {
        for (plugin, tool) in [
            ("ComfyUI-Manager", "comfyui_get_custom_node_status"),
            ("ComfyUI-Model-Manager", "comfyui_get_download_tasks"),
        ] {
            let r = server.call(tool, None).await;
            match r.error_text() {
                None => println!("plugin {plugin}: installed"),
                Some(t) if t.contains("is not installed") => println!("plugin {plugin}: not installed (optional)"),
                Some(t) => println!("plugin {plugin}: unknown ({t})"),
            }
        }
    }
    // The calls above wrote their records: the audit log is writable if
    // none was refused for that reason.
    if reply.error_text().is_some_and(|t| t.contains("audit record")) {
        ok = false;
        println!("audit log: FAILED: {}", reply.error_text().unwrap_or_default());
    } else {
        println!("audit log: ok");
    }
    server.close();
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// How long the server waits on the way out for the cancels of abandoned
/// jobs to reach ComfyUI.
const SETTLE_CANCELS: std::time::Duration = std::time::Duration::from_secs(5);

async fn serve(config: Config) -> Result<ExitCode, String> {
    use rmcp::ServiceExt;
    let remote = config.transport.remote.clone();
    let server = Server::new(config, None).map_err(|e| e.to_string())?;
    if remote.enabled {
        let stop = tokio_util::sync::CancellationToken::new();
        let addr = comfy_mcp::http::serve(server.clone(), &remote, stop.clone())
            .await
            .map_err(|e| e.to_string())?;
        let scheme = if remote.tls_cert.is_some() { "https" } else { "http" };
        eprintln!("comfy-mcp: MCP over Streamable HTTP at {scheme}://{addr}/mcp (health: /healthz)");
        shutdown_signal().await;
        stop.cancel();
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
        () = shutdown_signal() => {
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

/// How `hook` prints a warning (`comfy_mcp::hook::Format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum HookFormat {
    /// The hook JSON Claude Code reads (`systemMessage`, `additionalContext`).
    Json,
    /// The warning line alone.
    Text,
}

/// SIGTERM or SIGINT (Ctrl-C).
pub(crate) async fn shutdown_signal() {
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
