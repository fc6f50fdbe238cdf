//! `Interval`: the bar lengths tickflow builds.

use crate::domain::time::MICROS_PER_MINUTE;
use std::fmt;
use std::str::FromStr;

/// A bar length. Intraday intervals are fixed spans aligned to UTC; [`Interval::D1`] is one
/// trading session of the symbol's calendar (see [`crate::domain::TradingCalendar`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Interval {
    M1,
    M5,
    M15,
    M30,
    H1,
    H4,
    D1,
}

/// The text is not one of the supported intervals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid interval {0:?}; valid: 1m 5m 15m 30m 1h 4h 1d (also 1min 5min 15min 30min 1h 4h 1day, or minutes)"
)]
pub struct IntervalError(pub String);

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 7] = [
        Self::M1,
        Self::M5,
        Self::M15,
        Self::M30,
        Self::H1,
        Self::H4,
        Self::D1,
    ];

    /// Nominal length in minutes; 1440 for a daily bar (the reference's `interval_minutes`).
    pub const fn minutes(self) -> u32 {
        match self {
            Self::M1 => 1,
            Self::M5 => 5,
            Self::M15 => 15,
            Self::M30 => 30,
            Self::H1 => 60,
            Self::H4 => 240,
            Self::D1 => 1440,
        }
    }

    /// Nominal length in microseconds.
    pub const fn micros(self) -> i64 {
        self.minutes() as i64 * MICROS_PER_MINUTE
    }

    /// Whether bars of this interval follow the trading calendar rather than the UTC clock.
    pub const fn is_daily(self) -> bool {
        matches!(self, Self::D1)
    }

    /// Canonical short name (`1m`, `5m`, … `1d`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::M1 => "1m",
            Self::M5 => "5m",
            Self::M15 => "15m",
            Self::M30 => "30m",
            Self::H1 => "1h",
            Self::H4 => "4h",
            Self::D1 => "1d",
        }
    }

    /// The reference platform's spelling (`1min`, `5min`, … `1h`, `4h`, `1day`).
    pub const fn reference_name(self) -> &'static str {
        match self {
            Self::M1 => "1min",
            Self::M5 => "5min",
            Self::M15 => "15min",
            Self::M30 => "30min",
            Self::H1 => "1h",
            Self::H4 => "4h",
            Self::D1 => "1day",
        }
    }

    /// The interval of `minutes` minutes, if it is a supported one.
    pub fn from_minutes(minutes: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.minutes() == minutes)
    }
}

impl FromStr for Interval {
    type Err = IntervalError;

    /// Accepts `1m`, `1min`, `1`, `60m`, `1h`, `60`, `1d`, `1day`, `1440`, … case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let err = || IntervalError(s.to_owned());
        let split = lower
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(lower.len());
        let (digits, unit) = lower.split_at(split);
        let count: u32 = digits.parse().map_err(|_| err())?;
        let per_unit = match unit {
            "" | "m" | "min" | "mins" | "minute" | "minutes" => 1,
            "h" | "hr" | "hour" | "hours" => 60,
            "d" | "day" | "days" => 1440,
            _ => return Err(err()),
        };
        count
            .checked_mul(per_unit)
            .and_then(Self::from_minutes)
            .ok_or_else(err)
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_spellings_and_minute_counts_parse() {
        let cases = [
            ("1min", Interval::M1),
            ("5min", Interval::M5),
            ("15min", Interval::M15),
            ("30min", Interval::M30),
            ("1h", Interval::H1),
            ("4h", Interval::H4),
            ("1day", Interval::D1),
            ("5", Interval::M5),
            ("60", Interval::H1),
            ("1440", Interval::D1),
            ("240m", Interval::H4),
            ("1D", Interval::D1),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Interval>().unwrap(), want, "{text}");
        }
    }

    #[test]
    fn canonical_names_round_trip() {
        for i in Interval::ALL {
            assert_eq!(i.as_str().parse::<Interval>().unwrap(), i);
            assert_eq!(i.reference_name().parse::<Interval>().unwrap(), i);
        }
    }

    #[test]
    fn unsupported_intervals_are_refused() {
        for bad in ["", "2m", "2h", "1w", "min", "-5", "5x", "99999999999"] {
            assert!(bad.parse::<Interval>().is_err(), "{bad:?}");
        }
    }
}
