//! The SQLite journal: one state change written durably, and reopening a
//! year's journal after a crash (integrity check and load).
//!
//! `cargo bench -p till-pay --bench journal`; sled and redb doing the same
//! work are compared with this journal in `tests/journal-backends` (run by
//! `scripts/journal-evidence`; figures in docs/reliability.md).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use till_pay::engine::state::{Entry, PendingItem, PendingKind, StateStore, Status, TerminalState};
use till_pay::iso8583::TxnKind;
use till_pay::journal::SqliteJournal;

/// Sales a busy shop terminal takes in a day.
const PER_DAY: u64 = 500;
/// Days of settled history kept (the default retention).
const RETAINED_DAYS: u64 = 180;

fn entry(id: u64, at: &str, settled: bool) -> Entry {
    Entry {
        id,
        kind: TxnKind::Sale,
        batch: (id / PER_DAY) as u32 + 1,
        stan: (id % 999_999) as u32 + 1,
        at: at.into(),
        local_date: "1121".into(),
        local_time: "101010".into(),
        mti: "0200".into(),
        processing_code: Some("000000".into()),
        amount: Some(1000 + id % 5000),
        currency: 156,
        pan_masked: Some(format!("622208*********{:04}", id % 10_000)),
        wallet: None,
        card_sealed: Some("c3f1a9b2e4d5c6a7b8c9d0e1:".to_string() + &"ab".repeat(40)),
        status: Status::Approved,
        response_code: Some("00".into()),
        rrn: Some(format!("{:012}", 400_000_000 + id)),
        auth_code: Some(format!("{:06}", id % 1_000_000)),
        original: None,
        settled,
        settled_at: settled.then(|| at.to_string()),
        offline: false,
    }
}

fn pending(entry: u64) -> PendingItem {
    PendingItem {
        entry,
        kind: PendingKind::Reversal,
        armed: false,
        message: "0400".repeat(40),
        first_mti: "0400".into(),
        repeat_mti: "0401".into(),
        attempts: 0,
        reason: String::new(),
        stan: entry as u32,
        created_at: chrono::Local::now().to_rfc3339(),
        rejected: None,
    }
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn benches(c: &mut Criterion) {
    let quick = std::env::args().any(|a| a == "--test");
    let dir = tempfile::tempdir().unwrap();

    // One state change: a sale written ahead (entry + its reversal guard),
    // then its answer (status, references; the guard dropped), with a
    // day's batch in memory.
    let mut j = SqliteJournal::open(dir.path().join("write")).unwrap();
    let mut state = TerminalState::default();
    let now = chrono::Local::now().to_rfc3339();
    for id in 1..=300 {
        state.entries.push(entry(id, &now, false));
    }
    j.save(&state).unwrap();
    let mut next = 301;
    let mut change = |j: &mut SqliteJournal, state: &mut TerminalState| {
        let mut e = entry(next, &now, false);
        e.status = Status::Sending;
        e.rrn = None;
        state.entries.push(e);
        state.pending.push(pending(next));
        j.save(state).unwrap();
        let e = state.entries.last_mut().unwrap();
        e.status = Status::Approved;
        e.rrn = Some(format!("{next:012}"));
        state.pending.clear();
        j.save(state).unwrap();
        // Keep memory at a day's batch.
        if state.entries.len() > 600 {
            state.entries.drain(..300);
        }
        next += 1;
    };
    c.bench_function("journal/sqlite/sale_written_ahead_and_answered", |b| {
        b.iter(|| change(&mut j, &mut state))
    });
    let samples = if quick { 20 } else { 2000 };
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let mut e = entry(next, &now, false);
        e.status = Status::Sending;
        state.entries.push(e);
        let t = Instant::now();
        j.save(&state).unwrap();
        times.push(t.elapsed());
        next += 1;
    }
    let (p50, p99) = percentiles(times);
    println!("journal write per state change over {samples}: p50 {p50:?} p99 {p99:?}");
    drop(j);

    // A year of a busy terminal, pruned to the retention: RETAINED_DAYS of
    // settled batches plus today's open one, each entry with its events.
    let year = dir.path().join("year");
    let days = if quick { 2 } else { RETAINED_DAYS };
    {
        let mut j = SqliteJournal::open(&year).unwrap();
        let start = chrono::Local::now() - chrono::Duration::days(days as i64);
        let mut state = TerminalState::default();
        let mut id = 1;
        for day in 0..=days {
            let at = (start + chrono::Duration::days(day as i64)).to_rfc3339();
            let open = day == days;
            state.entries.clear();
            for _ in 0..PER_DAY {
                state.entries.push(entry(id, &at, !open));
                id += 1;
            }
            j.save(&state).unwrap();
            // Settlement moves the day's batch to history.
            j.archive().unwrap();
        }
    }
    let size = ["journal.db", "history.db"]
        .iter()
        .map(|f| {
            std::fs::metadata(year.join(f))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum::<u64>();
    println!(
        "a year's journal: {} entries, {:.1} MB",
        (days + 1) * PER_DAY,
        size as f64 / 1e6
    );
    let unclean = || {
        let c = rusqlite::Connection::open(year.join("journal.db")).unwrap();
        c.execute(
            "UPDATE meta SET value = '0' WHERE key = 'clean_shutdown'",
            [],
        )
        .unwrap();
    };
    c.bench_function("journal/sqlite/reopen_after_crash_year", |b| {
        b.iter_batched(
            unclean,
            |()| {
                let mut j = SqliteJournal::open(&year).unwrap();
                assert!(j.integrity_checked());
                black_box(j.load().unwrap());
            },
            BatchSize::PerIteration,
        )
    });
    c.bench_function("journal/sqlite/open_only_year", |b| {
        b.iter(|| black_box(SqliteJournal::open(&year).unwrap()))
    });
    c.bench_function("journal/sqlite/reopen_clean_year", |b| {
        b.iter(|| {
            let mut j = SqliteJournal::open(&year).unwrap();
            black_box(j.load().unwrap());
        })
    });
}

criterion_group!(journal, benches);
criterion_main!(journal);
