//! `Args`: a request's parameters validated against its route's declared [`Param`]s, and
//! the window (`last_*`, `date`, `start_date`/`end_date`, `before`) they select.
//!
//! Every refusal is an [`ApiError`] naming the parameter, never a panic or a 5xx: unknown
//! parameters, repeated single-valued ones, values out of bounds (dates included, so a year
//! like -5000 never reaches the database), and conflicting windows.

use crate::domain::{Interval, Symbol, Timestamp};
use crate::store::query::{DateRange, TimeRange};
use crate::web::errors::ApiError;
use crate::web::params::{
    EARLIEST_DATE, Format, IndicatorSet, Intervals, Kind, LATEST_DATE, Location, Param, REALTIME,
    py_list,
};
use chrono::{Duration, NaiveDate, NaiveTime};
use chrono_tz::America::New_York;
use serde_json::json;

/// A validated value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Symbol(Symbol),
    Int(i64),
    Date(NaiveDate),
    /// The time, and whether seconds were given.
    Time(NaiveTime, bool),
    Instant(Timestamp),
    /// `None`: realtime.
    Interval(Option<Interval>),
    Names(Vec<String>),
    Format(Format),
    Text(String),
}

impl Value {
    /// The value as it goes into a cache key.
    fn canonical(&self) -> String {
        match self {
            Self::Symbol(s) => s.as_str().to_owned(),
            Self::Int(n) => n.to_string(),
            Self::Date(d) => d.to_string(),
            Self::Time(t, true) => t.format("%H:%M:%S").to_string(),
            Self::Time(t, false) => t.format("%H:%M").to_string(),
            Self::Instant(t) => t.micros().to_string(),
            Self::Interval(i) => i.map_or(REALTIME, Interval::as_str).to_owned(),
            Self::Names(n) => n.join(","),
            Self::Format(Format::Json) => "json".into(),
            Self::Format(Format::Csv) => "csv".into(),
            Self::Text(t) => t.clone(),
        }
    }
}

/// A request's parameters, validated against its route's declared list.
#[derive(Debug)]
pub struct Args {
    declared: &'static [Param],
    /// Given parameters in the order they came (path first), with their values.
    given: Vec<(&'static Param, Value)>,
}

impl Args {
    /// Validates `path` (decoded segments by name) and the raw `query` against `declared`.
    ///
    /// # Errors
    /// A 422 naming an unknown, repeated or invalid parameter (a 400 for an unknown interval
    /// or indicator, with the reference's message; a 404 for an unknown asset).
    pub fn parse<'a>(
        declared: &'static [Param],
        path: impl IntoIterator<Item = (&'a str, &'a str)>,
        query: &str,
    ) -> Result<Self, ApiError> {
        let mut args = Self {
            declared,
            given: Vec::new(),
        };
        for (name, raw) in path {
            let param = declared
                .iter()
                .find(|p| p.location == Location::Path && p.name == name)
                .ok_or(ApiError::Undeclared(
                    "a path segment the route does not declare",
                ))?;
            let value = parse_value(param, raw, None)?;
            args.given.push((param, value));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::BadRequest(format!("malformed query string: {e}")))?;
        // Names given so far, empty values included: `limit=&limit=5` is as repeated as
        // `limit=5&limit=`.
        let mut seen: Vec<&'static str> = Vec::new();
        for (name, raw) in &pairs {
            let param = declared
                .iter()
                .find(|p| p.location == Location::Query && p.name == name)
                .ok_or_else(|| unknown(name, raw, declared))?;
            let earlier = args.given.iter().position(|(p, _)| p.name == param.name);
            let repeated = seen.contains(&param.name);
            seen.push(param.name);
            if repeated && !param.repeatable() {
                return Err(ApiError::query(
                    name,
                    "repeated",
                    format!("give {name} once"),
                    raw,
                ));
            }
            // An empty value is the parameter left out (forms send `date=`).
            if raw.trim().is_empty() {
                continue;
            }
            let previous = earlier.map(|i| args.given.remove(i).1);
            let value = parse_value(param, raw, previous)?;
            args.given.push((param, value));
        }
        Ok(args)
    }

    fn value(&self, name: &str) -> Option<&Value> {
        self.given
            .iter()
            .find(|(p, _)| p.name == name)
            .map(|(_, v)| v)
    }

    fn declared(&self, name: &'static str) -> Result<&'static Param, ApiError> {
        self.declared
            .iter()
            .find(|p| p.name == name)
            .ok_or(ApiError::Undeclared(name))
    }

    /// The `{symbol}`.
    ///
    /// # Errors
    /// When the route declares no symbol (a defect of the route table).
    pub fn symbol(&self) -> Result<Symbol, ApiError> {
        match self.value("symbol") {
            Some(Value::Symbol(s)) => Ok(*s),
            _ => Err(ApiError::Undeclared("symbol")),
        }
    }

    /// An integer parameter (`limit`, `count`): its value or its default.
    ///
    /// # Errors
    /// When the route declares no such parameter, or it has no default and is absent.
    pub fn int(&self, name: &'static str) -> Result<i64, ApiError> {
        let param = self.declared(name)?;
        match (self.value(name), param.kind) {
            (Some(Value::Int(n)), _) => Ok(*n),
            (None, Kind::Limit { default, .. }) => Ok(default),
            _ => Err(ApiError::Undeclared(name)),
        }
    }

    /// The `interval` (its default when absent); `None` for `realtime`.
    ///
    /// # Errors
    /// When the route declares no interval.
    pub fn interval(&self) -> Result<Option<Interval>, ApiError> {
        let param = self.declared("interval")?;
        match (self.value("interval"), param.kind) {
            (Some(Value::Interval(i)), _) => Ok(*i),
            (None, Kind::Interval { default, .. }) => Ok(default.parse().ok()),
            _ => Err(ApiError::Undeclared("interval")),
        }
    }

    /// The `indicators`, or the route's default list.
    ///
    /// # Errors
    /// When the route declares no indicators.
    pub fn indicators(&self) -> Result<Vec<String>, ApiError> {
        let param = self.declared("indicators")?;
        match (self.value("indicators"), param.kind) {
            (Some(Value::Names(n)), _) => Ok(n.clone()),
            (None, Kind::Indicators { default, .. }) => {
                Ok(default.iter().map(|s| (*s).to_owned()).collect())
            }
            _ => Err(ApiError::Undeclared("indicators")),
        }
    }

    /// `format` (JSON unless the route declares it and `csv` is asked).
    pub fn format(&self) -> Format {
        match self.value("format") {
            Some(Value::Format(f)) => *f,
            _ => Format::Json,
        }
    }

    /// A text parameter (`token`, an asset name).
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.value(name) {
            Some(Value::Text(t)) => Some(t),
            _ => None,
        }
    }

    /// The cache key of this request on `route`: the route and every given parameter's
    /// canonical value in declaration order (the token left out).
    pub fn cache_key(&self, route: &str) -> String {
        let mut key = route.to_owned();
        for p in self.declared {
            if p.kind == Kind::Token {
                continue;
            }
            if let Some(v) = self.value(p.name) {
                key.push(if key.len() == route.len() { '?' } else { '&' });
                key.push_str(p.name);
                key.push('=');
                key.push_str(&v.canonical());
            }
        }
        key
    }

    /// The window parameter given first and the one that conflicts with it, if any; and
    /// `start_time`/`end_time` without `date`.
    ///
    /// # Errors
    /// A 422 naming the parameter at fault.
    fn window(&self) -> Result<Window<'_>, ApiError> {
        let group = |p: &Param| match (p.kind, p.name) {
            (Kind::Lookback { .. }, _) => Some(0),
            (_, "date") => Some(1),
            (_, "start_date" | "end_date") => Some(2),
            (Kind::Before { .. }, _) => Some(3),
            _ => None,
        };
        let mut first: Option<(&Param, u8)> = None;
        for (p, _) in &self.given {
            let Some(g) = group(p) else { continue };
            match first {
                None => first = Some((p, g)),
                Some((f, fg)) if fg != g => {
                    return Err(ApiError::query(
                        p.name,
                        "window_conflict",
                        format!(
                            "{} cannot be combined with {}: give one window",
                            p.name, f.name
                        ),
                        &self.value(p.name).map(Value::canonical).unwrap_or_default(),
                    ));
                }
                Some(_) => {}
            }
        }
        if self.value("date").is_none()
            && let Some((p, v)) = self.given.iter().find(|(p, _)| p.kind == Kind::Time)
        {
            return Err(ApiError::query(
                p.name,
                "missing_date",
                format!("{} applies to a date: give date=YYYY-MM-DD too", p.name),
                &v.canonical(),
            ));
        }
        let (start, end) = (self.date("start_date"), self.date("end_date"));
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
        let lookback = self
            .given
            .iter()
            .find_map(|(p, v)| match v {
                Value::Int(n) if p.unit_minutes().is_some() => Some((*p, *n)),
                _ => None,
            })
            .or_else(|| {
                let defaulted = self.declared.iter().find_map(|p| match p.kind {
                    Kind::Lookback {
                        default: Some(n), ..
                    } => Some((p, n)),
                    _ => None,
                });
                defaulted.filter(|_| first.is_none())
            });
        Ok(match (lookback, self.date("date"), self.value("before")) {
            (Some((p, n)), _, _) => Window::Lookback(p, n),
            (None, Some(d), _) => Window::Day(d),
            (None, None, Some(Value::Instant(t))) => Window::BeforeInstant(*t),
            (None, None, Some(Value::Date(d))) => Window::BeforeDate(*d),
            _ => Window::Span(start, end),
        })
    }

    fn date(&self, name: &str) -> Option<NaiveDate> {
        match self.value(name) {
            Some(Value::Date(d)) => Some(*d),
            _ => None,
        }
    }

    fn time(&self, name: &str) -> Option<(NaiveTime, bool)> {
        match self.value(name) {
            Some(Value::Time(t, s)) => Some((*t, *s)),
            _ => None,
        }
    }

    /// The instants a list route selects: `last_*` before `now`, or `date` [+ `start_time`
    /// / `end_time`], or `start_date`/`end_date`, or `before`, all New York time and
    /// inclusive (`before` exclusive); at most one of them.
    ///
    /// # Errors
    /// A 422 naming the parameter at fault.
    pub fn time_window(&self, now: Timestamp) -> Result<TimeRange, ApiError> {
        Ok(match self.window()? {
            Window::Lookback(p, n) => TimeRange {
                from: Some(now.add_micros(-n * p.unit_minutes().unwrap_or(1) * 60_000_000)),
                to: None,
            },
            Window::Day(date) => {
                let from = match self.time("start_time") {
                    Some((t, _)) => et(date, t, "start_time")?,
                    None => et(date, NaiveTime::MIN, "date")?,
                };
                let to = match self.time("end_time") {
                    // Inclusive to the end of the given minute or second.
                    Some((t, secs)) => {
                        et(date, t, "end_time")?.add_micros(if secs { 999_999 } else { 59_999_999 })
                    }
                    None => end_of_day(date)?,
                };
                if to < from {
                    let end = self.time("end_time").map(|(t, _)| t.to_string());
                    return Err(ApiError::query(
                        "end_time",
                        "time_order",
                        "end_time must not be before start_time",
                        end.as_deref().unwrap_or_default(),
                    ));
                }
                TimeRange {
                    from: Some(from),
                    to: Some(to),
                }
            }
            Window::Span(start, end) => TimeRange {
                from: start
                    .map(|d| et(d, NaiveTime::MIN, "start_date"))
                    .transpose()?,
                to: end.map(end_of_day).transpose()?,
            },
            Window::BeforeInstant(t) => TimeRange {
                from: None,
                to: Some(t.add_micros(-1)),
            },
            Window::BeforeDate(d) => TimeRange {
                from: None,
                to: Some(et(d, NaiveTime::MIN, "before")?.add_micros(-1)),
            },
        })
    }

    /// The session dates a daily list route selects: `last_days` (sessions within the last
    /// `ceil(1.4 × n)` calendar days before `today`, as the reference), `start_date` /
    /// `end_date` (inclusive) or `before` (exclusive); at most one of them.
    ///
    /// # Errors
    /// A 422 naming the parameter at fault.
    pub fn date_window(&self, today: NaiveDate) -> Result<DateRange, ApiError> {
        Ok(match self.window()? {
            Window::Lookback(_, n) => DateRange {
                from: Some(today - Duration::days((n * 14 + 9) / 10)),
                to: None,
            },
            Window::Span(from, to) => DateRange { from, to },
            Window::BeforeDate(d) => DateRange {
                from: None,
                to: d.pred_opt(),
            },
            Window::BeforeInstant(t) => DateRange {
                from: None,
                to: t
                    .to_datetime()
                    .with_timezone(&New_York)
                    .date_naive()
                    .pred_opt(),
            },
            Window::Day(d) => DateRange {
                from: Some(d),
                to: Some(d),
            },
        })
    }
}

/// The one window a request selects.
enum Window<'a> {
    Lookback(&'a Param, i64),
    Day(NaiveDate),
    Span(Option<NaiveDate>, Option<NaiveDate>),
    BeforeInstant(Timestamp),
    BeforeDate(NaiveDate),
}

/// A 422 for a parameter the route does not take, listing the ones it does.
fn unknown(name: &str, raw: &str, declared: &[Param]) -> ApiError {
    let known: Vec<&str> = declared
        .iter()
        .filter(|p| p.location == Location::Query)
        .map(|p| p.name)
        .collect();
    ApiError::query(
        name,
        "extra_forbidden",
        format!(
            "unknown parameter {name}; this route takes {}",
            if known.is_empty() {
                "no query parameters".to_owned()
            } else {
                known.join(", ")
            }
        ),
        raw,
    )
}

/// Parses one raw value of `param`; `previous` holds the earlier values of a repeatable one.
fn parse_value(param: &Param, raw: &str, previous: Option<Value>) -> Result<Value, ApiError> {
    let name = param.name;
    let invalid = |kind: &'static str, msg: String| match param.location {
        Location::Path => ApiError::path(name, kind, msg, raw),
        Location::Query => ApiError::query(name, kind, msg, raw),
    };
    match param.kind {
        Kind::Symbol => Symbol::parse(raw)
            .map(Value::Symbol)
            .map_err(|e| invalid("symbol", e.to_string())),
        Kind::Count { max } => bounded(raw, 1, max).map(Value::Int).map_err(|b| b.error(param, raw)),
        Kind::Limit { max, .. } | Kind::Lookback { max, .. } => {
            bounded(raw, 1, max).map(Value::Int).map_err(|b| b.error(param, raw))
        }
        Kind::Date => date(raw)
            .map(Value::Date)
            .ok_or_else(|| invalid("date_parsing", date_message())),
        Kind::Time => NaiveTime::parse_from_str(raw, "%H:%M:%S")
            .map(|t| (t, true))
            .or_else(|_| NaiveTime::parse_from_str(raw, "%H:%M").map(|t| (t, false)))
            .map(|(t, s)| Value::Time(t, s))
            .map_err(|_| {
                invalid(
                    "time_parsing",
                    "Input should be a valid time as HH:MM or HH:MM:SS".into(),
                )
            }),
        Kind::Before { daily: true } => date(raw)
            .map(Value::Date)
            .ok_or_else(|| invalid("date_parsing", date_message())),
        Kind::Before { daily: false } => chrono::DateTime::parse_from_rfc3339(raw.trim())
            .ok()
            .filter(|t| {
                (EARLIEST_DATE..=LATEST_DATE).contains(&t.date_naive())
            })
            // Rows are kept to the microsecond: a finer `before` rounds up, so that a row at
            // 15:00:00.000000 stays "strictly older" than 15:00:00.0000001.
            .map(|t| {
                let at = Timestamp::from_datetime(&t.to_utc());
                Value::Instant(if t.timestamp_subsec_nanos() % 1_000 == 0 {
                    at
                } else {
                    at.add_micros(1)
                })
            })
            .ok_or_else(|| {
                invalid(
                    "datetime_parsing",
                    format!(
                        "Input should be an RFC 3339 instant such as 2024-03-08T15:00:00Z (encode + as %2B), between {EARLIEST_DATE} and {LATEST_DATE}"
                    ),
                )
            }),
        Kind::Interval { set, .. } => {
            let parsed = if set == Intervals::AnyOrRealtime && raw.eq_ignore_ascii_case(REALTIME) {
                Some(None)
            } else {
                raw.parse::<Interval>()
                    .ok()
                    .filter(|i| set != Intervals::Intraday || !i.is_daily())
                    .map(Some)
            };
            parsed.map(Value::Interval).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Invalid interval: {raw}. Valid intervals: {}",
                    py_list(&set.names())
                ))
            })
        }
        Kind::Indicators { set, .. } => {
            let allowed = set.names();
            let mut names = match previous {
                Some(Value::Names(n)) => n,
                _ => Vec::new(),
            };
            let given: Vec<String> = raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let bad: Vec<&String> = given
                .iter()
                .filter(|w| !allowed.contains(&w.as_str()))
                .collect();
            if !bad.is_empty() {
                // The reference's two messages.
                return Err(ApiError::BadRequest(match set {
                    IndicatorSet::Tick => format!(
                        "Invalid real-time indicators: {}. Available indicators: {}",
                        py_list(&bad),
                        py_list(&allowed)
                    ),
                    _ => format!(
                        "Invalid indicator: {}. Valid indicators: {}",
                        bad[0],
                        py_list(&allowed)
                    ),
                }));
            }
            for g in given {
                if !names.contains(&g) {
                    names.push(g);
                }
            }
            Ok(Value::Names(names))
        }
        Kind::Format => match raw.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Value::Format(Format::Json)),
            "csv" => Ok(Value::Format(Format::Csv)),
            _ => Err(invalid("enum", "Input should be 'json' or 'csv'".into())),
        },
        Kind::Token | Kind::Text => Ok(Value::Text(raw.to_owned())),
        Kind::Asset { files } => files
            .contains(&raw)
            .then(|| Value::Text(raw.to_owned()))
            .ok_or_else(|| ApiError::NotFound("no such asset".into())),
    }
}

fn date_message() -> String {
    format!(
        "Input should be a valid date in YYYY-MM-DD format, between {EARLIEST_DATE} and {LATEST_DATE}"
    )
}

/// A `YYYY-MM-DD` date within the accepted span: four-digit year, two-digit month and day
/// (chrono alone also takes `2024-3-8`, which a client would take for a valid spelling).
fn date(raw: &str) -> Option<NaiveDate> {
    let raw = raw.trim();
    let shape = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shape
        .then(|| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok())
        .flatten()
        .filter(|d| (EARLIEST_DATE..=LATEST_DATE).contains(d))
}

/// Why an integer was refused.
enum Bound {
    NotInt,
    Low(i64),
    High(i64),
}

impl Bound {
    fn error(&self, param: &Param, raw: &str) -> ApiError {
        let (kind, msg, ctx) = match self {
            Self::NotInt => (
                "int_parsing",
                "Input should be a valid integer".to_owned(),
                None,
            ),
            Self::Low(min) => (
                "greater_than_equal",
                format!("Input should be greater than or equal to {min}"),
                Some(json!({ "ge": min })),
            ),
            Self::High(max) => (
                "less_than_equal",
                format!("Input should be less than or equal to {max}"),
                Some(json!({ "le": max })),
            ),
        };
        let e = match param.location {
            Location::Path => ApiError::path(param.name, kind, msg, raw),
            Location::Query => ApiError::query(param.name, kind, msg, raw),
        };
        match ctx {
            Some(c) => e.with_ctx(c),
            None => e,
        }
    }
}

fn bounded(raw: &str, min: i64, max: i64) -> Result<i64, Bound> {
    let v: i64 = raw.trim().parse().map_err(|_| Bound::NotInt)?;
    if v < min {
        Err(Bound::Low(min))
    } else if v > max {
        Err(Bound::High(max))
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

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
