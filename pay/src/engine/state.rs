//! What the terminal remembers between transactions and across restarts:
//! the STAN counter, the open batch, the sign-in session (working keys as
//! cryptograms under the master key, never in clear), every transaction
//! of the recent batches, and the reversals and repeats still owed to the
//! host.
//!
//! Card numbers and expiry dates are sealed with an AEAD under the device
//! data key before they reach the store; only masked PANs are kept in
//! clear. Queued reversals carry no card data (it is put back from the
//! journal when they are sent). Track data and PIN blocks are never stored.
//!
//! The state is saved through a [`StateStore`] — the SQLite journal
//! ([`crate::journal::SqliteJournal`]) on a terminal — before every request
//! leaves the terminal and after every answer (write-ahead).

use std::path::PathBuf;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use rand::TryRng;
use rand::rngs::SysRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::iso8583::TxnKind;
use crate::security::KeyCryptograms;

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Written ahead; the request may be on its way.
    Sending,
    /// The host approved it.
    Approved,
    /// The host declined it.
    Declined,
    /// The host could not be reached; nothing was sent.
    NotSent,
    /// No trustworthy answer came; a reversal is owed to the host.
    ReversalPending,
    /// The host acknowledged the reversal.
    Reversed,
    /// Approved offline by the terminal (host unreachable, within the
    /// offline limits); its advice is queued for the host.
    OfflineApproved,
    /// Approved offline, but the host declined the advice.
    AdviceRejected,
    /// Approved, then voided.
    Voided,
    /// A pre-authorization that has been completed.
    Completed,
    /// No answer to a non-reversible request; it is repeated until answered.
    RepeatPending,
}

/// A reference to the original of a void, completion or refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalRef {
    /// The original's retrieval reference number.
    pub rrn: String,
    /// The original's journal id, when it is in this terminal's journal.
    pub entry: Option<u64>,
}

/// One transaction in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Journal id, increasing.
    pub id: u64,
    /// What kind of transaction.
    pub kind: TxnKind,
    /// Batch it belongs to.
    pub batch: u32,
    /// Its systems trace audit number.
    pub stan: u32,
    /// Local time it was started (RFC 3339).
    pub at: String,
    /// `MMDD` as sent.
    pub local_date: String,
    /// `hhmmss` as sent.
    pub local_time: String,
    /// Message type of the request.
    pub mti: String,
    /// Processing code of the request.
    pub processing_code: Option<String>,
    /// Amount in minor units.
    pub amount: Option<u64>,
    /// ISO 4217 numeric currency.
    pub currency: u16,
    /// Masked PAN for display (the masked payment code for a QR payment).
    pub pan_masked: Option<String>,
    /// The wallet of a QR code payment, and of its void or refund.
    #[serde(default)]
    pub wallet: Option<crate::qr::Wallet>,
    /// PAN and expiry sealed under the data key.
    pub card_sealed: Option<String>,
    /// Where it stands.
    pub status: Status,
    /// Host response code.
    pub response_code: Option<String>,
    /// Retrieval reference number from the host.
    pub rrn: Option<String>,
    /// Authorization code from the host.
    pub auth_code: Option<String>,
    /// The original, for voids, completions and refunds.
    pub original: Option<OriginalRef>,
    /// Whether its batch has been settled.
    pub settled: bool,
    /// When its batch was settled (RFC 3339).
    #[serde(default)]
    pub settled_at: Option<String>,
    /// Whether the terminal approved it offline (it stays marked after the
    /// host accepted the advice).
    #[serde(default)]
    pub offline: bool,
}

/// Why something is owed to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingKind {
    /// Undo a request whose outcome is unknown (0400/0401).
    Reversal,
    /// Repeat a non-reversible request until it is acknowledged (0221…).
    Repeat,
}

/// A message owed to the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingItem {
    /// The journal entry it concerns.
    pub entry: u64,
    /// Reversal or repeat.
    pub kind: PendingKind,
    /// `false` while the request it guards is still waiting for its answer
    /// (written ahead); a restart arms it, because the answer can no longer come.
    pub armed: bool,
    /// The encoded message in hex, without card data (PAN, expiry, track,
    /// PIN block: the PAN and expiry are put back from the journal entry,
    /// where they are sealed) and without MAC.
    pub message: String,
    /// MTI of the first attempt.
    pub first_mti: String,
    /// MTI of every later attempt.
    pub repeat_mti: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Why it is owed, in words.
    pub reason: String,
    /// STAN the message carries.
    pub stan: u32,
    /// When it was queued (RFC 3339), for the age of the oldest item.
    #[serde(default)]
    pub created_at: String,
    /// The host answered but refused it (this code): it is kept, shown and
    /// no longer sent.
    #[serde(default)]
    pub rejected: Option<String>,
}

/// The working keys of the current sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Host address signed in to.
    pub host: String,
    /// Dialect name.
    pub dialect: String,
    /// Local date of the sign-in, `YYYY-MM-DD`; a session lasts the day.
    pub date: String,
    /// When (RFC 3339).
    pub at: String,
    /// Working keys as received, under the terminal master key.
    pub keys: KeyCryptograms,
}

/// A sign-in attempt, kept for the operator's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInRecord {
    /// When (RFC 3339).
    pub at: String,
    /// Host address.
    pub host: String,
    /// Response code, if the host answered.
    pub response_code: Option<String>,
    /// `signed in`, or why not.
    pub result: String,
}

/// A closed batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementRecord {
    /// Batch number.
    pub batch: u32,
    /// When (RFC 3339).
    pub at: String,
    /// Totals sent.
    pub totals: super::BatchTotals,
    /// Whether the host agreed at once (else the batch was uploaded).
    pub balanced: bool,
    /// Transactions uploaded.
    pub uploaded: u32,
}

/// Everything the terminal keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalState {
    /// Layout version of this file.
    pub version: u32,
    /// Last STAN used (0 before the first).
    pub last_stan: u32,
    /// The open batch.
    pub batch_number: u32,
    /// Next journal id.
    pub next_entry: u64,
    /// Current sign-in, if any.
    pub session: Option<Session>,
    /// Recent sign-in attempts, newest last.
    pub sign_ins: Vec<SignInRecord>,
    /// Journal of the open batch and recent closed ones.
    pub entries: Vec<Entry>,
    /// Messages owed to the host, oldest first.
    pub pending: Vec<PendingItem>,
    /// Recent settlements, newest last.
    pub settlements: Vec<SettlementRecord>,
}

impl Default for TerminalState {
    fn default() -> TerminalState {
        TerminalState {
            version: 1,
            last_stan: 0,
            batch_number: 1,
            next_entry: 1,
            session: None,
            sign_ins: Vec::new(),
            entries: Vec::new(),
            pending: Vec::new(),
            settlements: Vec::new(),
        }
    }
}

impl TerminalState {
    /// Allocates the next STAN: 000001–999999, wrapping to 000001.
    pub fn next_stan(&mut self) -> u32 {
        self.last_stan = self.last_stan % 999_999 + 1;
        self.last_stan
    }

    /// The entry with this id. Entries are kept in id order (appended with
    /// increasing ids, only ever removed), so this is a binary search.
    pub fn entry(&self, id: u64) -> Option<&Entry> {
        self.entries
            .binary_search_by_key(&id, |e| e.id)
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The entry with this id, mutably.
    pub fn entry_mut(&mut self, id: u64) -> Option<&mut Entry> {
        self.entries
            .binary_search_by_key(&id, |e| e.id)
            .ok()
            .map(|i| &mut self.entries[i])
    }

    /// Arms every pending item whose request was still waiting for its
    /// answer: after a restart that answer can no longer come. Returns how
    /// many were armed.
    pub fn arm_interrupted(&mut self) -> usize {
        let mut armed = 0;
        for item in self
            .pending
            .iter_mut()
            .filter(|p| !p.armed && p.rejected.is_none())
        {
            item.armed = true;
            item.reason = "the terminal restarted while waiting for the answer".into();
            armed += 1;
            if let Ok(i) = self.entries.binary_search_by_key(&item.entry, |e| e.id) {
                self.entries[i].status = match item.kind {
                    PendingKind::Reversal => Status::ReversalPending,
                    PendingKind::Repeat => Status::RepeatPending,
                };
            }
        }
        armed
    }
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("terminal state {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The file exists but cannot be understood; it is left untouched (or
    /// moved aside untouched). `reason` says what is wrong and what to do.
    #[error("terminal state {path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The operating system's random generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
    /// Sealed data could not be opened (wrong data key or tampering).
    #[error(
        "sealed card data could not be opened: the device data key does not match or the data was altered"
    )]
    Unseal,
}

/// Persistence of [`TerminalState`].
pub trait StateStore {
    /// Loads the state (the default state if there is none yet).
    fn load(&mut self) -> Result<TerminalState, StoreError>;
    /// Saves the state durably before returning.
    fn save(&mut self, state: &TerminalState) -> Result<(), StoreError>;
    /// An entry that is no longer kept in memory (an older batch), by RRN:
    /// the original of a refund or completion. Stores without history find
    /// nothing.
    fn find_by_rrn(&mut self, _rrn: &str) -> Result<Option<Entry>, StoreError> {
        Ok(None)
    }
    /// Moves settled batches out of the working store into history, after a
    /// settlement; stores without history have nothing to move.
    fn archive(&mut self) -> Result<usize, StoreError> {
        Ok(0)
    }
    /// Deletes settled history older than `days`; stores without history
    /// have nothing to prune.
    fn prune(&mut self, _days: u32) -> Result<usize, StoreError> {
        Ok(0)
    }
}

/// State kept in memory only — for tests and benchmarks.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// The last saved state.
    pub state: Option<TerminalState>,
    /// How many times it was saved.
    pub saves: u64,
}

impl StateStore for MemoryStore {
    fn load(&mut self) -> Result<TerminalState, StoreError> {
        Ok(self.state.clone().unwrap_or_default())
    }

    fn save(&mut self, state: &TerminalState) -> Result<(), StoreError> {
        self.state = Some(state.clone());
        self.saves += 1;
        Ok(())
    }
}

/// Seals and opens sensitive data with ChaCha20-Poly1305 under the device
/// data key. The output is `nonce:ciphertext` in hex.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer from a 32-byte data key.
    pub fn new(data_key: &[u8]) -> Result<Sealer, StoreError> {
        let cipher = ChaCha20Poly1305::new_from_slice(data_key).map_err(|_| StoreError::Unseal)?;
        Ok(Sealer { cipher })
    }

    /// Seals bytes under a fresh random nonce.
    pub fn seal(&self, plain: &[u8]) -> Result<String, StoreError> {
        let mut nonce = [0u8; 12];
        SysRng
            .try_fill_bytes(&mut nonce)
            .map_err(|_| StoreError::Random)?;
        let ct = self
            .cipher
            .encrypt(&Nonce::from(nonce), plain)
            .map_err(|_| StoreError::Random)?;
        Ok(format!("{}:{}", hex::encode(nonce), hex::encode(ct)))
    }

    /// Opens what [`Sealer::seal`] produced.
    pub fn open(&self, sealed: &str) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let (n, c) = sealed.split_once(':').ok_or(StoreError::Unseal)?;
        let nonce: [u8; 12] = hex::decode(n)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(StoreError::Unseal)?;
        let ct = hex::decode(c).map_err(|_| StoreError::Unseal)?;
        self.cipher
            .decrypt(&Nonce::from(nonce), ct.as_ref())
            .map(Zeroizing::new)
            .map_err(|_| StoreError::Unseal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stan_wraps_to_one() {
        let mut s = TerminalState::default();
        assert_eq!(s.next_stan(), 1);
        s.last_stan = 999_998;
        assert_eq!(s.next_stan(), 999_999);
        assert_eq!(s.next_stan(), 1);
    }

    #[test]
    fn sealer_round_trips_and_detects_tampering() {
        let key = [7u8; 32];
        let s = Sealer::new(&key).unwrap();
        let sealed = s.seal(b"4761739001010010=3012").unwrap();
        assert!(!sealed.contains("4761739001010010"));
        assert_eq!(
            s.open(&sealed).unwrap().as_slice(),
            b"4761739001010010=3012"
        );
        let mut bad = sealed.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
        assert!(s.open(std::str::from_utf8(&bad).unwrap()).is_err());
        assert!(Sealer::new(&[8u8; 32]).unwrap().open(&sealed).is_err());
        assert!(s.open("nonsense").is_err());
    }

    #[test]
    fn restart_arms_interrupted_requests() {
        let mut s = TerminalState::default();
        s.entries.push(Entry {
            id: 1,
            kind: TxnKind::Sale,
            batch: 1,
            stan: 1,
            at: String::new(),
            local_date: "1121".into(),
            local_time: "120000".into(),
            mti: "0200".into(),
            processing_code: None,
            amount: Some(100),
            currency: 156,
            pan_masked: None,
            wallet: None,
            card_sealed: None,
            status: Status::Sending,
            response_code: None,
            rrn: None,
            auth_code: None,
            original: None,
            settled: false,
            settled_at: None,
            offline: false,
        });
        s.pending.push(PendingItem {
            entry: 1,
            kind: PendingKind::Reversal,
            armed: false,
            message: String::new(),
            first_mti: "0400".into(),
            repeat_mti: "0401".into(),
            attempts: 0,
            reason: String::new(),
            stan: 1,
            created_at: String::new(),
            rejected: None,
        });
        assert_eq!(s.arm_interrupted(), 1);
        assert!(s.pending[0].armed);
        assert_eq!(s.entry(1).unwrap().status, Status::ReversalPending);
        assert_eq!(s.arm_interrupted(), 0);
    }
}
