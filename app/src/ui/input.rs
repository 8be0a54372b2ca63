//! Typing without a keyboard: the field a tap opened, the keys that go
//! into it (on-screen number pad or keyboard, or the GPIO keypad), and
//! what each field takes.
//!
//! The text being typed lives here, not in the UI: the screen gets it to
//! show (passwords as dots), and a field's value goes to the `Form` global
//! only when the edit is done. Passwords never go there at all: they stay
//! in [`Secrets`], zeroized when replaced, used or dropped. Nothing typed
//! is ever logged.

use zeroize::Zeroizing;

use super::{Field, Keys};

/// The dot a password shows for each character.
pub const DOT: char = '●';

/// What a field takes.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The keys the editor shows.
    pub keys: Keys,
    /// A password: shown as dots, kept only in [`Secrets`].
    pub secret: bool,
    /// The most characters it holds.
    pub max: usize,
    /// Whether a typed character belongs in it (others are ignored).
    pub takes: fn(char) -> bool,
}

fn digit(c: char) -> bool {
    c.is_ascii_digit()
}

fn amount(c: char) -> bool {
    c.is_ascii_digit() || c == '.'
}

fn search(c: char) -> bool {
    c.is_ascii_digit() || c == '.' || c == '-'
}

/// Printable ASCII without the space: what a password may hold.
fn password(c: char) -> bool {
    c.is_ascii_graphic()
}

fn name(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// A host name or address with its port (IPv6 in brackets).
fn host(c: char) -> bool {
    c.is_ascii_alphanumeric() || ".:-_[]".contains(c)
}

/// What the keyboard can type into a merchant's name (a name already
/// holding Chinese characters keeps them: they are never typed, only
/// deleted).
fn merchant(c: char) -> bool {
    c.is_ascii_graphic() || c == ' '
}

/// What `field` takes.
pub fn spec(field: Field) -> Spec {
    let s = |keys, secret, max, takes| Spec {
        keys,
        secret,
        max,
        takes,
    };
    match field {
        Field::LoginPassword
        | Field::SupervisorPassword
        | Field::NewPassword
        | Field::NewPasswordAgain
        | Field::OperatorPassword => s(Keys::Password, true, 32, password),
        Field::Merchant => s(Keys::Text, false, 40, merchant),
        Field::MerchantId => s(Keys::Text, false, 15, name),
        Field::Host => s(Keys::Text, false, 64, host),
        Field::LimitTransaction | Field::LimitDaily | Field::LimitConfirm | Field::OfflineFloor => {
            s(Keys::Amount, false, 12, amount)
        }
        // Digits only; the separators are put in (see `Editor::shown`).
        Field::Clock => s(Keys::Datetime, false, 12, digit),
        Field::OperatorName => s(Keys::Text, false, 20, name),
        Field::HistorySearch => s(Keys::Search, false, 10, search),
        Field::None => s(Keys::Text, false, 0, |_| false),
    }
}

/// What a key did to the field.
#[derive(Debug, PartialEq, Eq)]
pub enum Edit {
    /// The text changed (or a key it does not take was ignored).
    Typed,
    /// Done: keep the text.
    Done,
    /// Cancel: leave the field as it was.
    Cancelled,
}

/// The field being typed into and what it holds so far.
pub struct Editor {
    /// The field.
    pub field: Field,
    /// The screen the field is on (the editor closes when it changes).
    pub screen: super::Screen,
    spec: Spec,
    text: Zeroizing<String>,
}

impl std::fmt::Debug for Editor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never what is typed: it may be a password.
        f.debug_struct("Editor")
            .field("field", &self.field)
            .field("chars", &self.text.chars().count())
            .finish()
    }
}

impl Editor {
    /// Opens `field` (on `screen`) holding `initial` — what the field
    /// shows, which for the clock is the formatted date and time.
    pub fn open(field: Field, screen: super::Screen, initial: &str) -> Editor {
        let spec = spec(field);
        let text: String = if field == Field::Clock {
            initial.chars().filter(char::is_ascii_digit).collect()
        } else {
            initial.to_string()
        };
        let mut text = Zeroizing::new(text);
        while text.chars().count() > spec.max {
            text.pop();
        }
        Editor {
            field,
            screen,
            spec,
            text,
        }
    }

    /// What the field takes.
    pub fn spec(&self) -> Spec {
        self.spec
    }

    /// Applies a key: one character, or `back`, `clear`, `enter`,
    /// `cancel` (the keypad's and the on-screen keys' names), or `00`.
    pub fn key(&mut self, k: &str) -> Edit {
        match k {
            "enter" => return Edit::Done,
            "cancel" => return Edit::Cancelled,
            "back" => {
                self.text.pop();
            }
            "clear" => self.text.clear(),
            "00" => {
                self.push('0');
                self.push('0');
            }
            _ => {
                let mut chars = k.chars();
                if let (Some(c), None) = (chars.next(), chars.next()) {
                    self.push(c);
                }
            }
        }
        Edit::Typed
    }

    fn push(&mut self, c: char) {
        if (self.spec.takes)(c) && !self.full() {
            self.text.push(c);
        }
    }

    /// Whether the field takes no more characters.
    pub fn full(&self) -> bool {
        self.text.chars().count() >= self.spec.max
    }

    /// What the screen shows: dots for a password, the clock's digits as
    /// `YYYY-MM-DD HH:MM` so far.
    pub fn shown(&self) -> String {
        if self.spec.secret {
            return dots(self.text.chars().count());
        }
        if self.field == Field::Clock {
            return datetime(&self.text);
        }
        self.text.to_string()
    }

    /// The text, when the edit is done: the value the field keeps.
    pub fn value(self) -> Zeroizing<String> {
        if self.field == Field::Clock {
            return Zeroizing::new(datetime(&self.text));
        }
        self.text
    }
}

/// `n` dots.
pub fn dots(n: usize) -> String {
    std::iter::repeat_n(DOT, n).collect()
}

/// Digits typed for a date and time, with the separators in place:
/// `2026112114` → `2026-11-21 14`.
fn datetime(digits: &str) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        match i {
            4 | 6 => out.push('-'),
            8 => out.push(' '),
            10 => out.push(':'),
            _ => {}
        }
        out.push(c);
    }
    out
}

/// The passwords typed into fields, until they are used. Each is zeroized
/// when it is replaced, taken or dropped.
#[derive(Default)]
pub struct Secrets {
    held: Vec<(Field, Zeroizing<String>)>,
}

impl Secrets {
    /// Keeps `value` for `field`, wiping what it held.
    pub fn put(&mut self, field: Field, value: Zeroizing<String>) {
        self.held.retain(|(f, _)| *f != field);
        self.held.push((field, value));
    }

    /// Takes what `field` holds (empty when nothing).
    pub fn take(&mut self, field: Field) -> Zeroizing<String> {
        match self.held.iter().position(|(f, _)| *f == field) {
            Some(i) => self.held.swap_remove(i).1,
            None => Zeroizing::new(String::new()),
        }
    }

    /// Wipes what `field` holds.
    pub fn wipe(&mut self, field: Field) {
        self.held.retain(|(f, _)| *f != field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::Screen;

    fn typed(field: Field, keys: &[&str]) -> Editor {
        let mut e = Editor::open(field, Screen::Settings, "");
        for k in keys {
            assert_eq!(e.key(k), Edit::Typed);
        }
        e
    }

    #[test]
    fn a_password_shows_dots_only_and_keeps_what_was_typed() {
        let e = typed(Field::LoginPassword, &["1", "2", "a", "B", "3"]);
        assert_eq!(e.shown(), "●●●●●");
        assert!(!format!("{e:?}").contains("12aB3"), "{e:?}");
        assert_eq!(e.value().as_str(), "12aB3");
        // A space is not a password character.
        assert_eq!(typed(Field::NewPassword, &["1", " ", "2"]).shown(), "●●");
    }

    #[test]
    fn back_clear_and_the_double_zero_edit_as_on_the_keypad() {
        let mut e = typed(Field::LimitDaily, &["5", "00", ".", "5"]);
        assert_eq!(e.shown(), "500.5");
        e.key("back");
        assert_eq!(e.shown(), "500.");
        e.key("clear");
        assert_eq!(e.shown(), "");
        assert_eq!(e.key("enter"), Edit::Done);
        assert_eq!(e.key("cancel"), Edit::Cancelled);
    }

    #[test]
    fn each_field_takes_only_its_characters_up_to_its_length() {
        assert_eq!(
            typed(Field::LimitDaily, &["1", "a", ".", "-"]).shown(),
            "1."
        );
        assert_eq!(
            typed(Field::HistorySearch, &["2", "0", "-", "a", "."]).shown(),
            "20-."
        );
        assert_eq!(
            typed(Field::Host, &["a", ".", "b", ":", "7", " ", "/"]).shown(),
            "a.b:7"
        );
        assert_eq!(typed(Field::OperatorName, &["w", "-", "1"]).shown(), "w1");
        let mut id = Editor::open(Field::MerchantId, Screen::Settings, "");
        for _ in 0..20 {
            id.key("9");
        }
        assert_eq!(id.shown().len(), 15);
        assert!(id.full());
        // Keys that are not one character (arrows, a stray name) do nothing.
        assert_eq!(typed(Field::Host, &["shift", "", "ab"]).shown(), "");
    }

    #[test]
    fn a_chinese_name_opened_for_editing_keeps_its_characters() {
        let mut e = Editor::open(Field::Merchant, Screen::Settings, "Till 演示商店");
        e.key("back");
        e.key(" ");
        e.key("2");
        assert_eq!(e.value().as_str(), "Till 演示商 2");
    }

    #[test]
    fn the_clock_is_typed_as_digits_and_shown_with_its_separators() {
        let mut e = Editor::open(Field::Clock, Screen::Settings, "");
        for d in "202611211405".chars() {
            e.key(&d.to_string());
        }
        e.key("9");
        assert_eq!(e.shown(), "2026-11-21 14:05");
        e.key("back");
        e.key("back");
        assert_eq!(e.shown(), "2026-11-21 14");
        let opened = Editor::open(Field::Clock, Screen::Settings, "2026-11-21 14:05");
        assert_eq!(opened.value().as_str(), "2026-11-21 14:05");
    }

    #[test]
    fn secrets_are_taken_once() {
        let mut s = Secrets::default();
        s.put(Field::LoginPassword, Zeroizing::new("111111".into()));
        s.put(Field::LoginPassword, Zeroizing::new("222222".into()));
        assert_eq!(s.take(Field::LoginPassword).as_str(), "222222");
        assert_eq!(s.take(Field::LoginPassword).as_str(), "");
        s.put(Field::NewPassword, Zeroizing::new("x".into()));
        s.wipe(Field::NewPassword);
        assert_eq!(s.take(Field::NewPassword).as_str(), "");
    }
}
