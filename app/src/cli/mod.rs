//! `tillctl`, the field engineer's command line: development PKI, one
//! transaction flow at a time against a host, and the ISO 8583, PIN block
//! and MAC tools. Results are JSON on stdout; errors are JSON on stdout and
//! a sentence on stderr.
//!
//! Exit status: 0 done/approved, 1 failed, 2 bad usage, 3 declined or not
//! approved (the JSON says why).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;

mod card;
mod codec;
mod devices;
mod journal;
mod keys;
mod pki;
pub(crate) mod provision;
mod saf;
mod txn;

/// Exit status for a transaction the host (or the terminal's checks) did not approve.
pub const EXIT_DECLINED: u8 = 3;

#[derive(Parser)]
#[command(
    name = "tillctl",
    version,
    about = "Till field-engineer tool: PKI, transactions, ISO 8583, PIN blocks, MACs"
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug). Card data is always masked.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Give this terminal its identity: copy a provisioning folder's keys and
    /// certificates to the data partition (mode 0600).
    Provision(provision::ProvisionArgs),
    /// Development PKI: CA, acquirer and terminal certificates, terminal master keys.
    Pki {
        #[command(subcommand)]
        command: pki::PkiCommand,
    },
    /// Run one transaction flow against a host and print the result as JSON.
    Txn(Box<txn::TxnArgs>),
    /// ISO 8583 tools.
    Iso8583 {
        #[command(subcommand)]
        command: codec::Iso8583Command,
    },
    /// Make an ISO 9564 PIN block (format 0, 3 or 4), clear or enciphered.
    Pinblock(keys::PinblockArgs),
    /// Compute a MAC over hex data on stdin.
    Mac(keys::MacArgs),
    /// The transaction journal: history, backup and restore, retention.
    Journal {
        #[command(subcommand)]
        command: Box<journal::JournalCommand>,
    },
    /// The store-and-forward queue: status, and sending what is owed.
    Saf {
        #[command(subcommand)]
        command: Box<saf::SafCommand>,
    },
    /// Contactless cards: read one through the reader and the EMV kernel.
    Card {
        #[command(subcommand)]
        command: CardCommand,
    },
    /// The terminal's devices: self-test, default configuration.
    Devices {
        #[command(subcommand)]
        command: devices::DevicesCommand,
    },
    /// The receipt printer: test print.
    Print {
        #[command(subcommand)]
        command: devices::PrintCommand,
    },
}

#[derive(Subcommand)]
enum CardCommand {
    /// Read a card (masked PAN, AID, expiry, cryptogram) as JSON.
    Read(card::CardReadArgs),
}

/// What a command produced.
pub(crate) enum Done {
    /// JSON to print; exit 0.
    Json(serde_json::Value),
    /// JSON to print; exit [`EXIT_DECLINED`].
    Declined(serde_json::Value),
    /// Plain text to print; exit 0.
    Text(String),
    /// JSON to print and a sentence for stderr; exit 1 (e.g. a self-test
    /// whose report names the failed devices).
    Failed(serde_json::Value, String),
}

/// A failure with a sentence for a person and a machine-readable kind.
#[derive(Debug)]
pub(crate) struct Failure {
    pub kind: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

/// Runs `tillctl` with the process arguments.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Provision(args) => provision::run(args),
        Command::Pki { command } => pki::run(command),
        Command::Txn(args) => txn::run(*args),
        Command::Iso8583 { command } => codec::run(command),
        Command::Pinblock(args) => keys::pinblock(args),
        Command::Mac(args) => keys::mac(args),
        Command::Journal { command } => journal::run(*command),
        Command::Saf { command } => saf::run(*command),
        Command::Card {
            command: CardCommand::Read(args),
        } => card::read(args),
        Command::Devices { command } => devices::run_devices(command),
        Command::Print { command } => devices::run_print(command),
    };
    match result {
        Ok(Done::Json(v)) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(Done::Declined(v)) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::from(EXIT_DECLINED)
        }
        Ok(Done::Text(t)) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Ok(Done::Failed(v, why)) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            eprintln!("tillctl: {why}");
            ExitCode::FAILURE
        }
        Err(f) => {
            println!(
                "{}",
                json!({"error": {"kind": f.kind, "message": f.message}})
            );
            eprintln!("tillctl: {}", f.message);
            ExitCode::FAILURE
        }
    }
}

/// Reads all of stdin as text.
pub(crate) fn read_stdin() -> Result<String, Failure> {
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
        .map_err(|e| Failure::new("input", format!("cannot read standard input: {e}")))?;
    Ok(s)
}

/// Hex from a person: spaces and newlines ignored, either case.
pub(crate) fn parse_hex(what: &str, text: &str) -> Result<Vec<u8>, Failure> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&clean).map_err(|e| Failure::new("input", format!("{what} is not valid hex: {e}")))
}
