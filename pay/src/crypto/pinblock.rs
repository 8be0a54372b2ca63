//! PINs and ISO 9564-1 PIN blocks: formats 0 and 3 under TDES, format 4
//! under AES.
//!
//! A PIN block binds the PIN to the card number (PAN) so that an
//! enciphered block lifted from one transaction is useless with another
//! card:
//!
//! - Formats 0 and 3 XOR the PIN field (control nibble, PIN length, PIN
//!   digits, fill) with a PAN field made of the rightmost 12 PAN digits
//!   excluding the check digit, then encipher the 8 bytes under TDES.
//!   Format 0 fills with `F`, format 3 with random nibbles `A` to `F`.
//! - Format 4 (ISO 9564-1:2017) is defined only enciphered under AES: the
//!   16-byte PIN field (control 4, length, digits, `A` fill to 16 nibbles,
//!   then 8 random bytes) is enciphered, XORed with the 16-byte PAN field
//!   (PAN length − 12, the whole PAN, zero padding) and enciphered again.
//!
//! PINs, clear PIN blocks and the PAN fields mixed into them are held in
//! [`Zeroizing`] buffers; [`Pin`] prints as `Pin(****)` whatever its length.

use std::fmt;

use zeroize::Zeroizing;

use super::CryptoError;
use super::keys::{KeyScheme, SecretKey};
use super::primitives::{AES_BLOCK, DES_BLOCK, xor_into};
use super::random;

/// A cardholder PIN of 4 to 12 digits. Wiped when dropped; never printed.
///
/// ```
/// use till_pay::crypto::Pin;
/// let pin = Pin::new("4321")?;
/// assert_eq!(format!("{pin:?}"), "Pin(****)");
/// assert_eq!(pin.expose(), "4321");
/// assert!(Pin::new("123").is_err());
/// # Ok::<(), till_pay::crypto::CryptoError>(())
/// ```
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Accepts 4 to 12 ASCII digits and nothing else (no spaces).
    pub fn new(digits: &str) -> Result<Pin, CryptoError> {
        if !(4..=12).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CryptoError::PinFormat);
        }
        Ok(Pin(Zeroizing::new(digits.to_owned())))
    }

    /// The PIN digits, for code that must hand them on (a PIN pad
    /// simulator, a test). Do not log or store them.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A fixed mask: even the PIN length is not for logs.
        f.write_str("Pin(****)")
    }
}

/// The ISO 9564-1 PIN block formats Till builds and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinBlockFormat {
    /// Format 0 (ANSI X9.8, VISA-1): `F` fill, TDES.
    Iso0,
    /// Format 3: random `A`–`F` fill, TDES.
    Iso3,
    /// Format 4: 16 bytes, AES only, PAN chained in by a second encipherment.
    Iso4,
}

impl PinBlockFormat {
    /// The format's ISO number, which is also its control nibble.
    ///
    /// ```
    /// use till_pay::crypto::PinBlockFormat;
    /// assert_eq!(PinBlockFormat::try_from(3)?.number(), 3);
    /// # Ok::<(), till_pay::crypto::CryptoError>(())
    /// ```
    pub fn number(self) -> u8 {
        match self {
            PinBlockFormat::Iso0 => 0,
            PinBlockFormat::Iso3 => 3,
            PinBlockFormat::Iso4 => 4,
        }
    }
}

impl TryFrom<u8> for PinBlockFormat {
    type Error = CryptoError;

    /// 0, 3 or 4; anything else is [`CryptoError::UnsupportedPinBlockFormat`].
    fn try_from(number: u8) -> Result<Self, Self::Error> {
        match number {
            0 => Ok(PinBlockFormat::Iso0),
            3 => Ok(PinBlockFormat::Iso3),
            4 => Ok(PinBlockFormat::Iso4),
            other => Err(CryptoError::UnsupportedPinBlockFormat(other)),
        }
    }
}

impl fmt::Display for PinBlockFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ISO 9564-1 format {}", self.number())
    }
}

/// The clear (not yet enciphered) 8-byte PIN block of format 0 or 3: the
/// PIN field XOR the PAN field.
///
/// Format 4 has no clear form of this kind (its PAN binding happens
/// between two AES encipherments), so it is refused with
/// [`CryptoError::ClearFormat4`].
///
/// ```
/// use till_pay::crypto::{Pin, PinBlockFormat, pinblock};
/// let pin = Pin::new("1234")?;
/// let block = pinblock::clear_pin_block(PinBlockFormat::Iso0, &pin, "43219876543210987")?;
/// assert_eq!(hex::encode_upper(*block), "0412AC89ABCDEF67");
/// # Ok::<(), till_pay::crypto::CryptoError>(())
/// ```
pub fn clear_pin_block(
    format: PinBlockFormat,
    pin: &Pin,
    pan: &str,
) -> Result<Zeroizing<[u8; DES_BLOCK]>, CryptoError> {
    let pan_field = pan_field_short(pan)?;
    let (control, fill_from) = match format {
        PinBlockFormat::Iso0 => (0x0, None),
        PinBlockFormat::Iso3 => (0x3, Some(0xA)),
        PinBlockFormat::Iso4 => return Err(CryptoError::ClearFormat4),
    };
    let mut nibbles = Zeroizing::new([0u8; 2 * DES_BLOCK]);
    let used = put_pin(&mut *nibbles, control, pin);
    for n in nibbles[used..].iter_mut() {
        *n = match fill_from {
            Some(low) => random::nibble_from(low)?,
            None => 0xF,
        };
    }
    let mut block = Zeroizing::new([0u8; DES_BLOCK]);
    pack(&*nibbles, &mut *block);
    xor_into(&mut block, &pan_field);
    Ok(block)
}

/// Builds and enciphers a PIN block: formats 0 and 3 under a TDES key
/// (8 bytes out; a single-length key runs as DES for legacy hosts),
/// format 4 under an AES key (16 bytes out).
///
/// A key of the other scheme is refused with [`CryptoError::WrongScheme`].
///
/// ```
/// use till_pay::crypto::{KeyScheme, Pin, PinBlockFormat, SecretKey, pinblock};
/// let key = SecretKey::generate(KeyScheme::Aes, 16)?;
/// let pin = Pin::new("1234")?;
/// let block = pinblock::encipher(PinBlockFormat::Iso4, &pin, "4761739001010010", &key)?;
/// assert_eq!(block.len(), 16);
/// # Ok::<(), till_pay::crypto::CryptoError>(())
/// ```
pub fn encipher(
    format: PinBlockFormat,
    pin: &Pin,
    pan: &str,
    key: &SecretKey,
) -> Result<Vec<u8>, CryptoError> {
    match format {
        PinBlockFormat::Iso0 | PinBlockFormat::Iso3 => {
            let cipher = key.tdes_cipher("an ISO 9564-1 format 0 or 3 PIN block")?;
            let mut block = clear_pin_block(format, pin, pan)?;
            cipher.encrypt_block(&mut block);
            Ok(block.to_vec())
        }
        PinBlockFormat::Iso4 => {
            let cipher = key.aes_cipher("an ISO 9564-1 format 4 PIN block")?;
            let pan_field = pan_field_format4(pan)?;
            let mut block = pin_field_format4(pin)?;
            cipher.encrypt_block(&mut block);
            xor_into(&mut block, &pan_field);
            cipher.encrypt_block(&mut block);
            Ok(block.to_vec())
        }
    }
}

/// Deciphers a PIN block for `pan` and returns its format and the PIN.
///
/// The key's scheme says what to expect: under TDES an 8-byte block whose
/// control nibble is 0 or 3, under AES a 16-byte format 4 block. The
/// block is checked strictly (PIN length 4–12, decimal digits, `F` fill
/// for format 0, `A`–`F` for format 3, `A` for format 4's PIN field), so a
/// wrong key or card number shows up as [`CryptoError::BadPinBlock`]
/// rather than as a wrong PIN, as far as the format allows.
///
/// ```
/// use till_pay::crypto::{KeyScheme, PinBlockFormat, SecretKey, pinblock};
/// // Example from the psec documentation (decipher_pinblock_iso_4).
/// let key = SecretKey::from_hex(KeyScheme::Aes, "00112233445566778899AABBCCDDEEFF")?;
/// let block = hex::decode("E4BE5B623AF7E006AC319E5B93544564").unwrap();
/// let (format, pin) = pinblock::decipher(&block, "1234567890123456", &key)?;
/// assert_eq!((format, pin.expose()), (PinBlockFormat::Iso4, "1234"));
/// # Ok::<(), till_pay::crypto::CryptoError>(())
/// ```
pub fn decipher(
    block: &[u8],
    pan: &str,
    key: &SecretKey,
) -> Result<(PinBlockFormat, Pin), CryptoError> {
    match key.scheme() {
        KeyScheme::Tdes => {
            let cipher = key.tdes_cipher("an ISO 9564-1 format 0 or 3 PIN block")?;
            let pan_field = pan_field_short(pan)?;
            let mut clear = Zeroizing::new([0u8; DES_BLOCK]);
            if block.len() != DES_BLOCK {
                return Err(CryptoError::BadPinBlock(
                    "a PIN block under a TDES key is 8 bytes long",
                ));
            }
            clear.copy_from_slice(block);
            cipher.decrypt_block(&mut clear);
            xor_into(&mut clear, &pan_field);
            decode_short(&clear)
        }
        KeyScheme::Aes => {
            let cipher = key.aes_cipher("an ISO 9564-1 format 4 PIN block")?;
            let pan_field = pan_field_format4(pan)?;
            let mut clear = Zeroizing::new([0u8; AES_BLOCK]);
            if block.len() != AES_BLOCK {
                return Err(CryptoError::BadPinBlock(
                    "a PIN block under an AES key (format 4) is 16 bytes long",
                ));
            }
            clear.copy_from_slice(block);
            cipher.decrypt_block(&mut clear);
            xor_into(&mut clear, &pan_field);
            cipher.decrypt_block(&mut clear);
            let pin = decode_format4(&clear)?;
            Ok((PinBlockFormat::Iso4, pin))
        }
    }
}

/// Writes control nibble, length nibble and PIN digits into `nibbles`;
/// returns how many nibbles it used.
fn put_pin(nibbles: &mut [u8], control: u8, pin: &Pin) -> usize {
    let digits = pin.expose().as_bytes();
    nibbles[0] = control;
    // `Pin::new` guarantees 4..=12 ASCII digits, so the length fits a nibble.
    nibbles[1] = digits.len() as u8;
    for (n, d) in nibbles[2..].iter_mut().zip(digits) {
        *n = d - b'0';
    }
    2 + digits.len()
}

/// Packs pairs of nibbles into bytes; `out` must be half as long.
fn pack(nibbles: &[u8], out: &mut [u8]) {
    for (byte, pair) in out.iter_mut().zip(nibbles.chunks_exact(2)) {
        *byte = (pair[0] << 4) | pair[1];
    }
}

/// Splits bytes into nibbles, high first; `out` must be twice as long.
fn unpack(bytes: &[u8], out: &mut [u8]) {
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = byte >> 4;
        pair[1] = byte & 0x0F;
    }
}

/// The PAN digits as bytes, after checking 12 to 19 ASCII digits.
fn pan_digits(pan: &str) -> Result<&[u8], CryptoError> {
    let digits = pan.as_bytes();
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(CryptoError::PanNotDigits);
    }
    if !(12..=19).contains(&digits.len()) {
        return Err(CryptoError::PanLength { len: digits.len() });
    }
    Ok(digits)
}

/// The format 0/3 PAN field: four zero nibbles, then the rightmost 12 PAN
/// digits excluding the check digit. A 12-digit PAN leaves 11 digits,
/// which ISO 9564-1 right-justifies with a zero on the left.
fn pan_field_short(pan: &str) -> Result<Zeroizing<[u8; DES_BLOCK]>, CryptoError> {
    let digits = pan_digits(pan)?;
    let without_check = &digits[..digits.len() - 1];
    let take = without_check.len().min(12);
    let mut nibbles = Zeroizing::new([0u8; 2 * DES_BLOCK]);
    for (n, d) in nibbles[16 - take..]
        .iter_mut()
        .zip(&without_check[without_check.len() - take..])
    {
        *n = d - b'0';
    }
    let mut field = Zeroizing::new([0u8; DES_BLOCK]);
    pack(&*nibbles, &mut *field);
    Ok(field)
}

/// The format 4 PAN field: nibble M = PAN length − 12, the whole PAN,
/// zero padding to 32 nibbles.
fn pan_field_format4(pan: &str) -> Result<Zeroizing<[u8; AES_BLOCK]>, CryptoError> {
    let digits = pan_digits(pan)?;
    let mut nibbles = Zeroizing::new([0u8; 2 * AES_BLOCK]);
    // 12..=19 digits, so M is 0..=7 as ISO 9564-1:2017 defines it.
    nibbles[0] = (digits.len() - 12) as u8;
    for (n, d) in nibbles[1..].iter_mut().zip(digits) {
        *n = d - b'0';
    }
    let mut field = Zeroizing::new([0u8; AES_BLOCK]);
    pack(&*nibbles, &mut *field);
    Ok(field)
}

/// The format 4 plain-text PIN field: control 4, length, digits, `A` fill
/// up to nibble 16, then 8 random bytes.
fn pin_field_format4(pin: &Pin) -> Result<Zeroizing<[u8; AES_BLOCK]>, CryptoError> {
    let mut nibbles = Zeroizing::new([0xAu8; 2 * DES_BLOCK]);
    put_pin(&mut *nibbles, 0x4, pin);
    let mut field = Zeroizing::new([0u8; AES_BLOCK]);
    pack(&*nibbles, &mut field[..DES_BLOCK]);
    random::fill(&mut field[DES_BLOCK..])?;
    Ok(field)
}

/// Reads the PIN from the first 16 nibbles of a clear PIN field whose
/// control nibble has been checked: length 4–12, decimal digits, and every
/// fill nibble accepted by `fill_ok`.
fn read_pin(
    nibbles: &[u8],
    fill_ok: impl Fn(u8) -> bool,
    fill_error: &'static str,
) -> Result<Pin, CryptoError> {
    let len = usize::from(nibbles[1]);
    if !(4..=12).contains(&len) {
        return Err(CryptoError::BadPinBlock(
            "PIN length field is outside 4 to 12 (wrong key or card number?)",
        ));
    }
    let digits = &nibbles[2..2 + len];
    if !digits.iter().all(|d| *d <= 9) {
        return Err(CryptoError::BadPinBlock(
            "PIN digit is not decimal (wrong key or card number?)",
        ));
    }
    if !nibbles[2 + len..2 * DES_BLOCK].iter().all(|n| fill_ok(*n)) {
        return Err(CryptoError::BadPinBlock(fill_error));
    }
    // Sized up front so the string never reallocates and leaves an unwiped
    // copy of the digits behind.
    let mut text = Zeroizing::new(String::with_capacity(12));
    for d in digits {
        text.push(char::from(b'0' + d));
    }
    Ok(Pin(text))
}

/// Decodes a clear format 0 or 3 block (already XORed with the PAN field).
fn decode_short(clear: &[u8; DES_BLOCK]) -> Result<(PinBlockFormat, Pin), CryptoError> {
    let mut nibbles = Zeroizing::new([0u8; 2 * DES_BLOCK]);
    unpack(clear, &mut *nibbles);
    match nibbles[0] {
        0x0 => Ok((
            PinBlockFormat::Iso0,
            read_pin(
                &*nibbles,
                |n| n == 0xF,
                "format 0 fill digits are not all F",
            )?,
        )),
        0x3 => Ok((
            PinBlockFormat::Iso3,
            read_pin(
                &*nibbles,
                |n| n >= 0xA,
                "format 3 fill digits are not all A to F",
            )?,
        )),
        0x4 => Err(CryptoError::BadPinBlock(
            "control field 4 under a TDES key: format 4 blocks are 16 bytes under an AES key",
        )),
        _ => Err(CryptoError::BadPinBlock(
            "control field is neither 0 nor 3 (wrong key, wrong card number or unsupported format)",
        )),
    }
}

/// Decodes a deciphered format 4 PIN field.
fn decode_format4(field: &[u8; AES_BLOCK]) -> Result<Pin, CryptoError> {
    let mut nibbles = Zeroizing::new([0u8; 2 * AES_BLOCK]);
    unpack(field, &mut *nibbles);
    if nibbles[0] != 0x4 {
        return Err(CryptoError::BadPinBlock(
            "control field is not 4 (wrong key or wrong card number)",
        ));
    }
    // The last 16 nibbles are random by definition; nothing to check there.
    read_pin(
        &*nibbles,
        |n| n == 0xA,
        "format 4 fill digits are not all A",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::{aes_ecb_encrypt, tdes_ecb_decrypt, tdes_ecb_encrypt};

    const PAN: &str = "43219876543210987";

    fn pin(digits: &str) -> Pin {
        Pin::new(digits).unwrap()
    }

    fn tdes_key() -> SecretKey {
        SecretKey::from_hex(KeyScheme::Tdes, "0123456789ABCDEFFEDCBA9876543210").unwrap()
    }

    fn aes_key() -> SecretKey {
        SecretKey::from_hex(KeyScheme::Aes, "00112233445566778899AABBCCDDEEFF").unwrap()
    }

    fn nibbles_of(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![0; bytes.len() * 2];
        unpack(bytes, &mut out);
        out
    }

    #[test]
    fn pin_accepts_4_to_12_ascii_digits_only() {
        for ok in ["0000", "1234", "123456789012"] {
            assert_eq!(Pin::new(ok).unwrap().expose(), ok);
        }
        for bad in [
            "",
            "123",
            "1234567890123",
            "12a4",
            "12 34",
            " 1234",
            "١٢٣٤",
            "+1234",
        ] {
            assert_eq!(
                Pin::new(bad).unwrap_err(),
                CryptoError::PinFormat,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn pin_debug_hides_digits_and_length() {
        for digits in ["1234", "987654321098"] {
            let dbg = format!("{:?}", pin(digits));
            assert_eq!(dbg, "Pin(****)");
            assert!(!dbg.contains(&digits[..4]));
        }
        let err = Pin::new("12x4").unwrap_err().to_string();
        assert!(!err.contains("12x4"), "{err}");
    }

    #[test]
    fn format_numbers_round_trip_and_others_are_refused() {
        for n in [0u8, 3, 4] {
            assert_eq!(PinBlockFormat::try_from(n).unwrap().number(), n);
        }
        for n in [1u8, 2, 5, 15, 255] {
            let err = PinBlockFormat::try_from(n).unwrap_err();
            assert_eq!(err, CryptoError::UnsupportedPinBlockFormat(n));
            assert!(err.to_string().contains("formats 0, 3 and 4"), "{err}");
        }
        assert_eq!(PinBlockFormat::Iso4.to_string(), "ISO 9564-1 format 4");
    }

    // The worked example used by Wikipedia's "ISO 9564" article, EFTlab's
    // "Complete list of PIN blocks" and ID TECH's PIN block guide, and the
    // encode_pinblock_iso_0 example of the psec documentation.
    #[test]
    fn format0_known_answers() {
        let block = clear_pin_block(PinBlockFormat::Iso0, &pin("1234"), PAN).unwrap();
        assert_eq!(hex::encode_upper(*block), "0412AC89ABCDEF67");
        let block =
            clear_pin_block(PinBlockFormat::Iso0, &pin("1234"), "5544332211009966").unwrap();
        assert_eq!(hex::encode_upper(*block), "041277CDDEEFF669");
    }

    #[test]
    fn format0_enciphers_the_clear_block_in_tdes_ecb() {
        let key = tdes_key();
        let ct = encipher(PinBlockFormat::Iso0, &pin("1234"), PAN, &key).unwrap();
        let clear = tdes_ecb_decrypt(&key, &ct).unwrap();
        assert_eq!(hex::encode_upper(&*clear), "0412AC89ABCDEF67");
        let (format, back) = decipher(&ct, PAN, &key).unwrap();
        assert_eq!((format, back.expose()), (PinBlockFormat::Iso0, "1234"));
    }

    #[test]
    fn format3_fills_with_random_a_to_f() {
        let pan_field = pan_field_short(PAN).unwrap();
        let mut fills = std::collections::HashSet::new();
        for _ in 0..20 {
            let mut block = clear_pin_block(PinBlockFormat::Iso3, &pin("1234"), PAN).unwrap();
            xor_into(&mut block, &pan_field);
            let nibbles = nibbles_of(&*block);
            assert_eq!(&nibbles[..6], &[3, 4, 1, 2, 3, 4]);
            assert!(nibbles[6..].iter().all(|n| (0xA..=0xF).contains(n)));
            fills.insert(nibbles[6..].to_vec());
        }
        assert!(fills.len() > 1, "format 3 fill never changed");
    }

    #[test]
    fn pan_fields_follow_iso_9564() {
        assert_eq!(
            hex::encode_upper(pan_field_short(PAN).unwrap()),
            "0000987654321098"
        );
        // A 12-digit PAN has 11 digits left once the check digit goes.
        assert_eq!(
            hex::encode_upper(pan_field_short("123456789012").unwrap()),
            "0000012345678901"
        );
        // encode_pan_field_iso_4 example in the psec documentation.
        assert_eq!(
            hex::encode_upper(pan_field_format4("112233445566778899").unwrap()),
            "61122334455667788990000000000000"
        );
        assert_eq!(
            hex::encode_upper(pan_field_format4("123456789012").unwrap()),
            "01234567890120000000000000000000"
        );
        assert_eq!(
            hex::encode_upper(pan_field_format4("1234567890123456789").unwrap()),
            "71234567890123456789000000000000"
        );
    }

    #[test]
    fn format4_pin_field_layout() {
        let field = pin_field_format4(&pin("1234")).unwrap();
        assert_eq!(hex::encode_upper(&field[..8]), "441234AAAAAAAAAA");
        let other = pin_field_format4(&pin("1234")).unwrap();
        assert_ne!(field[8..], other[8..], "format 4 random half repeated");
        let field = pin_field_format4(&pin("123456789012")).unwrap();
        assert_eq!(hex::encode_upper(&field[..8]), "4C123456789012AA");
    }

    // decipher_pinblock_iso_4 example in the psec documentation.
    #[test]
    fn format4_known_answer() {
        let block = hex::decode("E4BE5B623AF7E006AC319E5B93544564").unwrap();
        let (format, back) = decipher(&block, "1234567890123456", &aes_key()).unwrap();
        assert_eq!((format, back.expose()), (PinBlockFormat::Iso4, "1234"));
        assert!(decipher(&block, "1234567890123457", &aes_key()).is_err());
    }

    #[test]
    fn every_format_round_trips_for_all_pin_and_pan_lengths() {
        let pans = [
            "123456789012",
            "1234567890123",
            "4761739001010010",
            "6212345678901234567",
        ];
        let keys = [
            SecretKey::from_hex(KeyScheme::Tdes, "0123456789ABCDEF").unwrap(),
            tdes_key(),
            SecretKey::generate(KeyScheme::Tdes, 24).unwrap(),
        ];
        let aes_keys = [
            aes_key(),
            SecretKey::generate(KeyScheme::Aes, 24).unwrap(),
            SecretKey::generate(KeyScheme::Aes, 32).unwrap(),
        ];
        for len in 4..=12 {
            let digits: String = "907856341209".chars().take(len).collect();
            let p = pin(&digits);
            for pan in pans {
                for (format, key) in keys
                    .iter()
                    .flat_map(|k| [(PinBlockFormat::Iso0, k), (PinBlockFormat::Iso3, k)])
                    .chain(aes_keys.iter().map(|k| (PinBlockFormat::Iso4, k)))
                {
                    let block = encipher(format, &p, pan, key).unwrap();
                    assert_eq!(block.len(), key.scheme().block_size());
                    let (got_format, got) = decipher(&block, pan, key).unwrap();
                    assert_eq!((got_format, got.expose()), (format, digits.as_str()));
                }
            }
        }
    }

    #[test]
    fn format4_has_no_clear_block() {
        let err = clear_pin_block(PinBlockFormat::Iso4, &pin("1234"), PAN).unwrap_err();
        assert_eq!(err, CryptoError::ClearFormat4);
        let msg = err.to_string();
        assert!(msg.contains("AES") && msg.contains("key"), "{msg}");
    }

    #[test]
    fn wrong_key_scheme_for_format_is_refused() {
        assert!(matches!(
            encipher(PinBlockFormat::Iso0, &pin("1234"), PAN, &aes_key()),
            Err(CryptoError::WrongScheme {
                expected: KeyScheme::Tdes,
                got: KeyScheme::Aes,
                ..
            })
        ));
        let err = encipher(PinBlockFormat::Iso4, &pin("1234"), PAN, &tdes_key()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "an ISO 9564-1 format 4 PIN block needs an AES key, got a TDES key"
        );
    }

    #[test]
    fn bad_pans_are_errors() {
        let p = pin("1234");
        for (pan, want) in [
            ("12345678901", CryptoError::PanLength { len: 11 }),
            ("", CryptoError::PanLength { len: 0 }),
            ("12345678901234567890", CryptoError::PanLength { len: 20 }),
            ("4761-7390-0101", CryptoError::PanNotDigits),
            ("476173900101001٠", CryptoError::PanNotDigits),
        ] {
            assert_eq!(
                clear_pin_block(PinBlockFormat::Iso0, &p, pan).unwrap_err(),
                want
            );
            for (format, key) in [
                (PinBlockFormat::Iso3, tdes_key()),
                (PinBlockFormat::Iso4, aes_key()),
            ] {
                assert_eq!(encipher(format, &p, pan, &key).unwrap_err(), want);
                let block = vec![0; key.scheme().block_size()];
                assert_eq!(decipher(&block, pan, &key).unwrap_err(), want);
            }
        }
    }

    #[test]
    fn wrong_block_lengths_are_errors() {
        for len in [0, 7, 9, 16] {
            assert!(matches!(
                decipher(&vec![0; len], PAN, &tdes_key()),
                Err(CryptoError::BadPinBlock(_))
            ));
        }
        for len in [0, 8, 15, 17, 32] {
            assert!(matches!(
                decipher(&vec![0; len], PAN, &aes_key()),
                Err(CryptoError::BadPinBlock(_))
            ));
        }
    }

    /// Enciphers a hand-made format 0/3 PIN field as a terminal would.
    fn tdes_block_from_field(field_hex: &str) -> Vec<u8> {
        let mut clear: [u8; 8] = hex::decode(field_hex).unwrap().try_into().unwrap();
        xor_into(&mut clear, &pan_field_short(PAN).unwrap());
        tdes_ecb_encrypt(&tdes_key(), &clear).unwrap().to_vec()
    }

    #[test]
    fn malformed_format0_and_3_blocks_are_rejected() {
        for (field, reason) in [
            ("141234FFFFFFFFFF", "control field is neither 0 nor 3"),
            ("241234FFFFFFFFFF", "control field is neither 0 nor 3"),
            ("441234AAAAAAAAAA", "control field 4 under a TDES key"),
            ("03123FFFFFFFFFFF", "PIN length field is outside 4 to 12"),
            ("0D1234567890123F", "PIN length field is outside 4 to 12"),
            ("04123AFFFFFFFFFF", "PIN digit is not decimal"),
            ("041234FFFFFFFFFE", "format 0 fill digits are not all F"),
            ("0412345FFFFFFFFF", "format 0 fill digits are not all F"),
            (
                "341234ABCDEF9BCD",
                "format 3 fill digits are not all A to F",
            ),
            (
                "341234ABCDEFFBC0",
                "format 3 fill digits are not all A to F",
            ),
        ] {
            let block = tdes_block_from_field(field);
            match decipher(&block, PAN, &tdes_key()) {
                Err(CryptoError::BadPinBlock(why)) => {
                    assert!(why.starts_with(reason), "{field}: {why}");
                    assert!(!why.contains("1234"), "{field}: {why}");
                }
                other => panic!("{field}: expected BadPinBlock, got {other:?}"),
            }
        }
        // The same fields well-formed decode, so the cases above fail for
        // the reason they name.
        for (field, digits) in [
            ("041234FFFFFFFFFF", "1234"),
            ("341234ABCDEFFBCA", "1234"),
            ("0C123456789012FF", "123456789012"),
        ] {
            let (_, p) = decipher(&tdes_block_from_field(field), PAN, &tdes_key()).unwrap();
            assert_eq!(p.expose(), digits);
        }
    }

    /// Enciphers a hand-made format 4 PIN field as a terminal would.
    fn aes_block_from_field(field_hex: &str, pan: &str) -> Vec<u8> {
        let key = aes_key();
        let mut a: [u8; 16] = aes_ecb_encrypt(&key, &hex::decode(field_hex).unwrap())
            .unwrap()
            .as_slice()
            .try_into()
            .unwrap();
        xor_into(&mut a, &pan_field_format4(pan).unwrap());
        aes_ecb_encrypt(&key, &a).unwrap().to_vec()
    }

    #[test]
    fn malformed_format4_blocks_are_rejected() {
        let pan = "1234567890123456";
        for (field, reason) in [
            ("041234AAAAAAAAAA0123456789ABCDEF", "control field is not 4"),
            ("341234AAAAAAAAAA0123456789ABCDEF", "control field is not 4"),
            (
                "431234AAAAAAAAAA0123456789ABCDEF",
                "PIN length field is outside",
            ),
            (
                "4D1234567890123A0123456789ABCDEF",
                "PIN length field is outside",
            ),
            (
                "44123FAAAAAAAAAA0123456789ABCDEF",
                "PIN digit is not decimal",
            ),
            (
                "441234AAAAAAAAAF0123456789ABCDEF",
                "format 4 fill digits are not all A",
            ),
            (
                "441234FFFFFFFFFF0123456789ABCDEF",
                "format 4 fill digits are not all A",
            ),
        ] {
            let block = aes_block_from_field(field, pan);
            match decipher(&block, pan, &aes_key()) {
                Err(CryptoError::BadPinBlock(why)) => {
                    assert!(why.starts_with(reason), "{field}: {why}")
                }
                other => panic!("{field}: expected BadPinBlock, got {other:?}"),
            }
        }
        let good = aes_block_from_field("441234AAAAAAAAAA0123456789ABCDEF", pan);
        let (format, p) = decipher(&good, pan, &aes_key()).unwrap();
        assert_eq!((format, p.expose()), (PinBlockFormat::Iso4, "1234"));
    }

    #[test]
    fn wrong_key_is_detected() {
        let block = encipher(PinBlockFormat::Iso0, &pin("1234"), PAN, &tdes_key()).unwrap();
        let other =
            SecretKey::from_hex(KeyScheme::Tdes, "FEDCBA98765432100123456789ABCDEF").unwrap();
        assert!(matches!(
            decipher(&block, PAN, &other),
            Err(CryptoError::BadPinBlock(_))
        ));
    }
}
