//! The reader's errors, worded for the person at the till: each says what
//! happened and what to do next.

use std::path::PathBuf;

use super::mfrc522;

/// Why a reader operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReaderError {
    /// No card answered within the time allowed, or no card is active.
    #[error("no card in the field — tap again")]
    NoCard,
    /// The card stopped answering in the middle of an exchange.
    #[error("card removed during the transaction — tap again and hold it still")]
    CardRemoved,
    /// More than one card answered the reader.
    #[error("two cards in the field — present one card")]
    MultipleCards,
    /// The card answered, but garbled, after every retry.
    #[error(
        "the card could not be read ({detail}) — tap again, holding the card flat and still on the reader"
    )]
    Unreadable {
        /// What went wrong on the last try (CRC error, collision, …).
        detail: String,
    },
    /// The card does not speak ISO 14443-4 (e.g. a MIFARE Classic or a
    /// transit tag): it cannot carry a payment application.
    #[error(
        "this card cannot pay contactless (no ISO 14443-4, SAK {sak:#04x}) — insert or swipe it, or use another card"
    )]
    NotIsoDep {
        /// The card's SAK.
        sak: u8,
    },
    /// The card broke the ISO 14443 protocol in a way retries cannot fix.
    #[error("the card does not follow the contactless protocol ({0}) — use another card")]
    CardProtocol(String),
    /// The reader chip itself failed (wiring, power, SPI).
    #[error("the card reader failed: {0}")]
    Chip(#[from] mfrc522::Error),
    /// The SPI device node does not exist: SPI is not enabled.
    #[error(
        "the card reader's SPI device {} does not exist — enable SPI: dtparam=spi=on in /boot/firmware/config.txt, then reboot", path.display()
    )]
    SpiMissing {
        /// The spidev path that was tried.
        path: PathBuf,
    },
    /// The SPI device exists but cannot be opened or configured.
    #[error("cannot use the card reader's SPI device {}: {source} — {hint}", path.display())]
    SpiOpen {
        /// The spidev path.
        path: PathBuf,
        /// What the kernel said.
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// The reset line could not be claimed through the GPIO character device.
    #[error(
        "cannot drive the card reader's reset line ({} line {line}): {detail} — check the reset GPIO in the device config and that no other program holds the line", chip.display()
    )]
    ResetGpio {
        /// The gpiochip device.
        chip: PathBuf,
        /// The line offset.
        line: u32,
        /// What gpio-cdev said.
        detail: String,
    },
}

impl ReaderError {
    /// Whether tapping the card again may succeed (as opposed to a broken
    /// reader or an unsuitable card).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ReaderError::NoCard
                | ReaderError::CardRemoved
                | ReaderError::MultipleCards
                | ReaderError::Unreadable { .. }
        )
    }
}
