//! Cross-checks Till's ISO 8583 codec against pyiso8583, an independent
//! implementation, driven by the same dialect files: messages Till encodes
//! must decode field for field in pyiso8583 and re-encode to the same bytes,
//! and messages pyiso8583 generates and encodes must decode in Till to the
//! values it meant.

mod support;

use serde_json::{Value as Json, json};
use support::{Peer, Rng, all_dialects, random_message};
use till_pay::iso8583::Masking;

const CASES: usize = 300;

#[test]
fn till_encodings_decode_identically_in_pyiso8583() {
    let mut peer = Peer::start("iso8583_peer.py", &["iso8583", "tomllib"]);
    for (name, path, dialect) in all_dialects() {
        let r = peer.call(json!({"op": "load", "name": name, "path": path}));
        assert_eq!(r["ok"], true, "{name}: {r}");
        let mut rng = Rng::new(0x5EED_0000 + name.len() as u64);
        for case in 0..CASES {
            let msg = random_message(&dialect, &mut rng);
            let wire = dialect
                .encode(&msg)
                .unwrap_or_else(|e| panic!("{name} case {case}: {e}"));
            let ours = dialect.describe(&msg, Masking::Unmasked);
            let theirs =
                peer.call(json!({"op": "decode", "name": name, "hex": hex::encode_upper(&wire)}));
            assert_eq!(
                theirs["ok"],
                true,
                "{name} case {case}: pyiso8583 refused {}: {theirs}",
                hex::encode_upper(&wire)
            );
            assert_eq!(theirs["mti"], ours["mti"], "{name} case {case}");
            assert_eq!(
                theirs["fields"], ours["fields"],
                "{name} case {case}: field values differ"
            );
            let header = ours
                .get("header")
                .cloned()
                .unwrap_or(Json::String(String::new()));
            assert_eq!(theirs["header"], header, "{name} case {case}");
            let again = peer.call(json!({"op": "encode", "name": name, "header": header, "mti": ours["mti"], "fields": ours["fields"]}));
            assert_eq!(again["ok"], true, "{name} case {case}: {again}");
            assert_eq!(
                again["hex"],
                hex::encode_upper(&wire),
                "{name} case {case}: pyiso8583 encodes other bytes"
            );
        }
    }
}

#[test]
fn pyiso8583_encodings_decode_identically_in_till() {
    let mut peer = Peer::start("iso8583_peer.py", &["iso8583", "tomllib"]);
    for (name, path, dialect) in all_dialects() {
        let r = peer.call(json!({"op": "load", "name": name, "path": path}));
        assert_eq!(r["ok"], true, "{name}: {r}");
        let batch = peer.call(json!({"op": "random", "name": name, "seed": 7, "count": CASES}));
        assert_eq!(batch["ok"], true, "{name}: {batch}");
        for (case, m) in batch["messages"].as_array().unwrap().iter().enumerate() {
            let wire = hex::decode(m["hex"].as_str().unwrap()).unwrap();
            let msg = dialect.decode(&wire).unwrap_or_else(|e| {
                panic!(
                    "{name} case {case}: Till refused pyiso8583's {}: {e}",
                    m["hex"]
                )
            });
            let ours = dialect.describe(&msg, Masking::Unmasked);
            assert_eq!(ours["mti"], m["mti"], "{name} case {case}");
            assert_eq!(ours["fields"], m["fields"], "{name} case {case}");
            assert_eq!(
                hex::encode_upper(dialect.encode(&msg).unwrap()),
                hex::encode_upper(&wire),
                "{name} case {case}: re-encoding differs"
            );
        }
    }
}
