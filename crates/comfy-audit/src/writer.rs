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

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::chain::{seal, tail_of};
use crate::record::Record;
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
    /// [`AuditLog::failures`].
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

/// Where [`AuditLog`] copies the chain head (sequence number and hash of
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

/// The file the writer holds, and where the chain stands.
struct Writer {
    config: AuditConfig,
    file: Option<File>,
    /// Bytes in the open file.
    len: u64,
    /// Device and inode of the open file, to notice replacement.
    id: Option<(u64, u64)>,
    /// Hash and sequence number of the last record written.
    chain: Option<(String, u64)>,
    /// Whether the open file needs a `chain_start` line first.
    needs_anchor: bool,
    /// The open file's number in the chain (its `chain_start`'s
    /// `extra.file`): 0 for the file that began it, one more for each file
    /// begun after it, so `audit verify` can tell a file rotation dropped
    /// from one that was removed.
    file_no: u64,
    dirty: bool,
    last_sync: Instant,
    /// A sync that failed under [`FailurePolicy::FailClosed`], not yet
    /// reported: the next record fails with it.
    sync_error: Option<AuditError>,
    /// [`AuditLog::failures`], counted here for failed syncs under
    /// [`FailurePolicy::FailOpen`].
    failures: Arc<AtomicU64>,
    #[cfg(feature = "fault-injection")]
    faults: Arc<Faults>,
    /// Where the head is copied.
    anchor: Option<Anchor>,
}

/// The open anchor target.
struct Anchor {
    target: AnchorTarget,
    file: Option<File>,
    /// Device and inode of the open file, to notice replacement.
    id: Option<(u64, u64)>,
    dirty: bool,
    /// The sequence number last anchored by this process.
    anchored: Option<u64>,
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
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;

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

/// How long the writer thread looks for the next record before it sleeps:
/// a caller that writes records one after the other (as a tool call does)
/// finds it awake, which saves a thread wake-up per record.
const SPIN: Duration = Duration::from_micros(50);

/// The writer thread: every write, rotation and sync happens here, never
/// on the caller's (async runtime) thread. It takes queued records and
/// flush requests in batches and, with `interval` flushing, syncs at most
/// once per interval.
fn run(writer: &mut Writer, rx: &mpsc::Receiver<Msg>, interval: Option<Duration>) {
    loop {
        let next = match interval.and_then(|_| spin(rx)) {
            Some(m) => Ok(m),
            None => match interval {
                Some(every) => {
                    let wait = if writer.dirty() {
                        every.saturating_sub(writer.last_sync.elapsed())
                    } else {
                        every
                    };
                    rx.recv_timeout(wait.max(Duration::from_millis(1)))
                }
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            },
        };
        let first = match next {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                writer.sync_on_timer();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut batch = vec![first];
        batch.extend(rx.try_iter().take(1023));
        writer.batch(batch);
    }
    if let Err(e) = writer.finish() {
        eprintln!("comfy-audit: closing the log: {e}");
    }
}

/// The writer thread's answer. For up to [`SPIN`] the task yields to the
/// runtime and looks again (the thread usually answers within
/// microseconds, and a worker that goes to sleep costs a wake-up per
/// record); then it waits like any other future. Nothing blocks: other
/// tasks run between the looks.
async fn acked(mut wait: oneshot::Receiver<Result<u64, AuditError>>) -> Result<u64, AuditError> {
    let until = Instant::now() + SPIN;
    loop {
        match wait.try_recv() {
            Ok(result) => return result,
            Err(oneshot::error::TryRecvError::Closed) => return Err(AuditError::Closed),
            Err(oneshot::error::TryRecvError::Empty) if Instant::now() < until => tokio::task::yield_now().await,
            Err(oneshot::error::TryRecvError::Empty) => break,
        }
    }
    wait.await.map_err(|_| AuditError::Closed)?
}

/// The next message if one arrives within [`SPIN`].
fn spin(rx: &mpsc::Receiver<Msg>) -> Option<Msg> {
    let until = Instant::now() + SPIN;
    loop {
        match rx.try_recv() {
            Ok(m) => return Some(m),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if Instant::now() >= until => return None,
            Err(mpsc::TryRecvError::Empty) => std::hint::spin_loop(),
        }
    }
}

impl Writer {
    fn new(config: AuditConfig, failures: Arc<AtomicU64>) -> Self {
        Self {
            file: None,
            len: 0,
            id: None,
            chain: None,
            needs_anchor: false,
            file_no: 0,
            dirty: false,
            last_sync: Instant::now(),
            sync_error: None,
            failures,
            #[cfg(feature = "fault-injection")]
            faults: Arc::default(),
            anchor: config.anchor.clone().map(|target| Anchor {
                target,
                file: None,
                id: None,
                dirty: false,
                anchored: None,
            }),
            config,
        }
    }

    fn batch(&mut self, batch: Vec<Msg>) {
        let mut written: Vec<(Ack, Result<u64, AuditError>)> = Vec::new();
        let mut flushes = Vec::new();
        for msg in batch {
            match msg {
                Msg::Record { fields, done, _permit } => {
                    let result = self.append(fields);
                    written.push((done, result));
                }
                Msg::Flush(done) => flushes.push(done),
            }
        }
        let wrote_any = written.iter().any(|(_, r)| r.is_ok());
        let sync_now = !flushes.is_empty()
            || (wrote_any && self.config.flush == FlushPolicy::EveryRecord)
            || matches!(self.config.flush, FlushPolicy::Interval(every) if self.last_sync.elapsed() >= every);
        let synced = if sync_now { self.sync() } else { Ok(()) };
        if let (Err(e), FlushPolicy::Interval(_), true) = (&synced, self.config.flush, flushes.is_empty()) {
            // Nobody asked for this sync: the next record hears of it.
            self.sync_failed(e.clone());
        }
        for (done, result) in written {
            let result = match (&result, &synced, self.config.flush) {
                (Ok(_), Err(e), FlushPolicy::EveryRecord) => Err(e.clone()),
                _ => result,
            };
            let _ = done.send(result);
        }
        for done in flushes {
            let _ = done.send(synced.clone());
        }
    }

    fn dirty(&self) -> bool {
        self.dirty || self.anchor.as_ref().is_some_and(|a| a.dirty)
    }

    /// The interval sync: its failure fails the next record under
    /// [`FailurePolicy::FailClosed`], and is counted and reported under
    /// [`FailurePolicy::FailOpen`].
    fn sync_on_timer(&mut self) {
        if let Err(e) = self.sync() {
            self.sync_failed(e);
        }
        #[cfg(feature = "fault-injection")]
        self.faults.timer_syncs.fetch_add(1, Ordering::Release);
    }

    fn sync_failed(&mut self, e: AuditError) {
        match self.config.failure {
            FailurePolicy::FailClosed => self.sync_error = Some(e),
            FailurePolicy::FailOpen => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                eprintln!("comfy-audit: sync failed (fail_open): {e}");
            }
        }
    }

    fn sync(&mut self) -> Result<(), AuditError> {
        self.last_sync = Instant::now();
        #[cfg(feature = "fault-injection")]
        {
            let delay = self.faults.sync_delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                // The writer thread itself stalls, as in a slow `fsync`.
                let until = Instant::now() + Duration::from_millis(delay);
                while let Some(left) = until.checked_duration_since(Instant::now()) {
                    std::thread::park_timeout(left);
                }
            }
            if self.dirty() && self.faults.fail_sync.load(Ordering::Relaxed) {
                return Err(AuditError::Io {
                    path: self.config.path.display().to_string(),
                    op: "fsync",
                    reason: "injected I/O error".to_owned(),
                });
            }
        }
        if let Some(anchor) = &mut self.anchor {
            anchor.sync()?;
        }
        if !self.dirty {
            return Ok(());
        }
        let Some(file) = &self.file else { return Ok(()) };
        match file.sync_data() {
            Ok(()) => {
                self.dirty = false;
                Ok(())
            }
            Err(e) => Err(io_error(&self.config.path, "fsync", &e)),
        }
    }

    /// Makes sure the open file is the one at the path, opening or
    /// reopening it as needed.
    fn ensure_open(&mut self) -> Result<(), AuditError> {
        let path = self.config.path.clone();
        if still_open(&mut self.file, self.id, &path, "checking the file")? {
            return Ok(());
        }
        self.open_file()
    }

    fn open_file(&mut self) -> Result<(), AuditError> {
        let path = self.config.path.clone();
        self.file = None;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder
                .create(parent)
                .map_err(|e| io_error(&path, "creating the directory", &e))?;
        }
        let mut options = OpenOptions::new();
        options.append(true).create(true).read(true);
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
            options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
        }
        let mut file = options.open(&path).map_err(|e| io_error(&path, "opening", &e))?;
        let meta = file.metadata().map_err(|e| io_error(&path, "checking the file", &e))?;
        if !meta.is_file() {
            return Err(AuditError::NotRegular {
                path: path.display().to_string(),
            });
        }
        self.len = meta.len();
        self.id = file_id(&meta);
        let tail = if self.len > 0 {
            read_tail(&mut file, self.len)
        } else {
            None
        };
        match (&self.chain, tail) {
            // A log written before this process: continue its chain.
            (None, Some(t)) => {
                self.chain = Some(t);
                self.file_no = read_file_no(&mut file).unwrap_or(0);
                self.needs_anchor = false;
            }
            // The same file again (reopened after an error).
            (Some(c), Some(t)) if *c == t => self.needs_anchor = false,
            // A new log, one whose tail is not a sealed record, or another
            // file in this one's place: start (and link) a chain.
            _ => self.needs_anchor = true,
        }
        self.file = Some(file);
        Ok(())
    }

    fn append(&mut self, fields: Map<String, Value>) -> Result<u64, AuditError> {
        // A sync that failed since the last record: what was written before
        // may not be on disk, so this record's caller hears of it.
        if let Some(e) = self.sync_error.take() {
            return Err(e);
        }
        self.ensure_open()?;
        let mut stamped = Map::with_capacity(fields.len() + 4);
        stamped.insert("timestamp".to_owned(), Value::from(timestamp()));
        stamped.extend(fields);
        // Measure the record only near the limit; rotation happens between
        // records, never inside one.
        if let Some(max) = self.config.rotate_bytes
            && self.len > 0
            && self.len + (64 << 10) > max
        {
            let estimate = serde_json::to_string(&stamped).map_or(0, |s| s.len() as u64) + 200;
            if self.len + estimate > max {
                self.rotate()?;
            }
        }
        if self.needs_anchor {
            self.anchor()?;
        }
        let seq = self.seal_and_write(stamped)?;
        let every = self.config.anchor_every.max(1);
        if let Some(anchor) = &self.anchor
            && anchor.anchored.is_none_or(|a| seq.saturating_sub(a) >= every)
        {
            self.copy_head()?;
        }
        Ok(seq)
    }

    /// Copies the chain head to the anchor target, if there is one and
    /// the head moved since the last copy.
    fn copy_head(&mut self) -> Result<(), AuditError> {
        let (Some(anchor), Some((hash, seq))) = (&mut self.anchor, &self.chain) else {
            return Ok(());
        };
        if anchor.anchored == Some(*seq) {
            return Ok(());
        }
        anchor.write(&self.config.path, *seq, hash)?;
        anchor.anchored = Some(*seq);
        Ok(())
    }

    /// On close: the head is anchored and everything synced.
    fn finish(&mut self) -> Result<(), AuditError> {
        let anchored = self.copy_head();
        self.sync().and(anchored)
    }

    fn anchor(&mut self) -> Result<(), AuditError> {
        let anchor = uuid::Uuid::new_v4().simple().to_string();
        let mut fields = Map::new();
        fields.insert("timestamp".to_owned(), Value::from(timestamp()));
        fields.insert("tool".to_owned(), Value::from("comfy-audit"));
        fields.insert("action".to_owned(), Value::from("chain_start"));
        let continues = self
            .chain
            .as_ref()
            .map_or(Value::Null, |(h, _)| Value::from(h.as_str()));
        let mut extra = Map::new();
        extra.insert("anchor".to_owned(), Value::from(anchor.as_str()));
        extra.insert("continues".to_owned(), continues);
        let file_no = if self.chain.is_some() { self.file_no + 1 } else { 0 };
        extra.insert("file".to_owned(), Value::from(file_no));
        extra.insert("keep".to_owned(), Value::from(self.config.keep));
        fields.insert("extra".to_owned(), Value::Object(extra));
        let seq = self.chain.as_ref().map_or(0, |(_, s)| s + 1);
        self.write_line(fields, seq, &anchor)?;
        self.file_no = file_no;
        self.needs_anchor = false;
        Ok(())
    }

    fn seal_and_write(&mut self, fields: Map<String, Value>) -> Result<u64, AuditError> {
        let (prev, seq) = match &self.chain {
            Some((h, s)) => (h.clone(), s + 1),
            None => (String::new(), 0),
        };
        self.write_line(fields, seq, &prev)?;
        Ok(seq)
    }

    fn write_line(&mut self, fields: Map<String, Value>, seq: u64, prev: &str) -> Result<(), AuditError> {
        let (line, hash) = seal(fields, seq, prev);
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        let path = self.config.path.clone();
        let Some(file) = self.file.as_mut() else {
            return Err(AuditError::Closed);
        };
        if let Err(e) = file.write_all(&bytes) {
            // Never leave half a line: cut the file back, then reopen next
            // time (the descriptor may be unusable).
            let _ = file.set_len(self.len);
            self.file = None;
            return Err(io_error(&path, "writing", &e));
        }
        self.len += bytes.len() as u64;
        self.dirty = true;
        self.chain = Some((hash, seq));
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), AuditError> {
        self.sync()?;
        self.file = None;
        let path = self.config.path.clone();
        let numbered = |n: usize| {
            let mut s = path.clone().into_os_string();
            s.push(format!(".{n}"));
            PathBuf::from(s)
        };
        let keep = self.config.keep;
        if keep == 0 {
            let _ = std::fs::remove_file(&path);
        } else {
            let _ = std::fs::remove_file(numbered(keep));
            for n in (1..keep).rev() {
                match std::fs::rename(numbered(n), numbered(n + 1)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(&path, "rotating", &e)),
                }
            }
            std::fs::rename(&path, numbered(1)).map_err(|e| io_error(&path, "rotating", &e))?;
        }
        self.open_file()?;
        self.needs_anchor = true;
        Ok(())
    }
}

/// The chain position at the end of an existing log (its last 1 MiB is
/// read).
fn read_tail(file: &mut File, len: u64) -> Option<(String, u64)> {
    let start = len.saturating_sub(1 << 20);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    file.take(1 << 20).read_to_end(&mut buf).ok()?;
    tail_of(&String::from_utf8_lossy(&buf))
}

/// The `extra.file` of the `chain_start` that begins an existing log (its
/// first 64 KiB are read); `None` for a log written before the field was.
fn read_file_no(file: &mut File) -> Option<u64> {
    file.seek(SeekFrom::Start(0)).ok()?;
    let mut buf = Vec::new();
    file.take(64 << 10).read_to_end(&mut buf).ok()?;
    let first = buf.split(|b| *b == b'\n').next()?;
    let v: Value = serde_json::from_slice(first).ok()?;
    v.get("extra")?.get("file")?.as_u64()
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
    fn write(&mut self, log: &Path, seq: u64, hash: &str) -> Result<(), AuditError> {
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
            options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
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

    fn sync(&mut self) -> Result<(), AuditError> {
        if !self.dirty {
            return Ok(());
        }
        let Some(file) = &self.file else { return Ok(()) };
        match file.sync_data() {
            Ok(()) => {
                self.dirty = false;
                Ok(())
            }
            Err(e) => Err(self.error("fsync of the anchor file", &e)),
        }
    }
}

/// One anchor as a syslog message (RFC 3164 framing without a timestamp:
/// the daemon adds its own): `authpriv.notice`, tag `comfy-mcp`.
#[cfg(unix)]
fn send_syslog(socket: &Path, log: &Path, seq: u64, hash: &str) -> std::io::Result<()> {
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
fn send_syslog(_: &Path, _: &Path, _: u64, _: &str) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "syslog needs a Unix socket",
    ))
}
