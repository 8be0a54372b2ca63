//! Cross-checks of Till's EMV code against pyemv, an independent
//! implementation: BER-TLV decoding and encoding (of the virtual cards'
//! real answers and of random trees), ICC master key derivation (option
//! A), the EMV common session key, and the application cryptograms and
//! ARPCs of both profiles — pyemv's ARQC must equal the one the virtual
//! card (`till-hal`, its own DES code) produced, and `emv::issuer` must
//! verify it.
//!
//! Every test draws a few hundred random cases (keys, PANs, PAN sequence
//! numbers, counters, amounts, currencies, dates) and sends them in one
//! batch to a single long-running Python process
//! (`tests/peers/emv_peer.py`, JSON lines over stdin/stdout).
//!
//! The interpreter is `$TILL_PYTHON`, else `target/peers-venv`'s, else
//! `python3`; a missing interpreter or module fails the tests with a
//! pointer to `scripts/test`, which installs the peers. Set
//! `TILL_PEER_SEED` to replay a failing run (its seed is in every failure
//! message).

mod support;

use std::sync::{Mutex, MutexGuard, OnceLock};

use support::{BatchPeer, Reply, peer_seed};

use chrono::NaiveDate;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value, json};
use till_hal::reader::card::CardApplication;
use till_hal::reader::virtual_emv::{EmvPersonalisation, Profile, VirtualEmvCard};
use till_pay::crypto::{KeyScheme, SecretKey};
use till_pay::emv::issuer::{
    self, CardKey, CryptogramInput, CryptogramVersion, IccRequest, common_session_key,
};
use till_pay::emv::tlv::{self, Tag, Tlv};
use till_pay::emv::{
    ApduTransport, Kernel, KernelConfig, Transaction, TransactionType, TransportError,
};
use till_pay::money::{Amount, Currency};

/// Random cases per test.
const CASES: usize = 200;

/// The Python peer process, shared by all tests in this file.
fn peer() -> MutexGuard<'static, BatchPeer> {
    static PEER: OnceLock<Mutex<BatchPeer>> = OnceLock::new();
    PEER.get_or_init(|| Mutex::new(BatchPeer::start("emv_peer.py", "EMV", "pyemv")))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends `requests` in one batch; the lock is released before any assert.
fn ask(requests: &[Value]) -> Vec<Reply> {
    peer().batch(requests)
}

fn rng_for(test: u64) -> StdRng {
    StdRng::seed_from_u64(peer_seed() ^ test.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn ctx(test: &str, case: usize) -> String {
    format!("{test} case {case} (TILL_PEER_SEED={})", peer_seed())
}

fn hex(data: &[u8]) -> String {
    hex::encode_upper(data)
}

fn ok_hex(reply: &Reply, ctx: &str) -> Vec<u8> {
    match reply {
        Ok(Value::String(text)) => hex::decode(text).unwrap(),
        other => panic!("{ctx}: peer answered {other:?}"),
    }
}

fn bytes<const N: usize>(rng: &mut StdRng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill(&mut out[..]);
    out
}

fn digits(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// A random Luhn-valid PAN of 12 to 19 digits.
fn pan(rng: &mut StdRng) -> String {
    let len = rng.random_range(12..=19);
    let body = digits(rng, len - 1);
    (0..10u8)
        .map(|d| format!("{body}{d}"))
        .find(|p| till_pay::card::luhn_ok(p))
        .unwrap()
}

/// Our parse of a TLV sequence as pyemv's nested dictionary: tag → hex
/// value, or tag → dictionary for templates (a repeated tag keeps the
/// last value, as a Python dict does).
fn as_dict(objects: &[Tlv]) -> Value {
    let mut map = Map::new();
    for o in objects {
        let value = match o.value() {
            Some(v) => Value::String(hex(v)),
            None => as_dict(o.children()),
        };
        map.insert(o.tag().to_string(), value);
    }
    Value::Object(map)
}

/// Records every answer the card gives.
struct Recording<'a> {
    card: &'a mut dyn CardApplication,
    answers: Vec<Vec<u8>>,
}

impl ApduTransport for Recording<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let answer = self.card.process(command);
        self.answers.push(answer.clone());
        Ok(answer)
    }
}

/// A random card of either profile, and a random transaction and
/// terminal country to read it with.
struct Case {
    perso: EmvPersonalisation,
    txn: Transaction,
    country: u16,
}

fn random_case(rng: &mut StdRng) -> Case {
    let profile = if rng.random() {
        Profile::Qvsdc
    } else {
        Profile::Mchip
    };
    let expiry = format!(
        "{:02}{:02}",
        rng.random_range(30..=99),
        rng.random_range(1..=12)
    );
    let mut perso = EmvPersonalisation::new(profile, &pan(rng), &expiry, bytes::<16>(rng));
    perso.pan_sequence = rng.random_range(0..=99);
    perso.atc = rng.random_range(0..0xFFFE);
    if rng.random() {
        let len = rng.random_range(2..=26);
        perso.cardholder_name = Some(
            (0..len)
                .map(|_| char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ/ "[rng.random_range(0..28)]))
                .collect::<String>()
                .trim()
                .to_string(),
        )
        .filter(|n| n.len() >= 2);
    }
    let currencies = ["CNY", "USD", "EUR", "JPY", "GBP", "KWD"];
    let currency = Currency::find(currencies[rng.random_range(0..currencies.len())]).unwrap();
    let date = NaiveDate::from_ymd_opt(
        rng.random_range(2000..=2029),
        rng.random_range(1..=12),
        rng.random_range(1..=28),
    )
    .unwrap()
    .and_hms_opt(rng.random_range(0..24), rng.random_range(0..60), 0)
    .unwrap();
    let kinds = [
        TransactionType::Purchase,
        TransactionType::Cash,
        TransactionType::Cashback,
        TransactionType::Refund,
    ];
    let txn = Transaction {
        amount: Amount(rng.random_range(0..=999_999_999_999)),
        other_amount: Amount(if rng.random() {
            0
        } else {
            rng.random_range(0..1_000_000)
        }),
        currency,
        kind: kinds[rng.random_range(0..kinds.len())],
        date_time: date,
    };
    let country = [156, 840, 826, 392, 344][rng.random_range(0..5)];
    Case {
        perso,
        txn,
        country,
    }
}

fn version(profile: Profile) -> CryptogramVersion {
    match profile {
        Profile::Qvsdc => CryptogramVersion::VisaCvn10,
        Profile::Mchip => CryptogramVersion::MastercardCvn20,
    }
}

fn version_name(v: CryptogramVersion) -> &'static str {
    match v {
        CryptogramVersion::VisaCvn10 => "visa10",
        CryptogramVersion::MastercardCvn20 => "mc20",
    }
}

/// The cryptogram data of field 55 as pyemv's `generate_ac` takes it.
fn ac_tags(input: &CryptogramInput) -> Value {
    json!({
        "9F02": hex(&input.amount_authorised), "9F03": hex(&input.amount_other),
        "9F1A": hex(&input.terminal_country), "95": hex(&input.tvr),
        "5F2A": hex(&input.currency), "9A": hex(&input.date),
        "9C": hex(&[input.transaction_type]), "9F37": hex(&input.unpredictable_number),
        "82": hex(&input.aip), "9F36": hex(&input.atc), "9F10": hex(&input.iad),
    })
}

/// The virtual cards' every answer decodes the same in pyemv, and pyemv
/// encodes our decoding back to the card's bytes.
#[test]
fn card_answers_decode_alike() {
    let mut rng = rng_for(1);
    let mut answers = Vec::new();
    for _ in 0..CASES / 4 {
        let case = random_case(&mut rng);
        let mut card = VirtualEmvCard::new(case.perso).unwrap();
        let mut recording = Recording {
            card: &mut card,
            answers: Vec::new(),
        };
        Kernel::new(KernelConfig::default())
            .read(&mut recording, &case.txn)
            .unwrap();
        for answer in recording.answers {
            answers.push(answer[..answer.len() - 2].to_vec());
        }
    }
    let requests: Vec<Value> = answers
        .iter()
        .flat_map(|a| {
            let tree = as_dict(&tlv::parse(a).unwrap());
            [
                json!({"op": "tlv_decode", "data": hex(a)}),
                json!({"op": "tlv_encode", "tree": tree}),
            ]
        })
        .collect();
    let replies = ask(&requests);
    for (i, (answer, r)) in answers.iter().zip(replies.chunks(2)).enumerate() {
        let ctx = ctx("card answer", i);
        let ours = as_dict(&tlv::parse(answer).unwrap());
        assert_eq!(r[0].as_ref().unwrap(), &ours, "{ctx}: {}", hex(answer));
        assert_eq!(&ok_hex(&r[1], &ctx), answer, "{ctx}");
    }
}

/// A random TLV tree with distinct tags among siblings (so pyemv's
/// dictionary holds all of it).
fn random_tree(rng: &mut StdRng, depth: usize) -> Vec<Tlv> {
    let mut used = std::collections::HashSet::new();
    let mut out = Vec::new();
    for _ in 0..rng.random_range(1..5) {
        let constructed = depth < 4 && rng.random_range(0..4) == 0;
        let tag = loop {
            let first = (rng.random_range(0..4u8) << 6) | if constructed { 0x20 } else { 0 };
            let raw = match rng.random_range(0..3) {
                0 => vec![first | rng.random_range(1..31u8)],
                1 => vec![first | 0x1F, rng.random_range(1..0x80u8)],
                _ => vec![
                    first | 0x1F,
                    rng.random_range(0x81..=0xFFu8),
                    rng.random_range(0..0x80u8),
                ],
            };
            if let Ok(tag) = Tag::from_bytes(&raw)
                && used.insert(tag)
            {
                break tag;
            }
        };
        let object = if constructed {
            Tlv::constructed(tag, random_tree(rng, depth + 1)).unwrap()
        } else {
            let len = match rng.random_range(0..10) {
                0 => rng.random_range(128..300),
                _ => rng.random_range(0..40),
            };
            let mut value = vec![0u8; len];
            rng.fill(&mut value[..]);
            Tlv::primitive(tag, value).unwrap()
        };
        out.push(object);
    }
    out
}

#[test]
fn random_tlv_agrees_with_pyemv_both_ways() {
    let mut rng = rng_for(2);
    let cases: Vec<(Vec<Tlv>, Vec<u8>, usize)> = (0..CASES)
        .map(|_| {
            let tree = random_tree(&mut rng, 0);
            let first = tree[0].encode();
            let cut = rng.random_range(1..first.len());
            (tree, first, cut)
        })
        .collect();
    let requests: Vec<Value> = cases
        .iter()
        .flat_map(|(tree, first, cut)| {
            [
                json!({"op": "tlv_decode", "data": hex(&tlv::encode_all(tree))}),
                json!({"op": "tlv_encode", "tree": as_dict(tree)}),
                json!({"op": "tlv_decode", "data": hex(&first[..*cut])}),
            ]
        })
        .collect();
    let replies = ask(&requests);
    for (i, ((tree, first, cut), r)) in cases.iter().zip(replies.chunks(3)).enumerate() {
        let ctx = ctx("random TLV", i);
        assert_eq!(r[0].as_ref().unwrap(), &as_dict(tree), "{ctx}");
        assert_eq!(ok_hex(&r[1], &ctx), tlv::encode_all(tree), "{ctx}");
        // A truncated object: both refuse it.
        assert!(
            r[2].is_err(),
            "{ctx}: pyemv accepted {cut} of {} bytes",
            first.len()
        );
        assert!(
            tlv::parse(&first[..*cut]).is_err(),
            "{ctx}: Till accepted a truncation"
        );
    }
}

#[test]
fn icc_master_keys_match_pyemv() {
    let mut rng = rng_for(3);
    let cases: Vec<([u8; 16], String, u8)> = (0..CASES)
        .map(|_| {
            let len = rng.random_range(12..=19);
            (
                bytes(&mut rng),
                digits(&mut rng, len),
                rng.random_range(0..=99),
            )
        })
        .collect();
    let requests: Vec<Value> = cases
        .iter()
        .map(|(imk, pan, psn)| json!({"op": "icc_mk", "imk": hex(imk), "pan": pan, "psn": psn}))
        .collect();
    let replies = ask(&requests);
    for (i, ((imk, pan, psn), r)) in cases.iter().zip(&replies).enumerate() {
        let ctx = ctx("ICC master key", i);
        let imk = SecretKey::new(KeyScheme::Tdes, imk).unwrap();
        let ours = issuer::icc_master_key(&imk, pan, *psn).unwrap();
        assert_eq!(
            ours.expose_bytes(),
            ok_hex(r, &ctx),
            "{ctx}: {}-digit PAN",
            pan.len()
        );
    }
}

#[test]
fn common_session_keys_match_pyemv() {
    let mut rng = rng_for(4);
    let cases: Vec<([u8; 16], [u8; 8])> = (0..CASES)
        .map(|i| {
            let mut r = bytes::<8>(&mut rng);
            // Half the cases use the ATC form R = ATC || 00 x 6.
            if i % 2 == 0 {
                r[2..].fill(0);
            }
            (bytes(&mut rng), r)
        })
        .collect();
    let requests: Vec<Value> = cases
        .iter()
        .map(|(mk, r)| json!({"op": "common_sk", "mk": hex(mk), "r": hex(r)}))
        .collect();
    let replies = ask(&requests);
    for (i, ((mk, r), reply)) in cases.iter().zip(&replies).enumerate() {
        let ctx = ctx("common session key", i);
        let mk = SecretKey::new(KeyScheme::Tdes, mk).unwrap();
        let ours = common_session_key(&mk, r).unwrap();
        assert_eq!(ours.expose_bytes(), ok_hex(reply, &ctx), "{ctx}");
    }
}

/// The virtual card's ARQC (its own DES code), pyemv's ARQC over the field
/// 55 data, and `issuer`'s verification agree; so do the ARPCs.
#[test]
fn virtual_card_arqcs_match_pyemv_and_verify() {
    let mut rng = rng_for(5);
    let mut cases = Vec::new();
    for _ in 0..CASES {
        let case = random_case(&mut rng);
        let config = KernelConfig {
            terminal_country: case.country,
            ..KernelConfig::default()
        };
        let perso = case.perso.clone();
        let mut card = VirtualEmvCard::new(case.perso).unwrap();
        let read = Kernel::new(config)
            .read(
                &mut Recording {
                    card: &mut card,
                    answers: Vec::new(),
                },
                &case.txn,
            )
            .unwrap();
        let request = IccRequest::parse(&read.icc_data).unwrap();
        let arc: [u8; 2] = bytes(&mut rng);
        cases.push((perso, read, request, arc));
    }
    let requests: Vec<Value> = cases
        .iter()
        .flat_map(|(perso, _, request, arc)| {
            let common = json!({
                "version": version_name(version(perso.profile)),
                "imk": hex(&perso.issuer_master_key), "pan": perso.pan, "psn": perso.pan_sequence,
            });
            let mut ac = common.clone();
            ac["op"] = json!("ac");
            ac["tags"] = ac_tags(&request.input);
            let mut arpc = common;
            arpc["op"] = json!("arpc");
            arpc["arqc"] = json!(hex(&request.cryptogram));
            arpc["atc"] = json!(hex(&request.input.atc));
            arpc["arc"] = json!(hex(arc));
            [ac, arpc]
        })
        .collect();
    let replies = ask(&requests);
    for (i, ((perso, read, request, arc), r)) in cases.iter().zip(replies.chunks(2)).enumerate() {
        let ctx = ctx(&format!("{:?} ARQC", perso.profile), i);
        assert_eq!(
            ok_hex(&r[0], &ctx),
            read.cryptogram.value,
            "{ctx}: pyemv vs the card"
        );
        let imk = SecretKey::new(KeyScheme::Tdes, &perso.issuer_master_key).unwrap();
        let key =
            CardKey::derive(version(perso.profile), &imk, &perso.pan, perso.pan_sequence).unwrap();
        key.verify(request).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let ours = key
            .arpc(request.input.atc, &request.cryptogram, *arc)
            .unwrap();
        assert_eq!(ok_hex(&r[1], &ctx), ours, "{ctx}: ARPC");
    }
}

/// Cryptograms over random data (any TVR, CVR, AIP, counter…), without a
/// card in between.
#[test]
fn cryptograms_over_random_data_match_pyemv() {
    let mut rng = rng_for(6);
    let cases: Vec<(CryptogramVersion, [u8; 16], String, u8, CryptogramInput)> = (0..CASES)
        .map(|_| {
            let version = if rng.random() {
                CryptogramVersion::VisaCvn10
            } else {
                CryptogramVersion::MastercardCvn20
            };
            let iad = match version {
                CryptogramVersion::VisaCvn10 => {
                    let mut iad = vec![0x06, rng.random(), 0x0A];
                    iad.extend_from_slice(&bytes::<4>(&mut rng));
                    iad
                }
                CryptogramVersion::MastercardCvn20 => {
                    let mut iad = vec![rng.random(), 0x14];
                    iad.extend_from_slice(&bytes::<16>(&mut rng));
                    iad
                }
            };
            let input = CryptogramInput {
                amount_authorised: bytes(&mut rng),
                amount_other: bytes(&mut rng),
                terminal_country: bytes(&mut rng),
                tvr: bytes(&mut rng),
                currency: bytes(&mut rng),
                date: bytes(&mut rng),
                transaction_type: rng.random(),
                unpredictable_number: bytes(&mut rng),
                aip: bytes(&mut rng),
                atc: bytes(&mut rng),
                iad,
            };
            (
                version,
                bytes(&mut rng),
                pan(&mut rng),
                rng.random_range(0..=99),
                input,
            )
        })
        .collect();
    let requests: Vec<Value> = cases
        .iter()
        .map(|(version, imk, pan, psn, input)| {
            json!({"op": "ac", "version": version_name(*version), "imk": hex(imk),
                   "pan": pan, "psn": psn, "tags": ac_tags(input)})
        })
        .collect();
    let replies = ask(&requests);
    for (i, ((version, imk, pan, psn, input), r)) in cases.iter().zip(&replies).enumerate() {
        let ctx = ctx(&format!("{version} over random data"), i);
        let imk = SecretKey::new(KeyScheme::Tdes, imk).unwrap();
        let key = CardKey::derive(*version, &imk, pan, *psn).unwrap();
        assert_eq!(ok_hex(r, &ctx), key.cryptogram(input).unwrap(), "{ctx}");
    }
}
