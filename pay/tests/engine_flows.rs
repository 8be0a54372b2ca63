//! Terminal-side rules of the transaction engine, against a scripted host
//! that speaks the real protocol (real encoding, MACs and key exchange) and
//! does what each test tells it: answer with a code, stay silent, corrupt
//! the MAC, or be unreachable. End-to-end runs against the real acquirer
//! simulator over TLS live in the workspace's `tests/` crate.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use till_pay::card::Pan;
use till_pay::crypto::{Pin, SecretKey};
use till_pay::engine::state::PendingKind;
use till_pay::engine::{
    CardInput, EngineError, Limits, MemoryStore, StateStore, Status, Terminal, TerminalConfig,
    TerminalState, TxnRequest,
};
use till_pay::iso8583::{Dialect, Message, Outcome, TxnKind};
use till_pay::link::{HostLink, LinkError};
use till_pay::money::{Amount, Currency};
use till_pay::security::{self, MacCheck, Scheme, WorkingKeys};

const TMK: [u8; 16] = [0x11; 16];
const DATA_KEY: [u8; 32] = [0x22; 32];
const PAN: &str = "4761739001010010";

/// What the scripted host does with the next request.
#[derive(Clone, Debug)]
enum Act {
    /// Answer with this response code.
    Code(&'static str),
    /// Answer with this response code and set an element in the answer.
    CodeWith(&'static str, &'static str, &'static str),
    /// Read the request, never answer.
    Silent,
    /// Answer approved with a wrong MAC.
    BadMac,
    /// Refuse the connection: nothing is sent.
    Unreachable,
}

#[derive(Default)]
struct HostLog {
    requests: Vec<Message>,
    mac_checks: Vec<MacCheck>,
}

#[derive(Clone)]
struct ScriptedHost {
    dialect: Dialect,
    scheme: Scheme,
    tmk: SecretKey,
    keys: Arc<Mutex<Option<WorkingKeys>>>,
    script: Arc<Mutex<VecDeque<Act>>>,
    log: Arc<Mutex<HostLog>>,
    rrn: Arc<Mutex<u32>>,
}

impl ScriptedHost {
    fn new(dialect: &str) -> ScriptedHost {
        let dialect = Dialect::load(dialect).unwrap();
        let scheme = Scheme::of(&dialect).unwrap();
        ScriptedHost {
            tmk: SecretKey::new(scheme.keys, &TMK).unwrap(),
            dialect,
            scheme,
            keys: Arc::default(),
            script: Arc::default(),
            log: Arc::default(),
            rrn: Arc::default(),
        }
    }

    fn then(&self, acts: &[Act]) {
        self.script.lock().unwrap().extend(acts.iter().cloned());
    }

    fn requests(&self) -> Vec<Message> {
        self.log.lock().unwrap().requests.clone()
    }

    fn answer(&self, req: &Message, code: &str) -> Message {
        let d = &self.dialect;
        let mti = format!(
            "{}{}0",
            &req.mti()[..2],
            char::from(req.mti().as_bytes()[2] + 1)
        );
        let mut a = Message::new(&mti).unwrap();
        a.header = d
            .header
            .as_ref()
            .map(|h| h.answer_to(&req.header))
            .unwrap_or_default();
        for f in &d.profile.answer_echo {
            if let Some(v) = req.get(*f) {
                a.set(*f, v.clone());
            }
        }
        d.set_text(&mut a, "response_code", code).unwrap();
        if d.profile.is_approved(code) {
            let mut n = self.rrn.lock().unwrap();
            *n += 1;
            d.set_text(&mut a, "rrn", &format!("{:012}", 900_000 + *n))
                .unwrap();
            d.set_text(&mut a, "auth_code", &format!("A{:05}", *n))
                .unwrap();
        }
        a
    }
}

impl HostLink for ScriptedHost {
    async fn exchange(&mut self, request: &[u8], _timeout: Duration) -> Result<Vec<u8>, LinkError> {
        let act = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Act::Code("00"));
        if let Act::Unreachable = act {
            return Err(LinkError::Unreachable {
                host: "scripted".into(),
                reason: "connection refused".into(),
            });
        }
        let mac_key = self.keys.lock().unwrap().as_ref().map(|k| k.mac.clone());
        let (req, check) =
            security::open(&self.dialect, &self.scheme, request, mac_key.as_ref()).unwrap();
        {
            let mut log = self.log.lock().unwrap();
            log.requests.push(req.clone());
            log.mac_checks.push(check);
        }
        let (code, extra) = match act {
            Act::Silent => {
                return Err(LinkError::NoAnswer {
                    host: "scripted".into(),
                    waited: Duration::from_millis(1),
                });
            }
            Act::Code(c) => (c, None),
            Act::CodeWith(c, element, value) => (c, Some((element, value))),
            Act::BadMac => ("00", None),
            Act::Unreachable => unreachable!(),
        };
        let mut answer = self.answer(&req, code);
        if let Some((element, value)) = extra {
            self.dialect.set_text(&mut answer, element, value).unwrap();
        }
        if req.mti() == "0800" {
            let keys =
                security::issue_working_keys(&self.dialect, &self.scheme, &self.tmk, &mut answer)
                    .unwrap();
            *self.keys.lock().unwrap() = Some(keys);
            return Ok(self.dialect.encode(&answer).unwrap());
        }
        let key = self.keys.lock().unwrap().as_ref().map(|k| k.mac.clone());
        let mut wire =
            security::seal(&self.dialect, &self.scheme, &mut answer, key.as_ref()).unwrap();
        if matches!(act, Act::BadMac) {
            let last = wire.len() - 1;
            wire[last] ^= 0x55;
        }
        Ok(wire)
    }

    fn reset(&mut self) {}
}

/// A store tests can look into and hand over to a "restarted" terminal.
#[derive(Clone, Default)]
struct SharedStore(Arc<Mutex<MemoryStore>>);

impl StateStore for SharedStore {
    fn load(&mut self) -> Result<TerminalState, till_pay::engine::StoreError> {
        self.0.lock().unwrap().load()
    }
    fn save(&mut self, state: &TerminalState) -> Result<(), till_pay::engine::StoreError> {
        self.0.lock().unwrap().save(state)
    }
}

fn terminal(
    host: &ScriptedHost,
    store: &SharedStore,
    limits: Limits,
) -> Terminal<ScriptedHost, SharedStore> {
    let mut config =
        TerminalConfig::new("TILL0001", "123456789012345", Currency::CNY, "scripted:1");
    config.limits = limits;
    config.host_timeout = Duration::from_millis(200);
    Terminal::new(
        host.dialect.clone(),
        config,
        host.clone(),
        store.clone(),
        &TMK,
        &DATA_KEY,
    )
    .unwrap()
}

fn card() -> CardInput {
    CardInput::manual(Pan::new(PAN).unwrap(), None)
}

fn sale(minor: u64) -> TxnRequest {
    let mut r = TxnRequest::new(TxnKind::Sale);
    r.amount = Some(Amount(minor));
    r.card = Some(card());
    r.pin = Some(Pin::new("1234").unwrap());
    r
}

async fn signed_in(
    dialect: &str,
) -> (
    ScriptedHost,
    SharedStore,
    Terminal<ScriptedHost, SharedStore>,
) {
    let host = ScriptedHost::new(dialect);
    let store = SharedStore::default();
    let mut t = terminal(&host, &store, Limits::default());
    let s = t.sign_in().await.unwrap();
    assert!(s.approved, "{s:?}");
    (host, store, t)
}

#[tokio::test]
async fn card_transactions_need_a_sign_in() {
    let host = ScriptedHost::new("cup");
    let store = SharedStore::default();
    let mut t = terminal(&host, &store, Limits::default());
    let e = t.run(sale(100)).await.unwrap_err();
    assert!(matches!(e, EngineError::NotSignedIn { .. }), "{e}");
    assert!(e.to_string().contains("sign in first"));
    assert!(host.requests().is_empty(), "nothing may reach the host");
}

#[tokio::test]
async fn sign_in_refused_leaves_the_terminal_signed_out() {
    let host = ScriptedHost::new("iso87ascii");
    let store = SharedStore::default();
    let mut t = terminal(&host, &store, Limits::default());
    host.then(&[Act::Code("03")]);
    let s = t.sign_in().await.unwrap();
    assert!(!s.approved);
    assert_eq!(s.response_code, "03");
    assert!(t.state().session.is_none());
    assert_eq!(
        t.state().sign_ins.last().unwrap().response_code.as_deref(),
        Some("03")
    );
}

#[tokio::test]
async fn approved_sale_carries_pin_block_and_mac_in_both_dialects() {
    for dialect in ["cup", "iso87ascii"] {
        let (host, store, mut t) = signed_in(dialect).await;
        let o = t.run(sale(1234)).await.unwrap();
        assert!(o.approved, "{dialect}: {o:?}");
        assert_eq!(o.amount.as_deref(), Some("12.34"));
        assert_eq!(o.pan.as_deref(), Some("476173******0010"));
        assert!(o.rrn.is_some() && o.auth_code.is_some());
        let req = host.requests().pop().unwrap();
        let d = &host.dialect;
        assert_eq!(d.get_text(&req, "amount"), Some("000000001234"));
        assert!(
            d.get_bytes(&req, "pin_block").is_some(),
            "{dialect}: PIN block missing"
        );
        assert_eq!(
            *host.log.lock().unwrap().mac_checks.last().unwrap(),
            MacCheck::Valid,
            "{dialect}"
        );
        // The PIN block deciphers to the PIN under the host's PIN key.
        let keys = host.keys.lock().unwrap().clone().unwrap();
        let block = d.get_bytes(&req, "pin_block").unwrap();
        let (_, pin) = till_pay::crypto::pinblock::decipher(&block, PAN, &keys.pin).unwrap();
        assert_eq!(pin.expose(), "1234");
        // Nothing owed; the journal says approved; the PAN is sealed, not stored.
        let state = store.0.lock().unwrap().state.clone().unwrap();
        assert!(state.pending.is_empty());
        let json = serde_json::to_string(&state).unwrap();
        assert!(!json.contains(PAN), "{dialect}: full PAN in the journal");
        assert_eq!(t.totals().debit_count, 1);
    }
}

#[tokio::test]
async fn a_wrong_pin_may_be_tried_again_but_too_many_may_not() {
    for dialect in ["cup", "iso87ascii"] {
        let (host, _store, mut t) = signed_in(dialect).await;
        let profile = &host.dialect.profile;
        assert_eq!(profile.code_for(Outcome::IncorrectPin), "55", "{dialect}");
        assert_eq!(
            profile.code_for(Outcome::PinTriesExceeded),
            "75",
            "{dialect}"
        );
        host.then(&[Act::Code("55"), Act::Code("75"), Act::Code("51")]);
        let o = t.run(sale(100)).await.unwrap();
        assert!(!o.approved && o.pin_retry, "{dialect}: {o:?}");
        for _ in 0..2 {
            let o = t.run(sale(100)).await.unwrap();
            assert!(!o.approved && !o.pin_retry, "{dialect}: {o:?}");
        }
        let o = t.run(sale(100)).await.unwrap();
        assert!(o.approved && !o.pin_retry, "{dialect}: {o:?}");
    }
}

#[tokio::test]
async fn no_answer_reverses_with_repeats_until_acknowledged() {
    for dialect in ["cup", "iso87ascii"] {
        let (host, _store, mut t) = signed_in(dialect).await;
        host.then(&[Act::Silent, Act::Silent, Act::Code("00")]);
        let o = t.run(sale(500)).await.unwrap();
        assert!(!o.approved);
        assert_eq!(o.status, Status::Reversed, "{dialect}");
        let r = o.reversal.clone().unwrap();
        assert!(r.acknowledged && r.attempts == 2, "{dialect}: {r:?}");
        let reqs = host.requests();
        let mtis: Vec<&str> = reqs.iter().map(Message::mti).collect();
        assert_eq!(mtis[1..], ["0200", "0400", "0401"], "{dialect}");
        let d = &host.dialect;
        let (orig, rev) = (&reqs[1], &reqs[3]);
        assert!(
            d.get_bytes(rev, "pin_block").is_none(),
            "reversal must not carry the PIN block"
        );
        assert_eq!(d.get_text(rev, "amount"), d.get_text(orig, "amount"));
        if d.profile.reversal.new_stan {
            assert_eq!(d.get_text(rev, "original_stan"), d.get_text(orig, "stan"));
            assert_eq!(
                d.get_text(&reqs[2], "stan"),
                d.get_text(rev, "stan"),
                "repeats keep their STAN"
            );
        } else {
            assert_eq!(d.get_text(rev, "stan"), d.get_text(orig, "stan"));
            assert_eq!(d.get_text(rev, "reversal_reason"), Some("98"));
        }
        assert_eq!(t.totals().debit_count, 0, "a reversed sale is not counted");
    }
}

#[tokio::test]
async fn bad_answer_mac_reverses_with_its_own_reason() {
    let (host, _store, mut t) = signed_in("cup").await;
    host.then(&[Act::BadMac, Act::Code("00")]);
    let o = t.run(sale(700)).await.unwrap();
    assert_eq!(o.status, Status::Reversed);
    assert!(o.reversal.as_ref().unwrap().reason.contains("MAC"), "{o:?}");
    let rev = host.requests().pop().unwrap();
    assert_eq!(rev.mti(), "0400");
    assert_eq!(host.dialect.get_text(&rev, "reversal_reason"), Some("A0"));
}

#[tokio::test]
async fn undelivered_reversal_blocks_the_next_request_and_goes_first() {
    let (host, _store, mut t) = signed_in("cup").await;
    host.then(&[Act::Silent, Act::Silent, Act::Silent, Act::Silent]);
    let o = t.run(sale(300)).await.unwrap();
    assert_eq!(o.status, Status::ReversalPending);
    assert!(!o.reversal.as_ref().unwrap().acknowledged);
    // The host stays away: the reversal cannot be sent, so neither can the
    // next sale (nothing overtakes it); without offline limits it is refused.
    host.then(&[Act::Unreachable]);
    let before = host.requests().len();
    let e = t.run(sale(300)).await.unwrap_err();
    assert!(matches!(e, EngineError::HostUnreachable(_)), "{e}");
    assert_eq!(
        host.requests().len(),
        before,
        "only the reversal was attempted, and it did not connect"
    );
    assert_eq!(t.state().entries.last().unwrap().status, Status::NotSent);
    // The host answers, but not the reversal: nothing new may be sent.
    host.then(&[Act::Silent, Act::Silent, Act::Silent]);
    let e = t.run(sale(300)).await.unwrap_err();
    assert!(
        matches!(e, EngineError::PendingNotCleared { count: 1, .. }),
        "{e}"
    );
    assert!(
        host.requests()[before..].iter().all(|m| m.mti() == "0401"),
        "only repeats of the reversal went out"
    );
    let before = host.requests().len();
    // Back: the reversal (as a repeat, 0401) goes first, then the new sale.
    let o = t.run(sale(300)).await.unwrap();
    assert!(o.approved);
    let mtis: Vec<String> = host.requests()[before..]
        .iter()
        .map(|m| m.mti().to_string())
        .collect();
    assert_eq!(mtis, ["0401", "0200"]);
}

#[tokio::test]
async fn restart_while_waiting_arms_the_reversal() {
    let host = ScriptedHost::new("cup");
    let store = SharedStore::default();
    let mut t = terminal(&host, &store, Limits::default());
    t.sign_in().await.unwrap();
    // Simulate a crash after write-ahead: run the flow up to the link, with
    // the host never answering, and keep the state as it was just before the
    // answer would have been processed.
    host.then(&[Act::Silent, Act::Unreachable]);
    let _ = t.run(sale(900)).await.unwrap();
    let mut snapshot = store.0.lock().unwrap().state.clone().unwrap();
    // Make it look as if the process died before learning anything.
    snapshot.pending.iter_mut().for_each(|p| {
        p.armed = false;
        p.attempts = 0;
    });
    snapshot.entries.last_mut().unwrap().status = Status::Sending;
    store.0.lock().unwrap().state = Some(snapshot);
    drop(t);
    let mut t = terminal(&host, &store, Limits::default());
    assert_eq!(t.state().pending.len(), 1);
    assert!(
        t.state().pending[0].armed,
        "a restart must arm the reversal"
    );
    assert_eq!(
        t.state().entries.last().unwrap().status,
        Status::ReversalPending
    );
    let reports = t.flush_pending().await.unwrap();
    assert!(reports[0].acknowledged);
    assert_eq!(reports[0].kind, PendingKind::Reversal);
    assert_eq!(t.state().entries.last().unwrap().status, Status::Reversed);
}

#[tokio::test]
async fn unreachable_host_sends_nothing_and_owes_nothing() {
    let (host, _store, mut t) = signed_in("iso87ascii").await;
    host.then(&[Act::Unreachable]);
    let e = t.run(sale(100)).await.unwrap_err();
    assert!(matches!(e, EngineError::HostUnreachable(_)), "{e}");
    assert!(t.state().pending.is_empty());
    assert_eq!(t.state().entries.last().unwrap().status, Status::NotSent);
}

#[tokio::test]
async fn cup_refund_is_repeated_not_reversed() {
    let (host, _store, mut t) = signed_in("cup").await;
    let o = t.run(sale(2000)).await.unwrap();
    let rrn = o.rrn.unwrap();
    host.then(&[Act::Silent, Act::Code("00")]);
    let mut r = TxnRequest::new(TxnKind::Refund);
    r.amount = Some(Amount(500));
    r.original_rrn = Some(rrn);
    let o = t.run(r).await.unwrap();
    assert!(o.approved, "{o:?}");
    assert_eq!(o.reversal.as_ref().unwrap().kind, PendingKind::Repeat);
    let mtis: Vec<String> = host
        .requests()
        .iter()
        .rev()
        .take(2)
        .map(|m| m.mti().to_string())
        .collect();
    assert_eq!(mtis, ["0221", "0220"]);
    assert_eq!(t.totals().credit_amount, 500);
}

#[tokio::test]
async fn voids_completions_and_refunds_follow_their_originals() {
    for dialect in ["cup", "iso87ascii"] {
        let (host, _store, mut t) = signed_in(dialect).await;
        let s = t.run(sale(1500)).await.unwrap();
        // Void with the card taken from the sealed journal.
        let mut v = TxnRequest::new(TxnKind::Void);
        v.original_rrn = s.rrn.clone();
        let o = t.run(v).await.unwrap();
        assert!(o.approved && o.kind == TxnKind::Void, "{dialect}: {o:?}");
        let req = host.requests().pop().unwrap();
        let d = &host.dialect;
        assert_eq!(d.get_text(&req, "pan"), Some(PAN));
        assert_eq!(d.get_text(&req, "rrn"), s.rrn.as_deref());
        assert_eq!(
            d.get_number(&req, "original_stan").map(Result::unwrap),
            Some(s.stan.parse().unwrap())
        );
        assert_eq!(t.totals().debit_count, 0);
        // A second void of the same sale is refused locally.
        let mut v = TxnRequest::new(TxnKind::Void);
        v.original_rrn = s.rrn.clone();
        assert!(matches!(
            t.run(v).await,
            Err(EngineError::OriginalNotUsable { .. })
        ));

        // Pre-authorization, completion above 115 % refused, completion, void of the completion.
        let mut p = TxnRequest::new(TxnKind::Preauth);
        p.amount = Some(Amount(10_000));
        p.card = Some(card());
        let pa = t.run(p).await.unwrap();
        let mut c = TxnRequest::new(TxnKind::Completion);
        c.original_rrn = pa.rrn.clone();
        c.amount = Some(Amount(11_501));
        assert!(matches!(
            t.run(c).await,
            Err(EngineError::AmountMismatch(_))
        ));
        let mut c = TxnRequest::new(TxnKind::Completion);
        c.original_rrn = pa.rrn.clone();
        c.amount = Some(Amount(11_500));
        let co = t.run(c).await.unwrap();
        assert!(co.approved);
        let mut v = TxnRequest::new(TxnKind::Void);
        v.original_rrn = pa.rrn.clone();
        let e = t.run(v).await.unwrap_err();
        assert!(e.to_string().contains("void its completion instead"), "{e}");
        let mut v = TxnRequest::new(TxnKind::Void);
        v.original_rrn = co.rrn.clone();
        assert_eq!(t.run(v).await.unwrap().kind, TxnKind::CompletionVoid);

        // Refunds: at most what is left of the original.
        let s2 = t.run(sale(800)).await.unwrap();
        let refund = |minor| {
            let mut r = TxnRequest::new(TxnKind::Refund);
            r.amount = Some(Amount(minor));
            r.original_rrn = s2.rrn.clone();
            r
        };
        assert!(t.run(refund(500)).await.unwrap().approved);
        let e = t.run(refund(301)).await.unwrap_err();
        assert!(e.to_string().contains("only 3.00"), "{e}");
        assert!(t.run(refund(300)).await.unwrap().approved);
    }
}

#[tokio::test]
async fn limits_are_enforced_before_anything_is_sent() {
    let host = ScriptedHost::new("cup");
    let store = SharedStore::default();
    let limits = Limits {
        per_transaction: Some(Amount(50_000)),
        daily: Some(Amount(60_000)),
        confirm_above: Some(Amount(20_000)),
    };
    let mut t = terminal(&host, &store, limits);
    t.sign_in().await.unwrap();
    let sent = host.requests().len();
    assert!(matches!(
        t.run(sale(50_001)).await,
        Err(EngineError::OverTransactionLimit { .. })
    ));
    let e = t.run(sale(30_000)).await.unwrap_err();
    assert!(matches!(e, EngineError::NeedsConfirmation { .. }), "{e}");
    assert_eq!(host.requests().len(), sent);
    let mut confirmed = sale(30_000);
    confirmed.confirmed = true;
    assert!(t.run(confirmed).await.unwrap().approved);
    assert!(t.run(sale(20_000)).await.unwrap().approved);
    let e = t.run(sale(10_001)).await.unwrap_err();
    assert!(matches!(e, EngineError::OverDailyLimit { .. }), "{e}");
    assert!(e.to_string().contains("600.01"), "{e}");
}

#[tokio::test]
async fn settlement_balanced_and_out_of_balance_with_upload() {
    for dialect in ["cup", "iso87ascii"] {
        let (host, _store, mut t) = signed_in(dialect).await;
        t.run(sale(1000)).await.unwrap();
        t.run(sale(2500)).await.unwrap();
        let s = t.settle().await.unwrap();
        assert!(s.balanced, "{dialect}");
        assert_eq!((s.totals.debit_count, s.totals.debit_amount), (2, 3500));
        assert_eq!(s.next_batch, "000002");
        let req = host.requests().pop().unwrap();
        assert_eq!(
            host.dialect
                .get_number(&req, "debit_amount")
                .unwrap()
                .unwrap(),
            3500
        );

        t.run(sale(400)).await.unwrap();
        // cup says "out of balance" in settle_result of an approved answer,
        // iso87ascii with response code 95.
        if dialect == "cup" {
            host.then(&[Act::CodeWith("00", "settle_result", "2")]);
        } else {
            host.then(&[Act::Code("95")]);
        }
        let before = host.requests().len();
        let s = t.settle().await.unwrap();
        assert!(!s.balanced && s.uploaded == 1, "{dialect}: {s:?}");
        let mtis: Vec<String> = host.requests()[before..]
            .iter()
            .map(|m| m.mti().to_string())
            .collect();
        let end = if dialect == "cup" { "0320" } else { "0500" };
        assert_eq!(mtis, ["0500", "0320", end], "{dialect}");
        let upload = &host.requests()[before + 1];
        assert_eq!(
            host.dialect.get_text(upload, "pan"),
            Some(PAN),
            "{dialect}: upload carries the card"
        );
        assert_eq!(t.state().batch_number, 3);
    }
}

fn offline_terminal(
    host: &ScriptedHost,
    store: &SharedStore,
) -> Terminal<ScriptedHost, SharedStore> {
    let mut config =
        TerminalConfig::new("TILL0001", "123456789012345", Currency::CNY, "scripted:1");
    config.host_timeout = Duration::from_millis(200);
    config.offline = Some(till_pay::engine::OfflineLimits::new(
        Amount(10_000),
        Amount(25_000),
    ));
    Terminal::new(
        host.dialect.clone(),
        config,
        host.clone(),
        store.clone(),
        &TMK,
        &DATA_KEY,
    )
    .unwrap()
}

fn sale_without_pin(minor: u64) -> TxnRequest {
    let mut r = sale(minor);
    r.pin = None;
    r
}

#[tokio::test]
async fn unreachable_host_approves_small_sales_offline_within_limits() {
    for dialect in ["cup", "iso87ascii"] {
        let host = ScriptedHost::new(dialect);
        let store = SharedStore::default();
        let mut t = offline_terminal(&host, &store);
        assert!(t.sign_in().await.unwrap().approved);
        host.then(&[Act::Unreachable]);
        let o = t.run(sale_without_pin(8_000)).await.unwrap();
        assert!(o.approved, "{dialect}: {o:?}");
        assert_eq!(o.status, Status::OfflineApproved);
        assert_eq!(o.response_code.as_deref(), Some("Y3"));
        assert!(o.auth_code.as_deref().unwrap().starts_with("OFF"));
        assert_eq!(o.message, "Approved offline (host unreachable)");
        // Still unreachable: the queued advice cannot go, and the next sale
        // is decided offline too, without anything being sent.
        host.then(&[Act::Unreachable]);
        let sent = host.requests().len();
        assert!(t.run(sale_without_pin(9_000)).await.unwrap().approved);
        assert_eq!(host.requests().len(), sent);
        // Limits: the cumulative total, the floor limit, and PIN-verified sales.
        for (req, why) in [
            (sale_without_pin(9_000), "would exceed 250.00"),
            (
                sale_without_pin(10_001),
                "above the offline floor limit of 100.00",
            ),
            (sale(100), "verified by PIN must be approved online"),
        ] {
            host.then(&[Act::Unreachable]);
            let e = t.run(req).await.unwrap_err();
            assert!(
                matches!(e, EngineError::OfflineRefused { .. }),
                "{dialect}: {e}"
            );
            assert!(e.to_string().contains(why), "{dialect}: {e}");
        }
        let q = t.queue_status();
        assert_eq!(
            (q.depth, q.advices, q.offline_count, q.offline_amount),
            (2, 2, 2, 17_000),
            "{dialect}"
        );
        // Nothing sensitive in the queue: the PAN is only in the sealed entry.
        let state = store.0.lock().unwrap().state.clone().unwrap();
        assert!(!serde_json::to_string(&state).unwrap().contains(PAN));

        // The host is back: the advices go out with the sales' STANs, the PAN
        // put back, the offline response and authorization codes.
        let reports = t.flush_pending().await.unwrap();
        assert_eq!(reports.len(), 2);
        assert!(
            reports.iter().all(|r| r.acknowledged),
            "{dialect}: {reports:?}"
        );
        let d = &host.dialect;
        let advices: Vec<Message> = host
            .requests()
            .into_iter()
            .filter(|m| m.mti() == "0220")
            .collect();
        assert_eq!(advices.len(), 2, "{dialect}");
        assert_eq!(d.get_text(&advices[0], "pan"), Some(PAN));
        assert_eq!(d.get_text(&advices[0], "response_code"), Some("Y3"));
        assert!(
            d.get_text(&advices[0], "auth_code")
                .unwrap()
                .starts_with("OFF")
        );
        let offline: Vec<_> = t.state().entries.iter().filter(|e| e.offline).collect();
        assert_eq!(
            d.get_number(&advices[0], "stan").unwrap().unwrap(),
            u64::from(offline[0].stan)
        );
        assert!(
            offline
                .iter()
                .all(|e| e.status == Status::Approved && e.rrn.is_some()),
            "{dialect}"
        );
        assert_eq!(t.totals().debit_amount, 17_000);
        assert_eq!(t.queue_status(), till_pay::journal::QueueStatus::default());
    }
}

#[tokio::test]
async fn lost_advice_answers_are_repeated_and_rejections_kept() {
    let host = ScriptedHost::new("cup");
    let store = SharedStore::default();
    let mut t = offline_terminal(&host, &store);
    t.sign_in().await.unwrap();
    host.then(&[Act::Unreachable]);
    t.run(sale_without_pin(1_000)).await.unwrap();
    host.then(&[Act::Unreachable]);
    t.run(sale_without_pin(2_000)).await.unwrap();
    // First advice: answer lost once, then accepted (0220, then 0221).
    // Second advice: the host refuses it (insufficient funds).
    host.then(&[Act::Silent, Act::Code("00"), Act::Code("51")]);
    let reports = t.flush_pending().await.unwrap();
    assert_eq!(reports.len(), 2, "{reports:?}");
    let mtis: Vec<String> = host
        .requests()
        .iter()
        .rev()
        .take(3)
        .map(|m| m.mti().to_string())
        .collect();
    assert_eq!(mtis, ["0220", "0221", "0220"]);
    let entries: Vec<_> = t
        .state()
        .entries
        .iter()
        .filter(|e| e.offline)
        .cloned()
        .collect();
    assert_eq!(entries[0].status, Status::Approved);
    assert_eq!(entries[1].status, Status::AdviceRejected);
    // The rejected item stays, marked, and is not sent again or blocking.
    assert_eq!(t.state().pending.len(), 1);
    assert_eq!(t.state().pending[0].rejected.as_deref(), Some("51"));
    let q = t.queue_status();
    assert_eq!((q.depth, q.rejected), (0, 1));
    let sent = host.requests().len();
    assert!(t.flush_pending().await.unwrap().is_empty());
    assert_eq!(host.requests().len(), sent);
    assert!(t.run(sale(500)).await.unwrap().approved);
    // Settlement counts the accepted offline sale and the online one, not the rejected one.
    let s = t.settle().await.unwrap();
    assert_eq!((s.totals.debit_count, s.totals.debit_amount), (2, 1_500));
}

#[tokio::test]
async fn settlement_refuses_while_advices_cannot_be_sent() {
    let host = ScriptedHost::new("iso87ascii");
    let store = SharedStore::default();
    let mut t = offline_terminal(&host, &store);
    t.sign_in().await.unwrap();
    host.then(&[Act::Unreachable]);
    t.run(sale_without_pin(1_000)).await.unwrap();
    host.then(&[Act::Unreachable]);
    let e = t.settle().await.unwrap_err();
    assert!(
        matches!(e, EngineError::PendingNotCleared { count: 1, .. }),
        "{e}"
    );
    // Once the advice is through, settlement runs and counts it.
    let s = t.settle().await.unwrap();
    assert_eq!(s.totals.debit_amount, 1_000);
}

#[tokio::test(start_paused = true)]
async fn the_forwarder_backs_off_while_the_host_is_away_then_delivers_in_order() {
    use std::sync::Arc;
    use till_pay::engine::forwarder;
    use till_pay::link::Backoff;

    let host = ScriptedHost::new("cup");
    let store = SharedStore::default();
    let mut t = offline_terminal(&host, &store);
    t.sign_in().await.unwrap();
    for minor in [1_000, 2_000] {
        host.then(&[Act::Unreachable]);
        assert!(t.run(sale_without_pin(minor)).await.unwrap().approved);
    }
    let sent_before = host.requests().len();
    // Three rounds find the host away, then it answers.
    host.then(&[Act::Unreachable, Act::Unreachable, Act::Unreachable]);
    let terminal = Arc::new(tokio::sync::Mutex::new(t));
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        factor: 2.0,
        jitter: 0.2,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wake = Arc::new(tokio::sync::Notify::new());
    let start = tokio::time::Instant::now();
    let task = tokio::spawn(forwarder::run(
        Arc::clone(&terminal),
        backoff,
        Duration::from_secs(60),
        wake,
        stopped,
    ));
    while terminal.lock().await.queue_status().depth > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waited = start.elapsed();
    let minimum: Duration = (1..=3).map(|n| backoff.bounds(n).0).sum();
    assert!(
        waited >= minimum,
        "delivered after {waited:?}, before the backoff allows ({minimum:?})"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let sent: Vec<String> = host.requests()[sent_before..]
        .iter()
        .map(|m| m.mti().to_string())
        .collect();
    assert_eq!(
        sent,
        ["0220", "0220"],
        "nothing went out while the host was away; then both advices, in order"
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

const WECHAT_CODE: &str = "134567890123456789";

fn qr_sale(minor: u64) -> TxnRequest {
    let mut r = TxnRequest::new(TxnKind::Sale);
    r.amount = Some(Amount(minor));
    r.payment_code = Some(till_pay::qr::PaymentCode::parse(WECHAT_CODE).unwrap());
    r
}

#[tokio::test]
async fn a_qr_payment_sends_the_code_keeps_it_nowhere_and_voids_by_reference() {
    use till_pay::qr::Wallet;
    for dialect in ["cup", "iso87ascii"] {
        let (host, store, mut t) = signed_in(dialect).await;
        let d = host.dialect.clone();
        let o = t.run(qr_sale(2_500)).await.unwrap();
        assert!(o.approved, "{dialect}: {o:?}");
        assert_eq!(o.wallet, Some(Wallet::WechatPay));
        assert_eq!(o.pan.as_deref(), Some("13************6789"));
        let req = host.requests().pop().unwrap();
        assert_eq!(d.get_text(&req, "payment_code"), Some(WECHAT_CODE));
        assert_eq!(d.get_text(&req, "pos_entry_mode"), Some("032"));
        assert_eq!(d.get_text(&req, "pan"), None, "{dialect}: no card number");
        assert_eq!(d.get_bytes(&req, "pin_block"), None);
        assert_eq!(
            *host.log.lock().unwrap().mac_checks.last().unwrap(),
            MacCheck::Valid
        );
        // The code is a bearer token: not in the journal, sealed or not.
        let state = store.0.lock().unwrap().state.clone().unwrap();
        let json = serde_json::to_string(&state).unwrap();
        assert!(
            !json.contains(WECHAT_CODE),
            "{dialect}: code in the journal"
        );
        let e = state.entries.last().unwrap();
        assert_eq!(
            (e.wallet, e.card_sealed.as_ref()),
            (Some(Wallet::WechatPay), None)
        );
        assert_eq!(t.totals().debit_count, 1);

        // Void by reference: no card, no code; shown as the original's wallet.
        let mut v = TxnRequest::new(TxnKind::Void);
        v.original_rrn = o.rrn.clone();
        let vo = t.run(v).await.unwrap();
        assert!(vo.approved, "{dialect}: {vo:?}");
        assert_eq!(vo.wallet, Some(Wallet::WechatPay));
        assert_eq!(vo.pan, o.pan);
        let req = host.requests().pop().unwrap();
        assert_eq!(d.get_text(&req, "rrn"), o.rrn.as_deref());
        assert_eq!(d.get_text(&req, "pan"), None);
        assert_eq!(d.get_text(&req, "payment_code"), None);
        assert_eq!(t.totals().debit_count, 0);

        // A refused code is a plain decline with what to do.
        host.then(&[Act::Code("Q1")]);
        let o = t.run(qr_sale(100)).await.unwrap();
        assert!(!o.approved && !o.pin_retry, "{o:?}");
        assert!(o.action.as_deref().unwrap().contains("refresh"), "{o:?}");
    }
}

#[tokio::test]
async fn an_unanswered_qr_payment_is_reversed_without_its_code_and_never_offline() {
    for dialect in ["cup", "iso87ascii"] {
        let host = ScriptedHost::new(dialect);
        let store = SharedStore::default();
        let mut t = offline_terminal(&host, &store);
        assert!(t.sign_in().await.unwrap().approved);
        host.then(&[Act::Silent, Act::Code("00")]);
        let o = t.run(qr_sale(500)).await.unwrap();
        assert_eq!(o.status, Status::Reversed, "{dialect}: {o:?}");
        let rev = host.requests().pop().unwrap();
        assert_eq!(rev.mti(), "0400");
        assert_eq!(host.dialect.get_text(&rev, "payment_code"), None);
        let state = store.0.lock().unwrap().state.clone().unwrap();
        assert!(!serde_json::to_string(&state).unwrap().contains(WECHAT_CODE));

        // The host away: a small card sale may go offline, a QR payment never.
        host.then(&[Act::Unreachable]);
        let e = t.run(qr_sale(500)).await.unwrap_err();
        assert!(
            matches!(&e, EngineError::OfflineRefused { reason, .. } if reason.contains("QR")),
            "{dialect}: {e}"
        );
    }
}

#[tokio::test]
async fn a_payment_code_pays_for_sales_alone() {
    let (host, _store, mut t) = signed_in("cup").await;
    let sent = host.requests().len();
    let mut p = qr_sale(100);
    p.kind = TxnKind::Preauth;
    let e = t.run(p).await.unwrap_err();
    assert!(e.to_string().contains("sale only"), "{e}");
    let mut both = qr_sale(100);
    both.card = Some(card());
    assert!(matches!(t.run(both).await, Err(EngineError::Missing(_))));
    let mut with_pin = qr_sale(100);
    with_pin.pin = Some(Pin::new("1234").unwrap());
    assert!(matches!(
        t.run(with_pin).await,
        Err(EngineError::Missing(_))
    ));
    assert!(matches!(
        t.run(qr_sale(0)).await,
        Err(EngineError::Missing(_))
    ));
    assert_eq!(host.requests().len(), sent, "nothing reached the host");
}
