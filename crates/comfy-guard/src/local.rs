//! Reading a local file the server was pointed at (a workflow file, an
//! image to upload): never through a symlink, only a regular file, never
//! more than a bound. Errors name the rule, never the host path or the OS
//! message (which would carry it).

use std::io::Read as _;
use std::path::Path;

/// Why a local file was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocalFileError {
    /// There is no such file.
    #[error("local file rejected (file.not-found): no such file")]
    NotFound,
    /// The path is a symbolic link.
    #[error("local file rejected (file.symlink): symbolic links are not followed")]
    Symlink,
    /// A directory, device, socket or pipe.
    #[error("local file rejected (file.not-regular): not a regular file")]
    NotRegular,
    /// Larger than the bound.
    #[error("local file rejected (file.too-large): larger than {limit} bytes")]
    TooLarge {
        /// The bound.
        limit: u64,
    },
    /// Permission denied or another I/O failure (its kind only).
    #[error("local file rejected (file.unreadable): {kind}")]
    Unreadable {
        /// The kind of failure (`permission denied`, ...).
        kind: String,
    },
}

/// `CreateFileW`'s flag to open a reparse point (symbolic link, junction)
/// rather than what it points to.
#[cfg(windows)]
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;

fn io_error(e: &std::io::Error) -> LocalFileError {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return LocalFileError::Symlink;
    }
    match e.kind() {
        std::io::ErrorKind::NotFound => LocalFileError::NotFound,
        kind => LocalFileError::Unreadable { kind: kind.to_string() },
    }
}

/// Reads `path` whole if it is a regular file of at most `limit` bytes,
/// opened without following a symlink at its last component.
///
/// # Errors
/// [`LocalFileError`], naming the rule.
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, LocalFileError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // O_NONBLOCK so opening a FIFO does not wait for a writer.
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt as _;
        // Opens a symbolic link or junction itself instead of its target
        // (Windows' O_NOFOLLOW), so the type check below sees the link.
        options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
    }
    #[cfg(not(any(unix, windows)))]
    if std::fs::symlink_metadata(path).map_err(|e| io_error(&e))?.is_symlink() {
        return Err(LocalFileError::Symlink);
    }
    let file = options.open(path).map_err(|e| io_error(&e))?;
    let meta = file.metadata().map_err(|e| io_error(&e))?;
    if meta.file_type().is_symlink() {
        return Err(LocalFileError::Symlink);
    }
    if !meta.is_file() {
        return Err(LocalFileError::NotRegular);
    }
    if meta.len() > limit {
        return Err(LocalFileError::TooLarge { limit });
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow between the check and the read: read one byte past
    // the bound to notice.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| io_error(&e))?;
    if buf.len() as u64 > limit {
        return Err(LocalFileError::TooLarge { limit });
    }
    Ok(buf)
}
