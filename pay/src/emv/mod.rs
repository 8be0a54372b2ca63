//! EMV contactless card reading (terminal side) and issuer-side checks.
//!
//! - [`tlv`]: a strict BER-TLV parser and builder; [`dol`]: PDOL/CDOL
//!   parsing and filling; [`tags`]: the tags Till uses; [`apdu`]: the
//!   commands and status words.
//! - [`kernel`]: the contactless read over an [`ApduTransport`] — PPSE,
//!   application selection by priority, GET PROCESSING OPTIONS, READ
//!   RECORD, GENERATE AC — yielding a [`CardRead`] with the card data and
//!   the ICC data for ISO 8583 field 55.
//! - [`issuer`]: key derivation, ARQC verification and ARPC generation for
//!   Visa CVN 10 and Mastercard CVN 20, used by the acquirer simulator.
//!
//! `docs/emv.md` describes the flow, the two card profiles Till's virtual
//! cards implement and exactly what their cryptograms cover.

// Everything public here is used by the app, the acquirer and auditors.
#![warn(missing_docs)]

pub mod apdu;
pub mod dol;
pub mod issuer;
pub mod kernel;
pub mod tags;
pub mod tlv;

pub use kernel::{
    ApduTransport, ApplicationCryptogram, CardRead, CryptogramSource, EmvError, Kernel,
    KernelConfig, Step, SupportedAid, Transaction, TransactionType, TransportError,
};
