//! Secret keys: their scheme (TDES or AES), key check values, wrapping
//! under a key-encryption key, and the raw ECB helpers.
//!
//! A [`SecretKey`] keeps its bytes in a [`Zeroizing`] buffer, shows only its
//! scheme, length and check value through `Debug`, and has no `Display`;
//! code that must hand the bytes to a cipher asks for them with
//! [`SecretKey::expose_bytes`].
//!
//! Key check values follow ANSI X9.24-1:2017: TDES keys encrypt a block of
//! zeros, AES keys take the AES-CMAC of a block of zeros (X9.24 allows only
//! the CMAC method for AES).

use std::fmt;

use aes_kw::{KwAes128, KwAes192, KwAes256};
use cipher::KeyInit;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::CryptoError;
use super::primitives::{self, AES_BLOCK, AesCipher, DES_BLOCK, TdesCipher};
use super::random;

/// The block cipher family a key belongs to.
///
/// Serialized as `"tdes"` or `"aes"` in configuration files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyScheme {
    /// DES and Triple DES: 8-byte (single DES), 16-byte (two-key) or
    /// 24-byte (three-key) keys, 8-byte blocks.
    Tdes,
    /// AES: 16, 24 or 32-byte keys, 16-byte blocks.
    Aes,
}

impl KeyScheme {
    /// The key lengths in bytes this scheme accepts.
    ///
    /// ```
    /// use till_pay::crypto::KeyScheme;
    /// assert_eq!(KeyScheme::Tdes.key_lengths(), &[8, 16, 24]);
    /// ```
    pub fn key_lengths(self) -> &'static [usize] {
        match self {
            KeyScheme::Tdes => &[8, 16, 24],
            KeyScheme::Aes => &[16, 24, 32],
        }
    }

    /// The cipher's block size in bytes (8 for TDES, 16 for AES).
    pub fn block_size(self) -> usize {
        match self {
            KeyScheme::Tdes => DES_BLOCK,
            KeyScheme::Aes => AES_BLOCK,
        }
    }

    /// The scheme name with its indefinite article, for error messages.
    pub(crate) fn with_article(self) -> &'static str {
        match self {
            KeyScheme::Tdes => "a TDES",
            KeyScheme::Aes => "an AES",
        }
    }

    /// The accepted lengths as words, for error messages.
    pub(crate) fn lengths_text(self) -> &'static str {
        match self {
            KeyScheme::Tdes => "8, 16 or 24",
            KeyScheme::Aes => "16, 24 or 32",
        }
    }
}

impl fmt::Display for KeyScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyScheme::Tdes => "TDES",
            KeyScheme::Aes => "AES",
        })
    }
}

/// A symmetric key and its scheme. The bytes are wiped when it drops.
///
/// `Debug` prints the scheme, the length and a 3-byte check value, which
/// is what an operator compares against a key ceremony sheet:
///
/// ```
/// use till_pay::crypto::{KeyScheme, SecretKey};
/// let key = SecretKey::from_hex(KeyScheme::Tdes, "0123456789ABCDEFFEDCBA9876543210")?;
/// assert_eq!(format!("{key:?}"), r#"SecretKey { scheme: Tdes, len: 16, kcv: "08D7B4" }"#);
/// # Ok::<(), till_pay::crypto::CryptoError>(())
/// ```
#[derive(Clone)]
pub struct SecretKey {
    scheme: KeyScheme,
    bytes: Zeroizing<Vec<u8>>,
}

impl SecretKey {
    /// Takes a copy of `bytes` as a key of `scheme`.
    ///
    /// TDES accepts 8 (single DES), 16 (two-key) or 24 (three-key) bytes;
    /// AES accepts 16, 24 or 32 bytes. DES parity bits are not checked:
    /// many hosts and test keys ignore them, and DES itself does too.
    pub fn new(scheme: KeyScheme, bytes: &[u8]) -> Result<SecretKey, CryptoError> {
        check_length(scheme, bytes.len())?;
        Ok(SecretKey {
            scheme,
            bytes: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// Parses a key written in hex (either case, no separators).
    ///
    /// ```
    /// use till_pay::crypto::{CryptoError, KeyScheme, SecretKey};
    /// let key = SecretKey::from_hex(KeyScheme::Aes, "000102030405060708090a0b0c0d0e0f")?;
    /// assert_eq!(key.len(), 16);
    /// let typo = SecretKey::from_hex(KeyScheme::Aes, "000102030405060708090a0b0c0d0e0z");
    /// assert_eq!(typo.unwrap_err(), CryptoError::KeyHex);
    /// # Ok::<(), CryptoError>(())
    /// ```
    pub fn from_hex(scheme: KeyScheme, hex_text: &str) -> Result<SecretKey, CryptoError> {
        if !hex_text.len().is_multiple_of(2) {
            return Err(CryptoError::KeyHex);
        }
        check_length(scheme, hex_text.len() / 2)?;
        // Decode straight into the zeroizing buffer: `hex::decode` would
        // leave a partly filled, unwiped Vec behind on a bad digit.
        let mut bytes = Zeroizing::new(vec![0u8; hex_text.len() / 2]);
        hex::decode_to_slice(hex_text, &mut bytes).map_err(|_| CryptoError::KeyHex)?;
        Ok(SecretKey { scheme, bytes })
    }

    /// A fresh random key of `len` bytes from the operating system's
    /// generator. TDES keys get odd parity in every byte, as HSMs and
    /// key-loading devices expect.
    ///
    /// ```
    /// use till_pay::crypto::{KeyScheme, SecretKey};
    /// let key = SecretKey::generate(KeyScheme::Tdes, 16)?;
    /// assert!(key.expose_bytes().iter().all(|b| b.count_ones() % 2 == 1));
    /// # Ok::<(), till_pay::crypto::CryptoError>(())
    /// ```
    pub fn generate(scheme: KeyScheme, len: usize) -> Result<SecretKey, CryptoError> {
        check_length(scheme, len)?;
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        random::fill(&mut bytes)?;
        if scheme == KeyScheme::Tdes {
            for b in bytes.iter_mut() {
                *b = with_odd_parity(*b);
            }
        }
        Ok(SecretKey { scheme, bytes })
    }

    /// The key's scheme.
    pub fn scheme(&self) -> KeyScheme {
        self.scheme
    }

    /// The key's length in bytes.
    #[expect(
        clippy::len_without_is_empty,
        reason = "a key is never empty; every scheme length is at least 8"
    )]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The raw key bytes, for code that must hand them to a cipher or an
    /// HSM. Do not copy them anywhere that is not wiped.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The leftmost `len` bytes of the key check value (ANSI X9.24-1:2017):
    /// TDES encrypts 8 zero bytes, AES takes the AES-CMAC of 16 zero bytes.
    ///
    /// `len` is capped at the block size (8 for TDES, 16 for AES). PCI PIN
    /// allows at most 3 bytes for the TDES method and 5 for CMAC in
    /// anything shown to people; longer values are for machine checks.
    ///
    /// ```
    /// use till_pay::crypto::{KeyScheme, SecretKey};
    /// let key = SecretKey::from_hex(KeyScheme::Tdes, "0123456789ABCDEFFEDCBA9876543210")?;
    /// assert_eq!(key.kcv(3), [0x08, 0xD7, 0xB4]);
    /// # Ok::<(), till_pay::crypto::CryptoError>(())
    /// ```
    pub fn kcv(&self, len: usize) -> Vec<u8> {
        // The constructors only admit lengths the ciphers take, so the
        // `None`/empty arms are unreachable; they keep this infallible
        // without a panic path.
        let full: Vec<u8> = match self.scheme {
            KeyScheme::Tdes => match TdesCipher::new(&self.bytes) {
                Some(cipher) => {
                    let mut block = [0u8; DES_BLOCK];
                    cipher.encrypt_block(&mut block);
                    block.to_vec()
                }
                None => Vec::new(),
            },
            KeyScheme::Aes => primitives::aes_cmac(&self.bytes, &[0u8; AES_BLOCK])
                .map(|mac| mac.to_vec())
                .unwrap_or_default(),
        };
        full.into_iter().take(len).collect()
    }

    /// Wraps `key` under `self` as the key-encryption key (for instance the
    /// terminal master key wrapping a PIN or MAC key) and returns the
    /// cryptogram.
    ///
    /// A TDES key-encryption key encrypts the key bytes in TDES-ECB, as
    /// host sign-on responses carry working keys. An AES key-encryption key
    /// uses the RFC 3394 AES key wrap, whose built-in integrity check makes
    /// a wrong key-encryption key fail [`SecretKey::unwrap`] instead of
    /// yielding garbage; RFC 3394 needs at least 16 bytes, so a single-DES
    /// key cannot be wrapped under AES.
    ///
    /// Nothing stops wrapping a key under a weaker one (AES-256 under
    /// two-key TDES); X9.24 forbids that in production, and choosing key
    /// hierarchies is the key-loading side's job.
    ///
    /// ```
    /// use till_pay::crypto::{KeyScheme, SecretKey};
    /// let tmk = SecretKey::generate(KeyScheme::Aes, 32)?;
    /// let pin_key = SecretKey::generate(KeyScheme::Aes, 16)?;
    /// let cryptogram = tmk.wrap(&pin_key)?;
    /// let back = tmk.unwrap_checked(KeyScheme::Aes, &cryptogram, &pin_key.kcv(3))?;
    /// assert_eq!(back.expose_bytes(), pin_key.expose_bytes());
    /// # Ok::<(), till_pay::crypto::CryptoError>(())
    /// ```
    pub fn wrap(&self, key: &SecretKey) -> Result<Vec<u8>, CryptoError> {
        match self.scheme {
            KeyScheme::Tdes => Ok(tdes_ecb_encrypt(self, key.expose_bytes())?.to_vec()),
            KeyScheme::Aes => aes_key_wrap(&self.bytes, key.expose_bytes()),
        }
    }

    /// Recovers a key of `scheme` from a cryptogram made by
    /// [`SecretKey::wrap`] (or by a host) under `self`.
    ///
    /// A TDES key-encryption key cannot tell a wrong cryptogram from a right
    /// one; use [`SecretKey::unwrap_checked`] when the host sends a check
    /// value, as most do.
    pub fn unwrap(&self, scheme: KeyScheme, cryptogram: &[u8]) -> Result<SecretKey, CryptoError> {
        let bytes = match self.scheme {
            KeyScheme::Tdes => {
                // Refuse before deciphering: a cryptogram of the wrong size
                // is a framing error, not something to decrypt.
                check_length(scheme, cryptogram.len())?;
                tdes_ecb_decrypt(self, cryptogram)?
            }
            KeyScheme::Aes => aes_key_unwrap(&self.bytes, scheme, cryptogram)?,
        };
        Ok(SecretKey { scheme, bytes })
    }

    /// [`SecretKey::unwrap`], then compares the unwrapped key's check value
    /// with `expected_kcv` (whose length sets how many bytes are compared)
    /// in constant time.
    ///
    /// Fails with [`CryptoError::KcvMismatch`] if they differ, and with
    /// [`CryptoError::KcvLength`] for an empty check value (which would
    /// accept any key) or one longer than a cipher block.
    pub fn unwrap_checked(
        &self,
        scheme: KeyScheme,
        cryptogram: &[u8],
        expected_kcv: &[u8],
    ) -> Result<SecretKey, CryptoError> {
        let max = scheme.block_size();
        if expected_kcv.is_empty() || expected_kcv.len() > max {
            return Err(CryptoError::KcvLength {
                len: expected_kcv.len(),
                max,
            });
        }
        let key = self.unwrap(scheme, cryptogram)?;
        if bool::from(key.kcv(expected_kcv.len()).ct_eq(expected_kcv)) {
            Ok(key)
        } else {
            Err(CryptoError::KcvMismatch {
                key: "unwrapped key",
            })
        }
    }

    /// The key as a DES/TDES cipher, or why it cannot be one.
    pub(crate) fn tdes_cipher(&self, operation: &'static str) -> Result<TdesCipher, CryptoError> {
        self.require(KeyScheme::Tdes, operation)?;
        TdesCipher::new(&self.bytes).ok_or(CryptoError::KeyLength {
            scheme: self.scheme,
            len: self.len(),
        })
    }

    /// The key as an AES cipher, or why it cannot be one.
    pub(crate) fn aes_cipher(&self, operation: &'static str) -> Result<AesCipher, CryptoError> {
        self.require(KeyScheme::Aes, operation)?;
        AesCipher::new(&self.bytes).ok_or(CryptoError::KeyLength {
            scheme: self.scheme,
            len: self.len(),
        })
    }

    /// Fails with [`CryptoError::WrongScheme`] unless the key is of `scheme`.
    pub(crate) fn require(
        &self,
        scheme: KeyScheme,
        operation: &'static str,
    ) -> Result<(), CryptoError> {
        if self.scheme == scheme {
            Ok(())
        } else {
            Err(CryptoError::WrongScheme {
                operation,
                expected: scheme,
                got: self.scheme,
            })
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("scheme", &self.scheme)
            .field("len", &self.len())
            .field("kcv", &hex::encode_upper(self.kcv(3)))
            .finish()
    }
}

/// Encrypts whole 8-byte blocks in DES/TDES-ECB under a TDES-scheme key
/// (single DES for an 8-byte key).
///
/// The result is [`Zeroizing`] like the inputs it is usually made from.
///
/// ```
/// use till_pay::crypto::{KeyScheme, SecretKey, keys};
/// let key = SecretKey::from_hex(KeyScheme::Tdes, "133457799BBCDFF1")?;
/// let out = keys::tdes_ecb_encrypt(&key, &hex::decode("0123456789ABCDEF").unwrap())?;
/// assert_eq!(hex::encode_upper(&*out), "85E813540F0AB405");
/// assert!(keys::tdes_ecb_encrypt(&key, b"short").is_err());
/// # Ok::<(), till_pay::crypto::CryptoError>(())
/// ```
pub fn tdes_ecb_encrypt(key: &SecretKey, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    const OPERATION: &str = "TDES-ECB encryption";
    let cipher = key.tdes_cipher(OPERATION)?;
    ecb::<DES_BLOCK>(data, OPERATION, |block| cipher.encrypt_block(block))
}

/// Decrypts whole 8-byte blocks in DES/TDES-ECB under a TDES-scheme key.
/// The result is [`Zeroizing`]: it is typically a key or a PIN block.
pub fn tdes_ecb_decrypt(key: &SecretKey, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    const OPERATION: &str = "TDES-ECB decryption";
    let cipher = key.tdes_cipher(OPERATION)?;
    ecb::<DES_BLOCK>(data, OPERATION, |block| cipher.decrypt_block(block))
}

/// Encrypts whole 16-byte blocks in AES-ECB under an AES key.
pub fn aes_ecb_encrypt(key: &SecretKey, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    const OPERATION: &str = "AES-ECB encryption";
    let cipher = key.aes_cipher(OPERATION)?;
    ecb::<AES_BLOCK>(data, OPERATION, |block| cipher.encrypt_block(block))
}

/// Decrypts whole 16-byte blocks in AES-ECB under an AES key.
/// The result is [`Zeroizing`]: it is typically a key or a PIN block.
pub fn aes_ecb_decrypt(key: &SecretKey, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    const OPERATION: &str = "AES-ECB decryption";
    let cipher = key.aes_cipher(OPERATION)?;
    ecb::<AES_BLOCK>(data, OPERATION, |block| cipher.decrypt_block(block))
}

/// Runs `f` over each `N`-byte block of a zeroizing copy of `data`.
fn ecb<const N: usize>(
    data: &[u8],
    operation: &'static str,
    mut f: impl FnMut(&mut [u8; N]),
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if data.is_empty() || !data.len().is_multiple_of(N) {
        return Err(CryptoError::BlockLength {
            operation,
            block: N,
            len: data.len(),
        });
    }
    let mut out = Zeroizing::new(data.to_vec());
    let (blocks, _) = out.as_chunks_mut::<N>();
    for block in blocks {
        f(block);
    }
    Ok(out)
}

fn check_length(scheme: KeyScheme, len: usize) -> Result<(), CryptoError> {
    if scheme.key_lengths().contains(&len) {
        Ok(())
    } else {
        Err(CryptoError::KeyLength { scheme, len })
    }
}

/// Sets the low bit of `b` so that it has an odd number of one bits.
fn with_odd_parity(b: u8) -> u8 {
    let high = b & 0xFE;
    if high.count_ones().is_multiple_of(2) {
        high | 1
    } else {
        high
    }
}

/// RFC 3394 wrap of `data` under the AES key `kek`.
fn aes_key_wrap(kek: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if data.len() < 16 {
        return Err(CryptoError::Wrap(
            "RFC 3394 wraps at least 16 bytes, so a single-DES key cannot go under an AES key",
        ));
    }
    let mut out = vec![0u8; data.len() + aes_kw::IV_LEN];
    let wrapped = match kek.len() {
        16 => KwAes128::new_from_slice(kek).map(|kw| kw.wrap_key(data, &mut out)),
        24 => KwAes192::new_from_slice(kek).map(|kw| kw.wrap_key(data, &mut out)),
        32 => KwAes256::new_from_slice(kek).map(|kw| kw.wrap_key(data, &mut out)),
        len => {
            return Err(CryptoError::KeyLength {
                scheme: KeyScheme::Aes,
                len,
            });
        }
    };
    match wrapped {
        Ok(Ok(_)) => Ok(out),
        _ => Err(CryptoError::Wrap("AES key wrap refused the key data")),
    }
}

/// RFC 3394 unwrap of `cryptogram` under the AES key `kek` into a key of
/// `scheme`.
fn aes_key_unwrap(
    kek: &[u8],
    scheme: KeyScheme,
    cryptogram: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if cryptogram.len() < 24 || !cryptogram.len().is_multiple_of(8) {
        return Err(CryptoError::Unwrap(
            "an RFC 3394 cryptogram is a multiple of 8 bytes and at least 24 bytes long",
        ));
    }
    let key_len = cryptogram.len() - aes_kw::IV_LEN;
    check_length(scheme, key_len)?;
    let mut out = Zeroizing::new(vec![0u8; key_len]);
    let unwrapped = match kek.len() {
        16 => KwAes128::new_from_slice(kek).map(|kw| kw.unwrap_key(cryptogram, &mut out)),
        24 => KwAes192::new_from_slice(kek).map(|kw| kw.unwrap_key(cryptogram, &mut out)),
        32 => KwAes256::new_from_slice(kek).map(|kw| kw.unwrap_key(cryptogram, &mut out)),
        len => {
            return Err(CryptoError::KeyLength {
                scheme: KeyScheme::Aes,
                len,
            });
        }
    };
    match unwrapped {
        Ok(Ok(_)) => Ok(out),
        _ => Err(CryptoError::Unwrap(
            "integrity check failed: wrong key-encryption key or corrupted cryptogram",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scheme: KeyScheme, hex_text: &str) -> SecretKey {
        SecretKey::from_hex(scheme, hex_text).unwrap()
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn accepts_exactly_the_scheme_lengths() {
        for len in 0..=40 {
            let tdes = SecretKey::new(KeyScheme::Tdes, &vec![1; len]);
            let aes = SecretKey::new(KeyScheme::Aes, &vec![1; len]);
            assert_eq!(tdes.is_ok(), [8, 16, 24].contains(&len), "TDES {len}");
            assert_eq!(aes.is_ok(), [16, 24, 32].contains(&len), "AES {len}");
        }
        assert_eq!(
            SecretKey::new(KeyScheme::Tdes, &[0; 12]).unwrap_err(),
            CryptoError::KeyLength {
                scheme: KeyScheme::Tdes,
                len: 12
            }
        );
        assert_eq!(
            SecretKey::generate(KeyScheme::Aes, 8).unwrap_err(),
            CryptoError::KeyLength {
                scheme: KeyScheme::Aes,
                len: 8
            }
        );
    }

    #[test]
    fn key_length_error_names_the_allowed_lengths() {
        let msg = SecretKey::new(KeyScheme::Aes, &[0; 10])
            .unwrap_err()
            .to_string();
        assert_eq!(msg, "an AES key must be 16, 24 or 32 bytes long, got 10");
    }

    #[test]
    fn bad_hex_is_an_error_without_the_text() {
        for bad in [
            "0",
            "0123456789ABCDE",
            "0123456789ABCDEZ",
            "01234567 9ABCDEF",
            "0x23456789ABCDEF",
            "é123456789ABCDE",
        ] {
            let err = SecretKey::from_hex(KeyScheme::Tdes, bad).unwrap_err();
            assert_eq!(err, CryptoError::KeyHex, "{bad}");
            if bad.len() > 1 {
                assert!(!err.to_string().contains(bad), "{bad} echoed in {err}");
            }
        }
        assert_eq!(
            SecretKey::from_hex(KeyScheme::Tdes, "0g").unwrap_err(),
            CryptoError::KeyLength {
                scheme: KeyScheme::Tdes,
                len: 1
            }
        );
        assert_eq!(
            SecretKey::from_hex(KeyScheme::Tdes, "0123456789ABCDEZ").unwrap_err(),
            CryptoError::KeyHex
        );
        let lower = key(KeyScheme::Tdes, "0123456789abcdef");
        assert_eq!(lower.expose_bytes(), unhex("0123456789ABCDEF"));
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let k = key(KeyScheme::Aes, "2B7E151628AED2A6ABF7158809CF4F3C");
        let dbg = format!("{k:?}");
        assert!(
            dbg.starts_with("SecretKey { scheme: Aes, len: 16, kcv: \""),
            "{dbg}"
        );
        for window in k.expose_bytes().windows(3) {
            assert!(
                !dbg.to_uppercase().contains(&hex::encode_upper(window)),
                "{dbg}"
            );
        }
    }

    #[test]
    fn generated_tdes_keys_have_odd_parity_and_differ() {
        let a = SecretKey::generate(KeyScheme::Tdes, 24).unwrap();
        let b = SecretKey::generate(KeyScheme::Tdes, 24).unwrap();
        assert_eq!(a.len(), 24);
        assert!(a.expose_bytes().iter().all(|x| x.count_ones() % 2 == 1));
        assert_ne!(a.expose_bytes(), b.expose_bytes());
        let aes = SecretKey::generate(KeyScheme::Aes, 32).unwrap();
        assert_eq!((aes.scheme(), aes.len()), (KeyScheme::Aes, 32));
    }

    #[test]
    fn parity_fix_keeps_the_key_bits() {
        for b in 0..=255u8 {
            let p = with_odd_parity(b);
            assert_eq!(p & 0xFE, b & 0xFE);
            assert_eq!(p.count_ones() % 2, 1);
        }
    }

    // Known-answer values: the single-DES worked example of J. Orlin Grabbe,
    // "The DES Algorithm Illustrated" (key 133457799BBCDFF1), the psec
    // documentation example for TDES-ECB and its KCV 08D7B4 (also the
    // EFTlab reference value for this key), and the two-key TDES vector in
    // solo123/pgate test/integration/pos_mac_test.rb.
    #[test]
    fn tdes_ecb_known_answers() {
        let des = key(KeyScheme::Tdes, "133457799BBCDFF1");
        let ct = tdes_ecb_encrypt(&des, &unhex("0123456789ABCDEF")).unwrap();
        assert_eq!(hex::encode_upper(&*ct), "85E813540F0AB405");
        assert_eq!(
            &*tdes_ecb_decrypt(&des, &ct).unwrap(),
            &unhex("0123456789ABCDEF")
        );

        let k2 = key(KeyScheme::Tdes, "0123456789ABCDEFFEDCBA9876543210");
        let ct = tdes_ecb_encrypt(&k2, b"12345678").unwrap();
        assert_eq!(hex::encode_upper(&*ct), "41D2FFBA3CDC15FE");

        let k2 = key(KeyScheme::Tdes, "BA213DD564BBE85DDB62942364FBE85D");
        let pt = unhex("BF3523B8E3845CB5300D97F976AF0A39");
        let ct = tdes_ecb_encrypt(&k2, &pt).unwrap();
        assert_eq!(hex::encode_upper(&*ct), "15C481BEC8A7155890694EBEAC00489F");
        assert_eq!(&*tdes_ecb_decrypt(&k2, &ct).unwrap(), &pt);
    }

    #[test]
    fn three_key_tdes_with_equal_parts_is_single_des() {
        let single = key(KeyScheme::Tdes, "133457799BBCDFF1");
        let triple = key(
            KeyScheme::Tdes,
            "133457799BBCDFF1133457799BBCDFF1133457799BBCDFF1",
        );
        let data = unhex("0123456789ABCDEF0011223344556677");
        assert_eq!(
            tdes_ecb_encrypt(&single, &data).unwrap(),
            tdes_ecb_encrypt(&triple, &data).unwrap()
        );
    }

    // FIPS-197 Appendix C.1/C.2/C.3 example vectors.
    #[test]
    fn aes_ecb_known_answers() {
        let pt = unhex("00112233445566778899AABBCCDDEEFF");
        for (k, ct) in [
            (
                "000102030405060708090A0B0C0D0E0F",
                "69C4E0D86A7B0430D8CDB78070B4C55A",
            ),
            (
                "000102030405060708090A0B0C0D0E0F1011121314151617",
                "DDA97CA4864CDFE06EAF70A0EC0D7191",
            ),
            (
                "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
                "8EA2B7CA516745BFEAFC49904B496089",
            ),
        ] {
            let k = key(KeyScheme::Aes, k);
            let out = aes_ecb_encrypt(&k, &pt).unwrap();
            assert_eq!(hex::encode_upper(&*out), ct);
            assert_eq!(&*aes_ecb_decrypt(&k, &out).unwrap(), &pt);
        }
    }

    #[test]
    fn ecb_rejects_partial_blocks_and_wrong_schemes() {
        let tdes = key(KeyScheme::Tdes, "0123456789ABCDEFFEDCBA9876543210");
        let aes = key(KeyScheme::Aes, "000102030405060708090A0B0C0D0E0F");
        for len in [0, 1, 7, 9, 15] {
            assert!(matches!(
                tdes_ecb_encrypt(&tdes, &vec![0; len]),
                Err(CryptoError::BlockLength { block: 8, .. })
            ));
        }
        for len in [0, 8, 15, 17, 24] {
            assert!(matches!(
                aes_ecb_decrypt(&aes, &vec![0; len]),
                Err(CryptoError::BlockLength { block: 16, .. })
            ));
        }
        assert_eq!(
            tdes_ecb_encrypt(&aes, &[0; 8]).unwrap_err(),
            CryptoError::WrongScheme {
                operation: "TDES-ECB encryption",
                expected: KeyScheme::Tdes,
                got: KeyScheme::Aes
            }
        );
        assert!(matches!(
            aes_ecb_encrypt(&tdes, &[0; 16]),
            Err(CryptoError::WrongScheme { .. })
        ));
    }

    #[test]
    fn tdes_kcv_known_answer_and_truncation() {
        let k = key(KeyScheme::Tdes, "0123456789ABCDEFFEDCBA9876543210");
        assert_eq!(hex::encode_upper(k.kcv(3)), "08D7B4");
        assert_eq!(k.kcv(8).len(), 8);
        assert_eq!(k.kcv(100).len(), 8);
        assert!(k.kcv(0).is_empty());
        assert_eq!(&k.kcv(8)[..3], &k.kcv(3)[..]);
    }

    // The AES KCV is the CMAC of a zero block; RFC 4493's subkey-generation
    // example gives AES-128(2B7E..., 0^128) = 7DF76B0C1AB899B33E42F047B91B546F,
    // and the CMAC of one full zero block is checked against `cryptography`
    // in tests/crypto_peers.rs. Here: it is the CMAC, not the ECB value.
    #[test]
    fn aes_kcv_is_cmac_of_zero_block() {
        let k = key(KeyScheme::Aes, "2B7E151628AED2A6ABF7158809CF4F3C");
        let cmac = primitives::aes_cmac(k.expose_bytes(), &[0; 16]).unwrap();
        assert_eq!(k.kcv(16), cmac.to_vec());
        let ecb = aes_ecb_encrypt(&k, &[0; 16]).unwrap();
        assert_eq!(hex::encode_upper(&*ecb), "7DF76B0C1AB899B33E42F047B91B546F");
        assert_ne!(k.kcv(3), ecb[..3].to_vec());
    }

    // RFC 3394 section 4 test vectors 4.1 to 4.6.
    #[test]
    fn rfc3394_known_answers() {
        let kek128 = "000102030405060708090A0B0C0D0E0F";
        let kek192 = "000102030405060708090A0B0C0D0E0F1011121314151617";
        let kek256 = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
        let data128 = "00112233445566778899AABBCCDDEEFF";
        let data192 = "00112233445566778899AABBCCDDEEFF0001020304050607";
        let data256 = "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F";
        for (kek, data, wrapped) in [
            (
                kek128,
                data128,
                "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5",
            ),
            (
                kek192,
                data128,
                "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D",
            ),
            (
                kek256,
                data128,
                "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7",
            ),
            (
                kek192,
                data192,
                "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2",
            ),
            (
                kek256,
                data192,
                "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1",
            ),
            (
                kek256,
                data256,
                "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
            ),
        ] {
            let kek = key(KeyScheme::Aes, kek);
            let k = key(KeyScheme::Aes, data);
            let ct = kek.wrap(&k).unwrap();
            assert_eq!(hex::encode_upper(&ct), wrapped);
            let back = kek.unwrap(KeyScheme::Aes, &ct).unwrap();
            assert_eq!(back.expose_bytes(), k.expose_bytes());
        }
    }

    #[test]
    fn aes_unwrap_detects_tampering_and_wrong_kek() {
        let kek = key(KeyScheme::Aes, "000102030405060708090A0B0C0D0E0F");
        let mut ct = unhex("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5");
        assert!(kek.unwrap(KeyScheme::Aes, &ct).is_ok());
        ct[10] ^= 1;
        assert!(matches!(
            kek.unwrap(KeyScheme::Aes, &ct),
            Err(CryptoError::Unwrap(_))
        ));
        ct[10] ^= 1;
        let other = key(KeyScheme::Aes, "000102030405060708090A0B0C0D0E0E");
        assert!(matches!(
            other.unwrap(KeyScheme::Aes, &ct),
            Err(CryptoError::Unwrap(_))
        ));
    }

    #[test]
    fn aes_unwrap_rejects_bad_cryptogram_lengths() {
        let kek = key(KeyScheme::Aes, "000102030405060708090A0B0C0D0E0F");
        for len in [0, 8, 16, 23, 25, 33] {
            assert!(matches!(
                kek.unwrap(KeyScheme::Aes, &vec![0xA6; len]),
                Err(CryptoError::Unwrap(_))
            ));
        }
        // 48 bytes would be a 40-byte key: no AES key is that long.
        assert_eq!(
            kek.unwrap(KeyScheme::Aes, &[0; 48]).unwrap_err(),
            CryptoError::KeyLength {
                scheme: KeyScheme::Aes,
                len: 40
            }
        );
    }

    #[test]
    fn single_des_key_cannot_be_wrapped_under_aes() {
        let kek = key(KeyScheme::Aes, "000102030405060708090A0B0C0D0E0F");
        let des = key(KeyScheme::Tdes, "0123456789ABCDEF");
        assert!(matches!(kek.wrap(&des), Err(CryptoError::Wrap(_))));
    }

    #[test]
    fn tdes_kek_wraps_in_ecb_and_round_trips_all_lengths() {
        let kek = key(KeyScheme::Tdes, "0123456789ABCDEFFEDCBA9876543210");
        for (scheme, len) in [
            (KeyScheme::Tdes, 8),
            (KeyScheme::Tdes, 16),
            (KeyScheme::Tdes, 24),
            (KeyScheme::Aes, 16),
            (KeyScheme::Aes, 32),
        ] {
            let k = SecretKey::generate(scheme, len).unwrap();
            let ct = kek.wrap(&k).unwrap();
            assert_eq!(
                ct,
                tdes_ecb_encrypt(&kek, k.expose_bytes()).unwrap().to_vec()
            );
            let back = kek.unwrap_checked(scheme, &ct, &k.kcv(4)).unwrap();
            assert_eq!(back.expose_bytes(), k.expose_bytes());
            assert_eq!(back.scheme(), scheme);
        }
        assert_eq!(
            kek.unwrap(KeyScheme::Tdes, &[0; 12]).unwrap_err(),
            CryptoError::KeyLength {
                scheme: KeyScheme::Tdes,
                len: 12
            }
        );
    }

    #[test]
    fn unwrap_checked_rejects_wrong_and_degenerate_kcvs() {
        let kek = key(KeyScheme::Tdes, "0123456789ABCDEFFEDCBA9876543210");
        let k = key(KeyScheme::Tdes, "0123456789ABCDEFFEDCBA9876543210");
        let ct = kek.wrap(&k).unwrap();
        assert!(
            kek.unwrap_checked(KeyScheme::Tdes, &ct, &[0x08, 0xD7, 0xB4])
                .is_ok()
        );
        assert_eq!(
            kek.unwrap_checked(KeyScheme::Tdes, &ct, &[0x08, 0xD7, 0xB5])
                .unwrap_err(),
            CryptoError::KcvMismatch {
                key: "unwrapped key"
            }
        );
        assert_eq!(
            kek.unwrap_checked(KeyScheme::Tdes, &ct, &[]).unwrap_err(),
            CryptoError::KcvLength { len: 0, max: 8 }
        );
        assert_eq!(
            kek.unwrap_checked(KeyScheme::Tdes, &ct, &[0; 9])
                .unwrap_err(),
            CryptoError::KcvLength { len: 9, max: 8 }
        );
    }

    #[test]
    fn key_scheme_serde_and_display() {
        assert_eq!(serde_json::to_string(&KeyScheme::Tdes).unwrap(), "\"tdes\"");
        assert_eq!(
            serde_json::from_str::<KeyScheme>("\"aes\"").unwrap(),
            KeyScheme::Aes
        );
        assert!(serde_json::from_str::<KeyScheme>("\"AES\"").is_err());
        assert_eq!(KeyScheme::Tdes.to_string(), "TDES");
        assert_eq!(KeyScheme::Aes.block_size(), 16);
    }
}
