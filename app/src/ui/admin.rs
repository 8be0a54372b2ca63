//! The administrator's screens: settings (merchant, host, limits), the
//! language, the date and time, and the operator accounts. Each action
//! checks the logged-in role itself, whatever buttons a screen shows.

use slint::{ModelRc, VecModel};

use super::operators::{self, Role as OpRole};
use super::settings::SettingsError;
use super::worker::Job;
use super::{Controller, Field, NoticeKind, Operator, Role, ui_role, unix_now, wallclock};

impl Controller {
    /// Whether the administrator is logged in; if not, says so.
    fn administrator(&self) -> bool {
        let admin = self.role() == Some(OpRole::Administrator);
        if !admin {
            self.notice(NoticeKind::NotPermitted, "", "");
        }
        admin
    }

    pub(super) fn show_operators(&self) {
        let now = unix_now();
        let ops = self.ops.borrow();
        let rows: Vec<Operator> = ops
            .accounts()
            .iter()
            .map(|a| Operator {
                name: a.name.clone().into(),
                role: ui_role(a.role),
                locked: ops.is_locked(&a.name, now),
            })
            .collect();
        self.with(|t| t.set_operators(ModelRc::new(VecModel::from(rows))));
    }

    pub(super) fn set_language(&self, lang: &str) {
        let mut s = self.settings.borrow().clone();
        s.language = if lang == "zh_CN" { "zh_CN" } else { "en" }.into();
        if let Err(e) = s.save(&self.settings_path) {
            tracing::error!(error = %e, "settings");
        }
        self.apply_settings(&s);
        *self.settings.borrow_mut() = s;
    }

    /// The settings screen's fields, from the settings in force.
    pub(super) fn fill_settings_form(&self) {
        let s = self.settings.borrow().clone();
        for (field, value) in [
            (Field::Merchant, &s.merchant_name),
            (Field::MerchantId, &s.merchant_id),
            (Field::Host, &s.host),
            (Field::LimitTransaction, &s.per_transaction),
            (Field::LimitDaily, &s.daily_limit),
            (Field::LimitConfirm, &s.confirm_above),
            (Field::OfflineFloor, &s.offline_floor),
        ] {
            self.show_field(field, value);
        }
        self.show_field(Field::Clock, "");
    }

    /// Sets the date and time typed in the clock field (`YYYY-MM-DD HH:MM`).
    pub(super) fn set_clock(&self) {
        if !self.administrator() {
            return;
        }
        let text = self.field(Field::Clock);
        let result = wallclock::parse(&text).and_then(|to| {
            if self.simulator {
                Err(wallclock::ClockError::Simulator)
            } else {
                wallclock::set_system_clock(to)
            }
        });
        let message = match result {
            Ok(()) => {
                self.show_field(Field::Clock, "");
                "time-set"
            }
            Err(e) => e.word(),
        };
        self.with(|t| t.set_settings_message(message.into()));
        self.tick();
    }

    /// Checks and keeps the settings screen's fields; nothing changes
    /// unless all of them are good.
    pub(super) fn save_settings(&self) {
        if !self.administrator() {
            return;
        }
        let mut s = self.settings.borrow().clone();
        let value = |f| self.field(f).trim().to_string();
        s.merchant_name = value(Field::Merchant);
        s.merchant_id = value(Field::MerchantId);
        s.host = value(Field::Host);
        s.per_transaction = value(Field::LimitTransaction);
        s.daily_limit = value(Field::LimitDaily);
        s.confirm_above = value(Field::LimitConfirm);
        s.offline_floor = value(Field::OfflineFloor);
        let message = match s.validate() {
            Err(SettingsError::BadAmount) => "bad-amount",
            Err(SettingsError::BadHost) => "bad-host",
            Err(SettingsError::BadMerchant) => "bad-merchant",
            Ok(()) => match s.save(&self.settings_path) {
                Ok(()) => {
                    self.apply_settings(&s);
                    *self.settings.borrow_mut() = s.clone();
                    self.worker.send(Job::Reconfigure(Box::new(s)));
                    self.worker.send(Job::Status);
                    "saved"
                }
                Err(e) => {
                    tracing::error!(error = %e, "settings");
                    "failed"
                }
            },
        };
        self.with(|t| t.set_settings_message(message.into()));
    }

    /// The operators screen starts with empty fields, a cashier by default.
    pub(super) fn clear_operator_form(&self) {
        self.clear_fields(&[Field::OperatorName, Field::OperatorPassword]);
        self.with_form(|f| f.set_operator_role(Role::Cashier));
    }

    /// Adds the account typed into the operators screen's fields.
    pub(super) fn add_operator(&self) {
        if !self.administrator() {
            return;
        }
        let name = self.field(Field::OperatorName);
        let password = self.take_secret(Field::OperatorPassword);
        let role = match self.with_form(|f| f.get_operator_role()) {
            Role::Supervisor => OpRole::Supervisor,
            Role::Administrator => OpRole::Administrator,
            Role::Cashier => OpRole::Cashier,
        };
        let result = self
            .ops
            .borrow_mut()
            .add(name.trim(), role, password.as_str());
        drop(password);
        use operators::AccountError as E;
        let message = match result {
            Ok(()) => {
                self.clear_operator_form();
                "added"
            }
            Err(E::NameTaken) => "name-taken",
            Err(E::BadName) => "bad-name",
            Err(E::ShortPassword) => "short-password",
            Err(_) => "failed",
        };
        self.show_operators();
        self.with(|t| t.set_operators_message(message.into()));
    }

    pub(super) fn unlock_operator(&self, name: &str) {
        if !self.administrator() {
            return;
        }
        let r = self.ops.borrow_mut().unlock(name);
        self.show_operators();
        self.with(|t| t.set_operators_message(if r.is_ok() { "" } else { "failed" }.into()));
    }

    pub(super) fn remove_operator(&self, name: &str) {
        if !self.administrator() {
            return;
        }
        let r = self.ops.borrow_mut().remove(name);
        self.show_operators();
        self.with(|t| t.set_operators_message(if r.is_ok() { "" } else { "failed" }.into()));
    }
}
