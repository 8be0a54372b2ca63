//! `sled-flush`: which system call makes a "durable" state change durable.
//!
//! Each store runs the flush loop (`child flush`) twice under
//! `strace -f -c`: once with no state changes (open and close only) and
//! once with `--ops` of them. The difference, divided by `--ops`, is what
//! one durable state change costs in sync calls, whatever opening costs.
//! A short `strace -f` excerpt of sled's calls for one state change
//! follows.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::Outcome;
use crate::backends::{Backend, Result};
use crate::util;

/// The system calls that push written data towards the disk.
const SYNC_CALLS: [&str; 5] = ["fsync", "fdatasync", "sync_file_range", "msync", "syncfs"];

/// Options of `sled-flush`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Durable state changes per traced run.
    #[arg(long, default_value_t = 200)]
    ops: u64,
    /// Time limit for one traced run, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// Counts of sync calls in one traced run.
type Counts = BTreeMap<String, u64>;

/// Runs `child flush` for `backend` under `strace -f -c`; the counts.
fn traced(backend: Backend, dir: &Path, ops: u64, limit: Duration) -> Result<Counts> {
    let strace = util::strace()?;
    util::remove_dir(dir)?;
    let out = dir.with_extension("strace-c");
    let mut cmd = Command::new(strace);
    cmd.args(["-f", "-c", "-U", "name,calls", "-o"])
        .arg(&out)
        .arg("-e")
        .arg(format!("trace={}", SYNC_CALLS.join(",")))
        .arg(util::self_exe()?)
        .args(["child", "flush", "--backend", backend.name(), "--dir"])
        .arg(dir)
        .args(["--ops", &ops.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    });
    let status = util::wait_timeout_with(&mut child, limit, |pid| {
        for c in util::children_of(pid) {
            util::kill_pid(c);
        }
    })?;
    let err = err_reader.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => {}
        Some(s) => return Err(format!("traced flush loop failed ({s}): {err}").into()),
        None => return Err(format!("traced flush loop exceeded {limit:?}").into()),
    }
    let table = std::fs::read_to_string(&out)?;
    Ok(parse_counts(&table))
}

/// Reads `strace -c -U name,calls` output: lines of `calls name`, or of
/// `name calls` depending on the column order asked for.
fn parse_counts(table: &str) -> Counts {
    let mut counts: Counts = SYNC_CALLS.iter().map(|s| (s.to_string(), 0)).collect();
    for line in table.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if let [name, calls] = t[..]
            && let (Some(c), Ok(n)) = (counts.get_mut(name), calls.parse::<u64>())
        {
            *c = n;
        }
    }
    counts
}

/// The last calls of sled's I/O in a run of three state changes.
fn excerpt(dir: &Path, limit: Duration) -> Result<Vec<String>> {
    let strace = util::strace()?;
    util::remove_dir(dir)?;
    let out = dir.with_extension("strace");
    let mut cmd = Command::new(strace);
    cmd.args(["-f", "-qq", "-s", "12", "-e", "signal=none", "-o"])
        .arg(&out)
        .arg("-e")
        .arg(format!("trace=pwrite64,write,{}", SYNC_CALLS.join(",")))
        .arg(util::self_exe()?)
        .args(["child", "flush", "--backend", "sled", "--dir"])
        .arg(dir)
        .args(["--ops", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn()?;
    let status = util::wait_timeout_with(&mut child, limit, |pid| {
        for c in util::children_of(pid) {
            util::kill_pid(c);
        }
    })?;
    if !status.is_some_and(|s| s.success()) {
        return Err("the traced sled excerpt run failed".into());
    }
    let text = std::fs::read_to_string(&out)?;
    // The last calls of the run (stdout and exit lines left out).
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("write(1,"))
        .filter(|l| !l.contains("+++") && !l.contains("---"))
        .collect();
    let from = lines.len().saturating_sub(EXCERPT_LINES);
    Ok(lines[from..]
        .iter()
        // Drop the pid column.
        .map(|l| l.split_once(' ').map_or(*l, |(_, r)| r).trim().to_string())
        .collect())
}

/// Lines of the sled trace excerpt shown.
const EXCERPT_LINES: usize = 6;

/// Per state change, from two runs.
fn per_op(base: &Counts, full: &Counts, ops: u64) -> BTreeMap<String, f64> {
    full.iter()
        .map(|(k, n)| {
            let b = base.get(k).copied().unwrap_or(0);
            (k.clone(), (n.saturating_sub(b)) as f64 / ops as f64)
        })
        .collect()
}

fn sum(c: &BTreeMap<String, f64>, keys: &[&str]) -> f64 {
    keys.iter().filter_map(|k| c.get(*k)).sum()
}

/// Runs `sled-flush`.
pub fn run(a: &Args, work: &Path) -> Result<Outcome> {
    let limit = Duration::from_secs(a.timeout);
    if a.ops == 0 {
        return Err("--ops must be at least 1".into());
    }
    println!("== sled-flush: the system calls behind one durable state change ==");
    println!(
        "sled {}, redb {}, SQLite {} (rusqlite {}); strace -f -c over {} state changes, \
         minus a run with none; work dir {} ({})",
        util::crate_version("sled"),
        util::crate_version("redb"),
        rusqlite::version(),
        util::crate_version("rusqlite"),
        a.ops,
        work.display(),
        util::fs_type(work),
    );
    let mut rows = serde_json::Map::new();
    let mut per: BTreeMap<Backend, BTreeMap<String, f64>> = BTreeMap::new();
    println!();
    println!(
        "  calls per durable state change, and in total with {} / with 0 state changes \
         (sync_file_range/fsync/fdatasync):",
        a.ops
    );
    println!(
        "  {:<7} {:>15} {:>9} {:>10}   {:>14} {:>10}",
        "store", "sync_file_range", "fsync", "fdatasync", "totals", "baseline"
    );
    for b in [Backend::Sled, Backend::Sqlite, Backend::Redb] {
        let dir = work.join(b.name());
        let base = traced(b, &dir, 0, limit)?;
        let full = traced(b, &dir, a.ops, limit)?;
        let p = per_op(&base, &full, a.ops);
        println!(
            "  {:<7} {:>15.2} {:>9.2} {:>10.2}   {:>14} {:>10}",
            b.name(),
            p["sync_file_range"],
            p["fsync"],
            p["fdatasync"],
            fmt3(&full),
            fmt3(&base),
        );
        rows.insert(
            b.name().into(),
            serde_json::json!({
                "ops": a.ops, "with_ops": full, "without_ops": base, "per_op": p,
                "durability_call": b.durability_call(),
            }),
        );
        per.insert(b, p);
    }
    let sled = &per[&Backend::Sled];
    let sqlite = &per[&Backend::Sqlite];
    let sled_sfr = sled["sync_file_range"];
    let sled_fsync = sum(sled, &["fsync", "fdatasync"]);
    let sqlite_sync = sum(sqlite, &["fsync", "fdatasync"]);
    // The claim: every sled flush issues sync_file_range, and far fewer
    // than one fsync/fdatasync per flush happen (those come from sled's
    // background flusher every 500 ms, not from flush()); every SQLite
    // commit issues at least one fsync/fdatasync.
    let claim_sled = sled_sfr >= 1.0 && sled_fsync < 0.5;
    let claim_sqlite = sqlite_sync >= 1.0;
    println!();
    for b in [Backend::Sled, Backend::Sqlite, Backend::Redb] {
        println!("  {:<7} durability call: {}", b.name(), b.durability_call());
    }
    let trace = excerpt(&work.join("sled-excerpt"), limit)
        .unwrap_or_else(|e| vec![format!("(no excerpt: {e})")]);
    println!();
    println!(
        "  sled, the last system calls of a run of 3 state changes (strace -f; stdout writes left out):"
    );
    for l in &trace {
        println!("    {l}");
    }
    println!();
    if claim_sled {
        println!(
            "  OBSERVED: sled's Db::flush() ends in sync_file_range ({sled_sfr:.2} per state change) \
             and issues no fsync/fdatasync of its own ({sled_fsync:.3} per state change: sled fsyncs \
             only from its background flusher, every 500 ms, and when it closes). sync_file_range does not flush the drive's write cache nor the \
             file's metadata: a \"flushed\" state change can be lost on power cut (sled issue 1452)."
        );
    } else {
        println!(
            "  NOT OBSERVED: sled issued {sled_sfr:.2} sync_file_range and {sled_fsync:.2} \
             fsync/fdatasync per state change."
        );
    }
    if claim_sqlite {
        println!(
            "  SQLite (Till's SqliteJournal) issues {sqlite_sync:.2} fsync/fdatasync per committed \
             state change: durable when save() returns."
        );
    } else {
        println!(
            "  UNEXPECTED: SQLite issued only {sqlite_sync:.2} fsync/fdatasync per state change."
        );
    }
    Ok(Outcome {
        report: serde_json::json!({
            "subcommand": "sled-flush",
            "environment": util::environment(work),
            "stores": rows,
            "sled_excerpt": trace,
            "claim": "sled flush() = sync_file_range, no fsync; SQLite commit = fsync/fdatasync",
            "claim_holds": claim_sled && claim_sqlite,
        }),
        claim_holds: claim_sled && claim_sqlite,
    })
}

fn fmt3(c: &Counts) -> String {
    format!(
        "{}/{}/{}",
        c.get("sync_file_range").copied().unwrap_or(0),
        c.get("fsync").copied().unwrap_or(0),
        c.get("fdatasync").copied().unwrap_or(0)
    )
}
