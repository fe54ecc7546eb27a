//! `verify` catches each kind of tampering; `tail` follows the log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use comfy_audit::chain::{Tamper, verify};
use comfy_audit::cli::{LogFiles, log_files, pretty, run_tail, run_verify};
use comfy_audit::{AuditConfig, AuditLog, FlushPolicy, Outcome, Record};
use serde_json::json;

async fn log_of(path: &Path, n: usize) {
    let mut cfg = AuditConfig::new(path);
    cfg.flush = FlushPolicy::EveryRecord;
    let log = AuditLog::open(cfg).unwrap();
    for i in 0..n {
        log.write(Record::new("comfyui_get_queue", "called").extra(json!({"i": i})))
            .await
            .unwrap();
    }
    log.close();
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn rewrite(path: &Path, lines: &[String]) -> PathBuf {
    let out = path.with_extension("tampered");
    std::fs::write(&out, lines.join("\n") + "\n").unwrap();
    out
}

fn kind_of(files: &[PathBuf]) -> Option<(Tamper, usize)> {
    verify(files).unwrap().problem.map(|p| (p.kind, p.line))
}

#[tokio::test]
async fn each_kind_of_tampering_is_reported_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    log_of(&path, 10).await;
    let good = lines(&path);
    assert_eq!(good.len(), 11);
    assert_eq!(kind_of(std::slice::from_ref(&path)), None);
    let mut out = Vec::new();
    assert_eq!(run_verify(&LogFiles::given(vec![path.clone()]), None, &mut out), 0);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "audit verify: intact: 11 records in 1 file\n"
    );

    // Modified: an edited field (line 5).
    let mut l = good.clone();
    l[4] = l[4].replace("\"i\":3", "\"i\":9");
    assert_eq!(kind_of(&[rewrite(&path, &l)]), Some((Tamper::Modified, 5)));

    // Modified, hash recomputed by hand: the next record's link breaks.
    // (Simulated by replacing line 5 with a validly sealed line from
    // another log.)
    let other = dir.path().join("other.log");
    log_of(&other, 10).await;
    let mut l = good.clone();
    l[4] = lines(&other)[4].clone();
    assert_eq!(kind_of(&[rewrite(&path, &l)]).map(|k| k.1), Some(5));

    // Removed: line 5 gone.
    let mut l = good.clone();
    l.remove(4);
    assert_eq!(kind_of(&[rewrite(&path, &l)]), Some((Tamper::Removed, 5)));

    // Inserted: a copy of line 5 after line 7.
    let mut l = good.clone();
    l.insert(7, good[4].clone());
    assert_eq!(kind_of(&[rewrite(&path, &l)]), Some((Tamper::Inserted, 8)));

    // Reordered: lines 5 and 6 swapped.
    let mut l = good.clone();
    l.swap(4, 5);
    assert_eq!(kind_of(&[rewrite(&path, &l)]), Some((Tamper::Reordered, 5)));

    // Malformed: a line that is not a record.
    let mut l = good.clone();
    l.insert(3, "{\"tool\":\"forged\"}".to_owned());
    assert_eq!(kind_of(&[rewrite(&path, &l)]), Some((Tamper::Malformed, 4)));

    let mut out = Vec::new();
    assert_eq!(
        run_verify(&LogFiles::given(vec![rewrite(&path, &l)]), None, &mut out),
        1
    );
    assert!(String::from_utf8(out).unwrap().starts_with("audit verify: TAMPERED: "));
    let mut out = Vec::new();
    assert_eq!(
        run_verify(&LogFiles::given(vec![dir.path().join("absent.log")]), None, &mut out),
        2
    );
}

#[tokio::test]
async fn a_missing_or_foreign_file_in_a_rotated_set_is_unlinked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut cfg = AuditConfig::new(&path);
    cfg.rotate_bytes = Some(2 << 10);
    cfg.keep = 10;
    let log = AuditLog::open(cfg).unwrap();
    for i in 0..60 {
        log.write(Record::new("t", "called").extra(json!({"i": i, "pad": "p".repeat(100)})))
            .await
            .unwrap();
    }
    log.close();
    let files = log_files(&path).files;
    assert!(files.len() >= 4);
    assert_eq!(kind_of(&files), None);
    let mut gap = files.clone();
    gap.remove(1);
    assert_eq!(kind_of(&gap), Some((Tamper::Unlinked, 1)));
}

/// A log rotated into `audit.log` and `audit.log.1` to `.N` (`keep` 10).
async fn rotated_log(path: &Path) -> Vec<PathBuf> {
    let mut cfg = AuditConfig::new(path);
    cfg.rotate_bytes = Some(2 << 10);
    cfg.keep = 10;
    let log = AuditLog::open(cfg).unwrap();
    for i in 0..30 {
        log.write(Record::new("t", "called").extra(json!({"i": i, "pad": "p".repeat(100)})))
            .await
            .unwrap();
    }
    log.close();
    let set = log_files(path);
    assert!(set.missing.is_empty());
    assert!((4..=10).contains(&set.files.len()), "{:?}", set.files);
    set.files
}

fn verify_text(set: &LogFiles) -> (u8, String) {
    let mut out = Vec::new();
    let code = run_verify(set, None, &mut out);
    (code, String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn cutting_the_first_lines_of_the_log_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    log_of(&path, 10).await;
    let good = lines(&path);
    // The chain start and two records gone: the rest still links up.
    assert_eq!(kind_of(&[rewrite(&path, &good[3..])]), Some((Tamper::Removed, 1)));
    // Only the chain start gone.
    assert_eq!(kind_of(&[rewrite(&path, &good[1..])]), Some((Tamper::Removed, 1)));
    let (code, text) = verify_text(&LogFiles::given(vec![rewrite(&path, &good[3..])]));
    assert_eq!(code, 1);
    assert!(
        text.contains(":1: the file does not begin with a chain start: its first records were removed (removed)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_deleted_rotated_file_is_named_and_the_rest_still_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let files = rotated_log(&path).await;
    assert_eq!(verify_text(&log_files(&path)).0, 0);

    // The newest rotated file deleted: the older ones are still found.
    std::fs::remove_file(dir.path().join("audit.log.1")).unwrap();
    let set = log_files(&path);
    assert_eq!(set.missing, [dir.path().join("audit.log.1")]);
    assert_eq!(set.files.len(), files.len() - 1);
    let (code, text) = verify_text(&set);
    assert_eq!(code, 1);
    assert!(
        text.starts_with(&format!(
            "audit verify: TAMPERED: {}: missing, while older rotated files are here (removed)\n",
            dir.path().join("audit.log.1").display()
        )),
        "{text}"
    );
    // And the chain through the rest names the break.
    assert!(
        text.contains("without linking to the record before it (unlinked)"),
        "{text}"
    );

    // Two deleted: both counted.
    std::fs::remove_file(dir.path().join("audit.log.2")).unwrap();
    let set = log_files(&path);
    assert_eq!(set.missing_count, 2);
    assert!(verify_text(&set).1.contains("; 1 more missing (removed)"));
}

#[tokio::test]
async fn a_log_whose_earlier_files_are_all_gone_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let files = rotated_log(&path).await;
    // Every rotated file deleted: `audit.log` continues a file that rotation
    // (keeping 10) cannot have dropped yet.
    for f in &files[..files.len() - 1] {
        std::fs::remove_file(f).unwrap();
    }
    let set = log_files(&path);
    assert_eq!(set.files, std::slice::from_ref(&path));
    assert_eq!(kind_of(&set.files), Some((Tamper::Removed, 1)));
    let (code, text) = verify_text(&set);
    assert_eq!(code, 1);
    assert!(
        text.contains("which is not here; rotation keeps 10 earlier files, so it was removed"),
        "{text}"
    );

    // The oldest file deleted alone: the same.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let files = rotated_log(&path).await;
    std::fs::remove_file(&files[0]).unwrap();
    let set = log_files(&path);
    assert!(set.missing.is_empty());
    assert_eq!(kind_of(&set.files).map(|k| k.0), Some(Tamper::Removed));
}

/// What the tail prints, shared with the test, which waits on each write.
#[derive(Clone, Default)]
struct Shared(Arc<(Mutex<Vec<u8>>, Condvar)>);

impl Shared {
    /// Blocks until the text printed so far satisfies `done`, or fails the
    /// test after 10 s saying what it waited for.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) {
        let (text, printed) = &*self.0;
        let (text, timeout) = printed
            .wait_timeout_while(text.lock().unwrap(), Duration::from_secs(10), |t| {
                !done(&String::from_utf8_lossy(t))
            })
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "the tail did not print {what} in 10 s: {}",
            String::from_utf8_lossy(&text)
        );
    }

    fn text(&self) -> Vec<u8> {
        self.0.0.lock().unwrap().clone()
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.0.lock().unwrap().extend_from_slice(buf);
        self.0.1.notify_all();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_the_last_records_then_follows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    log_of(&path, 3).await;
    let stop = Arc::new(AtomicBool::new(false));
    let out = Shared::default();
    let tail = {
        let (path, stop, mut out) = (path.clone(), Arc::clone(&stop), out.clone());
        std::thread::spawn(move || {
            let mut go = || !stop.load(Ordering::Relaxed);
            run_tail(&path, 2, &mut go, &mut out).unwrap();
        })
    };
    // Let the tail print what is there before anything new is written.
    out.wait_for("the last two records", |t| t.lines().count() >= 2);
    let mut cfg = AuditConfig::new(&path);
    cfg.flush = FlushPolicy::EveryRecord;
    let log = AuditLog::open(cfg).unwrap();
    log.write(
        Record::new("comfyui_generate_image", "submitted")
            .prompt_id("abc")
            .outcome(Outcome::Ok)
            .duration(std::time::Duration::from_millis(12)),
    )
    .await
    .unwrap();
    log.close();
    out.wait_for("the new record", |t| t.contains("prompt=abc"));
    stop.store(true, Ordering::Relaxed);
    tail.join().unwrap();
    let text = String::from_utf8(out.text()).unwrap();
    let shown: Vec<&str> = text.lines().collect();
    assert_eq!(shown.len(), 3, "{text}");
    assert!(shown[0].contains("comfyui_get_queue called"), "{text}");
    assert!(
        shown[2].contains("ok           comfyui_generate_image submitted prompt=abc 12.0ms"),
        "{text}"
    );
    assert_eq!(pretty("not json"), "not json");
}

#[cfg(unix)]
#[tokio::test]
async fn verify_reads_as_a_stream_and_stops_at_the_first_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    log_of(&path, 5).await;
    let mut l = lines(&path);
    l[1] = l[1].replace("\"i\":0", "\"i\":9");
    // A pipe that never ends: only a reader that streams gets to line 2
    // and answers.
    let fifo = dir.path().join("fifo.log");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            f.write_all((l.join("\n") + "\n").as_bytes()).unwrap();
            // Hold the pipe open (no end of input) until the test is done.
            let _ = stopped.recv_timeout(std::time::Duration::from_secs(30));
        })
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(verify(&[fifo]).map(|v| v.problem.map(|p| (p.kind, p.line))));
    });
    let found = rx.recv_timeout(std::time::Duration::from_secs(10));
    let _ = stop.send(());
    writer.join().unwrap();
    assert_eq!(
        found.expect("verify waited for the end of the file").unwrap(),
        Some((Tamper::Modified, 2))
    );
}

#[tokio::test]
async fn a_line_over_the_bound_is_reported_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    log_of(&path, 3).await;
    let mut l = lines(&path);
    l.insert(2, "x".repeat(comfy_audit::chain::MAX_LINE + 10));
    let bad = rewrite(&path, &l);
    let v = verify(std::slice::from_ref(&bad)).unwrap();
    let p = v.problem.unwrap();
    assert_eq!((p.kind, p.line), (Tamper::Malformed, 3));
    assert!(p.message.contains("longer than"), "{p}");
    assert_eq!(v.records, 2);
    let (code, text) = verify_text(&LogFiles::given(vec![bad]));
    assert_eq!(code, 1, "{text}");
}
