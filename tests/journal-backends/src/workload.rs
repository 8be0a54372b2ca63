//! The journal workload, the same as `pay/benches/journal.rs` and the
//! terminal engine: a sale is written ahead (its entry, status `sending`,
//! and the reversal that guards it, not yet armed) and then answered (the
//! entry approved with its references, the guard dropped). Each step is one
//! durable state change. Memory holds about a day's batch, as on a terminal.

use till_pay::engine::state::{Entry, PendingItem, PendingKind, Status, TerminalState};
use till_pay::iso8583::TxnKind;

/// Sales a busy shop terminal takes in a day (as in `pay/benches/journal.rs`).
pub const PER_DAY: u64 = 500;

/// Entries kept in memory before the oldest are dropped from it (they stay
/// in the journal), as in `pay/benches/journal.rs`.
const KEEP_IN_MEMORY: usize = 600;

/// A journal entry like the engine writes for a card sale.
pub fn entry(id: u64, at: &str, settled: bool) -> Entry {
    Entry {
        id,
        kind: TxnKind::Sale,
        batch: (id / PER_DAY) as u32 + 1,
        stan: (id % 999_999) as u32 + 1,
        at: at.into(),
        local_date: "1121".into(),
        local_time: "101010".into(),
        mti: "0200".into(),
        processing_code: Some("000000".into()),
        amount: Some(1000 + id % 5000),
        currency: 156,
        pan_masked: Some(format!("622208*********{:04}", id % 10_000)),
        wallet: None,
        card_sealed: Some("c3f1a9b2e4d5c6a7b8c9d0e1:".to_string() + &"ab".repeat(40)),
        status: Status::Approved,
        response_code: Some("00".into()),
        rrn: Some(format!("{:012}", 400_000_000 + id)),
        auth_code: Some(format!("{:06}", id % 1_000_000)),
        original: None,
        settled,
        settled_at: settled.then(|| at.to_string()),
        offline: false,
    }
}

/// The reversal written ahead with a sale (armed only if no answer comes).
pub fn guard(entry: u64, created_at: &str) -> PendingItem {
    PendingItem {
        entry,
        kind: PendingKind::Reversal,
        armed: false,
        message: "0400".repeat(40),
        first_mti: "0400".into(),
        repeat_mti: "0401".into(),
        attempts: 0,
        reason: String::new(),
        stan: entry as u32,
        created_at: created_at.into(),
        rejected: None,
    }
}

/// What one state change writes. Till's `SqliteJournal` works this out
/// itself from the state (it keeps a shadow of what is on disk); sled and
/// redb are told, and write exactly this.
#[derive(Debug, Clone)]
pub struct Change {
    /// The entry, inserted or replaced (with one status event).
    pub entry: Entry,
    /// A queue item to insert.
    pub put_guard: Option<PendingItem>,
    /// A queue item to remove.
    pub drop_guard: Option<(u64, PendingKind)>,
}

/// The terminal's working state and the sales made on it.
#[derive(Debug)]
pub struct Workload {
    /// What the engine holds in memory.
    pub state: TerminalState,
    now: String,
}

impl Workload {
    /// Continues from a loaded state (memory trimmed to about a day).
    pub fn new(mut state: TerminalState) -> Workload {
        trim(&mut state);
        Workload {
            state,
            now: chrono::Local::now().to_rfc3339(),
        }
    }

    /// Starts a sale: its entry and reversal guard, written ahead.
    pub fn ahead(&mut self) -> Change {
        let id = self.state.next_entry;
        self.state.next_entry += 1;
        let stan = self.state.next_stan();
        let mut e = entry(id, &self.now, false);
        e.batch = self.state.batch_number;
        e.stan = stan;
        e.status = Status::Sending;
        e.response_code = None;
        e.rrn = None;
        e.auth_code = None;
        let g = guard(id, &self.now);
        self.state.entries.push(e.clone());
        self.state.pending.push(g.clone());
        Change {
            entry: e,
            put_guard: Some(g),
            drop_guard: None,
        }
    }

    /// The host approved sale `id`: status and references, guard dropped.
    pub fn answered(&mut self, id: u64) -> Change {
        let e = match self.state.entry_mut(id) {
            Some(e) => e,
            None => unreachable!("answered() is only called right after ahead()"),
        };
        e.status = Status::Approved;
        e.response_code = Some("00".into());
        e.rrn = Some(format!("{:012}", 400_000_000 + id));
        e.auth_code = Some(format!("{:06}", id % 1_000_000));
        let e = e.clone();
        self.state
            .pending
            .retain(|p| !(p.entry == id && p.kind == PendingKind::Reversal));
        trim(&mut self.state);
        Change {
            entry: e,
            put_guard: None,
            drop_guard: Some((id, PendingKind::Reversal)),
        }
    }
}

/// Keeps memory at about a day's batch (the journal keeps everything).
fn trim(state: &mut TerminalState) {
    if state.entries.len() > KEEP_IN_MEMORY {
        let excess = state.entries.len() - PER_DAY as usize;
        state.entries.drain(..excess);
    }
}
