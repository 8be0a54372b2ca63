//! The keypad over rppal's GPIO on a Raspberry Pi (cargo feature `rppal`).
//!
//! Rows are emulated open-drain: active = output low, released = input
//! (high impedance), so two keys held in one column never short a high
//! row to a low one. The columns use the SoC's internal pull-ups. rppal's
//! pins are driven through the embedded-hal traits and [`HalPins`], the
//! same code path a test's fake pins take; without kernel edge events here
//! the idle keypad is polled.

use embedded_hal::digital::{ErrorType, OutputPin};
use rppal::gpio::{Gpio, IoPin, Mode};

use super::{Error, HalPins, Result};
use crate::config::KeypadConfig;

/// A row line: low when active, high impedance when released.
pub struct OpenDrainRow(IoPin);

impl ErrorType for OpenDrainRow {
    type Error = core::convert::Infallible;
}

impl OutputPin for OpenDrainRow {
    fn set_low(&mut self) -> std::result::Result<(), Self::Error> {
        self.0.set_low();
        self.0.set_mode(Mode::Output);
        Ok(())
    }

    fn set_high(&mut self) -> std::result::Result<(), Self::Error> {
        self.0.set_mode(Mode::Input);
        Ok(())
    }
}

/// Takes the configured BCM GPIO numbers (keypad.rows/columns) from rppal.
pub(super) fn open(config: &KeypadConfig) -> Result<HalPins<OpenDrainRow, rppal::gpio::InputPin>> {
    config.check_matrix().map_err(Error::Config)?;
    let gpio = Gpio::new().map_err(|e| {
        Error::Open(format!(
            "rppal cannot open the Pi's GPIO ({e}): add the user to the gpio group \
             (sudo usermod -aG gpio $USER) and log in again"
        ))
    })?;
    let pin = |what: &'static str, n: u32| {
        u8::try_from(n)
            .map_err(|_| Error::Config(format!("keypad.{what}s: {n} is not a BCM GPIO number")))
            .and_then(|n| {
                gpio.get(n).map_err(|e| Error::Line {
                    what,
                    offset: u32::from(n),
                    chip: "rppal".into(),
                    message: e.to_string(),
                })
            })
    };
    let mut rows = Vec::new();
    for &n in &config.rows {
        let mut io = pin("row", n)?.into_io(Mode::Output);
        io.set_low();
        rows.push(OpenDrainRow(io));
    }
    let mut columns = Vec::new();
    for &n in &config.columns {
        columns.push(pin("column", n)?.into_input_pullup());
    }
    Ok(HalPins::new(rows, columns))
}
