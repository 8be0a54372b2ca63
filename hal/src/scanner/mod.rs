//! Scanner: magnetic stripe readers and QR/barcode scanners that type into
//! the terminal like a keyboard (evdev, grabbed so keystrokes never reach
//! the UI) or send lines over a serial port. Each scan is one line, parsed
//! into track 2 data or a wallet payment code.
//!
//! ## What is accepted
//!
//! **Track 2** (ISO 7813) as a swiper types it: `;PAN=YYMM SSS discretionary?`
//! — start sentinel `;`, a PAN of 12–19 digits passing the Luhn check, `=`
//! (or `D`), expiry YYMM with month 01–12, a three-digit service code, then
//! digits, end sentinel `?` (an LRC character after it is ignored), at most
//! 37 characters between the sentinels. A track 1 (`%B…?`) in front on the
//! same line is skipped.
//!
//! **Payment codes** shown by a customer's wallet app (付款码): digits only,
//! by length and prefix —
//!
//! | wallet | length | prefix |
//! |---|---|---|
//! | WeChat Pay | 18 | 10–15 |
//! | Alipay | 16–24 | 25–30 |
//! | UnionPay QuickPass (云闪付) | 19 | 62 |
//!
//! Anything else is rejected as unrecognised: the code is never guessed.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use zeroize::Zeroizing;

pub mod wedge;

use crate::config::{self, DeviceKind, FlowControl, ScannerConfig, ScannerKind};
use crate::printer::SerialLink;
pub use wedge::WedgeDecoder;

/// What the scanner can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The device could not be opened.
    #[error("scanner: {0}")]
    Open(String),
    /// Reading failed (device unplugged?).
    #[error("scanner {path}: {message}")]
    Read {
        /// The device.
        path: PathBuf,
        /// What happened.
        message: String,
    },
    /// A scan that is neither track 2 nor a payment code.
    #[error("unrecognised scan: {0}")]
    Unrecognised(&'static str),
}

/// Result alias for the scanner.
pub type Result<T> = std::result::Result<T, Error>;

/// Track 2 data from a magnetic stripe, held in a zeroizing buffer as
/// `PAN=YYMMSSS…` (the form `till-pay`'s track 2 parser takes). Its Debug
/// shows only the masked PAN.
#[derive(Clone, PartialEq, Eq)]
pub struct Track2Data(Zeroizing<String>);

impl Track2Data {
    /// `PAN=YYMMSSS…`, without sentinels.
    pub fn equivalent(&self) -> &str {
        &self.0
    }

    /// The PAN.
    pub fn pan(&self) -> &str {
        self.0.split('=').next().unwrap_or("")
    }

    /// Expiry as YYMM.
    pub fn expiry(&self) -> &str {
        self.after_separator().get(..4).unwrap_or("")
    }

    /// Service code.
    pub fn service_code(&self) -> &str {
        self.after_separator().get(4..7).unwrap_or("")
    }

    fn after_separator(&self) -> &str {
        self.0.split_once('=').map_or("", |(_, r)| r)
    }

    /// The PAN masked: first six and last four digits.
    pub fn masked_pan(&self) -> String {
        let pan = self.pan();
        let n = pan.len();
        pan.chars()
            .enumerate()
            .map(|(i, c)| if i < 6 || i + 4 >= n { c } else { '*' })
            .collect()
    }
}

impl std::fmt::Debug for Track2Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Track2Data({})", self.masked_pan())
    }
}

/// Which wallet issued a payment code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wallet {
    /// WeChat Pay (18 digits, 10–15).
    WechatPay,
    /// Alipay (16–24 digits, 25–30).
    Alipay,
    /// UnionPay QuickPass (19 digits, 62).
    UnionPay,
}

/// A wallet payment code (auth code) scanned from a customer's phone. The
/// code pays like a card number until it is used or expires, so it is
/// zeroized when dropped and its Debug shows only the last four digits.
#[derive(Clone, PartialEq, Eq)]
pub struct PaymentCode {
    /// The wallet, by the code's length and prefix.
    pub wallet: Wallet,
    /// The digits.
    pub code: Zeroizing<String>,
}

impl std::fmt::Debug for PaymentCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let last4 = self
            .code
            .get(self.code.len().saturating_sub(4)..)
            .unwrap_or("");
        write!(f, "PaymentCode({:?}, …{last4})", self.wallet)
    }
}

/// A parsed scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// Magnetic stripe track 2.
    Track2(Track2Data),
    /// A wallet payment code.
    PaymentCode(PaymentCode),
}

fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

fn parse_track2(line: &str) -> Result<Track2Data> {
    let bad = Error::Unrecognised;
    let start = line.find(';').ok_or(bad("no track 2 start sentinel ';'"))?;
    let body = &line[start + 1..];
    let end = body
        .find('?')
        .ok_or(bad("track 2 without its end sentinel '?'"))?;
    let body = &body[..end];
    if body.len() > 37 {
        return Err(bad("track 2 longer than 37 characters"));
    }
    let sep = body
        .find(['=', 'D'])
        .ok_or(bad("track 2 without the '=' field separator"))?;
    let (pan, rest) = (&body[..sep], &body[sep + 1..]);
    if !(12..=19).contains(&pan.len()) || !pan.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("track 2 PAN is not 12 to 19 digits"));
    }
    if !luhn_ok(pan) {
        return Err(bad("track 2 PAN fails the Luhn check (misread swipe?)"));
    }
    if rest.len() < 7 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            "track 2 needs expiry YYMM and a service code in digits after the separator",
        ));
    }
    let month = &rest[2..4];
    if !("01"..="12").contains(&month) || month.len() != 2 {
        return Err(bad("track 2 expiry month is not 01 to 12"));
    }
    Ok(Track2Data(Zeroizing::new(format!("{pan}={rest}"))))
}

fn parse_payment_code(line: &str) -> Result<PaymentCode> {
    if !line.bytes().all(|b| b.is_ascii_digit()) || line.is_empty() {
        return Err(Error::Unrecognised(
            "neither track 2 (;…=…?) nor a payment code (digits only)",
        ));
    }
    let prefix: u32 = line.get(..2).and_then(|p| p.parse().ok()).unwrap_or(0);
    let wallet = match (line.len(), prefix) {
        (18, 10..=15) => Wallet::WechatPay,
        (16..=24, 25..=30) => Wallet::Alipay,
        (19, 62) => Wallet::UnionPay,
        _ => {
            return Err(Error::Unrecognised(
                "digits that match no wallet's payment code length and prefix",
            ));
        }
    };
    Ok(PaymentCode {
        wallet,
        code: Zeroizing::new(line.to_string()),
    })
}

/// Parses one scanned line (surrounding whitespace ignored).
pub fn parse(line: &str) -> Result<Scan> {
    let line = line.trim();
    if line.contains(';') {
        return parse_track2(line).map(Scan::Track2);
    }
    if line.starts_with('%') {
        return Err(Error::Unrecognised(
            "track 1 only: set the reader to send track 2",
        ));
    }
    parse_payment_code(line).map(Scan::PaymentCode)
}

/// Scans as they arrive, parsed. Dropping it stops the reader.
pub struct Scanner {
    rx: mpsc::Receiver<Result<Zeroizing<String>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Scanner {
    /// The next scan; a line that does not parse is an `Err` and the
    /// scanner goes on. `None` when the scanner has stopped.
    pub async fn next(&mut self) -> Option<Result<Scan>> {
        let line = self.rx.recv().await?;
        Some(line.and_then(|l| parse(&l)))
    }
}

impl Drop for Scanner {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Feeds lines into a [`simulated`] scanner.
#[derive(Clone)]
pub struct ScanInjector(mpsc::Sender<Result<Zeroizing<String>>>);

impl ScanInjector {
    /// Delivers one scanned line. False when the scanner is gone.
    pub async fn scan(&self, line: &str) -> bool {
        self.0
            .send(Ok(Zeroizing::new(line.to_string())))
            .await
            .is_ok()
    }

    /// [`scan`](Self::scan) from outside the runtime.
    pub fn scan_blocking(&self, line: &str) -> bool {
        self.0
            .blocking_send(Ok(Zeroizing::new(line.to_string())))
            .is_ok()
    }
}

/// A scanner without hardware, fed through the injector.
pub fn simulated() -> (Scanner, ScanInjector) {
    let (tx, rx) = mpsc::channel(16);
    (Scanner { rx, task: None }, ScanInjector(tx))
}

/// Splits serial bytes into lines at CR or LF; over-long lines are dropped.
#[derive(Debug, Default)]
pub struct LineSplitter {
    line: Vec<u8>,
    overflow: bool,
}

impl LineSplitter {
    /// Feeds bytes; returns completed non-empty lines.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\r' || b == b'\n' {
                let line = std::mem::take(&mut self.line);
                if !std::mem::take(&mut self.overflow) && !line.is_empty() {
                    out.push(String::from_utf8_lossy(&line).into_owned());
                }
            } else if self.line.len() >= wedge::MAX_LINE {
                self.overflow = true;
                self.line.clear();
            } else if !self.overflow {
                self.line.push(b);
            }
        }
        out
    }
}

/// Opens the scanner the configuration names (needs a tokio runtime).
pub fn open(config: &ScannerConfig) -> Result<Scanner> {
    if config.simulated {
        let (scanner, injector) = simulated();
        std::thread::spawn(move || {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                if !injector.scan_blocking(line.trim_end()) {
                    return;
                }
                line.clear();
            }
        });
        return Ok(scanner);
    }
    match config.kind {
        ScannerKind::Evdev => open_evdev(config),
        ScannerKind::Serial => open_serial(config),
    }
}

fn open_evdev_device(path: &std::path::Path) -> Result<evdev::Device> {
    evdev::Device::open(path)
        .map_err(|e| Error::Open(config::explain_open_error(DeviceKind::Input, path, &e)))
}

fn open_evdev(config: &ScannerConfig) -> Result<Scanner> {
    let path = config.path.clone();
    let mut device = open_evdev_device(&path)?;
    // Grab: the scanner's keystrokes must reach only us, never the UI or a
    // console (a swipe would otherwise type the card number there).
    device.grab().map_err(|e| {
        Error::Open(format!(
            "cannot grab {} ({e}): another program holds it",
            path.display()
        ))
    })?;
    let mut events = device
        .into_event_stream()
        .map_err(|e| Error::Open(format!("{}: {e}", path.display())))?;
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(async move {
        let mut decoder = WedgeDecoder::new();
        loop {
            match events.next_event().await {
                Ok(ev) if ev.event_type() == evdev::EventType::KEY => {
                    if let Some(line) = decoder.key(ev.code(), ev.value())
                        && tx.send(Ok(Zeroizing::new(line))).await.is_err()
                    {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx
                        .send(Err(Error::Read {
                            path: path.clone(),
                            message: format!("{e} (unplugged?)"),
                        }))
                        .await;
                    return;
                }
            }
        }
    });
    Ok(Scanner {
        rx,
        task: Some(task),
    })
}

fn open_serial(config: &ScannerConfig) -> Result<Scanner> {
    let mut link = SerialLink::open_port(
        &config.path,
        config.baud,
        FlowControl::None,
        Duration::from_secs(1),
    )
    .map_err(Error::Open)?;
    let path = config.path.clone();
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut splitter = LineSplitter::default();
        let mut buf = [0u8; 256];
        // Wakes every 200 ms to notice a dropped Scanner.
        while !tx.is_closed() {
            match link.read_some(&mut buf, Duration::from_millis(200)) {
                Ok(n) => {
                    for line in splitter.feed(&buf[..n]) {
                        if tx.blocking_send(Ok(Zeroizing::new(line))).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(Error::Read {
                        path,
                        message: e.to_string(),
                    }));
                    return;
                }
            }
        }
    });
    Ok(Scanner { rx, task: None })
}

/// Checks the scanner is there, for the boot screen; a sentence on success.
pub fn self_test(config: &ScannerConfig) -> Result<String> {
    match config.kind {
        ScannerKind::Evdev => {
            let device = open_evdev_device(&config.path)?;
            let types_digits = device.supported_keys().is_some_and(|k| {
                k.contains(evdev::KeyCode::KEY_ENTER) && k.contains(evdev::KeyCode::KEY_1)
            });
            if !types_digits {
                return Err(Error::Open(format!(
                    "{} is not a keyboard-wedge device (it has no digit and Enter keys); \
                     point scanner.path at the scanner's …-event-kbd link",
                    config.path.display()
                )));
            }
            Ok(format!(
                "{} ({}) present",
                config.path.display(),
                device.name().unwrap_or("unnamed input device")
            ))
        }
        ScannerKind::Serial => {
            SerialLink::open_port(
                &config.path,
                config.baud,
                FlowControl::None,
                Duration::from_secs(1),
            )
            .map_err(Error::Open)?;
            Ok(format!(
                "{} open at {} baud",
                config.path.display(),
                config.baud
            ))
        }
    }
}
