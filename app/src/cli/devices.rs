//! `tillctl devices self-test` and `tillctl print test`: the field
//! engineer's checks of the terminal's devices (till-hal).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use till_hal::config::{DevicesConfig, FlowControl};
use till_hal::printer::receipt::Receipt;
use till_hal::printer::{PaperWidth, Printer, SerialLink};

use super::{Done, Failure};

/// Default location of the device configuration on a terminal.
const DEFAULT_CONFIG: &str = "/etc/till/devices.toml";

#[derive(Subcommand)]
pub(crate) enum DevicesCommand {
    /// Check every configured device (as at power-on) and print a JSON result per device.
    SelfTest {
        /// Device configuration (TOML). Without it /etc/till/devices.toml
        /// is read when present, otherwise the Raspberry Pi 4 defaults apply.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the default device configuration (a starting point for the file).
    DefaultConfig,
}

#[derive(Subcommand)]
pub(crate) enum PrintCommand {
    /// Print a test receipt (Chinese and English text, a QR code) on a serial ESC/POS printer.
    Test(PrintTestArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Flow {
    None,
    RtsCts,
    XonXoff,
}

#[derive(Args)]
pub(crate) struct PrintTestArgs {
    /// Serial port of the printer, e.g. /dev/ttyS0 or /dev/ttyUSB0.
    #[arg(long)]
    port: PathBuf,
    /// Baud rate.
    #[arg(long, default_value_t = 9600)]
    baud: u32,
    /// Paper width in mm.
    #[arg(long, default_value_t = 58, value_parser = parse_width)]
    width: u32,
    /// Flow control.
    #[arg(long, value_enum, default_value = "none")]
    flow_control: Flow,
    /// How long to wait for each status byte, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    status_timeout_ms: u64,
}

fn parse_width(s: &str) -> Result<u32, String> {
    match s {
        "58" => Ok(58),
        "80" => Ok(80),
        _ => Err("paper width is 58 or 80 (mm)".into()),
    }
}

pub(crate) fn run_devices(command: DevicesCommand) -> Result<Done, Failure> {
    match command {
        DevicesCommand::SelfTest { config } => {
            let config = load_config(config)?;
            let report = till_hal::selftest::run(&config, Some(&crate::card::reader_check));
            let value = serde_json::to_value(&report)
                .map_err(|e| Failure::new("internal", e.to_string()))?;
            if report.ok {
                Ok(Done::Json(value))
            } else {
                // The JSON names each failed device and the fix; exit 1 so
                // scripts notice.
                let failed: Vec<&str> = report
                    .devices
                    .iter()
                    .filter(|d| d.outcome == till_hal::selftest::Outcome::Failed)
                    .map(|d| d.device)
                    .collect();
                Ok(Done::Failed(
                    value,
                    format!("self-test failed for: {}", failed.join(", ")),
                ))
            }
        }
        DevicesCommand::DefaultConfig => Ok(Done::Text(DevicesConfig::default_toml())),
    }
}

pub(crate) fn load_config(path: Option<PathBuf>) -> Result<DevicesConfig, Failure> {
    let path = match path {
        Some(p) => p,
        None if std::path::Path::new(DEFAULT_CONFIG).exists() => DEFAULT_CONFIG.into(),
        None => return Ok(DevicesConfig::default()),
    };
    DevicesConfig::load(&path).map_err(|e| Failure::new("config", e.to_string()))
}

pub(crate) fn run_print(command: PrintCommand) -> Result<Done, Failure> {
    let PrintCommand::Test(args) = command;
    let width = PaperWidth::try_from(args.width).map_err(|e| Failure::new("usage", e))?;
    let flow = match args.flow_control {
        Flow::None => FlowControl::None,
        Flow::RtsCts => FlowControl::RtsCts,
        Flow::XonXoff => FlowControl::XonXoff,
    };
    let printer_failure = |e: till_hal::printer::Error| Failure::new("printer", e.to_string());
    let link = SerialLink::open(&args.port, args.baud, flow, Duration::from_secs(10))
        .map_err(printer_failure)?;
    let mut printer = Printer::new(link, width, Duration::from_millis(args.status_timeout_ms));
    let receipt = Receipt::sample();
    printer.print_receipt(&receipt).map_err(printer_failure)?;
    let status = printer.status().map_err(printer_failure)?;
    Ok(Done::Json(json!({
        "printed": true,
        "port": args.port,
        "baud": args.baud,
        "width_mm": args.width,
        "columns": width.columns(),
        "status": status,
    })))
}
