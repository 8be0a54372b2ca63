//! Receipt printer: ESC/POS over a serial port.
//!
//! - [`escpos`]: command encoding (text, alignment, bold, sizes, GB18030
//!   Chinese, QR codes, barcodes, cut, status requests);
//! - [`decode`]: an ESC/POS interpreter (tests, simulator);
//! - [`receipt`]: the receipt layout for 58 mm and 80 mm paper;
//! - `serial`: the serial port link ([`SerialLink`]);
//! - [`sim`]: a simulated printer that answers status requests and renders
//!   receipts to text and PNG.
//!
//! [`Printer`] is generic over its [`PrinterLink`], so the serial port, a
//! pseudo-terminal and the simulator all run the same driver. Before and
//! after every job it asks the printer's status (`DLE EOT 1–4`); a job that
//! could not be printed, or ran into a paper-out, stays queued for reprint.
//!
//! ```no_run
//! use till_hal::printer::{self, receipt::Receipt};
//! let config = till_hal::config::DevicesConfig::default();
//! let mut printer = printer::open(&config.printer)?;
//! printer.print_receipt(&Receipt::sample())?;
//! # Ok::<(), till_hal::printer::Error>(())
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod decode;
pub mod escpos;
pub mod receipt;
mod serial;
pub mod sim;

pub use serial::SerialLink;

use crate::config::PrinterConfig;

/// What printing can fail with. Messages say what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The port could not be opened.
    #[error("printer: {0}")]
    Open(String),
    /// No answer to a status request.
    #[error(
        "no answer from the printer on {port} within {waited_ms} ms — check that it is switched \
         on and connected, and that the baud rate ({baud}) and flow control match the printer's \
         settings (its self-test page shows them)"
    )]
    NoAnswer {
        /// The port.
        port: String,
        /// How long we waited for one byte.
        waited_ms: u64,
        /// The configured baud rate.
        baud: u32,
    },
    /// A status answer that is not one (wrong baud rate, another device).
    #[error(
        "printer on {port} answered status request {request} with 0x{byte:02X}, which is not an \
         ESC/POS status byte — check the baud rate and that this port has an ESC/POS printer"
    )]
    BadStatus {
        /// The port.
        port: String,
        /// The `n` of `DLE EOT n`.
        request: u8,
        /// What came back.
        byte: u8,
    },
    /// Out of paper.
    #[error("the printer is out of paper — load a new roll and close the cover")]
    PaperOut,
    /// Cover open.
    #[error("the printer's cover is open — close it")]
    CoverOpen,
    /// Offline for another reason (e.g. feeding, error).
    #[error("the printer is offline{0} — check its lights and press its feed button once")]
    Offline(String),
    /// The printer reports an error (cutter, head temperature, …).
    #[error("the printer reports an error: {0} — switch it off and on; if it stays, service it")]
    Fault(String),
    /// Writing failed or was held up by flow control for too long.
    #[error("writing to the printer on {port} failed: {message}")]
    Write {
        /// The port.
        port: String,
        /// What happened.
        message: String,
    },
    /// Receipt data a command cannot carry.
    #[error("printer: {0}")]
    Encode(#[from] escpos::EncodeError),
}

/// Result alias for the printer.
pub type Result<T> = std::result::Result<T, Error>;

/// Paper width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum PaperWidth {
    /// 58 mm: 32 columns of the 12×24 font, 384 dots.
    Mm58,
    /// 80 mm: 48 columns, 576 dots.
    Mm80,
}

impl PaperWidth {
    /// Characters per line in the standard 12×24 font.
    pub fn columns(self) -> usize {
        match self {
            PaperWidth::Mm58 => 32,
            PaperWidth::Mm80 => 48,
        }
    }

    /// Printable dots per line.
    pub fn dots(self) -> u32 {
        match self {
            PaperWidth::Mm58 => 384,
            PaperWidth::Mm80 => 576,
        }
    }
}

impl TryFrom<u32> for PaperWidth {
    type Error = String;

    fn try_from(mm: u32) -> std::result::Result<Self, String> {
        match mm {
            58 => Ok(PaperWidth::Mm58),
            80 => Ok(PaperWidth::Mm80),
            _ => Err(format!(
                "paper width {mm} mm is not supported; use 58 or 80"
            )),
        }
    }
}

impl From<PaperWidth> for u32 {
    fn from(w: PaperWidth) -> u32 {
        match w {
            PaperWidth::Mm58 => 58,
            PaperWidth::Mm80 => 80,
        }
    }
}

/// The printer's answer to `DLE EOT 1`–`4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PrinterStatus {
    /// Not offline.
    pub online: bool,
    /// Cover open.
    pub cover_open: bool,
    /// Paper being fed with the feed button.
    pub feeding: bool,
    /// The paper roll is nearly used up.
    pub paper_near_end: bool,
    /// No paper.
    pub paper_out: bool,
    /// Auto-cutter error.
    pub cutter_error: bool,
    /// Unrecoverable error.
    pub unrecoverable_error: bool,
    /// Auto-recoverable error (e.g. head too hot).
    pub recoverable_error: bool,
}

impl PrinterStatus {
    /// Decodes the four status bytes (answers to `DLE EOT 1`, `2`, `3`, `4`).
    pub fn from_bytes(b: [u8; 4]) -> PrinterStatus {
        PrinterStatus {
            online: b[0] & 0x08 == 0,
            cover_open: b[1] & 0x04 != 0,
            feeding: b[1] & 0x08 != 0,
            paper_out: b[1] & 0x20 != 0 || b[3] & 0x60 != 0,
            paper_near_end: b[3] & 0x0C != 0,
            cutter_error: b[2] & 0x08 != 0,
            unrecoverable_error: b[2] & 0x20 != 0,
            recoverable_error: b[2] & 0x40 != 0,
        }
    }

    /// The first reason not to print, most actionable first.
    pub fn problem(&self) -> Option<Error> {
        if self.paper_out {
            Some(Error::PaperOut)
        } else if self.cover_open {
            Some(Error::CoverOpen)
        } else if self.cutter_error {
            Some(Error::Fault("auto-cutter jammed".into()))
        } else if self.unrecoverable_error {
            Some(Error::Fault("unrecoverable error".into()))
        } else if self.recoverable_error {
            Some(Error::Fault(
                "recoverable error (print head too hot?)".into(),
            ))
        } else if !self.online {
            Some(Error::Offline(if self.feeding {
                " (paper being fed)".into()
            } else {
                String::new()
            }))
        } else {
            None
        }
    }
}

/// The byte pipe to a printer: a serial port, a pty, or a simulator.
pub trait PrinterLink: Send {
    /// Writes every byte (blocking up to the link's write timeout).
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// One byte, or `None` when nothing came within `timeout`.
    fn read_byte(&mut self, timeout: Duration) -> std::io::Result<Option<u8>>;
    /// Drops bytes already received (stale answers).
    fn discard_input(&mut self) -> std::io::Result<()>;
    /// A name for messages (the port path).
    fn name(&self) -> String;
    /// The baud rate, for messages (0 when it has none).
    fn baud(&self) -> u32 {
        0
    }
}

/// A print job: the bytes of one receipt and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintJob {
    /// What it is, e.g. "sale 000123 customer copy".
    pub title: String,
    /// The ESC/POS bytes.
    pub bytes: Vec<u8>,
}

/// An ESC/POS printer on a link, with the queue of jobs that did not print.
pub struct Printer<L> {
    link: L,
    width: PaperWidth,
    status_timeout: Duration,
    pending: VecDeque<PrintJob>,
}

impl<L: PrinterLink> Printer<L> {
    /// A printer on `link` with `width` paper; each status byte is awaited
    /// for `status_timeout`.
    pub fn new(link: L, width: PaperWidth, status_timeout: Duration) -> Self {
        Printer {
            link,
            width,
            status_timeout,
            pending: VecDeque::new(),
        }
    }

    /// The paper width receipts are laid out for.
    pub fn width(&self) -> PaperWidth {
        self.width
    }

    /// Asks the printer for its status (`DLE EOT 1`–`4`).
    pub fn status(&mut self) -> Result<PrinterStatus> {
        let port = self.link.name();
        self.link
            .discard_input()
            .map_err(|e| write_error(&port, e))?;
        let mut bytes = [0u8; 4];
        for n in 1..=4u8 {
            self.link
                .write_all(&escpos::status_request(n))
                .map_err(|e| write_error(&port, e))?;
            bytes[usize::from(n - 1)] = self.status_byte(n)?;
        }
        Ok(PrinterStatus::from_bytes(bytes))
    }

    fn status_byte(&mut self, request: u8) -> Result<u8> {
        let port = self.link.name();
        let deadline = std::time::Instant::now() + self.status_timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let byte = self
                .link
                .read_byte(left)
                .map_err(|e| write_error(&port, e))?;
            match byte {
                None => {
                    return Err(Error::NoAnswer {
                        port,
                        waited_ms: self.status_timeout.as_millis() as u64,
                        baud: self.link.baud(),
                    });
                }
                // XON/XOFF from a printer whose flow control the port does
                // not handle: not an answer.
                Some(0x11 | 0x13) => continue,
                // Fixed bits of every status byte: bit 1 and 4 set, 0 and 7 clear.
                Some(b) if b & 0x93 == 0x12 => return Ok(b),
                Some(byte) => {
                    return Err(Error::BadStatus {
                        port,
                        request,
                        byte,
                    });
                }
            }
        }
    }

    /// The status, as an error when the printer cannot print now.
    pub fn check_ready(&mut self) -> Result<PrinterStatus> {
        let status = self.status()?;
        match status.problem() {
            Some(e) => Err(e),
            None => Ok(status),
        }
    }

    /// Prints a job: checks the printer is ready, sends it, checks the
    /// status again (paper may run out mid-receipt). On any failure the
    /// job is kept in [`pending`](Self::pending) for reprint.
    pub fn print(&mut self, job: PrintJob) -> Result<()> {
        match self.try_print(&job) {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(title = %job.title, error = %e, "receipt kept for reprint");
                self.pending.push_back(job);
                Err(e)
            }
        }
    }

    fn try_print(&mut self, job: &PrintJob) -> Result<()> {
        self.check_ready()?;
        let port = self.link.name();
        self.link
            .write_all(&job.bytes)
            .map_err(|e| write_error(&port, e))?;
        self.check_ready()?;
        Ok(())
    }

    /// Lays out `receipt` for this printer's paper and prints it.
    pub fn print_receipt(&mut self, receipt: &receipt::Receipt) -> Result<()> {
        let bytes = receipt::layout(receipt, self.width)?;
        self.print(PrintJob {
            title: receipt.title(),
            bytes,
        })
    }

    /// Jobs that did not print, oldest first.
    pub fn pending(&self) -> &VecDeque<PrintJob> {
        &self.pending
    }

    /// Takes the pending jobs out (e.g. to store them across a restart).
    pub fn take_pending(&mut self) -> Vec<PrintJob> {
        self.pending.drain(..).collect()
    }

    /// Prints the pending jobs, oldest first, stopping at the first that
    /// fails (it and the rest stay queued). Returns how many printed.
    pub fn reprint_pending(&mut self) -> Result<usize> {
        let mut printed = 0;
        while let Some(job) = self.pending.pop_front() {
            if let Err(e) = self.try_print(&job) {
                self.pending.push_front(job);
                return Err(e);
            }
            printed += 1;
        }
        Ok(printed)
    }

    /// The link (e.g. the simulator, to look at what it printed).
    pub fn link(&self) -> &L {
        &self.link
    }

    /// The link, mutably.
    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }
}

fn write_error(port: &str, e: std::io::Error) -> Error {
    let message = if e.kind() == std::io::ErrorKind::TimedOut {
        "the printer stopped taking data (flow control held) — check paper, cover and cable"
            .to_string()
    } else {
        e.to_string()
    };
    Error::Write {
        port: port.to_string(),
        message,
    }
}

/// A printer on any link (serial port or simulator), as [`open`] returns it.
pub type AnyPrinter = Printer<Box<dyn PrinterLink>>;

impl PrinterLink for Box<dyn PrinterLink> {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        (**self).write_all(bytes)
    }
    fn read_byte(&mut self, timeout: Duration) -> std::io::Result<Option<u8>> {
        (**self).read_byte(timeout)
    }
    fn discard_input(&mut self) -> std::io::Result<()> {
        (**self).discard_input()
    }
    fn name(&self) -> String {
        (**self).name()
    }
    fn baud(&self) -> u32 {
        (**self).baud()
    }
}

/// Opens the printer the configuration names: the serial port, or the
/// simulator rendering into `output_dir` when `simulated = true`.
pub fn open(config: &PrinterConfig) -> Result<AnyPrinter> {
    let link: Box<dyn PrinterLink> = if config.simulated {
        Box::new(
            sim::SimulatedPrinter::new(config.paper_width)
                .with_output(config.output_dir.clone(), Some(config.font.clone())),
        )
    } else {
        Box::new(SerialLink::open(
            &config.port,
            config.baud,
            config.flow_control,
            Duration::from_millis(config.write_timeout_ms),
        )?)
    };
    Ok(Printer::new(
        link,
        config.paper_width,
        Duration::from_millis(config.status_timeout_ms),
    ))
}

/// Opens the printer and reads its status, for the boot screen.
pub fn self_test(config: &PrinterConfig) -> Result<PrinterStatus> {
    open(config)?.status()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bytes_decode_to_problems() {
        let ok = PrinterStatus::from_bytes([0x12; 4]);
        assert!(ok.online && ok.problem().is_none());
        let paper = PrinterStatus::from_bytes([0x1A, 0x32, 0x12, 0x72]);
        assert_eq!(paper.problem(), Some(Error::PaperOut));
        let cover = PrinterStatus::from_bytes([0x1A, 0x16, 0x12, 0x12]);
        assert_eq!(cover.problem(), Some(Error::CoverOpen));
        let near = PrinterStatus::from_bytes([0x12, 0x12, 0x12, 0x1E]);
        assert!(near.paper_near_end && near.problem().is_none());
        let off = PrinterStatus::from_bytes([0x1A, 0x12, 0x12, 0x12]);
        assert!(matches!(off.problem(), Some(Error::Offline(_))));
        let cut = PrinterStatus::from_bytes([0x1A, 0x52, 0x1A, 0x12]);
        assert!(matches!(cut.problem(), Some(Error::Fault(_))));
    }
}
