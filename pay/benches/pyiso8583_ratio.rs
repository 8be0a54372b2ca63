//! Till's codec against pyiso8583 on the same message, measured the same
//! way (best of 7 repeats of N encode+decode round trips, like Python's
//! timeit), in one run so the ratio compares like with like.
//! `cargo bench -p till-pay --bench pyiso8583_ratio`.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use till_pay::iso8583::Dialect;

mod support;

const ROUNDS: u32 = 200_000;
const REPEATS: usize = 7;

fn python() -> String {
    if let Ok(p) = std::env::var("TILL_PYTHON") {
        return p;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/peers-venv/bin/python");
    if venv.exists() {
        venv.to_string_lossy().into_owned()
    } else {
        "python3".into()
    }
}

fn main() {
    // `cargo test --benches` runs bench binaries with --test: stay quick there.
    let quick = std::env::args().any(|a| a == "--test");
    let rounds = if quick { 100 } else { ROUNDS };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    println!(
        "{:<12} {:>14} {:>16} {:>8}",
        "dialect", "till ns/op", "pyiso8583 ns/op", "ratio"
    );
    for name in ["iso87ascii", "cup"] {
        let d = Dialect::load(name).unwrap();
        let msg = support::typical_0200(&d);
        let wire = d.encode(&msg).unwrap();
        let mut best = f64::MAX;
        for _ in 0..REPEATS {
            let t = Instant::now();
            for _ in 0..rounds {
                black_box(d.decode(&d.encode(black_box(&msg)).unwrap()).unwrap());
            }
            best = best.min(t.elapsed().as_nanos() as f64 / f64::from(rounds));
        }
        let out = Command::new(python())
            .arg(root.join("benches/pyiso8583_codec.py"))
            .arg(root.join(format!("dialects/{name}.toml")))
            .arg(hex::encode_upper(&wire))
            .arg((rounds / 10).max(10).to_string())
            .output()
            .expect("python runs (scripts/setup installs the peers)");
        assert!(
            out.status.success(),
            "pyiso8583 benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let py: f64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("ns/op from the python side");
        println!("{name:<12} {best:>14.0} {py:>16.0} {:>7.0}x", py / best);
    }
}
