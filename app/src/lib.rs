//! Till's terminal binaries.
//!
//! - `till` ([`ui`]): the touchscreen app — the screens of `app/ui/*.slint`
//!   over the payment engine and the devices; simulator mode with the
//!   bundled acquirer, device mode with the real drivers.
//! - `tillctl` ([`cli`]): the field engineer's command line — development
//!   PKI, one transaction flow at a time against a host, the journal and
//!   store-and-forward queue, devices, ISO 8583, PIN block and MAC tools.
//! - [`card`]: the contactless reader read through the EMV kernel.
//! - [`engine`]: the payment engine as both binaries open it.
//!
//! The binaries are thin wrappers around these modules so that tests can
//! build the same programs under their own names.

pub mod card;
pub mod cli;
pub mod engine;
#[cfg(feature = "ui")]
pub mod ui;
