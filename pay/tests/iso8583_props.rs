//! Property tests of the ISO 8583 codec over every shipped dialect and the
//! mixed-encoding test dialect: encode→decode round trips, and decoding of
//! arbitrary or corrupted bytes never panics and, when it succeeds, yields
//! a message that re-encodes and decodes to itself.

mod support;

use proptest::prelude::*;
use support::{Rng, all_dialects, random_message};
use till_pay::iso8583::Dialect;

fn dialects() -> Vec<Dialect> {
    all_dialects().into_iter().map(|(_, _, d)| d).collect()
}

fn check_canonical(d: &Dialect, input: &[u8]) {
    if let Ok(m) = d.decode(input) {
        let again = d
            .encode(&m)
            .unwrap_or_else(|e| panic!("{}: decoded message does not re-encode: {e}", d.name));
        assert_eq!(d.decode(&again).unwrap(), m, "{}: not idempotent", d.name);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_is_identity(seed in any::<u64>()) {
        for d in dialects() {
            let m = random_message(&d, &mut Rng::new(seed));
            let wire = d.encode(&m).map_err(|e| TestCaseError::fail(format!("{}: {e}", d.name)))?;
            let back = d.decode(&wire).map_err(|e| TestCaseError::fail(format!("{}: {e}", d.name)))?;
            prop_assert_eq!(back, m);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..700)) {
        for d in dialects() {
            check_canonical(&d, &input);
        }
    }

    #[test]
    fn corrupted_messages_never_panic(seed in any::<u64>(), edits in proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 1..6)) {
        for d in dialects() {
            let mut wire = d.encode(&random_message(&d, &mut Rng::new(seed))).unwrap();
            for (at, byte, op) in &edits {
                let i = usize::from(*at) % (wire.len() + 1);
                match op {
                    0 if i < wire.len() => wire[i] = *byte,
                    1 => wire.insert(i, *byte),
                    _ if i < wire.len() => { wire.remove(i); }
                    _ => wire.push(*byte),
                }
            }
            check_canonical(&d, &wire);
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn every_truncation_is_an_error_not_a_panic(seed in any::<u64>()) {
        for d in dialects() {
            let wire = d.encode(&random_message(&d, &mut Rng::new(seed))).unwrap();
            for cut in 0..wire.len() {
                prop_assert!(d.decode(&wire[..cut]).is_err() || wire[cut..].is_empty());
            }
        }
    }
}
