//! The embedded-hal side of the model: the SPI device, the reset pin and
//! the delay the driver is given. Each locks the shared chip for the
//! duration of one call, as a real bus would serialise them.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{self, OutputPin};
use embedded_hal::spi::{self, Operation, SpiDevice};

use super::{Chip, SpiState};

fn lock(chip: &Mutex<Chip>) -> MutexGuard<'_, Chip> {
    chip.lock().unwrap_or_else(|e| e.into_inner())
}

/// The model's SPI device: every transaction is one chip-select period.
pub struct ModelSpi {
    chip: Arc<Mutex<Chip>>,
}

impl ModelSpi {
    pub(super) fn new(chip: Arc<Mutex<Chip>>) -> Self {
        ModelSpi { chip }
    }
}

impl spi::ErrorType for ModelSpi {
    type Error = Infallible;
}

impl SpiDevice for ModelSpi {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        let mut chip = lock(&self.chip);
        let mut state = SpiState::default();
        for operation in operations {
            match operation {
                Operation::Read(buf) => {
                    for b in buf.iter_mut() {
                        *b = chip.spi_byte(&mut state, 0x00);
                    }
                }
                Operation::Write(buf) => {
                    for &b in buf.iter() {
                        chip.spi_byte(&mut state, b);
                    }
                }
                Operation::Transfer(read, write) => {
                    for i in 0..read.len().max(write.len()) {
                        let miso = chip.spi_byte(&mut state, write.get(i).copied().unwrap_or(0));
                        if let Some(r) = read.get_mut(i) {
                            *r = miso;
                        }
                    }
                }
                Operation::TransferInPlace(buf) => {
                    for b in buf.iter_mut() {
                        *b = chip.spi_byte(&mut state, *b);
                    }
                }
                Operation::DelayNs(ns) => chip.advance(u64::from(*ns)),
            }
        }
        Ok(())
    }
}

/// The model's NRSTPD line: low holds the chip in hard power-down, the
/// rising edge resets it.
pub struct ModelResetPin {
    chip: Arc<Mutex<Chip>>,
}

impl ModelResetPin {
    pub(super) fn new(chip: Arc<Mutex<Chip>>) -> Self {
        ModelResetPin { chip }
    }
}

impl digital::ErrorType for ModelResetPin {
    type Error = Infallible;
}

impl OutputPin for ModelResetPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        lock(&self.chip).set_reset_pin(false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        lock(&self.chip).set_reset_pin(true);
        Ok(())
    }
}

/// A delay that moves the model's virtual clock and returns at once, so
/// tests run at CPU speed.
pub struct ModelDelay {
    chip: Arc<Mutex<Chip>>,
}

impl ModelDelay {
    pub(super) fn new(chip: Arc<Mutex<Chip>>) -> Self {
        ModelDelay { chip }
    }
}

impl DelayNs for ModelDelay {
    fn delay_ns(&mut self, ns: u32) {
        lock(&self.chip).advance(u64::from(ns));
    }
}
