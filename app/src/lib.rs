//! Till's terminal binaries.
//!
//! - `tillctl` ([`cli`]): the field engineer's command line — development
//!   PKI, one transaction flow at a time against a host, ISO 8583, PIN
//!   block and MAC tools.
//!
//! The binaries are thin wrappers around these modules so that tests can
//! build the same programs under their own names.

pub mod cli;
