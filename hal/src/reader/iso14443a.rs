//! ISO 14443-3 type A activation on the MFRC522: REQA/WUPA, the bitwise
//! anticollision and SELECT through cascade levels 1–3, HLTA.
//!
//! Everything here runs at 106 kbit/s without the chip's hardware CRC
//! (anticollision frames carry none); SELECT and HLTA get their CRC_A from
//! the chip's coprocessor, and the SAK's CRC is checked the same way.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_hal::spi::SpiDevice;

use super::mfrc522::{BitRate, Error, Mfrc522};

/// Which cards a request wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// REQA: only cards in IDLE; a halted card stays silent.
    Idle,
    /// WUPA: cards in IDLE and in HALT (what EMV polling uses).
    All,
}

/// A card's answer to REQA/WUPA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestAnswer {
    /// ATQA as received (meaningless bits where cards collided).
    pub atqa: [u8; 2],
    /// Several cards answered with different ATQAs.
    pub collided: bool,
}

/// A card that went through anticollision and SELECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The complete UID: 4, 7 or 10 bytes.
    pub uid: Vec<u8>,
    /// SAK of the last cascade level.
    pub sak: u8,
    /// Another card answered too; it was left in READY and goes back to
    /// IDLE at the next command it does not understand.
    pub collided: bool,
}

const SEL: [u8; 3] = [0x93, 0x95, 0x97];
const CASCADE_TAG: u8 = 0x88;
/// SAK bit: the UID is not complete, go to the next cascade level.
const SAK_CASCADE: u8 = 0x04;
/// Short frame commands (7 bits).
const REQA: u8 = 0x26;
const WUPA: u8 = 0x52;
/// Time to wait for ATQA, SAK and anticollision answers: FDT is about
/// 86 µs; 1 ms leaves room for slow cards and SPI latency on the chip side.
const LAYER3_TIMEOUT_US: u64 = 1_000;
/// A card must stay silent for 1 ms after HLTA for the halt to count.
const HLTA_SILENCE_US: u64 = 1_000;

fn bit(buf: &[u8], pos: usize) -> bool {
    buf.get(pos / 8).is_some_and(|b| b >> (pos % 8) & 1 == 1)
}

fn set_bit(buf: &mut [u8], pos: usize, value: bool) {
    if let Some(b) = buf.get_mut(pos / 8) {
        if value {
            *b |= 1 << (pos % 8);
        } else {
            *b &= !(1 << (pos % 8));
        }
    }
}

impl<SPI, RST, D> Mfrc522<SPI, RST, D>
where
    SPI: SpiDevice,
    RST: OutputPin,
    D: DelayNs,
{
    /// Sends REQA or WUPA. `Ok(None)` when no card answered.
    pub fn request(&mut self, wake: Wake) -> Result<Option<RequestAnswer>, Error> {
        self.set_framing(BitRate::Kbps106, BitRate::Kbps106, false)?;
        self.set_timeout_us(LAYER3_TIMEOUT_US)?;
        let command = match wake {
            Wake::Idle => REQA,
            Wake::All => WUPA,
        };
        match self.transceive(&[command], 7, 0) {
            Ok(r) => {
                let collided = r.collision.is_some();
                if r.data.len() != 2 && !collided {
                    return Err(Error::Protocol);
                }
                let atqa = [
                    r.data.first().copied().unwrap_or(0),
                    r.data.get(1).copied().unwrap_or(0),
                ];
                Ok(Some(RequestAnswer { atqa, collided }))
            }
            Err(Error::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Anticollision and SELECT through as many cascade levels as the UID
    /// needs. With `resolve_collisions` false a collision is reported as
    /// [`Error::Collision`] (EMV: one card at a time); with true the card
    /// whose UID has a 1 at each collided bit is chosen.
    pub fn select(&mut self, resolve_collisions: bool) -> Result<Selected, Error> {
        self.set_framing(BitRate::Kbps106, BitRate::Kbps106, false)?;
        self.set_timeout_us(LAYER3_TIMEOUT_US)?;
        let mut uid = Vec::with_capacity(10);
        let mut collided = false;
        for sel in SEL {
            let (cl, sak, level_collided) = self.cascade_level(sel, resolve_collisions)?;
            collided |= level_collided;
            if sak & SAK_CASCADE != 0 {
                if cl[0] != CASCADE_TAG || sel == SEL[2] {
                    return Err(Error::Protocol);
                }
                uid.extend_from_slice(&cl[1..4]);
            } else {
                uid.extend_from_slice(&cl[0..4]);
                return Ok(Selected { uid, sak, collided });
            }
        }
        Err(Error::Protocol)
    }

    /// One cascade level: anticollision until all 40 bits (UID CLn and BCC)
    /// are known, then SELECT. Returns the level's five bytes and the SAK.
    fn cascade_level(&mut self, sel: u8, resolve: bool) -> Result<([u8; 5], u8, bool), Error> {
        let mut cl = [0u8; 5];
        let mut known = 0usize;
        let mut collided = false;
        // Each round learns at least one bit, so 40 rounds always suffice.
        for _ in 0..=40 {
            if known >= 40 {
                break;
            }
            let whole = known / 8;
            let partial = known % 8;
            let mut frame = Vec::with_capacity(7);
            frame.push(sel);
            frame.push((((2 + whole) as u8) << 4) | partial as u8);
            frame.extend_from_slice(&cl[..whole + usize::from(partial > 0)]);
            let r = self.transceive(&frame, partial as u8, partial as u8)?;
            let received = (r.data.len() * 8)
                .saturating_sub(if r.last_bits == 0 {
                    0
                } else {
                    8 - usize::from(r.last_bits)
                })
                .saturating_sub(partial);
            let valid = match r.collision {
                None => received,
                Some(None) => return Err(Error::Collision),
                Some(Some(pos)) => {
                    if !resolve {
                        return Err(Error::Collision);
                    }
                    usize::from(pos) - 1
                }
            };
            if known + valid > 40 || (r.collision.is_none() && known + valid != 40) {
                return Err(Error::Protocol);
            }
            for i in 0..valid {
                set_bit(&mut cl, known + i, bit(&r.data, partial + i));
            }
            known += valid;
            if r.collision.is_some() {
                if known >= 40 {
                    return Err(Error::Protocol);
                }
                collided = true;
                set_bit(&mut cl, known, true);
                known += 1;
            }
        }
        if known < 40 {
            return Err(Error::Collision);
        }
        if cl[4] != cl[0] ^ cl[1] ^ cl[2] ^ cl[3] {
            return Err(Error::Crc);
        }
        let mut frame = vec![sel, 0x70];
        frame.extend_from_slice(&cl);
        let crc = self.calc_crc(&frame)?;
        frame.extend_from_slice(&crc);
        let answer = self.transceive_bytes(&frame)?;
        if answer.len() != 3 {
            return Err(Error::Protocol);
        }
        if self.calc_crc(&answer[..1])? != answer[1..3] {
            return Err(Error::Crc);
        }
        Ok((cl, answer[0], collided))
    }

    /// HLTA: the selected card goes to HALT and only WUPA wakes it again.
    /// Per ISO 14443-3 any answer within 1 ms means "not acknowledged".
    pub fn halt(&mut self) -> Result<(), Error> {
        self.set_framing(BitRate::Kbps106, BitRate::Kbps106, false)?;
        self.set_timeout_us(HLTA_SILENCE_US)?;
        let mut frame = vec![0x50, 0x00];
        let crc = self.calc_crc(&frame)?;
        frame.extend_from_slice(&crc);
        match self.transceive(&frame, 0, 0) {
            Err(Error::Timeout) => Ok(()),
            Ok(_) => Err(Error::Protocol),
            Err(e) => Err(e),
        }
    }
}
