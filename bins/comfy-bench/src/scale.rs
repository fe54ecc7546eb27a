//! `--scale`: replicas sharing a real `redis-server` behind a round robin.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use comfy_test_support::Redis;

use crate::http::{hammer, spawn_http};
use crate::suite::Bench;

/// `--scale`: calls per second through 1, 2 and 4 replicas over HTTP,
/// sharing a real `redis-server`, in front of two simulators; a Markdown
/// table for `docs/scaling.md`.
pub(crate) fn scale(bin: &Path, rt: &tokio::runtime::Runtime, quick: bool) -> Result<String> {
    // Stopped however this function ends.
    let redis = Redis::start().context("redis-server (apt-get install redis-server)")?;
    let a = rt.block_on(comfy_sim::Sim::builder().start())?;
    let b = rt.block_on(comfy_sim::Sim::builder().start())?;
    let base = format!(
        "comfyui:\n  backends:\n    - name: a\n      url: {}\n    - name: b\n      url: {}\n\
         rate_limits:\n  read_only: 1000000\ntransport:\n  remote:\n    enabled: true\n    port: 0\n",
        a.url(),
        b.url()
    );
    let mut rows = String::from("| replicas | Redis | calls/s | calls |\n| --- | --- | --- | --- |\n");
    let clients = 16;
    let per_client = if quick { 25 } else { 500 };
    for (replicas, shared) in [(1usize, false), (1, true), (2, true), (4, true)] {
        let config = if shared {
            format!("{base}state:\n  redis_url: {}\n", redis.url())
        } else {
            base.clone()
        };
        let mut children = Vec::new();
        let mut homes = Vec::new();
        let mut addrs = Vec::new();
        for _ in 0..replicas {
            let home = Bench::home(&config)?;
            let (server, addr) = spawn_http(bin, home.path(), None)?;
            children.push(server);
            homes.push(home);
            addrs.push(addr);
        }
        let (ok, took) = hammer(&addrs, clients, per_client);
        drop(children);
        drop(homes);
        if ok != clients * per_client {
            bail!(
                "{} of {} calls failed with {replicas} replicas",
                clients * per_client - ok,
                clients * per_client
            );
        }
        #[allow(clippy::cast_precision_loss, reason = "call counts")]
        let rate = ok as f64 / took.as_secs_f64();
        let redis_col = if shared { "shared" } else { "none" };
        let _ = writeln!(rows, "| {replicas} | {redis_col} | {rate:.0} | {ok} |");
    }
    drop(redis);
    Ok(rows)
}
