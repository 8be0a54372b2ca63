//! Who is working: an operator's login (with the lockout after wrong
//! passwords), the first login's own password, a supervisor's approval of
//! a void or refund, logout. Passwords come from the fields' [`Secrets`]
//! and are wiped as soon as they are checked.
//!
//! [`Secrets`]: super::input::Secrets

use super::operators::{self, LoginError};
use super::{Controller, Field, NoticeKind, Screen, ui_role, unix_now};

impl Controller {
    /// An operator's name was tapped (login, or a supervisor's approval):
    /// their password is typed next, so its keys open at once.
    pub(super) fn choose_operator(&self, name: &str) {
        let field = if self.screen() == Screen::Supervisor {
            Field::SupervisorPassword
        } else {
            Field::LoginPassword
        };
        self.clear_fields(&[field]);
        self.with(|t| t.set_login_name(name.into()));
        self.edit(field);
    }

    /// Logs in the chosen operator with the password typed for them.
    pub(super) fn login(&self) {
        let name = self.with(|t| t.get_login_name()).to_string();
        if name.is_empty() {
            return;
        }
        let password = self.take_secret(Field::LoginPassword);
        if password.is_empty() {
            // "Log in" before a password: type it first (no try is spent).
            return self.edit(Field::LoginPassword);
        }
        let result = self
            .ops
            .borrow_mut()
            .login(&name, password.as_str(), unix_now());
        drop(password);
        match result {
            Ok(role) => {
                self.state.borrow_mut().operator = Some((name.clone(), role));
                self.with(|t| {
                    t.set_operator(name.as_str().into());
                    t.set_role(ui_role(role));
                    t.set_login_tries_left(0);
                    t.set_login_name("".into());
                });
                tracing::info!(operator = name, ?role, "operator logged in");
                if self.ops.borrow().must_change_password(&name) {
                    self.clear_fields(&[Field::NewPassword, Field::NewPasswordAgain]);
                    self.with(|t| {
                        t.set_password_message("".into());
                        t.set_screen(Screen::NewPassword);
                    });
                } else {
                    self.to_work();
                }
            }
            Err(e) => self.login_refused(e),
        }
        self.show_operators();
    }

    /// After a login: home, signing the terminal in first if it is not.
    pub(super) fn to_work(&self) {
        if self.state.borrow().status.signed_in {
            self.set_screen(Screen::Home);
        } else {
            self.sign_in();
        }
    }

    /// The logged-in operator replaces a password someone else set.
    pub(super) fn change_password(&self) {
        let new = self.take_secret(Field::NewPassword);
        let again = self.take_secret(Field::NewPasswordAgain);
        let Some(name) = self.state.borrow().operator.as_ref().map(|o| o.0.clone()) else {
            return self.home();
        };
        let result = if new != again {
            Err("mismatch")
        } else {
            use operators::AccountError as E;
            self.ops
                .borrow_mut()
                .change_password(&name, new.as_str())
                .map_err(|e| match e {
                    E::ShortPassword => "short",
                    E::SamePassword => "same",
                    e => {
                        tracing::error!(error = %e, "password not changed");
                        "failed"
                    }
                })
        };
        drop((new, again));
        match result {
            Ok(()) => {
                tracing::info!(operator = name, "operator chose a new password");
                self.to_work();
            }
            Err(m) => self.with(|t| t.set_password_message(m.into())),
        }
    }

    pub(super) fn login_refused(&self, e: LoginError) {
        match e {
            LoginError::WrongPassword { tries_left } => {
                self.with(|t| t.set_login_tries_left(tries_left as i32));
            }
            LoginError::Locked { until } => {
                let at = chrono::DateTime::from_timestamp(until, 0)
                    .map(|t| t.with_timezone(&chrono::Local).format("%H:%M").to_string())
                    .unwrap_or_default();
                self.notice(NoticeKind::AccountLocked, &at, "");
            }
            LoginError::Store(e) => {
                tracing::error!(error = %e, "operator file");
                self.notice(NoticeKind::Internal, "", "");
            }
            LoginError::Unknown(_) => self.notice(NoticeKind::Internal, "", ""),
        }
    }

    /// A supervisor approves the flow with the password typed for them.
    pub(super) fn approve(&self, name: &str) {
        if name.is_empty() {
            return;
        }
        let password = self.take_secret(Field::SupervisorPassword);
        if password.is_empty() {
            return self.edit(Field::SupervisorPassword);
        }
        let result = self
            .ops
            .borrow_mut()
            .login(name, password.as_str(), unix_now());
        drop(password);
        match result {
            Ok(role) if role.approves() => {
                if let Some(f) = self.state.borrow_mut().flow.as_mut() {
                    f.approved_by = Some(name.to_string());
                }
                tracing::info!(supervisor = name, "approved");
                self.with(|t| {
                    t.set_login_tries_left(0);
                    t.set_login_name("".into());
                });
                self.advance();
            }
            Ok(_) => self.notice(NoticeKind::NotPermitted, "", ""),
            Err(e) => self.login_refused(e),
        }
        self.show_operators();
    }

    pub(super) fn logout(&self) {
        self.state.borrow_mut().operator = None;
        self.with(|t| {
            t.set_operator("".into());
            t.set_role(super::Role::Cashier);
            t.set_login_name("".into());
        });
        self.home();
    }
}
