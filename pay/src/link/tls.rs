//! Mutual TLS: certificate and key loading, the rustls configurations, and
//! [`TlsLink`], the [`HostLink`] a terminal uses in the field.
//!
//! Both ends authenticate: the terminal trusts only the acquirer's CA (never
//! the system's web roots, which any shop-floor attacker with a public
//! certificate could satisfy), and presents its own certificate whose common
//! name is its terminal id. Certificate verification is never switched off,
//! not even for development: `tillctl pki init` issues real certificates
//! instead.
//!
//! The crypto provider is named explicitly (ring) rather than taken from a
//! process-wide default, so the configuration does not depend on which other
//! crate happened to install one first.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tracing::debug;
use zeroize::Zeroizing;

use super::framing::{self, Framing, FramingError};
use super::{Backoff, HostLink, LinkError};

/// TLS 1.3 first; TLS 1.2 because many acquirer hosts still offer nothing
/// newer.
static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Why certificates, keys or a link could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}; check that the file exists and is readable")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A file is not valid PEM.
    #[error("{path} is not a valid PEM file ({reason}); replace it with the file as issued")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the PEM parser found wrong.
        reason: String,
    },
    /// A file meant to hold certificates holds none.
    #[error(
        "{path} holds no certificate (no -----BEGIN CERTIFICATE----- block); \
         check that the certificate file, not the key, was installed there"
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A file meant to hold a private key holds none.
    #[error(
        "{path} holds no private key (no -----BEGIN PRIVATE KEY----- block or \
         similar); check that the key file, not the certificate, was installed there"
    )]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// A CA certificate cannot serve as a trust anchor.
    #[error("the CA certificate in {path} cannot be used: {reason}; install the CA as issued")]
    Ca {
        /// The CA file.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// A certificate and key do not belong together or cannot be used.
    #[error(
        "the certificate {cert} and key {key} cannot be used together: {reason}; \
         install the key that was generated with this certificate"
    )]
    Identity {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why rustls refused them.
        reason: String,
    },
    /// The TLS library refused the configuration itself.
    #[error("the TLS settings are not usable: {0}")]
    Config(String),
    /// A host address is not `host:port`.
    #[error(
        "the host address {addr:?} is not usable: {reason}; write it as \
         name:port, 1.2.3.4:port or [::1]:port"
    )]
    Address {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Loads every certificate from a PEM file, in file order.
pub fn load_certs(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Loads the first private key (PKCS#8, SEC1 or PKCS#1) from a PEM file.
pub fn load_private_key(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    let path = path.as_ref();
    let bytes = Zeroizing::new(read(path)?);
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsSetupError::NoPrivateKey {
            path: path.to_path_buf(),
        },
        other => pem_error(path, other),
    })
}

/// The terminal's TLS configuration: trusts only the CA in `ca`, presents
/// the certificate chain in `cert` with the key in `key`, speaks TLS 1.3 and
/// 1.2.
pub fn client_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let roots = root_store(ca)?;
    let chain = load_certs(cert)?;
    let key_der = load_private_key(key)?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| TlsSetupError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| identity_error(cert, key, e))?;
    Ok(Arc::new(config))
}

/// The acquirer simulator's TLS configuration: presents `cert`/`key` and
/// requires every client to present a certificate that chains to `ca`.
pub fn server_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let roots = Arc::new(root_store(ca)?);
    let chain = load_certs(cert)?;
    let key_der = load_private_key(key)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TlsSetupError::Ca {
            path: ca.to_path_buf(),
            reason: e.to_string(),
        })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| TlsSetupError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)
        .map_err(|e| identity_error(cert, key, e))?;
    Ok(Arc::new(config))
}

/// The common name of the end-entity certificate in a peer's chain (the
/// first one), as the acquirer reads the terminal id from it to compare with
/// field 41.
///
/// `None` when there is no certificate, it does not parse, or its subject
/// has no common name that is a string.
pub fn peer_common_name(certs: &[CertificateDer<'_>]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(certs.first()?).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(path: &Path, e: pem::Error) -> TlsSetupError {
    match e {
        pem::Error::Io(source) => TlsSetupError::Read {
            path: path.to_path_buf(),
            source,
        },
        other => TlsSetupError::Pem {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

fn identity_error(cert: &Path, key: &Path, e: rustls::Error) -> TlsSetupError {
    TlsSetupError::Identity {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason: e.to_string(),
    }
}

fn root_store(ca: &Path) -> Result<RootCertStore, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots.add(cert).map_err(|e| TlsSetupError::Ca {
            path: ca.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// The production [`HostLink`]: one TLS connection to the acquirer, opened
/// when first needed and kept for the following exchanges.
///
/// The `timeout` given to [`exchange`](HostLink::exchange) covers sending
/// the request and waiting for the answer. Connecting is bounded separately
/// (connect timeout per attempt, number of attempts, backoff between them),
/// because nothing has been sent while it runs and its failure needs no
/// reversal.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::path::Path;
/// use std::time::Duration;
/// use till_pay::link::{tls, Framing, HostLink, TlsLink};
/// let config = tls::client_config(
///     Path::new("pki/ca.crt"),
///     Path::new("pki/terminal.crt"),
///     Path::new("pki/terminal.key"),
/// )?;
/// let mut link = TlsLink::new("acquirer.example:7000", config, Framing::U16Be)?;
/// let answer = link.exchange(b"0800...", Duration::from_secs(30)).await?;
/// # Ok(()) }
/// ```
pub struct TlsLink {
    addr: String,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    framing: Framing,
    connect_timeout: Duration,
    connect_attempts: u32,
    backoff: Backoff,
    max_frame: usize,
    conn: Option<TlsStream<TcpStream>>,
}

impl std::fmt::Debug for TlsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLink")
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .field("framing", &self.framing)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl TlsLink {
    /// A link to `addr` (`name:port`, `1.2.3.4:port` or `[::1]:port`).
    ///
    /// The name the host's certificate must carry is taken from the host
    /// part; use [`with_server_name`](Self::with_server_name) when it differs.
    /// Nothing is connected until the first exchange. Defaults: 5 s connect
    /// timeout, 3 connection attempts, [`Backoff::default`], and answers up
    /// to the largest frame the framing allows.
    pub fn new(
        addr: impl Into<String>,
        config: Arc<ClientConfig>,
        framing: Framing,
    ) -> Result<TlsLink, TlsSetupError> {
        let addr = addr.into();
        let bad = |reason| TlsSetupError::Address {
            addr: addr.clone(),
            reason,
        };
        let (host, port) = split_host_port(&addr).map_err(bad)?;
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|_| bad("the host part is neither a DNS name nor an IP address"))?;
        Ok(TlsLink {
            host: host.to_owned(),
            port,
            server_name,
            addr,
            connector: TlsConnector::from(config),
            framing,
            connect_timeout: Duration::from_secs(5),
            connect_attempts: 3,
            backoff: Backoff::default(),
            max_frame: framing.max_payload(),
            conn: None,
        })
    }

    /// Expects the host's certificate to be issued for `name` instead of the
    /// host part of the address (e.g. when connecting through an IP address
    /// to a host whose certificate names it by DNS).
    pub fn with_server_name(mut self, name: ServerName<'static>) -> Self {
        self.server_name = name;
        self
    }

    /// How long one attempt (TCP connect plus TLS handshake) may take.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many times to try connecting before giving up with
    /// [`LinkError::Unreachable`]; 0 counts as 1.
    pub fn with_connect_attempts(mut self, attempts: u32) -> Self {
        self.connect_attempts = attempts.max(1);
        self
    }

    /// The delays between connection attempts.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The largest request or answer, in bytes, this link carries; never more
    /// than the framing's prefix can describe. Longer answers are
    /// [`LinkError::BadFrame`], longer requests [`LinkError::Unsendable`].
    pub fn with_max_frame(mut self, max: usize) -> Self {
        self.max_frame = max.min(self.framing.max_payload());
        self
    }

    /// The host address as configured.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether a connection is currently open (it may still turn out to have
    /// been closed by the host).
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Opens a connection, retrying with backoff.
    async fn connect(&self) -> Result<TlsStream<TcpStream>, LinkError> {
        let attempts = self.connect_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            debug!(host = %self.addr, attempt, attempts, "connecting to payment host");
            match self.connect_once().await {
                Ok(stream) => return Ok(stream),
                Err(Attempt::Refused(e)) => {
                    debug!(host = %self.addr, attempt, error = %e, "TLS handshake refused");
                    return Err(LinkError::Tls {
                        host: self.addr.clone(),
                        reason: explain_refusal(&e),
                    });
                }
                Err(Attempt::Failed(reason)) => {
                    if attempt < attempts {
                        let delay = self.backoff.delay(attempt - 1);
                        debug!(
                            host = %self.addr,
                            attempt,
                            ?delay,
                            %reason,
                            "connection attempt failed; retrying"
                        );
                        tokio::time::sleep(delay).await;
                    }
                    last = reason;
                }
            }
        }
        Err(LinkError::Unreachable {
            host: self.addr.clone(),
            reason: format!(
                "{last} ({attempts} attempt{})",
                if attempts == 1 { "" } else { "s" }
            ),
        })
    }

    async fn connect_once(&self) -> Result<TlsStream<TcpStream>, Attempt> {
        let attempt = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| Attempt::Failed(connect_failure(&e)))?;
            // ISO 8583 exchanges are single small writes; Nagle would only
            // hold them back waiting for an ACK.
            tcp.set_nodelay(true)
                .map_err(|e| Attempt::Failed(format!("cannot set up the socket: {e}")))?;
            self.connector
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|e| match rustls_error(&e) {
                    Some(tls) => Attempt::Refused(tls.clone()),
                    None => Attempt::Failed(format!(
                        "the connection broke during the TLS handshake ({e}); \
                         check that the port is the host's TLS port"
                    )),
                })
        };
        match tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Attempt::Failed(format!(
                "no connection within {:?}",
                self.connect_timeout
            ))),
        }
    }

    fn unsendable(&self, request: &[u8]) -> Option<LinkError> {
        let reason = if request.is_empty() {
            FramingError::Empty
        } else if request.len() > self.max_frame {
            FramingError::TooLong {
                len: request.len(),
                max: self.max_frame,
            }
        } else {
            return None;
        };
        Some(LinkError::Unsendable {
            host: self.addr.clone(),
            reason: reason.to_string(),
        })
    }

    /// The error for a failed write. The request may be partly or wholly on
    /// its way, so this is "may have arrived" — unless the host has meanwhile
    /// told us it refused the handshake (TLS 1.3 clients learn of a rejected
    /// certificate only after they start sending), in which case it never
    /// read the request.
    fn write_failure(&self, stream: &mut TlsStream<TcpStream>, e: &io::Error) -> LinkError {
        let refusal = rustls_error(e)
            .cloned()
            .or_else(|| match drain_without_blocking(stream) {
                Idle::Broken(Some(tls)) => Some(tls),
                _ => None,
            })
            .filter(refuses_handshake);
        match refusal {
            Some(tls) => LinkError::Tls {
                host: self.addr.clone(),
                reason: explain_refusal(&tls),
            },
            None => LinkError::Closed {
                host: self.addr.clone(),
            },
        }
    }

    fn read_failure(&self, e: &io::Error) -> LinkError {
        let host = self.addr.clone();
        if let Some(framing) = e.get_ref().and_then(|i| i.downcast_ref::<FramingError>()) {
            return LinkError::BadFrame {
                host,
                reason: framing.to_string(),
            };
        }
        match rustls_error(e) {
            Some(tls) if refuses_handshake(tls) => LinkError::Tls {
                host,
                reason: explain_refusal(tls),
            },
            Some(tls) => LinkError::BadFrame {
                host,
                reason: format!("the answer could not be decrypted ({tls})"),
            },
            None => LinkError::Closed { host },
        }
    }
}

impl HostLink for TlsLink {
    /// Sends `request` and returns the host's answer.
    ///
    /// An idle connection kept from the last exchange is first checked,
    /// without waiting, for having been closed by the host (hosts close idle
    /// connections after a minute or so); if it has, a new one is opened
    /// before anything is sent, so an idle close never costs a reversal.
    /// After any failure once the request was written — and on cancellation
    /// — the connection is dropped, so a late answer can never be taken for
    /// the answer to the next request.
    async fn exchange(&mut self, request: &[u8], timeout: Duration) -> Result<Vec<u8>, LinkError> {
        if let Some(e) = self.unsendable(request) {
            return Err(e);
        }
        let mut stream = match self.conn.take() {
            Some(mut idle) => match drain_without_blocking(&mut idle) {
                Idle::Usable => idle,
                unusable => {
                    debug!(
                        host = %self.addr,
                        reason = unusable.describe(),
                        "idle connection unusable; reconnecting"
                    );
                    drop(idle);
                    self.connect().await?
                }
            },
            None => self.connect().await?,
        };

        let (framing, max_frame) = (self.framing, self.max_frame);
        let outcome = tokio::time::timeout(timeout, async {
            framing::write_frame(&mut stream, framing, request)
                .await
                .map_err(Failure::Write)?;
            framing::read_frame(&mut stream, framing, max_frame)
                .await
                .map_err(Failure::Read)
        })
        .await;

        let error = match outcome {
            Ok(Ok(Some(answer))) => {
                self.conn = Some(stream);
                return Ok(answer);
            }
            Ok(Ok(None)) => LinkError::Closed {
                host: self.addr.clone(),
            },
            Ok(Err(Failure::Write(e))) => self.write_failure(&mut stream, &e),
            Ok(Err(Failure::Read(e))) => self.read_failure(&e),
            Err(_) => LinkError::NoAnswer {
                host: self.addr.clone(),
                waited: timeout,
            },
        };
        debug!(host = %self.addr, error = %error, "exchange failed; dropping the connection");
        Err(error)
    }

    fn reset(&mut self) {
        if self.conn.take().is_some() {
            debug!(host = %self.addr, "connection dropped on request");
        }
    }
}

/// How one connection attempt failed.
enum Attempt {
    /// Worth retrying: no route, refused, reset, timed out.
    Failed(String),
    /// The TLS handshake was refused; retrying would be refused again.
    Refused(rustls::Error),
}

/// Which half of an exchange failed.
enum Failure {
    Write(io::Error),
    Read(io::Error),
}

/// The state of a connection that is not in an exchange.
enum Idle {
    /// Open, nothing pending.
    Usable,
    /// The host closed it.
    Closed,
    /// The host sent application data nobody asked for.
    Unsolicited,
    /// The socket or the TLS session failed.
    Broken(Option<rustls::Error>),
}

impl Idle {
    fn describe(&self) -> &'static str {
        match self {
            Idle::Usable => "open",
            Idle::Closed => "closed by the host",
            Idle::Unsolicited => "the host sent data nobody asked for",
            Idle::Broken(_) => "the connection broke",
        }
    }
}

/// Reads whatever the host sent on a connection between exchanges, without
/// waiting, and says whether the connection can carry a request.
///
/// This reads the socket directly instead of through tokio, whose readiness
/// flags only catch up with the kernel when the runtime next polls its
/// reactor: a close that the kernel already knows of could still look like
/// an idle connection to tokio, and the request would be written into a
/// connection that is gone. Bytes taken here go straight into the TLS
/// session, so tokio-rustls sees them as if it had read them itself; tokio
/// at worst wakes once more to find the socket empty.
fn drain_without_blocking(stream: &mut TlsStream<TcpStream>) -> Idle {
    let (tcp, tls) = stream.get_mut();
    let socket = socket2::SockRef::from(&*tcp);
    let mut raw: &socket2::Socket = &socket;
    loop {
        match tls.process_new_packets() {
            Err(e) => return Idle::Broken(Some(e)),
            Ok(state) if state.plaintext_bytes_to_read() > 0 => return Idle::Unsolicited,
            Ok(state) if state.peer_has_closed() => return Idle::Closed,
            Ok(_) => {}
        }
        match tls.read_tls(&mut raw) {
            Ok(0) => return Idle::Closed,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Idle::Usable,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Idle::Broken(None),
        }
    }
}

fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Whether a TLS error means the handshake (certificates, versions) was
/// refused, as opposed to a failure of an established session. The host
/// never reads application data from a client it refused, so these errors
/// mean nothing was sent even when they surface after a write.
///
/// `decrypt_error` belongs here: RFC 8446 reserves it for handshake
/// signatures (a certificate or CertificateVerify that fails to verify);
/// a broken record in an established session is `bad_record_mac`.
fn refuses_handshake(e: &rustls::Error) -> bool {
    use rustls::AlertDescription as A;
    use rustls::Error as E;
    matches!(
        e,
        E::InvalidCertificate(_)
            | E::NoCertificatesPresented
            | E::PeerIncompatible(_)
            | E::AlertReceived(
                A::BadCertificate
                    | A::UnsupportedCertificate
                    | A::CertificateRevoked
                    | A::CertificateExpired
                    | A::CertificateUnknown
                    | A::UnknownCA
                    | A::AccessDenied
                    | A::NoCertificate
                    | A::CertificateRequired
                    | A::DecryptError
                    | A::HandshakeFailure
                    | A::ProtocolVersion
                    | A::InsufficientSecurity
            )
    )
}

/// What a refused handshake means for the person fixing it.
fn explain_refusal(e: &rustls::Error) -> String {
    use rustls::AlertDescription as A;
    use rustls::CertificateError as C;
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => format!(
            "the host's certificate was not issued by the CA the terminal trusts ({e}); \
             check that ca.crt on the terminal is the acquirer's CA and the address is the acquirer's"
        ),
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => format!(
            "the host's certificate has expired, or the terminal's clock is wrong ({e}); \
             check the date and time, then call the acquirer"
        ),
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => format!(
            "the host's certificate is not valid yet ({e}); check the terminal's date and time"
        ),
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => format!(
            "the host's certificate is issued for another name ({e}); \
             check the host address in the terminal settings"
        ),
        E::InvalidCertificate(_) => {
            format!("the host's certificate is not acceptable ({e}); call the acquirer")
        }
        E::AlertReceived(A::CertificateExpired) => format!(
            "the host says the terminal's certificate has expired ({e}); \
             check the terminal's date and time and have the certificate renewed"
        ),
        E::AlertReceived(A::CertificateRevoked) => {
            format!("the host says the terminal's certificate is revoked ({e}); call the acquirer")
        }
        E::AlertReceived(
            A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
            | A::NoCertificate
            | A::CertificateRequired
            | A::DecryptError,
        ) => format!(
            "the host did not accept the terminal's certificate ({e}); check that \
             terminal.crt and terminal.key are the pair the acquirer's CA issued for this terminal"
        ),
        E::PeerIncompatible(_)
        | E::AlertReceived(A::HandshakeFailure | A::ProtocolVersion | A::InsufficientSecurity) => {
            format!(
                "the host and the terminal could not agree on TLS settings or the host \
                 refused the terminal ({e}); check that the host offers TLS 1.2 or 1.3 \
                 and accepts this terminal's certificate"
            )
        }
        _ => format!("{e}; check that the address and port are the payment host's TLS port"),
    }
}

fn connect_failure(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            "the host refused the connection (is the port right and the host running?)".into()
        }
        _ => e.to_string(),
    }
}

/// Splits `name:port`, `1.2.3.4:port` or `[v6]:port`.
fn split_host_port(addr: &str) -> Result<(&str, u16), &'static str> {
    let (host, port) = match addr.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest
                .split_once(']')
                .ok_or("the IPv6 address has no closing ']'")?;
            let port = after.strip_prefix(':').ok_or("the port is missing")?;
            (host, port)
        }
        None => {
            let (host, port) = addr.rsplit_once(':').ok_or("the port is missing")?;
            if host.contains(':') {
                return Err("an IPv6 address must be written in brackets");
            }
            (host, port)
        }
    };
    if host.is_empty() {
        return Err("the host name is empty");
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err("the port must be a number from 1 to 65535"),
        Ok(port) => Ok((host, port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(split_host_port("localhost:7000"), Ok(("localhost", 7000)));
        assert_eq!(split_host_port("127.0.0.1:1"), Ok(("127.0.0.1", 1)));
        assert_eq!(split_host_port("[::1]:65535"), Ok(("::1", 65535)));
        for bad in [
            "localhost",
            "localhost:",
            "localhost:0",
            "localhost:65536",
            ":7000",
            "::1:7000",
            "[::1]7000",
            "[::1",
            "[]:7000",
            "",
        ] {
            assert!(split_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_names_follow_the_host_part() {
        let names = [
            ("[::1]:7000", "::1", true),
            ("127.0.0.1:7000", "127.0.0.1", true),
            ("acq.example:7000", "acq.example", false),
        ];
        for (addr, host, is_ip) in names {
            let (h, _) = split_host_port(addr).unwrap();
            assert_eq!(h, host);
            let name = ServerName::try_from(h.to_owned()).unwrap();
            assert_eq!(matches!(name, ServerName::IpAddress(_)), is_ip, "{addr}");
        }
    }

    #[test]
    fn loading_reports_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.crt");
        let e = load_certs(&missing).unwrap_err();
        assert!(matches!(e, TlsSetupError::Read { .. }));
        assert!(e.to_string().contains("nope.crt"), "{e}");

        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "just text\n").unwrap();
        let e = load_certs(&empty).unwrap_err();
        assert!(matches!(e, TlsSetupError::NoCertificate { .. }), "{e}");
        assert!(e.to_string().contains("empty.crt"), "{e}");
        let e = load_private_key(&empty).unwrap_err();
        assert!(matches!(e, TlsSetupError::NoPrivateKey { .. }), "{e}");

        let broken = dir.path().join("broken.crt");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let e = load_certs(&broken).unwrap_err();
        assert!(matches!(e, TlsSetupError::Pem { .. }), "{e}");
        assert!(e.to_string().contains("broken.crt"), "{e}");
    }

    #[test]
    fn common_name_of_garbage_is_none() {
        assert_eq!(peer_common_name(&[]), None);
        assert_eq!(
            peer_common_name(&[CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])]),
            None
        );
    }
}
