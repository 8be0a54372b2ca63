//! The `till-acquirer` command line: arguments, logging, the readiness line
//! and running until interrupted.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing::info;

use crate::faults::FaultRule;
use crate::server::{self, HostConfig, StartError};

const FAULT_HELP: &str = "\
FAULTS
  --fault ACTION[=MS][:KIND][@PROBABILITY][#COUNT][+AFTER]   (repeatable)

  ACTION       delay=MS     process, answer MS milliseconds late
               drop         process, never answer, keep the connection
               close        process, close the connection without answering
               ignore       do not process (no ledger line), never answer
               corrupt-mac  process, answer with a wrong MAC
  KIND         sign_in, sale, balance, preauth, completion, preauth_void, void,
               completion_void, refund, advice, settlement, batch_upload,
               batch_upload_end, reversal, or any (default)
  PROBABILITY  chance of firing, 0 < p <= 1 (seeded by --seed)
  COUNT        fire at most COUNT times
  AFTER        let the first AFTER matching messages through

  Examples: --fault drop:sale   --fault delay=2000:any@0.5
            --fault close:reversal#1   --fault corrupt-mac:sale+2#1

  Every rule counts each message of its kind; the first rule (in the order
  given, flags before the fault file) that may fire on a message fires.

  --faults FILE holds the same rules as TOML and is read again whenever it
  changes, so faults can be switched while the host runs:

    [[fault]]
    action = \"delay\"     # delay | drop | close | ignore | corrupt-mac
    delay_ms = 2000
    kind = \"sale\"        # default any
    probability = 0.5    # default 1
    count = 1            # default unlimited
    after = 0            # default 0

READINESS
  Once listening, prints exactly one line to stdout:
    till-acquirer: listening on ADDR (dialect NAME)
  Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for more.

STATE
  Balances, sessions, batches and transactions are kept in memory only and
  start afresh with every run; the ledger is a record, never read back.";

/// Acquirer host simulator: answers Till terminals in ISO 8583 over mutual TLS.
#[derive(Debug, Parser)]
#[command(name = "till-acquirer", version, after_long_help = FAULT_HELP)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7000")]
    pub listen: String,

    /// PKI directory: ca.crt, acquirer.crt, acquirer.key, host-keys.toml
    /// (as `tillctl pki init` writes it).
    #[arg(long, value_name = "DIR")]
    pub pki: PathBuf,

    /// Card database (TOML); default: the bundled test cards.
    #[arg(long, value_name = "FILE")]
    pub cards: Option<PathBuf>,

    /// Append a JSON line per processed message to FILE.
    #[arg(long, value_name = "FILE")]
    pub ledger: Option<PathBuf>,

    /// Dialect: a built-in name (cup, iso87ascii) or a dialect file.
    #[arg(long, value_name = "NAME|PATH", default_value = "cup")]
    pub dialect: String,

    /// Fault rule (repeatable); see FAULTS below (--help).
    #[arg(long = "fault", value_name = "SPEC", value_parser = parse_fault)]
    pub faults: Vec<FaultRule>,

    /// Fault control file (TOML), read again whenever it changes.
    #[arg(long = "faults", value_name = "FILE")]
    pub fault_file: Option<PathBuf>,

    /// Seed for fault probabilities, to repeat a run exactly.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Close connections idle for this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub idle_timeout: u64,
}

fn parse_fault(spec: &str) -> Result<FaultRule, String> {
    spec.parse()
        .map_err(|e: crate::faults::FaultError| e.to_string())
}

impl Args {
    /// The host configuration these arguments describe.
    pub fn config(&self) -> HostConfig {
        HostConfig {
            listen: self.listen.clone(),
            pki_dir: self.pki.clone(),
            cards: self.cards.clone(),
            ledger: self.ledger.clone(),
            dialect: self.dialect.clone(),
            faults: self.faults.clone(),
            fault_file: self.fault_file.clone(),
            seed: self.seed,
            idle_timeout: Duration::from_secs(self.idle_timeout),
        }
    }
}

/// Why the command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The host could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The readiness line could not be written.
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
    /// Waiting for a stop signal failed.
    #[error("cannot wait for a stop signal: {0}")]
    Signal(std::io::Error),
}

/// The `till-acquirer` program: parses the command line, runs the host
/// until Ctrl-C or SIGTERM, and returns the exit code. Other packages can
/// ship the same program by calling this from their own `main`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    init_logging();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("till-acquirer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs a host with these arguments until it is told to stop.
pub fn run(args: &Args) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(async {
        let host = server::start(args.config()).await?;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "till-acquirer: listening on {} (dialect {})",
            host.local_addr(),
            host.dialect_name()
        )
        .and_then(|()| out.flush())
        .map_err(CliError::Stdout)?;
        drop(out);
        stop_signal().await.map_err(CliError::Signal)?;
        info!("stopping");
        host.shutdown().await;
        Ok(())
    })
}

/// Waits for Ctrl-C, or SIGTERM on Unix.
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn arguments_parse_with_defaults() {
        Args::command().debug_assert();
        let args = Args::try_parse_from(["till-acquirer", "--pki", "/tmp/pki"]).unwrap();
        assert_eq!(args.listen, "127.0.0.1:7000");
        assert_eq!(args.dialect, "cup");
        let config = args.config();
        assert!(config.faults.is_empty() && config.ledger.is_none());
        let args = Args::try_parse_from([
            "till-acquirer",
            "--pki",
            "p",
            "--fault",
            "drop:sale",
            "--fault",
            "delay=2000:any@0.5",
            "--faults",
            "f.toml",
            "--seed",
            "9",
            "--dialect",
            "iso87ascii",
        ])
        .unwrap();
        assert_eq!(args.faults.len(), 2);
        assert_eq!(args.seed, Some(9));
    }

    #[test]
    fn bad_faults_are_reported_by_clap() {
        let e = Args::try_parse_from(["till-acquirer", "--pki", "p", "--fault", "explode"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown action"), "{e}");
    }

    #[test]
    fn help_documents_the_fault_grammar() {
        let help = Args::command().render_long_help().to_string();
        assert!(help.contains("ACTION[=MS][:KIND][@PROBABILITY][#COUNT][+AFTER]"));
        assert!(help.contains("listening on ADDR"));
    }
}
