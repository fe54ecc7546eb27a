//! `comfyui-mcp-secure`: the same program under the peer's command name,
//! so MCP client configs written for the Python server work unchanged.

mod cli;
mod hook;
mod smoke;
#[cfg(unix)]
mod stdio;

fn main() -> std::process::ExitCode {
    cli::main()
}
