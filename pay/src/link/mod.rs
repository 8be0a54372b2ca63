//! The host link: mutual TLS over TCP with length-prefixed framing.
//!
//! The engine sees a host as a [`HostLink`]: hand it one ISO 8583 message,
//! get one answer back, or an error that says whether the request may have
//! reached the host. That one bit decides whether the engine must send a
//! reversal, so every error here is sorted by it (see
//! [`LinkError::request_may_have_arrived`]).
//!
//! - [`framing`]: the 2-byte binary or 4-digit ASCII length prefix acquirers
//!   put in front of each message.
//! - [`tls`]: certificate and key loading, the rustls configurations for the
//!   terminal and the acquirer simulator, and [`TlsLink`], the production
//!   [`HostLink`].
//! - [`identity`]: where a terminal's certificate, key and key files live,
//!   and how the hex key files are read.
//! - `pki` (feature `dev-pki`): a development CA that issues the acquirer and
//!   terminal certificates and keys for `tillctl pki init`.

use std::future::Future;
use std::time::Duration;

pub mod framing;
pub mod identity;
#[cfg(feature = "dev-pki")]
pub mod pki;
pub mod tls;

pub use framing::{Framing, FramingError};
pub use identity::{IdentityError, TerminalFiles};
pub use tls::{TlsLink, TlsSetupError};

/// A connection to an acquirer host that carries one request and its answer
/// at a time.
///
/// `exchange` takes `&mut self`, so the borrow checker enforces that a link
/// has at most one transaction in flight: ISO 8583 hosts answer in order on a
/// connection, and a terminal that pipelined requests could not tell which
/// answer belongs to which request after a timeout. Sharing a link between
/// tasks therefore needs a mutex, which makes the queueing visible.
///
/// Dropping the future returned by `exchange` before it completes must
/// behave like a timeout: the connection is abandoned, so that an answer
/// still on its way is never read as the answer to the next request.
pub trait HostLink: Send {
    /// Sends `request` as one frame and waits up to `timeout` for one answer
    /// frame.
    ///
    /// On an error, [`LinkError::request_may_have_arrived`] tells the caller
    /// whether the host may have acted on the request (and so whether a
    /// reversal is due).
    fn exchange(
        &mut self,
        request: &[u8],
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<u8>, LinkError>> + Send;

    /// Drops the connection, if any; the next exchange opens a new one.
    fn reset(&mut self);
}

/// Why an exchange with the host failed.
///
/// The messages are written for the person at the terminal and the field
/// engineer they call: what happened, whether the customer may have been
/// charged, and what to check.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No connection could be made; nothing was sent.
    #[error(
        "cannot reach the payment host {host}: {reason}. Nothing was sent. \
         Check the network connection (cable, Wi-Fi or mobile signal) and the \
         host address in the terminal settings, then try again"
    )]
    Unreachable {
        /// The host address as configured (`host:port`).
        host: String,
        /// What went wrong on the last attempt, and how many were made.
        reason: String,
    },
    /// The TLS handshake was refused, by the terminal or by the host; nothing
    /// was sent.
    #[error(
        "the secure connection to the payment host {host} was refused: {reason}. \
         Nothing was sent"
    )]
    Tls {
        /// The host address as configured (`host:port`).
        host: String,
        /// What was refused, with a hint what to check.
        reason: String,
    },
    /// The request was sent but no answer came in time.
    #[error(
        "no answer from the payment host {host} within {waited:?}. The request \
         may have reached the host, so the transaction will be reversed. If this \
         keeps happening, check the network and call the acquirer's help desk"
    )]
    NoAnswer {
        /// The host address as configured (`host:port`).
        host: String,
        /// How long the terminal waited.
        waited: Duration,
    },
    /// The host closed the connection before a full answer arrived.
    #[error(
        "the payment host {host} closed the connection before answering. The \
         request may have reached the host, so the transaction will be reversed. \
         Try again; if it keeps happening, call the acquirer's help desk"
    )]
    Closed {
        /// The host address as configured (`host:port`).
        host: String,
    },
    /// An answer arrived but could not be read as a frame.
    #[error(
        "the payment host {host} sent an answer the terminal cannot read: {reason}. \
         The request may have reached the host, so the transaction will be reversed. \
         Check that the terminal's message framing setting matches the host's"
    )]
    BadFrame {
        /// The host address as configured (`host:port`).
        host: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// The request cannot be framed (empty, or longer than the length prefix
    /// or the configured limit allows); nothing was sent.
    #[error(
        "the terminal cannot send this message to {host}: {reason}. Nothing was \
         sent. This is a software or configuration fault: report it with the \
         terminal's log"
    )]
    Unsendable {
        /// The host address as configured (`host:port`).
        host: String,
        /// Why the message cannot be framed.
        reason: String,
    },
}

impl LinkError {
    /// Whether the host may have received the request and acted on it.
    ///
    /// `true` for [`NoAnswer`](Self::NoAnswer), [`Closed`](Self::Closed) and
    /// [`BadFrame`](Self::BadFrame): the engine must then reverse the
    /// transaction. `false` when nothing left the terminal, so a retry or a
    /// decline is safe without a reversal.
    pub fn request_may_have_arrived(&self) -> bool {
        match self {
            LinkError::NoAnswer { .. } | LinkError::Closed { .. } | LinkError::BadFrame { .. } => {
                true
            }
            LinkError::Unreachable { .. }
            | LinkError::Tls { .. }
            | LinkError::Unsendable { .. } => false,
        }
    }
}

/// Exponential backoff with jitter between connection attempts.
///
/// The nominal delay before retry `n` (counting from 0) is
/// `initial × factorⁿ`, capped at `max`; the actual delay is drawn uniformly
/// from ± `jitter` around it and never exceeds `max`. Jitter keeps a shop
/// full of terminals that lost the network together from reconnecting in
/// lockstep when it comes back.
///
/// Out-of-range values are tolerated rather than rejected, since a backoff
/// comes from configuration files: a `factor` below 1 (or NaN) counts as 1,
/// a `jitter` outside 0..=1 is clamped, and `max` below `initial` wins.
///
/// ```
/// use std::time::Duration;
/// use till_pay::link::Backoff;
/// let backoff = Backoff::default();
/// let (low, high) = backoff.bounds(1);
/// assert_eq!((low, high), (Duration::from_millis(320), Duration::from_millis(480)));
/// assert!(backoff.delays().take(20).all(|d| d <= backoff.max));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Nominal delay before the first retry.
    pub initial: Duration,
    /// Upper bound for any delay.
    pub max: Duration,
    /// Growth of the nominal delay from one retry to the next.
    pub factor: f64,
    /// Relative spread around the nominal delay, e.g. 0.2 for ±20 %.
    pub jitter: f64,
}

impl Default for Backoff {
    /// 200 ms, doubling, at most 5 s, ±20 % jitter.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(5),
            factor: 2.0,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The nominal delay before retry `attempt` (0 for the first retry),
    /// without jitter.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let max = self.max.as_secs_f64();
        let factor = if self.factor >= 1.0 { self.factor } else { 1.0 };
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * factor.powi(exponent);
        seconds(if secs.is_finite() { secs.min(max) } else { max })
    }

    /// The shortest and the longest delay [`delay`](Self::delay) may return
    /// for `attempt`.
    pub fn bounds(&self, attempt: u32) -> (Duration, Duration) {
        let jitter = if self.jitter >= 0.0 {
            self.jitter.min(1.0)
        } else {
            0.0
        };
        let nominal = self.nominal(attempt).as_secs_f64();
        let low = seconds(nominal * (1.0 - jitter));
        let high = seconds(nominal * (1.0 + jitter)).min(self.max);
        (low.min(high), high)
    }

    /// A delay for retry `attempt` (0 for the first retry), with jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let (low, high) = self.bounds(attempt);
        if low >= high {
            return low;
        }
        let low_ns = u64::try_from(low.as_nanos()).unwrap_or(u64::MAX);
        let high_ns = u64::try_from(high.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::random_range(low_ns..=high_ns))
    }

    /// The delays for retries 0, 1, 2, …, one per `u32` attempt number.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + '_ {
        (0..=u32::MAX).map(|attempt| self.delay(attempt))
    }
}

/// Seconds to a `Duration`, treating anything unrepresentable as zero or the
/// largest duration rather than panicking.
fn seconds(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_backoff_grows_doubling_to_the_cap() {
        let b = Backoff::default();
        let nominal: Vec<u128> = (0..7).map(|n| b.nominal(n).as_millis()).collect();
        assert_eq!(nominal, [200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(b.nominal(u32::MAX), b.max);
    }

    #[test]
    fn delays_stay_within_jitter_bounds_and_the_cap() {
        let b = Backoff::default();
        for attempt in 0..12 {
            let (low, high) = b.bounds(attempt);
            let nominal = b.nominal(attempt);
            assert!(low >= nominal.mul_f64(0.8) - Duration::from_nanos(1));
            assert!(high <= nominal.mul_f64(1.2) + Duration::from_nanos(1));
            assert!(high <= b.max);
            for _ in 0..200 {
                let d = b.delay(attempt);
                assert!(low <= d && d <= high, "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn jitter_actually_spreads_delays() {
        let b = Backoff::default();
        let distinct: std::collections::BTreeSet<Duration> = (0..50).map(|_| b.delay(0)).collect();
        assert!(distinct.len() > 1);
    }

    #[test]
    fn zero_jitter_is_exact() {
        let b = Backoff {
            jitter: 0.0,
            ..Backoff::default()
        };
        assert_eq!(b.delay(2), Duration::from_millis(800));
    }

    #[test]
    fn nonsense_settings_neither_panic_nor_exceed_max() {
        let cases = [
            (f64::NAN, f64::NAN),
            (f64::INFINITY, 5.0),
            (0.5, -1.0),
            (1e300, 1e300),
            (-3.0, f64::INFINITY),
        ];
        for (factor, jitter) in cases {
            let b = Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(1),
                factor,
                jitter,
            };
            for attempt in [0, 1, 10, 1000, u32::MAX] {
                let d = b.delay(attempt);
                assert!(d <= b.max, "{factor} {jitter} {attempt}: {d:?}");
            }
        }
        let huge = Backoff {
            initial: Duration::MAX,
            max: Duration::MAX,
            ..Backoff::default()
        };
        assert!(huge.delay(3) <= Duration::MAX);
        let inverted = Backoff {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(1),
            ..Backoff::default()
        };
        assert!(inverted.delay(0) <= Duration::from_secs(1));
    }

    #[test]
    fn only_errors_after_sending_call_for_a_reversal() {
        let host = || "acq.example:7000".to_string();
        let arrived = [
            LinkError::NoAnswer {
                host: host(),
                waited: Duration::from_secs(30),
            },
            LinkError::Closed { host: host() },
            LinkError::BadFrame {
                host: host(),
                reason: "x".into(),
            },
        ];
        let not_sent = [
            LinkError::Unreachable {
                host: host(),
                reason: "x".into(),
            },
            LinkError::Tls {
                host: host(),
                reason: "x".into(),
            },
            LinkError::Unsendable {
                host: host(),
                reason: "x".into(),
            },
        ];
        assert!(arrived.iter().all(LinkError::request_may_have_arrived));
        assert!(!not_sent.iter().any(LinkError::request_may_have_arrived));
        for e in arrived.iter() {
            assert!(e.to_string().contains("reversed"), "{e}");
        }
        for e in not_sent.iter() {
            assert!(e.to_string().contains("Nothing was sent"), "{e}");
        }
    }
}
