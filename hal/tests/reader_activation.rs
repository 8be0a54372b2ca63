//! Activation against the MFRC522 model: self-test, ISO 14443-3
//! anticollision and SELECT, HLTA/WUPA, RATS/ATS, PPS, and the errors a
//! cashier sees. The driver talks to the model through SPI only.

use std::time::Duration;

use till_hal::reader::card::PiccIdentity;
use till_hal::reader::model::{Loopback, Mfrc522Model, PiccState, VirtualCard};
use till_hal::reader::{
    BitRate, ChipVersion, CollisionPolicy, ContactlessReader, DigitalSelfTest, Mfrc522Reader,
    ReaderError, ReaderOptions, RxGain, SimulatedReader, Wake,
};

const POLL: Duration = Duration::from_millis(100);

fn identity(uid: &[u8], ats: &[u8]) -> PiccIdentity {
    PiccIdentity {
        uid: uid.to_vec(),
        atqa: [if uid.len() == 4 { 0x04 } else { 0x44 }, 0x00],
        sak: 0x20,
        ats: ats.to_vec(),
    }
}

/// FSCI 8, TA1 all rates both ways, FWI 7, SFGI 0, TC1 CID.
const ATS_FULL: &[u8] = &[0x07, 0x78, 0x77, 0x70, 0x02, 0x80, 0x31];

fn reader_with(cards: Vec<VirtualCard>, options: ReaderOptions) -> (SimulatedReader, Mfrc522Model) {
    SimulatedReader::simulated(cards, options).expect("the model answers")
}

fn card(uid: &[u8]) -> VirtualCard {
    VirtualCard::new(identity(uid, ATS_FULL), Loopback)
}

#[test]
fn self_test_passes_on_both_chip_versions() {
    for version in [ChipVersion::V1, ChipVersion::V2] {
        let model = Mfrc522Model::new(version);
        let mut reader = Mfrc522Reader::new(
            model.spi(),
            model.reset_pin(),
            model.delay(),
            ReaderOptions::default(),
        )
        .unwrap();
        let result = reader.self_test().unwrap();
        assert_eq!(result.chip, version);
        assert_eq!(result.digital, DigitalSelfTest::Passed);
        assert!(result.passed(), "{result}");
    }
}

#[test]
fn self_test_fails_on_a_damaged_chip_and_the_reader_still_works_after() {
    let (mut reader, model) = reader_with(vec![card(&[1, 2, 3, 4])], ReaderOptions::default());
    model.break_self_test(true);
    let result = reader.self_test().unwrap();
    assert!(!result.passed());
    assert!(matches!(result.digital, DigitalSelfTest::Failed { ref output } if output.len() == 64));
    assert!(result.to_string().contains("replace the reader"));
    model.break_self_test(false);
    assert!(reader.self_test().unwrap().passed());
    // The self-test reset the chip; polling sets it up again.
    assert!(reader.poll(POLL).unwrap().is_some());
}

#[test]
fn a_clone_chip_has_no_reference_but_passes() {
    let model = Mfrc522Model::new(ChipVersion::Other(0x88));
    let mut reader = Mfrc522Reader::new(
        model.spi(),
        model.reset_pin(),
        model.delay(),
        ReaderOptions::default(),
    )
    .unwrap();
    let result = reader.self_test().unwrap();
    assert_eq!(result.digital, DigitalSelfTest::NoReference);
    assert!(result.passed());
}

#[test]
fn a_disconnected_chip_is_named() {
    let model = Mfrc522Model::new(ChipVersion::V2);
    model.disconnect(true);
    let err = Mfrc522Reader::new(
        model.spi(),
        model.reset_pin(),
        model.delay(),
        ReaderOptions::default(),
    )
    .err()
    .expect("no chip, no reader");
    assert!(err.to_string().contains("no MFRC522 answers"), "{err}");
    assert!(!err.is_retryable());
}

#[test]
fn activates_cards_with_4_7_and_10_byte_uids() {
    let uids: [&[u8]; 3] = [
        &[0x08, 0x12, 0x34, 0x56],
        &[0x04, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06],
        &[0x04, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x11, 0x22, 0x33],
    ];
    for uid in uids {
        let (mut reader, model) = reader_with(vec![], ReaderOptions::default());
        let id = model.insert(card(uid));
        let info = reader.poll(POLL).unwrap().expect("card found");
        assert_eq!(info.uid, uid);
        assert_eq!(info.sak, 0x20);
        assert_eq!(info.atqa, identity(uid, ATS_FULL).atqa);
        assert_eq!(info.ats.raw, ATS_FULL);
        assert_eq!(model.card_state(id), Some(PiccState::Protocol));
        assert_eq!(
            reader.transmit(&[0x80, 0xCA, 0x9F, 0x36, 0x00]).unwrap(),
            [0x80, 0xCA, 0x9F, 0x36, 0x00, 0x90, 0x00]
        );
    }
}

#[test]
fn two_cards_are_refused_by_default() {
    let (mut reader, _model) = reader_with(
        vec![
            card(&[0x11, 0x22, 0x33, 0x44]),
            card(&[0x11, 0x22, 0xB3, 0x44]),
        ],
        ReaderOptions::default(),
    );
    let err = reader.poll(POLL).unwrap_err();
    assert!(matches!(err, ReaderError::MultipleCards), "{err:?}");
    assert_eq!(err.to_string(), "two cards in the field — present one card");
}

#[test]
fn two_colliding_cards_are_resolved_bit_by_bit() {
    let options = ReaderOptions {
        collisions: CollisionPolicy::SelectOne,
        ..ReaderOptions::default()
    };
    // 7- and 4-byte UIDs that first differ deep inside cascade level 1, and
    // two 10-byte UIDs differing only in cascade level 3.
    let pairs: [(&[u8], &[u8]); 3] = [
        (&[0x11, 0x22, 0x33, 0x44], &[0x11, 0x22, 0x37, 0x44]),
        (
            &[0x04, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09],
            &[0x04, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0A],
        ),
        (&[0x80, 0x00, 0x00, 0x01], &[0x00, 0x00, 0x00, 0x00]),
    ];
    for (a, b) in pairs {
        let (mut reader, model) = reader_with(vec![], options.clone());
        let id_a = model.insert(card(a));
        let id_b = model.insert(card(b));
        let info = reader.poll(POLL).unwrap().expect("one card selected");
        // At each collided bit the driver takes 1: the UID with the higher
        // bit wins.
        let (winner, loser) = if info.uid == a {
            (id_a, id_b)
        } else {
            (id_b, id_a)
        };
        assert!(info.uid == a || info.uid == b);
        assert_eq!(model.card_state(winner), Some(PiccState::Protocol));
        assert_ne!(model.card_state(loser), Some(PiccState::Protocol));
        assert_eq!(reader.transmit(&[1, 2, 3]).unwrap(), [1, 2, 3, 0x90, 0x00]);
        // Once the first card is halted, the second one is found.
        reader.release().unwrap();
        let options_idle = ReaderOptions {
            wake: Wake::Idle,
            ..options.clone()
        };
        reader.set_options(options_idle).unwrap();
        let second = reader.poll(POLL).unwrap().expect("the other card");
        assert_ne!(second.uid, info.uid);
        assert_eq!(model.card_state(loser), Some(PiccState::Protocol));
        reader.set_options(options.clone()).unwrap();
    }
}

#[test]
fn hlta_then_only_wupa_wakes_the_card() {
    let (mut reader, model) = reader_with(vec![], ReaderOptions::default());
    let id = model.insert(VirtualCard::new(
        PiccIdentity {
            uid: vec![0xDE, 0xAD, 0xBE, 0xEF],
            atqa: [0x04, 0x00],
            sak: 0x08,
            ats: vec![],
        },
        Loopback,
    ));
    reader.chip().set_field(true).unwrap();
    let chip = reader.chip();
    let answer = chip.request(Wake::Idle).unwrap().expect("ATQA");
    assert_eq!(answer.atqa, [0x04, 0x00]);
    let selected = chip.select(false).unwrap();
    assert_eq!(selected.uid, [0xDE, 0xAD, 0xBE, 0xEF]);
    assert_eq!(selected.sak, 0x08);
    assert_eq!(model.card_state(id), Some(PiccState::Active));
    chip.halt().unwrap();
    assert_eq!(model.card_state(id), Some(PiccState::Halt));
    assert_eq!(chip.request(Wake::Idle).unwrap(), None);
    assert!(chip.request(Wake::All).unwrap().is_some());
    assert_eq!(model.card_state(id), Some(PiccState::Ready));
    // An unexpected command sends a card woken from HALT back to HALT.
    assert!(chip.request(Wake::All).unwrap().is_none());
    assert_eq!(model.card_state(id), Some(PiccState::Halt));
}

#[test]
fn release_deselects_and_polling_with_reqa_skips_the_halted_card() {
    let (mut reader, model) = reader_with(vec![], ReaderOptions::default());
    let id = model.insert(card(&[1, 2, 3, 4]));
    reader.poll(POLL).unwrap().unwrap();
    reader.release().unwrap();
    assert_eq!(model.card_state(id), Some(PiccState::Halt));
    assert_eq!(
        reader.transmit(&[0]).unwrap_err().to_string(),
        "no card in the field — tap again"
    );
    reader
        .set_options(ReaderOptions {
            wake: Wake::Idle,
            ..ReaderOptions::default()
        })
        .unwrap();
    assert_eq!(reader.poll(POLL).unwrap(), None);
    assert_eq!(model.card_state(id), Some(PiccState::Halt));
    reader.set_options(ReaderOptions::default()).unwrap();
    assert!(reader.poll(POLL).unwrap().is_some());
    // Field off powers the card down; it is IDLE again afterwards.
    reader.field_off().unwrap();
    assert_eq!(model.card_state(id), Some(PiccState::PowerOff));
}

#[test]
fn a_card_without_iso_14443_4_is_refused_and_halted() {
    let (mut reader, model) = reader_with(vec![], ReaderOptions::default());
    let id = model.insert(VirtualCard::new(
        PiccIdentity {
            uid: vec![0x01, 0x02, 0x03, 0x04],
            atqa: [0x04, 0x00],
            sak: 0x08,
            ats: vec![],
        },
        Loopback,
    ));
    let err = reader.poll(POLL).unwrap_err();
    assert!(
        matches!(err, ReaderError::NotIsoDep { sak: 0x08 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("insert or swipe"));
    assert_eq!(model.card_state(id), Some(PiccState::Halt));
}

#[test]
fn ats_variants_are_parsed() {
    struct Case {
        ats: &'static [u8],
        fsc: usize,
        fwi: u8,
        sfgi: u8,
        historical: &'static [u8],
        cid: bool,
        nad: bool,
    }
    let cases = [
        // TL only: every default.
        Case {
            ats: &[0x01],
            fsc: 32,
            fwi: 4,
            sfgi: 0,
            historical: &[],
            cid: true,
            nad: false,
        },
        // T0 without interface bytes, FSCI 5.
        Case {
            ats: &[0x02, 0x05],
            fsc: 64,
            fwi: 4,
            sfgi: 0,
            historical: &[],
            cid: true,
            nad: false,
        },
        // TB only: FWI 1, SFGI 2.
        Case {
            ats: &[0x03, 0x20, 0x12],
            fsc: 16,
            fwi: 1,
            sfgi: 2,
            historical: &[],
            cid: true,
            nad: false,
        },
        // TA TB TC, NAD+CID, historical bytes; FSCI 8 = 256.
        Case {
            ats: &[0x08, 0x78, 0x00, 0x81, 0x03, 0xAB, 0xCD, 0xEF],
            fsc: 256,
            fwi: 8,
            sfgi: 1,
            historical: &[0xAB, 0xCD, 0xEF],
            cid: true,
            nad: true,
        },
        // TC says neither; RFU FWI 15 and SFGI 15 read as defaults.
        Case {
            ats: &[0x04, 0x62, 0xFF, 0x00],
            fsc: 32,
            fwi: 4,
            sfgi: 0,
            historical: &[],
            cid: false,
            nad: false,
        },
        // FSCI 12 (RFU in 14443-4:2008) counts as 256.
        Case {
            ats: &[0x02, 0x0C],
            fsc: 256,
            fwi: 4,
            sfgi: 0,
            historical: &[],
            cid: true,
            nad: false,
        },
    ];
    for case in cases {
        let (mut reader, _model) = reader_with(
            vec![VirtualCard::new(
                identity(&[9, 8, 7, 6], case.ats),
                Loopback,
            )],
            ReaderOptions::default(),
        );
        let info = reader.poll(POLL).unwrap().expect("card");
        let ats = &info.ats;
        assert_eq!(ats.raw, case.ats);
        assert_eq!(ats.fsc(), case.fsc, "{:02X?}", case.ats);
        assert_eq!(ats.fwi, case.fwi, "{:02X?}", case.ats);
        assert_eq!(ats.sfgi, case.sfgi, "{:02X?}", case.ats);
        assert_eq!(ats.historical, case.historical);
        assert_eq!(ats.cid_supported(), case.cid);
        assert_eq!(ats.nad_supported(), case.nad);
        // Every variant carries APDUs, chained by its own FSC.
        let apdu: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        let mut expected = apdu.clone();
        expected.extend_from_slice(&[0x90, 0x00]);
        assert_eq!(reader.transmit(&apdu).unwrap(), expected);
    }
}

#[test]
fn malformed_ats_is_a_card_protocol_error() {
    for ats in [&[0x05, 0x78, 0x80][..], &[0x03, 0x70, 0x00][..]] {
        let (mut reader, _model) = reader_with(
            vec![VirtualCard::new(identity(&[1, 1, 1, 1], ats), Loopback)],
            ReaderOptions::default(),
        );
        let err = reader.poll(POLL).unwrap_err();
        assert!(
            matches!(err, ReaderError::CardProtocol(_)),
            "{ats:02X?}: {err:?}"
        );
        assert!(err.to_string().contains("use another card"));
    }
}

#[test]
fn pps_reaches_every_rate_the_card_allows() {
    for rate in BitRate::ALL {
        let options = ReaderOptions {
            max_bit_rate: rate,
            ..ReaderOptions::default()
        };
        let (mut reader, model) = reader_with(vec![], options);
        let id = model.insert(card(&[0x10, 0x20, 0x30, 0x40]));
        let info = reader.poll(POLL).unwrap().unwrap();
        assert_eq!((info.tx_rate, info.rx_rate), (rate, rate));
        assert_eq!(model.card_bit_rates(id), Some((rate, rate)));
        let apdu = vec![0x5A; 200];
        let answer = reader.transmit(&apdu).unwrap();
        assert_eq!(&answer[..200], &apdu[..]);
        reader.release().unwrap();
        assert_eq!(model.card_state(id), Some(PiccState::Halt));
    }
}

#[test]
fn pps_follows_ta1() {
    // (TA1, expected reader→card, expected card→reader) with the reader at 848.
    let cases = [
        (0x00, BitRate::Kbps106, BitRate::Kbps106),
        // DS 212 only, DR 424 and 212.
        (0x13, BitRate::Kbps424, BitRate::Kbps212),
        // DS 848, DR 106.
        (0x40, BitRate::Kbps106, BitRate::Kbps848),
        // Same D both ways: the fastest both support is 212.
        (0x80 | 0x30 | 0x01, BitRate::Kbps212, BitRate::Kbps212),
    ];
    for (ta1, tx, rx) in cases {
        let ats = [0x05, 0x75, ta1, 0x40, 0x00];
        let (mut reader, model) = reader_with(vec![], ReaderOptions::default());
        let id = model.insert(VirtualCard::new(identity(&[5, 5, 5, 5], &ats), Loopback));
        let info = reader.poll(POLL).unwrap().unwrap();
        assert_eq!((info.tx_rate, info.rx_rate), (tx, rx), "TA1 {ta1:#04x}");
        assert_eq!(model.card_bit_rates(id), Some((tx, rx)));
        assert_eq!(reader.transmit(&[0xAA; 100]).unwrap().len(), 102);
    }
}

#[test]
fn no_card_is_a_timeout_not_an_error() {
    let (mut reader, model) = reader_with(vec![], ReaderOptions::default());
    assert_eq!(reader.poll(Duration::from_millis(200)).unwrap(), None);
    // The budget is spent in virtual time, not wall time.
    assert!(model.elapsed() >= Duration::from_millis(200));
    let err = reader.wait_for_card(Duration::ZERO).unwrap_err();
    assert!(matches!(err, ReaderError::NoCard));
    assert_eq!(err.to_string(), "no card in the field — tap again");
    assert!(err.is_retryable());
    assert!(matches!(reader.transmit(&[0x00]), Err(ReaderError::NoCard)));
    reader.release().unwrap();
}

#[test]
fn a_card_arriving_during_polling_is_found() {
    let (mut reader, model) = reader_with(vec![], ReaderOptions::default());
    assert_eq!(reader.poll(Duration::from_millis(30)).unwrap(), None);
    model.insert(card(&[4, 3, 2, 1]));
    assert_eq!(
        reader.poll(Duration::from_millis(30)).unwrap().unwrap().uid,
        [4, 3, 2, 1]
    );
}

#[test]
fn activation_survives_a_garbled_answer() {
    let (mut reader, model) =
        reader_with(vec![card(&[1, 2, 3, 4, 5, 6, 7])], ReaderOptions::default());
    // The SAK of cascade level 1 arrives with a broken CRC.
    model.corrupt_crc_of_next(1);
    assert!(reader.poll(POLL).unwrap().is_some());
    // Garbled every time: a clear error after bounded retries.
    model.corrupt_crc_of_next(1_000);
    let err = reader.poll(POLL).unwrap_err();
    assert!(matches!(err, ReaderError::Unreadable { .. }), "{err:?}");
    assert!(err.to_string().contains("hold"));
}

#[test]
fn antenna_and_gain_are_set_in_the_chip() {
    let (mut reader, model) = reader_with(vec![card(&[1, 2, 3, 4])], ReaderOptions::default());
    // After init the field is off: no card is powered.
    assert!(!reader.chip().field_is_on().unwrap());
    assert_eq!(model.peek(0x14) & 0x03, 0x00);
    reader
        .set_options(ReaderOptions {
            rx_gain: Some(RxGain::Db48),
            ..ReaderOptions::default()
        })
        .unwrap();
    assert_eq!(model.peek(0x26) & 0x70, 0x70);
    assert!(reader.poll(POLL).unwrap().is_some());
    assert_eq!(model.peek(0x14) & 0x03, 0x03);
    reader.field_off().unwrap();
    assert!(!reader.chip().field_is_on().unwrap());
    // The self-test resets the chip; the configured gain is put back.
    reader.self_test().unwrap();
    assert_eq!(model.peek(0x26) & 0x70, 0x70);
    assert_eq!(reader.chip().read_version().unwrap(), 0x92);
}
