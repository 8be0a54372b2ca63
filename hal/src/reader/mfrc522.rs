//! The MFRC522 itself: registers over SPI, the FIFO, the command
//! register, the timer, the CRC coprocessor, the digital self-test and the
//! framing (bit rates, CRC, bit-oriented frames).
//!
//! This layer knows nothing about cards: it sends a frame and reports what
//! came back (bytes, a collision, a CRC error, a timeout). ISO 14443-3
//! activation lives in [`super::iso14443a`], the ISO 14443-4 block protocol
//! in [`super::iso_dep`].
//!
//! The driver is generic over embedded-hal 1.0 traits: `SpiDevice` (chip
//! select handled by the device: on Linux the kernel's spidev), an
//! `OutputPin` wired to NRSTPD, and `DelayNs`. The same code runs against
//! `/dev/spidev0.0` and against [`super::model`].

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{self, OutputPin};
use embedded_hal::spi::{self, SpiDevice};

use super::regs::{self, cmd, reg};

/// What went wrong talking to the chip, or what the chip saw on the air.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SPI transfer itself failed.
    #[error(
        "SPI transfer to the MFRC522 failed ({0:?}) — check the reader's wiring and that no other program uses the SPI device"
    )]
    Spi(spi::ErrorKind),
    /// Driving the reset line (NRSTPD) failed.
    #[error(
        "cannot drive the MFRC522 reset line ({0:?}) — check the reset GPIO in the device config"
    )]
    ResetPin(digital::ErrorKind),
    /// VersionReg reads as a floating bus: no chip is answering.
    #[error(
        "no MFRC522 answers on SPI (VersionReg reads {0:#04x}) — check the reader's wiring, power and chip select"
    )]
    NotResponding(u8),
    /// A chip operation that completes in microseconds did not complete.
    #[error("the MFRC522 did not finish {0} in time — power-cycle the reader")]
    Stuck(&'static str),
    /// The timer expired before a card answered.
    #[error("no answer from the card")]
    Timeout,
    /// A frame arrived with a wrong CRC_A (or a wrong BCC in a UID).
    #[error("CRC error in the card's answer")]
    Crc,
    /// Bit collision: more than one card answered.
    #[error("collision: more than one card answered")]
    Collision,
    /// Parity error in the card's answer.
    #[error("parity error in the card's answer")]
    Parity,
    /// Malformed frame (wrong SOF, wrong length, unexpected answer).
    #[error("malformed frame from the card")]
    Protocol,
    /// More than 64 bytes arrived: the FIFO overflowed.
    #[error("the card's answer overflowed the reader's 64-byte FIFO")]
    BufferOverflow,
    /// The chip's temperature sensor switched the antenna off.
    #[error("the MFRC522 overheated and switched its antenna off — let it cool, check its supply")]
    Overheated,
    /// A frame longer than the FIFO was handed to the chip.
    #[error("a frame of {0} bytes does not fit the MFRC522's 64-byte FIFO")]
    FrameTooLong(usize),
}

/// A bit rate on the air, in both directions the MFRC522 supports all four.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BitRate {
    /// 106 kbit/s (fc/128), the rate every card starts at.
    Kbps106,
    /// 212 kbit/s (fc/64).
    Kbps212,
    /// 424 kbit/s (fc/32).
    Kbps424,
    /// 848 kbit/s (fc/16).
    Kbps848,
}

impl BitRate {
    /// All rates, slowest first.
    pub const ALL: [BitRate; 4] = [
        BitRate::Kbps106,
        BitRate::Kbps212,
        BitRate::Kbps424,
        BitRate::Kbps848,
    ];

    /// The divisor code D used by TxSpeed/RxSpeed and by PPS (DSI/DRI): 0..=3.
    pub fn code(self) -> u8 {
        match self {
            BitRate::Kbps106 => 0,
            BitRate::Kbps212 => 1,
            BitRate::Kbps424 => 2,
            BitRate::Kbps848 => 3,
        }
    }

    /// The rate for a divisor code (only the low two bits count).
    pub fn from_code(code: u8) -> BitRate {
        BitRate::ALL[usize::from(code & 3)]
    }

    /// Nominal rate in kbit/s.
    pub fn kbps(self) -> u32 {
        match self {
            BitRate::Kbps106 => 106,
            BitRate::Kbps212 => 212,
            BitRate::Kbps424 => 424,
            BitRate::Kbps848 => 848,
        }
    }

    /// One elementary time unit (a bit) in carrier cycles: 128 / 2^D.
    pub fn etu_cycles(self) -> u32 {
        128 >> self.code()
    }

    /// ModWidthReg for this transmit rate: the modulation pause must stay
    /// well inside half a bit, so it shrinks as the rate goes up (values
    /// from NXP's MFRC522 higher-bit-rate settings).
    pub fn mod_width(self) -> u8 {
        match self {
            BitRate::Kbps106 => 0x26,
            BitRate::Kbps212 => 0x15,
            BitRate::Kbps424 => 0x0A,
            BitRate::Kbps848 => 0x05,
        }
    }
}

/// What VersionReg says the chip is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChipVersion {
    /// MFRC522 version 1.0 (91h).
    V1,
    /// MFRC522 version 2.0 (92h).
    V2,
    /// Anything else, e.g. a clone such as the FM17522 (88h); it may work
    /// but has no published self-test reference.
    Other(u8),
}

impl ChipVersion {
    /// Classifies a VersionReg value.
    pub fn from_register(value: u8) -> ChipVersion {
        match value {
            0x91 => ChipVersion::V1,
            0x92 => ChipVersion::V2,
            other => ChipVersion::Other(other),
        }
    }

    /// The VersionReg value.
    pub fn register(self) -> u8 {
        match self {
            ChipVersion::V1 => 0x91,
            ChipVersion::V2 => 0x92,
            ChipVersion::Other(v) => v,
        }
    }

    /// The datasheet's self-test output for this version, if it has one.
    pub fn self_test_reference(self) -> Option<&'static [u8; 64]> {
        match self {
            ChipVersion::V1 => Some(&regs::SELF_TEST_V1),
            ChipVersion::V2 => Some(&regs::SELF_TEST_V2),
            ChipVersion::Other(_) => None,
        }
    }
}

impl std::fmt::Display for ChipVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChipVersion::V1 => write!(f, "MFRC522 v1.0 (0x91)"),
            ChipVersion::V2 => write!(f, "MFRC522 v2.0 (0x92)"),
            ChipVersion::Other(v) => write!(f, "unknown MFRC522-compatible chip ({v:#04x})"),
        }
    }
}

/// Receiver gain (RFCfgReg RxGain): more gain reaches cards further away
/// but also amplifies noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxGain {
    /// 18 dB.
    Db18,
    /// 23 dB.
    Db23,
    /// 33 dB (the chip's reset value).
    Db33,
    /// 38 dB.
    Db38,
    /// 43 dB.
    Db43,
    /// 48 dB, the maximum.
    Db48,
}

impl RxGain {
    fn bits(self) -> u8 {
        match self {
            RxGain::Db18 => 0b000,
            RxGain::Db23 => 0b001,
            RxGain::Db33 => 0b100,
            RxGain::Db38 => 0b101,
            RxGain::Db43 => 0b110,
            RxGain::Db48 => 0b111,
        }
    }
}

/// The outcome of the chip's digital self-test (datasheet §16.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfTestOutput {
    /// The chip version the output was compared against.
    pub version: ChipVersion,
    /// The 64 bytes the FIFO held after the test.
    pub output: Vec<u8>,
    /// `Some(true)` when the output matches the datasheet's reference for
    /// this version, `Some(false)` when it does not, `None` when there is no
    /// reference (a chip version without published values).
    pub matches_reference: Option<bool>,
}

/// What the receiver put in the FIFO for one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reception {
    /// The received bytes (with the RxAlign offset applied to the first).
    pub data: Vec<u8>,
    /// Valid bits in the last byte; 0 means the whole byte.
    pub last_bits: u8,
    /// When cards collided: the 1-based position of the first collided bit,
    /// counted from the first received bit (`None` inside the collision
    /// error means the position was out of CollPos's range).
    pub collision: Option<Option<u8>>,
}

/// Carrier cycles are counted in u64 so that the longest timer (39.6 s)
/// and the longest card wait (4.9 s × 59) stay exact.
fn us_to_cycles(us: u64) -> u64 {
    us.saturating_mul(regs::FC_HZ) / 1_000_000
}

/// Timer settings (prescaler, reload) for at least `us` microseconds:
/// the finest prescaler that fits, so short timeouts stay precise.
pub(crate) fn timer_setting(us: u64) -> (u16, u16) {
    let cycles = us_to_cycles(us).max(1);
    for prescaler in 0u64..=4095 {
        let tick = 2 * prescaler + 1;
        let ticks = cycles.div_ceil(tick);
        if ticks <= 65536 {
            return (prescaler as u16, (ticks.max(1) - 1) as u16);
        }
    }
    (4095, 65535)
}

/// How long the chip's timer runs for a prescaler and reload value.
#[cfg(test)]
fn timer_period_us(prescaler: u16, reload: u16) -> u64 {
    (2 * u64::from(prescaler) + 1) * (u64::from(reload) + 1) * 1_000_000 / regs::FC_HZ
}

/// How long the driver waits, beyond the chip timer, before deciding the
/// chip itself is stuck; polling sleeps this long between register reads.
const POLL_STEP_US: u32 = 50;
const STUCK_MARGIN_US: u64 = 20_000;

/// An MFRC522 on SPI with its reset line.
pub struct Mfrc522<SPI, RST, D> {
    spi: SPI,
    reset: RST,
    delay: D,
    version: ChipVersion,
    /// Register values the driver last wrote, so that per-frame settings
    /// (timer, framing) cost SPI traffic only when they change.
    timeout_us: Option<u64>,
    framing: Option<(BitRate, BitRate, bool)>,
}

impl<SPI, RST, D> Mfrc522<SPI, RST, D>
where
    SPI: SpiDevice,
    RST: OutputPin,
    D: DelayNs,
{
    /// Takes the SPI device, the reset line and a delay. Nothing is sent
    /// until [`Mfrc522::init`].
    pub fn new(spi: SPI, reset: RST, delay: D) -> Self {
        Mfrc522 {
            spi,
            reset,
            delay,
            version: ChipVersion::Other(0),
            timeout_us: None,
            framing: None,
        }
    }

    /// Hard reset through NRSTPD, soft reset, version check, then the
    /// settings ISO 14443 type A needs at 106 kbit/s. The RF field is off
    /// afterwards.
    pub fn init(&mut self) -> Result<ChipVersion, Error> {
        self.reset
            .set_low()
            .map_err(|e| Error::ResetPin(digital::Error::kind(&e)))?;
        // NRSTPD needs only 100 ns low; the oscillator then needs time to
        // start (the datasheet gives no bound; common practice is 50 ms).
        self.delay.delay_us(100);
        self.reset
            .set_high()
            .map_err(|e| Error::ResetPin(digital::Error::kind(&e)))?;
        self.delay.delay_ms(50);
        self.soft_reset()?;
        let version = self.read(reg::VERSION)?;
        if version == 0x00 || version == 0xFF {
            return Err(Error::NotResponding(version));
        }
        self.version = ChipVersion::from_register(version);
        self.configure()?;
        Ok(self.version)
    }

    /// The chip version read at [`Mfrc522::init`].
    pub fn version(&self) -> ChipVersion {
        self.version
    }

    /// Reads VersionReg now.
    pub fn read_version(&mut self) -> Result<u8, Error> {
        self.read(reg::VERSION)
    }

    /// Runs the digital self-test (datasheet §16.1.1) and compares the
    /// FIFO's 64 bytes against the reference for the chip's version. The
    /// chip is soft-reset and re-initialised around the test, so the RF
    /// field goes off and any card in it is reset.
    pub fn self_test(&mut self) -> Result<SelfTestOutput, Error> {
        self.soft_reset()?;
        let version = ChipVersion::from_register(self.read(reg::VERSION)?);
        if matches!(version, ChipVersion::Other(0x00 | 0xFF)) {
            return Err(Error::NotResponding(version.register()));
        }
        self.version = version;
        // Clear the 25-byte internal buffer: 25 zero bytes through Mem.
        self.write(reg::FIFO_LEVEL, regs::FLUSH_BUFFER)?;
        self.write_fifo(&[0u8; 25])?;
        self.command(cmd::MEM)?;
        self.wait_command_done("the Mem command")?;
        self.write(reg::AUTO_TEST, regs::SELF_TEST_ENABLE)?;
        self.write_fifo(&[0x00])?;
        self.command(cmd::CALC_CRC)?;
        let mut waited = 0u64;
        loop {
            let level = self.read(reg::FIFO_LEVEL)? & 0x7F;
            if usize::from(level) >= regs::FIFO_SIZE {
                break;
            }
            if waited > STUCK_MARGIN_US {
                return Err(Error::Stuck("the self-test"));
            }
            self.delay.delay_us(POLL_STEP_US);
            waited += u64::from(POLL_STEP_US);
        }
        self.command(cmd::IDLE)?;
        let output = self.read_fifo(regs::FIFO_SIZE)?;
        self.write(reg::AUTO_TEST, 0x00)?;
        self.soft_reset()?;
        self.configure()?;
        let matches_reference = version
            .self_test_reference()
            .map(|reference| output.as_slice() == reference.as_slice());
        Ok(SelfTestOutput {
            version,
            output,
            matches_reference,
        })
    }

    /// Switches the RF field on or off. Switching it off powers down every
    /// card in the field (they forget their state).
    pub fn set_field(&mut self, on: bool) -> Result<(), Error> {
        let value = self.read(reg::TX_CONTROL)?;
        let wanted = if on {
            value | regs::TX_RF_EN
        } else {
            value & !regs::TX_RF_EN
        };
        if wanted != value {
            self.write(reg::TX_CONTROL, wanted)?;
        }
        Ok(())
    }

    /// Whether the RF field is on.
    pub fn field_is_on(&mut self) -> Result<bool, Error> {
        Ok(self.read(reg::TX_CONTROL)? & regs::TX_RF_EN == regs::TX_RF_EN)
    }

    /// Sets the receiver gain.
    pub fn set_rx_gain(&mut self, gain: RxGain) -> Result<(), Error> {
        let value = self.read(reg::RF_CFG)?;
        self.write(reg::RF_CFG, (value & 0x8F) | (gain.bits() << 4))
    }

    /// Bit rates both ways, and whether the chip adds and checks CRC_A
    /// itself. Above 106 kbit/s the hardware CRC is mandatory (TxModeReg,
    /// RxModeReg remarks), so `hw_crc` is forced on there.
    pub fn set_framing(&mut self, tx: BitRate, rx: BitRate, hw_crc: bool) -> Result<(), Error> {
        let hw_crc = hw_crc || tx != BitRate::Kbps106 || rx != BitRate::Kbps106;
        if self.framing == Some((tx, rx, hw_crc)) {
            return Ok(());
        }
        let crc = if hw_crc { regs::CRC_EN } else { 0 };
        self.write(reg::TX_MODE, crc | (tx.code() << 4))?;
        self.write(reg::RX_MODE, crc | (rx.code() << 4))?;
        self.write(reg::MOD_WIDTH, tx.mod_width())?;
        self.framing = Some((tx, rx, hw_crc));
        Ok(())
    }

    /// The current (transmit, receive) bit rates.
    pub fn bit_rates(&self) -> (BitRate, BitRate) {
        match self.framing {
            Some((tx, rx, _)) => (tx, rx),
            None => (BitRate::Kbps106, BitRate::Kbps106),
        }
    }

    /// Sets how long the chip waits for an answer after each transmission
    /// (the timer starts at the end of the frame: TAuto).
    pub fn set_timeout_us(&mut self, us: u64) -> Result<(), Error> {
        if self.timeout_us == Some(us) {
            return Ok(());
        }
        let (prescaler, reload) = timer_setting(us);
        self.write(reg::T_MODE, regs::T_AUTO | ((prescaler >> 8) as u8 & 0x0F))?;
        self.write(reg::T_PRESCALER, prescaler as u8)?;
        self.write(reg::T_RELOAD_H, (reload >> 8) as u8)?;
        self.write(reg::T_RELOAD_L, reload as u8)?;
        self.timeout_us = Some(us);
        Ok(())
    }

    /// Waits, through the caller's delay (a real sleep on Linux, virtual
    /// time in the model).
    pub fn delay_us(&mut self, us: u32) {
        self.delay.delay_us(us);
    }

    /// Computes CRC_A over `data` with the chip's coprocessor; the result
    /// is in air order (low byte first).
    pub fn calc_crc(&mut self, data: &[u8]) -> Result<[u8; 2], Error> {
        if data.len() > regs::FIFO_SIZE {
            return Err(Error::FrameTooLong(data.len()));
        }
        self.command(cmd::IDLE)?;
        self.write(reg::DIV_IRQ, regs::CRC_IRQ)?;
        self.write(reg::FIFO_LEVEL, regs::FLUSH_BUFFER)?;
        self.write_fifo(data)?;
        self.command(cmd::CALC_CRC)?;
        let mut waited = 0u64;
        loop {
            if self.read(reg::DIV_IRQ)? & regs::CRC_IRQ != 0 {
                break;
            }
            if waited > STUCK_MARGIN_US {
                self.command(cmd::IDLE)?;
                return Err(Error::Stuck("a CRC calculation"));
            }
            self.delay.delay_us(POLL_STEP_US);
            waited += u64::from(POLL_STEP_US);
        }
        self.command(cmd::IDLE)?;
        Ok([self.read(reg::CRC_RESULT_L)?, self.read(reg::CRC_RESULT_H)?])
    }

    /// Sends one frame and returns what came back. `tx_last_bits` is the
    /// number of bits of the last byte to send (0 = all 8); `rx_align` the
    /// bit position where the first received bit lands (anticollision).
    ///
    /// A collision is not an error here: the caller (anticollision) needs
    /// the bits before it. Every other receive error is.
    pub fn transceive(
        &mut self,
        frame: &[u8],
        tx_last_bits: u8,
        rx_align: u8,
    ) -> Result<Reception, Error> {
        if frame.len() > regs::FIFO_SIZE {
            return Err(Error::FrameTooLong(frame.len()));
        }
        let framing = ((rx_align & 7) << 4) | (tx_last_bits & 7);
        self.command(cmd::IDLE)?;
        self.write(reg::COM_IRQ, 0x7F)?;
        self.write(reg::FIFO_LEVEL, regs::FLUSH_BUFFER)?;
        self.write_fifo(frame)?;
        self.command(cmd::TRANSCEIVE)?;
        self.write(reg::BIT_FRAMING, regs::START_SEND | framing)?;
        let budget = self.timeout_us.unwrap_or(25_000) + STUCK_MARGIN_US;
        let mut waited = 0u64;
        let irq = loop {
            let irq = self.read(reg::COM_IRQ)?;
            if irq & (regs::RX_IRQ | regs::IDLE_IRQ | regs::ERR_IRQ | regs::TIMER_IRQ) != 0 {
                break irq;
            }
            if waited > budget {
                self.command(cmd::IDLE)?;
                return Err(Error::Stuck("a transmission"));
            }
            self.delay.delay_us(POLL_STEP_US);
            waited += u64::from(POLL_STEP_US);
        };
        // Stop the receiver so noise after the frame cannot refill the FIFO.
        self.command(cmd::IDLE)?;
        self.write(reg::BIT_FRAMING, framing)?;
        if irq & (regs::RX_IRQ | regs::ERR_IRQ) == 0 {
            return Err(Error::Timeout);
        }
        let errors = self.read(reg::ERROR)?;
        if errors & regs::TEMP_ERR != 0 {
            return Err(Error::Overheated);
        }
        if errors & regs::BUFFER_OVFL != 0 {
            return Err(Error::BufferOverflow);
        }
        let collision = if errors & regs::COLL_ERR != 0 {
            let coll = self.read(reg::COLL)?;
            if coll & regs::COLL_POS_NOT_VALID != 0 {
                Some(None)
            } else {
                let pos = coll & 0x1F;
                Some(Some(if pos == 0 { 32 } else { pos }))
            }
        } else {
            None
        };
        if collision.is_none() {
            if errors & regs::PROTOCOL_ERR != 0 {
                return Err(Error::Protocol);
            }
            if errors & regs::PARITY_ERR != 0 {
                return Err(Error::Parity);
            }
            if errors & regs::CRC_ERR != 0 {
                return Err(Error::Crc);
            }
        }
        let level = usize::from(self.read(reg::FIFO_LEVEL)? & 0x7F).min(regs::FIFO_SIZE);
        let data = self.read_fifo(level)?;
        let last_bits = self.read(reg::CONTROL)? & 0x07;
        Ok(Reception {
            data,
            last_bits,
            collision,
        })
    }

    /// [`Mfrc522::transceive`] of whole bytes, where a collision is an error.
    pub fn transceive_bytes(&mut self, frame: &[u8]) -> Result<Vec<u8>, Error> {
        let reception = self.transceive(frame, 0, 0)?;
        if reception.collision.is_some() {
            return Err(Error::Collision);
        }
        if reception.last_bits != 0 {
            return Err(Error::Protocol);
        }
        Ok(reception.data)
    }

    /// Gives back the SPI device, reset line and delay.
    pub fn release(self) -> (SPI, RST, D) {
        (self.spi, self.reset, self.delay)
    }

    fn soft_reset(&mut self) -> Result<(), Error> {
        self.command(cmd::SOFT_RESET)?;
        self.timeout_us = None;
        self.framing = None;
        let mut waited = 0u64;
        // The PowerDown bit stays set until the oscillator has restarted.
        loop {
            self.delay.delay_us(POLL_STEP_US);
            waited += u64::from(POLL_STEP_US);
            if self.read(reg::COMMAND)? & regs::POWER_DOWN == 0 {
                return Ok(());
            }
            if waited > 100_000 {
                return Err(Error::Stuck("a soft reset"));
            }
        }
    }

    fn configure(&mut self) -> Result<(), Error> {
        self.set_framing(BitRate::Kbps106, BitRate::Kbps106, false)?;
        self.set_timeout_us(25_000)?;
        self.write(reg::TX_ASK, regs::FORCE_100_ASK)?;
        // CRC preset 6363h (ISO 14443-3 CRC_A) for the coprocessor;
        // TxWaitRF so nothing is sent with the field off.
        self.write(reg::MODE, 0x3D)?;
        // All bits after a collision read as 0, as the anticollision expects.
        self.write(reg::COLL, 0x00)?;
        Ok(())
    }

    fn wait_command_done(&mut self, what: &'static str) -> Result<(), Error> {
        let mut waited = 0u64;
        loop {
            if self.read(reg::COMMAND)? & 0x0F == cmd::IDLE {
                return Ok(());
            }
            if waited > STUCK_MARGIN_US {
                return Err(Error::Stuck(what));
            }
            self.delay.delay_us(POLL_STEP_US);
            waited += u64::from(POLL_STEP_US);
        }
    }

    fn command(&mut self, command: u8) -> Result<(), Error> {
        self.write(reg::COMMAND, command)
    }

    fn read(&mut self, register: u8) -> Result<u8, Error> {
        let mut buf = [0x80 | (register << 1), 0];
        self.spi
            .transfer_in_place(&mut buf)
            .map_err(|e| Error::Spi(spi::Error::kind(&e)))?;
        Ok(buf[1])
    }

    fn write(&mut self, register: u8, value: u8) -> Result<(), Error> {
        self.spi
            .write(&[(register << 1) & 0x7E, value])
            .map_err(|e| Error::Spi(spi::Error::kind(&e)))
    }

    /// One SPI transaction: the address, then every byte for the FIFO.
    fn write_fifo(&mut self, data: &[u8]) -> Result<(), Error> {
        let mut buf = Vec::with_capacity(data.len() + 1);
        buf.push(reg::FIFO_DATA << 1);
        buf.extend_from_slice(data);
        self.spi
            .write(&buf)
            .map_err(|e| Error::Spi(spi::Error::kind(&e)))
    }

    /// One SPI transaction: the FIFO's read address repeated `n` times, each
    /// clocking out the byte the previous one asked for, then a 0 to end.
    fn read_fifo(&mut self, n: usize) -> Result<Vec<u8>, Error> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0x80 | (reg::FIFO_DATA << 1); n + 1];
        buf[n] = 0;
        self.spi
            .transfer_in_place(&mut buf)
            .map_err(|e| Error::Spi(spi::Error::kind(&e)))?;
        buf.remove(0);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_settings_cover_the_requested_time() {
        for us in [
            1u64, 25, 86, 1_000, 4_833, 25_000, 1_000_000, 4_949_000, 39_000_000,
        ] {
            let (p, r) = timer_setting(us);
            let period = timer_period_us(p, r);
            assert!(period + 1 >= us, "{us} µs → {period} µs");
            assert!(period <= us + us / 50 + 2, "{us} µs → {period} µs");
        }
        assert_eq!(timer_setting(u64::MAX), (4095, 65535));
    }
}
