//! Randomness for keys and PIN block fill, straight from the operating
//! system: a terminal generates few random bytes, so there is no reason to
//! keep a user-space generator (and its state) in memory.

use rand::TryRng;
use rand::rngs::SysRng;

use super::CryptoError;

/// Fills `dest` with bytes from the operating system's generator.
pub(crate) fn fill(dest: &mut [u8]) -> Result<(), CryptoError> {
    SysRng.try_fill_bytes(dest).map_err(|_| CryptoError::Random)
}

/// One nibble drawn uniformly from `low..=0xF`, as ISO 9564 asks for the
/// random fill of formats 3 (A to F) and 4 (0 to F).
pub(crate) fn nibble_from(low: u8) -> Result<u8, CryptoError> {
    debug_assert!(low <= 0xF);
    let span = 16 - low;
    // Rejection sampling: taking `byte % span` directly would favour the
    // first few values whenever `span` does not divide 256.
    let limit = 256 - (256 % u16::from(span));
    loop {
        let mut byte = [0u8; 1];
        fill(&mut byte)?;
        if u16::from(byte[0]) < limit {
            return Ok(low + byte[0] % span);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nibbles_stay_in_range_and_cover_it() {
        let mut seen = [false; 16];
        for _ in 0..600 {
            let n = nibble_from(0xA).unwrap();
            assert!((0xA..=0xF).contains(&n), "nibble {n:X} outside A..F");
            seen[usize::from(n)] = true;
        }
        assert!(
            seen[0xA..=0xF].iter().all(|s| *s),
            "not every A..F nibble drawn"
        );
    }

    #[test]
    fn fill_changes_the_buffer() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        fill(&mut a).unwrap();
        fill(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
