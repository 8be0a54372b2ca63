//! Amounts in minor units and the currencies a terminal can be set to.
//!
//! Amounts are whole numbers of the currency's minor unit (fen, cents), as
//! ISO 8583 carries them in field 4; there is no floating point anywhere.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    /// Three-letter code, e.g. `CNY`.
    pub alpha: &'static str,
    /// Numeric code as carried in field 49, e.g. 156.
    pub numeric: u16,
    /// Digits after the decimal point.
    pub exponent: u8,
}

const CURRENCIES: &[Currency] = &[
    Currency {
        alpha: "CNY",
        numeric: 156,
        exponent: 2,
    },
    Currency {
        alpha: "HKD",
        numeric: 344,
        exponent: 2,
    },
    Currency {
        alpha: "USD",
        numeric: 840,
        exponent: 2,
    },
    Currency {
        alpha: "EUR",
        numeric: 978,
        exponent: 2,
    },
    Currency {
        alpha: "GBP",
        numeric: 826,
        exponent: 2,
    },
    Currency {
        alpha: "JPY",
        numeric: 392,
        exponent: 0,
    },
    Currency {
        alpha: "KRW",
        numeric: 410,
        exponent: 0,
    },
    Currency {
        alpha: "SGD",
        numeric: 702,
        exponent: 2,
    },
    Currency {
        alpha: "KWD",
        numeric: 414,
        exponent: 3,
    },
];

impl Currency {
    /// Chinese yuan, the default for a terminal.
    pub const CNY: Currency = CURRENCIES[0];

    /// Looks a currency up by its alphabetic or numeric code (`"CNY"`, `"156"`).
    ///
    /// ```
    /// use till_pay::money::Currency;
    /// assert_eq!(Currency::find("156").unwrap().alpha, "CNY");
    /// assert_eq!(Currency::find("usd").unwrap().numeric, 840);
    /// ```
    pub fn find(code: &str) -> Option<Currency> {
        let code = code.trim();
        CURRENCIES.iter().copied().find(|c| {
            c.alpha.eq_ignore_ascii_case(code) || code.parse::<u16>().is_ok_and(|n| n == c.numeric)
        })
    }

    /// The numeric code as the three digits field 49 carries.
    pub fn numeric_code(&self) -> String {
        format!("{:03}", self.numeric)
    }
}

/// A non-negative amount in minor units of some currency.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Amount(pub u64);

/// Why an amount typed by a person could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount is empty; type an amount such as 12.34")]
    Empty,
    #[error("amount {0:?} is not a number; use digits and at most one decimal point, e.g. 12.34")]
    NotANumber(String),
    #[error("amount {input:?} has more than {exponent} decimal places for this currency")]
    TooManyDecimals { input: String, exponent: u8 },
    #[error("amount {0:?} is too large")]
    TooLarge(String),
}

/// The largest amount ISO 8583 field 4 (n12) can carry.
pub const MAX_FIELD4: u64 = 999_999_999_999;

impl Amount {
    /// Parses a decimal amount such as `12.34` in the given currency.
    ///
    /// ```
    /// use till_pay::money::{Amount, Currency};
    /// assert_eq!(Amount::parse("12.34", Currency::CNY).unwrap(), Amount(1234));
    /// assert_eq!(Amount::parse("7", Currency::CNY).unwrap(), Amount(700));
    /// assert!(Amount::parse("1.234", Currency::CNY).is_err());
    /// ```
    pub fn parse(input: &str, currency: Currency) -> Result<Amount, AmountError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(AmountError::Empty);
        }
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s, ""),
        };
        let digits_only = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && frac.is_empty()) || !digits_only(whole) || !digits_only(frac) {
            return Err(AmountError::NotANumber(input.to_string()));
        }
        if frac.len() > usize::from(currency.exponent) {
            return Err(AmountError::TooManyDecimals {
                input: input.to_string(),
                exponent: currency.exponent,
            });
        }
        let too_large = || AmountError::TooLarge(input.to_string());
        let mut minor: u64 = 0;
        for b in whole.bytes().chain(frac.bytes()) {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(b - b'0')))
                .ok_or_else(too_large)?;
        }
        for _ in frac.len()..usize::from(currency.exponent) {
            minor = minor.checked_mul(10).ok_or_else(too_large)?;
        }
        if minor > MAX_FIELD4 {
            return Err(too_large());
        }
        Ok(Amount(minor))
    }

    /// Formats the amount with the currency's decimal places, e.g. `12.34`.
    pub fn display(&self, currency: Currency) -> DisplayAmount {
        DisplayAmount {
            amount: *self,
            exponent: currency.exponent,
        }
    }

    /// Adds, failing instead of overflowing.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }
}

/// An [`Amount`] ready to print with its decimal point.
pub struct DisplayAmount {
    amount: Amount,
    exponent: u8,
}

impl fmt::Display for DisplayAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exponent == 0 {
            return write!(f, "{}", self.amount.0);
        }
        let scale = 10u64.pow(u32::from(self.exponent));
        write!(
            f,
            "{}.{:0width$}",
            self.amount.0 / scale,
            self.amount.0 % scale,
            width = usize::from(self.exponent)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_amounts() {
        let cny = Currency::CNY;
        for (input, minor, shown) in [
            ("12.34", 1234, "12.34"),
            ("0.05", 5, "0.05"),
            (".5", 50, "0.50"),
            ("100", 10000, "100.00"),
            ("3.", 300, "3.00"),
            (" 1.1 ", 110, "1.10"),
        ] {
            let a = Amount::parse(input, cny).unwrap();
            assert_eq!(a, Amount(minor), "{input}");
            assert_eq!(a.display(cny).to_string(), shown);
        }
        let jpy = Currency::find("JPY").unwrap();
        assert_eq!(
            Amount::parse("500", jpy).unwrap().display(jpy).to_string(),
            "500"
        );
        assert!(matches!(
            Amount::parse("5.1", jpy),
            Err(AmountError::TooManyDecimals { .. })
        ));
    }

    #[test]
    fn rejects_bad_amounts() {
        let cny = Currency::CNY;
        assert_eq!(Amount::parse("", cny), Err(AmountError::Empty));
        for bad in [".", "1.2.3", "-1", "1e3", "12,34", "abc", "+5"] {
            assert!(
                matches!(Amount::parse(bad, cny), Err(AmountError::NotANumber(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Amount::parse("9999999999.99", cny),
            Ok(Amount(MAX_FIELD4))
        ));
        assert!(matches!(
            Amount::parse("10000000000.00", cny),
            Err(AmountError::TooLarge(_))
        ));
        assert!(matches!(
            Amount::parse("99999999999999999999999", cny),
            Err(AmountError::TooLarge(_))
        ));
    }
}
