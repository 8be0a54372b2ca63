//! The power-on self-test: each configured device is checked and answers
//! with a line for the boot screen; a failed part is named with what to do.
//!
//! The card reader's check belongs to the reader module: pass it to
//! [`run`] as a [`ReaderCheck`] (until then the reader is reported as not
//! checked).
//!
//! ```no_run
//! let config = till_hal::config::DevicesConfig::default();
//! let report = till_hal::selftest::run(&config, None);
//! println!("{}", serde_json::to_string_pretty(&report).unwrap());
//! ```

use serde::Serialize;

use crate::config::{DevicesConfig, ReaderConfig};

/// How a device fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Present and working.
    Ok,
    /// Works, with a warning (e.g. paper near end).
    Warning,
    /// Missing or failing: `detail` says what to do.
    Failed,
    /// The simulator is configured for this device.
    Simulated,
    /// Not checked (no check available).
    NotChecked,
}

/// One device's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceReport {
    /// `reader`, `keypad`, `printer` or `scanner`.
    pub device: &'static str,
    /// The outcome.
    pub outcome: Outcome,
    /// What was found, or what is wrong and how to fix it.
    pub detail: String,
    /// Device-specific facts (e.g. the printer's status bits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl DeviceReport {
    /// A report without extra data.
    pub fn new(device: &'static str, outcome: Outcome, detail: impl Into<String>) -> Self {
        DeviceReport {
            device,
            outcome,
            detail: detail.into(),
            data: None,
        }
    }
}

/// The whole self-test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelfTestReport {
    /// True when no device failed.
    pub ok: bool,
    /// One report per device, reader first.
    pub devices: Vec<DeviceReport>,
}

/// The reader module's self-test (chip version, digital self-test).
pub type ReaderCheck<'a> = &'a dyn Fn(&ReaderConfig) -> DeviceReport;

/// Checks every device the configuration names. Blocking; takes up to the
/// printer's status timeout four times when the printer is silent.
pub fn run(config: &DevicesConfig, reader: Option<ReaderCheck<'_>>) -> SelfTestReport {
    let reader_report = match reader {
        _ if config.reader.simulated => DeviceReport::new(
            "reader",
            Outcome::Simulated,
            "simulated reader with virtual cards",
        ),
        Some(check) => check(&config.reader),
        None => DeviceReport::new(
            "reader",
            Outcome::NotChecked,
            "the reader's self-test is provided by the reader module",
        ),
    };
    let devices = vec![
        reader_report,
        keypad(config),
        printer(config),
        scanner(config),
    ];
    SelfTestReport {
        ok: devices.iter().all(|d| d.outcome != Outcome::Failed),
        devices,
    }
}

fn keypad(config: &DevicesConfig) -> DeviceReport {
    if config.keypad.simulated {
        return DeviceReport::new(
            "keypad",
            Outcome::Simulated,
            "keys from standard input or the UI",
        );
    }
    match crate::keypad::self_test(&config.keypad) {
        Ok(s) => DeviceReport::new("keypad", Outcome::Ok, s),
        Err(e) => DeviceReport::new("keypad", Outcome::Failed, e.to_string()),
    }
}

fn printer(config: &DevicesConfig) -> DeviceReport {
    if config.printer.simulated {
        return DeviceReport::new(
            "printer",
            Outcome::Simulated,
            format!(
                "receipts rendered to {}",
                config.printer.output_dir.display()
            ),
        );
    }
    match crate::printer::self_test(&config.printer) {
        Ok(status) => {
            let data = serde_json::to_value(status).ok();
            let (outcome, detail) = match status.problem() {
                Some(e) => (Outcome::Failed, e.to_string()),
                None if status.paper_near_end => (
                    Outcome::Warning,
                    "paper near end — have a new roll ready".to_string(),
                ),
                None => (
                    Outcome::Ok,
                    format!("{}: online, paper loaded", config.printer.port.display()),
                ),
            };
            DeviceReport {
                device: "printer",
                outcome,
                detail,
                data,
            }
        }
        Err(e) => DeviceReport::new("printer", Outcome::Failed, e.to_string()),
    }
}

fn scanner(config: &DevicesConfig) -> DeviceReport {
    if config.scanner.simulated {
        return DeviceReport::new("scanner", Outcome::Simulated, "scans from standard input");
    }
    match crate::scanner::self_test(&config.scanner) {
        Ok(s) => DeviceReport::new("scanner", Outcome::Ok, s),
        Err(e) => DeviceReport::new("scanner", Outcome::Failed, e.to_string()),
    }
}
