//! ISO 8583 messages driven by declarative dialect files.
//!
//! A [`Dialect`] is loaded from a TOML file (the shipped ones live in
//! `pay/dialects/` and are built in): the frame (header, MTI, bitmap,
//! stream length prefix), every field's definition, and the host profile
//! that maps named elements to fields and transaction kinds to message
//! types. [`Dialect::encode`] and [`Dialect::decode`] turn a [`Message`]
//! into bytes and back; [`Dialect::describe`] shows one as masked JSON.
//!
//! ```
//! use till_pay::iso8583::{Dialect, Message};
//! let cup = Dialect::load("cup").unwrap();
//! let mut m = Message::new("0200").unwrap();
//! cup.set_number(&mut m, "amount", 1234).unwrap();
//! cup.set_text(&mut m, "batch_number", "000007").unwrap();
//! let wire = cup.encode(&m).unwrap();
//! let back = cup.decode(&wire).unwrap();
//! assert_eq!(cup.get_text(&back, "amount"), Some("000000001234"));
//! assert_eq!(cup.get_text(&back, "batch_number"), Some("000007"));
//! ```

mod codec;
mod describe;
mod elements;
pub mod encoding;
mod message;
pub mod profile;
pub mod spec;

pub use codec::{CodecError, Location, Problem};
pub use describe::{JsonError, Masking};
pub use elements::ElementError;
pub use message::{BadMti, Message, Value};
pub use profile::{FieldPath, Outcome, Profile, ResponseCode, TxnKind, TxnProfile};
pub use spec::{Dialect, FieldSpec, SpecError};
