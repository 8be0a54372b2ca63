//! The host side of the QEMU harness's printer check (`scripts/qemu-test`).
//!
//! ```text
//! qemu_receipt               the bytes the guest's receipt_to_the_uart test sends,
//!                            to stdout
//! qemu_receipt --check FILE  compare FILE (what the guest UART sent) with them;
//!                            exit 0 when equal, 1 with the first difference,
//!                            both sides decoded as ESC/POS, when not
//! ```
//!
//! The bytes are `layout(&Receipt::sample(), PaperWidth::Mm58)`, exactly
//! what `hal/tests/qemu_guest.rs` writes.

use std::io::Write;
use std::process::ExitCode;

use till_hal::printer::PaperWidth;
use till_hal::printer::decode::{Element, Interpreter};
use till_hal::printer::receipt::{Receipt, layout};

fn expected() -> Vec<u8> {
    layout(&Receipt::sample(), PaperWidth::Mm58).expect("lay out the sample receipt")
}

fn hex_around(bytes: &[u8], at: usize) -> String {
    let start = at.saturating_sub(8);
    let end = (at + 8).min(bytes.len());
    bytes[start..end]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if start + i == at {
                format!("[{b:02x}]")
            } else {
                format!("{b:02x}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(e: Option<&Element>) -> String {
    match e {
        Some(e) => format!("{e:?}"),
        None => "(end of stream)".into(),
    }
}

fn check(path: &str) -> ExitCode {
    let got = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("qemu_receipt: cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let want = expected();
    if got == want {
        let lines = till_hal::printer::decode::lines(&Interpreter::decode(&got)).len();
        println!(
            "qemu_receipt: {path}: {} bytes, identical to the 58 mm sample receipt ({lines} lines)",
            got.len()
        );
        return ExitCode::SUCCESS;
    }
    let at = got
        .iter()
        .zip(&want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    println!(
        "qemu_receipt: {path} differs from the 58 mm sample receipt: {} bytes received, {} expected, \
         first difference at offset {at} (0x{at:x})",
        got.len(),
        want.len()
    );
    println!("  received: {}", hex_around(&got, at));
    println!("  expected: {}", hex_around(&want, at));
    let (g, w) = (Interpreter::decode(&got), Interpreter::decode(&want));
    let first = (0..g.len().max(w.len()))
        .find(|&i| g.get(i) != w.get(i))
        .unwrap_or(0);
    println!(
        "  decoded: {} elements received, {} expected; first different element #{first}:",
        g.len(),
        w.len()
    );
    println!("    received: {}", describe(g.get(first)));
    println!("    expected: {}", describe(w.get(first)));
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(&expected()).and_then(|()| out.flush()) {
                eprintln!("qemu_receipt: writing to stdout: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        [flag, path] if flag == "--check" => check(path),
        _ => {
            eprintln!("usage: qemu_receipt [--check FILE]");
            ExitCode::from(2)
        }
    }
}
