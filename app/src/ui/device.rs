//! Device mode (`till --config FILE`): the real drivers of `till_hal` from
//! the device configuration, the terminal's PKI and journal.
//!
//! ```toml
//! pki = "/etc/till/pki"              # from provisioning (tillctl pki, or the acquirer's)
//! terminal_id = "TILL0001"           # optional: the CN of PKI/terminal.crt
//! state = "/var/lib/till"            # journal, settings, operators
//! devices = "/etc/till/devices.toml" # reader, keypad, printer, scanner (tillctl devices default-config)
//! host = "acquirer.example.com:7000" # first start only; then the settings screen
//! merchant_name = "Till Demo Shop 演示商店" # first start only, like host
//! merchant_id = "123456789012345"    # first start only, like host
//! ```
//!
//! The merchant's name comes from provisioning because a name in Chinese
//! characters cannot be typed on the terminal (its on-screen keyboard has
//! no input method); the settings screen shows it and can add to it.
//!
//! On the first start there are no operators: the administrator's password
//! comes from `TILL_INITIAL_ADMIN_PASSWORD` (set once by provisioning),
//! and the app refuses to start without it rather than invent one.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use till_hal::config::DevicesConfig;
use till_pay::link::TerminalFiles;

use super::operators::{Operators, Role};
use super::settings::Settings;
use super::worker::Setup;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    pki: PathBuf,
    terminal_id: Option<String>,
    state: PathBuf,
    devices: Option<PathBuf>,
    host: Option<String>,
    merchant_name: Option<String>,
    merchant_id: Option<String>,
}

/// Reads the device configuration and everything it names.
pub fn load(path: &Path) -> Result<(Setup, Operators, PathBuf), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the configuration {}: {e}", path.display()))?;
    let file: File = toml::from_str(&text)
        .map_err(|e| format!("the configuration {} is not valid: {e}", path.display()))?;
    let devices = match &file.devices {
        Some(p) => DevicesConfig::load(p).map_err(|e| e.to_string())?,
        None => DevicesConfig::default(),
    };
    let files =
        TerminalFiles::in_dir(&file.pki, file.terminal_id.as_deref()).map_err(|e| e.to_string())?;
    let terminal_id = match &file.terminal_id {
        Some(id) => id.clone(),
        None => till_pay::link::tls::load_certs(&files.cert)
            .ok()
            .and_then(|c| till_pay::link::tls::peer_common_name(&c))
            .ok_or_else(|| {
                format!(
                    "cannot read the terminal id from {}; set terminal_id in {}",
                    files.cert.display(),
                    path.display()
                )
            })?,
    };
    let settings_path = file.state.join("settings.toml");
    let first_start = !settings_path.exists();
    let mut settings = Settings::load(&settings_path)?;
    if first_start {
        if let Some(name) = &file.merchant_name {
            settings.merchant_name = name.clone();
        }
        if let Some(id) = &file.merchant_id {
            settings.merchant_id = id.clone();
        }
    }
    if settings.host.is_empty() {
        settings.host = file.host.clone().unwrap_or_default();
    }
    let ops_path = file.state.join("operators.toml");
    let initial = if ops_path.exists() {
        None
    } else {
        Some(std::env::var("TILL_INITIAL_ADMIN_PASSWORD").map_err(|_| {
            format!(
                "no operators yet ({} is missing): start once with TILL_INITIAL_ADMIN_PASSWORD set to the administrator's first password",
                ops_path.display()
            )
        })?)
    };
    let accounts: Vec<(&str, Role, &str)> = initial
        .as_deref()
        .map(|p| vec![("admin", Role::Administrator, p)])
        .unwrap_or_default();
    let mut operators = Operators::open(&ops_path, &accounts)?;
    if initial.is_some() {
        // Provisioning knows this password: the administrator replaces it
        // at the first login.
        operators
            .require_password_change("admin")
            .map_err(|e| format!("cannot write {}: {e}", ops_path.display()))?;
    }
    Ok((
        Setup {
            files,
            terminal_id,
            state_dir: file.state,
            settings,
            devices,
            sim_printer: None,
        },
        operators,
        settings_path,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_merchant_comes_from_provisioning_at_the_first_start_only() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        // Operators exist: no initial password is needed.
        Operators::open(
            &state.join("operators.toml"),
            &[("admin", Role::Administrator, "123456")],
        )
        .unwrap();
        let path = dir.path().join("till.toml");
        std::fs::write(
            &path,
            format!(
                "pki = {:?}\nterminal_id = \"TILL0001\"\nstate = {:?}\n\
                 merchant_name = \"小王超市 Wang's\"\nmerchant_id = \"987654321098765\"\n",
                dir.path().join("pki"),
                state
            ),
        )
        .unwrap();
        let (setup, _, settings_path) = load(&path).unwrap();
        assert_eq!(setup.settings.merchant_name, "小王超市 Wang's");
        assert_eq!(setup.settings.merchant_id, "987654321098765");
        // Once the settings screen saved its own, provisioning's name no
        // longer overrides it.
        let mut saved = setup.settings.clone();
        saved.merchant_name = "Wang's Corner".into();
        saved.save(&settings_path).unwrap();
        let (setup, _, _) = load(&path).unwrap();
        assert_eq!(setup.settings.merchant_name, "Wang's Corner");
    }

    #[test]
    fn a_bad_configuration_is_named_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("till.toml");
        std::fs::write(&path, "pki = 3").unwrap();
        let err = load(&path).err().unwrap();
        assert!(
            err.contains("till.toml") && err.contains("not valid"),
            "{err}"
        );
        let err = load(&dir.path().join("missing.toml")).err().unwrap();
        assert!(err.contains("cannot read"), "{err}");
    }
}
