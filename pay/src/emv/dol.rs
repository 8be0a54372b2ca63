//! Data object lists (EMV 4.4 Book 3, 5.4): the PDOL and CDOL1 a card
//! sends to say which terminal data it wants, in which order and length.
//!
//! A DOL is a list of tag and length pairs without values. Filling it
//! concatenates the terminal's values, each fitted to the length the card
//! asked for by the rules of Book 3 5.4: numeric (`n`) values lose or gain
//! digits on the left, compressed numeric (`cn`) values are padded with
//! `F` on the right, everything else is cut or padded with zeros on the
//! right, and data the terminal does not have (or a constructed tag) is
//! sent as zeros.
//!
//! ```
//! use till_pay::emv::dol::{self, DolEntry};
//! use till_pay::emv::tlv::Tag;
//!
//! // Amount (n12, 6 bytes) and unpredictable number (4 bytes).
//! let pdol = dol::parse(&[0x9F, 0x02, 0x06, 0x9F, 0x37, 0x04])?;
//! assert_eq!(pdol, [DolEntry { tag: Tag::new(0x9F02), len: 6 }, DolEntry { tag: Tag::new(0x9F37), len: 4 }]);
//! let data = dol::fill(&pdol, |tag| match tag.raw() {
//!     0x9F02 => Some(&[0x00, 0x00, 0x00, 0x00, 0x12, 0x34][..]),
//!     _ => None,
//! });
//! assert_eq!(data, [0, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 0]);
//! # Ok::<(), till_pay::emv::tlv::TlvError>(())
//! ```

use super::tlv::{Tag, TlvError, read_tag};

/// One entry of a DOL: the tag the card asks for and how many bytes it
/// wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DolEntry {
    /// The data object asked for.
    pub tag: Tag,
    /// Its length in the filled data, in bytes.
    pub len: usize,
}

/// How a data element is formatted, which decides how it is fitted to a
/// DOL entry's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    /// `n`: BCD digits, right-justified; fitted on the left.
    Numeric,
    /// `cn`: BCD digits, left-justified, padded with `F`.
    CompressedNumeric,
    /// Anything else (`b`, `an`, `ans`): fitted on the right with zeros.
    Other,
}

impl DataFormat {
    /// The format of the EMV data elements whose format changes how they
    /// are fitted; anything not listed is [`DataFormat::Other`].
    pub fn of(tag: Tag) -> DataFormat {
        match tag.raw() {
            // Amounts, currency and country codes, dates and times,
            // transaction type and sequence counter, PAN sequence number,
            // merchant category code.
            0x9F02 | 0x9F03 | 0x5F2A | 0x5F36 | 0x9F1A | 0x9A | 0x9C | 0x9F21 | 0x9F41 | 0x5F24
            | 0x5F25 | 0x5F34 | 0x9F15 | 0x9F42 | 0x9F44 | 0x5F28 | 0x9F3C | 0x9F3D => {
                DataFormat::Numeric
            }
            // Application PAN, terminal-side track data forms.
            0x5A | 0x9F20 => DataFormat::CompressedNumeric,
            _ => DataFormat::Other,
        }
    }
}

/// Parses a DOL. Lengths take one byte (short form), as in every DOL EMV
/// defines; the list must end exactly at the end of `data`.
pub fn parse(data: &[u8]) -> Result<Vec<DolEntry>, TlvError> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let (tag, after) = read_tag(data, offset)?;
        let Some(&len) = data.get(after) else {
            return Err(TlvError::Truncated {
                offset: after,
                part: "length",
                needed: 1,
                available: 0,
            });
        };
        if len >= 0x80 {
            return Err(TlvError::BadLength {
                offset: after,
                reason: "a DOL entry's length is a single byte below 80",
            });
        }
        out.push(DolEntry {
            tag,
            len: usize::from(len),
        });
        offset = after + 1;
    }
    Ok(out)
}

/// The total length of the data a DOL asks for.
pub fn data_len(entries: &[DolEntry]) -> usize {
    entries.iter().map(|e| e.len).sum()
}

/// Fills a DOL from `lookup` (the value of a tag, or `None` when the
/// terminal does not have it).
pub fn fill<'a>(entries: &[DolEntry], lookup: impl Fn(Tag) -> Option<&'a [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(data_len(entries));
    for entry in entries {
        let value = if entry.tag.is_constructed() {
            None
        } else {
            lookup(entry.tag)
        };
        match value {
            Some(v) => fit(&mut out, v, entry.len, DataFormat::of(entry.tag)),
            None => out.resize(out.len() + entry.len, 0),
        }
    }
    out
}

/// Appends `value` fitted to `len` bytes.
fn fit(out: &mut Vec<u8>, value: &[u8], len: usize, format: DataFormat) {
    use std::cmp::Ordering;
    match (value.len().cmp(&len), format) {
        (Ordering::Equal, _) => out.extend_from_slice(value),
        (Ordering::Greater, DataFormat::Numeric) => {
            out.extend_from_slice(&value[value.len() - len..]);
        }
        (Ordering::Greater, _) => out.extend_from_slice(&value[..len]),
        (Ordering::Less, DataFormat::Numeric) => {
            out.resize(out.len() + len - value.len(), 0);
            out.extend_from_slice(value);
        }
        (Ordering::Less, DataFormat::CompressedNumeric) => {
            out.extend_from_slice(value);
            out.resize(out.len() + len - value.len(), 0xFF);
        }
        (Ordering::Less, DataFormat::Other) => {
            out.extend_from_slice(value);
            out.resize(out.len() + len - value.len(), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_the_visa_pdol() {
        let pdol = hex::decode("9F66049F02069F03069F1A0295055F2A029A039C019F3704").unwrap();
        let entries = parse(&pdol).unwrap();
        let tags: Vec<String> = entries.iter().map(|e| e.tag.to_string()).collect();
        assert_eq!(
            tags,
            [
                "9F66", "9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37"
            ]
        );
        assert_eq!(data_len(&entries), 33);
    }

    #[test]
    fn malformed_dols_are_errors() {
        for bad in ["9F", "9F02", "9F0281", "00", "9F0206FF"] {
            assert!(parse(&hex::decode(bad).unwrap()).is_err(), "{bad}");
        }
        assert_eq!(parse(&[]).unwrap(), []);
    }

    #[test]
    fn values_are_fitted_by_format() {
        let entry = |tag, len| DolEntry {
            tag: Tag::new(tag),
            len,
        };
        let values = |tag: Tag| -> Option<&'static [u8]> {
            match tag.raw() {
                0x9F02 => Some(&[0x00, 0x00, 0x00, 0x01, 0x23, 0x45]),
                0x5A => Some(&[0x47, 0x61, 0x73, 0x90]),
                0x9F4E => Some(b"SHOP"),
                _ => None,
            }
        };
        // Numeric: leftmost bytes dropped, or zeros added on the left.
        assert_eq!(fill(&[entry(0x9F02, 4)], values), [0x00, 0x01, 0x23, 0x45]);
        assert_eq!(
            fill(&[entry(0x9F02, 7)], values),
            [0, 0, 0, 0, 0x01, 0x23, 0x45]
        );
        // Compressed numeric: padded with FF on the right.
        assert_eq!(
            fill(&[entry(0x5A, 6)], values),
            [0x47, 0x61, 0x73, 0x90, 0xFF, 0xFF]
        );
        assert_eq!(fill(&[entry(0x5A, 2)], values), [0x47, 0x61]);
        // Other formats: cut or zero padded on the right.
        assert_eq!(fill(&[entry(0x9F4E, 2)], values), *b"SH");
        assert_eq!(fill(&[entry(0x9F4E, 6)], values), *b"SHOP\0\0");
        // Unknown and constructed tags are zeros.
        assert_eq!(fill(&[entry(0x9F7C, 3)], values), [0, 0, 0]);
        assert_eq!(fill(&[entry(0x70, 2)], values), [0, 0]);
    }

    proptest! {
        #[test]
        fn filled_data_has_the_asked_length(
            raw in prop::collection::vec(any::<u8>(), 0..64),
            value in prop::collection::vec(any::<u8>(), 0..20),
        ) {
            if let Ok(entries) = parse(&raw) {
                let data = fill(&entries, |_| Some(&value[..]));
                prop_assert_eq!(data.len(), data_len(&entries));
            }
        }
    }
}
