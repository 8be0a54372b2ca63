//! Guest-side tests for the QEMU harness: the keypad driver on a real
//! kernel GPIO path (`gpio-sim`) and the printer driver on a real 16550
//! UART. They run inside an arm64 guest booted by the harness and skip
//! everywhere else.
//!
//! # Contract with the harness
//!
//! The harness boots `qemu-system-aarch64 -M virt` with the cross-built
//! test binary of this file (`target/…/deps/qemu_guest-*`) and runs it with:
//!
//! | variable | meaning | example |
//! |---|---|---|
//! | `TILL_QEMU_GUEST` | must be `1`, or every test skips with a message | `1` |
//! | `TILL_GPIO_CHIP` | the gpio-sim chip: a `/dev/gpiochipN` path, or its label | `/dev/gpiochip0` or `gpio-sim.0-node0` |
//! | `TILL_GPIO_SIM_DIR` | that chip's sysfs directory, holding `sim_gpioK/pull` and `sim_gpioK/value` | `/sys/devices/platform/gpio-sim.0/gpiochip0` |
//! | `TILL_KEYPAD_ROWS` | row line offsets (optional) | `0,1,2,3` (default) |
//! | `TILL_KEYPAD_COLUMNS` | column line offsets (optional) | `4,5,6,7` (default) |
//! | `TILL_GPIO_ROW_DRIVE` | `push-pull` (default) or `open-drain` | |
//! | `TILL_PRINTER_TTY` | the guest UART whose output the host captures | `/dev/ttyS0` |
//!
//! **Keypad.** The gpio-sim bank needs at least 8 lines (4 rows, 4
//! columns) and no hogs on them. The test acts as the key matrix from the
//! simulated side: it writes `pull-up` to every row's `pull` (so a released
//! open-drain row reads high), then, while a key (row r, column c) is
//! "held", keeps column c's `pull` at `pull-down` whenever row r's `value`
//! reads 0 (driven low) and `pull-up` otherwise. It presses all 16 keys of
//! the 4×4 layout in order and expects each key's Pressed and Released
//! events, and first runs the keypad self-test on the chip. The driver
//! uses a 2 ms settle time so the sysfs-driven side can follow its scan.
//!
//! **Printer.** The test writes the 58 mm sample receipt
//! (`till_hal::printer::receipt::layout(&Receipt::sample(), PaperWidth::Mm58)`)
//! to `TILL_PRINTER_TTY` at 115200 baud without flow control and without
//! status requests (a `-chardev file` cannot answer them; the pty tests
//! cover status handling). The harness then checks that the host file's
//! bytes equal that layout exactly, and decodes them with
//! `till_hal::printer::decode::Interpreter` for a readable failure. The
//! bytes are preceded by nothing else written to that port.
//!
//! Each test prints `qemu-guest: <name> ok` on success.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use till_hal::config::{FlowControl, KeypadConfig, RowDrive};
use till_hal::keypad::{KeyAction, Layout};
use till_hal::printer::receipt::{Receipt, layout};
use till_hal::printer::{PaperWidth, PrinterLink, SerialLink};

fn in_guest(test: &str) -> bool {
    if std::env::var("TILL_QEMU_GUEST").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("qemu-guest: {test} skipped — runs only inside the QEMU harness (TILL_QEMU_GUEST=1)");
    false
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set by the QEMU harness"))
}

fn offsets(name: &str, default: &[u32]) -> Vec<u32> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: bad offset {s:?}"))
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}

/// A chip path, from a path or a label.
fn chip_path(spec: &str) -> PathBuf {
    if spec.starts_with('/') {
        return spec.into();
    }
    for entry in std::fs::read_dir("/dev").expect("/dev").flatten() {
        let path = entry.path();
        let is_chip = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("gpiochip"));
        if is_chip
            && let Ok(chip) = gpio_cdev::Chip::new(&path)
            && chip.label() == spec
        {
            return path;
        }
    }
    panic!("no /dev/gpiochip* labelled {spec:?}");
}

fn write_attr(path: &Path, value: &str) {
    std::fs::write(path, value)
        .unwrap_or_else(|e| panic!("writing {value} to {}: {e}", path.display()));
}

/// The key matrix, from the simulated side of gpio-sim.
struct SimulatedSide {
    held: Arc<Mutex<Option<(usize, usize)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimulatedSide {
    fn start(dir: PathBuf, rows: Vec<u32>, columns: Vec<u32>) -> Self {
        for &r in &rows {
            write_attr(&dir.join(format!("sim_gpio{r}/pull")), "pull-up");
        }
        for &c in &columns {
            write_attr(&dir.join(format!("sim_gpio{c}/pull")), "pull-up");
        }
        let held = Arc::new(Mutex::new(None::<(usize, usize)>));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (held.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut low = vec![false; columns.len()];
            while !s.load(Ordering::SeqCst) {
                let key = *h.lock().unwrap();
                let mut want = vec![false; columns.len()];
                if let Some((r, c)) = key {
                    let v = std::fs::read_to_string(dir.join(format!("sim_gpio{}/value", rows[r])))
                        .unwrap_or_default();
                    want[c] = v.trim() == "0";
                }
                for (i, (&w, l)) in want.iter().zip(low.iter_mut()).enumerate() {
                    if w != *l {
                        let pull = if w { "pull-down" } else { "pull-up" };
                        write_attr(&dir.join(format!("sim_gpio{}/pull", columns[i])), pull);
                        *l = w;
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        SimulatedSide {
            held,
            stop,
            thread: Some(thread),
        }
    }

    fn hold(&self, key: Option<(usize, usize)>) {
        *self.held.lock().unwrap() = key;
    }
}

impl Drop for SimulatedSide {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keypad_on_gpio_sim() {
    if !in_guest("keypad_on_gpio_sim") {
        return;
    }
    let rows = offsets("TILL_KEYPAD_ROWS", &[0, 1, 2, 3]);
    let columns = offsets("TILL_KEYPAD_COLUMNS", &[4, 5, 6, 7]);
    let row_drive = match std::env::var("TILL_GPIO_ROW_DRIVE").as_deref() {
        Ok("open-drain") => RowDrive::OpenDrain,
        _ => RowDrive::PushPull,
    };
    let config = KeypadConfig {
        chip: chip_path(&env("TILL_GPIO_CHIP")),
        layout: Layout::Keys4x4,
        rows: rows.clone(),
        columns: columns.clone(),
        row_drive,
        // The simulated side is a thread that polls the row lines through
        // sysfs and moves the column's pull: unlike a wire, it answers a
        // row change only when TCG schedules it, which has taken over 2 ms
        // (a key then showed up on the row scanned before its own). 10 ms
        // of settle and 40 ms of debounce leave it room; the keypad logic
        // is the same at any timing.
        debounce_ms: 40,
        scan_interval_ms: 5,
        settle_us: 10_000,
        ..KeypadConfig::default()
    };
    let side = SimulatedSide::start(env("TILL_GPIO_SIM_DIR").into(), rows, columns);
    let detail = till_hal::keypad::self_test(&config).expect("keypad self-test on gpio-sim");
    eprintln!("qemu-guest: keypad self-test: {detail}");
    let mut keys = till_hal::keypad::open(&config).expect("open the keypad on gpio-sim");
    for key in Layout::Keys4x4.keys() {
        let pos = Layout::Keys4x4.position(key);
        side.hold(pos);
        let down = tokio::time::timeout(Duration::from_secs(10), keys.next())
            .await
            .unwrap_or_else(|_| panic!("no event for {key:?}"))
            .expect("keypad stopped")
            .expect("keypad error");
        assert_eq!((down.key, down.action), (key, KeyAction::Pressed));
        side.hold(None);
        let up = tokio::time::timeout(Duration::from_secs(10), keys.next())
            .await
            .unwrap_or_else(|_| panic!("no release for {key:?}"))
            .expect("keypad stopped")
            .expect("keypad error");
        assert_eq!((up.key, up.action), (key, KeyAction::Released));
    }
    eprintln!("qemu-guest: keypad_on_gpio_sim ok");
}

#[test]
fn receipt_to_the_uart() {
    if !in_guest("receipt_to_the_uart") {
        return;
    }
    let tty = env("TILL_PRINTER_TTY");
    let mut link = SerialLink::open(
        Path::new(&tty),
        115_200,
        FlowControl::None,
        Duration::from_secs(10),
    )
    .expect("open the guest UART");
    let bytes = layout(&Receipt::sample(), PaperWidth::Mm58).unwrap();
    link.write_all(&bytes).expect("write the receipt");
    // Every byte must have left the UART before the harness powers off.
    link.drain().expect("drain the UART");
    eprintln!("qemu-guest: receipt_to_the_uart ok ({} bytes)", bytes.len());
}
