//! The ledger: one JSON object per line for every message the host
//! processed, appended and forced to disk before the answer leaves.
//!
//! A line looks like this (wrapped here; one line in the file):
//!
//! ```json
//! {"time":"2026-05-01T10:15:02.113+08:00","peer":"127.0.0.1:50412","peer_cn":"TILL0001",
//!  "terminal":"TILL0001","kind":"sale","mti":"0200","stan":"000012","batch":"000001",
//!  "pan":"622208*********0010","card":"cup-ok","amount":1234,"rrn":"612100000042",
//!  "auth_code":"483920","response_code":"00","outcome":"approved","effect":"debit",
//!  "fault":null,"note":null,"request":{"mti":"0200","fields":{…}},"answer":{…}}
//! ```
//!
//! Every key is always present (`null` when it does not apply). `amount` is
//! in minor units of the host currency. `effect` says what the message did
//! to the host's state — see [`Effect`]. `request` and `answer` are the
//! dialect's masked `describe()` of the two messages (`answer` is `null`
//! when none was built, e.g. a message that could not be decoded at all).
//! No line ever holds a full card number, a PIN, a key or track data: card
//! numbers are masked, and `describe()` hides PIN blocks, keys, tracks and
//! expiry dates.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Why the ledger could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The file could not be opened for appending.
    #[error("cannot open the ledger {path} for appending: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A line could not be written or forced to disk.
    #[error("cannot write to the ledger {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// What a processed message did to the host's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// Nothing changed (declines, inquiries, refused requests).
    None,
    /// New working keys were issued to the terminal.
    Keys,
    /// Money left the card's balance (sale, advice).
    Debit,
    /// Money came back to the card (refund, void, completion void).
    Credit,
    /// An amount was put on hold (pre-authorization).
    Hold,
    /// A hold was released (pre-authorization void).
    Release,
    /// A hold was released and the completed amount debited.
    #[serde(rename = "release+debit")]
    ReleaseDebit,
    /// An earlier transaction was undone by a reversal.
    Reversed,
    /// A repeat of a message already applied; answered as before.
    Repeat,
    /// A batch upload item was recorded.
    Recorded,
    /// The batch closed (balanced settlement or end of batch upload).
    BatchClosed,
}

/// One line of the ledger.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LedgerRecord {
    /// Host time of processing, RFC 3339 with milliseconds.
    pub time: String,
    /// The client's socket address.
    pub peer: Option<String>,
    /// The common name of the client's certificate.
    pub peer_cn: Option<String>,
    /// The request's terminal id.
    pub terminal: Option<String>,
    /// Transaction kind (`sale`, …), `reversal`, or `unknown`.
    pub kind: String,
    /// The request's message type.
    pub mti: Option<String>,
    /// The request's STAN.
    pub stan: Option<String>,
    /// The request's batch number.
    pub batch: Option<String>,
    /// The card number, masked.
    pub pan: Option<String>,
    /// The card's name in the card database.
    pub card: Option<String>,
    /// The request's amount in minor units.
    pub amount: Option<u64>,
    /// Retrieval reference number of the answer.
    pub rrn: Option<String>,
    /// Authorization code of the answer.
    pub auth_code: Option<String>,
    /// Response code of the answer.
    pub response_code: Option<String>,
    /// The host's decision in words (`approved`, `incorrect_pin`, …).
    pub outcome: Option<String>,
    /// What the message did to the host's state.
    pub effect: Option<Effect>,
    /// The fault applied to this message, e.g. `drop` or `delay=2000`.
    pub fault: Option<String>,
    /// Why, in words, where the outcome alone does not say.
    pub note: Option<String>,
    /// The request, masked.
    pub request: Option<serde_json::Value>,
    /// The answer, masked.
    pub answer: Option<serde_json::Value>,
}

/// An open ledger file.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: File,
}

impl Ledger {
    /// Opens `path` for appending, creating it if needed.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| LedgerError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Ledger {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line and forces it to disk (`fdatasync`), so that once
    /// an answer is on the wire its line survives a crash of the host.
    pub fn append(&mut self, record: &LedgerRecord) -> Result<(), LedgerError> {
        let fail = |source| LedgerError::Write {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(record).map_err(|e| fail(std::io::Error::other(e)))?;
        line.push(b'\n');
        // One write call per line: with O_APPEND a line never interleaves
        // with another writer's.
        self.file.write_all(&line).map_err(fail)?;
        self.file.flush().map_err(fail)?;
        self.file.sync_data().map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_as_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let mut ledger = Ledger::open(&path).unwrap();
        let record = LedgerRecord {
            kind: "sale".into(),
            effect: Some(Effect::ReleaseDebit),
            amount: Some(1234),
            ..LedgerRecord::default()
        };
        ledger.append(&record).unwrap();
        drop(ledger);
        let mut ledger = Ledger::open(&path).unwrap();
        ledger.append(&record).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["effect"], "release+debit");
        assert_eq!(lines[0]["amount"], 1234);
        assert!(
            lines[0]["rrn"].is_null(),
            "keys are present even when empty"
        );
    }

    #[test]
    fn unwritable_paths_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = Ledger::open(&dir.path().join("no/such/dir/ledger.jsonl")).unwrap_err();
        assert!(e.to_string().contains("no/such/dir"), "{e}");
    }
}
