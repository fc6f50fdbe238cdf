//! `TradingCalendar`: when a symbol's trading day starts and ends.

use crate::domain::holidays::{DayKind, Holidays};
use crate::domain::interval::Interval;
use crate::domain::time::Timestamp;
use chrono::{Datelike, NaiveTime, Weekday};
use chrono_tz::Tz;
use std::fmt;
use std::str::FromStr;

/// A calendar that defines daily sessions, the anchor of daily bars and session VWAP.
///
/// Intraday bars do not use it (they are aligned to UTC); daily bars cover exactly one
/// session, so pre- and post-market trades do not leak into an equity's daily bar (the
/// reference bucketed daily bars by UTC midnight, extended hours included).
///
/// Exchange calendars know their holidays and early closes ([`Holidays`]): a holiday has no
/// session, an early close ends the session (and the daily bar) at the early time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TradingCalendar {
    /// Round the clock, every day; sessions are UTC days (crypto, FX).
    Utc24h,
    /// A weekday session between two wall-clock times in an exchange's zone.
    Exchange {
        /// The exchange's time zone; sessions follow its daylight-saving rules.
        tz: Tz,
        /// Local opening time.
        open: NaiveTime,
        /// Local closing time (after `open`).
        close: NaiveTime,
        /// Days without a session or with an early close.
        holidays: Holidays,
    },
}

/// A trading session: the span `[start, end)` of one daily bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    /// First instant of the session.
    pub start: Timestamp,
    /// First instant after the session.
    pub end: Timestamp,
    /// The session's local date as days since 1970-01-01 (a stable key for anchoring).
    pub day: i32,
}

/// The text names no known calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown calendar {0:?}; valid: us-equity, utc")]
pub struct CalendarError(pub String);

impl TradingCalendar {
    /// US equities: New York, 09:30–16:00, Monday to Friday.
    pub fn us_equity() -> Self {
        Self::Exchange {
            tz: chrono_tz::America::New_York,
            // unwrap: constant, valid times.
            open: NaiveTime::from_hms_opt(9, 30, 0).unwrap(),
            close: NaiveTime::from_hms_opt(16, 0, 0).unwrap(),
            holidays: Holidays::Nyse,
        }
    }

    /// The time zone in which session dates are counted.
    pub fn tz(&self) -> Tz {
        match self {
            Self::Utc24h => chrono_tz::UTC,
            Self::Exchange { tz, .. } => *tz,
        }
    }

    /// The session containing `ts`, or `None` outside trading hours.
    pub fn session_at(&self, ts: Timestamp) -> Option<Session> {
        let date = ts.to_datetime().with_timezone(&self.tz()).date_naive();
        self.session_on(date)
            .filter(|s| s.start <= ts && ts < s.end)
    }

    /// The session of the local date `date`, or `None` on weekends and holidays.
    pub fn session_on(&self, date: chrono::NaiveDate) -> Option<Session> {
        let day = (date - chrono::NaiveDate::default()).num_days() as i32;
        match *self {
            Self::Utc24h => {
                let start = Timestamp::from_secs(i64::from(day) * 86_400);
                Some(Session {
                    start,
                    end: start.add_micros(86_400 * 1_000_000),
                    day,
                })
            }
            Self::Exchange {
                tz,
                open,
                close,
                holidays,
            } => {
                if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
                    return None;
                }
                let close = match holidays.day(date) {
                    DayKind::Closed => return None,
                    DayKind::EarlyClose(early) => early.min(close),
                    DayKind::Regular => close,
                };
                let start = crate::domain::time::local_to_utc(date.and_time(open), tz)?;
                let end = crate::domain::time::local_to_utc(date.and_time(close), tz)?;
                Some(Session { start, end, day })
            }
        }
    }

    /// The calendar's local day containing `ts`: days since 1970-01-01 and the day's UTC
    /// span `[start, end)` (23 or 25 hours long across daylight-saving changes).
    pub fn local_day(&self, ts: Timestamp) -> (i32, Timestamp, Timestamp) {
        let tz = self.tz();
        let date = ts.to_datetime().with_timezone(&tz).date_naive();
        let day = (date - chrono::NaiveDate::default()).num_days() as i32;
        let midnight = |d: chrono::NaiveDate| {
            // A zone whose clocks skip midnight starts the day at the first valid instant.
            (0..24 * 60)
                .find_map(|m| {
                    crate::domain::time::local_to_utc(
                        d.and_time(NaiveTime::MIN) + chrono::Duration::minutes(m),
                        tz,
                    )
                })
                .unwrap_or(ts)
        };
        let next = date.succ_opt().unwrap_or(date);
        (day, midnight(date), midnight(next))
    }

    /// How many bars of `interval` a year holds, used to annualise volatility.
    ///
    /// Exchange calendars: 252 sessions a year, each `close − open` long (390 minutes for
    /// US equities, so 98,280 one-minute bars). `Utc24h`: 365 days of 1,440 minutes. An hour
    /// bar on a 6.5-hour session counts as 6.5 per day: the last, partial bar is a full
    /// observation of its own but the approximation stays within one bar a day.
    pub fn periods_per_year(&self, interval: Interval) -> f64 {
        let (days, minutes_per_day) = match self {
            Self::Utc24h => (365.0, 1440.0),
            Self::Exchange { open, close, .. } => (252.0, (*close - *open).num_minutes() as f64),
        };
        if interval.is_daily() {
            days
        } else {
            days * minutes_per_day / f64::from(interval.minutes())
        }
    }
}

impl FromStr for TradingCalendar {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "us-equity" | "us_equity" | "nyse" | "nasdaq" => Ok(Self::us_equity()),
            "utc" | "24h" | "crypto" => Ok(Self::Utc24h),
            _ => Err(CalendarError(s.to_owned())),
        }
    }
}

impl fmt::Display for TradingCalendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Utc24h => f.write_str("utc"),
            Self::Exchange {
                tz, open, close, ..
            } => write!(f, "{tz} {open}-{close}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::parse_timestamp;

    fn ts(text: &str) -> Timestamp {
        parse_timestamp(text, chrono_tz::UTC).unwrap()
    }

    #[test]
    fn us_session_moves_with_daylight_saving_in_spring() {
        let cal = TradingCalendar::us_equity();
        // Friday 2024-03-08 is EST (UTC-5); Monday 2024-03-11 is EDT (UTC-4).
        let fri = cal.session_at(ts("2024-03-08T15:00:00Z")).unwrap();
        assert_eq!(
            (fri.start, fri.end),
            (ts("2024-03-08T14:30:00Z"), ts("2024-03-08T21:00:00Z"))
        );
        let mon = cal.session_at(ts("2024-03-11T15:00:00Z")).unwrap();
        assert_eq!(
            (mon.start, mon.end),
            (ts("2024-03-11T13:30:00Z"), ts("2024-03-11T20:00:00Z"))
        );
        assert_eq!(cal.session_at(ts("2024-03-10T15:00:00Z")), None, "Sunday");
    }

    #[test]
    fn us_holidays_have_no_session_and_early_closes_end_at_one() {
        let cal = TradingCalendar::us_equity();
        assert_eq!(
            cal.session_at(ts("2024-12-25T15:00:00Z")),
            None,
            "Christmas"
        );
        let eve = cal.session_at(ts("2024-12-24T15:00:00Z")).unwrap();
        assert_eq!(eve.end, ts("2024-12-24T18:00:00Z"));
        assert_eq!(
            cal.session_at(ts("2024-12-24T18:30:00Z")),
            None,
            "after the early close"
        );
    }

    #[test]
    fn us_session_moves_with_daylight_saving_in_autumn() {
        let cal = TradingCalendar::us_equity();
        let fri = cal.session_at(ts("2024-11-01T14:00:00Z")).unwrap();
        assert_eq!(fri.start, ts("2024-11-01T13:30:00Z"));
        let mon = cal.session_at(ts("2024-11-04T15:00:00Z")).unwrap();
        assert_eq!(
            (mon.start, mon.end),
            (ts("2024-11-04T14:30:00Z"), ts("2024-11-04T21:00:00Z"))
        );
        assert_eq!(
            cal.session_at(ts("2024-11-04T14:29:59.999Z")),
            None,
            "pre-market"
        );
        assert_eq!(
            cal.session_at(ts("2024-11-04T21:00:00Z")),
            None,
            "close is exclusive"
        );
    }

    #[test]
    fn utc_sessions_are_utc_days_including_weekends() {
        let s = TradingCalendar::Utc24h
            .session_at(ts("2024-03-10T23:59:59Z"))
            .unwrap();
        assert_eq!(
            (s.start, s.end),
            (ts("2024-03-10T00:00:00Z"), ts("2024-03-11T00:00:00Z"))
        );
    }

    #[test]
    fn local_days_are_23_and_25_hours_long_on_dst_sundays() {
        let cal = TradingCalendar::us_equity();
        let (_, s, e) = cal.local_day(ts("2024-03-10T12:00:00Z"));
        assert_eq!(
            (s, e),
            (ts("2024-03-10T05:00:00Z"), ts("2024-03-11T04:00:00Z"))
        );
        let (_, s, e) = cal.local_day(ts("2024-11-03T12:00:00Z"));
        assert_eq!(
            (s, e),
            (ts("2024-11-03T04:00:00Z"), ts("2024-11-04T05:00:00Z"))
        );
    }

    #[test]
    fn periods_per_year_follow_session_length() {
        let us = TradingCalendar::us_equity();
        assert_eq!(us.periods_per_year(Interval::D1), 252.0);
        assert_eq!(us.periods_per_year(Interval::M1), 252.0 * 390.0);
        assert_eq!(us.periods_per_year(Interval::M5), 252.0 * 78.0);
        assert_eq!(
            TradingCalendar::Utc24h.periods_per_year(Interval::H1),
            365.0 * 24.0
        );
    }
}
