//! `comfy-mcp`: the MCP server for ComfyUI. See `comfy-mcp --help`.

mod cli;
#[cfg(unix)]
mod stdio;

fn main() -> std::process::ExitCode {
    cli::main()
}
