//! `till-journal-backends`: why Till's journal of record is SQLite and not
//! sled, as a program anyone can run (issue 3).
//!
//! - `sled-flush`: sled 0.34.7's `Db::flush()` ends in `sync_file_range`,
//!   not `fsync`/`fdatasync` (upstream sled issue 1452), counted with
//!   `strace -c`; Till's SQLite journal, for contrast, syncs every commit.
//! - `sled-sweep`: a SIGKILL at each write/sync/rename point (strace fault
//!   injection) over the reopen/recovery path and the first writes; for
//!   sled some points leave a store that never opens again (a truncated
//!   `snap.*.generating`; upstream 1527/1533). `--backend sqlite|redb`
//!   runs the same sweep on the other stores.
//! - `bench`: the journal workload on the three stores in one run,
//!   interleaved: time per durable state change and reopen time.
//! - `kill`: random SIGKILLs of a writer, every acknowledged sale checked.
//!
//! Each subcommand prints a report and exits 1 when the claim it
//! demonstrates is not observed (2 on an error running it). Not part of
//! the terminal: see Cargo.toml.

mod backends;
mod bench;
mod child;
mod flush;
mod killtest;
mod sweep;
mod util;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::backends::{Backend, Result};

#[derive(Debug, Parser)]
#[command(
    name = "till-journal-backends",
    version,
    about = "Why Till's journal is SQLite and not sled: sled 0.34.7's flush and \
             crash-recovery failures reproduced, and the journal workload on \
             SQLite (Till's SqliteJournal), sled and redb",
    after_help = "Exit status: 0 when the claim a subcommand demonstrates is observed, \
                  1 when it is not, 2 when the experiment could not run. Needs strace \
                  for sled-flush and sled-sweep."
)]
struct Cli {
    /// Directory for the stores (on a disk, not tmpfs); a fresh
    /// subdirectory is made in it for each run. Default: the system's
    /// temporary directory.
    #[arg(long, global = true, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Also write the full results as JSON to this file.
    #[arg(long, global = true, value_name = "FILE")]
    json: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// sled's flush() under strace: sync_file_range vs fsync/fdatasync per
    /// durable state change, with SQLite (and redb) for contrast.
    SledFlush(flush::Args),
    /// Deterministic crash-point sweep: SIGKILL at the k-th call of each
    /// write/sync/rename system call (strace inject), then reopen in a
    /// fresh process and check every acknowledged sale.
    #[command(alias = "sweep")]
    SledSweep(sweep::Args),
    /// The journal workload on SQLite, sled and redb, interleaved:
    /// p50/p99 per durable state change, and reopen time.
    Bench(bench::Args),
    /// Random SIGKILLs of a writer on each store; every acknowledged sale
    /// must be there after each reopen.
    Kill(killtest::Args),
    /// This program's own child processes (used by the subcommands above).
    #[command(subcommand, hide = true)]
    Child(ChildCmd),
}

#[derive(Debug, Subcommand)]
enum ChildCmd {
    /// Sales until killed (or `--sales` done), acknowledged on stdout.
    Writer {
        #[arg(long, value_enum)]
        backend: Backend,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        sales: Option<u64>,
    },
    /// Timed open and load; one JSON line.
    Reopen {
        #[arg(long, value_enum)]
        backend: Backend,
        #[arg(long)]
        dir: PathBuf,
    },
    /// `ops` durable state changes on a fresh journal (to trace).
    Flush {
        #[arg(long, value_enum)]
        backend: Backend,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        ops: u64,
    },
    /// Reopen after a crash and check against the acknowledgements.
    Verify {
        #[arg(long, value_enum)]
        backend: Backend,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        acks: PathBuf,
    },
    /// Build a journal of realistic size.
    Prepare {
        #[arg(long, value_enum)]
        backend: Backend,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        days: u64,
        #[arg(long)]
        open: u64,
    },
    /// One timed block of the benchmark.
    BenchBlock {
        #[arg(long, value_enum)]
        backend: Backend,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        steps: u64,
        #[arg(long, default_value_t = 0)]
        warmup: u64,
    },
}

/// What a subcommand found: its report (JSON) and whether the claim held.
pub struct Outcome {
    /// Full results.
    pub report: serde_json::Value,
    /// The claim being demonstrated was observed.
    pub claim_holds: bool,
}

fn run_child(c: ChildCmd) -> Result<i32> {
    match c {
        ChildCmd::Writer {
            backend,
            dir,
            sales,
        } => child::writer(backend, &dir, sales).map(|()| 0),
        ChildCmd::Reopen { backend, dir } => child::reopen(backend, &dir).map(|()| 0),
        ChildCmd::Flush { backend, dir, ops } => child::flush(backend, &dir, ops).map(|()| 0),
        ChildCmd::Verify { backend, dir, acks } => child::verify(backend, &dir, &acks),
        ChildCmd::Prepare {
            backend,
            dir,
            days,
            open,
        } => child::prepare(backend, &dir, days, open).map(|()| 0),
        ChildCmd::BenchBlock {
            backend,
            dir,
            steps,
            warmup,
        } => child::bench_block(backend, &dir, steps, warmup).map(|()| 0),
    }
}

/// A fresh directory for this run under the work directory.
fn run_dir(work: Option<&Path>, what: &str) -> Result<tempfile::TempDir> {
    let base = match work {
        Some(w) => w.to_path_buf(),
        None => std::env::temp_dir(),
    };
    std::fs::create_dir_all(&base).map_err(|e| format!("cannot create {}: {e}", base.display()))?;
    util::check_work_fs(&base)?;
    Ok(tempfile::Builder::new()
        .prefix(&format!("{what}-"))
        .tempdir_in(&base)?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let work = cli.work_dir.as_deref();
    let result = match cli.cmd {
        Cmd::Child(c) => {
            return match run_child(c) {
                Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
                Err(e) => {
                    eprintln!("child error: {e}");
                    ExitCode::from(1)
                }
            };
        }
        Cmd::SledFlush(a) => run_dir(work, "flush").and_then(|d| flush::run(&a, d.path())),
        Cmd::SledSweep(a) => run_dir(work, "sweep").and_then(|d| sweep::run(&a, d.path())),
        Cmd::Bench(a) => run_dir(work, "bench").and_then(|d| bench::run(&a, d.path())),
        Cmd::Kill(a) => run_dir(work, "kill").and_then(|d| killtest::run(&a, d.path())),
    };
    match result {
        Ok(o) => {
            if let Err(e) = util::write_json(cli.json.as_deref(), &o.report) {
                eprintln!("till-journal-backends: error: {e}");
                return ExitCode::from(2);
            }
            if o.claim_holds {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("till-journal-backends: error: {e}");
            ExitCode::from(2)
        }
    }
}
