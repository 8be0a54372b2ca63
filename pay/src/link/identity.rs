//! Where a terminal's identity lives on disk, and how its key files are read.
//!
//! A terminal proves who it is with a certificate and private key (for the
//! TLS link) and holds two symmetric keys: the terminal master key (TMK)
//! under which the host sends working keys, and the data key that encrypts
//! card data at rest. On a development machine they come from
//! `tillctl pki init`; on a device, from the key-injection facility. Either
//! way they are files, laid out as [`TerminalFiles`] describes.
//!
//! Symmetric keys are stored as one line of hexadecimal digits and come back
//! in [`Zeroizing`] buffers so they are wiped when dropped.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use super::tls::{self, TlsSetupError};

/// Symmetric key lengths Till accepts: double- and triple-length TDES, or
/// AES-128/192/256.
const KEY_LENGTHS: [usize; 3] = [16, 24, 32];

/// Why a terminal's identity files could not be found or read.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The terminal id is not usable (ISO 8583 field 41, and a directory name).
    #[error(
        "terminal id {id:?} is not valid: {reason}. A terminal id is exactly 8 \
         characters, letters, digits, '-' or '_', as the acquirer assigned it"
    )]
    TerminalId {
        /// The id as given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}; check that the file exists and is readable")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A key file does not hold one line of hex digits.
    #[error(
        "{path} does not hold a key as hexadecimal digits (0-9, A-F, an even \
         number of them on one line); restore the file from the key-injection \
         facility or run `tillctl pki init` again"
    )]
    NotHex {
        /// The file.
        path: PathBuf,
    },
    /// A key has a length no cipher Till uses accepts.
    #[error(
        "{path} holds a {len}-byte key, but keys must be 16, 24 or 32 bytes \
         (32, 48 or 64 hex digits); check that the right file was installed"
    )]
    KeyLength {
        /// The file.
        path: PathBuf,
        /// Length of the key found, in bytes.
        len: usize,
    },
    /// The acquirer's host key file is not in the expected format.
    #[error(
        "{path} is not a valid host key file: {reason}. It should hold one \
         `[terminals.<ID>]` table with a `tmk = \"<hex>\"` line per terminal"
    )]
    HostKeys {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the terminal where it applies.
        reason: String,
    },
}

/// Checks that `id` can be a terminal id.
///
/// ISO 8583 field 41 is `ans 8`: exactly eight characters. Till restricts the
/// characters further to ASCII letters, digits, `-` and `_`, because the id
/// also names a directory (`terminals/<ID>/`) and a TOML key in the host's
/// key file, where spaces, dots and slashes would cause trouble.
pub fn validate_terminal_id(id: &str) -> Result<(), IdentityError> {
    let bad = |reason| {
        Err(IdentityError::TerminalId {
            id: id.escape_debug().to_string(),
            reason,
        })
    };
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return bad("it contains a character other than a letter, digit, '-' or '_'");
    }
    if id.len() != 8 {
        return bad("it is not 8 characters long");
    }
    Ok(())
}

/// The files that make up one terminal's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalFiles {
    /// The CA certificate that issued the acquirer's certificate (PEM).
    pub ca: PathBuf,
    /// The terminal's certificate, with CN = terminal id (PEM).
    pub cert: PathBuf,
    /// The terminal's private key (PEM).
    pub key: PathBuf,
    /// The terminal master key (hex).
    pub tmk: PathBuf,
    /// The data key for card data at rest (hex).
    pub datakey: PathBuf,
}

impl TerminalFiles {
    /// The layout `tillctl pki init` writes into `dir`.
    ///
    /// With no id, the default terminal's files in `dir` itself
    /// (`terminal.crt`, `terminal.key`, `terminal.tmk`, `terminal.datakey`);
    /// with an id, those under `dir/terminals/<ID>/` (`terminal.crt`,
    /// `terminal.key`, `tmk.hex`, `data.key`). The CA is always `dir/ca.crt`.
    /// The files are not opened here.
    ///
    /// ```
    /// use std::path::Path;
    /// use till_pay::link::TerminalFiles;
    /// let files = TerminalFiles::in_dir("/etc/till/pki", Some("TILL0002")).unwrap();
    /// assert_eq!(files.tmk, Path::new("/etc/till/pki/terminals/TILL0002/tmk.hex"));
    /// assert!(TerminalFiles::in_dir("/etc/till/pki", Some("../../etc")).is_err());
    /// ```
    pub fn in_dir(
        dir: impl AsRef<Path>,
        terminal_id: Option<&str>,
    ) -> Result<TerminalFiles, IdentityError> {
        let dir = dir.as_ref();
        let ca = dir.join("ca.crt");
        Ok(match terminal_id {
            None => TerminalFiles {
                ca,
                cert: dir.join("terminal.crt"),
                key: dir.join("terminal.key"),
                tmk: dir.join("terminal.tmk"),
                datakey: dir.join("terminal.datakey"),
            },
            Some(id) => {
                validate_terminal_id(id)?;
                let own = dir.join("terminals").join(id);
                TerminalFiles {
                    ca,
                    cert: own.join("terminal.crt"),
                    key: own.join("terminal.key"),
                    tmk: own.join("tmk.hex"),
                    datakey: own.join("data.key"),
                }
            }
        })
    }

    /// The TLS client configuration for this terminal (see
    /// [`tls::client_config`]).
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
        tls::client_config(&self.ca, &self.cert, &self.key)
    }

    /// Reads the terminal master key.
    pub fn read_tmk(&self) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
        read_hex_key_file(&self.tmk)
    }

    /// Reads the data key.
    pub fn read_datakey(&self) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
        read_hex_key_file(&self.datakey)
    }
}

/// Reads a symmetric key stored as hex digits (upper or lower case,
/// surrounding whitespace ignored). The key must be 16, 24 or 32 bytes.
///
/// Errors name the file but never show its contents.
pub fn read_hex_key_file(path: impl AsRef<Path>) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
    let path = path.as_ref();
    let text = Zeroizing::new(std::fs::read(path).map_err(|source| IdentityError::Read {
        path: path.to_path_buf(),
        source,
    })?);
    decode_key(text.trim_ascii()).map_err(|e| e.at(path))
}

/// Loads the acquirer's terminal master keys from a TOML file of the form
///
/// ```toml
/// [terminals.TILL0001]
/// tmk = "0123456789ABCDEF0123456789ABCDEF"
/// ```
///
/// keyed by terminal id. Other keys in a terminal's table are ignored, so
/// the file can grow without breaking older readers.
pub fn load_host_keys(
    path: impl AsRef<Path>,
) -> Result<BTreeMap<String, Zeroizing<Vec<u8>>>, IdentityError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct HostKeyFile {
        terminals: BTreeMap<String, TerminalEntry>,
    }
    #[derive(Deserialize)]
    struct TerminalEntry {
        tmk: String,
    }

    let path = path.as_ref();
    let bad = |reason: String| IdentityError::HostKeys {
        path: path.to_path_buf(),
        reason,
    };
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| IdentityError::Read {
                path: path.to_path_buf(),
                source,
            })?,
        );
    // toml's own buffers cannot be wiped; the strings it hands back are.
    let file: HostKeyFile = toml::from_str(&text).map_err(|e| bad(e.message().to_string()))?;
    let mut keys = BTreeMap::new();
    for (id, entry) in file.terminals {
        let tmk = Zeroizing::new(entry.tmk);
        validate_terminal_id(&id).map_err(|e| bad(e.to_string()))?;
        let key = decode_key(tmk.trim().as_bytes()).map_err(|e| {
            bad(match e {
                KeyDecodeError::NotHex => format!("the tmk of terminal {id} is not hex digits"),
                KeyDecodeError::Length(len) => {
                    format!("the tmk of terminal {id} is {len} bytes; it must be 16, 24 or 32")
                }
            })
        })?;
        keys.insert(id, key);
    }
    Ok(keys)
}

/// Why hex text is not a key, before the file name is known.
enum KeyDecodeError {
    NotHex,
    Length(usize),
}

impl KeyDecodeError {
    fn at(self, path: &Path) -> IdentityError {
        let path = path.to_path_buf();
        match self {
            KeyDecodeError::NotHex => IdentityError::NotHex { path },
            KeyDecodeError::Length(len) => IdentityError::KeyLength { path, len },
        }
    }
}

fn decode_key(hex_digits: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyDecodeError> {
    let mut key = Zeroizing::new(vec![0u8; hex_digits.len() / 2]);
    if !hex_digits.len().is_multiple_of(2)
        || hex::decode_to_slice(hex_digits, &mut key[..]).is_err()
    {
        return Err(KeyDecodeError::NotHex);
    }
    if !KEY_LENGTHS.contains(&key.len()) {
        let len = key.len();
        key.zeroize();
        return Err(KeyDecodeError::Length(len));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(name)
            .tempdir()
            .expect("a temporary directory")
    }

    #[test]
    fn terminal_ids() {
        for ok in ["TILL0001", "ab-_1234", "00000000"] {
            assert!(validate_terminal_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "TILL001",
            "TILL00001",
            "",
            "TILL 001",
            "../../ab",
            "TILL\u{e9}01",
            "TILL.001",
        ] {
            let e = validate_terminal_id(bad).unwrap_err();
            assert!(e.to_string().contains("8 characters"), "{e}");
        }
    }

    #[test]
    fn default_layout_is_the_top_directory() {
        let files = TerminalFiles::in_dir("/pki", None).unwrap();
        assert_eq!(files.ca, Path::new("/pki/ca.crt"));
        assert_eq!(files.cert, Path::new("/pki/terminal.crt"));
        assert_eq!(files.key, Path::new("/pki/terminal.key"));
        assert_eq!(files.tmk, Path::new("/pki/terminal.tmk"));
        assert_eq!(files.datakey, Path::new("/pki/terminal.datakey"));
        let own = TerminalFiles::in_dir("/pki", Some("TILL0009")).unwrap();
        assert_eq!(own.ca, Path::new("/pki/ca.crt"));
        assert_eq!(own.key, Path::new("/pki/terminals/TILL0009/terminal.key"));
        assert_eq!(own.datakey, Path::new("/pki/terminals/TILL0009/data.key"));
    }

    #[test]
    fn hex_key_files() {
        let dir = scratch("till-keys");
        let good = dir.path().join("good");
        std::fs::write(&good, "  00112233445566778899aabbccddEEFF\n").unwrap();
        assert_eq!(
            read_hex_key_file(&good).unwrap().as_slice(),
            hex::decode("00112233445566778899AABBCCDDEEFF").unwrap()
        );

        let cases = [
            ("odd", "0011223"),
            ("nothex", "00112233445566778899AABBCCDDEEFG"),
            ("spaced", "00112233 445566778899AABBCCDDEEFF"),
            ("empty", ""),
        ];
        for (name, contents) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            let e = read_hex_key_file(&path).unwrap_err();
            match (&e, name) {
                (IdentityError::NotHex { path: p }, _) => assert_eq!(p, &path),
                (IdentityError::KeyLength { len: 0, .. }, "empty") => {}
                _ => panic!("{name}: {e}"),
            }
            assert!(e.to_string().contains(name), "{e}");
        }

        let short = dir.path().join("short");
        std::fs::write(&short, "0011223344556677").unwrap();
        assert!(matches!(
            read_hex_key_file(&short),
            Err(IdentityError::KeyLength { len: 8, .. })
        ));

        let missing = dir.path().join("missing");
        let e = read_hex_key_file(&missing).unwrap_err();
        assert!(matches!(e, IdentityError::Read { .. }));
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn host_key_files() {
        let dir = scratch("till-hostkeys");
        let path = dir.path().join("host-keys.toml");
        std::fs::write(
            &path,
            "[terminals.TILL0001]\ntmk = \"00112233445566778899AABBCCDDEEFF\"\n\
             [terminals.TILL0002]\ntmk = \"FFEEDDCCBBAA99887766554433221100\"\nlabel = \"till 2\"\n",
        )
        .unwrap();
        let keys = load_host_keys(&path).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys["TILL0002"][0], 0xff);

        let cases = [
            ("[terminals.TILL0001]\ntmk = \"xyz\"\n", "TILL0001"),
            (
                "[terminals.TILL01]\ntmk = \"00112233445566778899AABBCCDDEEFF\"\n",
                "TILL01",
            ),
            ("[terminals.TILL0001]\n", "tmk"),
            ("[terminal.TILL0001]\ntmk = \"00\"\n", "terminal"),
            ("not toml at all", "host key file"),
        ];
        for (contents, mentions) in cases {
            std::fs::write(&path, contents).unwrap();
            let e = load_host_keys(&path).unwrap_err();
            assert!(matches!(e, IdentityError::HostKeys { .. }), "{e}");
            let text = e.to_string();
            assert!(text.contains(mentions), "{text}");
            assert!(text.contains("host-keys.toml"), "{text}");
        }
    }
}
