//! The device configuration file (TOML): one section per device, with
//! Raspberry Pi 4 defaults, a `simulated` switch per device, and errors that
//! name the key and what to put there. Also the sentences that explain a
//! device that cannot be opened (missing node, missing group membership).
//!
//! Every key is optional; a missing key takes its default. The defaults, as
//! a file ([`DevicesConfig::default_toml`] prints this):
//!
//! ```toml
//! [reader]                          # MFRC522 on SPI0, CE0
//! simulated = false
//! spidev = "/dev/spidev0.0"
//! spi_speed_hz = 1000000
//! reset_chip = "/dev/gpiochip0"
//! reset_line = 25                   # BCM GPIO 25, header pin 22
//!
//! [keypad]
//! simulated = false                 # true: keys from stdin / the UI
//! backend = "cdev"                  # "cdev" (GPIO character device) or "rppal"
//! chip = "/dev/gpiochip0"
//! layout = "4x4"                    # or "4x3"
//! rows = [5, 6, 13, 19]             # line offsets, top row first
//! columns = [12, 16, 20, 21]        # left column first (3 for 4x3)
//! row_drive = "open-drain"          # or "push-pull" (with a diode per key)
//! debounce_ms = 10
//! scan_interval_ms = 2
//! settle_us = 5
//!
//! [printer]
//! simulated = false                 # true: receipts rendered to output_dir
//! port = "/dev/ttyS0"
//! baud = 9600
//! flow_control = "none"             # "none", "rts-cts" or "xon-xoff"
//! paper_width = 58                  # 58 (32 columns) or 80 (48 columns)
//! status_timeout_ms = 500
//! write_timeout_ms = 10000
//! font = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
//! output_dir = "/var/lib/till/receipts"
//!
//! [scanner]
//! simulated = false                 # true: scans from stdin
//! kind = "evdev"                    # "evdev" (keyboard wedge) or "serial"
//! path = "/dev/input/by-id/usb-scanner-event-kbd"
//! baud = 9600                       # serial scanners only
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::keypad::Layout;
use crate::printer::PaperWidth;

/// What loading the configuration can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the device configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not valid TOML.
    #[error("device configuration, line {line}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A key has a wrong value or is unknown.
    #[error("device configuration, {key}: {message}")]
    Key {
        /// Dotted key, e.g. `printer.baud`.
        key: String,
        /// What is wrong and what to put there.
        message: String,
    },
}

impl ConfigError {
    /// The dotted key the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Key { key, .. } => Some(key),
            _ => None,
        }
    }

    fn key_error(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Every device of the terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DevicesConfig {
    /// Contactless card reader.
    pub reader: ReaderConfig,
    /// PIN keypad.
    pub keypad: KeypadConfig,
    /// Receipt printer.
    pub printer: PrinterConfig,
    /// Barcode / magnetic stripe scanner.
    pub scanner: ScannerConfig,
}

/// The contactless reader (MFRC522 on SPI). Used by the reader module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReaderConfig {
    /// Use the simulated reader with virtual cards.
    pub simulated: bool,
    /// The spidev node.
    pub spidev: PathBuf,
    /// SPI clock in Hz (the MFRC522 takes up to 10 MHz).
    pub spi_speed_hz: u32,
    /// GPIO chip of the reset line.
    pub reset_chip: PathBuf,
    /// Line offset of the reset (NRSTPD) line.
    pub reset_line: u32,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            simulated: false,
            spidev: "/dev/spidev0.0".into(),
            spi_speed_hz: 1_000_000,
            reset_chip: "/dev/gpiochip0".into(),
            reset_line: 25,
        }
    }
}

/// Which GPIO library backs the keypad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeypadBackend {
    /// The Linux GPIO character device (any board; edge events).
    Cdev,
    /// rppal (Raspberry Pi only; needs the `rppal` cargo feature; polled).
    Rppal,
}

/// How the keypad drives a row it is not scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowDrive {
    /// Released rows float (pulled up through held keys only): safe when
    /// several keys in one column are held.
    OpenDrain,
    /// Released rows are driven high: for matrices with a diode per key.
    PushPull,
}

/// The PIN keypad matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeypadConfig {
    /// Use the simulated keypad (stdin / UI) instead of GPIO.
    pub simulated: bool,
    /// GPIO library.
    pub backend: KeypadBackend,
    /// GPIO chip of the matrix lines.
    pub chip: PathBuf,
    /// 4×4 or 4×3.
    pub layout: Layout,
    /// Row line offsets, top row first (4).
    pub rows: Vec<u32>,
    /// Column line offsets, left column first (4, or 3 for 4x3).
    pub columns: Vec<u32>,
    /// How released rows are driven.
    pub row_drive: RowDrive,
    /// Debounce time.
    pub debounce_ms: u64,
    /// Scan period while keys are held.
    pub scan_interval_ms: u64,
    /// Settling time between driving a row and reading the columns.
    pub settle_us: u64,
}

impl Default for KeypadConfig {
    fn default() -> Self {
        // BCM GPIOs clear of SPI0 (7–11), UART0 (14, 15) and I2C1 (2, 3).
        KeypadConfig {
            simulated: false,
            backend: KeypadBackend::Cdev,
            chip: "/dev/gpiochip0".into(),
            layout: Layout::Keys4x4,
            rows: vec![5, 6, 13, 19],
            columns: vec![12, 16, 20, 21],
            row_drive: RowDrive::OpenDrain,
            debounce_ms: 10,
            scan_interval_ms: 2,
            settle_us: 5,
        }
    }
}

impl KeypadConfig {
    /// The scan timing these settings describe.
    pub fn timing(&self) -> crate::keypad::Timing {
        crate::keypad::Timing {
            debounce: Duration::from_millis(self.debounce_ms),
            scan_interval: Duration::from_millis(self.scan_interval_ms.max(1)),
            settle: Duration::from_micros(self.settle_us),
        }
    }

    /// Checks that rows and columns fit the layout; the error names the key.
    pub fn check_matrix(&self) -> Result<(), String> {
        if self.rows.len() != self.layout.rows() {
            return Err(format!(
                "keypad.rows: {} lists {} line offsets; the layout needs {} (top row first)",
                self.layout_name(),
                self.rows.len(),
                self.layout.rows()
            ));
        }
        if self.columns.len() != self.layout.columns() {
            return Err(format!(
                "keypad.columns: layout {} needs {} column line offsets, found {} — list {} \
                 offsets or change keypad.layout",
                self.layout_name(),
                self.layout.columns(),
                self.columns.len(),
                self.layout.columns()
            ));
        }
        let mut all: Vec<u32> = self.rows.iter().chain(&self.columns).copied().collect();
        all.sort_unstable();
        if let Some(w) = all.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "keypad.rows/keypad.columns: line {} is listed twice; every row and column needs \
                 its own line",
                w[0]
            ));
        }
        Ok(())
    }

    fn layout_name(&self) -> &'static str {
        match self.layout {
            Layout::Keys4x4 => "4x4",
            Layout::Keys4x3 => "4x3",
        }
    }
}

/// Serial flow control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowControl {
    /// None: the printer's buffer must keep up (fine for short receipts at 9600 baud).
    None,
    /// Hardware RTS/CTS handshake.
    RtsCts,
    /// Software XON/XOFF.
    XonXoff,
}

/// The ESC/POS receipt printer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrinterConfig {
    /// Render receipts to `output_dir` instead of printing.
    pub simulated: bool,
    /// Serial port.
    pub port: PathBuf,
    /// Baud rate.
    pub baud: u32,
    /// Flow control.
    pub flow_control: FlowControl,
    /// Paper width in mm: 58 or 80.
    pub paper_width: PaperWidth,
    /// How long to wait for each status byte.
    pub status_timeout_ms: u64,
    /// How long a write may be held up by flow control.
    pub write_timeout_ms: u64,
    /// Font for PNG rendering in the simulator (CJK capable).
    pub font: PathBuf,
    /// Where the simulator writes receipts (.txt and .png).
    pub output_dir: PathBuf,
}

impl Default for PrinterConfig {
    fn default() -> Self {
        PrinterConfig {
            simulated: false,
            port: "/dev/ttyS0".into(),
            baud: 9600,
            flow_control: FlowControl::None,
            paper_width: PaperWidth::Mm58,
            status_timeout_ms: 500,
            write_timeout_ms: 10_000,
            font: "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc".into(),
            output_dir: "/var/lib/till/receipts".into(),
        }
    }
}

/// How the scanner is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScannerKind {
    /// A keyboard-wedge (USB HID keyboard) scanner or card swiper, via evdev.
    Evdev,
    /// A serial (or USB CDC-ACM) scanner sending a line per scan.
    Serial,
}

/// The barcode / QR / magnetic stripe scanner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScannerConfig {
    /// Read scans from stdin instead.
    pub simulated: bool,
    /// evdev or serial.
    pub kind: ScannerKind,
    /// `/dev/input/…` event device or serial port.
    pub path: PathBuf,
    /// Baud rate (serial scanners).
    pub baud: u32,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        ScannerConfig {
            simulated: false,
            kind: ScannerKind::Evdev,
            path: "/dev/input/by-id/usb-scanner-event-kbd".into(),
            baud: 9600,
        }
    }
}

const BAUDS: [u32; 8] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200];

/// An example value for each key, for error messages.
fn example(key: &str) -> &'static str {
    let last = key.rsplit('.').next().unwrap_or(key);
    match last {
        "simulated" => "true or false",
        "spidev" => "\"/dev/spidev0.0\"",
        "spi_speed_hz" => "a number of Hz such as 1000000",
        "reset_chip" | "chip" => "\"/dev/gpiochip0\"",
        "reset_line" => "a line offset such as 25",
        "backend" => "\"cdev\" or \"rppal\"",
        "layout" => "\"4x4\" or \"4x3\"",
        "rows" => "a list of 4 line offsets such as [5, 6, 13, 19]",
        "columns" => "a list of line offsets such as [12, 16, 20, 21] (3 for 4x3)",
        "row_drive" => "\"open-drain\" or \"push-pull\"",
        "debounce_ms" => "a number of milliseconds such as 10",
        "scan_interval_ms" => "a number of milliseconds such as 2",
        "settle_us" => "a number of microseconds such as 5",
        "port" => "\"/dev/ttyS0\" or \"/dev/ttyUSB0\"",
        "baud" => "one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200",
        "flow_control" => "\"none\", \"rts-cts\" or \"xon-xoff\"",
        "paper_width" => "58 or 80",
        "status_timeout_ms" | "write_timeout_ms" => "a number of milliseconds such as 500",
        "font" | "output_dir" => "a path in quotes",
        "kind" => "\"evdev\" or \"serial\"",
        "path" => "\"/dev/input/by-id/…-event-kbd\" or \"/dev/ttyACM0\"",
        _ => "see the documented defaults",
    }
}

impl DevicesConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Parses and checks configuration text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let line_of = |span: Option<std::ops::Range<usize>>| {
            span.map_or(1, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            })
        };
        let de = toml::de::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
            line: line_of(e.span()),
            message: e.message().to_string(),
        })?;
        let config: DevicesConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = line_of(inner.span());
            let message = inner.message().to_string();
            if message.starts_with("unknown field") {
                return ConfigError::key_error(
                    &key,
                    format!("{message} (line {line}); remove it or fix its spelling"),
                );
            }
            let hint = example(&key);
            ConfigError::key_error(&key, format!("{message} (line {line}); use {hint}"))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let k = &self.keypad;
        k.check_matrix().map_err(|m| {
            let (key, msg) = m.split_once(": ").unwrap_or(("keypad", &m));
            ConfigError::key_error(key, msg)
        })?;
        if !(1..=50).contains(&k.debounce_ms) {
            return Err(ConfigError::key_error(
                "keypad.debounce_ms",
                format!(
                    "{} ms is out of range; use 5 to 20 (a key is reported debounce_ms after \
                     it stops bouncing, and must be within 30 ms)",
                    k.debounce_ms
                ),
            ));
        }
        if !(1..=20).contains(&k.scan_interval_ms) {
            return Err(ConfigError::key_error(
                "keypad.scan_interval_ms",
                format!("{} ms is out of range; use 1 to 5", k.scan_interval_ms),
            ));
        }
        if k.settle_us > 10_000 {
            return Err(ConfigError::key_error(
                "keypad.settle_us",
                format!("{} µs is too long; use 1 to 100", k.settle_us),
            ));
        }
        for (key, baud) in [
            ("printer.baud", self.printer.baud),
            ("scanner.baud", self.scanner.baud),
        ] {
            if !BAUDS.contains(&baud) {
                return Err(ConfigError::key_error(
                    key,
                    format!("{baud} is not a standard rate; use {}", example("baud")),
                ));
            }
        }
        for (key, ms) in [
            ("printer.status_timeout_ms", self.printer.status_timeout_ms),
            ("printer.write_timeout_ms", self.printer.write_timeout_ms),
        ] {
            if ms == 0 {
                return Err(ConfigError::key_error(
                    key,
                    "0 ms would never wait; use 100 or more",
                ));
            }
        }
        if !(100_000..=10_000_000).contains(&self.reader.spi_speed_hz) {
            return Err(ConfigError::key_error(
                "reader.spi_speed_hz",
                format!(
                    "{} Hz is outside what the MFRC522 takes; use 100000 to 10000000",
                    self.reader.spi_speed_hz
                ),
            ));
        }
        Ok(())
    }

    /// The configuration as TOML (e.g. the defaults, to start a file from).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// The default configuration as TOML.
    pub fn default_toml() -> String {
        DevicesConfig::default().to_toml()
    }
}

/// Kinds of device node, for explaining why one cannot be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// `/dev/spidevB.C`.
    Spi,
    /// `/dev/gpiochipN`.
    Gpio,
    /// A serial port (`/dev/ttyS0`, `/dev/ttyUSB0`, …).
    Serial,
    /// An input event device (`/dev/input/…`).
    Input,
}

/// A sentence saying why `path` could not be opened and what to do about it.
pub fn explain_open_error(kind: DeviceKind, path: &Path, err: &io::Error) -> String {
    let p = path.display();
    let name = path.to_string_lossy();
    match err.kind() {
        io::ErrorKind::NotFound => match kind {
            DeviceKind::Spi => format!(
                "{p} missing — enable SPI: add dtparam=spi=on to /boot/firmware/config.txt and \
                 reboot (or set reader.spidev)"
            ),
            DeviceKind::Gpio => format!(
                "{p} missing — no GPIO character device there: list them with `ls /dev/gpiochip*` \
                 (`gpiodetect` names them) and set the chip in the configuration"
            ),
            DeviceKind::Serial if name.contains("USB") || name.contains("ACM") => format!(
                "{p} missing — plug in the device's USB cable and check `dmesg | tail` for its \
                 USB-serial adapter, or set the port in the configuration"
            ),
            DeviceKind::Serial => format!(
                "{p} missing — enable the UART: enable_uart=1 in /boot/firmware/config.txt (and \
                 remove console=serial0,115200 from cmdline.txt), then reboot; or set the port \
                 (a USB printer is /dev/ttyUSB0)"
            ),
            DeviceKind::Input => format!(
                "{p} missing — plug in the scanner and set scanner.path to its \
                 /dev/input/by-id/…-event-kbd link (see `ls -l /dev/input/by-id/`)"
            ),
        },
        io::ErrorKind::PermissionDenied => {
            let group = match kind {
                DeviceKind::Spi => "spi",
                DeviceKind::Gpio => "gpio",
                DeviceKind::Serial => "dialout",
                DeviceKind::Input => "input",
            };
            format!(
                "permission denied on {p} — add the user to the {group} group \
                 (sudo usermod -aG {group} $USER) and log in again"
            )
        }
        _ if err.raw_os_error() == Some(libc::EBUSY) => format!(
            "{p} is in use by another program — stop it (another till or tillctl?) and try again"
        ),
        _ => format!("cannot open {p}: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_round_trip_through_toml() {
        let text = DevicesConfig::default_toml();
        assert_eq!(
            DevicesConfig::from_toml(&text).unwrap(),
            DevicesConfig::default()
        );
        assert_eq!(
            DevicesConfig::from_toml("").unwrap(),
            DevicesConfig::default()
        );
    }
}
