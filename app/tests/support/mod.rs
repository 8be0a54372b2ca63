//! Driving the real screens: the app on the headless platform with the
//! bundled acquirer, clicked where a finger would press (pointer events at
//! the element's centre, through Slint's hit testing) and typed at like
//! the keypad.
//!
//! Slint takes one platform per process, so every test's body runs on one
//! UI thread ([`ui`]), one test at a time: with cargo nextest (a process
//! per test) that changes nothing; with `cargo test` (threads, as in the
//! aarch64 stage under qemu-user) the tests take turns.

#![allow(dead_code)]

pub mod screens;

use std::time::Duration;

use i_slint_backend_testing::ElementHandle;
use slint::platform::{PointerEventButton, WindowEvent};
use slint::{LogicalPosition, Model};
use till_app::ui::demo::Driver;
use till_app::ui::{Field, Screen, Till};
use till_hal::keypad::Key;

type Body = Box<dyn FnOnce() + Send>;
type Done = std::thread::Result<()>;

type Job = (Body, std::sync::mpsc::Sender<Done>);

static UI_THREAD: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> =
    std::sync::OnceLock::new();

/// Runs a test's body on the process's UI thread and passes its panic on.
pub fn ui(body: impl FnOnce() + Send + 'static) {
    let sender = UI_THREAD.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ui".into())
            .spawn(move || {
                for (body, done) in rx {
                    let _ = done.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)));
                }
            })
            .expect("the UI thread starts");
        std::sync::Mutex::new(tx)
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    sender
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((Box::new(body), done_tx))
        .expect("the UI thread runs");
    if let Err(panic) = done_rx.recv().expect("the UI thread answers") {
        std::panic::resume_unwind(panic);
    }
}

pub struct T {
    pub d: Driver,
    pub dir: tempfile::TempDir,
    pub lang: std::cell::Cell<Lang>,
}

/// The language a flow runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

/// Runs each flow twice, once in English and once in Chinese: `flows! {
/// fn name(t) { … } }` makes `name::en` and `name::zh`, each with `t` on
/// the login screen in its language (switched at run time, as the
/// settings screen does). Bodies compare shown text with [`T::says`].
#[macro_export]
macro_rules! flows {
    ($($(#[$m:meta])* fn $name:ident($t:ident) $body:block)*) => {$(
        $(#[$m])*
        mod $name {
            use super::*;
            #[test]
            fn en() {
                support::ui(|| {
                    #[allow(unused_mut)]
                    let mut $t = support::start_in(support::Lang::En);
                    $body
                });
            }
            #[test]
            fn zh() {
                support::ui(|| {
                    #[allow(unused_mut)]
                    let mut $t = support::start_in(support::Lang::Zh);
                    $body
                });
            }
        }
    )*};
}

/// The zh_CN catalogue: (English msgid, Chinese msgstr).
pub fn po_entries() -> Vec<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("translations/zh_CN/LC_MESSAGES/till-app.po");
    let text = std::fs::read_to_string(path).unwrap();
    let unquote = |l: &str, key: &str| {
        l.strip_prefix(key)
            .map(|r| r.trim().trim_matches('"').replace("\\\"", "\""))
    };
    let mut out = Vec::new();
    let mut id = None;
    for line in text.lines() {
        if let Some(v) = unquote(line, "msgid ") {
            id = Some(v);
        } else if let (Some(v), Some(i)) = (unquote(line, "msgstr "), id.take())
            && !i.is_empty()
        {
            out.push((i, v));
        }
    }
    out
}

impl std::ops::Deref for T {
    type Target = Driver;
    fn deref(&self) -> &Driver {
        &self.d
    }
}

impl std::ops::DerefMut for T {
    fn deref_mut(&mut self) -> &mut Driver {
        &mut self.d
    }
}

/// The app at 800×480 on virtual time, past the self-test, on the login screen.
pub fn start() -> T {
    start_sized(800, 480)
}

/// [`start`] in a language.
pub fn start_in(lang: Lang) -> T {
    let t = start();
    if lang == Lang::Zh {
        t.till(|t| t.invoke_set_language("zh_CN".into()));
        t.display.pump();
    }
    t.lang.set(lang);
    assert!(t.says("Choose your name"), "login screen not in {lang:?}");
    t
}

pub fn start_sized(w: u32, h: u32) -> T {
    let dir = tempfile::tempdir().unwrap();
    let d = Driver::start(dir.path(), w, h, true).unwrap();
    d.until("the self-test", |d| d.till(|t| t.get_boot_done()))
        .unwrap();
    let t = T {
        d,
        dir,
        lang: std::cell::Cell::new(Lang::En),
    };
    t.click("BootScreen::continue");
    t.ok(t.until_screen(Screen::Login));
    t
}

impl T {
    pub fn ok(&self, r: Result<(), String>) {
        if let Err(e) = r {
            panic!("{e}");
        }
    }

    fn press_at(&self, e: &ElementHandle) {
        let pos = e.absolute_position();
        let size = e.size();
        assert!(size.width > 0.0 && size.height > 0.0, "element has no size");
        let position = LogicalPosition::new(pos.x + size.width / 2.0, pos.y + size.height / 2.0);
        let w = self.display.window();
        w.dispatch_event(WindowEvent::PointerMoved { position });
        w.dispatch_event(WindowEvent::PointerPressed {
            position,
            button: PointerEventButton::Left,
        });
        w.dispatch_event(WindowEvent::PointerReleased {
            position,
            button: PointerEventButton::Left,
        });
        w.dispatch_event(WindowEvent::PointerExited);
        self.display.pump();
    }

    /// Clicks the element with this id (`Component::id`).
    pub fn click(&self, id: &str) {
        self.display.pump();
        let e = ElementHandle::find_by_element_id(self.ui(), id)
            .find(|e| e.size().width > 0.0)
            .unwrap_or_else(|| panic!("no visible {id} on screen {:?}", self.screen()));
        self.press_at(&e);
    }

    /// Clicks the element whose accessible label (a button's text) is `label`.
    pub fn click_label(&self, label: &str) {
        self.display.pump();
        let e = ElementHandle::find_by_accessible_label(self.ui(), label)
            .find(|e| e.size().width > 0.0)
            .unwrap_or_else(|| panic!("no visible {label:?} on screen {:?}", self.screen()));
        self.press_at(&e);
    }

    /// Whether some visible element has this accessible label (Text
    /// elements' label is their text).
    pub fn shows(&self, label: &str) -> bool {
        self.display.pump();
        ElementHandle::find_by_accessible_label(self.ui(), label).any(|e| e.size().width > 0.0)
    }

    /// `english` (an @tr string, with `{}` filled from `args` in order) in
    /// the flow's language, from the catalogue the app uses.
    pub fn tr(&self, english: &str, args: &[&str]) -> String {
        let mut text = match self.lang.get() {
            Lang::En => english.to_string(),
            Lang::Zh => po_entries()
                .into_iter()
                .find(|(id, _)| id == english)
                .map(|(_, zh)| zh)
                .unwrap_or_else(|| panic!("no translation of {english:?}")),
        };
        for a in args {
            text = text.replacen("{}", a, 1);
        }
        text
    }

    /// The accessible label of the "Choose" button of the row with this
    /// reference number on the original-transaction list.
    pub fn choose(&self, rrn: &str) -> String {
        format!("{}:{rrn}", self.tr("Choose", &[]))
    }

    /// Whether the screen shows `english` in the flow's language.
    pub fn says(&self, english: &str) -> bool {
        self.shows(&self.tr(english, &[]))
    }

    /// [`T::says`] with placeholders.
    pub fn says_with(&self, english: &str, args: &[&str]) -> bool {
        self.shows(&self.tr(english, args))
    }

    /// The host's reason (and what to do) in the flow's language is on
    /// the result screen.
    pub fn shows_reason(&self) -> String {
        let (reason, action) = match self.lang.get() {
            Lang::En => (
                self.text(|t| t.get_reason_en()),
                self.text(|t| t.get_action_en()),
            ),
            Lang::Zh => (
                self.text(|t| t.get_reason_zh()),
                self.text(|t| t.get_action_zh()),
            ),
        };
        assert!(
            self.shows(&reason),
            "{:?}: reason {reason:?} not on screen",
            self.lang
        );
        if !action.is_empty() {
            assert!(
                self.shows(&action),
                "{:?}: action {action:?} not on screen",
                self.lang
            );
        }
        reason
    }

    /// The on-screen keys, if they are open.
    pub fn editor(&self) -> Option<ElementHandle> {
        self.display.pump();
        ElementHandle::find_by_element_type_name(self.ui(), "EditorScreen")
            .find(|e| e.size().width > 0.0)
    }

    /// The visible key of the open editor with this accessible label
    /// (a character key's label is its character).
    fn key_labelled(&self, label: &str) -> Option<ElementHandle> {
        let editor = self.editor().expect("the on-screen keys are open");
        let label = label.to_string();
        editor
            .query_descendants()
            .match_predicate(move |e| {
                e.accessible_role() == Some(i_slint_backend_testing::AccessibleRole::Button)
                    && e.accessible_label().is_some_and(|l| l == label.as_str())
            })
            .find_all()
            .into_iter()
            .find(|e| e.size().width > 0.0)
    }

    /// Whether the editor shows the element with this id (`Component::id`).
    fn editor_has(&self, id: &str) -> bool {
        ElementHandle::find_by_element_id(self.ui(), id).any(|e| e.size().width > 0.0)
    }

    /// Taps the editor's key for `c`, switching the keyboard's page or
    /// shift (or a password's number pad to letters) first when needed,
    /// as a person would.
    pub fn tap_key(&self, c: char) {
        if self.editor_has("NumPad::enter") && self.key_labelled(&c.to_string()).is_none() {
            // The number pad has no such key: a password switches to letters.
            self.click("EditorScreen::to-letters");
        }
        if c == ' ' {
            return self.click("Keyboard::space");
        }
        if let Some(k) = self.key_labelled(&c.to_string()) {
            return self.press_at(&k);
        }
        // On the keyboard: the other page, then shift.
        for step in [
            "Keyboard::page",
            "Keyboard::shift",
            "Keyboard::page",
            "Keyboard::shift",
        ] {
            if self.editor_has(step) {
                self.click(step);
            }
            if let Some(k) = self.key_labelled(&c.to_string()) {
                return self.press_at(&k);
            }
        }
        panic!("no key for {c:?} on the on-screen keys");
    }

    /// Types `text` on the open editor's keys, by taps alone.
    pub fn tap_keys(&self, text: &str) {
        for c in text.chars() {
            self.tap_key(c);
        }
    }

    /// Taps Done (OK on the number pad) on the open editor.
    pub fn tap_done(&self) {
        if self.editor_has("NumPad::enter") {
            self.click("NumPad::enter");
        } else {
            self.click("Keyboard::done");
        }
    }

    /// Taps the field with this id, types `text` on the on-screen keys
    /// (what the field held is cleared first) and taps Done.
    pub fn type_into(&self, id: &str, text: &str) {
        self.click(id);
        assert!(self.editor().is_some(), "{id} opened no on-screen keys");
        if self.editor_has("NumPad::enter") {
            self.click("NumPad::clear");
        } else {
            for _ in 0..self.text(|t| t.get_edit_text()).chars().count() {
                self.click("Keyboard::back");
            }
        }
        self.tap_keys(text);
        self.tap_done();
    }

    pub fn wait_screen(&self, s: Screen) {
        self.ok(self.until_screen(s));
    }

    pub fn wait(&self, what: &str, f: impl FnMut(&Driver) -> bool) {
        self.ok(self.until(what, f));
    }

    /// Logs in from the login screen and waits for home (signing in first
    /// when the terminal is not signed in).
    pub fn login(&self, who: &str, password: &str) {
        self.click_label(&self.login_label(who));
        // The name opens the number pad for the password; Done logs in.
        assert_eq!(self.till(|t| t.get_editing()), Field::LoginPassword);
        self.tap_keys(password);
        self.tap_done();
        self.after_login();
    }

    /// From an accepted password to home, signing in first when the
    /// terminal is not signed in.
    pub fn after_login(&self) {
        self.wait("the login", |d| {
            matches!(d.screen(), Screen::Signin | Screen::Home | Screen::Notice)
        });
        if self.screen() == Screen::Signin {
            self.wait("the sign-in", |d| !d.till(|t| t.get_busy()));
            assert!(self.till(|t| t.get_signed_in()), "sign-in failed");
            self.click("SignInScreen::home");
        }
        self.wait_screen(Screen::Home);
    }

    pub fn login_label(&self, who: &str) -> String {
        let role = self.till(|t| {
            let ops = t.get_operators();
            (0..ops.row_count())
                .filter_map(|i| ops.row_data(i))
                .find(|o| o.name.as_str() == who)
                .map(|o| o.role)
        });
        let zh = self.till(|t| t.get_lang()) == "zh_CN";
        let role = match (role.expect("operator exists"), zh) {
            (till_app::ui::Role::Administrator, false) => "administrator",
            (till_app::ui::Role::Supervisor, false) => "supervisor",
            (till_app::ui::Role::Cashier, false) => "cashier",
            (till_app::ui::Role::Administrator, true) => "主管理员",
            (till_app::ui::Role::Supervisor, true) => "主管",
            (till_app::ui::Role::Cashier, true) => "收银员",
        };
        format!("{who} · {role}")
    }

    /// A key of the hardware (GPIO) keypad, as its driver delivers it.
    pub fn keypad(&self, key: Key) {
        self.app.controller.keypad(key);
        self.display.pump();
    }

    /// Types as a cashier can: on the PIN screen on the hardware keypad
    /// (the PIN is never typed on the touchscreen), elsewhere on the
    /// on-screen number pad. `\u{8}` deletes, `\n` is OK. (The desktop
    /// keyboard's path is `Driver::type_text`.)
    pub fn type_text(&self, text: &str) {
        for c in text.chars() {
            if self.screen() == Screen::Pin {
                self.keypad(match c {
                    '0'..='9' => Key::Digit(c as u8 - b'0'),
                    '\u{8}' => Key::B,
                    '\n' => Key::D,
                    _ => panic!("the keypad has no {c:?}"),
                });
            } else {
                match c {
                    '\u{8}' => self.click("NumPad::back"),
                    '\n' => self.click("NumPad::enter"),
                    c => self.tap_pad(&c.to_string()),
                }
            }
        }
    }

    /// OK: on the keypad on the PIN screen, else on the number pad.
    pub fn enter(&self) {
        self.type_text("\n");
    }

    /// Taps the on-screen number pad's key with this label.
    pub fn tap_pad(&self, label: &str) {
        self.display.pump();
        let owned = label.to_string();
        let key = ElementHandle::find_by_element_type_name(self.ui(), "NumPad")
            .filter(|p| p.size().width > 0.0)
            .flat_map(|p| {
                let l = owned.clone();
                p.query_descendants()
                    .match_predicate(move |e| {
                        e.accessible_role() == Some(i_slint_backend_testing::AccessibleRole::Button)
                            && e.accessible_label().is_some_and(|x| x == l.as_str())
                    })
                    .find_all()
            })
            .find(|e| e.size().width > 0.0)
            .unwrap_or_else(|| panic!("no number pad key {label:?} on {:?}", self.screen()));
        self.press_at(&key);
    }

    /// Sale from home up to the payment method: amount typed.
    pub fn sale_to_method(&self, amount: &str) {
        self.click("HomeScreen::sale");
        self.wait_screen(Screen::Amount);
        self.type_text(amount);
        self.click("NumPad::enter");
        self.wait_screen(Screen::Method);
    }

    /// Sale from home up to the PIN screen: amount typed, card chosen, card tapped.
    pub fn sale_to_pin(&self, amount: &str, card: &str) {
        self.sale_to_method(amount);
        self.click("MethodScreen::card");
        self.wait_screen(Screen::Tap);
        self.click_label(&format!("card:{card}"));
        self.wait("the card", |d| d.screen() != Screen::Tap);
    }

    /// The administrator switches the terminal to Chinese (back on home).
    pub fn to_chinese(&self) {
        self.click("HomeScreen::settings");
        self.wait_screen(Screen::Settings);
        self.click("SettingsScreen::chinese");
        self.click("SettingsScreen::back");
        self.wait_screen(Screen::Home);
        self.lang.set(Lang::Zh);
    }

    /// The rest of a sale: PIN, confirmation(s), the result.
    pub fn pin_and_confirm(&self, pin: &str) {
        self.wait_screen(Screen::Pin);
        self.type_text(pin);
        assert_eq!(self.till(|t| t.get_pin_length()) as usize, pin.len());
        self.enter();
        self.wait_screen(Screen::Confirm);
        self.click("ConfirmScreen::confirm");
        self.display.pump();
        if self.screen() == Screen::Confirm {
            assert!(self.till(|t| t.get_second_confirmation()));
            self.click("ConfirmScreen::confirm");
        }
        self.wait_screen(Screen::Result);
        self.wait("the receipt", |d| !d.till(|t| t.get_printing()));
        self.shows_reason();
    }

    /// From the tap screen to the result when nothing is left to confirm
    /// (a balance inquiry, a PIN entered again): card, PIN, result.
    pub fn tap_and_pin(&self, card: &str, pin: &str) {
        self.wait_screen(Screen::Tap);
        self.click_label(&format!("card:{card}"));
        self.wait_screen(Screen::Pin);
        self.type_text(pin);
        self.enter();
        self.wait_screen(Screen::Result);
    }

    /// The result screen says approved (or the test shows why not).
    pub fn assert_approved(&self) {
        assert!(
            self.till(|t| t.get_approved()),
            "not approved: {}",
            self.text(|t| t.get_reason_en())
        );
    }

    pub fn advance(&self, by: Duration) {
        self.display.advance(by);
    }

    pub fn text(&self, f: impl FnOnce(&Till<'_>) -> slint::SharedString) -> String {
        self.till(f).to_string()
    }

    pub fn receipts(&self) -> Vec<String> {
        let dir = self.dir.path().join("receipts");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "txt"));
        files.sort();
        // Amounts print double width ("C N Y  8 8 . 0 0"): compare without spaces.
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap().replace(' ', ""))
            .collect()
    }
}
