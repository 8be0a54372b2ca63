//! The printer driver: what it sends, decoded back by the ESC/POS
//! interpreter, and how it behaves over a real pseudo-terminal with a
//! simulated printer on the other end answering status requests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serialport::{SerialPort, TTYPort};
use till_hal::config::FlowControl;
use till_hal::printer::decode::{Element, Interpreter, Line, Style, lines};
use till_hal::printer::escpos::{Align, Barcode, EncodeError, EscPos, QrEcc, status_request};
use till_hal::printer::receipt::{Copy, Receipt, layout, text_columns};
use till_hal::printer::sim::{ModelState, PrinterModel, SimulatedPrinter};
use till_hal::printer::{Error, PaperWidth, PrintJob, Printer, SerialLink};

fn style(align: Align, bold: bool, width: u8, height: u8) -> Style {
    Style {
        align,
        bold,
        width,
        height,
    }
}

#[test]
fn every_command_decodes_back() {
    let mut p = EscPos::new();
    p.align(Align::Center)
        .bold(true)
        .size(2, 3)
        .line("Hello")
        .align(Align::Right)
        .bold(false)
        .size(1, 1)
        .line("right")
        .code_page(19)
        .chinese(true)
        .line("中文")
        .chinese(false)
        .feed(4);
    p.qr(b"payload", 6, QrEcc::Q).unwrap();
    p.barcode(Barcode::Code128, "TILL-0001").unwrap();
    p.barcode(Barcode::Ean13, "690123456789").unwrap();
    p.barcode(Barcode::Code39, "ABC-12").unwrap();
    p.cut()
        .full_cut()
        .raw(&status_request(4))
        .align(Align::Left)
        .line("");
    let out = Interpreter::decode(p.as_bytes());
    assert_eq!(
        out,
        vec![
            Element::Init,
            Element::Line(Line {
                text: "Hello".into(),
                style: style(Align::Center, true, 2, 3)
            }),
            Element::Line(Line {
                text: "right".into(),
                style: style(Align::Right, false, 1, 1)
            }),
            Element::CodePage(19),
            Element::ChineseMode(true),
            Element::Line(Line {
                text: "中文".into(),
                style: style(Align::Right, false, 1, 1)
            }),
            Element::ChineseMode(false),
            Element::Feed(4),
            Element::Qr {
                data: b"payload".to_vec(),
                module: 6,
                ecc: Some(QrEcc::Q),
                align: Align::Right
            },
            Element::Barcode {
                m: 73,
                data: "{BTILL-0001".into()
            },
            Element::Barcode {
                m: 67,
                data: "690123456789".into()
            },
            Element::Barcode {
                m: 69,
                data: "ABC-12".into()
            },
            Element::Cut { partial: true },
            Element::Cut { partial: false },
            Element::StatusRequest(4),
            Element::Line(Line {
                text: String::new(),
                style: style(Align::Left, false, 1, 1)
            }),
        ]
    );
}

#[test]
fn text_cannot_carry_commands_and_bad_codes_are_refused() {
    let mut p = EscPos::new();
    p.line("a\x1bEb\x1dV\x00c\n");
    assert_eq!(lines(&Interpreter::decode(p.as_bytes())), vec!["a?Eb?V?c?"]);
    assert_eq!(p.qr(&[], 3, QrEcc::L).err(), Some(EncodeError::QrLength(0)));
    assert!(p.qr(&vec![b'x'; 7090], 3, QrEcc::L).is_err());
    assert!(p.barcode(Barcode::Ean13, "12345").is_err());
    assert!(p.barcode(Barcode::Code39, "lower").is_err());
    assert!(p.barcode(Barcode::Code128, "中").is_err());
}

#[test]
fn chinese_round_trips_through_gb18030() {
    // BMP CJK, a fullwidth sign, and a supplementary-plane character that
    // GB18030 encodes in four bytes.
    let text = "商户名称 ￥12.34 𠀀 €";
    let mut p = EscPos::new();
    p.line(text);
    let bytes = p.into_bytes();
    // The builder switched Chinese mode on by itself.
    assert_eq!(&bytes[2..4], &[0x1C, b'&']);
    // 商 is D2 CC in GB2312/GB18030.
    assert!(bytes.windows(2).any(|w| w == [0xC9, 0xCC]));
    assert_eq!(lines(&Interpreter::decode(&bytes)), vec![text]);
}

#[test]
fn a_qr_payload_with_status_request_bytes_inside_is_only_data() {
    let payload = [0x10, 0x04, 0x01, b'x', 0x0A, 0x1B, b'@'];
    let mut p = EscPos::new();
    p.qr(&payload, 4, QrEcc::H).unwrap();
    let mut model = PrinterModel::new();
    assert!(model.receive(p.as_bytes()).is_empty(), "no status answer");
    let out = Interpreter::decode(p.as_bytes());
    assert!(matches!(&out[1], Element::Qr { data, .. } if data == &payload));
}

fn check_receipt(width: PaperWidth) {
    let mut r = Receipt::sample();
    r.card_number = "6212345678901234".into(); // a careless caller: full PAN
    r.copy = Copy::Merchant;
    let bytes = layout(&r, width).unwrap();
    let out = Interpreter::decode(&bytes);
    let columns = width.columns();
    let text = lines(&out);
    for e in &out {
        if let Element::Line(l) = e {
            let used = text_columns(&l.text) * usize::from(l.style.width);
            assert!(
                used <= columns,
                "{:?} is {used} columns wide on {columns}",
                l.text
            );
        }
    }
    let first = out.iter().find_map(|e| match e {
        Element::Line(l) => Some(l.clone()),
        _ => None,
    });
    let first = first.unwrap();
    assert_eq!(first.text, "Till 咖啡店 Coffee");
    assert_eq!(first.style, style(Align::Center, true, 1, 2));
    let has = |needle: &str| text.iter().any(|l| l.contains(needle));
    assert!(has("商户存根 MERCHANT COPY"));
    assert!(has("TILL0001") && has("终端编号 TERMINAL ID"));
    assert!(has("621234******1234"), "{text:#?}");
    assert!(!text.iter().any(|l| l.contains("6212345678901234")));
    assert!(has("231121000123") && has("A1B2C3") && has("2026-11-21 14:05:09"));
    assert!(has("消费 SALE") && has("持卡人签名"));
    let amount = out
        .iter()
        .find_map(|e| match e {
            Element::Line(l) if l.text == "RMB 12.34" => Some(l.style),
            _ => None,
        })
        .expect("amount line");
    assert_eq!(amount, style(Align::Right, true, 2, 2));
    // A field that fits sits on one line, value flush right.
    let tid = text.iter().find(|l| l.contains("TILL0001")).unwrap();
    assert_eq!(text_columns(tid), columns);
    assert!(out.iter().any(|e| matches!(e,
        Element::Qr { data, ecc: Some(QrEcc::M), align: Align::Center, .. }
            if data == b"https://example.invalid/r/231121000123")));
    assert_eq!(out.last(), Some(&Element::Cut { partial: true }));
}

#[test]
fn the_receipt_on_58_mm_paper() {
    check_receipt(PaperWidth::Mm58);
}

#[test]
fn the_receipt_on_80_mm_paper() {
    check_receipt(PaperWidth::Mm80);
    // A long value that cannot share a line with its label goes below it.
    let mut r = Receipt::sample();
    r.date_time = "星期六 2026年11月21日 14时05分09秒 北京时间".into();
    let text = lines(&Interpreter::decode(&layout(&r, PaperWidth::Mm80).unwrap()));
    let i = text.iter().position(|l| l == "日期时间 DATE/TIME").unwrap();
    assert!(text[i + 1].starts_with("星期六"));
}

/// A printer at the far end of a pty: reads what the driver sends, feeds
/// the model, writes its answers back.
struct PtyPrinter {
    model: Arc<Mutex<PrinterModel>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    path: String,
}

impl PtyPrinter {
    /// `after_receipt` runs on the model after each receipt is cut.
    fn start(state: ModelState, after_receipt: fn(&mut PrinterModel)) -> PtyPrinter {
        let (mut master, slave) = TTYPort::pair().expect("pty pair");
        let path = slave.name().expect("pty slave name");
        // The driver opens the slave by its path, as it would /dev/ttyS0.
        drop(slave);
        let mut model = PrinterModel::new();
        model.state = state;
        let model = Arc::new(Mutex::new(model));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (model.clone(), stop.clone());
        master.set_timeout(Duration::from_millis(20)).unwrap();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !s.load(Ordering::SeqCst) {
                let n = match std::io::Read::read(&mut master, &mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                    // EIO while the slave is closed (between open attempts).
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let answer = {
                    let mut model = m.lock().unwrap();
                    let before = model.pages().len();
                    let answer = model.receive(&buf[..n]);
                    if model.pages().len() > before {
                        after_receipt(&mut model);
                    }
                    answer
                };
                if !answer.is_empty() {
                    let _ = std::io::Write::write_all(&mut master, &answer);
                }
            }
        });
        PtyPrinter {
            model,
            stop,
            thread: Some(thread),
            path,
        }
    }

    /// The printer on the pty's path; `None` only where the port cannot be
    /// opened under user-mode emulation (see [`skip_under_qemu_user`]).
    fn printer(&self) -> Option<Printer<SerialLink>> {
        let link = match SerialLink::open(
            self.path.as_ref(),
            9600,
            FlowControl::None,
            Duration::from_secs(2),
        ) {
            Ok(link) => link,
            Err(e) if skip_under_qemu_user(&e) => return None,
            Err(e) => panic!("open the pty by path: {e}"),
        };
        Some(Printer::new(
            link,
            PaperWidth::Mm58,
            Duration::from_millis(300),
        ))
    }

    fn set(&self, f: impl FnOnce(&mut ModelState)) {
        f(&mut self.model.lock().unwrap().state);
    }

    fn pages(&self) -> Vec<Vec<Element>> {
        self.model.lock().unwrap().pages().to_vec()
    }
}

impl Drop for PtyPrinter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn nothing(_: &mut PrinterModel) {}

#[test]
fn a_receipt_prints_over_a_pty_and_decodes_back() {
    let sim = PtyPrinter::start(ModelState::default(), nothing);
    let Some(mut printer) = sim.printer() else {
        return;
    };
    let status = printer.status().unwrap();
    assert!(status.online && !status.paper_out && !status.cover_open);
    let receipt = Receipt::sample();
    printer.print_receipt(&receipt).unwrap();
    assert!(printer.pending().is_empty());
    let pages = sim.pages();
    assert_eq!(pages.len(), 1);
    let expected: Vec<Element> = Interpreter::decode(&layout(&receipt, PaperWidth::Mm58).unwrap())
        .into_iter()
        .filter(|e| !matches!(e, Element::StatusRequest(_)))
        .collect();
    assert_eq!(pages[0], expected);
}

#[test]
fn paper_out_is_reported_and_the_receipt_kept_for_reprint() {
    let sim = PtyPrinter::start(
        ModelState {
            paper_out: true,
            ..ModelState::default()
        },
        nothing,
    );
    let Some(mut printer) = sim.printer() else {
        return;
    };
    let err = printer.print_receipt(&Receipt::sample()).unwrap_err();
    assert_eq!(err, Error::PaperOut);
    assert!(err.to_string().contains("load a new roll"));
    assert_eq!(printer.pending().len(), 1);
    assert!(sim.pages().is_empty());
    // Paper loaded: the kept receipt prints.
    sim.set(|s| s.paper_out = false);
    assert_eq!(printer.reprint_pending().unwrap(), 1);
    assert!(printer.pending().is_empty());
    assert_eq!(sim.pages().len(), 1);
}

#[test]
fn paper_running_out_during_a_receipt_keeps_it() {
    let sim = PtyPrinter::start(ModelState::default(), |m| m.state.paper_out = true);
    let Some(mut printer) = sim.printer() else {
        return;
    };
    assert_eq!(
        printer.print_receipt(&Receipt::sample()).unwrap_err(),
        Error::PaperOut
    );
    assert_eq!(printer.pending().len(), 1);
    assert_eq!(printer.pending()[0].title, Receipt::sample().title());
}

#[test]
fn offline_and_cover_open_are_reported() {
    let sim = PtyPrinter::start(
        ModelState {
            offline: true,
            ..ModelState::default()
        },
        nothing,
    );
    let Some(mut printer) = sim.printer() else {
        return;
    };
    assert!(matches!(printer.check_ready(), Err(Error::Offline(_))));
    sim.set(|s| {
        s.offline = false;
        s.cover_open = true;
    });
    assert_eq!(printer.check_ready().unwrap_err(), Error::CoverOpen);
    sim.set(|s| {
        s.cover_open = false;
        s.paper_near_end = true;
    });
    let status = printer.check_ready().unwrap();
    assert!(status.paper_near_end);
}

#[test]
fn a_silent_printer_times_out_with_what_to_check() {
    let sim = PtyPrinter::start(
        ModelState {
            silent: true,
            ..ModelState::default()
        },
        nothing,
    );
    let Some(mut printer) = sim.printer() else {
        return;
    };
    let started = std::time::Instant::now();
    let err = printer
        .print(PrintJob {
            title: "test".into(),
            bytes: b"\x1b@hello\n".to_vec(),
        })
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    match &err {
        Error::NoAnswer {
            port,
            waited_ms,
            baud,
        } => {
            assert_eq!(port, &sim.path);
            assert_eq!((*waited_ms, *baud), (300, 9600));
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("switched on") && msg.contains("baud rate"),
        "{msg}"
    );
    assert_eq!(printer.pending().len(), 1);
}

#[test]
fn a_non_status_answer_is_refused() {
    // A device that answers every byte with 0xFF (wrong baud rate, or not
    // a printer at all).
    let (mut master, slave) = TTYPort::pair().unwrap();
    let path = slave.name().unwrap();
    drop(slave);
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    master.set_timeout(Duration::from_millis(20)).unwrap();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while !s.load(Ordering::SeqCst) {
            if let Ok(n) = std::io::Read::read(&mut master, &mut buf)
                && n > 0
            {
                let _ = std::io::Write::write_all(&mut master, &vec![0xFF; n]);
            }
        }
    });
    let link = match SerialLink::open(
        path.as_ref(),
        9600,
        FlowControl::None,
        Duration::from_secs(1),
    ) {
        Ok(link) => link,
        Err(e) if skip_under_qemu_user(&e) => {
            stop.store(true, Ordering::SeqCst);
            let _ = t.join();
            return;
        }
        Err(e) => panic!("open the pty by path: {e}"),
    };
    let mut printer = Printer::new(link, PaperWidth::Mm80, Duration::from_millis(300));
    let err = printer.status().unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadStatus {
                request: 1,
                byte: 0xFF,
                ..
            }
        ),
        "{err:?}"
    );
    stop.store(true, Ordering::SeqCst);
    t.join().unwrap();
}

#[test]
fn a_missing_port_says_what_to_do() {
    let err = SerialLink::open(
        "/dev/ttyUSB97".as_ref(),
        9600,
        FlowControl::None,
        Duration::from_secs(1),
    )
    .err()
    .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("/dev/ttyUSB97 missing") && msg.contains("USB cable"),
        "{msg}"
    );
    let err = SerialLink::open(
        "/dev/ttyAMA9".as_ref(),
        9600,
        FlowControl::None,
        Duration::from_secs(1),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("enable_uart=1"), "{err}");
}

#[test]
fn the_simulated_printer_renders_text_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let config = till_hal::config::PrinterConfig {
        simulated: true,
        output_dir: dir.path().to_path_buf(),
        paper_width: PaperWidth::Mm58,
        ..Default::default()
    };
    assert!(
        config.font.exists(),
        "{} missing: run scripts/setup (fonts-wqy-microhei)",
        config.font.display()
    );
    let mut printer = till_hal::printer::open(&config).unwrap();
    printer.print_receipt(&Receipt::sample()).unwrap();
    let text = std::fs::read_to_string(dir.path().join("receipt-0001.txt")).unwrap();
    assert!(
        text.contains("终端编号 TERMINAL ID")
            && text.contains("[QR CODE]")
            && text.contains("https://example.invalid/r/"),
        "{text}"
    );
    assert!(text.lines().all(|l| text_columns(l) <= 32), "{text}");
    let png = std::fs::read(dir.path().join("receipt-0001.png")).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let reader = decoder.read_info().unwrap();
    assert_eq!(reader.info().width, 384);
    assert!(reader.info().height > 600);

    // The same simulator answers status like a printer.
    let mut sim = Printer::new(
        SimulatedPrinter::new(PaperWidth::Mm80),
        PaperWidth::Mm80,
        Duration::from_millis(10),
    );
    sim.link_mut().model.state.cover_open = true;
    assert_eq!(sim.check_ready().unwrap_err(), Error::CoverOpen);
}

/// Whether `err` is qemu-user's missing `TCGETS2` ioctl, and we run under it.
///
/// serialport configures ports with the termios2 ioctls, which Debian 12's
/// qemu-user (7.2, the runner `scripts/cross test` uses for the aarch64
/// tests) does not implement: opening any tty there fails with ENOSYS. The
/// serial driver is exercised on aarch64 by `scripts/qemu-test` instead, on
/// a real kernel and a real UART. Only under that runner (`TILL_RUNNER`,
/// set by `scripts/cross`) does ENOSYS skip a test; anywhere else it fails.
fn skip_under_qemu_user(err: &dyn std::fmt::Display) -> bool {
    let under_qemu_user = std::env::var("TILL_RUNNER").is_ok_and(|r| r.contains("qemu-aarch64"));
    let skip = under_qemu_user && err.to_string().contains("Function not implemented");
    if skip {
        eprintln!(
            "skipped: qemu-user lacks the TCGETS2 ioctl serial ports are opened with ({err}); \
             scripts/qemu-test covers the serial driver on aarch64"
        );
    }
    skip
}
