//! The virtual cards APDU by APDU. The full read through Till's kernel and
//! the cross-checks against pyemv are in `till-pay`'s tests
//! (`pay/tests/emv_kernel.rs`, `pay/tests/emv_peers.rs`).

use proptest::prelude::*;

use super::*;

const IMK: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10,
];

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn visa() -> VirtualEmvCard {
    let mut p = EmvPersonalisation::new(Profile::Qvsdc, "4761739001010010", "4912", IMK);
    p.pan_sequence = 1;
    VirtualEmvCard::new(p).unwrap()
}

fn mchip() -> VirtualEmvCard {
    let mut p = EmvPersonalisation::new(Profile::Mchip, "5200000000000015", "4912", IMK);
    p.pan_sequence = 2;
    p.atc = 40;
    VirtualEmvCard::new(p).unwrap()
}

fn status(answer: &[u8]) -> u16 {
    u16::from_be_bytes([answer[answer.len() - 2], answer[answer.len() - 1]])
}

fn select(card: &mut VirtualEmvCard, name: &[u8]) -> Vec<u8> {
    let mut c = vec![0x00, 0xA4, 0x04, 0x00, name.len() as u8];
    c.extend_from_slice(name);
    c.push(0);
    card.process(&c)
}

fn gpo(card: &mut VirtualEmvCard, pdol_data: &[u8]) -> Vec<u8> {
    let mut c = vec![0x80, 0xA8, 0x00, 0x00, pdol_data.len() as u8 + 2, 0x83];
    c.push(pdol_data.len() as u8);
    c.extend_from_slice(pdol_data);
    c.push(0);
    card.process(&c)
}

/// TTQ, amount 12.50, other 0, country 156, TVR 0, currency 156,
/// 2026-06-15, purchase, unpredictable number 11223344.
const VISA_PDOL_DATA: &str =
    "36804000 000000001250 000000000000 0156 0000000000 0156 260615 00 11223344";

#[test]
fn qvsdc_answers_a_read_with_the_cvn10_cryptogram() {
    let mut card = visa();
    let ppse = select(&mut card, b"2PAY.SYS.DDF01");
    assert_eq!(status(&ppse), 0x9000);
    assert!(hex::encode_upper(&ppse).contains("4F07A0000000031010"));
    let fci = select(&mut card, &unhex("A0000000031010"));
    assert_eq!(status(&fci), 0x9000);
    assert!(
        hex::encode_upper(&fci).contains("9F38189F66049F02069F03069F1A0295055F2A029A039C019F3704")
    );
    let answer = gpo(&mut card, &unhex(VISA_PDOL_DATA));
    assert_eq!(status(&answer), 0x9000);
    let text = hex::encode_upper(&answer);
    // pyemv.cvn.VisaCVN10(IMK, …, "4761739001010010", "01").generate_ac(
    //   9F02 000000001250, 9F03 0, 9F1A 0156, 95 0, 5F2A 0156, 9A 260615,
    //   9C 00, 9F37 11223344, 82 0080, 9F36 0001, cvr 03A00000)
    assert!(text.contains("9F2608CBACAB0723E0C37C"), "{text}");
    assert!(text.contains("9F100706010A03A00000"), "{text}");
    assert!(text.contains("9F270180"), "an ARQC: {text}");
    assert!(text.contains("9F36020001"), "{text}");
    assert!(text.starts_with("77"));
    assert_eq!(card.atc(), 1);
    // The records the AFL (08 01 02 00) names.
    let r1 = card.process(&[0x00, 0xB2, 0x01, 0x0C, 0x00]);
    assert_eq!(status(&r1), 0x9000);
    assert!(hex::encode_upper(&r1).contains("5A084761739001010010"));
    assert!(hex::encode_upper(&r1).contains("5F2403491231"));
    assert_eq!(
        status(&card.process(&[0x00, 0xB2, 0x02, 0x0C, 0x00])),
        0x9000
    );
    assert_eq!(
        status(&card.process(&[0x00, 0xB2, 0x03, 0x0C, 0x00])),
        0x6A83
    );
    // qVSDC does not take GENERATE AC.
    assert_eq!(
        status(&card.process(&[0x80, 0xAE, 0x80, 0x00, 0x01, 0x00, 0x00])),
        0x6985
    );
}

/// Amount 12.50, other 0, country 156, TVR 8000000000, currency 156,
/// 2026-06-15, purchase, unpredictable number 11223344, terminal type 22,
/// CVM results 3F0000.
const MCHIP_CDOL1_DATA: &str =
    "000000001250 000000000000 0156 8000000000 0156 260615 00 11223344 22 3F0000";

#[test]
fn mchip_answers_generate_ac_with_the_cvn20_cryptogram() {
    let mut card = mchip();
    assert_eq!(status(&select(&mut card, b"2PAY.SYS.DDF01")), 0x9000);
    let fci = select(&mut card, &unhex("A0000000041010"));
    assert!(!hex::encode_upper(&fci).contains("9F38"), "no PDOL");
    let answer = gpo(&mut card, &[]);
    assert_eq!(
        hex::encode_upper(&answer),
        "800A18800801010010010100 9000".replace(' ', "")
    );
    assert_eq!(card.atc(), 40, "GPO does not count on M/Chip");
    let r = card.process(&[0x00, 0xB2, 0x01, 0x14, 0x00]);
    assert!(hex::encode_upper(&r).contains("8C1B"), "CDOL1 in SFI 2");
    let data = unhex(MCHIP_CDOL1_DATA);
    let mut c = vec![0x80, 0xAE, 0x80, 0x00, data.len() as u8];
    c.extend_from_slice(&data);
    c.push(0);
    let answer = card.process(&c);
    // pyemv.cvn.MasterCardCVN20(IMK, …, "5200000000000015", "02").generate_ac(
    //   the CDOL1 terminal data, 82 1880, 9F36 0029, cvr A00000000000)
    assert_eq!(
        hex::encode_upper(&answer),
        "801D 80 0029 77D7DAD184895C87 0114A00000000000 00000000000000000000 9000".replace(' ', "")
    );
    assert_eq!(card.atc(), 41);
    assert_eq!(status(&card.process(&c)), 0x6985, "no second GENERATE AC");
    // Records stay readable after GENERATE AC.
    assert_eq!(
        status(&card.process(&[0x00, 0xB2, 0x01, 0x0C, 0x00])),
        0x9000
    );
}

#[test]
fn commands_out_of_place_get_the_status_a_card_gives() {
    let mut card = visa();
    let cases: &[(&[u8], u16)] = &[
        (&[0x00], 0x6700),
        (&[0x00, 0xA4, 0x04], 0x6700),
        (&[0x00, 0xA4, 0x04, 0x00, 0x05, 1, 2], 0x6700),
        (&[0x00, 0xA4, 0x04, 0x00, 0x00, 0x00], 0x6700),
        (&[0x80, 0xA8, 0x00, 0x00, 0x02, 0x83, 0x00, 0x00], 0x6985),
        (&[0x00, 0xB2, 0x01, 0x0C, 0x00], 0x6985),
        (&[0x00, 0xB2, 0x01, 0x0D, 0x00], 0x6A86),
        (&[0x00, 0xB2, 0x00, 0x0C, 0x00], 0x6A86),
        (&[0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00, 0x00], 0x6A86),
        (&[0x00, 0x20, 0x00, 0x80, 0x00], 0x6D00),
        (&[0xA0, 0xA4, 0x04, 0x00, 0x00], 0x6E00),
        (&[0x80, 0xCA, 0x9F, 0x36, 0x00], 0x9000),
        (&[0x80, 0xCA, 0x9F, 0x13, 0x00], 0x6A88),
    ];
    for (command, expected) in cases {
        assert_eq!(
            status(&card.process(command)),
            *expected,
            "{}",
            hex::encode_upper(command)
        );
    }
    assert_eq!(status(&select(&mut card, &unhex("A0000000041010"))), 0x6A82);
    assert_eq!(
        status(&select(&mut card, &unhex("A000000003"))),
        0x9000,
        "partial"
    );
    // A PDOL of the wrong length.
    assert_eq!(status(&gpo(&mut card, &[0; 10])), 0x6700);
}

#[test]
fn qvsdc_refuses_readers_without_qvsdc_and_declines_offline_only_ones() {
    let mut card = visa();
    select(&mut card, &unhex("A0000000031010"));
    let mut data = unhex(VISA_PDOL_DATA);
    data[0] = 0x00;
    assert_eq!(status(&gpo(&mut card, &data)), 0x6985);
    assert_eq!(card.atc(), 0);
    data[0] = 0x28; // qVSDC, offline only
    let answer = gpo(&mut card, &data);
    assert_eq!(status(&answer), 0x9000);
    assert!(hex::encode_upper(&answer).contains("9F270100"), "AAC");
}

#[test]
fn an_exhausted_counter_refuses_to_transact() {
    let mut p = EmvPersonalisation::new(Profile::Qvsdc, "4761739001010010", "4912", IMK);
    p.atc = u16::MAX;
    let mut card = VirtualEmvCard::new(p).unwrap();
    select(&mut card, &unhex("A0000000031010"));
    assert_eq!(status(&gpo(&mut card, &unhex(VISA_PDOL_DATA))), 0x6985);
}

#[test]
fn bundled_cards_come_from_the_acquirers_card_file() {
    let cards = bundled_cards().unwrap();
    let names: Vec<&str> = cards.iter().map(|c| c.name.as_str()).collect();
    for name in [
        "visa-ok",
        "mc-ok",
        "cup-ok",
        "cup-low",
        "visa-lost",
        "mc-blocked",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    assert!(
        !names.contains(&"cup-stolen"),
        "no EMV table, no virtual card"
    );
    let cup = cards.iter().find(|c| c.name == "cup-ok").unwrap();
    assert_eq!(
        cup.application.personalisation().aid,
        unhex("A000000333010101")
    );
    assert_eq!(cup.application.personalisation().profile, Profile::Qvsdc);
    let mc = cards.iter().find(|c| c.name == "mc-ok").unwrap();
    assert_eq!(mc.application.atc(), 40);
    assert_eq!(mc.application.personalisation().pan_sequence, 2);
    for c in &cards {
        assert_eq!(c.identity.uid.len(), 7);
        assert_eq!(c.identity.atqa, [0x44, 0x00]);
        assert_eq!(c.identity.sak & 0x20, 0x20, "ISO 14443-4");
        assert_eq!(usize::from(c.identity.ats[0]), c.identity.ats.len());
        assert!(!format!("{c:?}").contains("0000000000010"), "masked: {c:?}");
    }
    let mut uids: Vec<_> = cards.iter().map(|c| c.identity.uid.clone()).collect();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), cards.len(), "distinct UIDs");
}

#[test]
fn card_file_errors_name_the_card() {
    let card = |emv: &str| {
        format!(
            "[[card]]\nname = \"t\"\npan = \"4761739001010010\"\nexpiry = \"4912\"\n[card.emv]\n{emv}\n"
        )
    };
    let key = "issuer_master_key = \"0123456789ABCDEFFEDCBA9876543210\"";
    let cases = [
        (card("profile = \"qvsdc\"\nissuer_master_key = \"0123\""), "issuer_master_key"),
        (card(&format!("profile = \"other\"\n{key}")), "other"),
        (card(&format!("profile = \"qvsdc\"\n{key}\npan_sequence = \"1\"")), "pan_sequence"),
        (card(&format!("profile = \"qvsdc\"\n{key}\nuid = \"0102\"")), "uid"),
        (card(&format!("profile = \"qvsdc\"\n{key}\nats = \"0678\"")), "ats"),
        (card(&format!("profile = \"qvsdc\"\n{key}\naid = \"A000\"")), "AID"),
        (card(&format!("profile = \"qvsdc\"\n{key}\npriority = 16")), "priority"),
        (card(&format!("profile = \"qvsdc\"\n{key}\nkey = \"x\"")), "key"),
        (
            "[[card]]\nname = \"t\"\npan = \"47617390\"\nexpiry = \"4912\"\n[card.emv]\nprofile = \"mchip\"\nissuer_master_key = \"0123456789ABCDEFFEDCBA9876543210\"\n".into(),
            "card number",
        ),
    ];
    for (text, mentions) in cases {
        let e = load_cards(&text).unwrap_err().to_string();
        assert!(e.contains(mentions), "{e}");
        assert!(!e.contains("4761739001010010"), "{e}");
    }
    let fine = load_cards(&card(&format!(
        "profile = \"mchip\"\n{key}\nuid = \"01020304\"\nats = \"0578808102\""
    )))
    .unwrap();
    assert_eq!(fine[0].identity.uid, [1, 2, 3, 4]);
    assert_eq!(fine[0].identity.atqa, [0x04, 0x00]);
}

proptest! {
    #[test]
    fn arbitrary_commands_never_panic(
        commands in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..20),
        profile in prop_oneof![Just(Profile::Qvsdc), Just(Profile::Mchip)],
    ) {
        let mut card = match profile {
            Profile::Qvsdc => visa(),
            Profile::Mchip => mchip(),
        };
        // Start from a selected application, so deeper states are reached.
        let aid = card.personalisation().aid.clone();
        select(&mut card, &aid);
        for command in commands {
            let answer = card.process(&command);
            prop_assert!(answer.len() >= 2);
        }
    }
}
