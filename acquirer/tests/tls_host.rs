//! The host over mutual TLS on 127.0.0.1, seen from a terminal's side:
//! sign-in and sale in each dialect, identity checks, every fault action
//! with its limits, the fault control file changing under a running host,
//! and the ledger.

mod support;

use std::time::Instant;

use support::*;
use till_pay::iso8583::Outcome;
use till_pay::link::LinkError;
use till_pay::security::MacCheck;

#[tokio::test]
async fn sign_in_and_sale_in_each_dialect() {
    let pki = issue_pki();
    for dialect in ["cup", "iso87ascii"] {
        let ledger = pki.path(&format!("{dialect}.jsonl"));
        let host = start_host(&pki, dialect, |c| c.ledger = Some(ledger.clone())).await;
        assert_eq!(host.dialect_name(), dialect);
        assert!(host.local_addr().ip().is_loopback());
        let mut client = Client::till1(&pki, &host);
        let approved = client
            .dialect
            .profile
            .code_for(Outcome::Approved)
            .to_string();
        assert_eq!(client.sign_in().await, approved, "{dialect}");
        let (answer, mac) = client
            .sale(CUP_OK, 1234, "123456", PATIENCE)
            .await
            .expect("an answer");
        assert_eq!(client.code(&answer), approved, "{dialect}");
        assert_eq!(mac, MacCheck::Valid, "{dialect}");
        assert_eq!(
            client.dialect.get_text(&answer, "rrn").map(str::len),
            Some(12)
        );
        // The same connection carries the next request.
        assert!(client.link.is_connected());
        let (answer, _) = client.sale(VISA_OK, 100, "9999", PATIENCE).await.unwrap();
        assert_eq!(
            client.code(&answer),
            client.dialect.profile.code_for(Outcome::IncorrectPin)
        );
        let balance = host.inspect(|h| h.account("cup-ok").unwrap().balance.0);
        assert_eq!(balance, 500_000 - 1234);
        host.shutdown().await;
        let lines = ledger_lines(&ledger);
        let kinds: Vec<_> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["sign_in", "sale", "sale"], "{dialect}");
        assert_eq!(lines[1]["effect"], "debit");
        assert_eq!(lines[1]["card"], "cup-ok");
        assert_eq!(lines[1]["amount"], 1234);
        assert_eq!(lines[1]["peer_cn"], "TILL0001");
        assert_eq!(lines[1]["request"]["fields"]["2"], "622208*********0010");
        assert!(lines[1]["fault"].is_null());
        assert!(lines[0]["answer"]["fields"].is_object());
    }
}

#[tokio::test]
async fn a_terminal_id_other_than_the_certificate_is_unknown() {
    let pki = issue_pki();
    let host = start_host(&pki, "cup", |_| {}).await;
    // TILL0002's certificate, TILL0001's terminal id.
    let mut client = Client::new(&pki, &host, "TILL0002", "TILL0001");
    assert_eq!(
        client.sign_in().await,
        client.dialect.profile.code_for(Outcome::UnknownTerminal)
    );
    assert!(!host.inspect(|h| h.is_signed_in("TILL0001")));
    // With its own id it is welcome.
    let mut client = Client::new(&pki, &host, "TILL0002", "TILL0002");
    assert_eq!(client.sign_in().await, "00");
}

#[tokio::test]
async fn drop_processes_and_keeps_the_connection_silent() {
    let pki = issue_pki();
    let ledger = pki.path("ledger.jsonl");
    let host = start_host(&pki, "cup", |c| {
        c.ledger = Some(ledger.clone());
        c.faults = vec!["drop:sale#2".parse().unwrap()];
    })
    .await;
    let mut client = Client::till1(&pki, &host);
    client.sign_in().await;
    // Seen through TlsLink: no answer.
    let e = client.sale(CUP_OK, 100, "123456", SHORT).await.unwrap_err();
    assert!(matches!(e, LinkError::NoAnswer { .. }), "{e}");
    processed(&host, 2).await;
    assert_eq!(
        host.inspect(|h| h.account("cup-ok").unwrap().balance.0),
        500_000 - 100,
        "a dropped request is processed"
    );
    // On a raw connection: the dropped request's connection stays usable.
    let mut raw = client.raw(&pki, &host).await;
    let mut dropped = client.sale_request(CUP_OK, 200, "123456");
    raw.send(&client.seal(&mut dropped)).await;
    let mut next = client.sale_request(CUP_OK, 300, "123456");
    raw.send(&client.seal(&mut next)).await;
    let answer = raw.receive().await.expect("the next request is answered");
    let answer = client.dialect.decode(&answer).unwrap();
    assert_eq!(
        client.dialect.get_text(&answer, "stan"),
        client.dialect.get_text(&next, "stan"),
        "the answer is the second request's"
    );
    assert_eq!(
        host.inspect(|h| h.account("cup-ok").unwrap().balance.0),
        500_000 - 600
    );
    let faults: Vec<_> = ledger_lines(&ledger)
        .iter()
        .map(|l| l["fault"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        faults,
        [None, Some("drop".into()), Some("drop".into()), None]
    );
}

#[tokio::test]
async fn close_processes_and_closes() {
    let pki = issue_pki();
    let host = start_host(&pki, "iso87ascii", |c| {
        c.faults = vec!["close:sale".parse().unwrap()];
    })
    .await;
    let mut client = Client::till1(&pki, &host);
    client.sign_in().await;
    let e = client
        .sale(CUP_OK, 100, "123456", PATIENCE)
        .await
        .unwrap_err();
    assert!(matches!(e, LinkError::Closed { .. }), "{e}");
    processed(&host, 2).await;
    assert_eq!(
        host.inspect(|h| h.account("cup-ok").unwrap().balance.0),
        500_000 - 100
    );
}

#[tokio::test]
async fn delay_answers_late() {
    let pki = issue_pki();
    let host = start_host(&pki, "cup", |c| {
        c.faults = vec!["delay=400:sale".parse().unwrap()];
    })
    .await;
    let mut client = Client::till1(&pki, &host);
    client.sign_in().await;
    let started = Instant::now();
    let (answer, mac) = client.sale(CUP_OK, 100, "123456", PATIENCE).await.unwrap();
    assert!(
        started.elapsed().as_millis() >= 400,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        (client.code(&answer).as_str(), mac),
        ("00", MacCheck::Valid)
    );
    // A terminal that waits less gets no answer.
    let e = client.sale(CUP_OK, 100, "123456", SHORT).await.unwrap_err();
    assert!(matches!(e, LinkError::NoAnswer { .. }), "{e}");
}

#[tokio::test]
async fn corrupt_mac_answers_with_a_mac_that_does_not_verify() {
    let pki = issue_pki();
    let ledger = pki.path("ledger.jsonl");
    let host = start_host(&pki, "iso87ascii", |c| {
        c.ledger = Some(ledger.clone());
        c.faults = vec!["corrupt-mac:sale#1".parse().unwrap()];
    })
    .await;
    let mut client = Client::till1(&pki, &host);
    client.sign_in().await;
    let (answer, mac) = client.sale(CUP_OK, 100, "123456", PATIENCE).await.unwrap();
    assert_eq!(mac, MacCheck::Invalid);
    assert_eq!(client.code(&answer), "00", "processed and approved");
    let (_, mac) = client.sale(CUP_OK, 100, "123456", PATIENCE).await.unwrap();
    assert_eq!(mac, MacCheck::Valid, "count 1");
    let lines = ledger_lines(&ledger);
    assert_eq!(lines[1]["fault"], "corrupt-mac");
}

#[tokio::test]
async fn ignore_neither_processes_nor_answers() {
    let pki = issue_pki();
    let ledger = pki.path("ledger.jsonl");
    let host = start_host(&pki, "cup", |c| {
        c.ledger = Some(ledger.clone());
        c.faults = vec!["ignore:sale#1".parse().unwrap()];
    })
    .await;
    let mut client = Client::till1(&pki, &host);
    client.sign_in().await;
    let e = client.sale(CUP_OK, 100, "123456", SHORT).await.unwrap_err();
    assert!(matches!(e, LinkError::NoAnswer { .. }), "{e}");
    let (answer, _) = client.sale(CUP_OK, 250, "123456", PATIENCE).await.unwrap();
    assert_eq!(client.code(&answer), "00");
    assert_eq!(*host.processed().borrow(), 2, "sign-in and the second sale");
    assert_eq!(
        host.inspect(|h| h.account("cup-ok").unwrap().balance.0),
        500_000 - 250
    );
    let amounts: Vec<_> = ledger_lines(&ledger)
        .iter()
        .map(|l| l["amount"].as_u64())
        .collect();
    assert_eq!(amounts, [None, Some(250)], "no line for the ignored sale");
}

#[tokio::test]
async fn count_and_after_limit_a_rule() {
    let pki = issue_pki();
    let ledger = pki.path("ledger.jsonl");
    let host = start_host(&pki, "cup", |c| {
        c.ledger = Some(ledger.clone());
        c.faults = vec!["close:sale+1#1".parse().unwrap()];
    })
    .await;
    let mut client = Client::till1(&pki, &host);
    client.sign_in().await;
    assert!(client.sale(CUP_OK, 1, "123456", PATIENCE).await.is_ok());
    let e = client
        .sale(CUP_OK, 2, "123456", PATIENCE)
        .await
        .unwrap_err();
    assert!(matches!(e, LinkError::Closed { .. }), "{e}");
    assert!(client.sale(CUP_OK, 3, "123456", PATIENCE).await.is_ok());
    assert!(client.sale(CUP_OK, 4, "123456", PATIENCE).await.is_ok());
    let faults: Vec<_> = ledger_lines(&ledger)
        .iter()
        .map(|l| l["fault"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(faults, [None, None, Some("close".into()), None, None]);
}

#[tokio::test]
async fn the_fault_file_is_followed_while_the_host_runs() {
    let pki = issue_pki();
    let file = pki.path("faults.toml");
    std::fs::write(&file, "# no faults yet\n").unwrap();
    let host = start_host(&pki, "iso87ascii", |c| c.fault_file = Some(file.clone())).await;
    let mut client = Client::till1(&pki, &host);
    client.sign_in().await;
    assert!(client.sale(CUP_OK, 1, "123456", PATIENCE).await.is_ok());
    std::fs::write(&file, "[[fault]]\naction = \"close\"\nkind = \"sale\"\n").unwrap();
    let e = client
        .sale(CUP_OK, 2, "123456", PATIENCE)
        .await
        .unwrap_err();
    assert!(matches!(e, LinkError::Closed { .. }), "{e}");
    std::fs::write(
        &file,
        "[[fault]]\naction = \"corrupt-mac\"\nkind = \"any\"\ncount = 1\n",
    )
    .unwrap();
    let (_, mac) = client.sale(CUP_OK, 3, "123456", PATIENCE).await.unwrap();
    assert_eq!(mac, MacCheck::Invalid);
    std::fs::write(&file, "").unwrap();
    let (_, mac) = client.sale(CUP_OK, 4, "123456", PATIENCE).await.unwrap();
    assert_eq!(mac, MacCheck::Valid);
}

#[tokio::test]
async fn garbage_gets_a_format_error_or_a_closed_connection() {
    let pki = issue_pki();
    let host = start_host(&pki, "iso87ascii", |_| {}).await;
    let client = Client::till1(&pki, &host);
    let mut raw = client.raw(&pki, &host).await;
    raw.send(b"0200ZZZZ").await;
    let answer = raw.receive().await.expect("a format error");
    let answer = client.dialect.decode(&answer).unwrap();
    assert_eq!(answer.mti(), "0210");
    assert_eq!(client.code(&answer), "30");
    raw.send(b"\xff\xfe").await;
    assert_eq!(raw.receive().await, None, "unreadable: closed");
    // The host still serves others.
    let mut client = Client::till1(&pki, &host);
    assert_eq!(client.sign_in().await, "00");
}
