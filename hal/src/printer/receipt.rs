//! The receipt layout: plain receipt data in, ESC/POS bytes out, for 58 mm
//! (32 columns) and 80 mm (48 columns) paper. No payment logic: the caller
//! formats the amount and masks the card number; as a last line of defence
//! the layout masks a card number that arrives with more than the first six
//! and last four digits showing.
//!
//! Labels are bilingual (Chinese, then English) as on the slips of Chinese
//! acquirers. A Chinese character takes two columns (printers print it
//! 24 dots wide in the 12×24 font).

use super::escpos::{Align, EscPos, QrEcc};
use super::{PaperWidth, Result};

/// Which copy of the receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copy {
    /// 持卡人存根 — the cardholder's.
    Customer,
    /// 商户存根 — the merchant's (for signing and keeping).
    Merchant,
}

/// The data printed on a transaction receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Merchant name, printed large at the top.
    pub merchant_name: String,
    /// Merchant id, if it is to be printed.
    pub merchant_id: Option<String>,
    /// Terminal id.
    pub terminal_id: String,
    /// Card number, masked (e.g. `621234******1234`).
    pub card_number: String,
    /// Transaction type as shown, e.g. `消费 SALE`.
    pub transaction_type: String,
    /// Amount as shown, with currency, e.g. `RMB 12.34`.
    pub amount: String,
    /// Date and time as shown, e.g. `2026-11-21 14:05:09`.
    pub date_time: String,
    /// Retrieval reference number.
    pub reference: String,
    /// Authorization code, if the host gave one.
    pub auth_code: Option<String>,
    /// Further label/value lines (batch, trace number, …).
    pub extra: Vec<(String, String)>,
    /// Which copy.
    pub copy: Copy,
    /// A QR code to print under the details (e.g. an e-receipt link).
    pub qr: Option<String>,
    /// Lines at the bottom (centred).
    pub footer: Vec<String>,
}

impl Receipt {
    /// A short title for queues and logs (no card data).
    pub fn title(&self) -> String {
        let copy = match self.copy {
            Copy::Customer => "customer copy",
            Copy::Merchant => "merchant copy",
        };
        format!("{} {} {}", self.transaction_type, self.reference, copy)
    }

    /// A sample receipt with Chinese and English text and a QR code (the
    /// test print and the documentation's example).
    pub fn sample() -> Receipt {
        Receipt {
            merchant_name: "Till 咖啡店 Coffee".into(),
            merchant_id: Some("898310048160001".into()),
            terminal_id: "TILL0001".into(),
            card_number: "621234******1234".into(),
            transaction_type: "消费 SALE".into(),
            amount: "RMB 12.34".into(),
            date_time: "2026-11-21 14:05:09".into(),
            reference: "231121000123".into(),
            auth_code: Some("A1B2C3".into()),
            extra: vec![("批次号 BATCH".into(), "000001".into())],
            copy: Copy::Customer,
            qr: Some("https://example.invalid/r/231121000123".into()),
            footer: vec!["打印测试 TEST PRINT".into(), "谢谢惠顾 THANK YOU".into()],
        }
    }
}

/// Columns `c` takes on paper: two for wide (CJK) characters.
pub fn char_columns(c: char) -> usize {
    if c.is_ascii() {
        1
    } else {
        let cp = c as u32;
        // Combining marks and zero-width characters take no column.
        if (0x0300..0x0370).contains(&cp) || (0x200B..0x2010).contains(&cp) {
            0
        } else if cp < 0x1100 {
            1
        } else {
            2
        }
    }
}

/// Columns a string takes.
pub fn text_columns(s: &str) -> usize {
    s.chars().map(char_columns).sum()
}

/// Splits `s` into pieces of at most `width` columns.
pub(crate) fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut used = 0;
    for c in s.chars() {
        let w = char_columns(c);
        if used + w > width && used > 0 {
            out.push(String::new());
            used = 0;
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
        used += w;
    }
    out
}

/// Masks all but the first six and last four digits of a card number that
/// shows more (a full PAN must never be printed).
pub fn mask_card_number(s: &str) -> String {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    if digits <= 10 {
        return s.to_string();
    }
    let mut seen = 0;
    s.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen > 6 && seen <= digits - 4 {
                    return '*';
                }
            }
            c
        })
        .collect()
}

/// A label and value: on one line when they fit (value flush right),
/// otherwise the label and then the value right-aligned below.
fn field(p: &mut EscPos, columns: usize, label: &str, value: &str) {
    let (lw, vw) = (text_columns(label), text_columns(value));
    if lw + 1 + vw <= columns {
        let gap = " ".repeat(columns - lw - vw);
        p.line(&format!("{label}{gap}{value}"));
    } else {
        p.line(label);
        p.align(Align::Right);
        for piece in wrap(value, columns) {
            p.line(&piece);
        }
        p.align(Align::Left);
    }
}

/// Lays out `receipt` for `width` paper.
pub fn layout(receipt: &Receipt, width: PaperWidth) -> Result<Vec<u8>> {
    let columns = width.columns();
    let rule = "-".repeat(columns);
    let mut p = EscPos::new();
    p.chinese(true);

    p.align(Align::Center).bold(true).size(1, 2);
    for piece in wrap(&receipt.merchant_name, columns) {
        p.line(&piece);
    }
    p.size(1, 1).bold(false);
    p.line("签购单 SALES SLIP");
    p.line(match receipt.copy {
        Copy::Customer => "持卡人存根 CUSTOMER COPY",
        Copy::Merchant => "商户存根 MERCHANT COPY",
    });
    p.align(Align::Left).line(&rule);

    if let Some(mid) = &receipt.merchant_id {
        field(&mut p, columns, "商户编号 MERCHANT NO", mid);
    }
    field(
        &mut p,
        columns,
        "终端编号 TERMINAL ID",
        &receipt.terminal_id,
    );
    field(
        &mut p,
        columns,
        "卡号 CARD NO",
        &mask_card_number(&receipt.card_number),
    );
    field(
        &mut p,
        columns,
        "交易类型 TXN TYPE",
        &receipt.transaction_type,
    );
    field(&mut p, columns, "日期时间 DATE/TIME", &receipt.date_time);
    field(&mut p, columns, "参考号 REF NO", &receipt.reference);
    if let Some(auth) = &receipt.auth_code {
        field(&mut p, columns, "授权码 AUTH CODE", auth);
    }
    for (label, value) in &receipt.extra {
        field(&mut p, columns, label, value);
    }
    p.line(&rule);

    // The amount in double width and height: half the columns.
    p.line("金额 AMOUNT");
    p.align(Align::Right).bold(true).size(2, 2);
    for piece in wrap(&receipt.amount, columns / 2) {
        p.line(&piece);
    }
    p.size(1, 1).bold(false).align(Align::Left);
    p.line(&rule);

    if receipt.copy == Copy::Merchant {
        p.line("持卡人签名 CARDHOLDER SIGNATURE");
        p.feed(2);
        p.line(&rule);
    }
    if let Some(qr) = &receipt.qr {
        let module = if width == PaperWidth::Mm58 { 5 } else { 6 };
        p.align(Align::Center);
        p.qr(qr.as_bytes(), module, QrEcc::M)?;
        p.line("");
    }
    p.align(Align::Center);
    for line in &receipt.footer {
        for piece in wrap(line, columns) {
            p.line(&piece);
        }
    }
    p.align(Align::Left).feed(2).cut();
    Ok(p.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_card_numbers_are_masked_masked_ones_left_alone() {
        assert_eq!(mask_card_number("6212345678901234"), "621234******1234");
        assert_eq!(
            mask_card_number("6212 3456 7890 1234"),
            "6212 34** **** 1234"
        );
        assert_eq!(mask_card_number("621234******1234"), "621234******1234");
    }

    #[test]
    fn wide_characters_take_two_columns() {
        assert_eq!(text_columns("卡号 CARD"), 9);
        assert_eq!(wrap("咖啡咖啡", 5), vec!["咖啡", "咖啡"]);
    }
}
