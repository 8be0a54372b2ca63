//! Shared by the end-to-end tests: a development PKI in a temporary
//! directory, a host started in-process on 127.0.0.1:0, and a terminal-side
//! client that builds requests with the dialect's setters and speaks
//! through `till_pay::link::TlsLink` (or a raw TLS stream where a test needs
//! the connection itself).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use till_acquirer::{HostConfig, RunningHost, start};
use till_pay::crypto::{Pin, SecretKey};
use till_pay::iso8583::{Dialect, Message, TxnKind};
use till_pay::link::framing::{self, Framing};
use till_pay::link::pki::{self, PkiOptions, PkiSummary};
use till_pay::link::{HostLink, LinkError, TerminalFiles, TlsLink};
use till_pay::security::{
    KeyCryptograms, MacCheck, Scheme, WorkingKeys, kind_is_maced, open, pin_block, seal,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Upper bound for anything that should happen at once; only reached when
/// a test is broken, so that it fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The timeout in tests whose subject is a timeout.
pub const SHORT: Duration = Duration::from_millis(300);

pub const CUP_OK: &str = "6222088800000000010";
pub const VISA_OK: &str = "4761739001010010";

/// A development PKI for TILL0001 and TILL0002.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub files: PkiSummary,
}

pub fn issue_pki() -> Pki {
    let dir = tempfile::Builder::new()
        .prefix("till-acquirer")
        .tempdir()
        .expect("a temporary directory");
    let opts = PkiOptions {
        terminal_ids: vec!["TILL0001".into(), "TILL0002".into()],
        ..PkiOptions::default()
    };
    let files = pki::init(dir.path(), &opts).expect("a development PKI");
    Pki { dir, files }
}

impl Pki {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The files of one terminal.
    pub fn terminal(&self, id: &str) -> &TerminalFiles {
        &self
            .files
            .terminals
            .iter()
            .find(|(t, _)| t == id)
            .expect("a terminal of the PKI")
            .1
    }
}

/// Starts a host on 127.0.0.1:0 with the PKI, after `tweak` has adjusted
/// the configuration.
pub async fn start_host(
    pki: &Pki,
    dialect: &str,
    tweak: impl FnOnce(&mut HostConfig),
) -> RunningHost {
    let mut config = HostConfig::new("127.0.0.1:0", pki.dir.path());
    config.dialect = dialect.into();
    tweak(&mut config);
    start(config).await.expect("the host starts")
}

/// Waits until the host has processed `n` messages in all.
pub async fn processed(host: &RunningHost, n: u64) {
    let mut rx = host.processed();
    tokio::time::timeout(PATIENCE, rx.wait_for(|done| *done >= n))
        .await
        .expect("the host processes the message")
        .expect("the host is running");
}

/// The ledger's lines, each parsed as JSON; checks none holds a full PAN.
pub fn ledger_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("the ledger exists");
    for pan in [CUP_OK, VISA_OK] {
        assert!(!text.contains(pan), "a full PAN in the ledger:\n{text}");
    }
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A terminal as far as the host protocol goes.
pub struct Client {
    pub dialect: Dialect,
    pub scheme: Scheme,
    pub link: TlsLink,
    pub tmk: SecretKey,
    pub keys: Option<WorkingKeys>,
    pub terminal_id: String,
    pub stan: u32,
    pub batch: u32,
}

impl Client {
    /// A client with the certificate of terminal `cert_of` that calls
    /// itself `terminal_id` in its requests.
    pub fn new(pki: &Pki, host: &RunningHost, cert_of: &str, terminal_id: &str) -> Client {
        Client::to(
            pki,
            host.local_addr(),
            host.dialect_name(),
            cert_of,
            terminal_id,
        )
    }

    /// The same, for a host at `addr` speaking `dialect`.
    pub fn to(
        pki: &Pki,
        addr: SocketAddr,
        dialect: &str,
        cert_of: &str,
        terminal_id: &str,
    ) -> Client {
        let dialect = Dialect::load(dialect).unwrap();
        let scheme = Scheme::of(&dialect).unwrap();
        let files = pki.terminal(cert_of);
        let link = TlsLink::new(
            addr.to_string(),
            files.client_config().unwrap(),
            framing_of(&dialect),
        )
        .unwrap()
        .with_connect_timeout(PATIENCE);
        let tmk = SecretKey::new(scheme.keys, &files.read_tmk().unwrap()).unwrap();
        Client {
            dialect,
            scheme,
            link,
            tmk,
            keys: None,
            terminal_id: terminal_id.into(),
            stan: 0,
            batch: 1,
        }
    }

    /// TILL0001 with its own certificate.
    pub fn till1(pki: &Pki, host: &RunningHost) -> Client {
        Client::new(pki, host, "TILL0001", "TILL0001")
    }

    pub fn request(&mut self, kind: TxnKind) -> Message {
        let d = &self.dialect;
        let txn = d.profile.txn(kind).unwrap().clone();
        let mut m = Message::new(&txn.mti).unwrap();
        if let Some(pc) = &txn.processing_code {
            d.set_text(&mut m, "processing_code", pc).unwrap();
        }
        for (element, value) in &txn.set {
            d.set_text(&mut m, element, value).unwrap();
        }
        self.stan += 1;
        d.set_number(&mut m, "stan", u64::from(self.stan)).unwrap();
        d.set_text(&mut m, "local_time", "120000").unwrap();
        d.set_text(&mut m, "local_date", "0101").unwrap();
        d.set_text(&mut m, "transmission_datetime", "0101120000")
            .unwrap();
        d.set_text(&mut m, "terminal_id", &self.terminal_id)
            .unwrap();
        d.set_text(&mut m, "merchant_id", "898310048990001")
            .unwrap();
        d.set_number(&mut m, "batch_number", u64::from(self.batch))
            .unwrap();
        m
    }

    pub fn sale_request(&mut self, pan: &str, amount: u64, pin: &str) -> Message {
        let mut m = self.request(TxnKind::Sale);
        let d = &self.dialect;
        d.set_text(&mut m, "pan", pan).unwrap();
        d.set_text(&mut m, "pos_entry_mode", "011").unwrap();
        d.set_text(&mut m, "currency", "156").unwrap();
        d.set_number(&mut m, "amount", amount).unwrap();
        let keys = self.keys.as_ref().expect("signed in");
        let block = pin_block(&self.scheme, keys, &Pin::new(pin).unwrap(), pan).unwrap();
        d.set_bytes(&mut m, "pin_block", &block).unwrap();
        m
    }

    /// The request sealed as a terminal would seal it.
    pub fn seal(&self, m: &mut Message) -> Vec<u8> {
        let class = till_acquirer::host::classify(&self.dialect, m);
        let key = self
            .keys
            .as_ref()
            .filter(|_| kind_is_maced(&self.dialect, class.kind()))
            .map(|k| k.mac.clone());
        seal(&self.dialect, &self.scheme, m, key.as_ref()).unwrap()
    }

    /// One exchange; the answer opened with the session MAC key.
    pub async fn exchange(
        &mut self,
        mut m: Message,
        timeout: Duration,
    ) -> Result<(Message, MacCheck), LinkError> {
        let wire = self.seal(&mut m);
        let answer = self.link.exchange(&wire, timeout).await?;
        let key = self.keys.as_ref().map(|k| k.mac.clone());
        Ok(open(&self.dialect, &self.scheme, &answer, key.as_ref()).expect("a decodable answer"))
    }

    pub fn code(&self, m: &Message) -> String {
        self.dialect
            .get_text(m, "response_code")
            .unwrap_or_default()
            .to_string()
    }

    /// Signs in and keeps the keys and batch number; returns the code.
    pub async fn sign_in(&mut self) -> String {
        let m = self.request(TxnKind::SignIn);
        let (answer, _) = self.exchange(m, PATIENCE).await.expect("a sign-in answer");
        let code = self.code(&answer);
        if self.dialect.profile.is_approved(&code) {
            let keys = KeyCryptograms::from_answer(&self.dialect, &answer)
                .unwrap()
                .unwrap(&self.scheme, &self.tmk)
                .expect("the keys unwrap under the TMK and match their KCVs");
            self.keys = Some(keys);
            self.batch = self
                .dialect
                .get_number(&answer, "batch_number")
                .unwrap()
                .unwrap() as u32;
        }
        code
    }

    pub async fn sale(
        &mut self,
        pan: &str,
        amount: u64,
        pin: &str,
        timeout: Duration,
    ) -> Result<(Message, MacCheck), LinkError> {
        let m = self.sale_request(pan, amount, pin);
        self.exchange(m, timeout).await
    }

    /// A raw TLS connection to the host with this client's certificate.
    pub async fn raw(&self, pki: &Pki, host: &RunningHost) -> RawConn {
        let files = &pki.files.terminals[0].1;
        let connector = TlsConnector::from(files.client_config().unwrap());
        let tcp = TcpStream::connect(host.local_addr()).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let stream = connector.connect(name, tcp).await.unwrap();
        RawConn {
            stream,
            framing: framing_of(&self.dialect),
        }
    }
}

/// A TLS connection on which a test writes and reads frames itself.
pub struct RawConn {
    pub stream: TlsStream<TcpStream>,
    pub framing: Framing,
}

impl RawConn {
    pub async fn send(&mut self, wire: &[u8]) {
        framing::write_frame(&mut self.stream, self.framing, wire)
            .await
            .unwrap();
    }

    /// The next frame, or `None` when the host closed the connection.
    pub async fn receive(&mut self) -> Option<Vec<u8>> {
        tokio::time::timeout(
            PATIENCE,
            framing::read_frame(&mut self.stream, self.framing, 65_535),
        )
        .await
        .expect("an answer or a close in time")
        .ok()
        .flatten()
    }
}

pub fn framing_of(dialect: &Dialect) -> Framing {
    match dialect.framing {
        till_pay::iso8583::spec::FrameFormat::U16be => Framing::U16Be,
        till_pay::iso8583::spec::FrameFormat::Ascii4 => Framing::Ascii4,
    }
}
