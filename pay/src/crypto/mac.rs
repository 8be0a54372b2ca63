//! Message authentication codes for ISO 8583 field 64/128.
//!
//! Three algorithms cover the hosts Till talks to:
//!
//! - [`retail_mac`]: ISO 9797-1 MAC algorithm 3 (ANSI X9.19 "retail MAC"):
//!   single-DES CBC under K1, then the last block decrypted under K2 and
//!   encrypted under K1. Needs a double-length TDES key.
//! - [`aes_cmac`]: AES-CMAC (NIST SP 800-38B, RFC 4493), for AES hosts.
//! - [`cup_pos_mac`]: the China UnionPay POS terminal MAC (the "ECB
//!   algorithm" of the UnionPay POS terminal specification).
//!
//! A host dialect names its algorithm in configuration and the engine goes
//! through [`MacAlgorithm`], which always yields the 8 bytes that go in the
//! message.

use subtle::ConstantTimeEq;

use super::CryptoError;
use super::keys::{KeyScheme, SecretKey};
use super::primitives::{self, AES_BLOCK, DES_BLOCK, TdesCipher, xor_into};

/// ISO 9797-1 padding methods for [`retail_mac`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacPadding {
    /// Method 1: zero bytes up to a whole block; none if the data already
    /// fills whole blocks, one zero block if the data is empty.
    Method1,
    /// Method 2: a mandatory 0x80 byte, then zero bytes up to a whole block.
    Method2,
}

impl MacPadding {
    /// The method's number in ISO 9797-1.
    pub fn number(self) -> u8 {
        match self {
            MacPadding::Method1 => 1,
            MacPadding::Method2 => 2,
        }
    }
}

impl TryFrom<u8> for MacPadding {
    type Error = CryptoError;

    /// 1 or 2; anything else is [`CryptoError::MacPadding`].
    fn try_from(number: u8) -> Result<Self, Self::Error> {
        match number {
            1 => Ok(MacPadding::Method1),
            2 => Ok(MacPadding::Method2),
            other => Err(CryptoError::MacPadding(other)),
        }
    }
}

/// ISO 9797-1 MAC algorithm 3 with DES, under a double-length (16-byte)
/// TDES key K1‖K2.
///
/// ```
/// use till_pay::crypto::{KeyScheme, MacPadding, SecretKey, mac};
/// // ICAO Doc 9303 part 11, appendix D.3 (basic access control example).
/// let key = SecretKey::from_hex(KeyScheme::Tdes, "7962D9ECE03D1ACD4C76089DCE131543")?;
/// let data = hex::decode(concat!(
///     "72C29C2371CC9BDB65B779B8E8D37B29",
///     "ECC154AA56A8799FAE2F498F76ED92F2",
/// ))
/// .unwrap();
/// let mac = mac::retail_mac(&key, &data, MacPadding::Method2)?;
/// assert_eq!(hex::encode_upper(mac), "5F1448EEA8AD90A7");
/// # Ok::<(), till_pay::crypto::CryptoError>(())
/// ```
pub fn retail_mac(
    key: &SecretKey,
    data: &[u8],
    padding: MacPadding,
) -> Result<[u8; DES_BLOCK], CryptoError> {
    const OPERATION: &str = "the retail MAC (ISO 9797-1 algorithm 3)";
    key.require(KeyScheme::Tdes, OPERATION)?;
    let bytes = key.expose_bytes();
    let halves = if bytes.len() == 16 {
        TdesCipher::new(&bytes[..8]).zip(TdesCipher::new(&bytes[8..]))
    } else {
        None
    };
    let Some((k1, k2)) = halves else {
        return Err(CryptoError::KeyUnsuitable {
            operation: OPERATION,
            required: "a double-length (16-byte) TDES key",
            scheme: key.scheme(),
            len: key.len(),
        });
    };
    let mut state = [0u8; DES_BLOCK];
    for_each_padded_block(data, padding, |block| {
        xor_into(&mut state, block);
        k1.encrypt_block(&mut state);
    });
    k2.decrypt_block(&mut state);
    k1.encrypt_block(&mut state);
    Ok(state)
}

/// AES-CMAC (NIST SP 800-38B, RFC 4493) under an AES key of any length.
///
/// ```
/// use till_pay::crypto::{KeyScheme, SecretKey, mac};
/// // RFC 4493 section 4, example 1 (empty message).
/// let key = SecretKey::from_hex(KeyScheme::Aes, "2B7E151628AED2A6ABF7158809CF4F3C")?;
/// assert_eq!(hex::encode(mac::aes_cmac(&key, b"")?), "bb1d6929e95937287fa37d129b756746");
/// # Ok::<(), till_pay::crypto::CryptoError>(())
/// ```
pub fn aes_cmac(key: &SecretKey, data: &[u8]) -> Result<[u8; AES_BLOCK], CryptoError> {
    key.require(KeyScheme::Aes, "AES-CMAC")?;
    primitives::aes_cmac(key.expose_bytes(), data).ok_or(CryptoError::KeyLength {
        scheme: key.scheme(),
        len: key.len(),
    })
}

/// The China UnionPay POS terminal MAC, whose result is 8 ASCII hex
/// characters.
///
/// The data (from the message type to field 63) is padded with zero bytes
/// to whole 8-byte blocks (no extra block when it already fits) and all
/// blocks are XORed together. The 8-byte result is written as 16
/// uppercase hex characters; the first 8 are encrypted under the MAK, XORed
/// with the last 8 and encrypted again. The first 8 hex characters of that
/// result are the MAC. The MAK may be single DES (8 bytes) or TDES (16/24).
///
/// The algorithm is weak by today's standards (the XOR chain lets blocks
/// be swapped or cancelled); it is here because UnionPay hosts require it.
///
/// ```
/// use till_pay::crypto::{KeyScheme, SecretKey, mac};
/// // Worked example in solo123/pgate, test/integration/pos_mac_test.rb.
/// let mak = SecretKey::from_hex(KeyScheme::Tdes, "2222222222222222")?;
/// let data = hex::decode("1234567890ABCDEFABCDEF1234567890").unwrap();
/// assert_eq!(&mac::cup_pos_mac(&mak, &data)?, b"E267B6E2");
/// # Ok::<(), till_pay::crypto::CryptoError>(())
/// ```
pub fn cup_pos_mac(key: &SecretKey, data: &[u8]) -> Result<[u8; DES_BLOCK], CryptoError> {
    let cipher = key.tdes_cipher("the UnionPay POS MAC")?;
    let mut folded = [0u8; DES_BLOCK];
    let (blocks, rest) = data.as_chunks::<DES_BLOCK>();
    for block in blocks {
        xor_into(&mut folded, block);
    }
    if !rest.is_empty() {
        let mut last = [0u8; DES_BLOCK];
        last[..rest.len()].copy_from_slice(rest);
        xor_into(&mut folded, &last);
    }
    let (mut left, right) = upper_hex(&folded);
    cipher.encrypt_block(&mut left);
    xor_into(&mut left, &right);
    cipher.encrypt_block(&mut left);
    let (mac, _) = upper_hex(&left);
    Ok(mac)
}

/// A MAC algorithm as a host dialect names it.
///
/// ```
/// use till_pay::crypto::{KeyScheme, MacAlgorithm, MacPadding, SecretKey};
/// let alg = MacAlgorithm::from_name("retail", None)?;
/// assert_eq!(alg, MacAlgorithm::Retail(MacPadding::Method2));
/// assert_eq!(alg.required_scheme(), KeyScheme::Tdes);
///
/// let mak = SecretKey::generate(KeyScheme::Tdes, 16)?;
/// let field64 = alg.compute(&mak, b"0200...")?;
/// assert!(alg.verify(&mak, b"0200...", &field64)?);
/// assert!(!alg.verify(&mak, b"0210...", &field64)?);
/// # Ok::<(), till_pay::crypto::CryptoError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacAlgorithm {
    /// [`retail_mac`] with the given padding (name `"retail"`).
    Retail(MacPadding),
    /// [`aes_cmac`], leftmost 8 bytes (name `"cmac"`).
    Cmac,
    /// [`cup_pos_mac`] (name `"cup"`).
    Cup,
}

impl MacAlgorithm {
    /// Parses the algorithm a host dialect configures: `"retail"` (padding
    /// method 1 or 2, default 2), `"cmac"` or `"cup"`. The last two define
    /// their own padding, so giving one is an error rather than silently
    /// ignored.
    pub fn from_name(alg: &str, padding: Option<u8>) -> Result<MacAlgorithm, CryptoError> {
        match (alg, padding) {
            ("retail", None) => Ok(MacAlgorithm::Retail(MacPadding::Method2)),
            ("retail", Some(number)) => Ok(MacAlgorithm::Retail(MacPadding::try_from(number)?)),
            ("cmac", None) => Ok(MacAlgorithm::Cmac),
            ("cup", None) => Ok(MacAlgorithm::Cup),
            ("cmac", Some(_)) => Err(CryptoError::MacPaddingNotApplicable("cmac")),
            ("cup", Some(_)) => Err(CryptoError::MacPaddingNotApplicable("cup")),
            (other, _) => Err(CryptoError::UnknownMacAlgorithm(other.to_owned())),
        }
    }

    /// The name [`MacAlgorithm::from_name`] accepts for this algorithm.
    pub fn name(&self) -> &'static str {
        match self {
            MacAlgorithm::Retail(_) => "retail",
            MacAlgorithm::Cmac => "cmac",
            MacAlgorithm::Cup => "cup",
        }
    }

    /// The key scheme the MAC key must have: TDES for retail and UnionPay,
    /// AES for CMAC.
    pub fn required_scheme(&self) -> KeyScheme {
        match self {
            MacAlgorithm::Retail(_) | MacAlgorithm::Cup => KeyScheme::Tdes,
            MacAlgorithm::Cmac => KeyScheme::Aes,
        }
    }

    /// The 8 bytes that go in ISO 8583 field 64/128: the retail MAC, the
    /// leftmost 8 bytes of the CMAC, or the UnionPay MAC's 8 ASCII
    /// characters.
    pub fn compute(&self, key: &SecretKey, data: &[u8]) -> Result<[u8; DES_BLOCK], CryptoError> {
        match self {
            MacAlgorithm::Retail(padding) => retail_mac(key, data, *padding),
            MacAlgorithm::Cmac => {
                let full = aes_cmac(key, data)?;
                let mut mac = [0u8; DES_BLOCK];
                mac.copy_from_slice(&full[..DES_BLOCK]);
                Ok(mac)
            }
            MacAlgorithm::Cup => cup_pos_mac(key, data),
        }
    }

    /// Recomputes the MAC over `data` and compares it with `mac` in
    /// constant time. A `mac` that is not 8 bytes is an error, not a
    /// mismatch: it means the message was cut wrongly.
    pub fn verify(&self, key: &SecretKey, data: &[u8], mac: &[u8]) -> Result<bool, CryptoError> {
        if mac.len() != DES_BLOCK {
            return Err(CryptoError::MacLength { len: mac.len() });
        }
        let expected = self.compute(key, data)?;
        Ok(bool::from(expected.ct_eq(mac)))
    }
}

/// Calls `f` on each 8-byte block of `data` padded by `padding`.
fn for_each_padded_block(data: &[u8], padding: MacPadding, mut f: impl FnMut(&[u8; DES_BLOCK])) {
    let (blocks, rest) = data.as_chunks::<DES_BLOCK>();
    for block in blocks {
        f(block);
    }
    let mut last = [0u8; DES_BLOCK];
    last[..rest.len()].copy_from_slice(rest);
    match padding {
        // ISO 9797-1 pads to a *positive* multiple of the block size, so
        // empty data still gets one zero block.
        MacPadding::Method1 if rest.is_empty() && !data.is_empty() => {}
        MacPadding::Method1 => f(&last),
        MacPadding::Method2 => {
            last[rest.len()] = 0x80;
            f(&last);
        }
    }
}

/// `bytes` as 16 uppercase hex ASCII characters, split in two halves.
fn upper_hex(bytes: &[u8; DES_BLOCK]) -> ([u8; DES_BLOCK], [u8; DES_BLOCK]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut text = [0u8; 2 * DES_BLOCK];
    for (pair, b) in text.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0F)];
    }
    let mut left = [0u8; DES_BLOCK];
    let mut right = [0u8; DES_BLOCK];
    left.copy_from_slice(&text[..DES_BLOCK]);
    right.copy_from_slice(&text[DES_BLOCK..]);
    (left, right)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::tdes_ecb_encrypt;

    fn key(scheme: KeyScheme, hex_text: &str) -> SecretKey {
        SecretKey::from_hex(scheme, hex_text).unwrap()
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    const RFC4493_KEY: &str = "2B7E151628AED2A6ABF7158809CF4F3C";
    const RFC4493_MSG: &str = "6BC1BEE22E409F96E93D7E117393172AAE2D8A571E03AC9C9EB76FAC45AF8E51\
                               30C81C46A35CE411E5FBC1191A0A52EFF69F2445DF4F9B17AD2B417BE66C3710";

    // RFC 4493 section 4, examples 1 to 4.
    #[test]
    fn aes_cmac_rfc4493_vectors() {
        let k = key(KeyScheme::Aes, RFC4493_KEY);
        let msg = unhex(RFC4493_MSG);
        for (len, mac) in [
            (0, "bb1d6929e95937287fa37d129b756746"),
            (16, "070a16b46b4d4144f79bdd9dd04a287c"),
            (40, "dfa66747de9ae63030ca32611497c827"),
            (64, "51f0bebf7e3b9d92fc49741779363cfe"),
        ] {
            assert_eq!(
                hex::encode(aes_cmac(&k, &msg[..len]).unwrap()),
                mac,
                "{len}"
            );
        }
    }

    // NIST SP 800-38B appendix D.2 and D.3, example with the empty message.
    #[test]
    fn aes_cmac_192_and_256_vectors() {
        let k192 = key(
            KeyScheme::Aes,
            "8E73B0F7DA0E6452C810F32B809079E562F8EAD2522C6B7B",
        );
        assert_eq!(
            hex::encode(aes_cmac(&k192, b"").unwrap()),
            "d17ddf46adaacde531cac483de7a9367"
        );
        let k256 = key(
            KeyScheme::Aes,
            "603DEB1015CA71BE2B73AEF0857D77811F352C073B6108D72D9810A30914DFF4",
        );
        assert_eq!(
            hex::encode(aes_cmac(&k256, b"").unwrap()),
            "028962f61b7bf89efc6b551f4667d983"
        );
    }

    #[test]
    fn aes_cmac_needs_an_aes_key() {
        let k = key(KeyScheme::Tdes, "0123456789ABCDEFFEDCBA9876543210");
        assert!(matches!(
            aes_cmac(&k, b"x"),
            Err(CryptoError::WrongScheme {
                expected: KeyScheme::Aes,
                ..
            })
        ));
    }

    // ICAO Doc 9303 part 11, appendix D.3: MAC over E_IFD with K_MAC.
    #[test]
    fn retail_mac_icao_9303_vector() {
        let k = key(KeyScheme::Tdes, "7962D9ECE03D1ACD4C76089DCE131543");
        let data = unhex("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2");
        let mac = retail_mac(&k, &data, MacPadding::Method2).unwrap();
        assert_eq!(hex::encode_upper(mac), "5F1448EEA8AD90A7");
    }

    #[test]
    fn retail_mac_padding_methods() {
        let k = key(KeyScheme::Tdes, "0123456789ABCDEFFEDCBA9876543210");
        let m1 = |d: &[u8]| retail_mac(&k, d, MacPadding::Method1).unwrap();
        let m2 = |d: &[u8]| retail_mac(&k, d, MacPadding::Method2).unwrap();
        // Method 1 adds nothing to whole blocks and zeros to the rest.
        assert_eq!(m1(b"12345"), m1(b"12345\0\0\0"));
        assert_ne!(m1(b"12345678"), m1(b"12345678\0\0\0\0\0\0\0\0"));
        // Empty data is one zero block under method 1.
        assert_eq!(m1(b""), m1(&[0; 8]));
        // Method 2 is method 1 over the data with 0x80 appended.
        for data in [&b""[..], b"1", b"1234567", b"12345678", b"123456789"] {
            let mut padded = data.to_vec();
            padded.push(0x80);
            assert_eq!(m2(data), m1(&padded), "{data:?}");
        }
        assert_ne!(m1(b"1234567"), m2(b"1234567"));
    }

    // With K1 = K2 the output transformation cancels to one more DES
    // encryption, i.e. plain CBC-MAC (ISO 9797-1 algorithm 1): an
    // independent check of the chaining.
    #[test]
    fn retail_mac_with_equal_halves_is_des_cbc_mac() {
        let k = key(KeyScheme::Tdes, "133457799BBCDFF1133457799BBCDFF1");
        let des = key(KeyScheme::Tdes, "133457799BBCDFF1");
        let data = unhex("0123456789ABCDEF1122334455667788");
        let b1 = tdes_ecb_encrypt(&des, &data[..8]).unwrap();
        let mut chained: Vec<u8> = b1.iter().zip(&data[8..]).map(|(a, b)| a ^ b).collect();
        chained = tdes_ecb_encrypt(&des, &chained).unwrap().to_vec();
        assert_eq!(
            retail_mac(&k, &data, MacPadding::Method1).unwrap().to_vec(),
            chained
        );
    }

    #[test]
    fn retail_mac_needs_a_double_length_tdes_key() {
        for hex_key in [
            "0123456789ABCDEF",
            "0123456789ABCDEFFEDCBA98765432100123456789ABCDEF",
        ] {
            let k = key(KeyScheme::Tdes, hex_key);
            let err = retail_mac(&k, b"data", MacPadding::Method2).unwrap_err();
            assert!(matches!(err, CryptoError::KeyUnsuitable { .. }), "{err:?}");
            assert!(err.to_string().contains("double-length (16-byte)"), "{err}");
        }
        let aes = key(KeyScheme::Aes, RFC4493_KEY);
        assert!(matches!(
            retail_mac(&aes, b"data", MacPadding::Method2),
            Err(CryptoError::WrongScheme { .. })
        ));
    }

    // Worked example with every intermediate value in solo123/pgate,
    // test/integration/pos_mac_test.rb (also in solo123/pgate_model,
    // test/kaifu_test/encrypt_test.rb).
    #[test]
    fn cup_pos_mac_published_vector() {
        let mak = key(KeyScheme::Tdes, "2222222222222222");
        let data = unhex("1234567890ABCDEFABCDEF1234567890");
        assert_eq!(&cup_pos_mac(&mak, &data).unwrap(), b"E267B6E2");
        // The steps the example spells out.
        let (left, right) = upper_hex(&[0xB9, 0xF9, 0xB9, 0x6A, 0xA4, 0xFD, 0xB5, 0x7F]);
        assert_eq!(&left, b"B9F9B96A");
        assert_eq!(&right, b"A4FDB57F");
        let e1 = tdes_ecb_encrypt(&mak, &left).unwrap();
        assert_eq!(hex::encode_upper(&*e1), "9FDE90A34CF73B2E");
        // A double-length MAK with equal halves is the same single DES key.
        let mak2 = key(KeyScheme::Tdes, "22222222222222222222222222222222");
        assert_eq!(&cup_pos_mac(&mak2, &data).unwrap(), b"E267B6E2");
    }

    #[test]
    fn cup_pos_mac_pads_with_zeros_only_when_needed() {
        let mak = key(KeyScheme::Tdes, "0123456789ABCDEFFEDCBA9876543210");
        let mac = |d: &[u8]| cup_pos_mac(&mak, d).unwrap();
        assert_eq!(mac(b"123"), mac(b"123\0\0\0\0\0"));
        assert_eq!(mac(b""), mac(&[0; 8]));
        assert_ne!(mac(b"12345678"), mac(b"12345679"));
        let out = mac(b"anything at all");
        assert!(
            out.iter()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c))
        );
        let aes = key(KeyScheme::Aes, RFC4493_KEY);
        assert!(matches!(
            cup_pos_mac(&aes, b"x"),
            Err(CryptoError::WrongScheme { .. })
        ));
    }

    #[test]
    fn padding_numbers() {
        assert_eq!(MacPadding::try_from(1).unwrap(), MacPadding::Method1);
        assert_eq!(MacPadding::try_from(2).unwrap().number(), 2);
        for n in [0u8, 3, 9] {
            assert_eq!(
                MacPadding::try_from(n).unwrap_err(),
                CryptoError::MacPadding(n)
            );
        }
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(
            MacAlgorithm::from_name("retail", None).unwrap(),
            MacAlgorithm::Retail(MacPadding::Method2)
        );
        assert_eq!(
            MacAlgorithm::from_name("retail", Some(1)).unwrap(),
            MacAlgorithm::Retail(MacPadding::Method1)
        );
        assert_eq!(
            MacAlgorithm::from_name("retail", Some(3)).unwrap_err(),
            CryptoError::MacPadding(3)
        );
        assert_eq!(
            MacAlgorithm::from_name("cmac", None).unwrap(),
            MacAlgorithm::Cmac
        );
        assert_eq!(
            MacAlgorithm::from_name("cup", None).unwrap(),
            MacAlgorithm::Cup
        );
        assert_eq!(
            MacAlgorithm::from_name("cmac", Some(2)).unwrap_err(),
            CryptoError::MacPaddingNotApplicable("cmac")
        );
        assert_eq!(
            MacAlgorithm::from_name("cup", Some(1)).unwrap_err(),
            CryptoError::MacPaddingNotApplicable("cup")
        );
        assert_eq!(
            MacAlgorithm::from_name("x9.19", None).unwrap_err(),
            CryptoError::UnknownMacAlgorithm("x9.19".into())
        );
        for alg in [
            MacAlgorithm::Retail(MacPadding::Method1),
            MacAlgorithm::Cmac,
            MacAlgorithm::Cup,
        ] {
            let padding = match alg {
                MacAlgorithm::Retail(p) => Some(p.number()),
                _ => None,
            };
            assert_eq!(MacAlgorithm::from_name(alg.name(), padding).unwrap(), alg);
        }
        assert_eq!(MacAlgorithm::Cup.required_scheme(), KeyScheme::Tdes);
        assert_eq!(MacAlgorithm::Cmac.required_scheme(), KeyScheme::Aes);
        assert_eq!(
            MacAlgorithm::Retail(MacPadding::Method1).required_scheme(),
            KeyScheme::Tdes
        );
    }

    #[test]
    fn compute_yields_the_field_64_bytes() {
        let aes = key(KeyScheme::Aes, RFC4493_KEY);
        let tdes = key(KeyScheme::Tdes, "7962D9ECE03D1ACD4C76089DCE131543");
        let cup = key(KeyScheme::Tdes, "2222222222222222");
        let msg = unhex(RFC4493_MSG);
        assert_eq!(
            hex::encode(MacAlgorithm::Cmac.compute(&aes, &msg[..16]).unwrap()),
            "070a16b46b4d4144"
        );
        let icao = unhex("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2");
        assert_eq!(
            hex::encode_upper(
                MacAlgorithm::Retail(MacPadding::Method2)
                    .compute(&tdes, &icao)
                    .unwrap()
            ),
            "5F1448EEA8AD90A7"
        );
        assert_eq!(
            &MacAlgorithm::Cup
                .compute(&cup, &unhex("1234567890ABCDEFABCDEF1234567890"))
                .unwrap(),
            b"E267B6E2"
        );
        assert!(matches!(
            MacAlgorithm::Cmac.compute(&tdes, b"x"),
            Err(CryptoError::WrongScheme { .. })
        ));
    }

    #[test]
    fn verify_accepts_only_the_right_mac() {
        let tdes = key(KeyScheme::Tdes, "0123456789ABCDEFFEDCBA9876543210");
        let aes = key(KeyScheme::Aes, RFC4493_KEY);
        for (alg, k) in [
            (MacAlgorithm::Retail(MacPadding::Method1), &tdes),
            (MacAlgorithm::Retail(MacPadding::Method2), &tdes),
            (MacAlgorithm::Cup, &tdes),
            (MacAlgorithm::Cmac, &aes),
        ] {
            let data = b"0200 a message from the MTI to field 63";
            let mac = alg.compute(k, data).unwrap();
            assert!(alg.verify(k, data, &mac).unwrap(), "{alg:?}");
            for i in 0..8 {
                let mut bad = mac;
                bad[i] ^= 0x01;
                assert!(!alg.verify(k, data, &bad).unwrap(), "{alg:?} byte {i}");
            }
            assert!(!alg.verify(k, b"0200 another message", &mac).unwrap());
            assert_eq!(
                alg.verify(k, data, &mac[..4]).unwrap_err(),
                CryptoError::MacLength { len: 4 }
            );
        }
    }
}
