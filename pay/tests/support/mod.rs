//! Shared by the codec property tests and the pyiso8583 interop test: a
//! seeded generator of valid messages for any dialect, and a driver for
//! the Python peers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use till_pay::iso8583::encoding::allowed;
use till_pay::iso8583::spec::{DataEncoding, DataKind, FieldSpec, LengthKind};
use till_pay::iso8583::{Dialect, Message};

/// SplitMix64: small, seedable, good enough to pick test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A valid value for a field, as Till represents it.
pub fn random_value(spec: &FieldSpec, rng: &mut Rng) -> till_pay::iso8583::Value {
    let len = match spec.length {
        LengthKind::Fixed => spec.max,
        LengthKind::Variable(_) if rng.chance(70) => rng.below(spec.max.min(24) + 1),
        LengthKind::Variable(_) => rng.below(spec.max + 1),
    };
    if spec.kind == DataKind::B {
        return (0..len)
            .map(|_| rng.next() as u8)
            .collect::<Vec<u8>>()
            .into();
    }
    let charset: Vec<u8> = match (spec.kind, spec.encoding) {
        (DataKind::Z, DataEncoding::Bcd) => b"0123456789=".to_vec(),
        (kind, _) => (0x20u8..=0x7E).filter(|&c| allowed(kind, c, 1)).collect(),
    };
    let mut s = String::with_capacity(len);
    for i in 0..len {
        if i == 0 && spec.kind == DataKind::XN {
            s.push(if rng.chance(50) { 'C' } else { 'D' });
        } else {
            s.push(char::from(charset[rng.below(charset.len())]));
        }
    }
    s.into()
}

/// A random valid message using a random subset of the dialect's fields.
pub fn random_message(dialect: &Dialect, rng: &mut Rng) -> Message {
    let mti: String = (0..4)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect();
    let mut m = Message::new(&mti).unwrap();
    if let Some(h) = &dialect.header {
        m.header = (0..h.length).map(|_| rng.next() as u8).collect();
    }
    for spec in dialect.fields() {
        if rng.chance(30) {
            m.set(spec.number, random_value(spec, rng));
        }
    }
    m
}

/// Path of a file in `pay/tests/`.
pub fn test_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(rel)
}

/// The dialects the codec tests run over: the shipped ones and the mixed
/// test dialect (EBCDIC and unusual length prefixes).
pub fn all_dialects() -> Vec<(String, PathBuf, Dialect)> {
    let dialects_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dialects");
    let mut out = Vec::new();
    for name in Dialect::builtin_names() {
        let path = dialects_dir.join(format!("{name}.toml"));
        out.push((name.to_string(), path, Dialect::load(name).unwrap()));
    }
    let mixed = test_path("data/mixed.toml");
    let d = Dialect::load(mixed.to_str().unwrap()).unwrap();
    out.push(("mixed".into(), mixed, d));
    out
}

/// The Python interpreter that has the test peers installed: `$TILL_PYTHON`
/// (set by `scripts/test`), else the virtualenv `scripts/setup` creates,
/// else `python3`.
pub fn python() -> String {
    if let Ok(p) = std::env::var("TILL_PYTHON") {
        return p;
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/peers-venv/bin/python");
    if venv.exists() {
        return venv.to_string_lossy().into_owned();
    }
    "python3".into()
}

/// A long-running Python peer speaking JSON lines.
pub struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    /// Starts `tests/peers/<script>`; fails the test with a clear message if
    /// Python or the peer's packages are missing.
    pub fn start(script: &str, modules: &[&str]) -> Peer {
        let py = python();
        let check = Command::new(&py)
            .arg("-c")
            .arg(format!("import {}", modules.join(", ")))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {py}: {e}; run scripts/test, which installs the test peers")
            });
        assert!(
            check.status.success(),
            "{py} lacks the peers {modules:?}: {}\nrun scripts/test (it installs them into target/peers-venv) or set TILL_PYTHON",
            String::from_utf8_lossy(&check.stderr)
        );
        let mut child = Command::new(&py)
            .arg(test_path(&format!("peers/{script}")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {py}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer {
            child,
            stdin,
            stdout,
        }
    }

    /// One request, one answer.
    pub fn call(&mut self, req: serde_json::Value) -> serde_json::Value {
        writeln!(self.stdin, "{req}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("peer answered {line:?}: {e}"))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
