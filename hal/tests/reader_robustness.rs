//! Nothing a chip or a card can send makes the driver panic or hang: a
//! chip whose every register read returns arbitrary bytes only ever
//! produces errors, and neither does the model with the bytes a card put
//! in the FIFO (and the status the chip reports about them) garbled.

use std::convert::Infallible;
use std::time::Duration;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType as PinErrorType, OutputPin};
use embedded_hal::spi::{ErrorType, Operation, SpiDevice};
use proptest::prelude::*;
use till_hal::reader::card::PiccIdentity;
use till_hal::reader::model::{Loopback, Mfrc522Model, ModelSpi, VirtualCard};
use till_hal::reader::{BitRate, ChipVersion, CollisionPolicy, Mfrc522Reader, ReaderOptions};

/// A chip that answers every SPI byte from a fixed random tape.
struct ArbitraryChip {
    tape: Vec<u8>,
    at: usize,
}

impl ErrorType for ArbitraryChip {
    type Error = Infallible;
}

impl SpiDevice for ArbitraryChip {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        for operation in operations {
            let buf: &mut [u8] = match operation {
                Operation::Read(buf) | Operation::TransferInPlace(buf) => buf,
                Operation::Transfer(read, _) => read,
                Operation::Write(_) | Operation::DelayNs(_) => continue,
            };
            for b in buf.iter_mut() {
                *b = self.tape[self.at % self.tape.len()];
                self.at += 1;
            }
        }
        Ok(())
    }
}

struct Pin;
impl PinErrorType for Pin {
    type Error = Infallible;
}
impl OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

struct NoDelay;
impl DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_chip_answers_never_panic(tape in prop::collection::vec(any::<u8>(), 1..512)) {
        let chip = ArbitraryChip { tape, at: 0 };
        let Ok(mut reader) = Mfrc522Reader::new(chip, Pin, NoDelay, ReaderOptions::default()) else {
            return Ok(());
        };
        let _ = reader.self_test();
        if let Ok(Some(_)) = reader.poll(Duration::from_millis(5)) {
            let _ = reader.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x07, 1, 2, 3, 4, 5, 6, 7, 0x00]);
            let _ = reader.transmit(&[0x5A; 300]);
            let _ = reader.release();
        }
    }
}

/// The model, with chosen bytes of what the host reads from FIFODataReg,
/// FIFOLevelReg, ErrorReg, ControlReg and CollReg flipped: the receiver's
/// view of a card sending anything at all.
struct GarbledModel {
    inner: ModelSpi,
    flips: Vec<(usize, u8)>,
    reads: usize,
}

impl ErrorType for GarbledModel {
    type Error = Infallible;
}

impl SpiDevice for GarbledModel {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        let first = match operations.first() {
            Some(Operation::TransferInPlace(buf)) => buf.first().copied(),
            _ => None,
        };
        self.inner.transaction(operations)?;
        // Reads of FIFO data (09h), level (0Ah), error (06h), control (0Ch), coll (0Eh).
        let Some(address) = first.filter(|a| a & 0x80 != 0).map(|a| (a >> 1) & 0x3F) else {
            return Ok(());
        };
        if ![0x06, 0x09, 0x0A, 0x0C, 0x0E].contains(&address) {
            return Ok(());
        }
        if let Some(Operation::TransferInPlace(buf)) = operations.first_mut() {
            for b in buf.iter_mut().skip(1) {
                for &(at, xor) in &self.flips {
                    if at == self.reads {
                        *b ^= xor;
                    }
                }
                self.reads += 1;
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn garbled_card_answers_never_panic(
        flips in prop::collection::vec((0usize..400, any::<u8>()), 1..6),
        uid_len in prop::sample::select(vec![4usize, 7, 10]),
        rate in 0u8..4,
        two_cards in any::<bool>(),
        size in 0usize..700,
    ) {
        let model = Mfrc522Model::new(ChipVersion::V1);
        let uid: Vec<u8> = (0..uid_len as u8).map(|i| i.wrapping_mul(53) ^ 0x3C).collect();
        let ats = vec![0x05, 0x75, 0x77, 0x40, 0x00];
        model.insert(VirtualCard::new(PiccIdentity { uid: uid.clone(), atqa: [0x44, 0], sak: 0x20, ats: ats.clone() }, Loopback));
        if two_cards {
            let mut other = uid;
            other[1] ^= 0x10;
            model.insert(VirtualCard::new(PiccIdentity { uid: other, atqa: [0x44, 0], sak: 0x20, ats }, Loopback));
        }
        let spi = GarbledModel { inner: model.spi(), flips, reads: 0 };
        let options = ReaderOptions {
            max_bit_rate: BitRate::from_code(rate),
            collisions: CollisionPolicy::SelectOne,
            ..ReaderOptions::default()
        };
        let Ok(mut reader) = Mfrc522Reader::new(spi, model.reset_pin(), model.delay(), options) else {
            return Ok(());
        };
        for _ in 0..2 {
            if let Ok(Some(_)) = reader.poll(Duration::from_millis(20)) {
                let _ = reader.transmit(&vec![0xA5; size]);
                let _ = reader.transmit(&[1, 2, 3]);
            }
        }
        let _ = reader.release();
    }
}
