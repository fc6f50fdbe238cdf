//! Parameters, declared once. Each [`Param`] says where it is, what it means and what it
//! accepts; the route table lists a route's parameters, [`crate::web::args::Args`] validates
//! a request against that list, and `openapi::param_schema` documents the same [`Kind`], so
//! the bounds the handlers enforce and the ones the document shows cannot drift apart.

use crate::domain::Interval;
use crate::domain::indicators::BAR_INDICATOR_NAMES;
use crate::domain::tick_metrics::TICK_METRIC_NAMES;
use chrono::NaiveDate;

/// Earliest date any parameter accepts.
pub const EARLIEST_DATE: NaiveDate = ymd(1800, 1, 1);
/// Latest date any parameter accepts.
pub const LATEST_DATE: NaiveDate = ymd(9999, 12, 31);

const fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(d) => d,
        None => panic!("invalid constant date"),
    }
}

/// Where a parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
}

/// What a `last_*` parameter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Minutes,
    Hours,
    Days,
}

/// Which intervals an `interval` parameter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intervals {
    /// `1m 5m 15m 30m 1h 4h`.
    Intraday,
    /// Every interval, `1d` included.
    Any,
    /// Every interval, or `realtime` (the tick metrics).
    AnyOrRealtime,
}

impl Intervals {
    /// The canonical names accepted (older spellings parse too).
    pub fn names(self) -> Vec<&'static str> {
        let mut names: Vec<&str> = Interval::ALL
            .iter()
            .filter(|i| self != Self::Intraday || !i.is_daily())
            .map(|i| i.as_str())
            .collect();
        if self == Self::AnyOrRealtime {
            names.push(REALTIME);
        }
        names
    }
}

/// The `interval` value naming the tick metrics on `/ws/analytics`.
pub const REALTIME: &str = "realtime";

/// Which names an `indicators` parameter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndicatorSet {
    /// The 8 tick metrics and `price`.
    Tick,
    /// The 28 bar indicators.
    Bar,
    /// The 28 bar indicators and `price`.
    BarWithPrice,
}

impl IndicatorSet {
    /// Every accepted name, in output order.
    pub fn names(self) -> Vec<&'static str> {
        let mut names: Vec<&str> = match self {
            Self::Tick => TICK_METRIC_NAMES.to_vec(),
            Self::Bar | Self::BarWithPrice => BAR_INDICATOR_NAMES.to_vec(),
        };
        if self != Self::Bar {
            names.push("price");
        }
        names
    }
}

/// What a parameter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An instrument symbol (case-insensitive).
    Symbol,
    /// How many of the newest rows, `1..=max`.
    Count { max: i64 },
    /// Most rows, `1..=max`.
    Limit { default: i64, max: i64 },
    /// Only the last `n` units, `1..=max`; `default` applies when no other window is given.
    Lookback {
        unit: Unit,
        max: i64,
        default: Option<i64>,
    },
    /// A New York calendar day, `YYYY-MM-DD`.
    Date,
    /// A New York wall-clock time, `HH:MM[:SS]` (only with `date`).
    Time,
    /// Only rows strictly older: an RFC 3339 instant, or a session date for daily routes.
    Before { daily: bool },
    /// A bar interval.
    Interval {
        set: Intervals,
        default: &'static str,
    },
    /// Indicator names, repeated or comma-separated.
    Indicators {
        set: IndicatorSet,
        default: &'static [&'static str],
    },
    /// `json` or `csv`.
    Format,
    /// The API token, for clients that cannot send headers (WebSockets). Documented as a
    /// security scheme, not as a parameter.
    Token,
    /// One of a page's bundled files.
    Asset { files: &'static [&'static str] },
    /// Any text, checked by the handler (a page's own parameters).
    Text,
}

/// One parameter of one or more routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub location: Location,
    pub kind: Kind,
    pub description: &'static str,
}

impl Param {
    const fn query(name: &'static str, kind: Kind, description: &'static str) -> Self {
        Self {
            name,
            location: Location::Query,
            kind,
            description,
        }
    }

    /// Whether it may be given more than once.
    pub fn repeatable(&self) -> bool {
        matches!(self.kind, Kind::Indicators { .. })
    }

    /// Minutes per unit of a `last_*` parameter.
    pub fn unit_minutes(&self) -> Option<i64> {
        match self.kind {
            Kind::Lookback { unit, .. } => Some(match unit {
                Unit::Minutes => 1,
                Unit::Hours => 60,
                Unit::Days => 1440,
            }),
            _ => None,
        }
    }
}

/// `{symbol}`.
pub const SYMBOL: Param = Param {
    name: "symbol",
    location: Location::Path,
    kind: Kind::Symbol,
    description: "Instrument symbol, case-insensitive: 1 to 20 of A-Z 0-9 . - ^ = / : (a / as %2F)",
};

/// `{count}` up to `max`.
pub const fn count(max: i64) -> Param {
    Param {
        name: "count",
        location: Location::Path,
        kind: Kind::Count { max },
        description: "How many of the newest rows",
    }
}

/// `limit`.
pub const fn limit(default: i64, max: i64) -> Param {
    Param::query(
        "limit",
        Kind::Limit { default, max },
        "Most rows: the newest ones, newest first",
    )
}

/// `last_minutes`.
pub const fn last_minutes(max: i64, default: Option<i64>) -> Param {
    Param::query(
        "last_minutes",
        Kind::Lookback {
            unit: Unit::Minutes,
            max,
            default,
        },
        "Only the last N minutes (not with another window)",
    )
}

/// `last_hours`.
pub const fn last_hours(max: i64) -> Param {
    Param::query(
        "last_hours",
        Kind::Lookback {
            unit: Unit::Hours,
            max,
            default: None,
        },
        "Only the last N hours (not with another window)",
    )
}

/// `last_days`.
pub const fn last_days(max: i64) -> Param {
    Param::query(
        "last_days",
        Kind::Lookback {
            unit: Unit::Days,
            max,
            default: None,
        },
        "Only sessions of the last ceil(1.4 × N) calendar days, as the reference (not with another window)",
    )
}

/// `date`.
pub const DATE: Param = Param::query(
    "date",
    Kind::Date,
    "One New York calendar day, YYYY-MM-DD, the whole day (23 or 25 hours on DST Sundays)",
);
/// `start_time`.
pub const START_TIME: Param = Param::query(
    "start_time",
    Kind::Time,
    "With date only: from this New York time, HH:MM or HH:MM:SS",
);
/// `end_time`.
pub const END_TIME: Param = Param::query(
    "end_time",
    Kind::Time,
    "With date only: up to this New York time, inclusive to the end of its minute (HH:MM) or second (HH:MM:SS)",
);
/// `start_date`.
pub const START_DATE: Param = Param::query(
    "start_date",
    Kind::Date,
    "From this New York day, inclusive, YYYY-MM-DD",
);
/// `end_date`.
pub const END_DATE: Param = Param::query(
    "end_date",
    Kind::Date,
    "Up to this New York day, inclusive, YYYY-MM-DD",
);
/// `before` on intraday routes.
pub const BEFORE_INSTANT: Param = Param::query(
    "before",
    Kind::Before { daily: false },
    "Only rows strictly older than this RFC 3339 instant (encode + as %2B), for paging back: the newest `limit` of them (not with another window)",
);
/// `before` on daily routes.
pub const BEFORE_DATE: Param = Param::query(
    "before",
    Kind::Before { daily: true },
    "Only sessions strictly before this New York date, YYYY-MM-DD, for paging back: the newest `limit` of them (not with another window)",
);
/// `interval` of the intraday REST routes.
pub const INTERVAL: Param = Param::query(
    "interval",
    Kind::Interval {
        set: Intervals::Intraday,
        default: "5m",
    },
    "Bar interval; the older spellings 1min 5min 15min 30min and minute counts are accepted too",
);
/// `format`.
pub const FORMAT: Param = Param::query(
    "format",
    Kind::Format,
    "json, or csv (columns in the JSON row's order, a header even when empty)",
);
/// `token` (WebSockets).
pub const TOKEN: Param = Param::query(
    "token",
    Kind::Token,
    "The API token, for WebSocket clients that cannot send an Authorization header",
);

/// An `interval` parameter of a WebSocket route.
pub const fn ws_interval(set: Intervals, default: &'static str) -> Param {
    Param::query(
        "interval",
        Kind::Interval { set, default },
        "Bar interval (older spellings such as 1min and minute counts are accepted too)",
    )
}

/// An `indicators` parameter.
pub const fn indicators(set: IndicatorSet, default: &'static [&'static str]) -> Param {
    Param::query(
        "indicators",
        Kind::Indicators { set, default },
        "Indicator names: repeat the parameter or separate them by commas",
    )
}

/// Response format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// `['a', 'b']`: the reference's (Python's) list rendering in its messages.
pub fn py_list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{}'", s.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}
