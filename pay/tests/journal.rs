//! The SQLite journal: what it keeps, how it recovers, and how it refuses
//! to lose anything.

use std::fs;

use till_pay::engine::StoreError;
use till_pay::engine::state::{
    Entry, PendingItem, PendingKind, Session, StateStore, Status, TerminalState,
};
use till_pay::iso8583::TxnKind;
use till_pay::journal::{Query, SqliteJournal};
use till_pay::security::KeyCryptograms;

const DATA_KEY: [u8; 32] = [0x42; 32];

fn entry(id: u64, kind: TxnKind, status: Status, at: &str) -> Entry {
    Entry {
        id,
        kind,
        batch: 1,
        stan: id as u32,
        at: at.into(),
        local_date: "1121".into(),
        local_time: "101010".into(),
        mti: "0200".into(),
        processing_code: Some("000000".into()),
        amount: Some(1000 * id),
        currency: 156,
        pan_masked: Some(format!("622208*********{:04}", id)),
        wallet: None,
        card_sealed: Some("sealed".into()),
        status,
        response_code: None,
        rrn: Some(format!("{:012}", 500 + id)),
        auth_code: None,
        original: None,
        settled: false,
        settled_at: None,
        offline: false,
    }
}

fn today() -> String {
    chrono::Local::now().to_rfc3339()
}

fn state_with(entries: Vec<Entry>) -> TerminalState {
    let mut s = TerminalState {
        last_stan: 7,
        batch_number: 3,
        next_entry: 10,
        entries,
        ..TerminalState::default()
    };
    s.session = Some(Session {
        host: "h:1".into(),
        dialect: "cup".into(),
        date: "2026-11-21".into(),
        at: today(),
        keys: KeyCryptograms {
            pin_key: "AA".into(),
            pin_kcv: "BB".into(),
            mac_key: "CC".into(),
            mac_kcv: "DD".into(),
        },
    });
    s
}

#[test]
fn saves_every_change_and_loads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = SqliteJournal::open(dir.path()).unwrap();
    assert!(!j.integrity_checked(), "a new journal needs no check");
    let mut s = state_with(vec![entry(1, TxnKind::Sale, Status::Sending, &today())]);
    j.save(&s).unwrap();
    s.entries[0].status = Status::Approved;
    s.entries[0].response_code = Some("00".into());
    j.save(&s).unwrap();
    s.entries
        .push(entry(2, TxnKind::Void, Status::Sending, &today()));
    s.pending.push(PendingItem {
        entry: 2,
        kind: PendingKind::Reversal,
        armed: false,
        message: "0400".into(),
        first_mti: "0400".into(),
        repeat_mti: "0401".into(),
        attempts: 0,
        reason: String::new(),
        stan: 2,
        created_at: today(),
        rejected: None,
    });
    j.save(&s).unwrap();
    s.entries[0].status = Status::Voided;
    j.save(&s).unwrap();
    drop(j);

    let mut j = SqliteJournal::open(dir.path()).unwrap();
    assert!(!j.integrity_checked(), "the previous close was clean");
    let back = j.load().unwrap();
    assert_eq!(back.entries, s.entries);
    assert_eq!(back.pending, s.pending);
    assert_eq!(
        (back.last_stan, back.batch_number, back.next_entry),
        (7, 3, 10)
    );
    assert_eq!(back.session, s.session);
    // Every status change is in the entry's history.
    let (e, events) = j.show(1).unwrap().unwrap();
    assert_eq!(e.status, Status::Voided);
    let statuses: Vec<&str> = events.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(statuses, ["sending", "approved", "voided"]);
    let q = j.queue_status().unwrap();
    assert_eq!(
        (q.depth, q.in_flight),
        (0, 1),
        "an unarmed guard is not owed yet"
    );
}

#[test]
fn search_by_card_amount_date_and_reference() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = SqliteJournal::open(dir.path()).unwrap();
    let s = state_with(
        (1..=5)
            .map(|i| entry(i, TxnKind::Sale, Status::Approved, &today()))
            .collect(),
    );
    j.save(&s).unwrap();
    let date = chrono::Local::now().date_naive().to_string();
    assert_eq!(
        j.search(&Query {
            date: Some(date),
            ..Query::default()
        })
        .unwrap()
        .len(),
        5
    );
    assert_eq!(
        j.search(&Query {
            date: Some("2001-01-01".into()),
            ..Query::default()
        })
        .unwrap()
        .len(),
        0
    );
    let by4 = j
        .search(&Query {
            last4: Some("0003".into()),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(by4.iter().map(|e| e.id).collect::<Vec<_>>(), [3]);
    assert_eq!(
        j.search(&Query {
            amount: Some(4000),
            ..Query::default()
        })
        .unwrap()[0]
            .id,
        4
    );
    assert_eq!(
        j.search(&Query {
            rrn: Some("000000000502".into()),
            ..Query::default()
        })
        .unwrap()[0]
            .id,
        2
    );
    let newest_first: Vec<u64> = j
        .search(&Query {
            limit: Some(2),
            ..Query::default()
        })
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(newest_first, [5, 4]);
}

#[test]
fn memory_gets_the_open_batch_history_stays_in_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = SqliteJournal::open(dir.path()).unwrap();
    let mut old = entry(
        1,
        TxnKind::Sale,
        Status::Approved,
        "2026-01-05T10:00:00+08:00",
    );
    old.settled = true;
    old.settled_at = Some("2026-01-05T20:00:00+08:00".into());
    let mut hold = entry(
        2,
        TxnKind::Preauth,
        Status::Approved,
        "2026-01-05T11:00:00+08:00",
    );
    hold.settled = true;
    hold.settled_at = old.settled_at.clone();
    let open = entry(3, TxnKind::Sale, Status::Approved, &today());
    j.save(&state_with(vec![old.clone(), hold, open])).unwrap();
    let loaded = j.load().unwrap();
    assert_eq!(
        loaded.entries.iter().map(|e| e.id).collect::<Vec<_>>(),
        [2, 3],
        "open pre-authorization and today"
    );
    assert_eq!(
        j.find_by_rrn(old.rrn.as_deref().unwrap()).unwrap(),
        Some(old)
    );
    // Retention: settled entries older than the cutoff go, except an open
    // pre-authorization (it can still be completed); the open batch stays.
    assert_eq!(j.prune(30).unwrap(), 1);
    assert!(j.show(1).unwrap().is_none());
    assert!(j.show(2).unwrap().is_some());
    assert!(j.show(3).unwrap().is_some());
}

#[test]
fn an_unclean_shutdown_is_checked_on_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = SqliteJournal::open(dir.path()).unwrap();
    j.save(&state_with(vec![entry(
        1,
        TxnKind::Sale,
        Status::Approved,
        &today(),
    )]))
    .unwrap();
    // As if the process were killed: no clean close.
    std::mem::forget(j);
    let mut j = SqliteJournal::open(dir.path()).unwrap();
    assert!(j.integrity_checked());
    assert_eq!(j.load().unwrap().entries.len(), 1);
}

fn damage(dir: &std::path::Path, how: &str) -> Vec<u8> {
    let mut j = SqliteJournal::open(dir).unwrap();
    let entries = (1..=400)
        .map(|i| entry(i, TxnKind::Sale, Status::Approved, &today()))
        .collect();
    j.save(&state_with(entries)).unwrap();
    std::mem::forget(j);
    // Fold the WAL into the database so the damage hits real pages.
    let c = rusqlite::Connection::open(dir.join("journal.db")).unwrap();
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    c.execute(
        "UPDATE meta SET value = '0' WHERE key = 'clean_shutdown'",
        [],
    )
    .unwrap();
    drop(c);
    let path = dir.join("journal.db");
    let mut bytes = fs::read(&path).unwrap();
    match how {
        "truncate" => bytes.truncate(bytes.len() / 2),
        _ => {
            let mid = bytes.len() / 2;
            bytes[mid..mid + 2048].fill(0xA5);
        }
    }
    fs::write(&path, &bytes).unwrap();
    bytes
}

#[test]
fn a_damaged_journal_is_moved_aside_untouched_and_never_replaced_silently() {
    for how in ["truncate", "overwrite"] {
        let dir = tempfile::tempdir().unwrap();
        let damaged = damage(dir.path(), how);
        let e = SqliteJournal::open(dir.path()).unwrap_err();
        assert!(matches!(e, StoreError::Damaged { .. }), "{how}: {e}");
        let text = e.to_string();
        assert!(
            text.contains("moved aside") && text.contains("tillctl journal import"),
            "{how}: {text}"
        );
        let aside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|f| f.ok())
            .map(|f| f.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("journal.db.damaged-")
            })
            .filter(|p| {
                !p.to_string_lossy().ends_with("-wal") && !p.to_string_lossy().ends_with("-shm")
            })
            .collect();
        assert_eq!(aside.len(), 1, "{how}");
        assert_eq!(
            fs::read(&aside[0]).unwrap(),
            damaged,
            "{how}: moved aside untouched"
        );
        assert!(!dir.path().join("journal.db").exists());
        // Opening again does not start an empty journal behind the operator's back.
        let e = SqliteJournal::open(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("tillctl journal reset"),
            "{how}: {e}"
        );
        // Only a deliberate reset does.
        SqliteJournal::reset(dir.path()).unwrap();
        assert!(
            SqliteJournal::open(dir.path())
                .unwrap()
                .load()
                .unwrap()
                .entries
                .is_empty()
        );
    }
}

#[test]
fn encrypted_backup_restores_and_refuses_to_forget_what_is_owed() {
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("usb").join("till-backup.jnl");
    fs::create_dir_all(backup.parent().unwrap()).unwrap();
    {
        let mut j = SqliteJournal::open(dir.path().join("a")).unwrap();
        j.save(&state_with(
            (1..=3)
                .map(|i| entry(i, TxnKind::Sale, Status::Approved, &today()))
                .collect(),
        ))
        .unwrap();
        assert_eq!(j.export(&backup, &DATA_KEY).unwrap(), 3);
    }
    let raw = fs::read(&backup).unwrap();
    assert!(raw.starts_with(b"TILLJNL2"));
    assert!(
        !String::from_utf8_lossy(&raw).contains("622208"),
        "the backup is encrypted"
    );
    // Restored elsewhere.
    assert_eq!(
        SqliteJournal::import(&dir.path().join("b"), &backup, &DATA_KEY, false).unwrap(),
        3
    );
    let restored = SqliteJournal::open(dir.path().join("b")).unwrap();
    assert_eq!(restored.search(&Query::default()).unwrap().len(), 3);
    drop(restored);
    // The wrong key cannot read it.
    assert!(matches!(
        SqliteJournal::import(&dir.path().join("c"), &backup, &[1u8; 32], false),
        Err(StoreError::Unseal)
    ));
    // A journal that still owes the host something is not overwritten.
    {
        let mut j = SqliteJournal::open(dir.path().join("b")).unwrap();
        let mut s = j.load().unwrap();
        s.pending.push(PendingItem {
            entry: 1,
            kind: PendingKind::Repeat,
            armed: true,
            message: "0220".into(),
            first_mti: "0220".into(),
            repeat_mti: "0221".into(),
            attempts: 0,
            reason: "offline".into(),
            stan: 1,
            created_at: today(),
            rejected: None,
        });
        j.save(&s).unwrap();
    }
    let e = SqliteJournal::import(&dir.path().join("b"), &backup, &DATA_KEY, false).unwrap_err();
    assert!(e.to_string().contains("owes the host 1"), "{e}");
    assert_eq!(
        SqliteJournal::import(&dir.path().join("b"), &backup, &DATA_KEY, true).unwrap(),
        3
    );
    // Not a backup at all.
    fs::write(dir.path().join("junk"), b"hello").unwrap();
    assert!(
        SqliteJournal::import(
            &dir.path().join("d"),
            &dir.path().join("junk"),
            &DATA_KEY,
            false
        )
        .is_err()
    );
}

fn settled(mut e: Entry, at: &str) -> Entry {
    e.settled = true;
    e.settled_at = Some(at.into());
    e
}

#[test]
fn settlement_moves_batches_to_history_and_every_query_still_sees_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = SqliteJournal::open(dir.path()).unwrap();
    let yesterday = "2026-01-04T10:00:00+08:00";
    let old = settled(
        entry(1, TxnKind::Sale, Status::Approved, yesterday),
        yesterday,
    );
    let hold = settled(
        entry(2, TxnKind::Preauth, Status::Approved, yesterday),
        yesterday,
    );
    let today_done = settled(
        entry(3, TxnKind::Sale, Status::Approved, &today()),
        &today(),
    );
    let open = entry(4, TxnKind::Sale, Status::Approved, &today());
    j.save(&state_with(vec![old.clone(), hold, today_done, open]))
        .unwrap();
    assert_eq!(
        j.archive().unwrap(),
        2,
        "settled entries move; the open pre-authorization stays"
    );
    drop(j);
    assert!(dir.path().join("history.db").exists());
    let mut j = SqliteJournal::open(dir.path()).unwrap();
    assert_eq!(j.search(&Query::default()).unwrap().len(), 4);
    assert_eq!(
        j.find_by_rrn(old.rrn.as_deref().unwrap()).unwrap(),
        Some(old)
    );
    let statuses: Vec<String> = j
        .show(1)
        .unwrap()
        .unwrap()
        .1
        .into_iter()
        .map(|e| e.status)
        .collect();
    assert_eq!(statuses, ["approved"], "the status history moved with it");
    let ids: Vec<u64> = j.load().unwrap().entries.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        [2, 3, 4],
        "memory: the open pre-authorization, today's settled sale and the open batch"
    );
}

#[test]
fn a_version_1_journal_gains_the_wallet_column_and_loses_nothing() {
    use till_pay::qr::Wallet;
    let dir = tempfile::tempdir().unwrap();
    let yesterday = "2026-01-04T10:00:00+08:00";
    let old = settled(
        entry(1, TxnKind::Sale, Status::Approved, yesterday),
        yesterday,
    );
    let open = entry(2, TxnKind::Sale, Status::Approved, &today());
    {
        let mut j = SqliteJournal::open(dir.path()).unwrap();
        j.save(&state_with(vec![old.clone(), open.clone()]))
            .unwrap();
        j.archive().unwrap();
    }
    // Make both files what Till wrote before QR payments: schema 1, no
    // wallet column.
    {
        let c = rusqlite::Connection::open(dir.path().join("journal.db")).unwrap();
        c.execute_batch(&format!(
            "ATTACH DATABASE '{}' AS history;
             ALTER TABLE main.entries DROP COLUMN wallet;
             ALTER TABLE history.entries DROP COLUMN wallet;
             PRAGMA main.user_version = 1;",
            dir.path().join("history.db").display()
        ))
        .unwrap();
        let cols: i64 = c
            .query_row(
                "SELECT count(*) FROM pragma_table_info('entries') WHERE name = 'wallet'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(cols, 0);
    }
    let mut j = SqliteJournal::open(dir.path()).unwrap();
    assert_eq!(j.search(&Query::default()).unwrap().len(), 2);
    assert_eq!(
        j.find_by_rrn(old.rrn.as_deref().unwrap()).unwrap(),
        Some(old)
    );
    let mut s = j.load().unwrap();
    assert_eq!(s.entries, vec![open]);
    let mut qr = entry(3, TxnKind::Sale, Status::Approved, &today());
    qr.wallet = Some(Wallet::Alipay);
    qr.card_sealed = None;
    s.entries.push(qr.clone());
    j.save(&s).unwrap();
    // Settling moves a wallet entry into the migrated history intact.
    s.entries
        .iter_mut()
        .for_each(|e| *e = settled(e.clone(), yesterday));
    j.save(&s).unwrap();
    assert_eq!(j.archive().unwrap(), 2);
    drop(j);
    let mut j = SqliteJournal::open(dir.path()).unwrap();
    let back = j.find_by_rrn(qr.rrn.as_deref().unwrap()).unwrap().unwrap();
    assert_eq!(back.wallet, Some(Wallet::Alipay));
    let version: i64 = rusqlite::Connection::open(dir.path().join("journal.db"))
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
}

#[test]
fn an_interrupted_move_is_finished_and_a_damaged_history_caught() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut j = SqliteJournal::open(dir.path()).unwrap();
        let at = "2026-01-04T10:00:00+08:00";
        j.save(&state_with(
            (1..=3)
                .map(|i| settled(entry(i, TxnKind::Sale, Status::Approved, at), at))
                .collect(),
        ))
        .unwrap();
        std::mem::forget(j);
    }
    // As if the terminal died after copying into history, before removing from the working file.
    {
        let c = rusqlite::Connection::open(dir.path().join("journal.db")).unwrap();
        c.execute(
            "ATTACH DATABASE ?1 AS history",
            [dir.path().join("history.db").to_string_lossy()],
        )
        .unwrap();
        c.execute("INSERT INTO history.entries SELECT * FROM main.entries", [])
            .unwrap();
        c.execute(
            "INSERT OR REPLACE INTO main.meta (key, value) VALUES ('archiving', '1')",
            [],
        )
        .unwrap();
    }
    let j = SqliteJournal::open(dir.path()).unwrap();
    assert!(j.integrity_checked());
    assert_eq!(
        j.search(&Query::default()).unwrap().len(),
        3,
        "each entry once, not in both files"
    );
    std::mem::forget(j);
    // Now the same, with the history file damaged: the check catches it.
    {
        let c = rusqlite::Connection::open(dir.path().join("journal.db")).unwrap();
        c.execute(
            "INSERT OR REPLACE INTO main.meta (key, value) VALUES ('archiving', '1')",
            [],
        )
        .unwrap();
        c.execute(
            "UPDATE main.meta SET value = '0' WHERE key = 'clean_shutdown'",
            [],
        )
        .unwrap();
        c.execute(
            "ATTACH DATABASE ?1 AS history",
            [dir.path().join("history.db").to_string_lossy()],
        )
        .unwrap();
        c.execute_batch("PRAGMA history.wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let path = dir.path().join("history.db");
    let mut bytes = fs::read(&path).unwrap();
    let len = bytes.len();
    bytes[len / 2..].fill(0xA5);
    fs::write(&path, &bytes).unwrap();
    let e = SqliteJournal::open(dir.path()).unwrap_err();
    assert!(e.to_string().contains("history"), "{e}");
    assert!(!path.exists(), "both files moved aside");
}
