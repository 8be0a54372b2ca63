//! Encode and decode of a typical 0200 in each shipped dialect.
//! `cargo bench -p till-pay --bench codec`; results in docs/performance.md.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use till_pay::iso8583::Dialect;

mod support;

fn codec(c: &mut Criterion) {
    for name in ["iso87ascii", "cup"] {
        let d = Dialect::load(name).unwrap();
        let msg = support::typical_0200(&d);
        let wire = d.encode(&msg).unwrap();
        let mut g = c.benchmark_group(format!("0200/{name}"));
        g.bench_function("encode", |b| b.iter(|| d.encode(black_box(&msg)).unwrap()));
        g.bench_function("decode", |b| b.iter(|| d.decode(black_box(&wire)).unwrap()));
        g.bench_function("encode+decode", |b| {
            b.iter(|| d.decode(&d.encode(black_box(&msg)).unwrap()).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
