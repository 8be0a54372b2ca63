//! `tillctl journal`: history, backup and restore, retention.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Value, json};
use till_pay::engine::Entry;
use till_pay::journal::{Query, SqliteJournal};
use till_pay::money::{Amount, Currency};

use super::txn::TerminalArgs;
use super::{Done, Failure};

#[derive(Subcommand)]
pub(crate) enum JournalCommand {
    /// Transactions, newest first (card numbers masked).
    List {
        #[command(flatten)]
        terminal: TerminalArgs,
        /// Local date YYYY-MM-DD.
        #[arg(long)]
        date: Option<String>,
        /// Last four digits of the card.
        #[arg(long)]
        last4: Option<String>,
        /// Amount, e.g. 12.34 (in --currency).
        #[arg(long)]
        amount: Option<String>,
        /// Currency of --amount.
        #[arg(long, default_value = "CNY")]
        currency: String,
        /// Retrieval reference number.
        #[arg(long)]
        rrn: Option<String>,
        /// Batch number.
        #[arg(long)]
        batch: Option<u32>,
        /// Status, e.g. approved, reversed, offline_approved.
        #[arg(long)]
        status: Option<String>,
        /// Kind, e.g. sale, refund.
        #[arg(long)]
        kind: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One transaction with its status history.
    Show {
        #[command(flatten)]
        terminal: TerminalArgs,
        /// Journal id (as `list` shows it).
        id: u64,
    },
    /// Write an encrypted backup of the journal (e.g. to a USB stick).
    Export {
        #[command(flatten)]
        terminal: TerminalArgs,
        /// Backup file to write.
        file: PathBuf,
    },
    /// Restore the journal from a backup made by `export`.
    Import {
        #[command(flatten)]
        terminal: TerminalArgs,
        /// Backup file to read.
        file: PathBuf,
        /// Restore even though the current journal still owes the host reversals or advices.
        #[arg(long)]
        force: bool,
    },
    /// Delete settled batches older than this many days.
    Prune {
        #[command(flatten)]
        terminal: TerminalArgs,
        /// Age in days.
        #[arg(long)]
        days: u32,
    },
    /// Start an empty journal after a damaged one was moved aside.
    Reset {
        #[command(flatten)]
        terminal: TerminalArgs,
        /// Confirms that starting empty is intended.
        #[arg(long)]
        yes: bool,
    },
}

/// An entry as shown: everything but the sealed card data.
pub(crate) fn shown(e: &Entry) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("card_sealed");
    }
    v
}

fn journal_err(e: impl std::fmt::Display) -> Failure {
    Failure::new("journal", e.to_string())
}

pub(crate) fn run(cmd: JournalCommand) -> Result<Done, Failure> {
    match cmd {
        JournalCommand::List {
            terminal,
            date,
            last4,
            amount,
            currency,
            rrn,
            batch,
            status,
            kind,
            limit,
        } => {
            let (_, j) = terminal.open_journal()?;
            let currency = Currency::find(&currency)
                .ok_or_else(|| Failure::new("usage", format!("unknown currency {currency:?}")))?;
            let amount = amount
                .map(|a| {
                    Amount::parse(&a, currency)
                        .map_err(|e| Failure::new("usage", format!("--amount: {e}")))
                })
                .transpose()?;
            let q = Query {
                date,
                last4,
                amount: amount.map(|a| a.0),
                rrn,
                batch,
                status,
                kind,
                limit: Some(limit),
            };
            let entries = j.search(&q).map_err(journal_err)?;
            Ok(Done::Json(
                json!({"entries": entries.iter().map(shown).collect::<Vec<_>>()}),
            ))
        }
        JournalCommand::Show { terminal, id } => {
            let (_, j) = terminal.open_journal()?;
            let (e, events) = j.show(id).map_err(journal_err)?.ok_or_else(|| {
                Failure::new("not_found", format!("no transaction {id} in the journal"))
            })?;
            Ok(Done::Json(json!({"entry": shown(&e), "history": events})))
        }
        JournalCommand::Export { terminal, file } => {
            let (id, j) = terminal.open_journal()?;
            let key = id
                .files
                .read_datakey()
                .map_err(|e| Failure::new("pki", e.to_string()))?;
            let n = j.export(&file, &key).map_err(journal_err)?;
            Ok(Done::Json(json!({"exported": n, "file": file})))
        }
        JournalCommand::Import {
            terminal,
            file,
            force,
        } => {
            let id = terminal.identity()?;
            let key = id
                .files
                .read_datakey()
                .map_err(|e| Failure::new("pki", e.to_string()))?;
            let n =
                SqliteJournal::import(&id.state_dir, &file, &key, force).map_err(journal_err)?;
            Ok(Done::Json(json!({"imported": n, "journal": id.state_dir})))
        }
        JournalCommand::Prune { terminal, days } => {
            let (_, mut j) = terminal.open_journal()?;
            let n = j.prune(days).map_err(journal_err)?;
            Ok(Done::Json(json!({"pruned": n, "days": days})))
        }
        JournalCommand::Reset { terminal, yes } => {
            if !yes {
                return Err(Failure::new(
                    "usage",
                    "this starts an empty journal: the old one stays beside it, but the terminal forgets its transactions; \
                     add --yes if that is what you want (restoring a backup with `tillctl journal import` keeps them)",
                ));
            }
            let id = terminal.identity()?;
            SqliteJournal::reset(&id.state_dir).map_err(journal_err)?;
            Ok(Done::Json(json!({"reset": id.state_dir})))
        }
    }
}
