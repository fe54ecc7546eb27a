//! The `audit` commands of the server binary: `verify` checks the chain
//! of a log and its rotated files, `tail` pretty-prints records as they
//! are written. The binary parses arguments; the work is here so it is
//! tested with the rest of the crate.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::chain::verify_anchored;
use crate::writer::AnchorTarget;

/// Rotated files looked for: `audit.log.1` to `audit.log.MAX_ROTATED`.
pub const MAX_ROTATED: u64 = 100_000;

/// A log and its rotated files, as found on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFiles {
    /// The files that exist, oldest first (`audit.log.5` ... `audit.log.1`,
    /// `audit.log`).
    pub files: Vec<PathBuf>,
    /// Rotated files missing below the oldest one present (`audit.log.1`
    /// when `audit.log.2` exists), newest first, at most 16 of them.
    pub missing: Vec<PathBuf>,
    /// How many are missing in all.
    pub missing_count: u64,
}

impl LogFiles {
    /// Files named by the user, checked as given.
    pub fn given(files: Vec<PathBuf>) -> Self {
        Self {
            files,
            ..Self::default()
        }
    }
}

fn numbered(path: &Path, n: u64) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// `path` and every `path.N` beside it (N from 1 to [`MAX_ROTATED`]),
/// oldest first, with the numbers missing below the highest one: a gap
/// means a rotated file was removed, and the files after it are still
/// checked.
pub fn log_files(path: &Path) -> LogFiles {
    let mut numbers = Vec::new();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let (Some(name), Ok(entries)) = (path.file_name(), std::fs::read_dir(dir)) {
        let prefix = format!("{}.", name.to_string_lossy());
        for entry in entries.flatten() {
            let entry_name = entry.file_name();
            let Some(n) = entry_name
                .to_str()
                .and_then(|e| e.strip_prefix(prefix.as_str()))
                .filter(|d| !d.is_empty() && !d.starts_with('0') && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<u64>().ok())
                .filter(|n| (1..=MAX_ROTATED).contains(n))
            else {
                continue;
            };
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    let mut out = LogFiles::default();
    let mut expected = 1;
    for &n in &numbers {
        out.missing_count += n - expected;
        for m in expected..n {
            if out.missing.len() < 16 {
                out.missing.push(numbered(path, m));
            }
        }
        expected = n + 1;
    }
    out.files = numbers.iter().rev().map(|&n| numbered(path, n)).collect();
    if path.exists() {
        out.files.push(path.to_path_buf());
    }
    out
}

/// `audit verify`: checks `set` (against `anchor`, when given) and
/// reports on `out`. Returns the exit status: 0 intact, 1 tampering or
/// damage found, 2 a file could not be read.
pub fn run_verify(set: &LogFiles, anchor: Option<&AnchorTarget>, out: &mut impl Write) -> u8 {
    let files = &set.files;
    if files.is_empty() {
        let _ = writeln!(out, "audit verify: no log files found");
        return 2;
    }
    let mut status = 0;
    if let Some(first) = set.missing.first() {
        let more = set.missing_count - 1;
        let _ = writeln!(
            out,
            "audit verify: TAMPERED: {}: missing, while older rotated files are here{} (removed)",
            first.display(),
            if more == 0 {
                String::new()
            } else {
                format!("; {more} more missing")
            }
        );
        status = 1;
    }
    let anchor_file = match anchor {
        Some(AnchorTarget::File(p)) => Some(p.as_path()),
        _ => None,
    };
    let v = match verify_anchored(files, anchor_file) {
        Err(e) => {
            let _ = writeln!(out, "audit verify: cannot read the log: {e}");
            return 2;
        }
        Ok(v) => v,
    };
    let plural = if v.files == 1 { "" } else { "s" };
    match &v.problem {
        None if status == 0 => {
            let _ = writeln!(
                out,
                "audit verify: intact: {} records in {} file{plural}",
                v.records, v.files
            );
        }
        None => {
            let _ = writeln!(
                out,
                "audit verify: the chain through the {} file{plural} present is unbroken ({} records)",
                v.files, v.records
            );
        }
        Some(p) => {
            let _ = writeln!(out, "audit verify: TAMPERED: {p}");
            let _ = writeln!(out, "audit verify: {} records checked before it", v.records);
            return 1;
        }
    }
    match (anchor, &v.head) {
        (Some(AnchorTarget::File(path)), Some((seq, _))) => {
            let _ = match v.anchored {
                Some(a) if a == *seq => writeln!(
                    out,
                    "audit verify: anchored: the last record ({seq}) matches {}",
                    path.display()
                ),
                Some(a) => writeln!(
                    out,
                    "audit verify: anchored through record {a} ({}); the {} records after it are not anchored yet and could be cut unnoticed",
                    path.display(),
                    seq - a
                ),
                None => writeln!(
                    out,
                    "audit verify: no anchor in {} names a record of these files: nothing here is anchored",
                    path.display()
                ),
            };
        }
        (Some(AnchorTarget::Syslog(_)), Some((seq, hash))) => {
            let _ = writeln!(
                out,
                "audit verify: the anchors are in syslog, which this command cannot read: check that the last `audit anchor` message there names record {seq} with hash {hash}"
            );
        }
        _ => {}
    }
    status
}

/// One record as a line for a human: time, outcome, tool, action, then the
/// prompt id, duration, status and warning count when present. Lines that
/// are not records are shown as they are.
pub fn pretty(line: &str) -> String {
    let Ok(Value::Object(r)) = serde_json::from_str::<Value>(line) else {
        return line.to_owned();
    };
    let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
    let mut out = format!(
        "{} {:<12} {} {}",
        text("timestamp"),
        r.get("outcome").and_then(Value::as_str).unwrap_or("-"),
        text("tool"),
        text("action")
    );
    if let Some(id) = r.get("prompt_id").and_then(Value::as_str) {
        let _ = write!(out, " prompt={id}");
    }
    if let Some(ms) = r.get("duration_ms").and_then(Value::as_f64) {
        let _ = write!(out, " {ms:.1}ms");
    }
    if let Some(status) = r.get("status").and_then(Value::as_str) {
        let _ = write!(out, " status={status}");
    }
    if let Some(w) = r.get("warnings").and_then(Value::as_array) {
        let _ = write!(out, " warnings={}", w.len());
    }
    out
}

/// `audit tail`: prints the last `last` records of `path`, then, while
/// `keep_going()` says so, every new record as it is written (following
/// rotation and re-creation of the file).
///
/// # Errors
/// The file cannot be opened at first, or `out` fails.
pub fn run_tail(
    path: &Path,
    last: usize,
    keep_going: &mut dyn FnMut() -> bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let file = File::open(path)?;
    let mut reader = BufReader::new(file);
    let mut ring: std::collections::VecDeque<String> = std::collections::VecDeque::with_capacity(last + 1);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        if line.ends_with('\n') {
            ring.push_back(pretty(line.trim_end()));
            if ring.len() > last {
                ring.pop_front();
            }
            line.clear();
        }
    }
    for l in ring {
        writeln!(out, "{l}")?;
    }
    out.flush()?;
    let mut pos = reader.stream_position()? - line.len() as u64;
    let mut id = identity(path);
    while keep_going() {
        std::thread::park_timeout(Duration::from_millis(200));
        let now = identity(path);
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        if now != id || len < pos {
            // Rotated or re-created: read the new file from its start.
            id = now;
            pos = 0;
            line.clear();
        }
        let Ok(mut file) = File::open(path) else { continue };
        file.seek(SeekFrom::Start(pos))?;
        let mut reader = BufReader::new(file);
        loop {
            let n = reader.read_line(&mut line)?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            pos += line.len() as u64;
            writeln!(out, "{}", pretty(line.trim_end()))?;
            line.clear();
        }
        out.flush()?;
        // Keep a partial last line for the next round, re-read from `pos`.
        line.clear();
    }
    Ok(())
}

#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_: &Path) -> Option<(u64, u64)> {
    None
}
