//! `tillctl txn`: one flow, headless, against a host; and the terminal
//! set-up `tillctl saf` and `tillctl journal` share.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use till_pay::card::{Expiry, Pan, Track2};
use till_pay::crypto::Pin;
use till_pay::engine::{CardInput, EngineError, Limits, OfflineLimits, TerminalConfig, TxnRequest};
use till_pay::iso8583::TxnKind;
use till_pay::journal::SqliteJournal;
use till_pay::link::TerminalFiles;
use till_pay::link::tls::{load_certs, peer_common_name};
use till_pay::money::{Amount, Currency};

use super::{Done, Failure, read_stdin};
use crate::engine::OpenError;

/// The flows `tillctl txn` runs.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Flow {
    /// Terminal sign-in: fresh working keys, batch number, host clock.
    SignIn,
    /// Purchase.
    Sale,
    /// Balance inquiry.
    Balance,
    /// Pre-authorization.
    Preauth,
    /// Pre-authorization completion (--original = the pre-authorization's RRN).
    Completion,
    /// Void of a sale, completion or pre-authorization of the open batch (--original).
    Void,
    /// Refund of a sale or completion (--original, --amount).
    Refund,
    /// Settlement of the open batch.
    Settle,
    /// Send reversals and advices still owed to the host, once.
    Flush,
}

/// Which terminal: its PKI and journal.
#[derive(Args, Clone)]
pub(crate) struct TerminalArgs {
    /// PKI directory from `tillctl pki init`.
    #[arg(long)]
    pub pki: PathBuf,
    /// Terminal id (default: the CN of PKI/terminal.crt).
    #[arg(long)]
    pub terminal_id: Option<String>,
    /// Where the terminal keeps its journal (default: PKI/terminals/ID/state).
    #[arg(long)]
    pub state: Option<PathBuf>,
}

/// The terminal's identity files, id and journal directory.
pub(crate) struct Identity {
    pub files: TerminalFiles,
    pub terminal_id: String,
    pub state_dir: PathBuf,
}

impl TerminalArgs {
    pub(crate) fn identity(&self) -> Result<Identity, Failure> {
        let files = TerminalFiles::in_dir(&self.pki, self.terminal_id.as_deref())
            .map_err(|e| Failure::new("pki", e.to_string()))?;
        let terminal_id = match &self.terminal_id {
            Some(id) => id.clone(),
            None => load_certs(&files.cert)
                .ok()
                .and_then(|c| peer_common_name(&c))
                .ok_or_else(|| {
                    Failure::new(
                        "pki",
                        format!(
                            "cannot read the terminal id from {}; pass --terminal-id",
                            files.cert.display()
                        ),
                    )
                })?,
        };
        let state_dir = self
            .state
            .clone()
            .unwrap_or_else(|| self.pki.join("terminals").join(&terminal_id).join("state"));
        Ok(Identity {
            files,
            terminal_id,
            state_dir,
        })
    }

    pub(crate) fn open_journal(&self) -> Result<(Identity, SqliteJournal), Failure> {
        let id = self.identity()?;
        let j = SqliteJournal::open(&id.state_dir)
            .map_err(|e| Failure::new("journal", e.to_string()))?;
        Ok((id, j))
    }
}

/// How to reach the host.
#[derive(Args, Clone)]
pub(crate) struct HostArgs {
    /// Acquirer host, HOST:PORT.
    #[arg(long)]
    pub host: String,
    #[command(flatten)]
    pub terminal: TerminalArgs,
    /// Merchant id (field 42).
    #[arg(long, default_value = "123456789012345")]
    pub merchant_id: String,
    /// Dialect: iso87ascii, cup, or a dialect file.
    #[arg(long, default_value = "cup")]
    pub dialect: String,
    /// Currency (code or number).
    #[arg(long, default_value = "CNY")]
    pub currency: String,
    /// Seconds to wait for the host's answer.
    #[arg(long, default_value_t = 45.0)]
    pub timeout: f64,
}

/// The terminal engine over TLS with its journal.
pub(crate) type CliTerminal = crate::engine::Engine;

impl HostArgs {
    pub(crate) fn currency(&self) -> Result<Currency, Failure> {
        Currency::find(&self.currency).ok_or_else(|| {
            Failure::new(
                "usage",
                format!(
                    "unknown currency {:?}; use a code such as CNY or 156",
                    self.currency
                ),
            )
        })
    }

    /// Opens the terminal; `tune` adjusts the configuration first.
    pub(crate) fn open(
        &self,
        tune: impl FnOnce(&mut TerminalConfig) -> Result<(), Failure>,
    ) -> Result<CliTerminal, Failure> {
        let id = self.terminal.identity()?;
        if !self.timeout.is_finite() || self.timeout <= 0.0 {
            return Err(Failure::new(
                "usage",
                "--timeout must be a positive number of seconds",
            ));
        }
        let mut config = TerminalConfig::new(
            &id.terminal_id,
            &self.merchant_id,
            self.currency()?,
            &self.host,
        );
        config.host_timeout = Duration::from_secs_f64(self.timeout);
        tune(&mut config)?;
        crate::engine::open(&self.dialect, &id.files, &id.state_dir, config).map_err(|e| match e {
            OpenError::Dialect(m) => Failure::new("dialect", m),
            OpenError::Pki(m) => Failure::new("pki", m),
            OpenError::Host(m) => Failure::new("usage", m),
            OpenError::Journal(m) => Failure::new("journal", m),
            OpenError::Engine(e) => engine_failure(e),
        })
    }
}

#[derive(Args)]
pub(crate) struct TxnArgs {
    /// The flow to run.
    #[arg(value_enum)]
    flow: Flow,
    #[command(flatten)]
    host: HostArgs,
    /// Amount, e.g. 12.34.
    #[arg(long)]
    amount: Option<String>,
    /// Card number, keyed in.
    #[arg(long, conflicts_with = "track2")]
    card: Option<String>,
    /// Card expiry YYMM, with --card.
    #[arg(long, requires = "card")]
    expiry: Option<String>,
    /// Track 2 data of a swiped card (PAN=YYMM…).
    #[arg(long, conflicts_with = "tap")]
    track2: Option<String>,
    /// Read a contactless card through the reader (its chip data goes in field 55).
    #[arg(long, conflicts_with = "card")]
    tap: bool,
    #[command(flatten)]
    reader: super::card::ReaderArgs,
    /// The customer's PIN. (On a shared machine prefer --pin-stdin.)
    #[arg(long, conflicts_with = "pin_stdin")]
    pin: Option<String>,
    /// Read the PIN from the first line of stdin.
    #[arg(long)]
    pin_stdin: bool,
    /// RRN of the original transaction (void, completion, refund).
    #[arg(long)]
    original: Option<String>,
    /// Second confirmation of a large amount.
    #[arg(long)]
    confirm: bool,
    /// Largest amount of one transaction.
    #[arg(long)]
    max_amount: Option<String>,
    /// Largest total of sales in a day.
    #[arg(long)]
    daily_limit: Option<String>,
    /// Amounts above this need --confirm.
    #[arg(long)]
    confirm_above: Option<String>,
    /// Approve sales up to this amount offline when the host cannot be
    /// reached (store-and-forward); without it nothing is approved offline.
    #[arg(long)]
    offline_floor: Option<String>,
    /// Most that may be approved offline before the host has the advices
    /// (default: 10 × the floor limit).
    #[arg(long, requires = "offline_floor")]
    offline_total: Option<String>,
    /// Most messages that may wait for the host.
    #[arg(long, default_value_t = 1000, requires = "offline_floor")]
    offline_max_queue: usize,
    /// Allow offline approval of sales verified by PIN too.
    #[arg(long, requires = "offline_floor")]
    offline_with_pin: bool,
    /// Days settled batches stay in the journal.
    #[arg(long, default_value_t = 180)]
    retention_days: u32,
}

pub(crate) fn engine_failure(e: EngineError) -> Failure {
    let kind = match &e {
        EngineError::NotSignedIn { .. } => "not_signed_in",
        EngineError::SignInRefused { .. } => "sign_in_refused",
        EngineError::OverTransactionLimit { .. } => "over_transaction_limit",
        EngineError::OverDailyLimit { .. } => "over_daily_limit",
        EngineError::NeedsConfirmation { .. } => "needs_confirmation",
        EngineError::Missing(_) => "missing",
        EngineError::OriginalNotFound { .. } => "original_not_found",
        EngineError::OriginalNotUsable { .. } => "original_not_usable",
        EngineError::AmountMismatch(_) => "amount_mismatch",
        EngineError::HostUnreachable(_) => "host_unreachable",
        EngineError::OfflineRefused { .. } => "offline_refused",
        EngineError::NoAnswer(_) => "no_answer",
        EngineError::PendingNotCleared { .. } => "pending_not_cleared",
        EngineError::Settlement(_) => "settlement",
        EngineError::Card(_) => "card",
        EngineError::Crypto(_) => "crypto",
        EngineError::Security(_) => "security",
        EngineError::Codec(_) => "codec",
        EngineError::Element(_) => "element",
        EngineError::Store(_) => "journal",
        EngineError::Dialect { .. } => "dialect",
    };
    Failure::new(kind, e.to_string())
}

pub(crate) fn amount(
    text: &Option<String>,
    currency: Currency,
    what: &str,
) -> Result<Option<Amount>, Failure> {
    text.as_deref()
        .map(|t| {
            Amount::parse(t, currency).map_err(|e| Failure::new("usage", format!("{what}: {e}")))
        })
        .transpose()
}

/// A runtime for one command.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new("runtime", e.to_string()))
}

pub(crate) fn run(args: TxnArgs) -> Result<Done, Failure> {
    let currency = args.host.currency()?;
    let mut terminal = args.host.open(|config| {
        config.limits = Limits {
            per_transaction: amount(&args.max_amount, currency, "--max-amount")?,
            daily: amount(&args.daily_limit, currency, "--daily-limit")?,
            confirm_above: amount(&args.confirm_above, currency, "--confirm-above")?,
        };
        if let Some(floor) = amount(&args.offline_floor, currency, "--offline-floor")? {
            let total = amount(&args.offline_total, currency, "--offline-total")?
                .unwrap_or(Amount(floor.0.saturating_mul(10)));
            let mut limits = OfflineLimits::new(floor, total);
            limits.max_queue = args.offline_max_queue;
            limits.pin_requires_online = !args.offline_with_pin;
            config.offline = Some(limits);
        }
        config.retention_days = Some(args.retention_days);
        Ok(())
    })?;

    let pin = match (&args.pin, args.pin_stdin) {
        (Some(p), _) => {
            Some(Pin::new(p).map_err(|e| Failure::new("usage", format!("--pin: {e}")))?)
        }
        (None, true) => {
            let line = zeroize::Zeroizing::new(
                read_stdin()?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string(),
            );
            Some(Pin::new(&line).map_err(|e| Failure::new("usage", format!("PIN on stdin: {e}")))?)
        }
        (None, false) => None,
    };
    let card = match (&args.card, &args.track2) {
        (Some(pan), _) => {
            let pan = Pan::new(pan).map_err(|e| Failure::new("card", e.to_string()))?;
            let expiry = args
                .expiry
                .as_deref()
                .map(Expiry::parse_yymm)
                .transpose()
                .map_err(|e| Failure::new("card", e.to_string()))?;
            Some(CardInput::manual(pan, expiry))
        }
        (None, Some(t)) => Some(CardInput::swiped(
            Track2::parse(t).map_err(|e| Failure::new("card", e.to_string()))?,
        )),
        (None, None) => None,
    };
    let amount = amount(&args.amount, currency, "--amount")?;
    let card = if args.tap {
        let read = args.reader.read(amount.unwrap_or(Amount(0)), currency)?;
        Some(CardInput::contactless(&read))
    } else {
        card
    };

    runtime()?.block_on(async move {
        let kind = match args.flow {
            Flow::SignIn => {
                let o = terminal.sign_in().await.map_err(engine_failure)?;
                let mut v = serde_json::to_value(&o).unwrap_or(Value::Null);
                v["kind"] = json!("sign_in");
                return Ok(if o.approved {
                    Done::Json(v)
                } else {
                    Done::Declined(v)
                });
            }
            Flow::Settle => {
                let o = terminal.settle().await.map_err(engine_failure)?;
                let mut v = serde_json::to_value(&o).unwrap_or(Value::Null);
                v["kind"] = json!("settlement");
                return Ok(Done::Json(v));
            }
            Flow::Flush => {
                let reports = terminal.flush_pending().await.map_err(engine_failure)?;
                let queue = terminal.queue_status();
                let v = json!({"kind": "flush", "sent": reports, "queue": queue});
                return Ok(if queue.depth == 0 {
                    Done::Json(v)
                } else {
                    Done::Declined(v)
                });
            }
            Flow::Sale => TxnKind::Sale,
            Flow::Balance => TxnKind::Balance,
            Flow::Preauth => TxnKind::Preauth,
            Flow::Completion => TxnKind::Completion,
            Flow::Void => TxnKind::Void,
            Flow::Refund => TxnKind::Refund,
        };
        let mut req = TxnRequest::new(kind);
        req.amount = amount;
        req.card = card;
        req.pin = pin;
        req.original_rrn = args.original.clone();
        req.confirmed = args.confirm;
        let o = terminal.run(req).await.map_err(engine_failure)?;
        let v = serde_json::to_value(&o).unwrap_or(Value::Null);
        Ok(if o.approved {
            Done::Json(v)
        } else {
            Done::Declined(v)
        })
    })
}
