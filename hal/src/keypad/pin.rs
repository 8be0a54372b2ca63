//! PIN entry: keypad digits go into a zeroizing buffer owned by the code
//! that will hand the PIN to `till-pay` (which makes the PIN block); the UI
//! is told only that a digit was entered, removed or cleared, or that the
//! cardholder pressed enter or cancel — never which digit.
//!
//! Keys in PIN entry:
//!
//! | key | 4×3 and 4×4 | 4×4 only |
//! |---|---|---|
//! | `0`–`9` | digit | |
//! | `#` | enter | `D` enter |
//! | `*` | backspace; cancel when empty | `A` cancel, `B` backspace, `C` clear |
//!
//! ```
//! use till_hal::keypad::{Key, pin::{PinEntry, PinPolicy, PinUiEvent}};
//! let mut entry = PinEntry::new(PinPolicy::default());
//! for d in [1, 2, 3, 4] {
//!     entry.feed(Key::Digit(d));
//! }
//! assert_eq!(entry.feed(Key::Hash), Some(PinUiEvent::Enter));
//! let pin = entry.take_pin().unwrap();
//! assert_eq!(pin.expose(), "1234");
//! assert_eq!(format!("{pin:?}"), "EnteredPin(****)");
//! ```

use std::time::Duration;

use tokio::sync::mpsc;
use zeroize::{Zeroize, Zeroizing};

use super::{Key, KeyStream, Result};

/// What the UI learns about PIN entry. Deliberately carries no digit: the
/// screen shows one asterisk per [`count`](PinUiEvent::DigitEntered::count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinUiEvent {
    /// A digit was added; `count` digits are now entered.
    DigitEntered {
        /// Digits entered so far.
        count: usize,
    },
    /// The last digit was removed.
    Backspace {
        /// Digits left.
        count: usize,
    },
    /// Every digit was removed.
    Cleared,
    /// A digit was refused: the PIN is at its maximum length.
    Full,
    /// Enter with too few digits; entry goes on.
    TooShort {
        /// Digits entered so far.
        count: usize,
    },
    /// The PIN was accepted.
    Enter,
    /// The cardholder cancelled.
    Cancel,
}

/// Length limits for a PIN (ISO 9564: 4 to 12 digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinPolicy {
    /// Fewest digits accepted on enter.
    pub min_len: usize,
    /// Most digits accepted.
    pub max_len: usize,
}

impl Default for PinPolicy {
    fn default() -> Self {
        PinPolicy {
            min_len: 4,
            max_len: 12,
        }
    }
}

/// A complete PIN, for the code that makes the PIN block. Wiped on drop;
/// never printed.
pub struct EnteredPin(Zeroizing<String>);

impl EnteredPin {
    /// The digits, to hand to the PIN block code. Do not log or store them.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The zeroizing buffer itself.
    pub fn into_inner(self) -> Zeroizing<String> {
        self.0
    }
}

impl std::fmt::Debug for EnteredPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnteredPin(****)")
    }
}

/// The PIN entry state: the digits so far, in a zeroizing buffer whose
/// capacity is reserved up front so that it never reallocates (a
/// reallocation would leave a copy of the digits in freed memory).
pub struct PinEntry {
    digits: Zeroizing<String>,
    policy: PinPolicy,
    done: bool,
}

impl std::fmt::Debug for PinEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinEntry({} digits)", self.digits.len())
    }
}

impl PinEntry {
    /// Empty entry under `policy`.
    pub fn new(policy: PinPolicy) -> Self {
        let mut digits = Zeroizing::new(String::with_capacity(policy.max_len));
        // Writes zeros over the whole allocation, so that nothing in it is
        // ever uninitialised (and the tests may read it).
        digits.zeroize();
        PinEntry {
            digits,
            policy,
            done: false,
        }
    }

    /// Digits entered so far.
    pub fn len(&self) -> usize {
        self.digits.len()
    }

    /// True when no digit is entered.
    pub fn is_empty(&self) -> bool {
        self.digits.is_empty()
    }

    /// Applies one key press; returns what to tell the UI (nothing for keys
    /// without a meaning here, or after enter/cancel).
    pub fn feed(&mut self, key: Key) -> Option<PinUiEvent> {
        if self.done {
            return None;
        }
        Some(match key {
            Key::Digit(d) if d <= 9 => {
                if self.digits.len() >= self.policy.max_len {
                    PinUiEvent::Full
                } else {
                    self.digits.push(char::from(b'0' + d));
                    PinUiEvent::DigitEntered {
                        count: self.digits.len(),
                    }
                }
            }
            Key::Digit(_) => return None,
            Key::Hash | Key::D => {
                if self.digits.len() < self.policy.min_len {
                    PinUiEvent::TooShort {
                        count: self.digits.len(),
                    }
                } else {
                    self.done = true;
                    PinUiEvent::Enter
                }
            }
            Key::A => self.cancel(),
            Key::Star if self.digits.is_empty() => self.cancel(),
            Key::Star | Key::B => {
                self.remove_last();
                PinUiEvent::Backspace {
                    count: self.digits.len(),
                }
            }
            Key::C => {
                self.digits.zeroize();
                PinUiEvent::Cleared
            }
        })
    }

    fn cancel(&mut self) -> PinUiEvent {
        self.digits.zeroize();
        self.done = true;
        PinUiEvent::Cancel
    }

    /// Removes the last digit without leaving it behind in the buffer's
    /// spare capacity (`String::pop` would).
    fn remove_last(&mut self) {
        let keep = self.digits.len().saturating_sub(1);
        let mut copy = [0u8; 32];
        let n = keep.min(copy.len());
        copy[..n].copy_from_slice(&self.digits.as_bytes()[..n]);
        self.digits.zeroize();
        for &b in &copy[..n] {
            self.digits.push(char::from(b));
        }
        copy.zeroize();
    }

    /// The PIN, once enter accepted it; the entry is empty afterwards.
    pub fn take_pin(&mut self) -> Option<EnteredPin> {
        if !self.done || self.digits.is_empty() {
            return None;
        }
        let mut out = Zeroizing::new(String::with_capacity(self.policy.max_len));
        out.push_str(&self.digits);
        self.digits.zeroize();
        Some(EnteredPin(out))
    }

    #[cfg(test)]
    fn buffer_bytes(&self) -> (*const u8, Vec<u8>) {
        // Reads the whole allocation, spare capacity included; zeroize
        // writes every byte of it, so all of it is initialised.
        let cap = self.digits.capacity();
        let ptr = self.digits.as_ptr();
        // SAFETY: `ptr` points to `cap` bytes owned by the String, all
        // initialised (pushed digits or zeroize's writes; the String was
        // zeroized or filled before any read in the tests).
        let bytes = unsafe { std::slice::from_raw_parts(ptr, cap) }.to_vec();
        (ptr, bytes)
    }
}

/// How a PIN entry ended.
#[derive(Debug)]
pub enum PinOutcome {
    /// The cardholder entered a PIN and pressed enter.
    Entered(EnteredPin),
    /// The cardholder pressed cancel.
    Cancelled,
    /// No key within the timeout.
    TimedOut,
}

/// Runs PIN entry on `keys`: the UI gets only [`PinUiEvent`]s on `ui`; the
/// caller gets the PIN. Each key press restarts `timeout`. A UI that has
/// gone away does not stop entry.
pub async fn read_pin(
    keys: &mut KeyStream,
    ui: &mpsc::Sender<PinUiEvent>,
    policy: PinPolicy,
    timeout: Duration,
) -> Result<PinOutcome> {
    let mut entry = PinEntry::new(policy);
    loop {
        let key = match tokio::time::timeout(timeout, keys.next_press()).await {
            Err(_) => return Ok(PinOutcome::TimedOut),
            Ok(None) => return Ok(PinOutcome::Cancelled),
            Ok(Some(k)) => k?,
        };
        let Some(event) = entry.feed(key) else {
            continue;
        };
        let _ = ui.send(event).await;
        match event {
            PinUiEvent::Enter => {
                return Ok(entry
                    .take_pin()
                    .map_or(PinOutcome::Cancelled, PinOutcome::Entered));
            }
            PinUiEvent::Cancel => return Ok(PinOutcome::Cancelled),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(entry: &mut PinEntry, keys: &str) -> Vec<PinUiEvent> {
        keys.chars()
            .filter_map(Key::from_char)
            .filter_map(|k| entry.feed(k))
            .collect()
    }

    #[test]
    fn the_ui_sees_the_same_events_whatever_the_digits() {
        let mut a = PinEntry::new(PinPolicy::default());
        let mut b = PinEntry::new(PinPolicy::default());
        let ea = feed_all(&mut a, "1234*5#");
        let eb = feed_all(&mut b, "9876*0#");
        assert_eq!(ea, eb);
        assert_eq!(a.take_pin().unwrap().expose(), "1235");
        assert_eq!(b.take_pin().unwrap().expose(), "9870");
    }

    #[test]
    fn backspace_clear_and_take_leave_no_digit_in_the_buffer() {
        let mut e = PinEntry::new(PinPolicy::default());
        feed_all(&mut e, "987654");
        let (ptr, _) = e.buffer_bytes();
        feed_all(&mut e, "B");
        let (p2, bytes) = e.buffer_bytes();
        assert_eq!(p2, ptr, "the buffer must not move");
        assert_eq!(&bytes[..5], b"98765");
        assert!(bytes[5..].iter().all(|&b| b == 0), "{bytes:?}");
        feed_all(&mut e, "C");
        let (p3, bytes) = e.buffer_bytes();
        assert_eq!(p3, ptr);
        assert!(bytes.iter().all(|&b| b == 0));
        feed_all(&mut e, "123456789012");
        assert_eq!(e.feed(Key::Digit(3)), Some(PinUiEvent::Full));
        assert_eq!(
            e.buffer_bytes().0,
            ptr,
            "filling to the maximum must not reallocate"
        );
        feed_all(&mut e, "D");
        let pin = e.take_pin().unwrap();
        assert_eq!(pin.expose(), "123456789012");
        assert!(e.buffer_bytes().1.iter().all(|&b| b == 0));
        assert!(e.take_pin().is_none());
    }

    #[test]
    fn short_pins_cancel_and_keys_after_the_end() {
        let mut e = PinEntry::new(PinPolicy::default());
        assert_eq!(
            feed_all(&mut e, "12#"),
            vec![
                PinUiEvent::DigitEntered { count: 1 },
                PinUiEvent::DigitEntered { count: 2 },
                PinUiEvent::TooShort { count: 2 }
            ]
        );
        assert_eq!(e.feed(Key::A), Some(PinUiEvent::Cancel));
        assert!(e.buffer_bytes().1.iter().all(|&b| b == 0));
        assert_eq!(e.feed(Key::Digit(1)), None);
        assert!(e.take_pin().is_none());
        let mut e = PinEntry::new(PinPolicy::default());
        assert_eq!(e.feed(Key::Star), Some(PinUiEvent::Cancel));
    }
}
