//! An ESC/POS interpreter: turns a byte stream back into printed lines (with
//! their alignment, weight and size), QR codes, barcodes, cuts and status
//! requests. It is how the tests check what the driver sends, and what the
//! simulated printer renders.
//!
//! It accepts bytes in any chunks (a command split across reads waits for
//! its tail), and never panics: bytes it does not understand come out as
//! [`Element::Unknown`].

use encoding_rs::GB18030;

use super::escpos::{Align, DLE, EOT, ESC, FS, GS, LF, QrEcc};

/// How a line was printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    /// Alignment.
    pub align: Align,
    /// Emphasised.
    pub bold: bool,
    /// Width multiplier (1–8).
    pub width: u8,
    /// Height multiplier (1–8).
    pub height: u8,
}

/// One printed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The text, decoded (GB18030 in Chinese mode).
    pub text: String,
    /// The style when the line's first character arrived.
    pub style: Style,
}

/// What the printer was told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// `ESC @`.
    Init,
    /// A line of text (ended by LF, or printed by `ESC d`).
    Line(Line),
    /// `ESC d n`: feed `n` lines.
    Feed(u8),
    /// A QR code printed (`GS ( k` function 181) with the stored payload.
    Qr {
        /// Payload stored with function 180.
        data: Vec<u8>,
        /// Module size in dots.
        module: u8,
        /// Error correction.
        ecc: Option<QrEcc>,
        /// Alignment in force.
        align: Align,
    },
    /// A barcode (`GS k`).
    Barcode {
        /// Symbology byte `m`.
        m: u8,
        /// Data bytes as text.
        data: String,
    },
    /// `GS V`: cut.
    Cut {
        /// Partial (tab left) rather than full.
        partial: bool,
    },
    /// `ESC t n`.
    CodePage(u8),
    /// `FS &` (true) / `FS .` (false).
    ChineseMode(bool),
    /// `DLE EOT n`.
    StatusRequest(u8),
    /// Bytes not understood.
    Unknown(Vec<u8>),
}

/// The interpreter's state between chunks.
#[derive(Debug, Clone, Default)]
pub struct Interpreter {
    pending: Vec<u8>,
    style: Style,
    line: Vec<u8>,
    line_style: Option<Style>,
    chinese: bool,
    qr_data: Vec<u8>,
    qr_module: u8,
    qr_ecc: Option<QrEcc>,
}

/// A step of parsing: consumed `n` bytes, maybe producing elements; or the
/// command is incomplete.
enum Step {
    Done(usize),
    Incomplete,
}

impl Interpreter {
    /// A fresh interpreter (printer defaults).
    pub fn new() -> Self {
        Interpreter {
            style: Style {
                width: 1,
                height: 1,
                ..Style::default()
            },
            qr_module: 3,
            ..Interpreter::default()
        }
    }

    /// Decodes a whole stream at once, flushing an unterminated last line.
    pub fn decode(bytes: &[u8]) -> Vec<Element> {
        let mut i = Interpreter::new();
        let mut out = i.feed(bytes);
        out.extend(i.finish());
        out
    }

    /// Feeds more bytes; returns the elements they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Element> {
        self.pending.extend_from_slice(bytes);
        let buf = std::mem::take(&mut self.pending);
        let mut out = Vec::new();
        let mut i = 0;
        while i < buf.len() {
            match self.step(&buf[i..], &mut out) {
                Step::Done(n) => i += n.max(1),
                Step::Incomplete => break,
            }
        }
        self.pending = buf[i.min(buf.len())..].to_vec();
        out
    }

    /// Ends the stream: an unterminated line and an incomplete command come out.
    pub fn finish(&mut self) -> Vec<Element> {
        let mut out = Vec::new();
        self.flush_line(&mut out, false);
        if !self.pending.is_empty() {
            out.push(Element::Unknown(std::mem::take(&mut self.pending)));
        }
        out
    }

    fn flush_line(&mut self, out: &mut Vec<Element>, always: bool) {
        if self.line.is_empty() && !always {
            return;
        }
        let bytes = std::mem::take(&mut self.line);
        let text = if self.chinese {
            GB18030.decode_without_bom_handling(&bytes).0.into_owned()
        } else {
            // Code pages other than ASCII are shown as Latin-1.
            bytes.iter().map(|&b| char::from(b)).collect()
        };
        let style = self.line_style.take().unwrap_or(self.style);
        out.push(Element::Line(Line { text, style }));
    }

    fn step(&mut self, b: &[u8], out: &mut Vec<Element>) -> Step {
        let need = |n: usize| {
            if b.len() < n {
                Err(Step::Incomplete)
            } else {
                Ok(())
            }
        };
        let r: Result<usize, Step> = (|| match b[0] {
            LF => {
                self.flush_line(out, true);
                Ok(1)
            }
            b'\r' => Ok(1),
            ESC => {
                need(2)?;
                match b[1] {
                    b'@' => {
                        self.flush_line(out, false);
                        *self = Interpreter::new();
                        out.push(Element::Init);
                        Ok(2)
                    }
                    b'a' => {
                        need(3)?;
                        self.style.align = match b[2] {
                            1 | b'1' => Align::Center,
                            2 | b'2' => Align::Right,
                            _ => Align::Left,
                        };
                        Ok(3)
                    }
                    b'E' => {
                        need(3)?;
                        self.style.bold = b[2] & 1 == 1;
                        Ok(3)
                    }
                    b'!' => {
                        need(3)?;
                        self.style.bold = b[2] & 0x08 != 0;
                        self.style.height = if b[2] & 0x10 != 0 { 2 } else { 1 };
                        self.style.width = if b[2] & 0x20 != 0 { 2 } else { 1 };
                        Ok(3)
                    }
                    b'd' => {
                        need(3)?;
                        self.flush_line(out, false);
                        out.push(Element::Feed(b[2]));
                        Ok(3)
                    }
                    b't' => {
                        need(3)?;
                        out.push(Element::CodePage(b[2]));
                        Ok(3)
                    }
                    b'-' | b'3' | b'J' | b'M' | b'G' | b'{' | b'V' | b'R' => {
                        need(3)?;
                        Ok(3)
                    }
                    b'2' => Ok(2),
                    _ => {
                        out.push(Element::Unknown(b[..2].to_vec()));
                        Ok(2)
                    }
                }
            }
            GS => {
                need(2)?;
                match b[1] {
                    b'!' => {
                        need(3)?;
                        self.style.width = (b[2] >> 4) + 1;
                        self.style.height = (b[2] & 0x0F) + 1;
                        Ok(3)
                    }
                    b'V' => {
                        need(3)?;
                        match b[2] {
                            0 | 48 => self.cut(out, false, 3),
                            1 | 49 => self.cut(out, true, 3),
                            65 | 66 => {
                                need(4)?;
                                self.cut(out, b[2] == 66, 4)
                            }
                            _ => {
                                out.push(Element::Unknown(b[..3].to_vec()));
                                Ok(3)
                            }
                        }
                    }
                    b'k' => {
                        need(3)?;
                        let m = b[2];
                        if m <= 6 {
                            let Some(end) = b[3..].iter().position(|&x| x == 0) else {
                                return Err(Step::Incomplete);
                            };
                            let data = String::from_utf8_lossy(&b[3..3 + end]).into_owned();
                            self.flush_line(out, false);
                            out.push(Element::Barcode { m, data });
                            Ok(4 + end)
                        } else {
                            need(4)?;
                            let n = b[3] as usize;
                            need(4 + n)?;
                            let data = String::from_utf8_lossy(&b[4..4 + n]).into_owned();
                            self.flush_line(out, false);
                            out.push(Element::Barcode { m, data });
                            Ok(4 + n)
                        }
                    }
                    b'(' => {
                        need(5)?;
                        let len = b[3] as usize | (b[4] as usize) << 8;
                        need(5 + len)?;
                        let body = &b[5..5 + len];
                        if b[2] == b'k' {
                            self.qr_function(body, out);
                        } else {
                            out.push(Element::Unknown(b[..5 + len].to_vec()));
                        }
                        Ok(5 + len)
                    }
                    b'H' | b'h' | b'w' | b'B' | b'f' | b'a' | b'b' => {
                        need(3)?;
                        Ok(3)
                    }
                    b'L' | b'W' => {
                        need(4)?;
                        Ok(4)
                    }
                    _ => {
                        out.push(Element::Unknown(b[..2].to_vec()));
                        Ok(2)
                    }
                }
            }
            FS => {
                need(2)?;
                match b[1] {
                    b'&' => {
                        self.flush_line(out, false);
                        self.chinese = true;
                        out.push(Element::ChineseMode(true));
                        Ok(2)
                    }
                    b'.' => {
                        self.flush_line(out, false);
                        self.chinese = false;
                        out.push(Element::ChineseMode(false));
                        Ok(2)
                    }
                    b'!' | b'-' | b'W' | b'C' => {
                        need(3)?;
                        Ok(3)
                    }
                    _ => {
                        out.push(Element::Unknown(b[..2].to_vec()));
                        Ok(2)
                    }
                }
            }
            DLE => {
                need(2)?;
                if b[1] == EOT {
                    need(3)?;
                    out.push(Element::StatusRequest(b[2]));
                    Ok(3)
                } else {
                    out.push(Element::Unknown(b[..2].to_vec()));
                    Ok(2)
                }
            }
            c if c < 0x20 || c == 0x7F => {
                out.push(Element::Unknown(vec![c]));
                Ok(1)
            }
            c => {
                if self.line.is_empty() {
                    self.line_style = Some(self.style);
                }
                self.line.push(c);
                Ok(1)
            }
        })();
        match r {
            Ok(n) => Step::Done(n),
            Err(s) => s,
        }
    }

    fn cut(&mut self, out: &mut Vec<Element>, partial: bool, n: usize) -> Result<usize, Step> {
        self.flush_line(out, false);
        out.push(Element::Cut { partial });
        Ok(n)
    }

    fn qr_function(&mut self, body: &[u8], out: &mut Vec<Element>) {
        // body: cn fn parameters…; cn 49 = QR code.
        match body {
            [49, 65, ..] => {}
            [49, 67, n, ..] => self.qr_module = *n,
            [49, 69, n, ..] => self.qr_ecc = QrEcc::from_byte(*n),
            [49, 80, 48, data @ ..] => self.qr_data = data.to_vec(),
            [49, 81, 48, ..] => {
                self.flush_line(out, false);
                out.push(Element::Qr {
                    data: self.qr_data.clone(),
                    module: self.qr_module,
                    ecc: self.qr_ecc,
                    align: self.style.align,
                });
            }
            _ => {
                let mut v = vec![GS, b'(', b'k'];
                v.extend_from_slice(body);
                out.push(Element::Unknown(v));
            }
        }
    }
}

/// The lines of a decoded stream, as text.
pub fn lines(elements: &[Element]) -> Vec<String> {
    elements
        .iter()
        .filter_map(|e| match e {
            Element::Line(l) => Some(l.text.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_across_chunks_wait_for_their_tail() {
        let mut i = Interpreter::new();
        assert!(i.feed(&[GS, b'(', b'k', 4]).is_empty());
        assert!(i.feed(&[0, 49, 80, 48]).is_empty());
        assert!(i.feed(b"x").is_empty());
        let out = i.feed(&[GS, b'(', b'k', 3, 0, 49, 81, 48, DLE]);
        assert!(matches!(&out[0], Element::Qr { data, .. } if data == b"x"));
        assert_eq!(i.feed(&[EOT, 2]), vec![Element::StatusRequest(2)]);
    }
}
