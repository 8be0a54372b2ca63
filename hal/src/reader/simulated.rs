//! Till's simulated reader: the real driver over the register model, with
//! virtual cards in the model's field. There is no second code path: what
//! the simulator does, the driver does on hardware.

use super::contactless::ReaderOptions;
use super::error::ReaderError;
use super::mfrc522::ChipVersion;
use super::model::{Mfrc522Model, ModelDelay, ModelResetPin, ModelSpi, VirtualCard};
use super::pcd::Mfrc522Reader;

/// The driver over the model.
pub type SimulatedReader = Mfrc522Reader<ModelSpi, ModelResetPin, ModelDelay>;

impl SimulatedReader {
    /// A modelled MFRC522 v2.0 with `cards` in its field, and the driver
    /// initialised on it. The model handle lets the caller add or remove
    /// cards and inject faults while the reader runs.
    pub fn simulated(
        cards: impl IntoIterator<Item = VirtualCard>,
        options: ReaderOptions,
    ) -> Result<(SimulatedReader, Mfrc522Model), ReaderError> {
        let model = Mfrc522Model::new(ChipVersion::V2);
        for card in cards {
            model.insert(card);
        }
        let reader = Mfrc522Reader::new(model.spi(), model.reset_pin(), model.delay(), options)?;
        Ok((reader, model))
    }
}
