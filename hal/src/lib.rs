//! Till's device layer: one module per device, each with a trait, a Linux
//! driver and a simulator behind the same trait.
//!
//! This crate never depends on `till-pay` or the app: it moves bytes, key
//! presses and receipts; what they mean is decided elsewhere.

pub mod config;
pub mod keypad;
pub mod printer;
pub mod reader;
pub mod scanner;
pub mod selftest;
