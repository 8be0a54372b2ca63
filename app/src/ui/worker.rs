//! The engine thread: owns the payment engine (`till_pay::engine::Terminal`
//! over TLS with its SQLite journal), the reader and the printer, and runs
//! one job at a time for the UI thread, answering with a [`Reply`]. The
//! store-and-forward forwarder runs beside the jobs on the same runtime and
//! shares the engine through its mutex, so it never sends while a sale is
//! in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use till_hal::config::DevicesConfig;
use till_hal::printer::receipt::Receipt;
use till_hal::printer::sim::SimulatedPrinter;
use till_hal::printer::{AnyPrinter, Printer, PrinterLink};
use till_hal::reader::model::{Mfrc522Model, VirtualCard};
use till_hal::reader::virtual_emv::bundled_cards;
use till_hal::reader::{
    ChipVersion, ContactlessReader, Mfrc522Reader, ReaderError, SimulatedReader,
};
use till_hal::scanner::{Scan, Scanner};
use till_hal::selftest::{DeviceReport, Outcome, SelfTestReport};
use till_pay::emv::{CardRead, Kernel, KernelConfig, Transaction};
use till_pay::engine::{
    BatchTotals, EngineError, Entry, SettlementOutcome, SignInOutcome, TerminalConfig, TxnOutcome,
    TxnRequest, forwarder,
};
use till_pay::journal::QueueStatus;
use till_pay::link::{Backoff, TerminalFiles};
use till_pay::money::Amount;
use till_pay::qr::PaymentCode;
use tokio::sync::{Mutex, Notify, mpsc, watch};

use super::settings::Settings;
use crate::card::{ReaderTransport, open_reader};

pub use crate::engine::Engine;
use crate::engine::OpenError;

/// What the UI asks of the engine thread.
pub enum Job {
    /// Power-on self-test of every device.
    SelfTest,
    /// Terminal sign-in.
    SignIn,
    /// Wait for a card and read it; `virtual_card` names a card of the
    /// simulator's card file (simulated reader only).
    ReadCard {
        /// The virtual card, in simulator mode.
        virtual_card: Option<String>,
        /// The amount, for the card's risk checks.
        amount: Amount,
    },
    /// Wait for the customer's payment code at the scanner; `sim_code`
    /// names one of the simulator's codes (simulated scanner only).
    ReadScan {
        /// The simulated code, in simulator mode.
        sim_code: Option<String>,
    },
    /// Run a transaction.
    Txn(Box<TxnRequest>),
    /// Settle the open batch.
    Settle,
    /// Print receipts (in order; the first failure stops and keeps the rest).
    Print(Vec<Receipt>),
    /// Print again what did not print.
    PrintPending,
    /// The journal's entries (newest first).
    History,
    /// Signed-in state, batch, queue and totals.
    Status,
    /// New settings: the engine is opened again with them.
    Reconfigure(Box<Settings>),
}

/// Why a card could not be read, as the screens tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardProblem {
    /// Waiting was cancelled (timeout or the operator).
    Cancelled,
    /// The card left the field during the read.
    Removed,
    /// The card did not answer properly (dirty, damaged, wrong card).
    Unreadable,
}

/// Why no payment code came from the scanner, as the screens tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanProblem {
    /// Waiting was cancelled (timeout or the operator).
    Cancelled,
    /// Something was scanned that is not a wallet's payment code; the
    /// screen says so and keeps waiting. `swipe`: it was a card's stripe
    /// (through a swiper on the same input); `why`: the check's words, for
    /// the log.
    NotACode {
        /// A magnetic stripe, not a code.
        swipe: bool,
        /// Why not, in English.
        why: String,
    },
    /// The scanner could not be opened or stopped working.
    Scanner(String),
}

/// What the engine thread answers.
pub enum Reply {
    /// The self-test.
    SelfTest(SelfTestReport),
    /// The sign-in's result.
    SignedIn(Result<SignInOutcome, EngineError>),
    /// The card read.
    Card(Result<Box<CardRead>, CardProblem>),
    /// A payment code from the scanner.
    Scan(Result<PaymentCode, ScanProblem>),
    /// A transaction's result.
    Txn(Result<Box<TxnOutcome>, EngineError>),
    /// Settlement's result.
    Settled(Result<Box<SettlementOutcome>, EngineError>),
    /// Printing: `Err(problem)` with what is still to print kept.
    Printed(Result<(), PrintProblem>),
    /// Journal entries, newest first.
    History(Vec<Entry>),
    /// The terminal's state.
    Status(Status),
    /// The engine could not be opened (bad PKI, journal, dialect).
    Broken(String),
}

/// A printing failure: a kind the screen explains, and the driver's words
/// for service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintProblem {
    /// paper-out, cover-open, offline or other.
    pub kind: &'static str,
    /// What the driver said.
    pub detail: String,
}

/// The terminal's state for the status line and banner.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Signed in today, to this host.
    pub signed_in: bool,
    /// Open batch number.
    pub batch: String,
    /// The store-and-forward queue.
    pub queue: QueueStatus,
    /// The last attempt to reach the host failed.
    pub offline: bool,
    /// Totals of the open batch.
    pub totals: BatchTotals,
}

/// Where the engine's pieces come from.
#[derive(Clone)]
pub struct Setup {
    /// The terminal's PKI files.
    pub files: TerminalFiles,
    /// Terminal id.
    pub terminal_id: String,
    /// Journal directory.
    pub state_dir: std::path::PathBuf,
    /// Settings.
    pub settings: Settings,
    /// Devices.
    pub devices: DevicesConfig,
    /// The simulated printer, when the printer is simulated (tests and the
    /// simulator's controls reach its paper and cover through it).
    pub sim_printer: Option<Arc<StdMutex<SimulatedPrinter>>>,
}

/// The simulated printer shared with whoever simulates its paper and cover.
struct SharedSim(Arc<StdMutex<SimulatedPrinter>>);

impl PrinterLink for SharedSim {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.lock().write_all(bytes)
    }
    fn read_byte(&mut self, timeout: Duration) -> std::io::Result<Option<u8>> {
        self.lock().read_byte(timeout)
    }
    fn discard_input(&mut self) -> std::io::Result<()> {
        self.lock().discard_input()
    }
    fn name(&self) -> String {
        self.lock().name()
    }
    fn baud(&self) -> u32 {
        self.lock().baud()
    }
}

impl SharedSim {
    fn lock(&self) -> std::sync::MutexGuard<'_, SimulatedPrinter> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The handle the UI keeps.
pub struct Worker {
    jobs: mpsc::UnboundedSender<Job>,
    cancel_card: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// Starts the engine thread; `reply` is called on that thread.
    pub fn start(setup: Setup, reply: impl Fn(Reply) + Send + 'static) -> Worker {
        let (jobs, rx) = mpsc::unbounded_channel();
        let cancel_card = Arc::new(AtomicBool::new(false));
        let cancel = cancel_card.clone();
        let thread = std::thread::Builder::new()
            .name("till-engine".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => return reply(Reply::Broken(format!("cannot start: {e}"))),
                };
                rt.block_on(run(setup, rx, cancel, reply));
            })
            .expect("the engine thread starts");
        Worker {
            jobs,
            cancel_card,
            thread: Some(thread),
        }
    }

    /// Queues a job.
    pub fn send(&self, job: Job) {
        if matches!(job, Job::ReadCard { .. } | Job::ReadScan { .. }) {
            self.cancel_card.store(false, Ordering::SeqCst);
        }
        // The thread only ends when the Worker is dropped.
        let _ = self.jobs.send(job);
    }

    /// Stops waiting for a card.
    pub fn cancel_card(&self) {
        self.cancel_card.store(true, Ordering::SeqCst);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let (closed, _) = mpsc::unbounded_channel();
        self.jobs = closed;
        self.cancel_card.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens the engine for `setup`.
pub fn open_engine(setup: &Setup) -> Result<Engine, OpenError> {
    let s = &setup.settings;
    let mut config = TerminalConfig::new(&setup.terminal_id, &s.merchant_id, s.currency(), &s.host);
    config.host_timeout = Duration::from_secs(s.host_timeout_seconds.clamp(5, 120));
    config.limits = s.limits();
    config.offline = s.offline();
    crate::engine::open(&s.dialect, &setup.files, &setup.state_dir, config)
}

fn open_printer(setup: &Setup) -> Result<AnyPrinter, till_hal::printer::Error> {
    match &setup.sim_printer {
        Some(sim) => Ok(Printer::new(
            Box::new(SharedSim(sim.clone())),
            setup.devices.printer.paper_width,
            Duration::from_millis(setup.devices.printer.status_timeout_ms),
        )),
        None => till_hal::printer::open(&setup.devices.printer),
    }
}

struct Running {
    engine: Arc<Mutex<Engine>>,
    stop: watch::Sender<bool>,
    wake: Arc<Notify>,
}

fn start_engine(setup: &Setup) -> Result<Running, OpenError> {
    let engine = Arc::new(Mutex::new(open_engine(setup)?));
    let (stop, stop_rx) = watch::channel(false);
    let wake = Arc::new(Notify::new());
    tokio::spawn(forwarder::run(
        engine.clone(),
        Backoff {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(60),
            ..Backoff::default()
        },
        Duration::from_secs(30),
        wake.clone(),
        stop_rx,
    ));
    Ok(Running { engine, stop, wake })
}

async fn run(
    mut setup: Setup,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    cancel: Arc<AtomicBool>,
    reply: impl Fn(Reply),
) {
    // The engine, or why it could not be opened (the self-test reports it).
    let start = |setup: &Setup| match start_engine(setup) {
        Ok(r) => (Some(r), None),
        Err(e) => {
            reply(Reply::Broken(e.to_string()));
            (None, Some(e))
        }
    };
    let (mut running, mut engine_error) = start(&setup);
    let mut printer: Option<AnyPrinter> = None;
    // Opened at the first QR payment and kept: a keyboard-wedge scanner is
    // grabbed while open, so its keystrokes never reach anything else.
    let mut scanner: Option<Scanner> = None;
    // The simulator's last payment code, for its "used code".
    let mut last_sim_code: Option<String> = None;
    let mut offline = false;
    let wallet = Wallet::default();
    let mut last_depth = 0;
    while let Some(job) = jobs.recv().await {
        if let Job::Reconfigure(settings) = job {
            if let Some(r) = running.take() {
                let _ = r.stop.send(true);
                r.wake.notify_one();
                // The forwarder holds the engine until its round ends.
                let _ = r.engine.lock().await;
            }
            setup.settings = *settings;
            (running, engine_error) = start(&setup);
            continue;
        }
        match job {
            Job::SelfTest => reply(Reply::SelfTest(self_test(&setup, engine_error.as_ref()))),
            Job::ReadCard {
                virtual_card,
                amount,
            } => {
                let setup = setup.clone();
                let cancel = cancel.clone();
                let wallet = wallet.clone();
                let read = tokio::task::spawn_blocking(move || {
                    read_card(&setup, virtual_card.as_deref(), amount, &cancel, &wallet)
                })
                .await
                .unwrap_or(Err(CardProblem::Unreadable));
                reply(Reply::Card(read.map(Box::new)));
            }
            Job::ReadScan { sim_code } => {
                let code = match sim_code {
                    Some(name) if setup.devices.scanner.simulated => {
                        sim_scan(&name, &mut last_sim_code)
                            .map_err(|why| ScanProblem::NotACode { swipe: false, why })
                    }
                    _ => read_scan(&setup, &mut scanner, &cancel).await,
                };
                if matches!(code, Err(ScanProblem::Scanner(_))) {
                    scanner = None;
                }
                reply(Reply::Scan(code));
            }
            Job::Print(receipts) => {
                let p = match printer.take() {
                    Some(p) => Ok(p),
                    None => open_printer(&setup),
                };
                let (kept, result) = match p {
                    Ok(mut p) => {
                        let result = print_all(&mut p, &receipts);
                        (Some(p), result)
                    }
                    Err(e) => (None, Err(problem(&e))),
                };
                printer = kept;
                reply(Reply::Printed(result));
            }
            Job::PrintPending => {
                let result = match printer.as_mut() {
                    Some(p) => p.reprint_pending().map(|_| ()).map_err(|e| problem(&e)),
                    None => Ok(()),
                };
                reply(Reply::Printed(result));
            }
            job => {
                let Some(r) = &running else {
                    reply(Reply::Broken(
                        "the payment engine is not running; check the settings".into(),
                    ));
                    continue;
                };
                let mut engine = r.engine.lock().await;
                match job {
                    Job::SignIn => {
                        let result = engine.sign_in().await;
                        offline = result.is_err();
                        reply(Reply::SignedIn(result));
                    }
                    Job::Txn(req) => {
                        let result = engine.run(*req).await;
                        offline = match &result {
                            Ok(o) => {
                                o.response_code.is_none()
                                    || o.status == till_pay::engine::Status::OfflineApproved
                            }
                            Err(EngineError::HostUnreachable(_))
                            | Err(EngineError::OfflineRefused { .. })
                            | Err(EngineError::NoAnswer(_))
                            | Err(EngineError::PendingNotCleared { .. }) => true,
                            Err(_) => offline,
                        };
                        if engine.queue_status().depth > 0 {
                            r.wake.notify_one();
                        }
                        reply(Reply::Txn(result.map(Box::new)));
                    }
                    Job::Settle => {
                        let result = engine.settle().await;
                        if result.is_ok() {
                            offline = false;
                        }
                        reply(Reply::Settled(result.map(Box::new)));
                    }
                    Job::History => {
                        let mut entries = engine.state().entries.clone();
                        entries.reverse();
                        reply(Reply::History(entries));
                    }
                    Job::Status => {}
                    _ => unreachable!("handled above"),
                }
                // The forwarder emptied the queue: the host is back.
                let depth = engine.queue_status().depth;
                if depth == 0 && last_depth > 0 {
                    offline = false;
                }
                last_depth = depth;
                reply(Reply::Status(status(&engine, offline)));
            }
        }
    }
    if let Some(r) = running {
        let _ = r.stop.send(true);
        r.wake.notify_one();
    }
}

fn status(engine: &Engine, offline: bool) -> Status {
    Status {
        signed_in: engine.signed_in(),
        batch: format!("{:06}", engine.state().batch_number),
        queue: engine.queue_status(),
        offline,
        totals: engine.totals(),
    }
}

/// The devices' self-test, and the journal as the engine found it when it
/// opened (not opened a second time).
fn self_test(setup: &Setup, engine_error: Option<&OpenError>) -> SelfTestReport {
    let mut report = till_hal::selftest::run(&setup.devices, Some(&crate::card::reader_check));
    if setup.sim_printer.is_some() {
        // The simulated printer is the app's own: ask it like a real one.
        if let Some(d) = report.devices.iter_mut().find(|d| d.device == "printer") {
            *d = match open_printer(setup).and_then(|mut p| p.check_ready()) {
                Ok(_) => DeviceReport::new("printer", Outcome::Simulated, "simulated printer"),
                Err(e) => DeviceReport::new("printer", Outcome::Failed, e.to_string()),
            };
        }
    }
    report.devices.push(match engine_error {
        None => DeviceReport::new(
            "journal",
            Outcome::Ok,
            setup.state_dir.display().to_string(),
        ),
        Some(OpenError::Journal(e)) => DeviceReport::new("journal", Outcome::Failed, e.clone()),
        Some(e) => DeviceReport::new("journal", Outcome::NotChecked, format!("not opened: {e}")),
    });
    report.ok = report.devices.iter().all(|d| d.outcome != Outcome::Failed);
    report
}

fn print_all(printer: &mut AnyPrinter, receipts: &[Receipt]) -> Result<(), PrintProblem> {
    for r in receipts {
        printer.print_receipt(r).map_err(|e| problem(&e))?;
    }
    Ok(())
}

fn problem(e: &till_hal::printer::Error) -> PrintProblem {
    use till_hal::printer::Error;
    let kind = match e {
        Error::PaperOut => "paper-out",
        Error::CoverOpen => "cover-open",
        Error::Offline(_) | Error::NoAnswer { .. } => "offline",
        _ => "other",
    };
    PrintProblem {
        kind,
        detail: e.to_string(),
    }
}

/// Waits for one payment code at the scanner, until `cancel` is set.
async fn read_scan(
    setup: &Setup,
    scanner: &mut Option<Scanner>,
    cancel: &AtomicBool,
) -> Result<PaymentCode, ScanProblem> {
    let sc = match scanner {
        Some(sc) => sc,
        // The simulated scanner of the device config reads stdin; the
        // app's simulator has its own buttons instead.
        None if setup.devices.scanner.simulated => {
            return Err(ScanProblem::Scanner(
                "the scanner is simulated: use the simulator's payment codes".into(),
            ));
        }
        None => scanner.insert(
            till_hal::scanner::open(&setup.devices.scanner)
                .map_err(|e| ScanProblem::Scanner(e.to_string()))?,
        ),
    };
    drop_stale_scans(sc).await;
    wait_for_code(sc, cancel).await
}

/// Drops what was scanned while no QR payment waited (a code scanned at
/// the home screen must not pay the next sale); how many scans that was.
async fn drop_stale_scans(sc: &mut Scanner) -> usize {
    let mut dropped = 0;
    while let Ok(Some(_stale)) = tokio::time::timeout(Duration::ZERO, sc.next()).await {
        dropped += 1;
    }
    dropped
}

/// The next scan that is a payment code, or why not, until `cancel` is set.
async fn wait_for_code(sc: &mut Scanner, cancel: &AtomicBool) -> Result<PaymentCode, ScanProblem> {
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(ScanProblem::Cancelled);
        }
        match tokio::time::timeout(Duration::from_millis(200), sc.next()).await {
            Err(_) => continue,
            Ok(None) => return Err(ScanProblem::Scanner("the scanner stopped".into())),
            Ok(Some(scan)) => return payment_code_of(scan),
        }
    }
}

/// The payment code in a scan, or why it is none.
fn payment_code_of(scan: till_hal::scanner::Result<Scan>) -> Result<PaymentCode, ScanProblem> {
    match scan {
        Ok(Scan::PaymentCode(c)) => {
            PaymentCode::parse(&c.code).map_err(|e| ScanProblem::NotACode {
                swipe: false,
                why: e.to_string(),
            })
        }
        Ok(Scan::Track2(_)) => Err(ScanProblem::NotACode {
            swipe: true,
            why: "a card's magnetic stripe".into(),
        }),
        Err(till_hal::scanner::Error::Unrecognised(why)) => Err(ScanProblem::NotACode {
            swipe: false,
            why: why.into(),
        }),
        Err(e) => Err(ScanProblem::Scanner(e.to_string())),
    }
}

/// The simulator's payment codes, by wallet; "used code" is the last code
/// the simulator handed out, shown again.
pub const SIM_WECHAT: &str = "WeChat Pay";
/// Alipay: the bundled acquirer has no Alipay account and refuses it.
pub const SIM_ALIPAY: &str = "Alipay";
/// UnionPay QuickPass: the bundled account holds 300.00.
pub const SIM_QUICKPASS: &str = "QuickPass";
/// The last code again (a wallet's code pays once).
pub const SIM_USED_CODE: &str = "used code";

/// The names the simulator offers on the scan screen.
pub fn sim_code_names() -> Vec<String> {
    [SIM_WECHAT, SIM_ALIPAY, SIM_QUICKPASS, SIM_USED_CODE]
        .into_iter()
        .map(String::from)
        .collect()
}

/// A fresh code of the wallet `name` (random digits after the wallet's
/// prefix, as a wallet app shows), read as the scanner would read it;
/// `last` is the code the simulator made before, which it remembers.
fn sim_scan(name: &str, last: &mut Option<String>) -> Result<PaymentCode, String> {
    let digits = |prefix: &str, len: usize| {
        let mut code = prefix.to_string();
        while code.len() < len {
            code.push(char::from(b'0' + rand::random_range(0..10u8)));
        }
        code
    };
    let line = match name {
        SIM_WECHAT => digits("13", 18),
        SIM_ALIPAY => digits("28", 18),
        SIM_QUICKPASS => digits("62", 19),
        SIM_USED_CODE => last.clone().ok_or("no code was scanned yet")?,
        other => return Err(format!("the simulator has no payment code {other:?}")),
    };
    *last = Some(line.clone());
    payment_code_of(till_hal::scanner::parse(&line)).map_err(|e| format!("{e:?}"))
}

/// The simulator's pretend gestures besides presenting a good card.
pub const SIM_REMOVED_EARLY: &str = "pulled away early";
/// A card that does not answer properly.
pub const SIM_UNREADABLE: &str = "dirty card";

/// The names the simulator offers on the tap screen.
pub fn sim_card_names() -> Vec<String> {
    let mut names: Vec<String> = bundled_cards()
        .map(|cards| cards.into_iter().map(|c| c.name).collect())
        .unwrap_or_default();
    names.push(SIM_REMOVED_EARLY.into());
    names.push(SIM_UNREADABLE.into());
    names
}

/// The simulator's virtual cards between taps: a card keeps its state
/// (its application transaction counter, which the host checks never goes
/// back) from one tap to the next, as a real card does.
type Wallet = Arc<StdMutex<HashMap<String, VirtualCard>>>;

fn read_card(
    setup: &Setup,
    virtual_card: Option<&str>,
    amount: Amount,
    cancel: &AtomicBool,
    wallet: &Wallet,
) -> Result<CardRead, CardProblem> {
    let txn = Transaction::purchase(
        amount,
        setup.settings.currency(),
        chrono::Local::now().naive_local(),
    );
    if let (Some(name), true) = (virtual_card, setup.devices.reader.simulated) {
        return read_virtual(name, &txn, wallet);
    }
    let mut reader = open_reader(&setup.devices.reader, "").map_err(|_| CardProblem::Unreadable)?;
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(CardProblem::Cancelled);
        }
        match reader.wait_for_card(Duration::from_millis(200)) {
            Ok(_) => break,
            Err(ReaderError::NoCard) => continue,
            Err(_) => return Err(CardProblem::Unreadable),
        }
    }
    kernel_read(reader.as_mut(), &txn)
}

fn kernel_read(
    reader: &mut dyn ContactlessReader,
    txn: &Transaction,
) -> Result<CardRead, CardProblem> {
    let result = Kernel::new(KernelConfig::default()).read(ReaderTransport::new(reader), txn);
    // The card is done with either way; a failure to deselect changes nothing.
    let _ = reader.release();
    result.map_err(|e| {
        tracing::info!(error = %e, "card read failed");
        match e {
            till_pay::emv::EmvError::Transport {
                source: till_pay::emv::TransportError::CardRemoved,
                ..
            } => CardProblem::Removed,
            _ => CardProblem::Unreadable,
        }
    })
}

fn read_virtual(name: &str, txn: &Transaction, wallet: &Wallet) -> Result<CardRead, CardProblem> {
    let options = till_hal::reader::ReaderOptions {
        max_bit_rate: till_hal::reader::BitRate::Kbps106,
        ..Default::default()
    };
    let fresh = |n: &str| {
        bundled_cards()
            .ok()
            .and_then(|cards| cards.into_iter().find(|c| c.name == n))
            .map(|c| c.into_model())
    };
    let gesture = matches!(name, SIM_REMOVED_EARLY | SIM_UNREADABLE);
    let card = if gesture {
        fresh("cup-ok")
    } else {
        let kept = wallet
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        kept.or_else(|| fresh(name))
    }
    .ok_or(CardProblem::Unreadable)?;
    let model = Mfrc522Model::new(ChipVersion::V2);
    let id = model.insert(card);
    match name {
        SIM_REMOVED_EARLY => model.remove_after_frames(id, 8),
        SIM_UNREADABLE => model.corrupt_crc_of_next(1000),
        _ => {}
    }
    let result = match Mfrc522Reader::new(model.spi(), model.reset_pin(), model.delay(), options) {
        Ok(mut reader) => {
            let reader: &mut SimulatedReader = &mut reader;
            match reader.wait_for_card(Duration::from_secs(1)) {
                Ok(_) => kernel_read(reader, txn),
                Err(_) => Err(CardProblem::Unreadable),
            }
        }
        Err(_) => Err(CardProblem::Unreadable),
    };
    if !gesture && let Some(card) = model.remove(id) {
        wallet
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), card);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use till_pay::qr::Wallet;

    #[test]
    fn a_scan_is_a_payment_code_or_says_why_not() {
        let scan = |line: &str| payment_code_of(till_hal::scanner::parse(line));
        let code = scan("134567890123456789\r").unwrap();
        assert_eq!(code.wallet(), Wallet::WechatPay);
        let swipe = scan(";6222088800000000010=4912101000000?").unwrap_err();
        assert!(
            matches!(&swipe, ScanProblem::NotACode { swipe: true, .. }),
            "{swipe:?}"
        );
        let other = scan("https://example.com/pay").unwrap_err();
        assert!(
            matches!(&other, ScanProblem::NotACode { swipe: false, why } if why.contains("payment code")),
            "{other:?}"
        );
        let short = scan("1345678").unwrap_err();
        assert!(
            matches!(short, ScanProblem::NotACode { swipe: false, .. }),
            "{short:?}"
        );
    }

    #[tokio::test]
    async fn stale_scans_are_dropped_and_the_wait_ends_with_a_code_or_cancel() {
        let (mut sc, inject) = till_hal::scanner::simulated();
        assert!(inject.scan("134567890123456789").await);
        assert!(inject.scan(";6222088800000000010=4912101000000?").await);
        assert_eq!(drop_stale_scans(&mut sc).await, 2);
        assert_eq!(drop_stale_scans(&mut sc).await, 0);
        assert!(inject.scan("101234567890123456").await);
        let cancel = AtomicBool::new(false);
        let code = wait_for_code(&mut sc, &cancel).await.unwrap();
        assert_eq!(
            code.expose(),
            "101234567890123456",
            "the fresh code, not the stale one"
        );
        cancel.store(true, Ordering::SeqCst);
        assert_eq!(
            wait_for_code(&mut sc, &cancel).await,
            Err(ScanProblem::Cancelled)
        );
        drop(inject);
        cancel.store(false, Ordering::SeqCst);
        assert!(matches!(
            wait_for_code(&mut sc, &cancel).await,
            Err(ScanProblem::Scanner(_))
        ));
    }

    #[test]
    fn the_simulators_codes_are_fresh_and_the_used_one_repeats() {
        let mut codes = None;
        assert!(
            sim_scan(SIM_USED_CODE, &mut codes).is_err(),
            "nothing scanned yet"
        );
        let a = sim_scan(SIM_WECHAT, &mut codes).unwrap();
        let b = sim_scan(SIM_WECHAT, &mut codes).unwrap();
        assert_eq!(a.wallet(), Wallet::WechatPay);
        assert_ne!(
            a.expose(),
            b.expose(),
            "a wallet shows a new code each time"
        );
        assert_eq!(sim_scan(SIM_USED_CODE, &mut codes).unwrap(), b);
        assert_eq!(
            sim_scan(SIM_ALIPAY, &mut codes).unwrap().wallet(),
            Wallet::Alipay
        );
        assert_eq!(
            sim_scan(SIM_QUICKPASS, &mut codes).unwrap().wallet(),
            Wallet::UnionPay
        );
        assert!(sim_scan("PayPal", &mut codes).is_err());
    }
}
