//! The journal of record: SQLite (WAL, `synchronous=FULL`), one database
//! transaction per state change.
//!
//! The engine keeps its working state in memory and calls
//! [`StateStore::save`] after every change and before every request leaves
//! (write-ahead). [`SqliteJournal::save`] writes exactly what changed since
//! the previous save — new and changed entries with a status event each,
//! the store-and-forward queue, counters, session, sign-ins, settlements —
//! in one transaction, and returns only when it is on disk. History stays in
//! the database; memory holds the open batch, today's entries and open
//! pre-authorizations.
//!
//! Why SQLite and not sled: see ARCHITECTURE.md and docs/reliability.md.
//!
//! Card data at rest: PAN and expiry are sealed (ChaCha20-Poly1305) by the
//! engine before they reach the journal; the journal keeps the masked PAN
//! and last four digits in clear for display and search. Track data and
//! PIN blocks never reach it.
//!
//! A damaged database is never silently replaced by an empty one: after an
//! unclean shutdown the journal runs `PRAGMA integrity_check`; if it fails
//! (or the file cannot be opened) the files are moved aside untouched, a
//! marker is left, and opening keeps failing with a message saying how to
//! restore a backup or, deliberately, start a new journal.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Local;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::engine::state::{
    Entry, OriginalRef, PendingItem, PendingKind, Session, SettlementRecord, SignInRecord,
    StateStore, Status, StoreError, TerminalState,
};
use crate::iso8583::TxnKind;

const DB_FILE: &str = "journal.db";
const HISTORY_FILE: &str = "history.db";
const MARKER: &str = "journal.db.needs-recovery";
/// 2 added `entries.wallet` (QR code payments); a version 1 journal is
/// brought up to it when opened.
const SCHEMA_VERSION: i64 = 2;
const ARCHIVE_MAGIC: &[u8; 8] = b"TILLJNL2";

/// The columns of `entries`, in both files: one list, because archiving
/// copies rows with `SELECT *` and the `all_entries` view unions them.
macro_rules! entry_columns {
    () => {
        "
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    batch INTEGER NOT NULL,
    stan INTEGER NOT NULL,
    at TEXT NOT NULL,
    local_date TEXT NOT NULL,
    local_time TEXT NOT NULL,
    mti TEXT NOT NULL,
    processing_code TEXT,
    amount INTEGER,
    currency INTEGER NOT NULL,
    pan_masked TEXT,
    last4 TEXT,
    card_sealed TEXT,
    status TEXT NOT NULL,
    response_code TEXT,
    rrn TEXT,
    auth_code TEXT,
    original_rrn TEXT,
    original_entry INTEGER,
    settled INTEGER NOT NULL DEFAULT 0,
    settled_at TEXT,
    offline INTEGER NOT NULL DEFAULT 0,
    wallet TEXT
"
    };
}

const SCHEMA: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (",
    entry_columns!(),
    ");
CREATE INDEX IF NOT EXISTS entries_rrn ON entries(rrn);
CREATE INDEX IF NOT EXISTS entries_open ON entries(settled, batch);
CREATE INDEX IF NOT EXISTS entries_at ON entries(at);
CREATE INDEX IF NOT EXISTS entries_last4 ON entries(last4);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entry INTEGER NOT NULL,
    at TEXT NOT NULL,
    status TEXT NOT NULL,
    response_code TEXT
);
CREATE INDEX IF NOT EXISTS events_entry ON events(entry);
CREATE TABLE IF NOT EXISTS pending (
    entry INTEGER NOT NULL,
    kind TEXT NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (entry, kind)
);
CREATE TABLE IF NOT EXISTS sign_ins (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settlements (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    batch INTEGER NOT NULL,
    at TEXT NOT NULL,
    record TEXT NOT NULL
);
"
);

/// Settled batches, moved out of the working file at settlement and not
/// written otherwise. Column for column the same entries and events.
const HISTORY_SCHEMA: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS history.entries (",
    entry_columns!(),
    ");
CREATE INDEX IF NOT EXISTS history.entries_rrn ON entries(rrn);
CREATE INDEX IF NOT EXISTS history.entries_at ON entries(at);
CREATE INDEX IF NOT EXISTS history.entries_last4 ON entries(last4);
CREATE INDEX IF NOT EXISTS history.entries_settled_at ON entries(settled_at);
CREATE TABLE IF NOT EXISTS history.events (
    seq INTEGER PRIMARY KEY,
    entry INTEGER NOT NULL,
    at TEXT NOT NULL,
    status TEXT NOT NULL,
    response_code TEXT
);
CREATE INDEX IF NOT EXISTS history.events_entry ON events(entry);
CREATE TEMP VIEW IF NOT EXISTS all_entries AS
    SELECT * FROM main.entries UNION ALL SELECT * FROM history.entries;
CREATE TEMP VIEW IF NOT EXISTS all_events AS
    SELECT * FROM main.events UNION ALL SELECT * FROM history.events;
"
);

/// The second half of archiving: what reached history leaves the working
/// file, and the mark goes. Run in one transaction, after a crash too.
const FINISH_ARCHIVE: &str = "
    DELETE FROM main.events WHERE entry IN (SELECT id FROM history.entries);
    DELETE FROM main.entries WHERE id IN (SELECT id FROM history.entries);
    DELETE FROM main.meta WHERE key = 'archiving';
";

/// `PRAGMA <schema>.integrity_check`: `None` when it says ok, else its
/// first three findings.
fn integrity_problems(conn: &Connection, schema: &str) -> rusqlite::Result<Option<String>> {
    let mut st = conn.prepare(&format!("PRAGMA {schema}.integrity_check"))?;
    let verdict: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok((verdict != ["ok"]).then(|| verdict.into_iter().take(3).collect::<Vec<_>>().join("; ")))
}

/// Settled entries that move to history (open pre-authorizations stay: they
/// may still be completed, which changes them).
const ARCHIVABLE: &str = "settled = 1 AND NOT (kind = 'preauth' AND status = 'approved')";

/// Search criteria for journal history (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Local date `YYYY-MM-DD`.
    pub date: Option<String>,
    /// Last four digits of the card.
    pub last4: Option<String>,
    /// Amount in minor units.
    pub amount: Option<u64>,
    /// Retrieval reference number.
    pub rrn: Option<String>,
    /// Batch number.
    pub batch: Option<u32>,
    /// Status (snake_case name).
    pub status: Option<String>,
    /// Transaction kind (snake_case name).
    pub kind: Option<String>,
    /// At most this many, newest first (default 100).
    pub limit: Option<u32>,
}

/// One status change of an entry, as the journal recorded it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusEvent {
    /// When (RFC 3339).
    pub at: String,
    /// The new status (snake_case name).
    pub status: String,
    /// The response code at that point.
    pub response_code: Option<String>,
}

/// What the journal's queue holds, for the operator and `tillctl saf status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStatus {
    /// Items waiting to be sent.
    pub depth: usize,
    /// Of which reversals.
    pub reversals: usize,
    /// Of which advices and repeats.
    pub advices: usize,
    /// Items the host refused (kept, no longer sent).
    pub rejected: usize,
    /// Requests on their way whose reversal is written ahead (owed only if
    /// their answer does not come).
    pub in_flight: usize,
    /// Age of the oldest waiting item, in seconds.
    pub oldest_age_seconds: Option<i64>,
    /// Offline approvals not yet accepted by the host.
    pub offline_count: usize,
    /// Their amount in minor units.
    pub offline_amount: u64,
}

/// The SQLite journal.
pub struct SqliteJournal {
    conn: Connection,
    dir: PathBuf,
    checked: bool,
    shadow_entries: HashMap<u64, Entry>,
    shadow_pending: HashMap<(u64, PendingKind), PendingItem>,
    shadow_sign_ins: HashSet<String>,
    shadow_settlements: HashSet<(u32, String)>,
}

impl std::fmt::Debug for SqliteJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteJournal")
            .field("dir", &self.dir)
            .finish()
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

fn status_name(s: Status) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn pending_kind_name(k: PendingKind) -> &'static str {
    match k {
        PendingKind::Reversal => "reversal",
        PendingKind::Repeat => "repeat",
    }
}

fn status_from(name: &str) -> Option<Status> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

impl SqliteJournal {
    /// Opens (or creates) the journal in `dir`.
    ///
    /// After an unclean shutdown the database is checked with `PRAGMA
    /// integrity_check`; a damaged database is moved aside untouched and
    /// the error says where and what to do.
    pub fn open(dir: impl AsRef<Path>) -> Result<SqliteJournal, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        if dir.join(MARKER).exists() {
            let moved = fs::read_to_string(dir.join(MARKER)).unwrap_or_default();
            return Err(StoreError::Damaged {
                path,
                reason: format!(
                    "it was found damaged earlier and moved aside to {}; restore a backup with \
                     `tillctl journal import FILE`, or start an empty journal on purpose with `tillctl journal reset`",
                    moved.trim()
                ),
            });
        }
        let existed = path.exists();
        match Self::open_checked(&dir, &path, existed) {
            Ok(j) => Ok(j),
            Err(OpenFailure::Damaged(reason)) => {
                let moved = move_aside(&dir, "damaged")?;
                let _ = fs::write(dir.join(MARKER), moved.display().to_string());
                Err(StoreError::Damaged {
                    path,
                    reason: format!(
                        "{reason}; the files were moved aside untouched to {} for recovery — restore a backup with \
                         `tillctl journal import FILE`, or start an empty journal on purpose with `tillctl journal reset`",
                        moved.display()
                    ),
                })
            }
            Err(OpenFailure::Store(e)) => Err(e),
        }
    }

    fn open_checked(dir: &Path, path: &Path, existed: bool) -> Result<SqliteJournal, OpenFailure> {
        let damaged = |e: rusqlite::Error| OpenFailure::Damaged(format!("it cannot be read ({e})"));
        let conn = Connection::open(path).map_err(damaged)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(damaged)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(damaged)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OpenFailure::Damaged(format!(
                "it refuses write-ahead logging (journal mode {mode})"
            )));
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(damaged)?;
        let mut existed_unclean = false;
        if existed {
            let clean: Option<String> = conn
                .query_row(
                    "SELECT value FROM meta WHERE key = 'clean_shutdown'",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(damaged)?;
            if clean.as_deref() != Some("1") {
                existed_unclean = true;
                if let Some(problems) = integrity_problems(&conn, "main").map_err(damaged)? {
                    return Err(OpenFailure::Damaged(format!(
                        "integrity check failed: {problems}"
                    )));
                }
            }
        }
        conn.execute_batch(SCHEMA).map_err(damaged)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(damaged)?;
        if version < SCHEMA_VERSION {
            // Version 1 had no wallet column; CREATE TABLE IF NOT EXISTS left
            // its table as it was.
            add_wallet_column(&conn, "main").map_err(damaged)?;
            conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
                .map_err(damaged)?;
        } else if version > SCHEMA_VERSION {
            return Err(OpenFailure::Store(io_err(
                path,
                format!(
                    "the journal was written by a newer Till (schema {version}); update this terminal's software"
                ),
            )));
        }
        Self::attach_history(&conn, dir, existed_unclean)?;
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('clean_shutdown', '0')",
            [],
        )
        .map_err(damaged)?;
        Ok(SqliteJournal {
            conn,
            dir: dir.to_path_buf(),
            checked: existed_unclean,
            shadow_entries: HashMap::new(),
            shadow_pending: HashMap::new(),
            shadow_sign_ins: HashSet::new(),
            shadow_settlements: HashSet::new(),
        })
    }

    /// Attaches the settled history. It is checked after an unclean
    /// shutdown only if the terminal stopped while moving a batch into it
    /// (nothing else writes it); an interrupted move is finished.
    fn attach_history(conn: &Connection, dir: &Path, unclean: bool) -> Result<(), OpenFailure> {
        let damaged =
            |e: rusqlite::Error| OpenFailure::Damaged(format!("its history cannot be read ({e})"));
        let path = dir.join(HISTORY_FILE);
        let existed = path.exists();
        conn.execute("ATTACH DATABASE ?1 AS history", [path.to_string_lossy()])
            .map_err(damaged)?;
        let mode: String = conn
            .query_row("PRAGMA history.journal_mode=WAL", [], |r| r.get(0))
            .map_err(damaged)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OpenFailure::Damaged(format!(
                "its history refuses write-ahead logging ({mode})"
            )));
        }
        conn.execute_batch("PRAGMA history.synchronous=FULL;")
            .map_err(damaged)?;
        let archiving: Option<String> = conn
            .query_row(
                "SELECT value FROM main.meta WHERE key = 'archiving'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(damaged)?;
        let interrupted = archiving.as_deref() == Some("1");
        if existed
            && unclean
            && interrupted
            && let Some(problems) = integrity_problems(conn, "history").map_err(damaged)?
        {
            return Err(OpenFailure::Damaged(format!(
                "the integrity check of its history failed: {problems}"
            )));
        }
        // Before the views over both files are made: they take the columns
        // the tables have then.
        add_wallet_column(conn, "history").map_err(damaged)?;
        conn.execute_batch(HISTORY_SCHEMA).map_err(damaged)?;
        if interrupted {
            // The copy into history is one transaction there; whatever reached
            // it leaves the working file now.
            conn.execute_batch(&format!("BEGIN; {FINISH_ARCHIVE} COMMIT;"))
                .map_err(damaged)?;
        }
        Ok(())
    }

    /// Moves settled batches from the working file into history: copied in
    /// one transaction of the history file, then removed from the working
    /// file in one of its own. A crash in between is finished on the next
    /// open. Returns how many entries moved.
    pub fn archive(&mut self) -> Result<usize, StoreError> {
        let path = self.path();
        let err = |e: rusqlite::Error| io_err(&path, e);
        self.conn
            .execute(
                "INSERT OR REPLACE INTO main.meta (key, value) VALUES ('archiving', '1')",
                [],
            )
            .map_err(err)?;
        let tx = self.conn.transaction().map_err(err)?;
        let moved = tx
            .execute(&format!("INSERT OR REPLACE INTO history.entries SELECT * FROM main.entries WHERE {ARCHIVABLE}"), [])
            .map_err(err)?;
        tx.execute(
            &format!(
                "INSERT OR IGNORE INTO history.events SELECT * FROM main.events \
                 WHERE entry IN (SELECT id FROM main.entries WHERE {ARCHIVABLE})"
            ),
            [],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute_batch(FINISH_ARCHIVE).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(moved)
    }

    /// Whether opening ran the integrity check (after an unclean shutdown).
    pub fn integrity_checked(&self) -> bool {
        self.checked
    }

    /// The database file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    fn sql_err(&self, e: rusqlite::Error) -> StoreError {
        io_err(&self.path(), e)
    }

    /// History, newest first.
    pub fn search(&self, q: &Query) -> Result<Vec<Entry>, StoreError> {
        let mut sql = String::from("SELECT * FROM all_entries WHERE 1=1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(d) = &q.date {
            sql.push_str(" AND substr(at, 1, 10) = ?");
            args.push(d.clone().into());
        }
        if let Some(v) = &q.last4 {
            sql.push_str(" AND last4 = ?");
            args.push(v.clone().into());
        }
        if let Some(v) = q.amount {
            sql.push_str(" AND amount = ?");
            args.push((v as i64).into());
        }
        if let Some(v) = &q.rrn {
            sql.push_str(" AND rrn = ?");
            args.push(v.clone().into());
        }
        if let Some(v) = q.batch {
            sql.push_str(" AND batch = ?");
            args.push(i64::from(v).into());
        }
        if let Some(v) = &q.status {
            sql.push_str(" AND status = ?");
            args.push(v.clone().into());
        }
        if let Some(v) = &q.kind {
            sql.push_str(" AND kind = ?");
            args.push(v.clone().into());
        }
        sql.push_str(&format!(
            " ORDER BY id DESC LIMIT {}",
            q.limit.unwrap_or(100)
        ));
        let mut st = self.conn.prepare(&sql).map_err(|e| self.sql_err(e))?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args), row_entry)
            .map_err(|e| self.sql_err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql_err(e))?;
        Ok(rows)
    }

    /// One entry by journal id, with its status history.
    pub fn show(&self, id: u64) -> Result<Option<(Entry, Vec<StatusEvent>)>, StoreError> {
        let e = self
            .conn
            .query_row(
                "SELECT * FROM all_entries WHERE id = ?",
                [id as i64],
                row_entry,
            )
            .optional()
            .map_err(|e| self.sql_err(e))?;
        let Some(e) = e else { return Ok(None) };
        let mut st = self
            .conn
            .prepare(
                "SELECT at, status, response_code FROM all_events WHERE entry = ? ORDER BY seq",
            )
            .map_err(|e| self.sql_err(e))?;
        let events = st
            .query_map([id as i64], |r| {
                Ok(StatusEvent {
                    at: r.get(0)?,
                    status: r.get(1)?,
                    response_code: r.get(2)?,
                })
            })
            .map_err(|e| self.sql_err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql_err(e))?;
        Ok(Some((e, events)))
    }

    /// The queue as the operator sees it.
    pub fn queue_status(&self) -> Result<QueueStatus, StoreError> {
        let state = self.read_pending()?;
        let mut s = QueueStatus::default();
        let now = Local::now();
        for p in &state {
            if p.rejected.is_some() {
                s.rejected += 1;
                continue;
            }
            if !p.armed {
                // A guard written ahead of a request still waiting for its answer.
                s.in_flight += 1;
                continue;
            }
            s.depth += 1;
            match p.kind {
                crate::engine::state::PendingKind::Reversal => s.reversals += 1,
                crate::engine::state::PendingKind::Repeat => s.advices += 1,
            }
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&p.created_at) {
                let age = (now - t.with_timezone(&Local)).num_seconds();
                s.oldest_age_seconds = Some(s.oldest_age_seconds.map_or(age, |a: i64| a.max(age)));
            }
        }
        let (count, amount): (i64, Option<i64>) = self
            .conn
            .query_row(
                "SELECT count(*), sum(amount) FROM entries WHERE status = 'offline_approved'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.sql_err(e))?;
        s.offline_count = count as usize;
        s.offline_amount = amount.unwrap_or(0) as u64;
        Ok(s)
    }

    fn read_pending(&self) -> Result<Vec<PendingItem>, StoreError> {
        let mut st = self
            .conn
            // Items are created with their entry, so entry order is queue order.
            .prepare("SELECT item FROM pending ORDER BY entry, kind DESC")
            .map_err(|e| self.sql_err(e))?;
        let items: Vec<String> = st
            .query_map([], |r| r.get(0))
            .map_err(|e| self.sql_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.sql_err(e))?;
        items
            .iter()
            .map(|t| {
                serde_json::from_str(t).map_err(|e| StoreError::Damaged {
                    path: self.path(),
                    reason: format!(
                        "a queued item is unreadable ({e}); the journal was left as it is for \
                         recovery — keep a copy of it and restore a backup with `tillctl journal import FILE`"
                    ),
                })
            })
            .collect()
    }

    /// Deletes settled entries whose batch was settled more than `days` days
    /// ago, with their status history, except pre-authorizations that can
    /// still be completed. Returns how many entries went.
    pub fn prune(&mut self, days: u32) -> Result<usize, StoreError> {
        let cutoff = (Local::now() - chrono::Duration::days(i64::from(days))).to_rfc3339();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| io_err(&self.dir.join(DB_FILE), e))?;
        // Open pre-authorizations stay: they can still be completed.
        const OLD: &str =
            "settled = 1 AND settled_at < ?1 AND NOT (kind = 'preauth' AND status = 'approved')";
        let mut n = 0;
        for db in ["history", "main"] {
            tx.execute(
                &format!("DELETE FROM {db}.events WHERE entry IN (SELECT id FROM {db}.entries WHERE {OLD})"),
                [&cutoff],
            )
            .map_err(|e| io_err(&self.dir.join(DB_FILE), e))?;
            n += tx
                .execute(&format!("DELETE FROM {db}.entries WHERE {OLD}"), [&cutoff])
                .map_err(|e| io_err(&self.dir.join(DB_FILE), e))?;
        }
        tx.commit()
            .map_err(|e| io_err(&self.dir.join(DB_FILE), e))?;
        self.shadow_entries.retain(|_, e| {
            !(e.settled && e.settled_at.as_deref().is_some_and(|s| s < cutoff.as_str()))
        });
        Ok(n)
    }

    /// Writes an encrypted backup of the whole journal (working file and
    /// history) to `dest`: consistent copies taken with SQLite's backup API,
    /// sealed with ChaCha20-Poly1305 under the device data key. Returns the
    /// number of entries in it.
    pub fn export(&self, dest: &Path, data_key: &[u8]) -> Result<u64, StoreError> {
        let mut payload = zeroize::Zeroizing::new(Vec::new());
        for (name, file) in [
            (rusqlite::MAIN_DB, "export-journal.tmp"),
            (c"history", "export-history.tmp"),
        ] {
            let tmp = self.dir.join(file);
            let _ = fs::remove_file(&tmp);
            {
                let mut copy = Connection::open(&tmp).map_err(|e| io_err(&tmp, e))?;
                let backup = rusqlite::backup::Backup::new_with_names(
                    &self.conn,
                    name,
                    &mut copy,
                    rusqlite::MAIN_DB,
                )
                .map_err(|e| io_err(&tmp, e))?;
                backup
                    .run_to_completion(256, Duration::ZERO, None)
                    .map_err(|e| io_err(&tmp, e))?;
            }
            let bytes =
                zeroize::Zeroizing::new(fs::read(&tmp).map_err(|source| StoreError::Io {
                    path: tmp.clone(),
                    source,
                })?);
            let _ = fs::remove_file(&tmp);
            payload.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            payload.extend_from_slice(&bytes);
        }
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM all_entries", [], |r| r.get(0))
            .map_err(|e| self.sql_err(e))?;
        let sealed = crate::engine::state::Sealer::new(data_key)?.seal(&payload)?;
        let mut out = Vec::with_capacity(sealed.len() + 8);
        out.extend_from_slice(ARCHIVE_MAGIC);
        out.extend_from_slice(sealed.as_bytes());
        write_durably(dest, &out)?;
        Ok(count as u64)
    }

    /// Replaces the journal in `dir` with the backup in `archive`. Refuses
    /// when the current journal still owes the host reversals or advices
    /// (unless `force`), because restoring would forget them; the journal
    /// replaced is kept beside it. Returns the number of entries restored.
    pub fn import(
        dir: &Path,
        archive: &Path,
        data_key: &[u8],
        force: bool,
    ) -> Result<u64, StoreError> {
        let not_backup = |why: &str| StoreError::Damaged {
            path: archive.to_path_buf(),
            reason: format!(
                "this is not a usable Till journal backup (made by `tillctl journal export`): {why}"
            ),
        };
        let raw = fs::read(archive).map_err(|source| StoreError::Io {
            path: archive.to_path_buf(),
            source,
        })?;
        if raw.len() < ARCHIVE_MAGIC.len() || &raw[..8] != ARCHIVE_MAGIC {
            return Err(not_backup("it does not start like one"));
        }
        let text = std::str::from_utf8(&raw[8..]).map_err(|_| StoreError::Unseal)?;
        let plain = crate::engine::state::Sealer::new(data_key)?.open(text)?;
        let mut parts = Vec::new();
        let mut rest: &[u8] = &plain;
        while !rest.is_empty() {
            let Some((len, tail)) = rest.split_first_chunk::<8>() else {
                return Err(not_backup("it is cut short"));
            };
            let len = usize::try_from(u64::from_le_bytes(*len))
                .map_err(|_| not_backup("a part is too large"))?;
            if tail.len() < len {
                return Err(not_backup("it is cut short"));
            }
            parts.push(&tail[..len]);
            rest = &tail[len..];
        }
        let [journal, history] = parts[..] else {
            return Err(not_backup("it does not hold a journal and its history"));
        };
        fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let staged = [
            (dir.join("import-journal.tmp"), journal),
            (dir.join("import-history.tmp"), history),
        ];
        for (path, bytes) in &staged {
            write_durably(path, bytes)?;
            let c = Connection::open(path).map_err(|e| io_err(path, e))?;
            let ok: String = c
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .map_err(|e| io_err(path, e))?;
            if ok != "ok" {
                for (p, _) in &staged {
                    let _ = fs::remove_file(p);
                }
                return Err(not_backup(&format!("it fails its integrity check: {ok}")));
            }
        }
        let current = dir.join(DB_FILE);
        if current.exists() && !force {
            let owed = SqliteJournal::open(dir)
                .and_then(|j| j.queue_status())
                .map(|q| q.depth)
                .unwrap_or(0);
            if owed > 0 {
                for (p, _) in &staged {
                    let _ = fs::remove_file(p);
                }
                return Err(io_err(
                    &current,
                    format!(
                        "the current journal still owes the host {owed} reversal(s) or advice(s); send them first \
                         (`tillctl saf forward`) or import with --force to give them up"
                    ),
                ));
            }
        }
        if current.exists() || dir.join(HISTORY_FILE).exists() {
            move_aside(dir, "before-import")?;
        }
        fs::rename(&staged[0].0, &current).map_err(|source| StoreError::Io {
            path: current.clone(),
            source,
        })?;
        let history_path = dir.join(HISTORY_FILE);
        fs::rename(&staged[1].0, &history_path).map_err(|source| StoreError::Io {
            path: history_path,
            source,
        })?;
        let _ = fs::remove_file(dir.join(MARKER));
        sync_dir(dir)?;
        let j = SqliteJournal::open(dir)?;
        let n: i64 = j
            .conn
            .query_row("SELECT count(*) FROM all_entries", [], |r| r.get(0))
            .map_err(|e| j.sql_err(e))?;
        Ok(n as u64)
    }

    /// Deliberately starts an empty journal after a damaged one was moved
    /// aside (the marker that blocks opening is removed).
    pub fn reset(dir: &Path) -> Result<(), StoreError> {
        if dir.join(DB_FILE).exists() || dir.join(HISTORY_FILE).exists() {
            move_aside(dir, "reset")?;
        }
        let _ = fs::remove_file(dir.join(MARKER));
        sync_dir(dir)
    }

    /// Writes what differs from `shadow` (what is on disk); returns the
    /// indices of the entries and queue items it wrote, so the shadow can
    /// be brought up to date without comparing everything again.
    fn save_tx(
        tx: &Transaction<'_>,
        state: &TerminalState,
        shadow: &ShadowView<'_>,
    ) -> rusqlite::Result<Written> {
        let mut written = Written::default();
        let now = Local::now().to_rfc3339();
        let mut meta =
            tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?;
        meta.execute(params!["last_stan", state.last_stan.to_string()])?;
        meta.execute(params!["batch_number", state.batch_number.to_string()])?;
        meta.execute(params!["next_entry", state.next_entry.to_string()])?;
        meta.execute(params![
            "session",
            serde_json::to_string(&state.session).unwrap_or_default()
        ])?;
        for (i, e) in state.entries.iter().enumerate() {
            let old = shadow.entries.get(&e.id);
            if old == Some(e) {
                continue;
            }
            written.entries.push(i);
            upsert_entry(tx, e)?;
            if old.is_none_or(|o| o.status != e.status || o.response_code != e.response_code) {
                tx.prepare_cached(
                    "INSERT INTO events (entry, at, status, response_code) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    e.id as i64,
                    now,
                    status_name(e.status),
                    e.response_code
                ])?;
            }
        }
        // Queue items present both in memory and on disk; when that is all
        // of the disk's, nothing left the queue and nothing is deleted.
        let mut kept = 0;
        for (i, p) in state.pending.iter().enumerate() {
            let old = shadow.pending.get(&(p.entry, p.kind));
            kept += usize::from(old.is_some());
            if old != Some(p) {
                written.pending.push(i);
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO pending (entry, kind, item) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![
                    p.entry as i64,
                    pending_kind_name(p.kind),
                    serde_json::to_string(p).unwrap_or_default()
                ])?;
            }
        }
        if kept < shadow.pending.len() {
            written.pending_removed = true;
            let live: HashSet<(u64, PendingKind)> =
                state.pending.iter().map(|p| (p.entry, p.kind)).collect();
            for (entry, kind) in shadow.pending.keys().filter(|k| !live.contains(k)) {
                tx.prepare_cached("DELETE FROM pending WHERE entry = ?1 AND kind = ?2")?
                    .execute(params![*entry as i64, pending_kind_name(*kind)])?;
            }
        }
        for r in state
            .sign_ins
            .iter()
            .filter(|r| !shadow.sign_ins.contains(&r.at))
        {
            tx.prepare_cached("INSERT INTO sign_ins (at, record) VALUES (?1, ?2)")?
                .execute(params![r.at, serde_json::to_string(r).unwrap_or_default()])?;
        }
        for r in state
            .settlements
            .iter()
            .filter(|r| !shadow.settlements.contains(&(r.batch, r.at.clone())))
        {
            tx.prepare_cached("INSERT INTO settlements (batch, at, record) VALUES (?1, ?2, ?3)")?
                .execute(params![
                    i64::from(r.batch),
                    r.at,
                    serde_json::to_string(r).unwrap_or_default()
                ])?;
        }
        Ok(written)
    }
}

/// What one save wrote (see [`SqliteJournal::save_tx`]).
#[derive(Default)]
struct Written {
    entries: Vec<usize>,
    pending: Vec<usize>,
    pending_removed: bool,
}

struct ShadowView<'a> {
    entries: &'a HashMap<u64, Entry>,
    pending: &'a HashMap<(u64, PendingKind), PendingItem>,
    sign_ins: &'a HashSet<String>,
    settlements: &'a HashSet<(u32, String)>,
}

enum OpenFailure {
    Damaged(String),
    Store(StoreError),
}

impl Drop for SqliteJournal {
    fn drop(&mut self) {
        // A clean close: the next open may skip the integrity check.
        let _ = self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('clean_shutdown', '1')",
            [],
        );
    }
}

impl StateStore for SqliteJournal {
    fn load(&mut self) -> Result<TerminalState, StoreError> {
        let mut s = TerminalState::default();
        let meta = |key: &str| -> Result<Option<String>, StoreError> {
            self.conn
                .query_row("SELECT value FROM meta WHERE key = ?", [key], |r| r.get(0))
                .optional()
                .map_err(|e| self.sql_err(e))
        };
        let num =
            |v: Option<String>, default: u64| v.and_then(|v| v.parse().ok()).unwrap_or(default);
        s.last_stan = num(meta("last_stan")?, 0) as u32;
        s.batch_number = num(meta("batch_number")?, 1) as u32;
        let max_id: Option<i64> = self
            .conn
            .query_row(
                // Per file, so each uses its primary key (max over the union view scans).
                "SELECT max(m) FROM (SELECT max(id) AS m FROM main.entries UNION ALL SELECT max(id) FROM history.entries)",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.sql_err(e))?;
        s.next_entry = num(meta("next_entry")?, 1).max(max_id.unwrap_or(0) as u64 + 1);
        s.session = meta("session")?
            .and_then(|v| serde_json::from_str::<Option<Session>>(&v).ok())
            .flatten();
        let today = Local::now().date_naive().to_string();
        let mut st = self
            .conn
            .prepare(
                // Unsettled entries and open pre-authorizations are never in
                // history, so history only adds today's: a range on its `at`
                // index (RFC 3339 text compares >= the bare date).
                "SELECT * FROM main.entries WHERE settled = 0 OR at >= ?1 \
                 OR (kind = 'preauth' AND status = 'approved') \
                 UNION ALL SELECT * FROM history.entries WHERE at >= ?1 ORDER BY id",
            )
            .map_err(|e| self.sql_err(e))?;
        s.entries = st
            .query_map([&today], row_entry)
            .map_err(|e| self.sql_err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql_err(e))?;
        drop(st);
        s.pending = self.read_pending()?;
        let mut st = self
            .conn
            .prepare("SELECT record FROM (SELECT seq, record FROM sign_ins ORDER BY seq DESC LIMIT 50) ORDER BY seq")
            .map_err(|e| self.sql_err(e))?;
        let recs: Vec<String> = st
            .query_map([], |r| r.get(0))
            .map_err(|e| self.sql_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.sql_err(e))?;
        s.sign_ins = recs
            .iter()
            .filter_map(|t| serde_json::from_str::<SignInRecord>(t).ok())
            .collect();
        drop(st);
        let mut st = self
            .conn
            .prepare("SELECT record FROM (SELECT seq, record FROM settlements ORDER BY seq DESC LIMIT 20) ORDER BY seq")
            .map_err(|e| self.sql_err(e))?;
        let recs: Vec<String> = st
            .query_map([], |r| r.get(0))
            .map_err(|e| self.sql_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.sql_err(e))?;
        s.settlements = recs
            .iter()
            .filter_map(|t| serde_json::from_str::<SettlementRecord>(t).ok())
            .collect();
        drop(st);
        self.shadow_entries = s.entries.iter().map(|e| (e.id, e.clone())).collect();
        self.shadow_pending = s
            .pending
            .iter()
            .map(|p| ((p.entry, p.kind), p.clone()))
            .collect();
        self.shadow_sign_ins = s.sign_ins.iter().map(|r| r.at.clone()).collect();
        self.shadow_settlements = s
            .settlements
            .iter()
            .map(|r| (r.batch, r.at.clone()))
            .collect();
        Ok(s)
    }

    fn save(&mut self, state: &TerminalState) -> Result<(), StoreError> {
        let path = self.path();
        let tx = self.conn.transaction().map_err(|e| io_err(&path, e))?;
        let view = ShadowView {
            entries: &self.shadow_entries,
            pending: &self.shadow_pending,
            sign_ins: &self.shadow_sign_ins,
            settlements: &self.shadow_settlements,
        };
        let written = Self::save_tx(&tx, state, &view).map_err(|e| io_err(&path, e))?;
        tx.commit().map_err(|e| io_err(&path, e))?;
        // What is on disk now.
        for &i in &written.entries {
            let e = &state.entries[i];
            self.shadow_entries.insert(e.id, e.clone());
        }
        if self.shadow_entries.len() > state.entries.len() {
            let live: HashSet<u64> = state.entries.iter().map(|e| e.id).collect();
            self.shadow_entries.retain(|id, _| live.contains(id));
        }
        for &i in &written.pending {
            let p = &state.pending[i];
            self.shadow_pending.insert((p.entry, p.kind), p.clone());
        }
        if written.pending_removed {
            let live: HashSet<(u64, PendingKind)> =
                state.pending.iter().map(|p| (p.entry, p.kind)).collect();
            self.shadow_pending.retain(|k, _| live.contains(k));
        }
        self.shadow_sign_ins
            .extend(state.sign_ins.iter().map(|r| r.at.clone()));
        self.shadow_settlements
            .extend(state.settlements.iter().map(|r| (r.batch, r.at.clone())));
        Ok(())
    }

    fn prune(&mut self, days: u32) -> Result<usize, StoreError> {
        SqliteJournal::prune(self, days)
    }

    fn archive(&mut self) -> Result<usize, StoreError> {
        SqliteJournal::archive(self)
    }

    fn find_by_rrn(&mut self, rrn: &str) -> Result<Option<Entry>, StoreError> {
        self.conn
            .query_row(
                "SELECT * FROM all_entries WHERE rrn = ? ORDER BY id DESC LIMIT 1",
                [rrn],
                row_entry,
            )
            .optional()
            .map_err(|e| self.sql_err(e))
    }
}

/// Adds `entries.wallet` (schema 2) to a version 1 table in `schema`; a
/// table that has it, or no table yet, is left alone. New columns go last, so `SELECT *`
/// rows keep the same positions in both files.
fn add_wallet_column(conn: &Connection, schema: &str) -> rusqlite::Result<()> {
    let (columns, wallet): (i64, i64) = conn.query_row(
        &format!(
            "SELECT count(*), count(*) FILTER (WHERE name = 'wallet') \
             FROM pragma_table_info('entries', '{schema}')"
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if columns > 0 && wallet == 0 {
        conn.execute_batch(&format!(
            "ALTER TABLE {schema}.entries ADD COLUMN wallet TEXT"
        ))?;
    }
    Ok(())
}

fn upsert_entry(tx: &Transaction<'_>, e: &Entry) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO entries (id, kind, batch, stan, at, local_date, local_time, mti, processing_code, amount, \
         currency, pan_masked, last4, card_sealed, status, response_code, rrn, auth_code, original_rrn, original_entry, \
         settled, settled_at, offline, wallet) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
         ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
    )?
    .execute(params![
        e.id as i64,
        e.kind.name(),
        i64::from(e.batch),
        i64::from(e.stan),
        e.at,
        e.local_date,
        e.local_time,
        e.mti,
        e.processing_code,
        e.amount.map(|a| a as i64),
        i64::from(e.currency),
        e.pan_masked,
        e.pan_masked.as_deref().map(|m| m[m.len().saturating_sub(4)..].to_string()),
        e.card_sealed,
        status_name(e.status),
        e.response_code,
        e.rrn,
        e.auth_code,
        e.original.as_ref().map(|o| o.rrn.clone()),
        e.original.as_ref().and_then(|o| o.entry).map(|id| id as i64),
        e.settled,
        e.settled_at,
        e.offline,
        e.wallet.map(crate::qr::Wallet::id),
    ])
}

/// An entry from a `SELECT *` row of `entries` (columns by position, in the
/// order of the table definition: looking them up by name for every field
/// of every row was most of the cost of loading).
fn row_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let bad = |col: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            col,
            rusqlite::types::Type::Text,
            format!("unknown {what}").into(),
        )
    };
    let kind: String = r.get(1)?;
    let status: String = r.get(14)?;
    let original_rrn: Option<String> = r.get(18)?;
    let original_entry: Option<i64> = r.get(19)?;
    Ok(Entry {
        id: r.get::<_, i64>(0)? as u64,
        kind: kind
            .parse::<TxnKind>()
            .map_err(|_| bad(1, "transaction kind"))?,
        batch: r.get::<_, i64>(2)? as u32,
        stan: r.get::<_, i64>(3)? as u32,
        at: r.get(4)?,
        local_date: r.get(5)?,
        local_time: r.get(6)?,
        mti: r.get(7)?,
        processing_code: r.get(8)?,
        amount: r.get::<_, Option<i64>>(9)?.map(|a| a as u64),
        currency: r.get::<_, i64>(10)? as u16,
        pan_masked: r.get(11)?,
        card_sealed: r.get(13)?,
        status: status_from(&status).ok_or_else(|| bad(14, "status"))?,
        response_code: r.get(15)?,
        rrn: r.get(16)?,
        auth_code: r.get(17)?,
        original: original_rrn.map(|rrn| OriginalRef {
            rrn,
            entry: original_entry.map(|i| i as u64),
        }),
        settled: r.get(20)?,
        settled_at: r.get(21)?,
        offline: r.get(22)?,
        wallet: match r.get::<_, Option<String>>(23)? {
            None => None,
            Some(w) => Some(crate::qr::Wallet::from_id(&w).ok_or_else(|| bad(23, "wallet"))?),
        },
    })
}

/// Moves the database files aside under a name with `why` and the time;
/// returns the new path of the database file.
fn move_aside(dir: &Path, why: &str) -> Result<PathBuf, StoreError> {
    let stamp = Local::now().format("%Y%m%dT%H%M%S%.3f");
    let target = dir.join(format!("{DB_FILE}.{why}-{stamp}"));
    for file in [DB_FILE, HISTORY_FILE] {
        for suffix in ["", "-wal", "-shm"] {
            let from = dir.join(format!("{file}{suffix}"));
            if from.exists() {
                let to = dir.join(format!("{file}.{why}-{stamp}{suffix}"));
                fs::rename(&from, &to).map_err(|source| StoreError::Io {
                    path: from.clone(),
                    source,
                })?;
            }
        }
    }
    sync_dir(dir)?;
    Ok(target)
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = PathBuf::from(format!("{}.partial", path.display()));
    {
        let mut f = fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    fs::rename(&tmp, path).map_err(io)?;
    if let Some(d) = path.parent() {
        sync_dir(d)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let d = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    fs::File::open(d)
        .and_then(|f| f.sync_all())
        .map_err(|source| StoreError::Io {
            path: d.to_path_buf(),
            source,
        })
}
