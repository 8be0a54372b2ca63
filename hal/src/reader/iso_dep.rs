//! ISO 14443-4 (ISO-DEP) on the MFRC522, reader side: RATS and the ATS,
//! PPS, the half-duplex block protocol (I-blocks with chaining both ways,
//! block numbering, R(ACK)/R(NAK) recovery, S(WTX), S(DESELECT)).
//!
//! Frames are limited to the chip's 64-byte FIFO both ways: the reader
//! announces FSD = 64 and never sends more than 64 bytes even when the card
//! accepts more (FSC up to 256). Filling the FIFO while a frame is on the
//! air would need FIFO service within one byte time (≈ 10 µs at
//! 848 kbit/s), which a Linux process doing one ioctl per SPI transfer cannot
//! promise; chaining costs a few frames instead.
//!
//! No CID and no NAD are ever used (one card at a time, as EMV requires).

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_hal::spi::SpiDevice;

use super::error::ReaderError;
use super::mfrc522::{BitRate, Error, Mfrc522};
use super::regs::FC_HZ;

/// The largest frame the reader accepts, CRC included (FSDI 5).
pub const FSD: usize = 64;
const FSDI: u8 = 5;
/// Frame sizes for FSCI/FSDI 0..=8 (ISO 14443-4 Table 1); larger codes
/// (RFU in the 2008 edition) count as 256.
const FS_TABLE: [usize; 9] = [16, 24, 32, 40, 48, 64, 96, 128, 256];
/// The activation frame waiting time for the ATS: 65536/fc ≈ 4.8 ms.
const ATS_WAIT_US: u64 = 65_536 * 1_000_000 / FC_HZ;
/// Extra time on top of FWT (EMV's ΔFWT, 49152/fc ≈ 3.6 ms), for card
/// clocks at the low end of their tolerance.
const DELTA_FWT_US: u64 = 49_152 * 1_000_000 / FC_HZ + 1;
/// FWT for FWI 14, the most any wait may last, even with WTX.
const FWT_MAX_US: u64 = (4096u64 << 14) * 1_000_000 / FC_HZ;
/// Retransmissions per block before giving up. EMV allows two; one more
/// for the reader's sake costs only a few milliseconds.
pub const MAX_RETRIES: u32 = 3;
/// WTX requests answered within one APDU exchange before the card is
/// considered stuck (59 × 4.9 s each would already be hours).
const MAX_WTX: u32 = 64;
/// The longest answer an APDU can have: 65536 data bytes and SW1 SW2.
const MAX_RESPONSE: usize = 65_538;

/// Why an ATS could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtsError {
    /// No bytes at all.
    #[error("empty ATS")]
    Empty,
    /// TL does not match the number of bytes received.
    #[error("ATS length byte says {tl} but {len} bytes arrived")]
    Length {
        /// The TL byte.
        tl: usize,
        /// Bytes received.
        len: usize,
    },
    /// T0 announces interface bytes that are not there.
    #[error("ATS announces more interface bytes than it has")]
    Truncated,
}

/// A parsed answer to select (ISO 14443-4 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ats {
    /// The ATS as received, starting with TL.
    pub raw: Vec<u8>,
    /// FSCI: code of the largest frame the card accepts.
    pub fsci: u8,
    /// TA(1), when present: bit rates the card supports.
    pub ta1: Option<u8>,
    /// TB(1), when present: FWI and SFGI.
    pub tb1: Option<u8>,
    /// TC(1), when present: CID and NAD support.
    pub tc1: Option<u8>,
    /// Frame waiting time integer (15 is RFU and read as the default 4).
    pub fwi: u8,
    /// Start-up frame guard time integer (15 is RFU and read as 0).
    pub sfgi: u8,
    /// The historical bytes.
    pub historical: Vec<u8>,
}

impl Ats {
    /// Parses an ATS including its length byte TL. Missing interface bytes
    /// take their ISO defaults (FSCI 2, FWI 4, SFGI 0, 106 kbit/s only).
    pub fn parse(bytes: &[u8]) -> Result<Ats, AtsError> {
        let tl = usize::from(*bytes.first().ok_or(AtsError::Empty)?);
        if tl != bytes.len() || tl == 0 {
            return Err(AtsError::Length {
                tl,
                len: bytes.len(),
            });
        }
        let mut ats = Ats {
            raw: bytes.to_vec(),
            fsci: 2,
            ta1: None,
            tb1: None,
            tc1: None,
            fwi: 4,
            sfgi: 0,
            historical: Vec::new(),
        };
        let Some(&t0) = bytes.get(1) else {
            return Ok(ats);
        };
        ats.fsci = t0 & 0x0F;
        let mut next = 2;
        let mut take = |present: bool| -> Result<Option<u8>, AtsError> {
            if !present {
                return Ok(None);
            }
            let b = *bytes.get(next).ok_or(AtsError::Truncated)?;
            next += 1;
            Ok(Some(b))
        };
        ats.ta1 = take(t0 & 0x10 != 0)?;
        ats.tb1 = take(t0 & 0x20 != 0)?;
        ats.tc1 = take(t0 & 0x40 != 0)?;
        if let Some(tb) = ats.tb1 {
            ats.fwi = match tb >> 4 {
                15 => 4,
                fwi => fwi,
            };
            ats.sfgi = match tb & 0x0F {
                15 => 0,
                sfgi => sfgi,
            };
        }
        ats.historical = bytes.get(next..).unwrap_or_default().to_vec();
        Ok(ats)
    }

    /// The largest frame the card accepts (FSC), in bytes.
    pub fn fsc(&self) -> usize {
        FS_TABLE.get(usize::from(self.fsci)).copied().unwrap_or(256)
    }

    /// Frame waiting time: (256 × 16 / fc) × 2^FWI.
    pub fn fwt_us(&self) -> u64 {
        fwt_us(self.fwi)
    }

    /// Start-up frame guard time: how long to wait after the ATS before
    /// the next frame (0 when SFGI is 0).
    pub fn sfgt_us(&self) -> u64 {
        if self.sfgi == 0 { 0 } else { fwt_us(self.sfgi) }
    }

    /// Whether the card accepts a NAD.
    pub fn nad_supported(&self) -> bool {
        self.tc1.is_some_and(|tc| tc & 0x01 != 0)
    }

    /// Whether the card accepts a CID (the ISO default when TC(1) is absent).
    pub fn cid_supported(&self) -> bool {
        self.tc1.is_none_or(|tc| tc & 0x02 != 0)
    }

    /// Whether the card needs the same rate in both directions (TA(1) bit 8).
    pub fn same_rate_both_ways(&self) -> bool {
        self.ta1.is_some_and(|ta| ta & 0x80 != 0)
    }

    /// Whether the card can send (card → reader) at `rate`.
    pub fn card_can_send_at(&self, rate: BitRate) -> bool {
        match rate.code() {
            0 => true,
            code => self.ta1.is_some_and(|ta| ta & (0x08 << code) != 0),
        }
    }

    /// Whether the card can receive (reader → card) at `rate`.
    pub fn card_can_receive_at(&self, rate: BitRate) -> bool {
        match rate.code() {
            0 => true,
            code => self.ta1.is_some_and(|ta| ta & (0x01 << (code - 1)) != 0),
        }
    }

    /// The fastest rates up to `max` the card allows, as (reader → card,
    /// card → reader). The MFRC522 does all four rates both ways, so the
    /// card and the caller's cap decide.
    pub fn best_rates(&self, max: BitRate) -> (BitRate, BitRate) {
        let best = |ok: &dyn Fn(BitRate) -> bool| {
            BitRate::ALL
                .iter()
                .rev()
                .copied()
                .find(|&r| r <= max && ok(r))
                .unwrap_or(BitRate::Kbps106)
        };
        if self.same_rate_both_ways() {
            let both = best(&|r| self.card_can_send_at(r) && self.card_can_receive_at(r));
            (both, both)
        } else {
            (
                best(&|r| self.card_can_receive_at(r)),
                best(&|r| self.card_can_send_at(r)),
            )
        }
    }
}

/// FWT for a frame waiting time integer, in µs.
pub fn fwt_us(fwi: u8) -> u64 {
    (4096u64 << fwi.min(14)) * 1_000_000 / FC_HZ
}

/// The reader's side of an ISO-DEP session with one card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    /// The reader's current block number (ISO 14443-4 rule A: starts at 0).
    pub block_number: u8,
    /// Frames the reader may send: min(FSC, FSD).
    pub max_frame: usize,
    /// FWT from the ATS.
    pub fwt_us: u64,
}

impl Session {
    pub(crate) fn new(ats: &Ats) -> Session {
        Session {
            block_number: 0,
            max_frame: ats.fsc().min(FSD),
            fwt_us: ats.fwt_us(),
        }
    }
}

/// A block as the reader classifies it.
enum Block<'a> {
    I {
        number: u8,
        chaining: bool,
        inf: &'a [u8],
    },
    Ack {
        number: u8,
    },
    Wtx {
        wtxm: u8,
    },
    Invalid,
}

fn classify(frame: &[u8]) -> Block<'_> {
    let Some(&pcb) = frame.first() else {
        return Block::Invalid;
    };
    // CID (bit 4) and NAD (bit 3) are never used, so a block carrying them
    // is not for us.
    match pcb {
        _ if pcb & 0xE2 == 0x02 && pcb & 0x0C == 0 => Block::I {
            number: pcb & 1,
            chaining: pcb & 0x10 != 0,
            inf: &frame[1..],
        },
        0xA2 | 0xA3 if frame.len() == 1 => Block::Ack { number: pcb & 1 },
        0xF2 if frame.len() == 2 => match frame[1] & 0x3F {
            wtxm @ 1..=59 => Block::Wtx { wtxm },
            _ => Block::Invalid,
        },
        // R(NAK) from a card, S(DESELECT) from a card, anything else.
        _ => Block::Invalid,
    }
}

fn i_block(number: u8, chaining: bool, inf: &[u8]) -> Vec<u8> {
    let mut block = Vec::with_capacity(inf.len() + 1);
    block.push(0x02 | number | if chaining { 0x10 } else { 0 });
    block.extend_from_slice(inf);
    block
}

fn r_block(number: u8, nak: bool) -> Vec<u8> {
    vec![0xA2 | number | if nak { 0x10 } else { 0 }]
}

/// A failed block exchange, as the error the caller sees.
fn give_up(last: &Error, only_timeouts: bool) -> ReaderError {
    if only_timeouts {
        ReaderError::CardRemoved
    } else {
        ReaderError::Unreadable {
            detail: last.to_string(),
        }
    }
}

impl<SPI, RST, D> Mfrc522<SPI, RST, D>
where
    SPI: SpiDevice,
    RST: OutputPin,
    D: DelayNs,
{
    /// RATS with FSD 64 and CID 0; returns the card's ATS. The CRC of both
    /// frames goes through the chip's coprocessor.
    pub fn rats(&mut self) -> Result<Ats, ReaderError> {
        self.set_framing(BitRate::Kbps106, BitRate::Kbps106, false)?;
        self.set_timeout_us(ATS_WAIT_US + DELTA_FWT_US)?;
        let mut frame = vec![0xE0, FSDI << 4];
        let crc = self.calc_crc(&frame)?;
        frame.extend_from_slice(&crc);
        let answer = self.transceive_bytes(&frame).map_err(rf_error)?;
        if answer.len() < 3 {
            return Err(ReaderError::Unreadable {
                detail: "ATS too short".into(),
            });
        }
        let (ats, crc) = answer.split_at(answer.len() - 2);
        if self.calc_crc(ats)? != crc {
            return Err(rf_error(Error::Crc));
        }
        let ats =
            Ats::parse(ats).map_err(|e| ReaderError::CardProtocol(format!("bad ATS: {e}")))?;
        let sfgt = ats.sfgt_us();
        if sfgt > 0 {
            self.delay_us(u32::try_from(sfgt).unwrap_or(u32::MAX));
        }
        Ok(ats)
    }

    /// PPS to `tx` (reader → card, DRI) and `rx` (card → reader, DSI).
    /// Returns whether the card confirmed; the chip switches rates only
    /// then. PPS is the first block after the ATS, or never.
    pub fn pps(&mut self, tx: BitRate, rx: BitRate, fwt_us: u64) -> Result<bool, Error> {
        self.set_framing(BitRate::Kbps106, BitRate::Kbps106, true)?;
        self.set_timeout_us(fwt_us + DELTA_FWT_US)?;
        let frame = [0xD0, 0x11, (rx.code() << 2) | tx.code()];
        match self.transceive_bytes(&frame) {
            Ok(answer) if answer == [0xD0] => {
                self.set_framing(tx, rx, true)?;
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(Error::Timeout | Error::Crc | Error::Protocol | Error::Parity) => Ok(false),
            Err(Error::Collision | Error::BufferOverflow) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends one command APDU and returns the card's response APDU,
    /// chaining both ways and recovering from lost or garbled blocks by the
    /// rules of ISO 14443-4 §7.5.4.
    pub(crate) fn exchange_apdu(
        &mut self,
        session: &mut Session,
        apdu: &[u8],
    ) -> Result<Vec<u8>, ReaderError> {
        let (tx, rx) = self.bit_rates();
        self.set_framing(tx, rx, true)?;
        // PCB and CRC_A take three bytes of every frame.
        let chunk = session.max_frame.saturating_sub(3).max(1);
        let chunks: Vec<&[u8]> = if apdu.is_empty() {
            vec![apdu]
        } else {
            apdu.chunks(chunk).collect()
        };
        let mut sent = 1;
        let mut bn = session.block_number;
        let mut last_i_block = i_block(bn, chunks.len() > 1, chunks[0]);
        let mut to_send = last_i_block.clone();
        let mut response = Vec::new();
        let mut card_chaining = false;
        let mut failures = 0u32;
        let mut only_timeouts = true;
        let mut wtx_count = 0u32;
        let mut wait_us = session.fwt_us;
        loop {
            self.set_timeout_us(wait_us + DELTA_FWT_US)?;
            wait_us = session.fwt_us;
            let outcome = self.transceive_bytes(&to_send);
            let failure = match outcome {
                Ok(frame) => match classify(&frame) {
                    Block::Wtx { wtxm } => {
                        wtx_count += 1;
                        if wtx_count > MAX_WTX {
                            return Err(ReaderError::CardProtocol(
                                "asks for more time without end".into(),
                            ));
                        }
                        to_send = vec![0xF2, wtxm];
                        wait_us = (session.fwt_us * u64::from(wtxm)).min(FWT_MAX_US);
                        continue;
                    }
                    Block::Ack { number } if number == bn => {
                        if sent < chunks.len() {
                            bn ^= 1;
                            failures = 0;
                            only_timeouts = true;
                            last_i_block = i_block(bn, sent + 1 < chunks.len(), chunks[sent]);
                            sent += 1;
                            to_send = last_i_block.clone();
                            continue;
                        }
                        Error::Protocol
                    }
                    Block::Ack { .. } => {
                        // Rule 6: the card missed our last I-block.
                        failures += 1;
                        only_timeouts = false;
                        if failures > MAX_RETRIES {
                            return Err(give_up(&Error::Protocol, false));
                        }
                        to_send = last_i_block.clone();
                        continue;
                    }
                    Block::I {
                        number,
                        chaining,
                        inf,
                    } if number == bn => {
                        if sent < chunks.len() {
                            return Err(ReaderError::CardProtocol(
                                "answered before the command was complete".into(),
                            ));
                        }
                        if response.len() + inf.len() > MAX_RESPONSE {
                            return Err(ReaderError::CardProtocol(
                                "answer longer than any APDU".into(),
                            ));
                        }
                        response.extend_from_slice(inf);
                        bn ^= 1;
                        failures = 0;
                        only_timeouts = true;
                        if chaining {
                            card_chaining = true;
                            to_send = r_block(bn, false);
                            continue;
                        }
                        session.block_number = bn;
                        return Ok(response);
                    }
                    Block::I { .. } | Block::Invalid => Error::Protocol,
                },
                Err(
                    e @ (Error::Timeout
                    | Error::Crc
                    | Error::Collision
                    | Error::Parity
                    | Error::Protocol
                    | Error::BufferOverflow),
                ) => e,
                Err(e) => return Err(ReaderError::Chip(e)),
            };
            // Rules 4 and 5: an invalid block or a timeout is answered by
            // R(NAK), or by R(ACK) while the card is chaining.
            failures += 1;
            only_timeouts &= failure == Error::Timeout;
            if failures > MAX_RETRIES {
                return Err(give_up(&failure, only_timeouts));
            }
            to_send = r_block(bn, !card_chaining);
        }
    }

    /// S(DESELECT): the card goes to HALT. Sent twice at most (rule 8);
    /// a card that never confirms is simply left alone.
    pub(crate) fn deselect(&mut self, session: &Session) -> Result<bool, Error> {
        let (tx, rx) = self.bit_rates();
        self.set_framing(tx, rx, true)?;
        self.set_timeout_us(session.fwt_us + DELTA_FWT_US)?;
        for _ in 0..2 {
            match self.transceive_bytes(&[0xC2]) {
                Ok(answer) if answer == [0xC2] => return Ok(true),
                Ok(_) => {}
                Err(
                    Error::Timeout
                    | Error::Crc
                    | Error::Collision
                    | Error::Parity
                    | Error::Protocol
                    | Error::BufferOverflow,
                ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}

/// An RF error during activation, as the caller sees it.
pub(crate) fn rf_error(e: Error) -> ReaderError {
    match e {
        Error::Timeout => ReaderError::CardRemoved,
        Error::Collision => ReaderError::MultipleCards,
        Error::Crc | Error::Parity | Error::Protocol | Error::BufferOverflow => {
            ReaderError::Unreadable {
                detail: e.to_string(),
            }
        }
        other => ReaderError::Chip(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_classified_strictly() {
        assert!(
            matches!(classify(&[0x02, 0x90, 0x00]), Block::I { number: 0, chaining: false, inf } if inf == [0x90, 0x00])
        );
        assert!(matches!(
            classify(&[0x13]),
            Block::I {
                number: 1,
                chaining: true,
                ..
            }
        ));
        assert!(matches!(classify(&[0xA3]), Block::Ack { number: 1 }));
        assert!(matches!(classify(&[0xB2]), Block::Invalid));
        assert!(matches!(classify(&[0xF2, 0x01]), Block::Wtx { wtxm: 1 }));
        assert!(matches!(classify(&[0xF2, 0x00]), Block::Invalid));
        assert!(matches!(classify(&[0xF2, 60]), Block::Invalid));
        assert!(matches!(classify(&[0x0A, 0x00]), Block::Invalid));
        assert!(matches!(classify(&[]), Block::Invalid));
        assert!(matches!(classify(&[0xC2]), Block::Invalid));
    }

    #[test]
    fn fwt_follows_the_standard() {
        assert_eq!(fwt_us(0), 302);
        assert_eq!(fwt_us(4), 4_833);
        assert_eq!(fwt_us(14), 4_949_031);
        assert_eq!(fwt_us(15), fwt_us(14));
    }
}
