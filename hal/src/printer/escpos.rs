//! ESC/POS command encoding: a builder that appends commands and text to a
//! byte buffer. Text never carries control bytes (they are replaced), so
//! receipt data cannot inject printer commands.
//!
//! Chinese text uses the printer's Chinese character mode (`FS &`) with
//! GB18030 encoding, the default of the thermal printers sold in China;
//! the builder enters that mode by itself before the first non-ASCII text.

use encoding_rs::GB18030;

/// ASCII control bytes used by ESC/POS.
pub(crate) const ESC: u8 = 0x1B;
pub(crate) const GS: u8 = 0x1D;
pub(crate) const FS: u8 = 0x1C;
pub(crate) const DLE: u8 = 0x10;
pub(crate) const EOT: u8 = 0x04;
pub(crate) const LF: u8 = 0x0A;

/// Horizontal alignment (`ESC a n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Align {
    /// Left (n = 0).
    #[default]
    Left,
    /// Centre (n = 1).
    Center,
    /// Right (n = 2).
    Right,
}

/// QR code error correction level (`GS ( k` function 169).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrEcc {
    /// ~7 % recovery.
    L,
    /// ~15 %.
    M,
    /// ~25 %.
    Q,
    /// ~30 %.
    H,
}

impl QrEcc {
    pub(crate) fn byte(self) -> u8 {
        match self {
            QrEcc::L => 48,
            QrEcc::M => 49,
            QrEcc::Q => 50,
            QrEcc::H => 51,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<QrEcc> {
        Some(match b {
            48 => QrEcc::L,
            49 => QrEcc::M,
            50 => QrEcc::Q,
            51 => QrEcc::H,
            _ => return None,
        })
    }
}

/// Barcode symbologies (`GS k m n d…`, function B).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Barcode {
    /// EAN-13: 12 or 13 digits (m = 67).
    Ean13,
    /// CODE39: digits, capitals, space and `$%*+-./` (m = 69).
    Code39,
    /// CODE128 code set B: printable ASCII (m = 73).
    Code128,
}

impl Barcode {
    pub(crate) fn m(self) -> u8 {
        match self {
            Barcode::Ean13 => 67,
            Barcode::Code39 => 69,
            Barcode::Code128 => 73,
        }
    }
}

/// Data that a command cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// QR payload empty or over the 7089 bytes a version 40 code holds.
    #[error("QR code payload of {0} bytes: must be 1 to 7089 bytes")]
    QrLength(usize),
    /// Barcode data the symbology cannot encode.
    #[error("{kind:?} cannot encode {data:?}: {why}")]
    Barcode {
        /// The symbology.
        kind: Barcode,
        /// The data.
        data: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// An ESC/POS byte stream under construction.
///
/// ```
/// use till_hal::printer::escpos::{Align, EscPos};
/// let mut p = EscPos::new();
/// p.align(Align::Center).bold(true).line("收据 RECEIPT").cut();
/// let bytes = p.into_bytes();
/// assert_eq!(&bytes[..2], b"\x1b@");
/// ```
#[derive(Debug, Clone, Default)]
pub struct EscPos {
    buf: Vec<u8>,
    chinese: bool,
}

impl EscPos {
    /// A stream starting with `ESC @` (initialise: clears modes left by a
    /// previous job).
    pub fn new() -> Self {
        let mut p = EscPos::default();
        p.init();
        p
    }

    /// `ESC @`: back to the printer's defaults.
    pub fn init(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&[ESC, b'@']);
        self.chinese = false;
        self
    }

    /// `ESC a n`.
    pub fn align(&mut self, align: Align) -> &mut Self {
        let n = match align {
            Align::Left => 0,
            Align::Center => 1,
            Align::Right => 2,
        };
        self.buf.extend_from_slice(&[ESC, b'a', n]);
        self
    }

    /// `ESC E n`.
    pub fn bold(&mut self, on: bool) -> &mut Self {
        self.buf.extend_from_slice(&[ESC, b'E', u8::from(on)]);
        self
    }

    /// `GS ! n`: character size, 1–8 times in each direction.
    pub fn size(&mut self, width: u8, height: u8) -> &mut Self {
        let w = width.clamp(1, 8) - 1;
        let h = height.clamp(1, 8) - 1;
        self.buf.extend_from_slice(&[GS, b'!', (w << 4) | h]);
        self
    }

    /// `ESC t n`: the single-byte code page (e.g. 0 = PC437, 19 = PC858).
    pub fn code_page(&mut self, n: u8) -> &mut Self {
        self.buf.extend_from_slice(&[ESC, b't', n]);
        self
    }

    /// `FS &` / `FS .`: Chinese character mode on or off. In it, bytes
    /// from 0x80 are GB18030 sequences.
    pub fn chinese(&mut self, on: bool) -> &mut Self {
        self.buf
            .extend_from_slice(&[FS, if on { b'&' } else { b'.' }]);
        self.chinese = on;
        self
    }

    /// Text without a line feed. Control characters become `?`; non-ASCII
    /// text switches Chinese mode on and is encoded in GB18030.
    pub fn text(&mut self, s: &str) -> &mut Self {
        if !s.is_ascii() && !self.chinese {
            self.chinese(true);
        }
        let clean: String = s
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        if clean.is_ascii() {
            self.buf.extend_from_slice(clean.as_bytes());
        } else {
            let (bytes, _, _) = GB18030.encode(&clean);
            self.buf.extend_from_slice(&bytes);
        }
        self
    }

    /// Text and a line feed (prints the line).
    pub fn line(&mut self, s: &str) -> &mut Self {
        self.text(s);
        self.buf.push(LF);
        self
    }

    /// `ESC d n`: print and feed `n` lines.
    pub fn feed(&mut self, n: u8) -> &mut Self {
        self.buf.extend_from_slice(&[ESC, b'd', n]);
        self
    }

    /// A QR code (model 2): `GS ( k` functions 165 (model), 167 (module
    /// size in dots, 1–16), 169 (error correction), 180 (store) and 181
    /// (print).
    pub fn qr(&mut self, data: &[u8], module: u8, ecc: QrEcc) -> Result<&mut Self, EncodeError> {
        if data.is_empty() || data.len() > 7089 {
            return Err(EncodeError::QrLength(data.len()));
        }
        let k = |buf: &mut Vec<u8>, body: &[u8]| {
            let len = body.len() as u16;
            buf.extend_from_slice(&[GS, b'(', b'k', (len & 0xFF) as u8, (len >> 8) as u8]);
            buf.extend_from_slice(body);
        };
        k(&mut self.buf, &[49, 65, 50, 0]);
        k(&mut self.buf, &[49, 67, module.clamp(1, 16)]);
        k(&mut self.buf, &[49, 69, ecc.byte()]);
        let mut store = vec![49, 80, 48];
        store.extend_from_slice(data);
        k(&mut self.buf, &store);
        k(&mut self.buf, &[49, 81, 48]);
        Ok(self)
    }

    /// A barcode with its human-readable text below: `GS H 2`, `GS h 80`
    /// (height in dots), `GS w 2` (module width), then `GS k m n d…`.
    pub fn barcode(&mut self, kind: Barcode, data: &str) -> Result<&mut Self, EncodeError> {
        let bad = |why| EncodeError::Barcode {
            kind,
            data: data.to_string(),
            why,
        };
        let payload: Vec<u8> = match kind {
            Barcode::Ean13 => {
                if !matches!(data.len(), 12 | 13) || !data.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("EAN-13 takes 12 or 13 digits"));
                }
                data.as_bytes().to_vec()
            }
            Barcode::Code39 => {
                let ok = |c: u8| {
                    c.is_ascii_digit() || c.is_ascii_uppercase() || b" $%*+-./".contains(&c)
                };
                if data.is_empty() || data.len() > 253 || !data.bytes().all(ok) {
                    return Err(bad("CODE39 takes 1–253 of 0-9 A-Z space $ % * + - . /"));
                }
                data.as_bytes().to_vec()
            }
            Barcode::Code128 => {
                if data.is_empty()
                    || data.len() > 250
                    || !data.bytes().all(|b| (0x20..0x7F).contains(&b))
                    || data.starts_with('{')
                {
                    return Err(bad(
                        "CODE128 takes 1–250 printable ASCII characters, not starting with '{'",
                    ));
                }
                // Code set B selected by the "{B" prefix.
                let mut v = b"{B".to_vec();
                v.extend_from_slice(data.as_bytes());
                v
            }
        };
        self.buf
            .extend_from_slice(&[GS, b'H', 2, GS, b'h', 80, GS, b'w', 2]);
        self.buf
            .extend_from_slice(&[GS, b'k', kind.m(), payload.len() as u8]);
        self.buf.extend_from_slice(&payload);
        Ok(self)
    }

    /// `GS V 66 n`: feed to the cutter (plus 3 lines) and cut, partially
    /// (a tab left, so the receipt does not fall) or fully (`GS V 65 n`).
    pub fn cut(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&[GS, b'V', 66, 3]);
        self
    }

    /// A full cut (`GS V 65 n`).
    pub fn full_cut(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&[GS, b'V', 65, 3]);
        self
    }

    /// Raw bytes, for commands this builder lacks.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// The bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The finished stream.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// `DLE EOT n`: real-time status request (1 printer, 2 offline cause,
/// 3 error cause, 4 paper roll sensor).
pub fn status_request(n: u8) -> [u8; 3] {
    [DLE, EOT, n]
}
