//! The payment engine as both binaries open it: the dialect, the
//! terminal's PKI files, a TLS link to the host and the SQLite journal.

use std::path::Path;

use till_pay::engine::{EngineError, Terminal, TerminalConfig};
use till_pay::iso8583::Dialect;
use till_pay::iso8583::spec::FrameFormat;
use till_pay::journal::SqliteJournal;
use till_pay::link::{Framing, TerminalFiles, TlsLink};

/// The engine over TLS with its journal.
pub type Engine = Terminal<TlsLink, SqliteJournal>;

/// What could not be opened, by part (the CLI reports the kind).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The dialect name or file.
    #[error("{0}")]
    Dialect(String),
    /// Certificates, keys or the master/data key files.
    #[error("{0}")]
    Pki(String),
    /// The host address.
    #[error("{0}")]
    Host(String),
    /// The journal directory.
    #[error("{0}")]
    Journal(String),
    /// The engine refused the keys or the journal's state.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Opens the engine for `config` (its `host` is the address dialled),
/// speaking `dialect`, with the identity in `files` and the journal in
/// `state_dir`.
pub fn open(
    dialect: &str,
    files: &TerminalFiles,
    state_dir: &Path,
    config: TerminalConfig,
) -> Result<Engine, OpenError> {
    let dialect = Dialect::load(dialect).map_err(|e| OpenError::Dialect(e.to_string()))?;
    let pki = |e: &dyn std::fmt::Display| OpenError::Pki(e.to_string());
    let tls = files.client_config().map_err(|e| pki(&e))?;
    let tmk = files.read_tmk().map_err(|e| pki(&e))?;
    let data_key = files.read_datakey().map_err(|e| pki(&e))?;
    let framing = match dialect.framing {
        FrameFormat::U16be => Framing::U16Be,
        FrameFormat::Ascii4 => Framing::Ascii4,
    };
    let link = TlsLink::new(config.host.clone(), tls, framing)
        .map_err(|e| OpenError::Host(e.to_string()))?;
    let store = SqliteJournal::open(state_dir).map_err(|e| OpenError::Journal(e.to_string()))?;
    Ok(Terminal::new(
        dialect, config, link, store, &tmk, &data_key,
    )?)
}
