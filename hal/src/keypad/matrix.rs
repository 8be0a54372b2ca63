//! The pure part of the keypad: how a row/column matrix is scanned, how
//! contact bounce is filtered and how ambiguous (ghost) combinations are
//! rejected. Nothing here knows about Linux or time sources: the scan takes
//! the current time as an argument, so tests and benchmarks run it against a
//! simulated matrix with a modelled clock.

use std::time::Duration;

use super::{Key, KeyAction, KeyEvent, Layout};

/// Which rows a scan drives active (low).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSelect {
    /// Every row active: any pressed key pulls its column low. This is the
    /// idle state, in which a column edge means "some key changed".
    All,
    /// Only this row active; the others released.
    Row(usize),
}

/// The electrical side of a key matrix: rows that can be driven active
/// (low) and columns, pulled up, that read active (low) when a key joins
/// them to an active row.
///
/// Implemented by the GPIO character device backend, by [`HalPins`] over
/// any embedded-hal pins (rppal on a Pi), and by simulated matrices in tests.
pub trait MatrixLines {
    /// What reading or driving a line can fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Drives the selected rows active and releases the others.
    fn select(&mut self, rows: RowSelect) -> Result<(), Self::Error>;

    /// The columns that read active: bit `n` set = column `n` is low.
    fn read_columns(&mut self) -> Result<u16, Self::Error>;
}

/// A matrix over embedded-hal 1.0 pins: rows are [`OutputPin`]s (set low =
/// active; wire them open-drain or through diodes if several keys in one
/// column may be held), columns are [`InputPin`]s with pull-ups.
///
/// [`OutputPin`]: embedded_hal::digital::OutputPin
/// [`InputPin`]: embedded_hal::digital::InputPin
///
/// ```
/// use std::convert::Infallible;
/// use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
/// use till_hal::keypad::{HalPins, MatrixLines, RowSelect};
///
/// struct Low;
/// impl ErrorType for Low { type Error = Infallible; }
/// impl InputPin for Low {
///     fn is_high(&mut self) -> Result<bool, Infallible> { Ok(false) }
///     fn is_low(&mut self) -> Result<bool, Infallible> { Ok(true) }
/// }
/// impl OutputPin for Low {
///     fn set_low(&mut self) -> Result<(), Infallible> { Ok(()) }
///     fn set_high(&mut self) -> Result<(), Infallible> { Ok(()) }
/// }
/// let mut m = HalPins::new(vec![Low, Low], vec![Low, Low, Low]);
/// m.select(RowSelect::Row(1)).unwrap();
/// assert_eq!(m.read_columns().unwrap(), 0b111);
/// ```
pub struct HalPins<O, I> {
    rows: Vec<O>,
    columns: Vec<I>,
}

impl<O, I> HalPins<O, I> {
    /// Rows and columns in layout order (row 0 is the top row, column 0 the
    /// left column).
    pub fn new(rows: Vec<O>, columns: Vec<I>) -> Self {
        HalPins { rows, columns }
    }
}

/// A pin error from an embedded-hal implementation, by its kind.
#[derive(Debug, thiserror::Error)]
#[error("GPIO pin error: {0:?}")]
pub struct PinError(pub embedded_hal::digital::ErrorKind);

impl<O, I> MatrixLines for HalPins<O, I>
where
    O: embedded_hal::digital::OutputPin,
    I: embedded_hal::digital::InputPin,
{
    type Error = PinError;

    fn select(&mut self, rows: RowSelect) -> Result<(), PinError> {
        use embedded_hal::digital::Error as _;
        for (i, pin) in self.rows.iter_mut().enumerate() {
            let active = match rows {
                RowSelect::All => true,
                RowSelect::Row(r) => r == i,
            };
            let r = if active {
                pin.set_low()
            } else {
                pin.set_high()
            };
            r.map_err(|e| PinError(e.kind()))?;
        }
        Ok(())
    }

    fn read_columns(&mut self) -> Result<u16, PinError> {
        use embedded_hal::digital::Error as _;
        let mut bits = 0u16;
        for (i, pin) in self.columns.iter_mut().enumerate() {
            if pin.is_low().map_err(|e| PinError(e.kind()))? {
                bits |= 1 << i;
            }
        }
        Ok(bits)
    }
}

/// One full pass over the rows: for each row, the columns that read active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawScan {
    /// `rows[r]` bit `c` = key at row `r`, column `c` reads closed.
    pub rows: [u16; 4],
}

impl RawScan {
    /// True when the pattern has a rectangle of closed contacts: two rows
    /// sharing two columns. Without a diode per key a matrix cannot tell
    /// three keys of such a rectangle from four, so the scan is ambiguous.
    pub fn is_ambiguous(&self) -> bool {
        for a in 0..self.rows.len() {
            for b in a + 1..self.rows.len() {
                if (self.rows[a] & self.rows[b]).count_ones() >= 2 {
                    return true;
                }
            }
        }
        false
    }

    /// Closed contacts as a bit per key index (`row * columns + column`).
    fn key_bits(&self, columns: usize) -> u32 {
        let mut bits = 0u32;
        for (r, cols) in self.rows.iter().enumerate() {
            for c in 0..columns {
                if cols & (1 << c) != 0 {
                    bits |= 1 << (r * columns + c);
                }
            }
        }
        bits
    }
}

/// Drives each row in turn and reads the columns, then returns the matrix to
/// idle ([`RowSelect::All`]). `settle` runs between driving a row and
/// reading: real lines need a few microseconds to charge through the pull-ups.
pub fn scan_rows<M: MatrixLines>(
    lines: &mut M,
    rows: usize,
    settle: &mut dyn FnMut(),
) -> Result<RawScan, M::Error> {
    let mut scan = RawScan::default();
    for r in 0..rows.min(4) {
        lines.select(RowSelect::Row(r))?;
        settle();
        scan.rows[r] = lines.read_columns()?;
    }
    lines.select(RowSelect::All)?;
    Ok(scan)
}

/// Per-key debouncing over successive scans: a key changes state only
/// after its contact has read the new state continuously for the debounce
/// time. Bounces restart the wait, so a key that chatters for 5 ms and then
/// closes is reported once, `debounce` after it settled.
#[derive(Debug, Clone)]
pub struct Debouncer {
    layout: Layout,
    debounce: Duration,
    /// Debounced state, bit per key index.
    stable: u32,
    /// Since when each key has read differently from `stable`.
    since: [Option<Duration>; 16],
    ghosts: u64,
}

impl Debouncer {
    /// A debouncer for `layout` with every key released.
    pub fn new(layout: Layout, debounce: Duration) -> Self {
        Debouncer {
            layout,
            debounce,
            stable: 0,
            since: [None; 16],
            ghosts: 0,
        }
    }

    /// Feeds one scan taken at `now` and returns the keys whose debounced
    /// state changed, releases first. Ambiguous scans (see
    /// [`RawScan::is_ambiguous`]) are dropped whole: no key changes on them.
    pub fn update(&mut self, scan: &RawScan, now: Duration) -> Vec<KeyEvent> {
        let mut events = Vec::new();
        if scan.is_ambiguous() {
            self.ghosts += 1;
            return events;
        }
        let columns = self.layout.columns();
        let raw = scan.key_bits(columns);
        let count = self.layout.rows() * columns;
        let mut changed = 0u32;
        for i in 0..count {
            let bit = 1u32 << i;
            if (raw ^ self.stable) & bit == 0 {
                self.since[i] = None;
                continue;
            }
            let since = *self.since[i].get_or_insert(now);
            if now.saturating_sub(since) >= self.debounce {
                self.stable ^= bit;
                self.since[i] = None;
                changed |= bit;
            }
        }
        for pass in [KeyAction::Released, KeyAction::Pressed] {
            for i in 0..count {
                let bit = 1u32 << i;
                if changed & bit == 0 {
                    continue;
                }
                let action = if self.stable & bit != 0 {
                    KeyAction::Pressed
                } else {
                    KeyAction::Released
                };
                if action == pass {
                    events.push(KeyEvent {
                        key: self.layout.key_at(i / columns, i % columns),
                        action,
                        at: now,
                    });
                }
            }
        }
        events
    }

    /// True when every key is released and none is waiting out a bounce:
    /// the driver may stop scanning and wait for the next column edge.
    pub fn is_idle(&self) -> bool {
        self.stable == 0 && self.since.iter().all(Option::is_none)
    }

    /// Keys currently held (debounced).
    pub fn held(&self) -> Vec<Key> {
        let columns = self.layout.columns();
        (0..self.layout.rows() * columns)
            .filter(|i| self.stable & (1 << i) != 0)
            .map(|i| self.layout.key_at(i / columns, i % columns))
            .collect()
    }

    /// How many scans were dropped as ambiguous so far.
    pub fn ghost_scans(&self) -> u64 {
        self.ghosts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(keys: &[(usize, usize)]) -> RawScan {
        let mut s = RawScan::default();
        for &(r, c) in keys {
            s.rows[r] |= 1 << c;
        }
        s
    }

    #[test]
    fn rectangles_are_ambiguous_other_combinations_are_not() {
        assert!(!scan(&[]).is_ambiguous());
        assert!(!scan(&[(0, 0), (1, 1)]).is_ambiguous());
        assert!(!scan(&[(0, 0), (0, 1)]).is_ambiguous());
        assert!(!scan(&[(0, 0), (1, 0), (2, 0)]).is_ambiguous());
        assert!(scan(&[(0, 0), (0, 2), (3, 0), (3, 2)]).is_ambiguous());
        assert!(scan(&[(1, 1), (1, 3), (2, 1), (2, 3)]).is_ambiguous());
    }

    #[test]
    fn a_key_is_reported_once_after_it_was_stable_for_the_debounce_time() {
        let ms = Duration::from_millis;
        let mut d = Debouncer::new(Layout::Keys4x4, ms(10));
        let five = scan(&[(1, 1)]);
        let none = scan(&[]);
        // Bounce: closed, open, closed within 4 ms; then steady.
        assert!(d.update(&five, ms(0)).is_empty());
        assert!(d.update(&none, ms(2)).is_empty());
        assert!(d.update(&five, ms(4)).is_empty());
        assert!(d.update(&five, ms(12)).is_empty());
        let ev = d.update(&five, ms(14));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].key, Key::Digit(5));
        assert_eq!(ev[0].action, KeyAction::Pressed);
        assert!(d.update(&five, ms(30)).is_empty());
        assert!(!d.is_idle());
        assert!(d.update(&none, ms(40)).is_empty());
        let ev = d.update(&none, ms(50));
        assert_eq!(ev[0].action, KeyAction::Released);
        assert!(d.is_idle());
    }

    #[test]
    fn ambiguous_scans_change_nothing() {
        let ms = Duration::from_millis;
        let mut d = Debouncer::new(Layout::Keys4x4, ms(5));
        let ghost = scan(&[(0, 0), (0, 1), (1, 0), (1, 1)]);
        for t in 0..20 {
            assert!(d.update(&ghost, ms(t)).is_empty());
        }
        assert!(d.is_idle());
        assert_eq!(d.ghost_scans(), 20);
    }
}
