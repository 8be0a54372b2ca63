//! Card data as the engine holds it: the PAN (masked whenever shown), the
//! expiry date and track 2 equivalent data.
//!
//! A [`Pan`] prints masked through both `Display` and `Debug`, so a PAN can
//! never reach a log line or a receipt in full by accident; code that must
//! send the full number asks for it with [`Pan::expose`].

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Why card data could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    /// The number has the wrong length.
    #[error("card number must be 12 to 19 digits, got {len} characters")]
    PanLength {
        /// Characters given.
        len: usize,
    },
    /// The number has something other than digits.
    #[error("card number may contain digits only")]
    PanNotDigits,
    /// The Luhn check digit is wrong (usually a mistyped number).
    #[error("card number {masked} fails its check digit; re-enter it or try another card")]
    PanCheckDigit {
        /// The number, masked.
        masked: String,
    },
    /// The expiry date is not a valid `YYMM` (shown masked).
    #[error("expiry date must be four digits YYMM, got {0:?}")]
    Expiry(String),
    /// Track 2 data does not have the ISO 7813 layout.
    #[error("track 2 data is malformed: {0}")]
    Track2(&'static str),
}

/// A primary account number. Zeroized when dropped; shown masked.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Pan(String);

impl Pan {
    /// Accepts 12 to 19 digits whose last digit is a valid Luhn check digit.
    ///
    /// ```
    /// use till_pay::card::Pan;
    /// let pan = Pan::new("4761739001010010").unwrap();
    /// assert_eq!(pan.to_string(), "476173******0010");
    /// assert!(Pan::new("4761739001010011").is_err());
    /// ```
    pub fn new(digits: &str) -> Result<Pan, CardError> {
        let pan = Pan::unchecked(digits)?;
        if !luhn_ok(&pan.0) {
            return Err(CardError::PanCheckDigit {
                masked: pan.masked(),
            });
        }
        Ok(pan)
    }

    /// Accepts 12 to 19 digits without checking the Luhn digit (some private
    /// label cards have none).
    pub fn unchecked(digits: &str) -> Result<Pan, CardError> {
        let d = digits.trim();
        if !(12..=19).contains(&d.len()) {
            return Err(CardError::PanLength { len: d.len() });
        }
        if !d.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::PanNotDigits);
        }
        Ok(Pan(d.to_string()))
    }

    /// The full number, for the host message and the PIN block only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The number with all but the first six and last four digits hidden.
    pub fn masked(&self) -> String {
        mask_pan(&self.0)
    }

    /// The last four digits, for search and receipts.
    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }
}

impl fmt::Display for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

/// Masks a card number for display: first six and last four digits kept,
/// the rest replaced by `*`. Anything too short to be a PAN is masked whole.
///
/// ```
/// assert_eq!(till_pay::card::mask_pan("6222021234567890123"), "622202*********0123");
/// assert_eq!(till_pay::card::mask_pan("12345"), "*****");
/// ```
pub fn mask_pan(pan: &str) -> String {
    mask_middle(pan, 6, 4, 12)
}

/// `s` with all but its first `head` and last `tail` characters replaced
/// by `*`; shorter than `min` it is masked whole. Card numbers and wallet
/// payment codes are masked by it.
pub(crate) fn mask_middle(s: &str, head: usize, tail: usize, min: usize) -> String {
    let n = s.chars().count();
    if n < min {
        return "*".repeat(n);
    }
    s.chars()
        .enumerate()
        .map(|(i, c)| if i < head || i + tail >= n { c } else { '*' })
        .collect()
}

/// Masks track 2 data: the PAN masked, everything after the separator hidden.
pub fn mask_track2(track: &str) -> String {
    match track.find(['=', 'D', 'd']) {
        Some(i) => format!(
            "{}={}",
            mask_pan(&track[..i]),
            "*".repeat(track.len() - i - 1)
        ),
        None => "*".repeat(track.len()),
    }
}

/// Luhn (mod 10) check over a string of digits.
pub fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// A card expiry date, `YYMM` as ISO 8583 field 14 carries it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Zeroize)]
pub struct Expiry {
    /// Two-digit year.
    pub year: u8,
    /// Month 1–12.
    pub month: u8,
}

impl Expiry {
    /// Parses `YYMM`.
    pub fn parse_yymm(s: &str) -> Result<Expiry, CardError> {
        let bad = || {
            CardError::Expiry(if s.len() == 4 {
                "****".into()
            } else {
                format!("{} characters", s.len())
            })
        };
        if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: u8 = s[..2].parse().map_err(|_| bad())?;
        let month: u8 = s[2..].parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Expiry { year, month })
    }

    /// `YYMM`.
    pub fn yymm(&self) -> String {
        format!("{:02}{:02}", self.year, self.month)
    }

    /// Whether the card has expired by the given year (four digits) and month.
    pub fn is_expired_at(&self, year: i32, month: u32) -> bool {
        let (y, m) = (2000 + i32::from(self.year), u32::from(self.month));
        (y, m) < (year, month)
    }
}

impl fmt::Debug for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Expiry(**/**)")
    }
}

/// Track 2 equivalent data: `PAN=YYMM<service code><discretionary data>`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Track2(String);

impl Track2 {
    /// Parses track 2 data with `=` or `D` as the field separator.
    pub fn parse(raw: &str) -> Result<Track2, CardError> {
        let raw = raw.trim().trim_start_matches(';').trim_end_matches('?');
        let sep = raw
            .find(['=', 'D', 'd'])
            .ok_or(CardError::Track2("no field separator"))?;
        Pan::unchecked(&raw[..sep])?;
        let rest = &raw[sep + 1..];
        if rest.len() < 7 {
            return Err(CardError::Track2(
                "expiry and service code missing after the separator",
            ));
        }
        Expiry::parse_yymm(&rest[..4])?;
        if !rest.bytes().all(|b| b.is_ascii_digit()) || raw.len() > 37 {
            return Err(CardError::Track2(
                "only digits up to 37 characters may follow the PAN",
            ));
        }
        Ok(Track2(format!("{}={}", &raw[..sep], rest)))
    }

    /// The PAN on the track.
    pub fn pan(&self) -> Pan {
        let sep = self.0.find('=').unwrap_or(self.0.len());
        Pan(self.0[..sep].to_string())
    }

    /// The expiry on the track.
    pub fn expiry(&self) -> Expiry {
        let sep = self.0.find('=').unwrap_or(0);
        Expiry::parse_yymm(&self.0[sep + 1..sep + 5]).unwrap_or(Expiry { year: 0, month: 1 })
    }

    /// The three-digit service code.
    pub fn service_code(&self) -> &str {
        let sep = self.0.find('=').unwrap_or(0);
        &self.0[sep + 5..sep + 8]
    }

    /// The full track, for the host message only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Track2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Track2({})", mask_track2(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_is_masked_in_display_and_debug() {
        let pan = Pan::new("6222021234567890128").unwrap();
        assert_eq!(format!("{pan}"), "622202*********0128");
        assert_eq!(format!("{pan:?}"), "Pan(622202*********0128)");
        assert!(!format!("{pan:?}").contains("1234567890"));
        assert_eq!(pan.last4(), "0128");
    }

    #[test]
    fn pan_validation() {
        assert_eq!(Pan::new("12345"), Err(CardError::PanLength { len: 5 }));
        assert_eq!(
            Pan::new("4761 7390 0101 0010"),
            Err(CardError::PanNotDigits)
        );
        assert_eq!(
            Pan::new("47617390010100100000"),
            Err(CardError::PanLength { len: 20 })
        );
        assert_eq!(Pan::new("47617390010100a0"), Err(CardError::PanNotDigits));
        assert!(matches!(
            Pan::new("4761739001010011"),
            Err(CardError::PanCheckDigit { .. })
        ));
        assert!(Pan::unchecked("4761739001010011").is_ok());
    }

    #[test]
    fn luhn() {
        for good in [
            "79927398713",
            "4761739001010010",
            "5413330089010434",
            "6222021234567890128",
        ] {
            assert!(luhn_ok(good), "{good}");
        }
        for bad in ["79927398710", "", "12a4"] {
            assert!(!luhn_ok(bad), "{bad}");
        }
    }

    #[test]
    fn expiry() {
        let e = Expiry::parse_yymm("2512").unwrap();
        assert_eq!(e.yymm(), "2512");
        assert!(!e.is_expired_at(2025, 12));
        assert!(e.is_expired_at(2026, 1));
        assert!(Expiry::parse_yymm("2513").is_err());
        assert!(Expiry::parse_yymm("25x2").is_err());
        assert_eq!(format!("{e:?}"), "Expiry(**/**)");
    }

    #[test]
    fn track2() {
        let t = Track2::parse(";4761739001010010=25122011234567890?").unwrap();
        assert_eq!(t.pan().expose(), "4761739001010010");
        assert_eq!(t.expiry().yymm(), "2512");
        assert_eq!(t.service_code(), "201");
        assert_eq!(
            format!("{t:?}"),
            "Track2(476173******0010=*****************)"
        );
        assert!(Track2::parse("4761739001010010").is_err());
        assert!(Track2::parse("4761739001010010=25").is_err());
        assert!(Track2::parse("4761739001010010D2512201").is_ok());
        assert_eq!(
            mask_track2("4761739001010010D2512201"),
            "476173******0010=*******"
        );
    }
}
