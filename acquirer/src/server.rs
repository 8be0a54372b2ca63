//! The network side: the TLS listener, one task per connection, faults
//! applied around the host's decisions, and the ledger written before an
//! answer leaves.
//!
//! Requests on a connection are handled one after the other, in order;
//! connections run concurrently and share one [`Host`] behind a mutex, so
//! the ledger's lines are in the order the host decided. A message that
//! cannot be read at all, a broken frame, a refused handshake or a
//! connection idle for longer than [`HostConfig::idle_timeout`] ends the
//! connection; nothing a client sends can stop the listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use till_pay::crypto::SecretKey;
use till_pay::iso8583::spec::FrameFormat;
use till_pay::iso8583::{Dialect, SpecError};
use till_pay::link::framing::{self, Framing};
use till_pay::link::identity::{self, IdentityError};
use till_pay::link::tls::{self, TlsSetupError};
use till_pay::security::{Scheme, mac_field, seal};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, error, info, warn};

use crate::cards::{CardDb, CardsError};
use crate::faults::{FaultAction, FaultError, FaultPlan, FaultRule};
use crate::host::{Answer, Host, HostError, PeerInfo, classify_wire};
use crate::ledger::{Ledger, LedgerError};

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the host waits for a client to acknowledge its close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Everything a host needs to run.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Address to listen on, e.g. `127.0.0.1:7000`; port 0 picks a free one.
    pub listen: String,
    /// Directory with `ca.crt`, `acquirer.crt`, `acquirer.key` and
    /// `host-keys.toml`, as `till_pay::link::pki::init` writes it.
    pub pki_dir: PathBuf,
    /// Card file; `None` for the bundled one.
    pub cards: Option<PathBuf>,
    /// Ledger file (JSON lines, appended); `None` for no ledger.
    pub ledger: Option<PathBuf>,
    /// Dialect name or path.
    pub dialect: String,
    /// Fault rules, before those of the control file.
    pub faults: Vec<FaultRule>,
    /// Fault control file, read again whenever it changes.
    pub fault_file: Option<PathBuf>,
    /// Seed for fault probabilities.
    pub seed: Option<u64>,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
}

impl HostConfig {
    /// A configuration with the defaults: dialect `cup`, bundled cards, no
    /// ledger, no faults, connections closed after five idle minutes.
    pub fn new(listen: impl Into<String>, pki_dir: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            listen: listen.into(),
            pki_dir: pki_dir.into(),
            cards: None,
            ledger: None,
            dialect: "cup".into(),
            faults: Vec::new(),
            fault_file: None,
            seed: None,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Why a host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The dialect could not be loaded.
    #[error(transparent)]
    Dialect(#[from] SpecError),
    /// The TLS certificates or keys are unusable.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// The terminal master keys could not be read.
    #[error(transparent)]
    HostKeys(#[from] IdentityError),
    /// The card file is unusable.
    #[error(transparent)]
    Cards(#[from] CardsError),
    /// The ledger cannot be opened.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A fault rule or the fault file is unusable.
    #[error(transparent)]
    Faults(#[from] FaultError),
    /// The dialect and the keys do not go together.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address as given.
        addr: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// A host that is listening. Dropping it stops the listener too; use
/// [`RunningHost::shutdown`] to wait until every connection has ended.
#[derive(Debug)]
pub struct RunningHost {
    local_addr: SocketAddr,
    dialect: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningHost {
    /// The address the host listens on (with the port actually bound).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The name of the dialect the host speaks.
    pub fn dialect_name(&self) -> &str {
        &self.dialect
    }

    /// Runs `f` on the host's state, e.g. to check a balance in a test.
    pub fn inspect<R>(&self, f: impl FnOnce(&Host) -> R) -> R {
        f(&self.shared.core().host)
    }

    /// How many messages the host has processed so far, each with its
    /// ledger line written; wait on it (`wait_for(|n| *n >= k)`) instead of
    /// sleeping when a test needs to know the host got that far.
    pub fn processed(&self) -> watch::Receiver<u64> {
        self.shared.processed.subscribe()
    }

    /// Stops accepting, closes every connection and waits for them to end.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        info!(addr = %self.local_addr, "stopped");
    }
}

impl Drop for RunningHost {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// What every connection shares.
#[derive(Debug)]
struct Shared {
    dialect: Dialect,
    scheme: Scheme,
    framing: Framing,
    idle_timeout: Duration,
    core: Mutex<Core>,
    /// Whether deciding ends with a ledger write and fsync (blocking work).
    has_ledger: bool,
    faults: Mutex<FaultPlan>,
    /// Messages processed (ignored ones are not).
    processed: watch::Sender<u64>,
}

/// The host and its ledger, locked together so ledger lines follow the
/// order of decisions.
#[derive(Debug)]
struct Core {
    host: Host,
    ledger: Option<Ledger>,
}

impl Shared {
    fn core(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock would be a bug in the host; the
        // state is still the best there is, so keep serving.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn faults(&self) -> MutexGuard<'_, FaultPlan> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides on one request and writes its ledger line. `Ok(None)`: close
    /// the connection without answering.
    fn process(
        &self,
        wire: &[u8],
        peer: &PeerInfo,
        fault: Option<FaultAction>,
    ) -> Result<Option<Answer>, LedgerError> {
        let mut core = self.core();
        let mut handled = core.host.handle(wire, peer, chrono::Local::now());
        handled.record.fault = fault.map(|f| f.to_string());
        if let Some(ledger) = &mut core.ledger {
            ledger.append(&handled.record)?;
        }
        self.processed.send_modify(|n| *n += 1);
        Ok(handled.answer)
    }

    /// The answer with a MAC that does not verify: the real MAC with its
    /// bits flipped, or, for an answer that carries none, a MAC under a
    /// random key.
    fn corrupt_mac(&self, answer: Answer) -> Vec<u8> {
        let mut msg = answer.message;
        if answer.maced
            && let Some(field) = mac_field(&self.dialect, &msg)
            && let Some(mac) = msg.binary(field)
        {
            let flipped: Vec<u8> = mac.iter().map(|b| !b).collect();
            msg.set(field, flipped);
            if let Ok(wire) = self.dialect.encode(&msg) {
                return wire;
            }
        }
        let key = SecretKey::generate(self.scheme.keys, self.scheme.working_key_len());
        match key.map(|k| seal(&self.dialect, &self.scheme, &mut msg, Some(&k))) {
            Ok(Ok(wire)) => wire,
            _ => answer.wire,
        }
    }
}

/// Loads everything `config` names, binds the listener and starts serving.
pub async fn start(config: HostConfig) -> Result<RunningHost, StartError> {
    let dialect = Dialect::load(&config.dialect)?;
    let scheme = Scheme::of(&dialect).map_err(HostError::from)?;
    let framing = match dialect.framing {
        FrameFormat::U16be => Framing::U16Be,
        FrameFormat::Ascii4 => Framing::Ascii4,
    };
    let pki = &config.pki_dir;
    let tls_config = tls::server_config(
        &pki.join("ca.crt"),
        &pki.join("acquirer.crt"),
        &pki.join("acquirer.key"),
    )?;
    let host_keys = identity::load_host_keys(pki.join("host-keys.toml"))?;
    let cards = match &config.cards {
        Some(path) => CardDb::load(path)?,
        None => CardDb::bundled()?,
    };
    let mut host = Host::new(dialect.clone(), &host_keys, cards)?;
    host.set_record_messages(config.ledger.is_some());
    let ledger = config.ledger.as_deref().map(Ledger::open).transpose()?;
    let faults = FaultPlan::new(config.faults, config.fault_file.as_deref(), config.seed)?;
    let listener =
        TcpListener::bind(&config.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.listen.clone(),
                source,
            })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen.clone(),
        source,
    })?;
    info!(
        addr = %local_addr,
        dialect = %dialect.name,
        terminals = host_keys.len(),
        cards = host.cards().cards().len(),
        faults = %faults.describe(),
        ledger = ?config.ledger,
        "listening"
    );
    let name = dialect.name.clone();
    let shared = Arc::new(Shared {
        dialect,
        scheme,
        framing,
        idle_timeout: config.idle_timeout,
        has_ledger: ledger.is_some(),
        core: Mutex::new(Core { host, ledger }),
        faults: Mutex::new(faults),
        processed: watch::Sender::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_loop(
        listener,
        TlsAcceptor::from(tls_config),
        Arc::clone(&shared),
        stopped,
    ));
    Ok(RunningHost {
        local_addr,
        dialect: name,
        shared,
        stop,
        task: Some(task),
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    // Each connection watches its own receiver; this one is only cloned.
    let for_connections = stopped.clone();
    loop {
        tokio::select! {
            () = stop_requested(&mut stopped) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, addr)) => {
                    connections.spawn(connection(
                        tcp,
                        addr,
                        acceptor.clone(),
                        Arc::clone(&shared),
                        for_connections.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors and the like: pause rather
                    // than spin, and keep listening.
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn connection(
    tcp: TcpStream,
    addr: SocketAddr,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    // Answers are single small writes; Nagle would only delay them.
    let _ = tcp.set_nodelay(true);
    let mut stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            info!(peer = %addr, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            info!(peer = %addr, "TLS handshake timed out");
            return;
        }
    };
    let common_name = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(tls::peer_common_name);
    debug!(peer = %addr, cn = ?common_name, "connected");
    let peer = Arc::new(PeerInfo {
        addr: Some(addr),
        common_name,
    });
    serve(&mut stream, &peer, &shared, &mut stopped).await;
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.shutdown()).await;
    debug!(peer = %addr, "disconnected");
}

/// Reads requests and answers them until the connection ends.
async fn serve(
    stream: &mut TlsStream<TcpStream>,
    peer: &Arc<PeerInfo>,
    shared: &Arc<Shared>,
    stopped: &mut watch::Receiver<bool>,
) {
    let framing = shared.framing;
    loop {
        let read = tokio::select! {
            () = stop_requested(stopped) => return,
            r = tokio::time::timeout(
                shared.idle_timeout,
                framing::read_frame(stream, framing, framing.max_payload()),
            ) => r,
        };
        let wire = match read {
            Ok(Ok(Some(wire))) => wire,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                info!(peer = ?peer.addr, error = %e, "cannot read a frame; closing");
                return;
            }
            Err(_) => {
                debug!(peer = ?peer.addr, "idle; closing");
                return;
            }
        };
        let class = classify_wire(&shared.dialect, &wire);
        let fault = shared.faults().choose(class);
        if let Some(f) = fault {
            info!(peer = ?peer.addr, kind = %class, fault = %f, "fault applied");
        }
        if fault == Some(FaultAction::Ignore) {
            continue;
        }
        let processed = if shared.has_ledger {
            let shared = Arc::clone(shared);
            let peer = Arc::clone(peer);
            // Deciding takes the host lock and syncs the ledger to disk:
            // blocking work, kept off the async workers.
            tokio::task::spawn_blocking(move || shared.process(&wire, &peer, fault)).await
        } else {
            // Without a ledger deciding is a few microseconds of CPU; a trip
            // through the blocking pool would cost more than the work.
            Ok(shared.process(&wire, peer, fault))
        };
        let answer = match processed {
            Ok(Ok(Some(answer))) => answer,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                // Not answering makes the terminal reverse, which undoes
                // what cannot be recorded.
                error!(error = %e, "cannot write the ledger; closing without an answer");
                return;
            }
            Err(e) => {
                error!(error = %e, "processing failed; closing");
                return;
            }
        };
        let wire = match fault {
            Some(FaultAction::Drop) => continue,
            Some(FaultAction::Close) => return,
            Some(FaultAction::Delay(d)) => {
                tokio::select! {
                    () = stop_requested(stopped) => return,
                    () = tokio::time::sleep(d) => answer.wire,
                }
            }
            Some(FaultAction::CorruptMac) => shared.corrupt_mac(answer),
            Some(FaultAction::Ignore) | None => answer.wire,
        };
        if let Err(e) = framing::write_frame(stream, framing, &wire).await {
            debug!(peer = ?peer.addr, error = %e, "cannot send the answer; closing");
            return;
        }
    }
}

/// Resolves once the host is told to stop (or its handle is gone).
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it here, inside.
    let _ = stopped.wait_for(|stop| *stop).await;
}
