//! `Timestamp` (UTC microseconds) and the lenient timestamp parser used at every input edge.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::fmt;

/// Microseconds in one second.
pub const MICROS_PER_SECOND: i64 = 1_000_000;
/// Microseconds in one minute.
pub const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;

/// An instant in UTC, as whole microseconds since the Unix epoch.
///
/// Microseconds are PostgreSQL's `TIMESTAMPTZ` resolution and finer than any feed we read
/// (Yahoo and TwelveData send milliseconds or seconds), so nothing is rounded on the way to
/// the database. Plain integer arithmetic keeps bucketing on the hot path cheap.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `micros` microseconds after the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// The instant `millis` milliseconds after the Unix epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis * 1_000)
    }

    /// The instant `secs` seconds after the Unix epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs * MICROS_PER_SECOND)
    }

    /// Microseconds since the Unix epoch.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// This instant moved by `micros` (negative moves back), saturating at the ends of `i64`.
    pub const fn add_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros))
    }

    /// The earliest instant any input may name: 0001-01-01T00:00:00Z.
    pub const MIN: Self = Self(-62_135_596_800_000_000);
    /// The latest: 9999-12-31T23:59:59.999999Z (four-digit years: RFC 3339, PostgreSQL and
    /// chrono all hold every instant in between).
    pub const MAX: Self = Self(253_402_300_799_999_999);

    /// Whether this instant is within [`Self::MIN`]..=[`Self::MAX`] (every parsed input is).
    pub const fn is_supported(self) -> bool {
        self.0 >= Self::MIN.0 && self.0 <= Self::MAX.0
    }

    /// The same instant as a chrono value. Instants beyond chrono's range (±262,000 years;
    /// only reachable by arithmetic past [`Self::MAX`], never by parsing) are clamped to it.
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).unwrap_or(if self.0 < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
    }

    /// The instant of a chrono value, truncated to microseconds.
    pub fn from_datetime<T: TimeZone>(dt: &DateTime<T>) -> Self {
        Self(dt.timestamp_micros())
    }

    /// RFC 3339 text with a `Z` suffix and as many fractional digits as needed.
    ///
    /// Formatted by hand (chrono's general formatter dominated JSON encoding on the hot
    /// paths); the tests compare it with chrono's `to_rfc3339_opts(AutoSi, true)`.
    pub fn to_rfc3339(self) -> String {
        let mut out = String::with_capacity(27);
        self.write_iso(&mut out, None);
        out
    }

    /// Appends this instant as `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]Z`, or, given a UTC offset,
    /// the local wall-clock time as `YYYY-MM-DD HH:MM:SS[.fff|.ffffff]` (no zone).
    pub fn write_iso(self, out: &mut String, local_offset_secs: Option<i64>) {
        let offset_secs = local_offset_secs.unwrap_or(0);
        let micros = self.0 + offset_secs * MICROS_PER_SECOND;
        let secs = micros.div_euclid(MICROS_PER_SECOND);
        let frac = micros.rem_euclid(MICROS_PER_SECOND);
        let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        let two = |out: &mut String, v: i64| {
            out.push((b'0' + (v / 10) as u8) as char);
            out.push((b'0' + (v % 10) as u8) as char);
        };
        if (0..=9999).contains(&y) {
            two(out, y / 100);
            two(out, y % 100);
        } else {
            use std::fmt::Write;
            // unwrap: writing to a String cannot fail.
            write!(out, "{y:+05}").unwrap();
        }
        out.push('-');
        two(out, m);
        out.push('-');
        two(out, d);
        out.push(if local_offset_secs.is_none() {
            'T'
        } else {
            ' '
        });
        two(out, sod / 3600);
        out.push(':');
        two(out, sod / 60 % 60);
        out.push(':');
        two(out, sod % 60);
        if frac != 0 {
            use std::fmt::Write;
            // unwrap: writing to a String cannot fail.
            if frac % 1000 == 0 {
                write!(out, ".{:03}", frac / 1000).unwrap();
            } else {
                write!(out, ".{frac:06}").unwrap();
            }
        }
        if local_offset_secs.is_none() {
            out.push('Z');
        }
    }
}

/// Proleptic Gregorian `(year, month, day)` of `days` since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Why a text is not a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("{0:?} is not a date, a date-time or an epoch number")]
    Unparsable(String),
    #[error("{text:?} does not exist in {tz} (skipped by a daylight-saving change)")]
    NonexistentLocalTime { text: String, tz: Tz },
    #[error("{0} is out of range (years 0001 to 9999)")]
    OutOfRange(String),
}

/// Converts an epoch number to an instant, telling its unit from its magnitude.
///
/// Below 1e11 the number is seconds (1e11 s is the year 5138), below 1e14 milliseconds,
/// below 1e17 microseconds, otherwise nanoseconds. The reference platform switched to
/// milliseconds only above 1e12, so epoch-ms values before 2001 were read as seconds.
/// So seconds after the year 5138 cannot be written as a number (they read as milliseconds:
/// use a date text); a negative number is taken as seconds only (before 1970 back to the
/// year 0001): a negative millisecond, microsecond or nanosecond count is refused rather
/// than guessed (`i64::MIN` read as nanoseconds would be the year 1677).
///
/// # Errors
/// Returns [`TimeError::OutOfRange`] for non-finite numbers, negative numbers of 1e11 or
/// more, and instants outside the years 0001 to 9999.
pub fn timestamp_from_epoch(value: f64) -> Result<Timestamp, TimeError> {
    let magnitude = value.abs();
    if !value.is_finite() || (value < 0.0 && magnitude >= 1e11) {
        return Err(TimeError::OutOfRange(value.to_string()));
    }
    let micros = if magnitude < 1e11 {
        value * 1e6
    } else if magnitude < 1e14 {
        value * 1e3
    } else if magnitude < 1e17 {
        value
    } else {
        value / 1e3
    };
    // `as i64` saturates; the range check below refuses what it would have clamped.
    // Round, not truncate: 1700000000.123 s is 1700000000122999.9 µs in binary.
    let ts = Timestamp(micros.round() as i64);
    if !ts.is_supported() {
        return Err(TimeError::OutOfRange(value.to_string()));
    }
    Ok(ts)
}

/// Parses a timestamp in any of the forms market data arrives in.
///
/// Accepted: an epoch number (see [`timestamp_from_epoch`]); RFC 3339 / ISO 8601 with a `Z`
/// or numeric offset (`T` or space separator); a naive date-time `YYYY-MM-DD[ T]HH:MM[:SS[.f]]`
/// or a bare date `YYYY-MM-DD` (midnight), both read as wall-clock time in `naive_tz`.
/// An ambiguous wall-clock time (the repeated hour when daylight saving ends) resolves to
/// the earlier instant.
///
/// # Errors
/// [`TimeError::Unparsable`] for anything else; [`TimeError::NonexistentLocalTime`] for a
/// naive time inside the hour skipped when daylight saving starts;
/// [`TimeError::OutOfRange`] outside the years 0001 to 9999.
pub fn parse_timestamp(text: &str, naive_tz: Tz) -> Result<Timestamp, TimeError> {
    let ts = parse_any_timestamp(text, naive_tz)?;
    if !ts.is_supported() {
        return Err(TimeError::OutOfRange(text.trim().to_owned()));
    }
    Ok(ts)
}

fn parse_any_timestamp(text: &str, naive_tz: Tz) -> Result<Timestamp, TimeError> {
    let t = text.trim();
    let first = t.as_bytes().first().copied().unwrap_or(b' ');
    let looks_numeric = (first.is_ascii_digit() || first == b'-' || first == b'+')
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && !looks_like_date(t);
    if looks_numeric {
        let value: f64 = t.parse().map_err(|_| TimeError::Unparsable(t.to_owned()))?;
        return timestamp_from_epoch(value);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(Timestamp::from_datetime(&dt));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(dt) = DateTime::parse_from_str(t, fmt) {
            return Ok(Timestamp::from_datetime(&dt));
        }
    }
    let naive = parse_naive(t).ok_or_else(|| TimeError::Unparsable(t.to_owned()))?;
    local_to_utc(naive, naive_tz).ok_or_else(|| TimeError::NonexistentLocalTime {
        text: t.to_owned(),
        tz: naive_tz,
    })
}

/// The instant of a wall-clock time in `tz`; the earlier one when ambiguous, `None` when the
/// time does not exist there.
pub fn local_to_utc(naive: NaiveDateTime, tz: Tz) -> Option<Timestamp> {
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|dt| Timestamp::from_datetime(&dt))
}

fn looks_like_date(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() >= 10 && b[4] == b'-' && b[7] == b'-'
}

fn parse_naive(t: &str) -> Option<NaiveDateTime> {
    const FORMATS: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ];
    FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::UTC;

    fn utc(text: &str) -> Timestamp {
        parse_timestamp(text, UTC).unwrap()
    }

    #[test]
    fn epoch_units_are_told_by_magnitude() {
        let expected = Timestamp::from_millis(1_755_546_185_000);
        assert_eq!(utc("1755546185"), expected);
        assert_eq!(utc("1755546185000"), expected);
        assert_eq!(utc("1755546185000000"), expected);
        assert_eq!(utc("1755546185000000000"), expected);
        assert_eq!(
            utc("1755546185.123"),
            Timestamp::from_millis(1_755_546_185_123)
        );
    }

    #[test]
    fn negative_epoch_numbers_are_seconds_or_refused() {
        assert_eq!(utc("-86400"), Timestamp::from_secs(-86_400));
        for text in ["-631152000000", "-9223372036854775808", "-1e11"] {
            assert!(
                matches!(parse_timestamp(text, UTC), Err(TimeError::OutOfRange(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn epoch_milliseconds_before_2001_are_not_read_as_seconds() {
        // 1990-01-01T00:00:00Z in ms: below the reference's 1e12 threshold.
        assert_eq!(utc("631152000000"), Timestamp::from_secs(631_152_000));
    }

    #[test]
    fn iso_forms_with_offsets_are_honoured() {
        let t = Timestamp::from_secs(1_704_205_800);
        assert_eq!(utc("2024-01-02T14:30:00Z"), t);
        assert_eq!(utc("2024-01-02T09:30:00-05:00"), t);
        assert_eq!(utc("2024-01-02 14:30:00+00:00"), t);
        assert_eq!(utc("2024-01-02 14:30:00.000+0000"), t);
    }

    #[test]
    fn naive_times_use_the_given_zone() {
        let t = Timestamp::from_secs(1_704_205_800);
        assert_eq!(utc("2024-01-02 14:30:00"), t);
        assert_eq!(utc("2024-01-02T14:30"), t);
        assert_eq!(parse_timestamp("2024-01-02 09:30:00", New_York).unwrap(), t);
        assert_eq!(utc("2024-01-02"), Timestamp::from_secs(1_704_153_600));
    }

    #[test]
    fn microseconds_survive_parsing() {
        let t = utc("2025-08-18T19:43:05.123456");
        assert_eq!(t.micros() % 1_000_000, 123_456);
    }

    #[test]
    fn skipped_local_hour_is_an_error_and_repeated_hour_takes_the_first() {
        assert!(matches!(
            parse_timestamp("2024-03-10 02:30:00", New_York),
            Err(TimeError::NonexistentLocalTime { .. })
        ));
        // 01:30 EDT (UTC-4) comes before 01:30 EST on 2024-11-03.
        assert_eq!(
            parse_timestamp("2024-11-03 01:30:00", New_York).unwrap(),
            utc("2024-11-03T05:30:00Z")
        );
    }

    #[test]
    fn hand_formatting_equals_chrono_to_the_microsecond() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for i in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Years 1900–2100, with whole seconds, milliseconds and microseconds.
            let micros = (x % 6_311_433_600_000_000) as i64 - 2_208_988_800_000_000;
            let micros = match i % 3 {
                0 => micros - micros.rem_euclid(1_000_000),
                1 => micros - micros.rem_euclid(1_000),
                _ => micros,
            };
            let t = Timestamp::from_micros(micros);
            let want = t
                .to_datetime()
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            assert_eq!(t.to_rfc3339(), want, "{micros}");
        }
        assert_eq!(
            Timestamp::from_micros(-1).to_rfc3339(),
            "1969-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "12:30",
            "1e400",
            "NaN",
            "2024-01-02 25:00",
        ] {
            assert!(parse_timestamp(bad, UTC).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn instants_outside_years_1_to_9999_are_refused_not_panicked_on() {
        for bad in [
            "9.1e21",
            "-9.1e21",
            "8.3e21",
            "3e20",
            "10000-01-01T00:00:00Z",
            "+10000-01-01T00:00:00Z",
            "-0001-12-31T00:00:00Z",
        ] {
            assert!(
                matches!(
                    parse_timestamp(bad, UTC),
                    Err(TimeError::OutOfRange(_) | TimeError::Unparsable(_))
                ),
                "{bad:?} should be refused"
            );
        }
        assert!(matches!(
            timestamp_from_epoch(8.3e21),
            Err(TimeError::OutOfRange(_))
        ));
        assert!(Timestamp::MAX.is_supported() && Timestamp::MIN.is_supported());
        assert_eq!(Timestamp::MAX.to_rfc3339(), "9999-12-31T23:59:59.999999Z");
        assert_eq!(Timestamp::MIN.to_rfc3339(), "0001-01-01T00:00:00Z");
        // Arithmetic past the ends clamps instead of panicking.
        let far = Timestamp::from_micros(i64::MAX);
        assert_eq!(far.to_datetime(), DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            Timestamp::from_micros(i64::MIN).to_datetime(),
            DateTime::<Utc>::MIN_UTC
        );
    }
}
