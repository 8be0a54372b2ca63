//! `tillctl pki init`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;
use till_pay::link::pki::{PkiOptions, init};

use super::{Done, Failure};

#[derive(Subcommand)]
pub(crate) enum PkiCommand {
    /// Create a development CA, the acquirer's server certificate, and for each
    /// terminal a client certificate (CN = terminal id), master key and data key.
    Init {
        /// Directory to write into (created if missing).
        dir: PathBuf,
        /// Terminal ids to issue (8 characters; default TILL0001). Repeat for several.
        #[arg(long = "terminal-id")]
        terminal_ids: Vec<String>,
        /// Host names and addresses the acquirer certificate is valid for
        /// (default localhost, 127.0.0.1, ::1). Repeat for several.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Days the certificates are valid.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Replace an existing PKI in DIR.
        #[arg(long)]
        force: bool,
    },
}

pub(crate) fn run(cmd: PkiCommand) -> Result<Done, Failure> {
    let PkiCommand::Init {
        dir,
        terminal_ids,
        hosts,
        days,
        force,
    } = cmd;
    let mut opts = PkiOptions {
        validity_days: days,
        force,
        ..PkiOptions::default()
    };
    if !terminal_ids.is_empty() {
        opts.terminal_ids = terminal_ids;
    }
    if !hosts.is_empty() {
        opts.host_names = hosts;
    }
    let s = init(&dir, &opts).map_err(|e| Failure::new("pki", e.to_string()))?;
    let terminals: Vec<_> = s.terminals.iter().map(|(id, f)| json!({"terminal_id": id, "certificate": f.cert, "key": f.key, "master_key": f.tmk})).collect();
    Ok(Done::Json(json!({
        "dir": dir,
        "ca": s.ca_cert,
        "acquirer": {"certificate": s.acquirer_cert, "key": s.acquirer_key, "host_keys": s.host_keys},
        "terminals": terminals,
    })))
}
