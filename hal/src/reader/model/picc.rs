//! A virtual ISO 14443-A card: the ISO 14443-3 state machine with bitwise
//! anticollision, and an ISO 14443-4 layer (ATS, PPS, block protocol) in
//! front of a [`CardApplication`].

use std::fmt;

use crate::reader::card::{CardApplication, PiccIdentity};
use crate::reader::iso_dep::Ats;
use crate::reader::mfrc522::BitRate;
use crate::reader::regs::{FC_HZ, crc_a};

/// ISO 14443-3 states (plus PROTOCOL, the ISO 14443-4 state after RATS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiccState {
    /// No field: the card is unpowered.
    PowerOff,
    /// Powered, waiting for REQA or WUPA.
    Idle,
    /// Woken, taking part in anticollision.
    Ready,
    /// Selected.
    Active,
    /// Halted: only WUPA wakes it.
    Halt,
    /// ISO 14443-4 after RATS.
    Protocol,
}

/// A frame on the air from the reader.
pub(crate) struct RfFrame<'a> {
    pub bytes: &'a [u8],
    /// Valid bits in total (the last byte may be partial).
    pub bits: usize,
    pub rate: BitRate,
}

/// A card's answer.
pub(crate) struct Answer {
    pub bytes: Vec<u8>,
    pub bits: usize,
    pub rate: BitRate,
    /// Time from the end of the reader's frame to the start of the answer.
    pub latency_ns: u64,
    /// Whether the last two bytes are a CRC_A (what the CRC fault corrupts).
    pub has_crc: bool,
}

/// A virtual contactless card: what it is (identity, ATS) and what it
/// runs (a [`CardApplication`]).
pub struct VirtualCard {
    identity: PiccIdentity,
    ats: Option<Ats>,
    app: Box<dyn CardApplication>,
    state: PiccState,
    /// READY*/ACTIVE*: woken from HALT, so errors send it back to HALT.
    from_halt: bool,
    level: usize,
    /// (reader → card, card → reader) rates.
    rates: (BitRate, BitRate),
    layer4: Layer4,
    wtx_plan: Option<(u32, u8)>,
}

#[derive(Default)]
struct Layer4 {
    block_number: u8,
    fsd: usize,
    pps_allowed: bool,
    command: Vec<u8>,
    /// Response bytes not sent yet (card chaining).
    pending: Vec<u8>,
    /// The last block sent, for R(ACK)/R(NAK) retransmission.
    last_block: Vec<u8>,
    /// A response held back while the card asks for more time.
    held: Option<Vec<u8>>,
    wtx_left: u32,
    wtxm: u8,
}

impl fmt::Debug for VirtualCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualCard")
            .field("identity", &self.identity)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// FDT of a layer 3 answer: (n × 128 + 84) / fc with n = 9, about 91 µs.
const FDT_LAYER3_NS: u64 = (9 * 128 + 84) * 1_000_000_000 / FC_HZ;
const FS_TABLE: [usize; 9] = [16, 24, 32, 40, 48, 64, 96, 128, 256];

impl VirtualCard {
    /// A card with this identity running `app`, outside any field.
    pub fn new(identity: PiccIdentity, app: impl CardApplication + 'static) -> Self {
        let ats = Ats::parse(&identity.ats).ok();
        VirtualCard {
            identity,
            ats,
            app: Box::new(app),
            state: PiccState::PowerOff,
            from_halt: false,
            level: 0,
            rates: (BitRate::Kbps106, BitRate::Kbps106),
            layer4: Layer4::default(),
            wtx_plan: None,
        }
    }

    /// The card's identity.
    pub fn identity(&self) -> &PiccIdentity {
        &self.identity
    }

    /// The card's state.
    pub fn state(&self) -> PiccState {
        self.state
    }

    /// The card's current (reader → card, card → reader) bit rates.
    pub fn bit_rates(&self) -> (BitRate, BitRate) {
        self.rates
    }

    /// The next APDU answer comes after `times` S(WTX) requests for
    /// `wtxm` × FWT each, and takes longer than FWT.
    pub fn request_wtx(&mut self, times: u32, wtxm: u8) {
        self.wtx_plan = Some((times, wtxm.clamp(1, 59)));
    }

    pub(crate) fn power(&mut self, on: bool) {
        self.state = if on {
            PiccState::Idle
        } else {
            PiccState::PowerOff
        };
        self.from_halt = false;
        self.level = 0;
        self.rates = (BitRate::Kbps106, BitRate::Kbps106);
        self.layer4 = Layer4::default();
    }

    fn fwt_ns(&self) -> u64 {
        let fwi = self.ats.as_ref().map_or(4, |a| a.fwi);
        (4096u64 << fwi.min(14)) * 1_000_000_000 / FC_HZ
    }

    fn fsc(&self) -> usize {
        self.ats.as_ref().map_or(32, Ats::fsc)
    }

    /// The UID bytes and BCC of cascade level `level` (0-based).
    fn cascade(&self, level: usize) -> Option<[u8; 5]> {
        let uid = &self.identity.uid;
        let levels = match uid.len() {
            4 => 1,
            7 => 2,
            10 => 3,
            _ => return None,
        };
        if level >= levels {
            return None;
        }
        let mut cl = [0u8; 5];
        if level + 1 < levels {
            cl[0] = 0x88;
            cl[1..4].copy_from_slice(uid.get(level * 3..level * 3 + 3)?);
        } else {
            cl[..4].copy_from_slice(uid.get(level * 3..level * 3 + 4)?);
        }
        cl[4] = cl[0] ^ cl[1] ^ cl[2] ^ cl[3];
        Some(cl)
    }

    fn levels(&self) -> usize {
        match self.identity.uid.len() {
            7 => 2,
            10 => 3,
            _ => 1,
        }
    }

    /// What a command the card does not expect does: back to IDLE, or to
    /// HALT when it was woken from there.
    fn fall_back(&mut self) {
        self.state = if self.from_halt {
            PiccState::Halt
        } else {
            PiccState::Idle
        };
        self.level = 0;
    }

    fn answer(&self, payload: &[u8], crc: bool, latency_ns: u64) -> Answer {
        let mut bytes = payload.to_vec();
        if crc {
            bytes.extend_from_slice(&crc_a(payload, 0x6363));
        }
        Answer {
            bits: bytes.len() * 8,
            bytes,
            rate: self.rates.1,
            latency_ns,
            has_crc: crc,
        }
    }

    /// The card hears a frame; returns what it sends back, if anything.
    pub(crate) fn receive(&mut self, frame: &RfFrame<'_>) -> Option<Answer> {
        if self.state == PiccState::PowerOff || frame.rate != self.rates.0 {
            return None;
        }
        let bytes = frame.bytes;
        if frame.bits == 7 {
            return self.short_frame(bytes.first()? & 0x7F);
        }
        let with_crc = frame.bits.is_multiple_of(8)
            && bytes.len() >= 3
            && crc_a(&bytes[..bytes.len() - 2], 0x6363) == bytes[bytes.len() - 2..];
        match self.state {
            PiccState::PowerOff | PiccState::Idle | PiccState::Halt => None,
            PiccState::Ready => self.ready(frame, with_crc),
            PiccState::Active => {
                let payload = &bytes[..bytes.len().saturating_sub(2)];
                match payload {
                    [0x50, 0x00] if with_crc => {
                        self.state = PiccState::Halt;
                        None
                    }
                    [0xE0, param] if with_crc && self.identity.sak & 0x20 != 0 => {
                        let fsdi = usize::from(param >> 4);
                        self.layer4 = Layer4 {
                            block_number: 1,
                            fsd: FS_TABLE.get(fsdi).copied().unwrap_or(256),
                            pps_allowed: true,
                            ..Layer4::default()
                        };
                        self.state = PiccState::Protocol;
                        Some(self.answer(&self.identity.ats, true, 1_000_000))
                    }
                    _ => {
                        self.fall_back();
                        None
                    }
                }
            }
            // ISO 14443-4: a block with a transmission error is ignored.
            PiccState::Protocol if with_crc => self.block(&bytes[..bytes.len() - 2]),
            PiccState::Protocol => None,
        }
    }

    fn short_frame(&mut self, command: u8) -> Option<Answer> {
        let wakes = match (command, self.state) {
            (0x26, PiccState::Idle) => true,
            (0x52, PiccState::Idle | PiccState::Halt) => true,
            (0x26 | 0x52, PiccState::Ready | PiccState::Active) => {
                self.fall_back();
                false
            }
            _ => false,
        };
        if !wakes {
            return None;
        }
        self.from_halt = self.state == PiccState::Halt;
        self.state = PiccState::Ready;
        self.level = 0;
        Some(Answer {
            bytes: self.identity.atqa.to_vec(),
            bits: 16,
            rate: self.rates.1,
            latency_ns: FDT_LAYER3_NS,
            has_crc: false,
        })
    }

    fn ready(&mut self, frame: &RfFrame<'_>, with_crc: bool) -> Option<Answer> {
        const SEL: [u8; 3] = [0x93, 0x95, 0x97];
        let bytes = frame.bytes;
        let cl = self.cascade(self.level)?;
        if bytes.first() != SEL.get(self.level) || bytes.len() < 2 {
            self.fall_back();
            return None;
        }
        let nvb = bytes[1];
        if nvb == 0x70 && frame.bits == 72 {
            if !with_crc {
                self.fall_back();
                return None;
            }
            if bytes[2..7] != cl {
                // Another card's UID: stay READY, silent.
                return None;
            }
            let sak = if self.level + 1 < self.levels() {
                self.level += 1;
                0x04
            } else {
                self.state = PiccState::Active;
                self.identity.sak & !0x04
            };
            return Some(self.answer(&[sak], true, FDT_LAYER3_NS));
        }
        let announced = usize::from(nvb >> 4) * 8 + usize::from(nvb & 0x07);
        if announced != frame.bits || !(16..56).contains(&frame.bits) {
            self.fall_back();
            return None;
        }
        let known = frame.bits - 16;
        let bit = |buf: &[u8], i: usize| buf[i / 8] >> (i % 8) & 1;
        if (0..known).any(|i| bit(&bytes[2..], i) != bit(&cl, i)) {
            return None;
        }
        let rest = 40 - known;
        let mut out = vec![0u8; rest.div_ceil(8)];
        for i in 0..rest {
            out[i / 8] |= bit(&cl, known + i) << (i % 8);
        }
        Some(Answer {
            bytes: out,
            bits: rest,
            rate: self.rates.1,
            latency_ns: FDT_LAYER3_NS,
            has_crc: false,
        })
    }

    /// An error-free ISO 14443-4 block (CRC removed).
    fn block(&mut self, payload: &[u8]) -> Option<Answer> {
        let &pcb = payload.first()?;
        if payload.len() + 2 > self.fsc() {
            return None;
        }
        let pps_allowed = std::mem::take(&mut self.layer4.pps_allowed);
        if pps_allowed && pcb & 0xF0 == 0xD0 {
            return self.pps(payload);
        }
        // This card takes neither CID nor NAD: such blocks are not for it.
        if pcb & 0x08 != 0 || (pcb & 0xC0 == 0 && pcb & 0x04 != 0) {
            return None;
        }
        let normal = self.fwt_ns().min(2_000_000) / 2;
        match pcb & 0xE6 {
            _ if pcb & 0xE2 == 0x02 => {
                self.layer4.block_number ^= 1;
                self.layer4.command.extend_from_slice(&payload[1..]);
                if pcb & 0x10 != 0 {
                    let ack = [0xA2 | self.layer4.block_number];
                    return Some(self.send(&ack, normal));
                }
                let command = std::mem::take(&mut self.layer4.command);
                let response = self.app.process(&command);
                if let Some((times, wtxm)) = self.wtx_plan.take().filter(|&(t, _)| t > 0) {
                    self.layer4.held = Some(response);
                    self.layer4.wtx_left = times - 1;
                    self.layer4.wtxm = wtxm;
                    return Some(self.send(&[0xF2, wtxm], normal));
                }
                self.layer4.pending = response;
                Some(self.next_chunk(normal))
            }
            0xA2 => {
                let number = pcb & 1;
                let nak = pcb & 0x10 != 0;
                if number == self.layer4.block_number {
                    let last = self.layer4.last_block.clone();
                    Some(self.send(&last, normal))
                } else if nak {
                    let ack = [0xA2 | self.layer4.block_number];
                    Some(self.send(&ack, normal))
                } else if !self.layer4.pending.is_empty() {
                    self.layer4.block_number ^= 1;
                    Some(self.next_chunk(normal))
                } else {
                    None
                }
            }
            0xC2 if payload.len() == 1 => {
                let answer = self.answer(&[0xC2], true, normal);
                // HALT speaks ISO 14443-3 only, which is 106 kbit/s.
                self.state = PiccState::Halt;
                self.from_halt = false;
                self.rates = (BitRate::Kbps106, BitRate::Kbps106);
                Some(answer)
            }
            0xE2 if payload.len() == 2 => {
                let held = self.layer4.held.take()?;
                if self.layer4.wtx_left > 0 {
                    self.layer4.wtx_left -= 1;
                    self.layer4.held = Some(held);
                    let wtxm = self.layer4.wtxm;
                    return Some(self.send(&[0xF2, wtxm], normal));
                }
                // The work took most of the extended time: only a reader
                // that extended its timer to FWT × WTXM hears the answer.
                self.layer4.pending = held;
                let slow = self.fwt_ns() * u64::from(self.layer4.wtxm) * 9 / 10;
                Some(self.next_chunk(slow))
            }
            _ => None,
        }
    }

    fn pps(&mut self, payload: &[u8]) -> Option<Answer> {
        let (dsi, dri) = match payload {
            [ppss, 0x11, pps1] if ppss & 0x0F == 0 => (pps1 >> 2 & 3, pps1 & 3),
            [ppss, 0x01] if ppss & 0x0F == 0 => (0, 0),
            _ => return None,
        };
        let ats = self.ats.as_ref()?;
        let (ds, dr) = (BitRate::from_code(dsi), BitRate::from_code(dri));
        if !ats.card_can_send_at(ds)
            || !ats.card_can_receive_at(dr)
            || (ats.same_rate_both_ways() && ds != dr)
        {
            return None;
        }
        // The answer goes out at the old rate; the new one applies after.
        let answer = self.answer(&[0xD0], true, 500_000);
        self.rates = (dr, ds);
        Some(answer)
    }

    fn next_chunk(&mut self, latency_ns: u64) -> Answer {
        let room = self.layer4.fsd.saturating_sub(3).max(1);
        let take = room.min(self.layer4.pending.len());
        let rest = self.layer4.pending.split_off(take);
        let chunk = std::mem::replace(&mut self.layer4.pending, rest);
        let chaining = !self.layer4.pending.is_empty();
        let mut block = vec![0x02 | self.layer4.block_number | if chaining { 0x10 } else { 0 }];
        block.extend_from_slice(&chunk);
        self.send(&block, latency_ns)
    }

    fn send(&mut self, block: &[u8], latency_ns: u64) -> Answer {
        self.layer4.last_block = block.to_vec();
        self.answer(block, true, latency_ns)
    }
}
