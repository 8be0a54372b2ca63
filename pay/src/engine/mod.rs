//! Transaction flows against an acquirer host: sign-in, sale, balance
//! inquiry, pre-authorization with completion and void, void, refund,
//! reversal and settlement with batch upload.
//!
//! [`Terminal`] runs one flow at a time over a [`HostLink`](crate::link::HostLink)
//! (one transaction in flight), journals every step in its
//! [`StateStore`](state::StateStore) before the request leaves (write-ahead)
//! and after the answer, and reverses any reversible request whose answer
//! does not come or does not verify. The wire contract is
//! `docs/host-protocol.md`; which field carries what is the dialect's.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::card::{CardError, Expiry, Pan, Track2};
use crate::crypto::{CryptoError, Pin};
use crate::iso8583::{CodecError, ElementError, TxnKind};
use crate::link::LinkError;
use crate::money::{Amount, Currency};
use crate::qr::{PaymentCode, Wallet};
use crate::security::SecurityError;

pub mod forwarder;
pub mod state;
mod terminal;

pub use state::{Entry, MemoryStore, StateStore, Status, StoreError, TerminalState};
pub use terminal::Terminal;

/// Terminal-side limits (MISSION §8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest amount of a single sale, pre-authorization, completion or refund.
    pub per_transaction: Option<Amount>,
    /// Largest total of approved sales and completions in one day.
    pub daily: Option<Amount>,
    /// Amounts above this need a second confirmation by the operator.
    pub confirm_above: Option<Amount>,
}

/// How the terminal is set up.
#[derive(Debug, Clone)]
pub struct TerminalConfig {
    /// Terminal id (field 41), as in the terminal certificate.
    pub terminal_id: String,
    /// Merchant id (field 42).
    pub merchant_id: String,
    /// Currency of amounts.
    pub currency: Currency,
    /// The host's address, as the session records it.
    pub host: String,
    /// How long to wait for an answer (default 45 s).
    pub host_timeout: Duration,
    /// Reversal/repeat attempts per run before giving up until the next
    /// transaction (default 3).
    pub pending_attempts: u32,
    /// Terminal-side limits.
    pub limits: Limits,
    /// Store-and-forward: when and how far sales may be approved offline;
    /// `None` never approves offline.
    pub offline: Option<OfflineLimits>,
    /// Days settled batches stay in the journal (pruned after each
    /// settlement); `None` keeps them for ever.
    pub retention_days: Option<u32>,
}

/// When a sale may be approved without the host (store-and-forward).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineLimits {
    /// Largest sale approved offline.
    pub floor_limit: Amount,
    /// Largest total of offline approvals not yet accepted by the host.
    pub cumulative_limit: Amount,
    /// Most messages waiting for the host (default 1000).
    pub max_queue: usize,
    /// Sales verified by PIN must go online (default yes).
    pub pin_requires_online: bool,
}

impl OfflineLimits {
    /// Offline approvals up to `floor_limit` each and `cumulative_limit` in
    /// all, at most 1000 queued messages, PIN-verified sales online only.
    pub fn new(floor_limit: Amount, cumulative_limit: Amount) -> OfflineLimits {
        OfflineLimits {
            floor_limit,
            cumulative_limit,
            max_queue: 1000,
            pin_requires_online: true,
        }
    }
}

impl TerminalConfig {
    /// A configuration with the defaults: 45 s host timeout, 3 attempts, no
    /// limits, no offline approvals, settled batches kept 180 days.
    pub fn new(
        terminal_id: &str,
        merchant_id: &str,
        currency: Currency,
        host: &str,
    ) -> TerminalConfig {
        TerminalConfig {
            terminal_id: terminal_id.to_string(),
            merchant_id: merchant_id.to_string(),
            currency,
            host: host.to_string(),
            host_timeout: Duration::from_secs(45),
            pending_attempts: 3,
            limits: Limits::default(),
            offline: None,
            retention_days: Some(180),
        }
    }
}

/// How the card was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryMode {
    /// Card number typed in.
    Manual,
    /// Magnetic stripe.
    Swipe,
    /// Contact chip.
    Chip,
    /// Contactless chip.
    Contactless,
    /// A wallet payment code scanned from the customer's phone.
    Scanned,
}

impl EntryMode {
    /// ISO 8583 point of service entry mode: PAN entry (2 digits) and PIN
    /// entry capability (1 = PIN entered, 2 = no PIN).
    pub fn code(self, with_pin: bool) -> String {
        let pan = match self {
            EntryMode::Manual => "01",
            EntryMode::Swipe => "02",
            EntryMode::Chip => "05",
            EntryMode::Contactless => "07",
            EntryMode::Scanned => "03",
        };
        format!("{pan}{}", if with_pin { 1 } else { 2 })
    }
}

/// The card as the terminal read it.
#[derive(Debug, Clone)]
pub struct CardInput {
    /// Card number.
    pub pan: Pan,
    /// Expiry, if known.
    pub expiry: Option<Expiry>,
    /// Track 2 equivalent data, if the card was swiped or read.
    pub track2: Option<Track2>,
    /// How it was presented.
    pub entry: EntryMode,
    /// Chip data for field 55 (the application cryptogram and what it
    /// covers), when read from a chip.
    pub icc_data: Option<Vec<u8>>,
    /// The application's PAN sequence number (field 23), from a chip.
    pub pan_sequence: Option<u8>,
}

impl CardInput {
    /// A card number typed in by hand.
    pub fn manual(pan: Pan, expiry: Option<Expiry>) -> CardInput {
        CardInput {
            pan,
            expiry,
            track2: None,
            entry: EntryMode::Manual,
            icc_data: None,
            pan_sequence: None,
        }
    }

    /// A swiped card.
    pub fn swiped(track2: Track2) -> CardInput {
        CardInput {
            pan: track2.pan(),
            expiry: Some(track2.expiry()),
            track2: Some(track2),
            entry: EntryMode::Swipe,
            icc_data: None,
            pan_sequence: None,
        }
    }

    /// A contactless chip as the EMV kernel read it.
    pub fn contactless(read: &crate::emv::CardRead) -> CardInput {
        CardInput {
            pan: read.pan.clone(),
            expiry: Some(read.expiry),
            track2: read.track2.clone(),
            entry: EntryMode::Contactless,
            icc_data: Some(read.icc_data.clone()),
            pan_sequence: read.pan_sequence,
        }
    }
}

/// A transaction to run. For `Void`, the engine picks void, pre-authorization
/// void or completion void from the original.
#[derive(Debug)]
pub struct TxnRequest {
    /// Sale, balance, preauth, completion, void or refund.
    pub kind: TxnKind,
    /// Amount, where the kind has one.
    pub amount: Option<Amount>,
    /// The card, where needed (voids and completions can use the original's).
    pub card: Option<CardInput>,
    /// A wallet payment code scanned from the customer's phone, in place of
    /// a card (sales only; voids and refunds of such a sale go by its RRN).
    pub payment_code: Option<PaymentCode>,
    /// The customer's PIN, if entered.
    pub pin: Option<Pin>,
    /// RRN of the original, for void, completion and refund.
    pub original_rrn: Option<String>,
    /// The operator confirmed a large amount a second time.
    pub confirmed: bool,
}

impl TxnRequest {
    /// A request of this kind with nothing filled in.
    pub fn new(kind: TxnKind) -> TxnRequest {
        TxnRequest {
            kind,
            amount: None,
            card: None,
            payment_code: None,
            pin: None,
            original_rrn: None,
            confirmed: false,
        }
    }
}

/// What happened to a reversal or repeat the flow had to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingReport {
    /// `reversal` or `repeat`.
    pub kind: state::PendingKind,
    /// Why it was needed.
    pub reason: String,
    /// STAN it carries.
    pub stan: String,
    /// MTI last sent.
    pub mti: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Whether the host acknowledged it.
    pub acknowledged: bool,
    /// The host's response code, if it answered.
    pub response_code: Option<String>,
    /// The host could not be reached at all (nothing was sent).
    pub host_unreachable: bool,
}

/// The result of a transaction flow, ready to show, print or emit as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct TxnOutcome {
    /// The kind that ran (e.g. `preauth_void` for a void of a pre-authorization).
    pub kind: TxnKind,
    /// Whether it was approved.
    pub approved: bool,
    /// Journal status.
    pub status: Status,
    /// Host response code, if the host answered.
    pub response_code: Option<String>,
    /// What happened, in English.
    pub message: String,
    /// What happened, in Simplified Chinese.
    pub message_zh: String,
    /// What the operator should do next, if anything.
    pub action: Option<String>,
    /// What the operator should do next, in Simplified Chinese.
    pub action_zh: Option<String>,
    /// The host declined because the PIN was wrong (the dialect's
    /// `incorrect_pin` code): the customer may try again with a new card
    /// read and PIN. Too many wrong PINs is a plain decline.
    pub pin_retry: bool,
    /// STAN of the request.
    pub stan: String,
    /// Batch number.
    pub batch: String,
    /// Retrieval reference number from the host.
    pub rrn: Option<String>,
    /// Authorization code from the host.
    pub auth_code: Option<String>,
    /// Amount with decimals.
    pub amount: Option<String>,
    /// Currency code.
    pub currency: String,
    /// Masked card number, or masked payment code when `wallet` is set.
    pub pan: Option<String>,
    /// The wallet that paid, for a QR code payment (and its void or refund).
    pub wallet: Option<Wallet>,
    /// Available balance, for a balance inquiry.
    pub balance: Option<String>,
    /// RRN of the original, for voids, completions and refunds.
    pub original_rrn: Option<String>,
    /// The reversal or repeat this flow had to send, if any.
    pub reversal: Option<PendingReport>,
    /// Journal id.
    pub journal_id: u64,
}

/// Result of a sign-in.
#[derive(Debug, Clone, Serialize)]
pub struct SignInOutcome {
    /// Whether the terminal is now signed in.
    pub approved: bool,
    /// Host response code.
    pub response_code: String,
    /// What happened.
    pub message: String,
    /// STAN of the request.
    pub stan: String,
    /// Open batch number after the sign-in.
    pub batch: String,
    /// Host date and time as it sent them (`MMDD hhmmss`).
    pub host_time: Option<String>,
    /// Host clock minus terminal clock, in seconds, where it can be told.
    pub clock_skew_seconds: Option<i64>,
    /// Key check value of the new PIN key (hex).
    pub pin_kcv: Option<String>,
    /// Key check value of the new MAC key (hex).
    pub mac_kcv: Option<String>,
    /// Reversals and repeats sent after signing in.
    pub pending_sent: Vec<PendingReport>,
}

/// Totals of a batch as the terminal counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchTotals {
    /// Approved sales, completions and advices not voided or reversed.
    pub debit_count: u32,
    /// Their amount in minor units.
    pub debit_amount: u64,
    /// Approved refunds not reversed.
    pub credit_count: u32,
    /// Their amount in minor units.
    pub credit_amount: u64,
}

/// Result of a settlement.
#[derive(Debug, Clone, Serialize)]
pub struct SettlementOutcome {
    /// The batch that was closed.
    pub batch: String,
    /// The batch now open.
    pub next_batch: String,
    /// Totals sent to the host.
    pub totals: BatchTotals,
    /// Totals with decimals, for the report.
    pub debit_amount: String,
    /// Credits with decimals.
    pub credit_amount: String,
    /// Whether the host agreed at once.
    pub balanced: bool,
    /// Transactions uploaded because the totals disagreed.
    pub uploaded: u32,
    /// The host's response code to the settlement request.
    pub response_code: String,
    /// Reversals and repeats sent first.
    pub pending_sent: Vec<PendingReport>,
}

/// Why a flow could not run, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The terminal has no valid sign-in.
    #[error("the terminal is not signed in: {reason}; sign in first")]
    NotSignedIn {
        /// Why (never signed in, another host, another day).
        reason: String,
    },
    /// The host refused the sign-in.
    #[error("sign-in refused by the host: {code} {message}")]
    SignInRefused {
        /// Response code.
        code: String,
        /// Its meaning.
        message: String,
    },
    /// The amount is above the per-transaction limit.
    #[error(
        "amount {amount} is above the per-transaction limit of {limit}; split it or ask a supervisor to raise the limit"
    )]
    OverTransactionLimit {
        /// Amount asked.
        amount: String,
        /// The limit.
        limit: String,
    },
    /// The day's total would exceed the daily limit.
    #[error(
        "this would take today's total to {total}, above the daily limit of {limit}; ask a supervisor"
    )]
    OverDailyLimit {
        /// Total it would reach.
        total: String,
        /// The limit.
        limit: String,
    },
    /// A large amount needs a second confirmation.
    #[error("amount {amount} is above {threshold}: confirm the amount a second time to go ahead")]
    NeedsConfirmation {
        /// Amount asked.
        amount: String,
        /// The threshold.
        threshold: String,
    },
    /// Something the flow needs was not given.
    #[error("{0}")]
    Missing(String),
    /// The original transaction is not in this terminal's journal.
    #[error("no transaction with reference number {rrn} in this terminal's open batch; {hint}")]
    OriginalNotFound {
        /// The RRN asked for.
        rrn: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// The original cannot be voided or completed in its state.
    #[error("transaction {rrn} is {state}; it cannot be {what}")]
    OriginalNotUsable {
        /// The RRN.
        rrn: String,
        /// Its state, in words.
        state: String,
        /// Void, complete, refund.
        what: &'static str,
    },
    /// The amount does not fit the original.
    #[error("{0}")]
    AmountMismatch(String),
    /// The host could not be reached; nothing was sent.
    #[error("the host could not be reached, nothing was sent: {0}")]
    HostUnreachable(LinkError),
    /// The host could not be reached and the sale may not be approved offline.
    #[error(
        "the host could not be reached ({link}) and this sale cannot be approved offline: {reason}; nothing was charged"
    )]
    OfflineRefused {
        /// Why not offline.
        reason: String,
        /// Why the host could not be reached.
        link: String,
    },
    /// No answer came to a request that cannot be reversed and needs none.
    #[error("the host did not answer ({0}); nothing was charged — try again")]
    NoAnswer(String),
    /// Reversals or repeats owed to the host could not be delivered, so the
    /// new request was not sent.
    #[error(
        "{count} earlier transaction(s) still wait to be reversed or confirmed with the host ({reason}); \
         nothing new was sent — check the network and try again"
    )]
    PendingNotCleared {
        /// How many are owed.
        count: usize,
        /// Why the last attempt failed.
        reason: String,
    },
    /// Settlement could not finish.
    #[error("settlement did not finish: {0}; run settlement again — it is safe to repeat")]
    Settlement(String),
    /// Card data is unusable.
    #[error(transparent)]
    Card(#[from] CardError),
    /// A cryptographic step failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Message security failed.
    #[error(transparent)]
    Security(#[from] SecurityError),
    /// A message could not be built.
    #[error("message could not be built: {0}")]
    Codec(#[from] CodecError),
    /// An element did not fit.
    #[error(transparent)]
    Element(#[from] ElementError),
    /// The journal could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The dialect cannot run this flow.
    #[error("dialect {dialect}: {problem}")]
    Dialect {
        /// Dialect name.
        dialect: String,
        /// What is missing.
        problem: String,
    },
}
