//! The host's decisions, without sockets: a request (its bytes and who sent
//! it) goes in, the answer and the ledger line come out.
//!
//! This is the host side of `docs/host-protocol.md`. Everything the host
//! remembers — sessions and working keys, balances, holds and PIN try
//! counters, every transaction with its RRN, reversals, batch uploads and
//! which batches are closed — lives in memory in [`Host`] and is gone when
//! the process ends; the ledger file is a record, never read back.
//!
//! Order of checks for every decodable request:
//!
//! 1. the terminal id is present, equals the certificate's common name and
//!    has a master key (else `unknown_terminal`);
//! 2. the message is a kind the dialect describes, or a reversal (else
//!    `invalid_transaction`);
//! 3. sign-in is answered here; anything else needs a session
//!    (`not_signed_in`) and, where the dialect MACs the kind, a MAC that
//!    verifies under the session's MAC key (`mac_error`, no state change);
//! 4. STAN and batch number are present (`format_error`);
//! 5. repeats of advices and batch uploads get the first answer again;
//!    reversals are looked up by (terminal, batch, original STAN);
//! 6. the batch must be the terminal's open one (`invalid_transaction`),
//!    and a STAN already used in it is a `duplicate`;
//! 7. the kind's own rules.

mod classify;
mod payments;
mod reference;
mod reversal;
mod settlement;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;

use chrono::{DateTime, Local, SecondsFormat};
use till_pay::card::{Track2, mask_pan};
use till_pay::crypto::SecretKey;
use till_pay::iso8583::{CodecError, Dialect, Masking, Message, Outcome, TxnKind};
use till_pay::money::Amount;
use till_pay::security::{
    MacCheck, Scheme, SecurityError, WorkingKeys, issue_working_keys, kind_is_maced, open, seal,
};
use tracing::{info, warn};

pub use classify::{
    RequestClass, answer_mti, classify, classify_wire, first_attempt_mti, peek_mti,
};
pub use reference::RrnSource;

use crate::cards::CardDb;
use crate::ledger::{Effect, LedgerRecord};

/// Consecutive wrong PINs after which a card is locked for PIN use for the
/// rest of the run.
pub const PIN_TRIES: u8 = 3;

/// Why a host could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The dialect cannot run transactions (no security scheme).
    #[error(transparent)]
    Scheme(#[from] SecurityError),
    /// A terminal's master key does not suit the dialect's key scheme.
    #[error(
        "the master key of terminal {terminal} in host-keys.toml cannot be used with \
         dialect {dialect}: {reason}"
    )]
    MasterKey {
        /// The terminal id.
        terminal: String,
        /// The dialect.
        dialect: String,
        /// Why.
        reason: String,
    },
}

/// Who sent a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerInfo {
    /// The client's socket address.
    pub addr: Option<SocketAddr>,
    /// The common name of the client's TLS certificate (the terminal id it
    /// was issued for).
    pub common_name: Option<String>,
}

/// An answer ready to send.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The answer as values.
    pub message: Message,
    /// The answer encoded (and MACed where due), without the stream frame.
    pub wire: Vec<u8>,
    /// Whether it carries a MAC.
    pub maced: bool,
}

/// What the host made of one request.
#[derive(Debug)]
pub struct Handled {
    /// The answer; `None` when the message could not be read at all and the
    /// connection should be closed.
    pub answer: Option<Answer>,
    /// The ledger line (without the fault, which the server adds).
    pub record: LedgerRecord,
}

/// A card's state as the host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// Money on the card, holds not subtracted.
    pub balance: Amount,
    /// Money on hold for open pre-authorizations.
    pub held: Amount,
    /// Wrong PINs in a row.
    pub wrong_pins: u8,
}

impl Account {
    /// Balance minus holds.
    pub fn available(&self) -> Amount {
        Amount(self.balance.0.saturating_sub(self.held.0))
    }

    /// Whether the card is locked for PIN use.
    pub fn pin_locked(&self) -> bool {
        self.wrong_pins >= PIN_TRIES
    }
}

/// Settlement totals of a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Approved sales, completions and advices, neither voided nor reversed.
    pub debit_count: u64,
    /// Their amount.
    pub debit_amount: u64,
    /// Approved refunds, not reversed.
    pub credit_count: u64,
    /// Their amount.
    pub credit_amount: u64,
}

/// One transaction the host processed (approved or not).
#[derive(Debug, Clone)]
struct Txn {
    terminal: String,
    batch: u32,
    kind: TxnKind,
    card: Option<usize>,
    amount: Amount,
    outcome: Outcome,
    rrn: Option<String>,
    auth_code: Option<String>,
    /// The original of a completion, void or refund.
    original: Option<usize>,
    /// Voided (sale, completion) or released by a void (pre-authorization).
    voided: bool,
    /// A pre-authorization that was completed.
    completed: bool,
    reversed: bool,
    /// Sum of approved, unreversed refunds against this transaction.
    refunded: Amount,
}

impl Txn {
    fn approved(&self) -> bool {
        self.outcome == Outcome::Approved
    }
}

/// An item of a batch upload.
#[derive(Debug, Clone)]
struct UploadItem {
    amount: Option<u64>,
}

/// What the host knows about one terminal.
#[derive(Debug)]
struct TerminalState {
    session: Option<WorkingKeys>,
    open_batch: u32,
    closed: BTreeSet<u32>,
    /// STANs used per batch by anything but batch upload items.
    used_stans: HashSet<(u32, u32)>,
    /// The transaction each (batch, STAN) created.
    txn_by_stan: HashMap<(u32, u32), usize>,
    /// (batch, original STAN) of every reversal received.
    reversed: HashSet<(u32, u32)>,
    /// Batch upload items by (batch, the item's STAN).
    uploads: HashMap<(u32, u32), UploadItem>,
}

impl TerminalState {
    /// A terminal first seen with `batch` open (batch numbers run 1 to
    /// 999999; anything else starts at 1).
    fn new(batch: u32) -> TerminalState {
        TerminalState {
            session: None,
            open_batch: if (1..=999_999).contains(&batch) {
                batch
            } else {
                1
            },
            closed: BTreeSet::new(),
            used_stans: HashSet::new(),
            txn_by_stan: HashMap::new(),
            reversed: HashSet::new(),
            uploads: HashMap::new(),
        }
    }

    /// Why a request for `batch` cannot be taken, if it cannot.
    fn batch_refusal(&self, batch: u32) -> Option<Refusal> {
        if self.closed.contains(&batch) {
            Some(Refusal::new(
                Outcome::InvalidTransaction,
                format!(
                    "batch {batch} is closed (settled); the open batch is {}",
                    self.open_batch
                ),
            ))
        } else if batch != self.open_batch {
            Some(Refusal::new(
                Outcome::InvalidTransaction,
                format!(
                    "batch {batch} is not the open batch {}; sign in to learn it",
                    self.open_batch
                ),
            ))
        } else {
            None
        }
    }

    fn close_batch(&mut self, batch: u32) {
        self.closed.insert(batch);
        // Batch numbers are six digits; after 999999 comes 1 again.
        self.open_batch = if batch >= 999_999 { 1 } else { batch + 1 };
    }
}

/// A decline or refusal with the reason in words.
#[derive(Debug)]
struct Refusal {
    outcome: Outcome,
    note: String,
}

impl Refusal {
    fn new(outcome: Outcome, note: impl Into<String>) -> Refusal {
        Refusal {
            outcome,
            note: note.into(),
        }
    }
}

type Step<T> = Result<T, Refusal>;

/// An approval's effect and remarks.
#[derive(Debug)]
struct Approval {
    effect: Effect,
    note: Option<String>,
}

impl Approval {
    fn new(effect: Effect) -> Approval {
        Approval { effect, note: None }
    }
}

/// The host's decision on one request.
#[derive(Debug)]
struct Decision {
    outcome: Outcome,
    /// A response code other than the outcome's (out of balance by code).
    code: Option<String>,
    effect: Effect,
    note: Option<String>,
    rrn: Option<String>,
    auth_code: Option<String>,
    /// MAC the answer with this key.
    mac_key: Option<SecretKey>,
}

impl Decision {
    fn approved(effect: Effect) -> Decision {
        Decision {
            outcome: Outcome::Approved,
            code: None,
            effect,
            note: None,
            rrn: None,
            auth_code: None,
            mac_key: None,
        }
    }

    fn with_note(mut self, note: impl Into<String>) -> Decision {
        self.note = Some(note.into());
        self
    }
}

impl From<Refusal> for Decision {
    fn from(r: Refusal) -> Decision {
        Decision {
            outcome: r.outcome,
            code: None,
            effect: Effect::None,
            note: Some(r.note),
            rrn: None,
            auth_code: None,
            mac_key: None,
        }
    }
}

/// The simulated acquirer and issuer: every decision the host makes.
///
/// ```
/// use std::collections::BTreeMap;
/// use till_acquirer::cards::CardDb;
/// use till_acquirer::host::{Host, PeerInfo};
/// use till_pay::iso8583::{Dialect, Message};
///
/// let host_keys: BTreeMap<String, Vec<u8>> = BTreeMap::new();
/// let mut host = Host::new(Dialect::load("cup")?, &host_keys, CardDb::bundled()?)?;
/// let cup = host.dialect().clone();
/// let mut sign_in = Message::new("0800")?;
/// cup.set_text(&mut sign_in, "terminal_id", "TILL0001")?;
/// let wire = cup.encode(&sign_in)?;
/// let handled = host.handle(&wire, &PeerInfo::default(), chrono::Local::now());
/// let answer = handled.answer.expect("an answer");
/// // No certificate and no master key for TILL0001: an unknown terminal.
/// assert_eq!(cup.get_text(&answer.message, "response_code"), Some("03"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Host {
    dialect: Dialect,
    scheme: Scheme,
    masters: BTreeMap<String, SecretKey>,
    cards: CardDb,
    accounts: Vec<Account>,
    terminals: BTreeMap<String, TerminalState>,
    txns: Vec<Txn>,
    by_rrn: HashMap<String, usize>,
    /// The highest chip transaction counter (ATC) seen per card.
    atcs: HashMap<usize, u16>,
    /// Payment codes that paid: each pays once, as a wallet would have it.
    used_codes: HashSet<String>,
    rrns: RrnSource,
    /// Whether ledger records carry the masked request and answer (costly;
    /// pointless when no ledger is written).
    record_messages: bool,
}

impl Host {
    /// A host for `dialect` that knows the terminals in `host_keys`
    /// (terminal id → master key bytes, as
    /// `till_pay::link::identity::load_host_keys` reads them) and the
    /// cards in `cards`, every balance at its opening value.
    pub fn new(
        dialect: Dialect,
        host_keys: &BTreeMap<String, impl AsRef<[u8]>>,
        cards: CardDb,
    ) -> Result<Host, HostError> {
        let scheme = Scheme::of(&dialect)?;
        let mut masters = BTreeMap::new();
        for (terminal, bytes) in host_keys {
            let key =
                SecretKey::new(scheme.keys, bytes.as_ref()).map_err(|e| HostError::MasterKey {
                    terminal: terminal.clone(),
                    dialect: dialect.name.clone(),
                    reason: e.to_string(),
                })?;
            masters.insert(terminal.clone(), key);
        }
        // Cards first, then wallet accounts (see `wallet_account`).
        let accounts = cards
            .cards()
            .iter()
            .map(|c| c.opening_balance)
            .chain(cards.wallets().iter().map(|w| w.opening_balance))
            .map(|balance| Account {
                balance,
                held: Amount(0),
                wrong_pins: 0,
            })
            .collect();
        Ok(Host {
            dialect,
            scheme,
            masters,
            cards,
            accounts,
            terminals: BTreeMap::new(),
            txns: Vec::new(),
            by_rrn: HashMap::new(),
            atcs: HashMap::new(),
            used_codes: HashSet::new(),
            rrns: RrnSource::new(),
            record_messages: true,
        })
    }

    /// Whether ledger records include the masked request and answer
    /// (default yes; the server turns it off when it keeps no ledger).
    pub fn set_record_messages(&mut self, on: bool) {
        self.record_messages = on;
    }

    /// The dialect the host speaks.
    pub fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    /// The card database.
    pub fn cards(&self) -> &CardDb {
        &self.cards
    }

    /// The current state of the card or wallet account named `name`.
    pub fn account(&self, name: &str) -> Option<Account> {
        let i = match self.cards.cards().iter().position(|c| c.name == name) {
            Some(i) => i,
            None => self.wallet_account(self.cards.wallets().iter().position(|w| w.name == name)?),
        };
        self.accounts.get(i).copied()
    }

    /// The account index of the card file's `i`th wallet account.
    fn wallet_account(&self, i: usize) -> usize {
        self.cards.cards().len() + i
    }

    /// Whether account `i` is a wallet's (not a card's).
    fn is_wallet(&self, i: usize) -> bool {
        i >= self.cards.cards().len()
    }

    /// The batch the host has open for a terminal it has seen.
    pub fn open_batch(&self, terminal: &str) -> Option<u32> {
        self.terminals.get(terminal).map(|t| t.open_batch)
    }

    /// Whether the terminal has a session (signed in since the host started).
    pub fn is_signed_in(&self, terminal: &str) -> bool {
        self.terminals
            .get(terminal)
            .is_some_and(|t| t.session.is_some())
    }

    /// The host's totals for a terminal's batch.
    pub fn totals(&self, terminal: &str, batch: u32) -> Totals {
        let mut t = Totals::default();
        for txn in &self.txns {
            if txn.terminal != terminal || txn.batch != batch || !txn.approved() || txn.reversed {
                continue;
            }
            match txn.kind {
                TxnKind::Sale | TxnKind::Completion | TxnKind::Advice if !txn.voided => {
                    t.debit_count += 1;
                    t.debit_amount += txn.amount.0;
                }
                TxnKind::Refund => {
                    t.credit_count += 1;
                    t.credit_amount += txn.amount.0;
                }
                _ => {}
            }
        }
        t
    }

    /// Processes one request as it came off the wire (without the stream
    /// frame) from `peer`, at host time `now`.
    pub fn handle(&mut self, wire: &[u8], peer: &PeerInfo, now: DateTime<Local>) -> Handled {
        let mut record = LedgerRecord {
            time: now.to_rfc3339_opts(SecondsFormat::Millis, false),
            peer: peer.addr.map(|a| a.to_string()),
            peer_cn: peer.common_name.clone(),
            kind: RequestClass::Unknown.name().into(),
            ..LedgerRecord::default()
        };
        let req = match self.dialect.decode(wire) {
            Ok(m) => m,
            Err(e) => return self.undecodable(wire, &e, record),
        };
        let d = &self.dialect;
        let class = classify(d, &req);
        record.kind = class.name().into();
        record.mti = Some(req.mti().to_string());
        record.stan = d.get_text(&req, "stan").map(str::to_owned);
        record.batch = d.get_text(&req, "batch_number").map(str::to_owned);
        record.terminal = d.get_text(&req, "terminal_id").map(str::to_owned);
        let pan = request_pan(d, &req);
        record.pan = pan.as_deref().map(mask_pan);
        record.card = pan
            .as_deref()
            .and_then(|p| self.cards.find(p))
            .map(|i| self.cards.cards()[i].name.clone());
        if let Some(code) = d.get_text(&req, "payment_code") {
            let code = code.trim();
            record.pan = Some(till_pay::qr::mask_code(code));
            record.card = till_pay::qr::Wallet::of(code)
                .and_then(|w| self.cards.find_wallet(w))
                .map(|i| self.cards.wallets()[i].name.clone());
        }
        record.amount = d.get_number(&req, "amount").and_then(Result::ok);
        if self.record_messages {
            record.request = Some(d.describe(&req, Masking::Masked));
        }

        let mut answer = self.answer_skeleton(&req);
        let decision = self.decide(&req, wire, class, peer, now, &mut answer);
        self.finish(answer, decision, record)
    }

    /// The answer before the decision: header, message type and the fields
    /// the dialect echoes.
    fn answer_skeleton(&self, req: &Message) -> Message {
        let mti = answer_mti(req.mti());
        let mut ans = Message::new(&mti).unwrap_or_else(|_| req.clone());
        if let Some(h) = &self.dialect.header {
            ans.header = h.answer_to(&req.header);
        }
        for field in &self.dialect.profile.answer_echo {
            if let Some(value) = req.get(*field) {
                ans.set(*field, value.clone());
            }
        }
        ans
    }

    fn decide(
        &mut self,
        req: &Message,
        wire: &[u8],
        class: RequestClass,
        peer: &PeerInfo,
        now: DateTime<Local>,
        ans: &mut Message,
    ) -> Decision {
        let Some(terminal) = self
            .dialect
            .get_text(req, "terminal_id")
            .map(|t| t.trim_end().to_string())
        else {
            return Refusal::new(Outcome::FormatError, "the request carries no terminal id").into();
        };
        if peer.common_name.as_deref() != Some(terminal.as_str()) {
            return Refusal::new(
                Outcome::UnknownTerminal,
                format!(
                    "terminal id {terminal:?} is not the one the client's certificate was issued for ({})",
                    peer.common_name.as_deref().unwrap_or("no common name")
                ),
            )
            .into();
        }
        let Some(tmk) = self.masters.get(&terminal).cloned() else {
            return Refusal::new(
                Outcome::UnknownTerminal,
                format!("terminal {terminal} has no master key in host-keys.toml"),
            )
            .into();
        };
        let kind = match class {
            RequestClass::Unknown => {
                return Refusal::new(
                    Outcome::InvalidTransaction,
                    format!(
                        "no transaction of dialect {} has message type {} with this processing code and these constants",
                        self.dialect.name,
                        req.mti()
                    ),
                )
                .into();
            }
            RequestClass::Txn(TxnKind::SignIn) => {
                return self.sign_in(&terminal, &tmk, req, now, ans);
            }
            RequestClass::Txn(kind) => Some(kind),
            RequestClass::Reversal => None,
        };
        let Some(keys) = self
            .terminals
            .get(&terminal)
            .and_then(|t| t.session.clone())
        else {
            return Refusal::new(
                Outcome::NotSignedIn,
                format!("terminal {terminal} has not signed in since the host started"),
            )
            .into();
        };
        let maced = kind_is_maced(&self.dialect, kind);
        if maced {
            match open(&self.dialect, &self.scheme, wire, Some(&keys.mac)) {
                Ok((_, MacCheck::Valid)) => {}
                Ok((_, check)) => {
                    let what = match check {
                        MacCheck::Missing => "the request carries no MAC",
                        _ => "the request's MAC does not verify under the session MAC key",
                    };
                    return Refusal::new(Outcome::MacError, what).into();
                }
                Err(e) => {
                    return Refusal::new(
                        Outcome::MacError,
                        format!("the MAC cannot be checked: {e}"),
                    )
                    .into();
                }
            }
        }
        let mut decision = match self.session_request(&terminal, class, req, &keys, now, ans) {
            Ok(d) => d,
            Err(r) => r.into(),
        };
        if maced {
            decision.mac_key = Some(keys.mac.clone());
        }
        decision
    }

    /// Issues working keys and tells the terminal the open batch and the
    /// host's clock. A terminal's first sign-in since the host started sets
    /// the open batch to the one the terminal has, so a restarted host (its
    /// state is in memory) picks up where the terminal is.
    fn sign_in(
        &mut self,
        terminal: &str,
        tmk: &SecretKey,
        req: &Message,
        now: DateTime<Local>,
        ans: &mut Message,
    ) -> Decision {
        let keys = match issue_working_keys(&self.dialect, &self.scheme, tmk, ans) {
            Ok(k) => k,
            Err(e) => {
                warn!(terminal, error = %e, "cannot issue working keys");
                return Refusal::new(
                    Outcome::SystemError,
                    format!("cannot issue working keys: {e}"),
                )
                .into();
            }
        };
        let theirs = self
            .dialect
            .get_number(req, "batch_number")
            .and_then(Result::ok)
            .and_then(|b| u32::try_from(b).ok())
            .unwrap_or(1);
        let state = self
            .terminals
            .entry(terminal.to_string())
            .or_insert_with(|| TerminalState::new(theirs));
        let batch = state.open_batch;
        let time = now.format("%H%M%S").to_string();
        let date = now.format("%m%d").to_string();
        let d = &self.dialect;
        let set = d
            .set_number(ans, "batch_number", u64::from(batch))
            .and_then(|()| d.set_text(ans, "local_time", &time))
            .and_then(|()| d.set_text(ans, "local_date", &date));
        if let Err(e) = set {
            return Refusal::new(
                Outcome::SystemError,
                format!("cannot build the answer: {e}"),
            )
            .into();
        }
        let mac_key = kind_is_maced(d, Some(TxnKind::SignIn)).then(|| keys.mac.clone());
        state.session = Some(keys);
        let mut decision =
            Decision::approved(Effect::Keys).with_note(format!("open batch {batch}"));
        decision.mac_key = mac_key;
        decision
    }

    /// Everything after the session and MAC checks.
    fn session_request(
        &mut self,
        terminal: &str,
        class: RequestClass,
        req: &Message,
        keys: &WorkingKeys,
        now: DateTime<Local>,
        ans: &mut Message,
    ) -> Step<Decision> {
        let stan = self.required_u32(req, "stan")?;
        let batch = self.required_u32(req, "batch_number")?;
        let kind = match class {
            RequestClass::Txn(k) => k,
            _ => return self.reversal(terminal, batch, stan, req),
        };
        if kind == TxnKind::BatchUpload {
            return self.batch_upload(terminal, batch, stan, req);
        }
        let state = self.state(terminal);
        if is_advice_mti(req.mti())
            && let Some(&i) = state.txn_by_stan.get(&(batch, stan))
        {
            let txn = &self.txns[i];
            if txn.kind != kind {
                return Err(Refusal::new(
                    Outcome::Duplicate,
                    format!("STAN {stan} of batch {batch} was used by a {}", txn.kind),
                ));
            }
            return Ok(Decision {
                outcome: txn.outcome,
                code: None,
                effect: Effect::Repeat,
                note: Some("repeat of an advice already decided; answered as before".into()),
                rrn: txn.rrn.clone(),
                auth_code: txn.auth_code.clone(),
                mac_key: None,
            });
        }
        // A terminal whose settlement answer was lost settles again: the
        // batch is already closed here, so acknowledge it and let the
        // terminal close its side too, instead of refusing.
        if matches!(kind, TxnKind::Settlement | TxnKind::BatchUploadEnd)
            && state.closed.contains(&batch)
        {
            let open = state.open_batch;
            if kind == TxnKind::Settlement
                && let Some(v) = self.dialect.profile.settlement.balanced_value.clone()
            {
                self.put(ans, "settle_result", &v)?;
            }
            return Ok(Decision::approved(Effect::Repeat).with_note(format!(
                "batch {batch} was already closed; acknowledged again (the open batch is {open})"
            )));
        }
        if let Some(r) = state.batch_refusal(batch) {
            return Err(r);
        }
        if !state.used_stans.insert((batch, stan)) {
            return Err(Refusal::new(
                Outcome::Duplicate,
                format!("STAN {stan} was already used in batch {batch}"),
            ));
        }
        match kind {
            TxnKind::Settlement => self.settlement(terminal, batch, req, ans),
            TxnKind::BatchUploadEnd => {
                let state = self.state(terminal);
                let (items, sum) = state
                    .uploads
                    .iter()
                    .filter(|((b, _), _)| *b == batch)
                    .fold((0u64, 0u64), |(n, s), (_, item)| {
                        (n + 1, s + item.amount.unwrap_or(0))
                    });
                state.close_batch(batch);
                Ok(Decision::approved(Effect::BatchClosed).with_note(format!(
                    "batch {batch} closed after an upload of {items} items for {sum}; \
                     the open batch is {}",
                    state.open_batch
                )))
            }
            _ => Ok(self.card_transaction(terminal, batch, stan, kind, req, keys, now, ans)),
        }
    }

    /// Sets the response code and references, MACs and encodes the answer,
    /// and completes the ledger line.
    fn finish(&mut self, mut ans: Message, d: Decision, mut record: LedgerRecord) -> Handled {
        let code = d
            .code
            .clone()
            .unwrap_or_else(|| self.dialect.profile.code_for(d.outcome).to_string());
        let dialect = &self.dialect;
        let mut built = dialect.set_text(&mut ans, "response_code", &code);
        if let Some(rrn) = &d.rrn {
            built = built.and_then(|()| dialect.set_text(&mut ans, "rrn", rrn));
        }
        if let Some(auth) = &d.auth_code {
            built = built.and_then(|()| dialect.set_text(&mut ans, "auth_code", auth));
        }
        let sealed = built
            .map_err(SecurityError::from)
            .and_then(|()| seal(dialect, &self.scheme, &mut ans, d.mac_key.as_ref()));
        let answer = match sealed {
            Ok(wire) => Some(Answer {
                message: ans,
                wire,
                maced: d.mac_key.is_some(),
            }),
            Err(e) => {
                warn!(error = %e, "cannot encode the answer; answering with a system error");
                record.note = Some(format!(
                    "{}; the answer could not be encoded ({e})",
                    d.note.as_deref().unwrap_or("")
                ));
                self.bare_answer(ans.mti(), &ans.header, Outcome::SystemError)
            }
        };
        record.response_code = answer
            .as_ref()
            .and_then(|a| self.dialect.get_text(&a.message, "response_code"))
            .map(str::to_owned);
        record.outcome = Some(outcome_name(d.outcome));
        record.effect = Some(d.effect);
        if record.note.is_none() {
            record.note = d.note;
        }
        record.rrn = d.rrn;
        record.auth_code = d.auth_code;
        record.answer = answer
            .as_ref()
            .filter(|_| self.record_messages)
            .map(|a| self.dialect.describe(&a.message, Masking::Masked));
        info!(
            terminal = record.terminal.as_deref().unwrap_or("-"),
            kind = %record.kind,
            stan = record.stan.as_deref().unwrap_or("-"),
            pan = record.pan.as_deref().unwrap_or("-"),
            code = record.response_code.as_deref().unwrap_or("-"),
            effect = ?record.effect,
            note = record.note.as_deref().unwrap_or(""),
            "processed"
        );
        Handled { answer, record }
    }

    /// An answer with nothing but a response code.
    fn bare_answer(&self, mti: &str, header: &[u8], outcome: Outcome) -> Option<Answer> {
        let mut ans = Message::new(mti).ok()?;
        if let Some(h) = &self.dialect.header
            && header.len() == h.length
        {
            ans.header = header.to_vec();
        }
        self.dialect
            .set_text(
                &mut ans,
                "response_code",
                self.dialect.profile.code_for(outcome),
            )
            .ok()?;
        let wire = self.dialect.encode(&ans).ok()?;
        Some(Answer {
            message: ans,
            wire,
            maced: false,
        })
    }

    /// A message that does not decode: a format error if its type can be
    /// read, else no answer (close).
    fn undecodable(&self, wire: &[u8], e: &CodecError, mut record: LedgerRecord) -> Handled {
        record.outcome = Some(outcome_name(Outcome::FormatError));
        record.effect = Some(Effect::None);
        let mti = peek_mti(&self.dialect, wire);
        record.mti.clone_from(&mti);
        let header = self
            .dialect
            .header
            .as_ref()
            .and_then(|h| wire.get(..h.length))
            .map(|h| {
                self.dialect
                    .header
                    .as_ref()
                    .map_or_else(Vec::new, |spec| spec.answer_to(h))
            })
            .unwrap_or_default();
        let answer =
            mti.and_then(|m| self.bare_answer(&answer_mti(&m), &header, Outcome::FormatError));
        record.note = Some(match &answer {
            Some(_) => format!("cannot decode: {e}"),
            None => format!("cannot decode: {e}; message type unreadable, connection closed"),
        });
        record.response_code = answer
            .as_ref()
            .and_then(|a| self.dialect.get_text(&a.message, "response_code"))
            .map(str::to_owned);
        record.answer = answer
            .as_ref()
            .filter(|_| self.record_messages)
            .map(|a| self.dialect.describe(&a.message, Masking::Masked));
        warn!(
            note = record.note.as_deref().unwrap_or(""),
            "undecodable request"
        );
        Handled { answer, record }
    }

    // ---- helpers ----

    fn state(&mut self, terminal: &str) -> &mut TerminalState {
        self.terminals
            .entry(terminal.to_string())
            .or_insert_with(|| TerminalState::new(1))
    }

    fn put(&self, ans: &mut Message, element: &str, value: &str) -> Step<()> {
        self.dialect.set_text(ans, element, value).map_err(|e| {
            Refusal::new(
                Outcome::SystemError,
                format!("cannot build the answer: {e}"),
            )
        })
    }

    fn number(&self, req: &Message, element: &str) -> Step<Option<u64>> {
        match self.dialect.get_number(req, element) {
            None => Ok(None),
            Some(Ok(n)) => Ok(Some(n)),
            Some(Err(_)) => Err(Refusal::new(
                Outcome::FormatError,
                format!("{element} is not a number"),
            )),
        }
    }

    fn required_number(&self, req: &Message, element: &str) -> Step<u64> {
        self.number(req, element)?.ok_or_else(|| {
            Refusal::new(
                Outcome::FormatError,
                format!("the request carries no {element}"),
            )
        })
    }

    fn required_u32(&self, req: &Message, element: &str) -> Step<u32> {
        let n = self.required_number(req, element)?;
        u32::try_from(n)
            .map_err(|_| Refusal::new(Outcome::FormatError, format!("{element} is out of range")))
    }
}

/// The card number of a request: its PAN element, or track 2's.
fn request_pan(dialect: &Dialect, req: &Message) -> Option<String> {
    if let Some(pan) = dialect.get_text(req, "pan") {
        return Some(pan.to_string());
    }
    let track = dialect.get_text(req, "track2")?;
    Track2::parse(track)
        .ok()
        .map(|t| t.pan().expose().to_string())
}

/// Advice message types (x2x0 / x2x1) are idempotent rather than duplicates.
fn is_advice_mti(mti: &str) -> bool {
    mti.as_bytes().get(2) == Some(&b'2')
}

/// `insufficient_funds` for `Outcome::InsufficientFunds`, as in dialect files.
pub fn outcome_name(outcome: Outcome) -> String {
    let mut out = String::new();
    for (i, c) in format!("{outcome:?}").chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
