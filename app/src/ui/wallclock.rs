//! Setting the terminal's date and time from the settings screen
//! (MISSION §9). On a device that is the system clock, through
//! `clock_settime(CLOCK_REALTIME)`, which needs `CAP_SYS_TIME` (the image
//! starts `till` with it). In simulator mode the terminal runs on the
//! computer's clock and does not change it.

use chrono::{DateTime, Local, NaiveDateTime, TimeZone};

/// How the administrator types the time.
pub const FORMAT: &str = "%Y-%m-%d %H:%M";

/// Why the clock was not set; the screen says each in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockError {
    /// Not `YYYY-MM-DD HH:MM`, or no such local time (a gap when the
    /// clocks go forward).
    BadFormat,
    /// Before 2020 or after 2099: a typing mistake, not a date a terminal
    /// can work with (certificates and the host's checks would fail).
    OutOfRange,
    /// The process may not set the clock (no `CAP_SYS_TIME`).
    NotPermitted,
    /// Simulator mode: the computer's clock is left alone.
    Simulator,
    /// The kernel refused for another reason.
    Failed,
}

impl ClockError {
    /// The word the settings screen maps to its message.
    pub fn word(self) -> &'static str {
        match self {
            ClockError::BadFormat => "bad-time",
            ClockError::OutOfRange => "time-range",
            ClockError::NotPermitted => "time-permission",
            ClockError::Simulator => "time-simulator",
            ClockError::Failed => "time-failed",
        }
    }
}

/// Reads `YYYY-MM-DD HH:MM` as local time.
pub fn parse(text: &str) -> Result<DateTime<Local>, ClockError> {
    let naive =
        NaiveDateTime::parse_from_str(text.trim(), FORMAT).map_err(|_| ClockError::BadFormat)?;
    let local = Local
        .from_local_datetime(&naive)
        .earliest()
        .ok_or(ClockError::BadFormat)?;
    let year = chrono::Datelike::year(&local);
    if !(2020..=2099).contains(&year) {
        return Err(ClockError::OutOfRange);
    }
    Ok(local)
}

/// Sets the system clock to `to` (`CLOCK_REALTIME`; the RTC, where the
/// board has one, is written by the image at shutdown as usual).
pub fn set_system_clock(to: DateTime<Local>) -> Result<(), ClockError> {
    let ts = libc::timespec {
        tv_sec: to.timestamp() as libc::time_t,
        tv_nsec: 0,
    };
    // SAFETY: clock_settime reads the timespec we pass and nothing else.
    let rc = unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) };
    if rc == 0 {
        tracing::info!(to = %to.format(FORMAT), "system clock set");
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    tracing::warn!(error = %err, "system clock not set");
    match err.raw_os_error() {
        Some(libc::EPERM) => Err(ClockError::NotPermitted),
        _ => Err(ClockError::Failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_typed_time_is_read_as_local_time_and_checked() {
        let t = parse(" 2026-11-21 14:05 ").unwrap();
        assert_eq!(t.format(FORMAT).to_string(), "2026-11-21 14:05");
        assert_eq!(parse("2026-11-21"), Err(ClockError::BadFormat));
        assert_eq!(parse("2026-13-01 10:00"), Err(ClockError::BadFormat));
        assert_eq!(parse("21/11/2026 14:05"), Err(ClockError::BadFormat));
        assert_eq!(parse("2026-11-21 25:00"), Err(ClockError::BadFormat));
        assert_eq!(parse("1999-01-01 00:00"), Err(ClockError::OutOfRange));
        assert_eq!(parse("2126-01-01 00:00"), Err(ClockError::OutOfRange));
    }

    /// Without CAP_SYS_TIME the kernel refuses and the error says so.
    /// Capabilities are per thread: this thread drops its effective set
    /// (so the test never changes the clock, even when run as root) and
    /// asks for the time it already has.
    #[test]
    fn without_the_capability_setting_the_clock_is_refused_in_words() {
        std::thread::spawn(|| {
            #[repr(C)]
            struct Header {
                version: u32,
                pid: i32,
            }
            #[repr(C)]
            #[derive(Default, Clone, Copy)]
            struct Data {
                effective: u32,
                permitted: u32,
                inheritable: u32,
            }
            const V3: u32 = 0x2008_0522;
            let mut header = Header {
                version: V3,
                pid: 0,
            };
            let mut data = [Data::default(); 2];
            // SAFETY: capget/capset with a v3 header and two data words,
            // as capabilities(7) describes; they touch only this thread.
            unsafe {
                assert_eq!(
                    libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
                    0
                );
                for d in &mut data {
                    d.effective = 0;
                }
                assert_eq!(
                    libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
                    0
                );
            }
            assert_eq!(
                set_system_clock(Local::now()),
                Err(ClockError::NotPermitted)
            );
        })
        .join()
        .unwrap();
    }
}
