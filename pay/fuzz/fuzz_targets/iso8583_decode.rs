//! Fuzzes the ISO 8583 decoder of every shipped dialect: decoding any bytes
//! must return a message or an error, never panic; a message that decodes
//! must re-encode, and decode again to itself.
//!
//! Run: `scripts/fuzz` (or `cargo fuzz run iso8583_decode` in `pay/`).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use till_pay::iso8583::Dialect;

fn dialects() -> &'static [Dialect] {
    static D: OnceLock<Vec<Dialect>> = OnceLock::new();
    D.get_or_init(|| Dialect::builtin_names().map(|n| Dialect::load(n).expect("built-in dialect")).collect())
}

fuzz_target!(|data: &[u8]| {
    for d in dialects() {
        if let Ok(m) = d.decode(data) {
            let wire = d.encode(&m).expect("a decoded message re-encodes");
            assert_eq!(d.decode(&wire).expect("re-encoded message decodes"), m);
        }
    }
});
