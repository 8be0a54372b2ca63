//! The serial port link (serialport, without libudev: ports are named in
//! the configuration, never enumerated).

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use serialport::{ClearBuffer, SerialPort, TTYPort};

use super::{Error, PrinterLink, Result};
use crate::config::{self, DeviceKind, FlowControl};

/// A serial port (or a pty) in raw mode.
pub struct SerialLink {
    port: TTYPort,
    name: String,
    baud: u32,
    write_timeout: Duration,
}

impl SerialLink {
    /// Opens `path` at `baud`, 8N1, with `flow` control; writes held up by
    /// flow control for longer than `write_timeout` fail.
    pub fn open(
        path: &Path,
        baud: u32,
        flow: FlowControl,
        write_timeout: Duration,
    ) -> Result<Self> {
        Self::open_port(path, baud, flow, write_timeout).map_err(Error::Open)
    }

    /// [`open`](Self::open) with the error as a sentence (shared with the
    /// serial scanner).
    pub(crate) fn open_port(
        path: &Path,
        baud: u32,
        flow: FlowControl,
        write_timeout: Duration,
    ) -> std::result::Result<Self, String> {
        // Open the node once with std first: its io::Error tells a missing
        // port from a missing dialout membership.
        if let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)
        {
            return Err(config::explain_open_error(DeviceKind::Serial, path, &e));
        }
        let flow_control = match flow {
            FlowControl::None => serialport::FlowControl::None,
            FlowControl::RtsCts => serialport::FlowControl::Hardware,
            FlowControl::XonXoff => serialport::FlowControl::Software,
        };
        let name = path.to_string_lossy().into_owned();
        let port = serialport::new(name.clone(), baud)
            .flow_control(flow_control)
            .timeout(write_timeout)
            .open_native()
            .map_err(|e| format!("cannot open {name}: {e}"))?;
        Ok(SerialLink {
            port,
            name,
            baud,
            write_timeout,
        })
    }

    /// Wraps an already open port (e.g. one end of a pty pair in tests).
    pub fn from_port(port: TTYPort, name: impl Into<String>, write_timeout: Duration) -> Self {
        let baud = port.baud_rate().unwrap_or(0);
        SerialLink {
            port,
            name: name.into(),
            baud,
            write_timeout,
        }
    }

    /// Waits until every byte written has left the UART (tcdrain), bounded
    /// by the write timeout.
    pub fn drain(&mut self) -> std::io::Result<()> {
        self.port
            .set_timeout(self.write_timeout)
            .map_err(std::io::Error::from)?;
        self.port.flush()
    }

    /// Reads what is available into `buf` within `timeout` (0 on timeout).
    pub(crate) fn read_some(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> std::io::Result<usize> {
        self.port
            .set_timeout(timeout)
            .map_err(std::io::Error::from)?;
        match self.port.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(0),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }
}

use std::os::unix::fs::OpenOptionsExt;

impl PrinterLink for SerialLink {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.port
            .set_timeout(self.write_timeout)
            .map_err(std::io::Error::from)?;
        self.port.write_all(bytes)
    }

    fn read_byte(&mut self, timeout: Duration) -> std::io::Result<Option<u8>> {
        let mut b = [0u8; 1];
        Ok((self.read_some(&mut b, timeout)? == 1).then_some(b[0]))
    }

    fn discard_input(&mut self) -> std::io::Result<()> {
        self.port
            .clear(ClearBuffer::Input)
            .map_err(std::io::Error::from)
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn baud(&self) -> u32 {
        self.baud
    }
}
