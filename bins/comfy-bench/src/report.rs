//! Figures and what is done with them: statistics, the Markdown table, the
//! machine line, the performance doc's block and the baseline check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};

/// Median and 99th percentile of `xs` (sorted in place).
pub(crate) fn stats(xs: &mut [f64]) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let at = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "an index into a short list"
        )]
        let i = ((xs.len() - 1) as f64 * q).round() as usize;
        xs[i]
    };
    (at(0.5), at(0.99))
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One measured figure.
pub(crate) struct Figure {
    pub(crate) key: &'static str,
    pub(crate) what: String,
    pub(crate) value: f64,
    pub(crate) unit: &'static str,
    /// Larger is better (throughput) rather than smaller (time, memory).
    pub(crate) higher_better: bool,
    pub(crate) detail: String,
    pub(crate) peer: Option<f64>,
    pub(crate) target: &'static str,
}

/// The Markdown table of a run.
pub(crate) fn table(figures: &[Figure], quick: bool, peer_measured: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| figure | ours | peer ({}) | ratio | target | notes |\n|---|---|---|---|---|---|",
        if peer_measured { "this run" } else { "recorded" }
    );
    for f in figures {
        let peer = f.peer.map_or_else(|| "–".to_owned(), |p| format!("{p:.3}"));
        let ratio = f.peer.map_or_else(
            || "–".to_owned(),
            |p| {
                let r = if f.higher_better { f.value / p } else { p / f.value };
                format!("{r:.0}× better")
            },
        );
        let _ = writeln!(
            out,
            "| {} | {:.3} {} | {} | {} | {} | {} |",
            f.what,
            f.value,
            f.unit,
            peer,
            ratio,
            if f.target.is_empty() { "–" } else { f.target },
            f.detail
        );
    }
    if quick {
        out.push_str("\n(quick run: fewer iterations)\n");
    }
    out
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |k| k >> 20);
    format!("{cores} cores, {cpu}, {mem} GiB")
}

pub(crate) fn replace_block(file: &Path, block: &str) -> Result<()> {
    let text = std::fs::read_to_string(file)?;
    let (begin, end) = ("<!-- bench:begin -->", "<!-- bench:end -->");
    let (Some(a), Some(b)) = (text.find(begin), text.find(end)) else {
        bail!("{} has no {begin} … {end} block", file.display());
    };
    let new = format!("{}{begin}\n{block}{}", &text[..a], &text[b..]);
    std::fs::write(file, new)?;
    Ok(())
}

/// Fails when a figure is more than 5 times worse than the baseline's.
pub(crate) fn check(figures: &[Figure], baseline: &Path) -> Result<()> {
    let base: BTreeMap<String, f64> = serde_json::from_str(&std::fs::read_to_string(baseline)?)?;
    let mut bad = Vec::new();
    for f in figures {
        let Some(&b) = base.get(f.key) else { continue };
        let worse = if f.higher_better { b / f.value } else { f.value / b };
        if worse > 5.0 {
            bad.push(format!(
                "{}: {:.3} {} against a baseline of {b:.3} ({worse:.1}× worse)",
                f.key, f.value, f.unit
            ));
        }
    }
    if !bad.is_empty() {
        bail!("gross regressions:\n  {}", bad.join("\n  "));
    }
    eprintln!("bench: no figure is more than 5× worse than {}", baseline.display());
    Ok(())
}
