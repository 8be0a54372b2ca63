//! PIN keypad: a 4×4 or 4×3 key matrix scanned over GPIO, delivered as an
//! async stream of key events, and the PIN entry mode that keeps digits
//! away from the UI.
//!
//! The driver idles with every row driven low and waits for an edge on a
//! column (a key joins its row to its column). Only then does it scan the
//! matrix, row by row, every scan interval, until every key is released and
//! debounced — a keypad at rest costs no CPU. Keys are debounced per key
//! ([`Debouncer`]) and scans that a diode-less matrix cannot resolve are
//! dropped ([`RawScan::is_ambiguous`]).
//!
//! - [`matrix`](self::matrix): the pure scanning and debouncing logic and the
//!   [`MatrixLines`] trait a backend implements;
//! - `cdev`: the GPIO character device backend (`/dev/gpiochipN`);
//! - `rppal` (cargo feature `rppal`): rppal's GPIO on a Raspberry Pi;
//! - [`sim`]: a simulated matrix with bouncing contacts for tests and
//!   benchmarks, and the keypad simulator fed from stdin or the UI;
//! - [`pin`]: PIN entry.
//!
//! ```no_run
//! # async fn demo() -> Result<(), till_hal::keypad::Error> {
//! let config = till_hal::config::DevicesConfig::default();
//! let mut keys = till_hal::keypad::open(&config.keypad)?;
//! while let Some(event) = keys.next().await {
//!     println!("{:?}", event?);
//! }
//! # Ok(()) }
//! ```

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin as StdPin;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

mod cdev;
pub mod matrix;
pub mod pin;
#[cfg(feature = "rppal")]
mod rppal;
pub mod sim;

pub use cdev::CdevMatrix;
pub use matrix::{Debouncer, HalPins, MatrixLines, PinError, RawScan, RowSelect};

use crate::config::KeypadConfig;

/// What the keypad can fail with. Messages say what to check or do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The GPIO chip could not be opened (missing, or no permission).
    #[error("{0}")]
    Open(String),
    /// A line could not be requested (in use, or an offset the chip lacks).
    #[error("keypad {what} line {offset} on {chip}: {message}")]
    Line {
        /// "row" or "column".
        what: &'static str,
        /// Line offset on the chip.
        offset: u32,
        /// The chip's path.
        chip: PathBuf,
        /// What went wrong and what to do.
        message: String,
    },
    /// Reading or driving the lines failed while running.
    #[error("keypad GPIO failed: {0}")]
    Io(String),
    /// The configuration does not describe a usable matrix.
    #[error("keypad configuration: {0}")]
    Config(String),
}

/// Result alias for the keypad.
pub type Result<T> = std::result::Result<T, Error>;

/// A key on the keypad, by its legend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Key {
    /// A digit key, 0–9.
    Digit(u8),
    /// `*`
    Star,
    /// `#`
    Hash,
    /// The `A` key (4×4 only): cancel in PIN entry.
    A,
    /// The `B` key (4×4 only): backspace in PIN entry.
    B,
    /// The `C` key (4×4 only): clear in PIN entry.
    C,
    /// The `D` key (4×4 only): enter in PIN entry.
    D,
}

impl Key {
    /// The key for a legend character (`0`–`9`, `*`, `#`, `A`–`D`).
    pub fn from_char(c: char) -> Option<Key> {
        Some(match c {
            '0'..='9' => Key::Digit(c as u8 - b'0'),
            '*' => Key::Star,
            '#' => Key::Hash,
            'A' | 'a' => Key::A,
            'B' | 'b' => Key::B,
            'C' | 'c' => Key::C,
            'D' | 'd' => Key::D,
            _ => return None,
        })
    }

    /// The key's legend character.
    pub fn as_char(self) -> char {
        match self {
            Key::Digit(d) => char::from(b'0' + d.min(9)),
            Key::Star => '*',
            Key::Hash => '#',
            Key::A => 'A',
            Key::B => 'B',
            Key::C => 'C',
            Key::D => 'D',
        }
    }
}

/// The keypad's layout: telephone order, `*` `0` `#` in the bottom row,
/// letters in a fourth column.
///
/// ```text
/// 4x4:  1 2 3 A     4x3:  1 2 3
///       4 5 6 B           4 5 6
///       7 8 9 C           7 8 9
///       * 0 # D           * 0 #
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// Four rows, four columns.
    #[serde(rename = "4x4")]
    Keys4x4,
    /// Four rows, three columns.
    #[serde(rename = "4x3")]
    Keys4x3,
}

const LEGENDS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

impl Layout {
    /// Number of rows (4 for both layouts).
    pub fn rows(self) -> usize {
        4
    }

    /// Number of columns.
    pub fn columns(self) -> usize {
        match self {
            Layout::Keys4x4 => 4,
            Layout::Keys4x3 => 3,
        }
    }

    /// The key at `row`, `column` (both from 0, top left).
    pub fn key_at(self, row: usize, column: usize) -> Key {
        let c = LEGENDS[row.min(3)][column.min(self.columns() - 1)];
        Key::from_char(c).unwrap_or(Key::Star)
    }

    /// Where `key` sits, or `None` when the layout lacks it.
    pub fn position(self, key: Key) -> Option<(usize, usize)> {
        (0..self.rows())
            .flat_map(|r| (0..self.columns()).map(move |c| (r, c)))
            .find(|&(r, c)| self.key_at(r, c) == key)
    }

    /// Every key of the layout, row by row.
    pub fn keys(self) -> Vec<Key> {
        (0..self.rows())
            .flat_map(|r| (0..self.columns()).map(move |c| self.key_at(r, c)))
            .collect()
    }
}

/// Whether a key went down or up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAction {
    /// The key was pressed (after debouncing).
    Pressed,
    /// The key was released (after debouncing).
    Released,
}

/// A debounced key event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyEvent {
    /// Which key.
    pub key: Key,
    /// Down or up.
    pub action: KeyAction,
    /// When the driver decided, since it started.
    pub at: Duration,
}

/// Scan timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a contact must read the same before a change counts.
    pub debounce: Duration,
    /// Time between scans while a key is held or bouncing.
    pub scan_interval: Duration,
    /// Time between driving a row and reading the columns.
    pub settle: Duration,
}

impl Default for Timing {
    /// 10 ms debounce, 2 ms scans, 5 µs settle: a key-down is reported
    /// 10–12 ms after its contact stops bouncing, well inside the 30 ms target.
    fn default() -> Self {
        Timing {
            debounce: Duration::from_millis(10),
            scan_interval: Duration::from_millis(2),
            settle: Duration::from_micros(5),
        }
    }
}

/// Where column edges come from: the kernel's edge events, or (for pins
/// without them) a poll timer.
pub trait ColumnEdges: Send {
    /// Resolves when a column may have changed since the last call.
    fn wait(&mut self) -> impl Future<Output = Result<()>> + Send;

    /// Forgets edges that already happened: the driver's own scanning
    /// toggles the columns while a key is held.
    fn discard(&mut self) -> Result<()>;
}

/// Edges for lines that cannot report them: "maybe changed" every period.
#[derive(Debug, Clone, Copy)]
pub struct PollEdges(pub Duration);

impl ColumnEdges for PollEdges {
    fn wait(&mut self) -> impl Future<Output = Result<()>> + Send {
        let period = self.0;
        async move {
            tokio::time::sleep(period).await;
            Ok(())
        }
    }

    fn discard(&mut self) -> Result<()> {
        Ok(())
    }
}

/// An async stream of key events from a keypad (driver or simulator).
///
/// Dropping it stops the driver task.
pub struct KeyStream {
    rx: mpsc::Receiver<Result<KeyEvent>>,
    task: Option<JoinHandle<()>>,
}

impl KeyStream {
    /// A stream fed by `rx`; `task` (if any) is aborted when the stream drops.
    pub fn from_channel(
        rx: mpsc::Receiver<Result<KeyEvent>>,
        task: Option<JoinHandle<()>>,
    ) -> Self {
        KeyStream { rx, task }
    }

    /// The next event; `None` when the keypad has stopped.
    pub async fn next(&mut self) -> Option<Result<KeyEvent>> {
        self.rx.recv().await
    }

    /// The next key pressed (releases skipped).
    pub async fn next_press(&mut self) -> Option<Result<Key>> {
        loop {
            match self.rx.recv().await? {
                Ok(KeyEvent {
                    key,
                    action: KeyAction::Pressed,
                    ..
                }) => return Some(Ok(key)),
                Ok(_) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl futures_core::Stream for KeyStream {
    type Item = Result<KeyEvent>;

    fn poll_next(mut self: StdPin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for KeyStream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Runs the matrix driver on the current tokio runtime and returns its
/// event stream.
///
/// The matrix is idle (all rows active) between key presses; `edges` wakes
/// the driver when a column changes. While any key is held or bouncing, the
/// matrix is scanned every `timing.scan_interval`.
pub fn spawn_matrix<M, E>(lines: M, edges: E, layout: Layout, timing: Timing) -> KeyStream
where
    M: MatrixLines + Send + 'static,
    E: ColumnEdges + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(async move {
        if let Err(e) = drive(lines, edges, layout, timing, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    KeyStream::from_channel(rx, Some(task))
}

async fn drive<M: MatrixLines, E: ColumnEdges>(
    mut lines: M,
    mut edges: E,
    layout: Layout,
    timing: Timing,
    tx: &mpsc::Sender<Result<KeyEvent>>,
) -> Result<()> {
    let io = |e: M::Error| Error::Io(e.to_string());
    let origin = tokio::time::Instant::now();
    let mut debouncer = Debouncer::new(layout, timing.debounce);
    let settle = timing.settle;
    // Short settles spin: thread::sleep would take 50 µs or more for a
    // 5 µs wait, four times per scan. Long ones (slow simulated lines)
    // sleep; they block this task's thread only for the scan.
    let mut settle_fn = move || {
        if settle.is_zero() {
        } else if settle < Duration::from_micros(200) {
            let until = std::time::Instant::now() + settle;
            while std::time::Instant::now() < until {
                std::hint::spin_loop();
            }
        } else {
            std::thread::sleep(settle);
        }
    };
    loop {
        lines.select(RowSelect::All).map_err(io)?;
        edges.discard()?;
        // A key pressed between the last scan and `discard` left no edge
        // behind: look at the columns once before sleeping.
        if lines.read_columns().map_err(io)? & column_mask(layout) == 0 {
            edges.wait().await?;
        }
        loop {
            let scan = matrix::scan_rows(&mut lines, layout.rows(), &mut settle_fn).map_err(io)?;
            let mut scan = scan;
            for row in scan.rows.iter_mut() {
                *row &= column_mask(layout);
            }
            for event in debouncer.update(&scan, origin.elapsed()) {
                if tx.send(Ok(event)).await.is_err() {
                    return Ok(());
                }
            }
            if debouncer.is_idle() {
                break;
            }
            tokio::time::sleep(timing.scan_interval).await;
        }
        if tx.is_closed() {
            return Ok(());
        }
    }
}

fn column_mask(layout: Layout) -> u16 {
    (1u16 << layout.columns()) - 1
}

/// Opens the keypad the configuration names: the GPIO character device (or
/// rppal, with that feature and `backend = "rppal"`), or the simulator fed
/// from standard input when `simulated = true`. Needs a tokio runtime.
pub fn open(config: &KeypadConfig) -> Result<KeyStream> {
    let timing = config.timing();
    if config.simulated {
        let (stream, injector) = sim::simulated();
        sim::feed_from_stdin(injector);
        return Ok(stream);
    }
    match config.backend {
        crate::config::KeypadBackend::Cdev => {
            let (lines, edges) = cdev::open(config)?;
            Ok(spawn_matrix(lines, edges, config.layout, timing))
        }
        crate::config::KeypadBackend::Rppal => {
            #[cfg(feature = "rppal")]
            {
                let lines = rppal::open(config)?;
                Ok(spawn_matrix(
                    lines,
                    PollEdges(timing.scan_interval * 5),
                    config.layout,
                    timing,
                ))
            }
            #[cfg(not(feature = "rppal"))]
            Err(Error::Config(
                "keypad.backend = \"rppal\" but till-hal was built without the `rppal` feature: \
                 rebuild with --features till-hal/rppal or use backend = \"cdev\""
                    .into(),
            ))
        }
    }
}

/// Checks that the keypad's lines can be requested and read, with no key
/// held, for the boot screen's self-test. Returns a sentence on success.
pub fn self_test(config: &KeypadConfig) -> Result<String> {
    cdev::self_test(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_have_the_expected_keys() {
        let k44: String = Layout::Keys4x4.keys().iter().map(|k| k.as_char()).collect();
        assert_eq!(k44, "123A456B789C*0#D");
        let k43: String = Layout::Keys4x3.keys().iter().map(|k| k.as_char()).collect();
        assert_eq!(k43, "123456789*0#");
        assert_eq!(Layout::Keys4x3.position(Key::A), None);
        assert_eq!(Layout::Keys4x4.position(Key::Digit(0)), Some((3, 1)));
    }
}
