//! The contactless read: from SELECT PPSE to the application cryptogram.
//!
//! One [`Kernel::read`] runs, over an [`ApduTransport`]:
//!
//! 1. SELECT `2PAY.SYS.DDF01` (the PPSE) and list the applications in its
//!    directory (`61` entries under `BF0C`);
//! 2. keep those whose AID the terminal supports
//!    ([`KernelConfig::supported_aids`]), order them by priority (tag
//!    `87`, 1 first, no priority last, ties in directory order) and
//!    SELECT the first; one the card refuses as absent or blocked
//!    (`6A82`, `6A81`, `6283`) gives way to the next;
//! 3. GET PROCESSING OPTIONS with the PDOL (`9F38`) filled from the
//!    transaction and the terminal: amounts, currency, country, TTQ, a
//!    fresh unpredictable number from the operating system, date, type,
//!    TVR, capabilities …;
//! 4. READ RECORD for every record the AFL (`94`) names;
//! 5. if the card has not already produced its cryptogram in the GPO
//!    answer (Visa qVSDC does), GENERATE AC asking for an ARQC with
//!    CDOL1 (`8C`) filled (Mastercard M/Chip);
//! 6. return the card data and the ICC data for ISO 8583 field 55.
//!
//! It runs synchronously: an APDU exchange over ISO 14443-4 is a blocking
//! round trip on the reader, and the app calls the kernel from the
//! reader's thread.
//!
//! The kernel is an online-only reader of the data it needs for an
//! authorisation: it does no offline data authentication, no CVM
//! processing (Till asks for the PIN afterwards and the host checks it)
//! and no terminal risk management; the TVR says so.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, NaiveDateTime, Timelike};
use rand::TryRng;
use rand::rngs::SysRng;
use zeroize::Zeroizing;

use super::apdu::{self, PPSE, StatusWord};
use super::dol;
use super::issuer::CryptogramType;
use super::tags;
use super::tlv::{self, Tag, Tlv, TlvError};
use crate::card::{Expiry, Pan, Track2};
use crate::money::{Amount, Currency};

/// A channel to a card's ISO 14443-4 application: one command APDU in,
/// one response APDU (data and `SW1 SW2`) out.
///
/// The app adapts the contactless reader to this; tests and benchmarks
/// adapt virtual cards.
pub trait ApduTransport {
    /// Sends `command` and waits for the card's response.
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;
}

impl<T: ApduTransport + ?Sized> ApduTransport for &mut T {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command)
    }
}

/// Why an APDU exchange did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The card left the field (or stopped answering and was deselected).
    #[error("the card left the reader's field")]
    CardRemoved,
    /// The card did not answer in time (including waiting-time extensions).
    #[error("the card did not answer in time")]
    Timeout,
    /// The reader itself failed.
    #[error("the reader failed: {0}")]
    Reader(String),
}

/// An AID the terminal accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportedAid {
    /// The AID (5 to 16 bytes).
    pub aid: Vec<u8>,
    /// Whether a card AID that only begins with this one matches too
    /// (EMV's partial selection, e.g. UnionPay's `A000000333010101`
    /// under `A000000333`).
    pub partial_match: bool,
}

impl SupportedAid {
    /// An AID matched exactly.
    pub fn exact(aid: &[u8]) -> SupportedAid {
        SupportedAid {
            aid: aid.to_vec(),
            partial_match: false,
        }
    }

    /// Whether the card application `aid` is this one.
    fn matches(&self, aid: &[u8]) -> bool {
        aid == self.aid || (self.partial_match && aid.starts_with(&self.aid))
    }
}

/// The AIDs the default configuration supports: Visa credit/debit,
/// Mastercard credit/debit and UnionPay debit, credit and quasi-credit.
pub const DEFAULT_AIDS: [&[u8]; 5] = [
    &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10],
    &[0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10],
    &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x01],
    &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x02],
    &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x03],
];

/// The tags sent in ISO 8583 field 55 by default, in this order: what an
/// issuer needs to verify the ARQC (Visa CVN 10, Mastercard CVN 20) plus
/// the terminal and card context acquirers usually ask for. Tags neither
/// the card nor the terminal has are left out.
pub const DEFAULT_ICC_DATA_TAGS: [Tag; 21] = [
    tags::APPLICATION_CRYPTOGRAM,
    tags::CRYPTOGRAM_INFORMATION_DATA,
    tags::ISSUER_APPLICATION_DATA,
    tags::UNPREDICTABLE_NUMBER,
    tags::ATC,
    tags::TVR,
    tags::DATE,
    tags::TRANSACTION_TYPE,
    tags::AMOUNT_AUTHORISED,
    tags::CURRENCY,
    tags::AIP,
    tags::TERMINAL_COUNTRY,
    tags::AMOUNT_OTHER,
    tags::TERMINAL_CAPABILITIES,
    tags::CVM_RESULTS,
    tags::TERMINAL_TYPE,
    tags::DF_NAME,
    tags::IFD_SERIAL,
    tags::TTQ,
    tags::FORM_FACTOR,
    tags::PAN_SEQUENCE,
];

/// How the kernel is set up: which applications it accepts, what it tells
/// cards about the terminal, and what goes into field 55.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    /// The applications the terminal accepts.
    pub supported_aids: Vec<SupportedAid>,
    /// The tags of the ICC data for field 55, in order.
    pub icc_data_tags: Vec<Tag>,
    /// Terminal country code (9F1A), ISO 3166-1 numeric (156 = China).
    pub terminal_country: u16,
    /// Terminal type (9F35): `22` = attended, merchant, online with
    /// offline capability.
    pub terminal_type: u8,
    /// Terminal capabilities (9F33).
    pub terminal_capabilities: [u8; 3],
    /// Additional terminal capabilities (9F40).
    pub additional_capabilities: [u8; 5],
    /// Terminal transaction qualifiers (9F66) for Visa and UnionPay
    /// contactless cards.
    pub ttq: [u8; 4],
    /// Interface device serial number (9F1E), eight characters.
    pub ifd_serial: Option<[u8; 8]>,
}

impl Default for KernelConfig {
    /// The default AIDs and field 55 tags, a terminal in China (156),
    /// attended online terminal with offline capability; magnetic stripe
    /// and manual entry, online PIN and no-CVM, no offline data
    /// authentication (9F33 `60 48 00`); goods and services, PIN pad and
    /// display (9F40 `60 00 B0 A0 01`); TTQ `36 80 40 00`: qVSDC and EMV
    /// contact supported, online PIN and signature supported, online
    /// cryptogram required, consumer device CVM supported.
    fn default() -> KernelConfig {
        KernelConfig {
            supported_aids: DEFAULT_AIDS
                .iter()
                .map(|a| SupportedAid::exact(a))
                .collect(),
            icc_data_tags: DEFAULT_ICC_DATA_TAGS.to_vec(),
            terminal_country: 156,
            terminal_type: 0x22,
            terminal_capabilities: [0x60, 0x48, 0x00],
            additional_capabilities: [0x60, 0x00, 0xB0, 0xA0, 0x01],
            ttq: [0x36, 0x80, 0x40, 0x00],
            ifd_serial: None,
        }
    }
}

/// The transaction type (9C).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionType {
    /// Goods and services (`00`).
    Purchase,
    /// Cash (`01`).
    Cash,
    /// Purchase with cashback (`09`).
    Cashback,
    /// Refund (`20`).
    Refund,
    /// Balance inquiry (`31`).
    BalanceInquiry,
}

impl TransactionType {
    /// The 9C byte.
    pub fn code(self) -> u8 {
        match self {
            TransactionType::Purchase => 0x00,
            TransactionType::Cash => 0x01,
            TransactionType::Cashback => 0x09,
            TransactionType::Refund => 0x20,
            TransactionType::BalanceInquiry => 0x31,
        }
    }
}

/// The transaction the card is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transaction {
    /// Amount, authorised (9F02).
    pub amount: Amount,
    /// Amount, other (9F03): the cashback part, usually zero.
    pub other_amount: Amount,
    /// Transaction currency (5F2A, 5F36).
    pub currency: Currency,
    /// Transaction type (9C).
    pub kind: TransactionType,
    /// Local date and time (9A, 9F21).
    pub date_time: NaiveDateTime,
}

impl Transaction {
    /// A purchase of `amount`.
    pub fn purchase(amount: Amount, currency: Currency, date_time: NaiveDateTime) -> Transaction {
        Transaction {
            amount,
            other_amount: Amount(0),
            currency,
            kind: TransactionType::Purchase,
            date_time,
        }
    }
}

/// A step of the read, as errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// SELECT PPSE.
    SelectPpse,
    /// SELECT of the chosen application.
    SelectApplication,
    /// GET PROCESSING OPTIONS.
    GetProcessingOptions,
    /// READ RECORD of one record.
    ReadRecord {
        /// Short file identifier.
        sfi: u8,
        /// Record number.
        record: u8,
    },
    /// GENERATE AC.
    GenerateAc,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::SelectPpse => f.write_str("SELECT PPSE"),
            Step::SelectApplication => f.write_str("SELECT application"),
            Step::GetProcessingOptions => f.write_str("GET PROCESSING OPTIONS"),
            Step::ReadRecord { sfi, record } => {
                write!(f, "READ RECORD (SFI {sfi}, record {record})")
            }
            Step::GenerateAc => f.write_str("GENERATE AC"),
        }
    }
}

/// Why a card could not be read. Messages name steps, tags and status
/// words, never card data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmvError {
    /// The exchange with the card broke off (card removed, timeout,
    /// reader fault).
    #[error("{step}: {source}")]
    Transport {
        /// Where the read was.
        step: Step,
        /// What the reader reported.
        source: TransportError,
    },
    /// The card answered with an error status word.
    #[error("{step}: the card answered {sw} ({})", .sw.meaning())]
    Status {
        /// The command it refused.
        step: Step,
        /// Its status word.
        sw: StatusWord,
    },
    /// A response APDU shorter than its status word.
    #[error("{step}: the card's answer has no status word")]
    NoStatusWord {
        /// The command.
        step: Step,
    },
    /// A response is not valid BER-TLV.
    #[error("{step}: the card's answer is not valid BER-TLV: {source}")]
    Malformed {
        /// The command.
        step: Step,
        /// What the parser found.
        source: TlvError,
    },
    /// A response is valid TLV but not what the command answers with.
    #[error("{step}: unexpected answer: {reason}")]
    UnexpectedResponse {
        /// The command.
        step: Step,
        /// What is wrong.
        reason: &'static str,
    },
    /// None of the card's applications is one the terminal accepts.
    #[error("the card offers {offered} contactless applications, none of them accepted here")]
    NoSupportedApplication {
        /// How many applications the PPSE listed.
        offered: usize,
    },
    /// Data the read needs is absent.
    #[error("the card did not provide {what} (tag {tag})")]
    MissingData {
        /// The tag.
        tag: Tag,
        /// What it is.
        what: &'static str,
    },
    /// A data element is present but unusable.
    #[error("the card's {tag} is invalid: {reason}")]
    BadData {
        /// The tag.
        tag: Tag,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same data element came twice (EMV forbids it).
    #[error("the card provided tag {0} more than once")]
    DuplicateData(Tag),
    /// The application file locator is malformed.
    #[error("the card's application file locator (94) is invalid: {0}")]
    BadAfl(&'static str),
    /// Data elements contradict each other.
    #[error("the card's data is inconsistent: {0}")]
    Inconsistent(&'static str),
    /// The card declined the transaction itself (it produced an AAC).
    #[error("the card declined the transaction (it produced an AAC)")]
    CardDeclined,
    /// The card produced a cryptogram type the kernel did not ask for.
    #[error("the card produced a {0} where an ARQC was asked for")]
    UnexpectedCryptogram(CryptogramType),
    /// The amount does not fit twelve digits.
    #[error("the amount {0} does not fit the twelve digits EMV allows")]
    AmountTooLarge(u64),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
}

impl EmvError {
    /// What the operator should do, in words for the screen.
    pub fn advice(&self) -> &'static str {
        match self {
            EmvError::Transport { .. } => {
                "Ask the customer to hold the card still on the reader until it beeps, then try again"
            }
            EmvError::Status {
                step: Step::GetProcessingOptions,
                sw,
            } if *sw == StatusWord::CONDITIONS_NOT_SATISFIED => {
                "The card refuses a contactless payment: ask the customer to insert or swipe it, or to use another card"
            }
            EmvError::NoSupportedApplication { .. } => {
                "This card is not accepted here; ask the customer for another card"
            }
            EmvError::CardDeclined => "The card declined; ask the customer for another card",
            EmvError::AmountTooLarge(_) => "The amount is too large; check it",
            EmvError::Random => "The terminal has a fault; restart it",
            _ => "The card cannot be read; try again, then use another card or another way to pay",
        }
    }
}

/// How the read obtained the cryptogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptogramSource {
    /// In the GET PROCESSING OPTIONS answer (Visa qVSDC).
    ProcessingOptions,
    /// From GENERATE AC after the records (Mastercard M/Chip).
    GenerateAc,
}

/// The application cryptogram the card produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplicationCryptogram {
    /// Its type (9F27).
    pub kind: CryptogramType,
    /// The cryptogram information data byte (9F27).
    pub cid: u8,
    /// The cryptogram (9F26).
    pub value: [u8; 8],
    /// The application transaction counter (9F36).
    pub atc: u16,
    /// Where it came from.
    pub source: CryptogramSource,
}

/// What a read yields. `Debug` masks the card number, the track, the
/// expiry date and the cardholder name.
#[derive(Clone)]
pub struct CardRead {
    /// The application PAN.
    pub pan: Pan,
    /// The application expiry date.
    pub expiry: Expiry,
    /// Track 2 equivalent data, if the card has it.
    pub track2: Option<Track2>,
    /// The cardholder name, if the card has it (trailing spaces removed).
    pub cardholder_name: Option<String>,
    /// The AID of the application read (its DF name).
    pub aid: Vec<u8>,
    /// The application label, if any.
    pub label: Option<String>,
    /// The PAN sequence number (5F34), if any.
    pub pan_sequence: Option<u8>,
    /// The cryptogram.
    pub cryptogram: ApplicationCryptogram,
    /// ICC data for ISO 8583 field 55 (BER-TLV objects of the configured
    /// tags).
    pub icc_data: Vec<u8>,
    data: BTreeMap<Tag, Zeroizing<Vec<u8>>>,
}

impl CardRead {
    /// The value of any primitive data element the card or the terminal
    /// contributed to the read (card data, GPO and GENERATE AC answers,
    /// and the terminal data sent to the card).
    pub fn data(&self, tag: Tag) -> Option<&[u8]> {
        self.data.get(&tag).map(|v| v.as_slice())
    }

    /// The AID in hex.
    pub fn aid_hex(&self) -> String {
        hex::encode_upper(&self.aid)
    }
}

impl fmt::Debug for CardRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardRead")
            .field("pan", &self.pan)
            .field("expiry", &self.expiry)
            .field("track2", &self.track2)
            .field(
                "cardholder_name",
                &self.cardholder_name.as_ref().map(|_| "<present>"),
            )
            .field("aid", &self.aid_hex())
            .field("label", &self.label)
            .field("pan_sequence", &self.pan_sequence)
            .field("cryptogram", &self.cryptogram.kind)
            .field("atc", &self.cryptogram.atc)
            .field("icc_data", &format_args!("<{} bytes>", self.icc_data.len()))
            .finish_non_exhaustive()
    }
}

/// The most records an AFL may name; a real card has a handful, and a
/// bound keeps a hostile card from holding the terminal in a loop.
pub const MAX_RECORDS: usize = 64;

/// The most `61xx` / `6Cxx` rounds accepted for one command.
const MAX_ROUNDS: usize = 8;

/// Reads contactless EMV cards.
///
/// ```no_run
/// use till_pay::emv::{ApduTransport, Kernel, KernelConfig, Transaction};
/// use till_pay::money::{Amount, Currency};
///
/// fn sale(reader: &mut impl ApduTransport) -> Result<(), till_pay::emv::EmvError> {
///     let kernel = Kernel::new(KernelConfig::default());
///     let now = chrono::Local::now().naive_local();
///     let read = kernel.read(reader, &Transaction::purchase(Amount(1250), Currency::CNY, now))?;
///     println!("{} {}", read.pan, read.aid_hex()); // the PAN prints masked
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Kernel {
    config: KernelConfig,
}

/// A directory entry worth selecting.
struct Candidate {
    aid: Vec<u8>,
    label: Option<String>,
    priority: u8,
}

/// The data elements gathered from the card, with duplicate detection.
#[derive(Default)]
struct CardData(BTreeMap<Tag, Zeroizing<Vec<u8>>>);

impl CardData {
    fn insert(&mut self, tag: Tag, value: &[u8]) -> Result<(), EmvError> {
        if self.0.insert(tag, Zeroizing::new(value.to_vec())).is_some() {
            return Err(EmvError::DuplicateData(tag));
        }
        Ok(())
    }

    /// Adds every primitive object in `objects`, looking into templates.
    fn insert_all(&mut self, objects: &[Tlv]) -> Result<(), EmvError> {
        for object in objects {
            match object.value() {
                Some(v) => self.insert(object.tag(), v)?,
                None => self.insert_all(object.children())?,
            }
        }
        Ok(())
    }

    fn get(&self, tag: Tag) -> Option<&[u8]> {
        self.0.get(&tag).map(|v| v.as_slice())
    }
}

impl Kernel {
    /// A kernel with `config`.
    pub fn new(config: KernelConfig) -> Kernel {
        Kernel { config }
    }

    /// The configuration.
    pub fn config(&self) -> &KernelConfig {
        &self.config
    }

    /// Reads the card behind `card` for `txn`.
    pub fn read(
        &self,
        mut card: impl ApduTransport,
        txn: &Transaction,
    ) -> Result<CardRead, EmvError> {
        let mut unpredictable = [0u8; 4];
        SysRng
            .try_fill_bytes(&mut unpredictable)
            .map_err(|_| EmvError::Random)?;
        let mut terminal = self.terminal_data(txn, unpredictable)?;

        let ppse = exchange(&mut card, Step::SelectPpse, &apdu::select(PPSE))?;
        let candidates = self.candidates(&ppse)?;
        let (candidate, fci) = select_application(&mut card, &candidates)?;
        let aid = match fci.find(tags::DF_NAME).and_then(Tlv::value) {
            Some(name) if name.starts_with(&candidate.aid) => name.to_vec(),
            Some(_) => {
                return Err(EmvError::UnexpectedResponse {
                    step: Step::SelectApplication,
                    reason: "the card selected another application than the one asked for",
                });
            }
            None => {
                return Err(EmvError::MissingData {
                    tag: tags::DF_NAME,
                    what: "the DF name in the application's FCI",
                });
            }
        };
        terminal.insert(tags::DF_NAME, aid.clone());
        terminal.insert(tags::AID_TERMINAL, aid.clone());
        let label = fci
            .find(tags::APPLICATION_LABEL)
            .and_then(Tlv::value)
            .map(text)
            .or_else(|| candidate.label.clone());

        let mut data = CardData::default();
        let gpo = self.processing_options(&mut card, &fci, &terminal)?;
        data.insert_all(&gpo)?;
        if data.get(tags::AIP).is_none() {
            return Err(EmvError::MissingData {
                tag: tags::AIP,
                what: "the application interchange profile",
            });
        }
        let afl = data.get(tags::AFL).ok_or(EmvError::MissingData {
            tag: tags::AFL,
            what: "the application file locator",
        })?;
        for (sfi, record) in afl_records(afl)? {
            let step = Step::ReadRecord { sfi, record };
            let bytes = exchange(&mut card, step, &apdu::read_record(sfi, record))?;
            let template = parse_template(step, &bytes, tags::RECORD_TEMPLATE)?;
            data.insert_all(template.children())?;
        }

        let source = if data.get(tags::APPLICATION_CRYPTOGRAM).is_some() {
            CryptogramSource::ProcessingOptions
        } else {
            self.generate_ac(&mut card, &mut data, &mut terminal, txn)?;
            CryptogramSource::GenerateAc
        };
        let cryptogram = cryptogram(&data, source)?;
        match cryptogram.kind {
            CryptogramType::Arqc => {}
            CryptogramType::Aac => return Err(EmvError::CardDeclined),
            other => return Err(EmvError::UnexpectedCryptogram(other)),
        }
        tracing::debug!(
            aid = %hex::encode_upper(&aid),
            atc = cryptogram.atc,
            source = ?cryptogram.source,
            "contactless card read"
        );
        self.card_read(data, terminal, aid, label, cryptogram)
    }

    /// The terminal's data elements for this transaction.
    fn terminal_data(
        &self,
        txn: &Transaction,
        unpredictable: [u8; 4],
    ) -> Result<BTreeMap<Tag, Vec<u8>>, EmvError> {
        let c = &self.config;
        let dt = txn.date_time;
        let mut t = BTreeMap::new();
        t.insert(tags::AMOUNT_AUTHORISED, amount_n12(txn.amount)?);
        t.insert(tags::AMOUNT_OTHER, amount_n12(txn.other_amount)?);
        t.insert(tags::CURRENCY, bcd(&format!("{:04}", txn.currency.numeric)));
        t.insert(tags::CURRENCY_EXPONENT, vec![txn.currency.exponent.min(9)]);
        t.insert(
            tags::TERMINAL_COUNTRY,
            bcd(&format!("{:04}", c.terminal_country % 1000)),
        );
        t.insert(
            tags::DATE,
            bcd(&format!(
                "{:02}{:02}{:02}",
                dt.year().rem_euclid(100),
                dt.month(),
                dt.day()
            )),
        );
        t.insert(
            tags::TIME,
            bcd(&format!(
                "{:02}{:02}{:02}",
                dt.hour(),
                dt.minute(),
                dt.second()
            )),
        );
        t.insert(tags::TRANSACTION_TYPE, vec![txn.kind.code()]);
        t.insert(tags::UNPREDICTABLE_NUMBER, unpredictable.to_vec());
        // Nothing is evaluated before the card has answered GPO; qVSDC
        // cards expect zeros here.
        t.insert(tags::TVR, vec![0; 5]);
        t.insert(
            tags::TERMINAL_CAPABILITIES,
            c.terminal_capabilities.to_vec(),
        );
        t.insert(
            tags::ADDITIONAL_CAPABILITIES,
            c.additional_capabilities.to_vec(),
        );
        t.insert(tags::TERMINAL_TYPE, vec![c.terminal_type]);
        t.insert(tags::TTQ, c.ttq.to_vec());
        // "No CVM performed" at card time: the PIN is taken after the read.
        t.insert(tags::CVM_RESULTS, vec![0x3F, 0x00, 0x00]);
        if let Some(serial) = c.ifd_serial {
            t.insert(tags::IFD_SERIAL, serial.to_vec());
        }
        Ok(t)
    }

    /// The supported applications of the PPSE directory, best first.
    fn candidates(&self, ppse: &[u8]) -> Result<Vec<Candidate>, EmvError> {
        let step = Step::SelectPpse;
        let fci = parse_template(step, ppse, tags::FCI_TEMPLATE)?;
        let directory =
            fci.find(tags::FCI_ISSUER_DISCRETIONARY)
                .ok_or(EmvError::UnexpectedResponse {
                    step,
                    reason: "the PPSE has no directory (BF0C)",
                })?;
        let entries: Vec<&Tlv> = directory
            .children()
            .iter()
            .filter(|e| e.tag() == tags::DIRECTORY_ENTRY)
            .collect();
        let mut out: Vec<Candidate> = entries
            .iter()
            .filter_map(|entry| {
                let aid = entry.find(tags::ADF_NAME)?.value()?;
                if !(5..=16).contains(&aid.len())
                    || !self.config.supported_aids.iter().any(|s| s.matches(aid))
                {
                    return None;
                }
                let priority = entry
                    .find(tags::PRIORITY)
                    .and_then(Tlv::value)
                    .and_then(|v| v.first())
                    .map_or(0, |p| p & 0x0F);
                Some(Candidate {
                    aid: aid.to_vec(),
                    label: entry
                        .find(tags::APPLICATION_LABEL)
                        .and_then(Tlv::value)
                        .map(text),
                    priority,
                })
            })
            .collect();
        // 1 is the highest priority, 0 means none (after every numbered
        // one); the sort is stable, so ties keep the card's order.
        out.sort_by_key(|c| if c.priority == 0 { 16 } else { c.priority });
        if out.is_empty() {
            return Err(EmvError::NoSupportedApplication {
                offered: entries.len(),
            });
        }
        Ok(out)
    }

    /// GET PROCESSING OPTIONS; the answer's objects (format 1 split into
    /// AIP and AFL).
    fn processing_options(
        &self,
        card: &mut impl ApduTransport,
        fci: &Tlv,
        terminal: &BTreeMap<Tag, Vec<u8>>,
    ) -> Result<Vec<Tlv>, EmvError> {
        let step = Step::GetProcessingOptions;
        let pdol = match fci.find(tags::PDOL).and_then(Tlv::value) {
            Some(raw) => dol::parse(raw).map_err(|_| EmvError::BadData {
                tag: tags::PDOL,
                reason: "not a valid data object list",
            })?,
            None => Vec::new(),
        };
        let filled = dol::fill(&pdol, |tag| terminal.get(&tag).map(Vec::as_slice));
        let template =
            Tlv::primitive(tags::COMMAND_TEMPLATE, filled).map_err(|_| EmvError::BadData {
                tag: tags::PDOL,
                reason: "it asks for more data than a command can carry",
            })?;
        let command = template.encode();
        if command.len() > 255 {
            return Err(EmvError::BadData {
                tag: tags::PDOL,
                reason: "it asks for more data than a command can carry",
            });
        }
        let answer = exchange(card, step, &apdu::get_processing_options(&command))?;
        let object =
            tlv::parse_one(&answer).map_err(|source| EmvError::Malformed { step, source })?;
        if object.tag() == tags::RESPONSE_FORMAT_1 {
            let v = object.value().unwrap_or_default();
            if v.len() < 2 {
                return Err(EmvError::UnexpectedResponse {
                    step,
                    reason: "format 1 answer shorter than the AIP",
                });
            }
            let aip = Tlv::primitive(tags::AIP, v[..2].to_vec());
            let afl = Tlv::primitive(tags::AFL, v[2..].to_vec());
            return match (aip, afl) {
                (Ok(aip), Ok(afl)) => Ok(vec![aip, afl]),
                _ => Err(EmvError::UnexpectedResponse {
                    step,
                    reason: "format 1 answer too long",
                }),
            };
        }
        if object.tag() == tags::RESPONSE_FORMAT_2 {
            return Ok(object.children().to_vec());
        }
        Err(EmvError::UnexpectedResponse {
            step,
            reason: "neither a format 1 (80) nor a format 2 (77) template",
        })
    }

    /// GENERATE AC (ARQC) with CDOL1; adds the answer's data to `data`.
    fn generate_ac(
        &self,
        card: &mut impl ApduTransport,
        data: &mut CardData,
        terminal: &mut BTreeMap<Tag, Vec<u8>>,
        txn: &Transaction,
    ) -> Result<(), EmvError> {
        let step = Step::GenerateAc;
        let cdol1 = data.get(tags::CDOL1).ok_or(EmvError::MissingData {
            tag: tags::CDOL1,
            what: "CDOL1, which GENERATE AC needs (and no cryptogram in the GPO answer)",
        })?;
        let cdol1 = dol::parse(cdol1).map_err(|_| EmvError::BadData {
            tag: tags::CDOL1,
            reason: "not a valid data object list",
        })?;
        terminal.insert(tags::TVR, tvr_after_records(data, txn).to_vec());
        let terminal: &BTreeMap<Tag, Vec<u8>> = terminal;
        let filled = dol::fill(&cdol1, |tag| {
            terminal
                .get(&tag)
                .map(Vec::as_slice)
                .or_else(|| data.get(tag))
        });
        if filled.len() > 255 {
            return Err(EmvError::BadData {
                tag: tags::CDOL1,
                reason: "it asks for more data than a command can carry",
            });
        }
        // P1 80: ARQC, no CDA.
        let answer = exchange(card, step, &apdu::generate_ac(0x80, &filled))?;
        let object =
            tlv::parse_one(&answer).map_err(|source| EmvError::Malformed { step, source })?;
        if object.tag() == tags::RESPONSE_FORMAT_1 {
            let v = object.value().unwrap_or_default();
            if v.len() < 11 {
                return Err(EmvError::UnexpectedResponse {
                    step,
                    reason: "format 1 answer shorter than CID, ATC and cryptogram",
                });
            }
            data.insert(tags::CRYPTOGRAM_INFORMATION_DATA, &v[..1])?;
            data.insert(tags::ATC, &v[1..3])?;
            data.insert(tags::APPLICATION_CRYPTOGRAM, &v[3..11])?;
            if v.len() > 11 {
                data.insert(tags::ISSUER_APPLICATION_DATA, &v[11..])?;
            }
            return Ok(());
        }
        if object.tag() == tags::RESPONSE_FORMAT_2 {
            return data.insert_all(object.children());
        }
        Err(EmvError::UnexpectedResponse {
            step,
            reason: "neither a format 1 (80) nor a format 2 (77) template",
        })
    }

    /// Assembles the result from the gathered data.
    fn card_read(
        &self,
        data: CardData,
        terminal: BTreeMap<Tag, Vec<u8>>,
        aid: Vec<u8>,
        label: Option<String>,
        cryptogram: ApplicationCryptogram,
    ) -> Result<CardRead, EmvError> {
        let track2 = data.get(tags::TRACK2).map(parse_track2).transpose()?;
        let pan = match (data.get(tags::PAN), &track2) {
            (Some(raw), _) => {
                let digits = Zeroizing::new(compressed_digits(raw).ok_or(EmvError::BadData {
                    tag: tags::PAN,
                    reason: "not compressed numeric digits",
                })?);
                Pan::new(&digits).map_err(|_| EmvError::BadData {
                    tag: tags::PAN,
                    reason: "not 12 to 19 digits with a valid check digit",
                })?
            }
            (None, Some(t)) => t.pan(),
            (None, None) => {
                return Err(EmvError::MissingData {
                    tag: tags::PAN,
                    what: "the card number (5A, or track 2 equivalent data 57)",
                });
            }
        };
        if let Some(t) = &track2
            && t.pan() != pan
        {
            return Err(EmvError::Inconsistent(
                "the card number in 5A differs from the one on track 2 (57)",
            ));
        }
        let expiry = match (data.get(tags::EXPIRY_DATE), &track2) {
            (Some(raw), _) => {
                let bad = EmvError::BadData {
                    tag: tags::EXPIRY_DATE,
                    reason: "not a YYMMDD date",
                };
                let digits = (raw.len() == 3)
                    .then(|| packed_digits(raw))
                    .flatten()
                    .ok_or(bad.clone())?;
                Expiry::parse_yymm(&digits[..4]).map_err(|_| bad)?
            }
            (None, Some(t)) => t.expiry(),
            (None, None) => {
                return Err(EmvError::MissingData {
                    tag: tags::EXPIRY_DATE,
                    what: "the expiry date (5F24, or track 2 equivalent data 57)",
                });
            }
        };
        if let Some(t) = &track2
            && t.expiry() != expiry
        {
            return Err(EmvError::Inconsistent(
                "the expiry date in 5F24 differs from the one on track 2 (57)",
            ));
        }
        let pan_sequence = match data.get(tags::PAN_SEQUENCE) {
            Some(raw) => Some(
                (raw.len() == 1)
                    .then(|| packed_digits(raw))
                    .flatten()
                    .and_then(|d| d.parse::<u8>().ok())
                    .ok_or(EmvError::BadData {
                        tag: tags::PAN_SEQUENCE,
                        reason: "not one byte of two digits",
                    })?,
            ),
            None => None,
        };
        let cardholder_name = data
            .get(tags::CARDHOLDER_NAME)
            .map(text)
            .filter(|n| !n.is_empty());
        // The terminal's values win: they are what the card was sent and
        // what the cryptogram covers, whatever a card echoes back.
        let mut all = data.0;
        all.extend(
            terminal
                .into_iter()
                .map(|(tag, v)| (tag, Zeroizing::new(v))),
        );
        let mut icc = Vec::new();
        for &tag in &self.config.icc_data_tags {
            if let Some(v) = all.get(&tag)
                && let Ok(object) = Tlv::primitive(tag, v.to_vec())
            {
                object.encode_into(&mut icc);
            }
        }
        Ok(CardRead {
            pan,
            expiry,
            track2,
            cardholder_name,
            aid,
            label,
            pan_sequence,
            cryptogram,
            icc_data: icc,
            data: all,
        })
    }
}

/// Sends a command; returns the data of a `9000` answer, following
/// `61xx` (GET RESPONSE) and `6Cxx` (repeat with the right `Le`).
fn exchange(
    card: &mut impl ApduTransport,
    step: Step,
    command: &[u8],
) -> Result<Vec<u8>, EmvError> {
    let lost = |source| EmvError::Transport { step, source };
    let mut response = card.transmit(command).map_err(lost)?;
    let mut data = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let (body, sw) = apdu::split_response(&response).ok_or(EmvError::NoStatusWord { step })?;
        data.extend_from_slice(body);
        match sw.sw1() {
            0x90 if sw.sw2() == 0 => return Ok(data),
            0x61 => {
                response = card.transmit(&apdu::get_response(sw.sw2())).map_err(lost)?;
            }
            0x6C => {
                let mut again = command.to_vec();
                if let Some(le) = again.last_mut() {
                    *le = sw.sw2();
                }
                data.clear();
                response = card.transmit(&again).map_err(lost)?;
            }
            _ => return Err(EmvError::Status { step, sw }),
        }
    }
    Err(EmvError::UnexpectedResponse {
        step,
        reason: "the card kept asking for more exchanges (61xx/6Cxx)",
    })
}

/// SELECTs the candidates in order until one answers; returns it and its
/// FCI.
fn select_application<'c>(
    card: &mut impl ApduTransport,
    candidates: &'c [Candidate],
) -> Result<(&'c Candidate, Tlv), EmvError> {
    let step = Step::SelectApplication;
    let mut last = None;
    for candidate in candidates {
        match exchange(card, step, &apdu::select(&candidate.aid)) {
            Ok(answer) => {
                return Ok((
                    candidate,
                    parse_template(step, &answer, tags::FCI_TEMPLATE)?,
                ));
            }
            Err(EmvError::Status { sw, .. })
                if [
                    StatusWord::NOT_FOUND,
                    StatusWord::FUNCTION_NOT_SUPPORTED,
                    StatusWord::SELECTED_FILE_INVALIDATED,
                ]
                .contains(&sw) =>
            {
                last = Some(EmvError::Status { step, sw });
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(EmvError::NoSupportedApplication { offered: 0 }))
}

/// Parses `bytes` as one object with tag `expected`.
fn parse_template(step: Step, bytes: &[u8], expected: Tag) -> Result<Tlv, EmvError> {
    let object = tlv::parse_one(bytes).map_err(|source| EmvError::Malformed { step, source })?;
    if object.tag() != expected {
        return Err(EmvError::UnexpectedResponse {
            step,
            reason: match expected.raw() {
                0x6F => "not an FCI template (6F)",
                0x70 => "not a record template (70)",
                _ => "not the expected template",
            },
        });
    }
    Ok(object)
}

/// The (SFI, record) pairs an AFL names, in order.
fn afl_records(afl: &[u8]) -> Result<Vec<(u8, u8)>, EmvError> {
    if !afl.len().is_multiple_of(4) {
        return Err(EmvError::BadAfl("its length is not a multiple of four"));
    }
    let mut out = Vec::new();
    for entry in afl.chunks_exact(4) {
        let sfi = entry[0] >> 3;
        if entry[0] & 0x07 != 0 {
            return Err(EmvError::BadAfl(
                "the three low bits of an SFI byte are set",
            ));
        }
        if !(1..=30).contains(&sfi) {
            return Err(EmvError::BadAfl("an SFI outside 1 to 30"));
        }
        let (first, last, oda) = (entry[1], entry[2], entry[3]);
        if first == 0 {
            return Err(EmvError::BadAfl("a first record number of 0"));
        }
        if last < first {
            return Err(EmvError::BadAfl("a last record before the first"));
        }
        if usize::from(oda) > usize::from(last - first) + 1 {
            return Err(EmvError::BadAfl(
                "more records for offline data authentication than in the range",
            ));
        }
        for record in first..=last {
            out.push((sfi, record));
        }
        if out.len() > MAX_RECORDS {
            return Err(EmvError::BadAfl("it names more than 64 records"));
        }
    }
    Ok(out)
}

/// The cryptogram data in `data`.
fn cryptogram(
    data: &CardData,
    source: CryptogramSource,
) -> Result<ApplicationCryptogram, EmvError> {
    let get = |tag: Tag, what: &'static str, len: usize| {
        let v = data.get(tag).ok_or(EmvError::MissingData { tag, what })?;
        if v.len() != len {
            return Err(EmvError::BadData {
                tag,
                reason: "wrong length",
            });
        }
        Ok(v)
    };
    let cid = get(
        tags::CRYPTOGRAM_INFORMATION_DATA,
        "the cryptogram information data",
        1,
    )?[0];
    let atc = get(tags::ATC, "the application transaction counter", 2)?;
    let value = get(
        tags::APPLICATION_CRYPTOGRAM,
        "the application cryptogram",
        8,
    )?;
    let mut ac = [0u8; 8];
    ac.copy_from_slice(value);
    Ok(ApplicationCryptogram {
        kind: CryptogramType::from_cid(cid),
        cid,
        value: ac,
        atc: u16::from_be_bytes([atc[0], atc[1]]),
        source,
    })
}

/// The TVR for GENERATE AC: offline data authentication not performed
/// (Till does none), and "expired application" when the card's expiry
/// date is before the transaction date.
fn tvr_after_records(data: &CardData, txn: &Transaction) -> [u8; 5] {
    let mut tvr = [0x80, 0, 0, 0, 0];
    let today = format!(
        "{:02}{:02}{:02}",
        txn.date_time.year().rem_euclid(100),
        txn.date_time.month(),
        txn.date_time.day()
    );
    if let Some(expiry) = data.get(tags::EXPIRY_DATE).and_then(packed_digits)
        && expiry < today
    {
        tvr[1] |= 0x40;
    }
    tvr
}

/// Twelve BCD digits in six bytes.
fn amount_n12(amount: Amount) -> Result<Vec<u8>, EmvError> {
    if amount.0 > 999_999_999_999 {
        return Err(EmvError::AmountTooLarge(amount.0));
    }
    Ok(bcd(&format!("{:012}", amount.0)))
}

/// Packs an even number of decimal digits into BCD.
fn bcd(digits: &str) -> Vec<u8> {
    digits
        .as_bytes()
        .chunks(2)
        .map(|p| ((p[0] - b'0') << 4) | (p.get(1).map_or(0, |d| d - b'0')))
        .collect()
}

/// The digits of packed BCD (`n` format); `None` if a nibble is not a digit.
fn packed_digits(raw: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(raw.len() * 2);
    for b in raw {
        for nibble in [b >> 4, b & 0x0F] {
            if nibble > 9 {
                return None;
            }
            out.push(char::from(b'0' + nibble));
        }
    }
    Some(out)
}

/// The digits of compressed numeric data (`cn`): digits, then `F` padding.
fn compressed_digits(raw: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(raw.len() * 2);
    let mut padding = false;
    for b in raw {
        for nibble in [b >> 4, b & 0x0F] {
            match nibble {
                0..=9 if !padding => out.push(char::from(b'0' + nibble)),
                0xF => padding = true,
                _ => return None,
            }
        }
    }
    Some(out)
}

/// Track 2 equivalent data (57): digits, `D` separator, `F` padding.
fn parse_track2(raw: &[u8]) -> Result<Track2, EmvError> {
    let bad = |reason| EmvError::BadData {
        tag: tags::TRACK2,
        reason,
    };
    let mut text = Zeroizing::new(String::with_capacity(raw.len() * 2));
    let nibbles: Vec<u8> = raw.iter().flat_map(|b| [b >> 4, b & 0x0F]).collect();
    let end = if nibbles.last() == Some(&0xF) {
        nibbles.len() - 1
    } else {
        nibbles.len()
    };
    for &n in &nibbles[..end] {
        match n {
            0..=9 => text.push(char::from(b'0' + n)),
            0xD => text.push('='),
            _ => return Err(bad("a nibble other than a digit or the separator D")),
        }
    }
    Track2::parse(&text).map_err(|_| bad("not PAN, separator, expiry and service code"))
}

/// Printable ASCII text of an `an`/`ans` element, trimmed; anything else
/// replaced by `?`.
fn text(raw: &[u8]) -> String {
    raw.iter()
        .map(|&b| {
            if (0x20..0x7F).contains(&b) {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn afl_rules() {
        assert_eq!(
            afl_records(&[0x08, 1, 2, 0, 0x10, 1, 1, 1]).unwrap(),
            [(1, 1), (1, 2), (2, 1)]
        );
        assert_eq!(afl_records(&[]).unwrap(), []);
        for bad in [
            &[0x08, 1, 2][..],
            &[0x09, 1, 1, 0],
            &[0x00, 1, 1, 0],
            &[0xF8, 1, 1, 0],
            &[0x08, 0, 1, 0],
            &[0x08, 2, 1, 0],
            &[0x08, 1, 2, 3],
            &[0x08, 1, 255, 0],
        ] {
            assert!(
                matches!(afl_records(bad), Err(EmvError::BadAfl(_))),
                "{bad:02X?}"
            );
        }
    }

    #[test]
    fn digit_formats() {
        assert_eq!(bcd("000000012345"), [0, 0, 0, 0x01, 0x23, 0x45]);
        assert_eq!(packed_digits(&[0x49, 0x12, 0x31]).unwrap(), "491231");
        assert_eq!(packed_digits(&[0x4A]), None);
        assert_eq!(
            compressed_digits(&[0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x1F]).unwrap(),
            "476173900101001"
        );
        assert_eq!(compressed_digits(&[0x4F, 0x12]), None);
        let t =
            parse_track2(&hex::decode("4761739001010010D49122010000000000000F").unwrap()).unwrap();
        assert_eq!(t.pan().expose(), "4761739001010010");
        assert_eq!(t.expiry().yymm(), "4912");
        assert!(parse_track2(&[0x47, 0x61, 0xA0]).is_err());
        assert_eq!(text(b"VISA CREDIT  "), "VISA CREDIT");
        assert_eq!(text(&[0x41, 0x00, 0x42]), "A?B");
        assert!(matches!(
            amount_n12(Amount(1_000_000_000_000)),
            Err(EmvError::AmountTooLarge(_))
        ));
    }

    #[test]
    fn errors_read_well() {
        let e = EmvError::Status {
            step: Step::GetProcessingOptions,
            sw: StatusWord::CONDITIONS_NOT_SATISFIED,
        };
        assert_eq!(
            e.to_string(),
            "GET PROCESSING OPTIONS: the card answered 6985 (conditions of use not satisfied)"
        );
        assert!(e.advice().contains("insert or swipe"));
        let e = EmvError::Transport {
            step: Step::ReadRecord { sfi: 2, record: 1 },
            source: TransportError::CardRemoved,
        };
        assert_eq!(
            e.to_string(),
            "READ RECORD (SFI 2, record 1): the card left the reader's field"
        );
    }
}
