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
