//! The hash chain: how each line is sealed, and how a set of files is
//! checked.
//!
//! Every line ends with `"seq":N,"prev":"<hex>","hash":"<hex>"}`. `hash`
//! is the SHA-256 of the line without its `hash` field (so a line's own
//! edit shows), and `prev` is the previous line's `hash` (so removal,
//! insertion and reordering show). Each file starts with a `chain_start`
//! line whose `prev` is a random anchor it also records in `extra.anchor`,
//! and whose `extra.continues` is the last hash of the file before it
//! (rotation carries the chain across files), or `null` for a new log;
//! `extra.file` numbers the files of a chain (0 for the first) and
//! `extra.keep` says how many rotated files the writer keeps.
//!
//! [`verify`] requires every file to begin with its `chain_start` (so
//! cutting a file's first lines shows), each file after the first to link
//! to the one before, and the oldest file, when it continues an earlier
//! one, to be at least `keep` files older than the newest (otherwise the
//! earlier file was removed, not rotated away).
//!
//! What a chain cannot show: an attacker who rewrites every line after
//! the point of change, recomputing each hash; and records cut from the
//! very end. Keep copies elsewhere (or ship the log) against those.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Longest line [`verify`] reads: far above a record's size (the
/// redactor bounds each value), far below what would strain memory.
pub const MAX_LINE: usize = 4 << 20;

/// The lower-case hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
}

/// Seals `fields` (everything but the chain) into one line, without the
/// newline, returning it with its hash.
pub(crate) fn seal(mut fields: Map<String, Value>, seq: u64, prev: &str) -> (String, String) {
    fields.insert("seq".to_owned(), Value::from(seq));
    fields.insert("prev".to_owned(), Value::from(prev));
    let body = serde_json::to_string(&Value::Object(fields)).unwrap_or_else(|_| "{}".to_owned());
    let hash = sha256_hex(body.as_bytes());
    let mut line = body;
    line.pop();
    line.push_str(",\"hash\":\"");
    line.push_str(&hash);
    line.push_str("\"}");
    (line, hash)
}

/// A sealed line taken apart: its stored hash, the hash it should have,
/// and its fields.
struct Opened {
    stored: String,
    computed: String,
    fields: Map<String, Value>,
}

/// Length of `,"hash":"` + 64 hex + `"}`.
const HASH_TAIL: usize = 9 + 64 + 2;

fn open_line(line: &str) -> Option<Opened> {
    let split = line.len().checked_sub(HASH_TAIL)?;
    let tail = line.get(split..)?;
    let stored = tail.strip_prefix(",\"hash\":\"")?.strip_suffix("\"}")?;
    if !stored.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let body = format!("{}}}", line.get(..split)?);
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&body) else {
        return None;
    };
    Some(Opened {
        stored: stored.to_owned(),
        computed: sha256_hex(body.as_bytes()),
        fields,
    })
}

/// What kind of tampering (or damage) was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// A line's content does not match its hash.
    Modified,
    /// Records are missing (the sequence jumps).
    Removed,
    /// A record was added (a sequence number repeats, or a line that is
    /// not the successor of the one before).
    Inserted,
    /// Records are out of order.
    Reordered,
    /// A file starts a new chain that does not link to the one before.
    Unlinked,
    /// A line is not a sealed record at all.
    Malformed,
    /// Records were cut from the end: the anchor names a later record
    /// than the log holds.
    Truncated,
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tamper::Modified => "modified",
            Tamper::Removed => "removed",
            Tamper::Inserted => "inserted",
            Tamper::Reordered => "reordered",
            Tamper::Unlinked => "unlinked",
            Tamper::Malformed => "malformed",
            Tamper::Truncated => "truncated",
        })
    }
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// The 1-based line.
    pub line: usize,
    /// What kind.
    pub kind: Tamper,
    /// A sentence for a human.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} ({})",
            self.file.display(),
            self.line,
            self.message,
            self.kind
        )
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Files read.
    pub files: usize,
    /// Records checked (chain starts included).
    pub records: usize,
    /// The first problem, if any.
    pub problem: Option<Problem>,
    /// Sequence number and hash of the last record checked.
    pub head: Option<(u64, String)>,
    /// The highest anchored record found in the log, when an anchor file
    /// was given.
    pub anchored: Option<u64>,
}

/// What [`next_line`] found.
pub(crate) enum Next {
    /// A line (without its newline) is in the buffer.
    Line,
    /// The line is longer than [`MAX_LINE`]; only the bound was read.
    TooLong,
    /// End of input.
    End,
}

/// Reads the next line of `reader` into `buf`, never more than
/// [`MAX_LINE`] + 1 bytes of it.
pub(crate) fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Next> {
    buf.clear();
    let n = reader.take(MAX_LINE as u64 + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Next::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE {
        return Ok(Next::TooLong);
    }
    Ok(Next::Line)
}

/// Whether a sealed record numbered `lo..hi` is anywhere in `files` (a
/// second pass, made once, to tell removal from reordering).
fn any_seq_in(files: &[PathBuf], lo: u64, hi: u64) -> std::io::Result<bool> {
    let mut buf = Vec::new();
    for f in files {
        let mut reader = BufReader::new(File::open(f)?);
        loop {
            match next_line(&mut reader, &mut buf)? {
                Next::End => break,
                Next::TooLong => return Ok(false),
                Next::Line => {}
            }
            if let Some(o) = open_line(&String::from_utf8_lossy(&buf))
                && let Some(s) = o.fields.get("seq").and_then(Value::as_u64)
                && (lo..hi).contains(&s)
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Where a walk through the chain stands.
#[derive(Default)]
struct Walk {
    /// Hash and sequence number of the last record checked.
    prev: Option<(String, u64)>,
    /// Sequence number of the first record checked: the records checked
    /// are `first..=prev` (each links to the one before, and the writer
    /// numbers them one by one).
    first: Option<u64>,
    records: usize,
    oldest: Option<FileStart>,
    newest: Option<FileStart>,
    anchors: Option<Anchors>,
}

impl Walk {
    fn seen(&self, seq: u64) -> bool {
        matches!((self.first, &self.prev), (Some(f), Some((_, l))) if (f..=*l).contains(&seq))
    }

    /// Checks one line, the `number`th of `file`.
    fn line(&mut self, files: &[PathBuf], file: &Path, number: usize, text: &str) -> std::io::Result<Option<Problem>> {
        let fail = |kind, message: String| {
            Ok(Some(Problem {
                file: file.to_path_buf(),
                line: number,
                kind,
                message,
            }))
        };
        if text.is_empty() {
            return fail(Tamper::Malformed, "empty line".to_owned());
        }
        let Some(o) = open_line(text) else {
            return fail(Tamper::Malformed, "not a sealed audit record".to_owned());
        };
        if o.stored != o.computed {
            return fail(Tamper::Modified, "the record does not match its hash".to_owned());
        }
        let (Some(seq), Some(link)) = (
            o.fields.get("seq").and_then(Value::as_u64),
            o.fields.get("prev").and_then(Value::as_str),
        ) else {
            return fail(Tamper::Malformed, "no `seq` or `prev`".to_owned());
        };
        let is_start = o.fields.get("action").and_then(Value::as_str) == Some("chain_start");
        if number == 1 && !is_start {
            return fail(
                Tamper::Removed,
                "the file does not begin with a chain start: its first records were removed".to_owned(),
            );
        }
        if is_start {
            let extra = o.fields.get("extra");
            if extra.and_then(|e| e.get("anchor")).and_then(Value::as_str) != Some(link) {
                return fail(
                    Tamper::Modified,
                    "a chain start whose anchor is not its link".to_owned(),
                );
            }
            let continues = extra.and_then(|e| e.get("continues")).and_then(Value::as_str);
            if let Some((last, _)) = &self.prev
                && continues != Some(last.as_str())
            {
                return fail(
                    Tamper::Unlinked,
                    "a new chain starts here without linking to the record before it".to_owned(),
                );
            }
            if number == 1 {
                let start = FileStart {
                    file: file.to_path_buf(),
                    number: extra.and_then(|e| e.get("file")).and_then(Value::as_u64),
                    keep: extra.and_then(|e| e.get("keep")).and_then(Value::as_u64),
                    continues: continues.is_some(),
                };
                if self.oldest.is_none() {
                    self.oldest = Some(start.clone());
                }
                self.newest = Some(start);
            }
        } else if let Some((last, last_seq)) = &self.prev
            && link != last
        {
            let last_seq = *last_seq;
            return if seq > last_seq + 1 {
                if any_seq_in(files, last_seq + 1, seq)? {
                    fail(
                        Tamper::Reordered,
                        format!("record {seq} comes before record {} it follows", last_seq + 1),
                    )
                } else {
                    fail(
                        Tamper::Removed,
                        format!("records {} to {} are missing before this one", last_seq + 1, seq - 1),
                    )
                }
            } else if seq <= last_seq {
                if self.seen(seq) {
                    fail(
                        Tamper::Inserted,
                        format!("sequence number {seq} appears twice: a record was inserted"),
                    )
                } else {
                    fail(Tamper::Reordered, format!("record {seq} comes after record {last_seq}"))
                }
            } else {
                fail(
                    Tamper::Inserted,
                    "the record before this one is not the one it was written after (replaced or inserted)".to_owned(),
                )
            };
        }
        if let Some(anchors) = &mut self.anchors
            && let Some(problem) = anchors.check(file, number, seq, &o.stored)?
        {
            return Ok(Some(problem));
        }
        self.first.get_or_insert(seq);
        self.prev = Some((o.stored, seq));
        self.records += 1;
        Ok(None)
    }

    fn verified(self, files: usize, problem: Option<Problem>) -> Verified {
        Verified {
            files,
            records: self.records,
            problem,
            head: self.prev.map(|(h, s)| (s, h)),
            anchored: self.anchors.and_then(|a| a.matched),
        }
    }
}

/// One line of an anchor file.
struct AnchorLine {
    seq: u64,
    hash: String,
    line: usize,
}

/// The anchor file, read alongside the log: anchors come in the order
/// they were written, so one pending anchor at a time is enough.
struct Anchors {
    path: PathBuf,
    reader: BufReader<File>,
    buf: Vec<u8>,
    line: usize,
    pending: Option<AnchorLine>,
    /// The highest anchored record matched in the log.
    matched: Option<u64>,
}

impl Anchors {
    fn open(path: &Path) -> std::io::Result<Result<Self, Problem>> {
        let mut anchors = Self {
            path: path.to_path_buf(),
            reader: BufReader::new(File::open(path)?),
            buf: Vec::new(),
            line: 0,
            pending: None,
            matched: None,
        };
        Ok(anchors.advance()?.map(|()| anchors))
    }

    fn problem(&self, kind: Tamper, message: String) -> Problem {
        Problem {
            file: self.path.clone(),
            line: self.line,
            kind,
            message,
        }
    }

    /// Reads the next anchor into `pending` (`None` at the end).
    fn advance(&mut self) -> std::io::Result<Result<(), Problem>> {
        let before = self.pending.take().map(|a| a.seq);
        self.line += 1;
        match next_line(&mut self.reader, &mut self.buf)? {
            Next::End => return Ok(Ok(())),
            Next::TooLong => {
                return Ok(Err(
                    self.problem(Tamper::Malformed, "the line is too long for an anchor".to_owned())
                ));
            }
            Next::Line => {}
        }
        let parsed = serde_json::from_slice::<Value>(&self.buf).ok().and_then(|v| {
            let seq = v.get("seq")?.as_u64()?;
            let hash = v.get("hash")?.as_str()?;
            (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| (seq, hash.to_owned()))
        });
        let Some((seq, hash)) = parsed else {
            return Ok(Err(self.problem(Tamper::Malformed, "not an anchor line".to_owned())));
        };
        if let Some(b) = before
            && seq < b
        {
            return Ok(Err(self.problem(
                Tamper::Unlinked,
                format!("the anchored chain goes back from record {b} to record {seq}: the log it anchored was replaced by a new one"),
            )));
        }
        self.pending = Some(AnchorLine {
            seq,
            hash,
            line: self.line,
        });
        Ok(Ok(()))
    }

    /// The log's record `seq` (at `file:line`) has hash `hash`.
    fn check(&mut self, file: &Path, line: usize, seq: u64, hash: &str) -> std::io::Result<Option<Problem>> {
        loop {
            let Some(a) = &self.pending else { return Ok(None) };
            if a.seq > seq {
                return Ok(None);
            }
            if a.seq == seq {
                if a.hash != hash {
                    return Ok(Some(Problem {
                        file: file.to_path_buf(),
                        line,
                        kind: Tamper::Modified,
                        message: format!(
                            "the anchor at {}:{} holds another hash for record {seq}: the log was rewritten from here or before",
                            self.path.display(),
                            a.line
                        ),
                    }));
                }
                self.matched = Some(seq);
            }
            // Below `seq`: a record rotated away before the first file read.
            if let Err(p) = self.advance()? {
                return Ok(Some(p));
            }
        }
    }

    /// The log ends at `last`: no anchor may name a later record.
    fn finish(&mut self, last: Option<(&Path, usize, u64)>) -> std::io::Result<Option<Problem>> {
        let Some(first_beyond) = self.pending.as_ref().map(|a| (a.seq, a.line)) else {
            return Ok(None);
        };
        let mut highest = first_beyond;
        loop {
            if let Err(p) = self.advance()? {
                return Ok(Some(p));
            }
            match &self.pending {
                Some(a) => highest = (a.seq, a.line),
                None => break,
            }
        }
        let (file, line, ends) = match last {
            Some((f, l, s)) => (f.to_path_buf(), l, format!("the log ends at record {s}")),
            None => (self.path.clone(), 0, "the log holds no record".to_owned()),
        };
        Ok(Some(Problem {
            file,
            line,
            kind: Tamper::Truncated,
            message: format!(
                "{ends}, but the anchor at {}:{} says record {} was written: records were cut from the end",
                self.path.display(),
                highest.1,
                highest.0
            ),
        }))
    }
}

/// Checks the chain through `files`, oldest first (for a rotated log:
/// `audit.log.3 audit.log.2 audit.log.1 audit.log`). Files are read as a
/// stream, a line at a time (at most [`MAX_LINE`] bytes of one: a longer
/// line is reported, not read), and the walk stops at the first problem.
///
/// # Errors
/// An I/O error reading a file.
pub fn verify(files: &[PathBuf]) -> std::io::Result<Verified> {
    verify_anchored(files, None)
}

/// [`verify`], and with `anchor` (the file `logging.audit_anchor` names)
/// also that every anchored record in the files has the anchored hash
/// (else the log was rewritten) and that no anchor names a record after
/// the log's last (else its tail was cut).
///
/// # Errors
/// An I/O error reading a file or the anchor file.
pub fn verify_anchored(files: &[PathBuf], anchor: Option<&Path>) -> std::io::Result<Verified> {
    let mut walk = Walk::default();
    if let Some(path) = anchor {
        match Anchors::open(path)? {
            Ok(a) => walk.anchors = Some(a),
            Err(problem) => return Ok(walk.verified(files.len(), Some(problem))),
        }
    }
    let mut buf = Vec::new();
    let mut last_line = None;
    for file in files {
        let mut reader = BufReader::with_capacity(64 << 10, File::open(file)?);
        let mut number = 0;
        loop {
            let next = next_line(&mut reader, &mut buf)?;
            number += 1;
            let problem = match next {
                Next::End => break,
                Next::TooLong => Some(Problem {
                    file: file.clone(),
                    line: number,
                    kind: Tamper::Malformed,
                    message: format!("the line is longer than {MAX_LINE} bytes (not read further)"),
                }),
                Next::Line => walk.line(files, file, number, &String::from_utf8_lossy(&buf))?,
            };
            if problem.is_some() {
                return Ok(walk.verified(files.len(), problem));
            }
            last_line = Some((file.as_path(), number));
        }
    }
    let mut problem = walk
        .oldest
        .as_ref()
        .and_then(|o| earlier_files_missing(o, walk.newest.as_ref()?));
    if problem.is_none()
        && let Some(anchors) = &mut walk.anchors
    {
        let last = last_line.zip(walk.prev.as_ref()).map(|((f, l), (_, s))| (f, l, *s));
        problem = anchors.finish(last)?;
    }
    Ok(walk.verified(files.len(), problem))
}

/// What the first line of a file says about the file's place in the chain.
#[derive(Clone)]
struct FileStart {
    file: PathBuf,
    /// `extra.file`: 0 for the file that began the chain, one more for
    /// each file begun after it (absent in logs written before it was).
    number: Option<u64>,
    /// `extra.keep`: the rotated files the writer keeps.
    keep: Option<u64>,
    /// Whether it continues an earlier file.
    continues: bool,
}

/// The oldest file read continues an earlier one that is not there: fine
/// when rotation dropped it (the newest file is at least `keep` files
/// after it), a removal otherwise.
fn earlier_files_missing(oldest: &FileStart, newest: &FileStart) -> Option<Problem> {
    let (Some(old), Some(new), Some(keep)) = (oldest.number, newest.number, newest.keep) else {
        return None;
    };
    if !oldest.continues || new.saturating_sub(old) >= keep {
        return None;
    }
    Some(Problem {
        file: oldest.file.clone(),
        line: 1,
        kind: Tamper::Removed,
        message: format!(
            "this file continues file {} of the chain, which is not here; rotation keeps {keep} earlier file{}, so it was removed",
            old.saturating_sub(1),
            if keep == 1 { "" } else { "s" }
        ),
    })
}

/// The chain position after the last complete sealed line of `text`: its
/// hash and sequence number. `None` when there is none (an empty file, or
/// a last line that is not a sealed record).
pub(crate) fn tail_of(text: &str) -> Option<(String, u64)> {
    let last = text.strip_suffix('\n')?.rsplit('\n').next()?;
    let o = open_line(last)?;
    if o.stored != o.computed {
        return None;
    }
    let seq = o.fields.get("seq").and_then(Value::as_u64)?;
    Some((o.stored, seq))
}
