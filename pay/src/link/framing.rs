//! Length-prefixed framing of messages on the TCP stream.
//!
//! Acquirers put a length in front of every ISO 8583 message so the reader
//! knows where it ends. Two conventions cover the hosts Till talks to: a
//! 2-byte big-endian binary length ([`Framing::U16Be`]) and four ASCII
//! decimal digits ([`Framing::Ascii4`]). The length counts the message only,
//! not the prefix.
//!
//! A frame of length zero carries no message: hosts send it as a keep-alive
//! on idle connections, and [`read_frame`] skips it.

use std::io;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How the length of each message is written in front of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Framing {
    /// Two bytes, big-endian binary length (0..=65535).
    #[serde(rename = "u16be")]
    U16Be,
    /// Four ASCII decimal digits, e.g. `0123` (0..=9999).
    #[serde(rename = "ascii4")]
    Ascii4,
}

/// Why a length prefix could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The message is longer than the prefix or the configured limit allows.
    #[error("the message is {len} bytes, more than the {max} bytes allowed")]
    TooLong {
        /// Length of the message.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// An empty message would be read by the peer as a keep-alive.
    #[error("the message is empty (an empty frame is a keep-alive)")]
    Empty,
    /// An ASCII length prefix holds something other than four digits.
    #[error("the length prefix {prefix:?} is not four decimal digits")]
    NotDigits {
        /// The prefix bytes, with non-printable bytes escaped.
        prefix: String,
    },
    /// The prefix slice has the wrong number of bytes for the framing.
    #[error("a {framing:?} length prefix is {expected} bytes, got {got}")]
    PrefixSize {
        /// The framing in use.
        framing: Framing,
        /// Bytes a prefix has in this framing.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
}

impl From<FramingError> for io::Error {
    fn from(e: FramingError) -> io::Error {
        let kind = match e {
            FramingError::TooLong { .. } | FramingError::NotDigits { .. } => {
                io::ErrorKind::InvalidData
            }
            FramingError::Empty | FramingError::PrefixSize { .. } => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

impl Framing {
    /// Bytes in the length prefix.
    pub const fn prefix_len(self) -> usize {
        match self {
            Framing::U16Be => 2,
            Framing::Ascii4 => 4,
        }
    }

    /// The longest message the prefix can describe.
    pub const fn max_payload(self) -> usize {
        match self {
            Framing::U16Be => u16::MAX as usize,
            Framing::Ascii4 => 9999,
        }
    }
}

/// The length prefix for a message of `len` bytes.
///
/// ```
/// use till_pay::link::framing::{encode_prefix, Framing};
/// assert_eq!(encode_prefix(Framing::Ascii4, 123).unwrap(), b"0123");
/// assert_eq!(encode_prefix(Framing::U16Be, 258).unwrap(), [1, 2]);
/// assert!(encode_prefix(Framing::Ascii4, 10_000).is_err());
/// ```
pub fn encode_prefix(framing: Framing, len: usize) -> Result<Vec<u8>, FramingError> {
    let max = framing.max_payload();
    if len > max {
        return Err(FramingError::TooLong { len, max });
    }
    Ok(match framing {
        Framing::U16Be => u16::try_from(len)
            .map_err(|_| FramingError::TooLong { len, max })?
            .to_be_bytes()
            .to_vec(),
        Framing::Ascii4 => format!("{len:04}").into_bytes(),
    })
}

/// The message length a prefix announces.
///
/// `prefix` must be exactly [`Framing::prefix_len`] bytes.
///
/// ```
/// use till_pay::link::framing::{parse_prefix, Framing};
/// assert_eq!(parse_prefix(Framing::Ascii4, b"0042").unwrap(), 42);
/// assert!(parse_prefix(Framing::Ascii4, b"00x2").is_err());
/// assert_eq!(parse_prefix(Framing::U16Be, &[0xff, 0xff]).unwrap(), 65535);
/// ```
pub fn parse_prefix(framing: Framing, prefix: &[u8]) -> Result<usize, FramingError> {
    match (framing, prefix) {
        (Framing::U16Be, &[high, low]) => Ok(usize::from(u16::from_be_bytes([high, low]))),
        (Framing::Ascii4, digits @ &[_, _, _, _]) => {
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(FramingError::NotDigits {
                    prefix: digits.escape_ascii().to_string(),
                });
            }
            Ok(digits
                .iter()
                .fold(0, |acc, d| acc * 10 + usize::from(d - b'0')))
        }
        _ => Err(FramingError::PrefixSize {
            framing,
            expected: framing.prefix_len(),
            got: prefix.len(),
        }),
    }
}

/// Writes `payload` as one frame and flushes it.
///
/// Prefix and payload go out in a single write so that TLS puts them in one
/// record and the host never waits for a second segment. An empty payload
/// or one longer than the prefix allows is refused before anything is
/// written (`InvalidInput` / `InvalidData` carrying a [`FramingError`]).
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    framing: Framing,
    payload: &[u8],
) -> io::Result<()> {
    if payload.is_empty() {
        return Err(FramingError::Empty.into());
    }
    let mut frame = encode_prefix(framing, payload.len())?;
    frame.extend_from_slice(payload);
    w.write_all(&frame).await?;
    w.flush().await
}

/// Reads the next non-empty frame, of at most `max_len` bytes.
///
/// Returns `Ok(None)` when the stream ends cleanly between frames. The
/// stream ending inside a frame is `UnexpectedEof`; a length prefix that is
/// not four digits (for [`Framing::Ascii4`]) or a length above `max_len` is
/// `InvalidData` carrying a [`FramingError`]. Zero-length frames are
/// keep-alives and are skipped; a peer that sends nothing else keeps this
/// waiting, so callers bound it with a timeout.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    framing: Framing,
    max_len: usize,
) -> io::Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; 4];
    let prefix = &mut prefix[..framing.prefix_len()];
    loop {
        let mut filled = 0;
        while filled < prefix.len() {
            let n = r.read(&mut prefix[filled..]).await?;
            if n == 0 {
                if filled == 0 {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stream ended inside a length prefix",
                ));
            }
            filled += n;
        }
        let len = parse_prefix(framing, prefix)?;
        if len == 0 {
            continue;
        }
        if len > max_len {
            return Err(FramingError::TooLong { len, max: max_len }.into());
        }
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload).await?;
        return Ok(Some(payload));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime builds")
            .block_on(f)
    }

    fn framing() -> impl Strategy<Value = Framing> {
        prop_oneof![Just(Framing::U16Be), Just(Framing::Ascii4)]
    }

    #[test]
    fn serde_names() {
        assert_eq!(serde_json::to_string(&Framing::U16Be).unwrap(), "\"u16be\"");
        assert_eq!(
            serde_json::from_str::<Framing>("\"ascii4\"").unwrap(),
            Framing::Ascii4
        );
    }

    #[test]
    fn prefixes_at_the_limits() {
        assert_eq!(encode_prefix(Framing::U16Be, 65535).unwrap(), [0xff, 0xff]);
        assert!(matches!(
            encode_prefix(Framing::U16Be, 65536),
            Err(FramingError::TooLong {
                len: 65536,
                max: 65535
            })
        ));
        assert_eq!(encode_prefix(Framing::Ascii4, 9999).unwrap(), b"9999");
        assert_eq!(encode_prefix(Framing::Ascii4, 0).unwrap(), b"0000");
        assert!(matches!(
            parse_prefix(Framing::Ascii4, b"+123"),
            Err(FramingError::NotDigits { .. })
        ));
        assert!(matches!(
            parse_prefix(Framing::U16Be, b"123"),
            Err(FramingError::PrefixSize {
                expected: 2,
                got: 3,
                ..
            })
        ));
    }

    #[test]
    fn keep_alives_are_skipped_and_clean_eof_is_none() {
        let stream = [&b"0000"[..], b"0000", b"0003abc", b"0000"].concat();
        let mut r = &stream[..];
        assert_eq!(
            block_on(read_frame(&mut r, Framing::Ascii4, 100)).unwrap(),
            Some(b"abc".to_vec())
        );
        assert_eq!(
            block_on(read_frame(&mut r, Framing::Ascii4, 100)).unwrap(),
            None
        );
    }

    #[test]
    fn eof_inside_a_frame_is_an_error() {
        for stream in [&b"00"[..], b"0005ab"] {
            let mut r = stream;
            let e = block_on(read_frame(&mut r, Framing::Ascii4, 100)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        }
    }

    #[test]
    fn oversized_and_garbled_prefixes_are_invalid_data() {
        let mut r = &b"\x01\x00"[..];
        let e = block_on(read_frame(&mut r, Framing::U16Be, 255)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let mut r = &b"12a4xxxx"[..];
        let e = block_on(read_frame(&mut r, Framing::Ascii4, 9999)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn writing_refuses_what_the_prefix_cannot_carry() {
        let mut out = Vec::new();
        let e = block_on(write_frame(&mut out, Framing::Ascii4, &[0; 10_000])).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let e = block_on(write_frame(&mut out, Framing::U16Be, b"")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(out.is_empty());
    }

    proptest! {
        #[test]
        fn prefix_round_trip(framing in framing(), len in 0usize..70_000) {
            match encode_prefix(framing, len) {
                Ok(prefix) => {
                    prop_assert!(len <= framing.max_payload());
                    prop_assert_eq!(prefix.len(), framing.prefix_len());
                    prop_assert_eq!(parse_prefix(framing, &prefix).unwrap(), len);
                }
                Err(_) => prop_assert!(len > framing.max_payload()),
            }
        }

        #[test]
        fn frames_round_trip(
            framing in framing(),
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..600), 0..5),
            keep_alives in prop::collection::vec(any::<bool>(), 5),
        ) {
            let mut stream = Vec::new();
            for (payload, keep_alive) in payloads.iter().zip(keep_alives.iter().cycle()) {
                if *keep_alive {
                    stream.extend(encode_prefix(framing, 0).unwrap());
                }
                block_on(write_frame(&mut stream, framing, payload)).unwrap();
            }
            let mut r = &stream[..];
            for payload in &payloads {
                let got = block_on(read_frame(&mut r, framing, 600)).unwrap();
                prop_assert_eq!(got.as_ref(), Some(payload));
            }
            prop_assert_eq!(block_on(read_frame(&mut r, framing, 600)).unwrap(), None);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            framing in framing(),
            bytes in prop::collection::vec(any::<u8>(), 0..300),
            max_len in 0usize..400,
        ) {
            let _ = parse_prefix(framing, &bytes);
            let mut r = &bytes[..];
            // Every call consumes at least one byte or ends, so this terminates.
            for _ in 0..=bytes.len() {
                match block_on(read_frame(&mut r, framing, max_len)) {
                    Ok(Some(frame)) => prop_assert!(!frame.is_empty() && frame.len() <= max_len),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
