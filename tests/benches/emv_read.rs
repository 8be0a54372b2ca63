//! A full contactless EMV read against the modelled reader: card activation
//! (WUPA, anticollision, RATS) and every APDU of the read (PPSE to the last
//! record, and GENERATE AC for M/Chip) through the real MFRC522 driver and
//! ISO 14443-4 block protocol, over the register-level chip model with a
//! bundled virtual card in its field, and the EMV kernel. RF time is not in
//! it (the model completes frames at once); the model's own CPU time is.
//!
//! `cargo bench -p till-e2e --bench emv_read`; target ≤ 50 ms per read.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use till_app::card::{open_reader, read_card};
use till_hal::config::ReaderConfig;
use till_pay::emv::Transaction;
use till_pay::money::{Amount, Currency};

fn emv_read(c: &mut Criterion) {
    let config = ReaderConfig {
        simulated: true,
        ..ReaderConfig::default()
    };
    let txn = Transaction::purchase(
        Amount(1234),
        Currency::CNY,
        chrono::Local::now().naive_local(),
    );
    let mut g = c.benchmark_group("emv_read/modelled_reader");
    for card in ["visa-ok", "mc-ok", "cup-ok"] {
        // A fresh card each time, made outside the timing: a real card's
        // transaction counter (ATC) runs out after 65,535 reads, and so does
        // the virtual one.
        g.bench_function(card, |b| {
            b.iter_batched(
                || open_reader(&config, card).unwrap(),
                |mut reader| {
                    black_box(read_card(reader.as_mut(), &txn, Duration::from_secs(1)).unwrap())
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, emv_read);
criterion_main!(benches);
