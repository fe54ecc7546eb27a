//! The writer: the file, its chain and its rotation, behind one lock.
//!
//! [`AuditLog::write`] redacts the record on the caller's task and returns
//! only once the line is in the file (and on disk, with
//! [`FlushPolicy::EveryRecord`]), so a server that answers after `write`
//! returns never answers a call whose record a crash could lose.
//!
//! Every file operation (`stat`, `write`, rotation's renames, `fsync`, the
//! anchor) happens on one dedicated writer thread, never on the caller's
//! async runtime thread: a slow or failing disk delays the records, not
//! the runtime. Records go through a bounded queue (backpressure, never a
//! drop); the thread takes every record waiting at once, and with
//! [`FlushPolicy::EveryRecord`] covers them with one `fsync` (group
//! commit), with [`FlushPolicy::Interval`] (the default) syncs at most
//! once per interval. With interval flushing, the thread looks for the
//! next record for 50 µs after a batch before it sleeps, and the caller's
//! task yields and looks for its answer for as long before it waits: a
//! caller writing records one after another then costs no thread wake-up
//! on either side (nothing blocks a runtime thread: other tasks run
//! between the looks). A sync that fails with nobody
//! waiting on it fails the next record under [`FailurePolicy::FailClosed`]
//! (what was written before may not be on disk), and is counted and
//! reported under [`FailurePolicy::FailOpen`].
//!
//! Each record is one line written with one append; on a failed write the
//! file is cut back to where it was, so no half line stays. Before each
//! batch the path is checked: a deleted file is recreated, a file replaced
//! by another is reopened, a symlink is refused (it is never followed);
//! each new file starts with a `chain_start` line linking it to the last
//! record written.

mod anchor;
mod config;
mod worker;

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

pub use self::config::{AnchorTarget, AuditConfig, AuditError, FailurePolicy, FlushPolicy, expand_home};
use self::worker::Writer;
use self::worker::acked;
use self::worker::run;
use crate::record::Record;
use crate::redact::Redactor;

/// Where the writer answers one record: its sequence number or the error.
type Ack = oneshot::Sender<Result<u64, AuditError>>;

enum Msg {
    Record {
        fields: Map<String, Value>,
        done: Ack,
        _permit: OwnedSemaphorePermit,
    },
    Flush(oneshot::Sender<Result<(), AuditError>>),
}

/// The audit log. Cheap to share behind an `Arc`; every method takes
/// `&self`.
pub struct AuditLog {
    /// To the writer thread; `None` once closed. Held only to send (a
    /// push onto an unbounded queue: it never waits).
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    permits: Arc<Semaphore>,
    /// Shared with the writer thread, which counts failed syncs under
    /// [`FailurePolicy::FailOpen`].
    failures: Arc<AtomicU64>,
    failure: FailurePolicy,
    redactor: Redactor,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Whether callers look for the answer before they wait for it
    /// (interval flushing, where the answer comes in microseconds).
    spin: bool,
    #[cfg(feature = "fault-injection")]
    faults: Arc<Faults>,
}

/// Test hooks: make the writer's syncs fail or take long, as a failing or
/// slow disk would (`fault-injection` feature, for this crate's tests).
#[cfg(feature = "fault-injection")]
#[derive(Debug, Default)]
pub struct Faults {
    /// Every sync fails with an I/O error while set.
    pub fail_sync: std::sync::atomic::AtomicBool,
    /// Every sync first sleeps this many milliseconds.
    pub sync_delay_ms: AtomicU64,
    /// Interval syncs finished, whatever their outcome (counted after the
    /// outcome is recorded), so a test waits for one instead of sleeping.
    pub timer_syncs: AtomicU64,
}

impl AuditLog {
    /// Starts the writer for `config`. The file is opened with the first
    /// record, so a log that cannot be written yet follows the failure
    /// policy per record and recovers when the cause goes away.
    ///
    /// # Errors
    /// The writer thread could not be started.
    pub fn open(config: AuditConfig) -> Result<Self, AuditError> {
        let (tx, rx) = mpsc::channel();
        let permits = Arc::new(Semaphore::new(config.queue.max(1)));
        let failure = config.failure;
        let redactor = config.redactor;
        let interval = match config.flush {
            FlushPolicy::Interval(every) => Some(every),
            FlushPolicy::EveryRecord => None,
        };
        let path = config.path.display().to_string();
        let failures = Arc::new(AtomicU64::new(0));
        let mut writer = Writer::new(config, Arc::clone(&failures));
        #[cfg(feature = "fault-injection")]
        let faults = Arc::clone(&writer.faults);
        let thread = std::thread::Builder::new()
            .name("comfy-audit".to_owned())
            .spawn(move || run(&mut writer, &rx, interval))
            .map_err(|e| AuditError::Io {
                path,
                op: "starting the writer",
                reason: e.to_string(),
            })?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            permits,
            failures,
            failure,
            redactor,
            thread: Mutex::new(Some(thread)),
            spin: interval.is_some(),
            #[cfg(feature = "fault-injection")]
            faults,
        })
    }

    /// The writer's fault hooks (`fault-injection` feature).
    #[cfg(feature = "fault-injection")]
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Hands `msg` to the writer thread.
    fn send(&self, msg: Msg) -> Result<(), AuditError> {
        let tx = self.tx.lock().map_err(|_| AuditError::Closed)?;
        tx.as_ref()
            .ok_or(AuditError::Closed)?
            .send(msg)
            .map_err(|_| AuditError::Closed)
    }

    /// Redacts `record` and writes it; returns its sequence number once the
    /// line is in the file (and synced, with [`FlushPolicy::EveryRecord`]).
    /// Under [`FailurePolicy::FailOpen`] a failure is counted, reported on
    /// stderr, and returned as `Ok(None)`.
    ///
    /// # Errors
    /// [`AuditError`] under [`FailurePolicy::FailClosed`].
    pub async fn write(&self, record: Record) -> Result<Option<u64>, AuditError> {
        let result = self.write_inner(record).await;
        match (result, self.failure) {
            (Ok(seq), _) => Ok(Some(seq)),
            (Err(e), FailurePolicy::FailClosed) => Err(e),
            (Err(e), FailurePolicy::FailOpen) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                eprintln!("comfy-audit: record not written (fail_open): {e}");
                Ok(None)
            }
        }
    }

    async fn write_inner(&self, record: Record) -> Result<u64, AuditError> {
        let mut value = serde_json::to_value(&record).unwrap_or(Value::Null);
        self.redactor.redact(&mut value);
        let Value::Object(fields) = value else {
            return Err(AuditError::Closed);
        };
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| AuditError::Closed)?;
        let (done, wait) = oneshot::channel();
        self.send(Msg::Record {
            fields,
            done,
            _permit: permit,
        })?;
        if self.spin {
            acked(wait).await
        } else {
            wait.await.map_err(|_| AuditError::Closed)?
        }
    }

    /// Syncs everything written so far to disk.
    ///
    /// # Errors
    /// The sync failed, or the log is closed.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let (done, wait) = oneshot::channel();
        self.send(Msg::Flush(done))?;
        wait.await.map_err(|_| AuditError::Closed)?
    }

    /// Records that could not be written under [`FailurePolicy::FailOpen`].
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Writes and syncs everything queued, then stops the writer. Later
    /// writes fail with [`AuditError::Closed`]. Blocks the calling thread
    /// until the writer has finished; call it on shutdown (SIGTERM,
    /// SIGINT, end of input).
    pub fn close(&self) {
        // The thread writes what is queued, anchors and syncs, and stops.
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// Whether `file` (opened as `id`) is still the regular file at `path`;
/// refuses a link or a non-file there (dropping `file`). `op` names the
/// check in an I/O error.
fn still_open(
    file: &mut Option<File>,
    id: Option<(u64, u64)>,
    path: &Path,
    op: &'static str,
) -> Result<bool, AuditError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            *file = None;
            Err(AuditError::Symlink {
                path: path.display().to_string(),
            })
        }
        Ok(meta) if !meta.is_file() => {
            *file = None;
            Err(AuditError::NotRegular {
                path: path.display().to_string(),
            })
        }
        Ok(meta) if file.is_some() && file_id(&meta) == id => Ok(true),
        Ok(_) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(path, op, &e)),
    }
}

/// Syncs `file`'s data when `dirty` (then clears it); nothing without a
/// file. `path` and `op` name the sync in an I/O error.
fn sync_if_dirty(file: Option<&File>, dirty: &mut bool, path: &Path, op: &'static str) -> Result<(), AuditError> {
    if !*dirty {
        return Ok(());
    }
    let Some(file) = file else { return Ok(()) };
    file.sync_data().map_err(|e| io_error(path, op, &e))?;
    *dirty = false;
    Ok(())
}

fn io_error(path: &Path, op: &'static str, e: &std::io::Error) -> AuditError {
    AuditError::Io {
        path: path.display().to_string(),
        op,
        reason: e.to_string(),
    }
}

/// `2026-11-25T05:59:23.176095+00:00`, as the peer writes timestamps.
fn timestamp() -> String {
    let s = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
    match s.strip_suffix('Z') {
        Some(t) => format!("{t}+00:00"),
        None => s,
    }
}

/// `CreateFileW`'s flag to open a reparse point (symbolic link, junction)
/// rather than what it points to.
#[cfg(windows)]
pub(super) const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;

#[cfg(unix)]
#[allow(clippy::unnecessary_wraps, reason = "None on platforms without inodes")]
fn file_id(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}
