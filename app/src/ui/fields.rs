//! The controller's side of typing: a tapped field opens the on-screen
//! keys ([`input::Editor`]), every key — on screen, on the GPIO keypad or
//! on a desktop's keyboard — goes to the open field, and a finished edit
//! lands in the `Form` global (passwords in [`input::Secrets`], the form
//! showing only dots). Some fields act when done: a password typed at
//! login logs in, a search searches.

use zeroize::Zeroizing;

use super::input::{self, Edit, Editor};
use super::{Controller, Field, Form, Screen};
use till_hal::keypad::Key;

impl Controller {
    /// Runs `f` with the `Form` global (nothing once the window is gone).
    pub(super) fn with_form<R: Default>(&self, f: impl FnOnce(&Form<'_>) -> R) -> R {
        use slint::ComponentHandle;
        match self.ui.upgrade() {
            Some(ui) => f(&ui.global::<Form>()),
            None => R::default(),
        }
    }

    /// Shows `text` in `field` (for a password: what it shows, the dots).
    pub(super) fn show_field(&self, field: Field, text: &str) {
        let text = slint::SharedString::from(text);
        self.with_form(|f| match field {
            Field::LoginPassword => f.set_login_password(text),
            Field::SupervisorPassword => f.set_supervisor_password(text),
            Field::NewPassword => f.set_new_password(text),
            Field::NewPasswordAgain => f.set_new_password_again(text),
            Field::Merchant => f.set_merchant(text),
            Field::MerchantId => f.set_merchant_id(text),
            Field::Host => f.set_host(text),
            Field::LimitTransaction => f.set_limit_transaction(text),
            Field::LimitDaily => f.set_limit_daily(text),
            Field::LimitConfirm => f.set_limit_confirm(text),
            Field::OfflineFloor => f.set_offline_floor(text),
            Field::Clock => f.set_clock(text),
            Field::OperatorName => f.set_operator_name(text),
            Field::OperatorPassword => f.set_operator_password(text),
            Field::HistorySearch => f.set_history_search(text),
            Field::None => {}
        });
    }

    /// What a field that is not a password holds.
    pub(super) fn field(&self, field: Field) -> String {
        self.with_form(|f| match field {
            Field::Merchant => f.get_merchant(),
            Field::MerchantId => f.get_merchant_id(),
            Field::Host => f.get_host(),
            Field::LimitTransaction => f.get_limit_transaction(),
            Field::LimitDaily => f.get_limit_daily(),
            Field::LimitConfirm => f.get_limit_confirm(),
            Field::OfflineFloor => f.get_offline_floor(),
            Field::Clock => f.get_clock(),
            Field::OperatorName => f.get_operator_name(),
            Field::HistorySearch => f.get_history_search(),
            _ => Default::default(),
        })
        .to_string()
    }

    /// Takes the password typed into `field`; the field is empty after.
    pub(super) fn take_secret(&self, field: Field) -> Zeroizing<String> {
        self.show_field(field, "");
        self.state.borrow_mut().secrets.take(field)
    }

    /// Empties fields (passwords wiped).
    pub(super) fn clear_fields(&self, fields: &[Field]) {
        for &f in fields {
            self.state.borrow_mut().secrets.wipe(f);
            self.show_field(f, "");
        }
    }

    /// Opens the on-screen keys on `field` of the screen shown.
    pub(super) fn edit(&self, field: Field) {
        if field == Field::None {
            return;
        }
        let initial = if input::spec(field).secret {
            // A password is typed anew, never shown back.
            self.state.borrow_mut().secrets.wipe(field);
            String::new()
        } else {
            self.field(field)
        };
        let editor = Editor::open(field, self.screen(), &initial);
        self.state.borrow_mut().editor = Some(editor);
        self.show_editor();
    }

    /// The open editor, if it belongs to the screen shown; one left over
    /// from another screen (a timeout moved on) is wiped.
    pub(super) fn editing(&self) -> bool {
        let screen = self.screen();
        let mut st = self.state.borrow_mut();
        match &st.editor {
            Some(e) if e.screen == screen => true,
            Some(_) => {
                st.editor = None;
                drop(st);
                self.with(|t| t.set_editing(Field::None));
                false
            }
            None => false,
        }
    }

    fn show_editor(&self) {
        let st = self.state.borrow();
        let Some(e) = st.editor.as_ref() else {
            drop(st);
            return self.with(|t| t.set_editing(Field::None));
        };
        let (field, screen, keys, shown, full) =
            (e.field, e.screen, e.spec().keys, e.shown(), e.full());
        drop(st);
        self.with(|t| {
            t.set_edit_keys(keys);
            t.set_edit_text(shown.into());
            t.set_edit_full(full);
            t.set_edit_screen(screen);
            t.set_editing(field);
        });
    }

    /// A key for the open field.
    pub(super) fn edit_key(&self, k: &str) {
        let edit = match self.state.borrow_mut().editor.as_mut() {
            Some(e) => e.key(k),
            None => return,
        };
        match edit {
            Edit::Typed => self.show_editor(),
            Edit::Cancelled => {
                self.state.borrow_mut().editor = None;
                self.show_editor();
            }
            Edit::Done => {
                let Some(e) = self.state.borrow_mut().editor.take() else {
                    return;
                };
                let field = e.field;
                let secret = e.spec().secret;
                let value = e.value();
                if secret {
                    self.show_field(field, &input::dots(value.chars().count()));
                    self.state.borrow_mut().secrets.put(field, value);
                } else {
                    self.show_field(field, &value);
                }
                self.show_editor();
                self.field_done(field);
            }
        }
    }

    /// What a field does when its edit is done.
    fn field_done(&self, field: Field) {
        match field {
            Field::LoginPassword => self.login(),
            Field::SupervisorPassword => {
                let name = self.with(|t| t.get_login_name()).to_string();
                self.approve(&name);
            }
            Field::NewPassword => self.edit(Field::NewPasswordAgain),
            Field::NewPasswordAgain => self.change_password(),
            Field::HistorySearch => self.search(),
            _ => {}
        }
    }

    /// A hardware keypad key while a field is open, as the editor's key.
    pub(super) fn keypad_edit(&self, key: Key) {
        let keys = match self.state.borrow().editor.as_ref() {
            Some(e) => e.spec().keys,
            None => return,
        };
        let decimals = matches!(keys, super::Keys::Amount | super::Keys::Search);
        let k = match key {
            Key::Digit(d) => char::from(b'0' + d.min(9)).to_string(),
            Key::Star if decimals => ".".into(),
            Key::Star | Key::B => "back".into(),
            Key::Hash | Key::D => "enter".into(),
            Key::A => "cancel".into(),
            Key::C => "clear".into(),
        };
        self.edit_key(&k);
    }

    /// The field the keypad types into on this screen when none is open:
    /// a digit typed at login goes into the chosen operator's password.
    pub(super) fn keypad_field(&self) -> Option<Field> {
        let chosen = !self.with(|t| t.get_login_name()).is_empty();
        match self.screen() {
            Screen::Login if chosen => Some(Field::LoginPassword),
            Screen::Supervisor if chosen => Some(Field::SupervisorPassword),
            Screen::NewPassword => Some(Field::NewPassword),
            Screen::History => Some(Field::HistorySearch),
            _ => None,
        }
    }
}
