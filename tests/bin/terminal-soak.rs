//! A terminal that runs sales until it has run `--sales` of them in total
//! (counted from its journal, so a restart carries on), with the
//! store-and-forward forwarder running beside it, and prints one JSON line
//! per result the moment the terminal reports it — the crash tests kill it
//! at random and compare what it reported with its journal and the host's
//! ledger.
//!
//! `e2e-terminal-soak --host ADDR --pki DIR --state DIR [--dialect cup]
//!   [--sales N] [--seed S] [--timeout SECS] [--offline-floor MINOR]`
//!
//! With `--sales 0` it only recovers: opens the journal (arming what was
//! interrupted), signs in if needed, sends everything owed, prints `done`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use till_pay::card::Pan;
use till_pay::crypto::Pin;
use till_pay::engine::{
    CardInput, OfflineLimits, Status, Terminal, TerminalConfig, TxnRequest, forwarder,
};
use till_pay::iso8583::spec::FrameFormat;
use till_pay::iso8583::{Dialect, TxnKind};
use till_pay::journal::SqliteJournal;
use till_pay::link::{Backoff, Framing, TerminalFiles, TlsLink};
use till_pay::money::{Amount, Currency};

const CARD: &str = "6222088800000000010";
const NO_PIN_CARD: &str = "6222088800000000036";

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn emit(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
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

fn main() -> std::process::ExitCode {
    let host = arg("--host").expect("--host");
    let pki = std::path::PathBuf::from(arg("--pki").expect("--pki"));
    let state = std::path::PathBuf::from(arg("--state").expect("--state"));
    let dialect =
        Dialect::load(&arg("--dialect").unwrap_or_else(|| "cup".into())).expect("dialect");
    let total: usize = arg("--sales").and_then(|s| s.parse().ok()).unwrap_or(100);
    let seed: u64 = arg("--seed").and_then(|s| s.parse().ok()).unwrap_or(1);
    let timeout: f64 = arg("--timeout").and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let floor: u64 = arg("--offline-floor")
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);

    let files = TerminalFiles::in_dir(&pki, None).expect("pki");
    let framing = match dialect.framing {
        FrameFormat::U16be => Framing::U16Be,
        FrameFormat::Ascii4 => Framing::Ascii4,
    };
    let link = TlsLink::new(host.clone(), files.client_config().expect("tls"), framing)
        .expect("link")
        .with_connect_attempts(1);
    let journal = match SqliteJournal::open(&state) {
        Ok(j) => j,
        Err(e) => {
            emit(serde_json::json!({"event": "fatal", "error": e.to_string()}));
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut config = TerminalConfig::new("TILL0001", "888000000000001", Currency::CNY, &host);
    config.host_timeout = Duration::from_secs_f64(timeout);
    config.pending_attempts = 2;
    config.offline = Some(OfflineLimits::new(Amount(floor), Amount(floor * 40)));
    let tmk = files.read_tmk().expect("tmk");
    let key = files.read_datakey().expect("data key");
    let terminal = Terminal::new(dialect, config, link, journal, &tmk, &key).expect("terminal");
    let terminal = Arc::new(tokio::sync::Mutex::new(terminal));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let wake = Arc::new(tokio::sync::Notify::new());
        let backoff = Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(400), ..Backoff::default() };
        let fwd = tokio::spawn(forwarder::run(Arc::clone(&terminal), backoff, Duration::from_millis(200), Arc::clone(&wake), stop_rx));
        let mut rng = Rng(seed ^ u64::from(std::process::id()));
        loop {
            let mut t = terminal.lock().await;
            // No settlement in these runs, so every sale is in memory.
            let done = t.state().entries.iter().filter(|e| e.kind == TxnKind::Sale && e.status != Status::NotSent).count();
            if done >= total {
                break;
            }
            if t.state().session.as_ref().is_none_or(|s| s.host != host) || needs_sign_in(&t) {
                match t.sign_in().await {
                    Ok(o) => emit(serde_json::json!({"event": "sign_in", "approved": o.approved})),
                    Err(e) => {
                        emit(serde_json::json!({"event": "error", "kind": "sign_in", "error": e.to_string()}));
                        drop(t);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
            // Small sales without PIN may be approved offline; with PIN they must go online.
            let with_pin = rng.next().is_multiple_of(3);
            let minor = 1 + rng.next() % (floor * 2);
            let mut req = TxnRequest::new(TxnKind::Sale);
            req.amount = Some(Amount(minor));
            let pan = if with_pin { CARD } else { NO_PIN_CARD };
            req.card = Some(CardInput::manual(Pan::new(pan).expect("pan"), None));
            if with_pin {
                req.pin = Some(Pin::new("123456").expect("pin"));
            }
            match t.run(req).await {
                Ok(o) => emit(serde_json::json!({
                    "event": "result", "entry": o.journal_id, "stan": o.stan, "batch": o.batch,
                    "approved": o.approved, "status": o.status, "amount": minor, "rrn": o.rrn,
                })),
                Err(e) => emit(serde_json::json!({"event": "error", "error": e.to_string()})),
            }
            drop(t);
            wake.notify_one();
        }
        // Everything owed goes before `done`.
        loop {
            let mut t = terminal.lock().await;
            if needs_sign_in(&t) && t.sign_in().await.is_err() {
                drop(t);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let _ = t.flush_pending().await;
            if t.queue_status().depth == 0 {
                break;
            }
            drop(t);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = stop_tx.send(true);
        let _ = fwd.await;
        emit(serde_json::json!({"event": "done"}));
    });
    std::process::ExitCode::SUCCESS
}

fn needs_sign_in(t: &Terminal<TlsLink, SqliteJournal>) -> bool {
    let today = chrono::Local::now().date_naive().to_string();
    t.state().session.as_ref().is_none_or(|s| s.date != today)
}
