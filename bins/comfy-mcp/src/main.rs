//! `comfy-mcp`: the MCP server for ComfyUI. See `comfy-mcp --help`.

mod cli;
mod hook;
mod smoke;
#[cfg(unix)]
mod stdio;

fn main() -> std::process::ExitCode {
    cli::main()
}
