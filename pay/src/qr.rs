//! Wallet payment codes (付款码): the one-time code a customer's wallet app
//! shows as a QR code or barcode, scanned by the terminal and sent to the
//! host in place of a card (customer-presented, "C2B" payments).
//!
//! A payment code is a bearer token: whoever has it can pay with it until
//! the wallet expires it (about a minute) or it is used. So it is held in a
//! zeroizing buffer, shown and logged only masked, never journaled, and
//! cleared from every reversal or queued message.
//!
//! Which wallet issued a code is told by its length and first two digits:
//!
//! | wallet | length | prefix |
//! |---|---|---|
//! | WeChat Pay | 18 | 10–15 |
//! | Alipay | 16–24 | 25–30 |
//! | UnionPay QuickPass (云闪付) | 19 | 62 |
//!
//! Anything else is refused: a code is never guessed.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Which wallet issued a payment code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wallet {
    /// WeChat Pay (微信支付): 18 digits starting 10–15.
    WechatPay,
    /// Alipay (支付宝): 16–24 digits starting 25–30.
    Alipay,
    /// UnionPay QuickPass (云闪付): 19 digits starting 62.
    UnionPay,
}

impl Wallet {
    /// Every wallet.
    pub const ALL: [Wallet; 3] = [Wallet::WechatPay, Wallet::Alipay, Wallet::UnionPay];

    /// The wallet's id in files (the journal, the acquirer's card file):
    /// `wechat-pay`, `alipay`, `union-pay`, as serde writes it too.
    pub fn id(self) -> &'static str {
        match self {
            Wallet::WechatPay => "wechat-pay",
            Wallet::Alipay => "alipay",
            Wallet::UnionPay => "union-pay",
        }
    }

    /// The wallet with this [`Wallet::id`].
    pub fn from_id(id: &str) -> Option<Wallet> {
        Wallet::ALL.into_iter().find(|w| w.id() == id)
    }

    /// The wallet's name in English.
    pub fn name(self) -> &'static str {
        match self {
            Wallet::WechatPay => "WeChat Pay",
            Wallet::Alipay => "Alipay",
            Wallet::UnionPay => "UnionPay QuickPass",
        }
    }

    /// The wallet's name in Simplified Chinese.
    pub fn name_zh(self) -> &'static str {
        match self {
            Wallet::WechatPay => "微信支付",
            Wallet::Alipay => "支付宝",
            Wallet::UnionPay => "云闪付",
        }
    }

    /// The wallet a code of these digits belongs to, by length and prefix.
    pub fn of(digits: &str) -> Option<Wallet> {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let prefix: u32 = digits.get(..2)?.parse().ok()?;
        match (digits.len(), prefix) {
            (18, 10..=15) => Some(Wallet::WechatPay),
            (16..=24, 25..=30) => Some(Wallet::Alipay),
            (19, 62) => Some(Wallet::UnionPay),
            _ => None,
        }
    }
}

impl fmt::Display for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a scan is not a payment code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    /// Something other than digits.
    #[error("a payment code is digits only; this scan is not one")]
    NotDigits,
    /// Digits that no wallet issues.
    #[error(
        "{len} digits starting {prefix} is no wallet's payment code (WeChat Pay, Alipay or UnionPay QuickPass)"
    )]
    UnknownWallet {
        /// How many digits.
        len: usize,
        /// The first two.
        prefix: String,
    },
}

/// A wallet payment code. Its `Debug` and `Display` show it masked.
#[derive(Clone, PartialEq, Eq)]
pub struct PaymentCode {
    wallet: Wallet,
    digits: Zeroizing<String>,
}

impl PaymentCode {
    /// A payment code from the scanned digits (surrounding whitespace is
    /// ignored), checked against the wallets' length and prefix rules.
    pub fn parse(scan: &str) -> Result<PaymentCode, QrError> {
        let digits = scan.trim();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(QrError::NotDigits);
        }
        let wallet = Wallet::of(digits).ok_or_else(|| QrError::UnknownWallet {
            len: digits.len(),
            prefix: digits.chars().take(2).collect(),
        })?;
        Ok(PaymentCode {
            wallet,
            digits: Zeroizing::new(digits.to_string()),
        })
    }

    /// The wallet that issued it.
    pub fn wallet(&self) -> Wallet {
        self.wallet
    }

    /// The digits, for the request to the host only.
    pub fn expose(&self) -> &str {
        &self.digits
    }

    /// The last four digits, for search and receipts.
    pub fn last4(&self) -> &str {
        &self.digits[self.digits.len() - 4..]
    }

    /// Masked for display: the wallet's two-digit prefix and the last four
    /// digits, the rest as `*`.
    pub fn masked(&self) -> String {
        mask_code(&self.digits)
    }
}

/// A payment code masked: the first two and last four digits shown.
pub fn mask_code(code: &str) -> String {
    crate::card::mask_middle(code, 2, 4, 8)
}

impl fmt::Debug for PaymentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentCode({}, {})", self.wallet.name(), self.masked())
    }
}

impl fmt::Display for PaymentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wallets_by_length_and_prefix() {
        let w = |s: &str| PaymentCode::parse(s).map(|c| c.wallet());
        assert_eq!(w("134567890123456789"), Ok(Wallet::WechatPay));
        assert_eq!(w(" 284567890123456789\r\n"), Ok(Wallet::Alipay));
        assert_eq!(w("2845678901234567"), Ok(Wallet::Alipay));
        assert_eq!(w("284567890123456789012345"), Ok(Wallet::Alipay));
        assert_eq!(w("6212345678901234567"), Ok(Wallet::UnionPay));
        // WeChat's prefix at Alipay's length, UnionPay's prefix at 18.
        assert!(matches!(
            w("1345678901234567890"),
            Err(QrError::UnknownWallet { len: 19, .. })
        ));
        assert!(matches!(
            w("621234567890123456"),
            Err(QrError::UnknownWallet { .. })
        ));
        assert!(matches!(
            w("094567890123456789"),
            Err(QrError::UnknownWallet { .. })
        ));
        assert_eq!(w("2845678901234567890123456").ok(), None);
        assert_eq!(w(";6222=4912?"), Err(QrError::NotDigits));
        assert_eq!(w(""), Err(QrError::NotDigits));
        assert_eq!(w("13456789012345678a"), Err(QrError::NotDigits));
    }

    #[test]
    fn ids_are_what_serde_writes() {
        for w in Wallet::ALL {
            assert_eq!(
                serde_json::to_string(&w).unwrap(),
                format!("\"{}\"", w.id())
            );
            assert_eq!(Wallet::from_id(w.id()), Some(w));
        }
        assert_eq!(Wallet::from_id("paypal"), None);
    }

    #[test]
    fn shown_only_masked() {
        let c = PaymentCode::parse("134567890123456789").unwrap();
        assert_eq!(c.masked(), "13************6789");
        assert_eq!(format!("{c}"), "13************6789");
        let debug = format!("{c:?}");
        assert!(!debug.contains("134567890123456789"), "{debug}");
        assert!(debug.contains("WeChat Pay"));
        assert_eq!(c.last4(), "6789");
        assert_eq!(c.expose(), "134567890123456789");
    }

    proptest::proptest! {
        /// Whatever a scanner types: a clear error or a code of the wallet
        /// its digits say, never a panic; shown masked it keeps no more
        /// than six of its digits.
        #[test]
        fn any_scan_parses_or_says_why(line in "[0-9]{0,30}|\\PC{0,40}") {
            match PaymentCode::parse(&line) {
                Ok(c) => {
                    proptest::prop_assert_eq!(Wallet::of(c.expose()), Some(c.wallet()));
                    let shown = c.masked().chars().filter(char::is_ascii_digit).count();
                    proptest::prop_assert!(shown <= 6);
                }
                Err(e) => proptest::prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
