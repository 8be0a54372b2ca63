//! The contactless reader as the terminal uses it: the configured reader
//! (an MFRC522 on SPI, or the same driver over the chip model with virtual
//! cards from the acquirer's card file) and reading a card through the EMV
//! kernel of `till-pay`. This is the one place both crates meet.

use std::time::Duration;

use till_hal::config::ReaderConfig;
use till_hal::reader::virtual_emv::bundled_cards;
use till_hal::reader::{
    BitRate, ContactlessReader, LinuxReader, LinuxReaderConfig, ReaderError, ReaderOptions,
    SimulatedReader,
};
use till_hal::selftest::{DeviceReport, Outcome};
use till_pay::emv::{
    ApduTransport, CardRead, EmvError, Kernel, KernelConfig, Transaction, TransportError,
};

/// Why a card could not be read, in words for the operator.
#[derive(Debug, thiserror::Error)]
pub enum CardReadError {
    /// The reader could not be opened or failed.
    #[error(transparent)]
    Reader(#[from] ReaderError),
    /// The card's EMV data could not be read.
    #[error("{0}")]
    Emv(#[from] EmvError),
    /// The simulated reader has no such virtual card.
    #[error("no virtual card named {name:?} in the card file; known: {known}")]
    NoVirtualCard {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: String,
    },
}

/// The reader's bit rate for payments: EMV contactless runs at 106 kbit/s.
fn emv_options() -> ReaderOptions {
    ReaderOptions {
        max_bit_rate: BitRate::Kbps106,
        ..ReaderOptions::default()
    }
}

/// Opens the configured reader. A simulated reader gets the virtual card
/// `virtual_card` (a name from the bundled card file) in its field.
pub fn open_reader(
    config: &ReaderConfig,
    virtual_card: &str,
) -> Result<Box<dyn ContactlessReader>, CardReadError> {
    if config.simulated {
        let cards = bundled_cards()
            .map_err(|e| CardReadError::Reader(ReaderError::CardProtocol(e.to_string())))?;
        let known: Vec<String> = cards.iter().map(|c| c.name.clone()).collect();
        let card = cards
            .into_iter()
            .find(|c| c.name == virtual_card)
            .ok_or_else(|| CardReadError::NoVirtualCard {
                name: virtual_card.to_string(),
                known: known.join(", "),
            })?;
        let (reader, _model) = SimulatedReader::simulated([card.into_model()], emv_options())?;
        return Ok(Box::new(reader));
    }
    let linux = LinuxReaderConfig {
        spidev: config.spidev.clone(),
        speed_hz: config.spi_speed_hz,
        reset_chip: config.reset_chip.clone(),
        reset_line: config.reset_line,
    };
    Ok(Box::new(LinuxReader::open(&linux, emv_options())?))
}

/// The reader's APDU exchange as the EMV kernel's transport.
pub struct ReaderTransport<'a> {
    reader: &'a mut dyn ContactlessReader,
}

impl<'a> ReaderTransport<'a> {
    /// Wraps an activated reader.
    pub fn new(reader: &'a mut dyn ContactlessReader) -> ReaderTransport<'a> {
        ReaderTransport { reader }
    }
}

impl ApduTransport for ReaderTransport<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.reader.transmit(command).map_err(|e| match e {
            ReaderError::CardRemoved | ReaderError::NoCard => TransportError::CardRemoved,
            ReaderError::Unreadable { .. } => TransportError::Timeout,
            other => TransportError::Reader(other.to_string()),
        })
    }
}

/// Waits up to `wait` for a card, reads it for `txn` and lets it go.
pub fn read_card(
    reader: &mut dyn ContactlessReader,
    txn: &Transaction,
    wait: Duration,
) -> Result<CardRead, CardReadError> {
    reader.wait_for_card(wait)?;
    let result = Kernel::new(KernelConfig::default()).read(ReaderTransport::new(reader), txn);
    // The card is done with either way; a failure to deselect changes nothing.
    let _ = reader.release();
    Ok(result?)
}

/// The reader's part of the power-on self-test.
pub fn reader_check(config: &ReaderConfig) -> DeviceReport {
    match open_reader(config, "") {
        Err(e) => DeviceReport::new("reader", Outcome::Failed, e.to_string()),
        Ok(mut reader) => match reader.self_test() {
            Ok(t) if t.passed() => DeviceReport::new("reader", Outcome::Ok, t.to_string()),
            Ok(t) => DeviceReport::new(
                "reader",
                Outcome::Failed,
                format!("{t}; replace the reader board"),
            ),
            Err(e) => DeviceReport::new("reader", Outcome::Failed, e.to_string()),
        },
    }
}

/// Waits this long for a card by default.
pub const CARD_WAIT: Duration = Duration::from_secs(30);
