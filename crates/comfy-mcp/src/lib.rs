//! The MCP server for ComfyUI: a drop-in replacement for
//! `comfyui-mcp-secure` 2.3.0 (same `comfyui_*` tools, parameters, config
//! file and environment variables).
//!
//! - [`config`]: the peer's config schema and environment variables, with
//!   provenance and errors that name file, key and value;
//! - [`tools`]: the tool catalog (schemas as published, the single source
//!   of argument rules) and what each tool does;
//! - [`stack`]: the tower stack every call passes through (audit, rate
//!   limit, deadline, concurrency, validation);
//! - [`backends`]: the ComfyUI servers, their health, and where a job
//!   goes and is;
//! - [`secrets`]: the Comfy account key paid API nodes use, kept out of
//!   every result and error;
//! - [`server`]: the rmcp handler;
//! - [`serve`], [`call`], [`check`], [`hook`] and [`smoke`]: the
//!   `comfy-mcp` commands (serve over stdio or HTTP until a signal, one
//!   call, the install check, the Claude Code hook, the live checklist);
//!   the binary only parses their arguments and calls them.
//!
//! Invariant: the only crate that knows about JSON-RPC, MCP types or tower;
//! it joins the client, the workflow model, the guard and the audit log,
//! and never depends on the simulator (only the binary wires it in).

pub mod backends;
pub mod budget;
pub mod call;
pub mod caller;
pub mod check;
pub mod config;
pub mod consent;
#[cfg(feature = "conformance-fixtures")]
pub mod fixtures;
pub mod hook;
pub mod http;
pub mod images;
pub mod jobs;
pub mod media;
pub mod secrets;
pub mod serve;
pub mod server;
pub mod skills;
pub mod smoke;
pub mod stack;
pub mod state;
#[cfg(unix)]
mod stdio;
pub mod tasks;
pub mod tools;

pub use config::{Config, load};
pub use server::Server;
