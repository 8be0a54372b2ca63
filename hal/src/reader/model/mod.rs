//! A register-level model of the MFRC522 with virtual ISO 14443-A cards in
//! its field: Till's simulated reader, and what the driver's tests run on.
//!
//! The driver sees only what it would see on hardware: SPI transactions
//! (address byte `1AAAAAA0` to read, `0AAAAAA0` to write, multi-byte FIFO
//! access in one transaction), registers and the FIFO. Behind them:
//!
//! **Modelled:** the registers the driver and ISO 14443 use, with their
//! reset values and access rules; the 64-byte FIFO with FIFOLevelReg,
//! FlushBuffer, BufferOvfl on overflow, WaterLevel/HiAlert/LoAlert;
//! CommandReg commands Idle, Mem (25-byte internal buffer both ways),
//! GenerateRandomID, CalcCRC (CRC_A with the ModeReg preset, CRCResultReg,
//! CRCIRq, CRCReady/CRCOk), Transmit, NoCmdChange, Receive, Transceive
//! (started by StartSend), SoftReset (PowerDown reads 1 until it is done)
//! and MFAuthent (answers ProtocolErr: no MIFARE crypto here); ComIrqReg and
//! DivIrqReg with their Set1/Set2 write semantics; ErrorReg (CRCErr,
//! CollErr, BufferOvfl, ProtocolErr, WrErr); BitFramingReg (StartSend,
//! TxLastBits, RxAlign) and ControlReg RxLastBits for bit-oriented frames;
//! CollReg (CollPos counted from the first received bit,
//! CollPosNotValid, ValuesAfterColl); the timer (TModeReg TAuto,
//! TPrescaler, TReload: TimerIRq when no answer comes before the period
//! ends, or when the answer comes later than that); TxModeReg/RxModeReg
//! (TxCRCEn/RxCRCEn: CRC appended, checked and removed from the FIFO; the
//! four bit rates — a card hears only frames at its current rate, and the
//! receiver only answers at the receive rate); ModWidthReg (a modulation
//! pause longer than half a bit at the transmit rate is not understood by
//! cards); TxControlReg (field off powers every card down); VersionReg (91h
//! or 92h or any value); the digital self-test (AutoTestReg 09h, Mem with
//! 25 zero bytes, one 00h in the FIFO, CalcCRC → the datasheet's 64 bytes);
//! the NRSTPD reset pin (low: hard power-down, SPI reads 00h).
//!
//! Cards ([`VirtualCard`]) run ISO 14443-3 (IDLE/READY/ACTIVE/HALT with
//! READY*/ACTIVE*, bitwise anticollision over three cascade levels, so that
//! two cards really collide bit by bit) and ISO 14443-4 (ATS, PPS, block
//! numbering, chaining both ways, retransmission on R(NAK)/R(ACK), S(WTX),
//! S(DESELECT)).
//!
//! **Not modelled:** RF timing beyond a virtual clock (a frame's duration at
//! its bit rate plus the card's reply latency; an exchange completes at
//! the moment StartSend is written, so the FIFO never needs service during
//! a frame); the analog front end (antenna tuning, RFCfgReg gain, field
//! strength, distance, TxASK, GsN/CWGsP/ModGsP: stored, without effect);
//! parity (ParityErr is never set); MIFARE Classic Crypto1 and MFAuthent;
//! the interrupt pin; ISO 14443 type B and FeliCa; test bus, AUX pins, ADC;
//! the UART and I²C host interfaces; TAutoRestart and gated timer modes;
//! TCounterValReg counting (it reads 0); a late answer arriving after the
//! timer (it is lost); PCD-side collisions at higher bit rates (reported
//! as CRC errors).
//!
//! Faults for tests: [`Mfrc522Model::corrupt_crc_of_next`],
//! [`Mfrc522Model::drop_next_responses`] (both after
//! [`Mfrc522Model::delay_faults`] answers), [`Mfrc522Model::request_wtx`],
//! [`Mfrc522Model::remove_after_frames`], several cards at once,
//! [`Mfrc522Model::break_self_test`], [`Mfrc522Model::disconnect`].
//!
//! ```
//! use till_hal::reader::model::{Loopback, Mfrc522Model, VirtualCard};
//! use till_hal::reader::card::PiccIdentity;
//! use till_hal::reader::ChipVersion;
//!
//! let model = Mfrc522Model::new(ChipVersion::V2);
//! let card = model.insert(VirtualCard::new(
//!     PiccIdentity { uid: vec![0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66], atqa: [0x44, 0x00], sak: 0x20, ats: vec![0x02, 0x78] },
//!     Loopback,
//! ));
//! // Hand model.spi(), model.reset_pin(), model.delay() to the driver;
//! // keep `model` to inject faults and look at the card.
//! model.drop_next_responses(1);
//! assert!(model.card_state(card).is_some());
//! ```

mod hal;
mod picc;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use hal::{ModelDelay, ModelResetPin, ModelSpi};
pub use picc::{PiccState, VirtualCard};

use super::card::CardApplication;
use super::mfrc522::{BitRate, ChipVersion};
use super::regs::{self, FC_HZ, cmd, crc_a, reg};
use picc::{Answer, RfFrame};

/// A card application that answers every command APDU with the command
/// itself followed by 90 00: handy to test transport, useless to pay.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loopback;

impl CardApplication for Loopback {
    fn process(&mut self, command: &[u8]) -> Vec<u8> {
        let mut response = command.to_vec();
        response.extend_from_slice(&[0x90, 0x00]);
        response
    }
}

/// Which card in the model's field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardId(u32);

/// The model: one chip and its field, shared between the SPI device, the
/// reset pin and the delay handed to the driver, and the test that keeps
/// this handle.
#[derive(Clone)]
pub struct Mfrc522Model {
    chip: Arc<Mutex<Chip>>,
}

impl std::fmt::Debug for Mfrc522Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mfrc522Model").finish_non_exhaustive()
    }
}

impl Mfrc522Model {
    /// A chip of this version, powered, with an empty field.
    pub fn new(version: ChipVersion) -> Self {
        Mfrc522Model {
            chip: Arc::new(Mutex::new(Chip::new(version.register()))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Chip> {
        // A test that panicked while holding the lock left a chip that is
        // still consistent register by register; keep using it.
        self.chip.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The SPI device to hand to the driver.
    pub fn spi(&self) -> ModelSpi {
        ModelSpi::new(self.chip.clone())
    }

    /// The NRSTPD line.
    pub fn reset_pin(&self) -> ModelResetPin {
        ModelResetPin::new(self.chip.clone())
    }

    /// A delay that advances the model's virtual clock instead of sleeping.
    pub fn delay(&self) -> ModelDelay {
        ModelDelay::new(self.chip.clone())
    }

    /// Puts a card in the field (powered if the field is on).
    pub fn insert(&self, mut card: VirtualCard) -> CardId {
        let mut chip = self.lock();
        card.power(chip.field_on());
        chip.next_id += 1;
        let id = CardId(chip.next_id);
        chip.cards.push(Slot {
            id,
            card,
            remove_after: None,
        });
        id
    }

    /// Takes a card out of the field.
    pub fn remove(&self, id: CardId) -> Option<VirtualCard> {
        let mut chip = self.lock();
        let index = chip.cards.iter().position(|s| s.id == id)?;
        Some(chip.cards.remove(index).card)
    }

    /// The card leaves the field once it has heard `frames` more frames:
    /// the next one finds it gone (removed mid-exchange).
    pub fn remove_after_frames(&self, id: CardId, frames: u32) {
        if let Some(slot) = self.lock().cards.iter_mut().find(|s| s.id == id) {
            slot.remove_after = Some(frames);
        }
    }

    /// A card's ISO 14443 state, `None` once it left the field.
    pub fn card_state(&self, id: CardId) -> Option<PiccState> {
        self.lock()
            .cards
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.card.state())
    }

    /// A card's (reader → card, card → reader) bit rates.
    pub fn card_bit_rates(&self, id: CardId) -> Option<(BitRate, BitRate)> {
        self.lock()
            .cards
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.card.bit_rates())
    }

    /// The next `n` card answers that carry a CRC_A arrive with it broken.
    pub fn corrupt_crc_of_next(&self, n: u32) {
        self.lock().faults.corrupt_crc = n;
    }

    /// The next `n` card answers are lost on the air (the reader times out).
    pub fn drop_next_responses(&self, n: u32) {
        self.lock().faults.drop_responses = n;
    }

    /// The CRC and drop faults spare the next `answers` card answers, so
    /// that they strike inside a chain rather than at its start.
    pub fn delay_faults(&self, answers: u32) {
        self.lock().faults.delay = answers;
    }

    /// The card answers its next APDU only after `times` S(WTX) requests
    /// of `wtxm` (1..=59), and then later than its plain FWT.
    pub fn request_wtx(&self, id: CardId, times: u32, wtxm: u8) {
        if let Some(slot) = self.lock().cards.iter_mut().find(|s| s.id == id) {
            slot.card.request_wtx(times, wtxm);
        }
    }

    /// A chip whose digital logic is damaged: the self-test output differs.
    pub fn break_self_test(&self, broken: bool) {
        self.lock().faults.broken_self_test = broken;
    }

    /// The chip is unplugged: MISO reads 00h, writes go nowhere.
    pub fn disconnect(&self, disconnected: bool) {
        self.lock().faults.disconnected = disconnected;
    }

    /// Virtual time spent on the air and in the driver's delays.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.lock().clock_ns)
    }

    /// Frames the chip has sent into the field.
    pub fn frames_sent(&self) -> u64 {
        self.lock().frames
    }

    /// A register's value as the host would read it, without the side
    /// effects of a read (the FIFO is not popped).
    pub fn peek(&self, address: u8) -> u8 {
        self.lock().peek(address & 0x3F)
    }
}

struct Slot {
    id: CardId,
    card: VirtualCard,
    remove_after: Option<u32>,
}

#[derive(Default)]
struct Faults {
    delay: u32,
    corrupt_crc: u32,
    drop_responses: u32,
    broken_self_test: bool,
    disconnected: bool,
}

/// The chip's state.
pub(crate) struct Chip {
    version: u8,
    regs: [u8; 64],
    fifo: VecDeque<u8>,
    internal: [u8; 25],
    command: u8,
    error: u8,
    com_irq: u8,
    div_irq: u8,
    crc_ready: bool,
    coll: u8,
    rx_last_bits: u8,
    /// NRSTPD low.
    hard_power_down: bool,
    cards: Vec<Slot>,
    next_id: u32,
    faults: Faults,
    clock_ns: u64,
    random: u64,
    frames: u64,
}

/// Where an SPI transaction stands: the address byte comes first, then
/// data (write) or the next addresses (read).
#[derive(Default)]
pub(crate) struct SpiState {
    started: bool,
    read: bool,
    address: u8,
}

impl Chip {
    fn new(version: u8) -> Chip {
        let mut chip = Chip {
            version,
            regs: [0; 64],
            fifo: VecDeque::with_capacity(regs::FIFO_SIZE),
            internal: [0; 25],
            command: cmd::IDLE,
            error: 0,
            com_irq: 0,
            div_irq: 0,
            crc_ready: false,
            coll: 0,
            rx_last_bits: 0,
            hard_power_down: false,
            cards: Vec::new(),
            next_id: 0,
            faults: Faults::default(),
            clock_ns: 0,
            random: 0x2545_F491_4F6C_DD1D,
            frames: 0,
        };
        chip.reset_registers();
        chip
    }

    /// Register reset values (datasheet §9.3); the internal buffer survives.
    fn reset_registers(&mut self) {
        let was_on = self.field_on();
        self.regs = [0; 64];
        for (address, value) in [
            (reg::COMMAND, 0x20),
            (reg::COM_IEN, 0x80),
            (reg::WATER_LEVEL, 0x08),
            (reg::CONTROL, 0x10),
            (reg::COLL, 0x80),
            (reg::MODE, 0x3F),
            (reg::TX_CONTROL, 0x80),
            (reg::TX_SEL, 0x10),
            (reg::RX_SEL, 0x84),
            (reg::RX_THRESHOLD, 0x84),
            (reg::DEMOD, 0x4D),
            (reg::MF_TX, 0x62),
            (reg::SERIAL_SPEED, 0xEB),
            (reg::CRC_RESULT_H, 0xFF),
            (reg::CRC_RESULT_L, 0xFF),
            (reg::MOD_WIDTH, 0x26),
            (reg::RF_CFG, 0x48),
            (reg::GS_N, 0x88),
            (reg::CW_GS_P, 0x20),
            (reg::MOD_GS_P, 0x20),
            (reg::AUTO_TEST, 0x40),
        ] {
            self.regs[usize::from(address)] = value;
        }
        self.fifo.clear();
        self.command = cmd::IDLE;
        self.error = 0;
        self.com_irq = 0x14;
        self.div_irq = 0;
        self.crc_ready = false;
        self.coll = regs::COLL_POS_NOT_VALID;
        self.rx_last_bits = 0;
        if was_on {
            self.power_cards(false);
        }
    }

    fn field_on(&self) -> bool {
        !self.hard_power_down && self.regs[usize::from(reg::TX_CONTROL)] & regs::TX_RF_EN != 0
    }

    fn power_cards(&mut self, on: bool) {
        for slot in &mut self.cards {
            slot.card.power(on);
        }
    }

    pub(crate) fn advance(&mut self, ns: u64) {
        self.clock_ns = self.clock_ns.saturating_add(ns);
    }

    pub(crate) fn set_reset_pin(&mut self, high: bool) {
        if !high {
            let was_on = self.field_on();
            self.hard_power_down = true;
            if was_on {
                self.power_cards(false);
            }
        } else if self.hard_power_down {
            self.hard_power_down = false;
            self.reset_registers();
        }
    }

    /// One byte clocked through SPI: returns MISO for this byte.
    pub(crate) fn spi_byte(&mut self, state: &mut SpiState, mosi: u8) -> u8 {
        if self.hard_power_down || self.faults.disconnected {
            return 0x00;
        }
        if !state.started {
            state.started = true;
            state.read = mosi & 0x80 != 0;
            state.address = (mosi >> 1) & 0x3F;
            return 0x00;
        }
        if state.read {
            let value = self.read(state.address);
            state.address = (mosi >> 1) & 0x3F;
            value
        } else {
            self.write(state.address, mosi);
            0x00
        }
    }

    fn status1(&self) -> u8 {
        let level = self.fifo.len();
        let water = usize::from(self.regs[usize::from(reg::WATER_LEVEL)] & 0x3F);
        let mut value = 0;
        if self.crc_ready {
            value |= regs::CRC_READY;
            if self.regs[usize::from(reg::CRC_RESULT_H)] == 0
                && self.regs[usize::from(reg::CRC_RESULT_L)] == 0
            {
                value |= regs::CRC_OK;
            }
        }
        let enabled = (self.com_irq & self.regs[usize::from(reg::COM_IEN)] & 0x7F)
            | (self.div_irq & self.regs[usize::from(reg::DIV_IEN)] & 0x7F);
        if enabled != 0 {
            value |= regs::STATUS1_IRQ;
        }
        if regs::FIFO_SIZE - level <= water {
            value |= regs::HI_ALERT;
        }
        if level <= water {
            value |= regs::LO_ALERT;
        }
        value
    }

    fn peek(&self, address: u8) -> u8 {
        match address {
            reg::COMMAND => (self.regs[usize::from(reg::COMMAND)] & 0x30) | self.command,
            reg::COM_IRQ => self.com_irq,
            reg::DIV_IRQ => self.div_irq,
            reg::ERROR => self.error,
            reg::STATUS1 => self.status1(),
            reg::FIFO_DATA => self.fifo.front().copied().unwrap_or(0),
            reg::FIFO_LEVEL => self.fifo.len() as u8,
            reg::CONTROL => 0x10 | self.rx_last_bits,
            reg::BIT_FRAMING => self.regs[usize::from(reg::BIT_FRAMING)] & 0x77,
            reg::COLL => (self.regs[usize::from(reg::COLL)] & regs::VALUES_AFTER_COLL) | self.coll,
            reg::VERSION => self.version,
            reg::T_COUNTER_H | reg::T_COUNTER_L => 0,
            _ => self.regs[usize::from(address & 0x3F)],
        }
    }

    fn read(&mut self, address: u8) -> u8 {
        if address == reg::FIFO_DATA {
            return self.fifo.pop_front().unwrap_or(0);
        }
        self.peek(address)
    }

    fn push_fifo(&mut self, byte: u8) {
        if self.fifo.len() >= regs::FIFO_SIZE {
            self.error |= regs::BUFFER_OVFL;
            self.com_irq |= regs::ERR_IRQ;
        } else {
            self.fifo.push_back(byte);
        }
    }

    fn write(&mut self, address: u8, value: u8) {
        let a = usize::from(address);
        match address {
            reg::COMMAND => self.command(value),
            reg::COM_IRQ => {
                if value & regs::IRQ_SET != 0 {
                    self.com_irq |= value & 0x7F;
                } else {
                    self.com_irq &= !value;
                }
            }
            reg::DIV_IRQ => {
                if value & regs::IRQ_SET != 0 {
                    self.div_irq |= value & 0x14;
                } else {
                    self.div_irq &= !value;
                }
            }
            reg::ERROR | reg::STATUS1 | reg::VERSION | reg::CRC_RESULT_H | reg::CRC_RESULT_L => {}
            reg::FIFO_DATA => {
                if self.command == cmd::MF_AUTHENT {
                    self.error |= regs::WR_ERR;
                }
                self.push_fifo(value);
            }
            reg::FIFO_LEVEL => {
                if value & regs::FLUSH_BUFFER != 0 {
                    self.fifo.clear();
                    self.error &= !regs::BUFFER_OVFL;
                }
            }
            reg::CONTROL => {}
            reg::BIT_FRAMING => {
                self.regs[a] = value & 0x77;
                if value & regs::START_SEND != 0 && self.command == cmd::TRANSCEIVE {
                    self.exchange(true);
                }
            }
            reg::COLL => self.regs[a] = value & regs::VALUES_AFTER_COLL,
            reg::TX_CONTROL => {
                let was_on = self.field_on();
                self.regs[a] = value;
                let on = self.field_on();
                if on != was_on {
                    self.power_cards(on);
                }
            }
            _ => self.regs[a] = value,
        }
    }

    fn command(&mut self, value: u8) {
        let command = value & 0x0F;
        let bits = value & 0x30;
        self.regs[usize::from(reg::COMMAND)] = bits;
        if command == cmd::NO_CMD_CHANGE {
            return;
        }
        if command != cmd::IDLE {
            self.error &= regs::TEMP_ERR;
        }
        match command {
            cmd::IDLE => self.command = cmd::IDLE,
            cmd::MEM => {
                if self.fifo.is_empty() {
                    for byte in self.internal {
                        self.push_fifo(byte);
                    }
                } else {
                    for slot in self.internal.iter_mut() {
                        *slot = self.fifo.pop_front().unwrap_or(0);
                    }
                }
                self.finish();
            }
            cmd::GENERATE_RANDOM_ID => {
                for i in 0..10 {
                    self.internal[i] = self.next_random();
                }
                self.finish();
            }
            cmd::CALC_CRC => {
                self.command = cmd::CALC_CRC;
                if self.regs[usize::from(reg::AUTO_TEST)] & 0x0F == regs::SELF_TEST_ENABLE {
                    self.self_test();
                } else {
                    let data: Vec<u8> = self.fifo.drain(..).collect();
                    let preset = match self.regs[usize::from(reg::MODE)] & 0x03 {
                        0 => 0x0000,
                        1 => 0x6363,
                        2 => 0xA671,
                        _ => 0xFFFF,
                    };
                    let [low, high] = crc_a(&data, preset);
                    self.regs[usize::from(reg::CRC_RESULT_L)] = low;
                    self.regs[usize::from(reg::CRC_RESULT_H)] = high;
                }
                self.crc_ready = true;
                self.div_irq |= regs::CRC_IRQ;
            }
            cmd::TRANSMIT => {
                self.command = cmd::TRANSMIT;
                self.exchange(false);
            }
            cmd::RECEIVE | cmd::TRANSCEIVE => self.command = command,
            cmd::MF_AUTHENT => {
                // MIFARE Classic authentication is not modelled: the chip
                // reports a protocol error as for a wrong answer.
                self.error |= regs::PROTOCOL_ERR;
                self.com_irq |= regs::ERR_IRQ;
                self.finish();
            }
            cmd::SOFT_RESET => {
                self.reset_registers();
                self.regs[usize::from(reg::COMMAND)] = 0x20;
            }
            _ => self.finish(),
        }
    }

    /// A command that terminates by itself.
    fn finish(&mut self) {
        self.command = cmd::IDLE;
        self.com_irq |= regs::IDLE_IRQ;
    }

    fn next_random(&mut self) -> u8 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        (self.random >> 24) as u8
    }

    fn self_test(&mut self) {
        let armed = self.internal == [0; 25] && self.fifo.len() == 1 && self.fifo[0] == 0;
        self.fifo.clear();
        let mut output = match self.version {
            0x91 => regs::SELF_TEST_V1,
            0x92 => regs::SELF_TEST_V2,
            // Clones produce their own bytes; any fixed pattern will do.
            _ => {
                let mut out = [0u8; 64];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = (i as u8).wrapping_mul(37) ^ self.version;
                }
                out
            }
        };
        if !armed || self.faults.broken_self_test {
            output[17] ^= 0x40;
            output[40] ^= 0x01;
        }
        for byte in output {
            self.push_fifo(byte);
        }
    }

    fn timer_ns(&self) -> Option<u64> {
        let mode = self.regs[usize::from(reg::T_MODE)];
        if mode & regs::T_AUTO == 0 {
            return None;
        }
        let prescaler =
            u64::from(mode & 0x0F) << 8 | u64::from(self.regs[usize::from(reg::T_PRESCALER)]);
        let reload = u64::from(self.regs[usize::from(reg::T_RELOAD_H)]) << 8
            | u64::from(self.regs[usize::from(reg::T_RELOAD_L)]);
        Some((2 * prescaler + 1) * (reload + 1) * 1_000_000_000 / FC_HZ)
    }

    /// Transmits the FIFO, lets the cards answer, and (for Transceive)
    /// receives: everything a frame does on the air, at once.
    fn exchange(&mut self, transceive: bool) {
        self.error &= regs::TEMP_ERR;
        self.coll = regs::COLL_POS_NOT_VALID;
        self.rx_last_bits = 0;
        let framing = self.regs[usize::from(reg::BIT_FRAMING)];
        let tx_last_bits = usize::from(framing & 0x07);
        let rx_align = usize::from((framing >> 4) & 0x07);
        let tx_mode = self.regs[usize::from(reg::TX_MODE)];
        let rx_mode = self.regs[usize::from(reg::RX_MODE)];
        let tx_rate = BitRate::from_code(tx_mode >> 4);
        let rx_rate = BitRate::from_code(rx_mode >> 4);
        let mut frame: Vec<u8> = self.fifo.drain(..).collect();
        let mut bits = frame.len() * 8;
        if tx_last_bits != 0 && !frame.is_empty() {
            bits -= 8 - tx_last_bits;
        } else if tx_mode & regs::CRC_EN != 0 {
            let crc = crc_a(&frame, 0x6363);
            frame.extend_from_slice(&crc);
            bits += 16;
        }
        self.advance(air_time_ns(bits, tx_rate));
        self.com_irq |= regs::TX_IRQ;
        self.frames += 1;
        // A pause longer than half a bit blurs the bit: no card decodes it.
        let understood =
            u32::from(self.regs[usize::from(reg::MOD_WIDTH)]) < tx_rate.etu_cycles() / 2;
        let mut answers = Vec::new();
        if self.field_on() && bits > 0 {
            let rf = RfFrame {
                bytes: &frame,
                bits,
                rate: tx_rate,
            };
            self.cards.retain_mut(|slot| {
                match slot.remove_after {
                    Some(0) => return false,
                    Some(n) => slot.remove_after = Some(n - 1),
                    None => {}
                }
                if understood && let Some(answer) = slot.card.receive(&rf) {
                    answers.push(answer);
                }
                true
            });
        }
        if !transceive {
            self.finish();
            return;
        }
        let timer = self.timer_ns();
        answers.retain(|a| a.rate == rx_rate && timer.is_none_or(|t| a.latency_ns <= t));
        let faults_armed = if !answers.is_empty() && self.faults.delay > 0 {
            self.faults.delay -= 1;
            false
        } else {
            true
        };
        if faults_armed && !answers.is_empty() && self.faults.drop_responses > 0 {
            self.faults.drop_responses -= 1;
            answers.clear();
        }
        if answers.is_empty() {
            if let Some(t) = timer {
                self.advance(t);
                self.com_irq |= regs::TIMER_IRQ;
            }
            return;
        }
        if faults_armed
            && self.faults.corrupt_crc > 0
            && let Some(answer) = answers.iter_mut().find(|a| a.has_crc)
            && let Some(last) = answer.bytes.last_mut()
        {
            *last ^= 0x01;
            self.faults.corrupt_crc -= 1;
        }
        let latency = answers.iter().map(|a| a.latency_ns).max().unwrap_or(0);
        let length = answers.iter().map(|a| a.bits).max().unwrap_or(0);
        self.advance(latency + air_time_ns(length, rx_rate));
        let (mut received, collision) = combine(&answers, length);
        if answers.len() > 1 && rx_rate != BitRate::Kbps106 {
            // Above 106 kbit/s collisions are not detected bit by bit;
            // the frames just garble each other.
            self.error |= if rx_mode & regs::CRC_EN != 0 {
                regs::CRC_ERR
            } else {
                regs::PROTOCOL_ERR
            };
        } else if let Some(position) = collision {
            self.error |= regs::COLL_ERR;
            if position <= 32 {
                self.coll = (position & 0x1F) as u8;
            }
            if self.regs[usize::from(reg::COLL)] & regs::VALUES_AFTER_COLL == 0 {
                // The collided bit reads 1 (both subcarrier halves), later ones 0.
                for (i, bit) in received.iter_mut().enumerate().skip(position - 1) {
                    *bit = i + 1 == position;
                }
            }
        }
        let mut bytes = vec![0u8; (rx_align + received.len()).div_ceil(8)];
        for (i, &bit) in received.iter().enumerate() {
            if bit {
                bytes[(rx_align + i) / 8] |= 1 << ((rx_align + i) % 8);
            }
        }
        if rx_mode & regs::CRC_EN != 0 && collision.is_none() {
            let n = bytes.len();
            if !received.len().is_multiple_of(8) || n < 2 {
                self.error |= regs::CRC_ERR;
            } else {
                if crc_a(&bytes[..n - 2], 0x6363) != bytes[n - 2..] {
                    self.error |= regs::CRC_ERR;
                }
                bytes.truncate(n - 2);
            }
        }
        for byte in bytes {
            self.push_fifo(byte);
        }
        self.rx_last_bits = ((rx_align + received.len()) % 8) as u8;
        self.com_irq |= regs::RX_IRQ;
        if self.error != 0 {
            self.com_irq |= regs::ERR_IRQ;
        }
    }
}

/// Duration of a frame of `bits` at `rate`: a parity bit per byte, SOF, EOF.
fn air_time_ns(bits: usize, rate: BitRate) -> u64 {
    let etus = (bits + bits / 8 + 2) as u64;
    etus * u64::from(rate.etu_cycles()) * 1_000_000_000 / FC_HZ
}

/// Superimposes the answers bit by bit; returns the bits as received and
/// the 1-based position of the first bit on which the cards disagreed.
fn combine(answers: &[Answer], length: usize) -> (Vec<bool>, Option<usize>) {
    let mut bits = Vec::with_capacity(length);
    let mut collision = None;
    for i in 0..length {
        let mut seen = answers
            .iter()
            .filter(|a| i < a.bits)
            .map(|a| a.bytes.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1));
        let first = seen.next().unwrap_or(false);
        if seen.any(|b| b != first) && collision.is_none() {
            collision = Some(i + 1);
        }
        bits.push(first);
    }
    (bits, collision)
}
