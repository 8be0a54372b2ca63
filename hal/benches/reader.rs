//! CPU time of the reader stack against the MFRC522 model: the driver and
//! the model together (no RF time, which the model only counts).
//!
//! `activation`: field on, WUPA, anticollision/SELECT of a 7-byte UID,
//! RATS, PPS to 848 kbit/s, then DESELECT. `apdu_256`: one 256-byte command
//! APDU and its 258-byte answer, chained through 64-byte frames both ways.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use till_hal::reader::card::PiccIdentity;
use till_hal::reader::model::{Loopback, VirtualCard};
use till_hal::reader::{ReaderOptions, SimulatedReader};

fn card() -> VirtualCard {
    VirtualCard::new(
        PiccIdentity {
            uid: vec![0x04, 0x52, 0x7A, 0x11, 0x22, 0x33, 0x44],
            atqa: [0x44, 0x00],
            sak: 0x20,
            ats: vec![0x05, 0x78, 0x77, 0x40, 0x00],
        },
        Loopback,
    )
}

fn bench(c: &mut Criterion) {
    let (mut reader, _model) =
        SimulatedReader::simulated([card()], ReaderOptions::default()).expect("model");
    let apdu: Vec<u8> = (0..=255u8).collect();

    c.bench_function("reader/activation", |b| {
        b.iter(|| {
            let info = reader.poll(Duration::from_millis(100)).unwrap();
            black_box(info);
            reader.release().unwrap();
        })
    });

    reader.poll(Duration::from_millis(100)).unwrap();
    c.bench_function("reader/apdu_256", |b| {
        b.iter(|| black_box(reader.transmit(black_box(&apdu)).unwrap()))
    });

    c.bench_function("reader/activation_and_apdu_256", |b| {
        b.iter(|| {
            reader.poll(Duration::from_millis(100)).unwrap();
            black_box(reader.transmit(black_box(&apdu)).unwrap());
            reader.release().unwrap();
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
