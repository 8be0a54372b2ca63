//! The touchscreen app `till`: the screens of `app/ui/*.slint` over the
//! payment engine (`till_pay`) and the devices (`till_hal`).
//!
//! The UI thread owns the window and the [`Controller`], which keeps the
//! flow's state (amount typed, card read, PIN entry, supervisor approval)
//! and sets the `Till` global's properties; the screens only show them and
//! raise callbacks. Everything that waits — the host, the card, the
//! printer — runs on the engine thread ([`worker`]), which answers through
//! a channel the UI thread reads with `slint::spawn_local`. PIN digits live
//! only in the keypad's zeroizing PIN buffer; the screen gets their count.

mod accounts;
mod admin;
#[cfg(feature = "simulator")]
pub mod demo;
pub mod device;
mod fields;
pub mod input;
mod main;
pub mod operators;
pub mod platform;
mod receipts;
pub mod settings;
#[cfg(feature = "simulator")]
pub mod sim;
pub mod wallclock;
pub mod worker;
pub use main::main;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use slint::{ComponentHandle, ModelRc, SharedString, VecModel};
use till_hal::keypad::Key;
use till_hal::keypad::pin::{PinEntry, PinPolicy, PinUiEvent};
use till_hal::printer::receipt::{Copy, Receipt};
use till_hal::selftest::Outcome;
use till_pay::crypto::Pin;
use till_pay::emv::CardRead;
use till_pay::engine::{
    CardInput, EngineError, Entry, Status as EntryStatus, TxnOutcome, TxnRequest,
};
use till_pay::iso8583::TxnKind;
use till_pay::money::Amount;

use operators::{Operators, Role as OpRole};
use platform::Clock;
use settings::Settings;
use till_pay::qr::PaymentCode;
use worker::{CardProblem, Job, Reply, ScanProblem, Setup, Worker};

slint::include_modules!();

/// The software version shown on screen.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Writes `bytes` to `path` through a temporary file, fsync and rename, so
/// a power cut leaves the old file or the new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// What the app is started with.
pub struct Options {
    /// The engine's set-up.
    pub setup: Setup,
    /// The operator file.
    pub operators: Operators,
    /// Where settings are saved.
    pub settings_path: PathBuf,
    /// Simulator mode: virtual cards on the tap screen.
    pub simulator: bool,
    /// Time for timeouts.
    pub clock: Clock,
}

/// A transaction being put together.
struct Flow {
    kind: TxnType,
    entry: String,
    amount: Option<Amount>,
    card: Option<Box<CardRead>>,
    pin: Option<Pin>,
    original: Option<Entry>,
    confirmations: u8,
    approved_by: Option<String>,
    method_chosen: bool,
    pin_done: bool,
    /// The customer pays with a wallet's payment code (QR), not a card.
    qr: bool,
    /// The payment code scanned, until it is sent.
    code: Option<PaymentCode>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ListUse {
    Browse,
    Pick,
}

/// The UI thread's state behind the screens.
pub struct Controller {
    me: std::rc::Weak<Controller>,
    ui: slint::Weak<TillWindow>,
    worker: Worker,
    ops: RefCell<Operators>,
    settings: RefCell<Settings>,
    settings_path: PathBuf,
    terminal_id: String,
    simulator: bool,
    clock: Clock,
    state: RefCell<State>,
    ticker: slint::Timer,
    deadline: slint::Timer,
    /// Whether the dialect carries payment codes, once asked (see `takes_qr`).
    takes_qr: std::cell::Cell<Option<bool>>,
}

#[derive(Default)]
struct State {
    operator: Option<(String, OpRole)>,
    flow: Option<Flow>,
    /// The flow last sent, kept (without its PIN) until its result says
    /// whether the customer may enter the PIN again.
    sent: Option<Flow>,
    pin: Option<PinEntry>,
    since: Duration,
    waiting_until: Option<Duration>,
    merchant_copy: Option<Receipt>,
    entries: Vec<Entry>,
    list_use: Option<ListUse>,
    status: worker::Status,
    ticks: u64,
    /// The field the on-screen keys (or the keypad) type into.
    editor: Option<input::Editor>,
    /// Passwords typed into fields, until they are used.
    secrets: input::Secrets,
}

fn ui_role(r: OpRole) -> Role {
    match r {
        OpRole::Cashier => Role::Cashier,
        OpRole::Supervisor => Role::Supervisor,
        OpRole::Administrator => Role::Administrator,
    }
}

fn txn_type(kind: TxnKind) -> TxnType {
    match kind {
        TxnKind::Sale => TxnType::Sale,
        TxnKind::Void => TxnType::Void,
        TxnKind::Refund => TxnType::Refund,
        TxnKind::Balance => TxnType::Balance,
        TxnKind::Preauth => TxnType::Preauth,
        TxnKind::Completion => TxnType::Completion,
        TxnKind::PreauthVoid => TxnType::PreauthVoid,
        TxnKind::CompletionVoid => TxnType::CompletionVoid,
        _ => TxnType::Advice,
    }
}

fn engine_kind(t: TxnType) -> TxnKind {
    match t {
        TxnType::Sale => TxnKind::Sale,
        TxnType::Refund => TxnKind::Refund,
        TxnType::Balance => TxnKind::Balance,
        TxnType::Preauth => TxnKind::Preauth,
        TxnType::Completion => TxnKind::Completion,
        // The engine picks void, pre-authorization void or completion void
        // from the original.
        _ => TxnKind::Void,
    }
}

impl Flow {
    fn new(kind: TxnType) -> Flow {
        Flow {
            kind,
            entry: String::new(),
            amount: None,
            card: None,
            pin: None,
            original: None,
            confirmations: 0,
            approved_by: None,
            method_chosen: false,
            pin_done: false,
            qr: false,
            code: None,
        }
    }
    fn needs_amount(&self) -> bool {
        matches!(
            self.kind,
            TxnType::Sale | TxnType::Preauth | TxnType::Refund | TxnType::Completion
        )
    }
    fn needs_card(&self) -> bool {
        matches!(
            self.kind,
            TxnType::Sale | TxnType::Preauth | TxnType::Balance
        )
    }
    fn needs_original(&self) -> bool {
        matches!(
            self.kind,
            TxnType::Void | TxnType::Refund | TxnType::Completion | TxnType::PreauthVoid
        )
    }
    fn needs_supervisor(&self) -> bool {
        matches!(
            self.kind,
            TxnType::Void | TxnType::Refund | TxnType::PreauthVoid
        )
    }
    /// Whether `e` can be the original of this flow.
    fn accepts(&self, e: &Entry) -> bool {
        let live = matches!(
            e.status,
            EntryStatus::Approved | EntryStatus::OfflineApproved
        ) && !e.settled;
        live && match self.kind {
            TxnType::Void => matches!(
                e.kind,
                TxnKind::Sale | TxnKind::Completion | TxnKind::Advice
            ),
            TxnType::Refund => matches!(e.kind, TxnKind::Sale | TxnKind::Completion),
            TxnType::Completion | TxnType::PreauthVoid => e.kind == TxnKind::Preauth,
            _ => false,
        }
    }
}

/// The app: the window and its controller.
pub struct App {
    /// The window.
    pub ui: TillWindow,
    /// The controller (tests look at its state through the window).
    pub controller: Rc<Controller>,
}

impl App {
    /// Creates the window, starts the engine thread and the self-test.
    pub fn new(options: Options) -> Result<App, String> {
        let ui = TillWindow::new().map_err(|e| format!("cannot create the window: {e}"))?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Reply>();
        let worker = Worker::start(options.setup.clone(), move |r| {
            let _ = tx.send(r);
            // Wake the UI thread's loop (the channel's waker does the rest).
            let _ = slint::invoke_from_event_loop(|| {});
        });
        let settings = options.setup.settings.clone();
        let controller = Rc::new_cyclic(|me| Controller {
            me: me.clone(),
            ui: ui.as_weak(),
            worker,
            ops: RefCell::new(options.operators),
            settings: RefCell::new(settings),
            settings_path: options.settings_path,
            terminal_id: options.setup.terminal_id.clone(),
            simulator: options.simulator,
            clock: options.clock,
            state: RefCell::new(State::default()),
            ticker: slint::Timer::default(),
            deadline: slint::Timer::default(),
            takes_qr: std::cell::Cell::new(None),
        });
        controller.wire(&ui);
        let c = Rc::downgrade(&controller);
        slint::spawn_local(async move {
            while let Some(reply) = rx.recv().await {
                match c.upgrade() {
                    Some(c) => c.on_reply(reply),
                    None => break,
                }
            }
        })
        .map_err(|e| format!("cannot start the UI's event handling: {e}"))?;
        let c = Rc::downgrade(&controller);
        controller.ticker.start(
            slint::TimerMode::Repeated,
            Duration::from_millis(500),
            move || {
                if let Some(c) = c.upgrade() {
                    c.tick();
                }
            },
        );
        controller.tick();
        controller.worker.send(Job::SelfTest);
        controller.worker.send(Job::Status);
        Ok(App { ui, controller })
    }
}

impl Controller {
    /// Runs `f` with the `Till` global; nothing once the window is gone
    /// (a reply or timer that outlived the app).
    fn with<R: Default>(&self, f: impl FnOnce(&Till<'_>) -> R) -> R {
        match self.ui.upgrade() {
            Some(ui) => f(&ui.global::<Till>()),
            None => R::default(),
        }
    }

    fn now(&self) -> Duration {
        self.clock.now()
    }

    fn wire(self: &Rc<Self>, ui: &TillWindow) {
        let t = ui.global::<Till>();
        t.set_version(VERSION.into());
        t.set_terminal_id(self.terminal_id.clone().into());
        t.set_simulator(self.simulator);
        t.set_sim_codes(ModelRc::new(VecModel::from(
            worker::sim_code_names()
                .into_iter()
                .map(SharedString::from)
                .collect::<Vec<_>>(),
        )));
        t.set_sim_cards(ModelRc::new(VecModel::from(
            worker::sim_card_names()
                .into_iter()
                .map(SharedString::from)
                .collect::<Vec<_>>(),
        )));
        self.apply_settings(&self.settings.borrow());
        self.show_operators();
        macro_rules! on {
            ($setter:ident, |$c:ident $(, $arg:ident)*| $body:expr) => {{
                let weak = Rc::downgrade(self);
                t.$setter(move |$($arg),*| {
                    if let Some($c) = weak.upgrade() {
                        $body
                    }
                });
            }};
        }
        on!(on_key, |c, k| c.on_key(&k));
        on!(on_go, |c, s| c.go(s));
        on!(on_start, |c, k| c.start(k));
        on!(on_edit, |c, field| c.edit(field));
        on!(on_choose_operator, |c, name| c.choose_operator(&name));
        on!(on_login, |c| c.login());
        on!(on_logout, |c| c.logout());
        on!(on_continue_boot, |c| c.set_screen(Screen::Login));
        on!(on_sign_in, |c| c.sign_in());
        on!(on_choose_card_method, |c| c.to_tap());
        on!(on_choose_qr_method, |c| c.to_scan());
        on!(on_present_sim_code, |c, name| c
            .read_scan(Some(name.to_string())));
        on!(on_present_sim_card, |c, name| c
            .read_card(Some(name.to_string())));
        on!(on_cancel, |c| c.cancel());
        on!(on_confirm_amount, |c| c.confirm());
        on!(on_approve, |c, name| c.approve(&name));
        on!(on_pick, |c, id| c.pick(id));
        on!(on_search, |c| c.search());
        on!(on_reprint, |c, id| c.reprint(id));
        on!(on_print_again, |c| c.print_again());
        on!(on_merchant_copy, |c| c.merchant_copy());
        on!(on_settle, |c| c.settle());
        on!(on_set_language, |c, lang| c.set_language(&lang));
        on!(on_save_settings, |c| c.save_settings());
        on!(on_add_operator, |c| c.add_operator());
        on!(on_unlock_operator, |c, name| c.unlock_operator(&name));
        on!(on_remove_operator, |c, name| c.remove_operator(&name));
        on!(on_dismiss, |c| c.dismiss());
        on!(on_retry_pin, |c| c.retry_pin());
        on!(on_set_clock, |c| c.set_clock());
        on!(on_change_password, |c| c.change_password());
    }
}

fn status_words(s: EntryStatus) -> (&'static str, &'static str) {
    match s {
        EntryStatus::Sending => ("sending", "发送中"),
        EntryStatus::Approved => ("approved", "成功"),
        EntryStatus::Declined => ("declined", "拒绝"),
        EntryStatus::NotSent => ("not sent", "未发送"),
        EntryStatus::ReversalPending => ("reversal pending", "待冲正"),
        EntryStatus::Reversed => ("reversed", "已冲正"),
        EntryStatus::OfflineApproved => ("approved offline", "脱机批准"),
        EntryStatus::AdviceRejected => ("refused by host", "主机拒绝"),
        EntryStatus::Voided => ("voided", "已撤销"),
        EntryStatus::Completed => ("completed", "已完成"),
        EntryStatus::RepeatPending => ("confirmation pending", "待确认"),
    }
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The notice for an engine error (MISSION §7), with its arguments.
fn notice_for(e: &EngineError) -> (NoticeKind, String, String) {
    let none = || (String::new(), String::new());
    let (kind, (a, b)) = match e {
        EngineError::NotSignedIn { .. } => (NoticeKind::NotSignedIn, none()),
        EngineError::SignInRefused { code, .. } => {
            (NoticeKind::SignInRefused, (code.clone(), String::new()))
        }
        EngineError::OverTransactionLimit { amount, limit } => (
            NoticeKind::OverTransactionLimit,
            (amount.clone(), limit.clone()),
        ),
        EngineError::OverDailyLimit { total, limit } => {
            (NoticeKind::OverDailyLimit, (total.clone(), limit.clone()))
        }
        EngineError::OriginalNotFound { .. } => (NoticeKind::OriginalNotFound, none()),
        EngineError::OriginalNotUsable { .. } => (NoticeKind::OriginalNotUsable, none()),
        EngineError::AmountMismatch(_) => (NoticeKind::AmountMismatch, none()),
        EngineError::HostUnreachable(_) => (NoticeKind::HostUnreachable, none()),
        EngineError::OfflineRefused { .. } => (NoticeKind::OfflineRefused, none()),
        EngineError::NoAnswer(_) => (NoticeKind::NoAnswer, none()),
        EngineError::PendingNotCleared { count, .. } => (
            NoticeKind::PendingNotCleared,
            (count.to_string(), String::new()),
        ),
        EngineError::Settlement(_) => (NoticeKind::SettlementFailed, none()),
        EngineError::Card(_) => (NoticeKind::CardUnreadable, none()),
        EngineError::Store(_) => (NoticeKind::JournalFailed, none()),
        _ => (NoticeKind::Internal, none()),
    };
    (kind, a, b)
}

/// Where an entry's amount is shown: "CNY 12.34".
fn money(settings: &Settings, minor: u64) -> String {
    let c = settings.currency();
    format!("{} {}", c.alpha, Amount(minor).display(c))
}

impl Controller {
    fn set_screen(&self, s: Screen) {
        self.with(|t| t.set_screen(s));
    }

    fn screen(&self) -> Screen {
        self.with(|t| t.get_screen())
    }

    fn operator_name(&self) -> String {
        self.state
            .borrow()
            .operator
            .as_ref()
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    }

    fn role(&self) -> Option<OpRole> {
        self.state.borrow().operator.as_ref().map(|(_, r)| *r)
    }

    fn apply_settings(&self, s: &Settings) {
        self.takes_qr.set(None);
        self.with(|t| {
            t.set_merchant(s.merchant_name.clone().into());
            t.set_merchant_id(s.merchant_id.clone().into());
            t.set_host(s.host.clone().into());
            t.set_currency(s.currency().alpha.into());
            t.set_limit_transaction(s.per_transaction.clone().into());
            t.set_limit_daily(s.daily_limit.clone().into());
            t.set_limit_confirm(s.confirm_above.clone().into());
            t.set_offline_floor(s.offline_floor.clone().into());
            t.set_lang(s.language.clone().into());
        });
        if let Err(e) = slint::select_bundled_translation(&s.language) {
            tracing::warn!(language = %s.language, error = %e, "no such translation");
        }
    }

    fn tick(&self) {
        // The banner follows the forwarder: ask for the queue now and then.
        let ticks = {
            let mut st = self.state.borrow_mut();
            st.ticks += 1;
            st.ticks
        };
        if ticks % 20 == 0 {
            self.worker.send(Job::Status);
        }
        let clock = chrono::Local::now().format("%Y-%m-%d %H:%M").to_string();
        let now = self.now();
        let st = self.state.borrow();
        let waited = now.saturating_sub(st.since).as_secs();
        let timeout = self.settings.borrow().host_timeout_seconds.max(1);
        let left = st
            .waiting_until
            .map(|until| until.saturating_sub(now).as_secs_f64().ceil() as i32);
        drop(st);
        self.with(|t| {
            t.set_clock(clock.into());
            if t.get_busy() {
                t.set_waited_seconds(waited as i32);
                t.set_progress((waited as f32 / timeout as f32).min(0.95));
            }
            if let Some(left) = left {
                t.set_tap_seconds_left(left.max(0));
            }
        });
    }

    fn notice(&self, kind: NoticeKind, a: &str, b: &str) {
        self.deadline.stop();
        self.state.borrow_mut().waiting_until = None;
        self.with(|t| {
            t.set_busy(false);
            t.set_notice(kind);
            t.set_notice_arg(a.into());
            t.set_notice_arg2(b.into());
            t.set_screen(Screen::Notice);
        });
        self.end_flow();
    }

    /// The notice for an engine error; `otherwise` where the error has no
    /// screen of its own.
    fn engine_notice(&self, e: &EngineError, otherwise: NoticeKind) {
        let (k, a, b) = notice_for(e);
        let k = if k == NoticeKind::Internal {
            otherwise
        } else {
            k
        };
        self.notice(k, &a, &b);
    }

    fn end_flow(&self) {
        let mut st = self.state.borrow_mut();
        st.flow = None;
        st.sent = None;
        if let Some(mut p) = st.pin.take() {
            // Cancel zeroizes what was typed.
            let _ = p.feed(Key::A);
        }
        st.waiting_until = None;
    }

    fn home(&self) {
        self.end_flow();
        self.deadline.stop();
        let logged_in = self.state.borrow().operator.is_some();
        self.with(|t| {
            t.set_busy(false);
            t.set_login_tries_left(0);
            t.set_screen(if logged_in {
                Screen::Home
            } else {
                Screen::Login
            });
        });
    }

    // ------------------------------------------------------------ callbacks

    /// A key from the hardware keypad.
    pub fn keypad(&self, key: Key) {
        if !self.editing()
            && let Key::Digit(_) = key
            && let Some(field) = self.keypad_field()
        {
            self.edit(field);
        }
        if self.editing() {
            return self.keypad_edit(key);
        }
        let k = match key {
            Key::Digit(d) => char::from(b'0' + d.min(9)).to_string(),
            Key::Star if self.screen() == Screen::Amount => ".".into(),
            Key::Star | Key::B => "back".into(),
            Key::Hash | Key::D => "enter".into(),
            Key::A => "cancel".into(),
            Key::C => "clear".into(),
        };
        self.on_key(&k);
    }

    fn on_key(&self, k: &str) {
        if self.editing() {
            return self.edit_key(k);
        }
        match self.screen() {
            Screen::Amount => self.amount_key(k),
            Screen::Pin => self.pin_key(k),
            Screen::Confirm if k == "enter" => self.confirm(),
            Screen::Result | Screen::Notice if k == "enter" => self.dismiss(),
            _ if k == "cancel" => self.cancel(),
            _ => {}
        }
    }

    fn amount_key(&self, k: &str) {
        let exponent = usize::from(self.settings.borrow().currency().exponent);
        let mut st = self.state.borrow_mut();
        let Some(flow) = st.flow.as_mut() else { return };
        let e = &mut flow.entry;
        let decimals = e.find('.').map(|i| e.len() - i - 1);
        let integer_digits = e.split('.').next().map_or(0, str::len);
        match k {
            "enter" => {
                let currency = self.settings.borrow().currency();
                let amount = Amount::parse(if e.is_empty() { "0" } else { e }, currency);
                match amount {
                    Ok(a) if a.0 > 0 => {
                        flow.amount = Some(a);
                        drop(st);
                        self.advance();
                    }
                    _ => {}
                }
                return;
            }
            "cancel" => {
                drop(st);
                self.cancel();
                return;
            }
            "back" => {
                e.pop();
            }
            "clear" => e.clear(),
            "." if exponent > 0 && decimals.is_none() => {
                if e.is_empty() {
                    e.push('0');
                }
                e.push('.');
            }
            d if !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()) => {
                for c in d.chars() {
                    let dec = e.find('.').map(|i| e.len() - i - 1);
                    match dec {
                        Some(n) if n >= exponent => break,
                        None if integer_digits >= 9 => break,
                        None if e == "0" => {
                            e.clear();
                            e.push(c);
                        }
                        _ => e.push(c),
                    }
                }
            }
            _ => {}
        }
        let text = e.clone();
        drop(st);
        self.with(|t| t.set_amount_entry(text.into()));
    }

    fn pin_key(&self, k: &str) {
        let mut st = self.state.borrow_mut();
        let Some(entry) = st.pin.as_mut() else { return };
        if k == "enter" && entry.is_empty() {
            // No PIN: the card's holder has none (the host decides).
            st.pin = None;
            if let Some(f) = st.flow.as_mut() {
                f.pin = None;
            }
            drop(st);
            self.pin_done();
            return;
        }
        let key = match k {
            "enter" => Key::D,
            "back" => Key::B,
            "clear" => Key::C,
            "cancel" => Key::A,
            d if d.len() == 1 && d.as_bytes()[0].is_ascii_digit() => {
                Key::Digit(d.as_bytes()[0] - b'0')
            }
            _ => return,
        };
        let event = entry.feed(key);
        let count = entry.len();
        match event {
            Some(PinUiEvent::Enter) => {
                let taken = entry.take_pin();
                st.pin = None;
                let pin = taken.and_then(|p| Pin::new(p.expose()).ok());
                if let Some(f) = st.flow.as_mut() {
                    f.pin = pin;
                }
                drop(st);
                self.pin_done();
            }
            Some(PinUiEvent::Cancel) => {
                drop(st);
                self.notice(NoticeKind::PinCancelled, "", "");
            }
            Some(PinUiEvent::TooShort { .. }) => {
                drop(st);
                self.with(|t| t.set_pin_too_short(true));
            }
            _ => {
                drop(st);
                self.with(|t| {
                    t.set_pin_length(count as i32);
                    t.set_pin_too_short(false);
                });
            }
        }
    }

    fn pin_done(&self) {
        self.deadline.stop();
        if let Some(f) = self.state.borrow_mut().flow.as_mut() {
            f.pin_done = true;
        }
        self.advance();
    }

    fn go(&self, s: Screen) {
        let admin = self.role() == Some(OpRole::Administrator);
        match s {
            Screen::Settle | Screen::Settings | Screen::Operators if !admin => {
                self.notice(NoticeKind::NotPermitted, "", "");
            }
            Screen::History => {
                self.state.borrow_mut().list_use = Some(ListUse::Browse);
                self.clear_fields(&[Field::HistorySearch]);
                self.with(|t| {
                    t.set_history(ModelRc::new(VecModel::from(Vec::new())));
                    t.set_screen(Screen::History);
                });
                self.worker.send(Job::History);
            }
            Screen::Settle => {
                self.with(|t| {
                    t.set_settled(false);
                    t.set_screen(Screen::Settle);
                });
                self.worker.send(Job::Status);
            }
            Screen::Status => {
                self.set_screen(Screen::Status);
                self.worker.send(Job::SelfTest);
                self.worker.send(Job::Status);
            }
            Screen::Operators => {
                self.show_operators();
                self.clear_operator_form();
                self.with(|t| {
                    t.set_operators_message("".into());
                    t.set_screen(Screen::Operators);
                });
            }
            Screen::Settings => {
                self.apply_settings(&self.settings.borrow().clone());
                self.fill_settings_form();
                self.with(|t| {
                    t.set_settings_message("".into());
                    t.set_screen(Screen::Settings);
                });
            }
            other => self.set_screen(other),
        }
    }

    fn start(&self, kind: TxnType) {
        if self.state.borrow().operator.is_none() {
            return self.set_screen(Screen::Login);
        }
        if !self.state.borrow().status.signed_in {
            return self.notice(NoticeKind::NotSignedIn, "", "");
        }
        self.state.borrow_mut().flow = Some(Flow::new(kind));
        self.with(|t| {
            t.set_txn(kind);
            t.set_amount("".into());
            t.set_amount_entry("".into());
            t.set_card("".into());
            t.set_card_label("".into());
            t.set_original_rrn("".into());
            t.set_login_tries_left(0);
            t.set_pin_retry(false);
        });
        self.advance();
    }

    /// Shows the next step the flow needs, or sends it.
    fn advance(&self) {
        let st = self.state.borrow();
        let Some(f) = st.flow.as_ref() else { return };
        let cashier = st.operator.as_ref().is_some_and(|(_, r)| !r.approves());
        let confirm_above = self.settings.borrow().limits().confirm_above;
        let next = if f.needs_supervisor() && cashier && f.approved_by.is_none() {
            Screen::Supervisor
        } else if f.needs_original() && f.original.is_none() {
            Screen::Pick
        } else if f.needs_amount() && f.amount.is_none() {
            Screen::Amount
        } else if f.kind == TxnType::Sale && !f.method_chosen {
            Screen::Method
        } else if f.qr && f.code.is_none() {
            Screen::Scan
        } else if f.needs_card() && !f.qr && f.card.is_none() {
            Screen::Tap
        } else if f.needs_card() && !f.qr && !f.pin_done {
            Screen::Pin
        } else if f.kind != TxnType::Balance
            && (f.confirmations == 0
                || (f.confirmations == 1
                    && confirm_above.is_some_and(|c| f.amount.is_some_and(|a| a.0 > c.0))))
        {
            // Once, and a second time above the large-amount limit.
            Screen::Confirm
        } else {
            drop(st);
            return self.submit();
        };
        let second = f.confirmations == 1;
        let amount = f
            .amount
            .map(|a| money(&self.settings.borrow(), a.0))
            .unwrap_or_default();
        let rrn = f
            .original
            .as_ref()
            .and_then(|o| o.rrn.clone())
            .unwrap_or_default();
        drop(st);
        match next {
            Screen::Pick => {
                self.state.borrow_mut().list_use = Some(ListUse::Pick);
                self.with(|t| t.set_history(ModelRc::new(VecModel::from(Vec::new()))));
                self.worker.send(Job::History);
            }
            Screen::Tap => return self.to_tap(),
            Screen::Scan => return self.to_scan(),
            Screen::Supervisor => {
                self.clear_fields(&[Field::SupervisorPassword]);
                self.with(|t| t.set_login_name("".into()));
            }
            Screen::Pin => {
                self.state.borrow_mut().pin = Some(PinEntry::new(PinPolicy::default()));
                let c = self.weak();
                self.deadline.start(
                    slint::TimerMode::SingleShot,
                    Duration::from_secs(60),
                    move || {
                        if let Some(c) = c.upgrade() {
                            c.notice(NoticeKind::PinTimeout, "", "");
                        }
                    },
                );
            }
            _ => {}
        }
        self.with(|t| {
            t.set_amount(amount.into());
            t.set_original_rrn(rrn.into());
            t.set_second_confirmation(second);
            t.set_pin_length(0);
            t.set_pin_too_short(false);
            t.set_screen(next);
        });
    }

    fn weak(&self) -> std::rc::Weak<Controller> {
        self.me.clone()
    }

    fn to_tap(&self) {
        let amount = match self.state.borrow_mut().flow.as_mut() {
            Some(f) => {
                f.method_chosen = true;
                f.amount.unwrap_or(Amount(0))
            }
            None => Amount(0),
        };
        if !self.simulator {
            self.worker.send(Job::ReadCard {
                virtual_card: None,
                amount,
            });
        }
        self.wait_at(Screen::Tap, NoticeKind::TapTimeout);
    }

    /// Waits for the customer's payment code at the scanner, with the
    /// card wait's timeout and cancel.
    fn to_scan(&self) {
        if !self.takes_qr() {
            return self.notice(NoticeKind::QrNotEnabled, "", "");
        }
        if let Some(f) = self.state.borrow_mut().flow.as_mut() {
            f.method_chosen = true;
            f.qr = true;
            f.code = None;
        }
        if !self.simulator {
            self.worker.send(Job::ReadScan { sim_code: None });
        }
        self.with(|t| t.set_scan_problem("".into()));
        self.wait_at(Screen::Scan, NoticeKind::ScanTimeout);
    }

    /// Shows the tap or scan `screen` with the card wait's countdown; when
    /// it runs out the reader or scanner stops and `timeout` is shown.
    fn wait_at(&self, screen: Screen, timeout: NoticeKind) {
        let wait = self.settings.borrow().card_wait();
        self.state.borrow_mut().waiting_until = Some(self.now() + wait);
        let c = self.weak();
        self.deadline
            .start(slint::TimerMode::SingleShot, wait, move || {
                if let Some(c) = c.upgrade() {
                    c.worker.cancel_card();
                    c.notice(timeout, "", "");
                }
            });
        self.with(|t| {
            t.set_tap_seconds_left(wait.as_secs() as i32);
            t.set_screen(screen);
        });
    }

    /// The card or code came: the countdown stops.
    fn end_wait(&self) {
        self.deadline.stop();
        self.state.borrow_mut().waiting_until = None;
    }

    /// The card or payment code came: `keep` puts it in the flow, the
    /// screens show it `masked` under `label`, and the flow goes on.
    fn paying_with(&self, masked: String, label: String, keep: impl FnOnce(&mut Flow)) {
        if let Some(f) = self.state.borrow_mut().flow.as_mut() {
            keep(f);
        }
        self.with(|t| {
            t.set_card(masked.into());
            t.set_card_label(label.into());
        });
        self.advance();
    }

    /// Whether the host's dialect carries payment codes: read from the
    /// dialect at the first QR payment, again after the settings change.
    fn takes_qr(&self) -> bool {
        if let Some(known) = self.takes_qr.get() {
            return known;
        }
        let takes = till_pay::iso8583::Dialect::load(&self.settings.borrow().dialect)
            .is_ok_and(|d| d.profile.element("payment_code").is_some());
        self.takes_qr.set(Some(takes));
        takes
    }

    fn read_scan(&self, sim_code: Option<String>) {
        if self.screen() != Screen::Scan {
            return;
        }
        self.worker.send(Job::ReadScan { sim_code });
    }

    fn read_card(&self, virtual_card: Option<String>) {
        if self.screen() != Screen::Tap {
            return;
        }
        let amount = self
            .state
            .borrow()
            .flow
            .as_ref()
            .and_then(|f| f.amount)
            .unwrap_or(Amount(0));
        self.worker.send(Job::ReadCard {
            virtual_card,
            amount,
        });
        self.with(|t| {
            t.set_progress_step("reading".into());
        });
    }

    fn cancel(&self) {
        match self.screen() {
            Screen::Tap | Screen::Scan => {
                self.worker.cancel_card();
                self.home();
            }
            Screen::Pin => self.notice(NoticeKind::PinCancelled, "", ""),
            _ => self.home(),
        }
    }

    fn confirm(&self) {
        if let Some(f) = self.state.borrow_mut().flow.as_mut() {
            f.confirmations += 1;
        }
        self.advance();
    }

    fn submit(&self) {
        let Some(mut f) = self.state.borrow_mut().flow.take() else {
            return;
        };
        let mut req = TxnRequest::new(engine_kind(f.kind));
        req.amount = f.amount;
        req.card = f.card.as_deref().map(CardInput::contactless);
        req.payment_code = f.code.take();
        req.pin = f.pin.take();
        req.original_rrn = f.original.as_ref().and_then(|o| o.rrn.clone());
        req.confirmed = f.confirmations >= 2;
        let now = self.now();
        {
            let mut st = self.state.borrow_mut();
            st.since = now;
            // The card read is spent (its cryptogram went to the host); what
            // a retry keeps is the amount, the method and the confirmations.
            f.card = None;
            f.pin_done = false;
            st.sent = Some(f);
        }
        self.with(|t| {
            t.set_busy(true);
            t.set_progress(0.0);
            t.set_waited_seconds(0);
            t.set_progress_step("host".into());
            t.set_screen(Screen::Processing);
        });
        self.worker.send(Job::Txn(Box::new(req)));
    }

    fn sign_in(&self) {
        self.state.borrow_mut().since = self.now();
        self.with(|t| {
            t.set_busy(true);
            t.set_progress(0.0);
            t.set_waited_seconds(0);
            t.set_screen(Screen::Signin);
        });
        self.worker.send(Job::SignIn);
    }

    fn pick(&self, id: i32) {
        let st = self.state.borrow();
        let Some(e) = st
            .entries
            .iter()
            .find(|e| e.id as i64 == i64::from(id))
            .cloned()
        else {
            return;
        };
        drop(st);
        let prefill = e.amount.map(|a| {
            Amount(a)
                .display(self.settings.borrow().currency())
                .to_string()
        });
        if let Some(f) = self.state.borrow_mut().flow.as_mut() {
            if matches!(f.kind, TxnType::Refund | TxnType::Completion) {
                f.entry = prefill.clone().unwrap_or_default();
            } else {
                f.amount = e.amount.map(Amount);
            }
            f.original = Some(e);
        }
        if let Some(p) = prefill {
            self.with(|t| t.set_amount_entry(p.into()));
        }
        self.advance();
    }

    fn search(&self) {
        self.show_entries();
    }

    fn show_entries(&self) {
        let st = self.state.borrow();
        let settings = self.settings.borrow();
        let filter = self.field(Field::HistorySearch).trim().to_string();
        let currency = settings.currency();
        let amount_filter = Amount::parse(&filter, currency).ok();
        let rows: Vec<TxnRow> = st
            .entries
            .iter()
            .filter(|e| match st.list_use {
                Some(ListUse::Pick) => st.flow.as_ref().is_some_and(|f| f.accepts(e)),
                _ => {
                    filter.is_empty()
                        || (filter.len() == 10 && e.at.starts_with(&filter))
                        || (filter.len() == 4
                            && filter.chars().all(|c| c.is_ascii_digit())
                            && e.pan_masked
                                .as_deref()
                                .is_some_and(|p| p.ends_with(&filter)))
                        || (filter.contains('.')
                            && amount_filter.is_some_and(|a| e.amount == Some(a.0)))
                }
            })
            .take(200)
            .map(|e| {
                let (en, zh) = status_words(e.status);
                TxnRow {
                    id: e.id as i32,
                    when: e
                        .at
                        .replace('T', " ")
                        .chars()
                        .take(16)
                        .collect::<String>()
                        .into(),
                    r#type: txn_type(e.kind),
                    amount: e
                        .amount
                        .map(|a| money(&settings, a))
                        .unwrap_or_default()
                        .into(),
                    card: e.pan_masked.clone().unwrap_or_default().into(),
                    rrn: e.rrn.clone().unwrap_or_default().into(),
                    status_en: en.into(),
                    status_zh: zh.into(),
                    usable: matches!(st.list_use, Some(ListUse::Browse)) && e.rrn.is_some()
                        || st.flow.as_ref().is_some_and(|f| f.accepts(e)),
                }
            })
            .collect();
        drop(settings);
        drop(st);
        self.with(|t| t.set_history(ModelRc::new(VecModel::from(rows))));
    }

    fn reprint(&self, id: i32) {
        let st = self.state.borrow();
        let entry = if id < 0 {
            st.entries.iter().find(|e| e.rrn.is_some())
        } else {
            st.entries.iter().find(|e| e.id as i64 == i64::from(id))
        };
        let Some(e) = entry else { return };
        let receipt = receipts::for_entry(e, &self.settings.borrow(), &self.terminal_id);
        drop(st);
        self.with(|t| t.set_printing(true));
        self.worker.send(Job::Print(vec![receipt]));
    }

    fn print_again(&self) {
        self.with(|t| {
            t.set_printing(true);
            t.set_print_failed(false);
        });
        self.worker.send(Job::PrintPending);
    }

    fn merchant_copy(&self) {
        let Some(r) = self.state.borrow_mut().merchant_copy.take() else {
            return;
        };
        self.with(|t| {
            t.set_printing(true);
            t.set_merchant_copy_done(true);
        });
        self.worker.send(Job::Print(vec![r]));
    }

    fn settle(&self) {
        if self.role() != Some(OpRole::Administrator) {
            return self.notice(NoticeKind::NotPermitted, "", "");
        }
        self.state.borrow_mut().since = self.now();
        self.with(|t| {
            t.set_busy(true);
            t.set_txn(TxnType::Sale);
            t.set_amount("".into());
            t.set_progress_step("settling".into());
            t.set_screen(Screen::Processing);
        });
        self.worker.send(Job::Settle);
    }

    fn dismiss(&self) {
        self.with(|t| {
            t.set_print_failed(false);
            t.set_printed(false);
            t.set_settled(false);
        });
        self.home();
    }

    // ------------------------------------------------------------ replies

    fn on_reply(&self, reply: Reply) {
        match reply {
            Reply::SelfTest(report) => {
                let rows: Vec<Device> = report
                    .devices
                    .iter()
                    .map(|d| Device {
                        name: d.device.into(),
                        ok: d.outcome != Outcome::Failed,
                        detail: d.detail.clone().into(),
                    })
                    .collect();
                self.with(|t| {
                    t.set_devices(ModelRc::new(VecModel::from(rows)));
                    t.set_boot_ok(report.ok);
                    t.set_boot_done(true);
                });
            }
            Reply::Status(s) => {
                let settings = self.settings.borrow().clone();
                self.with(|t| {
                    t.set_signed_in(s.signed_in);
                    t.set_batch(s.batch.clone().into());
                    t.set_queue_depth(s.queue.depth as i32);
                    t.set_offline(s.offline);
                    t.set_debit_count(s.totals.debit_count as i32);
                    t.set_debit_amount(money(&settings, s.totals.debit_amount).into());
                    t.set_credit_count(s.totals.credit_count as i32);
                    t.set_credit_amount(money(&settings, s.totals.credit_amount).into());
                });
                self.state.borrow_mut().status = s;
            }
            Reply::SignedIn(result) => {
                self.with(|t| t.set_busy(false));
                match result {
                    Ok(o) if o.approved => {
                        self.state.borrow_mut().status.signed_in = true;
                        self.with(|t| {
                            t.set_signed_in(true);
                            t.set_batch(o.batch.clone().into());
                        });
                    }
                    Ok(o) => self.notice(NoticeKind::SignInRefused, &o.response_code, ""),
                    Err(e) => self.engine_notice(&e, NoticeKind::SignInRefused),
                }
            }
            Reply::Card(result) => {
                if self.screen() != Screen::Tap {
                    return; // cancelled or timed out meanwhile
                }
                self.end_wait();
                match result {
                    Ok(read) => {
                        let (masked, label) =
                            (read.pan.masked(), read.label.clone().unwrap_or_default());
                        self.paying_with(masked, label, |f| f.card = Some(read));
                    }
                    Err(CardProblem::Cancelled) => {}
                    Err(CardProblem::Removed) => self.notice(NoticeKind::CardRemoved, "", ""),
                    Err(CardProblem::Unreadable) => self.notice(NoticeKind::CardUnreadable, "", ""),
                }
            }
            Reply::Scan(result) => {
                if self.screen() != Screen::Scan {
                    return; // cancelled or timed out meanwhile
                }
                match result {
                    Ok(code) => {
                        self.end_wait();
                        let (masked, wallet) = (code.masked(), self.wallet_name(code.wallet()));
                        self.paying_with(masked, wallet, |f| f.code = Some(code));
                    }
                    Err(ScanProblem::Cancelled) => {}
                    Err(ScanProblem::NotACode { swipe, why }) => {
                        // Say so and keep waiting for a good code.
                        tracing::info!(reason = %why, "scan is not a payment code");
                        let kind = if swipe { "swipe" } else { "other" };
                        self.with(|t| t.set_scan_problem(kind.into()));
                        if !self.simulator {
                            self.worker.send(Job::ReadScan { sim_code: None });
                        }
                    }
                    Err(ScanProblem::Scanner(detail)) => {
                        self.worker.cancel_card();
                        self.notice(NoticeKind::ScannerFailed, &detail, "");
                    }
                }
            }
            Reply::Txn(result) => match result {
                Ok(o) => self.show_result(o),
                Err(e) => {
                    tracing::info!(error = %e, "transaction not done");
                    self.engine_notice(&e, NoticeKind::Internal);
                }
            },
            Reply::Settled(result) => match result {
                Ok(o) => {
                    let report =
                        receipts::settlement(&o, &self.settings.borrow(), &self.terminal_id);
                    let settings = self.settings.borrow().clone();
                    self.with(|t| {
                        t.set_busy(false);
                        t.set_settled(true);
                        t.set_balanced(o.balanced);
                        t.set_settled_batch(o.batch.clone().into());
                        t.set_batch(o.next_batch.clone().into());
                        t.set_debit_count(o.totals.debit_count as i32);
                        t.set_debit_amount(money(&settings, o.totals.debit_amount).into());
                        t.set_credit_count(o.totals.credit_count as i32);
                        t.set_credit_amount(money(&settings, o.totals.credit_amount).into());
                        t.set_printing(true);
                        t.set_screen(Screen::Settle);
                    });
                    self.worker.send(Job::Print(vec![report]));
                }
                Err(e) => self.engine_notice(&e, NoticeKind::SettlementFailed),
            },
            Reply::Printed(result) => {
                let failed = result.as_ref().err().map(|p| p.kind);
                if let Err(p) = &result {
                    tracing::warn!(problem = %p.detail, "receipt not printed");
                }
                self.with(|t| {
                    t.set_printing(false);
                    t.set_printed(failed.is_none());
                    t.set_print_failed(failed.is_some());
                    t.set_print_problem(failed.unwrap_or("").into());
                });
                if failed.is_some() && !matches!(self.screen(), Screen::Result) {
                    self.notice(NoticeKind::PrinterFailed, "", "");
                }
            }
            Reply::History(entries) => {
                let picking = self.state.borrow().list_use == Some(ListUse::Pick);
                self.state.borrow_mut().entries = entries;
                self.show_entries();
                if picking && self.state.borrow().flow.is_some() {
                    self.set_screen(Screen::Pick);
                }
            }
            Reply::Broken(e) => {
                tracing::error!(error = %e, "payment engine");
                self.notice(NoticeKind::EngineBroken, "", "");
            }
        }
    }

    /// After a wrong-PIN decline: the same transaction again with a fresh
    /// card read (a contactless card's cryptogram is good for one request)
    /// and a new PIN; the amount stays confirmed.
    fn retry_pin(&self) {
        let Some(f) = self.state.borrow_mut().sent.take() else {
            return self.home();
        };
        self.state.borrow_mut().flow = Some(f);
        self.with(|t| {
            t.set_card("".into());
            t.set_card_label("".into());
            t.set_pin_retry(true);
        });
        self.advance();
    }

    /// A wallet's name in the screen's language.
    fn wallet_name(&self, w: till_pay::qr::Wallet) -> String {
        if self.settings.borrow().language.starts_with("zh") {
            w.name_zh().into()
        } else {
            w.name().into()
        }
    }

    fn show_result(&self, o: Box<TxnOutcome>) {
        let retry = {
            let mut st = self.state.borrow_mut();
            let retry = o.pin_retry && st.sent.as_ref().is_some_and(Flow::needs_card);
            if !retry {
                st.sent = None;
            }
            retry
        };
        let settings = self.settings.borrow().clone();
        let operator = self.operator_name();
        let printable = o.approved && o.kind != TxnKind::Balance;
        let reversed = o.reversal.is_some()
            || matches!(
                o.status,
                EntryStatus::Reversed | EntryStatus::ReversalPending
            );
        self.with(|t| {
            t.set_busy(false);
            t.set_txn(txn_type(o.kind));
            t.set_approved(o.approved);
            t.set_offline_approved(o.status == EntryStatus::OfflineApproved);
            t.set_reversed(reversed && !o.approved);
            t.set_reason_en(o.message.clone().into());
            t.set_reason_zh(o.message_zh.clone().into());
            t.set_action_en(o.action.clone().unwrap_or_default().into());
            t.set_action_zh(o.action_zh.clone().unwrap_or_default().into());
            t.set_rrn(o.rrn.clone().unwrap_or_default().into());
            t.set_auth_code(o.auth_code.clone().unwrap_or_default().into());
            t.set_balance(
                o.balance
                    .clone()
                    .map(|b| format!("{} {b}", settings.currency().alpha))
                    .unwrap_or_default()
                    .into(),
            );
            t.set_card(o.pan.clone().unwrap_or_default().into());
            t.set_card_label(
                o.wallet
                    .map(|w| self.wallet_name(w))
                    .unwrap_or_default()
                    .into(),
            );
            t.set_amount(
                o.amount
                    .clone()
                    .map(|a| format!("{} {a}", settings.currency().alpha))
                    .unwrap_or_default()
                    .into(),
            );
            t.set_printed(false);
            t.set_print_failed(false);
            t.set_merchant_copy_done(!printable);
            t.set_printing(printable);
            t.set_pin_retry(retry);
            t.set_screen(Screen::Result);
        });
        if printable {
            let customer =
                receipts::for_outcome(&o, &settings, &self.terminal_id, &operator, Copy::Customer);
            let merchant =
                receipts::for_outcome(&o, &settings, &self.terminal_id, &operator, Copy::Merchant);
            self.state.borrow_mut().merchant_copy = Some(merchant);
            self.worker.send(Job::Print(vec![customer]));
        }
    }
}
