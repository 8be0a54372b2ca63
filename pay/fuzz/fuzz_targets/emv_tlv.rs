//! Fuzzes what Till parses from a card or from field 55: the BER-TLV
//! parser must return objects or an error, never panic; whatever parses
//! re-encodes (with minimal lengths) to bytes that parse to the same
//! objects. DOL parsing and filling, and the issuer's field 55 reader,
//! run on the same bytes.
//!
//! Run: `scripts/fuzz` (or `cargo fuzz run emv_tlv` in `pay/`). Seeds in
//! `seeds/emv_tlv/` are the virtual cards' real answers.

#![no_main]

use libfuzzer_sys::fuzz_target;
use till_pay::emv::issuer::IccRequest;
use till_pay::emv::{dol, tlv};

fuzz_target!(|data: &[u8]| {
    if let Ok(objects) = tlv::parse(data) {
        let again = tlv::encode_all(&objects);
        assert!(
            again.len() <= data.len(),
            "minimal lengths never grow the encoding"
        );
        let reparsed = tlv::parse(&again).expect("re-encoded TLV parses");
        assert_eq!(reparsed, objects);
        assert_eq!(tlv::encode_all(&reparsed), again);
    }
    if let Ok(object) = tlv::parse_one(data) {
        assert_eq!(
            tlv::parse_one(&object.encode()).expect("re-encoded object parses"),
            object
        );
    }
    if let Ok(entries) = dol::parse(data) {
        let filled = dol::fill(&entries, |_| Some(data));
        assert_eq!(filled.len(), dol::data_len(&entries));
    }
    let _ = IccRequest::parse(data);
});
