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
//! command's output. What each command does is in the library
//! (`comfy_mcp::serve`, `call`, `check`, `smoke`, `hook`,
//! `comfy_audit::cli`); `--sim` starts `comfy_sim` when the `sim` feature
//! is on (the default), and says this build has no simulator when not.

#![allow(clippy::print_stdout, reason = "a command-line front end prints its output")]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::PossibleValuesParser;
use clap::{CommandFactory, Parser, Subcommand};
use comfy_mcp::Config;
use comfy_mcp::config::{self, Loaded};
use comfy_mcp::serve::shutdown_signal;
use comfy_mcp::tools::{Catalog, Category};

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
    /// comfyui.url: try every tool without a GPU. Never used unless asked
    /// (builds without the `sim` feature have no simulator).
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
    Tools {
        /// Only the tools of this rate-limit category.
        #[arg(long, value_parser = PossibleValuesParser::new(Category::ALL.map(Category::name)))]
        category: Option<String>,
    },
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

/// What keeps the simulator of `--sim` running (it stops when dropped).
#[cfg(feature = "sim")]
type SimGuard = comfy_sim::SimHandle;
#[cfg(not(feature = "sim"))]
type SimGuard = std::convert::Infallible;

/// With `--sim`, a simulator on a free loopback port, and the config
/// pointed at it.
#[cfg_attr(
    not(feature = "sim"),
    allow(clippy::unused_async, reason = "awaits the simulator's start with the `sim` feature")
)]
async fn with_sim(args: &Args, config: Config) -> Result<(Config, Option<SimGuard>), String> {
    if !args.sim {
        return Ok((config, None));
    }
    #[cfg(feature = "sim")]
    {
        let sim = comfy_sim::Sim::demo()
            .start()
            .await
            .map_err(|e| format!("cannot start the simulator: {e}"))?;
        tracing::warn!("--sim: using the ComfyUI simulator at {}", sim.url());
        let mut config = config;
        config.use_simulator(&sim.url());
        Ok((config, Some(sim)))
    }
    #[cfg(not(feature = "sim"))]
    {
        drop(config);
        Err(
            "--sim: this build of comfy-mcp has no simulator (it was built without the `sim` feature); \
             build from source with the default features, or point comfyui.url at a ComfyUI"
                .to_owned(),
        )
    }
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
            comfy_mcp::serve::run(config, shutdown_signal()).await
        }
        Some(Command::Tools { category }) => {
            let category = category.as_deref().and_then(Category::from_name);
            let text = serde_json::to_string_pretty(&Catalog::get().listing(category)).map_err(|e| e.to_string())?;
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Call { tool, arguments }) => {
            let loaded = load(&args)?;
            let arguments = comfy_mcp::call::arguments(arguments)?;
            let (config, _sim) = with_sim(&args, loaded.config).await?;
            comfy_mcp::call::run(config, tool, arguments).await
        }
        Some(Command::Config {
            command: ConfigCommand::Show,
        }) => {
            let loaded = load(&args)?;
            print!("{}", loaded.show());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Check) => {
            let loaded = match load(&args) {
                Ok(l) => l,
                Err(e) => return Ok(comfy_mcp::check::config_failed(&e)),
            };
            comfy_mcp::check::config_ok(loaded.file.as_deref());
            let (config, _sim) = with_sim(&args, loaded.config).await?;
            comfy_mcp::check::run(config).await
        }
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

/// How `hook` prints a warning (`comfy_mcp::hook::Format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum HookFormat {
    /// The hook JSON Claude Code reads (`systemMessage`, `additionalContext`).
    Json,
    /// The warning line alone.
    Text,
}
