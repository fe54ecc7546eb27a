//! The writer thread: the one place that writes, rotates and syncs the log
//! file, taking records from a channel and answering each with its sequence
//! number. Its own file because it owns all the file handling.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::Ack;
#[cfg(feature = "fault-injection")]
use super::Faults;
use super::Msg;
use super::anchor::Anchor;
use super::config::{AuditConfig, AuditError, FailurePolicy, FlushPolicy};
use super::file_id;
use super::io_error;
use super::still_open;
use super::sync_if_dirty;
use super::timestamp;
use crate::chain::{seal, tail_of};

/// The file the writer holds, and where the chain stands.
pub(super) struct Writer {
    pub(super) config: AuditConfig,
    pub(super) file: Option<File>,
    /// Bytes in the open file.
    pub(super) len: u64,
    /// Device and inode of the open file, to notice replacement.
    pub(super) id: Option<(u64, u64)>,
    /// Hash and sequence number of the last record written.
    pub(super) chain: Option<(String, u64)>,
    /// Whether the open file needs a `chain_start` line first.
    pub(super) needs_anchor: bool,
    /// The open file's number in the chain (its `chain_start`'s
    /// `extra.file`): 0 for the file that began it, one more for each file
    /// begun after it, so `audit verify` can tell a file rotation dropped
    /// from one that was removed.
    pub(super) file_no: u64,
    pub(super) dirty: bool,
    pub(super) last_sync: Instant,
    /// A sync that failed under [`FailurePolicy::FailClosed`], not yet
    /// reported: the next record fails with it.
    pub(super) sync_error: Option<AuditError>,
    /// [`AuditLog::failures`], counted here for failed syncs under
    /// [`FailurePolicy::FailOpen`].
    pub(super) failures: Arc<AtomicU64>,
    #[cfg(feature = "fault-injection")]
    pub(super) faults: Arc<Faults>,
    /// Where the head is copied.
    pub(super) anchor: Option<Anchor>,
}

/// How long the writer thread looks for the next record before it sleeps:
/// a caller that writes records one after the other (as a tool call does)
/// finds it awake, which saves a thread wake-up per record.
pub(super) const SPIN: Duration = Duration::from_micros(50);

/// The writer thread: every write, rotation and sync happens here, never
/// on the caller's (async runtime) thread. It takes queued records and
/// flush requests in batches and, with `interval` flushing, syncs at most
/// once per interval.
pub(super) fn run(writer: &mut Writer, rx: &mpsc::Receiver<Msg>, interval: Option<Duration>) {
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
pub(super) async fn acked(mut wait: oneshot::Receiver<Result<u64, AuditError>>) -> Result<u64, AuditError> {
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
pub(super) fn spin(rx: &mpsc::Receiver<Msg>) -> Option<Msg> {
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
    pub(super) fn new(config: AuditConfig, failures: Arc<AtomicU64>) -> Self {
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
        sync_if_dirty(self.file.as_ref(), &mut self.dirty, &self.config.path, "fsync")
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
            options.custom_flags(super::FILE_FLAG_OPEN_REPARSE_POINT);
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
pub(super) fn read_tail(file: &mut File, len: u64) -> Option<(String, u64)> {
    let start = len.saturating_sub(1 << 20);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    file.take(1 << 20).read_to_end(&mut buf).ok()?;
    tail_of(&String::from_utf8_lossy(&buf))
}

/// The `extra.file` of the `chain_start` that begins an existing log (its
/// first 64 KiB are read); `None` for a log written before the field was.
pub(super) fn read_file_no(file: &mut File) -> Option<u64> {
    file.seek(SeekFrom::Start(0)).ok()?;
    let mut buf = Vec::new();
    file.take(64 << 10).read_to_end(&mut buf).ok()?;
    let first = buf.split(|b| *b == b'\n').next()?;
    let v: Value = serde_json::from_slice(first).ok()?;
    v.get("extra")?.get("file")?.as_u64()
}
