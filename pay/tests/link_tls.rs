//! The TLS host link end to end, against an in-test acquirer on loopback.
//!
//! Every test issues a fresh development PKI with `pki::init`, starts a
//! small acquirer on 127.0.0.1 (or ::1) whose per-connection behaviour the
//! test chooses, and reports what the acquirer saw through a channel, so
//! that assertions about the server side wait for events rather than sleep.

#![cfg(feature = "dev-pki")]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use till_pay::link::framing::{self, Framing};
use till_pay::link::pki::{self, PkiOptions, PkiSummary};
use till_pay::link::tls::{self, TlsLink};
use till_pay::link::{Backoff, HostLink, LinkError};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Upper bound for anything that should happen at once; only reached when a
/// test is broken, so that it fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(10);

/// The timeout in tests whose subject is a timeout.
const SHORT: Duration = Duration::from_millis(300);

struct Pki {
    _dir: tempfile::TempDir,
    files: PkiSummary,
}

fn issue_pki() -> Pki {
    let dir = tempfile::Builder::new()
        .prefix("till-link-tls")
        .tempdir()
        .expect("a temporary directory");
    let files = pki::init(dir.path(), &PkiOptions::default()).expect("a development PKI");
    Pki { _dir: dir, files }
}

impl Pki {
    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        tls::server_config(
            &self.files.ca_cert,
            &self.files.acquirer_cert,
            &self.files.acquirer_key,
        )
        .expect("acquirer TLS config")
    }

    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.files
            .default_terminal
            .client_config()
            .expect("terminal TLS config")
    }
}

/// Backoff short enough for tests, long enough to measure.
fn quick_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
        factor: 2.0,
        jitter: 0.2,
    }
}

fn link_to(addr: impl ToString, config: Arc<rustls::ClientConfig>, framing: Framing) -> TlsLink {
    TlsLink::new(addr.to_string(), config, framing)
        .expect("a valid address")
        .with_connect_timeout(PATIENCE)
        .with_backoff(quick_backoff())
}

/// What the acquirer saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// Connection `conn` completed the handshake; the client's CN.
    Connected { conn: usize, cn: Option<String> },
    /// Connection `conn` failed the handshake.
    Refused { conn: usize, error: String },
    /// A request arrived on connection `conn`.
    Request { conn: usize, payload: Vec<u8> },
    /// Connection `conn` ended (client closed it or it broke).
    Ended { conn: usize },
    /// The acquirer closed connection `conn`.
    ClosedByHost { conn: usize },
    /// A test-specific milestone.
    Mark(&'static str),
}

/// One accepted connection, handed to the test's behaviour.
struct Conn {
    index: usize,
    stream: TlsStream<TcpStream>,
    framing: Framing,
    events: mpsc::UnboundedSender<Event>,
}

impl Conn {
    async fn next_request(&mut self) -> Option<Vec<u8>> {
        match framing::read_frame(&mut self.stream, self.framing, 65_535).await {
            Ok(Some(payload)) => {
                self.report(Event::Request {
                    conn: self.index,
                    payload: payload.clone(),
                });
                Some(payload)
            }
            Ok(None) | Err(_) => {
                self.report(Event::Ended { conn: self.index });
                None
            }
        }
    }

    async fn send(&mut self, payload: &[u8]) -> bool {
        framing::write_frame(&mut self.stream, self.framing, payload)
            .await
            .is_ok()
    }

    /// Answers every request with `ANS:` and the request, until the client
    /// closes.
    async fn echo(mut self) {
        while let Some(request) = self.next_request().await {
            if !self.send(&answer_to(&request)).await {
                break;
            }
        }
    }

    /// Closes the connection with close_notify and FIN, then reports it.
    async fn close(mut self) {
        let _ = self.stream.shutdown().await;
        let (index, events) = (self.index, self.events.clone());
        drop(self);
        let _ = events.send(Event::ClosedByHost { conn: index });
    }

    fn report(&self, event: Event) {
        let _ = self.events.send(event);
    }
}

fn answer_to(request: &[u8]) -> Vec<u8> {
    [b"ANS:", request].concat()
}

struct Acquirer {
    addr: SocketAddr,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Acquirer {
    /// Starts an acquirer on `bind` that runs `behaviour` for each connection
    /// that passes the mutual TLS handshake.
    async fn start<B, F>(
        bind: &str,
        config: Arc<rustls::ServerConfig>,
        framing: Framing,
        behaviour: B,
    ) -> Acquirer
    where
        B: Fn(Conn) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind(bind).await.expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let (tx, events) = mpsc::unbounded_channel();
        let acceptor = TlsAcceptor::from(config);
        let behaviour = Arc::new(behaviour);
        tokio::spawn(async move {
            let mut index = 0;
            while let Ok((tcp, _)) = listener.accept().await {
                let conn = index;
                index += 1;
                let (acceptor, tx, behaviour) = (acceptor.clone(), tx.clone(), behaviour.clone());
                tokio::spawn(async move {
                    match acceptor.accept(tcp).await {
                        Ok(stream) => {
                            let cn = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(tls::peer_common_name);
                            let _ = tx.send(Event::Connected { conn, cn });
                            behaviour(Conn {
                                index: conn,
                                stream,
                                framing,
                                events: tx,
                            })
                            .await;
                        }
                        Err(e) => {
                            let _ = tx.send(Event::Refused {
                                conn,
                                error: e.to_string(),
                            });
                        }
                    }
                });
            }
        });
        Acquirer { addr, events }
    }

    async fn next_event(&mut self) -> Event {
        tokio::time::timeout(PATIENCE, self.events.recv())
            .await
            .expect("the acquirer reports within the patience limit")
            .expect("the acquirer is running")
    }

    /// Events already reported, without waiting.
    fn pending_events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.events.try_recv().ok()).collect()
    }
}

async fn echo_acquirer(pki: &Pki, framing: Framing) -> Acquirer {
    Acquirer::start("127.0.0.1:0", pki.server_config(), framing, Conn::echo).await
}

#[tokio::test]
async fn round_trip_in_both_framings_reuses_the_connection() {
    let pki = issue_pki();
    for framing in [Framing::U16Be, Framing::Ascii4] {
        let mut acquirer = echo_acquirer(&pki, framing).await;
        let mut link = link_to(acquirer.addr, pki.client_config(), framing);
        assert!(!link.is_connected(), "connects lazily");

        let first = link.exchange(b"0800 sign-in", PATIENCE).await.unwrap();
        assert_eq!(first, answer_to(b"0800 sign-in"));
        let big = vec![b'7'; framing.max_payload() - 4];
        let second = link.exchange(&big, PATIENCE).await.unwrap();
        assert_eq!(second.len(), framing.max_payload());

        assert_eq!(
            acquirer.next_event().await,
            Event::Connected {
                conn: 0,
                cn: Some("TILL0001".into())
            },
            "the acquirer reads the terminal id from the client certificate"
        );
        assert!(matches!(
            acquirer.next_event().await,
            Event::Request { conn: 0, .. }
        ));
        assert!(
            matches!(acquirer.next_event().await, Event::Request { conn: 0, .. }),
            "the second exchange used the same connection"
        );
        link.reset();
        assert!(!link.is_connected());
        assert_eq!(acquirer.next_event().await, Event::Ended { conn: 0 });
    }
}

#[tokio::test]
async fn tls12_only_terminals_still_work() {
    let pki = issue_pki();
    let mut acquirer = echo_acquirer(&pki, Framing::U16Be).await;
    let t = &pki.files.default_terminal;
    let mut roots = rustls::RootCertStore::empty();
    for ca in tls::load_certs(&t.ca).unwrap() {
        roots.add(ca).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        tls::load_certs(&t.cert).unwrap(),
        tls::load_private_key(&t.key).unwrap(),
    )
    .unwrap();
    let mut link = link_to(acquirer.addr, Arc::new(config), Framing::U16Be);
    assert_eq!(
        link.exchange(b"ping", PATIENCE).await.unwrap(),
        answer_to(b"ping")
    );
    assert!(matches!(
        acquirer.next_event().await,
        Event::Connected { cn: Some(_), .. }
    ));
}

#[tokio::test]
async fn host_names_and_ipv6_literals_verify_against_the_certificate() {
    let pki = issue_pki();
    let acquirer = echo_acquirer(&pki, Framing::U16Be).await;
    let port = acquirer.addr.port();

    let mut by_name = link_to(
        format!("localhost:{port}"),
        pki.client_config(),
        Framing::U16Be,
    );
    assert_eq!(
        by_name.exchange(b"a", PATIENCE).await.unwrap(),
        answer_to(b"a")
    );

    let mut renamed = link_to(acquirer.addr, pki.client_config(), Framing::U16Be)
        .with_server_name(ServerName::try_from("localhost").unwrap());
    assert_eq!(
        renamed.exchange(b"b", PATIENCE).await.unwrap(),
        answer_to(b"b")
    );

    let mut wrong_name = link_to(acquirer.addr, pki.client_config(), Framing::U16Be)
        .with_server_name(ServerName::try_from("acquirer.example").unwrap());
    let err = wrong_name.exchange(b"c", PATIENCE).await.unwrap_err();
    assert!(matches!(err, LinkError::Tls { .. }), "{err}");
    assert!(err.to_string().contains("host address"), "{err}");

    // Not every sandbox has IPv6 on loopback; where it has, use it.
    if TcpListener::bind("[::1]:0").await.is_ok() {
        let v6 = Acquirer::start("[::1]:0", pki.server_config(), Framing::U16Be, Conn::echo).await;
        let mut link = link_to(
            format!("[::1]:{}", v6.addr.port()),
            pki.client_config(),
            Framing::U16Be,
        );
        assert_eq!(
            link.exchange(b"v6", PATIENCE).await.unwrap(),
            answer_to(b"v6")
        );
    }
}

#[tokio::test]
async fn a_terminal_trusting_another_ca_gets_a_tls_error_and_sends_nothing() {
    let pki = issue_pki();
    let other = issue_pki();
    let mut acquirer = echo_acquirer(&pki, Framing::U16Be).await;
    let mut link =
        link_to(acquirer.addr, other.client_config(), Framing::U16Be).with_connect_attempts(3);

    let err = link.exchange(b"0200 sale", PATIENCE).await.unwrap_err();
    assert!(matches!(err, LinkError::Tls { .. }), "{err}");
    assert!(!err.request_may_have_arrived());
    assert!(
        err.to_string().contains("ca.crt"),
        "the message says what to check: {err}"
    );

    assert!(matches!(
        acquirer.next_event().await,
        Event::Refused { conn: 0, .. }
    ));
    assert_eq!(
        acquirer.pending_events(),
        [],
        "no request reached the acquirer, and a refused handshake is not retried"
    );
}

#[tokio::test]
async fn the_acquirer_refuses_terminals_without_a_valid_certificate() {
    let pki = issue_pki();
    let other = issue_pki();
    let roots = || {
        let mut roots = rustls::RootCertStore::empty();
        for ca in tls::load_certs(&pki.files.ca_cert).unwrap() {
            roots.add(ca).unwrap();
        }
        roots
    };
    let versions: [&[&rustls::SupportedProtocolVersion]; 2] =
        [&[&rustls::version::TLS13], &[&rustls::version::TLS12]];
    for version in versions {
        let builder = || {
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_protocol_versions(version)
            .unwrap()
            .with_root_certificates(roots())
        };
        let anonymous = builder().with_no_client_auth();
        let foreign = builder()
            .with_client_auth_cert(
                tls::load_certs(&other.files.default_terminal.cert).unwrap(),
                tls::load_private_key(&other.files.default_terminal.key).unwrap(),
            )
            .unwrap();
        for config in [anonymous, foreign] {
            let mut acquirer = echo_acquirer(&pki, Framing::U16Be).await;
            let mut link = link_to(acquirer.addr, Arc::new(config), Framing::U16Be);
            let err = link.exchange(b"0200 sale", PATIENCE).await.unwrap_err();
            // Under TLS 1.3 the terminal learns of the refusal only after it
            // has written the request; the host never read it, and the
            // error must still say so.
            assert!(matches!(err, LinkError::Tls { .. }), "{version:?}: {err}");
            assert!(!err.request_may_have_arrived());
            assert!(err.to_string().contains("terminal.crt"), "{err}");
            assert!(matches!(
                acquirer.next_event().await,
                Event::Refused { conn: 0, .. }
            ));
            assert_eq!(acquirer.pending_events(), []);
        }
    }
}

#[tokio::test]
async fn an_unreachable_host_is_retried_with_backoff_then_reported() {
    let pki = issue_pki();
    // A port that was just free: nothing listens there any more.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let backoff = quick_backoff();
    let mut link = link_to(
        format!("127.0.0.1:{port}"),
        pki.client_config(),
        Framing::U16Be,
    )
    .with_connect_attempts(3);
    let started = Instant::now();
    let err = link.exchange(b"0200", PATIENCE).await.unwrap_err();
    let elapsed = started.elapsed();

    assert!(matches!(err, LinkError::Unreachable { .. }), "{err}");
    assert!(!err.request_may_have_arrived());
    assert!(err.to_string().contains("3 attempts"), "{err}");
    let least = backoff.bounds(0).0 + backoff.bounds(1).0;
    assert!(
        elapsed >= least,
        "waited {elapsed:?}, backoff needs at least {least:?}"
    );
}

#[tokio::test]
async fn every_connection_attempt_is_made_and_counted() {
    let pki = issue_pki();
    // Accepts TCP and hangs up at once, as a host with no TLS service
    // behind its port would; each accept is one attempt.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut accepted) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            drop(tcp);
            let _ = tx.send(());
        }
    });

    let mut link = link_to(addr, pki.client_config(), Framing::U16Be).with_connect_attempts(4);
    let err = link.exchange(b"0200", PATIENCE).await.unwrap_err();
    assert!(matches!(err, LinkError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("4 attempts"), "{err}");
    let mut count = 0;
    while accepted.try_recv().is_ok() {
        count += 1;
    }
    assert_eq!(count, 4);
}

#[tokio::test]
async fn a_silent_host_is_no_answer_and_the_connection_is_dropped() {
    let pki = issue_pki();
    let mut acquirer = Acquirer::start(
        "127.0.0.1:0",
        pki.server_config(),
        Framing::U16Be,
        |mut conn: Conn| async move { while conn.next_request().await.is_some() {} },
    )
    .await;
    let mut link = link_to(acquirer.addr, pki.client_config(), Framing::U16Be);

    let err = link.exchange(b"0200 sale", SHORT).await.unwrap_err();
    assert!(
        matches!(err, LinkError::NoAnswer { waited, .. } if waited == SHORT),
        "{err}"
    );
    assert!(err.request_may_have_arrived());
    assert!(!link.is_connected());

    assert!(matches!(
        acquirer.next_event().await,
        Event::Connected { .. }
    ));
    assert_eq!(
        acquirer.next_event().await,
        Event::Request {
            conn: 0,
            payload: b"0200 sale".to_vec()
        }
    );
    assert_eq!(
        acquirer.next_event().await,
        Event::Ended { conn: 0 },
        "the terminal hung up after the timeout"
    );
}

#[tokio::test]
async fn a_host_that_hangs_up_after_reading_is_closed() {
    let pki = issue_pki();
    let mut acquirer = Acquirer::start(
        "127.0.0.1:0",
        pki.server_config(),
        Framing::Ascii4,
        |mut conn: Conn| async move {
            if conn.next_request().await.is_some() {
                conn.close().await;
            }
        },
    )
    .await;
    let mut link = link_to(acquirer.addr, pki.client_config(), Framing::Ascii4);
    let err = link.exchange(b"0200 sale", PATIENCE).await.unwrap_err();
    assert!(matches!(err, LinkError::Closed { .. }), "{err}");
    assert!(err.request_may_have_arrived());
    assert!(!link.is_connected());
    assert!(matches!(
        acquirer.next_event().await,
        Event::Connected { .. }
    ));
    assert!(matches!(
        acquirer.next_event().await,
        Event::Request { conn: 0, .. }
    ));
}

/// Runs one exchange, lets the host do something to the idle connection,
/// and checks that the next exchange still goes through exactly once.
async fn idle_connection_survives(what_the_host_does: &'static str) {
    let pki = issue_pki();
    let mut acquirer = Acquirer::start(
        "127.0.0.1:0",
        pki.server_config(),
        Framing::U16Be,
        move |mut conn: Conn| async move {
            if conn.index > 0 {
                return conn.echo().await;
            }
            let Some(request) = conn.next_request().await else {
                return;
            };
            conn.send(&answer_to(&request)).await;
            match what_the_host_does {
                "close" => conn.close().await,
                "drop" => {
                    let (index, events) = (conn.index, conn.events.clone());
                    drop(conn);
                    let _ = events.send(Event::ClosedByHost { conn: index });
                }
                "chatter" => {
                    conn.send(b"unsolicited").await;
                    conn.report(Event::Mark("chattered"));
                    while conn.next_request().await.is_some() {}
                }
                other => unreachable!("{other}"),
            }
        },
    )
    .await;
    let mut link =
        link_to(acquirer.addr, pki.client_config(), Framing::U16Be).with_connect_attempts(1);

    assert_eq!(
        link.exchange(b"first", PATIENCE).await.unwrap(),
        answer_to(b"first")
    );
    assert!(matches!(
        acquirer.next_event().await,
        Event::Connected { conn: 0, .. }
    ));
    assert!(matches!(
        acquirer.next_event().await,
        Event::Request { conn: 0, .. }
    ));
    let milestone = acquirer.next_event().await;
    assert!(
        matches!(
            milestone,
            Event::ClosedByHost { conn: 0 } | Event::Mark("chattered")
        ),
        "{milestone:?}"
    );

    let second = link.exchange(b"second", PATIENCE).await;
    assert_eq!(
        second.unwrap(),
        answer_to(b"second"),
        "host {what_the_host_does}"
    );

    let mut seconds = Vec::new();
    for event in acquirer.pending_events() {
        if let Event::Request { conn, payload } = event {
            assert_eq!(payload, b"second");
            seconds.push(conn);
        }
    }
    assert_eq!(
        seconds,
        [1],
        "the second request went once, on a new connection"
    );
}

#[tokio::test]
async fn an_idle_connection_closed_by_the_host_is_replaced_transparently() {
    idle_connection_survives("close").await;
}

#[tokio::test]
async fn an_idle_connection_dropped_without_close_notify_is_replaced_transparently() {
    idle_connection_survives("drop").await;
}

#[tokio::test]
async fn unsolicited_data_on_an_idle_connection_is_never_taken_as_an_answer() {
    idle_connection_survives("chatter").await;
}

#[tokio::test]
async fn a_late_answer_is_never_taken_for_the_next_one() {
    let pki = issue_pki();
    let release = Arc::new(Notify::new());
    let gate = release.clone();
    let mut acquirer = Acquirer::start(
        "127.0.0.1:0",
        pki.server_config(),
        Framing::U16Be,
        move |mut conn: Conn| {
            let gate = gate.clone();
            async move {
                if conn.index > 0 {
                    return conn.echo().await;
                }
                let Some(request) = conn.next_request().await else {
                    return;
                };
                gate.notified().await;
                conn.send(&answer_to(&request)).await;
                conn.report(Event::Mark("late answer sent"));
                while conn.next_request().await.is_some() {}
            }
        },
    )
    .await;
    let mut link = link_to(acquirer.addr, pki.client_config(), Framing::U16Be);

    let err = link.exchange(b"first", SHORT).await.unwrap_err();
    assert!(matches!(err, LinkError::NoAnswer { .. }), "{err}");
    release.notify_one();
    loop {
        if acquirer.next_event().await == Event::Mark("late answer sent") {
            break;
        }
    }

    let answer = link.exchange(b"second", PATIENCE).await.unwrap();
    assert_eq!(answer, answer_to(b"second"));
}

#[tokio::test]
async fn oversized_frames_are_refused_both_ways() {
    let pki = issue_pki();
    let mut acquirer = Acquirer::start(
        "127.0.0.1:0",
        pki.server_config(),
        Framing::U16Be,
        |mut conn: Conn| async move {
            while let Some(request) = conn.next_request().await {
                conn.send(&vec![b'x'; request.len() * 2]).await;
            }
        },
    )
    .await;
    let mut link = link_to(acquirer.addr, pki.client_config(), Framing::U16Be).with_max_frame(100);

    let err = link.exchange(&[b'r'; 101], PATIENCE).await.unwrap_err();
    assert!(matches!(err, LinkError::Unsendable { .. }), "{err}");
    assert!(!err.request_may_have_arrived());
    let err = link.exchange(b"", PATIENCE).await.unwrap_err();
    assert!(matches!(err, LinkError::Unsendable { .. }), "{err}");
    assert!(!link.is_connected(), "nothing was even connected");

    assert_eq!(
        link.exchange(&[b'r'; 50], PATIENCE).await.unwrap().len(),
        100
    );
    let err = link.exchange(&[b'r'; 51], PATIENCE).await.unwrap_err();
    assert!(matches!(err, LinkError::BadFrame { .. }), "{err}");
    assert!(err.request_may_have_arrived());
    assert!(err.to_string().contains("102"), "{err}");
    assert!(!link.is_connected());
    assert!(matches!(
        acquirer.next_event().await,
        Event::Connected { .. }
    ));

    let mut ascii = link_to(acquirer.addr, pki.client_config(), Framing::Ascii4);
    let err = ascii.exchange(&[b'r'; 10_000], PATIENCE).await.unwrap_err();
    assert!(matches!(err, LinkError::Unsendable { .. }), "{err}");
}

#[tokio::test]
async fn garbled_length_prefixes_are_bad_frames() {
    let pki = issue_pki();
    let acquirer = Acquirer::start(
        "127.0.0.1:0",
        pki.server_config(),
        Framing::Ascii4,
        |mut conn: Conn| async move {
            if conn.next_request().await.is_some() {
                let _ = conn.stream.write_all(b"12x4garbage").await;
                let _ = conn.stream.flush().await;
                while conn.next_request().await.is_some() {}
            }
        },
    )
    .await;
    let mut link = link_to(acquirer.addr, pki.client_config(), Framing::Ascii4);
    let err = link.exchange(b"0800", PATIENCE).await.unwrap_err();
    assert!(matches!(err, LinkError::BadFrame { .. }), "{err}");
    assert!(err.to_string().contains("framing"), "{err}");
}

#[test]
fn addresses_are_checked_up_front() {
    let pki = issue_pki();
    for bad in ["localhost", "::1:7000", "host:0", "bad host:7000"] {
        let err = TlsLink::new(bad, pki.client_config(), Framing::U16Be).unwrap_err();
        assert!(err.to_string().contains(bad), "{err}");
    }
}
