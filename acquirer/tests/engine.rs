//! Till's own terminal engine (`till_pay::engine::Terminal`) against the
//! host over mutual TLS, in both dialects: the two sides of
//! `docs/host-protocol.md` must agree on every flow, including a lost
//! answer that the engine reverses and the host undoes once.

mod support;

use std::time::Duration;

use support::*;
use till_pay::card::{Expiry, Pan};
use till_pay::crypto::Pin;
use till_pay::engine::{CardInput, MemoryStore, Terminal, TerminalConfig, TxnRequest};
use till_pay::iso8583::{Dialect, TxnKind};
use till_pay::link::TlsLink;
use till_pay::money::{Amount, Currency};

fn card(pan: &str) -> CardInput {
    CardInput::manual(
        Pan::new(pan).unwrap(),
        Some(Expiry::parse_yymm("4912").unwrap()),
    )
}

fn with_card(kind: TxnKind, pan: &str, minor: Option<u64>, pin: &str) -> TxnRequest {
    let mut r = TxnRequest::new(kind);
    r.card = Some(card(pan));
    r.amount = minor.map(Amount);
    r.pin = Some(Pin::new(pin).unwrap());
    r
}

fn referring(kind: TxnKind, rrn: &Option<String>, minor: Option<u64>) -> TxnRequest {
    let mut r = TxnRequest::new(kind);
    r.original_rrn = rrn.clone();
    r.amount = minor.map(Amount);
    r
}

#[tokio::test]
async fn the_terminal_engine_and_the_host_agree() {
    for dialect in ["cup", "iso87ascii"] {
        let pki = issue_pki();
        let ledger = pki.path("ledger.jsonl");
        // The second sale's answer is lost: the engine must reverse it.
        let host = start_host(&pki, dialect, |c| {
            c.ledger = Some(ledger.clone());
            c.faults = vec!["drop:sale+1#1".parse().unwrap()];
        })
        .await;
        let files = pki.terminal("TILL0001");
        let d = Dialect::load(dialect).unwrap();
        let addr = host.local_addr().to_string();
        let link = TlsLink::new(addr.clone(), files.client_config().unwrap(), framing_of(&d))
            .unwrap()
            .with_connect_timeout(PATIENCE);
        let mut config = TerminalConfig::new("TILL0001", "898310048990001", Currency::CNY, &addr);
        // The dropped sale waits this long; everything else is answered at once.
        config.host_timeout = Duration::from_secs(1);
        let mut t = Terminal::new(
            d,
            config,
            link,
            MemoryStore::default(),
            &files.read_tmk().unwrap(),
            &files.read_datakey().unwrap(),
        )
        .unwrap();

        let s = t.sign_in().await.unwrap();
        assert!(s.approved, "{dialect}: {s:?}");
        assert_eq!(s.batch, "000001");

        let first = t
            .run(with_card(TxnKind::Sale, CUP_OK, Some(1000), "123456"))
            .await
            .unwrap();
        assert!(first.approved, "{dialect}: {first:?}");
        let lost = t
            .run(with_card(TxnKind::Sale, CUP_OK, Some(2000), "123456"))
            .await
            .unwrap();
        assert!(!lost.approved, "{dialect}: {lost:?}");
        let reversal = lost.reversal.expect("the engine reversed the lost sale");
        assert!(reversal.acknowledged, "{dialect}: {reversal:?}");

        let void = t
            .run(referring(TxnKind::Void, &first.rrn, None))
            .await
            .unwrap();
        assert!(void.approved, "{dialect}: {void:?}");

        let sale = t
            .run(with_card(TxnKind::Sale, VISA_OK, Some(3000), "1234"))
            .await
            .unwrap();
        assert!(sale.approved, "{dialect}: {sale:?}");
        let refund = t
            .run(referring(TxnKind::Refund, &sale.rrn, Some(1000)))
            .await
            .unwrap();
        assert!(refund.approved, "{dialect}: {refund:?}");

        let balance = t
            .run(with_card(TxnKind::Balance, VISA_OK, None, "1234"))
            .await
            .unwrap();
        assert_eq!(
            balance.balance.as_deref(),
            Some("1980.00"),
            "{dialect}: {balance:?}"
        );

        let hold = t
            .run(with_card(
                TxnKind::Preauth,
                "5200000000000015",
                Some(5000),
                "4321",
            ))
            .await
            .unwrap();
        assert!(hold.approved, "{dialect}: {hold:?}");
        let done = t
            .run(referring(TxnKind::Completion, &hold.rrn, Some(5500)))
            .await
            .unwrap();
        assert!(done.approved, "{dialect}: {done:?}");

        let wrong = t
            .run(with_card(TxnKind::Sale, CUP_OK, Some(100), "000000"))
            .await
            .unwrap();
        assert_eq!(wrong.response_code.as_deref(), Some("55"), "{dialect}");

        let settled = t.settle().await.unwrap();
        assert!(settled.balanced, "{dialect}: {settled:?}");
        assert_eq!(settled.next_batch, "000002");

        host.inspect(|h| {
            let balance = |card: &str| h.account(card).unwrap().balance.0;
            assert_eq!(balance("cup-ok"), 500_000, "{dialect}: voided and reversed");
            assert_eq!(balance("visa-ok"), 200_000 - 3000 + 1000);
            assert_eq!(balance("mc-ok"), 300_000 - 5500);
            assert_eq!(h.account("mc-ok").unwrap().held, Amount(0));
            assert_eq!(h.open_batch("TILL0001"), Some(2));
        });
        let lines = ledger_lines(&ledger);
        assert!(
            lines
                .iter()
                .any(|l| l["kind"] == "reversal" && l["effect"] == "reversed"),
            "{dialect}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l["kind"] == "settlement" && l["effect"] == "batch-closed")
        );
    }
}
