//! Contactless card reader: an MFRC522 over SPI speaking ISO 14443-3/-4,
//! a register-level model of the chip for tests and simulation, and the
//! cards that can sit in its field.

pub mod card;
pub mod virtual_emv;
