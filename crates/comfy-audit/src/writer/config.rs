//! How the audit log is set up (path, flush and failure policies, the anchor
//! target) and the errors it reports. Plain data, apart from the writer, so
//! the server's config reads it without the writer's machinery.

use std::path::PathBuf;
use std::time::Duration;

use crate::redact::Redactor;

/// When records reach the disk (not only the page cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// `fsync` before `write` returns; one `fsync` covers every record
    /// waiting at that moment.
    EveryRecord,
    /// `fsync` at most this often (the default: every second), bounding
    /// what a power loss can take. A crash of the process loses nothing
    /// either way: `write` returns after the line is in the file.
    Interval(Duration),
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy::Interval(Duration::from_secs(1))
    }
}

/// What happens when a record cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// `write` fails, so the caller refuses the tool call (the default).
    #[default]
    FailClosed,
    /// `write` succeeds anyway; the error goes to stderr and to
    /// [`AuditLog::failures`](super::AuditLog::failures).
    FailOpen,
}

/// Where and how the log is written.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The log file (see [`expand_home`] for `~`).
    pub path: PathBuf,
    /// When records reach the disk.
    pub flush: FlushPolicy,
    /// What a write failure does.
    pub failure: FailurePolicy,
    /// Rotate when the file would grow past this many bytes; `None` never.
    pub rotate_bytes: Option<u64>,
    /// Rotated files kept (`audit.log.1` newest).
    pub keep: usize,
    /// Records that may wait for the writer before callers wait too.
    pub queue: usize,
    /// Masking and size limits.
    pub redactor: Redactor,
    /// Where the chain head is copied, outside the log; `None` nowhere.
    pub anchor: Option<AnchorTarget>,
    /// Copy the head after this many records (and after the first record
    /// a process writes, and on close).
    pub anchor_every: u64,
}

/// Where [`AuditLog`](super::AuditLog) copies the chain head (sequence number and hash of
/// the last record), so cutting records from the end of the log shows:
/// see [`crate::chain::verify_anchored`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorTarget {
    /// One JSON line per anchor appended to this file (mode 0600,
    /// symlinks refused), synced with the log.
    File(PathBuf),
    /// One message per anchor (facility `authpriv`, level `notice`) to the
    /// syslog socket at this path, usually `/dev/log`.
    Syslog(PathBuf),
}

impl AnchorTarget {
    /// `syslog` or a file path (`~` expanded), as `logging.audit_anchor`
    /// says.
    pub fn parse(s: &str) -> Self {
        if s == "syslog" {
            AnchorTarget::Syslog(PathBuf::from("/dev/log"))
        } else {
            AnchorTarget::File(expand_home(s))
        }
    }
}

impl AuditConfig {
    /// Defaults for `path`: flush every second, fail closed, rotate at
    /// 50 MiB keeping 5 files, 1,024 queued records, no anchor (every 100
    /// records when one is set).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            flush: FlushPolicy::default(),
            failure: FailurePolicy::default(),
            rotate_bytes: Some(50 << 20),
            keep: 5,
            queue: 1024,
            redactor: Redactor::default(),
            anchor: None,
            anchor_every: 100,
        }
    }
}

/// `~` or `~/...` against `$HOME`, as the peer expands `logging.audit_file`.
pub fn expand_home(path: &str) -> PathBuf {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    match (path.strip_prefix('~'), home) {
        (Some(""), Some(home)) => PathBuf::from(home),
        (Some(rest), Some(home)) if rest.starts_with('/') => PathBuf::from(home).join(&rest[1..]),
        _ => PathBuf::from(path),
    }
}

/// Why a record was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The file system refused (disk full, read-only, permissions, ...).
    #[error("audit log {path}: {op} failed: {reason}")]
    Io {
        /// The log file.
        path: String,
        /// What was being done.
        op: &'static str,
        /// The OS reason.
        reason: String,
    },
    /// The log path is a symlink; it is never followed.
    #[error("audit log {path}: is a symbolic link, refusing to follow it")]
    Symlink {
        /// The log file.
        path: String,
    },
    /// The log path is not a regular file.
    #[error("audit log {path}: not a regular file")]
    NotRegular {
        /// The log file.
        path: String,
    },
    /// The log was closed.
    #[error("audit log is closed")]
    Closed,
}
