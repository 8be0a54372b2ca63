//! BER-TLV as EMV uses it (EMV 4.4 Book 3, Annex B): a strict parser and a
//! builder.
//!
//! The parser takes bytes from a card, which Till does not trust, so it
//! refuses anything it cannot read with certainty and says where:
//!
//! - tags of one to three bytes ([`MAX_TAG_LEN`]); a byte `00` or `FF`
//!   where a tag should start (EMV lets cards pad with them, but no card
//!   Till reads needs it and accepting them hides corruption), a
//!   continuation that runs past the end, or a first subsequent byte of
//!   `00` or `80` (an ISO/IEC 8825-1 violation) are errors;
//! - lengths in the short form or the long form with one to three length
//!   bytes (`81`, `82`, `83`); the indefinite form `80` and longer length
//!   fields are errors, as is a length that runs past its parent;
//! - constructed objects (bit 6 of the first tag byte set) must hold a
//!   whole sequence of objects, at most [`MAX_DEPTH`] levels deep;
//! - [`parse_one`] refuses trailing bytes after the object.
//!
//! Errors carry offsets and tags, never values: a value may be a card
//! number.
//!
//! ```
//! use till_pay::emv::tlv::{self, Tag, Tlv};
//!
//! let record = Tlv::constructed(
//!     Tag::new(0x70),
//!     vec![Tlv::primitive(Tag::new(0x5F24), vec![0x49, 0x12, 0x31])?],
//! )?;
//! let bytes = record.encode();
//! assert_eq!(bytes, [0x70, 0x06, 0x5F, 0x24, 0x03, 0x49, 0x12, 0x31]);
//! assert_eq!(tlv::parse_one(&bytes)?, record);
//! assert!(tlv::parse_one(&bytes[..7]).is_err());
//! # Ok::<(), till_pay::emv::tlv::TlvError>(())
//! ```

use std::fmt;
use std::str::FromStr;

/// The longest tag accepted, in bytes. EMV's longest tags (kernel
/// proprietary ones such as `DF8129`) take three.
pub const MAX_TAG_LEN: usize = 3;

/// The deepest nesting of constructed objects accepted. EMV responses nest
/// four deep at most (`6F` → `A5` → `BF0C` → `61`); eight leaves room
/// without letting hostile input recurse without bound.
pub const MAX_DEPTH: usize = 8;

/// The largest value length the long form with three length bytes can
/// state.
pub const MAX_VALUE_LEN: usize = 0xFF_FFFF;

/// Why bytes are not BER-TLV, or a value cannot be built.
///
/// Offsets count from the start of the input given to the parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    /// The input ends inside a tag, a length or a value.
    #[error(
        "TLV truncated at byte {offset}: the {part} needs {needed} more bytes, {available} left"
    )]
    Truncated {
        /// Where the part starts.
        offset: usize,
        /// `"tag"`, `"length"` or `"value"`.
        part: &'static str,
        /// Bytes the part needs.
        needed: usize,
        /// Bytes left (in the input or the enclosing object).
        available: usize,
    },
    /// The bytes at `offset` cannot start or continue a tag.
    #[error("bad TLV tag at byte {offset}: {reason}")]
    BadTag {
        /// Where the tag starts.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The length field at `offset` uses a form EMV does not allow.
    #[error("bad TLV length at byte {offset}: {reason}")]
    BadLength {
        /// Where the length field starts.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Constructed objects nest deeper than [`MAX_DEPTH`].
    #[error("TLV nested deeper than {MAX_DEPTH} levels at byte {offset}")]
    TooDeep {
        /// Where the object that is one level too deep starts.
        offset: usize,
    },
    /// Bytes follow the single object that was expected.
    #[error("{remaining} unexpected bytes after the TLV object, at byte {offset}")]
    TrailingData {
        /// Where they start.
        offset: usize,
        /// How many.
        remaining: usize,
    },
    /// A primitive value was given for a constructed tag or the reverse.
    #[error("tag {tag} is {expected}; build it with Tlv::{constructor}")]
    WrongKind {
        /// The tag.
        tag: Tag,
        /// `"constructed"` or `"primitive"`.
        expected: &'static str,
        /// The constructor to use instead.
        constructor: &'static str,
    },
    /// A value too long for a three-byte length field.
    #[error(
        "the value of tag {tag} is {len} bytes; BER-TLV as EMV uses it stops at {MAX_VALUE_LEN}"
    )]
    ValueTooLong {
        /// The tag.
        tag: Tag,
        /// The value's length.
        len: usize,
    },
    /// Tag text is not two, four or six hex digits of a well-formed tag.
    #[error("{0:?} is not an EMV tag; write its bytes in hex, e.g. \"9F26\"")]
    TagText(String),
}

/// A BER-TLV tag: its one to three bytes, as the number they spell in big
/// endian (`0x9F26` for the application cryptogram).
///
/// A well-formed tag's first byte is never `00`, so the number gives the
/// bytes back unambiguously.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(u32);

impl Tag {
    /// The tag whose bytes spell `raw`, for constants in code.
    ///
    /// # Panics
    ///
    /// If `raw` is not a well-formed tag (evaluated at compile time in a
    /// `const`). Tags from cards or files go through [`parse`],
    /// [`Tag::from_bytes`] or [`str::parse`], which return errors instead.
    ///
    /// ```
    /// use till_pay::emv::tlv::Tag;
    /// const CRYPTOGRAM: Tag = Tag::new(0x9F26);
    /// assert_eq!(CRYPTOGRAM.to_string(), "9F26");
    /// assert!(CRYPTOGRAM.bytes().eq([0x9F, 0x26]));
    /// ```
    pub const fn new(raw: u32) -> Tag {
        assert!(well_formed(raw), "not a well-formed BER-TLV tag");
        Tag(raw)
    }

    /// The tag at the start of `bytes`, which must hold exactly one tag.
    pub fn from_bytes(bytes: &[u8]) -> Result<Tag, TlvError> {
        let (tag, len) = read_tag(bytes, 0)?;
        if len != bytes.len() {
            return Err(TlvError::TrailingData {
                offset: len,
                remaining: bytes.len() - len,
            });
        }
        Ok(tag)
    }

    /// The number the tag's bytes spell.
    pub fn raw(self) -> u32 {
        self.0
    }

    /// The tag's length in bytes (1 to [`MAX_TAG_LEN`]).
    pub fn len(self) -> usize {
        match self.0 {
            0..=0xFF => 1,
            0x100..=0xFFFF => 2,
            _ => 3,
        }
    }

    /// Always false: a tag has at least one byte. (Present because
    /// `len` is.)
    pub fn is_empty(self) -> bool {
        false
    }

    /// The tag's bytes, first to last.
    pub fn bytes(self) -> impl Iterator<Item = u8> {
        let len = self.len();
        (0..len).map(move |i| (self.0 >> (8 * (len - 1 - i))) as u8)
    }

    /// Whether the object holds other objects (bit 6 of the first byte).
    pub fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }

    fn first_byte(self) -> u8 {
        (self.0 >> (8 * (self.len() - 1))) as u8
    }
}

/// Whether `raw` spells a tag [`read_tag`] would accept.
const fn well_formed(raw: u32) -> bool {
    let bytes = raw.to_be_bytes();
    let mut start = 0;
    while start < 4 && bytes[start] == 0 {
        start += 1;
    }
    if start < 4 - MAX_TAG_LEN || start == 4 {
        return false;
    }
    let first = bytes[start];
    if first == 0xFF {
        return false;
    }
    if first & 0x1F != 0x1F {
        return start == 3;
    }
    if start == 3 || bytes[start + 1] & 0x7F == 0 {
        return false;
    }
    let mut i = start + 1;
    while i < 3 {
        if bytes[i] & 0x80 == 0 {
            return false;
        }
        i += 1;
    }
    bytes[3] & 0x80 == 0
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.bytes() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({self})")
    }
}

/// Reads a tag from hex: `"9F26"`, `"5a"`.
impl FromStr for Tag {
    type Err = TlvError;

    fn from_str(text: &str) -> Result<Tag, TlvError> {
        let bad = || TlvError::TagText(text.to_string());
        let bytes = hex::decode(text.trim()).map_err(|_| bad())?;
        Tag::from_bytes(&bytes).map_err(|_| bad())
    }
}

/// One BER-TLV data object: a tag with either a value (primitive) or the
/// objects it holds (constructed).
#[derive(Clone, PartialEq, Eq)]
pub struct Tlv {
    tag: Tag,
    content: Content,
}

#[derive(Clone, PartialEq, Eq)]
enum Content {
    Primitive(Vec<u8>),
    Constructed(Vec<Tlv>),
}

impl Tlv {
    /// A primitive object. Fails when the tag is constructed or the value
    /// is longer than [`MAX_VALUE_LEN`].
    pub fn primitive(tag: Tag, value: impl Into<Vec<u8>>) -> Result<Tlv, TlvError> {
        if tag.is_constructed() {
            return Err(TlvError::WrongKind {
                tag,
                expected: "constructed",
                constructor: "constructed",
            });
        }
        let value = value.into();
        if value.len() > MAX_VALUE_LEN {
            return Err(TlvError::ValueTooLong {
                tag,
                len: value.len(),
            });
        }
        Ok(Tlv {
            tag,
            content: Content::Primitive(value),
        })
    }

    /// A constructed object (a template) holding `children`. Fails when
    /// the tag is primitive or the encoded children exceed
    /// [`MAX_VALUE_LEN`].
    pub fn constructed(tag: Tag, children: Vec<Tlv>) -> Result<Tlv, TlvError> {
        if !tag.is_constructed() {
            return Err(TlvError::WrongKind {
                tag,
                expected: "primitive",
                constructor: "primitive",
            });
        }
        let len: usize = children.iter().map(Tlv::encoded_len).sum();
        if len > MAX_VALUE_LEN {
            return Err(TlvError::ValueTooLong { tag, len });
        }
        Ok(Tlv {
            tag,
            content: Content::Constructed(children),
        })
    }

    /// The tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The value of a primitive object; `None` for a constructed one.
    pub fn value(&self) -> Option<&[u8]> {
        match &self.content {
            Content::Primitive(v) => Some(v),
            Content::Constructed(_) => None,
        }
    }

    /// The objects a constructed object holds; empty for a primitive one.
    pub fn children(&self) -> &[Tlv] {
        match &self.content {
            Content::Primitive(_) => &[],
            Content::Constructed(c) => c,
        }
    }

    /// The first object with `tag` among this object's descendants
    /// (depth first, in order), not counting itself.
    pub fn find(&self, tag: Tag) -> Option<&Tlv> {
        find(self.children(), tag)
    }

    /// The object encoded: tag, minimal length, value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoded object to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend(self.tag.bytes());
        match &self.content {
            Content::Primitive(v) => {
                push_length(out, v.len());
                out.extend_from_slice(v);
            }
            Content::Constructed(children) => {
                push_length(out, children.iter().map(Tlv::encoded_len).sum());
                for child in children {
                    child.encode_into(out);
                }
            }
        }
    }

    /// The length of [`Tlv::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        let value_len = match &self.content {
            Content::Primitive(v) => v.len(),
            Content::Constructed(c) => c.iter().map(Tlv::encoded_len).sum(),
        };
        self.tag.len() + length_len(value_len) + value_len
    }
}

/// Shows tags and structure, and the lengths of values but not their
/// bytes: values may be card numbers or track data.
impl fmt::Debug for Tlv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.content {
            Content::Primitive(v) => write!(f, "{}[{} bytes]", self.tag, v.len()),
            Content::Constructed(c) => {
                write!(f, "{}", self.tag)?;
                f.debug_list().entries(c).finish()
            }
        }
    }
}

/// The first object with `tag` in `objects` or their descendants (depth
/// first, in order).
pub fn find(objects: &[Tlv], tag: Tag) -> Option<&Tlv> {
    for object in objects {
        if object.tag == tag {
            return Some(object);
        }
        if let Some(found) = object.find(tag) {
            return Some(found);
        }
    }
    None
}

/// Encodes a sequence of objects one after the other.
pub fn encode_all(objects: &[Tlv]) -> Vec<u8> {
    let mut out = Vec::with_capacity(objects.iter().map(Tlv::encoded_len).sum());
    for object in objects {
        object.encode_into(&mut out);
    }
    out
}

/// Parses `data` as a sequence of objects that fills it exactly (an empty
/// input is an empty sequence).
pub fn parse(data: &[u8]) -> Result<Vec<Tlv>, TlvError> {
    parse_sequence(data, 0, data.len(), 1)
}

/// Parses `data` as exactly one object, with nothing after it.
pub fn parse_one(data: &[u8]) -> Result<Tlv, TlvError> {
    let (object, end) = parse_object(data, 0, data.len(), 1)?;
    if end != data.len() {
        return Err(TlvError::TrailingData {
            offset: end,
            remaining: data.len() - end,
        });
    }
    Ok(object)
}

/// Reads a tag at `offset`; returns it and the offset after it.
pub(crate) fn read_tag(data: &[u8], offset: usize) -> Result<(Tag, usize), TlvError> {
    read_tag_within(data, offset, data.len())
}

fn read_tag_within(data: &[u8], offset: usize, end: usize) -> Result<(Tag, usize), TlvError> {
    let truncated = |needed: usize| TlvError::Truncated {
        offset,
        part: "tag",
        needed,
        available: end - offset,
    };
    let bad = |reason| TlvError::BadTag { offset, reason };
    let first = *data
        .get(offset)
        .filter(|_| offset < end)
        .ok_or(truncated(1))?;
    match first {
        0x00 => return Err(bad("00 is padding or a deleted object, not a tag")),
        0xFF => return Err(bad("FF is padding or a deleted object, not a tag")),
        _ => {}
    }
    let mut raw = u32::from(first);
    let mut len = 1;
    if first & 0x1F == 0x1F {
        loop {
            let pos = offset + len;
            if pos >= end {
                return Err(truncated(len + 1));
            }
            let b = data[pos];
            if len == 1 && b & 0x7F == 0 {
                return Err(bad(
                    "the first subsequent byte of a tag may not be 00 or 80 (ISO/IEC 8825-1)",
                ));
            }
            if len == MAX_TAG_LEN {
                return Err(bad("tag longer than three bytes"));
            }
            raw = (raw << 8) | u32::from(b);
            len += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    Ok((Tag(raw), offset + len))
}

/// Reads a length field at `offset`; returns the length and the offset
/// after the field.
fn read_length(data: &[u8], offset: usize, end: usize) -> Result<(usize, usize), TlvError> {
    let truncated = |needed: usize, available: usize| TlvError::Truncated {
        offset,
        part: "length",
        needed,
        available,
    };
    if offset >= end {
        return Err(truncated(1, 0));
    }
    let first = data[offset];
    if first < 0x80 {
        return Ok((usize::from(first), offset + 1));
    }
    let count = usize::from(first & 0x7F);
    if count == 0 {
        return Err(TlvError::BadLength {
            offset,
            reason: "the indefinite form (80) is not allowed in EMV",
        });
    }
    if count > 3 {
        return Err(TlvError::BadLength {
            offset,
            reason: "a length field may have at most three length bytes (81, 82, 83)",
        });
    }
    if offset + 1 + count > end {
        return Err(truncated(1 + count, end - offset));
    }
    let len = data[offset + 1..offset + 1 + count]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Ok((len, offset + 1 + count))
}

fn parse_sequence(
    data: &[u8],
    mut offset: usize,
    end: usize,
    depth: usize,
) -> Result<Vec<Tlv>, TlvError> {
    let mut out = Vec::new();
    while offset < end {
        let (object, next) = parse_object(data, offset, end, depth)?;
        out.push(object);
        offset = next;
    }
    Ok(out)
}

fn parse_object(
    data: &[u8],
    offset: usize,
    end: usize,
    depth: usize,
) -> Result<(Tlv, usize), TlvError> {
    if depth > MAX_DEPTH {
        return Err(TlvError::TooDeep { offset });
    }
    let (tag, after_tag) = read_tag_within(data, offset, end)?;
    let (len, start) = read_length(data, after_tag, end)?;
    if len > end - start {
        return Err(TlvError::Truncated {
            offset: start,
            part: "value",
            needed: len,
            available: end - start,
        });
    }
    let value_end = start + len;
    let content = if tag.is_constructed() {
        Content::Constructed(parse_sequence(data, start, value_end, depth + 1)?)
    } else {
        Content::Primitive(data[start..value_end].to_vec())
    };
    Ok((Tlv { tag, content }, value_end))
}

/// Appends a length in the shortest form.
pub(crate) fn push_length(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        _ => out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]),
    }
}

fn length_len(len: usize) -> usize {
    match len {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        0x100..=0xFFFF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn p(tag: u32, value: &[u8]) -> Tlv {
        Tlv::primitive(Tag::new(tag), value.to_vec()).unwrap()
    }

    fn c(tag: u32, children: Vec<Tlv>) -> Tlv {
        Tlv::constructed(Tag::new(tag), children).unwrap()
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn parses_a_ppse_answer() {
        let fci = unhex(
            "6F2D840E325041592E5359532E4444463031A51BBF0C1861164F07A00000000310105004564953418701019F2A0103",
        );
        let t = parse_one(&fci).unwrap();
        assert_eq!(t.tag(), Tag::new(0x6F));
        assert_eq!(
            t.find(Tag::new(0x84)).unwrap().value().unwrap(),
            b"2PAY.SYS.DDF01"
        );
        let entry = t.find(Tag::new(0x61)).unwrap();
        assert_eq!(
            entry.find(Tag::new(0x4F)).unwrap().value().unwrap(),
            unhex("A0000000031010")
        );
        assert_eq!(
            entry.find(Tag::new(0x9F2A)).unwrap().value().unwrap(),
            [0x03]
        );
        assert_eq!(t.encode(), fci);
    }

    #[test]
    fn tags_of_one_two_and_three_bytes() {
        assert_eq!(read_tag(&[0x5A], 0).unwrap(), (Tag::new(0x5A), 1));
        assert_eq!(read_tag(&[0x9F, 0x26], 0).unwrap(), (Tag::new(0x9F26), 2));
        assert_eq!(
            read_tag(&[0xDF, 0x81, 0x29], 0).unwrap(),
            (Tag::new(0xDF8129), 3)
        );
        assert_eq!("9f26".parse::<Tag>().unwrap(), Tag::new(0x9F26));
        assert_eq!(Tag::new(0xDF8129).to_string(), "DF8129");
        assert!(Tag::new(0x70).is_constructed());
        assert!(!Tag::new(0x9F26).is_constructed());
        assert!(Tag::new(0xBF0C).is_constructed());
        for bad in [
            "", "9F", "5A5A", "DF818181", "9F80", "9F00", "00", "FF", "zz",
        ] {
            assert!(bad.parse::<Tag>().is_err(), "{bad}");
        }
    }

    #[test]
    fn long_form_lengths() {
        let value = vec![0xAB; 200];
        let t = p(0x9F10, &value);
        let bytes = t.encode();
        assert_eq!(&bytes[..4], &[0x9F, 0x10, 0x81, 200]);
        assert_eq!(parse_one(&bytes).unwrap(), t);
        let value = vec![0xCD; 300];
        let bytes = p(0x53, &value).encode();
        assert_eq!(&bytes[..4], &[0x53, 0x82, 0x01, 0x2C]);
        // Non-minimal long forms are accepted (cards use them).
        assert_eq!(
            parse_one(&[0x5A, 0x81, 0x01, 0x42]).unwrap(),
            p(0x5A, &[0x42])
        );
        assert_eq!(
            parse_one(&[0x5A, 0x83, 0x00, 0x00, 0x01, 0x42]).unwrap(),
            p(0x5A, &[0x42])
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        type Check = fn(&TlvError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, TlvError::Truncated { part: "tag", .. })),
            ("9F", |e| {
                matches!(e, TlvError::Truncated { part: "tag", .. })
            }),
            ("DF81", |e| {
                matches!(e, TlvError::Truncated { part: "tag", .. })
            }),
            ("DF818101", |e| matches!(e, TlvError::BadTag { .. })),
            ("9F8001", |e| matches!(e, TlvError::BadTag { .. })),
            ("0001AA", |e| {
                matches!(e, TlvError::BadTag { offset: 0, .. })
            }),
            ("FF01AA", |e| matches!(e, TlvError::BadTag { .. })),
            ("5A", |e| {
                matches!(e, TlvError::Truncated { part: "length", .. })
            }),
            ("5A81", |e| {
                matches!(e, TlvError::Truncated { part: "length", .. })
            }),
            ("5A8200", |e| {
                matches!(e, TlvError::Truncated { part: "length", .. })
            }),
            ("5A80", |e| matches!(e, TlvError::BadLength { .. })),
            ("5A840000000100", |e| {
                matches!(e, TlvError::BadLength { .. })
            }),
            ("5A0512345678", |e| {
                matches!(
                    e,
                    TlvError::Truncated {
                        part: "value",
                        needed: 5,
                        available: 4,
                        ..
                    }
                )
            }),
            ("5A01AA00", |e| {
                matches!(
                    e,
                    TlvError::TrailingData {
                        offset: 3,
                        remaining: 1
                    }
                )
            }),
            // A child that runs past its parent's end.
            ("70035A0212", |e| {
                matches!(e, TlvError::Truncated { part: "value", .. })
            }),
            ("70045A0212349000", |e| {
                matches!(e, TlvError::TrailingData { .. })
            }),
        ];
        for (input, check) in cases {
            let e = parse_one(&unhex(input)).unwrap_err();
            assert!(check(&e), "{input}: {e:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let mut t = p(0x5A, &[1]);
        for _ in 0..MAX_DEPTH - 1 {
            t = c(0x70, vec![t]);
        }
        assert!(parse_one(&t.encode()).is_ok());
        let deeper = c(0x70, vec![t]);
        assert!(matches!(
            parse_one(&deeper.encode()),
            Err(TlvError::TooDeep { .. })
        ));
        // Thousands of nested headers end in an error, not a stack overflow.
        let mut hostile = Vec::new();
        for _ in 0..100_000 {
            hostile.extend_from_slice(&[0x70, 0x80]);
        }
        assert!(parse(&hostile).is_err());
    }

    #[test]
    fn builders_check_the_kind() {
        assert!(matches!(
            Tlv::primitive(Tag::new(0x70), vec![]),
            Err(TlvError::WrongKind { .. })
        ));
        assert!(matches!(
            Tlv::constructed(Tag::new(0x5A), vec![]),
            Err(TlvError::WrongKind { .. })
        ));
        assert!(matches!(
            Tlv::primitive(Tag::new(0x5A), vec![0; MAX_VALUE_LEN + 1]),
            Err(TlvError::ValueTooLong { .. })
        ));
    }

    #[test]
    fn debug_hides_values() {
        let t = c(
            0x70,
            vec![p(0x5A, &[0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x10])],
        );
        let shown = format!("{t:?}");
        assert_eq!(shown, "70[5A[8 bytes]]");
    }

    fn arb_tag(constructed: bool) -> impl Strategy<Value = Tag> {
        let bit = if constructed { 0x20u32 } else { 0 };
        prop_oneof![
            // One byte: any class, number 1..=30.
            (0u32..4, 1u32..31).prop_map(move |(class, n)| (class << 6) | bit | n),
            (0u32..4, 1u32..0x80)
                .prop_map(move |(class, n)| (((class << 6) | bit | 0x1F) << 8) | n),
            (0u32..4, 0x81u32..=0xFF, 0u32..0x80).prop_map(move |(class, a, b)| {
                (((class << 6) | bit | 0x1F) << 16) | (a << 8) | b
            }),
        ]
        .prop_filter("not a well-formed tag (FF first byte)", |raw| {
            well_formed(*raw)
        })
        .prop_map(Tag::new)
    }

    fn arb_tlv() -> impl Strategy<Value = Tlv> {
        let leaf = (arb_tag(false), prop::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(tag, value)| Tlv::primitive(tag, value).unwrap());
        leaf.prop_recursive(MAX_DEPTH as u32 - 1, 64, 6, |inner| {
            (arb_tag(true), prop::collection::vec(inner, 0..6))
                .prop_map(|(tag, children)| Tlv::constructed(tag, children).unwrap())
        })
    }

    proptest! {
        #[test]
        fn build_then_parse_round_trips(objects in prop::collection::vec(arb_tlv(), 0..4)) {
            let bytes = encode_all(&objects);
            prop_assert_eq!(parse(&bytes).unwrap(), objects.clone());
            for object in &objects {
                let one = object.encode();
                prop_assert_eq!(one.len(), object.encoded_len());
                prop_assert_eq!(&parse_one(&one).unwrap(), object);
            }
        }

        #[test]
        fn every_strict_prefix_of_an_object_is_refused(object in arb_tlv()) {
            let bytes = object.encode();
            for cut in 0..bytes.len() {
                prop_assert!(parse_one(&bytes[..cut]).is_err(), "prefix of {} bytes", cut);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(objects) = parse(&data) {
                // Whatever parses re-encodes to something that parses the same.
                prop_assert_eq!(parse(&encode_all(&objects)).unwrap(), objects);
            }
            let _ = parse_one(&data);
        }
    }
}
