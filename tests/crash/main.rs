//! Crash proofs of the journal and store-and-forward: a terminal process
//! running sales (online and offline, with the acquirer dropping and
//! delaying answers and the network cut now and then) is killed with
//! SIGKILL at random points and restarted, again and again; and, in a
//! deterministic sweep, killed at the k-th write/fsync/rename of a sale for
//! every k. Afterwards:
//!
//! - every sale the terminal reported as approved is in its journal, approved;
//! - every offline approval and every reversal reached the acquirer's ledger
//!   exactly once;
//! - nothing reached the ledger that the terminal did not journal, and the
//!   money the host moved per transaction equals what the journal says.
//!
//! Parameters: `TILL_CRASH_KILLS` (default 12), `TILL_CRASH_SALES` (default
//! 120), `TILL_CRASH_SEED` (default 7), `TILL_SWEEP_MAX_K` (a cap on k per
//! system call; by default every call of a sale is tried, about 100 points
//! in some 15 s). docs/reliability.md has the figures of longer runs.

mod proxy;
#[path = "../e2e/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Acquirer, Pki, program};
use till_pay::engine::Status;
use till_pay::journal::{Query, SqliteJournal};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A soak terminal process and the lines it printed.
struct Soak {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn soak_args(host: &str, pki: &Path, state: &Path, sales: u64, seed: u64) -> Vec<String> {
    vec![
        "--host".into(),
        host.into(),
        "--pki".into(),
        pki.display().to_string(),
        "--state".into(),
        state.display().to_string(),
        "--sales".into(),
        sales.to_string(),
        "--seed".into(),
        seed.to_string(),
        "--timeout".into(),
        "1".into(),
    ]
}

impl Soak {
    fn spawn(mut cmd: std::process::Command) -> Soak {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let lines: Arc<Mutex<Vec<Value>>> = Arc::default();
        let l = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                // A line cut short by the kill was never reported.
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    l.lock().unwrap().push(v);
                }
            }
        });
        Soak {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn terminal(host: &str, pki: &Path, state: &Path, sales: u64, seed: u64) -> Soak {
        let mut cmd = program(env!("CARGO_BIN_EXE_e2e-terminal-soak"));
        cmd.args(soak_args(host, pki, state, sales, seed));
        Soak::spawn(cmd)
    }

    fn kill(mut self) -> Vec<Value> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finish()
    }

    fn wait(mut self, limit: Duration) -> Vec<Value> {
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < limit,
                "the terminal did not finish within {limit:?}"
            );
            // Polling the child's exit: the process is not ours to signal.
            std::thread::sleep(Duration::from_millis(20));
        }
        self.finish()
    }

    /// Waits for the process; kills it after `limit` and returns what it printed as `Err`.
    fn wait_or_kill(mut self, limit: Duration) -> Result<Vec<Value>, Vec<Value>> {
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(self.finish());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(self.finish())
    }

    fn finish(&mut self) -> Vec<Value> {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

/// What the checks found.
#[derive(Debug, Default)]
struct Summary {
    reported_approved: usize,
    offline_advised: usize,
    /// Offline approvals whose advice the host declined (e.g. the card's
    /// balance ran out): kept in the journal, marked, money never moved.
    advice_rejected: usize,
    reversed: usize,
    ledger_lines: usize,
}

/// Checks the invariants over the journal entries after `since` (journal
/// id) and the ledger lines given.
fn check(
    state: &Path,
    ledger_text: &str,
    reported: &[Value],
    since: u64,
) -> Result<Summary, String> {
    let journal = SqliteJournal::open(state).map_err(|e| format!("journal does not open: {e}"))?;
    let mut entries = journal
        .search(&Query {
            limit: Some(1_000_000),
            ..Query::default()
        })
        .map_err(|e| e.to_string())?;
    entries.retain(|e| e.id > since);
    let by_key: HashMap<(u32, u32), &till_pay::engine::Entry> =
        entries.iter().map(|e| ((e.batch, e.stan), e)).collect();
    let by_id: HashMap<u64, &till_pay::engine::Entry> = entries.iter().map(|e| (e.id, e)).collect();
    let mut s = Summary::default();

    for r in reported
        .iter()
        .filter(|r| r["event"] == "result" && r["approved"] == true)
    {
        s.reported_approved += 1;
        let id = r["entry"].as_u64().unwrap_or(0);
        let e = by_id
            .get(&id)
            .ok_or_else(|| format!("reported approved but not in the journal: {r}"))?;
        // An offline approval the host declined afterwards stays in the
        // journal, marked (checked against the ledger below).
        let rejected_later =
            e.status == Status::AdviceRejected && r["status"] == "offline_approved";
        if e.status != Status::Approved && !rejected_later {
            let stan = format!("\"stan\":\"{:06}\"", e.stan);
            let host_saw: Vec<&str> = ledger_text.lines().filter(|l| l.contains(&stan)).collect();
            return Err(format!(
                "reported approved, journal says {:?} (response code {:?}): {r}\nledger lines of STAN {:06}: {host_saw:#?}",
                e.status, e.response_code, e.stan
            ));
        }
    }
    if let Some(e) = entries.iter().find(|e| {
        matches!(
            e.status,
            Status::Sending
                | Status::ReversalPending
                | Status::RepeatPending
                | Status::OfflineApproved
        )
    }) {
        return Err(format!(
            "after recovery entry {} is still {:?}",
            e.id, e.status
        ));
    }

    // Per (batch, stan): ledger lines that changed money, and first arrivals.
    let mut moved: HashMap<(u32, u32), i64> = HashMap::new();
    let mut advices: HashMap<(u32, u32), usize> = HashMap::new();
    let mut reversals: HashMap<(u32, u32), usize> = HashMap::new();
    for line in ledger_text.lines() {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("ledger line is not JSON ({e}): {line}"))?;
        let kind = v["kind"].as_str().unwrap_or("");
        if !matches!(kind, "sale" | "advice" | "reversal") {
            continue;
        }
        s.ledger_lines += 1;
        let num = |k: &str| v[k].as_str().and_then(|t| t.parse::<u32>().ok());
        let (Some(batch), Some(stan)) = (num("batch"), num("stan")) else {
            continue;
        };
        let key = (batch, stan);
        if !by_key.contains_key(&key) {
            return Err(format!(
                "the host has a {kind} the terminal never journaled: {line}"
            ));
        }
        let amount = v["amount"].as_u64().unwrap_or(0) as i64;
        let effect = v["effect"].as_str().unwrap_or("");
        match (kind, effect) {
            ("sale" | "advice", "debit") => *moved.entry(key).or_default() += amount,
            ("reversal", "reversed") => *moved.entry(key).or_default() -= amount,
            _ => {}
        }
        if kind == "advice" && effect != "repeat" {
            *advices.entry(key).or_default() += 1;
        }
        if kind == "reversal" && effect != "repeat" {
            *reversals.entry(key).or_default() += 1;
        }
    }
    for e in entries
        .iter()
        .filter(|e| e.kind == till_pay::iso8583::TxnKind::Sale)
    {
        let key = (e.batch, e.stan);
        let expected = if e.status == Status::Approved {
            e.amount.unwrap_or(0) as i64
        } else {
            0
        };
        let got = moved.get(&key).copied().unwrap_or(0);
        if got != expected {
            return Err(format!(
                "entry {} ({:?}, {} minor): the host moved {got}",
                e.id, e.status, expected
            ));
        }
        if e.offline && matches!(e.status, Status::Approved | Status::AdviceRejected) {
            if e.status == Status::Approved {
                s.offline_advised += 1;
            } else {
                s.advice_rejected += 1;
            }
            if advices.get(&key) != Some(&1) {
                return Err(format!(
                    "offline approval {} reached the host {:?} times",
                    e.id,
                    advices.get(&key)
                ));
            }
        }
        if e.status == Status::Reversed {
            s.reversed += 1;
            if reversals.get(&key) != Some(&1) {
                return Err(format!(
                    "reversal of {} reached the host {:?} times",
                    e.id,
                    reversals.get(&key)
                ));
            }
        }
    }
    Ok(s)
}

/// What a stuck run left behind: the queue, and the ledger's last lines.
fn diagnose(state: &Path, host: &Acquirer, lines: &[Value]) -> String {
    use till_pay::engine::StateStore;
    let queue = SqliteJournal::open(state).map(|mut j| {
        let pending = j.load().map(|s| s.pending).unwrap_or_default();
        pending
            .iter()
            .map(|p| {
                format!(
                    "{:?} entry {} armed {} attempts {} rejected {:?}: {}",
                    p.kind, p.entry, p.armed, p.attempts, p.rejected, p.reason
                )
            })
            .collect::<Vec<_>>()
    });
    let ledger = std::fs::read_to_string(&host.ledger).unwrap_or_default();
    let tail: Vec<&str> = ledger.lines().rev().take(4).collect();
    let printed: Vec<&Value> = lines.iter().rev().take(6).collect();
    format!("queue: {queue:#?}\nlast lines printed: {printed:#?}\nledger tail: {tail:#?}")
}

fn faulty_acquirer(pki: &Pki, seed: u64) -> Acquirer {
    let seed = seed.to_string();
    Acquirer::start(
        pki,
        "cup",
        &[
            "--seed",
            &seed,
            "--fault",
            "drop:sale@0.08",
            "--fault",
            "delay=1500:sale@0.04",
            "--fault",
            "drop:reversal@0.15",
            "--fault",
            "drop:advice@0.15",
        ],
    )
}

#[test]
fn killed_at_random_points_never_loses_or_doubles_a_payment() {
    let kills = env_num("TILL_CRASH_KILLS", 12);
    let sales = env_num("TILL_CRASH_SALES", 120);
    let seed = env_num("TILL_CRASH_SEED", 7);
    let pki = Pki::new();
    let host = faulty_acquirer(&pki, seed);
    let net = proxy::Proxy::start(&host.addr);
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("journal");
    let mut rng = Rng(seed);
    let mut reported = Vec::new();
    let mut outages = 0;
    for round in 0..kills {
        let down = rng.next() % 10 < 3;
        outages += usize::from(down);
        net.set_down(down);
        let t = Soak::terminal(&net.addr, &pki.path(), &state, sales, seed + round);
        // When to pull the plug: a random moment of the run.
        std::thread::sleep(Duration::from_millis(150 + rng.next() % 900));
        reported.extend(t.kill());
    }
    net.set_down(false);
    let t = Soak::terminal(&net.addr, &pki.path(), &state, sales, seed + kills);
    let limit = Duration::from_secs(env_num("TILL_CRASH_FINISH_SECS", 300));
    let last = match t.wait_or_kill(limit) {
        Ok(lines) => lines,
        Err(lines) => panic!(
            "the last run did not finish in {limit:?}; {}",
            diagnose(&state, &host, &lines)
        ),
    };
    assert!(
        last.iter().any(|l| l["event"] == "done"),
        "the last run did not finish: {last:?}"
    );
    reported.extend(last);
    let s = check(
        &state,
        &std::fs::read_to_string(&host.ledger).unwrap(),
        &reported,
        0,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{kills} kills ({outages} during outages), {sales} sales: {s:?}");
    assert!(s.reported_approved > 0 && s.ledger_lines > 0);
    if sales >= 100 && kills >= 10 {
        assert!(
            s.offline_advised > 0,
            "no offline approval happened: the test did not test store-and-forward"
        );
        assert!(
            s.reversed > 0,
            "no reversal happened: the test did not test reversals"
        );
    }
}

/// Counts, per syscall, how many a single sale makes (strace -c).
fn syscall_counts(host: &str, pki: &Path, state: &Path, syscalls: &[&str]) -> HashMap<String, u64> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let status = std::process::Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(out.path())
        .arg("-e")
        .arg(format!("trace={}", syscalls.join(",")))
        .arg(env!("CARGO_BIN_EXE_e2e-terminal-soak"))
        .args(soak_args(host, pki, state, 2, 1))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(out.path()).unwrap();
    let mut counts = HashMap::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if let Some(name) = w.last()
            && syscalls.contains(name)
            && w.len() >= 5
        {
            counts.insert(name.to_string(), w[3].parse().unwrap_or(0));
        }
    }
    counts
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(from).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
    }
}

#[test]
fn killed_at_every_write_fsync_and_rename_of_a_sale() {
    if std::env::var("TILL_RUNNER").is_ok_and(|r| !r.trim().is_empty()) {
        eprintln!(
            "skipped under emulation: strace would trace the emulator, not the terminal (the host stage runs this sweep)"
        );
        return;
    }
    assert!(
        std::process::Command::new("strace")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success()),
        "strace is needed for the crash-point sweep; scripts/setup installs it"
    );
    let max_k = env_num("TILL_SWEEP_MAX_K", 1000);
    let syscalls = ["write", "pwrite64", "fsync", "fdatasync", "rename"];
    let pki = Pki::new();
    let host = Acquirer::start(&pki, "cup", &[]);
    let work = tempfile::tempdir().unwrap();
    let template = work.path().join("template");
    // A signed-in terminal with one sale behind it.
    let t = Soak::terminal(&host.addr, &pki.path(), &template, 1, 1).wait(Duration::from_secs(60));
    assert!(t.iter().any(|l| l["event"] == "done"), "{t:?}");
    let template_entries = {
        let j = SqliteJournal::open(&template).unwrap();
        j.search(&Query::default())
            .unwrap()
            .iter()
            .map(|e| e.id)
            .max()
            .unwrap_or(0)
    };
    let probe = work.path().join("probe");
    copy_dir(&template, &probe);
    let counts = syscall_counts(&host.addr, &pki.path(), &probe, &syscalls);
    let (mut tried, mut failures) = (0, Vec::new());
    for sc in syscalls {
        let n = counts.get(sc).copied().unwrap_or(0).min(max_k);
        for k in 1..=n {
            tried += 1;
            let case = work.path().join(format!("case-{sc}-{k}"));
            copy_dir(&template, &case);
            // Each case gets STANs of its own, so the host never sees a repeat from another case.
            {
                let c = rusqlite::Connection::open(case.join("journal.db")).unwrap();
                c.execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'last_stan'",
                    [(tried * 10 + 1000).to_string()],
                )
                .unwrap();
            }
            let ledger_before = std::fs::read_to_string(&host.ledger)
                .unwrap_or_default()
                .len();
            let mut cmd = std::process::Command::new("strace");
            cmd.args(["-f", "-qq", "-o", "/dev/null", "-e"])
                .arg(format!("trace={sc}"))
                .arg("-e")
                .arg(format!("inject={sc}:signal=KILL:when={k}"))
                .arg(env!("CARGO_BIN_EXE_e2e-terminal-soak"))
                .args(soak_args(&host.addr, &pki.path(), &case, 2, k));
            let mut reported = Soak::spawn(cmd).wait(Duration::from_secs(60));
            // Restart and let it finish (the second sale, and everything owed).
            let after = Soak::terminal(&host.addr, &pki.path(), &case, 2, 100 + k)
                .wait(Duration::from_secs(120));
            if !after.iter().any(|l| l["event"] == "done") {
                failures.push(format!("{sc} #{k}: no recovery: {after:?}"));
                continue;
            }
            reported.extend(after);
            let ledger = std::fs::read_to_string(&host.ledger).unwrap();
            if let Err(e) = check(&case, &ledger[ledger_before..], &reported, template_entries) {
                failures.push(format!("{sc} #{k}: {e}"));
            }
            let _ = std::fs::remove_dir_all(&case);
        }
    }
    eprintln!(
        "crash-point sweep: {tried} points tried, {} failures; calls per sale: {counts:?}",
        failures.len()
    );
    assert!(tried > 10, "too few crash points: {counts:?}");
    assert!(
        failures.is_empty(),
        "{} of {tried} crash points broke an invariant:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
