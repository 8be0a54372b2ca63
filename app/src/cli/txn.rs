//! `tillctl txn`: one flow, headless, against a host.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use till_pay::card::{Expiry, Pan, Track2};
use till_pay::crypto::Pin;
use till_pay::engine::{
    CardInput, EngineError, FileStore, Limits, Terminal, TerminalConfig, TxnRequest,
};
use till_pay::iso8583::spec::FrameFormat;
use till_pay::iso8583::{Dialect, TxnKind};
use till_pay::link::tls::{load_certs, peer_common_name};
use till_pay::link::{Framing, TerminalFiles, TlsLink};
use till_pay::money::{Amount, Currency};

use super::{Done, Failure, read_stdin};

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
    /// Send reversals and repeats still owed to the host.
    Flush,
}

#[derive(Args)]
pub(crate) struct TxnArgs {
    /// The flow to run.
    #[arg(value_enum)]
    flow: Flow,
    /// Acquirer host, HOST:PORT.
    #[arg(long)]
    host: String,
    /// PKI directory from `tillctl pki init`.
    #[arg(long)]
    pki: PathBuf,
    /// Terminal id (default: the CN of DIR/terminal.crt).
    #[arg(long)]
    terminal_id: Option<String>,
    /// Merchant id (field 42).
    #[arg(long, default_value = "123456789012345")]
    merchant_id: String,
    /// Dialect: iso87ascii, cup, or a dialect file.
    #[arg(long, default_value = "cup")]
    dialect: String,
    /// Where the terminal keeps its journal (default: PKI/terminals/ID/state).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Currency (code or number).
    #[arg(long, default_value = "CNY")]
    currency: String,
    /// Seconds to wait for the host's answer.
    #[arg(long, default_value_t = 45.0)]
    timeout: f64,
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
    #[arg(long)]
    track2: Option<String>,
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
}

fn engine_failure(e: EngineError) -> Failure {
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

fn amount(
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

pub(crate) fn run(args: TxnArgs) -> Result<Done, Failure> {
    let dialect =
        Dialect::load(&args.dialect).map_err(|e| Failure::new("dialect", e.to_string()))?;
    let currency = Currency::find(&args.currency).ok_or_else(|| {
        Failure::new(
            "usage",
            format!(
                "unknown currency {:?}; use a code such as CNY or 156",
                args.currency
            ),
        )
    })?;
    let files = TerminalFiles::in_dir(&args.pki, args.terminal_id.as_deref())
        .map_err(|e| Failure::new("pki", e.to_string()))?;
    let terminal_id = match &args.terminal_id {
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
    let tls = files
        .client_config()
        .map_err(|e| Failure::new("pki", e.to_string()))?;
    let tmk = files
        .read_tmk()
        .map_err(|e| Failure::new("pki", e.to_string()))?;
    let data_key = files
        .read_datakey()
        .map_err(|e| Failure::new("pki", e.to_string()))?;
    let framing = match dialect.framing {
        FrameFormat::U16be => Framing::U16Be,
        FrameFormat::Ascii4 => Framing::Ascii4,
    };
    let link = TlsLink::new(args.host.clone(), tls, framing)
        .map_err(|e| Failure::new("usage", e.to_string()))?;
    let state_dir = args
        .state
        .clone()
        .unwrap_or_else(|| args.pki.join("terminals").join(&terminal_id).join("state"));
    let store =
        FileStore::in_dir(&state_dir).map_err(|e| Failure::new("journal", e.to_string()))?;
    if !args.timeout.is_finite() || args.timeout <= 0.0 {
        return Err(Failure::new(
            "usage",
            "--timeout must be a positive number of seconds",
        ));
    }
    let mut config = TerminalConfig::new(&terminal_id, &args.merchant_id, currency, &args.host);
    config.host_timeout = Duration::from_secs_f64(args.timeout);
    config.limits = Limits {
        per_transaction: amount(&args.max_amount, currency, "--max-amount")?,
        daily: amount(&args.daily_limit, currency, "--daily-limit")?,
        confirm_above: amount(&args.confirm_above, currency, "--confirm-above")?,
    };
    let mut terminal =
        Terminal::new(dialect, config, link, store, &tmk, &data_key).map_err(engine_failure)?;

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

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new("runtime", e.to_string()))?;
    runtime.block_on(async move {
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
                let owed = terminal.state().pending.len();
                let v = json!({"kind": "flush", "sent": reports, "still_owed": owed});
                return Ok(if owed == 0 {
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
