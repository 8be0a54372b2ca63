//! Draining the store-and-forward queue: 10,000 offline approvals made
//! through the engine while the host is unreachable (each journaled in
//! SQLite), then the host comes back and the forwarder's drain sends every
//! advice to `till-acquirer` over loopback mutual TLS, journaling the
//! acknowledgements. Timed: the drain, until the queue is empty.
//!
//! `cargo bench -p till-e2e --bench drain`; target ≤ 5 s for 10,000. One
//! timed run, not criterion samples: making the 10,000 journaled offline
//! approvals for each sample takes minutes. `-- --test` (what `cargo test
//! --benches` passes) drains 200; `TILL_DRAIN_ADVICES=N` sets the count.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use till_acquirer::{HostConfig, start};
use till_pay::card::Pan;
use till_pay::engine::forwarder::DRAIN_BATCH;
use till_pay::engine::{CardInput, OfflineLimits, Terminal, TerminalConfig, TxnRequest};
use till_pay::iso8583::spec::FrameFormat;
use till_pay::iso8583::{Dialect, TxnKind};
use till_pay::journal::SqliteJournal;
use till_pay::link::pki::{PkiOptions, init};
use till_pay::link::{Framing, HostLink, LinkError, TerminalFiles, TlsLink};
use till_pay::money::{Amount, Currency};

/// The TLS link, or a network outage while `down` is set.
struct Switchable {
    tls: TlsLink,
    down: Arc<AtomicBool>,
}

impl HostLink for Switchable {
    async fn exchange(&mut self, request: &[u8], timeout: Duration) -> Result<Vec<u8>, LinkError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(LinkError::Unreachable {
                host: "bench".into(),
                reason: "network down".into(),
            });
        }
        self.tls.exchange(request, timeout).await
    }
    fn reset(&mut self) {
        self.tls.reset();
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let advices: usize = std::env::var("TILL_DRAIN_ADVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 200 } else { 10_000 });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    init(&pki, &PkiOptions::default()).unwrap();
    let files = TerminalFiles::in_dir(&pki, None).unwrap();
    let dialect = Dialect::load("cup").unwrap();
    let host = rt
        .block_on(start(HostConfig::new("127.0.0.1:0", &pki)))
        .unwrap();
    let addr = host.local_addr().to_string();
    let framing = match dialect.framing {
        FrameFormat::U16be => Framing::U16Be,
        FrameFormat::Ascii4 => Framing::Ascii4,
    };
    let down = Arc::new(AtomicBool::new(false));
    let link = Switchable {
        tls: TlsLink::new(addr.clone(), files.client_config().unwrap(), framing).unwrap(),
        down: Arc::clone(&down),
    };
    let mut config = TerminalConfig::new("TILL0001", "123456789012345", Currency::CNY, &addr);
    let mut limits = OfflineLimits::new(Amount(100), Amount(100 * advices as u64 + 100));
    limits.max_queue = advices + 10;
    config.offline = Some(limits);
    let journal = SqliteJournal::open(dir.path().join("journal")).unwrap();
    let mut t = Terminal::new(
        dialect,
        config,
        link,
        journal,
        &files.read_tmk().unwrap(),
        &files.read_datakey().unwrap(),
    )
    .unwrap();
    assert!(rt.block_on(t.sign_in()).unwrap().approved);

    down.store(true, Ordering::SeqCst);
    let made = Instant::now();
    for _ in 0..advices {
        let mut r = TxnRequest::new(TxnKind::Sale);
        r.amount = Some(Amount(1));
        r.card = Some(CardInput::manual(
            Pan::new("6222088800000000036").unwrap(),
            None,
        ));
        let o = rt.block_on(t.run(r)).unwrap();
        assert!(o.approved, "{o:?}");
    }
    let making = made.elapsed();
    assert_eq!(t.queue_status().depth, advices);

    down.store(false, Ordering::SeqCst);
    let start_drain = Instant::now();
    while t.queue_status().depth > 0 {
        rt.block_on(t.drain(DRAIN_BATCH)).unwrap();
    }
    let drained = start_drain.elapsed();
    let host_applied = host.inspect(|h| h.totals("TILL0001", 1).debit_count);
    assert_eq!(
        host_applied as usize, advices,
        "the host applied every advice once"
    );
    println!(
        "{advices} offline approvals made in {:.2} s; drained to till-acquirer over loopback TLS in {:.2} s ({:.0} µs per advice, batch {DRAIN_BATCH})",
        making.as_secs_f64(),
        drained.as_secs_f64(),
        drained.as_secs_f64() * 1e6 / advices as f64
    );
    rt.block_on(host.shutdown());
}
