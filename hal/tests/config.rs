//! The device configuration: defaults, and an error naming the key and the
//! fix for every kind of mistake.

use std::io;
use std::path::Path;

use till_hal::config::{DeviceKind, DevicesConfig, FlowControl, RowDrive, explain_open_error};
use till_hal::keypad::Layout;
use till_hal::printer::PaperWidth;

#[test]
fn raspberry_pi_4_defaults() {
    let c = DevicesConfig::default();
    assert_eq!(c.reader.spidev, Path::new("/dev/spidev0.0"));
    assert_eq!(
        (c.reader.spi_speed_hz, c.reader.reset_line),
        (1_000_000, 25)
    );
    assert_eq!(c.keypad.chip, Path::new("/dev/gpiochip0"));
    assert_eq!(c.keypad.layout, Layout::Keys4x4);
    assert_eq!(c.keypad.rows, [5, 6, 13, 19]);
    assert_eq!(c.keypad.columns, [12, 16, 20, 21]);
    assert_eq!(c.keypad.row_drive, RowDrive::OpenDrain);
    assert_eq!(c.printer.port, Path::new("/dev/ttyS0"));
    assert_eq!(
        (c.printer.baud, c.printer.flow_control),
        (9600, FlowControl::None)
    );
    assert_eq!(c.printer.paper_width, PaperWidth::Mm58);
    assert!(
        !c.reader.simulated && !c.keypad.simulated && !c.printer.simulated && !c.scanner.simulated
    );
    assert!(c.validate().is_ok());
}

#[test]
fn a_partial_file_overrides_only_its_keys() {
    let c = DevicesConfig::from_toml(
        r#"
        [keypad]
        layout = "4x3"
        columns = [12, 16, 20]
        [printer]
        simulated = true
        paper_width = 80
        flow_control = "rts-cts"
        "#,
    )
    .unwrap();
    assert_eq!(c.keypad.layout, Layout::Keys4x3);
    assert_eq!(c.keypad.rows, [5, 6, 13, 19]);
    assert_eq!(c.printer.paper_width, PaperWidth::Mm80);
    assert_eq!(c.printer.flow_control, FlowControl::RtsCts);
    assert!(c.printer.simulated && !c.keypad.simulated);
}

/// The error for `text` names `key` and says something containing `fix`.
fn fails(text: &str, key: &str, fix: &str) {
    let err = DevicesConfig::from_toml(text).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(key), "{text:?}: {msg:?} does not name {key}");
    assert!(msg.contains(fix), "{text:?}: {msg:?} does not say {fix:?}");
}

#[test]
fn every_error_names_the_key_and_the_fix() {
    fails("[printer]\nbaud = \"fast\"", "printer.baud", "9600");
    fails("[printer]\nbaud = 12345", "printer.baud", "9600");
    fails(
        "[printer]\nbaudrate = 9600",
        "printer.baudrate",
        "remove it or fix its spelling",
    );
    fails(
        "[printer]\npaper_width = 76",
        "printer.paper_width",
        "58 or 80",
    );
    fails(
        "[printer]\nflow_control = \"hardware\"",
        "printer.flow_control",
        "\"rts-cts\"",
    );
    fails(
        "[printer]\nstatus_timeout_ms = 0",
        "printer.status_timeout_ms",
        "100 or more",
    );
    fails(
        "[keypad]\nlayout = \"3x4\"",
        "keypad.layout",
        "\"4x4\" or \"4x3\"",
    );
    fails("[keypad]\nrows = [1, 2, 3]", "keypad.rows", "needs 4");
    fails(
        "[keypad]\nlayout = \"4x3\"",
        "keypad.columns",
        "needs 3 column line offsets",
    );
    fails(
        "[keypad]\ncolumns = [5, 16, 20, 21]",
        "keypad.rows/keypad.columns",
        "line 5 is listed twice",
    );
    fails(
        "[keypad]\nrows = \"5,6\"",
        "keypad.rows",
        "a list of 4 line offsets",
    );
    fails(
        "[keypad]\ndebounce_ms = 80",
        "keypad.debounce_ms",
        "use 5 to 20",
    );
    fails(
        "[keypad]\nscan_interval_ms = 0",
        "keypad.scan_interval_ms",
        "use 1 to 5",
    );
    fails(
        "[keypad]\nsettle_us = 50000",
        "keypad.settle_us",
        "use 1 to 100",
    );
    fails(
        "[keypad]\nrow_drive = \"strong\"",
        "keypad.row_drive",
        "\"open-drain\"",
    );
    fails(
        "[keypad]\nbackend = \"wiringpi\"",
        "keypad.backend",
        "\"cdev\" or \"rppal\"",
    );
    fails(
        "[keypad]\nsimulated = \"yes\"",
        "keypad.simulated",
        "true or false",
    );
    fails(
        "[reader]\nspi_speed_hz = 50000000",
        "reader.spi_speed_hz",
        "100000 to 10000000",
    );
    fails(
        "[scanner]\nkind = \"bluetooth\"",
        "scanner.kind",
        "\"evdev\" or \"serial\"",
    );
    fails("[scanner]\nbaud = 7", "scanner.baud", "9600");
    fails(
        "[display]\nx = 1",
        "display",
        "expected one of `reader`, `keypad`, `printer`, `scanner`",
    );
    let err = DevicesConfig::from_toml("[printer\nbaud = 1").unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    let err = DevicesConfig::from_toml("\n\n[printer]\nbaud = \"x\"").unwrap_err();
    assert!(err.to_string().contains("line 4"), "{err}");
    let err = DevicesConfig::load(Path::new("/nonexistent/devices.toml")).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/devices.toml"),
        "{err}"
    );
}

#[test]
fn missing_devices_name_the_fix() {
    let missing = io::Error::from(io::ErrorKind::NotFound);
    let denied = io::Error::from(io::ErrorKind::PermissionDenied);
    let busy = io::Error::from_raw_os_error(libc_ebusy());
    let cases = [
        (
            DeviceKind::Spi,
            "/dev/spidev0.0",
            &missing,
            "dtparam=spi=on to /boot/firmware/config.txt",
        ),
        (
            DeviceKind::Gpio,
            "/dev/gpiochip0",
            &missing,
            "ls /dev/gpiochip*",
        ),
        (DeviceKind::Serial, "/dev/ttyS0", &missing, "enable_uart=1"),
        (DeviceKind::Serial, "/dev/ttyUSB0", &missing, "USB cable"),
        (
            DeviceKind::Input,
            "/dev/input/event3",
            &missing,
            "plug in the scanner",
        ),
        (DeviceKind::Serial, "/dev/ttyS0", &denied, "dialout group"),
        (DeviceKind::Gpio, "/dev/gpiochip0", &denied, "gpio group"),
        (DeviceKind::Spi, "/dev/spidev0.0", &denied, "spi group"),
        (
            DeviceKind::Input,
            "/dev/input/event3",
            &denied,
            "input group",
        ),
        (
            DeviceKind::Serial,
            "/dev/ttyS0",
            &busy,
            "in use by another program",
        ),
    ];
    for (kind, path, err, fix) in cases {
        let msg = explain_open_error(kind, Path::new(path), err);
        assert!(
            msg.contains(path) && msg.contains(fix),
            "{kind:?} {path}: {msg}"
        );
    }
}

fn libc_ebusy() -> i32 {
    16
}

#[test]
fn a_missing_keypad_chip_says_what_to_do() {
    let mut c = DevicesConfig::default();
    c.keypad.chip = "/dev/gpiochip97".into();
    let msg = till_hal::keypad::self_test(&c.keypad)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("/dev/gpiochip97 missing"), "{msg}");
}

#[test]
fn the_self_test_reports_every_device_and_simulators() {
    let mut c = DevicesConfig::default();
    c.keypad.chip = "/dev/gpiochip97".into();
    c.printer.simulated = true;
    c.scanner.simulated = true;
    c.reader.simulated = true;
    let report = till_hal::selftest::run(&c, None);
    assert!(!report.ok);
    let json = serde_json::to_value(&report).unwrap();
    let devices: Vec<(&str, &str)> = json["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["device"].as_str().unwrap(),
                d["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        devices,
        [
            ("reader", "simulated"),
            ("keypad", "failed"),
            ("printer", "simulated"),
            ("scanner", "simulated")
        ]
    );
    c.keypad.simulated = true;
    c.reader.simulated = false;
    let reader = |_: &till_hal::config::ReaderConfig| {
        till_hal::selftest::DeviceReport::new(
            "reader",
            till_hal::selftest::Outcome::Ok,
            "MFRC522 v2.0",
        )
    };
    let report = till_hal::selftest::run(&c, Some(&reader));
    assert!(report.ok);
    assert_eq!(report.devices[0].detail, "MFRC522 v2.0");
}
