//! Starting the programs under test and talking to them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// A card of the bundled card database that is in good standing.
pub const CUP_OK: &str = "6222088800000000010";
/// Its PIN.
pub const CUP_PIN: &str = "123456";
/// A merchant id that shares no digits run with the test PIN, so a PIN in a
/// log cannot hide behind it.
const MERCHANT: &str = "888000000000001";

/// A command for one of this package's programs, prefixed with the
/// emulator when the tests themselves run emulated.
pub fn program(exe: &str) -> Command {
    match std::env::var("TILL_RUNNER")
        .ok()
        .filter(|r| !r.trim().is_empty())
    {
        Some(runner) => {
            let mut words = runner.split_whitespace();
            let mut c = Command::new(words.next().unwrap_or("env"));
            c.args(words).arg(exe);
            c
        }
        None => Command::new(exe),
    }
}

fn tillctl() -> Command {
    program(env!("CARGO_BIN_EXE_e2e-tillctl"))
}

/// A development PKI in a temporary directory.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let out = tillctl()
            .args(["pki", "init"])
            .arg(dir.path().join("pki"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pki init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Pki { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    /// A terminal (a journal of its own) talking to `host`.
    pub fn terminal(&self, host: &Acquirer, dialect: &str) -> Terminal {
        Terminal {
            pki: self.path(),
            state: self.dir.path().join(format!("state-{dialect}")),
            host: host.addr.clone(),
            dialect: dialect.to_string(),
            timeout: "20".into(),
        }
    }
}

/// `tillctl txn` with a fixed host, PKI, dialect and journal.
pub struct Terminal {
    pki: PathBuf,
    state: PathBuf,
    host: String,
    dialect: String,
    timeout: String,
}

impl Terminal {
    /// Waits this many seconds for answers (the fault tests lose some).
    pub fn with_timeout(mut self, seconds: &str) -> Terminal {
        self.timeout = seconds.to_string();
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = tillctl();
        let (flags, rest): (Vec<&str>, Vec<&str>) =
            args.iter().partition(|a| **a == "-v" || **a == "-vv");
        c.args(flags).arg("txn").args(rest);
        self.host_args(&mut c);
        self.journal_args(&mut c);
        c
    }

    /// The host, dialect, timeout and merchant of this terminal.
    fn host_args(&self, c: &mut Command) {
        c.args([
            "--host",
            &self.host,
            "--dialect",
            &self.dialect,
            "--timeout",
            &self.timeout,
            "--merchant-id",
            MERCHANT,
        ]);
    }

    /// Its PKI and journal.
    fn journal_args(&self, c: &mut Command) {
        c.arg("--pki")
            .arg(&self.pki)
            .arg("--state")
            .arg(&self.state);
    }

    /// Where this terminal keeps its journal.
    pub fn state_dir(&self) -> &std::path::Path {
        &self.state
    }

    /// Runs `tillctl GROUP COMMAND ARGS` (e.g. `saf status`, `journal
    /// list`) on this terminal's journal; `with_host` adds the host, dialect
    /// and timeout (for `saf forward`). Exit code and the JSON printed.
    pub fn tool(&self, group: &str, args: &[&str], with_host: bool) -> (i32, Value) {
        let mut c = tillctl();
        c.arg(group).args(args);
        self.journal_args(&mut c);
        if with_host {
            self.host_args(&mut c);
        }
        let out = c.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "tillctl {group} {args:?} printed no JSON ({e}): {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), v)
    }

    /// Runs `tillctl txn ARGS`: exit code, JSON printed, and stderr.
    pub fn run_logged(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }

    /// Runs `tillctl txn ARGS`: exit code and the JSON it printed.
    pub fn run(&self, args: &[&str]) -> (i32, Value) {
        let (code, out, err) = self.run_logged(args);
        let v = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("tillctl {args:?} printed no JSON ({e}): {out}\n{err}"));
        (code, v)
    }

    /// Runs `tillctl txn ARGS`, which must succeed.
    pub fn ok(&self, args: &[&str]) -> Value {
        let (code, v) = self.run(args);
        assert_eq!(
            code, 0,
            "tillctl txn {args:?} ({}) exited {code}: {v}",
            self.dialect
        );
        v
    }
}

/// A running `till-acquirer`, stopped when dropped.
pub struct Acquirer {
    child: Option<Child>,
    pub addr: String,
    pub ledger: PathBuf,
    log: PathBuf,
    args: Vec<std::ffi::OsString>,
    _dir: tempfile::TempDir,
}

impl Acquirer {
    /// Starts the host on a free loopback port and waits for its readiness line.
    pub fn start(pki: &Pki, dialect: &str, extra: &[&str]) -> Acquirer {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger.jsonl");
        // The log goes to a file: a pipe nobody reads would fill up and stop the host.
        let log = dir.path().join("acquirer.log");
        let mut args: Vec<std::ffi::OsString> = vec!["--dialect".into(), dialect.into()];
        if !extra.contains(&"--seed") {
            args.extend(["--seed".into(), "1".into()]);
        }
        args.extend(["--pki".into(), pki.path().into()]);
        args.extend(["--ledger".into(), ledger.clone().into()]);
        args.extend(extra.iter().map(Into::into));
        let mut host = Acquirer {
            addr: "127.0.0.1:0".into(),
            child: None,
            ledger,
            log,
            args,
            _dir: dir,
        };
        host.spawn();
        host
    }

    /// Starts the process on `self.addr` and reads the address it took.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = program(env!("CARGO_BIN_EXE_e2e-till-acquirer"))
            .args(["--listen", &self.addr])
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(addr) = line
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        else {
            let _ = child.wait();
            let err = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("till-acquirer did not start: {line:?}\n{err}");
        };
        self.addr = addr.to_string();
        self.child = Some(child);
    }

    /// Stops the host (as a crash or a network outage would look to the
    /// terminal: connections to its address are refused).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the host again on the same address and ledger. Like a real
    /// host that lost its sessions, it knows no terminal's working keys.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Stops the host and returns what it logged.
    pub fn stop_and_stderr(mut self) -> String {
        let mut child = self.child.take().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Acquirer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The ledger's text.
pub fn ledger(host: &Acquirer) -> String {
    std::fs::read_to_string(&host.ledger).unwrap_or_default()
}

/// Ledger lines counted by "kind effect".
pub fn count_ledger(host: &Acquirer) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in ledger(host).lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("ledger line is not JSON ({e}): {line}"));
        let key = format!(
            "{} {}",
            v["kind"].as_str().unwrap_or("?"),
            v["effect"].as_str().unwrap_or("?")
        );
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}
