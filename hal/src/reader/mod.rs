//! Contactless card reader: an MFRC522 over SPI speaking ISO 14443-3/-4,
//! a register-level model of the chip for tests and simulation, and the
//! cards that can sit in its field.
//!
//! Layers, bottom up: [`mfrc522`] (the chip: registers, FIFO, timer, CRC
//! coprocessor, self-test), [`iso14443a`] (activation), [`iso_dep`] (the
//! ISO 14443-4 block protocol), [`Mfrc522Reader`] (the [`ContactlessReader`]
//! the rest of Till uses). [`LinuxReader::open`] puts it on `/dev/spidevB.C`;
//! [`SimulatedReader::simulated`] puts it on [`model`].

pub mod card;
mod contactless;
mod error;
pub mod iso14443a;
pub mod iso_dep;
mod linux;
pub mod mfrc522;
pub mod model;
mod pcd;
mod regs;
mod simulated;

pub use contactless::{
    CardInfo, CollisionPolicy, ContactlessReader, DigitalSelfTest, ReaderOptions, ReaderSelfTest,
};
pub use error::ReaderError;
pub use iso_dep::Ats;
pub use iso14443a::Wake;
pub use linux::{LinuxReader, LinuxReaderConfig};
pub use mfrc522::{BitRate, ChipVersion, RxGain};
pub use pcd::Mfrc522Reader;
pub use simulated::SimulatedReader;
pub mod virtual_emv;
