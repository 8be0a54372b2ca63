//! The simulated printer: a model of an ESC/POS printer that interprets the
//! bytes it receives, answers status requests from its (settable) state,
//! and renders each cut receipt to text and, with a font, to PNG.
//!
//! [`PrinterModel`] is the byte-level model (also used at the far end of a
//! pseudo-terminal in tests); [`SimulatedPrinter`] wraps it as a
//! [`PrinterLink`] so the real driver runs against it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use super::decode::{Element, Interpreter, Line};
use super::escpos::Align;
use super::receipt::{char_columns, text_columns, wrap};
use super::{PaperWidth, PrinterLink};

/// What the simulated printer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModelState {
    /// Switched offline (e.g. by a button).
    pub offline: bool,
    /// Cover open.
    pub cover_open: bool,
    /// Paper nearly used up.
    pub paper_near_end: bool,
    /// No paper.
    pub paper_out: bool,
    /// Cutter jammed.
    pub cutter_error: bool,
    /// Does not answer at all (unplugged, wrong baud rate).
    pub silent: bool,
}

/// An ESC/POS printer at the byte level.
#[derive(Debug, Clone)]
pub struct PrinterModel {
    /// Settable state.
    pub state: ModelState,
    interpreter: Interpreter,
    page: Vec<Element>,
    pages: Vec<Vec<Element>>,
    received: Vec<u8>,
}

impl Default for PrinterModel {
    fn default() -> Self {
        PrinterModel::new()
    }
}

impl PrinterModel {
    /// A ready printer with paper.
    pub fn new() -> Self {
        PrinterModel {
            state: ModelState::default(),
            interpreter: Interpreter::new(),
            page: Vec::new(),
            pages: Vec::new(),
            received: Vec::new(),
        }
    }

    /// Takes bytes from the host; returns the bytes the printer answers.
    /// While out of paper or with the cover open nothing is printed (a
    /// real printer would stop, then lose or print the buffer; here it is lost).
    pub fn receive(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.received.extend_from_slice(bytes);
        let mut answer = Vec::new();
        for e in self.interpreter.feed(bytes) {
            match e {
                Element::StatusRequest(n) => {
                    if let Some(b) = self.status_byte(n)
                        && !self.state.silent
                    {
                        answer.push(b);
                    }
                }
                Element::Cut { .. } => {
                    if self.can_print() {
                        self.page.push(e);
                        self.pages.push(std::mem::take(&mut self.page));
                    } else {
                        self.page.clear();
                    }
                }
                e if self.can_print() => self.page.push(e),
                _ => {}
            }
        }
        answer
    }

    fn can_print(&self) -> bool {
        let s = self.state;
        !(s.offline || s.cover_open || s.paper_out || s.cutter_error || s.silent)
    }

    /// The answer to `DLE EOT n` in the current state.
    pub fn status_byte(&self, n: u8) -> Option<u8> {
        let s = self.state;
        let offline = s.offline || s.cover_open || s.paper_out || s.cutter_error;
        let bit = |on: bool, b: u8| if on { b } else { 0 };
        Some(
            0x12 | match n {
                1 => bit(offline, 0x08),
                2 => bit(s.cover_open, 0x04) | bit(s.paper_out, 0x20) | bit(s.cutter_error, 0x40),
                3 => bit(s.cutter_error, 0x08 | 0x40),
                4 => bit(s.paper_near_end, 0x0C) | bit(s.paper_out, 0x60),
                _ => return None,
            },
        )
    }

    /// Receipts printed so far (each ends at a cut).
    pub fn pages(&self) -> &[Vec<Element>] {
        &self.pages
    }

    /// Every byte received.
    pub fn received(&self) -> &[u8] {
        &self.received
    }
}

/// A printer that is not there: the real driver talks to a [`PrinterModel`]
/// and every cut receipt is rendered (and saved, with an output directory).
pub struct SimulatedPrinter {
    /// The model (set its state to simulate paper out, cover open, …).
    pub model: PrinterModel,
    width: PaperWidth,
    answers: VecDeque<u8>,
    output: Option<PathBuf>,
    font: Option<PathBuf>,
    saved: usize,
}

impl SimulatedPrinter {
    /// A simulated printer with `width` paper, keeping receipts in memory.
    pub fn new(width: PaperWidth) -> Self {
        SimulatedPrinter {
            model: PrinterModel::new(),
            width,
            answers: VecDeque::new(),
            output: None,
            font: None,
            saved: 0,
        }
    }

    /// Also writes each receipt to `dir` as `receipt-NNNN.txt` and, with a
    /// font, `receipt-NNNN.png`.
    pub fn with_output(mut self, dir: PathBuf, font: Option<PathBuf>) -> Self {
        self.output = Some(dir);
        self.font = font;
        self
    }

    /// The receipts printed so far, rendered as text.
    pub fn receipts_text(&self) -> Vec<String> {
        self.model
            .pages()
            .iter()
            .map(|p| render_text(p, self.width))
            .collect()
    }

    fn save_new_pages(&mut self) -> std::io::Result<()> {
        let Some(dir) = &self.output else {
            return Ok(());
        };
        while self.saved < self.model.pages().len() {
            let page = &self.model.pages()[self.saved];
            std::fs::create_dir_all(dir)?;
            let stem = dir.join(format!("receipt-{:04}", self.saved + 1));
            std::fs::write(stem.with_extension("txt"), render_text(page, self.width))?;
            if let Some(font) = &self.font {
                let png = render_png(page, self.width, &std::fs::read(font)?)
                    .map_err(std::io::Error::other)?;
                std::fs::write(stem.with_extension("png"), png)?;
            }
            self.saved += 1;
        }
        Ok(())
    }
}

impl PrinterLink for SimulatedPrinter {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let answer = self.model.receive(bytes);
        self.answers.extend(answer);
        self.save_new_pages()
    }

    fn read_byte(&mut self, _timeout: Duration) -> std::io::Result<Option<u8>> {
        Ok(self.answers.pop_front())
    }

    fn discard_input(&mut self) -> std::io::Result<()> {
        self.answers.clear();
        Ok(())
    }

    fn name(&self) -> String {
        "simulated printer".into()
    }
}

fn place(text: &str, align: Align, columns: usize) -> String {
    let w = text_columns(text);
    if w >= columns {
        return text.to_string();
    }
    let pad = match align {
        Align::Left => 0,
        Align::Center => (columns - w) / 2,
        Align::Right => columns - w,
    };
    format!("{}{}", " ".repeat(pad), text)
        .trim_end()
        .to_string()
}

/// A receipt as plain text: lines placed by their alignment (double-width
/// text spaced out), a QR code as `[QR CODE]` over its payload, barcodes as
/// `[BARCODE data]`, the cut as a dashed line.
pub fn render_text(page: &[Element], width: PaperWidth) -> String {
    let columns = width.columns();
    let mut out = String::new();
    for e in page {
        match e {
            Element::Line(Line { text, style }) => {
                let w = usize::from(style.width.max(1));
                let spaced: String = if w > 1 {
                    // Double width shown as spaced-out letters.
                    text.chars()
                        .flat_map(|c| {
                            std::iter::once(c)
                                .chain(std::iter::repeat_n(' ', (w - 1) * char_columns(c)))
                        })
                        .collect::<String>()
                        .trim_end()
                        .to_string()
                } else {
                    text.clone()
                };
                out.push_str(&place(&spaced, style.align, columns));
                out.push('\n');
            }
            Element::Feed(n) => out.push_str(&"\n".repeat(usize::from(*n))),
            Element::Qr { data, align, .. } => {
                out.push_str(&place("[QR CODE]", *align, columns));
                out.push('\n');
                for piece in wrap(&String::from_utf8_lossy(data), columns) {
                    out.push_str(&place(&piece, *align, columns));
                    out.push('\n');
                }
            }
            Element::Barcode { data, .. } => {
                out.push_str(&place(&format!("[BARCODE {data}]"), Align::Center, columns));
                out.push('\n');
            }
            Element::Cut { .. } => out.push_str(&format!("{:-^columns$}\n", " cut ")),
            _ => {}
        }
    }
    out
}

/// A receipt as a PNG the width of the paper (384 or 576 dots), in the
/// printer's 12×24-dot character cell with the given TrueType/TTC font
/// (a CJK font such as WenQuanYi Micro Hei renders Chinese). QR codes and
/// barcodes are drawn as labelled boxes.
pub fn render_png(
    page: &[Element],
    width: PaperWidth,
    font_data: &[u8],
) -> Result<Vec<u8>, String> {
    use ab_glyph::{Font, FontRef, PxScale, ScaleFont};

    let font = FontRef::try_from_slice_and_index(font_data, 0)
        .map_err(|e| format!("cannot read the font: {e}"))?;
    let w = width.dots() as usize;
    let cell_w = 12usize;
    let line_h = 30usize; // 24-dot characters, 6 dots of line spacing
    // First pass: height.
    let mut h = 8usize;
    for e in page {
        h += match e {
            Element::Line(l) => line_h * usize::from(l.style.height.max(1)),
            Element::Feed(n) => line_h * usize::from(*n),
            Element::Qr { .. } => 200,
            Element::Barcode { .. } => 110,
            Element::Cut { .. } => line_h,
            _ => 0,
        };
    }
    let mut img = vec![255u8; w * h];
    let mut y = 4usize;
    let draw_text = |img: &mut Vec<u8>,
                     y: usize,
                     text: &str,
                     align: Align,
                     sw: usize,
                     sh: usize,
                     bold: bool| {
        let cols: usize = text.chars().map(|c| char_columns(c) * sw).sum();
        let tw = cols * cell_w;
        let x0 = match align {
            Align::Left => 0,
            Align::Center => w.saturating_sub(tw) / 2,
            Align::Right => w.saturating_sub(tw),
        };
        let scale = PxScale {
            x: 24.0 * sw as f32,
            y: 24.0 * sh as f32,
        };
        let sf = font.as_scaled(scale);
        let mut x = x0 as f32;
        for c in text.chars() {
            let advance = (char_columns(c) * sw * cell_w) as f32;
            let glyph = sf.scaled_glyph(c);
            let glyph = ab_glyph::Glyph {
                position: ab_glyph::point(x, y as f32 + sf.ascent()),
                ..glyph
            };
            if let Some(outlined) = font.outline_glyph(glyph) {
                let b = outlined.px_bounds();
                outlined.draw(|gx, gy, cov| {
                    for dx in 0..=usize::from(bold) {
                        let px = b.min.x as i64 + i64::from(gx) + dx as i64;
                        let py = b.min.y as i64 + i64::from(gy);
                        if px >= 0 && py >= 0 && (px as usize) < w && (py as usize) < h {
                            let i = py as usize * w + px as usize;
                            let v = (255.0 * (1.0 - cov.clamp(0.0, 1.0))) as u8;
                            img[i] = img[i].min(v);
                        }
                    }
                });
            }
            x += advance;
        }
    };
    let rect = |img: &mut Vec<u8>, x0: usize, y0: usize, rw: usize, rh: usize| {
        for yy in y0..(y0 + rh).min(h) {
            for xx in x0..(x0 + rw).min(w) {
                if yy == y0 || yy + 1 == y0 + rh || xx == x0 || xx + 1 == x0 + rw {
                    img[yy * w + xx] = 0;
                }
            }
        }
    };
    for e in page {
        match e {
            Element::Line(l) => {
                let (sw, sh) = (
                    usize::from(l.style.width.max(1)),
                    usize::from(l.style.height.max(1)),
                );
                draw_text(&mut img, y, &l.text, l.style.align, sw, sh, l.style.bold);
                y += line_h * sh;
            }
            Element::Feed(n) => y += line_h * usize::from(*n),
            Element::Qr { data, .. } => {
                let side = 180;
                rect(&mut img, (w - side) / 2, y + 4, side, side);
                let label: String = String::from_utf8_lossy(data).chars().take(12).collect();
                draw_text(
                    &mut img,
                    y + side / 2 - 12,
                    &format!("QR {label}"),
                    Align::Center,
                    1,
                    1,
                    false,
                );
                y += 200;
            }
            Element::Barcode { data, .. } => {
                rect(&mut img, w / 8, y + 4, w * 3 / 4, 70);
                draw_text(&mut img, y + 78, data, Align::Center, 1, 1, false);
                y += 110;
            }
            Element::Cut { .. } => {
                for xx in (0..w).step_by(8) {
                    for dx in 0..4 {
                        if xx + dx < w && y + line_h / 2 < h {
                            img[(y + line_h / 2) * w + xx + dx] = 0;
                        }
                    }
                }
                y += line_h;
            }
            _ => {}
        }
    }
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, w as u32, h as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&img).map_err(|e| e.to_string())?;
    }
    Ok(png_bytes)
}
