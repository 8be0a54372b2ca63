//! `bench`: the journal workload on the three stores in one run.
//!
//! Each store first gets a journal of realistic size (`--days` settled
//! batches of 500 sales in history and `--open` sales in the open batch).
//! Then `--rounds` rounds: in each, every store in turn (the order rotates)
//! runs a block of `--steps` durable state changes in a fresh process —
//! so slow drifts of the disk hit all three alike and no store's
//! background threads run during another's block. Each `save` is timed
//! with `std::time::Instant`. A block of plain 1 KiB appends with
//! `fdatasync` runs in each round too: the disk's own floor. Then the time
//! to reopen and read the open
//! batch back: after a clean exit, and after a SIGKILL of a writer.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::Outcome;
use crate::backends::{Backend, Result};
use crate::util;

/// Options of `bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rounds of blocks.
    #[arg(long, default_value_t = 20)]
    rounds: u32,
    /// Timed state changes per block.
    #[arg(long, default_value_t = 500)]
    steps: u64,
    /// Untimed state changes at the start of each block.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Days of settled history (500 sales each) in each journal.
    #[arg(long, default_value_t = 180)]
    days: u64,
    /// Sales in the open batch.
    #[arg(long, default_value_t = 300)]
    open: u64,
    /// Reopens timed per store, after a clean exit and after a kill each.
    #[arg(long, default_value_t = 5)]
    reopens: u32,
    /// Time limit for one child process, in seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
}

const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Sled, Backend::Redb];

fn child_json(args: &[&str], limit: Duration) -> Result<serde_json::Value> {
    let (status, out, err) = util::run_child(args, limit)?;
    match status {
        Some(s) if s.success() => {
            util::last_json(&out).ok_or_else(|| format!("no JSON from {args:?}").into())
        }
        Some(s) => Err(format!("{args:?} failed ({s}): {}", err.trim()).into()),
        None => Err(format!("{args:?} exceeded {limit:?}").into()),
    }
}

fn reopen_ms(b: Backend, dir: &str, limit: Duration) -> Result<f64> {
    let v = child_json(
        &["child", "reopen", "--backend", b.name(), "--dir", dir],
        limit,
    )?;
    v["total_ms"]
        .as_f64()
        .ok_or_else(|| "reopen gave no time".into())
}

/// The disk's own floor: `steps` appends of 1 KiB, each followed by
/// `fdatasync` (`File::sync_data`), timed like a state change.
fn disk_block(path: &Path, steps: u64, warmup: u64) -> Result<Vec<f64>> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(false)
        .write(true)
        .truncate(false)
        .open(path)?;
    let start = f.metadata()?.len();
    let buf = [0x5au8; 1024];
    let mut out = Vec::with_capacity(steps as usize);
    for i in 0..warmup + steps {
        let t = std::time::Instant::now();
        f.write_all_at(&buf, start + i * 1024)?;
        f.sync_data()?;
        let us = t.elapsed().as_secs_f64() * 1e6;
        if i >= warmup {
            out.push((us * 10.0).round() / 10.0);
        }
    }
    Ok(out)
}

fn median(v: &[f64]) -> f64 {
    util::summarize(v).p50
}

/// Runs `bench`.
pub fn run(a: &Args, work: &Path) -> Result<Outcome> {
    let limit = Duration::from_secs(a.timeout);
    println!("== bench: the journal workload on SQLite (Till's SqliteJournal), sled and redb ==");
    println!(
        "SQLite {} (rusqlite {}), sled {}, redb {}; journals of {} settled days x 500 sales + {} \
         open; {} rounds x {} timed state changes per store (+{} warm-up), interleaved; \
         work dir {} ({})",
        rusqlite::version(),
        util::crate_version("rusqlite"),
        util::crate_version("sled"),
        util::crate_version("redb"),
        a.days,
        a.open,
        a.rounds,
        a.steps,
        a.warmup,
        work.display(),
        util::fs_type(work),
    );
    let dirs: BTreeMap<Backend, String> = ALL
        .iter()
        .map(|b| (*b, work.join(b.name()).to_string_lossy().into_owned()))
        .collect();
    let mut prep = serde_json::Map::new();
    for b in ALL {
        let v = child_json(
            &[
                "child",
                "prepare",
                "--backend",
                b.name(),
                "--dir",
                &dirs[&b],
                "--days",
                &a.days.to_string(),
                "--open",
                &a.open.to_string(),
            ],
            limit,
        )?;
        println!(
            "  prepared {:<6} {} entries in {:.1} s, {:.1} MB on disk",
            b.name(),
            v["entries"],
            v["secs"].as_f64().unwrap_or(0.0),
            util::dir_bytes(Path::new(&dirs[&b])) as f64 / 1e6
        );
        prep.insert(b.name().into(), v);
    }
    let mut lat: BTreeMap<Backend, Vec<f64>> = ALL.iter().map(|b| (*b, Vec::new())).collect();
    let mut block_p50: BTreeMap<Backend, Vec<f64>> = ALL.iter().map(|b| (*b, Vec::new())).collect();
    let mut disk = Vec::new();
    let mut disk_p50 = Vec::new();
    for r in 0..a.rounds {
        for i in 0..ALL.len() {
            let b = ALL[(i + r as usize) % ALL.len()];
            let v = child_json(
                &[
                    "child",
                    "bench-block",
                    "--backend",
                    b.name(),
                    "--dir",
                    &dirs[&b],
                    "--steps",
                    &a.steps.to_string(),
                    "--warmup",
                    &a.warmup.to_string(),
                ],
                limit,
            )?;
            let block: Vec<f64> = v["lat_us"]
                .as_array()
                .ok_or("bench block gave no latencies")?
                .iter()
                .filter_map(serde_json::Value::as_f64)
                .collect();
            if block.is_empty() {
                return Err("a bench block gave no latencies".into());
            }
            block_p50.get_mut(&b).ok_or("backend")?.push(median(&block));
            lat.get_mut(&b).ok_or("backend")?.extend(block);
        }
        let block = disk_block(&work.join("disk-floor"), a.steps, a.warmup)?;
        disk_p50.push(median(&block));
        disk.extend(block);
    }
    // Reopen: after a clean exit, then after a writer was killed.
    let mut reopen = serde_json::Map::new();
    let mut reopen_rows = BTreeMap::new();
    for b in ALL {
        let mut clean = Vec::new();
        for _ in 0..a.reopens {
            clean.push(reopen_ms(b, &dirs[&b], limit)?);
        }
        let mut crashed = Vec::new();
        for _ in 0..a.reopens {
            let k = util::kill_writer_after(b, Path::new(&dirs[&b]), 5, Duration::ZERO)?;
            if !k.killed {
                return Err(format!(
                    "the {} writer stopped by itself: {}",
                    b.name(),
                    k.stderr.trim()
                )
                .into());
            }
            crashed.push(reopen_ms(b, &dirs[&b], limit)?);
        }
        let size = util::dir_bytes(Path::new(&dirs[&b]));
        reopen_rows.insert(b, (median(&clean), median(&crashed), size));
        reopen.insert(
            b.name().into(),
            serde_json::json!({ "clean_ms": clean, "after_kill_ms": crashed, "bytes": size }),
        );
    }
    println!();
    println!(
        "  journal write per durable state change (µs), {} samples per store:",
        a.rounds as u64 * a.steps
    );
    println!(
        "  {:<7} {:>8} {:>8} {:>8} {:>8} {:>8}  {:>13}  block p50 range",
        "store", "p50", "p99", "p99.9", "mean", "max", "changes/s"
    );
    let mut results = serde_json::Map::new();
    for b in ALL {
        let s = util::summarize(&lat[&b]);
        let bp = &block_p50[&b];
        let (lo, hi) = bp
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
        println!(
            "  {:<7} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>8.0}  {:>13.0}  {:.0}–{:.0}",
            b.name(),
            s.p50,
            s.p99,
            s.p999,
            s.mean,
            s.max,
            1e6 / s.mean,
            lo,
            hi
        );
        results.insert(
            b.name().into(),
            serde_json::json!({ "write_us": s, "block_p50_us": bp, "durability_call": b.durability_call() }),
        );
    }
    let d = util::summarize(&disk);
    let (lo, hi) = disk_p50
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
    println!(
        "  {:<7} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>8.0}  {:>13.0}  {:.0}–{:.0}   \
         (the disk alone: 1 KiB pwrite + fdatasync)",
        "disk",
        d.p50,
        d.p99,
        d.p999,
        d.mean,
        d.max,
        1e6 / d.mean,
        lo,
        hi
    );
    results.insert(
        "disk_floor".into(),
        serde_json::json!({ "write_us": d, "block_p50_us": disk_p50,
            "what": "1 KiB pwrite + fdatasync, interleaved with the stores' blocks" }),
    );
    println!();
    println!(
        "  reopen and read the open batch back (ms, median of {}):",
        a.reopens
    );
    println!(
        "  {:<7} {:>12} {:>16} {:>12}",
        "store", "clean exit", "after SIGKILL", "size MB"
    );
    for b in ALL {
        let (c, k, size) = reopen_rows[&b];
        println!(
            "  {:<7} {:>12.1} {:>16.1} {:>12.1}",
            b.name(),
            c,
            k,
            size as f64 / 1e6
        );
    }
    println!();
    println!(
        "  Note: sled's figures are for flush(), which does not fsync (see sled-flush); \
         SQLite and redb sync each commit."
    );
    Ok(Outcome {
        report: serde_json::json!({
            "subcommand": "bench",
            "environment": util::environment(work),
            "options": {
                "rounds": a.rounds, "steps": a.steps, "warmup": a.warmup, "days": a.days,
                "open": a.open, "reopens": a.reopens,
            },
            "prepare": prep,
            "write": results,
            "reopen": reopen,
        }),
        claim_holds: true,
    })
}
