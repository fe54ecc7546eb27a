//! The audit log: a JSON line for every tool call, secrets redacted,
//! durable before the call is answered, and chained so tampering shows.
//!
//! Why a crate of its own: the record of what an assistant did must not
//! depend on the code it audits. It takes structured [`Record`]s and makes
//! them durable; it knows nothing of MCP, tower or ComfyUI (`cargo xtask
//! deps` forbids them).
//!
//! - [`record`]: the record, with the peer's fields in the peer's order
//!   plus outcome, transport, client, session, principal;
//! - [`redact`]: secret keys masked at any depth, secret-looking values
//!   masked anywhere, large values replaced by size and hash;
//! - [`writer`]: [`AuditLog`]: records through a bounded queue to one
//!   writer thread that does every file operation (never the caller's
//!   runtime thread), interval or group-committed fsyncs (`every_record`);
//!   fail-closed or fail-open (a failed sync included), rotation, recovery
//!   from deleted or replaced files, symlinks never followed, the chain
//!   head copied to an anchor;
//! - [`chain`]: the SHA-256 hash chain and [`chain::verify`];
//! - [`cli`]: `audit verify` and `audit tail`, for the server binary.
//!
//! Invariant: a record is one complete line, written with one append by
//! the writer thread; a failed write leaves no partial line.
//! Invariant: nothing is written before redaction.

pub mod chain;
pub mod cli;
pub mod record;
pub mod redact;
pub mod writer;

pub use record::{Outcome, Record};
pub use redact::Redactor;
pub use writer::{AnchorTarget, AuditConfig, AuditError, AuditLog, FailurePolicy, FlushPolicy, expand_home};
