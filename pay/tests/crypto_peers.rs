//! Cross-checks of `till_pay::crypto` against independent implementations:
//! psec (PIN blocks, retail MAC, TDES KCV and ECB, AES ECB) and the Python
//! `cryptography` package (AES-CMAC, RFC 3394 key wrap).
//!
//! Every test draws a few hundred random cases and sends them in one batch
//! to a single long-running Python process (`tests/peers/crypto_peer.py`,
//! JSON lines over stdin/stdout), so the whole file runs in about a second.
//! PIN block formats 3 and 4 carry random fill, so there each side decodes
//! the blocks the other side made.
//!
//! The interpreter is `$TILL_PYTHON`, else `target/peers-venv`'s, else `python3`. A missing interpreter
//! or module fails the tests with a pointer to `scripts/test`, which installs
//! the peers; skipping would let the cross-checks rot unnoticed.
//! Set `TILL_PEER_SEED` to replay a failing run (its seed is in every
//! failure message).

mod support;

use std::sync::{Mutex, MutexGuard, OnceLock};

use support::{BatchPeer, Reply, peer_seed};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use till_pay::crypto::keys::{aes_ecb_encrypt, tdes_ecb_encrypt};
use till_pay::crypto::mac::{aes_cmac, cup_pos_mac, retail_mac};
use till_pay::crypto::pinblock::{clear_pin_block, decipher, encipher};
use till_pay::crypto::{KeyScheme, MacAlgorithm, MacPadding, Pin, PinBlockFormat, SecretKey};

/// Random cases per test.
const CASES: usize = 300;

/// The Python peer process, shared by all tests in this file.
fn peer() -> MutexGuard<'static, BatchPeer> {
    static PEER: OnceLock<Mutex<BatchPeer>> = OnceLock::new();
    PEER.get_or_init(|| {
        Mutex::new(BatchPeer::start(
            "crypto_peer.py",
            "crypto",
            "psec, cryptography",
        ))
    })
    .lock()
    // A test that failed while holding the lock left the peer in step
    // (every batch reads all its replies), so it is still usable.
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends `requests` in one batch; the lock is released before any assert.
fn ask(requests: &[Value]) -> Vec<Reply> {
    peer().batch(requests)
}

/// A generator per test, so tests replay alike whatever order they run in.
fn rng_for(test: u64) -> StdRng {
    StdRng::seed_from_u64(peer_seed() ^ test.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn digits(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rng.fill(&mut out[..]);
    out
}

/// MAC data lengths: every length up to three blocks first, where the
/// padding rules bite (empty, partial, whole blocks), then random up to 300.
fn data_len(rng: &mut StdRng, case: usize) -> usize {
    if case <= 24 {
        case
    } else {
        rng.random_range(0..=300)
    }
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

fn key(rng: &mut StdRng, scheme: KeyScheme) -> SecretKey {
    let len = pick(rng, scheme.key_lengths());
    SecretKey::new(scheme, &bytes(rng, len)).unwrap()
}

fn random_pin(rng: &mut StdRng) -> Pin {
    let len = rng.random_range(4..=12);
    Pin::new(&digits(rng, len)).unwrap()
}

fn random_pan(rng: &mut StdRng) -> String {
    let len = rng.random_range(12..=19);
    digits(rng, len)
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

fn ok_str<'a>(reply: &'a Reply, ctx: &str) -> &'a str {
    match reply {
        Ok(Value::String(text)) => text,
        other => panic!("{ctx}: peer answered {other:?}"),
    }
}

fn ctx(test: &str, case: usize) -> String {
    format!("{test} case {case} (TILL_PEER_SEED={})", peer_seed())
}

/// Format 0 is deterministic: clear blocks and cryptograms must be equal,
/// and each side must decode the other's.
#[test]
fn pin_block_format0_matches_psec() {
    let mut rng = rng_for(1);
    let cases: Vec<_> = (0..CASES)
        .map(|_| {
            let pin = random_pin(&mut rng);
            let pan = random_pan(&mut rng);
            let key = key(&mut rng, KeyScheme::Tdes);
            let ours = encipher(PinBlockFormat::Iso0, &pin, &pan, &key).unwrap();
            (pin, pan, key, ours)
        })
        .collect();
    let requests: Vec<Value> = cases
        .iter()
        .flat_map(|(pin, pan, key, ours)| {
            [
                json!({"op": "pin0_clear", "pin": pin.expose(), "pan": pan}),
                json!({"op": "pin_encipher", "format": 0, "pin": pin.expose(), "pan": pan,
                       "key": hex(key.expose_bytes())}),
                json!({"op": "pin_decipher", "format": 0, "block": hex(ours), "pan": pan,
                       "key": hex(key.expose_bytes())}),
            ]
        })
        .collect();
    let replies = ask(&requests);
    for (i, ((pin, pan, key, ours), r)) in cases.iter().zip(replies.chunks(3)).enumerate() {
        let ctx = ctx("format 0", i);
        let clear = clear_pin_block(PinBlockFormat::Iso0, pin, pan).unwrap();
        assert_eq!(ok_hex(&r[0], &ctx), clear.to_vec(), "{ctx}: clear block");
        assert_eq!(&ok_hex(&r[1], &ctx), ours, "{ctx}: enciphered block");
        assert_eq!(
            ok_str(&r[2], &ctx),
            pin.expose(),
            "{ctx}: psec decoding ours"
        );
        let theirs = ok_hex(&r[1], &ctx);
        let (format, back) = decipher(&theirs, pan, key).unwrap();
        assert_eq!(
            (format, back.expose()),
            (PinBlockFormat::Iso0, pin.expose()),
            "{ctx}"
        );
    }
}

#[test]
fn pin_block_format3_decodes_both_ways_with_psec() {
    let mut rng = rng_for(3);
    let cases: Vec<_> = (0..CASES)
        .map(|_| {
            let pin = random_pin(&mut rng);
            let pan = random_pan(&mut rng);
            let key = key(&mut rng, KeyScheme::Tdes);
            let ours = encipher(PinBlockFormat::Iso3, &pin, &pan, &key).unwrap();
            (pin, pan, key, ours)
        })
        .collect();
    let requests: Vec<Value> = cases
        .iter()
        .flat_map(|(pin, pan, key, ours)| {
            [
                json!({"op": "pin_decipher", "format": 3, "block": hex(ours), "pan": pan,
                       "key": hex(key.expose_bytes())}),
                json!({"op": "pin_encipher", "format": 3, "pin": pin.expose(), "pan": pan,
                       "key": hex(key.expose_bytes())}),
            ]
        })
        .collect();
    let replies = ask(&requests);
    for (i, ((pin, pan, key, _), r)) in cases.iter().zip(replies.chunks(2)).enumerate() {
        let ctx = ctx("format 3", i);
        assert_eq!(
            ok_str(&r[0], &ctx),
            pin.expose(),
            "{ctx}: psec decoding ours"
        );
        let (format, back) = decipher(&ok_hex(&r[1], &ctx), pan, key).unwrap();
        assert_eq!(
            (format, back.expose()),
            (PinBlockFormat::Iso3, pin.expose()),
            "{ctx}"
        );
    }
}

#[test]
fn pin_block_format4_decodes_both_ways_with_psec() {
    let mut rng = rng_for(4);
    let cases: Vec<_> = (0..CASES)
        .map(|_| {
            let pin = random_pin(&mut rng);
            let pan = random_pan(&mut rng);
            let key = key(&mut rng, KeyScheme::Aes);
            let ours = encipher(PinBlockFormat::Iso4, &pin, &pan, &key).unwrap();
            (pin, pan, key, ours)
        })
        .collect();
    let requests: Vec<Value> = cases
        .iter()
        .flat_map(|(pin, pan, key, ours)| {
            [
                json!({"op": "pin4_decipher", "block": hex(ours), "pan": pan,
                       "key": hex(key.expose_bytes())}),
                json!({"op": "pin4_encipher", "pin": pin.expose(), "pan": pan,
                       "key": hex(key.expose_bytes())}),
            ]
        })
        .collect();
    let replies = ask(&requests);
    for (i, ((pin, pan, key, _), r)) in cases.iter().zip(replies.chunks(2)).enumerate() {
        let ctx = ctx("format 4", i);
        assert_eq!(
            ok_str(&r[0], &ctx),
            pin.expose(),
            "{ctx}: psec decoding ours"
        );
        let theirs = ok_hex(&r[1], &ctx);
        assert_eq!(theirs.len(), 16, "{ctx}");
        let (format, back) = decipher(&theirs, pan, key).unwrap();
        assert_eq!(
            (format, back.expose()),
            (PinBlockFormat::Iso4, pin.expose()),
            "{ctx}"
        );
    }
}

#[test]
fn retail_mac_matches_psec() {
    let mut rng = rng_for(5);
    let cases: Vec<_> = (0..CASES)
        .map(|case| {
            let key = SecretKey::new(KeyScheme::Tdes, &bytes(&mut rng, 16)).unwrap();
            // The edge lengths once under each padding method, then random.
            let len = data_len(&mut rng, case / 2);
            let data = bytes(&mut rng, len);
            let paddings = [MacPadding::Method1, MacPadding::Method2];
            let padding = if len <= 24 {
                paddings[case % 2]
            } else {
                pick(&mut rng, &paddings)
            };
            (key, data, padding)
        })
        .collect();
    let requests: Vec<Value> = cases
        .iter()
        .map(|(key, data, padding)| {
            json!({"op": "retail_mac", "key": hex(key.expose_bytes()), "data": hex(data),
                   "padding": padding.number()})
        })
        .collect();
    let replies = ask(&requests);
    for (i, ((key, data, padding), r)) in cases.iter().zip(&replies).enumerate() {
        let ctx = ctx("retail MAC", i);
        let ours = retail_mac(key, data, *padding).unwrap();
        assert_eq!(ok_hex(r, &ctx), ours, "{ctx}: {} data bytes", data.len());
        assert_eq!(
            MacAlgorithm::Retail(*padding).compute(key, data).unwrap(),
            ours,
            "{ctx}"
        );
    }
}

#[test]
fn tdes_kcv_and_ecb_match_psec() {
    let mut rng = rng_for(6);
    let cases: Vec<_> = (0..CASES)
        .map(|_| {
            let key = key(&mut rng, KeyScheme::Tdes);
            let kcv_len = rng.random_range(1..=8);
            let blocks = rng.random_range(1..=8);
            let data = bytes(&mut rng, 8 * blocks);
            (key, kcv_len, data)
        })
        .collect();
    let requests: Vec<Value> = cases
        .iter()
        .flat_map(|(key, kcv_len, data)| {
            [
                json!({"op": "tdes_kcv", "key": hex(key.expose_bytes()), "len": kcv_len}),
                json!({"op": "tdes_ecb", "key": hex(key.expose_bytes()), "data": hex(data)}),
            ]
        })
        .collect();
    let replies = ask(&requests);
    for (i, ((key, kcv_len, data), r)) in cases.iter().zip(replies.chunks(2)).enumerate() {
        let ctx = ctx("TDES KCV/ECB", i);
        assert_eq!(ok_hex(&r[0], &ctx), key.kcv(*kcv_len), "{ctx}: KCV");
        assert_eq!(
            ok_hex(&r[1], &ctx),
            tdes_ecb_encrypt(key, data).unwrap().to_vec(),
            "{ctx}: ECB, {}-byte key",
            key.len()
        );
    }
}

/// A working key wrapped under a TDES master key is its TDES-ECB
/// encryption, as psec computes it.
#[test]
fn tdes_key_wrap_matches_psec_ecb() {
    let mut rng = rng_for(7);
    let cases: Vec<_> = (0..CASES)
        .map(|_| {
            let kek = key(&mut rng, KeyScheme::Tdes);
            let scheme = pick(&mut rng, &[KeyScheme::Tdes, KeyScheme::Aes]);
            let working = key(&mut rng, scheme);
            (kek, working)
        })
        .collect();
    let requests: Vec<Value> = cases
        .iter()
        .map(|(kek, working)| {
            json!({"op": "tdes_ecb", "key": hex(kek.expose_bytes()),
                   "data": hex(working.expose_bytes())})
        })
        .collect();
    let replies = ask(&requests);
    for (i, ((kek, working), r)) in cases.iter().zip(&replies).enumerate() {
        let ctx = ctx("TDES wrap", i);
        let theirs = ok_hex(r, &ctx);
        assert_eq!(kek.wrap(working).unwrap(), theirs, "{ctx}");
        let back = kek
            .unwrap_checked(working.scheme(), &theirs, &working.kcv(3))
            .unwrap();
        assert_eq!(back.expose_bytes(), working.expose_bytes(), "{ctx}");
    }
}

#[test]
fn aes_cmac_kcv_and_ecb_match_peers() {
    let mut rng = rng_for(8);
    let cases: Vec<_> = (0..CASES)
        .map(|case| {
            let key = key(&mut rng, KeyScheme::Aes);
            let len = data_len(&mut rng, case);
            let data = bytes(&mut rng, len);
            let blocks = rng.random_range(1..=4);
            let ecb_data = bytes(&mut rng, 16 * blocks);
            (key, data, ecb_data)
        })
        .collect();
    let requests: Vec<Value> = cases
        .iter()
        .flat_map(|(key, data, ecb_data)| {
            let k = hex(key.expose_bytes());
            [
                json!({"op": "aes_cmac", "key": k, "data": hex(data)}),
                json!({"op": "aes_cmac", "key": k, "data": hex(&[0; 16])}),
                json!({"op": "aes_ecb", "key": k, "data": hex(ecb_data)}),
            ]
        })
        .collect();
    let replies = ask(&requests);
    for (i, ((key, data, ecb_data), r)) in cases.iter().zip(replies.chunks(3)).enumerate() {
        let ctx = ctx("AES-CMAC", i);
        let theirs = ok_hex(&r[0], &ctx);
        assert_eq!(aes_cmac(key, data).unwrap().to_vec(), theirs, "{ctx}");
        assert_eq!(
            MacAlgorithm::Cmac.compute(key, data).unwrap().to_vec(),
            theirs[..8],
            "{ctx}: field 64 value"
        );
        assert_eq!(key.kcv(16), ok_hex(&r[1], &ctx), "{ctx}: AES KCV");
        assert_eq!(
            aes_ecb_encrypt(key, ecb_data).unwrap().to_vec(),
            ok_hex(&r[2], &ctx),
            "{ctx}: AES-ECB"
        );
    }
}

#[test]
fn aes_key_wrap_matches_cryptography() {
    let mut rng = rng_for(9);
    let cases: Vec<_> = (0..CASES)
        .map(|_| {
            let kek = key(&mut rng, KeyScheme::Aes);
            let scheme = pick(&mut rng, &[KeyScheme::Tdes, KeyScheme::Aes]);
            let mut working = key(&mut rng, scheme);
            // Single-DES keys are below RFC 3394's 16-byte minimum.
            while working.len() < 16 {
                working = key(&mut rng, scheme);
            }
            let flip = rng.random_range(0..(working.len() + 8) * 8);
            (kek, working, flip)
        })
        .collect();
    let requests: Vec<Value> = cases
        .iter()
        .flat_map(|(kek, working, flip)| {
            let mut tampered = kek.wrap(working).unwrap();
            tampered[flip / 8] ^= 1 << (flip % 8);
            [
                json!({"op": "aes_wrap", "kek": hex(kek.expose_bytes()),
                       "key": hex(working.expose_bytes())}),
                json!({"op": "aes_unwrap", "kek": hex(kek.expose_bytes()),
                       "wrapped": hex(&tampered)}),
            ]
        })
        .collect();
    let replies = ask(&requests);
    for (i, ((kek, working, flip), r)) in cases.iter().zip(replies.chunks(2)).enumerate() {
        let ctx = ctx("AES key wrap", i);
        let theirs = ok_hex(&r[0], &ctx);
        assert_eq!(kek.wrap(working).unwrap(), theirs, "{ctx}");
        let back = kek.unwrap(working.scheme(), &theirs).unwrap();
        assert_eq!(back.expose_bytes(), working.expose_bytes(), "{ctx}");
        // Both sides refuse a cryptogram with one bit flipped.
        assert!(
            r[1].is_err(),
            "{ctx}: cryptography accepted bit {flip} flipped"
        );
        let mut tampered = theirs.clone();
        tampered[flip / 8] ^= 1 << (flip % 8);
        assert!(
            kek.unwrap(working.scheme(), &tampered).is_err(),
            "{ctx}: Till accepted bit {flip} flipped"
        );
    }
}

/// The UnionPay MAC has no library peer; the Python side transcribes the
/// specification's steps on psec's DES, apart from the Rust code.
#[test]
fn cup_mac_matches_python_transcription() {
    let mut rng = rng_for(10);
    let cases: Vec<_> = (0..CASES)
        .map(|case| {
            let key = key(&mut rng, KeyScheme::Tdes);
            let len = data_len(&mut rng, case);
            (key, bytes(&mut rng, len))
        })
        .collect();
    let requests: Vec<Value> = cases
        .iter()
        .map(|(key, data)| {
            json!({"op": "cup_mac", "key": hex(key.expose_bytes()), "data": hex(data)})
        })
        .collect();
    let replies = ask(&requests);
    for (i, ((key, data), r)) in cases.iter().zip(&replies).enumerate() {
        let ctx = ctx("UnionPay MAC", i);
        let ours = cup_pos_mac(key, data).unwrap();
        assert_eq!(ok_hex(r, &ctx), ours, "{ctx}: {}-byte key", key.len());
        assert_eq!(MacAlgorithm::Cup.compute(key, data).unwrap(), ours, "{ctx}");
    }
}
