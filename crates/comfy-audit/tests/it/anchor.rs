//! The chain head copied outside the log: a cut tail and a rewritten log
//! show against the anchor file; syslog receives the same head.

use std::path::{Path, PathBuf};

use comfy_audit::chain::{Tamper, verify, verify_anchored};
use comfy_audit::cli::{LogFiles, run_verify};
use comfy_audit::{AnchorTarget, AuditConfig, AuditError, AuditLog, FlushPolicy, Record};
use serde_json::{Value, json};

use crate::records;

async fn anchored_log(path: &Path, anchor: AnchorTarget, every: u64, n: usize) {
    let mut cfg = AuditConfig::new(path);
    cfg.anchor = Some(anchor);
    cfg.anchor_every = every;
    let log = AuditLog::open(cfg).unwrap();
    for i in 0..n {
        log.write(Record::new("comfyui_get_queue", "called").extra(json!({"i": i})))
            .await
            .unwrap();
    }
    log.close();
}

fn cut(path: &Path, keep_lines: usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let kept: Vec<&str> = text.lines().take(keep_lines).collect();
    std::fs::write(path, kept.join("\n") + "\n").unwrap();
}

fn problem(files: &[PathBuf], anchor: &Path) -> Option<(Tamper, usize, String)> {
    verify_anchored(files, Some(anchor))
        .unwrap()
        .problem
        .map(|p| (p.kind, p.line, p.message))
}

#[tokio::test]
async fn the_head_is_anchored_every_n_records_and_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let (path, anchor) = (dir.path().join("audit.log"), dir.path().join("anchor.log"));
    anchored_log(&path, AnchorTarget::File(anchor.clone()), 4, 10).await;
    let anchors = records(&anchor);
    let seqs: Vec<u64> = anchors.iter().map(|a| a["seq"].as_u64().unwrap()).collect();
    // The first record, then every 4th, then the head on close.
    assert_eq!(seqs, [1, 5, 9, 10]);
    let log = records(&path);
    for a in &anchors {
        let seq = a["seq"].as_u64().unwrap();
        let rec = log.iter().find(|r| r["seq"] == seq).unwrap();
        assert_eq!(a["hash"], rec["hash"]);
        assert_eq!(a["log"], Value::from(path.display().to_string()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&anchor).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let v = verify_anchored(std::slice::from_ref(&path), Some(&anchor)).unwrap();
    assert_eq!(v.problem, None);
    assert_eq!(v.anchored, Some(10));

    // A restart continues the chain and the anchors.
    anchored_log(&path, AnchorTarget::File(anchor.clone()), 4, 2).await;
    assert_eq!(problem(std::slice::from_ref(&path), &anchor), None);
}

#[tokio::test]
async fn a_cut_tail_shows_only_against_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let (path, anchor) = (dir.path().join("audit.log"), dir.path().join("anchor.log"));
    anchored_log(&path, AnchorTarget::File(anchor.clone()), 100, 10).await;
    // The last three records gone: the chain alone cannot tell.
    cut(&path, 8);
    assert_eq!(verify(std::slice::from_ref(&path)).unwrap().problem, None);
    let (kind, line, message) = problem(std::slice::from_ref(&path), &anchor).unwrap();
    assert_eq!((kind, line), (Tamper::Truncated, 8));
    assert!(
        message.starts_with("the log ends at record 7, but the anchor at "),
        "{message}"
    );
    assert!(
        message.ends_with(":2 says record 10 was written: records were cut from the end"),
        "{message}"
    );

    let mut out = Vec::new();
    let code = run_verify(
        &LogFiles::given(vec![path.clone()]),
        Some(&AnchorTarget::File(anchor.clone())),
        &mut out,
    );
    assert_eq!(code, 1);
    assert!(String::from_utf8(out).unwrap().contains("(truncated)"));

    // Every record gone.
    std::fs::write(&path, "").unwrap();
    assert_eq!(
        problem(std::slice::from_ref(&path), &anchor).map(|p| p.0),
        Some(Tamper::Truncated)
    );
}

#[tokio::test]
async fn a_rewritten_log_disagrees_with_its_anchors() {
    let dir = tempfile::tempdir().unwrap();
    let (path, anchor) = (dir.path().join("audit.log"), dir.path().join("anchor.log"));
    anchored_log(&path, AnchorTarget::File(anchor.clone()), 3, 10).await;
    // Another log of the same length, each line sealed properly: what an
    // attacker who rewrites the whole file (recomputing every hash) has.
    let forged = dir.path().join("forged.log");
    let mut cfg = AuditConfig::new(&forged);
    cfg.flush = FlushPolicy::EveryRecord;
    let log = AuditLog::open(cfg).unwrap();
    for i in 0..10 {
        log.write(Record::new("comfyui_get_queue", "called").extra(json!({"i": i + 100})))
            .await
            .unwrap();
    }
    log.close();
    assert_eq!(verify(std::slice::from_ref(&forged)).unwrap().problem, None);
    let (kind, line, message) = problem(&[forged], &anchor).unwrap();
    assert_eq!((kind, line), (Tamper::Modified, 2));
    assert!(message.contains("holds another hash for record 1"), "{message}");

    // An anchor file that goes back to record 0: the anchored log was
    // replaced by a new one.
    let text = std::fs::read_to_string(&anchor).unwrap();
    let first = text.lines().next().unwrap().to_owned();
    std::fs::write(&anchor, format!("{text}{}\n", first.replace("\"seq\":1", "\"seq\":0"))).unwrap();
    let (kind, _, message) = problem(std::slice::from_ref(&path), &anchor).unwrap();
    assert_eq!(kind, Tamper::Unlinked, "{message}");

    // A line that is not an anchor.
    std::fs::write(&anchor, "hello\n").unwrap();
    assert_eq!(
        problem(std::slice::from_ref(&path), &anchor).map(|p| (p.0, p.1)),
        Some((Tamper::Malformed, 1))
    );
}

#[tokio::test]
async fn an_anchor_that_cannot_be_written_fails_the_call_when_closed() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let mut cfg = AuditConfig::new(dir.path().join("audit.log"));
    cfg.anchor = Some(AnchorTarget::File(blocker.join("anchor.log")));
    let log = AuditLog::open(cfg).unwrap();
    let err = log.write(Record::new("t", "called")).await.unwrap_err();
    assert!(matches!(err, AuditError::Io { .. }), "{err}");
    assert!(err.to_string().contains("anchor"), "{err}");
    log.close();
}

#[cfg(unix)]
#[tokio::test]
async fn syslog_receives_the_head() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("log.sock");
    let daemon = UnixDatagram::bind(&socket).unwrap();
    daemon
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let path = dir.path().join("audit.log");
    anchored_log(&path, AnchorTarget::Syslog(socket), 5, 7).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    for _ in 0..3 {
        let n = daemon.recv(&mut buf).unwrap();
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let log = records(&path);
    for (msg, seq) in got.iter().zip([1u64, 6, 7]) {
        let hash = log.iter().find(|r| r["seq"] == seq).unwrap()["hash"].as_str().unwrap();
        assert!(msg.starts_with("<85>comfy-mcp["), "{msg}");
        assert!(
            msg.ends_with(&format!("]: audit anchor log={} seq={seq} hash={hash}", path.display())),
            "{msg}"
        );
    }
    let mut out = Vec::new();
    let code = run_verify(
        &LogFiles::given(vec![path]),
        Some(&AnchorTarget::parse("syslog")),
        &mut out,
    );
    assert_eq!(code, 0);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("the anchors are in syslog, which this command cannot read"),
        "{text}"
    );
}
