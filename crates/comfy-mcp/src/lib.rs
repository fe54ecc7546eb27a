//! The MCP server for ComfyUI.
//!
//! This crate will own the MCP tools (`comfyui_*`), the configuration file and
//! environment variables, the tower middleware (audit, rate limit, timeout)
//! around every tool call, and the stdio and Streamable HTTP transports.
//!
//! Invariant: the only crate that knows about JSON-RPC, MCP types or tower;
//! it joins the client, the workflow model, the guard and the audit log.
