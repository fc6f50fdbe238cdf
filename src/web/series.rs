//! The series routes: the 13 REST routes that read rows of one stored series (trades, tick
//! metrics, intraday or daily bars, their analytics) are one handler, [`handler`]. A route
//! is its parameters (route table) plus a [`SeriesSpec`]: which series, and whether it lists
//! rows in a window, gives the newest row or the newest `count`.
//!
//! Which keys the answer has is decided once, by [`SeriesSpec::envelope`], for the handler
//! and for the OpenAPI document alike.

use crate::domain::indicators::BAR_INDICATOR_NAMES;
use crate::domain::tick_metrics::TICK_METRIC_NAMES;
use crate::domain::{Interval, Timestamp};
use crate::store::TableKind;
use crate::store::query::{AnalyticsRow, BarRow, RealtimeRow, TickRow};
use crate::web::errors::ApiError;
use crate::web::format::{self, Data, Listing};
use crate::web::params::{Format, Kind, Param};
use crate::web::routes::{Answer, Call, Reply};
use crate::web::rows::{DailyBar, IndicatorRow, IntradayBar, TickOut};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;

const TZ_NOTE: &str = "timestamp_est is in America/New_York timezone (EST/EDT)";
const HISTORICAL_NOTE: &str =
    "Historical daily data represents end-of-day prices in America/New_York timezone";

/// A stored series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// `realtime_prices`.
    Trades,
    /// `realtime_analytics`.
    TickMetrics,
    /// `intraday_ohlcv`.
    IntradayBars,
    /// `historical_ohlcv`.
    DailyBars,
    /// `intraday_analytics`.
    IntradayAnalytics,
    /// `daily_analytics`.
    DailyAnalytics,
}

impl Series {
    /// The section of the API (and the document's group).
    pub const fn section(self) -> &'static str {
        match self {
            Self::Trades | Self::TickMetrics => "realtime",
            Self::IntradayBars | Self::IntradayAnalytics => "intraday",
            Self::DailyBars | Self::DailyAnalytics => "historical",
        }
    }

    /// The table kind whose writes make its answers stale.
    pub fn table(self) -> TableKind {
        match self {
            Self::Trades => TableKind::Ticks,
            Self::TickMetrics => TableKind::Realtime,
            Self::IntradayBars | Self::DailyBars => TableKind::Bars,
            Self::IntradayAnalytics | Self::DailyAnalytics => TableKind::Analytics,
        }
    }

    /// Whether rows are daily sessions (windows in dates).
    pub fn daily(self) -> bool {
        matches!(self, Self::DailyBars | Self::DailyAnalytics)
    }

    /// The indicator names its rows may carry (none for bars and trades).
    pub fn indicator_names(self) -> &'static [&'static str] {
        match self {
            Self::TickMetrics => &TICK_METRIC_NAMES,
            Self::IntradayAnalytics | Self::DailyAnalytics => &BAR_INDICATOR_NAMES,
            _ => &[],
        }
    }

    /// The CSV columns of its answers (the JSON rows' keys in order), with the indicator
    /// columns of `wanted` for indicator rows.
    pub fn columns(self, wanted: &[String]) -> Vec<String> {
        let names = self.indicator_names();
        let daily_analytics = AnalyticsRow {
            date: Some(chrono::NaiveDate::default()),
            ..AnalyticsRow::default()
        };
        match self {
            Self::Trades => format::key_order(&TickOut::from(&TickRow::default())),
            Self::TickMetrics => format::key_order(&IndicatorRow::realtime(
                &RealtimeRow::default(),
                names,
                wanted,
            )),
            Self::IntradayBars => format::key_order(&IntradayBar::from(&BarRow::default())),
            Self::DailyBars => format::key_order(&DailyBar::from(&BarRow::default())),
            Self::IntradayAnalytics => format::key_order(&IndicatorRow::analytics(
                &AnalyticsRow::default(),
                names,
                wanted,
            )),
            Self::DailyAnalytics => {
                format::key_order(&IndicatorRow::analytics(&daily_analytics, names, wanted))
            }
        }
    }

    fn timezone_note(self) -> &'static str {
        if self.daily() {
            HISTORICAL_NOTE
        } else {
            TZ_NOTE
        }
    }

    /// The reference's message for a list with no rows, and for no newest row.
    fn nothing(self, symbol: &str, interval: Option<Interval>, list: bool) -> String {
        let name = interval.map_or("", Interval::as_str);
        let filters = if list {
            " with the specified filters"
        } else {
            ""
        };
        match self {
            Self::Trades if list => {
                format!("No real-time data found for {symbol} with the specified filters")
            }
            Self::Trades => format!("No real-time data found for symbol {symbol}"),
            Self::TickMetrics => format!("No real-time analytics found for {symbol}"),
            Self::IntradayBars if list => {
                format!("No intraday {name} data found for {symbol}{filters}")
            }
            Self::IntradayBars => format!("No intraday {name} data found for symbol {symbol}"),
            Self::IntradayAnalytics => format!("No intraday analytics found for {symbol} {name}"),
            Self::DailyBars if list => {
                format!("No historical daily data found for {symbol}{filters}")
            }
            Self::DailyBars => format!("No historical daily data found for symbol {symbol}"),
            Self::DailyAnalytics => format!("No historical daily analytics found for {symbol}"),
        }
    }
}

/// Which rows a series route answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The newest `limit` rows of a window (all keys, plus a `message` when empty).
    List,
    /// The newest row, as `data: {…}` (404 when there is none).
    Latest,
    /// The newest `{count}` rows (404 when there are none).
    Last,
}

/// A series route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesSpec {
    pub series: Series,
    pub shape: Shape,
}

/// The optional keys of a series answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    pub interval: bool,
    pub indicators: bool,
    pub count: bool,
    pub requested_count: bool,
    /// `message`, present only when there are no rows.
    pub message: bool,
}

impl SeriesSpec {
    /// The keys an answer of this route has, given its parameters.
    pub fn envelope(&self, params: &[Param]) -> Envelope {
        let has = |f: fn(&Kind) -> bool| params.iter().any(|p| f(&p.kind));
        Envelope {
            interval: has(|k| matches!(k, Kind::Interval { .. })),
            indicators: has(|k| matches!(k, Kind::Indicators { .. })),
            count: self.shape != Shape::Latest,
            requested_count: self.shape == Shape::Last,
            message: self.shape == Shape::List,
        }
    }
}

/// The handler of every series route.
pub fn handler(call: Call) -> LocalBoxFuture<'static, Reply> {
    Box::pin(serve(call))
}

/// What the rows are rendered with.
struct Frame<'a> {
    call: &'a Call,
    spec: SeriesSpec,
    envelope: Envelope,
    symbol: String,
    interval: Option<Interval>,
    indicators: Option<Vec<String>>,
    requested: i64,
}

async fn serve(call: Call) -> Reply {
    let Answer::Series(spec) = call.route.answer else {
        return Err(ApiError::Undeclared("series"));
    };
    let args = &call.args;
    let envelope = spec.envelope(call.route.params);
    let symbol = args.symbol()?;
    let interval = if envelope.interval {
        args.interval()?
    } else {
        None
    };
    let mut indicators = envelope.indicators.then(|| args.indicators()).transpose()?;
    if let (Series::TickMetrics, Some(names)) = (spec.series, indicators.as_mut())
        && !names.iter().any(|n| n == "price")
    {
        // The reference always lists `price` among the realtime indicators.
        names.push("price".into());
    }
    let requested = match spec.shape {
        Shape::List => args.int("limit")?,
        Shape::Latest => 1,
        Shape::Last => args.int("count")?,
    };
    let now = Timestamp::from_datetime(&chrono::Utc::now());
    let list = spec.shape == Shape::List;
    let time = if list && !spec.series.daily() {
        args.time_window(now)?
    } else {
        Default::default()
    };
    let dates = if list && spec.series.daily() {
        let today = now
            .to_datetime()
            .with_timezone(&chrono_tz::America::New_York)
            .date_naive();
        args.date_window(today)?
    } else {
        Default::default()
    };
    let frame = Frame {
        call: &call,
        spec,
        envelope,
        symbol: symbol.as_str().to_owned(),
        interval,
        indicators,
        requested,
    };
    let store = &call.state.store;
    let wanted = frame.indicators.clone().unwrap_or_default();
    let names = spec.series.indicator_names();
    let bar_interval = interval.unwrap_or(Interval::D1);
    match spec.series {
        Series::Trades => {
            let rows = store.ticks(symbol, time, requested).await?;
            frame.answer(rows.iter().map(TickOut::from).collect(), &wanted)
        }
        Series::TickMetrics => {
            let rows = store.realtime(symbol, time, requested).await?;
            let make = |r| IndicatorRow::realtime(r, names, &wanted);
            frame.answer(rows.iter().map(make).collect(), &wanted)
        }
        Series::IntradayBars => {
            let rows = store.bars(symbol, bar_interval, time, requested).await?;
            frame.answer(rows.iter().map(IntradayBar::from).collect(), &wanted)
        }
        Series::DailyBars => {
            let rows = store.daily_bars(symbol, dates, requested).await?;
            frame.answer(rows.iter().map(DailyBar::from).collect(), &wanted)
        }
        Series::IntradayAnalytics => {
            let rows = store
                .analytics(symbol, bar_interval, time, requested)
                .await?;
            let make = |a| IndicatorRow::analytics(a, names, &wanted);
            frame.answer(rows.iter().map(make).collect(), &wanted)
        }
        Series::DailyAnalytics => {
            let rows = store.daily_analytics(symbol, dates, requested).await?;
            let make = |a| IndicatorRow::analytics(a, names, &wanted);
            frame.answer(rows.iter().map(make).collect(), &wanted)
        }
    }
}

impl Frame<'_> {
    /// Renders `rows` (newest first) as this route answers: JSON in its envelope, or CSV
    /// (with the indicator columns of `wanted`).
    fn answer<R: Serialize>(&self, rows: Vec<R>, wanted: &[String]) -> Reply {
        let list = self.spec.shape == Shape::List;
        if rows.is_empty() && !list {
            return Err(ApiError::NotFound(self.spec.series.nothing(
                &self.symbol,
                self.interval,
                false,
            )));
        }
        if self.call.args.format() == Format::Csv {
            let mut name = self.call.route.operation_id.to_owned();
            if let Some(i) = self.interval {
                name = format!("{name}_{i}");
            }
            if self.spec.shape == Shape::Last {
                name = format!("{name}_{}", self.requested);
            }
            let header = self.spec.series.columns(wanted);
            return Ok(format::csv(
                &rows,
                &header,
                &format!("{name}_{}", self.symbol),
            ));
        }
        let e = self.envelope;
        let data = match rows.first() {
            Some(first) if self.spec.shape == Shape::Latest => Data::One(first),
            _ => Data::Many(&rows),
        };
        Ok(format::json(&Listing {
            symbol: &self.symbol,
            interval: self.interval.filter(|_| e.interval).map(Interval::as_str),
            indicators: self.indicators.as_deref().filter(|_| e.indicators),
            count: e.count.then_some(rows.len()),
            requested_count: e.requested_count.then_some(self.requested),
            timezone_note: self.spec.series.timezone_note(),
            message: (e.message && rows.is_empty())
                .then(|| self.spec.series.nothing(&self.symbol, self.interval, true)),
            data,
        }))
    }
}
