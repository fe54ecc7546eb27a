//! Start-up, memory and footprint of other ComfyUI MCP servers, next to ours.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, bail};

use crate::report::stats;
use crate::suite::{Bench, CONFIG, start_once};

/// Start-up, memory after start and install footprint of other ComfyUI MCP
/// servers a user might pick instead, each given as `NAME|COMMAND|DIR`
/// (`DIR` is what installing it took: its virtualenv or `node_modules`),
/// or `NAME|skipped: REASON` when it could not be installed here; the
/// Markdown table that compares them with ours.
pub(crate) fn other_servers(others: &[String], ours: &Bench, quick: bool) -> Result<String> {
    let value = |key: &str| ours.figures.iter().find(|f| f.key == key).map(|f| f.value);
    let (our_start, our_rss, our_size) = (value("startup_ms"), value("rss_start_mib"), value("binary_mib"));
    let mut rows = String::from(
        "\nOther ComfyUI MCP servers a user might pick instead, measured in the same run with the same driver (spawn → `initialize` → `tools/list`; resident memory 0.3 s later; what installing it put on disk), against the same simulator:\n\n| server | start-up | resident after start | install footprint | our start-up is |\n|---|---|---|---|---|\n",
    );
    let mut fastest: Option<f64> = None;
    for spec in others {
        let mut parts = spec.splitn(3, '|');
        let name = parts.next().unwrap_or_default();
        let (Some(command), Some(dir)) = (parts.next(), parts.next()) else {
            let why = spec.split_once('|').map_or("not installed", |(_, why)| why);
            let _ = writeln!(rows, "| {name} | – | – | – | {why} |");
            continue;
        };
        eprintln!("bench: {name}");
        let runs = if quick { 3 } else { 10 };
        let home = Bench::home(CONFIG)?;
        let (mut times, mut rss) = (Vec::new(), Vec::new());
        for _ in 0..=runs {
            let (took, tools, mib) = start_once(Path::new(command), home.path(), &ours.sim)?;
            if tools == 0 {
                bail!("{name}: tools/list answered no tools");
            }
            times.push(took);
            rss.push(mib);
        }
        times.remove(0); // the warm-up run
        rss.remove(0);
        let ((t50, _), (r50, _)) = (stats(&mut times), stats(&mut rss));
        #[allow(clippy::cast_precision_loss, reason = "byte counts")]
        let size = dir_size(Path::new(dir)) as f64 / (1024.0 * 1024.0);
        fastest = Some(fastest.map_or(t50, |f: f64| f.min(t50)));
        let versus = our_start.map_or_else(|| "–".to_owned(), |o| format!("{:.0}× faster", t50 / o));
        let _ = writeln!(
            rows,
            "| {name} | {t50:.0} ms (median of {runs}) | {r50:.1} MiB | {size:.1} MiB | {versus} |"
        );
    }
    let _ = writeln!(
        rows,
        "| ours (above) | {} | {} | {} | |",
        our_start.map_or_else(|| "–".to_owned(), |v| format!("{v:.1} ms")),
        our_rss.map_or_else(|| "–".to_owned(), |v| format!("{v:.1} MiB")),
        our_size.map_or_else(|| "–".to_owned(), |v| format!("{v:.1} MiB")),
    );
    if let (Some(f), Some(o)) = (fastest, our_start) {
        let _ = writeln!(
            rows,
            "\nAgainst the fastest of them our start-up is {:.0}× faster (target: ≥ 60×).",
            f / o
        );
    }
    Ok(rows)
}

/// Bytes in the files under `dir`.
pub(crate) fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}
