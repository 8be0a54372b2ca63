//! The security scheme a dialect prescribes, applied to whole messages:
//! sealing a message (encode, then MAC it), opening one (decode, then verify
//! its MAC), and issuing or accepting the working keys of a sign-in.
//!
//! Terminal and acquirer simulator both use this module, so the two sides
//! cannot drift apart on what a MAC covers or how keys travel.
//!
//! What the MAC covers: the encoded message from the MTI up to, not
//! including, the MAC field's eight bytes — the header (TPDU) is outside.
//! The MAC field is the dialect's `mac` element (field 64), or field 128
//! when the message has a secondary bitmap, as ISO 8583 requires; either
//! way it is the last field of the message.

use crate::crypto::{
    CryptoError, KeyScheme, MacAlgorithm, Pin, PinBlockFormat, SecretKey, pinblock,
};
use crate::iso8583::{CodecError, Dialect, ElementError, Message, TxnKind};

/// The scheme of one dialect: key algorithm, PIN block format, MAC.
#[derive(Debug, Clone)]
pub struct Scheme {
    /// Algorithm of the master and working keys.
    pub keys: KeyScheme,
    /// PIN block format.
    pub pin_format: PinBlockFormat,
    /// MAC algorithm.
    pub mac: MacAlgorithm,
    /// Bytes of key check value per working key.
    pub kcv_len: usize,
}

/// Why a message could not be sealed or opened, or keys not exchanged.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// The dialect's `[security]` section names something unknown.
    #[error("dialect {dialect}: {problem}")]
    Dialect {
        /// Dialect name.
        dialect: String,
        /// What is wrong.
        problem: String,
    },
    /// Encoding or decoding failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// An element did not fit.
    #[error(transparent)]
    Element(#[from] ElementError),
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A message that must carry a MAC has none.
    #[error("the message carries no MAC although this message type requires one")]
    MacMissing,
    /// The MAC does not verify.
    #[error("the message's MAC does not verify")]
    MacInvalid,
    /// A sign-in answer lacks a working key or its check value.
    #[error("the sign-in answer lacks the {0}")]
    KeyMissing(&'static str),
}

impl Scheme {
    /// The scheme a dialect prescribes.
    pub fn of(dialect: &Dialect) -> Result<Scheme, SecurityError> {
        let bad = |problem: String| SecurityError::Dialect {
            dialect: dialect.name.clone(),
            problem,
        };
        if !dialect.profile.runs_flows() {
            return Err(bad(
                "describes fields only; it has no [security] section to run transactions with"
                    .into(),
            ));
        }
        let sec = &dialect.profile.security;
        let keys = match sec.keys.as_str() {
            "tdes" => KeyScheme::Tdes,
            "aes" => KeyScheme::Aes,
            other => return Err(bad(format!("unknown key scheme {other:?}"))),
        };
        let pin_format =
            PinBlockFormat::try_from(sec.pin_block_format).map_err(|e| bad(e.to_string()))?;
        let mac =
            MacAlgorithm::from_name(&sec.mac, sec.mac_padding).map_err(|e| bad(e.to_string()))?;
        Ok(Scheme {
            keys,
            pin_format,
            mac,
            kcv_len: sec.kcv_length,
        })
    }

    /// Length of a working key in this scheme: double-length TDES or AES-128.
    pub fn working_key_len(&self) -> usize {
        16
    }
}

/// The PIN and MAC working keys of a session, in clear (zeroized on drop).
#[derive(Debug, Clone)]
pub struct WorkingKeys {
    /// Encrypts PIN blocks.
    pub pin: SecretKey,
    /// Computes MACs.
    pub mac: SecretKey,
}

/// The field that carries the MAC of this message: the `mac` element's
/// field, or 128 when a secondary bitmap is present.
pub fn mac_field(dialect: &Dialect, msg: &Message) -> Option<u8> {
    let primary = dialect.profile.element("mac")?.field;
    if msg.needs_secondary_bitmap() && primary <= 64 {
        dialect.field(128).map(|_| 128)
    } else {
        Some(primary)
    }
}

/// Whether this kind of message carries a MAC on this host.
pub fn kind_is_maced(dialect: &Dialect, kind: Option<TxnKind>) -> bool {
    match kind {
        Some(k) => dialect.profile.txn(k).is_some_and(|t| t.mac),
        // Reversals are always authenticated.
        None => true,
    }
}

/// Encodes a message, MACing it with `mac_key` when given: the MAC field is
/// set to eight placeholder bytes, the message encoded, the MAC computed over
/// everything from the MTI to the placeholder, and the placeholder replaced.
/// Any MAC field already present is removed first; without a key the
/// message is sent unMACed.
pub fn seal(
    dialect: &Dialect,
    scheme: &Scheme,
    msg: &mut Message,
    mac_key: Option<&SecretKey>,
) -> Result<Vec<u8>, SecurityError> {
    if let Some(p) = dialect.profile.element("mac") {
        msg.remove(p.field);
    }
    msg.remove(128);
    let Some(key) = mac_key else {
        return Ok(dialect.encode(msg)?);
    };
    let field = mac_field(dialect, msg).ok_or_else(|| SecurityError::Dialect {
        dialect: dialect.name.clone(),
        problem: "maps no field for the MAC".into(),
    })?;
    msg.set(field, vec![0u8; 8]);
    let mut wire = dialect.encode(msg)?;
    let header = dialect.header.as_ref().map_or(0, |h| h.length);
    let end = wire.len() - 8;
    let mac = scheme.mac.compute(key, &wire[header..end])?;
    wire[end..].copy_from_slice(&mac);
    msg.set(field, mac.to_vec());
    Ok(wire)
}

/// What [`open`] found about a message's MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacCheck {
    /// The MAC verified.
    Valid,
    /// No MAC field is present.
    Missing,
    /// A MAC is present but wrong.
    Invalid,
    /// No key to check with (e.g. the host has no session for the terminal).
    Unchecked,
}

/// Decodes a message and checks its MAC against `mac_key`. Decoding errors
/// are returned; the MAC verdict is reported, not enforced, so the caller
/// decides (a host answers a bad MAC with its MAC error code; a terminal
/// reverses).
pub fn open(
    dialect: &Dialect,
    scheme: &Scheme,
    wire: &[u8],
    mac_key: Option<&SecretKey>,
) -> Result<(Message, MacCheck), SecurityError> {
    let msg = dialect.decode(wire)?;
    let Some(field) = mac_field(dialect, &msg) else {
        return Ok((msg, MacCheck::Missing));
    };
    let Some(mac) = msg.binary(field).filter(|m| m.len() == 8) else {
        return Ok((msg, MacCheck::Missing));
    };
    // The MAC field must be the last one, so its bytes end the message.
    if msg.fields().last().map(|(n, _)| n) != Some(field) || !wire.ends_with(mac) {
        return Ok((msg, MacCheck::Invalid));
    }
    let Some(key) = mac_key else {
        return Ok((msg, MacCheck::Unchecked));
    };
    let header = dialect.header.as_ref().map_or(0, |h| h.length);
    let ok = scheme.mac.verify(key, &wire[header..wire.len() - 8], mac)?;
    Ok((
        msg,
        if ok {
            MacCheck::Valid
        } else {
            MacCheck::Invalid
        },
    ))
}

/// Host side of a sign-in: generates fresh PIN and MAC working keys, puts
/// them into the answer encrypted under the terminal master key with their
/// check values, and returns them for the host's session.
pub fn issue_working_keys(
    dialect: &Dialect,
    scheme: &Scheme,
    tmk: &SecretKey,
    answer: &mut Message,
) -> Result<WorkingKeys, SecurityError> {
    let pin = SecretKey::generate(scheme.keys, scheme.working_key_len())?;
    let mac = SecretKey::generate(scheme.keys, scheme.working_key_len())?;
    dialect.set_bytes(answer, "pin_key", &tmk.wrap(&pin)?)?;
    dialect.set_bytes(answer, "pin_key_kcv", &pin.kcv(scheme.kcv_len))?;
    dialect.set_bytes(answer, "mac_key", &tmk.wrap(&mac)?)?;
    dialect.set_bytes(answer, "mac_key_kcv", &mac.kcv(scheme.kcv_len))?;
    Ok(WorkingKeys { pin, mac })
}

/// The working keys of a sign-in answer as they travel: cryptograms under
/// the terminal master key and their check values. This is what a terminal
/// keeps at rest; the clear keys exist only while a message is built.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyCryptograms {
    /// PIN key under the master key (hex).
    pub pin_key: String,
    /// PIN key check value (hex).
    pub pin_kcv: String,
    /// MAC key under the master key (hex).
    pub mac_key: String,
    /// MAC key check value (hex).
    pub mac_kcv: String,
}

impl KeyCryptograms {
    /// Takes the key elements out of a sign-in answer.
    pub fn from_answer(
        dialect: &Dialect,
        answer: &Message,
    ) -> Result<KeyCryptograms, SecurityError> {
        let get = |name: &str, what: &'static str| {
            dialect
                .get_bytes(answer, name)
                .map(|b| hex::encode_upper(b.as_ref()))
                .filter(|h| !h.is_empty())
                .ok_or(SecurityError::KeyMissing(what))
        };
        Ok(KeyCryptograms {
            pin_key: get("pin_key", "PIN working key")?,
            pin_kcv: get("pin_key_kcv", "PIN key check value")?,
            mac_key: get("mac_key", "MAC working key")?,
            mac_kcv: get("mac_key_kcv", "MAC key check value")?,
        })
    }

    /// Decrypts the keys under the master key, checking both check values.
    pub fn unwrap(&self, scheme: &Scheme, tmk: &SecretKey) -> Result<WorkingKeys, SecurityError> {
        let hex_of = |h: &str| hex::decode(h).map_err(|_| SecurityError::KeyMissing("key in hex"));
        let pin = tmk.unwrap_checked(
            scheme.keys,
            &hex_of(&self.pin_key)?,
            &hex_of(&self.pin_kcv)?,
        )?;
        let mac = tmk.unwrap_checked(
            scheme.keys,
            &hex_of(&self.mac_key)?,
            &hex_of(&self.mac_kcv)?,
        )?;
        Ok(WorkingKeys { pin, mac })
    }
}

/// Enciphers a PIN for this scheme under the PIN working key.
pub fn pin_block(
    scheme: &Scheme,
    keys: &WorkingKeys,
    pin: &Pin,
    pan: &str,
) -> Result<Vec<u8>, SecurityError> {
    Ok(pinblock::encipher(scheme.pin_format, pin, pan, &keys.pin)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale(dialect: &Dialect) -> Message {
        let mut m = Message::new("0200").unwrap();
        dialect.set_text(&mut m, "pan", "4761739001010010").unwrap();
        dialect
            .set_text(&mut m, "processing_code", "000000")
            .unwrap();
        dialect.set_number(&mut m, "amount", 1234).unwrap();
        dialect.set_number(&mut m, "stan", 7).unwrap();
        dialect.set_text(&mut m, "terminal_id", "TILL0001").unwrap();
        dialect.set_number(&mut m, "batch_number", 1).unwrap();
        m
    }

    #[test]
    fn seal_then_open_verifies_in_both_dialects() {
        for name in ["cup", "iso87ascii"] {
            let d = Dialect::load(name).unwrap();
            let scheme = Scheme::of(&d).unwrap();
            let tmk = SecretKey::generate(scheme.keys, 16).unwrap();
            let mut answer = Message::new("0810").unwrap();
            let issued = issue_working_keys(&d, &scheme, &tmk, &mut answer).unwrap();
            let wire = d.encode(&answer).unwrap();
            let received = KeyCryptograms::from_answer(&d, &d.decode(&wire).unwrap()).unwrap();
            let keys = received.unwrap(&scheme, &tmk).unwrap();
            assert_eq!(keys.mac.expose_bytes(), issued.mac.expose_bytes(), "{name}");
            assert_eq!(keys.pin.expose_bytes(), issued.pin.expose_bytes(), "{name}");

            let mut m = sale(&d);
            let wire = seal(&d, &scheme, &mut m, Some(&keys.mac)).unwrap();
            let (back, check) = open(&d, &scheme, &wire, Some(&issued.mac)).unwrap();
            assert_eq!(check, MacCheck::Valid, "{name}");
            assert_eq!(back.mti(), "0200");

            // Any single flipped bit after the header breaks the MAC or the decode.
            let header = d.header.as_ref().map_or(0, |h| h.length);
            for i in header..wire.len() {
                let mut bad = wire.clone();
                bad[i] ^= 0x01;
                if let Ok((_, check)) = open(&d, &scheme, &bad, Some(&keys.mac)) {
                    assert_ne!(
                        check,
                        MacCheck::Valid,
                        "{name}: flipping byte {i} went unnoticed"
                    );
                }
            }
            // Another key does not verify.
            let other = SecretKey::generate(scheme.keys, 16).unwrap();
            assert_eq!(
                open(&d, &scheme, &wire, Some(&other)).unwrap().1,
                MacCheck::Invalid
            );
            // Without a MAC.
            let mut plain = sale(&d);
            let wire = seal(&d, &scheme, &mut plain, None).unwrap();
            assert_eq!(
                open(&d, &scheme, &wire, Some(&keys.mac)).unwrap().1,
                MacCheck::Missing
            );
        }
    }

    #[test]
    fn secondary_bitmap_moves_the_mac_to_field_128() {
        let d = Dialect::load("iso87ascii").unwrap();
        let scheme = Scheme::of(&d).unwrap();
        let key = SecretKey::generate(KeyScheme::Aes, 16).unwrap();
        let mut m = sale(&d);
        d.set_text(&mut m, "original_mti", "0200").unwrap();
        let wire = seal(&d, &scheme, &mut m, Some(&key)).unwrap();
        assert!(m.has(128) && !m.has(64));
        assert_eq!(
            open(&d, &scheme, &wire, Some(&key)).unwrap().1,
            MacCheck::Valid
        );
    }

    #[test]
    fn tampered_key_check_values_are_refused() {
        let d = Dialect::load("cup").unwrap();
        let scheme = Scheme::of(&d).unwrap();
        let tmk = SecretKey::generate(scheme.keys, 16).unwrap();
        let mut answer = Message::new("0810").unwrap();
        issue_working_keys(&d, &scheme, &tmk, &mut answer).unwrap();
        let mut k = KeyCryptograms::from_answer(&d, &answer).unwrap();
        k.mac_kcv = "00000000".into();
        assert!(matches!(
            k.unwrap(&scheme, &tmk),
            Err(SecurityError::Crypto(CryptoError::KcvMismatch { .. }))
        ));
        let wrong_tmk = SecretKey::generate(scheme.keys, 16).unwrap();
        let k = KeyCryptograms::from_answer(&d, &answer).unwrap();
        assert!(k.unwrap(&scheme, &wrong_tmk).is_err());
        assert!(matches!(
            KeyCryptograms::from_answer(&d, &Message::new("0810").unwrap()),
            Err(SecurityError::KeyMissing("PIN working key"))
        ));
    }
}
