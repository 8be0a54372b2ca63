//! Every decision of the host, in both shipped dialects, without sockets.
//!
//! Requests are built the way a terminal builds them: elements through the
//! dialect's setters, PIN blocks and MACs through `till_pay::security`
//! with the working keys a sign-in answer delivered (unwrapped under the
//! terminal master key and checked against their KCVs).

use std::collections::BTreeMap;

use chrono::{DateTime, Local, TimeZone};
use till_pay::crypto::{Pin, SecretKey};
use till_pay::iso8583::{Dialect, Message, Outcome, TxnKind};
use till_pay::money::Amount;
use till_pay::security::{
    KeyCryptograms, MacCheck, Scheme, WorkingKeys, kind_is_maced, open, pin_block, seal,
};

use super::*;
use crate::cards::CardDb;
use crate::ledger::Effect;

const DIALECTS: [&str; 2] = ["cup", "iso87ascii"];
const TERMINAL: &str = "TILL0001";
/// Registered with the host, but no test connects with its certificate.
const OTHER_TERMINAL: &str = "TILL0002";

const CUP_OK: &str = "6222088800000000010";
const CUP_LOW: &str = "6222088800000000028";
const CUP_NOPIN: &str = "6222088800000000036";
const VISA_OK: &str = "4761739001010010";
const MC_OK: &str = "5200000000000015";

/// What came back for one request.
struct Reply {
    message: Message,
    code: String,
    mac: MacCheck,
    record: LedgerRecord,
}

impl Reply {
    fn text(&self, rig: &Rig, element: &str) -> Option<String> {
        rig.dialect
            .get_text(&self.message, element)
            .map(str::to_owned)
    }
}

/// A terminal and a host, wired together without a network.
struct Rig {
    dialect: Dialect,
    scheme: Scheme,
    host: Host,
    tmk: SecretKey,
    keys: Option<WorkingKeys>,
    peer: PeerInfo,
    stan: u32,
    batch: u32,
    now: DateTime<Local>,
}

impl Rig {
    fn new(dialect: &str) -> Rig {
        Rig::with_cards(dialect, CardDb::bundled().unwrap())
    }

    fn with_cards(dialect: &str, cards: CardDb) -> Rig {
        let dialect = Dialect::load(dialect).unwrap();
        let scheme = Scheme::of(&dialect).unwrap();
        let tmk = SecretKey::generate(scheme.keys, 16).unwrap();
        let other = SecretKey::generate(scheme.keys, 16).unwrap();
        let mut host_keys = BTreeMap::new();
        host_keys.insert(TERMINAL.to_string(), tmk.expose_bytes().to_vec());
        host_keys.insert(OTHER_TERMINAL.to_string(), other.expose_bytes().to_vec());
        let host = Host::new(dialect.clone(), &host_keys, cards).unwrap();
        Rig {
            dialect,
            scheme,
            host,
            tmk,
            keys: None,
            peer: PeerInfo {
                addr: Some("127.0.0.1:40000".parse().unwrap()),
                common_name: Some(TERMINAL.into()),
            },
            stan: 0,
            batch: 1,
            now: Local.with_ymd_and_hms(2026, 6, 15, 10, 30, 0).unwrap(),
        }
    }

    fn code(&self, outcome: Outcome) -> String {
        self.dialect.profile.code_for(outcome).to_string()
    }

    fn next_stan(&mut self) -> u32 {
        self.stan += 1;
        self.stan
    }

    /// A request of `kind` with the elements every request carries.
    fn request(&mut self, kind: TxnKind) -> Message {
        let d = &self.dialect;
        let txn = d.profile.txn(kind).unwrap().clone();
        let mut m = Message::new(&txn.mti).unwrap();
        if let Some(pc) = &txn.processing_code {
            d.set_text(&mut m, "processing_code", pc).unwrap();
        }
        for (element, value) in &txn.set {
            d.set_text(&mut m, element, value).unwrap();
        }
        let stan = self.next_stan();
        let d = &self.dialect;
        d.set_number(&mut m, "stan", u64::from(stan)).unwrap();
        d.set_text(&mut m, "local_time", "103000").unwrap();
        d.set_text(&mut m, "local_date", "0615").unwrap();
        d.set_text(&mut m, "transmission_datetime", "0615103000")
            .unwrap();
        d.set_text(&mut m, "terminal_id", TERMINAL).unwrap();
        d.set_text(&mut m, "merchant_id", "898310048990001")
            .unwrap();
        d.set_number(&mut m, "batch_number", u64::from(self.batch))
            .unwrap();
        m
    }

    /// A card request: PAN, amount, currency, entry mode and, with a PIN,
    /// a PIN block under the session PIN key.
    fn card_request(
        &mut self,
        kind: TxnKind,
        pan: &str,
        amount: u64,
        pin: Option<&str>,
    ) -> Message {
        let mut m = self.request(kind);
        let d = &self.dialect;
        d.set_text(&mut m, "pan", pan).unwrap();
        d.set_text(&mut m, "expiry", "4912").unwrap();
        d.set_text(&mut m, "pos_entry_mode", "021").unwrap();
        d.set_text(&mut m, "currency", "156").unwrap();
        if kind != TxnKind::Balance {
            d.set_number(&mut m, "amount", amount).unwrap();
        }
        if let Some(pin) = pin {
            let keys = self.keys.as_ref().expect("signed in");
            let block = pin_block(&self.scheme, keys, &Pin::new(pin).unwrap(), pan).unwrap();
            d.set_bytes(&mut m, "pin_block", &block).unwrap();
        }
        m
    }

    /// Seals (MACing where the kind is MACed and a session exists), hands
    /// the bytes to the host, and opens the answer.
    fn send(&mut self, mut m: Message) -> Reply {
        let class = classify(&self.dialect, &m);
        let key = self
            .keys
            .as_ref()
            .filter(|_| kind_is_maced(&self.dialect, class.kind()))
            .map(|k| k.mac.clone());
        let wire = seal(&self.dialect, &self.scheme, &mut m, key.as_ref()).unwrap();
        self.send_wire(&wire)
    }

    fn send_wire(&mut self, wire: &[u8]) -> Reply {
        let handled = self.host.handle(wire, &self.peer, self.now);
        let answer = handled.answer.expect("an answer");
        let mac_key = self.keys.as_ref().map(|k| k.mac.clone());
        let (message, mac) =
            open(&self.dialect, &self.scheme, &answer.wire, mac_key.as_ref()).unwrap();
        let code = self
            .dialect
            .get_text(&message, "response_code")
            .unwrap_or_default()
            .to_string();
        assert_eq!(handled.record.response_code.as_deref(), Some(code.as_str()));
        Reply {
            message,
            code,
            mac,
            record: handled.record,
        }
    }

    fn sign_in(&mut self) -> Reply {
        let m = self.request(TxnKind::SignIn);
        let reply = self.send(m);
        assert_eq!(
            reply.code,
            self.code(Outcome::Approved),
            "sign-in: {:?}",
            reply.record.note
        );
        let keys = KeyCryptograms::from_answer(&self.dialect, &reply.message)
            .unwrap()
            .unwrap(&self.scheme, &self.tmk)
            .expect("keys unwrap under the TMK and match their KCVs");
        self.keys = Some(keys);
        self.batch = self
            .dialect
            .get_number(&reply.message, "batch_number")
            .unwrap()
            .unwrap() as u32;
        reply
    }

    fn signed_in(dialect: &str) -> Rig {
        let mut rig = Rig::new(dialect);
        rig.sign_in();
        rig
    }

    fn sale(&mut self, pan: &str, amount: u64, pin: Option<&str>) -> Reply {
        let m = self.card_request(TxnKind::Sale, pan, amount, pin);
        self.send(m)
    }

    fn balance_of(&self, card: &str) -> u64 {
        self.host.account(card).unwrap().balance.0
    }

    /// A request that refers to an earlier approval by its RRN, as voids,
    /// completions and refunds do.
    fn referring(&mut self, kind: TxnKind, pan: &str, amount: u64, original: &Reply) -> Message {
        let mut m = self.card_request(kind, pan, amount, None);
        self.refer_to(&mut m, original);
        m
    }

    /// The elements by which a request names its original.
    fn refer_to(&self, m: &mut Message, original: &Reply) {
        let d = &self.dialect;
        let rrn = original.text(self, "rrn").expect("the original has an RRN");
        d.set_text(m, "rrn", &rrn).unwrap();
        if let Some(auth) = original.text(self, "auth_code") {
            d.set_text(m, "auth_code", &auth).unwrap();
        }
        let stan = original.record.stan.clone().unwrap();
        d.set_number(m, "original_batch", u64::from(self.batch))
            .unwrap();
        d.set_text(m, "original_stan", &stan).unwrap();
        d.set_text(m, "original_date", "0615").unwrap();
    }

    /// The reversal of `original` as the contract describes it.
    fn reversal_of(&mut self, original: &Message, repeat: bool, own_stan: Option<u32>) -> Message {
        let d = &self.dialect;
        let rules = d.profile.reversal.clone();
        let mut m = original.clone();
        for element in ["pin_block", "track2", "icc_data", "payment_code"] {
            d.clear_element(&mut m, element);
        }
        let original_mti = original.mti().to_string();
        m.set_mti(if repeat {
            &rules.repeat_mti
        } else {
            &rules.mti
        })
        .unwrap();
        d.set_text(&mut m, "reversal_reason", &rules.reason_no_answer)
            .unwrap();
        if rules.new_stan {
            let original_stan = d.get_text(original, "stan").unwrap().to_string();
            let stan = own_stan.unwrap_or_else(|| self.next_stan());
            let d = &self.dialect;
            d.set_number(&mut m, "stan", u64::from(stan)).unwrap();
            d.set_text(&mut m, "original_mti", &original_mti).unwrap();
            d.set_text(&mut m, "original_stan", &original_stan).unwrap();
            d.set_text(&mut m, "original_datetime", "0615103000")
                .unwrap();
        }
        m
    }

    /// Settlement with the given totals.
    fn settle(&mut self, debits: (u64, u64), credits: (u64, u64)) -> Reply {
        let mut m = self.request(TxnKind::Settlement);
        let d = &self.dialect;
        d.set_number(&mut m, "debit_count", debits.0).unwrap();
        d.set_number(&mut m, "debit_amount", debits.1).unwrap();
        d.set_number(&mut m, "credit_count", credits.0).unwrap();
        d.set_number(&mut m, "credit_amount", credits.1).unwrap();
        if let Some(v) = &d.profile.settlement.balanced_value {
            d.set_text(&mut m, "settle_result", v).unwrap();
        }
        self.send(m)
    }
}

fn assert_no_full_pan(record: &LedgerRecord) {
    let line = serde_json::to_string(record).unwrap();
    for pan in [
        CUP_OK,
        CUP_LOW,
        CUP_NOPIN,
        VISA_OK,
        MC_OK,
        "6222088800000000044",
    ] {
        assert!(!line.contains(pan), "full PAN in the ledger: {line}");
    }
}

#[test]
fn sign_in_issues_keys_under_the_master_key() {
    for name in DIALECTS {
        let mut rig = Rig::new(name);
        assert!(!rig.host.is_signed_in(TERMINAL));
        let reply = rig.sign_in();
        assert!(rig.host.is_signed_in(TERMINAL));
        assert_eq!(reply.record.effect, Some(Effect::Keys));
        assert_eq!(rig.batch, 1, "{name}: the host's open batch");
        assert_eq!(reply.text(&rig, "local_time").as_deref(), Some("103000"));
        assert_eq!(reply.text(&rig, "local_date").as_deref(), Some("0615"));
        assert_eq!(reply.message.mti(), "0810");
        let line = serde_json::to_string(&reply.record).unwrap();
        let cryptograms = KeyCryptograms::from_answer(&rig.dialect, &reply.message).unwrap();
        assert!(
            !line.contains(&cryptograms.pin_key),
            "{name}: key in the ledger"
        );
        // A second sign-in replaces the keys.
        let first = rig.keys.as_ref().unwrap().mac.expose_bytes().to_vec();
        rig.sign_in();
        assert_ne!(rig.keys.as_ref().unwrap().mac.expose_bytes(), &first[..]);
        // Keys under another master key do not unwrap.
        let wrong = SecretKey::generate(rig.scheme.keys, 16).unwrap();
        assert!(cryptograms.unwrap(&rig.scheme, &wrong).is_err(), "{name}");
    }
}

#[test]
fn a_first_sign_in_adopts_the_terminals_batch() {
    for name in DIALECTS {
        let mut rig = Rig::new(name);
        // As after a host restart: the terminal is in batch 7.
        rig.batch = 7;
        rig.sign_in();
        assert_eq!(rig.batch, 7, "{name}");
        assert_eq!(rig.host.open_batch(TERMINAL), Some(7));
        // From then on the host's open batch is the one the terminal is told.
        rig.batch = 9;
        rig.sign_in();
        assert_eq!(rig.batch, 7, "{name}");
        assert_eq!(
            rig.sale(CUP_OK, 100, Some("123456")).code,
            rig.code(Outcome::Approved)
        );
    }
}

#[test]
fn approved_sale_debits_and_answers_references() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let before = rig.balance_of("cup-ok");
        let reply = rig.sale(CUP_OK, 1234, Some("123456"));
        assert_eq!(
            reply.code,
            rig.code(Outcome::Approved),
            "{name}: {:?}",
            reply.record.note
        );
        assert_eq!(
            reply.mac,
            MacCheck::Valid,
            "{name}: answers to MACed requests are MACed"
        );
        assert_eq!(reply.message.mti(), "0210");
        let rrn = reply.text(&rig, "rrn").unwrap();
        assert_eq!(rrn.len(), 12);
        assert_eq!(reply.text(&rig, "auth_code").unwrap().len(), 6);
        assert_eq!(rig.balance_of("cup-ok"), before - 1234);
        let r = &reply.record;
        assert_eq!(r.effect, Some(Effect::Debit));
        assert_eq!(r.card.as_deref(), Some("cup-ok"));
        assert_eq!(r.amount, Some(1234));
        assert_eq!(r.pan.as_deref(), Some("622208*********0010"));
        assert_eq!(r.rrn.as_deref(), Some(rrn.as_str()));
        assert_eq!(r.kind, "sale");
        assert_no_full_pan(r);
        // Visa- and Mastercard-like cards with 4-digit PINs.
        assert_eq!(
            rig.sale(VISA_OK, 100, Some("1234")).code,
            rig.code(Outcome::Approved)
        );
        assert_eq!(
            rig.sale(MC_OK, 100, Some("4321")).code,
            rig.code(Outcome::Approved)
        );
        // RRNs differ.
        let again = rig.sale(CUP_OK, 1, Some("123456"));
        assert_ne!(again.text(&rig, "rrn").unwrap(), rrn);
    }
}

#[test]
fn card_status_decides_the_code() {
    let cases = [
        ("6222088800000000101", Outcome::InvalidCard),
        ("6222088800000000044", Outcome::LostCard),
        ("6222088800000000051", Outcome::StolenCard),
        ("6222088800000000069", Outcome::ExpiredCard),
        ("6222088800000000077", Outcome::ExpiredCard),
        ("6222088800000000085", Outcome::DoNotHonour),
        ("6222088800000000093", Outcome::IssuerUnavailable),
        ("4761739001010036", Outcome::LostCard),
        ("5200000000000031", Outcome::DoNotHonour),
    ];
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        for (pan, outcome) in cases {
            let before: Vec<_> = rig
                .host
                .cards()
                .cards()
                .iter()
                .map(|c| rig.host.account(&c.name).unwrap())
                .collect();
            let reply = rig.sale(pan, 500, Some("123456"));
            assert_eq!(
                reply.code,
                rig.code(outcome),
                "{name} {pan}: {:?}",
                reply.record.note
            );
            assert_eq!(reply.record.effect, Some(Effect::None));
            assert!(
                reply.text(&rig, "rrn").is_none(),
                "{name}: no RRN on a decline"
            );
            assert_eq!(reply.mac, MacCheck::Valid, "{name}: declines are MACed too");
            let after: Vec<_> = rig
                .host
                .cards()
                .cards()
                .iter()
                .map(|c| rig.host.account(&c.name).unwrap())
                .collect();
            assert_eq!(before, after, "{name} {pan}: a decline changes nothing");
            assert_no_full_pan(&reply.record);
        }
    }
}

#[test]
fn an_expiry_read_from_the_card_that_has_passed_declines() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let mut m = rig.card_request(TxnKind::Sale, CUP_OK, 100, Some("123456"));
        rig.dialect.set_text(&mut m, "expiry", "2512").unwrap();
        assert_eq!(rig.send(m).code, rig.code(Outcome::ExpiredCard), "{name}");
    }
}

#[test]
fn a_swiped_card_is_found_by_its_track() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let mut m = rig.card_request(TxnKind::Sale, CUP_OK, 100, Some("123456"));
        let d = &rig.dialect;
        d.clear_element(&mut m, "pan");
        d.clear_element(&mut m, "expiry");
        d.set_text(&mut m, "track2", "6222088800000000010=49121010000")
            .unwrap();
        let reply = rig.send(m.clone());
        assert_eq!(
            reply.code,
            rig.code(Outcome::Approved),
            "{name}: {:?}",
            reply.record.note
        );
        assert_eq!(reply.record.card.as_deref(), Some("cup-ok"));
        assert_no_full_pan(&reply.record);
        // The track's expiry counts.
        rig.dialect.set_number(&mut m, "stan", 999).unwrap();
        rig.dialect
            .set_text(&mut m, "track2", "6222088800000000010=25121010000")
            .unwrap();
        assert_eq!(rig.send(m).code, rig.code(Outcome::ExpiredCard), "{name}");
    }
}

#[test]
fn pins_wrong_missing_and_locked() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let wrong = rig.code(Outcome::IncorrectPin);
        let locked = rig.code(Outcome::PinTriesExceeded);
        let approved = rig.code(Outcome::Approved);
        assert_eq!(
            rig.sale(CUP_OK, 100, None).code,
            wrong,
            "{name}: missing PIN"
        );
        assert_eq!(rig.sale(CUP_OK, 100, Some("654321")).code, wrong);
        assert_eq!(rig.sale(CUP_OK, 100, Some("654321")).code, wrong);
        // A right PIN resets the count.
        assert_eq!(rig.sale(CUP_OK, 100, Some("123456")).code, approved);
        assert_eq!(rig.host.account("cup-ok").unwrap().wrong_pins, 0);
        assert_eq!(rig.sale(CUP_OK, 100, Some("111111")).code, wrong);
        assert_eq!(rig.sale(CUP_OK, 100, Some("222222")).code, wrong);
        let third = rig.sale(CUP_OK, 100, Some("333333"));
        assert_eq!(third.code, locked, "{name}: the third wrong PIN locks");
        // Locked for the run, even with the right PIN.
        assert_eq!(rig.sale(CUP_OK, 100, Some("123456")).code, locked);
        assert!(rig.host.account("cup-ok").unwrap().pin_locked());
        // A card without a PIN needs none.
        assert_eq!(rig.sale(CUP_NOPIN, 100, None).code, approved, "{name}");
        // A missing PIN does not count as a wrong one.
        assert_eq!(rig.sale(VISA_OK, 100, None).code, wrong);
        assert_eq!(rig.host.account("visa-ok").unwrap().wrong_pins, 0);
    }
}

#[test]
fn funds_and_amounts() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let low = rig.balance_of("cup-low");
        let reply = rig.sale(CUP_LOW, low + 1, Some("123456"));
        assert_eq!(reply.code, rig.code(Outcome::InsufficientFunds), "{name}");
        assert_eq!(rig.balance_of("cup-low"), low);
        assert_eq!(
            rig.sale(CUP_LOW, 0, Some("123456")).code,
            rig.code(Outcome::InvalidAmount)
        );
        assert_eq!(
            rig.sale(CUP_LOW, low, Some("123456")).code,
            rig.code(Outcome::Approved)
        );
        assert_eq!(rig.balance_of("cup-low"), 0);
        // Another currency is refused.
        let mut m = rig.card_request(TxnKind::Sale, CUP_OK, 100, Some("123456"));
        rig.dialect.set_text(&mut m, "currency", "840").unwrap();
        assert_eq!(
            rig.send(m).code,
            rig.code(Outcome::InvalidTransaction),
            "{name}"
        );
    }
}

#[test]
fn balance_inquiry_answers_the_available_balance() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let m = rig.card_request(TxnKind::Balance, CUP_OK, 0, Some("123456"));
        let reply = rig.send(m);
        assert_eq!(
            reply.code,
            rig.code(Outcome::Approved),
            "{name}: {:?}",
            reply.record.note
        );
        assert_eq!(
            reply.text(&rig, "additional_amounts").as_deref(),
            Some("0002156C000000500000"),
            "{name}"
        );
        assert_eq!(reply.record.effect, Some(Effect::None));
        let m = rig.card_request(TxnKind::Balance, CUP_OK, 0, Some("000000"));
        assert_eq!(rig.send(m).code, rig.code(Outcome::IncorrectPin));
    }
}

#[test]
fn a_repeated_stan_is_a_duplicate() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let m = rig.card_request(TxnKind::Sale, CUP_OK, 700, Some("123456"));
        let first = rig.send(m.clone());
        assert_eq!(first.code, rig.code(Outcome::Approved));
        let before = rig.balance_of("cup-ok");
        let again = rig.send(m);
        assert_eq!(again.code, rig.code(Outcome::Duplicate), "{name}");
        assert_eq!(rig.balance_of("cup-ok"), before, "{name}: debited once");
        // A declined request used its STAN too.
        let declined = rig.card_request(TxnKind::Sale, CUP_LOW, 999_999, Some("123456"));
        assert_eq!(
            rig.send(declined.clone()).code,
            rig.code(Outcome::InsufficientFunds)
        );
        assert_eq!(rig.send(declined).code, rig.code(Outcome::Duplicate));
    }
}

#[test]
fn voids_restore_once_in_the_same_batch() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let start = rig.balance_of("cup-ok");
        let sale = rig.sale(CUP_OK, 2500, Some("123456"));
        let m = rig.referring(TxnKind::Void, CUP_OK, 2400, &sale);
        assert_eq!(
            rig.send(m).code,
            rig.code(Outcome::InvalidAmount),
            "{name}: amount must equal"
        );
        let m = rig.referring(TxnKind::Void, CUP_OK, 2500, &sale);
        let void = rig.send(m);
        assert_eq!(
            void.code,
            rig.code(Outcome::Approved),
            "{name}: {:?}",
            void.record.note
        );
        assert_eq!(void.mac, MacCheck::Valid);
        assert_eq!(void.record.effect, Some(Effect::Credit));
        assert_ne!(void.text(&rig, "rrn"), sale.text(&rig, "rrn"), "a new RRN");
        assert_eq!(rig.balance_of("cup-ok"), start);
        let m = rig.referring(TxnKind::Void, CUP_OK, 2500, &sale);
        assert_eq!(
            rig.send(m).code,
            rig.code(Outcome::InvalidTransaction),
            "{name}: voided twice"
        );
        // Unknown RRN.
        let mut m = rig.referring(TxnKind::Void, CUP_OK, 2500, &sale);
        rig.dialect.set_text(&mut m, "rrn", "999999999999").unwrap();
        assert_eq!(rig.send(m).code, rig.code(Outcome::OriginalNotFound));
        // Another card's sale.
        let m = rig.referring(TxnKind::Void, VISA_OK, 2500, &sale);
        assert_eq!(rig.send(m).code, rig.code(Outcome::OriginalNotFound));
        // A void of a void is not a void of a sale.
        let m = rig.referring(TxnKind::Void, CUP_OK, 2500, &void);
        assert_eq!(rig.send(m).code, rig.code(Outcome::InvalidTransaction));
        // After settlement the sale is in a closed batch: no void.
        let later = rig.sale(CUP_OK, 300, Some("123456"));
        let totals = rig.host.totals(TERMINAL, rig.batch);
        assert_eq!(
            (totals.debit_count, totals.debit_amount),
            (1, 300),
            "{name}: voided sales do not count"
        );
        rig.settle((1, 300), (0, 0));
        rig.sign_in();
        let m = rig.referring(TxnKind::Void, CUP_OK, 300, &later);
        assert_eq!(
            rig.send(m).code,
            rig.code(Outcome::InvalidTransaction),
            "{name}: other batch"
        );
    }
}

#[test]
fn refunds_up_to_what_is_left() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let start = rig.balance_of("visa-ok");
        let sale = rig.sale(VISA_OK, 10_000, Some("1234"));
        let m = rig.referring(TxnKind::Refund, VISA_OK, 6000, &sale);
        let first = rig.send(m);
        assert_eq!(
            first.code,
            rig.code(Outcome::Approved),
            "{name}: {:?}",
            first.record.note
        );
        assert_eq!(first.record.effect, Some(Effect::Credit));
        let m = rig.referring(TxnKind::Refund, VISA_OK, 4001, &sale);
        assert_eq!(rig.send(m).code, rig.code(Outcome::InvalidAmount), "{name}");
        let m = rig.referring(TxnKind::Refund, VISA_OK, 4000, &sale);
        assert_eq!(rig.send(m).code, rig.code(Outcome::Approved));
        assert_eq!(rig.balance_of("visa-ok"), start);
        let m = rig.referring(TxnKind::Refund, VISA_OK, 1, &sale);
        assert_eq!(rig.send(m).code, rig.code(Outcome::InvalidAmount));
        let mut m = rig.referring(TxnKind::Refund, VISA_OK, 1, &sale);
        rig.dialect.set_text(&mut m, "rrn", "000000000001").unwrap();
        assert_eq!(rig.send(m).code, rig.code(Outcome::OriginalNotFound));
        let totals = rig.host.totals(TERMINAL, rig.batch);
        assert_eq!(
            totals,
            Totals {
                debit_count: 1,
                debit_amount: 10_000,
                credit_count: 2,
                credit_amount: 10_000
            }
        );
        // A partly refunded sale cannot be voided.
        let m = rig.referring(TxnKind::Void, VISA_OK, 10_000, &sale);
        assert_eq!(rig.send(m).code, rig.code(Outcome::InvalidTransaction));
    }
}

#[test]
fn preauthorization_completion_and_voids() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let approved = rig.code(Outcome::Approved);
        let start = rig.host.account("mc-ok").unwrap();
        let m = rig.card_request(TxnKind::Preauth, MC_OK, 10_000, Some("4321"));
        let hold = rig.send(m);
        assert_eq!(hold.code, approved, "{name}: {:?}", hold.record.note);
        assert_eq!(hold.record.effect, Some(Effect::Hold));
        let held = rig.host.account("mc-ok").unwrap();
        assert_eq!((held.balance, held.held), (start.balance, Amount(10_000)));
        // More than 115 % of the hold.
        let m = rig.referring(TxnKind::Completion, MC_OK, 11_501, &hold);
        assert_eq!(rig.send(m).code, rig.code(Outcome::InvalidAmount), "{name}");
        let m = rig.referring(TxnKind::Completion, MC_OK, 11_500, &hold);
        let done = rig.send(m);
        assert_eq!(done.code, approved, "{name}: {:?}", done.record.note);
        assert_eq!(done.record.effect, Some(Effect::ReleaseDebit));
        let after = rig.host.account("mc-ok").unwrap();
        assert_eq!(
            (after.balance.0, after.held.0),
            (start.balance.0 - 11_500, 0)
        );
        let m = rig.referring(TxnKind::Completion, MC_OK, 100, &hold);
        assert_eq!(
            rig.send(m).code,
            rig.code(Outcome::InvalidTransaction),
            "completed twice"
        );
        // Completion void restores the completed amount.
        let m = rig.referring(TxnKind::CompletionVoid, MC_OK, 11_500, &done);
        let undone = rig.send(m);
        assert_eq!(undone.code, approved, "{name}: {:?}", undone.record.note);
        assert_eq!(rig.host.account("mc-ok").unwrap().balance, start.balance);
        let m = rig.referring(TxnKind::CompletionVoid, MC_OK, 11_500, &done);
        assert_eq!(rig.send(m).code, rig.code(Outcome::InvalidTransaction));
        // A pre-authorization void must name the held amount.
        let m = rig.card_request(TxnKind::Preauth, MC_OK, 5000, Some("4321"));
        let second = rig.send(m);
        let m = rig.referring(TxnKind::PreauthVoid, MC_OK, 4000, &second);
        assert_eq!(rig.send(m).code, rig.code(Outcome::InvalidAmount));
        let m = rig.referring(TxnKind::PreauthVoid, MC_OK, 5000, &second);
        let released = rig.send(m);
        assert_eq!(released.code, approved);
        assert_eq!(released.record.effect, Some(Effect::Release));
        assert_eq!(rig.host.account("mc-ok").unwrap().held, Amount(0));
        let m = rig.referring(TxnKind::Completion, MC_OK, 5000, &second);
        assert_eq!(
            rig.send(m).code,
            rig.code(Outcome::InvalidTransaction),
            "released holds cannot complete"
        );
        // Holds count against the available balance.
        let m = rig.card_request(TxnKind::Preauth, "5200000000000023", 400, Some("4321"));
        assert_eq!(rig.send(m).code, approved);
        let m = rig.card_request(TxnKind::Sale, "5200000000000023", 200, Some("4321"));
        assert_eq!(
            rig.send(m).code,
            rig.code(Outcome::InsufficientFunds),
            "{name}"
        );
        let totals = rig.host.totals(TERMINAL, rig.batch);
        assert_eq!(
            totals,
            Totals::default(),
            "{name}: pre-authorizations and voided completions count in neither"
        );
    }
}

#[test]
fn reversals_apply_once_and_are_always_approved() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let approved = rig.code(Outcome::Approved);
        let start = rig.balance_of("cup-ok");
        let sale = rig.card_request(TxnKind::Sale, CUP_OK, 4200, Some("123456"));
        // The terminal sent the sale; the answer was lost.
        assert_eq!(rig.send(sale.clone()).code, approved);
        assert_eq!(rig.balance_of("cup-ok"), start - 4200);
        let reversal = rig.reversal_of(&sale, false, None);
        let own_stan = rig.dialect.get_number(&reversal, "stan").unwrap().unwrap() as u32;
        let reply = rig.send(reversal);
        assert_eq!(reply.code, approved, "{name}: {:?}", reply.record.note);
        assert_eq!(
            reply.mac,
            MacCheck::Valid,
            "{name}: reversal answers are MACed"
        );
        assert_eq!(reply.record.kind, "reversal");
        assert_eq!(reply.record.effect, Some(Effect::Reversed));
        assert_eq!(reply.message.mti(), "0410");
        assert_eq!(rig.balance_of("cup-ok"), start);
        // Repeats (same STAN where the dialect gives reversals their own).
        let repeat = rig.reversal_of(&sale, true, Some(own_stan));
        let reply = rig.send(repeat);
        assert_eq!(reply.code, approved);
        assert_eq!(reply.record.effect, Some(Effect::Repeat));
        assert_eq!(rig.balance_of("cup-ok"), start, "{name}: undone once");
        // The original arriving late changes nothing.
        assert_eq!(rig.send(sale).code, rig.code(Outcome::Duplicate));
        // A reversal of a request the host never saw: approved, nothing done.
        let unseen = rig.card_request(TxnKind::Sale, CUP_OK, 100, Some("123456"));
        let reply = rig.reverse(&unseen);
        assert_eq!(reply.code, approved);
        assert_eq!(reply.record.effect, Some(Effect::None));
        assert_eq!(
            rig.send(unseen).code,
            rig.code(Outcome::Duplicate),
            "{name}: a late original"
        );
        // A reversal of a decline: approved, nothing done.
        let declined = rig.card_request(TxnKind::Sale, CUP_LOW, 999_999, Some("123456"));
        assert_eq!(
            rig.send(declined.clone()).code,
            rig.code(Outcome::InsufficientFunds)
        );
        let reply = rig.reverse(&declined);
        assert_eq!(
            (reply.code.as_str(), reply.record.effect),
            (approved.as_str(), Some(Effect::None))
        );
        assert_eq!(
            rig.host.totals(TERMINAL, rig.batch),
            Totals::default(),
            "{name}"
        );
    }
}

impl Rig {
    /// Sends the first reversal of `original`.
    fn reverse(&mut self, original: &Message) -> Reply {
        let m = self.reversal_of(original, false, None);
        self.send(m)
    }
}

#[test]
fn reversals_undo_every_kind() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let start = rig.host.account("mc-ok").unwrap();
        // Pre-authorization, reversed: the hold goes.
        let preauth = rig.card_request(TxnKind::Preauth, MC_OK, 1000, Some("4321"));
        rig.send(preauth.clone());
        rig.reverse(&preauth);
        assert_eq!(rig.host.account("mc-ok").unwrap(), start, "{name}");
        // Refund, reversed: the credit goes.
        let sale = rig.sale(MC_OK, 3000, Some("4321"));
        let refund = rig.referring(TxnKind::Refund, MC_OK, 1000, &sale);
        assert_eq!(rig.send(refund.clone()).code, rig.code(Outcome::Approved));
        let reply = rig.reverse(&refund);
        assert_eq!(
            reply.record.effect,
            Some(Effect::Reversed),
            "{name}: {:?}",
            reply.record.note
        );
        assert_eq!(
            rig.host.account("mc-ok").unwrap().balance.0,
            start.balance.0 - 3000
        );
        // Void, reversed: the sale stands again.
        let void = rig.referring(TxnKind::Void, MC_OK, 3000, &sale);
        assert_eq!(rig.send(void.clone()).code, rig.code(Outcome::Approved));
        assert_eq!(rig.host.account("mc-ok").unwrap().balance, start.balance);
        rig.reverse(&void);
        assert_eq!(
            rig.host.account("mc-ok").unwrap().balance.0,
            start.balance.0 - 3000
        );
        let totals = rig.host.totals(TERMINAL, rig.batch);
        assert_eq!((totals.debit_count, totals.credit_count), (1, 0), "{name}");
    }
}

#[test]
fn advices_apply_once() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let start = rig.balance_of("cup-nopin");
        let mut advice = rig.card_request(TxnKind::Advice, CUP_NOPIN, 800, None);
        rig.dialect
            .set_text(&mut advice, "auth_code", "Y1A001")
            .unwrap();
        let first = rig.send(advice.clone());
        assert_eq!(
            first.code,
            rig.code(Outcome::Approved),
            "{name}: {:?}",
            first.record.note
        );
        assert_eq!(first.record.effect, Some(Effect::Debit));
        assert_eq!(
            first.text(&rig, "auth_code").as_deref(),
            Some("Y1A001"),
            "offline code kept"
        );
        let mut repeat = advice.clone();
        repeat.set_mti("0221").unwrap();
        let again = rig.send(repeat);
        assert_eq!(again.code, first.code);
        assert_eq!(again.message.mti(), "0230");
        assert_eq!(again.record.effect, Some(Effect::Repeat), "{name}");
        assert_eq!(again.text(&rig, "rrn"), first.text(&rig, "rrn"));
        assert_eq!(rig.balance_of("cup-nopin"), start - 800);
        let totals = rig.host.totals(TERMINAL, rig.batch);
        assert_eq!((totals.debit_count, totals.debit_amount), (1, 800));
    }
}

#[test]
fn balanced_settlement_closes_the_batch() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let sale = rig.sale(CUP_OK, 1000, Some("123456"));
        rig.sale(VISA_OK, 2000, Some("1234"));
        let refund = rig.referring(TxnKind::Refund, CUP_OK, 500, &sale);
        rig.send(refund);
        let reply = rig.settle((2, 3000), (1, 500));
        assert_eq!(
            reply.code,
            rig.code(Outcome::Approved),
            "{name}: {:?}",
            reply.record.note
        );
        assert_eq!(reply.record.effect, Some(Effect::BatchClosed));
        if name == "cup" {
            assert_eq!(reply.text(&rig, "settle_result").as_deref(), Some("1"));
        }
        assert_eq!(rig.host.open_batch(TERMINAL), Some(2));
        // A terminal whose settlement answer was lost settles again: the
        // repeat is acknowledged and changes nothing.
        let again = rig.settle((2, 3000), (1, 500));
        assert_eq!(
            again.code,
            rig.code(Outcome::Approved),
            "{name}: {:?}",
            again.record.note
        );
        assert_eq!(again.record.effect, Some(Effect::Repeat), "{name}");
        assert_eq!(rig.host.open_batch(TERMINAL), Some(2));
        // The closed batch takes nothing more.
        let late = rig.sale(CUP_OK, 100, Some("123456"));
        assert_eq!(late.code, rig.code(Outcome::InvalidTransaction), "{name}");
        // Sign-in tells the terminal the new batch.
        rig.sign_in();
        assert_eq!(rig.batch, 2);
        assert_eq!(
            rig.sale(CUP_OK, 100, Some("123456")).code,
            rig.code(Outcome::Approved)
        );
    }
}

#[test]
fn out_of_balance_settlement_then_upload_closes_the_batch() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let sale = rig.sale(CUP_OK, 1000, Some("123456"));
        let reply = rig.settle((2, 3000), (0, 0));
        let oob = &rig.dialect.profile.settlement.out_of_balance;
        match (&oob.element, &oob.value, &oob.response_code) {
            (Some(element), Some(value), _) => {
                assert_eq!(reply.code, rig.code(Outcome::Approved), "{name}");
                assert_eq!(reply.text(&rig, element).as_deref(), Some(value.as_str()));
            }
            (_, _, Some(code)) => assert_eq!(&reply.code, code, "{name}"),
            _ => unreachable!(),
        }
        assert_eq!(rig.host.open_batch(TERMINAL), Some(1), "{name}: still open");
        // Upload the one transaction, twice (idempotent).
        let mut item = rig.request(TxnKind::BatchUpload);
        let d = &rig.dialect;
        d.set_text(&mut item, "pan", CUP_OK).unwrap();
        d.set_text(&mut item, "processing_code", "000000").unwrap();
        d.set_number(&mut item, "amount", 1000).unwrap();
        d.set_text(&mut item, "stan", sale.record.stan.as_deref().unwrap())
            .unwrap();
        d.set_text(&mut item, "rrn", &sale.text(&rig, "rrn").unwrap())
            .unwrap();
        let d = &rig.dialect;
        d.set_text(
            &mut item,
            "auth_code",
            &sale.text(&rig, "auth_code").unwrap(),
        )
        .unwrap();
        let first = rig.send(item.clone());
        assert_eq!(
            first.code,
            rig.code(Outcome::Approved),
            "{name}: {:?}",
            first.record.note
        );
        assert_eq!(first.record.effect, Some(Effect::Recorded));
        assert!(
            first.record.note.as_deref().unwrap().contains("matches"),
            "{:?}",
            first.record.note
        );
        let again = rig.send(item);
        assert_eq!(again.record.effect, Some(Effect::Repeat), "{name}");
        let mut end = rig.request(TxnKind::BatchUploadEnd);
        let d = &rig.dialect;
        d.set_number(&mut end, "upload_count", 1).unwrap();
        d.set_number(&mut end, "debit_count", 1).unwrap();
        d.set_number(&mut end, "debit_amount", 1000).unwrap();
        d.set_number(&mut end, "credit_count", 0).unwrap();
        d.set_number(&mut end, "credit_amount", 0).unwrap();
        let closed = rig.send(end);
        assert_eq!(
            closed.code,
            rig.code(Outcome::Approved),
            "{name}: {:?}",
            closed.record.note
        );
        assert_eq!(closed.record.effect, Some(Effect::BatchClosed));
        assert_eq!(rig.host.open_batch(TERMINAL), Some(2), "{name}");
        // Settling the closed batch again (a lost answer) is acknowledged, not applied.
        let again = rig.settle((1, 1000), (0, 0));
        assert_eq!(again.code, rig.code(Outcome::Approved), "{name}: closed");
        assert_eq!(again.record.effect, Some(Effect::Repeat), "{name}");
        assert_eq!(rig.host.open_batch(TERMINAL), Some(2), "{name}");
        // Anything else for the closed batch is refused.
        assert_eq!(
            rig.sale(CUP_OK, 100, Some("123456")).code,
            rig.code(Outcome::InvalidTransaction),
            "{name}: closed"
        );
    }
}

#[test]
fn a_bad_or_missing_mac_changes_nothing() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let start = rig.balance_of("cup-ok");
        let mut m = rig.card_request(TxnKind::Sale, CUP_OK, 1000, Some("123456"));
        let other = SecretKey::generate(rig.scheme.keys, 16).unwrap();
        let wire = seal(&rig.dialect, &rig.scheme, &mut m, Some(&other)).unwrap();
        let reply = rig.send_wire(&wire);
        assert_eq!(reply.code, rig.code(Outcome::MacError), "{name}");
        assert_eq!(
            reply.mac,
            MacCheck::Missing,
            "{name}: the MAC error answer carries no MAC"
        );
        assert_eq!(rig.balance_of("cup-ok"), start);
        // Without a MAC.
        let mut m = rig.card_request(TxnKind::Sale, CUP_OK, 1000, Some("123456"));
        let wire = seal(&rig.dialect, &rig.scheme, &mut m, None).unwrap();
        assert_eq!(rig.send_wire(&wire).code, rig.code(Outcome::MacError));
        // The STAN was not used up: the same request, MACed, goes through.
        let mut again = m.clone();
        let key = rig.keys.as_ref().unwrap().mac.clone();
        let wire = seal(&rig.dialect, &rig.scheme, &mut again, Some(&key)).unwrap();
        assert_eq!(
            rig.send_wire(&wire).code,
            rig.code(Outcome::Approved),
            "{name}"
        );
        assert_eq!(rig.balance_of("cup-ok"), start - 1000);
    }
}

#[test]
fn terminals_must_match_their_certificate_and_be_registered() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let unknown = rig.code(Outcome::UnknownTerminal);
        // Registered, but the certificate is another terminal's.
        rig.peer.common_name = Some(OTHER_TERMINAL.into());
        let reply = rig.sale(CUP_OK, 100, Some("123456"));
        assert_eq!(reply.code, unknown, "{name}");
        assert_eq!(reply.mac, MacCheck::Missing);
        let m = rig.request(TxnKind::SignIn);
        assert_eq!(rig.send(m).code, unknown);
        // No certificate name at all.
        rig.peer.common_name = None;
        let m = rig.request(TxnKind::SignIn);
        assert_eq!(rig.send(m).code, unknown);
        // Matches its certificate but has no master key.
        rig.peer.common_name = Some("TILL0009".into());
        let mut m = rig.request(TxnKind::SignIn);
        rig.dialect
            .set_text(&mut m, "terminal_id", "TILL0009")
            .unwrap();
        let reply = rig.send(m);
        assert_eq!(reply.code, unknown);
        assert!(
            reply
                .record
                .note
                .as_deref()
                .unwrap()
                .contains("host-keys.toml")
        );
        assert!(!rig.host.is_signed_in("TILL0009"));
    }
}

#[test]
fn requests_before_sign_in_are_refused() {
    for name in DIALECTS {
        let mut rig = Rig::new(name);
        let mut m = rig.request(TxnKind::Sale);
        rig.dialect.set_text(&mut m, "pan", CUP_OK).unwrap();
        rig.dialect.set_number(&mut m, "amount", 100).unwrap();
        let reply = rig.send(m);
        assert_eq!(reply.code, rig.code(Outcome::NotSignedIn), "{name}");
        let m = rig.request(TxnKind::Settlement);
        assert_eq!(rig.send(m).code, rig.code(Outcome::NotSignedIn));
    }
}

#[test]
fn malformed_and_unknown_requests() {
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        // A kind the dialect does not describe.
        let mut m = rig.request(TxnKind::Sale);
        rig.dialect
            .set_text(&mut m, "processing_code", "990000")
            .unwrap();
        let reply = rig.send(m);
        assert_eq!(reply.code, rig.code(Outcome::InvalidTransaction), "{name}");
        assert_eq!(reply.record.kind, "unknown");
        // A sale without an amount.
        let mut m = rig.card_request(TxnKind::Sale, CUP_OK, 1, Some("123456"));
        m.remove(4);
        assert_eq!(rig.send(m).code, rig.code(Outcome::FormatError));
        // Truncated: the message type is readable, the rest is not.
        let mut m = rig.card_request(TxnKind::Sale, CUP_OK, 100, Some("123456"));
        let wire = seal(&rig.dialect, &rig.scheme, &mut m, None).unwrap();
        let cut = &wire[..wire.len() - 5];
        let handled = rig.host.handle(cut, &rig.peer, rig.now);
        let answer = handled.answer.expect("a format error answer");
        assert_eq!(answer.message.mti(), "0210");
        assert_eq!(
            rig.dialect.get_text(&answer.message, "response_code"),
            Some(rig.code(Outcome::FormatError).as_str())
        );
        assert!(handled.record.note.unwrap().contains("cannot decode"));
        // Nothing readable: no answer, the connection closes.
        let handled = rig.host.handle(&[0xFF, 0x01], &rig.peer, rig.now);
        assert!(handled.answer.is_none(), "{name}");
        assert_eq!(handled.record.effect, Some(Effect::None));
        // Garbage of every length never panics.
        for len in 0..wire.len() {
            let mut bytes = wire[..len].to_vec();
            if let Some(b) = bytes.last_mut() {
                *b ^= 0x5A;
            }
            let _ = rig.host.handle(&bytes, &rig.peer, rig.now);
        }
    }
}

#[test]
fn outcome_names_are_snake_case() {
    assert_eq!(
        outcome_name(Outcome::InsufficientFunds),
        "insufficient_funds"
    );
    assert_eq!(outcome_name(Outcome::Approved), "approved");
    assert_eq!(outcome_name(Outcome::MacError), "mac_error");
}

#[test]
fn master_keys_must_suit_the_dialect() {
    let mut host_keys = BTreeMap::new();
    host_keys.insert(TERMINAL.to_string(), vec![0u8; 12]);
    let e = Host::new(
        Dialect::load("cup").unwrap(),
        &host_keys,
        CardDb::bundled().unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains(TERMINAL), "{e}");
}

#[test]
fn mutated_requests_never_panic() {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    let mut rng = StdRng::seed_from_u64(8583);
    for name in DIALECTS {
        let mut rig = Rig::signed_in(name);
        let mut originals = Vec::new();
        for kind in TxnKind::ALL {
            let mut m = rig.card_request(kind, CUP_OK, 100, Some("123456"));
            originals.push(rig.seal_for_test(&mut m));
        }
        let sale = rig.card_request(TxnKind::Sale, CUP_OK, 100, Some("123456"));
        let mut reversal = rig.reversal_of(&sale, false, None);
        originals.push(rig.seal_for_test(&mut reversal));
        for _ in 0..3000 {
            let mut wire = originals[rng.random_range(0..originals.len())].clone();
            for _ in 0..rng.random_range(1..4) {
                match rng.random_range(0..3) {
                    0 if !wire.is_empty() => {
                        let i = rng.random_range(0..wire.len());
                        wire[i] = rng.random();
                    }
                    1 if !wire.is_empty() => {
                        let cut = rng.random_range(0..wire.len());
                        wire.truncate(cut);
                    }
                    _ => wire.push(rng.random()),
                }
            }
            let handled = rig.host.handle(&wire, &rig.peer, rig.now);
            if let Some(answer) = handled.answer {
                rig.dialect
                    .decode(&answer.wire)
                    .expect("every answer decodes");
            }
        }
    }
}

impl Rig {
    /// Seals as `send` would, without sending.
    fn seal_for_test(&self, m: &mut Message) -> Vec<u8> {
        let class = classify(&self.dialect, m);
        let key = self
            .keys
            .as_ref()
            .filter(|_| kind_is_maced(&self.dialect, class.kind()))
            .map(|k| k.mac.clone());
        seal(&self.dialect, &self.scheme, m, key.as_ref()).unwrap()
    }
}

// ---- Chip (EMV contactless) data in field 55 ----

mod chip {
    use chrono::NaiveDate;
    use till_hal::reader::card::CardApplication;
    use till_hal::reader::virtual_emv::{self, VirtualCard};
    use till_pay::emv::issuer::IccRequest;
    use till_pay::emv::tlv::{self, Tag};
    use till_pay::emv::{
        ApduTransport, CardRead, Kernel, KernelConfig, Transaction, TransportError,
    };
    use till_pay::money::Currency;

    use super::*;

    /// Hands commands to the virtual card directly.
    struct Direct<'a>(&'a mut dyn CardApplication);

    impl ApduTransport for Direct<'_> {
        fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
            Ok(self.0.process(command))
        }
    }

    fn virtual_card(name: &str) -> VirtualCard {
        virtual_emv::bundled_cards()
            .unwrap()
            .into_iter()
            .find(|c| c.name == name)
            .unwrap()
    }

    /// Taps `card` for `amount` on the rig's date.
    fn tap(card: &mut VirtualCard, amount: u64) -> CardRead {
        let when = NaiveDate::from_ymd_opt(2026, 6, 15)
            .unwrap()
            .and_hms_opt(10, 30, 0)
            .unwrap();
        Kernel::new(KernelConfig::default())
            .read(
                Direct(&mut card.application),
                &Transaction::purchase(Amount(amount), Currency::CNY, when),
            )
            .unwrap()
    }

    impl Rig {
        /// A contactless chip request: the card data the kernel read,
        /// field 55, entry mode 071.
        fn chip_request(
            &mut self,
            kind: TxnKind,
            read: &CardRead,
            icc_data: &[u8],
            amount: u64,
            pin: Option<&str>,
        ) -> Message {
            let pan = read.pan.expose().to_string();
            let mut m = self.card_request(kind, &pan, amount, pin);
            let d = &self.dialect;
            d.set_text(&mut m, "pos_entry_mode", "071").unwrap();
            d.set_text(&mut m, "expiry", &read.expiry.yymm()).unwrap();
            d.set_bytes(&mut m, "icc_data", icc_data).unwrap();
            m
        }

        fn chip_sale(&mut self, read: &CardRead, amount: u64, pin: Option<&str>) -> Reply {
            let m = self.chip_request(TxnKind::Sale, read, &read.icc_data.clone(), amount, pin);
            self.send(m)
        }
    }

    /// The ARPC and ARC of an answer's field 55.
    fn issuer_authentication(rig: &Rig, reply: &Reply) -> Option<([u8; 8], [u8; 2])> {
        let icc = rig.dialect.get_bytes(&reply.message, "icc_data")?;
        let objects = tlv::parse(&icc).unwrap();
        let data = tlv::find(&objects, Tag::new(0x91))?.value()?;
        assert_eq!(data.len(), 10);
        Some((data[..8].try_into().unwrap(), data[8..].try_into().unwrap()))
    }

    /// The ARPC the card's issuer key gives for `read` and `arc`.
    fn expected_arpc(rig: &Rig, card: &str, read: &CardRead, arc: &[u8; 2]) -> [u8; 8] {
        let key = rig
            .host
            .cards()
            .by_name(card)
            .unwrap()
            .emv
            .as_ref()
            .unwrap()
            .key()
            .clone();
        let request = IccRequest::parse(&read.icc_data).unwrap();
        key.arpc(request.input.atc, &request.cryptogram, *arc)
            .unwrap()
    }

    #[test]
    fn a_verified_arqc_is_approved_with_an_arpc() {
        for name in DIALECTS {
            let mut rig = Rig::signed_in(name);
            for (card, pin) in [("visa-ok", "1234"), ("mc-ok", "4321"), ("cup-ok", "123456")] {
                let mut vc = virtual_card(card);
                let before = rig.balance_of(card);
                let read = tap(&mut vc, 1250);
                let reply = rig.chip_sale(&read, 1250, Some(pin));
                assert_eq!(
                    reply.code,
                    rig.code(Outcome::Approved),
                    "{name} {card}: {:?}",
                    reply.record.note
                );
                assert_eq!(rig.balance_of(card), before - 1250);
                let (arpc, arc) = issuer_authentication(&rig, &reply).expect("tag 91");
                assert_eq!(&arc, b"00", "{name} {card}");
                assert_eq!(
                    arpc,
                    expected_arpc(&rig, card, &read, b"00"),
                    "{name} {card}"
                );
                let note = reply.record.note.clone().unwrap_or_default();
                assert!(note.contains("ARQC verified"), "{name} {card}: {note}");
                assert_no_full_pan(&reply.record);
                let line = serde_json::to_string(&reply.record).unwrap();
                assert!(
                    !line.contains(&hex::encode_upper(arpc)),
                    "field 55 is masked: {line}"
                );
            }
        }
    }

    #[test]
    fn a_chip_preauthorization_is_verified_too() {
        for name in DIALECTS {
            let mut rig = Rig::signed_in(name);
            let mut vc = virtual_card("mc-ok");
            let read = tap(&mut vc, 700);
            let m = rig.chip_request(TxnKind::Preauth, &read, &read.icc_data, 700, Some("4321"));
            let reply = rig.send(m);
            assert_eq!(
                reply.code,
                rig.code(Outcome::Approved),
                "{name}: {:?}",
                reply.record.note
            );
            assert!(issuer_authentication(&rig, &reply).is_some());
            assert_eq!(rig.host.account("mc-ok").unwrap().held, Amount(700));
            // Another card's cryptogram (a Visa one) under this card's number.
            let other = tap(&mut virtual_card("visa-ok"), 700);
            let m = rig.chip_request(TxnKind::Preauth, &read, &other.icc_data, 700, Some("4321"));
            let reply = rig.send(m);
            assert_eq!(
                reply.code,
                rig.code(Outcome::DoNotHonour),
                "{name}: another card's cryptogram"
            );
        }
    }

    #[test]
    fn a_wrong_cryptogram_is_declined_and_says_why() {
        for name in DIALECTS {
            let mut rig = Rig::signed_in(name);
            let mut vc = virtual_card("visa-ok");
            let read = tap(&mut vc, 1250);
            let before = rig.balance_of("visa-ok");
            // Flip a bit of the ARQC (9F26 opens field 55).
            let mut icc = read.icc_data.clone();
            assert_eq!(&icc[..3], &[0x9F, 0x26, 0x08]);
            icc[3] ^= 0x01;
            let m = rig.chip_request(TxnKind::Sale, &read, &icc, 1250, Some("1234"));
            let reply = rig.send(m);
            assert_eq!(reply.code, "05", "{name}");
            assert_eq!(reply.code, rig.code(Outcome::DoNotHonour));
            let note = reply.record.note.clone().unwrap();
            assert!(note.contains("ARQC does not verify"), "{note}");
            assert_eq!(reply.record.outcome.as_deref(), Some("do_not_honour"));
            assert!(
                issuer_authentication(&rig, &reply).is_none(),
                "no ARPC for a bad ARQC"
            );
            assert_eq!(rig.balance_of("visa-ok"), before);
            // The same data for another amount than the card saw.
            let m = rig.chip_request(TxnKind::Sale, &read, &read.icc_data, 1251, Some("1234"));
            let reply = rig.send(m);
            assert_eq!(reply.code, rig.code(Outcome::DoNotHonour), "{name}");
            assert!(reply.record.note.clone().unwrap().contains("9F02"));
            // Altered terminal data (the unpredictable number).
            let request = IccRequest::parse(&read.icc_data).unwrap();
            let un = request.input.unpredictable_number;
            let at = read
                .icc_data
                .windows(7)
                .position(|w| w[..3] == [0x9F, 0x37, 0x04] && w[3..] == un)
                .unwrap();
            let mut altered = read.icc_data.clone();
            altered[at + 3] ^= 0x80;
            let m = rig.chip_request(TxnKind::Sale, &read, &altered, 1250, Some("1234"));
            assert_eq!(rig.send(m).code, rig.code(Outcome::DoNotHonour), "{name}");
            // The genuine data still goes through, once.
            let reply = rig.chip_sale(&read, 1250, Some("1234"));
            assert_eq!(
                reply.code,
                rig.code(Outcome::Approved),
                "{name}: {:?}",
                reply.record.note
            );
            let replay = rig.chip_sale(&read, 1250, Some("1234"));
            assert_eq!(
                replay.code,
                rig.code(Outcome::DoNotHonour),
                "{name}: replayed"
            );
            assert!(replay.record.note.clone().unwrap().contains("replayed"));
            // The card's next tap is fine.
            let next = tap(&mut vc, 10);
            assert_eq!(
                rig.chip_sale(&next, 10, Some("1234")).code,
                rig.code(Outcome::Approved)
            );
        }
    }

    #[test]
    fn a_decline_after_a_good_arqc_carries_its_own_arpc() {
        for name in DIALECTS {
            let mut rig = Rig::signed_in(name);
            let mut vc = virtual_card("mc-low");
            let read = tap(&mut vc, 10_000);
            let reply = rig.chip_sale(&read, 10_000, Some("4321"));
            assert_eq!(reply.code, "51", "{name}");
            let (arpc, arc) = issuer_authentication(&rig, &reply).expect("tag 91");
            assert_eq!(&arc, b"51");
            assert_eq!(arpc, expected_arpc(&rig, "mc-low", &read, b"51"));
        }
    }

    #[test]
    fn unusable_chip_data_is_refused() {
        for name in DIALECTS {
            let mut rig = Rig::signed_in(name);
            let mut vc = virtual_card("visa-ok");
            let read = tap(&mut vc, 500);
            // Not BER-TLV.
            let m = rig.chip_request(
                TxnKind::Sale,
                &read,
                &[0x9F, 0x26, 0x09, 0x01],
                500,
                Some("1234"),
            );
            let reply = rig.send(m);
            assert_eq!(reply.code, rig.code(Outcome::FormatError), "{name}");
            assert!(reply.record.note.clone().unwrap().contains("field 55"));
            // Without the ATC.
            let objects: Vec<_> = tlv::parse(&read.icc_data)
                .unwrap()
                .into_iter()
                .filter(|o| o.tag() != Tag::new(0x9F36))
                .collect();
            let m = rig.chip_request(
                TxnKind::Sale,
                &read,
                &tlv::encode_all(&objects),
                500,
                Some("1234"),
            );
            let reply = rig.send(m);
            assert_eq!(reply.code, rig.code(Outcome::FormatError), "{name}");
            assert!(reply.record.note.clone().unwrap().contains("9F36"));
        }
        // A card the issuer has no chip keys for.
        let cards = CardDb::from_toml(
            "test",
            "[[card]]\nname = \"plain\"\npan = \"4761739001010010\"\nexpiry = \"4912\"\npin = \"1234\"\nbalance = \"100\"\nstatus = \"ok\"\n",
        )
        .unwrap();
        let mut rig = Rig::with_cards("cup", cards);
        rig.sign_in();
        let mut vc = virtual_card("visa-ok");
        let read = tap(&mut vc, 500);
        let reply = rig.chip_sale(&read, 500, Some("1234"));
        assert_eq!(reply.code, rig.code(Outcome::DoNotHonour));
        assert!(reply.record.note.clone().unwrap().contains("no chip keys"));
    }
}

mod qr {
    use super::*;

    const WECHAT: &str = "134567890123456789";
    const WECHAT_2: &str = "101234567890123456";
    const ALIPAY: &str = "284567890123456789";
    const QUICKPASS: &str = "6212345678901234567";

    impl Rig {
        /// A QR code payment as the terminal sends it: the code, entry mode
        /// 03, no card, no PIN.
        fn qr_request(&mut self, code: &str, amount: u64) -> Message {
            let mut m = self.request(TxnKind::Sale);
            let d = &self.dialect;
            d.set_text(&mut m, "payment_code", code).unwrap();
            d.set_text(&mut m, "pos_entry_mode", "032").unwrap();
            d.set_number(&mut m, "amount", amount).unwrap();
            d.set_text(&mut m, "currency", "156").unwrap();
            m
        }

        /// A void or refund of a QR payment: it names its original, and
        /// carries no card and no code.
        fn referring_qr(&mut self, kind: TxnKind, amount: u64, original: &Reply) -> Message {
            let mut m = self.request(kind);
            let d = &self.dialect;
            d.set_number(&mut m, "amount", amount).unwrap();
            d.set_text(&mut m, "currency", "156").unwrap();
            self.refer_to(&mut m, original);
            m
        }
    }

    fn assert_no_code(record: &LedgerRecord) {
        let line = serde_json::to_string(record).unwrap();
        for code in [WECHAT, WECHAT_2, ALIPAY, QUICKPASS] {
            assert!(
                !line.contains(code),
                "full payment code in the ledger: {line}"
            );
        }
    }

    #[test]
    fn a_payment_code_pays_once_from_its_wallet() {
        for name in DIALECTS {
            let mut rig = Rig::signed_in(name);
            let start = rig.balance_of("wechat");
            let m = rig.qr_request(WECHAT, 2500);
            let paid = rig.send(m);
            assert_eq!(
                paid.code,
                rig.code(Outcome::Approved),
                "{name}: {:?}",
                paid.record.note
            );
            assert_eq!(paid.mac, MacCheck::Valid);
            assert!(paid.text(&rig, "rrn").is_some() && paid.text(&rig, "auth_code").is_some());
            assert_eq!(rig.balance_of("wechat"), start - 2500);
            assert_eq!(paid.record.card.as_deref(), Some("wechat"));
            assert_eq!(paid.record.pan.as_deref(), Some("13************6789"));
            assert_no_code(&paid.record);
            // The same code again: refused, nothing taken.
            let m = rig.qr_request(WECHAT, 100);
            let again = rig.send(m);
            assert_eq!(again.code, "Q1", "{name}");
            assert_eq!(rig.code(Outcome::InvalidPaymentCode), "Q1");
            assert!(
                again
                    .record
                    .note
                    .as_deref()
                    .unwrap()
                    .contains("already used")
            );
            assert_eq!(rig.balance_of("wechat"), start - 2500);
            // A wallet with no account here, and not enough in one.
            let m = rig.qr_request(ALIPAY, 100);
            let alipay = rig.send(m);
            assert_eq!(alipay.code, "Q1", "{name}");
            assert_eq!(alipay.record.card, None);
            assert_no_code(&alipay.record);
            let m = rig.qr_request(QUICKPASS, 30_001);
            assert_eq!(rig.send(m).code, rig.code(Outcome::InsufficientFunds));
            // Declined for funds, the code was not used up.
            let m = rig.qr_request(QUICKPASS, 30_000);
            assert_eq!(rig.send(m).code, rig.code(Outcome::Approved), "{name}");
            // Digits that are no wallet's code.
            let m = rig.qr_request("9912345678", 100);
            assert_eq!(rig.send(m).code, "Q1");
            let totals = rig.host.totals(TERMINAL, rig.batch);
            assert_eq!((totals.debit_count, totals.debit_amount), (2, 32_500));
        }
    }

    #[test]
    fn voids_refunds_and_reversals_pay_the_wallet_back() {
        for name in DIALECTS {
            let mut rig = Rig::signed_in(name);
            let start = rig.balance_of("wechat");
            let m = rig.qr_request(WECHAT, 2500);
            let sale = rig.send(m);
            let m = rig.referring_qr(TxnKind::Void, 2500, &sale);
            let void = rig.send(m);
            assert_eq!(
                void.code,
                rig.code(Outcome::Approved),
                "{name}: {:?}",
                void.record.note
            );
            assert_eq!(void.record.effect, Some(Effect::Credit));
            assert_eq!(rig.balance_of("wechat"), start);

            let m = rig.qr_request(WECHAT_2, 1000);
            let sale = rig.send(m);
            let m = rig.referring_qr(TxnKind::Refund, 400, &sale);
            assert_eq!(rig.send(m).code, rig.code(Outcome::Approved), "{name}");
            assert_eq!(rig.balance_of("wechat"), start - 600);
            let m = rig.referring_qr(TxnKind::Refund, 601, &sale);
            assert_eq!(rig.send(m).code, rig.code(Outcome::InvalidAmount));
            // A card sale's void without the card is still refused.
            let card_sale = rig.sale(CUP_OK, 500, Some("123456"));
            let m = rig.referring_qr(TxnKind::Void, 500, &card_sale);
            assert_eq!(rig.send(m).code, rig.code(Outcome::FormatError), "{name}");

            // An unanswered QR payment reversed: the wallet gets it back.
            let m = rig.qr_request(QUICKPASS, 700);
            let before = rig.balance_of("quickpass");
            rig.send(m.clone());
            let rev = rig.reversal_of(&m, false, None);
            let r = rig.send(rev);
            assert_eq!(
                r.record.effect,
                Some(Effect::Reversed),
                "{name}: {:?}",
                r.record.note
            );
            assert_eq!(rig.balance_of("quickpass"), before);
        }
    }

    #[test]
    fn a_wallet_file_is_checked() {
        let base = "currency = \"CNY\"\n";
        let bad = [
            (
                "[[wallet]]\nname = \"w\"\nwallet = \"paypal\"\nbalance = \"1.00\"\n",
                "expected one of `wechat-pay`",
            ),
            (
                "[[wallet]]\nname = \"a\"\nwallet = \"alipay\"\nbalance = \"1.00\"\n[[wallet]]\nname = \"b\"\nwallet = \"alipay\"\nbalance = \"1.00\"\n",
                "one account per wallet",
            ),
            (
                "[[wallet]]\nname = \"\"\nwallet = \"alipay\"\nbalance = \"1.00\"\n",
                "name",
            ),
            (
                "[[wallet]]\nname = \"a\"\nwallet = \"alipay\"\nbalance = \"x\"\n",
                "balance",
            ),
        ];
        for (text, says) in bad {
            let e = CardDb::from_toml("test", &format!("{base}{text}")).unwrap_err();
            assert!(e.to_string().contains(says), "{e}");
        }
        let db = CardDb::bundled().unwrap();
        assert_eq!(db.wallets().len(), 2);
        assert_eq!(db.find_wallet(till_pay::qr::Wallet::Alipay), None);
    }
}
