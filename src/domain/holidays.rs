//! `Holidays`: the days an exchange does not trade, or closes early.
//!
//! The NYSE rules are computed, not listed, so any year works: fixed-date holidays move to
//! Friday when they fall on a Saturday and to Monday on a Sunday (New Year's Day is not moved
//! back to December 31: NYSE Rule 7.2), the Monday holidays are counted from the month's
//! start or end, and Good Friday follows Easter. Early closes (13:00) are the day after
//! Thanksgiving and July 3 and December 24 when they fall Monday to Thursday.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};

/// A holiday rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Holidays {
    /// Every weekday is a full session.
    None,
    /// New York Stock Exchange (also Nasdaq).
    Nyse,
}

/// What kind of day a weekday is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    /// A full session.
    Regular,
    /// No session.
    Closed,
    /// The session ends at this local time.
    EarlyClose(NaiveTime),
}

impl Holidays {
    /// The kind of `date` (a weekday) under these rules.
    pub fn day(self, date: NaiveDate) -> DayKind {
        match self {
            Self::None => DayKind::Regular,
            Self::Nyse => nyse(date),
        }
    }
}

fn nyse(date: NaiveDate) -> DayKind {
    let year = date.year();
    let ymd = |m, d| NaiveDate::from_ymd_opt(year, m, d);
    let observed = |m, d| {
        ymd(m, d).map(|h| match h.weekday() {
            Weekday::Sat => h - Duration::days(1),
            Weekday::Sun => h + Duration::days(1),
            _ => h,
        })
    };
    let nth = |m, weekday, n| NaiveDate::from_weekday_of_month_opt(year, m, weekday, n);
    let last_monday_of_may =
        ymd(5, 31).map(|d| d - Duration::days(i64::from(d.weekday().num_days_from_monday())));
    let new_year = ymd(1, 1).map(|h| match h.weekday() {
        Weekday::Sun => h + Duration::days(1),
        _ => h,
    });
    let closed = [
        new_year,
        nth(1, Weekday::Mon, 3),
        nth(2, Weekday::Mon, 3),
        easter(year).map(|e| e - Duration::days(2)),
        last_monday_of_may,
        if year >= 2022 { observed(6, 19) } else { None },
        observed(7, 4),
        nth(9, Weekday::Mon, 1),
        nth(11, Weekday::Thu, 4),
        observed(12, 25),
    ];
    if closed.contains(&Some(date)) {
        return DayKind::Closed;
    }
    let mon_to_thu = |d: Option<NaiveDate>| d.filter(|d| d.weekday().num_days_from_monday() < 4);
    let early = [
        nth(11, Weekday::Thu, 4).map(|t| t + Duration::days(1)),
        mon_to_thu(ymd(7, 3)),
        mon_to_thu(ymd(12, 24)),
    ];
    if early.contains(&Some(date)) {
        // unwrap: constant, valid time.
        return DayKind::EarlyClose(NaiveTime::from_hms_opt(13, 0, 0).unwrap());
    }
    DayKind::Regular
}

/// Western Easter Sunday (the anonymous Gregorian algorithm).
fn easter(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn nyse_holidays_match_the_published_calendars() {
        // NYSE's published holiday lists for 2024 and 2025, and the moved ones of other years.
        let closed = [
            "2024-01-01",
            "2024-01-15",
            "2024-02-19",
            "2024-03-29",
            "2024-05-27",
            "2024-06-19",
            "2024-07-04",
            "2024-09-02",
            "2024-11-28",
            "2024-12-25",
            "2025-01-01",
            "2025-01-20",
            "2025-02-17",
            "2025-04-18",
            "2025-05-26",
            "2025-06-19",
            "2025-07-04",
            "2025-09-01",
            "2025-11-27",
            "2025-12-25",
            "2021-12-24",
            "2020-07-03",
            "2023-01-02",
            "2022-06-20",
            "2026-07-03",
        ];
        for day in closed {
            assert_eq!(Holidays::Nyse.day(d(day)), DayKind::Closed, "{day}");
        }
        let open = [
            "2024-03-28",
            "2022-12-30",
            "2021-06-18",
            "2024-11-29",
            "2024-07-05",
        ];
        for day in open {
            assert_ne!(Holidays::Nyse.day(d(day)), DayKind::Closed, "{day}");
        }
        assert_eq!(Holidays::None.day(d("2024-12-25")), DayKind::Regular);
    }

    #[test]
    fn nyse_early_closes_are_at_one_pm() {
        let one = DayKind::EarlyClose(NaiveTime::from_hms_opt(13, 0, 0).unwrap());
        for day in [
            "2024-07-03",
            "2024-11-29",
            "2024-12-24",
            "2025-07-03",
            "2025-12-24",
        ] {
            assert_eq!(Holidays::Nyse.day(d(day)), one, "{day}");
        }
        assert_eq!(Holidays::Nyse.day(d("2024-07-02")), DayKind::Regular);
    }

    #[test]
    fn easter_dates() {
        assert_eq!(easter(2024), Some(d("2024-03-31")));
        assert_eq!(easter(2025), Some(d("2025-04-20")));
        assert_eq!(easter(2019), Some(d("2019-04-21")));
    }
}
