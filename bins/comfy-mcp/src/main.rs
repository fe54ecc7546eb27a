//! `comfy-mcp`: the MCP server for ComfyUI. See `comfy-mcp --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
