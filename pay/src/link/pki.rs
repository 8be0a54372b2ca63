//! A development PKI: one CA, the acquirer simulator's server certificate,
//! and a certificate, master key and data key per terminal, for
//! `tillctl pki init DIR`.
//!
//! In production the acquirer's CA issues terminal certificates and a
//! key-injection facility loads the master key into the device's secure
//! element; neither ever sits in a directory next to the CA key. This module
//! exists so that a developer can run a terminal against the acquirer
//! simulator with real mutual TLS instead of switching verification off.
//!
//! The layout written into `DIR`:
//!
//! | file | what |
//! | --- | --- |
//! | `ca.crt`, `ca.key` | the CA |
//! | `acquirer.crt`, `acquirer.key` | the simulator's server certificate (SANs = host names) |
//! | `terminals/<ID>/terminal.crt`, `terminal.key` | terminal certificate, CN = terminal id |
//! | `terminals/<ID>/tmk.hex`, `data.key` | terminal master key, data key (hex) |
//! | `terminal.crt`, `terminal.key`, `terminal.tmk`, `terminal.datakey` | copies for the first terminal, the files `tillctl` uses by default |
//! | `host-keys.toml` | every terminal's master key, for the acquirer simulator |
//!
//! Private keys and key files are created with mode 0600.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, Days, Utc};
use rand::TryRng;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::ServerName;
use zeroize::Zeroizing;

use super::identity::{IdentityError, TerminalFiles, validate_terminal_id};

/// Longest validity accepted, in days; the date type rcgen uses ends at year
/// 9999, and a development CA has no business living a century anyway.
const MAX_VALIDITY_DAYS: u32 = 36_500;

/// What [`init`] issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiOptions {
    /// Terminal ids (ISO 8583 field 41) to issue certificates and keys for;
    /// the first is the default terminal. Default: `["TILL0001"]`.
    pub terminal_ids: Vec<String>,
    /// DNS names and IP addresses the acquirer simulator's certificate is
    /// valid for. Default: `localhost`, `127.0.0.1`, `::1`.
    pub host_names: Vec<String>,
    /// How long every certificate is valid, in days from today. Default 365.
    pub validity_days: u32,
    /// Replace an existing PKI in the directory (and so invalidate every
    /// certificate issued from it). Default `false`.
    pub force: bool,
}

impl Default for PkiOptions {
    fn default() -> Self {
        PkiOptions {
            terminal_ids: vec!["TILL0001".into()],
            host_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            validity_days: 365,
            force: false,
        }
    }
}

/// Where [`init`] put everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiSummary {
    /// The CA certificate.
    pub ca_cert: PathBuf,
    /// The CA private key.
    pub ca_key: PathBuf,
    /// The acquirer simulator's certificate.
    pub acquirer_cert: PathBuf,
    /// The acquirer simulator's private key.
    pub acquirer_key: PathBuf,
    /// The acquirer simulator's terminal master keys.
    pub host_keys: PathBuf,
    /// Each terminal id with its files under `terminals/<ID>/`, in the order
    /// given.
    pub terminals: Vec<(String, TerminalFiles)>,
    /// The copies of the first terminal's files at the top of the directory.
    pub default_terminal: TerminalFiles,
}

/// Why a development PKI could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The directory already holds a CA.
    #[error(
        "{path} already exists: replacing it would invalidate every certificate \
         it issued. Use another directory, or pass --force to replace it"
    )]
    Exists {
        /// The existing CA key.
        path: PathBuf,
    },
    /// A terminal id is not valid.
    #[error(transparent)]
    TerminalId(#[from] IdentityError),
    /// The options make no sense.
    #[error("cannot issue the PKI: {0}")]
    Options(String),
    /// rcgen refused to build a certificate.
    #[error("cannot create the {what} certificate: {reason}")]
    Certificate {
        /// Which certificate.
        what: String,
        /// rcgen's reason.
        reason: String,
    },
    /// The operating system's random source failed.
    #[error("cannot generate random keys: {0}")]
    Random(String),
    /// A file or directory could not be written.
    #[error("cannot write {path}: {source}; check that the directory is writable")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
}

/// Issues a development PKI into `dir` (created if missing).
///
/// Refuses to replace an existing `dir/ca.key` unless `opts.force` is set.
/// Everything is generated before the first file is written, so a bad option
/// leaves the directory untouched.
pub fn init(dir: &Path, opts: &PkiOptions) -> Result<PkiSummary, PkiError> {
    check_options(opts)?;
    let ca_key_path = dir.join("ca.key");
    if !opts.force && ca_key_path.exists() {
        return Err(PkiError::Exists { path: ca_key_path });
    }

    let validity = Validity::from_today(opts.validity_days)?;
    let ca = issue_ca(&validity)?;
    let acquirer = issue_acquirer(&ca.issuer, &opts.host_names, &validity)?;
    let terminals = opts
        .terminal_ids
        .iter()
        .map(|id| issue_terminal(&ca.issuer, id, &validity))
        .collect::<Result<Vec<_>, _>>()?;

    fs::create_dir_all(dir).map_err(|source| PkiError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let summary = PkiSummary {
        ca_cert: dir.join("ca.crt"),
        ca_key: ca_key_path,
        acquirer_cert: dir.join("acquirer.crt"),
        acquirer_key: dir.join("acquirer.key"),
        host_keys: dir.join("host-keys.toml"),
        terminals: opts
            .terminal_ids
            .iter()
            .map(|id| Ok((id.clone(), TerminalFiles::in_dir(dir, Some(id))?)))
            .collect::<Result<Vec<_>, IdentityError>>()?,
        default_terminal: TerminalFiles::in_dir(dir, None)?,
    };

    write_public(&summary.ca_cert, &ca.cert_pem)?;
    write_secret(&summary.ca_key, &ca.key_pem)?;
    write_public(&summary.acquirer_cert, &acquirer.cert_pem)?;
    write_secret(&summary.acquirer_key, &acquirer.key_pem)?;

    let mut host_keys = Zeroizing::new(String::from(
        "# Terminal master keys for the acquirer simulator, written by `tillctl pki init`.\n\
         # Development keys: never load them into a production host.\n",
    ));
    for ((id, files), terminal) in summary.terminals.iter().zip(&terminals) {
        let parent = files.cert.parent().unwrap_or(dir);
        fs::create_dir_all(parent).map_err(|source| PkiError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
        write_terminal(files, terminal)?;
        host_keys.push_str(&format!(
            "\n[terminals.{id}]\ntmk = \"{}\"\n",
            terminal.tmk_hex.as_str()
        ));
    }
    if let Some(first) = terminals.first() {
        write_terminal(&summary.default_terminal, first)?;
    }
    write_secret(&summary.host_keys, &host_keys)?;
    Ok(summary)
}

fn check_options(opts: &PkiOptions) -> Result<(), PkiError> {
    if opts.terminal_ids.is_empty() {
        return Err(PkiError::Options("give at least one terminal id".into()));
    }
    let mut seen = BTreeSet::new();
    for id in &opts.terminal_ids {
        validate_terminal_id(id)?;
        if !seen.insert(id) {
            return Err(PkiError::Options(format!(
                "terminal id {id} is given twice"
            )));
        }
    }
    if opts.host_names.is_empty() {
        return Err(PkiError::Options(
            "give at least one host name or address for the acquirer certificate".into(),
        ));
    }
    for name in &opts.host_names {
        if ServerName::try_from(name.as_str()).is_err() {
            return Err(PkiError::Options(format!(
                "host name {name:?} is neither a DNS name nor an IP address"
            )));
        }
    }
    if !(1..=MAX_VALIDITY_DAYS).contains(&opts.validity_days) {
        return Err(PkiError::Options(format!(
            "validity must be 1 to {MAX_VALIDITY_DAYS} days, not {}",
            opts.validity_days
        )));
    }
    Ok(())
}

/// Certificate validity, from yesterday (so that a device whose clock is a
/// little behind still accepts a fresh certificate) to `days` from today.
struct Validity {
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
}

impl Validity {
    fn from_today(days: u32) -> Result<Validity, PkiError> {
        let today = Utc::now().date_naive();
        let out_of_range = || PkiError::Options(format!("validity of {days} days is out of range"));
        let start = today
            .checked_sub_days(Days::new(1))
            .ok_or_else(out_of_range)?;
        let end = today
            .checked_add_days(Days::new(u64::from(days)))
            .ok_or_else(out_of_range)?;
        // rcgen's date constructor panics outside years 1..=9999 and on
        // impossible dates; chrono only yields real dates, so the year is
        // all that needs checking.
        let ymd = |d: chrono::NaiveDate| -> Result<(i32, u8, u8), PkiError> {
            let month = u8::try_from(d.month()).map_err(|_| out_of_range())?;
            let day = u8::try_from(d.day()).map_err(|_| out_of_range())?;
            if !(1..=9999).contains(&d.year()) {
                return Err(out_of_range());
            }
            Ok((d.year(), month, day))
        };
        Ok(Validity {
            not_before: ymd(start)?,
            not_after: ymd(end)?,
        })
    }

    fn apply(&self, params: &mut CertificateParams) {
        let (y, m, d) = self.not_before;
        params.not_before = rcgen::date_time_ymd(y, m, d);
        let (y, m, d) = self.not_after;
        params.not_after = rcgen::date_time_ymd(y, m, d);
    }
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: Zeroizing<String>,
}

struct Issued {
    cert_pem: String,
    key_pem: Zeroizing<String>,
}

struct Terminal {
    issued: Issued,
    tmk_hex: Zeroizing<String>,
    datakey_hex: Zeroizing<String>,
}

fn cert_error(what: &str) -> impl Fn(rcgen::Error) -> PkiError + '_ {
    move |e| PkiError::Certificate {
        what: what.to_owned(),
        reason: e.to_string(),
    }
}

fn issue_ca(validity: &Validity) -> Result<Ca, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    // A random tag keeps two development CAs apart by name: with equal names
    // a certificate from the other CA fails as a bad signature instead of
    // as an unknown issuer, which misleads whoever reads the log.
    let tag = random_hex_key(4)?;
    params.distinguished_name.push(
        DnType::CommonName,
        format!("Till development CA {}", tag.as_str()),
    );
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Till");
    // Path length 0: this CA signs end-entity certificates only.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity.apply(&mut params);
    let key = KeyPair::generate().map_err(cert_error("CA"))?;
    let cert = params.self_signed(&key).map_err(cert_error("CA"))?;
    let key_pem = Zeroizing::new(key.serialize_pem());
    Ok(Ca {
        issuer: Issuer::new(params, key),
        cert_pem: cert.pem(),
        key_pem,
    })
}

fn issue_leaf(
    issuer: &Issuer<'static, KeyPair>,
    what: &str,
    mut params: CertificateParams,
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
    validity: &Validity,
) -> Result<Issued, PkiError> {
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Till");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    validity.apply(&mut params);
    let key = KeyPair::generate().map_err(cert_error(what))?;
    let cert = params.signed_by(&key, issuer).map_err(cert_error(what))?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: Zeroizing::new(key.serialize_pem()),
    })
}

fn issue_acquirer(
    issuer: &Issuer<'static, KeyPair>,
    host_names: &[String],
    validity: &Validity,
) -> Result<Issued, PkiError> {
    let params = CertificateParams::new(host_names.to_vec()).map_err(cert_error("acquirer"))?;
    issue_leaf(
        issuer,
        "acquirer",
        params,
        "Till acquirer simulator",
        ExtendedKeyUsagePurpose::ServerAuth,
        validity,
    )
}

fn issue_terminal(
    issuer: &Issuer<'static, KeyPair>,
    id: &str,
    validity: &Validity,
) -> Result<Terminal, PkiError> {
    let what = format!("terminal {id}");
    let issued = issue_leaf(
        issuer,
        &what,
        CertificateParams::default(),
        id,
        ExtendedKeyUsagePurpose::ClientAuth,
        validity,
    )?;
    Ok(Terminal {
        issued,
        tmk_hex: random_hex_key(16)?,
        datakey_hex: random_hex_key(32)?,
    })
}

/// A fresh key from the operating system's random source, as uppercase hex.
fn random_hex_key(len: usize) -> Result<Zeroizing<String>, PkiError> {
    let mut key = Zeroizing::new(vec![0u8; len]);
    rand::rngs::SysRng
        .try_fill_bytes(&mut key)
        .map_err(|e| PkiError::Random(e.to_string()))?;
    Ok(Zeroizing::new(hex::encode_upper(&*key)))
}

fn write_terminal(files: &TerminalFiles, terminal: &Terminal) -> Result<(), PkiError> {
    write_public(&files.cert, &terminal.issued.cert_pem)?;
    write_secret(&files.key, &terminal.issued.key_pem)?;
    write_secret(&files.tmk, &format!("{}\n", terminal.tmk_hex.as_str()))?;
    write_secret(
        &files.datakey,
        &format!("{}\n", terminal.datakey_hex.as_str()),
    )
}

fn write_public(path: &Path, contents: &str) -> Result<(), PkiError> {
    fs::write(path, contents).map_err(|source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a file only its owner may read. The mode is set again after
/// opening because `mode` only applies when the file is created, and it is
/// set before writing so that a replaced file never shows the new secret
/// under its old, looser mode.
fn write_secret(path: &Path, contents: &str) -> Result<(), PkiError> {
    let failed = |source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path).map_err(failed)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(failed)?;
        write_all(file, contents).map_err(failed)
    }
    #[cfg(not(unix))]
    {
        let file = options.open(path).map_err(failed)?;
        write_all(file, contents).map_err(failed)
    }
}

fn write_all(mut file: fs::File, contents: &str) -> io::Result<()> {
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::tls;
    use std::sync::Arc;

    fn scratch() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("till-pki")
            .tempdir()
            .expect("a temporary directory")
    }

    /// Runs a TLS handshake in memory and returns the server's view of the
    /// client certificate chain.
    fn handshake(
        client: Arc<rustls::ClientConfig>,
        server: Arc<rustls::ServerConfig>,
        server_name: &str,
    ) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, rustls::Error> {
        let name = ServerName::try_from(server_name.to_owned()).unwrap();
        let mut c = rustls::ClientConnection::new(client, name)?;
        let mut s = rustls::ServerConnection::new(server)?;
        for _ in 0..20 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            s.read_tls(&mut &buf[..]).unwrap();
            s.process_new_packets()?;
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            c.read_tls(&mut &buf[..]).unwrap();
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(s.peer_certificates().unwrap_or_default().to_vec());
            }
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn issues_a_working_pki() {
        let dir = scratch();
        let opts = PkiOptions {
            terminal_ids: vec!["TILL0001".into(), "TILL0002".into()],
            ..PkiOptions::default()
        };
        let summary = init(dir.path(), &opts).unwrap();
        assert_eq!(summary.terminals.len(), 2);

        let server = tls::server_config(
            &summary.ca_cert,
            &summary.acquirer_cert,
            &summary.acquirer_key,
        )
        .unwrap();
        let mut identities = summary.terminals.clone();
        identities.push(("TILL0001".into(), summary.default_terminal.clone()));
        for (id, files) in &identities {
            for host in ["localhost", "127.0.0.1", "::1"] {
                let chain =
                    handshake(files.client_config().unwrap(), server.clone(), host).unwrap();
                assert_eq!(tls::peer_common_name(&chain).as_deref(), Some(id.as_str()));
            }
            assert_eq!(files.read_tmk().unwrap().len(), 16);
            assert_eq!(files.read_datakey().unwrap().len(), 32);
        }

        // The default copies are the first terminal's files.
        let first = &summary.terminals[0].1;
        for (a, b) in [
            (&first.cert, &summary.default_terminal.cert),
            (&first.key, &summary.default_terminal.key),
            (&first.tmk, &summary.default_terminal.tmk),
            (&first.datakey, &summary.default_terminal.datakey),
        ] {
            assert_eq!(fs::read(a).unwrap(), fs::read(b).unwrap());
        }

        let host_keys = crate::link::identity::load_host_keys(&summary.host_keys).unwrap();
        assert_eq!(
            host_keys.keys().collect::<Vec<_>>(),
            ["TILL0001", "TILL0002"]
        );
        for (id, files) in &summary.terminals {
            assert_eq!(host_keys[id], files.read_tmk().unwrap());
            let hex = fs::read_to_string(&files.tmk).unwrap();
            assert_eq!(hex.trim().len(), 32);
            assert_eq!(hex.trim(), hex.trim().to_uppercase());
        }
        assert_ne!(
            summary.terminals[0].1.read_tmk().unwrap(),
            summary.terminals[1].1.read_tmk().unwrap()
        );
    }

    #[test]
    fn terminal_certificates_are_not_server_certificates() {
        let dir = scratch();
        let summary = init(dir.path(), &PkiOptions::default()).unwrap();
        let files = &summary.default_terminal;
        // A terminal certificate (clientAuth only) must not pass as a host.
        let server = tls::server_config(&summary.ca_cert, &files.cert, &files.key).unwrap();
        let err = handshake(files.client_config().unwrap(), server, "localhost").unwrap_err();
        assert!(matches!(err, rustls::Error::InvalidCertificate(_)), "{err}");
    }

    #[test]
    fn host_names_outside_the_certificate_are_refused() {
        let dir = scratch();
        let summary = init(dir.path(), &PkiOptions::default()).unwrap();
        let server = tls::server_config(
            &summary.ca_cert,
            &summary.acquirer_cert,
            &summary.acquirer_key,
        )
        .unwrap();
        let client = summary.default_terminal.client_config().unwrap();
        let err = handshake(client, server, "acquirer.example").unwrap_err();
        assert!(matches!(err, rustls::Error::InvalidCertificate(_)), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn secrets_are_private_and_certificates_are_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch();
        let summary = init(dir.path(), &PkiOptions::default()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let t = &summary.terminals[0].1;
        let d = &summary.default_terminal;
        for secret in [
            &summary.ca_key,
            &summary.acquirer_key,
            &summary.host_keys,
            &t.key,
            &t.tmk,
            &t.datakey,
            &d.key,
            &d.tmk,
            &d.datakey,
        ] {
            assert_eq!(mode(secret), 0o600, "{}", secret.display());
        }
        for public in [&summary.ca_cert, &summary.acquirer_cert, &t.cert, &d.cert] {
            assert!(public.is_file());
            assert_eq!(mode(public) & 0o600, 0o600, "{}", public.display());
        }
    }

    #[cfg(unix)]
    #[test]
    fn forced_replacement_tightens_loose_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch();
        let summary = init(dir.path(), &PkiOptions::default()).unwrap();
        fs::set_permissions(&summary.ca_key, fs::Permissions::from_mode(0o644)).unwrap();
        let forced = PkiOptions {
            force: true,
            ..PkiOptions::default()
        };
        init(dir.path(), &forced).unwrap();
        let mode = fs::metadata(&summary.ca_key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn refuses_to_overwrite_a_ca_unless_forced() {
        let dir = scratch();
        let summary = init(dir.path(), &PkiOptions::default()).unwrap();
        let before = fs::read(&summary.ca_key).unwrap();
        let err = init(dir.path(), &PkiOptions::default()).unwrap_err();
        assert!(matches!(err, PkiError::Exists { .. }), "{err}");
        assert!(err.to_string().contains("ca.key"), "{err}");
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(fs::read(&summary.ca_key).unwrap(), before);

        let forced = PkiOptions {
            force: true,
            ..PkiOptions::default()
        };
        init(dir.path(), &forced).unwrap();
        assert_ne!(fs::read(&summary.ca_key).unwrap(), before);
    }

    #[test]
    fn rejects_bad_options_before_writing_anything() {
        let bad = [
            PkiOptions {
                terminal_ids: vec!["TILL001".into()],
                ..PkiOptions::default()
            },
            PkiOptions {
                terminal_ids: vec!["../TILL1".into()],
                ..PkiOptions::default()
            },
            PkiOptions {
                terminal_ids: vec!["TILL 001".into()],
                ..PkiOptions::default()
            },
            PkiOptions {
                terminal_ids: vec!["TILL0001".into(), "TILL0001".into()],
                ..PkiOptions::default()
            },
            PkiOptions {
                terminal_ids: vec![],
                ..PkiOptions::default()
            },
            PkiOptions {
                host_names: vec![],
                ..PkiOptions::default()
            },
            PkiOptions {
                host_names: vec!["not a host".into()],
                ..PkiOptions::default()
            },
            PkiOptions {
                validity_days: 0,
                ..PkiOptions::default()
            },
            PkiOptions {
                validity_days: u32::MAX,
                ..PkiOptions::default()
            },
        ];
        for opts in bad {
            let dir = scratch();
            let target = dir.path().join("pki");
            let err = init(&target, &opts).unwrap_err();
            assert!(
                matches!(err, PkiError::TerminalId(_) | PkiError::Options(_)),
                "{opts:?}: {err}"
            );
            assert!(!target.exists(), "{opts:?} wrote files");
        }
    }

    #[test]
    fn long_validity_within_the_limit_works() {
        let dir = scratch();
        let opts = PkiOptions {
            validity_days: MAX_VALIDITY_DAYS,
            ..PkiOptions::default()
        };
        init(dir.path(), &opts).unwrap();
    }
}
