//! A full contactless EMV read — SELECT PPSE to the last record and, for
//! M/Chip, GENERATE AC — by Till's kernel against the virtual cards of
//! `till-hal`, called directly (no reader, no RF, no chip model): the CPU
//! time the terminal and the card spend, which the 50 ms budget
//! (excluding RF) must cover. Each iteration reads a fresh copy of the
//! card, so the counter never runs out.
//!
//! `cargo bench -p till-pay --bench emv_read`; results in
//! docs/performance.md.

use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use till_hal::reader::card::CardApplication;
use till_hal::reader::virtual_emv;
use till_pay::emv::{ApduTransport, Kernel, KernelConfig, Transaction, TransportError};
use till_pay::money::{Amount, Currency};

/// Hands commands to the card application directly.
struct Direct<'a>(&'a mut dyn CardApplication);

impl ApduTransport for Direct<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(self.0.process(command))
    }
}

fn emv_read(c: &mut Criterion) {
    let kernel = Kernel::new(KernelConfig::default());
    let when = NaiveDate::from_ymd_opt(2026, 6, 15)
        .and_then(|d| d.and_hms_opt(10, 30, 0))
        .expect("a valid date");
    let txn = Transaction::purchase(Amount(1250), Currency::CNY, when);
    let cards = virtual_emv::bundled_cards().expect("the bundled card file");
    let mut g = c.benchmark_group("emv_read");
    for (name, what) in [
        ("visa-ok", "qvsdc"),
        ("mc-ok", "mchip"),
        ("cup-ok", "unionpay"),
    ] {
        let card = cards
            .iter()
            .find(|c| c.name == name)
            .expect("a bundled card")
            .application
            .clone();
        g.bench_function(what, |b| {
            b.iter_batched_ref(
                || card.clone(),
                |card| {
                    kernel
                        .read(Direct(black_box(card)), black_box(&txn))
                        .expect("the virtual card reads")
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, emv_read);
criterion_main!(benches);
