//! The writer: format, concurrency, restarts, failure policies, recovery,
//! rotation, and a kill -9 mid-stream.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use comfy_audit::chain::{Tamper, verify};
use comfy_audit::cli::log_files;
use comfy_audit::{AuditConfig, AuditError, AuditLog, FailurePolicy, FlushPolicy, Outcome, Record};
use serde_json::json;

use crate::records;

fn config(path: &Path, flush: FlushPolicy) -> AuditConfig {
    let mut c = AuditConfig::new(path);
    c.flush = flush;
    c
}

#[tokio::test]
async fn records_keep_the_peers_fields_and_order_then_ours() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/audit.log");
    let log = AuditLog::open(config(&path, FlushPolicy::EveryRecord)).unwrap();
    let seq = log
        .write(
            Record::new("comfyui_generate_image", "submitted")
                .prompt_id("fac982e2")
                .nodes_used(vec!["KSampler".into()])
                .warnings(vec!["Dangerous node type: X".into()])
                .duration(Duration::from_micros(12_345))
                .status("allowed")
                .extra(json!({"arguments": {"prompt": "a red fox", "api_key": "k-123"}}))
                .outcome(Outcome::Ok)
                .peer("stdio", Some("claude-code/2.1".into()), None),
        )
        .await
        .unwrap();
    assert_eq!(seq, Some(1));
    log.close();
    let lines = records(&path);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["action"], "chain_start");
    let r = lines[1].as_object().unwrap();
    let keys: Vec<&str> = r.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "timestamp",
            "tool",
            "action",
            "prompt_id",
            "nodes_used",
            "warnings",
            "duration_ms",
            "status",
            "extra",
            "outcome",
            "transport",
            "client",
            "seq",
            "prev",
            "hash"
        ]
    );
    let ts = r["timestamp"].as_str().unwrap();
    assert!(
        ts.ends_with("+00:00") && ts.len() == "2026-11-25T05:59:23.176095+00:00".len(),
        "{ts}"
    );
    assert_eq!(r["duration_ms"], 12.345);
    assert_eq!(r["extra"]["arguments"]["api_key"], "[REDACTED]");
    assert_eq!(r["outcome"], "ok");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}

async fn hammer(flush: FlushPolicy) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut cfg = config(&path, flush);
    cfg.queue = 64;
    let log = Arc::new(AuditLog::open(cfg).unwrap());
    let mut tasks = Vec::new();
    for t in 0..16 {
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..150 {
                let r = Record::new("comfyui_get_queue", "called")
                    .extra(json!({"task": t, "i": i, "pad": "x".repeat(i * 7)}));
                seqs.push(log.write(r).await.unwrap().unwrap());
            }
            seqs
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    log.close();
    let lines = records(&path);
    assert_eq!(lines.len(), 16 * 150 + 1, "one chain start and every record");
    let mut seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..=2400).collect::<Vec<u64>>());
    acked.sort_unstable();
    assert_eq!(acked, (1..=2400).collect::<Vec<u64>>());
    let v = verify(&[path]).unwrap();
    assert_eq!(v.problem, None);
    assert_eq!(v.records, 2401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_interleave_or_lose_with_group_commit() {
    hammer(FlushPolicy::EveryRecord).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_interleave_or_lose_with_interval_sync() {
    hammer(FlushPolicy::Interval(Duration::from_millis(50))).await;
}

#[tokio::test]
async fn a_restarted_writer_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    for round in 0..3 {
        let log = AuditLog::open(config(&path, FlushPolicy::default())).unwrap();
        for i in 0..3 {
            log.write(Record::new("t", "called").extra(json!({"round": round, "i": i})))
                .await
                .unwrap();
        }
        log.close();
    }
    let lines = records(&path);
    assert_eq!(lines.len(), 10, "one chain start only");
    assert_eq!(verify(&[path]).unwrap().problem, None);
}

#[tokio::test]
async fn an_unwritable_place_fails_closed_or_open_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the log's directory should be: nothing can be created
    // there, whoever runs the test (root included).
    let blocker = dir.path().join("logs");
    std::fs::write(&blocker, "not a directory").unwrap();
    let path = blocker.join("audit.log");

    let closed = AuditLog::open(config(&path, FlushPolicy::EveryRecord)).unwrap();
    let err = closed.write(Record::new("t", "called")).await.unwrap_err();
    assert!(matches!(err, AuditError::Io { .. }), "{err}");
    assert!(err.to_string().contains("audit.log"), "{err}");

    let mut open_cfg = config(&path, FlushPolicy::EveryRecord);
    open_cfg.failure = FailurePolicy::FailOpen;
    let open = AuditLog::open(open_cfg).unwrap();
    assert_eq!(open.write(Record::new("t", "called")).await.unwrap(), None);
    assert_eq!(open.failures(), 1);

    // The cause goes away: both recover without a restart.
    std::fs::remove_file(&blocker).unwrap();
    assert!(closed.write(Record::new("t", "after")).await.unwrap().is_some());
    assert!(open.write(Record::new("t", "after")).await.unwrap().is_some());
    assert_eq!(open.failures(), 1);
    closed.close();
    open.close();
    assert_eq!(verify(&[path]).unwrap().problem, None);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn dev_full_is_refused_under_both_policies() {
    let closed = AuditLog::open(config(Path::new("/dev/full"), FlushPolicy::EveryRecord)).unwrap();
    let err = closed.write(Record::new("t", "called")).await.unwrap_err();
    assert_eq!(err.to_string(), "audit log /dev/full: not a regular file");
    let mut cfg = config(Path::new("/dev/full"), FlushPolicy::EveryRecord);
    cfg.failure = FailurePolicy::FailOpen;
    let open = AuditLog::open(cfg).unwrap();
    assert_eq!(open.write(Record::new("t", "called")).await.unwrap(), None);
    assert_eq!(open.failures(), 1);
}

#[cfg(unix)]
#[tokio::test]
async fn deleted_and_symlinked_files_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(config(&path, FlushPolicy::EveryRecord)).unwrap();
    log.write(Record::new("t", "one")).await.unwrap();

    // Deleted: recreated, and the new file links to the last record.
    std::fs::remove_file(&path).unwrap();
    log.write(Record::new("t", "two")).await.unwrap();
    let lines = records(&path);
    assert_eq!(lines[0]["action"], "chain_start");
    assert!(lines[0]["extra"]["continues"].is_string());
    assert_eq!(lines[1]["action"], "two");

    // Replaced by a symlink: refused, never followed.
    let target = dir.path().join("elsewhere");
    std::fs::write(&target, "").unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let err = log.write(Record::new("t", "three")).await.unwrap_err();
    assert!(matches!(err, AuditError::Symlink { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "");

    // The symlink goes: writing resumes.
    std::fs::remove_file(&path).unwrap();
    assert!(log.write(Record::new("t", "four")).await.unwrap().is_some());
    log.close();
    // The file now holds one record, in a chain that began in a file that
    // was deleted (and not by rotation): `verify` says so.
    let problem = verify(&[path]).unwrap().problem.unwrap();
    assert_eq!((problem.kind, problem.line), (Tamper::Removed, 1), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_under_load_never_splits_or_loses_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut cfg = config(&path, FlushPolicy::Interval(Duration::from_millis(20)));
    cfg.rotate_bytes = Some(64 << 10);
    cfg.keep = 50;
    let log = Arc::new(AuditLog::open(cfg).unwrap());
    let mut tasks = Vec::new();
    for t in 0..8 {
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                log.write(Record::new("t", "called").extra(json!({"t": t, "i": i, "pad": "y".repeat(300)})))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    log.close();
    let files = log_files(&path).files;
    assert!(files.len() > 5, "{files:?}");
    let mut total = 0;
    for f in &files {
        let lines = records(f);
        assert_eq!(lines[0]["action"], "chain_start", "{}", f.display());
        assert!(std::fs::metadata(f).unwrap().len() <= 64 << 10, "{}", f.display());
        total += lines.iter().filter(|l| l["action"] == "called").count();
    }
    assert_eq!(total, 1600);
    let v = verify(&files).unwrap();
    assert_eq!(v.problem, None, "{:?}", v.problem);

    // With fewer files kept, the oldest go and the rest still verify.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut cfg = config(&path, FlushPolicy::default());
    cfg.rotate_bytes = Some(8 << 10);
    cfg.keep = 2;
    let log = AuditLog::open(cfg).unwrap();
    for i in 0..200 {
        log.write(Record::new("t", "called").extra(json!({"i": i, "pad": "z".repeat(200)})))
            .await
            .unwrap();
    }
    log.close();
    let files = log_files(&path).files;
    assert_eq!(files.len(), 3);
    assert_eq!(verify(&files).unwrap().problem, None);
}

/// The child side of the kill -9 test: writes records with `every_record`
/// and prints each acknowledged sequence number until it is killed.
#[allow(
    clippy::print_stdout,
    reason = "the parent reads the acknowledged numbers from stdout"
)]
fn child_writer(path: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = AuditLog::open(config(path, FlushPolicy::EveryRecord)).unwrap();
        for i in 0u64.. {
            let seq = log
                .write(Record::new("t", "called").extra(json!({"i": i})))
                .await
                .unwrap()
                .unwrap();
            println!("acked {seq}");
        }
    });
}

/// The test runs itself again as the child (the environment variable says
/// which side it is), so no ignored test stands in for the child.
#[cfg(unix)]
#[test]
fn kill_9_loses_no_acknowledged_record() {
    if let Some(path) = std::env::var_os("COMFY_AUDIT_CHILD_LOG") {
        child_writer(Path::new(&path));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "writer::kill_9_loses_no_acknowledged_record",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("COMFY_AUDIT_CHILD_LOG", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(seq) = line.strip_prefix("acked ") {
            acked.push(seq.parse::<u64>().unwrap());
            if acked.len() == 300 {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(acked.len(), 300, "the child stopped early");
    let lines = records(&path);
    let written: std::collections::HashSet<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    for seq in &acked {
        assert!(written.contains(seq), "acknowledged record {seq} is missing");
    }
    assert_eq!(verify(&[path]).unwrap().problem, None);
}

#[tokio::test]
async fn a_failed_sync_fails_the_next_call_when_closed_and_is_counted_when_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(config(&path, FlushPolicy::Interval(Duration::from_millis(20)))).unwrap();
    assert!(log.write(Record::new("t", "one")).await.unwrap().is_some());
    log.faults().fail_sync.store(true, Ordering::Relaxed);
    assert!(log.write(Record::new("t", "two")).await.unwrap().is_some());
    // The interval sync runs and fails; nobody is waiting on it.
    timer_syncs(&log, 1).await;
    let err = log.write(Record::new("t", "three")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("audit log {}: fsync failed: injected I/O error", path.display())
    );
    // The disk recovers: so do writes.
    log.faults().fail_sync.store(false, Ordering::Relaxed);
    // The second one started after the disk recovered.
    timer_syncs(&log, 2).await;
    assert!(log.write(Record::new("t", "four")).await.unwrap().is_some());
    log.close();

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(
        &dir.path().join("audit.log"),
        FlushPolicy::Interval(Duration::from_millis(20)),
    );
    cfg.failure = FailurePolicy::FailOpen;
    let log = AuditLog::open(cfg).unwrap();
    log.faults().fail_sync.store(true, Ordering::Relaxed);
    assert!(log.write(Record::new("t", "one")).await.unwrap().is_some());
    timer_syncs(&log, 1).await;
    assert!(log.failures() >= 1, "a failed sync is counted under fail_open");
    assert!(log.write(Record::new("t", "two")).await.unwrap().is_some());
    log.close();

    // With every_record, the call whose record was not synced fails.
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(config(&dir.path().join("audit.log"), FlushPolicy::EveryRecord)).unwrap();
    log.faults().fail_sync.store(true, Ordering::Relaxed);
    assert!(log.write(Record::new("t", "one")).await.is_err());
    log.close();
}

/// Waits until `more` interval syncs have finished since the call (their
/// outcome recorded), or fails the test after 10 s.
async fn timer_syncs(log: &AuditLog, more: u64) {
    let done = &log.faults().timer_syncs;
    let want = done.load(Ordering::Acquire) + more;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while done.load(Ordering::Acquire) < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the writer finished no interval sync in 10 s"
        );
        // Polls a counter the writer thread bumps: no fixed wait.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// On a one-thread runtime, a disk that takes 300 ms per sync must not
/// stop other tasks: the writer's file work is on its own thread.
#[tokio::test(flavor = "current_thread")]
async fn a_slow_disk_never_stalls_the_runtime() {
    for flush in [
        FlushPolicy::Interval(Duration::from_millis(10)),
        FlushPolicy::EveryRecord,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(AuditLog::open(config(&dir.path().join("audit.log"), flush)).unwrap());
        log.faults().sync_delay_ms.store(300, Ordering::Relaxed);
        let writer = {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                for i in 0..6 {
                    log.write(Record::new("t", "called").extra(json!({"i": i})))
                        .await
                        .unwrap();
                    // Time is the subject: writes spread over the slow syncs.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let mut worst = Duration::ZERO;
        let mut last = std::time::Instant::now();
        while !writer.is_finished() {
            // Time is the subject: a 5 ms ticker measures how long the
            // runtime left it waiting.
            tokio::time::sleep(Duration::from_millis(5)).await;
            worst = worst.max(last.elapsed());
            last = std::time::Instant::now();
        }
        writer.await.unwrap();
        assert!(
            worst < Duration::from_millis(150),
            "{flush:?}: the runtime stalled for {worst:?}"
        );
        log.faults().sync_delay_ms.store(0, Ordering::Relaxed);
        log.close();
    }
}
