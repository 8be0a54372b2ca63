//! Which kind of request a message is, read from the dialect's transaction
//! table rather than from hard-coded message types.

use std::fmt;

use till_pay::iso8583::spec::MtiEncoding;
use till_pay::iso8583::{Dialect, Message, TxnKind};

/// What a request is, as far as the host can tell before processing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestClass {
    /// A transaction of this kind.
    Txn(TxnKind),
    /// A reversal (first attempt or repeat).
    Reversal,
    /// Nothing the dialect describes, or a message that cannot be decoded.
    Unknown,
}

impl RequestClass {
    /// `sale`, …, `reversal` or `unknown`, as the ledger shows it.
    pub fn name(self) -> &'static str {
        match self {
            RequestClass::Txn(k) => k.name(),
            RequestClass::Reversal => "reversal",
            RequestClass::Unknown => "unknown",
        }
    }

    /// The transaction kind, if it is one.
    pub fn kind(self) -> Option<TxnKind> {
        match self {
            RequestClass::Txn(k) => Some(k),
            _ => None,
        }
    }
}

impl fmt::Display for RequestClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Classifies a decoded request.
///
/// A reversal is recognised by the dialect's `[reversal]` message types. A
/// transaction kind matches when the message type equals the kind's (a
/// repeat, last digit 1, counts as its first attempt), the processing code
/// equals the kind's where it names one, and every `set` constant has the
/// kind's value. Of several matching kinds the one with the most of these
/// conditions wins; a tie is ambiguous and classifies as unknown.
pub fn classify(dialect: &Dialect, msg: &Message) -> RequestClass {
    let profile = &dialect.profile;
    let mti = msg.mti();
    if mti == profile.reversal.mti || mti == profile.reversal.repeat_mti {
        return RequestClass::Reversal;
    }
    let first_attempt = first_attempt_mti(mti);
    let mut best: Option<(usize, TxnKind)> = None;
    let mut tie = false;
    for (kind, txn) in profile.transactions() {
        if txn.mti != first_attempt {
            continue;
        }
        let mut score = 1;
        if let Some(pc) = &txn.processing_code {
            if dialect.get_text(msg, "processing_code") != Some(pc.as_str()) {
                continue;
            }
            score += 1;
        }
        if !txn
            .set
            .iter()
            .all(|(element, value)| dialect.get_text(msg, element) == Some(value.as_str()))
        {
            continue;
        }
        score += txn.set.len();
        match best {
            Some((s, _)) if s > score => {}
            Some((s, _)) if s == score => tie = true,
            _ => {
                best = Some((score, kind));
                tie = false;
            }
        }
    }
    match best {
        Some((_, kind)) if !tie => RequestClass::Txn(kind),
        _ => RequestClass::Unknown,
    }
}

/// Classifies a message on the wire; undecodable messages are unknown.
pub fn classify_wire(dialect: &Dialect, wire: &[u8]) -> RequestClass {
    match dialect.decode(wire) {
        Ok(msg) => classify(dialect, &msg),
        Err(_) => RequestClass::Unknown,
    }
}

/// The message type of a first attempt: a repeat (`0221`, `0401`) with its
/// last digit set to 0.
pub fn first_attempt_mti(mti: &str) -> String {
    match mti.strip_suffix('1') {
        Some(head) if mti.len() == 4 => format!("{head}0"),
        _ => mti.to_string(),
    }
}

/// The message type of the answer: third digit + 1, fourth 0
/// (0200 → 0210, 0401 → 0410, 0220 → 0230).
pub fn answer_mti(mti: &str) -> String {
    let b = mti.as_bytes();
    if b.len() != 4 || !b.iter().all(u8::is_ascii_digit) {
        return mti.to_string();
    }
    let third = (b[2] - b'0' + 1) % 10;
    format!("{}{}{}0", char::from(b[0]), char::from(b[1]), third)
}

/// The message type of a message that did not decode, if its header and
/// message type are intact, so the host can answer it with a format error.
pub fn peek_mti(dialect: &Dialect, wire: &[u8]) -> Option<String> {
    let start = dialect.header.as_ref().map_or(0, |h| h.length);
    let digits: Vec<u8> = match dialect.mti_encoding {
        MtiEncoding::Ascii => wire.get(start..start + 4)?.to_vec(),
        MtiEncoding::Ebcdic => wire
            .get(start..start + 4)?
            .iter()
            .map(|e| e.wrapping_sub(0xF0).wrapping_add(b'0'))
            .collect(),
        MtiEncoding::Bcd => wire
            .get(start..start + 2)?
            .iter()
            .flat_map(|b| [b'0'.wrapping_add(b >> 4), b'0'.wrapping_add(b & 0xF)])
            .collect(),
    };
    digits
        .iter()
        .all(u8::is_ascii_digit)
        .then(|| String::from_utf8_lossy(&digits).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(dialect: &Dialect, kind: TxnKind) -> Message {
        let txn = dialect.profile.txn(kind).unwrap();
        let mut m = Message::new(&txn.mti).unwrap();
        if let Some(pc) = &txn.processing_code {
            dialect.set_text(&mut m, "processing_code", pc).unwrap();
        }
        for (element, value) in &txn.set {
            dialect.set_text(&mut m, element, value).unwrap();
        }
        m
    }

    #[test]
    fn every_kind_classifies_as_itself_in_both_dialects() {
        for name in ["cup", "iso87ascii"] {
            let d = Dialect::load(name).unwrap();
            for kind in TxnKind::ALL {
                let m = request(&d, kind);
                assert_eq!(classify(&d, &m), RequestClass::Txn(kind), "{name} {kind}");
                let wire = d.encode(&m).unwrap();
                assert_eq!(
                    classify_wire(&d, &wire),
                    RequestClass::Txn(kind),
                    "{name} {kind}"
                );
            }
            let mut rev = Message::new(&d.profile.reversal.mti).unwrap();
            d.set_text(&mut rev, "processing_code", "000000").unwrap();
            assert_eq!(classify(&d, &rev), RequestClass::Reversal);
            rev.set_mti(&d.profile.reversal.repeat_mti).unwrap();
            assert_eq!(classify(&d, &rev), RequestClass::Reversal);
        }
    }

    #[test]
    fn repeats_and_unknowns() {
        let d = Dialect::load("cup").unwrap();
        let mut advice = request(&d, TxnKind::Advice);
        advice.set_mti("0221").unwrap();
        assert_eq!(classify(&d, &advice), RequestClass::Txn(TxnKind::Advice));
        let mut odd = request(&d, TxnKind::Sale);
        d.set_text(&mut odd, "msg_type_code", "99").unwrap();
        assert_eq!(classify(&d, &odd), RequestClass::Unknown);
        assert_eq!(
            classify(&d, &Message::new("0600").unwrap()),
            RequestClass::Unknown
        );
        assert_eq!(classify_wire(&d, b"\x00garbage"), RequestClass::Unknown);
    }

    #[test]
    fn answer_types() {
        for (req, ans) in [
            ("0200", "0210"),
            ("0401", "0410"),
            ("0220", "0230"),
            ("0221", "0230"),
            ("0800", "0810"),
            ("0320", "0330"),
            ("0500", "0510"),
        ] {
            assert_eq!(answer_mti(req), ans);
        }
        assert_eq!(first_attempt_mti("0221"), "0220");
        assert_eq!(first_attempt_mti("0200"), "0200");
    }

    #[test]
    fn mti_of_broken_messages() {
        let cup = Dialect::load("cup").unwrap();
        let mut m = request(&cup, TxnKind::Sale);
        m.set(4, "000000000100");
        let mut wire = cup.encode(&m).unwrap();
        assert_eq!(peek_mti(&cup, &wire).as_deref(), Some("0200"));
        wire.truncate(wire.len() - 3);
        assert!(cup.decode(&wire).is_err());
        assert_eq!(peek_mti(&cup, &wire).as_deref(), Some("0200"));
        assert_eq!(peek_mti(&cup, &wire[..12]), None);
        let iso = Dialect::load("iso87ascii").unwrap();
        assert_eq!(peek_mti(&iso, b"0200zz").as_deref(), Some("0200"));
        assert_eq!(peek_mti(&iso, b"02x0zz"), None);
    }
}
