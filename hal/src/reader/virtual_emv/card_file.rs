//! Virtual cards from the acquirer simulator's card file: every `[[card]]`
//! with a `[card.emv]` table becomes a card in the field.
//!
//! ```toml
//! [[card]]
//! name = "visa-ok"
//! pan = "4761739001010010"
//! expiry = "4912"
//! # … the acquirer's own keys (pin, balance, status, …)
//!
//! [card.emv]
//! profile = "qvsdc"                                    # qvsdc | mchip
//! issuer_master_key = "0123456789ABCDEFFEDCBA9876543210" # IMK-AC, 32 hex digits (test keys only)
//! aid = "A0000000031010"        # default: the profile's
//! label = "VISA CREDIT"         # tag 50; default: the profile's
//! priority = 1                  # tag 87, 0 (none) to 15; default 1
//! pan_sequence = "01"           # 5F34, two digits; default "00"
//! cardholder_name = "TEST/VISA" # 5F20; default: none
//! atc = 0                       # counter before the first transaction; default 0
//! uid = "04A1B2C3D4E5F6"        # ISO 14443 UID, 4, 7 or 10 bytes; default: from the name
//! ats = "0578808102"            # ATS with its length byte; default 05 78 80 81 02
//! ```
//!
//! Only the keys this module reads are looked at in `[[card]]`; the
//! `[card.emv]` table is checked strictly, so a misspelt key is an error
//! rather than a silently default card.

use serde::Deserialize;

use super::super::card::PiccIdentity;
use super::{EmvPersonalisation, Profile, VirtualCardError, VirtualEmvCard, picc_identity};

/// The acquirer simulator's bundled card file, compiled in, so a device or
/// a test has the same cards the bundled host knows.
pub const BUNDLED_CARD_FILE: &str = include_str!("../../../../acquirer/cards.toml");

/// A card that can be put in a reader's field.
#[derive(Debug, Clone)]
pub struct VirtualCard {
    /// The card's name in the card file.
    pub name: String,
    /// Its ISO 14443 type A identity.
    pub identity: PiccIdentity,
    /// Its EMV application.
    pub application: VirtualEmvCard,
}

impl VirtualCard {
    /// The card as the reader model holds it in its field.
    pub fn into_model(self) -> crate::reader::model::VirtualCard {
        crate::reader::model::VirtualCard::new(self.identity, self.application)
    }
}

#[derive(Deserialize)]
struct CardFile {
    #[serde(default)]
    card: Vec<CardEntry>,
}

#[derive(Deserialize)]
struct CardEntry {
    name: String,
    pan: String,
    expiry: String,
    #[serde(default)]
    emv: Option<EmvEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmvEntry {
    profile: Profile,
    issuer_master_key: String,
    #[serde(default)]
    aid: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    priority: Option<u8>,
    #[serde(default)]
    pan_sequence: Option<String>,
    #[serde(default)]
    cardholder_name: Option<String>,
    #[serde(default)]
    atc: Option<u16>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    ats: Option<String>,
}

/// The virtual cards of a card file's text: one per card with an EMV
/// table, in file order.
pub fn load_cards(text: &str) -> Result<Vec<VirtualCard>, VirtualCardError> {
    let file: CardFile =
        toml::from_str(text).map_err(|e| VirtualCardError::Syntax(e.message().to_string()))?;
    let mut out = Vec::new();
    for entry in file.card {
        let Some(emv) = entry.emv else { continue };
        let name = entry.name.trim().to_string();
        let fail = |reason: String| VirtualCardError::Card {
            card: name.clone(),
            reason,
        };
        let issuer_master_key: [u8; 16] = hex::decode(emv.issuer_master_key.trim())
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| {
                fail(
                    "emv.issuer_master_key must be 32 hex digits (a double-length TDES key)".into(),
                )
            })?;
        let mut perso = EmvPersonalisation::new(
            emv.profile,
            entry.pan.trim(),
            entry.expiry.trim(),
            issuer_master_key,
        );
        if let Some(aid) = emv.aid {
            perso.aid = hex::decode(aid.trim()).map_err(|_| fail("emv.aid must be hex".into()))?;
        }
        if let Some(label) = emv.label {
            perso.label = label;
        }
        if let Some(priority) = emv.priority {
            perso.priority = priority;
        }
        if let Some(psn) = emv.pan_sequence {
            perso.pan_sequence = psn
                .trim()
                .parse()
                .ok()
                .filter(|_| psn.trim().len() == 2)
                .ok_or_else(|| fail("emv.pan_sequence must be two digits, e.g. \"01\"".into()))?;
        }
        perso.cardholder_name = emv.cardholder_name;
        perso.atc = emv.atc.unwrap_or(0);
        let uid = match emv.uid {
            Some(u) => Some(
                hex::decode(u.trim())
                    .ok()
                    .filter(|u| matches!(u.len(), 4 | 7 | 10))
                    .ok_or_else(|| fail("emv.uid must be 4, 7 or 10 bytes in hex".into()))?,
            ),
            None => None,
        };
        let ats = match emv.ats {
            Some(a) => Some(
                hex::decode(a.trim())
                    .ok()
                    .filter(|a| a.first().is_some_and(|tl| usize::from(*tl) == a.len()))
                    .ok_or_else(|| {
                        fail("emv.ats must be hex starting with its own length byte".into())
                    })?,
            ),
            None => None,
        };
        let application = VirtualEmvCard::new(perso).map_err(|e| match e {
            VirtualCardError::Personalisation(reason) => fail(reason),
            other => other,
        })?;
        out.push(VirtualCard {
            identity: picc_identity(&name, uid.as_deref(), ats.as_deref()),
            name,
            application,
        });
    }
    Ok(out)
}

/// The virtual cards of the bundled card file.
pub fn bundled_cards() -> Result<Vec<VirtualCard>, VirtualCardError> {
    load_cards(BUNDLED_CARD_FILE)
}
