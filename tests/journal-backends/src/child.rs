//! The hidden subcommands this program runs as its own children: a writer
//! to kill, a timed reopen, a flush loop to trace, and a verifier. Each
//! runs in its own process so a kill, a hang or a panic in a store stays
//! there.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use till_pay::engine::state::{PendingKind, Status};

use crate::backends::{Backend, Result, open};
use crate::workload::Workload;

/// Makes sales on the journal in `dir` and acknowledges each durable state
/// change on stdout (`A <id>` written ahead, `B <id>` answered), one
/// `write(2)` per line, until `sales` sales are done or it is killed.
pub fn writer(backend: Backend, dir: &Path, sales: Option<u64>) -> Result<()> {
    let mut j = open(backend, dir)?;
    let mut w = Workload::new(j.load()?);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "# opened")?;
    let mut done = 0u64;
    while sales.is_none_or(|n| done < n) {
        let c = w.ahead();
        let id = c.entry.id;
        j.save(&w.state, &c)?;
        writeln!(out, "A {id}")?;
        let c = w.answered(id);
        j.save(&w.state, &c)?;
        writeln!(out, "B {id}")?;
        out.flush()?;
        done += 1;
    }
    Ok(())
}

/// Opens the journal and reads the open batch back, timed; one JSON line.
pub fn reopen(backend: Backend, dir: &Path) -> Result<()> {
    let t0 = Instant::now();
    let mut j = open(backend, dir)?;
    let opened = t0.elapsed();
    let s = j.load()?;
    let loaded = t0.elapsed();
    println!(
        "{}",
        serde_json::json!({
            "open_ms": ms(opened),
            "load_ms": ms(loaded - opened),
            "total_ms": ms(loaded),
            "entries": s.entries.len(),
            "pending": s.pending.len(),
        })
    );
    Ok(())
}

/// `ops` durable state changes on a fresh journal (for strace -c).
pub fn flush(backend: Backend, dir: &Path, ops: u64) -> Result<()> {
    let mut j = open(backend, dir)?;
    let mut w = Workload::new(j.load()?);
    let mut open_sale = None;
    for _ in 0..ops {
        let c = match open_sale.take() {
            Some(id) => w.answered(id),
            None => {
                let c = w.ahead();
                open_sale = Some(c.entry.id);
                c
            }
        };
        j.save(&w.state, &c)?;
    }
    println!("{}", serde_json::json!({ "ops": ops }));
    Ok(())
}

/// What the writers acknowledged, per entry: 1 written ahead, 2 answered;
/// and how many writer runs got as far as opening the journal (`# opened`).
fn read_acks(path: &Path) -> Result<(HashMap<u64, u8>, u64)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read acknowledgements {}: {e}", path.display()))?;
    let mut acked = HashMap::new();
    let runs = text.lines().filter(|l| l.starts_with("# opened")).count() as u64;
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(step), Some(id)) = (it.next(), it.next()) else {
            continue;
        };
        let Ok(id) = id.parse::<u64>() else { continue };
        let level = match step {
            "A" => 1,
            "B" => 2,
            _ => continue,
        };
        let e = acked.entry(id).or_insert(0);
        *e = (*e).max(level);
    }
    Ok((acked, runs))
}

/// Reopens the journal after a crash and checks it against what the
/// writers acknowledged (`acks`: their stdout, every run in turn). Prints one JSON line; exit code 0 when all is
/// well, 2 when data is missing or inconsistent, 3 when it does not open.
pub fn verify(backend: Backend, dir: &Path, acks: &Path) -> Result<i32> {
    let (acked, runs) = read_acks(acks)?;
    let t0 = Instant::now();
    let mut j = match open(backend, dir) {
        Ok(j) => j,
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({"ok": false, "open_ok": false, "open_ms": ms(t0.elapsed()),
                    "error": format!("open: {e}"), "error_debug": format!("{e:?}")})
            );
            return Ok(3);
        }
    };
    let open_ms = ms(t0.elapsed());
    let s = match j.load() {
        Ok(s) => s,
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({"ok": false, "open_ok": true, "open_ms": open_ms,
                    "error": format!("reading the open batch: {e}"), "error_debug": format!("{e:?}")})
            );
            return Ok(3);
        }
    };
    let entries: HashMap<u64, Status> = s.entries.iter().map(|e| (e.id, e.status)).collect();
    let guards: HashMap<u64, ()> = s
        .pending
        .iter()
        .filter(|p| p.kind == PendingKind::Reversal)
        .map(|p| (p.entry, ()))
        .collect();
    let mut problems = Vec::new();
    let (mut lost, mut lost_answers) = (0u64, 0u64);
    let mut ids: Vec<_> = acked.keys().copied().collect();
    ids.sort_unstable();
    for id in &ids {
        match (acked[id], entries.get(id)) {
            (_, None) => lost += 1,
            (2, Some(st)) if *st != Status::Approved => lost_answers += 1,
            _ => {}
        }
    }
    if lost > 0 {
        problems.push(format!("{lost} acknowledged sales missing"));
    }
    if lost_answers > 0 {
        problems.push(format!("{lost_answers} acknowledged answers missing"));
    }
    // Each state change is one transaction: a sale written ahead has its
    // guard, an answered one has none, and no guard is without its sale.
    let mut torn = 0u64;
    for (id, st) in &entries {
        let has_guard = guards.contains_key(id);
        if (*st == Status::Sending) != has_guard {
            torn += 1;
        }
    }
    let orphans = guards.keys().filter(|id| !entries.contains_key(id)).count();
    if torn > 0 {
        problems.push(format!(
            "{torn} sales half-written (status and queue guard disagree)"
        ));
    }
    if orphans > 0 {
        problems.push(format!("{orphans} queue guards without their sale"));
    }
    // Each writer run can leave at most one sale it did not acknowledge:
    // the one in flight when it was killed.
    let unacknowledged = entries.keys().filter(|id| !acked.contains_key(id)).count() as u64;
    if unacknowledged > runs {
        problems.push(format!(
            "{unacknowledged} entries nobody acknowledged, more than the {runs} writer runs \
             could have had in flight"
        ));
    }
    let ok = problems.is_empty();
    println!(
        "{}",
        serde_json::json!({
            "ok": ok, "open_ok": true, "open_ms": open_ms,
            "acknowledged_sales": ids.len(), "entries": entries.len(), "pending": s.pending.len(),
            "lost": lost, "lost_answers": lost_answers, "torn": torn, "orphan_guards": orphans,
            "unacknowledged": unacknowledged, "writer_runs": runs, "problems": problems.join("; "),
        })
    );
    Ok(if ok { 0 } else { 2 })
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Builds a journal of realistic size in `dir`: `days` settled batches of
/// [`PER_DAY`](crate::workload::PER_DAY) sales in history, then `open`
/// approved sales in the open batch. One JSON line with the time taken.
pub fn prepare(backend: Backend, dir: &Path, days: u64, open_sales: u64) -> Result<()> {
    use crate::workload::{PER_DAY, entry};
    let t0 = Instant::now();
    let mut j = open(backend, dir)?;
    let mut state = j.load()?;
    let start = chrono::Local::now() - chrono::Duration::days(days as i64);
    let mut id = state.next_entry;
    for day in 0..days {
        let at = (start + chrono::Duration::days(day as i64)).to_rfc3339();
        let batch: Vec<_> = (id..id + PER_DAY).map(|i| entry(i, &at, true)).collect();
        id += PER_DAY;
        state.next_entry = id;
        state.last_stan = (id % 999_999) as u32;
        state.batch_number += 1;
        j.bulk(&state, &batch, true)?;
    }
    let now = chrono::Local::now().to_rfc3339();
    let batch: Vec<_> = (id..id + open_sales)
        .map(|i| entry(i, &now, false))
        .collect();
    id += open_sales;
    state.next_entry = id;
    state.last_stan = (id % 999_999) as u32;
    j.bulk(&state, &batch, false)?;
    println!(
        "{}",
        serde_json::json!({
            "entries": id - 1,
            "secs": (t0.elapsed().as_secs_f64() * 1e3).round() / 1e3,
        })
    );
    Ok(())
}

/// One block of the benchmark: opens the journal, makes `steps` durable
/// state changes (sales written ahead, then answered) and prints the time
/// of each `save` in microseconds, after `warmup` untimed ones.
pub fn bench_block(backend: Backend, dir: &Path, steps: u64, warmup: u64) -> Result<()> {
    let t0 = Instant::now();
    let mut j = open(backend, dir)?;
    let mut w = Workload::new(j.load()?);
    let open_ms = ms(t0.elapsed());
    let mut lat_us = Vec::with_capacity(steps as usize);
    let mut open_sale = None;
    for i in 0..warmup + steps {
        let c = match open_sale.take() {
            Some(id) => w.answered(id),
            None => {
                let c = w.ahead();
                open_sale = Some(c.entry.id);
                c
            }
        };
        let t = Instant::now();
        j.save(&w.state, &c)?;
        let us = t.elapsed().as_secs_f64() * 1e6;
        if i >= warmup {
            lat_us.push((us * 10.0).round() / 10.0);
        }
    }
    // Finish a sale left open, untimed, so the next block starts clean.
    if let Some(id) = open_sale {
        let c = w.answered(id);
        j.save(&w.state, &c)?;
    }
    println!(
        "{}",
        serde_json::json!({ "open_ms": open_ms, "lat_us": lat_us })
    );
    Ok(())
}
