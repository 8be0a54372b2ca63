//! PIN blocks (ISO 9564 formats 0, 3, 4), MACs (ISO 9797-1 algorithm 3,
//! AES-CMAC, UnionPay POS MAC) and working-key handling.
//!
//! - [`keys`]: [`SecretKey`] and its [`KeyScheme`], key check values, key
//!   wrapping under a key-encryption key (TDES-ECB or RFC 3394 AES key wrap)
//!   and the raw ECB helpers other modules build on.
//! - [`pinblock`]: [`Pin`], [`PinBlockFormat`] and enciphering/deciphering
//!   PIN blocks bound to a card number.
//! - [`mac`]: the message authentication codes that go in ISO 8583 field 64
//!   or 128, chosen per host dialect through [`MacAlgorithm`].
//!
//! Key bytes, PINs and clear PIN blocks live in [`zeroize::Zeroizing`]
//! buffers and never reach a `Debug` string or a [`CryptoError`] message.
//!
//! ```
//! use till_pay::crypto::{KeyScheme, MacAlgorithm, Pin, PinBlockFormat, SecretKey, pinblock};
//!
//! let pin_key = SecretKey::generate(KeyScheme::Tdes, 16)?;
//! let pin = Pin::new("1234")?;
//! let block = pinblock::encipher(PinBlockFormat::Iso0, &pin, "4761739001010010", &pin_key)?;
//! let (format, back) = pinblock::decipher(&block, "4761739001010010", &pin_key)?;
//! assert_eq!((format, back.expose()), (PinBlockFormat::Iso0, "1234"));
//!
//! let mak = SecretKey::generate(KeyScheme::Aes, 16)?;
//! let mac = MacAlgorithm::Cmac.compute(&mak, b"0200...")?;
//! assert!(MacAlgorithm::Cmac.verify(&mak, b"0200...", &mac)?);
//! # Ok::<(), till_pay::crypto::CryptoError>(())
//! ```

// Everything public here is used by other crates' authors and by auditors.
#![warn(missing_docs)]

mod error;
pub mod keys;
pub mod mac;
pub mod pinblock;
mod primitives;
mod random;

pub use error::CryptoError;
pub use keys::{KeyScheme, SecretKey};
pub use mac::{MacAlgorithm, MacPadding};
pub use pinblock::{Pin, PinBlockFormat};
