//! The reader API the rest of Till uses: poll for a card, exchange APDUs
//! with it, let it go, and self-test the reader for the boot screen.

use std::fmt;
use std::time::Duration;

use super::error::ReaderError;
use super::iso_dep::Ats;
use super::iso14443a::Wake;
use super::mfrc522::{BitRate, ChipVersion, RxGain};

/// A contactless (ISO 14443-4 type A) card reader.
///
/// One card at a time: [`poll`](ContactlessReader::poll) activates a card,
/// [`transmit`](ContactlessReader::transmit) sends it APDUs until
/// [`release`](ContactlessReader::release) or an error ends the session.
///
/// ```
/// use std::time::Duration;
/// use till_hal::reader::{ContactlessReader, ReaderOptions, SimulatedReader};
/// use till_hal::reader::model::{Loopback, VirtualCard};
/// use till_hal::reader::card::PiccIdentity;
///
/// let card = VirtualCard::new(
///     PiccIdentity { uid: vec![1, 2, 3, 4], atqa: [0x04, 0x00], sak: 0x20, ats: vec![0x05, 0x78, 0x80, 0x70, 0x02] },
///     Loopback,
/// );
/// let (mut reader, _model) = SimulatedReader::simulated([card], ReaderOptions::default())?;
/// let info = reader.wait_for_card(Duration::from_millis(500))?;
/// assert_eq!(info.uid, [1, 2, 3, 4]);
/// let answer = reader.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x00])?;
/// assert_eq!(&answer[answer.len() - 2..], &[0x90, 0x00]);
/// reader.release()?;
/// # Ok::<(), till_hal::reader::ReaderError>(())
/// ```
pub trait ContactlessReader {
    /// Looks for a card for up to `timeout` and activates it (anticollision,
    /// SELECT, RATS, PPS). `Ok(None)` when no card appeared. A card still
    /// active from before is released first.
    fn poll(&mut self, timeout: Duration) -> Result<Option<CardInfo>, ReaderError>;

    /// Sends a command APDU to the active card and returns its response
    /// APDU (data, SW1, SW2). Any error ends the session: poll again.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ReaderError>;

    /// Ends the session with S(DESELECT); the card goes to HALT. Does
    /// nothing when no card is active; a card already gone is not an error.
    fn release(&mut self) -> Result<(), ReaderError>;

    /// The reader's self-test for the boot screen: chip version and the
    /// chip's digital self-test. Ends any card session.
    fn self_test(&mut self) -> Result<ReaderSelfTest, ReaderError>;

    /// [`poll`](ContactlessReader::poll), with "no card" as
    /// [`ReaderError::NoCard`].
    fn wait_for_card(&mut self, timeout: Duration) -> Result<CardInfo, ReaderError> {
        self.poll(timeout)?.ok_or(ReaderError::NoCard)
    }
}

/// What activation learnt about a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardInfo {
    /// UID: 4, 7 or 10 bytes (often random per tap on payment cards).
    pub uid: Vec<u8>,
    /// ATQA.
    pub atqa: [u8; 2],
    /// SAK of the last cascade level.
    pub sak: u8,
    /// The answer to select.
    pub ats: Ats,
    /// Bit rate reader → card after PPS.
    pub tx_rate: BitRate,
    /// Bit rate card → reader after PPS.
    pub rx_rate: BitRate,
}

/// What to do when more than one card answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollisionPolicy {
    /// Report [`ReaderError::MultipleCards`] (EMV: present one card).
    Reject,
    /// Resolve the collision by anticollision and activate one card.
    SelectOne,
}

/// How the reader polls and talks to cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderOptions {
    /// The fastest bit rate PPS may choose (the card's ATS decides too).
    /// 106 kbit/s keeps to what EMV requires.
    pub max_bit_rate: BitRate,
    /// REQA (only idle cards) or WUPA (halted ones too, as EMV polls).
    pub wake: Wake,
    /// What to do about several cards in the field.
    pub collisions: CollisionPolicy,
    /// Pause between polls when no card answered.
    pub poll_interval: Duration,
    /// Receiver gain, when the board's antenna needs other than the default.
    pub rx_gain: Option<RxGain>,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            max_bit_rate: BitRate::Kbps848,
            wake: Wake::All,
            collisions: CollisionPolicy::Reject,
            poll_interval: Duration::from_millis(20),
            rx_gain: None,
        }
    }
}

/// The result of the reader's self-test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderSelfTest {
    /// The chip version.
    pub chip: ChipVersion,
    /// The digital self-test.
    pub digital: DigitalSelfTest,
}

/// The chip's digital self-test outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigitalSelfTest {
    /// The FIFO held the datasheet's reference bytes.
    Passed,
    /// It did not; `output` is what it held.
    Failed {
        /// The 64 bytes read.
        output: Vec<u8>,
    },
    /// The chip version has no published reference (e.g. a clone).
    NoReference,
}

impl ReaderSelfTest {
    /// Whether the reader can be used: the self-test passed, or the chip
    /// answers but has no reference to compare with.
    pub fn passed(&self) -> bool {
        !matches!(self.digital, DigitalSelfTest::Failed { .. })
    }
}

impl fmt::Display for ReaderSelfTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.digital {
            DigitalSelfTest::Passed => write!(f, "{}: self-test passed", self.chip),
            DigitalSelfTest::Failed { .. } => write!(
                f,
                "{}: self-test FAILED — the reader chip is damaged, replace the reader",
                self.chip
            ),
            DigitalSelfTest::NoReference => write!(
                f,
                "{}: answers, no self-test reference for this version",
                self.chip
            ),
        }
    }
}
