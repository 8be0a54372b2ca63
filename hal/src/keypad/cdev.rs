//! The keypad over the Linux GPIO character device (`/dev/gpiochipN`,
//! gpio-cdev): rows as one multi-line output request, columns as one edge
//! event request each (pull-up bias, both edges), so the idle keypad sleeps
//! in epoll until a key joins a row to a column.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::task::Poll;

use gpio_cdev::{Chip, EventRequestFlags, LineEventHandle, LineRequestFlags, MultiLineHandle};
use tokio::io::unix::AsyncFd;

use super::{ColumnEdges, Error, MatrixLines, Result, RowSelect};
use crate::config::{self, KeypadConfig, RowDrive};

const CONSUMER: &str = "till-keypad";

/// `GPIOHANDLE_REQUEST_BIAS_PULL_UP` (Linux ≥ 5.5). gpio-cdev 0.6 does not
/// name the bias flags, so the bit is passed through as is; the kernel
/// checks it.
const BIAS_PULL_UP: u32 = 1 << 5;

/// The matrix lines on a GPIO chip.
pub struct CdevMatrix {
    rows: MultiLineHandle,
    row_count: usize,
    columns: Vec<LineEventHandle>,
}

/// A GPIO failure while scanning.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CdevError(String);

impl MatrixLines for CdevMatrix {
    type Error = CdevError;

    fn select(&mut self, rows: RowSelect) -> std::result::Result<(), CdevError> {
        // 0 drives the row low (active); 1 releases it (open drain) or
        // drives it high (push-pull).
        let values: Vec<u8> = (0..self.row_count)
            .map(|i| match rows {
                RowSelect::All => 0,
                RowSelect::Row(r) => u8::from(r != i),
            })
            .collect();
        self.rows
            .set_values(&values)
            .map_err(|e| CdevError(format!("driving the rows: {e}")))
    }

    fn read_columns(&mut self) -> std::result::Result<u16, CdevError> {
        let mut bits = 0;
        for (i, c) in self.columns.iter().enumerate() {
            let v = c
                .get_value()
                .map_err(|e| CdevError(format!("reading column {i}: {e}")))?;
            if v == 0 {
                bits |= 1 << i;
            }
        }
        Ok(bits)
    }
}

/// Column edge events from the kernel, one non-blocking fd per column
/// (duplicates of the event request fds) registered with tokio.
pub struct CdevEdges {
    fds: Vec<AsyncFd<OwnedFd>>,
}

impl CdevEdges {
    fn new(columns: &[LineEventHandle]) -> io::Result<Self> {
        let mut fds = Vec::new();
        for c in columns {
            // SAFETY: dup of a valid fd owned by `c`; the new fd is owned
            // by the OwnedFd and closed once.
            let fd = unsafe { libc::dup(c.as_raw_fd()) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            set_nonblocking(&fd)?;
            // SAFETY: the OwnedFd is moved into the AsyncFd, which alone
            // owns and closes it, so it stays open and the same for the
            // AsyncFd's lifetime.
            let registered = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
            fds.push(registered);
        }
        Ok(CdevEdges { fds })
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own, with standard flags.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Reads and forgets every queued edge event; returns how many there were.
fn drain(fd: &OwnedFd) -> io::Result<usize> {
    // struct gpioevent_data is 16 bytes; read several at once.
    let mut buf = [0u8; 16 * 16];
    let mut n = 0;
    loop {
        // SAFETY: reading into a local buffer of the given length.
        let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if r > 0 {
            n += r as usize / 16;
            continue;
        }
        if r == 0 {
            return Ok(n);
        }
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock => Ok(n),
            io::ErrorKind::Interrupted => continue,
            _ => Err(e),
        };
    }
}

impl ColumnEdges for CdevEdges {
    fn wait(&mut self) -> impl Future<Output = Result<()>> + Send {
        std::future::poll_fn(|cx| {
            let mut edge = false;
            for fd in &self.fds {
                loop {
                    match fd.poll_read_ready(cx) {
                        Poll::Ready(Ok(mut guard)) => {
                            let n = drain(fd.get_ref())
                                .map_err(|e| Error::Io(format!("reading column edges: {e}")))?;
                            edge |= n > 0;
                            guard.clear_ready();
                        }
                        Poll::Ready(Err(e)) => {
                            return Poll::Ready(Err(Error::Io(format!(
                                "waiting for column edges: {e}"
                            ))));
                        }
                        Poll::Pending => break,
                    }
                }
            }
            if edge {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        })
    }

    fn discard(&mut self) -> Result<()> {
        for fd in &self.fds {
            drain(fd.get_ref()).map_err(|e| Error::Io(format!("reading column edges: {e}")))?;
        }
        Ok(())
    }
}

fn open_chip(config: &KeypadConfig) -> Result<Chip> {
    // Open the node ourselves first: std's io::Error keeps the errno that
    // tells "missing" from "not in the gpio group".
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&config.chip)
    {
        return Err(Error::Open(config::explain_open_error(
            config::DeviceKind::Gpio,
            &config.chip,
            &e,
        )));
    }
    Chip::new(&config.chip).map_err(|e| Error::Open(format!("{}: {e}", config.chip.display())))
}

fn line_error(
    config: &KeypadConfig,
    what: &'static str,
    offset: u32,
    e: gpio_cdev::Error,
) -> Error {
    // gpio-cdev returns straight after the failed ioctl, so errno is still
    // the kernel's answer.
    let errno = io::Error::last_os_error().raw_os_error();
    let message = match errno {
        Some(libc::EBUSY) => format!(
            "in use by another program ({e}); stop it (is another till or tillctl running?) \
             or pick a free line in keypad.{what}s"
        ),
        _ => format!(
            "{e}; check keypad.{what}s against `gpioinfo {}`",
            config.chip.display()
        ),
    };
    Error::Line {
        what,
        offset,
        chip: config.chip.clone(),
        message,
    }
}

fn check_offsets(chip: &Chip, config: &KeypadConfig) -> Result<()> {
    let n = chip.num_lines();
    for (what, offsets) in [("row", &config.rows), ("column", &config.columns)] {
        if let Some(&bad) = offsets.iter().find(|&&o| o >= n) {
            return Err(Error::Line {
                what,
                offset: bad,
                chip: config.chip.clone(),
                message: format!(
                    "the chip ({}) has only {n} lines (0..{}); fix keypad.{what}s",
                    chip.label(),
                    n.saturating_sub(1)
                ),
            });
        }
    }
    Ok(())
}

fn request_rows(chip: &mut Chip, config: &KeypadConfig, initial: u8) -> Result<MultiLineHandle> {
    let mut flags = LineRequestFlags::OUTPUT;
    if config.row_drive == RowDrive::OpenDrain {
        flags |= LineRequestFlags::OPEN_DRAIN;
    }
    let lines = chip
        .get_lines(&config.rows)
        .map_err(|e| line_error(config, "row", config.rows[0], e))?;
    let defaults = vec![initial; config.rows.len()];
    lines
        .request(flags, &defaults, CONSUMER)
        .map_err(|e| line_error(config, "row", config.rows[0], e))
}

fn pull_up_input() -> LineRequestFlags {
    LineRequestFlags::from_bits_retain(LineRequestFlags::INPUT.bits() | BIAS_PULL_UP)
}

fn request_columns(chip: &mut Chip, config: &KeypadConfig) -> Result<Vec<LineEventHandle>> {
    let mut columns = Vec::new();
    for &offset in &config.columns {
        let line = chip
            .get_line(offset)
            .map_err(|e| line_error(config, "column", offset, e))?;
        let handle = match line.events(pull_up_input(), EventRequestFlags::BOTH_EDGES, CONSUMER) {
            Ok(h) => h,
            Err(_) if io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) => {
                // Kernels before 5.5 refuse bias flags: rely on external
                // pull-up resistors.
                tracing::warn!(
                    offset,
                    "kernel refused pull-up bias on keypad column; external pull-ups needed"
                );
                line.events(
                    LineRequestFlags::INPUT,
                    EventRequestFlags::BOTH_EDGES,
                    CONSUMER,
                )
                .map_err(|e| line_error(config, "column", offset, e))?
            }
            Err(e) => return Err(line_error(config, "column", offset, e)),
        };
        columns.push(handle);
    }
    Ok(columns)
}

/// Requests the keypad's lines: the matrix and its column edges.
pub(super) fn open(config: &KeypadConfig) -> Result<(CdevMatrix, CdevEdges)> {
    config.check_matrix().map_err(Error::Config)?;
    let mut chip = open_chip(config)?;
    check_offsets(&chip, config)?;
    let rows = request_rows(&mut chip, config, 0)?;
    let columns = request_columns(&mut chip, config)?;
    let edges = CdevEdges::new(&columns)
        .map_err(|e| Error::Io(format!("registering column edge events: {e}")))?;
    Ok((
        CdevMatrix {
            rows,
            row_count: config.rows.len(),
            columns,
        },
        edges,
    ))
}

/// Requests the lines, checks every column reads high with the rows
/// released, and that none reads low with the rows driven (a held key or a
/// short). Releases the lines again.
pub(super) fn self_test(config: &KeypadConfig) -> Result<String> {
    config.check_matrix().map_err(Error::Config)?;
    let mut chip = open_chip(config)?;
    check_offsets(&chip, config)?;
    let rows = request_rows(&mut chip, config, 1)?;
    let columns = request_columns(&mut chip, config)?;
    let mut m = CdevMatrix {
        rows,
        row_count: config.rows.len(),
        columns,
    };
    let io = |e: CdevError| Error::Io(e.0);
    m.rows
        .set_values(&vec![1; config.rows.len()])
        .map_err(|e| Error::Io(format!("releasing the rows: {e}")))?;
    let released = m.read_columns().map_err(io)?;
    if released != 0 {
        return Err(Error::Io(format!(
            "column line(s) {:?} read low with every row released: missing pull-up or a short \
             to ground; check the wiring",
            set_offsets(released, &config.columns)
        )));
    }
    m.select(RowSelect::All).map_err(io)?;
    let driven = m.read_columns().map_err(io)?;
    if driven != 0 {
        return Err(Error::Io(format!(
            "column line(s) {:?} read low at rest: a key is held or stuck; release it",
            set_offsets(driven, &config.columns)
        )));
    }
    Ok(format!(
        "{} ({}): {} row and {} column lines readable, no key held",
        config.chip.display(),
        chip.label(),
        config.rows.len(),
        config.columns.len()
    ))
}

fn set_offsets(bits: u16, offsets: &[u32]) -> Vec<u32> {
    offsets
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, &o)| o)
        .collect()
}
