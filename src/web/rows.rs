//! The rows the REST routes answer with, one type per kind of row, each serialised straight
//! into the body (no JSON tree per row) with `timestamp` first, and describing itself in the
//! OpenAPI document: the derived schemas of [`TickOut`], [`IntradayBar`] and [`DailyBar`],
//! and [`IndicatorRow::schema`] for rows carrying the indicators a request chose. CSV
//! answers take their columns from the same serialisation (`format::csv`).

use crate::domain::Timestamp;
use crate::store::query::{AnalyticsRow, BarRow, RealtimeRow, TickRow};
use chrono_tz::America::New_York;
use serde::ser::{Serialize, SerializeMap, Serializer};
use utoipa::ToSchema;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

/// A trade.
#[derive(serde::Serialize, ToSchema)]
pub struct TickOut<'a> {
    /// Trade time, RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub price: f64,
    /// Trade size.
    pub volume: f64,
    pub symbol: &'a str,
    /// Where the trade came from (`sim`, `yahoo`, …).
    pub source: &'a str,
    /// Same as `timestamp` (the reference's field).
    #[schema(format = DateTime)]
    pub timestamp_utc: String,
    /// New York time, `YYYY-MM-DD HH:MM:SS EST|EDT`.
    pub timestamp_est: String,
}

impl<'a> From<&'a TickRow> for TickOut<'a> {
    fn from(t: &'a TickRow) -> Self {
        let ts = t.ts.to_rfc3339();
        Self {
            timestamp: ts.clone(),
            price: t.price,
            volume: t.volume,
            symbol: &t.symbol,
            source: &t.source,
            timestamp_utc: ts,
            timestamp_est: format_est(t.ts),
        }
    }
}

/// One bar type per kind of timestamp, from one field list: intraday bars carry
/// `timestamp_est`, session bars `date_est` (their own New York date; the reference printed
/// the day before) and a date as `timestamp`.
macro_rules! bar_type {
    ($(#[$doc:meta])* $name:ident, $ts_format:ident, $(#[$local_attr:meta])* $local:ident) => {
        $(#[$doc])*
        #[derive(serde::Serialize, ToSchema)]
        pub struct $name<'a> {
            #[schema(format = $ts_format)]
            pub timestamp: String,
            pub open: f64,
            pub high: f64,
            pub low: f64,
            pub close: f64,
            pub volume: f64,
            /// Trades in the bar (0 for a backfilled bar).
            pub trades: i64,
            /// Volume-weighted average price of the bar's trades (null without trades).
            pub vwap: Option<f64>,
            /// 0, then one more for each revision by late trades.
            pub revision: i32,
            /// `aggregator` (built from trades) or the history provider.
            pub source: &'a str,
            pub symbol: &'a str,
            /// Bar start, RFC 3339 UTC.
            #[schema(format = DateTime)]
            pub timestamp_utc: String,
            $(#[$local_attr])*
            pub $local: String,
        }
    };
}

bar_type!(
    /// An intraday bar; `timestamp` is its start (RFC 3339 UTC), `timestamp_est` the same
    /// instant in New York time.
    IntradayBar,
    DateTime,
    /// Bar start in New York time, `YYYY-MM-DD HH:MM:SS EST|EDT`.
    timestamp_est
);
bar_type!(
    /// A daily session bar; `timestamp` and `date_est` are its session's New York date.
    DailyBar,
    Date,
    /// The session's New York date.
    #[schema(format = Date)]
    date_est
);

impl<'a> From<&'a BarRow> for IntradayBar<'a> {
    fn from(b: &'a BarRow) -> Self {
        let start = b.start.to_rfc3339();
        Self {
            timestamp: start.clone(),
            open: b.open,
            high: b.high,
            low: b.low,
            close: b.close,
            volume: b.volume,
            trades: b.trades,
            vwap: b.vwap,
            revision: b.revision,
            source: &b.source,
            symbol: &b.symbol,
            timestamp_utc: start,
            timestamp_est: format_est(b.start),
        }
    }
}

impl<'a> From<&'a BarRow> for DailyBar<'a> {
    fn from(b: &'a BarRow) -> Self {
        let date = b.date.map(|d| d.to_string()).unwrap_or_default();
        Self {
            timestamp: date.clone(),
            open: b.open,
            high: b.high,
            low: b.low,
            close: b.close,
            volume: b.volume,
            trades: b.trades,
            vwap: b.vwap,
            revision: b.revision,
            source: &b.source,
            symbol: &b.symbol,
            timestamp_utc: b.start.to_rfc3339(),
            date_est: date,
        }
    }
}

/// A row of indicator values: bar analytics (intraday or daily) or realtime tick metrics,
/// with the names the request chose, in its order: `timestamp, price, <names…>, symbol,
/// timestamp_utc` and `timestamp_est` or `date_est`.
pub struct IndicatorRow<'a> {
    timestamp: String,
    price: f64,
    values: Vec<(&'a str, Option<f64>)>,
    symbol: &'a str,
    timestamp_utc: String,
    local: Local,
}

/// The New York rendering of a row's time.
enum Local {
    Est(String),
    Date(String),
}

impl<'a> IndicatorRow<'a> {
    /// Bar analytics, with the values of `wanted` among `names` (the row's value order).
    pub fn analytics(a: &'a AnalyticsRow, names: &[&'a str], wanted: &[String]) -> Self {
        let start = a.start.to_rfc3339();
        let (timestamp, local) = match a.date {
            Some(d) => (d.to_string(), Local::Date(d.to_string())),
            None => (start.clone(), Local::Est(format_est(a.start))),
        };
        Self {
            timestamp,
            price: a.price,
            values: pick(names, &a.values, wanted),
            symbol: &a.symbol,
            timestamp_utc: start,
            local,
        }
    }

    /// Realtime metrics of one trade.
    pub fn realtime(r: &'a RealtimeRow, names: &[&'a str], wanted: &[String]) -> Self {
        let ts = r.ts.to_rfc3339();
        Self {
            timestamp: ts.clone(),
            price: r.price,
            values: pick(names, &r.values, wanted),
            symbol: &r.symbol,
            timestamp_utc: ts,
            local: Local::Est(format_est(r.ts)),
        }
    }

    /// The schema of rows with any of `names` (all optional), daily or not.
    pub fn schema(daily: bool, names: &[&str], description: &str) -> RefOr<Schema> {
        let string = |format: Option<KnownFormat>| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(format.map(SchemaFormat::KnownFormat))
        };
        let mut o = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(description))
            .property(
                "timestamp",
                string(Some(if daily {
                    KnownFormat::Date
                } else {
                    KnownFormat::DateTime
                })),
            )
            .required("timestamp")
            .property("price", ObjectBuilder::new().schema_type(Type::Number))
            .required("price");
        for name in names.iter().filter(|n| **n != "price") {
            o = o.property(
                *name,
                ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                        Type::Number,
                        Type::Null,
                    ]))
                    .description(Some("null while the indicator warms up")),
            );
        }
        o = o
            .property("symbol", string(None))
            .required("symbol")
            .property("timestamp_utc", string(Some(KnownFormat::DateTime)))
            .required("timestamp_utc");
        o = if daily {
            o.property("date_est", string(Some(KnownFormat::Date)))
                .required("date_est")
        } else {
            o.property("timestamp_est", string(None))
                .required("timestamp_est")
        };
        RefOr::T(Schema::Object(o.build()))
    }
}

/// `(name, value)` of each wanted name, in the wanted order (`price` is a field of its own).
fn pick<'a>(
    names: &[&'a str],
    values: &[Option<f64>],
    wanted: &[String],
) -> Vec<(&'a str, Option<f64>)> {
    wanted
        .iter()
        .filter_map(|w| {
            let i = names.iter().position(|n| n == w)?;
            Some((names[i], values.get(i).copied().flatten()))
        })
        .collect()
}

impl Serialize for IndicatorRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.values.len() + 5))?;
        m.serialize_entry("timestamp", &self.timestamp)?;
        m.serialize_entry("price", &self.price)?;
        for (name, value) in &self.values {
            m.serialize_entry(name, value)?;
        }
        m.serialize_entry("symbol", self.symbol)?;
        m.serialize_entry("timestamp_utc", &self.timestamp_utc)?;
        match &self.local {
            Local::Est(t) => m.serialize_entry("timestamp_est", t)?,
            Local::Date(d) => m.serialize_entry("date_est", d)?,
        }
        m.end()
    }
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
    use crate::web::format::key_order;

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

    #[test]
    fn rows_start_with_their_timestamp_then_prices() {
        let bar = BarRow::default();
        assert_eq!(
            key_order(&IntradayBar::from(&bar))[..6],
            ["timestamp", "open", "high", "low", "close", "volume"]
        );
        assert_eq!(key_order(&DailyBar::from(&bar)).last().unwrap(), "date_est");
        assert_eq!(
            key_order(&TickOut::from(&TickRow::default()))[..3],
            ["timestamp", "price", "volume"]
        );
        let a = AnalyticsRow::default();
        let names = crate::domain::BAR_INDICATOR_NAMES;
        let row = IndicatorRow::analytics(&a, &names, &["rsi_14".into(), "sma_20".into()]);
        assert_eq!(
            key_order(&row),
            [
                "timestamp",
                "price",
                "rsi_14",
                "sma_20",
                "symbol",
                "timestamp_utc",
                "timestamp_est"
            ]
        );
    }
}
