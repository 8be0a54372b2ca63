//! `tillctl provision`: give a terminal its identity. An image carries no
//! keys; provisioning copies a terminal's files (from a USB stick, or a
//! directory on the console) onto its data partition, where `till` finds
//! them at its next start.
//!
//! The directory holds what `tillctl pki init` (or the acquirer) issued for
//! one terminal — `ca.crt`, `terminal.crt`, `terminal.key`, `terminal.tmk`,
//! `terminal.datakey`, or a multi-terminal PKI's `terminals/ID/` (the
//! layouts of `TerminalFiles::in_dir`) — and, for a
//! terminal that has no operators yet, `admin-password` (the administrator's
//! first password, replaced at the first login). An optional
//! `settings.toml` (merchant name and id, host) becomes the terminal's
//! settings if it has none.
//!
//! Every file is written through a temporary file, fsync and rename, with
//! mode 0600 (0700 directories), owned like the directory it goes into
//! (the till user on an image). A terminal that already has an identity is
//! never overwritten without `--force`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use till_pay::link::TerminalFiles;

use super::{Done, Failure};

/// The identity's files of a terminal's PKI directory (the layout without
/// a terminal id, which a terminal's own `till.toml` uses).
fn identity(files: &TerminalFiles) -> [&Path; 5] {
    [
        &files.ca,
        &files.cert,
        &files.key,
        &files.tmk,
        &files.datakey,
    ]
}

/// The administrator's first password, in the provisioning directory and
/// (until `till` has made the operator file) in the terminal's PKI.
pub const ADMIN_PASSWORD: &str = "admin-password";

#[derive(Args)]
pub(crate) struct ProvisionArgs {
    /// The provisioning directory (a USB stick's till-provision folder).
    #[arg(long)]
    from: PathBuf,
    /// Which terminal of a multi-terminal PKI (the files under terminals/ID/).
    #[arg(long = "terminal-id")]
    terminal_id: Option<String>,
    /// The terminal's data directory: PKI in DATA/pki, settings in DATA/state.
    #[arg(long, default_value = "/var/lib/till")]
    to: PathBuf,
    /// Replace an identity the terminal already has.
    #[arg(long)]
    force: bool,
}

pub(crate) fn run(args: ProvisionArgs) -> Result<Done, Failure> {
    let written = provision(
        &args.from,
        args.terminal_id.as_deref(),
        &args.to,
        args.force,
    )?;
    Ok(Done::Json(json!({
        "provisioned": args.to.join("pki"),
        "files": written,
        "next": "till starts with this identity (it restarts by itself when it shows the not-provisioned screen)",
    })))
}

/// Copies the provisioning directory's files into `data`; the names written.
pub(crate) fn provision(
    from: &Path,
    terminal_id: Option<&str>,
    data: &Path,
    force: bool,
) -> Result<Vec<String>, Failure> {
    let bad = |m: String| Failure::new("provision", m);
    if !from.is_dir() {
        return Err(bad(format!(
            "{} is not a directory: give the provisioning folder (e.g. the USB stick's till-provision)",
            from.display()
        )));
    }
    let source = TerminalFiles::in_dir(from, terminal_id).map_err(|e| bad(e.to_string()))?;
    let missing: Vec<String> = identity(&source)
        .into_iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!(
            "{} lacks {}: the folder needs the files tillctl pki init (or the acquirer) issued for this terminal{}",
            from.display(),
            missing.join(", "),
            if terminal_id.is_none() && from.join("terminals").is_dir() {
                " (it has terminals/: give --terminal-id)"
            } else {
                ""
            }
        )));
    }
    let pki = data.join("pki");
    let state = data.join("state");
    // The terminal's user owns what it reads: the PKI directory's owner
    // where it exists (the image's till-data.service made it), else the
    // data directory's.
    fs::create_dir_all(data).map_err(|e| bad(format!("cannot create {}: {e}", data.display())))?;
    let owner_of = if pki.is_dir() {
        pki.clone()
    } else {
        data.to_path_buf()
    };
    let owner = fs::metadata(&owner_of)
        .map(|m| (m.uid(), m.gid()))
        .map_err(|e| bad(format!("cannot read {}: {e}", owner_of.display())))?;
    for dir in [&pki, &state] {
        fs::create_dir_all(dir)
            .map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
    }
    if !force && pki.join("terminal.crt").exists() {
        return Err(bad(format!(
            "{} already holds a terminal identity; give --force to replace it",
            pki.display()
        )));
    }
    if !state.join("operators.toml").exists()
        && !from.join(ADMIN_PASSWORD).is_file()
        && !pki.join(ADMIN_PASSWORD).is_file()
    {
        return Err(bad(format!(
            "the terminal has no operators yet and {} has no {ADMIN_PASSWORD} file (the administrator's first password, changed at the first login)",
            from.display()
        )));
    }
    fs::set_permissions(&pki, fs::Permissions::from_mode(0o700))
        .map_err(|e| bad(format!("cannot protect {}: {e}", pki.display())))?;
    chown(&pki, owner).map_err(|e| {
        bad(format!(
            "cannot give {} to the terminal: {e}",
            pki.display()
        ))
    })?;
    let mut written = Vec::new();
    let mut copy = |src: PathBuf, dest: PathBuf| -> Result<(), Failure> {
        let bytes =
            fs::read(&src).map_err(|e| bad(format!("cannot read {}: {e}", src.display())))?;
        write_private(&dest, &bytes, owner)
            .map_err(|e| bad(format!("cannot write {}: {e}", dest.display())))?;
        written.push(dest.display().to_string());
        Ok(())
    };
    let dest = TerminalFiles::in_dir(&pki, None).map_err(|e| bad(e.to_string()))?;
    for (src, to) in identity(&source).into_iter().zip(identity(&dest)) {
        copy(src.to_path_buf(), to.to_path_buf())?;
    }
    if from.join(ADMIN_PASSWORD).is_file() && !state.join("operators.toml").exists() {
        copy(from.join(ADMIN_PASSWORD), pki.join(ADMIN_PASSWORD))?;
    }
    if from.join("settings.toml").is_file() && !state.join("settings.toml").exists() {
        copy(from.join("settings.toml"), state.join("settings.toml"))?;
    }
    Ok(written)
}

/// `bytes` to `path` with mode 0600 through a temporary file, fsync and
/// rename (a power cut leaves the old file or the new one), owned by
/// `owner`.
fn write_private(path: &Path, bytes: &[u8], owner: (u32, u32)) -> std::io::Result<()> {
    let tmp = path.with_extension("provisioning");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    chown(&tmp, owner)?;
    fs::rename(&tmp, path)?;
    fs::File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
}

/// Gives `path` to `owner` when it is not theirs already (only root can).
fn chown(path: &Path, owner: (u32, u32)) -> std::io::Result<()> {
    let m = fs::metadata(path)?;
    if (m.uid(), m.gid()) == owner {
        return Ok(());
    }
    std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 5] = [
        "ca.crt",
        "terminal.crt",
        "terminal.key",
        "terminal.tmk",
        "terminal.datakey",
    ];

    fn issued(dir: &Path) {
        for n in NAMES {
            fs::write(dir.join(n), format!("{n} bytes")).unwrap();
        }
    }

    #[test]
    fn the_identity_lands_on_the_data_partition_private_and_whole() {
        let from = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        issued(from.path());
        fs::write(from.path().join(ADMIN_PASSWORD), "246813\n").unwrap();
        let written = provision(from.path(), None, data.path(), false).unwrap();
        assert_eq!(written.len(), 6);
        let pki = data.path().join("pki");
        assert_eq!(
            fs::metadata(&pki).unwrap().permissions().mode() & 0o777,
            0o700
        );
        for n in NAMES.iter().chain([&ADMIN_PASSWORD]) {
            let p = pki.join(n);
            assert_eq!(
                fs::read_to_string(&p).unwrap(),
                fs::read_to_string(from.path().join(n)).unwrap()
            );
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600,
                "{n}"
            );
        }
        assert!(!pki.read_dir().unwrap().any(|e| {
            e.unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "provisioning")
        }));
        // A second provisioning never replaces an identity silently.
        let err = provision(from.path(), None, data.path(), false)
            .err()
            .unwrap();
        assert!(err.message.contains("--force"), "{}", err.message);
        provision(from.path(), None, data.path(), true).unwrap();
    }

    #[test]
    fn what_is_missing_is_named_and_nothing_is_written() {
        let from = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        issued(from.path());
        fs::remove_file(from.path().join("terminal.tmk")).unwrap();
        let err = provision(from.path(), None, data.path(), false)
            .err()
            .unwrap();
        assert!(err.message.contains("terminal.tmk"), "{}", err.message);
        assert!(!data.path().join("pki").exists());
        // All files, but a terminal without operators needs its first password.
        issued(from.path());
        let err = provision(from.path(), None, data.path(), false)
            .err()
            .unwrap();
        assert!(err.message.contains(ADMIN_PASSWORD), "{}", err.message);
        assert!(!data.path().join("pki/terminal.key").exists());
    }

    #[test]
    fn a_terminal_of_a_multi_terminal_pki_is_chosen_by_id() {
        let from = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        // tillctl pki init's layout for several terminals.
        let own = from.path().join("terminals/TILL0002");
        fs::create_dir_all(&own).unwrap();
        fs::write(from.path().join("ca.crt"), "ca").unwrap();
        for n in ["terminal.crt", "terminal.key", "tmk.hex", "data.key"] {
            fs::write(own.join(n), format!("{n} bytes")).unwrap();
        }
        fs::create_dir_all(data.path().join("state")).unwrap();
        fs::write(data.path().join("state/operators.toml"), "").unwrap();
        let err = provision(from.path(), None, data.path(), false)
            .err()
            .unwrap();
        assert!(err.message.contains("--terminal-id"), "{}", err.message);
        provision(from.path(), Some("TILL0002"), data.path(), false).unwrap();
        assert_eq!(
            fs::read_to_string(data.path().join("pki/terminal.key")).unwrap(),
            "terminal.key bytes"
        );
        assert_eq!(
            fs::read_to_string(data.path().join("pki/terminal.tmk")).unwrap(),
            "tmk.hex bytes"
        );
    }
}
