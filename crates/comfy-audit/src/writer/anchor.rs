//! The anchor: the chain's head written to a second file or sent to syslog,
//! so a log cut short or rewritten shows against it. Apart from the writer's
//! file handling, which it only reuses.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::config::{AnchorTarget, AuditError};
use super::file_id;
use super::io_error;
use super::still_open;
use super::sync_if_dirty;
use super::timestamp;

/// The open anchor target.
pub(super) struct Anchor {
    pub(super) target: AnchorTarget,
    pub(super) file: Option<File>,
    /// Device and inode of the open file, to notice replacement.
    pub(super) id: Option<(u64, u64)>,
    pub(super) dirty: bool,
    /// The sequence number last anchored by this process.
    pub(super) anchored: Option<u64>,
}

impl Anchor {
    fn target_path(&self) -> &Path {
        match &self.target {
            AnchorTarget::File(p) | AnchorTarget::Syslog(p) => p,
        }
    }

    fn error(&self, op: &'static str, e: &std::io::Error) -> AuditError {
        io_error(self.target_path(), op, e)
    }

    /// Records that `log`'s record `seq` has hash `hash`.
    pub(super) fn write(&mut self, log: &Path, seq: u64, hash: &str) -> Result<(), AuditError> {
        match self.target.clone() {
            AnchorTarget::File(path) => {
                self.ensure_open(&path)?;
                let mut line = serde_json::to_string(&serde_json::json!({
                    "timestamp": timestamp(),
                    "log": log.display().to_string(),
                    "seq": seq,
                    "hash": hash,
                }))
                .unwrap_or_default();
                line.push('\n');
                let Some(file) = self.file.as_mut() else {
                    return Err(AuditError::Closed);
                };
                if let Err(e) = file.write_all(line.as_bytes()) {
                    self.file = None;
                    return Err(self.error("writing the anchor", &e));
                }
                self.dirty = true;
                Ok(())
            }
            AnchorTarget::Syslog(socket) => {
                send_syslog(&socket, log, seq, hash).map_err(|e| self.error("sending the anchor", &e))
            }
        }
    }

    /// Opens (or reopens, when deleted or replaced) the anchor file.
    fn ensure_open(&mut self, path: &Path) -> Result<(), AuditError> {
        if still_open(&mut self.file, self.id, path, "checking the anchor file")? {
            return Ok(());
        }
        self.file = None;
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        }
        #[cfg(windows)]
        {
            use std::os::windows::fs::OpenOptionsExt;
            // A symbolic link is opened as itself and refused as not
            // regular below, as O_NOFOLLOW makes the open fail on Unix.
            options.custom_flags(super::FILE_FLAG_OPEN_REPARSE_POINT);
        }
        let file = options
            .open(path)
            .map_err(|e| io_error(path, "opening the anchor file", &e))?;
        let meta = file
            .metadata()
            .map_err(|e| io_error(path, "checking the anchor file", &e))?;
        if !meta.is_file() {
            return Err(AuditError::NotRegular {
                path: path.display().to_string(),
            });
        }
        self.id = file_id(&meta);
        self.file = Some(file);
        Ok(())
    }

    pub(super) fn sync(&mut self) -> Result<(), AuditError> {
        let path = match &self.target {
            AnchorTarget::File(p) | AnchorTarget::Syslog(p) => p,
        };
        sync_if_dirty(self.file.as_ref(), &mut self.dirty, path, "fsync of the anchor file")
    }
}

/// One anchor as a syslog message (RFC 3164 framing without a timestamp:
/// the daemon adds its own): `authpriv.notice`, tag `comfy-mcp`.
#[cfg(unix)]
pub(super) fn send_syslog(socket: &Path, log: &Path, seq: u64, hash: &str) -> std::io::Result<()> {
    // Facility authpriv (10), severity notice (5).
    let message = format!(
        "<85>comfy-mcp[{}]: audit anchor log={} seq={seq} hash={hash}",
        std::process::id(),
        log.display()
    );
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    sock.send_to(message.as_bytes(), socket).map(|_| ())
}

#[cfg(not(unix))]
pub(super) fn send_syslog(_: &Path, _: &Path, _: u64, _: &str) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "syslog needs a Unix socket",
    ))
}
