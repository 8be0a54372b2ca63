//! The contactless kernel reading Till's virtual cards in-process: a
//! transport that hands each command APDU straight to the card
//! application (no reader, no RF), and variants that tamper with the
//! card's answers or break the exchange to drive every error path.

use chrono::NaiveDate;
use till_hal::reader::card::CardApplication;
use till_hal::reader::virtual_emv::{self, EmvPersonalisation, Profile, VirtualEmvCard};
use till_pay::card::Pan;
use till_pay::crypto::{KeyScheme, SecretKey};
use till_pay::emv::apdu::StatusWord;
use till_pay::emv::issuer::{CardKey, CryptogramVersion, IccRequest};
use till_pay::emv::tlv::{self, Tag, Tlv};
use till_pay::emv::{
    ApduTransport, CryptogramSource, EmvError, Kernel, KernelConfig, Step, SupportedAid,
    Transaction, TransportError, tags,
};
use till_pay::money::{Amount, Currency};

/// Hands commands to the card application directly.
struct Direct<'a>(&'a mut dyn CardApplication);

impl ApduTransport for Direct<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(self.0.process(command))
    }
}

/// Hands commands to the card and lets `edit` change (or replace with a
/// transport error) each answer; `edit` sees the command and the answer.
struct Tamper<'a, F> {
    card: &'a mut dyn CardApplication,
    edit: F,
}

impl<F> ApduTransport for Tamper<'_, F>
where
    F: FnMut(&[u8], Vec<u8>) -> Result<Vec<u8>, TransportError>,
{
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let answer = self.card.process(command);
        (self.edit)(command, answer)
    }
}

fn txn(amount: u64) -> Transaction {
    let when = NaiveDate::from_ymd_opt(2026, 6, 15)
        .unwrap()
        .and_hms_opt(10, 30, 0)
        .unwrap();
    Transaction::purchase(Amount(amount), Currency::CNY, when)
}

fn kernel() -> Kernel {
    Kernel::new(KernelConfig::default())
}

const IMK: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10,
];

fn card(profile: Profile) -> VirtualEmvCard {
    let pan = match profile {
        Profile::Qvsdc => "4761739001010010",
        Profile::Mchip => "5200000000000015",
    };
    let mut p = EmvPersonalisation::new(profile, pan, "4912", IMK);
    p.cardholder_name = Some("TEST/CARDHOLDER".into());
    VirtualEmvCard::new(p).unwrap()
}

fn is_command(command: &[u8], ins: u8) -> bool {
    command.get(1) == Some(&ins)
}

const SELECT: u8 = 0xA4;
const GPO: u8 = 0xA8;
const READ_RECORD: u8 = 0xB2;
const GENERATE_AC: u8 = 0xAE;

/// The answer's TLV object and status word.
fn split(answer: &[u8]) -> (Tlv, Vec<u8>) {
    let n = answer.len() - 2;
    (tlv::parse_one(&answer[..n]).unwrap(), answer[n..].to_vec())
}

fn join(object: &Tlv, sw: &[u8]) -> Vec<u8> {
    let mut out = object.encode();
    out.extend_from_slice(sw);
    out
}

/// `object` with every `tag` removed, at any depth.
fn without(object: &Tlv, tag: Tag) -> Tlv {
    if object.tag().is_constructed() {
        let children = object
            .children()
            .iter()
            .filter(|c| c.tag() != tag)
            .map(|c| without(c, tag))
            .collect();
        Tlv::constructed(object.tag(), children).unwrap()
    } else {
        object.clone()
    }
}

/// `object` with the value of every primitive `tag` replaced.
fn replaced(object: &Tlv, tag: Tag, value: &[u8]) -> Tlv {
    if object.tag() == tag {
        return Tlv::primitive(tag, value.to_vec()).unwrap();
    }
    if object.tag().is_constructed() {
        let children = object
            .children()
            .iter()
            .map(|c| replaced(c, tag, value))
            .collect();
        return Tlv::constructed(object.tag(), children).unwrap();
    }
    object.clone()
}

/// `object` with `extra` appended to its children.
fn with_child(object: &Tlv, extra: Tlv) -> Tlv {
    let mut children = object.children().to_vec();
    children.push(extra);
    Tlv::constructed(object.tag(), children).unwrap()
}

fn pan_digits(card: &VirtualEmvCard) -> String {
    card.personalisation().pan.clone()
}

#[test]
fn reads_every_bundled_card() {
    for mut vc in virtual_emv::bundled_cards().unwrap() {
        let perso = vc.application.personalisation().clone();
        let atc_before = vc.application.atc();
        let read = kernel()
            .read(Direct(&mut vc.application), &txn(1250))
            .unwrap_or_else(|e| panic!("{}: {e}", vc.name));
        let ctx = &vc.name;
        assert_eq!(read.pan.expose(), perso.pan, "{ctx}");
        assert_eq!(read.expiry.yymm(), perso.expiry, "{ctx}");
        assert_eq!(read.aid, perso.aid, "{ctx}");
        assert_eq!(read.label.as_deref(), Some(perso.label.as_str()), "{ctx}");
        assert_eq!(read.cardholder_name, perso.cardholder_name, "{ctx}");
        let track2 = read.track2.as_ref().expect("track 2");
        assert_eq!(track2.pan(), read.pan, "{ctx}");
        assert_eq!(track2.service_code(), "201", "{ctx}");
        assert_eq!(read.pan_sequence, Some(perso.pan_sequence), "{ctx}");
        assert_eq!(read.cryptogram.atc, atc_before + 1, "{ctx}");
        assert_eq!(vc.application.atc(), atc_before + 1, "{ctx}");
        let (source, version) = match perso.profile {
            Profile::Qvsdc => (
                CryptogramSource::ProcessingOptions,
                CryptogramVersion::VisaCvn10,
            ),
            Profile::Mchip => (
                CryptogramSource::GenerateAc,
                CryptogramVersion::MastercardCvn20,
            ),
        };
        assert_eq!(read.cryptogram.source, source, "{ctx}");
        // The issuer side verifies what the card produced.
        let imk = SecretKey::new(KeyScheme::Tdes, &perso.issuer_master_key).unwrap();
        let key = CardKey::derive(version, &imk, &perso.pan, perso.pan_sequence).unwrap();
        let request = IccRequest::parse(&read.icc_data).unwrap();
        assert_eq!(request.cryptogram, read.cryptogram.value, "{ctx}");
        key.verify(&request)
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(request.input.amount_authorised, [0, 0, 0, 0, 0x12, 0x50]);
        assert_eq!(request.input.currency, [0x01, 0x56]);
        assert_eq!(request.input.date, [0x26, 0x06, 0x15]);
        // Field 55 holds no card number or track.
        let icc = tlv::parse(&read.icc_data).unwrap();
        for tag in [tags::PAN, tags::TRACK2, tags::CARDHOLDER_NAME] {
            assert!(tlv::find(&icc, tag).is_none(), "{ctx}: {tag} in field 55");
        }
        assert_eq!(
            tlv::find(&icc, tags::DF_NAME).and_then(Tlv::value),
            Some(perso.aid.as_slice())
        );
        // Debug never shows the number or the name.
        let shown = format!("{read:?}");
        assert!(!shown.contains(&perso.pan), "{shown}");
        if let Some(name) = &perso.cardholder_name {
            assert!(!shown.contains(name.as_str()), "{shown}");
        }
    }
}

#[test]
fn each_read_is_a_new_transaction() {
    for profile in [Profile::Qvsdc, Profile::Mchip] {
        let mut card = card(profile);
        let first = kernel().read(Direct(&mut card), &txn(100)).unwrap();
        let second = kernel().read(Direct(&mut card), &txn(100)).unwrap();
        assert_eq!(second.cryptogram.atc, first.cryptogram.atc + 1);
        assert_ne!(first.cryptogram.value, second.cryptogram.value);
        assert_ne!(
            first.data(tags::UNPREDICTABLE_NUMBER),
            second.data(tags::UNPREDICTABLE_NUMBER),
            "a fresh unpredictable number per read"
        );
    }
}

#[test]
fn the_tvr_says_what_the_kernel_did() {
    // qVSDC gets zeros in its PDOL; M/Chip's CDOL1 gets "offline data
    // authentication not performed", and "expired application" for an
    // expired card.
    let mut visa = card(Profile::Qvsdc);
    let read = kernel().read(Direct(&mut visa), &txn(100)).unwrap();
    assert_eq!(read.data(tags::TVR), Some(&[0u8; 5][..]));
    let mut mc = card(Profile::Mchip);
    let read = kernel().read(Direct(&mut mc), &txn(100)).unwrap();
    assert_eq!(read.data(tags::TVR), Some(&[0x80, 0, 0, 0, 0][..]));
    let p = EmvPersonalisation::new(Profile::Mchip, "5200000000000015", "2401", IMK);
    let mut expired = VirtualEmvCard::new(p).unwrap();
    let read = kernel().read(Direct(&mut expired), &txn(100)).unwrap();
    assert_eq!(read.data(tags::TVR), Some(&[0x80, 0x40, 0, 0, 0][..]));
}

/// A PPSE directory listing `entries` (AID, priority) instead of the
/// card's own.
fn directory(
    entries: &[(&str, u8)],
) -> impl FnMut(&[u8], Vec<u8>) -> Result<Vec<u8>, TransportError> {
    let entries: Vec<(Vec<u8>, u8)> = entries
        .iter()
        .map(|(aid, p)| (hex::decode(aid).unwrap(), *p))
        .collect();
    move |command, answer| {
        if !(is_command(command, SELECT) && command.ends_with(b"2PAY.SYS.DDF01\x00")) {
            return Ok(answer);
        }
        let list = entries
            .iter()
            .map(|(aid, p)| {
                let mut e = vec![Tlv::primitive(tags::ADF_NAME, aid.clone()).unwrap()];
                if *p > 0 {
                    e.push(Tlv::primitive(tags::PRIORITY, vec![*p]).unwrap());
                }
                Tlv::constructed(tags::DIRECTORY_ENTRY, e).unwrap()
            })
            .collect();
        let fci = Tlv::constructed(
            tags::FCI_TEMPLATE,
            vec![
                Tlv::primitive(tags::DF_NAME, b"2PAY.SYS.DDF01".to_vec()).unwrap(),
                Tlv::constructed(
                    tags::FCI_PROPRIETARY,
                    vec![Tlv::constructed(tags::FCI_ISSUER_DISCRETIONARY, list).unwrap()],
                )
                .unwrap(),
            ],
        )
        .unwrap();
        Ok(join(&fci, &[0x90, 0x00]))
    }
}

#[test]
fn chooses_the_highest_priority_supported_application() {
    const VISA: &str = "A0000000031010";
    const MC: &str = "A0000000041010";
    const UNKNOWN: &str = "A0000009990101";
    // Mastercard ranks before Visa but this card only has Visa: the
    // kernel asks for Mastercard, the card says 6A82, the kernel goes on.
    let mut visa = card(Profile::Qvsdc);
    let mut selected = Vec::new();
    let mut dir = directory(&[(UNKNOWN, 1), (VISA, 3), (MC, 2)]);
    let read = kernel()
        .read(
            Tamper {
                card: &mut visa,
                edit: |c: &[u8], a: Vec<u8>| {
                    if is_command(c, SELECT) {
                        selected.push(hex::encode_upper(&c[5..5 + usize::from(c[4])]));
                    }
                    dir(c, a)
                },
            },
            &txn(100),
        )
        .unwrap();
    assert_eq!(hex::encode_upper(&read.aid), VISA);
    assert_eq!(selected, ["325041592E5359532E4444463031", MC, VISA]);
    // No priority counts after every numbered one; ties keep card order.
    let mut mc = card(Profile::Mchip);
    let read = kernel()
        .read(
            Tamper {
                card: &mut mc,
                edit: directory(&[(VISA, 0), (MC, 15)]),
            },
            &txn(100),
        )
        .unwrap();
    assert_eq!(hex::encode_upper(&read.aid), MC);
    // Only unsupported applications.
    let mut unknown = card(Profile::Qvsdc);
    let e = kernel()
        .read(
            Tamper {
                card: &mut unknown,
                edit: directory(&[(UNKNOWN, 1), ("A000000025010801", 2)]),
            },
            &txn(100),
        )
        .unwrap_err();
    assert_eq!(e, EmvError::NoSupportedApplication { offered: 2 });
    // A kernel that only takes Mastercard refuses a Visa card.
    let only_mc = Kernel::new(KernelConfig {
        supported_aids: vec![SupportedAid::exact(&hex::decode(MC).unwrap())],
        ..KernelConfig::default()
    });
    let mut visa = card(Profile::Qvsdc);
    assert_eq!(
        only_mc.read(Direct(&mut visa), &txn(100)).unwrap_err(),
        EmvError::NoSupportedApplication { offered: 1 }
    );
}

#[test]
fn partial_aid_matches_when_configured() {
    let mut p = EmvPersonalisation::new(Profile::Qvsdc, "6222088800000000010", "4912", IMK);
    p.aid = hex::decode("A000000333010106").unwrap();
    let mut card = VirtualEmvCard::new(p).unwrap();
    assert!(matches!(
        kernel().read(Direct(&mut card), &txn(100)),
        Err(EmvError::NoSupportedApplication { .. })
    ));
    let unionpay = Kernel::new(KernelConfig {
        supported_aids: vec![SupportedAid {
            aid: hex::decode("A000000333").unwrap(),
            partial_match: true,
        }],
        ..KernelConfig::default()
    });
    let read = unionpay.read(Direct(&mut card), &txn(100)).unwrap();
    assert_eq!(read.aid_hex(), "A000000333010106");
}

/// Runs a read of a fresh card of `profile` with `edit` between kernel
/// and card.
fn read_with(
    profile: Profile,
    edit: impl FnMut(&[u8], Vec<u8>) -> Result<Vec<u8>, TransportError>,
) -> Result<till_pay::emv::CardRead, EmvError> {
    let mut card = card(profile);
    kernel().read(
        Tamper {
            card: &mut card,
            edit,
        },
        &txn(4200),
    )
}

/// `edit` applied to the answers of commands with instruction `ins`.
fn on(
    ins: u8,
    mut edit: impl FnMut(Vec<u8>) -> Vec<u8>,
) -> impl FnMut(&[u8], Vec<u8>) -> Result<Vec<u8>, TransportError> {
    move |c, a| Ok(if is_command(c, ins) { edit(a) } else { a })
}

fn sw(word: u16) -> Vec<u8> {
    word.to_be_bytes().to_vec()
}

#[test]
fn status_words_become_clear_errors() {
    let ppse = read_with(Profile::Qvsdc, on(SELECT, |_| sw(0x6A82))).unwrap_err();
    assert_eq!(
        ppse,
        EmvError::Status {
            step: Step::SelectPpse,
            sw: StatusWord::NOT_FOUND
        }
    );
    assert_eq!(
        ppse.to_string(),
        "SELECT PPSE: the card answered 6A82 (file or application not found)"
    );
    let mut selects = 0;
    let app = read_with(
        Profile::Mchip,
        on(SELECT, |a| {
            selects += 1;
            if selects == 2 { sw(0x6A81) } else { a }
        }),
    )
    .unwrap_err();
    assert_eq!(
        app,
        EmvError::Status {
            step: Step::SelectApplication,
            sw: StatusWord::FUNCTION_NOT_SUPPORTED
        }
    );
    let gpo = read_with(Profile::Mchip, on(GPO, |_| sw(0x6985))).unwrap_err();
    assert!(gpo.advice().contains("insert or swipe"), "{}", gpo.advice());
    let record = read_with(Profile::Qvsdc, on(READ_RECORD, |_| sw(0x6A83))).unwrap_err();
    assert_eq!(
        record,
        EmvError::Status {
            step: Step::ReadRecord { sfi: 1, record: 1 },
            sw: StatusWord::RECORD_NOT_FOUND
        }
    );
    let genac = read_with(Profile::Mchip, on(GENERATE_AC, |_| sw(0x6985))).unwrap_err();
    assert!(matches!(
        genac,
        EmvError::Status {
            step: Step::GenerateAc,
            ..
        }
    ));
    let short = read_with(Profile::Qvsdc, on(GPO, |_| vec![0x90])).unwrap_err();
    assert_eq!(
        short,
        EmvError::NoStatusWord {
            step: Step::GetProcessingOptions
        }
    );
}

#[test]
fn a_card_refusing_contactless_or_declining_is_reported() {
    // A TTQ without qVSDC: the card answers 6985 to GPO.
    let no_qvsdc = Kernel::new(KernelConfig {
        ttq: [0x00, 0x80, 0x00, 0x00],
        ..KernelConfig::default()
    });
    let mut visa = card(Profile::Qvsdc);
    let e = no_qvsdc.read(Direct(&mut visa), &txn(100)).unwrap_err();
    assert_eq!(
        e,
        EmvError::Status {
            step: Step::GetProcessingOptions,
            sw: StatusWord::CONDITIONS_NOT_SATISFIED
        }
    );
    // An offline-only reader: this online-only card declines with an AAC.
    let offline = Kernel::new(KernelConfig {
        ttq: [0x28, 0x00, 0x00, 0x00],
        ..KernelConfig::default()
    });
    assert_eq!(
        offline.read(Direct(&mut visa), &txn(100)).unwrap_err(),
        EmvError::CardDeclined
    );
}

#[test]
fn missing_data_is_named() {
    let no_pan = |a: Vec<u8>| {
        let (t, s) = split(&a);
        join(&without(&without(&t, tags::PAN), tags::TRACK2), &s)
    };
    let mut gpo_no_track = on(GPO, no_pan);
    let mut records_no_pan = on(READ_RECORD, no_pan);
    let e = read_with(Profile::Qvsdc, move |c, a| {
        let a = gpo_no_track(c, a)?;
        records_no_pan(c, a)
    })
    .unwrap_err();
    assert_eq!(
        e,
        EmvError::MissingData {
            tag: tags::PAN,
            what: "the card number (5A, or track 2 equivalent data 57)"
        }
    );
    // Without 5A the PAN comes from track 2.
    let read = read_with(
        Profile::Mchip,
        on(READ_RECORD, |a| {
            let (t, s) = split(&a);
            join(&without(&t, tags::PAN), &s)
        }),
    )
    .unwrap();
    assert_eq!(read.pan, Pan::new("5200000000000015").unwrap());
    let no_cdol = read_with(
        Profile::Mchip,
        on(READ_RECORD, |a| {
            let (t, s) = split(&a);
            join(&without(&t, tags::CDOL1), &s)
        }),
    )
    .unwrap_err();
    assert!(matches!(no_cdol, EmvError::MissingData { tag, .. } if tag == tags::CDOL1));
    let no_afl = read_with(
        Profile::Qvsdc,
        on(GPO, |a| {
            let (t, s) = split(&a);
            join(&without(&t, tags::AFL), &s)
        }),
    )
    .unwrap_err();
    assert!(matches!(no_afl, EmvError::MissingData { tag, .. } if tag == tags::AFL));
    let no_cid = read_with(
        Profile::Qvsdc,
        on(GPO, |a| {
            let (t, s) = split(&a);
            join(&without(&t, tags::CRYPTOGRAM_INFORMATION_DATA), &s)
        }),
    )
    .unwrap_err();
    assert!(
        matches!(no_cid, EmvError::MissingData { tag, .. } if tag == tags::CRYPTOGRAM_INFORMATION_DATA)
    );
    let no_df_name = read_with(Profile::Qvsdc, {
        let mut n = 0;
        on(SELECT, move |a| {
            n += 1;
            if n < 2 {
                return a;
            }
            let (t, s) = split(&a);
            join(&without(&t, tags::DF_NAME), &s)
        })
    })
    .unwrap_err();
    assert!(matches!(no_df_name, EmvError::MissingData { tag, .. } if tag == tags::DF_NAME));
}

#[test]
fn malformed_answers_are_refused() {
    // A record cut short.
    let e = read_with(
        Profile::Qvsdc,
        on(READ_RECORD, |mut a| {
            a.remove(a.len() - 3);
            a
        }),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            EmvError::Malformed {
                step: Step::ReadRecord { sfi: 1, record: 1 },
                ..
            }
        ),
        "{e}"
    );
    // Trailing bytes after the GPO template.
    let e = read_with(
        Profile::Mchip,
        on(GPO, |a| {
            let mut out = a[..a.len() - 2].to_vec();
            out.extend_from_slice(&[0x00, 0x90, 0x00]);
            out
        }),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            EmvError::Malformed {
                step: Step::GetProcessingOptions,
                ..
            }
        ),
        "{e}"
    );
    // A record that is not a record template.
    let e = read_with(
        Profile::Qvsdc,
        on(READ_RECORD, |a| {
            let (t, s) = split(&a);
            let inner = Tlv::constructed(Tag::new(0x77), t.children().to_vec()).unwrap();
            join(&inner, &s)
        }),
    )
    .unwrap_err();
    assert!(matches!(e, EmvError::UnexpectedResponse { .. }), "{e}");
    // An expiry date that is not a date.
    let e = read_with(
        Profile::Qvsdc,
        on(READ_RECORD, |a| {
            let (t, s) = split(&a);
            join(&replaced(&t, tags::EXPIRY_DATE, &[0x49, 0x13, 0x01]), &s)
        }),
    )
    .unwrap_err();
    assert_eq!(
        e,
        EmvError::BadData {
            tag: tags::EXPIRY_DATE,
            reason: "not a YYMMDD date"
        }
    );
    // A card number whose check digit is wrong.
    let e = read_with(
        Profile::Qvsdc,
        on(READ_RECORD, |a| {
            let (t, s) = split(&a);
            join(
                &replaced(
                    &t,
                    tags::PAN,
                    &[0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x11],
                ),
                &s,
            )
        }),
    )
    .unwrap_err();
    assert!(
        matches!(e, EmvError::BadData { tag, .. } if tag == tags::PAN),
        "{e}"
    );
    assert!(!e.to_string().contains("4761739001010011"));
}

#[test]
fn bad_afls_are_refused() {
    for (afl, what) in [
        (&[0x08, 0x01, 0x02][..], "multiple of four"),
        (&[0x00, 0x01, 0x01, 0x00], "SFI"),
        (&[0x08, 0x00, 0x01, 0x00], "first record"),
        (&[0x08, 0x03, 0x01, 0x00], "before the first"),
    ] {
        // M/Chip's GPO answer is format 1: AIP then AFL.
        let e = read_with(
            Profile::Mchip,
            on(GPO, move |a| {
                let (t, s) = split(&a);
                let mut value = t.value().unwrap()[..2].to_vec();
                value.extend_from_slice(afl);
                join(&Tlv::primitive(Tag::new(0x80), value).unwrap(), &s)
            }),
        )
        .unwrap_err();
        assert!(
            matches!(&e, EmvError::BadAfl(reason) if reason.contains(what)),
            "{afl:02X?}: {e}"
        );
    }
}

#[test]
fn duplicated_and_contradicting_data_are_refused() {
    let e = read_with(
        Profile::Qvsdc,
        on(READ_RECORD, |a| {
            let (t, s) = split(&a);
            join(
                &with_child(&t, Tlv::primitive(tags::PAN_SEQUENCE, vec![0x01]).unwrap()),
                &s,
            )
        }),
    )
    .unwrap_err();
    assert_eq!(e, EmvError::DuplicateData(tags::PAN_SEQUENCE));
    let e = read_with(
        Profile::Qvsdc,
        on(READ_RECORD, |a| {
            let (t, s) = split(&a);
            join(
                &replaced(
                    &t,
                    tags::PAN,
                    &[0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x28],
                ),
                &s,
            )
        }),
    )
    .unwrap_err();
    assert_eq!(
        e,
        EmvError::Inconsistent("the card number in 5A differs from the one on track 2 (57)")
    );
    assert!(!e.to_string().contains("4761739001010028"));
}

#[test]
fn terminal_data_a_card_echoes_does_not_replace_what_was_sent() {
    let mut first = true;
    let read = read_with(
        Profile::Qvsdc,
        on(READ_RECORD, |a| {
            if !std::mem::take(&mut first) {
                return a;
            }
            let (t, s) = split(&a);
            let echo = Tlv::primitive(tags::AMOUNT_AUTHORISED, vec![0x99; 6]).unwrap();
            join(&with_child(&t, echo), &s)
        }),
    )
    .unwrap();
    let request = IccRequest::parse(&read.icc_data).unwrap();
    assert_eq!(request.input.amount_authorised, [0, 0, 0, 0, 0x42, 0x00]);
    assert_eq!(
        read.data(tags::AMOUNT_AUTHORISED),
        Some(&[0, 0, 0, 0, 0x42, 0x00][..])
    );
}

#[test]
fn a_card_leaving_the_field_mid_read_is_a_transport_error() {
    for profile in [Profile::Qvsdc, Profile::Mchip] {
        let mut reads = 0;
        let e = read_with(profile, |c, a| {
            if is_command(c, READ_RECORD) {
                reads += 1;
                if reads == 2 {
                    return Err(TransportError::CardRemoved);
                }
            }
            Ok(a)
        })
        .unwrap_err();
        let second = match profile {
            Profile::Qvsdc => Step::ReadRecord { sfi: 1, record: 2 },
            Profile::Mchip => Step::ReadRecord { sfi: 2, record: 1 },
        };
        assert_eq!(
            e,
            EmvError::Transport {
                step: second,
                source: TransportError::CardRemoved
            }
        );
        assert!(e.advice().contains("hold the card"));
    }
    let e = read_with(Profile::Mchip, |c, a| {
        if is_command(c, GENERATE_AC) {
            Err(TransportError::Timeout)
        } else {
            Ok(a)
        }
    })
    .unwrap_err();
    assert_eq!(
        e,
        EmvError::Transport {
            step: Step::GenerateAc,
            source: TransportError::Timeout
        }
    );
}

#[test]
fn response_chaining_and_wrong_le_are_followed() {
    // 61xx: the card hands out its answer through GET RESPONSE;
    // 6Cxx: the card wants the command again with another Le.
    for profile in [Profile::Qvsdc, Profile::Mchip] {
        let mut held: Vec<u8> = Vec::new();
        let mut corrected = false;
        let read = read_with(profile, |c, a| {
            if c[..2] == [0x00, 0xC0] {
                let n = usize::from(c[4]).min(held.len());
                let rest = held.split_off(n);
                let mut out = std::mem::replace(&mut held, rest);
                out.extend_from_slice(if held.is_empty() {
                    &[0x90, 0x00]
                } else {
                    &[0x61, 0x00]
                });
                return Ok(out);
            }
            if is_command(c, READ_RECORD) && !corrected {
                corrected = true;
                return Ok(vec![0x6C, 0x20]);
            }
            if is_command(c, GPO) && a.len() > 2 {
                held = a[..a.len() - 2].to_vec();
                let mut first: Vec<u8> = held.drain(..held.len().min(5)).collect();
                first.extend_from_slice(&[0x61, held.len().min(255) as u8]);
                return Ok(first);
            }
            Ok(a)
        })
        .unwrap();
        assert!(corrected);
        assert_eq!(
            read.cryptogram.kind,
            till_pay::emv::issuer::CryptogramType::Arqc
        );
    }
}

#[test]
fn no_error_message_holds_the_card_number() {
    // Errors from every path above, rendered, never carry the PAN.
    let mut errors = Vec::new();
    for profile in [Profile::Qvsdc, Profile::Mchip] {
        let pan = pan_digits(&card(profile));
        for ins in [SELECT, GPO, READ_RECORD, GENERATE_AC] {
            for cut in [1usize, 3, 7] {
                if let Err(e) = read_with(
                    profile,
                    on(ins, move |mut a| {
                        let n = a.len();
                        if n > cut + 2 {
                            a.remove(n - 2 - cut);
                        }
                        a
                    }),
                ) {
                    errors.push((pan.clone(), e));
                }
            }
        }
    }
    assert!(errors.len() > 10);
    for (pan, e) in errors {
        let text = format!("{e} {e:?} {}", e.advice());
        assert!(!text.contains(&pan), "{text}");
        assert!(!text.contains(&pan[6..12]), "{text}");
    }
}
