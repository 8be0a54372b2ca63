//! The three journal stores behind one small interface.
//!
//! - SQLite is Till's real journal, `till_pay::journal::SqliteJournal`
//!   (bundled SQLite, WAL, `synchronous=FULL`): `save` writes what changed
//!   in one transaction and returns when the commit is on disk.
//! - sled 0.34.7 and redb 4 do the equivalent work: the same four counters,
//!   the entry (JSON), one status event and the queue item, in one
//!   transaction, followed by their durability call — `Db::flush()` for
//!   sled (which issues `sync_file_range`, not `fsync`: see `sled-flush`),
//!   a `Durability::Immediate` commit for redb.
//!
//! All three keep the open batch apart from settled history (Till's
//! working file and `history.db`; a tree or table each for sled and redb),
//! so reading the open batch back after a crash does not scan history.

use std::path::Path;

use clap::ValueEnum;
use redb::{ReadableDatabase, ReadableTable};
use till_pay::engine::state::{Entry, PendingItem, PendingKind, StateStore, TerminalState};
use till_pay::journal::SqliteJournal;

use crate::workload::Change;

/// Errors from any store, as text for the reports.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Which store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Backend {
    /// Till's journal: `SqliteJournal` (bundled SQLite, WAL, synchronous=FULL).
    Sqlite,
    /// sled 0.34.7, default configuration, `flush()` after each transaction.
    Sled,
    /// redb 4, a `Durability::Immediate` commit per transaction.
    Redb,
}

impl Backend {
    /// Short name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Sled => "sled",
            Backend::Redb => "redb",
        }
    }

    /// What makes a state change durable, in words.
    pub fn durability_call(self) -> &'static str {
        match self {
            Backend::Sqlite => "SqliteJournal::save: commit, WAL + synchronous=FULL (fdatasync)",
            Backend::Sled => "transaction + Db::flush() (sync_file_range, NOT fsync)",
            Backend::Redb => "transaction, Durability::Immediate commit (fdatasync)",
        }
    }

    /// The directory (or file) the store keeps under its journal directory.
    pub fn store_path(self, dir: &Path) -> std::path::PathBuf {
        match self {
            Backend::Sqlite => dir.to_path_buf(),
            Backend::Sled => dir.join("sled"),
            Backend::Redb => dir.to_path_buf(),
        }
    }
}

/// A journal store.
pub trait Journal {
    /// One state change, durable when this returns. `state` is what the
    /// engine holds; `change` is what changed in it.
    fn save(&mut self, state: &TerminalState, change: &Change) -> Result<()>;
    /// The open batch and the queue, as the engine needs them at start.
    fn load(&mut self) -> Result<TerminalState>;
    /// Writes a whole batch at once (building a journal of realistic size):
    /// into history if `settled`, else into the open batch. `state` gives
    /// the counters.
    fn bulk(&mut self, state: &TerminalState, entries: &[Entry], settled: bool) -> Result<()>;
}

/// Opens (or creates) the store of `backend` in `dir`.
pub fn open(backend: Backend, dir: &Path) -> Result<Box<dyn Journal>> {
    Ok(match backend {
        Backend::Sqlite => Box::new(Sqlite {
            j: SqliteJournal::open(dir)?,
        }),
        Backend::Sled => Box::new(Sled::open(dir)?),
        Backend::Redb => Box::new(Redb::open(dir)?),
    })
}

// ---------------------------------------------------------------- SQLite

/// Till's journal, untouched.
struct Sqlite {
    j: SqliteJournal,
}

impl Journal for Sqlite {
    fn save(&mut self, state: &TerminalState, _change: &Change) -> Result<()> {
        Ok(self.j.save(state)?)
    }

    fn load(&mut self) -> Result<TerminalState> {
        Ok(self.j.load()?)
    }

    fn bulk(&mut self, state: &TerminalState, entries: &[Entry], settled: bool) -> Result<()> {
        let mut s = state.clone();
        s.entries = entries.to_vec();
        self.j.save(&s)?;
        if settled {
            // Settlement moves the batch to history.db.
            self.j.archive()?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- common

fn meta_pairs(state: &TerminalState) -> Result<[(&'static str, String); 4]> {
    Ok([
        ("last_stan", state.last_stan.to_string()),
        ("batch_number", state.batch_number.to_string()),
        ("next_entry", state.next_entry.to_string()),
        ("session", serde_json::to_string(&state.session)?),
    ])
}

fn event_json(e: &Entry, at: &str) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&serde_json::json!({
        "entry": e.id,
        "at": at,
        "status": e.status,
        "response_code": e.response_code,
    }))?)
}

fn pending_key(entry: u64, kind: PendingKind) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..8].copy_from_slice(&entry.to_be_bytes());
    k[8] = kind_byte(kind);
    k
}

fn kind_byte(kind: PendingKind) -> u8 {
    match kind {
        PendingKind::Reversal => 1,
        PendingKind::Repeat => 0,
    }
}

fn be_u64(b: &[u8]) -> Result<u64> {
    let a: [u8; 8] = b
        .get(..8)
        .and_then(|s| s.try_into().ok())
        .ok_or("a key shorter than 8 bytes")?;
    Ok(u64::from_be_bytes(a))
}

/// Counters read back; the next entry id is never below the highest id
/// present, as in `SqliteJournal::load`.
fn apply_meta(s: &mut TerminalState, key: &str, value: &str) {
    match key {
        "last_stan" => s.last_stan = value.parse().unwrap_or(0),
        "batch_number" => s.batch_number = value.parse().unwrap_or(1),
        "next_entry" => s.next_entry = value.parse().unwrap_or(1),
        "session" => s.session = serde_json::from_str(value).ok().flatten(),
        _ => {}
    }
}

fn finish_load(s: &mut TerminalState) {
    if let Some(max) = s.entries.iter().map(|e| e.id).max() {
        s.next_entry = s.next_entry.max(max + 1);
    }
    s.entries.sort_by_key(|e| e.id);
}

fn now() -> String {
    chrono::Local::now().to_rfc3339()
}

// ---------------------------------------------------------------- sled

struct Sled {
    db: sled::Db,
    meta: sled::Tree,
    open: sled::Tree,
    history: sled::Tree,
    events: sled::Tree,
    pending: sled::Tree,
    next_event: u64,
}

impl Sled {
    fn open(dir: &Path) -> Result<Sled> {
        // The default configuration (as the design card would use it):
        // flush_every_ms = 500, snapshot_after_ops = 1,000,000.
        let db = sled::open(Backend::Sled.store_path(dir))?;
        let events = db.open_tree("events")?;
        let next_event = match events.last()? {
            Some((k, _)) => be_u64(&k)? + 1,
            None => 1,
        };
        Ok(Sled {
            meta: db.open_tree("meta")?,
            open: db.open_tree("entries")?,
            history: db.open_tree("history")?,
            pending: db.open_tree("pending")?,
            events,
            next_event,
            db,
        })
    }
}

impl Journal for Sled {
    fn save(&mut self, state: &TerminalState, change: &Change) -> Result<()> {
        use sled::Transactional;
        use sled::transaction::ConflictableTransactionResult;
        let meta = meta_pairs(state)?;
        let entry = serde_json::to_vec(&change.entry)?;
        let event = event_json(&change.entry, &now())?;
        let put = match &change.put_guard {
            Some(g) => Some((pending_key(g.entry, g.kind), serde_json::to_vec(g)?)),
            None => None,
        };
        let drop = change.drop_guard.map(|(e, k)| pending_key(e, k));
        let seq = self.next_event;
        (&self.meta, &self.open, &self.events, &self.pending)
            .transaction(|(m, o, ev, p)| -> ConflictableTransactionResult<(), ()> {
                for (k, v) in &meta {
                    m.insert(k.as_bytes(), v.as_bytes())?;
                }
                o.insert(&change.entry.id.to_be_bytes(), entry.as_slice())?;
                ev.insert(&seq.to_be_bytes(), event.as_slice())?;
                if let Some((k, v)) = &put {
                    p.insert(k, v.as_slice())?;
                }
                if let Some(k) = &drop {
                    p.remove(k)?;
                }
                Ok(())
            })
            .map_err(|e| format!("sled transaction: {e:?}"))?;
        self.next_event += 1;
        // The durability call sled offers. NOT an fsync on Linux: it ends in
        // sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER); sled's background
        // thread calls fsync every flush_every_ms (500 ms).
        self.db.flush()?;
        Ok(())
    }

    fn load(&mut self) -> Result<TerminalState> {
        let mut s = TerminalState::default();
        for kv in self.meta.iter() {
            let (k, v) = kv?;
            apply_meta(
                &mut s,
                &String::from_utf8_lossy(&k),
                &String::from_utf8_lossy(&v),
            );
        }
        for kv in self.open.iter() {
            let (_, v) = kv?;
            s.entries.push(serde_json::from_slice(&v)?);
        }
        for kv in self.pending.iter() {
            let (_, v) = kv?;
            s.pending.push(serde_json::from_slice::<PendingItem>(&v)?);
        }
        finish_load(&mut s);
        Ok(s)
    }

    fn bulk(&mut self, state: &TerminalState, entries: &[Entry], settled: bool) -> Result<()> {
        use sled::Transactional;
        use sled::transaction::ConflictableTransactionResult;
        let meta = meta_pairs(state)?;
        let at = now();
        let mut rows = Vec::with_capacity(entries.len());
        for e in entries {
            rows.push((e.id, serde_json::to_vec(e)?, event_json(e, &at)?));
        }
        let target = if settled { &self.history } else { &self.open };
        let first = self.next_event;
        (&self.meta, target, &self.events)
            .transaction(|(m, t, ev)| -> ConflictableTransactionResult<(), ()> {
                for (k, v) in &meta {
                    m.insert(k.as_bytes(), v.as_bytes())?;
                }
                for (i, (id, e, event)) in rows.iter().enumerate() {
                    t.insert(&id.to_be_bytes(), e.as_slice())?;
                    ev.insert(&(first + i as u64).to_be_bytes(), event.as_slice())?;
                }
                Ok(())
            })
            .map_err(|e| format!("sled transaction: {e:?}"))?;
        self.next_event += rows.len() as u64;
        self.db.flush()?;
        Ok(())
    }
}

// ---------------------------------------------------------------- redb

const META: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("meta");
const OPEN: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("entries");
const HISTORY: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("history");
const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
const PENDING: redb::TableDefinition<(u64, u8), &[u8]> = redb::TableDefinition::new("pending");

struct Redb {
    db: redb::Database,
    next_event: u64,
}

impl Redb {
    fn open(dir: &Path) -> Result<Redb> {
        std::fs::create_dir_all(dir)?;
        let db = redb::Database::create(dir.join("journal.redb"))?;
        // Create the tables once, so reads never meet a missing one.
        let txn = db.begin_write()?;
        let next_event = {
            txn.open_table(META)?;
            txn.open_table(OPEN)?;
            txn.open_table(HISTORY)?;
            txn.open_table(PENDING)?;
            let events = txn.open_table(EVENTS)?;
            let last = events.last()?.map(|(k, _)| k.value());
            last.map_or(1, |k| k + 1)
        };
        txn.commit()?;
        Ok(Redb { db, next_event })
    }

    fn write(&self) -> Result<redb::WriteTransaction> {
        let mut txn = self.db.begin_write()?;
        // The default, made explicit: the commit is on disk when it returns.
        txn.set_durability(redb::Durability::Immediate)?;
        Ok(txn)
    }
}

impl Journal for Redb {
    fn save(&mut self, state: &TerminalState, change: &Change) -> Result<()> {
        let meta = meta_pairs(state)?;
        let entry = serde_json::to_vec(&change.entry)?;
        let event = event_json(&change.entry, &now())?;
        let txn = self.write()?;
        {
            let mut m = txn.open_table(META)?;
            for (k, v) in &meta {
                m.insert(*k, v.as_str())?;
            }
            txn.open_table(OPEN)?
                .insert(change.entry.id, entry.as_slice())?;
            txn.open_table(EVENTS)?
                .insert(self.next_event, event.as_slice())?;
            let mut p = txn.open_table(PENDING)?;
            if let Some(g) = &change.put_guard {
                let v = serde_json::to_vec(g)?;
                p.insert((g.entry, kind_byte(g.kind)), v.as_slice())?;
            }
            if let Some((e, k)) = change.drop_guard {
                p.remove((e, kind_byte(k)))?;
            }
        }
        txn.commit()?;
        self.next_event += 1;
        Ok(())
    }

    fn load(&mut self) -> Result<TerminalState> {
        let mut s = TerminalState::default();
        let r = self.db.begin_read()?;
        for kv in r.open_table(META)?.iter()? {
            let (k, v) = kv?;
            apply_meta(&mut s, k.value(), v.value());
        }
        for kv in r.open_table(OPEN)?.iter()? {
            let (_, v) = kv?;
            s.entries.push(serde_json::from_slice(v.value())?);
        }
        for kv in r.open_table(PENDING)?.iter()? {
            let (_, v) = kv?;
            s.pending.push(serde_json::from_slice(v.value())?);
        }
        finish_load(&mut s);
        Ok(s)
    }

    fn bulk(&mut self, state: &TerminalState, entries: &[Entry], settled: bool) -> Result<()> {
        let meta = meta_pairs(state)?;
        let at = now();
        let txn = self.write()?;
        {
            let mut m = txn.open_table(META)?;
            for (k, v) in &meta {
                m.insert(*k, v.as_str())?;
            }
            let mut t = txn.open_table(if settled { HISTORY } else { OPEN })?;
            let mut ev = txn.open_table(EVENTS)?;
            for e in entries {
                t.insert(e.id, serde_json::to_vec(e)?.as_slice())?;
                ev.insert(self.next_event, event_json(e, &at)?.as_slice())?;
                self.next_event += 1;
            }
        }
        txn.commit()?;
        Ok(())
    }
}
