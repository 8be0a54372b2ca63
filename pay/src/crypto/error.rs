//! The one error type of the crypto module.

use super::keys::KeyScheme;

/// Why a cryptographic operation was refused or failed.
///
/// Messages name what is wrong (a length, a scheme, a format) and never
/// carry key bytes, PIN digits, PIN block contents or card numbers, so an
/// error can be logged or shown as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The key bytes do not have a length the scheme defines.
    #[error(
        "{} key must be {} bytes long, got {len}",
        .scheme.with_article(),
        .scheme.lengths_text()
    )]
    KeyLength {
        /// The scheme the key was meant for.
        scheme: KeyScheme,
        /// The length that was given, in bytes.
        len: usize,
    },
    /// The key is of the right scheme but not of the length an operation needs.
    #[error("{operation} needs {required}; the key given is {scheme}, {len} bytes")]
    KeyUnsuitable {
        /// What was attempted.
        operation: &'static str,
        /// The kind of key the operation needs.
        required: &'static str,
        /// The scheme of the key that was given.
        scheme: KeyScheme,
        /// The length of the key that was given, in bytes.
        len: usize,
    },
    /// Key text is not hexadecimal.
    #[error("key is not valid hex: it must be an even number of the digits 0-9 and A-F")]
    KeyHex,
    /// The key belongs to the other scheme.
    #[error(
        "{operation} needs {} key, got {} key",
        .expected.with_article(),
        .got.with_article()
    )]
    WrongScheme {
        /// What was attempted.
        operation: &'static str,
        /// The scheme the operation needs.
        expected: KeyScheme,
        /// The scheme of the key that was given.
        got: KeyScheme,
    },
    /// ECB data is empty or not a whole number of cipher blocks.
    #[error("{operation} works on whole {block}-byte blocks, got {len} bytes")]
    BlockLength {
        /// What was attempted.
        operation: &'static str,
        /// The cipher's block size in bytes.
        block: usize,
        /// The data length that was given, in bytes.
        len: usize,
    },
    /// A key check value did not match: the key is wrong or was corrupted.
    #[error("the check value of the {key} does not match the expected one")]
    KcvMismatch {
        /// Which key failed its check (a description, never key material).
        key: &'static str,
    },
    /// An expected key check value is empty or longer than a cipher block.
    #[error("an expected key check value must be 1 to {max} bytes, got {len}")]
    KcvLength {
        /// The length that was given, in bytes.
        len: usize,
        /// The longest check value the scheme produces.
        max: usize,
    },
    /// A key could not be wrapped under the key-encryption key.
    #[error("key wrapping failed: {0}")]
    Wrap(&'static str),
    /// A cryptogram could not be unwrapped into a key.
    #[error("key unwrapping failed: {0}")]
    Unwrap(&'static str),
    /// A PIN is not 4 to 12 decimal digits.
    #[error("a PIN must be 4 to 12 digits")]
    PinFormat,
    /// A card number is too short or too long to bind a PIN block to.
    #[error("a card number must be 12 to 19 digits to bind a PIN block, got {len} characters")]
    PanLength {
        /// The length that was given, in characters.
        len: usize,
    },
    /// A card number holds something other than digits.
    #[error("a card number may contain digits only")]
    PanNotDigits,
    /// A PIN block format number Till does not implement.
    #[error("PIN block format {0} is not supported; Till supports ISO 9564-1 formats 0, 3 and 4")]
    UnsupportedPinBlockFormat(u8),
    /// A clear format 4 PIN block was asked for.
    #[error(
        "ISO 9564-1 format 4 exists only enciphered: it is defined as AES encipherment of the \
         PIN field chained with the PAN field, so it needs an AES key (use pinblock::encipher)"
    )]
    ClearFormat4,
    /// A deciphered PIN block does not follow its format.
    #[error("PIN block is malformed: {0}")]
    BadPinBlock(&'static str),
    /// A MAC padding method number other than ISO 9797-1 methods 1 and 2.
    #[error("MAC padding method {0} is not supported; use ISO 9797-1 padding method 1 or 2")]
    MacPadding(u8),
    /// A MAC algorithm name Till does not know.
    #[error("unknown MAC algorithm {0:?}; expected \"retail\", \"cmac\" or \"cup\"")]
    UnknownMacAlgorithm(String),
    /// A padding method was given for a MAC algorithm that defines its own.
    #[error("the {0} MAC defines its own padding; remove the padding setting")]
    MacPaddingNotApplicable(&'static str),
    /// A MAC to verify is not the 8 bytes of an ISO 8583 MAC field.
    #[error("a MAC must be 8 bytes, got {len}")]
    MacLength {
        /// The length that was given, in bytes.
        len: usize,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
}
