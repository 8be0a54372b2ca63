//! The little cryptography an EMV card does, on RustCrypto's DES: EMV
//! option A master key derivation, the common session key, and ISO/IEC
//! 9797-1 MAC algorithm 3 for application cryptograms.
//!
//! Written here rather than taken from `till-pay` on purpose: `till-hal`
//! does not depend on `till-pay`, and the card side and the issuer side
//! being separate implementations is what lets the pyemv cross-checks
//! catch a mistake in either.

use des::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use des::{Des, TdesEde2};

/// ISO/IEC 9797-1 padding methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Padding {
    /// Zeros up to a whole block (Visa).
    Method1,
    /// `80` then zeros (EMV).
    Method2,
}

/// Two-key TDES-ECB encryption of whole blocks.
pub(crate) fn tdes_ecb(key: &[u8; 16], data: &mut [u8]) {
    let cipher = TdesEde2::new(key.into());
    for block in data.as_chunks_mut::<8>().0 {
        cipher.encrypt_block(block.into());
    }
}

/// Odd parity in every byte.
fn odd_parity(key: &mut [u8]) {
    for b in key {
        if b.count_ones() % 2 == 0 {
            *b ^= 1;
        }
    }
}

/// EMV 4.4 Book 2 A1.4.1, option A: the ICC master key from the issuer
/// master key, the PAN and the PAN sequence number.
pub(crate) fn icc_master_key(imk: &[u8; 16], pan: &str, pan_sequence: u8) -> [u8; 16] {
    let digits = format!("{pan}{pan_sequence:02}");
    let digits = format!("{:0>16}", &digits[digits.len().saturating_sub(16)..]);
    let mut block = [0u8; 16];
    for (i, pair) in digits.as_bytes().chunks(2).enumerate() {
        let hi = pair[0].wrapping_sub(b'0') & 0x0F;
        let lo = pair[1].wrapping_sub(b'0') & 0x0F;
        block[i] = (hi << 4) | lo;
        block[8 + i] = !block[i];
    }
    tdes_ecb(imk, &mut block);
    odd_parity(&mut block);
    block
}

/// EMV 4.4 Book 2 A1.3.1, the common session key from R = ATC ‖ 00×6.
pub(crate) fn common_session_key(icc_mk: &[u8; 16], atc: u16) -> [u8; 16] {
    let mut block = [0u8; 16];
    block[..2].copy_from_slice(&atc.to_be_bytes());
    block[2] = 0xF0;
    block[8..10].copy_from_slice(&atc.to_be_bytes());
    block[10] = 0x0F;
    tdes_ecb(icc_mk, &mut block);
    odd_parity(&mut block);
    block
}

/// ISO/IEC 9797-1 MAC algorithm 3 with a double-length key: single DES
/// CBC under the left half, then decrypt under the right half and encrypt
/// under the left.
pub(crate) fn mac_algorithm_3(key: &[u8; 16], data: &[u8], padding: Padding) -> [u8; 8] {
    let mut padded = data.to_vec();
    if padding == Padding::Method2 {
        padded.push(0x80);
    }
    while padded.is_empty() || !padded.len().is_multiple_of(8) {
        padded.push(0);
    }
    let (mut left_key, mut right_key) = ([0u8; 8], [0u8; 8]);
    left_key.copy_from_slice(&key[..8]);
    right_key.copy_from_slice(&key[8..]);
    let left = Des::new((&left_key).into());
    let right = Des::new((&right_key).into());
    let mut state = [0u8; 8];
    for block in padded.chunks_exact(8) {
        for (s, d) in state.iter_mut().zip(block) {
            *s ^= d;
        }
        left.encrypt_block((&mut state).into());
    }
    right.decrypt_block((&mut state).into());
    left.encrypt_block((&mut state).into());
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// The example values in pyemv's documentation.
    #[test]
    fn published_examples() {
        let imk = h::<16>("0123456789ABCDEFFEDCBA9876543210");
        assert_eq!(
            icc_master_key(&imk, "99012345678901234", 45),
            h::<16>("67F8292358083E5EA7AB7FDA58D53B6B")
        );
        assert_eq!(
            icc_master_key(&imk, "12345678901234567", 1),
            h::<16>("73AD54688CEF2934B0979857E3C719F1")
        );
        assert_eq!(
            common_session_key(&imk, 0x001C),
            h::<16>("E9FB384AF807B940FEDCEA613461B0C4")
        );
        let sk = h::<16>("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB");
        let data = hex::decode(concat!(
            "000000002000", // 9F02
            "000000000000", // 9F03
            "0124",         // 9F1A
            "0000008000",   // 95
            "0124",         // 5F2A
            "110309",       // 9A
            "00",           // 9C
            "3804823E",     // 9F37
            "5800",         // 82
            "0001",         // 9F36
        ))
        .unwrap();
        assert_eq!(
            mac_algorithm_3(&sk, &data, Padding::Method2),
            h::<8>("3B76CF10FECD8789")
        );
        let sk = h::<16>("29B33180E567CE38EA4CBC9D753B0E61");
        let data = h::<16>("0123456789ABCDEF0123456789ABCDEF");
        assert_eq!(
            mac_algorithm_3(&sk, &data, Padding::Method2),
            h::<8>("FA624250B008B59A")
        );
    }
}
