//! The card database: which cards the simulated issuer knows, their PINs,
//! opening balances and status.
//!
//! A card file is TOML (the bundled one is `acquirer/cards.toml`):
//!
//! ```toml
//! # Currency of every balance, and the only one the host accepts.
//! currency = "CNY"
//!
//! [[card]]
//! name = "cup-ok"               # id used in the ledger
//! pan = "6222088800000000010"   # 12-19 digits, Luhn-valid
//! expiry = "4912"               # YYMM
//! pin = "123456"                # 4-12 digits; optional when pin_required = false
//! balance = "5000.00"           # decimal, in the currency above
//! status = "ok"                 # ok | lost | stolen | expired | blocked | issuer-unavailable
//! pin_required = true           # default true
//!
//! [card.emv]                    # optional: the card is also a contactless EMV card
//! profile = "qvsdc"             # qvsdc (Visa CVN 10) | mchip (Mastercard CVN 20)
//! issuer_master_key = "0123456789ABCDEFFEDCBA9876543210"  # IMK-AC, 32 hex digits, test keys only
//! aid = "A000000333010101"      # default: the profile's (A0000000031010 / A0000000041010)
//! label = "UnionPay Debit"      # tag 50, up to 16 characters
//! priority = 1                  # tag 87, 0 (none) to 15
//! pan_sequence = "01"           # 5F34, two digits, default "00"
//! cardholder_name = "ZHANG/SAN" # 5F20, 2 to 26 characters
//! atc = 0                       # the virtual card's counter before its first transaction
//! uid = "04A1B2C3D4E5F6"        # the virtual card's ISO 14443 UID (4, 7 or 10 bytes)
//! ats = "0578808102"            # the virtual card's ATS, with its length byte
//! ```
//!
//! The `[card.emv]` table is shared with Till's virtual cards
//! (`till_hal::reader::virtual_emv`), which are personalised from the same
//! file; the host uses it to verify the cards' ARQCs (see `docs/emv.md`).
//!
//! Wallet accounts pay for QR code payments (a customer's 付款码, see
//! `till_pay::qr`). One account per wallet; every well-formed payment code
//! of that wallet pays from it, each code once:
//!
//! ```toml
//! [[wallet]]
//! name = "wechat"               # id used in the ledger
//! wallet = "wechat-pay"         # wechat-pay | alipay | union-pay
//! balance = "2000.00"
//! ```
//!
//! Only the static description lives here; balances, holds and PIN try
//! counters change as the host runs and live in [`crate::host`].

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use till_pay::card::{Expiry, Pan};
use till_pay::crypto::{KeyScheme, Pin, SecretKey};
use till_pay::emv::issuer::{CardKey, CryptogramVersion};
use till_pay::money::{Amount, Currency};
use till_pay::qr::Wallet;

/// The card file shipped with the simulator, used when no `--cards` is given.
pub const BUNDLED_CARDS: &str = include_str!("../cards.toml");

/// Why a card file could not be used. Messages name the file and the card,
/// never a full card number or a PIN.
#[derive(Debug, thiserror::Error)]
pub enum CardsError {
    /// The file could not be read.
    #[error("cannot read the card file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("the card file {origin} is not valid: {reason}")]
    Syntax {
        /// The file, or "bundled cards.toml".
        origin: String,
        /// What the TOML parser found.
        reason: String,
    },
    /// One card's entry is unusable.
    #[error("the card file {origin}, card {card}: {reason}")]
    Card {
        /// The file, or "bundled cards.toml".
        origin: String,
        /// The card's name, or its position when the name is the problem.
        card: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
}

/// What the issuer says about a card, before PIN and funds are looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CardStatus {
    /// In good standing.
    Ok,
    /// Reported lost.
    Lost,
    /// Reported stolen.
    Stolen,
    /// Expired by the issuer, whatever its printed expiry date says.
    Expired,
    /// Blocked by the issuer (answered "do not honour").
    Blocked,
    /// The issuer cannot be reached for this card.
    IssuerUnavailable,
}

impl CardStatus {
    /// The name used in card files.
    pub fn name(self) -> &'static str {
        match self {
            CardStatus::Ok => "ok",
            CardStatus::Lost => "lost",
            CardStatus::Stolen => "stolen",
            CardStatus::Expired => "expired",
            CardStatus::Blocked => "blocked",
            CardStatus::IssuerUnavailable => "issuer-unavailable",
        }
    }
}

impl fmt::Display for CardStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One card the issuer knows.
#[derive(Clone)]
pub struct Card {
    /// The id the ledger shows instead of the number.
    pub name: String,
    pan: Pan,
    /// Printed expiry date.
    pub expiry: Expiry,
    pin: Option<Pin>,
    /// Balance when the host starts.
    pub opening_balance: Amount,
    /// Issuer status.
    pub status: CardStatus,
    /// Whether a transaction that checks the PIN must carry one.
    pub pin_required: bool,
    /// The card's contactless EMV application, if it has one.
    pub emv: Option<CardEmv>,
}

/// The contactless EMV profiles of the card file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmvProfile {
    /// Visa-like qVSDC: cryptogram in the GPO answer, Visa CVN 10.
    Qvsdc,
    /// Mastercard-like M/Chip: GENERATE AC, Mastercard CVN 20 (`14`).
    Mchip,
}

impl EmvProfile {
    /// The cryptogram version the profile's cards use.
    pub fn cryptogram_version(self) -> CryptogramVersion {
        match self {
            EmvProfile::Qvsdc => CryptogramVersion::VisaCvn10,
            EmvProfile::Mchip => CryptogramVersion::MastercardCvn20,
        }
    }

    /// The AID the profile's cards have unless the file says otherwise.
    pub fn default_aid(self) -> &'static [u8] {
        match self {
            EmvProfile::Qvsdc => &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10],
            EmvProfile::Mchip => &[0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10],
        }
    }
}

/// A card's contactless EMV application as the card file describes it:
/// what the issuer needs to check its cryptograms, and what Till's
/// virtual cards are personalised with.
#[derive(Clone)]
pub struct CardEmv {
    /// The profile.
    pub profile: EmvProfile,
    /// The AID.
    pub aid: Vec<u8>,
    /// The application label (tag 50), if set.
    pub label: Option<String>,
    /// The application priority indicator (tag 87), if set.
    pub priority: Option<u8>,
    /// The PAN sequence number (5F34).
    pub pan_sequence: u8,
    /// The cardholder name (5F20), if the card has one.
    pub cardholder_name: Option<String>,
    /// The virtual card's counter before its first transaction.
    pub atc: u16,
    /// The virtual card's UID, if set.
    pub uid: Option<Vec<u8>>,
    /// The virtual card's ATS, if set.
    pub ats: Option<Vec<u8>>,
    issuer_master_key: SecretKey,
    key: CardKey,
}

impl CardEmv {
    /// The issuer master key for application cryptograms (a test key).
    pub fn issuer_master_key(&self) -> &SecretKey {
        &self.issuer_master_key
    }

    /// The card's application cryptogram key (derived from the issuer
    /// master key, the PAN and the PAN sequence number).
    pub fn key(&self) -> &CardKey {
        &self.key
    }
}

/// Never shows key material.
impl fmt::Debug for CardEmv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardEmv")
            .field("profile", &self.profile)
            .field("aid", &hex::encode_upper(&self.aid))
            .field("pan_sequence", &self.pan_sequence)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Card {
    /// The card number (shown masked by `Display`).
    pub fn pan(&self) -> &Pan {
        &self.pan
    }

    /// Whether `pin` is this card's PIN. A card without a PIN matches none.
    pub fn pin_matches(&self, pin: &Pin) -> bool {
        self.pin
            .as_ref()
            .is_some_and(|own| own.expose() == pin.expose())
    }

    /// Whether the card has a PIN to check at all.
    pub fn has_pin(&self) -> bool {
        self.pin.is_some()
    }
}

/// Never shows the number in full nor the PIN.
impl fmt::Debug for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Card")
            .field("name", &self.name)
            .field("pan", &self.pan)
            .field("status", &self.status)
            .field("pin_required", &self.pin_required)
            .field("emv", &self.emv.as_ref().map(|e| e.profile))
            .finish_non_exhaustive()
    }
}

/// A wallet's customer account: what QR code payments of that wallet pay
/// from.
#[derive(Debug, Clone)]
pub struct WalletAccount {
    /// The id the ledger shows.
    pub name: String,
    /// The wallet whose payment codes pay from it.
    pub wallet: Wallet,
    /// Balance when the host starts.
    pub opening_balance: Amount,
}

/// The cards and wallet accounts of one card file, in file order.
#[derive(Debug, Clone)]
pub struct CardDb {
    currency: Currency,
    cards: Vec<Card>,
    wallets: Vec<WalletAccount>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardFile {
    #[serde(default = "default_currency")]
    currency: String,
    #[serde(default)]
    card: Vec<CardEntry>,
    #[serde(default)]
    wallet: Vec<WalletEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletEntry {
    name: String,
    wallet: Wallet,
    balance: String,
}

fn default_currency() -> String {
    "CNY".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardEntry {
    name: String,
    pan: String,
    expiry: String,
    #[serde(default)]
    pin: Option<String>,
    balance: String,
    status: CardStatus,
    #[serde(default = "yes")]
    pin_required: bool,
    #[serde(default)]
    emv: Option<EmvEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmvEntry {
    profile: EmvProfile,
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

fn yes() -> bool {
    true
}

impl CardDb {
    /// The bundled card file.
    pub fn bundled() -> Result<CardDb, CardsError> {
        CardDb::from_toml("bundled cards.toml", BUNDLED_CARDS)
    }

    /// Reads a card file.
    pub fn load(path: &Path) -> Result<CardDb, CardsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CardsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        CardDb::from_toml(&path.display().to_string(), &text)
    }

    /// Parses and checks card file text; `origin` names it in errors.
    pub fn from_toml(origin: &str, text: &str) -> Result<CardDb, CardsError> {
        let file: CardFile = toml::from_str(text).map_err(|e| CardsError::Syntax {
            origin: origin.to_string(),
            reason: e.message().to_string(),
        })?;
        let currency = Currency::find(&file.currency).ok_or_else(|| CardsError::Syntax {
            origin: origin.to_string(),
            reason: format!(
                "currency {:?} is not one Till knows; write an ISO 4217 code such as \"CNY\" or \"156\"",
                file.currency
            ),
        })?;
        let mut cards: Vec<Card> = Vec::with_capacity(file.card.len());
        for (index, entry) in file.card.into_iter().enumerate() {
            let card = parse_card(entry, currency).map_err(|(card, reason)| CardsError::Card {
                origin: origin.to_string(),
                card: card.unwrap_or_else(|| format!("#{}", index + 1)),
                reason,
            })?;
            let clash = |reason: String| CardsError::Card {
                origin: origin.to_string(),
                card: card.name.clone(),
                reason,
            };
            if let Some(other) = cards.iter().find(|c| c.name == card.name) {
                return Err(clash(format!(
                    "the name is also used by an earlier card ({})",
                    other.pan
                )));
            }
            if let Some(other) = cards.iter().find(|c| c.pan == card.pan) {
                return Err(clash(format!(
                    "the card number is also card {:?}'s",
                    other.name
                )));
            }
            cards.push(card);
        }
        let mut wallets: Vec<WalletAccount> = Vec::with_capacity(file.wallet.len());
        for (index, entry) in file.wallet.into_iter().enumerate() {
            let name = entry.name.trim().to_string();
            let fail = |reason: String| CardsError::Card {
                origin: origin.to_string(),
                card: if name.is_empty() {
                    format!("wallet #{}", index + 1)
                } else {
                    name.clone()
                },
                reason,
            };
            if name.is_empty() || name.chars().any(|c| c.is_control()) {
                return Err(fail(
                    "name must be a non-empty line of text, e.g. \"wechat\"".into(),
                ));
            }
            if cards.iter().any(|c| c.name == name) || wallets.iter().any(|w| w.name == name) {
                return Err(fail(
                    "the name is also used by an earlier card or wallet".into(),
                ));
            }
            if let Some(other) = wallets.iter().find(|w| w.wallet == entry.wallet) {
                return Err(fail(format!(
                    "{} already has an account ({:?}); one account per wallet",
                    entry.wallet, other.name
                )));
            }
            let opening_balance = Amount::parse(&entry.balance, currency)
                .map_err(|e| fail(format!("balance: {e}")))?;
            wallets.push(WalletAccount {
                name,
                wallet: entry.wallet,
                opening_balance,
            });
        }
        Ok(CardDb {
            currency,
            cards,
            wallets,
        })
    }

    /// All wallet accounts, in file order.
    pub fn wallets(&self) -> &[WalletAccount] {
        &self.wallets
    }

    /// The position of the account of this wallet, if the file has one.
    pub fn find_wallet(&self, wallet: Wallet) -> Option<usize> {
        self.wallets.iter().position(|w| w.wallet == wallet)
    }

    /// The host currency: of every balance, and the only one accepted.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// All cards, in file order.
    pub fn cards(&self) -> &[Card] {
        &self.cards
    }

    /// The position of the card with this number, if the issuer knows it.
    pub fn find(&self, pan: &str) -> Option<usize> {
        self.cards.iter().position(|c| c.pan.expose() == pan)
    }

    /// The card with this name.
    pub fn by_name(&self, name: &str) -> Option<&Card> {
        self.cards.iter().find(|c| c.name == name)
    }
}

/// Checks one entry; on failure, the card's name (if it has a usable one)
/// and the reason.
fn parse_card(entry: CardEntry, currency: Currency) -> Result<Card, (Option<String>, String)> {
    let name = entry.name.trim().to_string();
    if name.is_empty() || name.chars().any(|c| c.is_control()) {
        return Err((
            None,
            "name must be a non-empty line of text, e.g. \"cup-ok\"".into(),
        ));
    }
    let fail = |reason: String| (Some(name.clone()), reason);
    let pan = Pan::new(&entry.pan).map_err(|e| {
        fail(format!(
            "pan: {e}; a test card needs a valid Luhn check digit"
        ))
    })?;
    let expiry = Expiry::parse_yymm(&entry.expiry).map_err(|e| fail(format!("expiry: {e}")))?;
    let pin = match entry.pin {
        Some(p) => Some(Pin::new(&p).map_err(|e| fail(format!("pin: {e}")))?),
        None if entry.pin_required => {
            return Err(fail(
                "pin is missing; give one, or set pin_required = false".into(),
            ));
        }
        None => None,
    };
    let opening_balance =
        Amount::parse(&entry.balance, currency).map_err(|e| fail(format!("balance: {e}")))?;
    let emv = match entry.emv {
        Some(e) => Some(parse_emv(e, &pan).map_err(|reason| fail(format!("emv.{reason}")))?),
        None => None,
    };
    Ok(Card {
        name: name.clone(),
        pan,
        expiry,
        pin,
        opening_balance,
        status: entry.status,
        pin_required: entry.pin_required,
        emv,
    })
}

/// Checks a `[card.emv]` table; the error starts with the key at fault.
fn parse_emv(e: EmvEntry, pan: &Pan) -> Result<CardEmv, String> {
    let printable = |s: &str| s.bytes().all(|b| (0x20..0x7F).contains(&b));
    let issuer_master_key = SecretKey::from_hex(KeyScheme::Tdes, e.issuer_master_key.trim())
        .ok()
        .filter(|k| k.len() == 16)
        .ok_or("issuer_master_key must be 32 hex digits (a double-length TDES key)")?;
    let aid = match &e.aid {
        Some(a) => hex::decode(a.trim())
            .ok()
            .filter(|a| (5..=16).contains(&a.len()))
            .ok_or("aid must be 5 to 16 bytes in hex")?,
        None => e.profile.default_aid().to_vec(),
    };
    if let Some(label) = &e.label
        && (label.len() > 16 || !printable(label))
    {
        return Err("label must be up to 16 printable ASCII characters".into());
    }
    if e.priority.is_some_and(|p| p > 15) {
        return Err("priority must be 0 (none) to 15".into());
    }
    let pan_sequence = match &e.pan_sequence {
        Some(p) => p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|_| p.trim().len() == 2)
            .ok_or("pan_sequence must be two digits, e.g. \"01\"")?,
        None => 0,
    };
    if let Some(name) = &e.cardholder_name
        && (!(2..=26).contains(&name.len()) || !printable(name))
    {
        return Err("cardholder_name must be 2 to 26 printable ASCII characters".into());
    }
    let uid = match &e.uid {
        Some(u) => Some(
            hex::decode(u.trim())
                .ok()
                .filter(|u| matches!(u.len(), 4 | 7 | 10))
                .ok_or("uid must be 4, 7 or 10 bytes in hex")?,
        ),
        None => None,
    };
    let ats = match &e.ats {
        Some(a) => Some(
            hex::decode(a.trim())
                .ok()
                .filter(|a| a.first().is_some_and(|tl| usize::from(*tl) == a.len()))
                .ok_or("ats must be hex starting with its own length byte")?,
        ),
        None => None,
    };
    let key = CardKey::derive(
        e.profile.cryptogram_version(),
        &issuer_master_key,
        pan.expose(),
        pan_sequence,
    )
    .map_err(|err| format!("issuer_master_key: {err}"))?;
    Ok(CardEmv {
        profile: e.profile,
        aid,
        label: e.label,
        priority: e.priority,
        pan_sequence,
        cardholder_name: e.cardholder_name,
        atc: e.atc.unwrap_or(0),
        uid,
        ats,
        issuer_master_key,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_cards_cover_every_status_and_brand() {
        let db = CardDb::bundled().expect("the bundled card file is valid");
        assert_eq!(db.currency(), Currency::CNY);
        for status in [
            CardStatus::Ok,
            CardStatus::Lost,
            CardStatus::Stolen,
            CardStatus::Expired,
            CardStatus::Blocked,
            CardStatus::IssuerUnavailable,
        ] {
            assert!(
                db.cards().iter().any(|c| c.status == status),
                "no card with status {status}"
            );
        }
        for prefix in ["62", "4", "5"] {
            assert!(
                db.cards()
                    .iter()
                    .any(|c| c.pan().expose().starts_with(prefix) && c.status == CardStatus::Ok),
                "no usable card starting {prefix}"
            );
        }
        assert!(db.cards().iter().any(|c| !c.pin_required));
        assert!(
            db.cards()
                .iter()
                .any(|c| c.status == CardStatus::Ok && c.opening_balance < Amount(10_000))
        );
        assert!(
            db.cards()
                .iter()
                .any(|c| c.status == CardStatus::Ok && c.expiry.year < 25),
            "a card whose printed expiry has passed"
        );
    }

    #[test]
    fn finds_by_number_and_checks_pins() {
        let db = CardDb::bundled().unwrap();
        let i = db.find("6222088800000000010").expect("cup-ok");
        let card = &db.cards()[i];
        assert_eq!(card.name, "cup-ok");
        assert!(card.pin_matches(&Pin::new("123456").unwrap()));
        assert!(!card.pin_matches(&Pin::new("123457").unwrap()));
        assert_eq!(db.find("6222088800000000011"), None);
        let shown = format!("{card:?}");
        assert!(!shown.contains("6222088800000000010"), "{shown}");
        assert!(!shown.contains("123456"), "{shown}");
    }

    #[test]
    fn errors_name_the_card_and_the_problem() {
        let cases = [
            (
                "[[card]]\nname = \"a\"\npan = \"6222088800000000011\"\nexpiry = \"4912\"\npin = \"1234\"\nbalance = \"1\"\nstatus = \"ok\"\n",
                "check digit",
            ),
            (
                "[[card]]\nname = \"a\"\npan = \"6222088800000000010\"\nexpiry = \"4913\"\npin = \"1234\"\nbalance = \"1\"\nstatus = \"ok\"\n",
                "expiry",
            ),
            (
                "[[card]]\nname = \"a\"\npan = \"6222088800000000010\"\nexpiry = \"4912\"\nbalance = \"1\"\nstatus = \"ok\"\n",
                "pin_required = false",
            ),
            (
                "[[card]]\nname = \"a\"\npan = \"6222088800000000010\"\nexpiry = \"4912\"\npin = \"1234\"\nbalance = \"1.234\"\nstatus = \"ok\"\n",
                "balance",
            ),
            (
                "[[card]]\nname = \"a\"\npan = \"6222088800000000010\"\nexpiry = \"4912\"\npin = \"1234\"\nbalance = \"1\"\nstatus = \"frozen\"\n",
                "frozen",
            ),
            ("currency = \"XYZ\"\n", "XYZ"),
        ];
        for (text, mentions) in cases {
            let e = CardDb::from_toml("test.toml", text)
                .unwrap_err()
                .to_string();
            assert!(e.contains(mentions), "{e}");
            assert!(e.contains("test.toml"), "{e}");
            assert!(!e.contains("62220888000000000"), "full PAN in {e}");
        }
        let twice = "[[card]]\nname = \"a\"\npan = \"6222088800000000010\"\nexpiry = \"4912\"\npin = \"1234\"\nbalance = \"1\"\nstatus = \"ok\"\n\
                     [[card]]\nname = \"b\"\npan = \"6222088800000000010\"\nexpiry = \"4912\"\npin = \"1234\"\nbalance = \"1\"\nstatus = \"ok\"\n";
        let e = CardDb::from_toml("test.toml", twice)
            .unwrap_err()
            .to_string();
        assert!(e.contains("card \"a\"") || e.contains("\"a\""), "{e}");
    }

    #[test]
    fn cards_without_pin() {
        let db = CardDb::from_toml(
            "t",
            "[[card]]\nname = \"n\"\npan = \"4761739001010010\"\nexpiry = \"4912\"\nbalance = \"10\"\nstatus = \"ok\"\npin_required = false\n",
        )
        .unwrap();
        let card = &db.cards()[0];
        assert!(!card.has_pin());
        assert!(!card.pin_matches(&Pin::new("0000").unwrap()));
        assert_eq!(card.opening_balance, Amount(1000));
    }

    #[test]
    fn emv_tables_are_read_and_kept() {
        let db = CardDb::bundled().unwrap();
        let visa = db
            .by_name("visa-ok")
            .unwrap()
            .emv
            .as_ref()
            .expect("visa-ok is a chip card");
        assert_eq!(visa.profile, EmvProfile::Qvsdc);
        assert_eq!(visa.aid, EmvProfile::Qvsdc.default_aid());
        assert_eq!(visa.pan_sequence, 1);
        assert_eq!(visa.key().version(), CryptogramVersion::VisaCvn10);
        let mc = db.by_name("mc-ok").unwrap().emv.as_ref().unwrap();
        assert_eq!(mc.key().version(), CryptogramVersion::MastercardCvn20);
        assert_eq!((mc.atc, mc.pan_sequence), (40, 2));
        let cup = db.by_name("cup-ok").unwrap().emv.as_ref().unwrap();
        assert_eq!(hex::encode_upper(&cup.aid), "A000000333010101");
        assert_eq!(cup.label.as_deref(), Some("UnionPay Debit"));
        assert!(db.by_name("cup-stolen").unwrap().emv.is_none());
        let shown = format!("{cup:?}");
        assert!(!shown.contains("8F4C2A6E"), "no key bytes: {shown}");
    }

    #[test]
    fn emv_table_errors_name_the_card_and_the_key() {
        let card = |emv: &str| {
            format!(
                "[[card]]\nname = \"chip\"\npan = \"4761739001010010\"\nexpiry = \"4912\"\npin = \"1234\"\n\
                 balance = \"1\"\nstatus = \"ok\"\n[card.emv]\n{emv}\n"
            )
        };
        let key = "issuer_master_key = \"0123456789ABCDEFFEDCBA9876543210\"";
        let cases = [
            (
                card("profile = \"qvsdc\"\nissuer_master_key = \"0123\""),
                "emv.issuer_master_key",
            ),
            (
                card(&format!("profile = \"qvsdc\"\n{key}\naid = \"A0\"")),
                "emv.aid",
            ),
            (
                card(&format!(
                    "profile = \"qvsdc\"\n{key}\npan_sequence = \"100\""
                )),
                "emv.pan_sequence",
            ),
            (
                card(&format!("profile = \"qvsdc\"\n{key}\npriority = 20")),
                "emv.priority",
            ),
            (
                card(&format!(
                    "profile = \"qvsdc\"\n{key}\nlabel = \"A LABEL LONGER THAN SIXTEEN\""
                )),
                "emv.label",
            ),
            (
                card(&format!("profile = \"qvsdc\"\n{key}\nuid = \"01\"")),
                "emv.uid",
            ),
            (
                card(&format!("profile = \"qvsdc\"\n{key}\nats = \"0978\"")),
                "emv.ats",
            ),
            (
                card(&format!(
                    "profile = \"qvsdc\"\n{key}\ncardholder_name = \"X\""
                )),
                "emv.cardholder_name",
            ),
            (card(&format!("profile = \"sda\"\n{key}")), "sda"),
            (
                card(&format!("profile = \"mchip\"\n{key}\npsn = \"01\"")),
                "psn",
            ),
        ];
        for (text, mentions) in cases {
            let e = CardDb::from_toml("test.toml", &text)
                .unwrap_err()
                .to_string();
            assert!(e.contains(mentions), "{e}");
            assert!(!e.contains("4761739001010010"), "{e}");
            assert!(!e.contains("0123456789ABCDEF"), "{e}");
        }
    }
}
