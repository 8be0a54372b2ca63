//! Shared by the codec property tests and the pyiso8583 interop test: a
//! seeded generator of valid messages for any dialect, and a driver for
//! the Python peers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, BufWriter, Write};
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

/// What a [`BatchPeer`] answered to one request: `Ok(value)` or `Err(its
/// error text)`.
pub type Reply = Result<serde_json::Value, String>;

/// A long-running Python peer that greets with `{"ready": …}` (or
/// `{"fatal": …}`) and answers each JSON line with `{"ok": …}` or
/// `{"err": …}`, fed in batches (the crypto and EMV cross-checks).
pub struct BatchPeer {
    // Held so the process handle lives as long as the pipes.
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// What to say when it cannot run: which peer, which pip packages.
    what: &'static str,
    packages: &'static str,
}

impl BatchPeer {
    /// Starts `tests/peers/<script>` (`what` names it in errors, `packages`
    /// are the pip packages it needs).
    pub fn start(script: &str, what: &'static str, packages: &'static str) -> BatchPeer {
        let python = python();
        let fail = |why: String| -> ! { unavailable(what, packages, &why) };
        let mut child = Command::new(&python)
            .arg(test_path(&format!("peers/{script}")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| fail(format!("cannot run {python:?}: {e}")));
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            fail("the peer's pipes were not set up".into());
        };
        let mut peer = BatchPeer {
            _child: child,
            stdin,
            stdout: BufReader::new(stdout),
            what,
            packages,
        };
        let hello = peer.read_line();
        if let Some(fatal) = hello.get("fatal") {
            fail(format!("{python} could not load {packages}: {fatal}"));
        }
        assert!(
            hello.get("ready").is_some(),
            "unexpected peer greeting {hello}"
        );
        peer
    }

    /// Sends all `requests` and returns the replies in the same order.
    ///
    /// A second thread writes while this one reads, so neither pipe can
    /// fill up and stall the other side.
    pub fn batch(&mut self, requests: &[serde_json::Value]) -> Vec<Reply> {
        let (what, packages) = (self.what, self.packages);
        let BatchPeer { stdin, stdout, .. } = self;
        std::thread::scope(|scope| {
            let writer = scope.spawn(move || -> std::io::Result<()> {
                let mut out = BufWriter::new(stdin);
                for request in requests {
                    writeln!(out, "{request}")?;
                }
                out.flush()
            });
            let replies: Vec<Reply> = (0..requests.len())
                .map(|_| {
                    let reply = read_peer_line(stdout, what, packages);
                    match (reply.get("ok"), reply.get("err")) {
                        (Some(ok), _) => Ok(ok.clone()),
                        (None, Some(err)) => Err(err.to_string()),
                        _ => panic!("peer reply without ok or err: {reply}"),
                    }
                })
                .collect();
            match writer.join() {
                Ok(Ok(())) => replies,
                Ok(Err(e)) => {
                    unavailable(what, packages, &format!("cannot write to the peer: {e}"))
                }
                Err(_) => panic!("peer writer thread panicked"),
            }
        })
    }

    fn read_line(&mut self) -> serde_json::Value {
        read_peer_line(&mut self.stdout, self.what, self.packages)
    }
}

/// One JSON line from a peer.
fn read_peer_line(
    stdout: &mut BufReader<ChildStdout>,
    what: &str,
    packages: &str,
) -> serde_json::Value {
    let mut line = String::new();
    match stdout.read_line(&mut line) {
        Ok(0) => unavailable(
            what,
            packages,
            "the peer exited early (see its traceback above)",
        ),
        Ok(_) => serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("peer wrote a bad line {line:?}: {e}")),
        Err(e) => unavailable(what, packages, &format!("cannot read from the peer: {e}")),
    }
}

fn unavailable(what: &str, packages: &str, why: &str) -> ! {
    panic!(
        "Python {what} peer unavailable: {why}.\n\
         Run scripts/test, which installs the peers (pip: {packages}), \
         or set TILL_PYTHON to an interpreter that has them."
    )
}

/// The cross-checks' seed: `TILL_PEER_SEED` to replay a run, else a fresh
/// one (every failure message names it).
pub fn peer_seed() -> u64 {
    use rand::RngExt;
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| match std::env::var("TILL_PEER_SEED") {
        Ok(text) => text.parse().expect("TILL_PEER_SEED must be a u64"),
        Err(_) => rand::rng().random(),
    })
}
