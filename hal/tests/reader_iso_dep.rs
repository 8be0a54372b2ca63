//! The ISO 14443-4 block protocol against the MFRC522 model: chaining both
//! ways, block numbering, R(NAK)/R(ACK) recovery from injected CRC errors
//! and lost frames, bounded retries, S(WTX), DESELECT, a card leaving
//! mid-exchange.

use std::time::Duration;

use proptest::prelude::*;
use till_hal::reader::card::{CardApplication, PiccIdentity};
use till_hal::reader::model::{CardId, Loopback, Mfrc522Model, PiccState, VirtualCard};
use till_hal::reader::{BitRate, ReaderError, ReaderOptions, SimulatedReader};

const POLL: Duration = Duration::from_millis(100);

/// FSCI 5 (64 bytes), TA1 all rates, FWI 4 (4.8 ms).
const ATS: &[u8] = &[0x05, 0x75, 0x77, 0x40, 0x00];

fn identity(ats: &[u8]) -> PiccIdentity {
    PiccIdentity {
        uid: vec![0x04, 0x52, 0x7A, 0x11, 0x22, 0x33, 0x44],
        atqa: [0x44, 0x00],
        sak: 0x20,
        ats: ats.to_vec(),
    }
}

fn activated(ats: &[u8], options: ReaderOptions) -> (SimulatedReader, Mfrc522Model, CardId) {
    let (mut reader, model) = SimulatedReader::simulated([], options).unwrap();
    let id = model.insert(VirtualCard::new(identity(ats), Loopback));
    reader.poll(POLL).unwrap().expect("card activated");
    (reader, model, id)
}

fn echo(apdu: &[u8]) -> Vec<u8> {
    let mut expected = apdu.to_vec();
    expected.extend_from_slice(&[0x90, 0x00]);
    expected
}

fn apdu(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any size from empty to well past one frame, any rate, any FSC:
    /// what goes in comes back.
    #[test]
    fn apdus_of_any_size_round_trip(
        len in 0usize..1600,
        fsci in 0u8..=8,
        rate in 0u8..4,
    ) {
        let ats = [0x05, 0x70 | fsci, 0x77, 0x40, 0x00];
        let options = ReaderOptions { max_bit_rate: BitRate::from_code(rate), ..ReaderOptions::default() };
        let (mut reader, _model, _id) = activated(&ats, options);
        let command = apdu(len);
        prop_assert_eq!(reader.transmit(&command).unwrap(), echo(&command));
        // The block numbers stay in step across exchanges.
        prop_assert_eq!(reader.transmit(&command[..len.min(5)]).unwrap(), echo(&command[..len.min(5)]));
    }
}

#[test]
fn chaining_splits_at_fsc_and_fsd() {
    let (mut reader, model, _id) = activated(ATS, ReaderOptions::default());
    let before = model.frames_sent();
    let command = apdu(1000);
    assert_eq!(reader.transmit(&command).unwrap(), echo(&command));
    // 61 bytes of INF per 64-byte frame: 17 I-blocks out, 17 back (16
    // answered by R(ACK) from the reader).
    assert_eq!(model.frames_sent() - before, 17 + 16);
}

#[test]
fn a_lost_answer_is_recovered_by_r_nak() {
    for size in [4, 200, 1000] {
        for dropped in 1..=3 {
            let (mut reader, model, _id) = activated(ATS, ReaderOptions::default());
            let command = apdu(size);
            model.drop_next_responses(dropped);
            assert_eq!(
                reader.transmit(&command).unwrap(),
                echo(&command),
                "{size} bytes, {dropped} lost"
            );
            assert_eq!(reader.transmit(&[1]).unwrap(), echo(&[1]));
        }
    }
}

#[test]
fn crc_errors_are_recovered_by_retransmission() {
    for size in [4, 200, 1000] {
        for corrupted in 1..=3 {
            let (mut reader, model, _id) = activated(ATS, ReaderOptions::default());
            let command = apdu(size);
            model.corrupt_crc_of_next(corrupted);
            assert_eq!(
                reader.transmit(&command).unwrap(),
                echo(&command),
                "{size} bytes, {corrupted} corrupted"
            );
        }
    }
}

#[test]
fn faults_anywhere_in_chains_both_ways_are_recovered() {
    // 1000 bytes at FSC 64: 17 I-blocks out (16 answered by R(ACK)), 17
    // back (16 acknowledged by the reader). A fault at every one of those
    // answers exercises each retransmission rule of ISO 14443-4 §7.5.4.
    let command = apdu(1000);
    for skip in 0..33 {
        for (drops, corruptions) in [(1, 0), (0, 1), (2, 0), (0, 2), (1, 1), (3, 0)] {
            let (mut reader, model, _id) = activated(ATS, ReaderOptions::default());
            model.delay_faults(skip);
            model.drop_next_responses(drops);
            model.corrupt_crc_of_next(corruptions);
            let before = model.frames_sent();
            assert_eq!(
                reader.transmit(&command).unwrap(),
                echo(&command),
                "after {skip} answers: {drops} lost, {corruptions} corrupted"
            );
            // The fault struck: the reader had to send more than 33 frames.
            assert!(model.frames_sent() - before > 33, "after {skip} answers");
            // Block numbers still in step.
            assert_eq!(reader.transmit(&[9]).unwrap(), echo(&[9]));
        }
    }
}

#[test]
fn retries_are_bounded_and_end_in_a_clear_error() {
    let (mut reader, model, _id) = activated(ATS, ReaderOptions::default());
    model.corrupt_crc_of_next(100);
    let err = reader.transmit(&apdu(300)).unwrap_err();
    assert!(matches!(err, ReaderError::Unreadable { .. }), "{err:?}");
    assert!(err.to_string().contains("CRC"), "{err}");
    assert!(err.is_retryable());
    // The session is over: poll again.
    assert!(matches!(reader.transmit(&[0]), Err(ReaderError::NoCard)));

    let (mut reader, model, _id) = activated(ATS, ReaderOptions::default());
    let frames = model.frames_sent();
    model.drop_next_responses(100);
    let err = reader.transmit(&apdu(10)).unwrap_err();
    assert!(matches!(err, ReaderError::CardRemoved), "{err:?}");
    // The I-block and three R(NAK)s: no more.
    assert_eq!(model.frames_sent() - frames, 4);
}

#[test]
fn card_removed_mid_exchange() {
    for after in [0, 1, 3, 6] {
        let (mut reader, model, id) = activated(ATS, ReaderOptions::default());
        model.remove_after_frames(id, after);
        let err = reader.transmit(&apdu(500)).unwrap_err();
        assert!(
            matches!(err, ReaderError::CardRemoved),
            "after {after}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            "card removed during the transaction — tap again and hold it still"
        );
        assert_eq!(model.card_state(id), None);
        assert!(matches!(reader.transmit(&[0]), Err(ReaderError::NoCard)));
        assert_eq!(reader.poll(Duration::from_millis(10)).unwrap(), None);
    }
}

#[test]
fn wtx_extends_the_wait() {
    for (times, wtxm) in [(1, 2), (3, 10), (2, 59)] {
        let (mut reader, model, id) = activated(ATS, ReaderOptions::default());
        model.request_wtx(id, times, wtxm);
        let start = model.elapsed();
        let command = apdu(150);
        assert_eq!(reader.transmit(&command).unwrap(), echo(&command));
        // The answer came after FWT × WTXM × 0.9, well past the plain FWT.
        let fwt = Duration::from_micros(4_833);
        assert!(model.elapsed() - start >= fwt * u32::from(wtxm) * 9 / 10);
        // The next exchange waits the plain FWT again.
        assert_eq!(reader.transmit(&[7]).unwrap(), echo(&[7]));
    }
}

#[test]
fn wtx_with_lost_frames_is_recovered() {
    let (mut reader, model, id) = activated(ATS, ReaderOptions::default());
    model.request_wtx(id, 2, 5);
    model.drop_next_responses(1);
    assert_eq!(reader.transmit(&apdu(90)).unwrap(), echo(&apdu(90)));
}

#[test]
fn deselect_halts_the_card() {
    let (mut reader, model, id) = activated(ATS, ReaderOptions::default());
    reader.transmit(&[0x00, 0xB2, 0x01, 0x0C, 0x00]).unwrap();
    reader.release().unwrap();
    assert_eq!(model.card_state(id), Some(PiccState::Halt));
    assert_eq!(
        model.card_bit_rates(id),
        Some((BitRate::Kbps106, BitRate::Kbps106))
    );
    // Released twice, or with the card gone: nothing to do, no error.
    reader.release().unwrap();
    let (mut reader, model, id) = activated(ATS, ReaderOptions::default());
    model.remove(id);
    reader.release().unwrap();
}

#[test]
fn a_short_answer_to_a_chained_command() {
    struct Silent;
    impl CardApplication for Silent {
        fn process(&mut self, _command: &[u8]) -> Vec<u8> {
            vec![0x6A, 0x82]
        }
    }
    let (mut reader, model) = SimulatedReader::simulated([], ReaderOptions::default()).unwrap();
    model.insert(VirtualCard::new(identity(ATS), Silent));
    reader.poll(POLL).unwrap().unwrap();
    assert_eq!(reader.transmit(&apdu(300)).unwrap(), [0x6A, 0x82]);
}

#[test]
fn slow_polls_and_long_sessions_keep_virtual_time_honest() {
    let (mut reader, model, _id) = activated(ATS, ReaderOptions::default());
    let start = model.elapsed();
    reader.transmit(&apdu(256)).unwrap();
    let spent = model.elapsed() - start;
    // 262 bytes each way at 848 kbit/s plus latencies: milliseconds, not more.
    assert!(spent > Duration::from_micros(500), "{spent:?}");
    assert!(spent < Duration::from_millis(30), "{spent:?}");
}
