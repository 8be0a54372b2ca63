//! The terminal's settings as the administrator edits them on screen
//! (MISSION §9): merchant, host, limits, language. Kept in
//! `STATE/settings.toml`, replaced atomically.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use till_pay::engine::{Limits, OfflineLimits};
use till_pay::money::{Amount, Currency};

/// Settings of one terminal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Printed at the top of receipts and shown on every screen.
    pub merchant_name: String,
    /// Merchant id (field 42), 15 characters.
    pub merchant_id: String,
    /// Acquirer host, NAME:PORT.
    pub host: String,
    /// Dialect name or file.
    pub dialect: String,
    /// Currency code.
    pub currency: String,
    /// `en` or `zh_CN`.
    pub language: String,
    /// Largest single transaction (empty: no limit).
    pub per_transaction: String,
    /// Largest day's total of sales (empty: no limit).
    pub daily_limit: String,
    /// Amounts above this are confirmed twice (empty: never).
    pub confirm_above: String,
    /// Sales up to this may be approved offline (empty: none).
    pub offline_floor: String,
    /// Seconds to wait for a card.
    pub card_wait_seconds: u64,
    /// Seconds to wait for the host's answer.
    pub host_timeout_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            merchant_name: "Till Demo Shop 演示商店".into(),
            merchant_id: "123456789012345".into(),
            host: String::new(),
            dialect: "cup".into(),
            currency: "CNY".into(),
            language: "en".into(),
            per_transaction: "50000.00".into(),
            daily_limit: String::new(),
            confirm_above: "1000.00".into(),
            offline_floor: String::new(),
            card_wait_seconds: 30,
            host_timeout_seconds: 45,
        }
    }
}

/// Why settings were refused (the screen says it in words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsError {
    /// A limit is not an amount.
    BadAmount,
    /// The host is not NAME:PORT.
    BadHost,
    /// The merchant id or name is unusable.
    BadMerchant,
}

impl Settings {
    /// Loads `path`, or the defaults when it does not exist.
    pub fn load(path: &Path) -> Result<Settings, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                format!(
                    "the settings file {} cannot be read ({e}); fix or remove it",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes the settings to `path`.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = toml::to_string(self).map_err(|e| e.to_string())?;
        crate::ui::write_atomically(path, text.as_bytes())
    }

    /// The currency, CNY when the code is unknown.
    pub fn currency(&self) -> Currency {
        Currency::find(&self.currency)
            .or_else(|| Currency::find("CNY"))
            .expect("CNY is a known currency")
    }

    fn amount(&self, text: &str) -> Result<Option<Amount>, SettingsError> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(None);
        }
        Amount::parse(t, self.currency())
            .map(Some)
            .map_err(|_| SettingsError::BadAmount)
    }

    /// Checks everything the administrator can type.
    pub fn validate(&self) -> Result<(), SettingsError> {
        for t in [
            &self.per_transaction,
            &self.daily_limit,
            &self.confirm_above,
            &self.offline_floor,
        ] {
            self.amount(t)?;
        }
        let host_ok = self.host.rsplit_once(':').is_some_and(|(name, port)| {
            !name.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !host_ok {
            return Err(SettingsError::BadHost);
        }
        if self.merchant_name.trim().is_empty()
            || self.merchant_id.chars().count() != 15
            || !self.merchant_id.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(SettingsError::BadMerchant);
        }
        Ok(())
    }

    /// The engine's limits.
    pub fn limits(&self) -> Limits {
        Limits {
            per_transaction: self.amount(&self.per_transaction).ok().flatten(),
            daily: self.amount(&self.daily_limit).ok().flatten(),
            confirm_above: self.amount(&self.confirm_above).ok().flatten(),
        }
    }

    /// Offline approvals: up to the floor each, ten floors in all.
    pub fn offline(&self) -> Option<OfflineLimits> {
        let floor = self.amount(&self.offline_floor).ok().flatten()?;
        Some(OfflineLimits::new(
            floor,
            Amount(floor.0.saturating_mul(10)),
        ))
    }

    /// How long to wait for a card.
    pub fn card_wait(&self) -> Duration {
        Duration::from_secs(self.card_wait_seconds.clamp(5, 120))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_before_they_are_used() {
        let mut s = Settings {
            host: "127.0.0.1:7000".into(),
            ..Settings::default()
        };
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.limits().confirm_above, Some(Amount(100_000)));
        s.daily_limit = "12.3.4".into();
        assert_eq!(s.validate(), Err(SettingsError::BadAmount));
        s.daily_limit.clear();
        s.host = "nohost".into();
        assert_eq!(s.validate(), Err(SettingsError::BadHost));
        s.host = "h:0".into();
        assert_eq!(s.validate(), Err(SettingsError::BadHost));
        s.host = "h:1".into();
        s.merchant_id = "123".into();
        assert_eq!(s.validate(), Err(SettingsError::BadMerchant));
    }

    #[test]
    fn settings_round_trip_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        assert_eq!(Settings::load(&path).unwrap(), Settings::default());
        let s = Settings {
            offline_floor: "100.00".into(),
            ..Settings::default()
        };
        s.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), s);
        assert_eq!(s.offline().unwrap().cumulative_limit, Amount(100_000));
        std::fs::write(&path, "card_wait_seconds = \"x\"").unwrap();
        assert!(Settings::load(&path).unwrap_err().contains("settings.toml"));
    }
}
