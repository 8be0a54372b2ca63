//! Virtual EMV contactless cards: [`CardApplication`]s that answer the
//! APDUs a contactless kernel sends the way a Visa-like qVSDC card or a
//! Mastercard-like M/Chip card does, with real application cryptograms
//! under test keys, personalised from the acquirer simulator's card file
//! (`acquirer/cards.toml`, its optional `[card.emv]` tables).
//!
//! The two profiles (`docs/emv.md` has every tag and byte):
//!
//! - [`Profile::Qvsdc`]: PPSE, SELECT with a PDOL (TTQ, amounts, country,
//!   TVR, currency, date, type, unpredictable number), GET PROCESSING
//!   OPTIONS answers in format 2 with the ARQC (Visa CVN 10, ATC counted
//!   here), track 2 and PAN sequence number; two records (PAN, expiry,
//!   cardholder name, …). UnionPay-like cards use it with their AIDs.
//! - [`Profile::Mchip`]: PPSE, SELECT without PDOL, GPO in format 1 (AIP
//!   and AFL), two records (track 2, name; PAN, expiry, CDOL1, …), then
//!   GENERATE AC with CDOL1 answers in format 1 with the ARQC
//!   (Mastercard CVN 20, EMV common session key, ATC counted here).
//!
//! Anything else gets the status word a card would give: `6A82` for an
//! unknown application, `6985` for a command out of sequence, `6700` for
//! a wrong length, `6A83` for a missing record, `6D00`/`6E00` for unknown
//! instructions and classes.
//!
//! ```
//! use till_hal::reader::card::CardApplication;
//! use till_hal::reader::virtual_emv;
//!
//! let mut cards = virtual_emv::bundled_cards()?;
//! let visa = cards.iter_mut().find(|c| c.name == "visa-ok").expect("bundled");
//! let answer = visa.application.process(&[
//!     0x00, 0xA4, 0x04, 0x00, 0x0E, b'2', b'P', b'A', b'Y', b'.', b'S', b'Y', b'S', b'.',
//!     b'D', b'D', b'F', b'0', b'1', 0x00,
//! ]);
//! assert_eq!(answer[answer.len() - 2..], [0x90, 0x00]);
//! # Ok::<(), virtual_emv::VirtualCardError>(())
//! ```

#![warn(missing_docs)]

mod ber;
mod card_file;
mod crypto;

use std::fmt;

use self::ber::{constructed, primitive};
use self::crypto::Padding;
use super::card::{CardApplication, PiccIdentity};

pub use self::card_file::{BUNDLED_CARD_FILE, VirtualCard, bundled_cards, load_cards};

/// Why a card file or a personalisation cannot make virtual cards.
/// Messages name the card, never its full number or its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VirtualCardError {
    /// The card file is not TOML of the expected shape.
    #[error("the card file is not valid: {0}")]
    Syntax(String),
    /// One card's data is unusable.
    #[error("card {card}: {reason}")]
    Card {
        /// The card's name.
        card: String,
        /// What is wrong.
        reason: String,
    },
    /// A personalisation value is unusable.
    #[error("cannot personalise the card: {0}")]
    Personalisation(String),
}

/// How a virtual card behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Visa-like qVSDC: the cryptogram (Visa CVN 10) comes in the GPO answer.
    Qvsdc,
    /// Mastercard-like M/Chip: GENERATE AC after the records (CVN 20, `14`).
    Mchip,
}

impl Profile {
    /// The AID a card of this profile has unless the card file says otherwise.
    pub fn default_aid(self) -> &'static [u8] {
        match self {
            Profile::Qvsdc => &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10],
            Profile::Mchip => &[0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10],
        }
    }

    /// The application label unless the card file says otherwise.
    pub fn default_label(self) -> &'static str {
        match self {
            Profile::Qvsdc => "VISA CREDIT",
            Profile::Mchip => "MASTERCARD",
        }
    }

    /// The application interchange profile: no offline data
    /// authentication, EMV mode (byte 2 bit 8); M/Chip adds cardholder
    /// verification and terminal risk management.
    fn aip(self) -> [u8; 2] {
        match self {
            Profile::Qvsdc => [0x00, 0x80],
            Profile::Mchip => [0x18, 0x80],
        }
    }
}

/// Everything a virtual card is personalised with.
#[derive(Clone)]
pub struct EmvPersonalisation {
    /// The profile.
    pub profile: Profile,
    /// The PAN, 12 to 19 digits.
    pub pan: String,
    /// Expiry as `YYMM`; the card's 5F24 is the month's last day.
    pub expiry: String,
    /// PAN sequence number (5F34), 0 to 99.
    pub pan_sequence: u8,
    /// The issuer master key for application cryptograms (double-length
    /// TDES); the card derives its ICC master key from it (option A).
    pub issuer_master_key: [u8; 16],
    /// The AID (5 to 16 bytes).
    pub aid: Vec<u8>,
    /// The application label (tag 50), up to 16 characters.
    pub label: String,
    /// The application priority indicator (tag 87), 0 (none) to 15.
    pub priority: u8,
    /// The cardholder name (5F20), 2 to 26 characters, if the card has one.
    pub cardholder_name: Option<String>,
    /// The application transaction counter before the first transaction.
    pub atc: u16,
}

impl EmvPersonalisation {
    /// A card of `profile` with the profile's AID and label, priority 1,
    /// PAN sequence number 00, no name and a fresh counter.
    pub fn new(profile: Profile, pan: &str, expiry: &str, issuer_master_key: [u8; 16]) -> Self {
        EmvPersonalisation {
            profile,
            pan: pan.to_string(),
            expiry: expiry.to_string(),
            pan_sequence: 0,
            issuer_master_key,
            aid: profile.default_aid().to_vec(),
            label: profile.default_label().to_string(),
            priority: 1,
            cardholder_name: None,
            atc: 0,
        }
    }

    fn check(&self) -> Result<(), String> {
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !(12..=19).contains(&self.pan.len()) || !digits(&self.pan) {
            return Err("the card number must be 12 to 19 digits".into());
        }
        let month = self.expiry.get(2..).and_then(|m| m.parse::<u8>().ok());
        if self.expiry.len() != 4 || !digits(&self.expiry) || !matches!(month, Some(1..=12)) {
            return Err("expiry must be YYMM".into());
        }
        if self.pan_sequence > 99 {
            return Err("pan_sequence must be 00 to 99".into());
        }
        if !(5..=16).contains(&self.aid.len()) {
            return Err("the AID must be 5 to 16 bytes".into());
        }
        if self.label.len() > 16 || !self.label.bytes().all(|b| (0x20..0x7F).contains(&b)) {
            return Err("the label must be up to 16 printable ASCII characters".into());
        }
        if self.priority > 15 {
            return Err("priority must be 0 (none) to 15".into());
        }
        if let Some(name) = &self.cardholder_name
            && (!(2..=26).contains(&name.len()) || !name.bytes().all(|b| (0x20..0x7F).contains(&b)))
        {
            return Err("cardholder_name must be 2 to 26 printable ASCII characters".into());
        }
        Ok(())
    }
}

/// Never shows the full number or the key.
impl fmt::Debug for EmvPersonalisation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmvPersonalisation")
            .field("profile", &self.profile)
            .field("pan", &mask(&self.pan))
            .field("aid", &hex::encode_upper(&self.aid))
            .field("atc", &self.atc)
            .finish_non_exhaustive()
    }
}

fn mask(pan: &str) -> String {
    pan.chars()
        .enumerate()
        .map(|(i, c)| if i < 6 || i + 4 >= pan.len() { c } else { '*' })
        .collect()
}

/// The PPSE's name.
const PPSE: &[u8] = b"2PAY.SYS.DDF01";

/// The qVSDC PDOL: TTQ, amount, other amount, country, TVR, currency,
/// date, type, unpredictable number (the common Visa PDOL).
const QVSDC_PDOL: &[(u16, usize)] = &[
    (0x9F66, 4),
    (0x9F02, 6),
    (0x9F03, 6),
    (0x9F1A, 2),
    (0x95, 5),
    (0x5F2A, 2),
    (0x9A, 3),
    (0x9C, 1),
    (0x9F37, 4),
];

/// The M/Chip CDOL1: the cryptogram's terminal data first, then terminal
/// type and CVM results.
const MCHIP_CDOL1: &[(u16, usize)] = &[
    (0x9F02, 6),
    (0x9F03, 6),
    (0x9F1A, 2),
    (0x95, 5),
    (0x5F2A, 2),
    (0x9A, 3),
    (0x9C, 1),
    (0x9F37, 4),
    (0x9F35, 1),
    (0x9F34, 3),
];

/// The M/Chip CDOL2 (for a second GENERATE AC, which these cards refuse).
const MCHIP_CDOL2: &[(u16, usize)] = &[(0x91, 10), (0x8A, 2), (0x95, 5), (0x9F37, 4)];

/// A record by (SFI, record number), with its `70` template.
type Record = ((u8, u8), Vec<u8>);

/// Where the card is in a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing selected, or the PPSE.
    Idle,
    /// The payment application is selected.
    Selected,
    /// GET PROCESSING OPTIONS answered; records may be read.
    Processing,
    /// The cryptogram is out (M/Chip after GENERATE AC).
    Done,
}

/// A virtual EMV card application.
#[derive(Clone)]
pub struct VirtualEmvCard {
    perso: EmvPersonalisation,
    icc_master_key: [u8; 16],
    atc: u16,
    state: State,
    records: Vec<Record>,
    afl: Vec<u8>,
}

/// Shows the profile, masked number and counter.
impl fmt::Debug for VirtualEmvCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualEmvCard")
            .field("perso", &self.perso)
            .field("atc", &self.atc)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl VirtualEmvCard {
    /// A card personalised with `perso`.
    pub fn new(perso: EmvPersonalisation) -> Result<VirtualEmvCard, VirtualCardError> {
        perso.check().map_err(VirtualCardError::Personalisation)?;
        let icc_master_key =
            crypto::icc_master_key(&perso.issuer_master_key, &perso.pan, perso.pan_sequence);
        let (records, afl) = records(&perso);
        Ok(VirtualEmvCard {
            atc: perso.atc,
            perso,
            icc_master_key,
            state: State::Idle,
            records,
            afl,
        })
    }

    /// The personalisation.
    pub fn personalisation(&self) -> &EmvPersonalisation {
        &self.perso
    }

    /// The application transaction counter (of the last transaction).
    pub fn atc(&self) -> u16 {
        self.atc
    }

    /// The card's own ICC master key for application cryptograms.
    pub fn icc_master_key(&self) -> [u8; 16] {
        self.icc_master_key
    }

    fn select(&mut self, name: &[u8]) -> Vec<u8> {
        self.state = State::Idle;
        if name == PPSE {
            let mut entry = vec![
                primitive(0x4F, &self.perso.aid),
                primitive(0x50, self.perso.label.as_bytes()),
            ];
            if self.perso.priority > 0 {
                entry.push(primitive(0x87, &[self.perso.priority]));
            }
            if let Some(kernel) = kernel_id(&self.perso.aid) {
                entry.push(primitive(0x9F2A, &[kernel]));
            }
            let fci = constructed(
                0x6F,
                &[
                    primitive(0x84, PPSE),
                    constructed(0xA5, &[constructed(0xBF0C, &[constructed(0x61, &entry)])]),
                ],
            );
            return ok(fci);
        }
        // Partial selection: a prefix of the AID (at least the RID) selects it.
        if name.len() < 5 || !self.perso.aid.starts_with(name) {
            return sw(0x6A82);
        }
        self.state = State::Selected;
        let mut proprietary = vec![primitive(0x50, self.perso.label.as_bytes())];
        if self.perso.priority > 0 {
            proprietary.push(primitive(0x87, &[self.perso.priority]));
        }
        if self.perso.profile == Profile::Qvsdc {
            proprietary.push(primitive(0x9F38, &dol(QVSDC_PDOL)));
        }
        proprietary.push(primitive(0x5F2D, b"zhen"));
        ok(constructed(
            0x6F,
            &[
                primitive(0x84, &self.perso.aid),
                constructed(0xA5, &proprietary),
            ],
        ))
    }

    fn get_processing_options(&mut self, data: &[u8]) -> Vec<u8> {
        if self.state != State::Selected {
            return sw(0x6985);
        }
        let expected = match self.perso.profile {
            Profile::Qvsdc => dol_len(QVSDC_PDOL),
            Profile::Mchip => 0,
        };
        // The command template 83 with exactly the PDOL's data.
        if data.len() != expected + 2 || data[0] != 0x83 || usize::from(data[1]) != expected {
            return sw(0x6700);
        }
        let pdol = &data[2..];
        match self.perso.profile {
            Profile::Mchip => {
                self.state = State::Processing;
                let mut value = self.perso.profile.aip().to_vec();
                value.extend_from_slice(&self.afl);
                ok(primitive(0x80, &value))
            }
            Profile::Qvsdc => self.qvsdc_cryptogram(pdol),
        }
    }

    /// qVSDC: count the transaction and answer with the cryptogram.
    fn qvsdc_cryptogram(&mut self, pdol: &[u8]) -> Vec<u8> {
        let field = |tag| dol_field(QVSDC_PDOL, pdol, tag);
        let ttq = field(0x9F66);
        // A reader that does not speak qVSDC gets "conditions of use not
        // satisfied": try another interface.
        if ttq.first().is_none_or(|b| b & 0x20 == 0) {
            return sw(0x6985);
        }
        let Some(atc) = self.atc.checked_add(1) else {
            return sw(0x6985);
        };
        self.atc = atc;
        // An offline-only reader (TTQ byte 1 bit 4) cannot take the ARQC
        // this online-only card makes: the card declines.
        let online = ttq.first().is_some_and(|b| b & 0x08 == 0);
        let (cid, cvr) = if online {
            (0x80, [0x03, 0xA0, 0x00, 0x00])
        } else {
            (0x00, [0x03, 0x80, 0x00, 0x00])
        };
        let iad = [0x06, 0x01, 0x0A, cvr[0], cvr[1], cvr[2], cvr[3]];
        let mut input = Vec::with_capacity(41);
        for tag in [0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37] {
            input.extend_from_slice(field(tag));
        }
        input.extend_from_slice(&self.perso.profile.aip());
        input.extend_from_slice(&atc.to_be_bytes());
        input.extend_from_slice(&cvr);
        // CVN 10: no session key, Visa padding.
        let ac = crypto::mac_algorithm_3(&self.icc_master_key, &input, Padding::Method1);
        self.state = State::Processing;
        ok(constructed(
            0x77,
            &[
                primitive(0x82, &self.perso.profile.aip()),
                primitive(0x94, &self.afl),
                primitive(0x57, &track2(&self.perso)),
                primitive(0x5F34, &[bcd_byte(self.perso.pan_sequence)]),
                primitive(0x9F10, &iad),
                primitive(0x9F26, &ac),
                primitive(0x9F27, &[cid]),
                primitive(0x9F36, &atc.to_be_bytes()),
                primitive(0x9F6C, &[0x00, 0x00]),
                primitive(0x9F6E, &[0x20, 0x70, 0x00, 0x00]),
            ],
        ))
    }

    fn read_record(&mut self, p1: u8, p2: u8) -> Vec<u8> {
        if p2 & 0x07 != 0x04 || p1 == 0 {
            return sw(0x6A86);
        }
        if !matches!(self.state, State::Processing | State::Done) {
            return sw(0x6985);
        }
        let key = (p2 >> 3, p1);
        match self.records.iter().find(|(k, _)| *k == key) {
            Some((_, record)) => ok(record.clone()),
            None => sw(0x6A83),
        }
    }

    fn generate_ac(&mut self, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
        if self.perso.profile != Profile::Mchip || self.state != State::Processing {
            return sw(0x6985);
        }
        if p2 != 0 || p1 & 0xC0 == 0xC0 {
            return sw(0x6A86);
        }
        if data.len() != dol_len(MCHIP_CDOL1) {
            return sw(0x6700);
        }
        let Some(atc) = self.atc.checked_add(1) else {
            return sw(0x6985);
        };
        self.atc = atc;
        // An online-only card: a TC request gets an ARQC, an AAC request
        // an AAC.
        let (cid, first_byte) = if p1 & 0xC0 == 0x00 {
            (0x00, 0x80)
        } else {
            (0x80, 0xA0)
        };
        let cvr = [first_byte, 0x00, 0x00, 0x00, 0x00, 0x00];
        let mut input = Vec::with_capacity(45);
        for tag in [0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37] {
            input.extend_from_slice(dol_field(MCHIP_CDOL1, data, tag));
        }
        input.extend_from_slice(&self.perso.profile.aip());
        input.extend_from_slice(&atc.to_be_bytes());
        input.extend_from_slice(&cvr);
        let session_key = crypto::common_session_key(&self.icc_master_key, atc);
        let ac = crypto::mac_algorithm_3(&session_key, &input, Padding::Method2);
        // IAD: key index, CVN 14, CVR, DAC/IDN, counters.
        let mut iad = vec![0x01, 0x14];
        iad.extend_from_slice(&cvr);
        iad.extend_from_slice(&[0x00; 10]);
        let mut value = vec![cid];
        value.extend_from_slice(&atc.to_be_bytes());
        value.extend_from_slice(&ac);
        value.extend_from_slice(&iad);
        self.state = State::Done;
        ok(primitive(0x80, &value))
    }

    fn get_data(&self, p1: u8, p2: u8) -> Vec<u8> {
        match (p1, p2) {
            (0x9F, 0x36) => ok(primitive(0x9F36, &self.atc.to_be_bytes())),
            (0x9F, 0x17) => ok(primitive(0x9F17, &[0x03])),
            _ => sw(0x6A88),
        }
    }
}

impl CardApplication for VirtualEmvCard {
    fn process(&mut self, command: &[u8]) -> Vec<u8> {
        let Some(apdu) = Apdu::parse(command) else {
            return sw(0x6700);
        };
        match (apdu.cla, apdu.ins) {
            (0x00, 0xA4) if apdu.p1 == 0x04 && apdu.p2 == 0x00 => self.select(apdu.data),
            (0x00, 0xA4) => sw(0x6A86),
            (0x80, 0xA8) if apdu.p1 == 0 && apdu.p2 == 0 => self.get_processing_options(apdu.data),
            (0x80, 0xA8) => sw(0x6A86),
            (0x00, 0xB2) => self.read_record(apdu.p1, apdu.p2),
            (0x80, 0xAE) => self.generate_ac(apdu.p1, apdu.p2, apdu.data),
            (0x80, 0xCA) => self.get_data(apdu.p1, apdu.p2),
            (0x00 | 0x80 | 0x84, _) => sw(0x6D00),
            _ => sw(0x6E00),
        }
    }
}

/// A short command APDU, split.
struct Apdu<'a> {
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: &'a [u8],
}

impl<'a> Apdu<'a> {
    /// Cases 1 to 4, short lengths only.
    fn parse(command: &'a [u8]) -> Option<Apdu<'a>> {
        let (header, body) = command.split_at_checked(4)?;
        let data = match body {
            [] | [_] => &[][..],
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                if lc == 0 || !(lc..=lc + 1).contains(&rest.len()) {
                    return None;
                }
                &rest[..lc]
            }
        };
        Some(Apdu {
            cla: header[0],
            ins: header[1],
            p1: header[2],
            p2: header[3],
            data,
        })
    }
}

/// The records of a card and the AFL that names them.
fn records(perso: &EmvPersonalisation) -> (Vec<Record>, Vec<u8>) {
    let pan = compressed(&perso.pan);
    let expiry = expiry_date(&perso.expiry);
    let effective = [0x20, 0x01, 0x01];
    let country = [0x01, 0x56];
    let mut name = Vec::new();
    if let Some(n) = &perso.cardholder_name {
        name.push(primitive(0x5F20, n.as_bytes()));
    }
    match perso.profile {
        Profile::Qvsdc => {
            let mut first = vec![primitive(0x5A, &pan), primitive(0x5F24, &expiry)];
            first.extend(name);
            first.push(primitive(0x5F28, &country));
            let second = vec![
                primitive(0x5F25, &effective),
                primitive(0x9F07, &[0xFF, 0x00]),
                primitive(0x9F42, &[0x01, 0x56]),
            ];
            (
                vec![
                    ((1, 1), constructed(0x70, &first)),
                    ((1, 2), constructed(0x70, &second)),
                ],
                vec![0x08, 0x01, 0x02, 0x00],
            )
        }
        Profile::Mchip => {
            let mut first = vec![primitive(0x57, &track2(perso))];
            first.extend(name);
            let cvm_list = [
                0, 0, 0, 0, 0, 0, 0, 0, // amounts X and Y
                0x42, 0x03, // enciphered PIN online, if the terminal supports it
                0x1F, 0x03, // no CVM required, if the terminal supports it
            ];
            let second = vec![
                primitive(0x5A, &pan),
                primitive(0x5F24, &expiry),
                primitive(0x5F25, &effective),
                primitive(0x5F28, &country),
                primitive(0x5F34, &[bcd_byte(perso.pan_sequence)]),
                primitive(0x8C, &dol(MCHIP_CDOL1)),
                primitive(0x8D, &dol(MCHIP_CDOL2)),
                primitive(0x8E, &cvm_list),
                primitive(0x9F07, &[0xFF, 0x00]),
                primitive(0x9F42, &[0x01, 0x56]),
            ];
            (
                vec![
                    ((1, 1), constructed(0x70, &first)),
                    ((2, 1), constructed(0x70, &second)),
                ],
                vec![0x08, 0x01, 0x01, 0x00, 0x10, 0x01, 0x01, 0x00],
            )
        }
    }
}

/// A DOL's bytes.
fn dol(entries: &[(u16, usize)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(tag, len) in entries {
        out.extend(ber::tag_bytes(tag));
        out.push(len as u8);
    }
    out
}

fn dol_len(entries: &[(u16, usize)]) -> usize {
    entries.iter().map(|e| e.1).sum()
}

/// The bytes of `tag` in data filled after `entries` (callers have
/// checked the data's length).
fn dol_field<'a>(entries: &[(u16, usize)], data: &'a [u8], tag: u16) -> &'a [u8] {
    let mut offset = 0;
    for &(t, len) in entries {
        if t == tag {
            return data.get(offset..offset + len).unwrap_or_default();
        }
        offset += len;
    }
    &[]
}

/// The contactless kernel a card's AID calls for (tag 9F2A): Visa 3,
/// Mastercard 2, UnionPay 7.
fn kernel_id(aid: &[u8]) -> Option<u8> {
    match aid.get(..5)? {
        [0xA0, 0x00, 0x00, 0x00, 0x03] => Some(0x03),
        [0xA0, 0x00, 0x00, 0x00, 0x04] => Some(0x02),
        [0xA0, 0x00, 0x00, 0x03, 0x33] => Some(0x07),
        _ => None,
    }
}

/// Track 2 equivalent data: PAN, `D`, YYMM, service code 201 (chip card,
/// normal authorisation), discretionary zeros up to 37 digits, `F` padded.
fn track2(perso: &EmvPersonalisation) -> Vec<u8> {
    let fixed = perso.pan.len() + 1 + 4 + 3;
    let discretionary = 37usize.saturating_sub(fixed).min(10);
    let text = format!(
        "{}D{}201{}",
        perso.pan,
        perso.expiry,
        "0".repeat(discretionary)
    );
    compressed(&text)
}

/// Digits (and `D`) packed two to a byte, `F` padded.
fn compressed(text: &str) -> Vec<u8> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'D' => 0xD,
        _ => 0xF,
    };
    text.as_bytes()
        .chunks(2)
        .map(|p| (nibble(p[0]) << 4) | p.get(1).map_or(0xF, |c| nibble(*c)))
        .collect()
}

/// 5F24 from YYMM: the last day of the month.
fn expiry_date(yymm: &str) -> [u8; 3] {
    let year: u16 = yymm[..2].parse().unwrap_or(0);
    let month: u8 = yymm[2..].parse().unwrap_or(1);
    let day = match month {
        2 if year.is_multiple_of(4) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    [bcd_byte(year as u8), bcd_byte(month), bcd_byte(day)]
}

fn bcd_byte(n: u8) -> u8 {
    ((n / 10) << 4) | (n % 10)
}

fn ok(mut data: Vec<u8>) -> Vec<u8> {
    data.extend_from_slice(&[0x90, 0x00]);
    data
}

fn sw(word: u16) -> Vec<u8> {
    word.to_be_bytes().to_vec()
}

/// A PICC identity for a card: the given UID (4, 7 or 10 bytes) or one
/// derived from the card's name, ATQA and SAK to match (ISO 14443-4
/// compliant), and the ATS (default `05 78 80 81 02`: FSC 256 bytes,
/// 106 kbit/s only, FWI 8, SFGI 1, CID supported).
pub fn picc_identity(name: &str, uid: Option<&[u8]>, ats: Option<&[u8]>) -> PiccIdentity {
    let uid = match uid {
        Some(u) => u.to_vec(),
        None => {
            // FNV-1a of the name: stable across runs, distinct per card.
            let mut h: u64 = 0xCBF2_9CE4_8422_2325;
            for b in name.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
            }
            let mut uid = vec![0x04];
            uid.extend_from_slice(&h.to_be_bytes()[..6]);
            uid
        }
    };
    let size_bits = match uid.len() {
        4 => 0x00,
        7 => 0x40,
        _ => 0x80,
    };
    PiccIdentity {
        uid,
        atqa: [size_bits | 0x04, 0x00],
        sak: 0x20,
        ats: ats.map_or_else(|| vec![0x05, 0x78, 0x80, 0x81, 0x02], <[u8]>::to_vec),
    }
}

#[cfg(test)]
mod tests;
