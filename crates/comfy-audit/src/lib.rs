//! The audit log: one JSON line for every tool call, with secrets redacted.
//!
//! This crate will own the audit event type, its sinks and the redaction of
//! secrets before anything is written.
//!
//! Invariant: stands alone. It knows nothing of MCP, tower or ComfyUI.
