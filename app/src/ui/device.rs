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
//! data = "/var/lib/till"             # optional: the data partition's mount point
//! data_problem = "/run/till/data-problem" # why it is not mounted (the default)
//! ```
//!
//! The merchant's name comes from provisioning because a name in Chinese
//! characters cannot be typed on the terminal (its on-screen keyboard has
//! no input method); the settings screen shows it and can add to it.
//!
//! On the first start there are no operators: the administrator's password
//! comes from `PKI/admin-password` (written by `tillctl provision`, removed
//! once the operator file exists) or `TILL_INITIAL_ADMIN_PASSWORD`; the
//! app never invents one.
//!
//! A terminal that cannot start yet is [`Unavailable`], not a crash: with no
//! identity (an image carries no keys) or with its data partition not
//! mounted (`data`: then `/run/till/data-problem` says why), `till` shows
//! what to do and starts by itself once the problem is gone.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use till_hal::config::DevicesConfig;
use till_pay::link::TerminalFiles;

use super::operators::{Operators, Role};
use super::settings::Settings;
use super::worker::Setup;
use crate::cli::provision::ADMIN_PASSWORD;

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
    data: Option<PathBuf>,
    data_problem: Option<PathBuf>,
}

/// Where till-data.service says why the data partition is not mounted.
pub const DATA_PROBLEM: &str = "/run/till/data-problem";

/// Why the terminal cannot start yet; the screen says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// No identity: these files are missing (provisioning puts them there).
    NotProvisioned(Vec<String>),
    /// The data partition is not mounted; why, as till-data.service said.
    Data(String),
}

/// What stops `load`.
#[derive(Debug)]
pub enum LoadError {
    /// Not yet: the terminal shows what to do and waits.
    Unavailable(Unavailable),
    /// The configuration is wrong: a message for service.
    Config(String),
}

impl From<String> for LoadError {
    fn from(e: String) -> LoadError {
        LoadError::Config(e)
    }
}

fn read_file(path: &Path) -> Result<File, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the configuration {}: {e}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| format!("the configuration {} is not valid: {e}", path.display()))
}

/// Whether `dir` is a mount point (on another filesystem than its parent).
fn is_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = dir.parent().unwrap_or(Path::new("/"));
    match (std::fs::metadata(dir), std::fs::metadata(parent)) {
        (Ok(d), Ok(p)) => d.dev() != p.dev(),
        _ => false,
    }
}

/// Whether the terminal can start, without changing anything: the data
/// partition mounted (if the configuration names one), the identity's
/// files present, a first administrator possible.
pub fn check(path: &Path) -> Result<(), LoadError> {
    let file = read_file(path)?;
    if let Some(data) = &file.data
        && !is_mount_point(data)
    {
        let problem = file
            .data_problem
            .clone()
            .unwrap_or_else(|| PathBuf::from(DATA_PROBLEM));
        let why = std::fs::read_to_string(problem)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| format!("{} is not mounted", data.display()));
        return Err(LoadError::Unavailable(Unavailable::Data(why)));
    }
    let files =
        TerminalFiles::in_dir(&file.pki, file.terminal_id.as_deref()).map_err(|e| e.to_string())?;
    let mut missing: Vec<String> = [
        &files.ca,
        &files.cert,
        &files.key,
        &files.tmk,
        &files.datakey,
    ]
    .into_iter()
    .filter(|p| !p.is_file())
    .map(|p| p.display().to_string())
    .collect();
    if !file.state.join("operators.toml").exists()
        && std::env::var_os("TILL_INITIAL_ADMIN_PASSWORD").is_none()
        && !file.pki.join(ADMIN_PASSWORD).is_file()
    {
        missing.push(file.pki.join(ADMIN_PASSWORD).display().to_string());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Unavailable(Unavailable::NotProvisioned(missing)))
    }
}

/// Reads the device configuration and everything it names.
pub fn load(path: &Path) -> Result<(Setup, Operators, PathBuf), LoadError> {
    check(path)?;
    let file = read_file(path)?;
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
    let provisioned_password = file.pki.join(ADMIN_PASSWORD);
    let initial = if ops_path.exists() {
        None
    } else {
        match std::env::var("TILL_INITIAL_ADMIN_PASSWORD") {
            Ok(p) => Some(zeroize::Zeroizing::new(p)),
            Err(_) => Some(zeroize::Zeroizing::new(
                std::fs::read_to_string(&provisioned_password)
                    .map_err(|e| {
                        format!(
                            "no operators yet and {} cannot be read: {e}",
                            provisioned_password.display()
                        )
                    })?
                    .trim()
                    .to_string(),
            )),
        }
    };
    let accounts: Vec<(&str, Role, &str)> = initial
        .as_deref()
        .map(|p| vec![("admin", Role::Administrator, p.as_str())])
        .unwrap_or_default();
    let mut operators = Operators::open(&ops_path, &accounts)?;
    if initial.is_some() {
        // Provisioning knows this password: the administrator replaces it
        // at the first login.
        operators
            .require_password_change("admin")
            .map_err(|e| format!("cannot write {}: {e}", ops_path.display()))?;
        // The operator file holds its hash now: the clear password goes.
        if provisioned_password.exists() {
            std::fs::remove_file(&provisioned_password)
                .map_err(|e| format!("cannot remove {}: {e}", provisioned_password.display()))?;
        }
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
        provisioned(&dir.path().join("pki"));
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

    /// The identity files of terminal TILL0001 in `pki`, as provisioning
    /// leaves them (their contents are read later, by the engine).
    fn provisioned(pki: &Path) {
        let own = pki.join("terminals/TILL0001");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(pki.join("ca.crt"), "ca").unwrap();
        for n in ["terminal.crt", "terminal.key", "tmk.hex", "data.key"] {
            std::fs::write(own.join(n), n).unwrap();
        }
    }

    fn config_error(e: LoadError) -> String {
        match e {
            LoadError::Config(m) => m,
            other => panic!("not a configuration error: {other:?}"),
        }
    }

    #[test]
    fn a_bad_configuration_is_named_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("till.toml");
        std::fs::write(&path, "pki = 3").unwrap();
        let err = config_error(load(&path).err().unwrap());
        assert!(
            err.contains("till.toml") && err.contains("not valid"),
            "{err}"
        );
        let err = config_error(load(&dir.path().join("missing.toml")).err().unwrap());
        assert!(err.contains("cannot read"), "{err}");
    }

    #[test]
    fn a_terminal_without_identity_or_data_partition_waits_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        let state = dir.path().join("state");
        let problem = dir.path().join("data-problem");
        let path = dir.path().join("till.toml");
        let write = |data: &Path| {
            std::fs::write(
                &path,
                format!(
                    "pki = {pki:?}\nterminal_id = \"TILL0001\"\nstate = {state:?}\n\
                     data = {data:?}\ndata_problem = {problem:?}\n"
                ),
            )
            .unwrap()
        };
        // The data directory is not a mount point: it waits, with the
        // reason till-data.service left.
        write(dir.path());
        std::fs::write(&problem, "damaged: e2fsck found errors\n").unwrap();
        match check(&path) {
            Err(LoadError::Unavailable(Unavailable::Data(why))) => {
                assert_eq!(why, "damaged: e2fsck found errors")
            }
            other => panic!("{other:?}"),
        }
        // On a mounted data partition (/proc is one), no identity yet.
        write(Path::new("/proc"));
        match check(&path) {
            Err(LoadError::Unavailable(Unavailable::NotProvisioned(missing))) => {
                assert_eq!(missing.len(), 6, "{missing:?}");
                assert!(missing.iter().any(|m| m.ends_with("terminal.key")));
                assert!(missing.iter().any(|m| m.ends_with(ADMIN_PASSWORD)));
            }
            other => panic!("{other:?}"),
        }
        // Provisioned: the first administrator comes from admin-password,
        // which is gone once the operator file holds its hash.
        provisioned(&pki);
        std::fs::write(pki.join(ADMIN_PASSWORD), "246813\n").unwrap();
        check(&path).unwrap();
        let (_, ops, _) = load(&path).unwrap();
        assert!(ops.must_change_password("admin"));
        assert!(!pki.join(ADMIN_PASSWORD).exists());
        let hashed = std::fs::read_to_string(state.join("operators.toml")).unwrap();
        assert!(!hashed.contains("246813"));
        check(&path).unwrap();
    }
}
