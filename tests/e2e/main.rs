//! End to end: the `tillctl` and `till-acquirer` programs, each in its own
//! process, over mutual TLS on loopback, in both shipped dialects.
//!
//! Under the aarch64 test stage the programs are aarch64 binaries started
//! through `$TILL_RUNNER` (qemu-user).

mod support;

use serde_json::Value;
use support::{Acquirer, CUP_OK, CUP_PIN, Pki, count_ledger, ledger};

const DIALECTS: [&str; 2] = ["cup", "iso87ascii"];

#[test]
fn every_flow_runs_end_to_end_in_both_dialects() {
    for dialect in DIALECTS {
        let pki = Pki::new();
        let host = Acquirer::start(&pki, dialect, &[]);
        let t = pki.terminal(&host, dialect);

        let s = t.ok(&["sign-in"]);
        assert_eq!(s["approved"], true, "{dialect}: {s}");
        assert!(s["mac_kcv"].as_str().is_some_and(|k| !k.is_empty()));

        // Sale with PIN, then its void (card taken from the terminal's journal).
        let sale = t.ok(&[
            "sale", "--amount", "88.00", "--card", CUP_OK, "--pin", CUP_PIN,
        ]);
        assert_eq!(sale["response_code"], "00", "{dialect}: {sale}");
        assert_eq!(sale["pan"], "622208*********0010");
        assert_eq!(sale["amount"], "88.00");
        let rrn = sale["rrn"].as_str().unwrap().to_string();
        assert_eq!(rrn.len(), 12);
        assert_eq!(sale["auth_code"].as_str().map(str::len), Some(6));

        let balance = t.ok(&["balance", "--card", CUP_OK, "--pin", CUP_PIN]);
        assert_eq!(balance["balance"], "4912.00", "{dialect}: {balance}");

        let void = t.ok(&["void", "--original", &rrn]);
        assert_eq!(
            (void["kind"].as_str(), void["approved"].as_bool()),
            (Some("void"), Some(true)),
            "{dialect}: {void}"
        );
        let balance = t.ok(&["balance", "--card", CUP_OK, "--pin", CUP_PIN]);
        assert_eq!(
            balance["balance"], "5000.00",
            "{dialect}: the void gave the money back"
        );

        // Sale and a partial refund.
        let sale = t.ok(&[
            "sale", "--amount", "25.50", "--card", CUP_OK, "--pin", CUP_PIN,
        ]);
        let refund = t.ok(&[
            "refund",
            "--original",
            sale["rrn"].as_str().unwrap(),
            "--amount",
            "5.50",
        ]);
        assert_eq!(refund["approved"], true, "{dialect}: {refund}");

        // Pre-authorization and its completion.
        let pre = t.ok(&[
            "preauth", "--amount", "100.00", "--card", CUP_OK, "--pin", CUP_PIN,
        ]);
        let done = t.ok(&[
            "completion",
            "--original",
            pre["rrn"].as_str().unwrap(),
            "--amount",
            "96.00",
        ]);
        assert_eq!(done["kind"], "completion", "{dialect}: {done}");
        let balance = t.ok(&["balance", "--card", CUP_OK, "--pin", CUP_PIN]);
        assert_eq!(
            balance["balance"], "4884.00",
            "{dialect}: 5000 - 25.50 + 5.50 - 96.00"
        );

        // Pre-authorization voided: the hold is released.
        let pre = t.ok(&[
            "preauth", "--amount", "40.00", "--card", CUP_OK, "--pin", CUP_PIN,
        ]);
        let pv = t.ok(&["void", "--original", pre["rrn"].as_str().unwrap()]);
        assert_eq!(pv["kind"], "preauth_void", "{dialect}: {pv}");

        // Settlement: 25.50 + 96.00 in debits, 5.50 in credits; the host agrees.
        let settle = t.ok(&["settle"]);
        assert_eq!(settle["balanced"], true, "{dialect}: {settle}");
        assert_eq!(settle["debit_amount"], "121.50");
        assert_eq!(settle["credit_amount"], "5.50");
        assert_eq!(settle["next_batch"], "000002");

        // A new batch takes sales again.
        assert_eq!(
            t.ok(&[
                "sale", "--amount", "1.00", "--card", CUP_OK, "--pin", CUP_PIN
            ])["batch"],
            "000002"
        );
        let log = ledger(&host);
        assert!(
            !log.contains(CUP_OK),
            "{dialect}: a full PAN reached the ledger"
        );
    }
}

#[test]
fn declines_say_why_and_exit_3() {
    for dialect in DIALECTS {
        let pki = Pki::new();
        let host = Acquirer::start(&pki, dialect, &[]);
        let t = pki.terminal(&host, dialect);
        t.ok(&["sign-in"]);
        let (code, wrong_pin) = t.run(&[
            "sale", "--amount", "10.00", "--card", CUP_OK, "--pin", "000000",
        ]);
        assert_eq!(code, 3, "{dialect}: {wrong_pin}");
        assert_eq!(wrong_pin["response_code"], "55");
        assert_eq!(wrong_pin["message"], "Incorrect PIN");
        assert_eq!(wrong_pin["message_zh"], "密码错误");
        assert!(wrong_pin["action"].as_str().unwrap().contains("PIN again"));
        let (code, low) = t.run(&[
            "sale",
            "--amount",
            "80.00",
            "--card",
            "6222088800000000028",
            "--pin",
            CUP_PIN,
        ]);
        assert_eq!(
            (code, low["response_code"].as_str()),
            (3, Some("51")),
            "{dialect}: {low}"
        );
        let (code, lost) = t.run(&[
            "sale",
            "--amount",
            "1.00",
            "--card",
            "6222088800000000044",
            "--pin",
            CUP_PIN,
        ]);
        assert_eq!(
            (code, lost["response_code"].as_str()),
            (3, Some("41")),
            "{dialect}: {lost}"
        );
    }
}

#[test]
fn a_dropped_answer_is_reversed_and_the_host_applies_it_once() {
    for dialect in DIALECTS {
        let pki = Pki::new();
        // The host processes the sale but never answers it; the first
        // reversal is lost too, so the terminal must repeat it (0401).
        let host = Acquirer::start(
            &pki,
            dialect,
            &["--fault", "drop:sale#1", "--fault", "drop:reversal#1"],
        );
        let t = pki.terminal(&host, dialect).with_timeout("1.5");
        t.ok(&["sign-in"]);
        let (code, sale) = t.run(&[
            "sale", "--amount", "300.00", "--card", CUP_OK, "--pin", CUP_PIN,
        ]);
        assert_eq!(code, 3, "{dialect}: {sale}");
        assert_eq!(sale["status"], "reversed", "{dialect}: {sale}");
        let rev = &sale["reversal"];
        assert_eq!(
            (rev["acknowledged"].as_bool(), rev["attempts"].as_u64()),
            (Some(true), Some(2)),
            "{dialect}: {rev}"
        );
        assert_eq!(rev["mti"], "0401");

        // The ledger: the sale once (debited), the reversal applied once and
        // its repeat acknowledged without effect.
        let lines = count_ledger(&host);
        assert_eq!(lines.get("sale debit"), Some(&1), "{dialect}: {lines:?}");
        assert_eq!(
            lines.get("reversal reversed"),
            Some(&1),
            "{dialect}: {lines:?}"
        );
        assert_eq!(
            lines.get("reversal repeat"),
            Some(&1),
            "{dialect}: {lines:?}"
        );
        let balance = t.ok(&["balance", "--card", CUP_OK, "--pin", CUP_PIN]);
        assert_eq!(
            balance["balance"], "5000.00",
            "{dialect}: money back exactly once"
        );
        // Nothing is owed any more; settlement agrees with the host.
        assert_eq!(t.ok(&["settle"])["balanced"], true);
    }
}

#[test]
fn an_undelivered_reversal_is_sent_before_the_next_sale() {
    let pki = Pki::new();
    let dialect = "cup";
    // The sale's answer and the first three reversal attempts are lost.
    let host = Acquirer::start(
        &pki,
        dialect,
        &["--fault", "drop:sale#1", "--fault", "drop:reversal#3"],
    );
    let t = pki.terminal(&host, dialect).with_timeout("1");
    t.ok(&["sign-in"]);
    let (_, sale) = t.run(&[
        "sale", "--amount", "20.00", "--card", CUP_OK, "--pin", CUP_PIN,
    ]);
    assert_eq!(sale["status"], "reversal_pending", "{sale}");
    assert_eq!(sale["reversal"]["acknowledged"], false);
    // The next sale first delivers the reversal, then goes through.
    let next = t.ok(&[
        "sale", "--amount", "2.00", "--card", CUP_OK, "--pin", CUP_PIN,
    ]);
    assert_eq!(next["approved"], true, "{next}");
    let lines = count_ledger(&host);
    assert_eq!(lines.get("reversal reversed"), Some(&1), "{lines:?}");
    let balance = t.ok(&["balance", "--card", CUP_OK, "--pin", CUP_PIN]);
    assert_eq!(balance["balance"], "4998.00");
}

#[test]
fn a_bad_answer_mac_is_reversed() {
    let pki = Pki::new();
    let host = Acquirer::start(&pki, "iso87ascii", &["--fault", "corrupt-mac:sale#1"]);
    let t = pki.terminal(&host, "iso87ascii");
    t.ok(&["sign-in"]);
    let (code, sale) = t.run(&[
        "sale", "--amount", "7.00", "--card", CUP_OK, "--pin", CUP_PIN,
    ]);
    assert_eq!(
        (code, sale["status"].as_str()),
        (3, Some("reversed")),
        "{sale}"
    );
    assert!(
        sale["reversal"]["reason"].as_str().unwrap().contains("MAC"),
        "{sale}"
    );
    assert_eq!(count_ledger(&host).get("reversal reversed"), Some(&1));
}

#[test]
fn refusals_before_sending_are_errors_with_what_to_do() {
    let pki = Pki::new();
    let host = Acquirer::start(&pki, "cup", &[]);
    let t = pki.terminal(&host, "cup");
    let (code, e) = t.run(&["sale", "--amount", "1.00", "--card", CUP_OK]);
    assert_eq!(code, 1);
    assert_eq!(e["error"]["kind"], "not_signed_in", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sign in first")
    );
    t.ok(&["sign-in"]);
    let (code, e) = t.run(&[
        "sale",
        "--amount",
        "600.00",
        "--card",
        CUP_OK,
        "--confirm-above",
        "500",
    ]);
    assert_eq!(
        (code, e["error"]["kind"].as_str()),
        (1, Some("needs_confirmation")),
        "{e}"
    );
    let (code, e) = t.run(&["void", "--original", "000000000000"]);
    assert_eq!(
        (code, e["error"]["kind"].as_str()),
        (1, Some("original_not_found")),
        "{e}"
    );
    let (code, e) = t.run(&["sale", "--amount", "1.00", "--card", "6222088800000000011"]);
    assert_eq!(
        (code, e["error"]["kind"].as_str()),
        (1, Some("card")),
        "{e}"
    );
    drop(host);
    let (code, e) = t.run(&[
        "sale", "--amount", "1.00", "--card", CUP_OK, "--pin", CUP_PIN,
    ]);
    assert_eq!(
        (code, e["error"]["kind"].as_str()),
        (1, Some("host_unreachable")),
        "{e}"
    );
}

#[test]
fn no_secret_reaches_a_log() {
    let pki = Pki::new();
    let host = Acquirer::start(&pki, "cup", &[]);
    let t = pki.terminal(&host, "cup");
    let (_, _, stderr) = t.run_logged(&["-vv", "sign-in"]);
    assert!(
        stderr.contains("to host") || stderr.contains("DEBUG"),
        "debug logging is on: {stderr}"
    );
    let (_, out, stderr) = t.run_logged(&[
        "-vv", "sale", "--amount", "3.00", "--card", CUP_OK, "--pin", CUP_PIN,
    ]);
    let sale: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sale["approved"], true);
    for secret in [CUP_OK, CUP_PIN] {
        assert!(
            !stderr.contains(secret),
            "{secret} in tillctl's log:\n{stderr}"
        );
    }
    let acquirer_log = host.stop_and_stderr();
    assert!(!acquirer_log.contains(CUP_OK), "PAN in the acquirer's log");
}

#[test]
fn offline_approvals_wait_in_the_queue_and_reach_the_host_once() {
    let pki = Pki::new();
    let dialect = "cup";
    let mut host = Acquirer::start(&pki, dialect, &[]);
    let t = pki.terminal(&host, dialect).with_timeout("3");
    t.ok(&["sign-in"]);
    let offline = ["--offline-floor", "100.00", "--offline-total", "500.00"];
    let sale = |amount: &str, pin: bool| {
        let mut args = vec!["sale", "--amount", amount, "--card", CUP_OK];
        if pin {
            args.extend(["--pin", CUP_PIN]);
        }
        args.extend(offline);
        t.run(&args)
    };

    // The host goes away: a small sale is approved offline, with its own code.
    host.stop();
    let (code, off) = sale("50.00", false);
    assert_eq!(code, 0, "{off}");
    assert_eq!(
        (off["status"].as_str(), off["response_code"].as_str()),
        (Some("offline_approved"), Some("Y3")),
        "{off}"
    );
    assert_eq!(off["pan"], "622208*********0010");
    // Above the floor limit, or verified by PIN: refused, saying why.
    let (code, big) = sale("150.00", false);
    assert_eq!(code, 1, "{big}");
    assert_eq!(big["error"]["kind"], "offline_refused");
    assert!(
        big["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("floor limit") && m.contains("nothing was charged")),
        "{big}"
    );
    let (code, pin) = sale("5.00", true);
    assert_eq!(code, 1, "{pin}");
    assert!(
        pin["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("PIN must be approved online")),
        "{pin}"
    );

    // The queue and the journal show it; card numbers stay masked.
    let (code, status) = t.tool("saf", &["status"], false);
    assert_eq!(code, 0);
    let q = &status["queue"];
    assert_eq!(
        (
            q["depth"].as_u64(),
            q["advices"].as_u64(),
            q["offline_count"].as_u64(),
            q["offline_amount"].as_u64()
        ),
        (Some(1), Some(1), Some(1), Some(5000)),
        "{status}"
    );
    let (code, list) = t.tool("journal", &["list", "--status", "offline_approved"], false);
    assert_eq!(code, 0);
    let entries = list["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert!(!list.to_string().contains(CUP_OK), "{list}");
    let id = entries[0]["id"].to_string();
    let (code, shown) = t.tool("journal", &["show", &id], false);
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.to_string().contains(CUP_OK), "{shown}");
    let backup = pki.path().with_file_name("backup.tjl");
    let (code, exported) = t.tool("journal", &["export", backup.to_str().unwrap()], false);
    assert_eq!(code, 0, "{exported}");
    let bytes = std::fs::read(&backup).unwrap();
    assert!(
        !bytes.windows(CUP_OK.len()).any(|w| w == CUP_OK.as_bytes()),
        "the backup holds the card number in clear"
    );

    // The host comes back without the terminal's session: the advice stays
    // owed, and the operator is told to sign in.
    host.restart();
    let t = pki.terminal(&host, dialect).with_timeout("3");
    let (code, fwd) = t.tool("saf", &["forward", "--max-wait", "1"], true);
    assert_eq!(code, 3, "{fwd}");
    assert_eq!(fwd["queue"]["depth"], 1, "{fwd}");
    assert!(
        fwd["problem"]
            .as_str()
            .is_some_and(|p| p.contains("sign in again")),
        "{fwd}"
    );
    assert_eq!(count_ledger(&host).get("advice debit"), None);

    // Sign-in delivers it; forwarding again has nothing left to send.
    let signed = t.ok(&["sign-in"]);
    assert_eq!(signed["pending_sent"][0]["acknowledged"], true, "{signed}");
    let (code, fwd) = t.tool("saf", &["forward", "--max-wait", "1"], true);
    assert_eq!(code, 0, "{fwd}");
    assert_eq!(
        (fwd["delivered"].as_u64(), fwd["queue"]["depth"].as_u64()),
        (Some(0), Some(0)),
        "{fwd}"
    );
    let lines = count_ledger(&host);
    assert_eq!(lines.get("advice debit"), Some(&1), "{lines:?}");
    let (_, list) = t.tool("journal", &["list", "--status", "offline_approved"], false);
    assert_eq!(list["entries"].as_array().map(Vec::len), Some(0), "{list}");
    let balance = t.ok(&["balance", "--card", CUP_OK, "--pin", CUP_PIN]);
    assert_eq!(balance["balance"], "4950.00", "charged exactly once");
    assert_eq!(t.ok(&["settle"])["balanced"], true);
}

#[test]
fn a_damaged_journal_is_moved_aside_never_started_empty() {
    let pki = Pki::new();
    let dialect = "cup";
    let host = Acquirer::start(&pki, dialect, &[]);
    let t = pki.terminal(&host, dialect);
    t.ok(&["sign-in"]);
    let sale = t.ok(&[
        "sale", "--amount", "12.00", "--card", CUP_OK, "--pin", CUP_PIN,
    ]);
    assert_eq!(sale["approved"], true);
    let backup = pki.path().with_file_name("backup.tjl");
    let (code, _) = t.tool("journal", &["export", backup.to_str().unwrap()], false);
    assert_eq!(code, 0);

    // Damage the working journal's pages after the header, as a failing
    // SD card would.
    let db = t.state_dir().join("journal.db");
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 8192, "journal.db is {} bytes", bytes.len());
    for b in &mut bytes[4096..8192] {
        *b = 0xAB;
    }
    std::fs::write(&db, &bytes).unwrap();

    // No sale on top of it: a clear error, and the files moved aside as they were.
    let (code, refused) = t.run(&[
        "sale", "--amount", "1.00", "--card", CUP_OK, "--pin", CUP_PIN,
    ]);
    assert_ne!(code, 0, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("damaged")
            && message.contains("moved aside untouched")
            && message.contains("tillctl journal import"),
        "{refused}"
    );
    let aside: Vec<_> = std::fs::read_dir(t.state_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("journal.db.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read(t.state_dir().join(&aside[0])).unwrap(),
        bytes,
        "the damaged file is kept byte for byte"
    );
    // Asked again, it does not quietly start an empty journal.
    let (code, again) = t.tool("journal", &["list"], false);
    assert_ne!(code, 0, "{again}");
    assert!(
        again["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("found damaged earlier")),
        "{again}"
    );
    assert_eq!(count_ledger(&host).get("sale debit"), Some(&1));

    // The backup brings the history back.
    let (code, imported) = t.tool("journal", &["import", backup.to_str().unwrap()], false);
    assert_eq!(code, 0, "{imported}");
    let (code, list) = t.tool("journal", &["list"], false);
    assert_eq!(code, 0, "{list}");
    assert!(
        list["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["amount"] == 1200 && e["status"] == "approved"),
        "{list}"
    );
}
