//! Query-string and path parameters, parsed and validated at the edge: each failure is an
//! [`ApiError`] naming the parameter, never a panic or a 500.

use crate::domain::{Interval, Symbol, Timestamp};
use crate::store::query::{DateRange, TimeRange};
use crate::web::errors::ApiError;
use chrono::{Duration, NaiveDate, NaiveTime};
use chrono_tz::America::New_York;
use serde_json::json;

/// The query string as ordered pairs (`indicators` may repeat).
pub struct Params(Vec<(String, String)>);

/// Response format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Params {
    /// Parses a raw query string.
    ///
    /// # Errors
    /// A 400 when it is not valid `application/x-www-form-urlencoded`.
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        serde_urlencoded::from_str(query)
            .map(Self)
            .map_err(|e| ApiError::BadRequest(format!("malformed query string: {e}")))
    }

    /// The last value of `name`, if given and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable parameter (also accepts comma-separated lists).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// An integer within `[min, max]`, or `default` when absent.
    ///
    /// # Errors
    /// A 422 naming `name` for a non-integer or a value out of bounds.
    pub fn int(
        &self,
        name: &str,
        default: Option<i64>,
        min: i64,
        max: i64,
    ) -> Result<Option<i64>, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        bounded(raw, min, max).map(Some).map_err(|e| match e {
            Bound::NotInt => {
                ApiError::query(name, "int_parsing", "Input should be a valid integer", raw)
            }
            Bound::Low => ApiError::query(
                name,
                "greater_than_equal",
                format!("Input should be greater than or equal to {min}"),
                raw,
            )
            .with_ctx(json!({ "ge": min })),
            Bound::High => ApiError::query(
                name,
                "less_than_equal",
                format!("Input should be less than or equal to {max}"),
                raw,
            )
            .with_ctx(json!({ "le": max })),
        })
    }

    /// A `YYYY-MM-DD` date.
    ///
    /// # Errors
    /// A 422 naming `name`.
    pub fn date(&self, name: &str) -> Result<Option<NaiveDate>, ApiError> {
        self.get(name)
            .map(|raw| {
                NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
                    ApiError::query(
                        name,
                        "date_from_datetime_parsing",
                        "Input should be a valid date in YYYY-MM-DD format",
                        raw,
                    )
                })
            })
            .transpose()
    }

    /// An `HH:MM` or `HH:MM:SS` time; the flag tells whether seconds were given.
    ///
    /// # Errors
    /// A 422 naming `name`.
    pub fn time(&self, name: &str) -> Result<Option<(NaiveTime, bool)>, ApiError> {
        self.get(name)
            .map(|raw| {
                NaiveTime::parse_from_str(raw, "%H:%M:%S")
                    .map(|t| (t, true))
                    .or_else(|_| NaiveTime::parse_from_str(raw, "%H:%M").map(|t| (t, false)))
                    .map_err(|_| {
                        ApiError::query(
                            name,
                            "time_parsing",
                            "Input should be a valid time as HH:MM or HH:MM:SS",
                            raw,
                        )
                    })
            })
            .transpose()
    }

    /// `format=json` (default) or `format=csv`.
    ///
    /// # Errors
    /// A 422 for anything else.
    pub fn format(&self) -> Result<Format, ApiError> {
        match self.get("format").map(str::to_ascii_lowercase).as_deref() {
            None | Some("json") => Ok(Format::Json),
            Some("csv") => Ok(Format::Csv),
            Some(other) => Err(ApiError::query(
                "format",
                "enum",
                "Input should be 'json' or 'csv'",
                other,
            )),
        }
    }

    /// The intraday `interval` (default `5min`).
    ///
    /// # Errors
    /// A 400 listing the valid intervals (the reference's message).
    pub fn intraday_interval(&self) -> Result<Interval, ApiError> {
        let raw = self.get("interval").unwrap_or("5min");
        match raw.parse::<Interval>() {
            Ok(i) if !i.is_daily() => Ok(i),
            _ => Err(ApiError::BadRequest(format!(
                "Invalid interval: {raw}. Valid intervals: ['1min', '5min', '15min', '30min', '1h', '4h']"
            ))),
        }
    }

    /// The instants selected by `last_<unit>` (`unit_minutes` per unit, bounded by `max`) or
    /// by `date` [+ `start_time`/`end_time`] or `start_date`/`end_date`, all New York time
    /// and inclusive. `default_last` applies when nothing else is given.
    ///
    /// # Errors
    /// A 422 naming the bad parameter.
    pub fn time_range(
        &self,
        last: Option<(&str, i64, i64)>,
        default_last: Option<i64>,
    ) -> Result<TimeRange, ApiError> {
        let now = Timestamp::from_datetime(&chrono::Utc::now());
        if let Some((name, unit_minutes, max)) = last
            && let Some(n) = self.int(name, None, 1, max)?
        {
            return Ok(TimeRange {
                from: Some(now.add_micros(-n * unit_minutes * 60_000_000)),
                to: None,
            });
        }
        if let Some(date) = self.date("date")? {
            let from = match self.time("start_time")? {
                Some((t, _)) => et(date, t, "start_time")?,
                None => et(date, NaiveTime::MIN, "date")?,
            };
            let to = match self.time("end_time")? {
                // Inclusive to the end of the given minute or second.
                Some((t, secs)) => {
                    et(date, t, "end_time")?.add_micros(if secs { 999_999 } else { 59_999_999 })
                }
                None => end_of_day(date)?,
            };
            return Ok(TimeRange {
                from: Some(from),
                to: Some(to),
            });
        }
        let (start, end) = self.start_end_dates()?;
        if start.is_some() || end.is_some() {
            return Ok(TimeRange {
                from: start
                    .map(|d| et(d, NaiveTime::MIN, "start_date"))
                    .transpose()?,
                to: end.map(end_of_day).transpose()?,
            });
        }
        if let (Some((_, unit_minutes, _)), Some(n)) = (last, default_last) {
            return Ok(TimeRange {
                from: Some(now.add_micros(-n * unit_minutes * 60_000_000)),
                to: None,
            });
        }
        Ok(TimeRange::default())
    }

    /// `start_date` and `end_date`, each optional, in order.
    ///
    /// # Errors
    /// A 422 naming the bad date, or `end_date` when it is before `start_date`.
    fn start_end_dates(&self) -> Result<(Option<NaiveDate>, Option<NaiveDate>), ApiError> {
        let (start, end) = (self.date("start_date")?, self.date("end_date")?);
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            return Err(ApiError::query(
                "end_date",
                "date_order",
                "end_date must not be before start_date",
                &e.to_string(),
            ));
        }
        Ok((start, end))
    }

    /// Session dates selected by `start_date`/`end_date` (inclusive) or `last_days`
    /// (sessions within the last `ceil(1.4 × n)` calendar days, as the reference).
    ///
    /// # Errors
    /// A 422 naming the bad parameter.
    pub fn date_range(&self, max_days: i64) -> Result<DateRange, ApiError> {
        if let Some(n) = self.int("last_days", None, 1, max_days)? {
            let today = chrono::Utc::now().with_timezone(&New_York).date_naive();
            let days = (n * 14 + 9) / 10;
            return Ok(DateRange {
                from: Some(today - Duration::days(days)),
                to: None,
            });
        }
        let (from, to) = self.start_end_dates()?;
        Ok(DateRange { from, to })
    }
}

/// A symbol path parameter (case-insensitive).
///
/// # Errors
/// A 422 naming `symbol`.
pub fn symbol(raw: &str) -> Result<Symbol, ApiError> {
    Symbol::parse(raw).map_err(|e| ApiError::path("symbol", "symbol", e.to_string(), raw))
}

/// A `count` path parameter within `[1, max]`.
///
/// # Errors
/// A 422 naming `count`.
pub fn count(raw: &str, max: i64) -> Result<i64, ApiError> {
    bounded(raw, 1, max).map_err(|e| match e {
        Bound::NotInt => ApiError::path(
            "count",
            "int_parsing",
            "Input should be a valid integer",
            raw,
        ),
        Bound::Low => ApiError::path(
            "count",
            "greater_than_equal",
            "Input should be greater than or equal to 1",
            raw,
        )
        .with_ctx(json!({ "ge": 1 })),
        Bound::High => ApiError::path(
            "count",
            "less_than_equal",
            format!("Input should be less than or equal to {max}"),
            raw,
        )
        .with_ctx(json!({ "le": max })),
    })
}

enum Bound {
    NotInt,
    Low,
    High,
}

fn bounded(raw: &str, min: i64, max: i64) -> Result<i64, Bound> {
    let v: i64 = raw.trim().parse().map_err(|_| Bound::NotInt)?;
    if v < min {
        Err(Bound::Low)
    } else if v > max {
        Err(Bound::High)
    } else {
        Ok(v)
    }
}

/// New York wall-clock `date time` as an instant.
fn et(date: NaiveDate, time: NaiveTime, name: &str) -> Result<Timestamp, ApiError> {
    crate::domain::time::local_to_utc(date.and_time(time), New_York).ok_or_else(|| {
        ApiError::query(
            name,
            "nonexistent_time",
            "this New York time does not exist (daylight-saving change)",
            &format!("{date} {time}"),
        )
    })
}

/// The last microsecond of New York day `date`.
fn end_of_day(date: NaiveDate) -> Result<Timestamp, ApiError> {
    let next = date
        .succ_opt()
        .ok_or_else(|| ApiError::query("date", "date", "date out of range", &date.to_string()))?;
    Ok(et(next, NaiveTime::MIN, "date")?.add_micros(-1))
}

/// `"2024-01-02 10:30:00 EST"`: an instant in New York time (the reference's `timestamp_est`).
pub fn format_est(ts: Timestamp) -> String {
    use chrono::{Offset, TimeZone};
    use chrono_tz::OffsetName;
    let offset = New_York.offset_from_utc_datetime(&ts.to_datetime().naive_utc());
    let whole_seconds = Timestamp::from_micros(ts.micros() - ts.micros().rem_euclid(1_000_000));
    let mut out = String::with_capacity(24);
    whole_seconds.write_iso(&mut out, Some(i64::from(offset.fix().local_minus_utc())));
    out.push(' ');
    out.push_str(offset.abbreviation().unwrap_or("ET"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str) -> Params {
        Params::parse(q).unwrap()
    }

    #[test]
    fn a_date_covers_the_whole_new_york_day_inclusive() {
        let r = p("date=2024-03-10").time_range(None, None).unwrap();
        assert_eq!(r.from.unwrap().to_rfc3339(), "2024-03-10T05:00:00Z");
        assert_eq!(
            r.to.unwrap().to_rfc3339(),
            "2024-03-11T03:59:59.999999Z",
            "23-hour DST day"
        );
    }

    #[test]
    fn start_time_without_end_time_runs_to_the_end_of_the_day() {
        let r = p("date=2024-01-02&start_time=10:30")
            .time_range(None, None)
            .unwrap();
        assert_eq!(r.from.unwrap().to_rfc3339(), "2024-01-02T15:30:00Z");
        assert_eq!(r.to.unwrap().to_rfc3339(), "2024-01-03T04:59:59.999999Z");
        let r = p("date=2024-01-02&start_time=10:30&end_time=10:45")
            .time_range(None, None)
            .unwrap();
        assert_eq!(r.to.unwrap().to_rfc3339(), "2024-01-02T15:45:59.999999Z");
    }

    #[test]
    fn date_ranges_include_both_ends() {
        let r = p("start_date=2024-01-02&end_date=2024-01-03")
            .time_range(None, None)
            .unwrap();
        assert_eq!(r.from.unwrap().to_rfc3339(), "2024-01-02T05:00:00Z");
        assert_eq!(r.to.unwrap().to_rfc3339(), "2024-01-04T04:59:59.999999Z");
        let d = p("start_date=2024-01-02&end_date=2024-01-03")
            .date_range(2000)
            .unwrap();
        assert_eq!(
            (d.from.unwrap().to_string(), d.to.unwrap().to_string()),
            ("2024-01-02".into(), "2024-01-03".into())
        );
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (q, name) in [
            ("limit=0", "limit"),
            ("limit=abc", "limit"),
            ("limit=99999", "limit"),
        ] {
            match p(q).int("limit", Some(100), 1, 5000) {
                Err(ApiError::Validation(f)) => assert_eq!(f.name, name),
                other => panic!("{q}: {other:?}"),
            }
        }
        assert!(
            matches!(p("date=2024-13-01").time_range(None, None), Err(ApiError::Validation(f)) if f.name == "date")
        );
        assert!(
            matches!(p("date=2024-01-01&start_time=25:00").time_range(None, None), Err(ApiError::Validation(f)) if f.name == "start_time")
        );
        assert!(
            matches!(p("start_date=2024-01-05&end_date=2024-01-01").time_range(None, None), Err(ApiError::Validation(f)) if f.name == "end_date")
        );
        assert!(
            matches!(p("date=2024-03-10&start_time=02:30").time_range(None, None), Err(ApiError::Validation(f)) if f.name == "start_time")
        );
        assert!(matches!(
            p("format=xml").format(),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            p("interval=1day").intraday_interval(),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(count("0", 10), Err(ApiError::Validation(_))));
        assert!(matches!(symbol("A B"), Err(ApiError::Validation(_))));
    }

    #[test]
    fn est_formatting_equals_chrono_across_years() {
        for secs in (1_600_000_000i64..1_800_000_000).step_by(3_599_999) {
            let t = Timestamp::from_micros(secs * 1_000_000 + 123_456);
            let want = t
                .to_datetime()
                .with_timezone(&New_York)
                .format("%Y-%m-%d %H:%M:%S %Z")
                .to_string();
            assert_eq!(format_est(t), want);
        }
    }

    #[test]
    fn est_formatting_follows_daylight_saving() {
        assert_eq!(
            format_est(Timestamp::from_secs(1_704_209_400)),
            "2024-01-02 10:30:00 EST"
        );
        assert_eq!(
            format_est(Timestamp::from_secs(1_755_546_185)),
            "2025-08-18 15:43:05 EDT"
        );
    }
}
