//! The DES/TDES and AES block ciphers, picked by key length, behind one
//! small interface that works in place on caller-owned (zeroizing) blocks.
//!
//! The RustCrypto ciphers are built with their `zeroize` feature, so the
//! expanded key schedules are wiped when these values drop.

use aes::{Aes128, Aes192, Aes256};
use cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use cmac::Mac;
use des::{Des, TdesEde2, TdesEde3};

/// DES block size in bytes.
pub(crate) const DES_BLOCK: usize = 8;
/// AES block size in bytes.
pub(crate) const AES_BLOCK: usize = 16;

/// Single DES (8-byte key), two-key or three-key TDES (16/24-byte key).
///
/// A single-length key runs as plain DES, which is what TDES with
/// K1 = K2 = K3 reduces to; hosts that still use single-length MAC keys
/// (the UnionPay POS MAC, for one) rely on that.
pub(crate) enum TdesCipher {
    Single(Des),
    Double(TdesEde2),
    Triple(TdesEde3),
}

impl TdesCipher {
    /// `None` when `key` is not 8, 16 or 24 bytes.
    pub(crate) fn new(key: &[u8]) -> Option<TdesCipher> {
        match key.len() {
            8 => Des::new_from_slice(key).ok().map(TdesCipher::Single),
            16 => TdesEde2::new_from_slice(key).ok().map(TdesCipher::Double),
            24 => TdesEde3::new_from_slice(key).ok().map(TdesCipher::Triple),
            _ => None,
        }
    }

    pub(crate) fn encrypt_block(&self, block: &mut [u8; DES_BLOCK]) {
        let block: &mut Array<u8, _> = block.into();
        match self {
            TdesCipher::Single(c) => c.encrypt_block(block),
            TdesCipher::Double(c) => c.encrypt_block(block),
            TdesCipher::Triple(c) => c.encrypt_block(block),
        }
    }

    pub(crate) fn decrypt_block(&self, block: &mut [u8; DES_BLOCK]) {
        let block: &mut Array<u8, _> = block.into();
        match self {
            TdesCipher::Single(c) => c.decrypt_block(block),
            TdesCipher::Double(c) => c.decrypt_block(block),
            TdesCipher::Triple(c) => c.decrypt_block(block),
        }
    }
}

/// AES-128, AES-192 or AES-256 by key length.
pub(crate) enum AesCipher {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl AesCipher {
    /// `None` when `key` is not 16, 24 or 32 bytes.
    pub(crate) fn new(key: &[u8]) -> Option<AesCipher> {
        match key.len() {
            16 => Aes128::new_from_slice(key).ok().map(AesCipher::A128),
            24 => Aes192::new_from_slice(key).ok().map(AesCipher::A192),
            32 => Aes256::new_from_slice(key).ok().map(AesCipher::A256),
            _ => None,
        }
    }

    pub(crate) fn encrypt_block(&self, block: &mut [u8; AES_BLOCK]) {
        let block: &mut Array<u8, _> = block.into();
        match self {
            AesCipher::A128(c) => c.encrypt_block(block),
            AesCipher::A192(c) => c.encrypt_block(block),
            AesCipher::A256(c) => c.encrypt_block(block),
        }
    }

    pub(crate) fn decrypt_block(&self, block: &mut [u8; AES_BLOCK]) {
        let block: &mut Array<u8, _> = block.into();
        match self {
            AesCipher::A128(c) => c.decrypt_block(block),
            AesCipher::A192(c) => c.decrypt_block(block),
            AesCipher::A256(c) => c.decrypt_block(block),
        }
    }
}

/// XORs `other` into `acc`, byte by byte.
pub(crate) fn xor_into<const N: usize>(acc: &mut [u8; N], other: &[u8; N]) {
    for (a, b) in acc.iter_mut().zip(other) {
        *a ^= b;
    }
}

/// AES-CMAC (NIST SP 800-38B) of `data` under an AES key of any length;
/// `None` when `key` is not 16, 24 or 32 bytes.
pub(crate) fn aes_cmac(key: &[u8], data: &[u8]) -> Option<[u8; AES_BLOCK]> {
    fn run<C: cmac::block_api::CmacCipher + KeyInit>(
        key: &[u8],
        data: &[u8],
    ) -> Option<[u8; AES_BLOCK]> {
        let mut mac = <cmac::Cmac<C> as KeyInit>::new_from_slice(key).ok()?;
        mac.update(data);
        mac.finalize().into_bytes().as_slice().try_into().ok()
    }
    match key.len() {
        16 => run::<Aes128>(key, data),
        24 => run::<Aes192>(key, data),
        32 => run::<Aes256>(key, data),
        _ => None,
    }
}
