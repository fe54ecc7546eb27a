//! `comfy-mcp-rs`: the name of the Python and npm packages, so
//! `uvx comfy-mcp-rs` and `npx comfy-mcp-rs` find a command of that name.
//! The same small program as `comfyui-mcp-secure` (`alias.rs`): it starts
//! the `comfy-mcp` beside it.

#[path = "alias.rs"]
mod alias;

fn main() -> std::process::ExitCode {
    alias::main()
}
