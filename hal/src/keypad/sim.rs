//! Simulated keypads.
//!
//! - [`SimMatrix`]: an electrical model of a diode-less key matrix whose
//!   contacts follow a script in (modelled) time, bounces included, for
//!   driving the real scanning code in tests and benchmarks. [`SimEdges`]
//!   wakes the driver at the script's transitions, as the kernel's edge
//!   events would.
//! - [`simulated`]: a keypad without a matrix, fed key by key from the UI
//!   ([`KeyInjector`]) or from standard input ([`feed_from_stdin`]).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{
    ColumnEdges, Key, KeyAction, KeyEvent, KeyStream, Layout, MatrixLines, Result, RowSelect,
};

/// A source of (possibly modelled) time since some origin.
pub trait Clock: Send + Sync {
    /// Time since the origin.
    fn now(&self) -> Duration;
}

/// A clock that moves only when told to.
#[derive(Debug, Clone, Default)]
pub struct SimClock(Arc<AtomicU64>);

impl SimClock {
    /// A clock at zero.
    pub fn new() -> Self {
        SimClock::default()
    }

    /// Moves the clock to `t` (never backwards).
    pub fn set(&self, t: Duration) {
        self.0.fetch_max(t.as_nanos() as u64, Ordering::SeqCst);
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for SimClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

/// tokio's clock (paused in tests, so modelled there too) since `origin`.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock(pub tokio::time::Instant);

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// A contact opening or closing at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// When.
    pub at: Duration,
    /// Row of the key.
    pub row: usize,
    /// Column of the key.
    pub column: usize,
    /// Closed (pressed) after this moment.
    pub closed: bool,
}

/// One scripted keystroke: the first contact and the last release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stroke {
    /// The key.
    pub key: Key,
    /// First closing of the contact (bounces follow).
    pub down_at: Duration,
    /// First opening of the contact at release (bounces follow).
    pub up_at: Duration,
}

/// A typing session: keystrokes and the contact transitions they make.
#[derive(Debug, Clone, Default)]
pub struct Typing {
    /// The keystrokes in order.
    pub strokes: Vec<Stroke>,
    /// Every contact transition, sorted by time.
    pub transitions: Vec<Transition>,
}

/// Deterministic xorshift, so that simulated runs repeat exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

impl Typing {
    /// `count` random keystrokes on `layout`, one at a time, each with up to
    /// 5 ms of contact bounce at press and at release (toggles 0.1–1 ms
    /// apart), held 30–100 ms, with 30–100 ms between keystrokes.
    pub fn random(layout: Layout, count: usize, seed: u64) -> Typing {
        let mut rng = Rng(seed | 1);
        let keys = layout.keys();
        let mut t = Duration::from_millis(5);
        let mut typing = Typing::default();
        for _ in 0..count {
            let key = keys[rng.range(0, keys.len() as u64 - 1) as usize];
            let (row, column) = layout.position(key).unwrap_or((0, 0));
            let down_at = t;
            let settled = typing.bounce(&mut rng, down_at, row, column, true);
            let up_at = settled + Duration::from_millis(rng.range(30, 100));
            let released = typing.bounce(&mut rng, up_at, row, column, false);
            typing.strokes.push(Stroke {
                key,
                down_at,
                up_at,
            });
            t = released + Duration::from_millis(rng.range(30, 100));
        }
        typing
    }

    /// Adds a bouncing transition to `closed` starting at `at`; returns when
    /// the contact settled.
    fn bounce(
        &mut self,
        rng: &mut Rng,
        at: Duration,
        row: usize,
        column: usize,
        closed: bool,
    ) -> Duration {
        let mut t = at;
        let toggles = rng.range(0, 4) * 2; // even: ends in the wanted state
        let mut state = closed;
        self.transitions.push(Transition {
            at: t,
            row,
            column,
            closed: state,
        });
        for _ in 0..toggles {
            t += Duration::from_micros(rng.range(100, 1000));
            state = !state;
            self.transitions.push(Transition {
                at: t,
                row,
                column,
                closed: state,
            });
        }
        t
    }
}

struct SimState {
    transitions: Arc<Vec<Transition>>,
    cursor: usize,
    scripted: u16,
    held: u16,
    selected: RowSelect,
    reads: u64,
}

/// A diode-less key matrix model: contacts follow a script in time (plus
/// keys held by hand with [`SimMatrix::hold`]); a column reads low when a
/// chain of closed contacts joins it to an active row, so three keys of a
/// rectangle make the fourth appear, as on real hardware.
#[derive(Clone)]
pub struct SimMatrix {
    state: Arc<Mutex<SimState>>,
    clock: Arc<dyn Clock>,
}

/// The simulated matrix cannot fail; this type has no values.
#[derive(Debug, thiserror::Error)]
#[error("unreachable")]
pub enum Never {}

impl SimMatrix {
    /// A matrix following `transitions` (sorted by time) on `clock`.
    pub fn new(transitions: Vec<Transition>, clock: Arc<dyn Clock>) -> Self {
        SimMatrix {
            state: Arc::new(Mutex::new(SimState {
                transitions: Arc::new(transitions),
                cursor: 0,
                scripted: 0,
                held: 0,
                selected: RowSelect::All,
                reads: 0,
            })),
            clock,
        }
    }

    /// Closes (or opens) the contact at `row`, `column` until changed again.
    pub fn hold(&self, row: usize, column: usize, closed: bool) {
        let mut s = self.lock();
        let bit = 1u16 << (row * 4 + column);
        if closed {
            s.held |= bit;
        } else {
            s.held &= !bit;
        }
    }

    /// How many times the columns were read (a measure of scanning work).
    pub fn reads(&self) -> u64 {
        self.lock().reads
    }

    /// Edges for this matrix: wake-ups at the script's transitions.
    pub fn edges(&self) -> SimEdges {
        SimEdges {
            matrix: self.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn contacts(&self, s: &mut SimState) -> u16 {
        let now = self.clock.now();
        while let Some(t) = s.transitions.get(s.cursor) {
            if t.at > now {
                break;
            }
            let bit = 1u16 << (t.row * 4 + t.column);
            if t.closed {
                s.scripted |= bit;
            } else {
                s.scripted &= !bit;
            }
            s.cursor += 1;
        }
        s.scripted | s.held
    }
}

/// Columns joined through closed `contacts` (bit `row * 4 + column`) to any
/// row in `rows` (bit per row).
fn columns_reached(contacts: u16, rows: u8) -> u16 {
    let row_cols = |r: usize| (contacts >> (r * 4)) & 0xF;
    let mut rows_in = rows;
    let mut cols = 0u16;
    loop {
        let mut next_cols = cols;
        for r in 0..4 {
            if rows_in & (1 << r) != 0 {
                next_cols |= row_cols(r);
            }
        }
        let mut next_rows = rows_in;
        for r in 0..4 {
            if row_cols(r) & next_cols != 0 {
                next_rows |= 1 << r;
            }
        }
        if next_cols == cols && next_rows == rows_in {
            return cols;
        }
        cols = next_cols;
        rows_in = next_rows;
    }
}

impl MatrixLines for SimMatrix {
    type Error = Never;

    fn select(&mut self, rows: RowSelect) -> std::result::Result<(), Never> {
        self.lock().selected = rows;
        Ok(())
    }

    fn read_columns(&mut self) -> std::result::Result<u16, Never> {
        let mut s = self.lock();
        s.reads += 1;
        let contacts = self.contacts(&mut s);
        let rows = match s.selected {
            RowSelect::All => 0xF,
            RowSelect::Row(r) => 1u8 << r.min(3),
        };
        Ok(columns_reached(contacts, rows))
    }
}

/// Wakes the driver at each scripted transition, like a column edge.
pub struct SimEdges {
    matrix: SimMatrix,
}

impl ColumnEdges for SimEdges {
    fn wait(&mut self) -> impl Future<Output = Result<()>> + Send {
        let now = self.matrix.clock.now();
        let next = {
            let s = self.matrix.lock();
            let i = s.transitions.partition_point(|t| t.at <= now);
            s.transitions.get(i).map(|t| t.at)
        };
        async move {
            match next {
                Some(at) => tokio::time::sleep(at.saturating_sub(now)).await,
                None => std::future::pending::<()>().await,
            }
            Ok(())
        }
    }

    fn discard(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Injects key presses into a [`simulated`] keypad (from the UI's on-screen
/// keypad, a test, or stdin).
#[derive(Clone)]
pub struct KeyInjector {
    tx: mpsc::Sender<Result<KeyEvent>>,
    origin: std::time::Instant,
}

impl KeyInjector {
    fn events(&self, key: Key) -> [KeyEvent; 2] {
        let at = self.origin.elapsed();
        [KeyAction::Pressed, KeyAction::Released].map(|action| KeyEvent { key, action, at })
    }

    /// Presses and releases `key`. Returns false when the keypad is gone.
    pub async fn press(&self, key: Key) -> bool {
        for e in self.events(key) {
            if self.tx.send(Ok(e)).await.is_err() {
                return false;
            }
        }
        true
    }

    /// [`press`](Self::press) from outside the runtime (a UI callback, a
    /// thread). Returns false when the keypad is gone.
    pub fn press_blocking(&self, key: Key) -> bool {
        self.events(key)
            .into_iter()
            .all(|e| self.tx.blocking_send(Ok(e)).is_ok())
    }
}

/// A keypad without hardware: key events come from the returned injector.
pub fn simulated() -> (KeyStream, KeyInjector) {
    let (tx, rx) = mpsc::channel(64);
    (
        KeyStream::from_channel(rx, None),
        KeyInjector {
            tx,
            origin: std::time::Instant::now(),
        },
    )
}

/// Feeds standard input to a simulated keypad from a thread: each legend
/// character (`0`–`9`, `*`, `#`, `A`–`D`) is one keystroke; anything else
/// is ignored. Stops at end of input or when the keypad is dropped.
pub fn feed_from_stdin(injector: KeyInjector) {
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
            for key in line.chars().filter_map(Key::from_char) {
                if !injector.press_blocking(key) {
                    return;
                }
            }
            line.clear();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_keys_of_a_rectangle_make_the_fourth_appear() {
        // Keys (0,0), (0,1), (1,0) closed; scanning row 1 also sees column 1.
        let contacts = 1 | (1 << 1) | (1 << 4);
        assert_eq!(columns_reached(contacts, 0b10), 0b11);
        // One key: only its own column, only on its own row.
        assert_eq!(columns_reached(1 << 5, 0b10), 0b10);
        assert_eq!(columns_reached(1 << 5, 0b01), 0);
    }

    #[test]
    fn random_typing_ends_every_bounce_in_the_wanted_state() {
        let typing = Typing::random(Layout::Keys4x4, 200, 7);
        let clock = Arc::new(SimClock::new());
        let mut m = SimMatrix::new(typing.transitions.clone(), clock.clone());
        for s in &typing.strokes {
            let (r, c) = Layout::Keys4x4.position(s.key).unwrap();
            m.select(RowSelect::Row(r)).unwrap();
            clock.set(s.up_at - Duration::from_millis(1));
            assert_eq!(m.read_columns().unwrap(), 1 << c);
        }
    }
}
