//! One online sale over loopback mutual TLS, terminal side: build the
//! request, PIN block, MAC, journal (in memory: the durable journal has its
//! own benchmark), TLS round trip to `till-acquirer` answering at once,
//! answer verification. Compared with a bare TLS echo of the same bytes
//! over the same link code, which is the floor.
//!
//! `cargo bench -p till-e2e --bench online_sale` — criterion figures, then
//! p50/p99 over single sales and the ratio to the echo.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use till_acquirer::{HostConfig, start};
use till_pay::card::Pan;
use till_pay::crypto::Pin;
use till_pay::engine::{
    CardInput, StateStore, StoreError, Terminal, TerminalConfig, TerminalState, TxnRequest,
};
use till_pay::iso8583::spec::FrameFormat;
use till_pay::iso8583::{Dialect, TxnKind};
use till_pay::link::framing::{read_frame, write_frame};
use till_pay::link::pki::{PkiOptions, init};
use till_pay::link::tls::server_config;
use till_pay::link::{Framing, HostLink, TerminalFiles, TlsLink};
use till_pay::money::{Amount, Currency};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio_rustls::TlsAcceptor;

const CARD: &str = "6222088800000000010";
const SAMPLES: usize = 3000;

/// Keeps nothing: this benchmark leaves the journal's cost to its own.
struct Discard;

impl StateStore for Discard {
    fn load(&mut self) -> Result<TerminalState, StoreError> {
        Ok(TerminalState::default())
    }
    fn save(&mut self, _: &TerminalState) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The TLS link, keeping a copy of the last request it sent.
struct Recording {
    inner: TlsLink,
    last: Vec<u8>,
}

impl HostLink for Recording {
    async fn exchange(
        &mut self,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, till_pay::link::LinkError> {
        self.last.clear();
        self.last.extend_from_slice(request);
        self.inner.exchange(request, timeout).await
    }
    fn reset(&mut self) {
        self.inner.reset();
    }
}

/// The host's decision logic called directly: no TLS, no sockets, no
/// threads — what both sides' processing costs on its own.
struct InProcess {
    host: till_acquirer::Host,
    peer: till_acquirer::host::PeerInfo,
}

impl HostLink for InProcess {
    async fn exchange(
        &mut self,
        request: &[u8],
        _: Duration,
    ) -> Result<Vec<u8>, till_pay::link::LinkError> {
        let handled = self.host.handle(request, &self.peer, chrono::Local::now());
        Ok(handled.answer.map(|a| a.wire).unwrap_or_default())
    }
    fn reset(&mut self) {}
}

fn framing(d: &Dialect) -> Framing {
    match d.framing {
        FrameFormat::U16be => Framing::U16Be,
        FrameFormat::Ascii4 => Framing::Ascii4,
    }
}

fn sale() -> TxnRequest {
    let mut r = TxnRequest::new(TxnKind::Sale);
    r.amount = Some(Amount(1));
    r.card = Some(CardInput::manual(Pan::new(CARD).unwrap(), None));
    r.pin = Some(Pin::new("123456").unwrap());
    r
}

/// A TLS server that answers every frame with the same bytes.
async fn echo_server(pki: &std::path::Path, framing: Framing) -> String {
    let config = server_config(
        &pki.join("ca.crt"),
        &pki.join("acquirer.crt"),
        &pki.join("acquirer.key"),
    )
    .unwrap();
    let acceptor = TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tcp.set_nodelay(true).unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                while let Ok(Some(frame)) = read_frame(&mut tls, framing, 65_535).await {
                    if write_frame(&mut tls, framing, &frame).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    init(&pki, &PkiOptions::default()).unwrap();
    let files = TerminalFiles::in_dir(&pki, None).unwrap();
    let tls = files.client_config().unwrap();
    let tmk = files.read_tmk().unwrap();
    let data_key = files.read_datakey().unwrap();
    let mut criterion = Criterion::default().configure_from_args();
    let samples = if quick { 20 } else { SAMPLES };
    let mut table = Vec::new();

    for name in ["cup", "iso87ascii"] {
        let dialect = Dialect::load(name).unwrap();
        let mut config = HostConfig::new("127.0.0.1:0", &pki);
        config.dialect = name.into();
        let host = rt.block_on(start(config)).unwrap();
        let addr = host.local_addr().to_string();
        let link = Recording {
            inner: TlsLink::new(addr.clone(), Arc::clone(&tls), framing(&dialect)).unwrap(),
            last: Vec::new(),
        };
        let tc = TerminalConfig::new("TILL0001", "123456789012345", Currency::CNY, &addr);
        let mut t = Terminal::new(dialect.clone(), tc, link, Discard, &tmk, &data_key).unwrap();
        assert!(rt.block_on(t.sign_in()).unwrap().approved);
        // The exact bytes of one sale, for the echo.
        let o = rt.block_on(t.run(sale())).unwrap();
        assert!(o.approved, "{o:?}");
        let wire = t.link_mut().last.clone();
        let echo_addr = rt.block_on(echo_server(&pki, framing(&dialect)));
        let mut echo = TlsLink::new(echo_addr, Arc::clone(&tls), framing(&dialect)).unwrap();

        let mut g = criterion.benchmark_group(format!("online_sale/{name}"));
        g.bench_function("sale", |b| {
            b.iter(|| black_box(rt.block_on(t.run(sale())).unwrap()))
        });
        g.bench_function("tls_echo", |b| {
            b.iter(|| {
                black_box(
                    rt.block_on(echo.exchange(&wire, Duration::from_secs(5)))
                        .unwrap(),
                )
            })
        });
        g.finish();

        let mut sales = Vec::with_capacity(samples);
        let mut echoes = Vec::with_capacity(samples);
        for _ in 0..samples {
            let s = Instant::now();
            assert!(rt.block_on(t.run(sale())).unwrap().approved);
            sales.push(s.elapsed());
            let s = Instant::now();
            rt.block_on(echo.exchange(&wire, Duration::from_secs(5)))
                .unwrap();
            echoes.push(s.elapsed());
        }
        let (sp50, sp99) = percentiles(sales);
        let (ep50, ep99) = percentiles(echoes);
        table.push(format!(
            "{name:<11} sale p50 {:>7.3} ms p99 {:>7.3} ms | echo p50 {:>7.3} ms p99 {:>7.3} ms | p50 ratio {:.2}",
            sp50.as_secs_f64() * 1e3,
            sp99.as_secs_f64() * 1e3,
            ep50.as_secs_f64() * 1e3,
            ep99.as_secs_f64() * 1e3,
            sp50.as_secs_f64() / ep50.as_secs_f64()
        ));
        rt.block_on(host.shutdown());

        // Both sides' processing alone.
        let keys = till_pay::link::identity::load_host_keys(pki.join("host-keys.toml")).unwrap();
        let mut cpu_host = till_acquirer::Host::new(
            dialect.clone(),
            &keys,
            till_acquirer::cards::CardDb::bundled().unwrap(),
        )
        .unwrap();
        // As the server runs it without a ledger.
        cpu_host.set_record_messages(false);
        let peer = till_acquirer::host::PeerInfo {
            addr: None,
            common_name: Some("TILL0001".into()),
        };
        let tc = TerminalConfig::new("TILL0001", "123456789012345", Currency::CNY, "in-process");
        let mut t = Terminal::new(
            dialect.clone(),
            tc,
            InProcess {
                host: cpu_host,
                peer,
            },
            Discard,
            &tmk,
            &data_key,
        )
        .unwrap();
        assert!(rt.block_on(t.sign_in()).unwrap().approved);
        criterion.bench_function(&format!("online_sale/{name}/processing_only"), |b| {
            b.iter(|| black_box(rt.block_on(t.run(sale())).unwrap()))
        });
    }
    criterion.final_summary();
    println!("\nsingle sales over {samples} samples each:");
    for line in table {
        println!("{line}");
    }
}
