//! [`Mfrc522Reader`]: the MFRC522 driver as a [`ContactlessReader`].
//! Poll cycles, activation with retries, the ISO-DEP session, release.

use std::time::Duration;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_hal::spi::SpiDevice;

use super::contactless::{
    CardInfo, CollisionPolicy, ContactlessReader, DigitalSelfTest, ReaderOptions, ReaderSelfTest,
};
use super::error::ReaderError;
use super::iso_dep::{MAX_RETRIES, Session, rf_error};
use super::mfrc522::{BitRate, Mfrc522};

/// SAK bit 6: the card speaks ISO 14443-4.
const SAK_ISO_DEP: u8 = 0x20;
/// What one REQA/WUPA without an answer costs (the chip timer's 1 ms).
const REQUEST_COST: Duration = Duration::from_millis(1);
/// Carrier time before the first request after the field comes on.
const FIELD_GUARD: Duration = Duration::from_micros(5_100);

/// A contactless reader built on an MFRC522, over any embedded-hal SPI
/// device, reset pin and delay. [`Mfrc522Reader::open`] (Linux) and
/// [`Mfrc522Reader::simulated`] (the register model) build the two usual
/// kinds.
pub struct Mfrc522Reader<SPI, RST, D> {
    chip: Mfrc522<SPI, RST, D>,
    options: ReaderOptions,
    active: Option<(CardInfo, Session)>,
}

impl<SPI, RST, D> Mfrc522Reader<SPI, RST, D>
where
    SPI: SpiDevice,
    RST: OutputPin,
    D: DelayNs,
{
    /// Resets and initialises the chip; fails when no chip answers.
    pub fn new(
        spi: SPI,
        reset: RST,
        delay: D,
        options: ReaderOptions,
    ) -> Result<Self, ReaderError> {
        let mut chip = Mfrc522::new(spi, reset, delay);
        chip.init()?;
        if let Some(gain) = options.rx_gain {
            chip.set_rx_gain(gain)?;
        }
        Ok(Mfrc522Reader {
            chip,
            options,
            active: None,
        })
    }

    /// The options in force.
    pub fn options(&self) -> &ReaderOptions {
        &self.options
    }

    /// Changes the options; they apply from the next poll.
    pub fn set_options(&mut self, options: ReaderOptions) -> Result<(), ReaderError> {
        if let Some(gain) = options.rx_gain {
            self.chip.set_rx_gain(gain)?;
        }
        self.options = options;
        Ok(())
    }

    /// The card in session, if any.
    pub fn active_card(&self) -> Option<&CardInfo> {
        self.active.as_ref().map(|(info, _)| info)
    }

    /// The chip driver underneath, for ISO 14443-3 work of one's own (e.g.
    /// HLTA tests). Using it while a card is in session confuses the
    /// session; release first.
    pub fn chip(&mut self) -> &mut Mfrc522<SPI, RST, D> {
        &mut self.chip
    }

    /// Switches the RF field off: every card in it powers down. The next
    /// poll switches it back on.
    pub fn field_off(&mut self) -> Result<(), ReaderError> {
        self.active = None;
        self.chip.set_field(false)?;
        Ok(())
    }

    /// Gives back the SPI device, reset pin and delay.
    pub fn into_parts(self) -> (SPI, RST, D) {
        self.chip.release()
    }

    /// One activation attempt: request, anticollision/SELECT, RATS, PPS.
    fn activate(&mut self) -> Result<Option<CardInfo>, ReaderError> {
        let Some(answer) = self.chip.request(self.options.wake).map_err(rf_error)? else {
            return Ok(None);
        };
        let resolve = self.options.collisions == CollisionPolicy::SelectOne;
        if answer.collided && !resolve {
            return Err(ReaderError::MultipleCards);
        }
        let selected = self.chip.select(resolve).map_err(rf_error)?;
        if selected.sak & SAK_ISO_DEP == 0 {
            // Put it to sleep so it does not answer every poll.
            let _ = self.chip.halt();
            return Err(ReaderError::NotIsoDep { sak: selected.sak });
        }
        let ats = self.chip.rats()?;
        let session = Session::new(&ats);
        let (tx, rx) = ats.best_rates(self.options.max_bit_rate);
        if (tx, rx) != (BitRate::Kbps106, BitRate::Kbps106) {
            // A refused PPS leaves both sides at 106 kbit/s.
            self.chip.pps(tx, rx, session.fwt_us)?;
        } else {
            self.chip
                .set_framing(BitRate::Kbps106, BitRate::Kbps106, true)?;
        }
        let (tx_rate, rx_rate) = self.chip.bit_rates();
        let info = CardInfo {
            uid: selected.uid,
            atqa: answer.atqa,
            sak: selected.sak,
            ats,
            tx_rate,
            rx_rate,
        };
        self.active = Some((info.clone(), session));
        Ok(Some(info))
    }

    /// See [`ContactlessReader::poll`]. Time is counted from the chip's
    /// timer and the pauses between polls, not from a clock, so the budget
    /// means the same on hardware and in the model.
    pub fn poll(&mut self, timeout: Duration) -> Result<Option<CardInfo>, ReaderError> {
        self.release()?;
        let mut elapsed = Duration::ZERO;
        if !self.chip.field_is_on()? {
            self.chip.set_field(true)?;
            // Cards need up to 5 ms of unmodulated carrier to power up
            // before they can answer (ISO 14443-3 §6.1; EMV's 5.1 ms).
            self.chip.delay_us(FIELD_GUARD.as_micros() as u32);
            elapsed += FIELD_GUARD;
        }
        let mut failures = 0;
        let mut last_failure = None;
        loop {
            match self.activate() {
                Ok(Some(info)) => return Ok(Some(info)),
                Ok(None) => {}
                // A card that answered and then faltered: it was moving
                // through the field or is badly placed; try again a few times.
                Err(e @ (ReaderError::Unreadable { .. } | ReaderError::CardRemoved)) => {
                    failures += 1;
                    if failures >= MAX_RETRIES {
                        return Err(e);
                    }
                    last_failure = Some(e);
                }
                Err(e) => return Err(e),
            }
            elapsed += REQUEST_COST;
            if elapsed >= timeout {
                // A card that was there but could not be read is not "no card".
                return match last_failure {
                    Some(e) => Err(e),
                    None => Ok(None),
                };
            }
            let pause = self.options.poll_interval.min(timeout - elapsed);
            self.chip
                .delay_us(u32::try_from(pause.as_micros()).unwrap_or(u32::MAX));
            elapsed += pause;
        }
    }

    /// See [`ContactlessReader::transmit`].
    pub fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        let Some((_, session)) = self.active.as_mut() else {
            return Err(ReaderError::NoCard);
        };
        let result = self.chip.exchange_apdu(session, apdu);
        if result.is_err() {
            self.active = None;
        }
        result
    }

    /// See [`ContactlessReader::release`].
    pub fn release(&mut self) -> Result<(), ReaderError> {
        if let Some((_, session)) = self.active.take() {
            self.chip.deselect(&session)?;
        }
        Ok(())
    }

    /// See [`ContactlessReader::self_test`].
    pub fn self_test(&mut self) -> Result<ReaderSelfTest, ReaderError> {
        self.active = None;
        let output = self.chip.self_test()?;
        if let Some(gain) = self.options.rx_gain {
            self.chip.set_rx_gain(gain)?;
        }
        let digital = match output.matches_reference {
            Some(true) => DigitalSelfTest::Passed,
            Some(false) => DigitalSelfTest::Failed {
                output: output.output,
            },
            None => DigitalSelfTest::NoReference,
        };
        Ok(ReaderSelfTest {
            chip: output.version,
            digital,
        })
    }
}

impl<SPI, RST, D> ContactlessReader for Mfrc522Reader<SPI, RST, D>
where
    SPI: SpiDevice,
    RST: OutputPin,
    D: DelayNs,
{
    fn poll(&mut self, timeout: Duration) -> Result<Option<CardInfo>, ReaderError> {
        Mfrc522Reader::poll(self, timeout)
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        Mfrc522Reader::transmit(self, apdu)
    }

    fn release(&mut self) -> Result<(), ReaderError> {
        Mfrc522Reader::release(self)
    }

    fn self_test(&mut self) -> Result<ReaderSelfTest, ReaderError> {
        Mfrc522Reader::self_test(self)
    }
}
