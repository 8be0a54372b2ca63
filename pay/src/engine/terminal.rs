//! The terminal side of every flow.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Local, NaiveDate, NaiveDateTime, Utc};

use super::state::{
    Entry, OriginalRef, PendingItem, PendingKind, Sealer, Session, SettlementRecord, SignInRecord,
};
use super::{
    BatchTotals, CardInput, EngineError, EntryMode, PendingReport, SettlementOutcome,
    SignInOutcome, StateStore, Status, TerminalConfig, TerminalState, TxnOutcome, TxnRequest,
};
use crate::card::{Expiry, Pan};
use crate::crypto::SecretKey;
use crate::iso8583::{Dialect, Masking, Message, Outcome, TxnKind};
use crate::link::{HostLink, LinkError};
use crate::money::Amount;
use crate::qr::PaymentCode;
use crate::security::{self, MacCheck, Scheme, WorkingKeys};

/// The response code of an offline approval ("unable to go online,
/// approved offline", as EMV names it); printed on the receipt.
const OFFLINE_CODE: &str = "Y3";
/// Sign-in records kept.
const KEEP_SIGN_INS: usize = 50;

/// A payment terminal's engine: one dialect, one host link, one journal.
pub struct Terminal<L: HostLink, S: StateStore> {
    // Shared so a flow can hold it while it updates the terminal's state.
    dialect: Arc<Dialect>,
    scheme: Scheme,
    config: TerminalConfig,
    link: L,
    store: S,
    tmk: SecretKey,
    sealer: Sealer,
    state: TerminalState,
    /// The session's working keys in clear, kept in memory (zeroized on
    /// drop, never stored) so they are not unwrapped for every message;
    /// tagged with the sign-in time they belong to.
    keys: Option<(String, WorkingKeys)>,
    /// Why the last attempt to send something owed could not connect.
    last_unreachable: Option<LinkError>,
    /// A drain journals its progress in batches.
    defer_saves: bool,
}

/// What came back for a request.
enum Reply {
    /// A paired, verified answer.
    Answer(Message),
    /// Nothing was sent.
    NotSent(LinkError),
    /// The request may have arrived but no trustworthy answer came.
    Lost {
        /// The answer's MAC failed (else: no or unusable answer).
        bad_mac: bool,
        /// What happened, in words.
        detail: String,
        /// The response code of an answer that was paired but whose MAC
        /// was missing or wrong: not to be trusted for what it says, but a
        /// "not now" in it may still explain why nothing was acknowledged.
        unverified_code: Option<String>,
    },
}

/// A card transaction request made concrete: the kind to send, its
/// original, and the card and amount to use.
struct Resolved {
    kind: TxnKind,
    original: Option<Entry>,
    card: Option<CardInput>,
    amount: Option<u64>,
}

/// What a queued or reversal message never keeps: the card, its PIN block,
/// its chip data and a wallet's payment code (a bearer token).
const CARD_DATA: [&str; 6] = [
    "pin_block",
    "track2",
    "icc_data",
    "pan",
    "expiry",
    "payment_code",
];

fn answer_mti(request: &str) -> String {
    let b = request.as_bytes();
    format!(
        "{}{}{}0",
        char::from(b[0]),
        char::from(b[1]),
        char::from(b[2] + 1)
    )
}

fn repeat_mti(mti: &str) -> String {
    format!("{}1", &mti[..3])
}

impl<L: HostLink, S: StateStore> Terminal<L, S> {
    /// Opens the terminal: loads its journal, and arms the reversal of any
    /// request that was still waiting for its answer when the terminal last
    /// stopped. `tmk` is the terminal master key, `data_key` the 32-byte key
    /// card data is sealed with at rest.
    pub fn new(
        dialect: Dialect,
        config: TerminalConfig,
        link: L,
        mut store: S,
        tmk: &[u8],
        data_key: &[u8],
    ) -> Result<Self, EngineError> {
        let scheme = Scheme::of(&dialect)?;
        let tmk = SecretKey::new(scheme.keys, tmk)?;
        let sealer = Sealer::new(data_key)?;
        let mut state = store.load()?;
        if state.arm_interrupted() > 0 {
            store.save(&state)?;
        }
        Ok(Terminal {
            dialect: Arc::new(dialect),
            scheme,
            config,
            link,
            store,
            tmk,
            sealer,
            state,
            keys: None,
            last_unreachable: None,
            defer_saves: false,
        })
    }

    /// The journal and session.
    pub fn state(&self) -> &TerminalState {
        &self.state
    }

    /// The dialect in use.
    pub fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    /// The configuration in use.
    pub fn config(&self) -> &TerminalConfig {
        &self.config
    }

    /// The host link (tests use it to inspect or reset the connection).
    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    fn save(&mut self) -> Result<(), EngineError> {
        self.store.save(&self.state)?;
        Ok(())
    }

    fn dialect_err(&self, problem: impl Into<String>) -> EngineError {
        EngineError::Dialect {
            dialect: self.dialect.name.clone(),
            problem: problem.into(),
        }
    }

    fn fmt_amount(&self, minor: u64) -> String {
        Amount(minor).display(self.config.currency).to_string()
    }

    /// Whether the terminal holds a sign-in it may use now: today's, for
    /// this host, in this dialect.
    pub fn signed_in(&self) -> bool {
        self.valid_session().is_ok()
    }

    /// The session, if it is valid now; otherwise why not.
    fn valid_session(&self) -> Result<&Session, EngineError> {
        let s = self
            .state
            .session
            .as_ref()
            .ok_or_else(|| EngineError::NotSignedIn {
                reason: "it has not signed in yet".into(),
            })?;
        if s.host != self.config.host {
            return Err(EngineError::NotSignedIn {
                reason: format!(
                    "its sign-in is for host {}, not {}",
                    s.host, self.config.host
                ),
            });
        }
        if s.dialect != self.dialect.name {
            return Err(EngineError::NotSignedIn {
                reason: format!(
                    "its sign-in used dialect {}, not {}",
                    s.dialect, self.dialect.name
                ),
            });
        }
        let today = Local::now().date_naive().to_string();
        if s.date != today {
            return Err(EngineError::NotSignedIn {
                reason: format!(
                    "its sign-in of {} has expired (terminals sign in every day)",
                    s.date
                ),
            });
        }
        Ok(s)
    }

    /// The working keys of a valid session.
    fn session_keys(&self) -> Result<WorkingKeys, EngineError> {
        let s = self.valid_session()?;
        if let Some((at, keys)) = &self.keys
            && *at == s.at
        {
            return Ok(keys.clone());
        }
        Ok(s.keys.unwrap(&self.scheme, &self.tmk)?)
    }

    /// The session's working keys, unwrapped once per sign-in.
    fn session_keys_cached(&mut self) -> Result<WorkingKeys, EngineError> {
        let keys = self.session_keys()?;
        if let Some(s) = &self.state.session {
            self.keys = Some((s.at.clone(), keys.clone()));
        }
        Ok(keys)
    }

    /// A request of `kind` with the elements every request carries.
    fn request(
        &mut self,
        kind: TxnKind,
        now: &DateTime<Local>,
    ) -> Result<(Message, u32), EngineError> {
        let profile = self
            .dialect
            .profile
            .txn(kind)
            .cloned()
            .ok_or_else(|| self.dialect_err(format!("has no coding for {kind}")))?;
        let mut m = Message::new(&profile.mti).map_err(|e| self.dialect_err(e.to_string()))?;
        let stan = self.state.next_stan();
        let d = &self.dialect;
        if let Some(pc) = &profile.processing_code {
            d.set_text(&mut m, "processing_code", pc)?;
        }
        for (element, value) in &profile.set {
            d.set_text(&mut m, element, value)?;
        }
        d.set_number(&mut m, "stan", u64::from(stan))?;
        d.set_text(&mut m, "local_time", &now.format("%H%M%S").to_string())?;
        d.set_text(&mut m, "local_date", &now.format("%m%d").to_string())?;
        // Field 7 is GMT by ISO 8583's definition.
        d.set_text(
            &mut m,
            "transmission_datetime",
            &now.with_timezone(&Utc).format("%m%d%H%M%S").to_string(),
        )?;
        d.set_text(&mut m, "terminal_id", &self.config.terminal_id)?;
        d.set_text(&mut m, "merchant_id", &self.config.merchant_id)?;
        d.set_number(&mut m, "batch_number", u64::from(self.state.batch_number))?;
        Ok((m, stan))
    }

    fn put_card(
        &self,
        m: &mut Message,
        card: &CardInput,
        with_pin: bool,
    ) -> Result<(), EngineError> {
        let d = &self.dialect;
        d.set_text(m, "pan", card.pan.expose())?;
        if let Some(e) = card.expiry {
            d.set_text(m, "expiry", &e.yymm())?;
        }
        if let Some(t) = &card.track2 {
            d.set_text(m, "track2", t.expose())?;
        }
        d.set_text(m, "pos_entry_mode", &card.entry.code(with_pin))?;
        if let Some(icc) = &card.icc_data {
            d.set_bytes(m, "icc_data", icc)?;
        }
        if let Some(psn) = card.pan_sequence {
            d.set_number(m, "card_sequence", u64::from(psn))?;
        }
        Ok(())
    }

    /// Seals and sends one request; pairs and verifies the answer.
    async fn exchange(
        &mut self,
        msg: &mut Message,
        mac_key: Option<&SecretKey>,
    ) -> Result<Reply, EngineError> {
        let wire = security::seal(&self.dialect, &self.scheme, msg, mac_key)?;
        tracing::debug!(request = %self.dialect.describe(msg, Masking::Masked), "to host");
        let bytes = match self.link.exchange(&wire, self.config.host_timeout).await {
            Ok(b) => b,
            Err(e) if e.request_may_have_arrived() => {
                return Ok(Reply::Lost {
                    unverified_code: None,
                    bad_mac: false,
                    detail: e.to_string(),
                });
            }
            Err(e) => return Ok(Reply::NotSent(e)),
        };
        let lost = |link: &mut L, bad_mac: bool, detail: String| {
            // The stream can no longer be trusted to pair answers with requests.
            link.reset();
            Ok(Reply::Lost {
                bad_mac,
                detail,
                unverified_code: None,
            })
        };
        let (answer, check) = match security::open(&self.dialect, &self.scheme, &bytes, mac_key) {
            Ok(x) => x,
            Err(e) => {
                return lost(
                    &mut self.link,
                    false,
                    format!("the host's answer could not be read: {e}"),
                );
            }
        };
        tracing::debug!(answer = %self.dialect.describe(&answer, Masking::Masked), "from host");
        let expected = answer_mti(msg.mti());
        if answer.mti() != expected {
            return lost(
                &mut self.link,
                false,
                format!(
                    "the host answered with message type {}, expected {expected}",
                    answer.mti()
                ),
            );
        }
        let (ours, theirs) = (
            self.dialect.get_text(msg, "stan"),
            self.dialect.get_text(&answer, "stan"),
        );
        if theirs.is_some() && theirs != ours {
            return lost(
                &mut self.link,
                false,
                "the host's answer belongs to another transaction (STAN differs)".into(),
            );
        }
        if mac_key.is_some() && check != MacCheck::Valid {
            let what = if check == MacCheck::Missing {
                "carries no MAC"
            } else {
                "failed MAC verification"
            };
            self.link.reset();
            return Ok(Reply::Lost {
                bad_mac: true,
                detail: format!("the host's answer {what}"),
                unverified_code: self
                    .dialect
                    .get_text(&answer, "response_code")
                    .map(str::to_string),
            });
        }
        Ok(Reply::Answer(answer))
    }

    fn code_text(&self, code: &str) -> (String, String, Option<(String, String)>) {
        match self.dialect.profile.response(code) {
            Some(r) => (
                r.en.clone(),
                r.zh.clone(),
                r.action.clone().map(|a| {
                    let zh = r.action_zh.clone().unwrap_or_else(|| a.clone());
                    (a, zh)
                }),
            ),
            None => (
                format!("Declined (code {code})"),
                format!("交易失败（{code}）"),
                None,
            ),
        }
    }

    /// Signs in: fresh working keys (checked against their check values),
    /// the host's batch number and clock. Then sends any reversals owed.
    pub async fn sign_in(&mut self) -> Result<SignInOutcome, EngineError> {
        let now = Local::now();
        let (mut m, stan) = self.request(TxnKind::SignIn, &now)?;
        self.save()?;
        let reply = self.exchange(&mut m, None).await;
        let mut record = SignInRecord {
            at: now.to_rfc3339(),
            host: self.config.host.clone(),
            response_code: None,
            result: String::new(),
        };
        let outcome = match reply {
            Err(e) => Err(e),
            Ok(Reply::NotSent(e)) => Err(EngineError::HostUnreachable(e)),
            Ok(Reply::Lost { detail, .. }) => Err(EngineError::NoAnswer(detail)),
            Ok(Reply::Answer(a)) => self.accept_sign_in(&a, stan, &now, &mut record),
        };
        record.result = match &outcome {
            Ok(o) if o.approved => "signed in".into(),
            Ok(o) => format!("refused: {}", o.message),
            Err(e) => e.to_string(),
        };
        self.state.sign_ins.push(record);
        let excess = self.state.sign_ins.len().saturating_sub(KEEP_SIGN_INS);
        self.state.sign_ins.drain(..excess);
        self.save()?;
        let mut outcome = outcome?;
        if outcome.approved {
            outcome.pending_sent = self.flush_pending().await?;
        }
        Ok(outcome)
    }

    fn accept_sign_in(
        &mut self,
        a: &Message,
        stan: u32,
        now: &DateTime<Local>,
        record: &mut SignInRecord,
    ) -> Result<SignInOutcome, EngineError> {
        let d = &self.dialect;
        let code = d.get_text(a, "response_code").unwrap_or("").to_string();
        record.response_code = Some(code.clone());
        let (message, _, _) = self.code_text(&code);
        let host_time = match (d.get_text(a, "local_date"), d.get_text(a, "local_time")) {
            (Some(date), Some(time)) => Some(format!("{date} {time}")),
            _ => None,
        };
        let skew = host_time.as_deref().and_then(|t| clock_skew(t, now));
        let mut out = SignInOutcome {
            approved: false,
            response_code: code.clone(),
            message,
            stan: format!("{stan:06}"),
            batch: format!("{:06}", self.state.batch_number),
            host_time,
            clock_skew_seconds: skew,
            pin_kcv: None,
            mac_kcv: None,
            pending_sent: Vec::new(),
        };
        if !self.dialect.profile.is_approved(&code) {
            self.state.session = None;
            return Ok(out);
        }
        let keys = security::KeyCryptograms::from_answer(&self.dialect, a)?;
        // Checks both key check values; a mismatch means the keys are not usable.
        keys.unwrap(&self.scheme, &self.tmk)?;
        out.pin_kcv = Some(keys.pin_kcv.clone());
        out.mac_kcv = Some(keys.mac_kcv.clone());
        if let Some(Ok(host_batch)) = d.get_number(a, "batch_number") {
            let open_entries = self
                .state
                .entries
                .iter()
                .any(|e| !e.settled && e.batch == self.state.batch_number);
            if !open_entries && (1..=999_999).contains(&host_batch) {
                self.state.batch_number = host_batch as u32;
            }
        }
        out.batch = format!("{:06}", self.state.batch_number);
        self.state.session = Some(Session {
            host: self.config.host.clone(),
            dialect: self.dialect.name.clone(),
            date: now.date_naive().to_string(),
            at: now.to_rfc3339(),
            keys,
        });
        out.approved = true;
        Ok(out)
    }

    /// Sends the reversals and repeats owed to the host, oldest first, each up
    /// to the configured attempts; stops at the first that cannot be delivered.
    pub async fn flush_pending(&mut self) -> Result<Vec<PendingReport>, EngineError> {
        self.drain(1).await
    }

    /// Sends what is owed like [`Terminal::flush_pending`], journaling the
    /// progress once every `batch` acknowledged items instead of around each
    /// one. A crash then loses at most `batch` acknowledgements, and those
    /// items are sent again with the same STANs — the host answers a repeat
    /// of an advice or reversal without applying it twice — so nothing is
    /// lost or doubled; draining a long queue just costs far fewer fsyncs.
    pub async fn drain(&mut self, batch: usize) -> Result<Vec<PendingReport>, EngineError> {
        let batch = batch.max(1);
        self.defer_saves = batch > 1;
        let mut reports = Vec::new();
        let mut unsaved = 0;
        let result = async {
            while let Some(idx) = self.state.pending.iter().position(|p| p.armed) {
                let report = self.send_pending(idx).await?;
                let delivered = report.acknowledged;
                reports.push(report);
                unsaved += 1;
                if unsaved >= batch {
                    self.store.save(&self.state)?;
                    unsaved = 0;
                }
                if !delivered {
                    break;
                }
            }
            Ok::<(), EngineError>(())
        }
        .await;
        self.defer_saves = false;
        if unsaved > 0 {
            self.save()?;
        }
        result.map(|()| reports)
    }

    /// Journals now, unless a drain batches its saves.
    fn save_unless_batched(&mut self) -> Result<(), EngineError> {
        if self.defer_saves {
            Ok(())
        } else {
            self.save()
        }
    }

    async fn send_pending(&mut self, idx: usize) -> Result<PendingReport, EngineError> {
        let keys = self.session_keys_cached()?;
        let item = self.state.pending[idx].clone();
        let mut msg = queued_message(&self.dialect, &item.message)?;
        // The card goes back in from the journal, where it is sealed.
        if let Some(card) = self
            .state
            .entry(item.entry)
            .map(|e| self.card_of(e))
            .transpose()?
            .flatten()
        {
            self.dialect.set_text(&mut msg, "pan", card.pan.expose())?;
            if let Some(e) = card.expiry {
                self.dialect.set_text(&mut msg, "expiry", &e.yymm())?;
            }
        }
        let entry_kind = self.state.entry(item.entry).map(|e| e.kind);
        let maced = match item.kind {
            PendingKind::Reversal => true,
            PendingKind::Repeat => security::kind_is_maced(&self.dialect, entry_kind),
        };
        let mut report = PendingReport {
            kind: item.kind,
            reason: item.reason.clone(),
            stan: format!("{:06}", item.stan),
            mti: item.first_mti.clone(),
            attempts: item.attempts,
            acknowledged: false,
            response_code: None,
            host_unreachable: false,
        };
        for _ in 0..self.config.pending_attempts.max(1) {
            let mti = if self.state.pending[idx].attempts == 0 {
                &item.first_mti
            } else {
                &item.repeat_mti
            };
            msg.set_mti(mti)
                .map_err(|e| self.dialect_err(e.to_string()))?;
            report.mti = mti.clone();
            // Count the attempt before it leaves, so a restart repeats rather than re-sends.
            self.state.pending[idx].attempts += 1;
            report.attempts = self.state.pending[idx].attempts;
            self.save_unless_batched()?;
            match self.exchange(&mut msg, maced.then_some(&keys.mac)).await? {
                Reply::Answer(a) => {
                    let code = self
                        .dialect
                        .get_text(&a, "response_code")
                        .unwrap_or("")
                        .to_string();
                    report.response_code = Some(code.clone());
                    let approved = self.dialect.profile.is_approved(&code);
                    if !approved && self.dialect.profile.is_transient_refusal(&code) {
                        // "Not now" (sign in again, keys changed, host
                        // trouble): the item stays owed as it is.
                        report.reason = format!(
                            "{}; the host answered {}",
                            item.reason,
                            self.dialect.profile.explain(&code)
                        );
                        break;
                    }
                    if item.kind == PendingKind::Reversal && !approved {
                        report.reason = format!(
                            "{}; the host refused the reversal with code {code}",
                            item.reason
                        );
                        continue;
                    }
                    let offline_advice = self
                        .state
                        .entry(item.entry)
                        .is_some_and(|e| e.offline && e.status == Status::OfflineApproved);
                    if offline_advice && !approved {
                        // The host refused an offline approval: keep the item,
                        // marked, for the operator to see; it is not sent again.
                        let p = &mut self.state.pending[idx];
                        p.rejected = Some(code.clone());
                        p.armed = false;
                        if let Some(e) = self.state.entry_mut(item.entry) {
                            e.status = Status::AdviceRejected;
                        }
                    } else {
                        self.state.pending.remove(idx);
                    }
                    let rrn = self.dialect.get_text(&a, "rrn").map(str::to_string);
                    let auth = self.dialect.get_text(&a, "auth_code").map(str::to_string);
                    if let Some(e) = self.state.entry_mut(item.entry) {
                        if item.kind == PendingKind::Reversal {
                            e.status = Status::Reversed;
                            e.response_code = Some(code.clone());
                        } else if offline_advice {
                            // The receipt already shows the offline code and
                            // authorization; the host adds its reference.
                            if approved {
                                e.status = Status::Approved;
                                e.rrn = rrn;
                            }
                        } else {
                            e.status = if approved {
                                Status::Approved
                            } else {
                                Status::Declined
                            };
                            e.response_code = Some(code.clone());
                            e.rrn = rrn;
                            e.auth_code = auth;
                        }
                    }
                    if item.kind == PendingKind::Repeat && approved {
                        self.apply_approval_effects(item.entry);
                    }
                    self.save_unless_batched()?;
                    report.acknowledged = true;
                    return Ok(report);
                }
                Reply::NotSent(e) => {
                    // Certainly not sent: the next attempt is still the first.
                    self.state.pending[idx].attempts -= 1;
                    report.attempts = self.state.pending[idx].attempts;
                    self.save_unless_batched()?;
                    report.reason = e.to_string();
                    report.host_unreachable = true;
                    self.last_unreachable = Some(e);
                    break;
                }
                Reply::Lost {
                    detail,
                    unverified_code,
                    ..
                } => {
                    // A host that lost the terminal's session (restarted,
                    // or keys changed) answers "sign in again" without a
                    // MAC: say so, and keep the item owed as it is.
                    if let Some(code) =
                        unverified_code.filter(|c| self.dialect.profile.is_transient_refusal(c))
                    {
                        report.reason = format!(
                            "{}; the host answered {} ({detail})",
                            item.reason,
                            self.dialect.profile.explain(&code)
                        );
                        break;
                    }
                    report.reason = detail;
                }
            }
        }
        Ok(report)
    }

    /// Sends what is owed to the host first. `Ok(None)`: nothing owed any
    /// more; `Ok(Some(e))`: the host cannot be reached at all (nothing new
    /// could go online either — an offline approval is still possible);
    /// `Err`: something owed could not be delivered although the host was
    /// there, so nothing new may be sent.
    async fn require_pending_cleared(&mut self) -> Result<Option<LinkError>, EngineError> {
        self.last_unreachable = None;
        let reports = self.flush_pending().await?;
        let owed = self.state.pending.iter().filter(|p| p.armed).count();
        if owed == 0 {
            return Ok(None);
        }
        let last = reports.last();
        if last.is_some_and(|r| r.host_unreachable)
            && let Some(e) = self.last_unreachable.take()
        {
            return Ok(Some(e));
        }
        let reason = last
            .map(|r| r.reason.clone())
            .unwrap_or_else(|| "not sent yet".into());
        Err(EngineError::PendingNotCleared {
            count: owed,
            reason,
        })
    }

    /// How much is owed to the host and how much was approved offline.
    pub fn queue_status(&self) -> crate::journal::QueueStatus {
        let now = Local::now();
        let mut q = crate::journal::QueueStatus::default();
        for p in &self.state.pending {
            if p.rejected.is_some() {
                q.rejected += 1;
                continue;
            }
            if !p.armed {
                q.in_flight += 1;
                continue;
            }
            q.depth += 1;
            match p.kind {
                PendingKind::Reversal => q.reversals += 1,
                PendingKind::Repeat => q.advices += 1,
            }
            if let Ok(t) = DateTime::parse_from_rfc3339(&p.created_at) {
                let age = (now - t.with_timezone(&Local)).num_seconds();
                q.oldest_age_seconds = Some(q.oldest_age_seconds.map_or(age, |a: i64| a.max(age)));
            }
        }
        for e in self
            .state
            .entries
            .iter()
            .filter(|e| e.status == Status::OfflineApproved)
        {
            q.offline_count += 1;
            q.offline_amount += e.amount.unwrap_or(0);
        }
        q
    }

    fn find_by_rrn(&self, rrn: &str, kinds: &[TxnKind]) -> Option<&Entry> {
        self.state
            .entries
            .iter()
            .rev()
            .find(|e| e.rrn.as_deref() == Some(rrn) && kinds.contains(&e.kind))
    }

    fn card_of(&self, entry: &Entry) -> Result<Option<CardInput>, EngineError> {
        let Some(sealed) = &entry.card_sealed else {
            return Ok(None);
        };
        let plain = self.sealer.open(sealed)?;
        let text = String::from_utf8_lossy(&plain).to_string();
        let (pan, expiry) = text.split_once('=').unwrap_or((&text, ""));
        let pan = Pan::unchecked(pan)?;
        let expiry = if expiry.is_empty() {
            None
        } else {
            Some(Expiry::parse_yymm(expiry)?)
        };
        Ok(Some(CardInput::manual(pan, expiry)))
    }

    fn today_debits(&self, now: &DateTime<Local>) -> u64 {
        let today = now.date_naive().to_string();
        self.state
            .entries
            .iter()
            .filter(|e| e.at.starts_with(&today))
            .filter(|e| {
                matches!(e.kind, TxnKind::Sale | TxnKind::Completion)
                    && matches!(e.status, Status::Approved | Status::OfflineApproved)
            })
            .filter_map(|e| e.amount)
            .sum()
    }

    fn check_limits(
        &self,
        kind: TxnKind,
        amount: u64,
        confirmed: bool,
        now: &DateTime<Local>,
    ) -> Result<(), EngineError> {
        let limits = self.config.limits;
        let moves_money = matches!(
            kind,
            TxnKind::Sale | TxnKind::Preauth | TxnKind::Completion | TxnKind::Refund
        );
        if !moves_money {
            return Ok(());
        }
        if let Some(max) = limits.per_transaction
            && amount > max.0
        {
            return Err(EngineError::OverTransactionLimit {
                amount: self.fmt_amount(amount),
                limit: self.fmt_amount(max.0),
            });
        }
        if let Some(daily) = limits.daily
            && matches!(kind, TxnKind::Sale | TxnKind::Completion)
        {
            let total = self.today_debits(now) + amount;
            if total > daily.0 {
                return Err(EngineError::OverDailyLimit {
                    total: self.fmt_amount(total),
                    limit: self.fmt_amount(daily.0),
                });
            }
        }
        if let Some(threshold) = limits.confirm_above
            && amount > threshold.0
            && !confirmed
        {
            return Err(EngineError::NeedsConfirmation {
                amount: self.fmt_amount(amount),
                threshold: self.fmt_amount(threshold.0),
            });
        }
        Ok(())
    }

    /// Decides the concrete kind, the original and the card and amount to use.
    fn resolve(&self, req: &TxnRequest, history: Option<&Entry>) -> Result<Resolved, EngineError> {
        let amount = req.amount.map(|a| a.0);
        let need_rrn = |what: &str| {
            req.original_rrn.clone().ok_or_else(|| {
                EngineError::Missing(format!(
                    "{what} needs the reference number (RRN) of the original transaction"
                ))
            })
        };
        if req.payment_code.is_some() {
            if req.kind != TxnKind::Sale {
                return Err(EngineError::Missing(format!(
                    "a QR payment code pays for a sale only; a {} needs a card",
                    req.kind
                )));
            }
            if req.card.is_some() || req.pin.is_some() {
                return Err(EngineError::Missing(
                    "a QR code payment takes the payment code alone, without a card or PIN".into(),
                ));
            }
            if amount.unwrap_or(0) == 0 {
                return Err(EngineError::Missing("enter an amount above zero".into()));
            }
            if self.dialect.profile.element("payment_code").is_none() {
                return Err(self.dialect_err(
                    "cannot carry a QR payment code (no payment_code element); take a card",
                ));
            }
            return Ok(Resolved {
                kind: TxnKind::Sale,
                original: None,
                card: None,
                amount,
            });
        }
        match req.kind {
            TxnKind::Sale | TxnKind::Preauth | TxnKind::Balance => {
                let card = req.card.clone().ok_or_else(|| {
                    EngineError::Missing(
                        "no card: tap, insert or swipe the card, or key in its number".into(),
                    )
                })?;
                if req.kind != TxnKind::Balance && amount.unwrap_or(0) == 0 {
                    return Err(EngineError::Missing("enter an amount above zero".into()));
                }
                let amount = if req.kind == TxnKind::Balance {
                    None
                } else {
                    amount
                };
                Ok(Resolved {
                    kind: req.kind,
                    original: None,
                    card: Some(card),
                    amount,
                })
            }
            TxnKind::Void => {
                let rrn = need_rrn("a void")?;
                let orig = self
                    .state
                    .entries
                    .iter()
                    .rev()
                    .find(|e| e.rrn.as_deref() == Some(rrn.as_str()) && !e.settled && e.kind != TxnKind::Balance)
                    .cloned()
                    .ok_or(EngineError::OriginalNotFound {
                        rrn: rrn.clone(),
                        hint: "a void works only for transactions of the open batch; use a refund for older ones",
                    })?;
                let kind = match (orig.kind, orig.status) {
                    (TxnKind::Sale, Status::Approved) => TxnKind::Void,
                    (TxnKind::Completion, Status::Approved) => TxnKind::CompletionVoid,
                    (TxnKind::Preauth, Status::Approved) => TxnKind::PreauthVoid,
                    (TxnKind::Preauth, Status::Completed) => {
                        return Err(EngineError::OriginalNotUsable {
                            rrn,
                            state: "a completed pre-authorization".into(),
                            what: "voided; void its completion instead",
                        });
                    }
                    (k, s) => {
                        return Err(EngineError::OriginalNotUsable {
                            rrn,
                            state: describe_state(k, s),
                            what: "voided",
                        });
                    }
                };
                if let Some(a) = amount
                    && Some(a) != orig.amount
                {
                    return Err(EngineError::AmountMismatch(format!(
                        "a void is for the whole original amount ({}), not {}",
                        self.fmt_amount(orig.amount.unwrap_or(0)),
                        self.fmt_amount(a)
                    )));
                }
                let card = self.card_for(req, &orig)?;
                Ok(Resolved {
                    kind,
                    original: Some(orig.clone()),
                    card,
                    amount: orig.amount,
                })
            }
            TxnKind::Completion => {
                let rrn = need_rrn("a completion")?;
                let orig = self
                    .find_by_rrn(&rrn, &[TxnKind::Preauth])
                    .cloned()
                    .or_else(|| history.filter(|h| h.kind == TxnKind::Preauth).cloned());
                match orig {
                    Some(o) => {
                        if o.status != Status::Approved {
                            return Err(EngineError::OriginalNotUsable {
                                rrn,
                                state: describe_state(o.kind, o.status),
                                what: "completed",
                            });
                        }
                        let held = o.amount.unwrap_or(0);
                        let a = amount.unwrap_or(held);
                        if a == 0 || a > held + held * 15 / 100 {
                            return Err(EngineError::AmountMismatch(format!(
                                "a completion may be up to 115% of the pre-authorized {}, not {}",
                                self.fmt_amount(held),
                                self.fmt_amount(a)
                            )));
                        }
                        let card = self.card_for(req, &o)?;
                        Ok(Resolved {
                            kind: TxnKind::Completion,
                            original: Some(o),
                            card,
                            amount: Some(a),
                        })
                    }
                    None => match (&req.card, amount) {
                        (Some(card), Some(a)) if a > 0 => Ok(Resolved {
                            kind: TxnKind::Completion,
                            original: None,
                            card: Some(card.clone()),
                            amount: Some(a),
                        }),
                        _ => Err(EngineError::OriginalNotFound {
                            rrn,
                            hint: "to complete a pre-authorization this terminal no longer holds, give the card and the amount",
                        }),
                    },
                }
            }
            TxnKind::Refund => {
                let rrn = need_rrn("a refund")?;
                let a = amount.filter(|a| *a > 0).ok_or_else(|| {
                    EngineError::Missing("a refund needs the amount to refund".into())
                })?;
                match self
                    .find_by_rrn(&rrn, &[TxnKind::Sale, TxnKind::Completion])
                    .cloned()
                    .or_else(|| {
                        history
                            .filter(|h| matches!(h.kind, TxnKind::Sale | TxnKind::Completion))
                            .cloned()
                    }) {
                    Some(o) => {
                        if !matches!(o.status, Status::Approved) {
                            return Err(EngineError::OriginalNotUsable {
                                rrn,
                                state: describe_state(o.kind, o.status),
                                what: "refunded",
                            });
                        }
                        let refunded: u64 = self
                            .state
                            .entries
                            .iter()
                            .filter(|e| e.kind == TxnKind::Refund && e.status == Status::Approved)
                            .filter(|e| e.original.as_ref().is_some_and(|r| r.rrn == rrn))
                            .filter_map(|e| e.amount)
                            .sum();
                        let left = o.amount.unwrap_or(0).saturating_sub(refunded);
                        if a > left {
                            return Err(EngineError::AmountMismatch(format!(
                                "only {} of the original {} can still be refunded",
                                self.fmt_amount(left),
                                self.fmt_amount(o.amount.unwrap_or(0))
                            )));
                        }
                        let card = self.card_for(req, &o)?;
                        Ok(Resolved {
                            kind: TxnKind::Refund,
                            original: Some(o),
                            card,
                            amount: Some(a),
                        })
                    }
                    None => {
                        let card = req.card.clone().ok_or(EngineError::OriginalNotFound {
                            rrn,
                            hint: "to refund a sale this terminal no longer holds, give the card as well",
                        })?;
                        Ok(Resolved {
                            kind: TxnKind::Refund,
                            original: None,
                            card: Some(card),
                            amount: Some(a),
                        })
                    }
                }
            }
            other => Err(EngineError::Missing(format!(
                "{other} is not run as a card transaction; use sign-in or settlement"
            ))),
        }
    }

    fn card_for(&self, req: &TxnRequest, orig: &Entry) -> Result<Option<CardInput>, EngineError> {
        match &req.card {
            Some(card) => {
                if let Some(masked) = &orig.pan_masked
                    && *masked != card.pan.masked()
                {
                    return Err(EngineError::AmountMismatch(format!(
                        "card {} is not the card of the original transaction ({masked})",
                        card.pan.masked()
                    )));
                }
                Ok(Some(card.clone()))
            }
            None => self.card_of(orig),
        }
    }

    /// Runs a card transaction: sale, balance inquiry, pre-authorization,
    /// completion, void (of a sale, completion or pre-authorization) or refund.
    ///
    /// Declines are `Ok` outcomes with `approved == false`; errors mean the
    /// transaction could not be run (not signed in, limits, host unreachable…).
    pub async fn run(&mut self, req: TxnRequest) -> Result<TxnOutcome, EngineError> {
        let keys = self.session_keys_cached()?;
        let unreachable = self.require_pending_cleared().await?;
        let now = Local::now();
        // The original of a refund or completion may be from an older batch
        // that only the journal still holds.
        let history = match (req.kind, &req.original_rrn) {
            (TxnKind::Refund | TxnKind::Completion, Some(rrn))
                if !self
                    .state
                    .entries
                    .iter()
                    .any(|e| e.rrn.as_deref() == Some(rrn.as_str())) =>
            {
                self.store.find_by_rrn(rrn)?
            }
            _ => None,
        };
        let Resolved {
            kind,
            original,
            card,
            amount,
        } = self.resolve(&req, history.as_ref())?;
        if let Some(a) = amount {
            self.check_limits(kind, a, req.confirmed, &now)?;
        }
        let profile = self
            .dialect
            .profile
            .txn(kind)
            .cloned()
            .ok_or_else(|| self.dialect_err(format!("has no coding for {kind}")))?;
        let (mut msg, stan) = self.request(kind, &now)?;
        let d = Arc::clone(&self.dialect);
        if let Some(card) = &card {
            self.put_card(&mut msg, card, req.pin.is_some())?;
            if let Some(pin) = &req.pin {
                let block = security::pin_block(&self.scheme, &keys, pin, card.pan.expose())?;
                d.set_bytes(&mut msg, "pin_block", &block)?;
            }
        }
        if let Some(code) = &req.payment_code {
            d.set_text(&mut msg, "payment_code", code.expose())?;
            d.set_text(&mut msg, "pos_entry_mode", &EntryMode::Scanned.code(false))?;
        }
        if let Some(a) = amount {
            d.set_number(&mut msg, "amount", a)?;
        }
        d.set_text(&mut msg, "currency", &self.config.currency.numeric_code())?;
        if let Some(o) = &original {
            put_original(&d, &mut msg, o)?;
        } else if let Some(rrn) = &req.original_rrn {
            d.set_text(&mut msg, "rrn", rrn)?;
        }

        let entry_id = self.state.next_entry;
        self.state.next_entry += 1;
        let card_sealed = match &card {
            Some(c) => Some(
                self.sealer.seal(
                    format!(
                        "{}={}",
                        c.pan.expose(),
                        c.expiry.map(|e| e.yymm()).unwrap_or_default()
                    )
                    .as_bytes(),
                )?,
            ),
            None => None,
        };
        self.state.entries.push(Entry {
            id: entry_id,
            kind,
            batch: self.state.batch_number,
            stan,
            at: now.to_rfc3339(),
            local_date: now.format("%m%d").to_string(),
            local_time: now.format("%H%M%S").to_string(),
            mti: msg.mti().to_string(),
            processing_code: d.get_text(&msg, "processing_code").map(str::to_string),
            amount,
            currency: self.config.currency.numeric,
            // A QR payment's void or refund shows the original's masked code.
            pan_masked: match (&card, &req.payment_code) {
                (Some(c), _) => Some(c.pan.masked()),
                (None, Some(code)) => Some(code.masked()),
                (None, None) => original.as_ref().and_then(|o| o.pan_masked.clone()),
            },
            wallet: req
                .payment_code
                .as_ref()
                .map(PaymentCode::wallet)
                .or_else(|| original.as_ref().and_then(|o| o.wallet)),
            card_sealed,
            status: Status::Sending,
            response_code: None,
            rrn: None,
            auth_code: None,
            original: original
                .as_ref()
                .map(|o| OriginalRef {
                    rrn: o.rrn.clone().unwrap_or_default(),
                    entry: Some(o.id),
                })
                .or_else(|| {
                    req.original_rrn
                        .clone()
                        .map(|rrn| OriginalRef { rrn, entry: None })
                }),
            settled: false,
            settled_at: None,
            offline: false,
        });
        // Write ahead: the journal entry and the message that would undo or
        // repeat this request are on disk before the request leaves.
        let guard = if profile.reversible {
            Some(self.prepare_reversal(&msg, entry_id, &now)?)
        } else if matches!(kind, TxnKind::Refund | TxnKind::Advice) {
            Some(self.prepare_repeat(&msg, entry_id, stan)?)
        } else {
            None
        };
        if let Some(item) = guard {
            self.state.pending.push(item);
        }
        self.save()?;

        let reply = match unreachable {
            // Something owed could not even be sent: the host is unreachable,
            // so this request is not sent either (nothing may overtake what is owed).
            Some(e) => Reply::NotSent(e),
            None => {
                self.exchange(&mut msg, profile.mac.then_some(&keys.mac))
                    .await?
            }
        };
        let reversal = match reply {
            Reply::Answer(a) => {
                let code = d.get_text(&a, "response_code").unwrap_or("").to_string();
                let approved = d.profile.is_approved(&code);
                self.state.pending.retain(|p| p.entry != entry_id);
                if let Some(e) = self.state.entry_mut(entry_id) {
                    e.status = if approved {
                        Status::Approved
                    } else {
                        Status::Declined
                    };
                    e.response_code = Some(code);
                    e.rrn = d.get_text(&a, "rrn").map(str::to_string);
                    e.auth_code = d.get_text(&a, "auth_code").map(str::to_string);
                }
                if approved {
                    self.apply_approval_effects(entry_id);
                }
                self.save()?;
                let balance = if kind == TxnKind::Balance {
                    d.get_text(&a, "additional_amounts")
                        .and_then(|s| self.parse_balance(s))
                } else {
                    None
                };
                return Ok(self.outcome(entry_id, balance, None));
            }
            Reply::NotSent(e) => {
                self.state.pending.retain(|p| p.entry != entry_id);
                let offline = self.offline_refusal(kind, amount.unwrap_or(0), &req);
                if self.config.offline.is_some() && offline.is_none() {
                    self.approve_offline(entry_id, &msg, stan)?;
                    return Ok(self.outcome(entry_id, None, None));
                }
                if let Some(en) = self.state.entry_mut(entry_id) {
                    en.status = Status::NotSent;
                }
                self.save()?;
                return Err(match (self.config.offline.is_some(), offline) {
                    (true, Some(reason)) => EngineError::OfflineRefused {
                        reason,
                        link: e.to_string(),
                    },
                    _ => EngineError::HostUnreachable(e),
                });
            }
            Reply::Lost {
                bad_mac, detail, ..
            } => {
                let Some(idx) = self.state.pending.iter().position(|p| p.entry == entry_id) else {
                    if let Some(en) = self.state.entry_mut(entry_id) {
                        en.status = Status::Declined;
                    }
                    self.save()?;
                    return Err(EngineError::NoAnswer(detail));
                };
                let item = &mut self.state.pending[idx];
                item.armed = true;
                item.reason = detail;
                let new_status = match item.kind {
                    PendingKind::Reversal => {
                        if bad_mac {
                            let reason = &d.profile.reversal.reason_bad_mac;
                            item.message = with_reason(&d, &item.message, reason)?;
                        }
                        Status::ReversalPending
                    }
                    PendingKind::Repeat => Status::RepeatPending,
                };
                if let Some(en) = self.state.entry_mut(entry_id) {
                    en.status = new_status;
                }
                self.save()?;
                self.flush_pending().await?.into_iter().next()
            }
        };
        Ok(self.outcome(entry_id, None, reversal))
    }

    /// Why this transaction may not be approved offline, or `None` if it may.
    fn offline_refusal(&self, kind: TxnKind, amount: u64, req: &TxnRequest) -> Option<String> {
        let Some(limits) = &self.config.offline else {
            return Some("offline approval is not enabled on this terminal".into());
        };
        if kind != TxnKind::Sale {
            return Some(format!("a {kind} always needs the host"));
        }
        if req.payment_code.is_some() {
            return Some("a QR code payment needs the wallet's answer through the host".into());
        }
        if req.pin.is_some() && limits.pin_requires_online {
            return Some("a sale verified by PIN must be approved online".into());
        }
        if amount > limits.floor_limit.0 {
            return Some(format!(
                "the amount is above the offline floor limit of {}",
                self.fmt_amount(limits.floor_limit.0)
            ));
        }
        let outstanding: u64 = self
            .state
            .entries
            .iter()
            .filter(|e| e.status == Status::OfflineApproved)
            .filter_map(|e| e.amount)
            .sum();
        if outstanding + amount > limits.cumulative_limit.0 {
            return Some(format!(
                "offline approvals not yet sent to the host would exceed {}",
                self.fmt_amount(limits.cumulative_limit.0)
            ));
        }
        let queued = self
            .state
            .pending
            .iter()
            .filter(|p| p.rejected.is_none())
            .count();
        if queued >= limits.max_queue {
            return Some(format!(
                "{queued} messages already wait for the host (the limit is {})",
                limits.max_queue
            ));
        }
        None
    }

    /// Approves the sale offline and queues its advice: the request that
    /// could not be sent becomes an advice (0220) carrying the offline
    /// response code and authorization code, with the same STAN, sent by
    /// the forwarder when the host is back.
    fn approve_offline(
        &mut self,
        entry_id: u64,
        request: &Message,
        stan: u32,
    ) -> Result<(), EngineError> {
        let d = Arc::clone(&self.dialect);
        let advice = d
            .profile
            .txn(TxnKind::Advice)
            .cloned()
            .ok_or_else(|| self.dialect_err("has no coding for advices"))?;
        let mut m = request.clone();
        m.set_mti(&advice.mti)
            .map_err(|e| self.dialect_err(e.to_string()))?;
        if let Some(pc) = &advice.processing_code {
            d.set_text(&mut m, "processing_code", pc)?;
        }
        for (element, value) in &advice.set {
            d.set_text(&mut m, element, value)?;
        }
        let auth_code = format!("OFF{:03}", stan % 1000);
        d.set_text(&mut m, "response_code", OFFLINE_CODE)?;
        d.set_text(&mut m, "auth_code", &auth_code)?;
        m.remove(64);
        m.remove(128);
        for card_data in CARD_DATA {
            d.clear_element(&mut m, card_data);
        }
        let item = PendingItem {
            entry: entry_id,
            kind: PendingKind::Repeat,
            armed: true,
            message: hex::encode_upper(d.encode(&m)?),
            first_mti: advice.mti.clone(),
            repeat_mti: repeat_mti(&advice.mti),
            attempts: 0,
            reason: "approved offline; the advice waits for the host".into(),
            stan,
            created_at: Local::now().to_rfc3339(),
            rejected: None,
        };
        self.state.pending.push(item);
        if let Some(e) = self.state.entry_mut(entry_id) {
            e.status = Status::OfflineApproved;
            e.offline = true;
            e.response_code = Some(OFFLINE_CODE.into());
            e.auth_code = Some(auth_code);
        }
        self.save()
    }

    /// The reversal of `request`, written ahead unarmed.
    fn prepare_reversal(
        &mut self,
        request: &Message,
        entry: u64,
        now: &DateTime<Local>,
    ) -> Result<PendingItem, EngineError> {
        let d = &self.dialect;
        let rules = d.profile.reversal.clone();
        let mut r = request.clone();
        r.set_mti(&rules.mti)
            .map_err(|e| self.dialect_err(e.to_string()))?;
        for card_data in CARD_DATA {
            d.clear_element(&mut r, card_data);
        }
        let request_stan = d
            .get_number(request, "stan")
            .and_then(Result::ok)
            .unwrap_or(0) as u32;
        let stan = if rules.new_stan {
            let s = self.state.next_stan();
            let d = &self.dialect;
            d.set_text(&mut r, "original_mti", request.mti())?;
            d.set_number(&mut r, "original_stan", u64::from(request_stan))?;
            let sent = d
                .get_text(request, "transmission_datetime")
                .map(str::to_string);
            let sent =
                sent.unwrap_or_else(|| now.with_timezone(&Utc).format("%m%d%H%M%S").to_string());
            d.set_text(&mut r, "original_datetime", &sent)?;
            d.set_number(&mut r, "stan", u64::from(s))?;
            s
        } else {
            request_stan
        };
        let d = &self.dialect;
        d.set_text(&mut r, "reversal_reason", &rules.reason_no_answer)?;
        let wire = d.encode(&r)?;
        Ok(PendingItem {
            entry,
            kind: PendingKind::Reversal,
            armed: false,
            message: hex::encode_upper(wire),
            first_mti: rules.mti.clone(),
            repeat_mti: rules.repeat_mti.clone(),
            attempts: 0,
            reason: String::new(),
            stan,
            created_at: Local::now().to_rfc3339(),
            rejected: None,
        })
    }

    /// The repeat of a non-reversible `request`, written ahead unarmed.
    fn prepare_repeat(
        &mut self,
        request: &Message,
        entry: u64,
        stan: u32,
    ) -> Result<PendingItem, EngineError> {
        let mut r = request.clone();
        r.remove(64);
        r.remove(128);
        for card_data in CARD_DATA {
            self.dialect.clear_element(&mut r, card_data);
        }
        let wire = self.dialect.encode(&r)?;
        let repeat = repeat_mti(request.mti());
        Ok(PendingItem {
            entry,
            kind: PendingKind::Repeat,
            armed: false,
            message: hex::encode_upper(wire),
            first_mti: repeat.clone(),
            repeat_mti: repeat,
            attempts: 0,
            reason: String::new(),
            stan,
            created_at: Local::now().to_rfc3339(),
            rejected: None,
        })
    }

    /// What an approval changes elsewhere in the journal.
    fn apply_approval_effects(&mut self, entry_id: u64) {
        let Some(e) = self.state.entry(entry_id) else {
            return;
        };
        let (kind, orig) = (e.kind, e.original.as_ref().and_then(|o| o.entry));
        let new_status = match kind {
            TxnKind::Void | TxnKind::CompletionVoid | TxnKind::PreauthVoid => Status::Voided,
            TxnKind::Completion => Status::Completed,
            _ => return,
        };
        if let Some(o) = orig.and_then(|id| self.state.entry_mut(id)) {
            o.status = new_status;
        }
    }

    fn parse_balance(&self, s: &str) -> Option<String> {
        // Sets of 20: account type (2), amount type (2), currency (3), C/D, amount (12).
        let sets: Vec<&str> = s
            .as_bytes()
            .chunks(20)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        let set = sets
            .iter()
            .find(|c| c.len() == 20 && &c[2..4] == "02")
            .or_else(|| sets.first())?;
        if set.len() != 20 {
            return None;
        }
        let minor: u64 = set[8..20].parse().ok()?;
        let sign = if &set[7..8] == "D" { "-" } else { "" };
        Some(format!("{sign}{}", self.fmt_amount(minor)))
    }

    fn outcome(
        &self,
        entry_id: u64,
        balance: Option<String>,
        reversal: Option<PendingReport>,
    ) -> TxnOutcome {
        let e = self.state.entry(entry_id).cloned();
        let Some(e) = e else {
            return TxnOutcome {
                kind: TxnKind::Sale,
                approved: false,
                status: Status::NotSent,
                response_code: None,
                message: "transaction not found in the journal".into(),
                message_zh: "日志中找不到交易".into(),
                action: None,
                action_zh: None,
                pin_retry: false,
                stan: String::new(),
                batch: String::new(),
                rrn: None,
                auth_code: None,
                amount: None,
                currency: self.config.currency.alpha.into(),
                pan: None,
                wallet: None,
                balance: None,
                original_rrn: None,
                reversal,
                journal_id: entry_id,
            };
        };
        let approved = matches!(e.status, Status::Approved | Status::OfflineApproved);
        let (message, message_zh, action) = match (e.status, &e.response_code) {
            (Status::Reversed, _) => (
                "No valid answer from the host; the transaction was reversed and nothing was charged".to_string(),
                "主机无有效应答，交易已冲正，未扣款".to_string(),
                Some(("Run the transaction again".to_string(), "请重新交易".to_string())),
            ),
            (Status::ReversalPending, _) => (
                "No valid answer from the host; a reversal is owed and will be sent before the next transaction".to_string(),
                "主机无有效应答，冲正将在下笔交易前发送".to_string(),
                Some((
                    "Do not hand over goods; check the network, then try again".to_string(),
                    "请勿交付商品；检查网络后重试".to_string(),
                )),
            ),
            (Status::RepeatPending, _) => (
                "No answer from the host yet; the terminal keeps sending it until the host confirms".to_string(),
                "主机尚未应答，终端将重发直至确认".to_string(),
                Some((
                    "Check the network; the transaction will be confirmed later".to_string(),
                    "请检查网络；交易稍后将确认".to_string(),
                )),
            ),
            (_, Some(code)) => self.code_text(code),
            (_, None) => ("No answer".to_string(), "无应答".to_string(), None),
        };
        TxnOutcome {
            kind: e.kind,
            approved,
            status: e.status,
            response_code: e.response_code.clone(),
            message,
            message_zh,
            action: action.clone().filter(|_| !approved).map(|a| a.0),
            action_zh: action.filter(|_| !approved).map(|a| a.1),
            pin_retry: !approved
                && e.response_code
                    .as_deref()
                    .is_some_and(|c| self.dialect.profile.means(c, Outcome::IncorrectPin)),
            stan: format!("{:06}", e.stan),
            batch: format!("{:06}", e.batch),
            rrn: e.rrn.clone(),
            auth_code: e.auth_code.clone(),
            amount: e.amount.map(|a| self.fmt_amount(a)),
            currency: self.config.currency.alpha.into(),
            pan: e.pan_masked.clone(),
            wallet: e.wallet,
            balance,
            original_rrn: e.original.as_ref().map(|o| o.rrn.clone()),
            reversal,
            journal_id: e.id,
        }
    }

    /// Totals of the open batch as the terminal counts them.
    pub fn totals(&self) -> BatchTotals {
        let mut t = BatchTotals::default();
        for e in self
            .state
            .entries
            .iter()
            .filter(|e| e.batch == self.state.batch_number && !e.settled)
        {
            if e.status != Status::Approved {
                continue;
            }
            match e.kind {
                TxnKind::Sale | TxnKind::Completion | TxnKind::Advice => {
                    t.debit_count += 1;
                    t.debit_amount += e.amount.unwrap_or(0);
                }
                TxnKind::Refund => {
                    t.credit_count += 1;
                    t.credit_amount += e.amount.unwrap_or(0);
                }
                _ => {}
            }
        }
        t
    }

    fn put_totals(&self, m: &mut Message, t: &BatchTotals) -> Result<(), EngineError> {
        let d = &self.dialect;
        d.set_number(m, "debit_count", u64::from(t.debit_count))?;
        d.set_number(m, "debit_amount", t.debit_amount)?;
        d.set_number(m, "credit_count", u64::from(t.credit_count))?;
        d.set_number(m, "credit_amount", t.credit_amount)?;
        Ok(())
    }

    /// Settles the open batch: sends the totals; if the host's disagree,
    /// uploads every counted transaction and ends the upload; closes the
    /// batch and opens the next one. Anything owed to the host goes first,
    /// and settlement refuses to run while something cannot be delivered.
    pub async fn settle(&mut self) -> Result<SettlementOutcome, EngineError> {
        let keys = self.session_keys_cached()?;
        let before = self.state.pending.iter().filter(|p| p.armed).count();
        if let Some(e) = self.require_pending_cleared().await? {
            return Err(EngineError::PendingNotCleared {
                count: before,
                reason: e.to_string(),
            });
        }
        let pending_sent = Vec::new();
        let now = Local::now();
        let totals = self.totals();
        let profile = self
            .dialect
            .profile
            .txn(TxnKind::Settlement)
            .cloned()
            .ok_or_else(|| self.dialect_err("has no settlement coding"))?;
        let (mut msg, _) = self.request(TxnKind::Settlement, &now)?;
        self.put_totals(&mut msg, &totals)?;
        self.save()?;
        let answer = self
            .exchange_required(
                &mut msg,
                profile.mac.then_some(&keys.mac),
                "the settlement request",
            )
            .await?;
        let d = Arc::clone(&self.dialect);
        let code = d
            .get_text(&answer, "response_code")
            .unwrap_or("")
            .to_string();
        let oob = &d.profile.settlement.out_of_balance;
        let out_of_balance = match (&oob.response_code, &oob.element, &oob.value) {
            (Some(c), _, _) => *c == code,
            (None, Some(el), Some(v)) => {
                d.profile.is_approved(&code) && d.get_text(&answer, el) == Some(v.as_str())
            }
            _ => false,
        };
        if !out_of_balance && !d.profile.is_approved(&code) {
            let (text, _, _) = self.code_text(&code);
            return Err(EngineError::Settlement(format!(
                "the host refused it: {code} {text}"
            )));
        }
        let mut uploaded = 0;
        if out_of_balance {
            uploaded = self.upload_batch(&keys, &totals).await?;
        }
        let batch = self.state.batch_number;
        let settled_at = now.to_rfc3339();
        for e in self
            .state
            .entries
            .iter_mut()
            .filter(|e| e.batch == batch && !e.settled)
        {
            e.settled = true;
            e.settled_at = Some(settled_at.clone());
        }
        self.state.settlements.push(SettlementRecord {
            batch,
            at: now.to_rfc3339(),
            totals,
            balanced: !out_of_balance,
            uploaded,
        });
        self.state.batch_number = batch % 999_999 + 1;
        self.save()?;
        let archived = self.store.archive()?;
        tracing::info!(archived, "settled batch moved to history");
        if let Some(days) = self.config.retention_days {
            let pruned = self.store.prune(days)?;
            tracing::info!(pruned, days, "journal retention applied");
        }
        // The journal keeps the history; memory keeps what flows need: today's
        // entries (daily limits, voids) and pre-authorizations still open.
        let today = now.date_naive().to_string();
        self.state.entries.retain(|e| {
            !e.settled
                || e.at.starts_with(&today)
                || (e.kind == TxnKind::Preauth && e.status == Status::Approved)
        });
        Ok(SettlementOutcome {
            batch: format!("{batch:06}"),
            next_batch: format!("{:06}", self.state.batch_number),
            totals,
            debit_amount: self.fmt_amount(totals.debit_amount),
            credit_amount: self.fmt_amount(totals.credit_amount),
            balanced: !out_of_balance,
            uploaded,
            response_code: code,
            pending_sent,
        })
    }

    async fn exchange_required(
        &mut self,
        msg: &mut Message,
        mac_key: Option<&SecretKey>,
        what: &str,
    ) -> Result<Message, EngineError> {
        match self.exchange(msg, mac_key).await? {
            Reply::Answer(a) => Ok(a),
            Reply::NotSent(e) => Err(EngineError::HostUnreachable(e)),
            Reply::Lost { detail, .. } => Err(EngineError::Settlement(format!(
                "no valid answer to {what}: {detail}"
            ))),
        }
    }

    async fn upload_batch(
        &mut self,
        keys: &WorkingKeys,
        totals: &BatchTotals,
    ) -> Result<u32, EngineError> {
        let d = Arc::clone(&self.dialect);
        let batch = self.state.batch_number;
        let counted: Vec<Entry> = self
            .state
            .entries
            .iter()
            .filter(|e| e.batch == batch && !e.settled && e.status == Status::Approved)
            .filter(|e| {
                matches!(
                    e.kind,
                    TxnKind::Sale | TxnKind::Completion | TxnKind::Advice | TxnKind::Refund
                )
            })
            .cloned()
            .collect();
        let upload_mac = d.profile.txn(TxnKind::BatchUpload).is_some_and(|t| t.mac);
        let now = Local::now();
        for e in &counted {
            let (mut m, _) = self.request(TxnKind::BatchUpload, &now)?;
            if let Some(card) = self.card_of(e)? {
                d.set_text(&mut m, "pan", card.pan.expose())?;
            }
            if let Some(pc) = &e.processing_code {
                d.set_text(&mut m, "processing_code", pc)?;
            }
            d.set_number(&mut m, "amount", e.amount.unwrap_or(0))?;
            d.set_number(&mut m, "stan", u64::from(e.stan))?;
            d.set_text(&mut m, "local_date", &e.local_date)?;
            d.set_text(&mut m, "local_time", &e.local_time)?;
            if let Some(rrn) = &e.rrn {
                d.set_text(&mut m, "rrn", rrn)?;
            }
            if let Some(code) = &e.auth_code {
                d.set_text(&mut m, "auth_code", code)?;
            }
            d.set_text(&mut m, "currency", &self.config.currency.numeric_code())?;
            let a = self
                .exchange_required(&mut m, upload_mac.then_some(&keys.mac), "a batch upload")
                .await?;
            let code = d.get_text(&a, "response_code").unwrap_or("");
            if !d.profile.is_approved(code) {
                return Err(EngineError::Settlement(format!(
                    "the host refused the upload of STAN {:06} with code {code}",
                    e.stan
                )));
            }
        }
        let end_mac = d
            .profile
            .txn(TxnKind::BatchUploadEnd)
            .is_some_and(|t| t.mac);
        let (mut end, _) = self.request(TxnKind::BatchUploadEnd, &now)?;
        d.set_number(&mut end, "upload_count", counted.len() as u64)?;
        self.put_totals(&mut end, totals)?;
        self.save()?;
        let a = self
            .exchange_required(
                &mut end,
                end_mac.then_some(&keys.mac),
                "the end of the batch upload",
            )
            .await?;
        let code = d.get_text(&a, "response_code").unwrap_or("");
        if !d.profile.is_approved(code) {
            return Err(EngineError::Settlement(format!(
                "the host refused the end of the batch upload with code {code}"
            )));
        }
        Ok(counted.len() as u32)
    }
}

/// Elements that point at the original of a void, completion or refund.
fn put_original(d: &Dialect, m: &mut Message, o: &Entry) -> Result<(), EngineError> {
    if let Some(rrn) = &o.rrn {
        d.set_text(m, "rrn", rrn)?;
    }
    if let Some(code) = &o.auth_code {
        d.set_text(m, "auth_code", code)?;
    }
    d.set_number(m, "original_batch", u64::from(o.batch))?;
    d.set_number(m, "original_stan", u64::from(o.stan))?;
    d.set_text(m, "original_date", &o.local_date)?;
    d.set_text(m, "original_mti", &o.mti)?;
    Ok(())
}

fn with_reason(d: &Dialect, queued: &str, reason: &str) -> Result<String, EngineError> {
    let mut msg = queued_message(d, queued)?;
    d.set_text(&mut msg, "reversal_reason", reason)?;
    Ok(hex::encode_upper(d.encode(&msg)?))
}

/// A queued message: its encoding without card data, PIN block or MAC.
fn queued_message(d: &Dialect, queued: &str) -> Result<Message, EngineError> {
    let problem = |p: String| EngineError::Dialect {
        dialect: d.name.clone(),
        problem: format!("a queued message {p}"),
    };
    let wire = hex::decode(queued).map_err(|e| problem(format!("is not hex: {e}")))?;
    d.decode(&wire)
        .map_err(|e| problem(format!("no longer decodes: {e}")))
}

fn describe_state(kind: TxnKind, status: Status) -> String {
    let s = match status {
        Status::Sending => "still in progress",
        Status::Approved => "approved",
        Status::Declined => "declined",
        Status::NotSent => "never sent",
        Status::ReversalPending => "waiting to be reversed",
        Status::Reversed => "reversed",
        Status::Voided => "already voided",
        Status::OfflineApproved => "approved offline, not yet confirmed by the host",
        Status::AdviceRejected => "approved offline but refused by the host",
        Status::Completed => "already completed",
        Status::RepeatPending => "waiting for the host's confirmation",
    };
    format!("a {s} {kind}")
}

/// Host clock minus terminal clock from the host's `MMDD hhmmss`, taking
/// the year that puts the host date nearest the terminal's.
fn clock_skew(host: &str, now: &DateTime<Local>) -> Option<i64> {
    let (date, time) = host.split_once(' ')?;
    let local = now.naive_local();
    let candidates = [local.year() - 1, local.year(), local.year() + 1];
    candidates
        .iter()
        .filter_map(|y| {
            let d = NaiveDate::parse_from_str(&format!("{y}{date}"), "%Y%m%d").ok()?;
            let t = chrono::NaiveTime::parse_from_str(time, "%H%M%S").ok()?;
            Some(NaiveDateTime::new(d, t))
        })
        .map(|h| (h - local).num_seconds())
        .min_by_key(|s| s.abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyScheme;

    #[test]
    fn answer_and_repeat_mtis() {
        assert_eq!(answer_mti("0200"), "0210");
        assert_eq!(answer_mti("0401"), "0410");
        assert_eq!(answer_mti("0221"), "0230");
        assert_eq!(answer_mti("0800"), "0810");
        assert_eq!(repeat_mti("0220"), "0221");
        assert_eq!(repeat_mti("0400"), "0401");
    }

    #[test]
    fn clock_skew_across_new_year() {
        let now = Local::now();
        let later = now + chrono::Duration::seconds(90);
        let host = later.format("%m%d %H%M%S").to_string();
        let skew = clock_skew(&host, &now).unwrap();
        assert!((89..=90).contains(&skew), "{skew}");
        assert_eq!(clock_skew("1399 250000", &now), None);
    }

    #[test]
    fn key_scheme_of_tmk_follows_the_dialect() {
        // A 16-byte master key serves as 2-key TDES or AES-128.
        assert!(SecretKey::new(KeyScheme::Tdes, &[1u8; 16]).is_ok());
        assert!(SecretKey::new(KeyScheme::Aes, &[1u8; 16]).is_ok());
    }
}
