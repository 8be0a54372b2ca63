//! Encoding and decoding whole messages as a [`Dialect`] describes them.
//!
//! Decoding is strict: every length, character, pad nibble and byte is
//! checked against the field definition, and an error names the field, the
//! byte offset and the problem. No input makes the decoder panic (see the
//! fuzz target in `pay/fuzz` and the property tests below).

use std::fmt;

use super::encoding::{self, BcdError};
use super::message::{Message, Value};
use super::spec::{
    BitmapEncoding, DataEncoding, DataKind, Dialect, FieldSpec, LengthEncoding, LengthKind,
    MtiEncoding, Sensitivity,
};

/// Where in a message a problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The header before the MTI.
    Header,
    /// The message type indicator.
    Mti,
    /// The primary bitmap.
    Bitmap,
    /// The secondary bitmap.
    SecondaryBitmap,
    /// A field.
    Field(u8),
    /// After the last field.
    End,
}

/// What was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The input ended before the part was complete.
    Truncated {
        /// Bytes the part needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A length prefix that is not a number in its encoding.
    BadLengthPrefix,
    /// Longer than the field allows.
    TooLong {
        /// Length found.
        len: usize,
        /// Maximum allowed.
        max: usize,
    },
    /// A fixed-length field with another length.
    WrongLength {
        /// Length found.
        len: usize,
        /// The fixed length.
        expected: usize,
    },
    /// A character outside the field's data kind. The character itself is
    /// kept only for fields that are not sensitive.
    BadCharacter {
        /// Position within the value (0-based).
        position: usize,
        /// The offending character, when it may be shown.
        shown: Option<char>,
        /// What the field takes, in words.
        allowed: &'static str,
    },
    /// A BCD pad nibble other than the one the dialect specifies.
    BadPad {
        /// Nibble found.
        found: u8,
        /// Nibble expected.
        expected: u8,
    },
    /// A field the dialect does not define.
    NotDefined,
    /// A text value for a binary field or the other way round.
    WrongValueType {
        /// Whether the field wants text.
        wants_text: bool,
    },
    /// Bytes after the last field the bitmap announced.
    TrailingBytes(usize),
    /// An MTI that is not four digits.
    BadMti,
    /// A bitmap that is not valid in its encoding.
    BadBitmap,
    /// A header of the wrong length.
    HeaderLength {
        /// Length given.
        len: usize,
        /// The dialect's header length.
        expected: usize,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Truncated { needed, available } => {
                write!(
                    f,
                    "message ends early: needs {needed} bytes, only {available} left"
                )
            }
            Problem::BadLengthPrefix => f.write_str("length prefix is not a valid number"),
            Problem::TooLong { len, max } => {
                write!(f, "length {len} is more than the maximum {max}")
            }
            Problem::WrongLength { len, expected } => {
                write!(f, "length {len} but the field is fixed at {expected}")
            }
            Problem::BadCharacter {
                position,
                shown: Some(c),
                allowed,
            } => {
                write!(
                    f,
                    "character {c:?} at position {position} is not allowed; the field takes {allowed}"
                )
            }
            Problem::BadCharacter {
                position,
                shown: None,
                allowed,
            } => {
                write!(
                    f,
                    "character at position {position} is not allowed; the field takes {allowed}"
                )
            }
            Problem::BadPad { found, expected } => {
                write!(
                    f,
                    "pad nibble is {found:X}, the dialect specifies {expected:X}"
                )
            }
            Problem::NotDefined => f.write_str("is present but the dialect does not define it"),
            Problem::WrongValueType { wants_text: true } => {
                f.write_str("holds binary data but the field is text")
            }
            Problem::WrongValueType { wants_text: false } => {
                f.write_str("holds text but the field is binary")
            }
            Problem::TrailingBytes(n) => write!(
                f,
                "{n} bytes left over after the last field the bitmap announces"
            ),
            Problem::BadMti => f.write_str("is not four digits"),
            Problem::BadBitmap => f.write_str("is not a valid bitmap"),
            Problem::HeaderLength { len, expected } => {
                write!(f, "is {len} bytes but the dialect's header is {expected}")
            }
        }
    }
}

/// A message that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    /// Where.
    pub location: Location,
    /// The field's name, for fields.
    pub field_name: Option<String>,
    /// Byte offset in the input (decoding only).
    pub offset: Option<usize>,
    /// What.
    pub problem: Problem,
}

impl std::error::Error for CodecError {}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.location, &self.field_name) {
            (Location::Field(n), Some(name)) => write!(f, "field {n} ({name})")?,
            (Location::Field(n), None) => write!(f, "field {n}")?,
            (Location::Header, _) => f.write_str("header")?,
            (Location::Mti, _) => f.write_str("message type")?,
            (Location::Bitmap, _) => f.write_str("primary bitmap")?,
            (Location::SecondaryBitmap, _) => f.write_str("secondary bitmap")?,
            (Location::End, _) => f.write_str("message")?,
        }
        if let Some(o) = self.offset {
            write!(f, " at byte {o}")?;
        }
        write!(f, ": {}", self.problem)
    }
}

fn err(location: Location, offset: Option<usize>, problem: Problem) -> CodecError {
    CodecError {
        location,
        field_name: None,
        offset,
        problem,
    }
}

fn field_err(spec: &FieldSpec, offset: Option<usize>, problem: Problem) -> CodecError {
    CodecError {
        location: Location::Field(spec.number),
        field_name: Some(spec.name.clone()),
        offset,
        problem,
    }
}

fn bad_char(spec: &FieldSpec, offset: Option<usize>, position: usize, c: u8) -> CodecError {
    let shown = (spec.sensitive == Sensitivity::None).then(|| char::from(c));
    field_err(
        spec,
        offset,
        Problem::BadCharacter {
            position,
            shown,
            allowed: spec.kind.describe(),
        },
    )
}

impl Dialect {
    /// Encodes a message into its wire form (without the stream frame).
    pub fn encode(&self, msg: &Message) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(msg, &mut out)?;
        Ok(out)
    }

    /// Encodes a message, appending to `out`.
    pub fn encode_into(&self, msg: &Message, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match &self.header {
            Some(h) if msg.header.is_empty() => out.extend_from_slice(&h.default),
            Some(h) if msg.header.len() == h.length => out.extend_from_slice(&msg.header),
            Some(h) => {
                return Err(err(
                    Location::Header,
                    None,
                    Problem::HeaderLength {
                        len: msg.header.len(),
                        expected: h.length,
                    },
                ));
            }
            None if msg.header.is_empty() => {}
            None => {
                return Err(err(
                    Location::Header,
                    None,
                    Problem::HeaderLength {
                        len: msg.header.len(),
                        expected: 0,
                    },
                ));
            }
        }
        let mti = msg.mti().as_bytes();
        match self.mti_encoding {
            MtiEncoding::Ascii => out.extend_from_slice(mti),
            MtiEncoding::Ebcdic => out.extend(mti.iter().map(|d| 0xF0 | (d - b'0'))),
            MtiEncoding::Bcd => out.extend_from_slice(&[
                (mti[0] - b'0') << 4 | (mti[1] - b'0'),
                (mti[2] - b'0') << 4 | (mti[3] - b'0'),
            ]),
        }
        let secondary = msg.needs_secondary_bitmap();
        let (mut primary, mut second) = (0u64, 0u64);
        if secondary {
            primary |= 1 << 63;
        }
        for (n, _) in msg.fields() {
            if n <= 64 {
                primary |= 1 << (64 - u32::from(n));
            } else {
                second |= 1 << (128 - u32::from(n));
            }
        }
        self.write_bitmap(primary, out);
        if secondary {
            self.write_bitmap(second, out);
        }
        for (n, value) in msg.fields() {
            let spec = self.field(n).ok_or(CodecError {
                location: Location::Field(n),
                field_name: None,
                offset: None,
                problem: Problem::NotDefined,
            })?;
            encode_field(spec, value, out)?;
        }
        Ok(())
    }

    fn write_bitmap(&self, bits: u64, out: &mut Vec<u8>) {
        match self.bitmap_encoding {
            BitmapEncoding::Binary => out.extend_from_slice(&bits.to_be_bytes()),
            BitmapEncoding::Hex => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                for byte in bits.to_be_bytes() {
                    out.push(HEX[usize::from(byte >> 4)]);
                    out.push(HEX[usize::from(byte & 0xF)]);
                }
            }
        }
    }

    /// Decodes a message from its wire form (without the stream frame).
    ///
    /// ```
    /// use till_pay::iso8583::{Dialect, Message};
    /// let d = Dialect::load("iso87ascii").unwrap();
    /// let mut m = Message::new("0800").unwrap();
    /// m.set(11, "000001");
    /// m.set(70, "001");
    /// let wire = d.encode(&m).unwrap();
    /// assert_eq!(d.decode(&wire).unwrap(), m);
    /// assert!(d.decode(&wire[..wire.len() - 1]).is_err());
    /// ```
    pub fn decode(&self, input: &[u8]) -> Result<Message, CodecError> {
        let mut r = Reader { input, pos: 0 };
        let mut msg =
            Message::new("0000").map_err(|_| err(Location::Mti, Some(0), Problem::BadMti))?;
        if let Some(h) = &self.header {
            msg.header = r
                .take(h.length)
                .map_err(|p| err(Location::Header, Some(0), p))?
                .to_vec();
        }
        let mti_at = r.pos;
        let mut mti = [0u8; 4];
        match self.mti_encoding {
            MtiEncoding::Ascii => {
                mti.copy_from_slice(r.take(4).map_err(|p| err(Location::Mti, Some(mti_at), p))?)
            }
            MtiEncoding::Ebcdic => {
                let b = r.take(4).map_err(|p| err(Location::Mti, Some(mti_at), p))?;
                for (d, e) in mti.iter_mut().zip(b) {
                    *d = if (0xF0..=0xF9).contains(e) {
                        e - 0xF0 + b'0'
                    } else {
                        0
                    };
                }
            }
            MtiEncoding::Bcd => {
                let b = r.take(2).map_err(|p| err(Location::Mti, Some(mti_at), p))?;
                let nibbles = [b[0] >> 4, b[0] & 0xF, b[1] >> 4, b[1] & 0xF];
                for (d, n) in mti.iter_mut().zip(nibbles) {
                    *d = if n <= 9 { b'0' + n } else { 0 };
                }
            }
        }
        let mti = std::str::from_utf8(&mti).unwrap_or("");
        msg.set_mti(mti)
            .map_err(|_| err(Location::Mti, Some(mti_at), Problem::BadMti))?;

        let primary = self.read_bitmap(&mut r, Location::Bitmap)?;
        let secondary = if primary & (1 << 63) != 0 {
            self.read_bitmap(&mut r, Location::SecondaryBitmap)?
        } else {
            0
        };
        for n in 2u8..=128 {
            let set = if n <= 64 {
                primary & (1 << (64 - u32::from(n))) != 0
            } else {
                secondary & (1 << (128 - u32::from(n))) != 0
            };
            if !set {
                continue;
            }
            let at = r.pos;
            let spec = self.field(n).ok_or(CodecError {
                location: Location::Field(n),
                field_name: None,
                offset: Some(at),
                problem: Problem::NotDefined,
            })?;
            let value = decode_field(spec, &mut r)?;
            msg.set(n, value);
        }
        if r.pos != input.len() {
            return Err(err(
                Location::End,
                Some(r.pos),
                Problem::TrailingBytes(input.len() - r.pos),
            ));
        }
        Ok(msg)
    }

    fn read_bitmap(&self, r: &mut Reader<'_>, location: Location) -> Result<u64, CodecError> {
        let at = r.pos;
        match self.bitmap_encoding {
            BitmapEncoding::Binary => {
                let b = r.take(8).map_err(|p| err(location, Some(at), p))?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Ok(u64::from_be_bytes(a))
            }
            BitmapEncoding::Hex => {
                let b = r.take(16).map_err(|p| err(location, Some(at), p))?;
                let mut bits = 0u64;
                for &c in b {
                    let v = (c as char)
                        .to_digit(16)
                        .ok_or_else(|| err(location, Some(at), Problem::BadBitmap))?;
                    bits = bits << 4 | u64::from(v);
                }
                Ok(bits)
            }
        }
    }
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Problem> {
        let available = self.input.len() - self.pos;
        if n > available {
            return Err(Problem::Truncated {
                needed: n,
                available,
            });
        }
        let s = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
}

fn write_prefix(spec: &FieldSpec, digits: u8, len: usize, out: &mut Vec<u8>) {
    match spec.length_encoding {
        LengthEncoding::Ascii | LengthEncoding::Ebcdic => {
            let zero = if spec.length_encoding == LengthEncoding::Ascii {
                b'0'
            } else {
                0xF0
            };
            for i in (0..u32::from(digits)).rev() {
                out.push(zero + ((len / 10usize.pow(i)) % 10) as u8);
            }
        }
        LengthEncoding::Bcd => {
            let bytes = usize::from(digits).div_ceil(2);
            for i in (0..bytes).rev() {
                let pair = (len / 100usize.pow(i as u32)) % 100;
                out.push(((pair / 10) as u8) << 4 | (pair % 10) as u8);
            }
        }
        LengthEncoding::Binary => {
            if spec.prefix_len() == 1 {
                out.push(len as u8);
            } else {
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
        }
    }
}

fn read_prefix(spec: &FieldSpec, r: &mut Reader<'_>) -> Result<usize, CodecError> {
    let at = r.pos;
    let raw = r
        .take(spec.prefix_len())
        .map_err(|p| field_err(spec, Some(at), p))?;
    let bad = || field_err(spec, Some(at), Problem::BadLengthPrefix);
    let mut len = 0usize;
    match spec.length_encoding {
        LengthEncoding::Ascii | LengthEncoding::Ebcdic => {
            let zero = if spec.length_encoding == LengthEncoding::Ascii {
                b'0'
            } else {
                0xF0
            };
            for &c in raw {
                if !(zero..=zero + 9).contains(&c) {
                    return Err(bad());
                }
                len = len * 10 + usize::from(c - zero);
            }
        }
        LengthEncoding::Bcd => {
            for &b in raw {
                let (hi, lo) = (b >> 4, b & 0xF);
                if hi > 9 || lo > 9 {
                    return Err(bad());
                }
                len = len * 100 + usize::from(hi) * 10 + usize::from(lo);
            }
        }
        LengthEncoding::Binary => {
            for &b in raw {
                len = len << 8 | usize::from(b);
            }
        }
    }
    Ok(len)
}

fn encode_field(spec: &FieldSpec, value: &Value, out: &mut Vec<u8>) -> Result<(), CodecError> {
    match value {
        Value::Binary(bytes) => {
            if spec.is_text() {
                return Err(field_err(
                    spec,
                    None,
                    Problem::WrongValueType { wants_text: true },
                ));
            }
            check_length(spec, bytes.len(), None)?;
            if let LengthKind::Variable(d) = spec.length {
                write_prefix(spec, d, bytes.len(), out);
            }
            out.extend_from_slice(bytes);
        }
        Value::Text(text) => {
            if !spec.is_text() {
                return Err(field_err(
                    spec,
                    None,
                    Problem::WrongValueType { wants_text: false },
                ));
            }
            let mut text = text.as_bytes();
            let padded;
            if spec.length == LengthKind::Fixed
                && text.len() < spec.max
                && spec.encoding != DataEncoding::Bcd
                && let Some(c) = spec.pad.and_then(|p| p.text_char())
            {
                let fill = std::iter::repeat_n(c, spec.max - text.len());
                padded = if spec.pad.is_some_and(|p| p.is_left()) {
                    fill.chain(text.iter().copied()).collect::<Vec<u8>>()
                } else {
                    text.iter().copied().chain(fill).collect::<Vec<u8>>()
                };
                text = &padded;
            }
            check_length(spec, text.len(), None)?;
            for (i, &c) in text.iter().enumerate() {
                if !encoding::allowed(spec.kind, c, i) {
                    return Err(bad_char(spec, None, i, c));
                }
            }
            if let LengthKind::Variable(d) = spec.length {
                write_prefix(spec, d, text.len(), out);
            }
            match spec.encoding {
                DataEncoding::Ascii | DataEncoding::Binary => out.extend_from_slice(text),
                DataEncoding::Ebcdic => {
                    encoding::ascii_to_ebcdic(text, out)
                        .map_err(|i| bad_char(spec, None, i, text[i]))?;
                }
                DataEncoding::Bcd => {
                    encoding::pack_bcd(text, spec.pad, spec.kind == DataKind::Z, out)
                        .map_err(|i| bad_char(spec, None, i, text[i]))?;
                }
            }
        }
    }
    Ok(())
}

fn check_length(spec: &FieldSpec, len: usize, offset: Option<usize>) -> Result<(), CodecError> {
    match spec.length {
        LengthKind::Fixed if len != spec.max => Err(field_err(
            spec,
            offset,
            Problem::WrongLength {
                len,
                expected: spec.max,
            },
        )),
        LengthKind::Variable(_) if len > spec.max => Err(field_err(
            spec,
            offset,
            Problem::TooLong { len, max: spec.max },
        )),
        _ => Ok(()),
    }
}

fn decode_field(spec: &FieldSpec, r: &mut Reader<'_>) -> Result<Value, CodecError> {
    let at = r.pos;
    let units = match spec.length {
        LengthKind::Fixed => spec.max,
        LengthKind::Variable(_) => {
            let len = read_prefix(spec, r)?;
            check_length(spec, len, Some(at))?;
            len
        }
    };
    let data_at = r.pos;
    let raw = r
        .take(spec.data_len(units))
        .map_err(|p| field_err(spec, Some(data_at), p))?;
    if !spec.is_text() {
        return Ok(Value::Binary(raw.to_vec()));
    }
    let mut text = String::with_capacity(units);
    match spec.encoding {
        DataEncoding::Ascii | DataEncoding::Binary => {
            for (i, &c) in raw.iter().enumerate() {
                if !encoding::allowed(spec.kind, c, i) {
                    return Err(bad_char(spec, Some(data_at + i), i, c));
                }
                text.push(char::from(c));
            }
        }
        DataEncoding::Ebcdic => {
            encoding::ebcdic_to_ascii(raw, &mut text).map_err(|i| {
                field_err(
                    spec,
                    Some(data_at + i),
                    Problem::BadCharacter {
                        position: i,
                        shown: None,
                        allowed: spec.kind.describe(),
                    },
                )
            })?;
            if let Some((i, c)) = text
                .bytes()
                .enumerate()
                .find(|&(i, c)| !encoding::allowed(spec.kind, c, i))
            {
                return Err(bad_char(spec, Some(data_at + i), i, c));
            }
        }
        DataEncoding::Bcd => {
            encoding::unpack_bcd(raw, units, spec.pad, spec.kind == DataKind::Z, &mut text)
                .map_err(|e| match e {
                    BcdError::BadNibble { position, .. } => field_err(
                        spec,
                        Some(data_at + position / 2),
                        Problem::BadCharacter {
                            position,
                            shown: None,
                            allowed: spec.kind.describe(),
                        },
                    ),
                    BcdError::BadPad { found, expected } => {
                        field_err(spec, Some(data_at), Problem::BadPad { found, expected })
                    }
                })?;
        }
    }
    Ok(Value::Text(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso87() -> Dialect {
        Dialect::load("iso87ascii").unwrap()
    }

    fn cup() -> Dialect {
        Dialect::load("cup").unwrap()
    }

    fn sale_0200() -> Message {
        let mut m = Message::new("0200").unwrap();
        m.set(2, "4761739001010010");
        m.set(3, "000000");
        m.set(4, "000000001234");
        m.set(11, "000001");
        m.set(35, "4761739001010010=2512201");
        m.set(41, "TILL0001");
        m.set(52, vec![0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0]);
        m
    }

    #[test]
    fn iso87ascii_known_bytes() {
        let wire = iso87().encode(&sale_0200()).unwrap();
        let mut expected = b"0200".to_vec();
        // Fields 2, 3, 4, 11, 35, 41, 52: bits 2,3,4 -> 0x70; 11 -> 0x20 in byte 2;
        // 35 -> byte 5 0x20; 41 -> byte 6 0x80; 52 -> byte 7 0x10.
        expected.extend_from_slice(b"7020000020801000");
        expected.extend_from_slice(b"164761739001010010000000000000001234000001");
        expected.extend_from_slice(b"244761739001010010=2512201TILL0001");
        // Field 52 is LLVAR in this dialect (room for AES PIN blocks).
        expected.extend_from_slice(b"08");
        expected.extend_from_slice(&[0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0]);
        assert_eq!(wire, expected, "{}", String::from_utf8_lossy(&wire));
        assert_eq!(iso87().decode(&wire).unwrap(), sale_0200());
    }

    #[test]
    fn cup_known_bytes() {
        let mut m = Message::new("0200").unwrap();
        m.set(2, "6222021234567890128");
        m.set(3, "000000");
        m.set(22, "021");
        m.set(35, "6222021234567890128=30122011");
        m.set(60, "22000001");
        let wire = cup().encode(&m).unwrap();
        let expected = hex::decode(concat!(
            "6000010000603100000000", // TPDU + header
            "0200",                   // MTI in BCD
            "6000040020000010",       // bitmap: 2, 3, 22, 35, 60
            "19",
            "62220212345678901280", // PAN: 19 digits, right pad 0
            "000000",               // processing code
            "0210",                 // entry mode 021, right pad 0
            "28",
            "6222021234567890128D30122011", // track 2: 28 digits, '=' as D
            "0008",
            "22000001", // field 60: LLL in BCD
        ))
        .unwrap();
        assert_eq!(hex::encode_upper(&wire), hex::encode_upper(&expected));
        let mut back = cup().decode(&wire).unwrap();
        assert_eq!(back.header, expected[..11]);
        back.header.clear();
        assert_eq!(back, m);
    }

    #[test]
    fn secondary_bitmap_is_written_when_needed() {
        let mut m = Message::new("0800").unwrap();
        m.set(11, "000007");
        m.set(70, "001");
        let wire = iso87().encode(&m).unwrap();
        assert_eq!(&wire[..4], b"0800");
        assert_eq!(&wire[4..20], b"8020000000000000");
        assert_eq!(&wire[20..36], b"0400000000000000");
        assert_eq!(iso87().decode(&wire).unwrap(), m);
    }

    fn decode_err(d: &Dialect, wire: &[u8]) -> CodecError {
        d.decode(wire).expect_err("decoding should fail")
    }

    #[test]
    fn decode_errors_name_field_offset_and_problem() {
        let d = iso87();
        let good = d.encode(&sale_0200()).unwrap();

        let e = decode_err(&d, &good[..good.len() - 3]);
        assert_eq!(e.location, Location::Field(52));
        assert_eq!(
            e.to_string(),
            format!(
                "field 52 (Personal identification number data) at byte {}: message ends early: needs 8 bytes, only 5 left",
                good.len() - 8
            )
        );

        let mut bad = good.clone();
        bad[48] = b'X'; // field 4 (amount) starts at byte 44
        let e = decode_err(&d, &bad);
        assert_eq!(e.location, Location::Field(4));
        assert!(
            e.to_string()
                .contains("character 'X' at position 4 is not allowed; the field takes digits"),
            "{e}"
        );

        let mut bad = good.clone();
        bad[21] = b'x'; // PAN length prefix
        let e = decode_err(&d, &bad);
        assert_eq!(
            (e.location, e.problem.clone()),
            (Location::Field(2), Problem::BadLengthPrefix)
        );

        let mut bad = good.clone();
        bad[20..22].copy_from_slice(b"20");
        let e = decode_err(&d, &bad);
        assert_eq!(e.problem, Problem::TooLong { len: 20, max: 19 });

        let mut bad = good.clone();
        bad.push(b'!');
        assert_eq!(decode_err(&d, &bad).problem, Problem::TrailingBytes(1));

        let mut bad = good.clone();
        bad[4] = b'G';
        assert_eq!(decode_err(&d, &bad).location, Location::Bitmap);

        assert_eq!(decode_err(&d, b"02").location, Location::Mti);
        assert_eq!(decode_err(&d, b"02A0").problem, Problem::BadMti);
        assert_eq!(decode_err(&d, b"").location, Location::Mti);
    }

    #[test]
    fn sensitive_fields_never_show_the_offending_character() {
        let d = iso87();
        let mut bad = d.encode(&sale_0200()).unwrap();
        bad[25] = b'Z'; // inside the PAN
        let e = decode_err(&d, &bad);
        assert_eq!(e.location, Location::Field(2));
        assert!(!e.to_string().contains('Z'), "{e}");
        assert!(e.to_string().contains("position 3"), "{e}");
    }

    #[test]
    fn undefined_field_in_bitmap_is_named() {
        let d = cup();
        let mut m = Message::new("0800").unwrap();
        m.set(11, "000001");
        let mut wire = d.encode(&m).unwrap();
        wire[13 + 1] |= 0x01; // bit 16 (not defined in cup)
        let e = decode_err(&d, &wire);
        assert_eq!(
            (e.location, e.problem.clone()),
            (Location::Field(16), Problem::NotDefined)
        );
        assert_eq!(
            e.to_string(),
            "field 16 at byte 24: is present but the dialect does not define it"
        );
    }

    #[test]
    fn bcd_errors() {
        let d = cup();
        let mut m = Message::new("0200").unwrap();
        m.set(2, "6222021234567890128");
        let good = d.encode(&m).unwrap();
        let mut bad = good.clone();
        *bad.last_mut().unwrap() = 0x8F; // pad nibble F where the dialect says 0
        assert_eq!(
            decode_err(&d, &bad).problem,
            Problem::BadPad {
                found: 0xF,
                expected: 0
            }
        );
        let mut bad = good.clone();
        bad[23] = 0x2B; // a non-digit nibble at PAN digit 3
        assert!(matches!(
            decode_err(&d, &bad).problem,
            Problem::BadCharacter {
                position: 3,
                shown: None,
                ..
            }
        ));
        let mut bad = good.clone();
        bad[21] = 0x1A; // BCD length prefix with a non-decimal nibble
        assert_eq!(decode_err(&d, &bad).problem, Problem::BadLengthPrefix);
        let mut bad = good;
        bad[11] = 0x0A; // MTI nibble A
        assert_eq!(decode_err(&d, &bad).problem, Problem::BadMti);
    }

    #[test]
    fn encode_errors() {
        let d = iso87();
        let mut m = Message::new("0200").unwrap();
        m.set(4, "12.34");
        let e = d.encode(&m).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field 4 (Amount, transaction): length 5 but the field is fixed at 12"
        );
        m.set(4, "00000000123A");
        assert!(
            d.encode(&m)
                .unwrap_err()
                .to_string()
                .contains("'A' at position 11")
        );
        m.set(4, vec![1u8, 2]);
        assert_eq!(
            d.encode(&m).unwrap_err().problem,
            Problem::WrongValueType { wants_text: true }
        );
        let mut m = Message::new("0200").unwrap();
        m.set(52, "1234");
        assert_eq!(
            d.encode(&m).unwrap_err().problem,
            Problem::WrongValueType { wants_text: false }
        );
        let mut m = Message::new("0200").unwrap();
        m.set(2, "12345678901234567890");
        assert_eq!(
            d.encode(&m).unwrap_err().problem,
            Problem::TooLong { len: 20, max: 19 }
        );
        let mut m = Message::new("0200").unwrap();
        m.header = vec![1, 2, 3];
        assert_eq!(d.encode(&m).unwrap_err().location, Location::Header);
        let mut m = Message::new("0200").unwrap();
        m.set(16, "0101");
        assert_eq!(cup().encode(&m).unwrap_err().problem, Problem::NotDefined);
    }

    #[test]
    fn fixed_text_is_padded_when_the_dialect_says_so() {
        let d = Dialect::from_toml(
            "t",
            "[dialect]\nname='t'\nmti='ascii'\nbitmap='hex'\nframing='u16be'\n\
             [fields.4]\nname='amount'\ntype='n'\nlength='fixed'\nmax=6\nencoding='ascii'\npad='left-0'\n\
             [fields.43]\nname='name'\ntype='ans'\nlength='fixed'\nmax=6\nencoding='ascii'\npad='right-space'\n",
        )
        .unwrap();
        let mut m = Message::new("0200").unwrap();
        m.set(4, "123");
        m.set(43, "Tea");
        let wire = d.encode(&m).unwrap();
        assert!(
            wire.ends_with(b"000123Tea   "),
            "{}",
            String::from_utf8_lossy(&wire)
        );
    }
}
