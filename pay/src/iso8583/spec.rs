//! Dialect files: the declarative description of one host's ISO 8583.
//!
//! A dialect file (TOML, see `pay/dialects/`) describes the message frame
//! (header, MTI and bitmap encodings, length prefix on the wire) and every
//! field the host uses: its data kind, length type, maximum length, data
//! and length encodings, padding, sensitivity and optional positional
//! subfields. The semantic part of the file — which field carries which
//! element, how each transaction type is coded — is read by
//! [`super::profile`]. The terminal and the acquirer simulator load the
//! same files, so a new host is a new file, not new code.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::profile::{
    Outcome, Profile, ProfileFile, RawAnswer, RawSecurity, RawTxn, ResponseCode, ReversalRules,
    SettlementRules,
};

/// An error in a dialect file. Messages name the file, the field and what
/// to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dialect {dialect}: {problem}")]
pub struct SpecError {
    /// The dialect's name or file path.
    pub dialect: String,
    /// What is wrong, and where.
    pub problem: String,
}

/// ISO 8583 data kinds (ISO 8583:1987 §4.3 attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum DataKind {
    /// Alphabetic.
    #[serde(rename = "a")]
    A,
    /// Numeric digits.
    #[serde(rename = "n")]
    N,
    /// Special characters.
    #[serde(rename = "s")]
    S,
    /// Alphanumeric.
    #[serde(rename = "an")]
    An,
    /// Alphabetic and special.
    #[serde(rename = "as")]
    As,
    /// Numeric and special.
    #[serde(rename = "ns")]
    Ns,
    /// Alphanumeric and special (printable ASCII).
    #[serde(rename = "ans")]
    Ans,
    /// Binary data.
    #[serde(rename = "b")]
    B,
    /// Track 2/3 code set: digits and the `=` separator.
    #[serde(rename = "z")]
    Z,
    /// Amount with a leading `C` (credit) or `D` (debit).
    #[serde(rename = "x+n")]
    XN,
}

impl DataKind {
    /// The ISO notation, e.g. `ans`.
    pub fn notation(self) -> &'static str {
        match self {
            DataKind::A => "a",
            DataKind::N => "n",
            DataKind::S => "s",
            DataKind::An => "an",
            DataKind::As => "as",
            DataKind::Ns => "ns",
            DataKind::Ans => "ans",
            DataKind::B => "b",
            DataKind::Z => "z",
            DataKind::XN => "x+n",
        }
    }

    /// What the kind allows, in words for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            DataKind::A => "letters",
            DataKind::N => "digits",
            DataKind::S => "special characters",
            DataKind::An => "letters and digits",
            DataKind::As => "letters and special characters",
            DataKind::Ns => "digits and special characters",
            DataKind::Ans => "printable ASCII characters",
            DataKind::B => "binary data",
            DataKind::Z => "digits and the '=' separator",
            DataKind::XN => "'C' or 'D' followed by digits",
        }
    }
}

/// How a field's length is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthKind {
    /// Always `max` units long; no prefix.
    Fixed,
    /// Up to `max` units, preceded by a length of this many decimal digits
    /// (1 = LVAR, 2 = LLVAR, 3 = LLLVAR, 4 = LLLLVAR).
    Variable(u8),
}

impl LengthKind {
    fn parse(s: &str) -> Option<LengthKind> {
        Some(match s {
            "fixed" => LengthKind::Fixed,
            "lvar" => LengthKind::Variable(1),
            "llvar" => LengthKind::Variable(2),
            "lllvar" => LengthKind::Variable(3),
            "llllvar" => LengthKind::Variable(4),
            _ => return None,
        })
    }
}

/// How data bytes represent the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataEncoding {
    /// One ASCII byte per character.
    Ascii,
    /// One EBCDIC (code page 500) byte per character.
    Ebcdic,
    /// Packed decimal: two digits per byte (track 2 `=` as nibble D).
    Bcd,
    /// Raw bytes (kind `b` only).
    Binary,
}

/// How a variable-length prefix is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LengthEncoding {
    /// Decimal digits in ASCII, e.g. `"16"`.
    Ascii,
    /// Decimal digits in EBCDIC.
    Ebcdic,
    /// Packed decimal: LLVAR in one byte, LLLVAR in two.
    Bcd,
    /// Unsigned big-endian integer: LLVAR in one byte, LLLVAR in two.
    Binary,
}

/// Padding of odd BCD digit counts and of short fixed-length text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pad {
    /// `0` on the left (right-justified numbers).
    LeftZero,
    /// `0` on the right.
    RightZero,
    /// Nibble `F` on the left (BCD only).
    LeftF,
    /// Nibble `F` on the right (BCD only).
    RightF,
    /// Space on the left (text only).
    LeftSpace,
    /// Space on the right (left-justified text).
    RightSpace,
}

impl Pad {
    fn parse(s: &str) -> Option<Pad> {
        Some(match s {
            "left-0" => Pad::LeftZero,
            "right-0" => Pad::RightZero,
            "left-F" | "left-f" => Pad::LeftF,
            "right-F" | "right-f" => Pad::RightF,
            "left-space" => Pad::LeftSpace,
            "right-space" => Pad::RightSpace,
            _ => return None,
        })
    }

    /// Whether the pad goes on the left.
    pub fn is_left(self) -> bool {
        matches!(self, Pad::LeftZero | Pad::LeftF | Pad::LeftSpace)
    }

    /// The pad nibble in BCD, if this pad can be used there.
    pub fn nibble(self) -> Option<u8> {
        match self {
            Pad::LeftZero | Pad::RightZero => Some(0),
            Pad::LeftF | Pad::RightF => Some(0xF),
            Pad::LeftSpace | Pad::RightSpace => None,
        }
    }

    /// The pad character in text, if this pad can be used there.
    pub fn text_char(self) -> Option<u8> {
        match self {
            Pad::LeftZero | Pad::RightZero => Some(b'0'),
            Pad::LeftSpace | Pad::RightSpace => Some(b' '),
            Pad::LeftF | Pad::RightF => None,
        }
    }
}

/// How a field must be treated when shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    /// Shown as is.
    #[default]
    None,
    /// A card number: first six and last four digits shown.
    Pan,
    /// Track data: PAN masked, the rest hidden.
    Track,
    /// Expiry date: hidden.
    Expiry,
    /// PIN blocks, keys, cryptograms: hidden entirely.
    Secret,
}

/// A positional part of a field, e.g. 60.2 (batch number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubfieldSpec {
    /// What the part holds.
    pub name: String,
    /// Length in the parent's units (characters, digits or bytes).
    pub length: usize,
    /// Offset from the start of the parent value.
    pub offset: usize,
}

/// One field of a dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// Field number, 2–128.
    pub number: u8,
    /// Name, e.g. "Primary account number".
    pub name: String,
    /// Data kind.
    pub kind: DataKind,
    /// Fixed or variable length.
    pub length: LengthKind,
    /// Fixed length, or maximum length of a variable field: characters for
    /// text, digits for BCD, bytes for binary.
    pub max: usize,
    /// How the data is represented.
    pub encoding: DataEncoding,
    /// How a variable length prefix is represented.
    pub length_encoding: LengthEncoding,
    /// Padding of odd BCD digit counts / short fixed text.
    pub pad: Option<Pad>,
    /// How the field is masked when shown.
    pub sensitive: Sensitivity,
    /// Positional parts, if the field has a layout.
    pub subfields: Vec<SubfieldSpec>,
}

impl FieldSpec {
    /// Whether values are text (`false` for binary fields).
    pub fn is_text(&self) -> bool {
        self.kind != DataKind::B
    }

    /// Number of bytes a length prefix takes on the wire.
    pub fn prefix_len(&self) -> usize {
        match self.length {
            LengthKind::Fixed => 0,
            LengthKind::Variable(d) => match self.length_encoding {
                LengthEncoding::Ascii | LengthEncoding::Ebcdic => usize::from(d),
                LengthEncoding::Bcd => usize::from(d).div_ceil(2),
                LengthEncoding::Binary => {
                    if d <= 2 {
                        1
                    } else {
                        2
                    }
                }
            },
        }
    }

    /// The largest length the prefix can express.
    fn prefix_capacity(&self) -> usize {
        match self.length {
            LengthKind::Fixed => usize::MAX,
            LengthKind::Variable(d) => match self.length_encoding {
                LengthEncoding::Binary => {
                    if d <= 2 {
                        255
                    } else {
                        65_535
                    }
                }
                _ => 10usize.pow(u32::from(d)) - 1,
            },
        }
    }

    /// Bytes the data part takes for a value of `units` length.
    pub fn data_len(&self, units: usize) -> usize {
        match self.encoding {
            DataEncoding::Bcd => units.div_ceil(2),
            _ => units,
        }
    }

    /// "field 35 (Track 2 data)".
    pub fn label(&self) -> String {
        format!("field {} ({})", self.number, self.name)
    }
}

/// How the MTI is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MtiEncoding {
    /// Four ASCII digits.
    Ascii,
    /// Four EBCDIC digits.
    Ebcdic,
    /// Two bytes of packed decimal.
    Bcd,
}

/// How bitmaps are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BitmapEncoding {
    /// Eight raw bytes per bitmap.
    Binary,
    /// Sixteen ASCII hex characters per bitmap.
    Hex,
}

/// How a message is delimited on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameFormat {
    /// Two-byte big-endian binary length.
    U16be,
    /// Four ASCII decimal digits.
    Ascii4,
}

/// What the host does with the header in its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeaderAnswer {
    /// The request's header comes back unchanged.
    Copy,
    /// A TPDU (first five bytes) comes back with destination and source
    /// addresses swapped; the rest is copied.
    SwapTpdu,
}

/// A fixed-length header before the MTI (e.g. TPDU + application header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSpec {
    /// Bytes the header takes.
    pub length: usize,
    /// Header the terminal sends.
    pub default: Vec<u8>,
    /// What the host does with it.
    pub answer: HeaderAnswer,
}

impl HeaderSpec {
    /// The header a host answers a request header with.
    pub fn answer_to(&self, request: &[u8]) -> Vec<u8> {
        let mut h = request.to_vec();
        if self.answer == HeaderAnswer::SwapTpdu && h.len() >= 5 {
            h.swap(1, 3);
            h.swap(2, 4);
        }
        h
    }
}

/// A loaded, validated dialect: codec tables plus the host profile.
#[derive(Debug, Clone)]
pub struct Dialect {
    /// Short name, e.g. `cup`.
    pub name: String,
    /// One line on what host this is.
    pub description: String,
    /// MTI representation.
    pub mti_encoding: MtiEncoding,
    /// Bitmap representation.
    pub bitmap_encoding: BitmapEncoding,
    /// Header before the MTI, if any.
    pub header: Option<HeaderSpec>,
    /// Stream framing.
    pub framing: FrameFormat,
    fields: Vec<Option<FieldSpec>>,
    /// Semantic mapping: elements, transactions, security, response codes.
    pub profile: Profile,
}

/// The dialects shipped with Till, embedded so a device needs no data files.
const BUILTIN: &[(&str, &str)] = &[
    ("iso87ascii", include_str!("../../dialects/iso87ascii.toml")),
    ("cup", include_str!("../../dialects/cup.toml")),
];

impl Dialect {
    /// Names of the dialects built into Till.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(n, _)| *n)
    }

    /// Loads a built-in dialect by name, or a dialect file by path.
    ///
    /// ```
    /// let cup = till_pay::iso8583::Dialect::load("cup").unwrap();
    /// assert_eq!(cup.field(2).unwrap().name, "Primary account number");
    /// ```
    pub fn load(name_or_path: &str) -> Result<Dialect, SpecError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Dialect::from_toml(name_or_path, text);
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            let known: Vec<_> = Dialect::builtin_names().collect();
            return Err(SpecError {
                dialect: name_or_path.to_string(),
                problem: format!(
                    "no built-in dialect has this name and no such file exists; built-in dialects: {}",
                    known.join(", ")
                ),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            dialect: name_or_path.to_string(),
            problem: format!("cannot read the file: {e}"),
        })?;
        Dialect::from_toml(name_or_path, &text)
    }

    /// Parses and validates a dialect from TOML text; `origin` names it in errors.
    pub fn from_toml(origin: &str, text: &str) -> Result<Dialect, SpecError> {
        let err = |problem: String| SpecError {
            dialect: origin.to_string(),
            problem,
        };
        let file: DialectFile =
            toml::from_str(text).map_err(|e| err(format!("not a valid dialect file: {e}")))?;
        let header = match &file.dialect.header {
            None => None,
            Some(h) => {
                let default = hex::decode(&h.default)
                    .map_err(|_| err("header.default must be hex digits".to_string()))?;
                if default.len() != h.length {
                    return Err(err(format!(
                        "header.default is {} bytes but header.length is {}",
                        default.len(),
                        h.length
                    )));
                }
                Some(HeaderSpec {
                    length: h.length,
                    default,
                    answer: h.answer,
                })
            }
        };
        let mut fields: Vec<Option<FieldSpec>> = vec![None; 129];
        for (key, raw) in &file.fields {
            let number: u8 = key
                .parse()
                .ok()
                .filter(|n| (2..=128).contains(n))
                .ok_or_else(|| err(format!("[fields.{key}]: field numbers run from 2 to 128")))?;
            if number == 65 {
                return Err(err(
                    "[fields.65]: field 65 is the tertiary bitmap, which Till does not support"
                        .into(),
                ));
            }
            fields[usize::from(number)] =
                Some(validate_field(number, raw).map_err(|p| err(format!("[fields.{key}]: {p}")))?);
        }
        let name = file.dialect.name.clone();
        let profile = Profile::from_file(
            ProfileFile {
                elements: file.elements,
                transactions: file.transactions,
                security: file.security,
                response_codes: file.response_codes,
                outcomes: file.outcomes,
                reversal: file.reversal,
                settlement: file.settlement,
                answer: file.answer,
            },
            &fields,
        )
        .map_err(err)?;
        Ok(Dialect {
            name,
            description: file.dialect.description,
            mti_encoding: file.dialect.mti,
            bitmap_encoding: file.dialect.bitmap,
            header,
            framing: file.dialect.framing,
            fields,
            profile,
        })
    }

    /// The field's definition, if the dialect has one.
    pub fn field(&self, number: u8) -> Option<&FieldSpec> {
        self.fields
            .get(usize::from(number))
            .and_then(Option::as_ref)
    }

    /// All defined fields in number order.
    pub fn fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.fields.iter().flatten()
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DialectFile {
    dialect: DialectSection,
    #[serde(default)]
    fields: BTreeMap<String, RawField>,
    #[serde(default)]
    elements: BTreeMap<String, String>,
    #[serde(default)]
    transactions: BTreeMap<String, RawTxn>,
    security: Option<RawSecurity>,
    #[serde(default)]
    response_codes: BTreeMap<String, ResponseCode>,
    #[serde(default)]
    outcomes: BTreeMap<Outcome, String>,
    reversal: Option<ReversalRules>,
    settlement: Option<SettlementRules>,
    #[serde(default)]
    answer: RawAnswer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DialectSection {
    name: String,
    #[serde(default)]
    description: String,
    mti: MtiEncoding,
    bitmap: BitmapEncoding,
    framing: FrameFormat,
    header: Option<RawHeader>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    length: usize,
    default: String,
    answer: HeaderAnswer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: String,
    #[serde(rename = "type")]
    kind: DataKind,
    length: String,
    max: usize,
    encoding: DataEncoding,
    #[serde(default)]
    length_encoding: Option<LengthEncoding>,
    #[serde(default)]
    pad: Option<String>,
    #[serde(default)]
    sensitive: Sensitivity,
    #[serde(default)]
    subfields: Vec<RawSubfield>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubfield {
    name: String,
    length: usize,
}

fn validate_field(number: u8, raw: &RawField) -> Result<FieldSpec, String> {
    let length = LengthKind::parse(&raw.length).ok_or_else(|| {
        format!(
            "length {:?} must be fixed, lvar, llvar, lllvar or llllvar",
            raw.length
        )
    })?;
    let pad = match &raw.pad {
        None => None,
        Some(p) => Some(Pad::parse(p).ok_or_else(|| {
            format!("pad {p:?} must be left-0, right-0, left-F, right-F, left-space or right-space")
        })?),
    };
    let length_encoding = match (length, raw.length_encoding) {
        (LengthKind::Fixed, e) => e.unwrap_or(LengthEncoding::Ascii),
        (LengthKind::Variable(_), Some(e)) => e,
        (LengthKind::Variable(_), None) => {
            return Err(
                "a variable-length field needs length_encoding (ascii, ebcdic, bcd or binary)"
                    .into(),
            );
        }
    };
    if raw.max == 0 {
        return Err("max must be at least 1".into());
    }
    match (raw.kind, raw.encoding) {
        (DataKind::B, DataEncoding::Binary) => {}
        (DataKind::B, _) => return Err("type b (binary) needs encoding = \"binary\"".into()),
        (_, DataEncoding::Binary) => return Err("encoding binary is only for type b".into()),
        (DataKind::N | DataKind::Z, DataEncoding::Bcd) => {}
        (k, DataEncoding::Bcd) => {
            return Err(format!(
                "BCD can only carry types n and z, not {}",
                k.notation()
            ));
        }
        _ => {}
    }
    if let Some(p) = pad {
        let fits = match raw.encoding {
            DataEncoding::Bcd => p.nibble().is_some(),
            DataEncoding::Ascii | DataEncoding::Ebcdic => p.text_char().is_some(),
            DataEncoding::Binary => false,
        };
        if !fits {
            return Err(format!(
                "pad {:?} does not apply to {:?} data",
                raw.pad.as_deref().unwrap_or(""),
                raw.encoding
            ));
        }
        if p.text_char() == Some(b'0')
            && raw.encoding != DataEncoding::Bcd
            && !matches!(raw.kind, DataKind::N)
        {
            return Err("text pad with '0' is only for type n".into());
        }
    }
    if raw.encoding == DataEncoding::Bcd
        && pad.is_none()
        && (length != LengthKind::Fixed || raw.max % 2 == 1)
    {
        return Err("a BCD field that can have an odd number of digits needs pad (left-0, right-0, left-F or right-F)".into());
    }
    let mut spec = FieldSpec {
        number,
        name: raw.name.clone(),
        kind: raw.kind,
        length,
        max: raw.max,
        encoding: raw.encoding,
        length_encoding,
        pad,
        sensitive: raw.sensitive,
        subfields: Vec::new(),
    };
    if spec.max > spec.prefix_capacity() {
        return Err(format!(
            "max {} does not fit a {} length prefix in {:?} (at most {})",
            spec.max,
            raw.length,
            length_encoding,
            spec.prefix_capacity()
        ));
    }
    let mut offset = 0;
    for s in &raw.subfields {
        if s.length == 0 {
            return Err(format!(
                "subfield {:?} needs a length of at least 1",
                s.name
            ));
        }
        spec.subfields.push(SubfieldSpec {
            name: s.name.clone(),
            length: s.length,
            offset,
        });
        offset += s.length;
    }
    if offset > spec.max {
        return Err(format!(
            "subfields add up to {offset}, more than max {}",
            spec.max
        ));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: &str =
        "[dialect]\nname = \"t\"\nmti = \"ascii\"\nbitmap = \"hex\"\nframing = \"u16be\"\n";

    fn load(fields: &str) -> Result<Dialect, SpecError> {
        Dialect::from_toml("test", &format!("{FRAME}{fields}"))
    }

    #[test]
    fn builtin_dialects_load() {
        for name in Dialect::builtin_names() {
            let d = Dialect::load(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(d.name, name);
            assert!(d.fields().count() > 20, "{name} defines few fields");
        }
    }

    #[test]
    fn a_response_action_needs_its_chinese_too() {
        for name in Dialect::builtin_names() {
            let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).expect("builtin");
            let cut = text.replacen("action_zh = ", "# action_zh = ", 1);
            let e = Dialect::from_toml(name, &cut).unwrap_err().to_string();
            assert!(
                e.contains("action and action_zh go together"),
                "{name}: {e}"
            );
        }
    }

    #[test]
    fn unknown_dialect_names_the_builtins() {
        let e = Dialect::load("nosuch").unwrap_err();
        assert!(e.to_string().contains("iso87ascii, cup"), "{e}");
    }

    #[test]
    fn field_validation_errors_name_the_field() {
        let cases = [
            (
                "[fields.2]\nname='x'\ntype='n'\nlength='llvar'\nmax=19\nencoding='ascii'\n",
                "needs length_encoding",
            ),
            (
                "[fields.2]\nname='x'\ntype='an'\nlength='fixed'\nmax=3\nencoding='bcd'\n",
                "BCD can only carry",
            ),
            (
                "[fields.2]\nname='x'\ntype='b'\nlength='fixed'\nmax=8\nencoding='ascii'\n",
                "needs encoding",
            ),
            (
                "[fields.2]\nname='x'\ntype='n'\nlength='llvar'\nmax=19\nencoding='bcd'\nlength_encoding='bcd'\n",
                "needs pad",
            ),
            (
                "[fields.2]\nname='x'\ntype='n'\nlength='llvar'\nmax=100\nencoding='ascii'\nlength_encoding='ascii'\n",
                "does not fit",
            ),
            (
                "[fields.2]\nname='x'\ntype='n'\nlength='xvar'\nmax=1\nencoding='ascii'\n",
                "must be fixed",
            ),
            (
                "[fields.1]\nname='x'\ntype='n'\nlength='fixed'\nmax=1\nencoding='ascii'\n",
                "from 2 to 128",
            ),
            (
                "[fields.2]\nname='x'\ntype='n'\nlength='fixed'\nmax=4\nencoding='ascii'\nsubfields=[{name='a',length=5}]\n",
                "add up to 5",
            ),
            (
                "[fields.2]\nname='x'\ntype='an'\nlength='fixed'\nmax=4\nencoding='ascii'\npad='left-0'\n",
                "only for type n",
            ),
            (
                "[fields.2]\nname='x'\ntype='n'\nlength='fixed'\nmax=4\nencoding='ascii'\nbogus=1\n",
                "unknown field",
            ),
        ];
        for (text, expect) in cases {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains(expect), "expected {expect:?} in {e:?}");
            if !expect.contains("unknown") && !expect.contains("from 2") {
                assert!(e.contains("[fields.2]"), "{e}");
            }
        }
    }

    #[test]
    fn prefix_sizes() {
        let d = load(
            "[fields.2]\nname='x'\ntype='n'\nlength='lllvar'\nmax=999\nencoding='bcd'\nlength_encoding='bcd'\npad='right-0'\n\
             [fields.3]\nname='y'\ntype='b'\nlength='lllvar'\nmax=999\nencoding='binary'\nlength_encoding='binary'\n",
        )
        .unwrap();
        assert_eq!(d.field(2).unwrap().prefix_len(), 2);
        assert_eq!(d.field(3).unwrap().prefix_len(), 2);
        assert_eq!(d.field(2).unwrap().data_len(5), 3);
    }

    #[test]
    fn tpdu_answer_swaps_addresses() {
        let h = HeaderSpec {
            length: 5,
            default: vec![0x60, 0, 1, 0, 2],
            answer: HeaderAnswer::SwapTpdu,
        };
        assert_eq!(
            h.answer_to(&[0x60, 0, 1, 0, 2, 9]),
            vec![0x60, 0, 2, 0, 1, 9]
        );
    }
}
