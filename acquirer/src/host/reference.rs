//! Retrieval reference numbers and authorization codes for approvals.

use chrono::{DateTime, Datelike, Local, NaiveDate, Timelike};

/// Issues retrieval reference numbers: twelve digits `YDDDnnnnnnnn` — last
/// digit of the year, day of the year, and a sequence.
///
/// The sequence is the larger of "last one + 1" and the milliseconds since
/// midnight, so numbers never repeat within a run, and a host restarted
/// later the same day starts above every number the previous run issued,
/// unless that run issued more than one number per millisecond on average
/// (a new day has a new prefix). The state is in memory only, so this is
/// what makes numbers unique across restarts.
#[derive(Debug, Default)]
pub struct RrnSource {
    day: Option<NaiveDate>,
    last: u64,
}

/// The sequence has eight digits.
const SEQUENCE_SPAN: u64 = 100_000_000;

impl RrnSource {
    /// A source with nothing issued yet.
    pub fn new() -> RrnSource {
        RrnSource::default()
    }

    /// The next reference number.
    pub fn next(&mut self, now: DateTime<Local>) -> String {
        let day = now.date_naive();
        if self.day != Some(day) {
            self.day = Some(day);
            self.last = 0;
        }
        let millis = u64::from(now.num_seconds_from_midnight()) * 1000
            + u64::from(now.nanosecond() / 1_000_000 % 1000);
        self.last = (self.last + 1).max(millis) % SEQUENCE_SPAN;
        format!(
            "{}{:03}{:08}",
            day.year().rem_euclid(10),
            day.ordinal(),
            self.last
        )
    }
}

/// A six-digit authorization code.
pub fn auth_code() -> String {
    format!("{:06}", rand::random_range(0..1_000_000u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn numbers_are_twelve_digits_and_unique() {
        let now = Local.with_ymd_and_hms(2026, 3, 5, 10, 0, 0).unwrap();
        let mut src = RrnSource::new();
        let a: Vec<String> = (0..1000).map(|_| src.next(now)).collect();
        assert!(
            a.iter()
                .all(|r| r.len() == 12 && r.bytes().all(|b| b.is_ascii_digit()))
        );
        assert!(a[0].starts_with("6064"), "{}", a[0]);
        let unique: std::collections::BTreeSet<_> = a.iter().collect();
        assert_eq!(unique.len(), a.len());
        // A restart a second later starts above everything issued before.
        let mut restarted = RrnSource::new();
        let later = restarted.next(now + chrono::Duration::seconds(1));
        assert!(a.iter().all(|r| *r < later), "{later}");
        let code = auth_code();
        assert_eq!(code.len(), 6);
    }
}
