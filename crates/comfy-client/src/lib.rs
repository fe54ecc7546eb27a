//! A typed, bounded ComfyUI HTTP and WebSocket client.
//!
//! This crate will own every conversation with a ComfyUI server: the REST
//! routes, the `/ws` event stream, uploads and downloads, each with timeouts
//! and size caps, so that Rust applications can embed it without MCP.
//!
//! Invariant: knows nothing of MCP, of the guard or of the audit log; it may
//! depend only on `comfy-workflow` among our crates.
