//! The fake clock: deterministic timestamps and the server's date rules.
//!
//! Time stands still unless a test moves it ([`crate::MockDaemon::advance_clock`]),
//! so every run of a scenario produces the same timestamps. Times are kept as
//! milliseconds and only formatted (RFC 3339, UTC) when a value leaves the fake,
//! which keeps hot calls such as heartbeats free of formatting work.

use std::time::Duration;

/// Where the fake clock starts: 2026-01-01T00:00:00Z, in milliseconds since
/// the Unix epoch.
pub const DEFAULT_START_MILLIS: u64 = 1_767_225_600_000;

/// A moment on the fake clock, in milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Millis(pub(crate) u64);

impl Millis {
    /// The moment `by` later (saturating).
    pub(crate) fn after(self, by: Duration) -> Millis {
        Millis(self.0.saturating_add(u64::try_from(by.as_millis()).unwrap_or(u64::MAX)))
    }

    /// RFC 3339 in UTC to the second, as the server writes every timestamp
    /// (Go's `time.RFC3339`; the fraction is dropped): `2026-01-01T00:00:00Z`.
    pub(crate) fn rfc3339(self) -> String {
        let secs = self.0 / 1000;
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let rem = secs % 86_400;
        format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
    }
}

/// A moment as the database stamps it: microseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct DbTime(pub(crate) u64);

impl DbTime {
    /// The moment on the fake clock a database time falls in.
    pub(crate) fn at(millis: Millis, micros_into_millisecond: u64) -> DbTime {
        DbTime(millis.0.saturating_mul(1000).saturating_add(micros_into_millisecond.min(999)))
    }

    /// RFC 3339 in UTC as Go marshals a `time.Time` (`time.RFC3339Nano`):
    /// the fraction's trailing zeros dropped, no fraction on a whole second:
    /// `2026-01-01T00:00:00.000301Z`, `2026-01-01T00:00:00.5Z`,
    /// `2026-01-01T00:00:00Z`.
    pub(crate) fn rfc3339_nano(self) -> String {
        let whole = Millis(self.0 / 1_000_000 * 1000).rfc3339();
        let fraction = self.0 % 1_000_000;
        if fraction == 0 {
            return whole;
        }
        let digits = format!("{fraction:06}");
        format!("{}.{}Z", whole.trim_end_matches('Z'), digits.trim_end_matches('0'))
    }
}

impl Millis {
    /// Reads an RFC 3339 timestamp (`2026-01-01T00:00:00Z`, a fraction and a
    /// `±hh:mm` offset allowed); `None` when it is not one or is before 1970.
    pub(crate) fn parse_rfc3339(text: &str) -> Option<Millis> {
        let bytes = text.as_bytes();
        let number = |range: std::ops::Range<usize>| -> Option<i64> {
            bytes.get(range)?.iter().try_fold(0i64, |acc, b| b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0')))
        };
        let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
        if !separators.iter().all(|(at, c)| bytes.get(*at) == Some(c))
            || !matches!(bytes.get(10), Some(b'T' | b't'))
            || !is_valid_date(text.get(..10)?)
        {
            return None;
        }
        let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let mut rest = &text[19..];
        let mut millis = 0i64;
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
            millis = padded.parse().ok()?;
            rest = &fraction[digits..];
        }
        let offset = match rest {
            "Z" | "z" => 0,
            _ => {
                let sign = match rest.as_bytes().first() {
                    Some(b'+') => 1,
                    Some(b'-') => -1,
                    _ => return None,
                };
                let tz = rest.as_bytes();
                if tz.len() != 6 || tz[3] != b':' {
                    return None;
                }
                let digits = |r: std::ops::Range<usize>| -> Option<i64> {
                    tz[r].iter().try_fold(0i64, |acc, b| b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0')))
                };
                sign * (digits(1..3)? * 3600 + digits(4..6)? * 60)
            }
        };
        let days = days_from_civil(number(0..4)?, number(5..7)?, number(8..10)?);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
        u64::try_from(secs * 1000 + millis).ok().map(Millis)
    }
}

/// Days since 1970-01-01 of a date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let yoe = year - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether `date` is a real calendar day written `YYYY-MM-DD`, as Go's
/// `time.Parse("2006-01-02", date)` accepts it (the server skips usage rows
/// that fail this).
pub(crate) fn is_valid_date(date: &str) -> bool {
    let bytes = date.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range].iter().try_fold(0u32, |acc, b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339() {
        let start = Millis(DEFAULT_START_MILLIS);
        assert_eq!(Millis::parse_rfc3339("2026-01-01T00:00:00Z"), Some(start));
        assert_eq!(Millis::parse_rfc3339("2026-01-01T01:00:00.5+01:00"), Some(Millis(DEFAULT_START_MILLIS + 500)));
        assert_eq!(
            Millis::parse_rfc3339("2000-02-29T01:02:03Z").map(Millis::rfc3339).as_deref(),
            Some("2000-02-29T01:02:03Z")
        );
        assert_eq!(Millis::parse_rfc3339("2026-02-30T00:00:00Z"), None);
        assert_eq!(Millis::parse_rfc3339("tomorrow"), None);
        assert_eq!(Millis::parse_rfc3339("2026-01-01T00:00:00"), None);
    }

    #[test]
    fn formats_database_times_as_go_marshals_them() {
        let second = Millis(DEFAULT_START_MILLIS);
        assert_eq!(DbTime::at(second, 0).rfc3339_nano(), "2026-01-01T00:00:00Z");
        assert_eq!(DbTime::at(second, 301).rfc3339_nano(), "2026-01-01T00:00:00.000301Z");
        assert_eq!(DbTime::at(Millis(DEFAULT_START_MILLIS + 500), 0).rfc3339_nano(), "2026-01-01T00:00:00.5Z");
        assert_eq!(DbTime::at(Millis(DEFAULT_START_MILLIS + 970), 10).rfc3339_nano(), "2026-01-01T00:00:00.97001Z");
    }

    #[test]
    fn formats_rfc3339_like_go() {
        assert_eq!(Millis(DEFAULT_START_MILLIS).rfc3339(), "2026-01-01T00:00:00Z");
        assert_eq!(Millis(0).rfc3339(), "1970-01-01T00:00:00Z");
        // The server writes seconds only (every recorded timestamp is whole).
        assert_eq!(Millis(951_782_400_000 + 3_723_250).rfc3339(), "2000-02-29T01:02:03Z");
        let later = Millis(DEFAULT_START_MILLIS).after(Duration::from_secs(600));
        assert_eq!(later.rfc3339(), "2026-01-01T00:10:00Z");
    }

    #[test]
    fn validates_dates_as_go_parses_them() {
        for good in ["2026-01-31", "2024-02-29", "2000-02-29", "0001-01-01"] {
            assert!(is_valid_date(good), "{good}");
        }
        for bad in [
            "2026-02-29",
            "1900-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "2026-1-01",
            "26-01-01",
            "",
            "2026/01/01",
            "2026-01-0x",
        ] {
            assert!(!is_valid_date(bad), "{bad}");
        }
    }
}
