//! The reader on a Linux board: the MFRC522 on a spidev device, its reset
//! line through the GPIO character device. The only part of the reader that
//! knows it runs on Linux.

use std::io::ErrorKind;
use std::path::PathBuf;

use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
use linux_embedded_hal::{CdevPin, Delay, SpidevDevice};

use super::contactless::ReaderOptions;
use super::error::ReaderError;
use super::pcd::Mfrc522Reader;

/// The reader as wired to a Linux board.
pub type LinuxReader = Mfrc522Reader<SpidevDevice, CdevPin, Delay>;

/// Where the MFRC522 is wired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxReaderConfig {
    /// The spidev node, `/dev/spidevB.C` (bus B, chip select C).
    pub spidev: PathBuf,
    /// SPI clock; the MFRC522 takes up to 10 MHz, long wires want less.
    pub speed_hz: u32,
    /// The gpiochip holding the reset line.
    pub reset_chip: PathBuf,
    /// The reset (NRSTPD) line offset on that chip.
    pub reset_line: u32,
}

impl Default for LinuxReaderConfig {
    /// The usual RC522 wiring on a Raspberry Pi 4: SPI0 CE0, RST on GPIO 25.
    fn default() -> Self {
        LinuxReaderConfig {
            spidev: PathBuf::from("/dev/spidev0.0"),
            speed_hz: 4_000_000,
            reset_chip: PathBuf::from("/dev/gpiochip0"),
            reset_line: 25,
        }
    }
}

impl LinuxReader {
    /// Opens the spidev device (SPI mode 0, 8-bit words, the given speed)
    /// and claims the reset line, then initialises the chip.
    ///
    /// ```no_run
    /// use till_hal::reader::{LinuxReader, LinuxReaderConfig, ReaderOptions};
    /// let reader = LinuxReader::open(&LinuxReaderConfig::default(), ReaderOptions::default())?;
    /// # Ok::<(), till_hal::reader::ReaderError>(())
    /// ```
    pub fn open(config: &LinuxReaderConfig, options: ReaderOptions) -> Result<Self, ReaderError> {
        let spi = open_spi(config)?;
        let reset = open_reset(config)?;
        Mfrc522Reader::new(spi, reset, Delay, options)
    }
}

fn open_spi(config: &LinuxReaderConfig) -> Result<SpidevDevice, ReaderError> {
    let path = &config.spidev;
    let spi_error = |source: std::io::Error| {
        let hint = match source.kind() {
            ErrorKind::NotFound => {
                return ReaderError::SpiMissing { path: path.clone() };
            }
            ErrorKind::PermissionDenied => "run as root or add the user to the spi group",
            _ => "check the SPI device tree overlay and the reader's wiring",
        };
        ReaderError::SpiOpen {
            path: path.clone(),
            source,
            hint,
        }
    };
    if !path.exists() {
        return Err(ReaderError::SpiMissing { path: path.clone() });
    }
    let mut spi = SpidevDevice::open(path).map_err(|e| spi_error(clone_io(e.inner())))?;
    let options = SpidevOptions::new()
        .bits_per_word(8)
        .max_speed_hz(config.speed_hz)
        .mode(SpiModeFlags::SPI_MODE_0)
        .build();
    spi.configure(&options).map_err(spi_error)?;
    Ok(spi)
}

fn clone_io(e: &std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), e.to_string())
}

fn open_reset(config: &LinuxReaderConfig) -> Result<CdevPin, ReaderError> {
    let gpio_error = |detail: String| ReaderError::ResetGpio {
        chip: config.reset_chip.clone(),
        line: config.reset_line,
        detail,
    };
    let mut chip = Chip::new(&config.reset_chip).map_err(|e| gpio_error(e.to_string()))?;
    let line = chip
        .get_line(config.reset_line)
        .map_err(|e| gpio_error(e.to_string()))?;
    // Requested high: the chip runs while the driver's init resets it.
    let handle = line
        .request(LineRequestFlags::OUTPUT, 1, "till-reader-reset")
        .map_err(|e| gpio_error(e.to_string()))?;
    CdevPin::new(handle).map_err(|e| gpio_error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_spidev_names_the_fix() {
        let config = LinuxReaderConfig {
            spidev: PathBuf::from("/dev/spidev-does-not-exist.9"),
            ..LinuxReaderConfig::default()
        };
        let Err(err) = LinuxReader::open(&config, ReaderOptions::default()) else {
            panic!("opened a spidev that does not exist");
        };
        let message = err.to_string();
        assert!(message.contains("dtparam=spi=on"), "{message}");
        assert!(message.contains("/boot/firmware/config.txt"), "{message}");
    }
}
