//! `till-acquirer`: the acquirer host simulator of Till.
//!
//! A real host that a terminal, a test or a person talks to over mutual TLS
//! in ISO 8583, speaking the host side of `docs/host-protocol.md` in any
//! dialect Till has (`pay/dialects/`). It signs terminals in and issues
//! working keys under their master keys, verifies and sets MACs, decides
//! sales, balance inquiries, pre-authorizations and their completions and
//! voids, voids, refunds, advices, reversals, settlement and batch upload
//! against a card database, writes a ledger, and can be told to misbehave
//! (answer late, not at all, close, spoil its MAC) to exercise a terminal's
//! recovery.
//!
//! - [`host`]: the decisions, without sockets ([`Host::handle`]).
//! - [`server`]: the TLS listener ([`start`], [`RunningHost`]).
//! - [`cards`]: the card database file.
//! - [`ledger`]: the JSON-lines ledger.
//! - [`faults`]: fault rules, flags and control file.
//! - [`cli`]: the `till-acquirer` program ([`main`]).
//!
//! All state is in memory and starts afresh with every run.
//!
//! ```no_run
//! # async fn demo() -> Result<(), till_acquirer::StartError> {
//! use till_acquirer::{HostConfig, start};
//! let host = start(HostConfig::new("127.0.0.1:0", "pki")).await?;
//! println!("listening on {}", host.local_addr());
//! host.shutdown().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod cards;
pub mod cli;
pub mod faults;
pub mod host;
pub mod ledger;
pub mod server;

pub use cli::main;
pub use host::Host;
pub use server::{HostConfig, RunningHost, StartError, start};
