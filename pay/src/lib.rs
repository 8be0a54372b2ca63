//! Till's payment engine.
//!
//! Everything a terminal needs to take card payments except the screen and
//! the devices: ISO 8583 dialects as data ([`iso8583`]), PIN blocks, MACs and
//! key handling ([`crypto`]), the TLS host link ([`link`]) and the
//! transaction flows that run sign-in, sale, void, refund, pre-authorization,
//! balance inquiry, reversal and settlement against a host ([`engine`]).
//!
//! This crate never touches hardware and never depends on `till-hal` or
//! the app; the app hands it card data and PINs through plain types.

pub mod card;
pub mod crypto;
pub mod emv;
pub mod engine;
pub mod iso8583;
pub mod journal;
pub mod link;
pub mod money;
pub mod qr;
pub mod security;
