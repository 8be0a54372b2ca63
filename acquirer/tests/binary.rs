//! The real `till-acquirer` program: it prints its readiness line, serves a
//! terminal, and stops cleanly on SIGTERM. Under cross-compiled CI the
//! binary runs through `$TILL_RUNNER` (qemu-user).

mod support;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use support::*;

/// The program, prefixed with `$TILL_RUNNER` when that is set.
fn program() -> Command {
    let exe = env!("CARGO_BIN_EXE_till-acquirer");
    let runner = std::env::var("TILL_RUNNER").unwrap_or_default();
    let mut parts = runner.split_whitespace();
    match parts.next() {
        Some(first) => {
            let mut cmd = Command::new(first);
            cmd.args(parts).arg(exe);
            cmd
        }
        None => Command::new(exe),
    }
}

/// Waits for the child to end, failing the test if it takes too long.
fn wait(child: Child) -> std::process::ExitStatus {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut child = child;
        let _ = tx.send(child.wait());
    });
    rx.recv_timeout(PATIENCE)
        .expect("the program ends in time")
        .expect("the program's status")
}

#[test]
fn the_program_announces_its_address_and_serves() {
    let pki = issue_pki();
    let ledger = pki.path("ledger.jsonl");
    let log = pki.path("stderr.log");
    let mut child = program()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--dialect",
            "iso87ascii",
            "--pki",
        ])
        .arg(pki.dir.path())
        .arg("--ledger")
        .arg(&ledger)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .expect("the program starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("till-acquirer: listening on ")
        .and_then(|rest| rest.strip_suffix(" (dialect iso87ascii)\n"))
        .unwrap_or_else(|| {
            panic!(
                "readiness line {line:?}; stderr:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    let addr: SocketAddr = addr.parse().expect("an address");
    assert!(addr.ip().is_loopback() && addr.port() != 0);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = Client::to(&pki, addr, "iso87ascii", "TILL0001", "TILL0001");
        assert_eq!(client.sign_in().await, "00");
        let (answer, _) = client.sale(CUP_OK, 4200, "123456", PATIENCE).await.unwrap();
        assert_eq!(client.code(&answer), "00");
    });

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait(child);
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "", "exactly one line on stdout");
    assert_eq!(ledger_lines(&ledger).len(), 2);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("processed"), "{logged}");
    assert!(!logged.contains(CUP_OK), "a full PAN in the log:\n{logged}");
}

#[test]
fn bad_arguments_are_explained() {
    let out = program()
        .args(["--pki", "/nonexistent", "--fault", "explode:sale"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown action \"explode\""), "{err}");

    let out = program()
        .args(["--listen", "127.0.0.1:0", "--pki", "/nonexistent/pki"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no readiness line");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/pki/ca.crt"), "{err}");
}
