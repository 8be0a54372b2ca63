//! The small encoding units the codec is built from: BCD packing, EBCDIC
//! (code page 500) translation and the ISO 8583 character classes.
//!
//! Each is a pure function over bytes so it can be tested on its own; the
//! codec combines them as a dialect file says.

use super::spec::{DataKind, Pad};

/// EBCDIC (IBM code page 500) to ASCII for the printable ASCII range; 0 marks
/// a byte with no printable ASCII equivalent. Generated from Python's `cp500`
/// codec; `tests::ebcdic_tables_agree` checks the two tables are inverse.
const EBCDIC_TO_ASCII: [u8; 256] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5B, 0x2E, 0x3C, 0x28, 0x2B, 0x21,
    0x26, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5D, 0x24, 0x2A, 0x29, 0x3B, 0x5E,
    0x2D, 0x2F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x25, 0x5F, 0x3E, 0x3F,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x60, 0x3A, 0x23, 0x40, 0x27, 0x3D, 0x22,
    0x00, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x70, 0x71, 0x72, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x7E, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7C, 0x00, 0x00, 0x00, 0x00,
    0x7B, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x7D, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F, 0x50, 0x51, 0x52, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x5C, 0x00, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// ASCII to EBCDIC (code page 500) for 0x00–0x7F; 0 where ASCII is not printable.
const ASCII_TO_EBCDIC: [u8; 128] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x40, 0x4F, 0x7F, 0x7B, 0x5B, 0x6C, 0x50, 0x7D, 0x4D, 0x5D, 0x5C, 0x4E, 0x6B, 0x60, 0x4B, 0x61,
    0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0x7A, 0x5E, 0x4C, 0x7E, 0x6E, 0x6F,
    0x7C, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6,
    0xD7, 0xD8, 0xD9, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0x4A, 0xE0, 0x5A, 0x5F, 0x6D,
    0x79, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96,
    0x97, 0x98, 0x99, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xC0, 0xBB, 0xD0, 0xA1, 0x00,
];

/// Translates printable ASCII to EBCDIC; `Err(index)` names the first byte
/// that has no EBCDIC equivalent here.
pub fn ascii_to_ebcdic(ascii: &[u8], out: &mut Vec<u8>) -> Result<(), usize> {
    for (i, &b) in ascii.iter().enumerate() {
        let e = if b < 0x80 {
            ASCII_TO_EBCDIC[usize::from(b)]
        } else {
            0
        };
        if e == 0 {
            return Err(i);
        }
        out.push(e);
    }
    Ok(())
}

/// Translates EBCDIC to printable ASCII; `Err(index)` names the first byte
/// that is not a printable character.
pub fn ebcdic_to_ascii(ebcdic: &[u8], out: &mut String) -> Result<(), usize> {
    for (i, &b) in ebcdic.iter().enumerate() {
        let a = EBCDIC_TO_ASCII[usize::from(b)];
        if a == 0 {
            return Err(i);
        }
        out.push(char::from(a));
    }
    Ok(())
}

/// The number of bytes `digits` nibbles take when packed.
pub fn bcd_len(digits: usize) -> usize {
    digits.div_ceil(2)
}

/// Maps a character of a BCD-packed value to its nibble: digits as
/// themselves, the track 2 separator `=` as `D`.
fn nibble_of(c: u8, allow_separator: bool) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'=' if allow_separator => Some(0xD),
        _ => None,
    }
}

/// Packs digits (and `=` as nibble D when `allow_separator`) into BCD.
/// An odd count gets one pad nibble on the side `pad` says. `Err(index)`
/// names the first character that cannot be packed.
pub fn pack_bcd(
    text: &[u8],
    pad: Option<Pad>,
    allow_separator: bool,
    out: &mut Vec<u8>,
) -> Result<(), usize> {
    let odd = text.len() % 2 == 1;
    let (pad_left, pad_nibble) = match pad {
        Some(p) if odd => (p.is_left(), p.nibble().unwrap_or(0)),
        _ => (false, 0),
    };
    let mut nibbles = text
        .iter()
        .enumerate()
        .map(|(i, &c)| nibble_of(c, allow_separator).ok_or(i));
    let mut pending: Option<u8> = if odd && pad_left {
        Some(pad_nibble)
    } else {
        None
    };
    for n in &mut nibbles {
        let n = n?;
        match pending.take() {
            Some(hi) => out.push((hi << 4) | n),
            None => pending = Some(n),
        }
    }
    if let Some(hi) = pending {
        out.push((hi << 4) | pad_nibble);
    }
    Ok(())
}

/// What went wrong unpacking BCD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BcdError {
    /// A nibble that is not a digit (or separator) at this digit position.
    BadNibble { position: usize, nibble: u8 },
    /// The pad nibble is not the one the dialect specifies.
    BadPad { found: u8, expected: u8 },
}

/// Unpacks `digits` nibbles from `bytes` (which must be `bcd_len(digits)`
/// long), dropping the pad nibble of an odd count and checking it.
pub fn unpack_bcd(
    bytes: &[u8],
    digits: usize,
    pad: Option<Pad>,
    allow_separator: bool,
    out: &mut String,
) -> Result<(), BcdError> {
    let odd = digits % 2 == 1;
    let pad_left = odd && pad.is_some_and(|p| p.is_left());
    let expected_pad = pad.and_then(|p| p.nibble()).unwrap_or(0);
    let total = bytes.len() * 2;
    let (start, end) = if pad_left { (1, total) } else { (0, digits) };
    for i in 0..total {
        let byte = bytes[i / 2];
        let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0F };
        if i < start || i >= end {
            if odd && nibble != expected_pad {
                return Err(BcdError::BadPad {
                    found: nibble,
                    expected: expected_pad,
                });
            }
            continue;
        }
        let c = match nibble {
            0..=9 => b'0' + nibble,
            0xD if allow_separator => b'=',
            _ => {
                return Err(BcdError::BadNibble {
                    position: i - start,
                    nibble,
                });
            }
        };
        out.push(char::from(c));
    }
    Ok(())
}

/// Whether `c` belongs to the character class of an ISO 8583 data kind.
/// `s` (special) is every printable ASCII character that is neither a letter
/// nor a digit, space included.
pub fn allowed(kind: DataKind, c: u8, position: usize) -> bool {
    let alpha = c.is_ascii_alphabetic();
    let digit = c.is_ascii_digit();
    let special = (0x20..=0x7E).contains(&c) && !alpha && !digit;
    match kind {
        DataKind::A => alpha,
        DataKind::N => digit,
        DataKind::S => special,
        DataKind::An => alpha || digit,
        DataKind::As => alpha || special,
        DataKind::Ns => digit || special,
        DataKind::Ans => (0x20..=0x7E).contains(&c),
        DataKind::Z => digit || c == b'=' || c == b'D',
        DataKind::XN => {
            if position == 0 {
                c == b'C' || c == b'D'
            } else {
                digit
            }
        }
        DataKind::B => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ebcdic_tables_agree() {
        for a in 0x20u8..=0x7E {
            let e = ASCII_TO_EBCDIC[usize::from(a)];
            assert_ne!(e, 0, "ASCII {a:#x} has no EBCDIC code");
            assert_eq!(EBCDIC_TO_ASCII[usize::from(e)], a);
        }
        let mut out = Vec::new();
        ascii_to_ebcdic(b"Hello 123", &mut out).unwrap();
        assert_eq!(out, [0xC8, 0x85, 0x93, 0x93, 0x96, 0x40, 0xF1, 0xF2, 0xF3]);
        assert_eq!(ascii_to_ebcdic(b"ok\n", &mut Vec::new()), Err(2));
        assert_eq!(ebcdic_to_ascii(&[0xC1, 0x00], &mut String::new()), Err(1));
    }

    #[test]
    fn bcd_packs_with_pads() {
        let mut out = Vec::new();
        pack_bcd(b"1234", None, false, &mut out).unwrap();
        assert_eq!(out, [0x12, 0x34]);
        out.clear();
        pack_bcd(b"123", Some(Pad::LeftZero), false, &mut out).unwrap();
        assert_eq!(out, [0x01, 0x23]);
        out.clear();
        pack_bcd(b"123", Some(Pad::RightF), false, &mut out).unwrap();
        assert_eq!(out, [0x12, 0x3F]);
        out.clear();
        pack_bcd(b"12=34", Some(Pad::RightZero), true, &mut out).unwrap();
        assert_eq!(out, [0x12, 0xD3, 0x40]);
        assert_eq!(pack_bcd(b"12=34", None, false, &mut Vec::new()), Err(2));
        assert_eq!(pack_bcd(b"1a", None, false, &mut Vec::new()), Err(1));
    }

    #[test]
    fn bcd_unpacks_and_checks_pads() {
        let mut s = String::new();
        unpack_bcd(&[0x01, 0x23], 3, Some(Pad::LeftZero), false, &mut s).unwrap();
        assert_eq!(s, "123");
        s.clear();
        unpack_bcd(&[0x12, 0xD3, 0x40], 5, Some(Pad::RightZero), true, &mut s).unwrap();
        assert_eq!(s, "12=34");
        assert_eq!(
            unpack_bcd(
                &[0x12, 0x3F],
                3,
                Some(Pad::RightZero),
                false,
                &mut String::new()
            ),
            Err(BcdError::BadPad {
                found: 0xF,
                expected: 0
            })
        );
        assert_eq!(
            unpack_bcd(&[0x1A], 2, None, false, &mut String::new()),
            Err(BcdError::BadNibble {
                position: 1,
                nibble: 0xA
            })
        );
        assert_eq!(
            unpack_bcd(&[0xD1], 2, None, false, &mut String::new()),
            Err(BcdError::BadNibble {
                position: 0,
                nibble: 0xD
            })
        );
    }

    #[test]
    fn character_classes() {
        assert!(allowed(DataKind::N, b'7', 0) && !allowed(DataKind::N, b'A', 0));
        assert!(allowed(DataKind::An, b'Z', 0) && !allowed(DataKind::An, b' ', 0));
        assert!(allowed(DataKind::Ans, b' ', 0) && !allowed(DataKind::Ans, 0x7F, 0));
        assert!(allowed(DataKind::Ans, b'~', 0) && !allowed(DataKind::Ans, 0xE4, 0));
        assert!(allowed(DataKind::XN, b'C', 0) && !allowed(DataKind::XN, b'C', 1));
        assert!(allowed(DataKind::Z, b'=', 3) && !allowed(DataKind::Z, b'^', 3));
        assert!(allowed(DataKind::S, b'#', 0) && !allowed(DataKind::S, b'a', 0));
    }
}
