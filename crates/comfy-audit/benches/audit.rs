//! Records per second with each flush policy, one writer and 16
//! concurrent writers (where group commit shows). Run with
//! `cargo xtask bench`; results go in `docs/performance.md`.

#![allow(missing_docs, clippy::unwrap_used, reason = "benchmark harness")]

use std::sync::Arc;
use std::time::Duration;

use comfy_audit::{AuditConfig, AuditLog, FlushPolicy, Outcome, Record};
use divan::counter::ItemsCount;
use serde_json::json;

fn main() {
    divan::main();
}

const RECORDS: usize = 256;

fn record(i: usize) -> Record {
    Record::new("comfyui_generate_image", "called")
        .outcome(Outcome::Ok)
        .duration(Duration::from_millis(3))
        .extra(json!({"arguments": {"prompt": "a lighthouse on a cliff at dawn", "seed": i, "steps": 20, "hf_token": "hf_secret"}}))
}

fn run(flush: FlushPolicy, writers: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AuditConfig::new(dir.path().join("audit.log"));
    cfg.flush = flush;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let log = Arc::new(AuditLog::open(cfg).unwrap());
    rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..writers {
            let log = Arc::clone(&log);
            tasks.push(tokio::spawn(async move {
                for i in 0..RECORDS / writers {
                    log.write(record(w * 1000 + i)).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    log.close();
}

#[divan::bench(args = [1, 16], sample_count = 10)]
fn every_record(bencher: divan::Bencher, writers: usize) {
    bencher
        .counter(ItemsCount::new(RECORDS))
        .bench(|| run(FlushPolicy::EveryRecord, writers));
}

#[divan::bench(args = [1, 16], sample_count = 10)]
fn interval_1s(bencher: divan::Bencher, writers: usize) {
    bencher
        .counter(ItemsCount::new(RECORDS))
        .bench(|| run(FlushPolicy::Interval(Duration::from_secs(1)), writers));
}
