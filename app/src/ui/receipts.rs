//! Receipts and the settlement report as the printer gets them: merchant,
//! terminal, masked card number, amount, date and time, reference,
//! authorization code and type (MISSION §4), in Chinese and English.

use till_hal::printer::receipt::{Copy, Receipt, mask_card_number};
use till_pay::engine::{Entry, SettlementOutcome, TxnOutcome};
use till_pay::iso8583::TxnKind;
use till_pay::money::{Amount, Currency};
use till_pay::qr::Wallet;

use super::settings::Settings;

/// The printed name of a transaction type.
pub fn type_name(kind: TxnKind) -> &'static str {
    match kind {
        TxnKind::Sale => "消费 SALE",
        TxnKind::Void => "消费撤销 VOID",
        TxnKind::Refund => "退货 REFUND",
        TxnKind::Balance => "余额查询 BALANCE",
        TxnKind::Preauth => "预授权 PRE-AUTH",
        TxnKind::Completion => "预授权完成 AUTH COMPLETE",
        TxnKind::PreauthVoid => "预授权撤销 PRE-AUTH VOID",
        TxnKind::CompletionVoid => "完成撤销 COMPLETE VOID",
        TxnKind::Advice => "脱机消费 OFFLINE SALE",
        _ => "交易 TRANSACTION",
    }
}

fn footer(copy: Copy, reprint: bool) -> Vec<String> {
    let mut f = Vec::new();
    if reprint {
        f.push("重打印凭证 DUPLICATE".to_string());
    }
    match copy {
        Copy::Merchant => {
            f.push("持卡人签名 CARDHOLDER SIGNATURE".into());
            f.push(" ".into());
            f.push("本人确认以上交易 I ACKNOWLEDGE SATISFACTORY RECEIPT".into());
        }
        Copy::Customer => f.push("谢谢惠顾 THANK YOU".into()),
    }
    f
}

/// The receipt of a transaction that just ran.
pub fn for_outcome(
    o: &TxnOutcome,
    settings: &Settings,
    terminal_id: &str,
    operator: &str,
    copy: Copy,
) -> Receipt {
    let currency = settings.currency();
    Receipt {
        merchant_name: settings.merchant_name.clone(),
        merchant_id: Some(settings.merchant_id.clone()),
        terminal_id: terminal_id.to_string(),
        card_number: o.pan.as_deref().map(mask_card_number).unwrap_or_default(),
        transaction_type: type_name(o.kind).to_string(),
        amount: o
            .amount
            .as_deref()
            .map(|a| format!("{} {a}", currency.alpha))
            .unwrap_or_default(),
        date_time: chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        reference: o.rrn.clone().unwrap_or_default(),
        auth_code: o.auth_code.clone(),
        extra: paid_by(o.wallet)
            .into_iter()
            .chain([
                ("批次号 BATCH".into(), o.batch.clone()),
                ("凭证号 TRACE".into(), o.stan.clone()),
                ("操作员 OPERATOR".into(), operator.to_string()),
            ])
            .chain(
                o.original_rrn
                    .clone()
                    .map(|r| ("原参考号 ORIG REF".to_string(), r)),
            )
            .collect(),
        copy,
        qr: None,
        footer: footer(copy, false),
    }
}

/// A copy of a journal entry's receipt, marked as a duplicate.
pub fn for_entry(e: &Entry, settings: &Settings, terminal_id: &str) -> Receipt {
    let currency = currency_of(e, settings);
    Receipt {
        merchant_name: settings.merchant_name.clone(),
        merchant_id: Some(settings.merchant_id.clone()),
        terminal_id: terminal_id.to_string(),
        card_number: e.pan_masked.clone().unwrap_or_default(),
        transaction_type: type_name(e.kind).to_string(),
        amount: e
            .amount
            .map(|a| format!("{} {}", currency.alpha, Amount(a).display(currency)))
            .unwrap_or_default(),
        date_time: e.at.replace('T', " ").chars().take(19).collect(),
        reference: e.rrn.clone().unwrap_or_default(),
        auth_code: e.auth_code.clone(),
        extra: paid_by(e.wallet)
            .into_iter()
            .chain([
                ("批次号 BATCH".into(), format!("{:06}", e.batch)),
                ("凭证号 TRACE".into(), format!("{:06}", e.stan)),
            ])
            .collect(),
        copy: Copy::Customer,
        qr: None,
        footer: footer(Copy::Customer, true),
    }
}

/// The wallet line of a QR code payment's receipt (its card number line
/// shows the masked payment code).
fn paid_by(wallet: Option<Wallet>) -> Option<(String, String)> {
    wallet.map(|w| {
        (
            "付款方式 PAID BY".to_string(),
            format!("{} {}", w.name_zh(), w.name()),
        )
    })
}

fn currency_of(e: &Entry, settings: &Settings) -> Currency {
    Currency::find(&e.currency.to_string()).unwrap_or_else(|| settings.currency())
}

/// The settlement report.
pub fn settlement(o: &SettlementOutcome, settings: &Settings, terminal_id: &str) -> Receipt {
    let c = settings.currency().alpha;
    Receipt {
        merchant_name: settings.merchant_name.clone(),
        merchant_id: Some(settings.merchant_id.clone()),
        terminal_id: terminal_id.to_string(),
        card_number: "-".into(),
        transaction_type: "结算总计单 SETTLEMENT".into(),
        amount: format!("{c} {}", o.debit_amount),
        date_time: chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        reference: format!("批次 BATCH {}", o.batch),
        auth_code: None,
        extra: vec![
            ("消费笔数 SALES".into(), o.totals.debit_count.to_string()),
            (
                "消费金额 SALES AMT".into(),
                format!("{c} {}", o.debit_amount),
            ),
            ("退货笔数 REFUNDS".into(), o.totals.credit_count.to_string()),
            (
                "退货金额 REFUND AMT".into(),
                format!("{c} {}", o.credit_amount),
            ),
            (
                "对账 RECONCILED".into(),
                if o.balanced {
                    "平 BALANCED"
                } else {
                    "不平 UPLOADED"
                }
                .into(),
            ),
            ("新批次 NEW BATCH".into(), o.next_batch.clone()),
        ],
        copy: Copy::Merchant,
        qr: None,
        footer: vec!["结算完成 SETTLEMENT DONE".into()],
    }
}
