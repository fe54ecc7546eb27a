//! The ComfyUI workflow graph model.
//!
//! This crate will own the in-memory model of a ComfyUI workflow in both of
//! its formats (the API format `POST /prompt` takes and the editor format the
//! ComfyUI front end saves), strict parsing of untrusted workflow JSON,
//! UI-to-API conversion, batch edit operations, validation against
//! `/object_info`, analysis and summaries, and the built-in templates.
//!
//! Invariant: pure data. No I/O, no tokio, no network, and no other `comfy-*`
//! crate; `cargo xtask deps` enforces it.
