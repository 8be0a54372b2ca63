//! Scanner: parsing of track 2 and payment codes, keyboard-wedge decoding
//! from synthetic key events, and a serial scanner over a pty.

use std::time::Duration;

use serialport::{SerialPort, TTYPort};
use till_hal::config::{ScannerConfig, ScannerKind};
use till_hal::scanner::{self, Error, PaymentCode, Scan, Wallet, WedgeDecoder, parse};

#[test]
fn track_2_from_a_swipe() {
    let Scan::Track2(t) = parse(";4761739001010119=25122011143804400000?").unwrap() else {
        panic!("not track 2");
    };
    assert_eq!(t.pan(), "4761739001010119");
    assert_eq!(t.expiry(), "2512");
    assert_eq!(t.service_code(), "201");
    assert_eq!(t.equivalent(), "4761739001010119=25122011143804400000");
    assert_eq!(format!("{t:?}"), "Track2Data(476173******0119)");
    // Track 1 in front on the same line, 'D' separator, LRC after '?'.
    let both = "%B4761739001010119^TEST/CARD^2512201?;4761739001010119D2512201?x";
    assert!(matches!(parse(both), Ok(Scan::Track2(t)) if t.expiry() == "2512"));
}

#[test]
fn payment_codes_by_length_and_prefix() {
    let code = |s: &str| match parse(s) {
        Ok(Scan::PaymentCode(PaymentCode { wallet, .. })) => Some(wallet),
        _ => None,
    };
    assert_eq!(code("134567890123456789"), Some(Wallet::WechatPay));
    assert_eq!(code("101234567890123456"), Some(Wallet::WechatPay));
    assert_eq!(code("2812345678901234"), Some(Wallet::Alipay));
    assert_eq!(code("301234567890123456789012"), Some(Wallet::Alipay));
    assert_eq!(code("6212345678901234567"), Some(Wallet::UnionPay));
    assert_eq!(code("  134567890123456789\r\n"), Some(Wallet::WechatPay));
}

#[test]
fn garbage_is_rejected_with_a_reason() {
    for bad in [
        "",
        "hello",
        "13456789012345678",    // WeChat prefix, 17 digits
        "1345678901234567890",  // 19 digits, prefix 13
        "3112345678901234",     // prefix 31
        "2512345678901",        // Alipay prefix, 13 digits
        "62123456789012345678", // UnionPay prefix, 20 digits
        "12345678901234567a",
        ";4761739001010118=25122011143804400000?", // Luhn fails
        ";4761739001010119=25132011143804400000?", // month 13
        ";4761739001010119=2512?",                 // no service code
        ";4761739001010119=25122011143804400000",  // no end sentinel
        ";4761739001010119 25122011143804400000?", // no separator
        ";47617390=25122011143804400000?",         // PAN too short
        ";4761739001010119=2512201114380440000000000000?", // over 37
        "%B4761739001010119^TEST/CARD^2512201?",   // track 1 only
    ] {
        match parse(bad) {
            Err(Error::Unrecognised(why)) => assert!(!why.is_empty()),
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
}

#[test]
fn a_wedge_scanner_types_lines_that_decode_back() {
    let mut d = WedgeDecoder::new();
    let mut lines = Vec::new();
    for text in [
        ";4761739001010119=25122011143804400000?",
        "134567890123456789",
        "%B^AZ/az?",
    ] {
        for (code, value) in WedgeDecoder::events_for(text) {
            lines.extend(d.key(code, value));
        }
    }
    assert_eq!(
        lines,
        vec![
            ";4761739001010119=25122011143804400000?",
            "134567890123456789",
            "%B^AZ/az?"
        ]
    );
    // Autorepeat and releases type nothing; Enter alone is no line.
    let enter = evdev::KeyCode::KEY_ENTER.code();
    let one = evdev::KeyCode::KEY_1.code();
    assert_eq!(d.key(one, 2), None);
    assert_eq!(d.key(one, 0), None);
    assert_eq!(d.key(enter, 1), None);
    // A device that never sends Enter cannot grow a line forever.
    for _ in 0..10_000 {
        d.key(one, 1);
    }
    assert_eq!(d.key(enter, 1), None);
    assert_eq!(d.key(one, 1), None);
    assert_eq!(d.key(enter, 1), Some("1".into()));
}

#[tokio::test]
async fn a_serial_scanner_over_a_pty() {
    let (mut master, slave) = TTYPort::pair().unwrap();
    let path = slave.name().unwrap();
    drop(slave);
    let config = ScannerConfig {
        kind: ScannerKind::Serial,
        path: path.into(),
        ..ScannerConfig::default()
    };
    let mut scanner = match scanner::open(&config) {
        Ok(scanner) => scanner,
        Err(e) if skip_under_qemu_user(&e) => return,
        Err(e) => panic!("open the scanner's pty: {e}"),
    };
    // Two scans in one write, one split across writes, CR LF endings.
    std::io::Write::write_all(
        &mut master,
        b"134567890123456789\r\nnot a code\r\n;47617390",
    )
    .unwrap();
    std::io::Write::write_all(&mut master, b"01010119=25122011143804400000?\r\n").unwrap();
    let a = tokio::time::timeout(Duration::from_secs(5), scanner.next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        a,
        Ok(Scan::PaymentCode(PaymentCode {
            wallet: Wallet::WechatPay,
            ..
        }))
    ));
    let b = tokio::time::timeout(Duration::from_secs(5), scanner.next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(b, Err(Error::Unrecognised(_))));
    let c = tokio::time::timeout(Duration::from_secs(5), scanner.next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(c, Ok(Scan::Track2(t)) if t.pan() == "4761739001010119"));
}

#[tokio::test]
async fn the_simulated_scanner() {
    let (mut scanner, injector) = scanner::simulated();
    assert!(injector.scan("2812345678901234").await);
    assert!(matches!(
        scanner.next().await,
        Some(Ok(Scan::PaymentCode(PaymentCode {
            wallet: Wallet::Alipay,
            ..
        })))
    ));
}

#[test]
fn a_missing_scanner_says_what_to_do() {
    let config = ScannerConfig {
        path: "/dev/input/by-id/nothing-event-kbd".into(),
        ..ScannerConfig::default()
    };
    let msg = scanner::self_test(&config).unwrap_err().to_string();
    assert!(
        msg.contains("missing") && msg.contains("plug in the scanner"),
        "{msg}"
    );
}

/// Whether `err` is qemu-user's missing `TCGETS2` ioctl, and we run under it
/// (as in `tests/printer.rs`: Debian 12's qemu-user cannot open serial
/// ports; `scripts/qemu-test` runs the serial driver on a real kernel).
fn skip_under_qemu_user(err: &dyn std::fmt::Display) -> bool {
    let under_qemu_user = std::env::var("TILL_RUNNER").is_ok_and(|r| r.contains("qemu-aarch64"));
    let skip = under_qemu_user && err.to_string().contains("Function not implemented");
    if skip {
        eprintln!(
            "skipped: qemu-user lacks the TCGETS2 ioctl serial ports are opened with ({err})"
        );
    }
    skip
}

#[test]
fn a_payment_code_never_shows_in_full() {
    let Ok(scan) = scanner::parse("134567890123456789") else {
        panic!("a WeChat Pay code");
    };
    let shown = format!("{scan:?}");
    assert!(!shown.contains("134567890123456789"), "{shown}");
    assert!(
        shown.contains("6789") && shown.contains("WechatPay"),
        "{shown}"
    );
}
