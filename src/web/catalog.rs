//! What there is to ask for: `GET /` (this service and its routes, from the route table),
//! `/api/v2/symbols` (symbols with bars, per interval), `/api/v2/realtime/symbols` (symbols
//! with trades) and `/api/v2/meta` (what this instance builds).
//!
//! The warm-ups `/meta` reports are measured on the domain code itself, once per process:
//! [`BarIndicators`] and [`TickMetrics`] are fed a synthetic series and each value's first
//! defined position is its warm-up (the number of leading nulls), so the figures follow the
//! indicators whatever they become; a test checks them against the pipeline's stored rows.

use crate::domain::indicators::BAR_INDICATOR_NAMES;
use crate::domain::tick_metrics::TICK_METRIC_NAMES;
use crate::domain::{
    BarIndicators, Interval, Ohlcv, Source, Symbol, Tick, TickMetrics, Timestamp, TradingCalendar,
};
use crate::web::format;
use crate::web::params::Format;
use crate::web::routes::{Call, Protection, ROUTES, Reply};
use crate::web::rows::format_est;
use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::LazyLock;
use utoipa::ToSchema;

/// The service's name in `/` and `/meta`.
pub const SERVICE: &str = "tickflow";

/// `GET /`.
#[derive(Serialize, ToSchema)]
pub struct IndexAnswer {
    /// Always `online`.
    pub status: &'static str,
    pub service: &'static str,
    pub version: &'static str,
    /// Every route this instance serves.
    pub endpoints: Vec<IndexRoute>,
}

/// One route in `GET /`.
#[derive(Serialize, ToSchema)]
pub struct IndexRoute {
    pub path: &'static str,
    pub summary: &'static str,
    /// Whether it needs the API token (when the instance has one).
    pub token: bool,
}

/// `GET /` lists every route of the table.
pub fn index(_: Call) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async {
        Ok(format::json(&IndexAnswer {
            status: "online",
            service: SERVICE,
            version: env!("CARGO_PKG_VERSION"),
            endpoints: ROUTES
                .iter()
                .map(|r| IndexRoute {
                    path: r.path,
                    summary: r.summary,
                    token: r.access == Protection::Token,
                })
                .collect(),
        }))
    })
}

/// `GET /api/v2/realtime/symbols`.
#[derive(Serialize, ToSchema)]
pub struct RealtimeSymbolsAnswer {
    pub count: usize,
    pub symbols: Vec<RealtimeSymbol>,
    pub timezone_note: &'static str,
}

/// A symbol with stored trades.
#[derive(Serialize, ToSchema)]
pub struct RealtimeSymbol {
    pub symbol: String,
    pub tick_count: i64,
    #[schema(format = DateTime)]
    pub first_seen: String,
    #[schema(format = DateTime)]
    pub last_seen: String,
    pub first_seen_est: String,
    pub last_seen_est: String,
}

/// `GET /api/v2/realtime/symbols`.
pub fn realtime_symbols(call: Call) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async move {
        let symbols: Vec<RealtimeSymbol> = call
            .state
            .store
            .symbols()
            .await?
            .into_iter()
            .map(|s| RealtimeSymbol {
                first_seen: s.first_seen.to_rfc3339(),
                last_seen: s.last_seen.to_rfc3339(),
                first_seen_est: format_est(s.first_seen),
                last_seen_est: format_est(s.last_seen),
                symbol: s.symbol,
                tick_count: s.tick_count,
            })
            .collect();
        if call.args.format() == Format::Csv {
            let template = RealtimeSymbol {
                symbol: String::new(),
                tick_count: 0,
                first_seen: String::new(),
                last_seen: String::new(),
                first_seen_est: String::new(),
                last_seen_est: String::new(),
            };
            let header = format::key_order(&template);
            return Ok(format::csv(&symbols, &header, "realtime_symbols"));
        }
        Ok(format::json(&RealtimeSymbolsAnswer {
            count: symbols.len(),
            symbols,
            timezone_note: "All timestamps shown in America/New_York timezone",
        }))
    })
}

/// `GET /api/v2/symbols`.
#[derive(Serialize, ToSchema)]
pub struct SymbolsAnswer {
    /// How many symbols.
    pub count: usize,
    /// Symbols in alphabetical order.
    pub symbols: Vec<SymbolBars>,
}

/// A symbol's stored bar series.
#[derive(Serialize, ToSchema)]
pub struct SymbolBars {
    pub symbol: String,
    /// Its intervals, shortest first.
    pub intervals: Vec<BarSpan>,
}

/// What is stored of one bar series. One CSV row per series, with its `symbol`.
#[derive(Serialize, ToSchema)]
pub struct BarSpan {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub symbol: Option<String>,
    /// Canonical interval name (`1m` … `1d`).
    pub interval: &'static str,
    pub interval_minutes: u32,
    /// Bars stored.
    pub bars: i64,
    /// Start of the first bar (a session's start for daily bars), RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub first: String,
    /// Start of the last bar.
    #[schema(format = DateTime)]
    pub last: String,
}

/// `GET /api/v2/symbols`.
pub fn symbols(call: Call) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async move {
        let series = call.state.store.bar_series().await?;
        if call.args.format() == Format::Csv {
            let rows: Vec<BarSpan> = series
                .iter()
                .map(|s| span(s, Some(s.symbol.clone())))
                .collect();
            let template = BarSpan {
                symbol: Some(String::new()),
                interval: "",
                interval_minutes: 0,
                bars: 0,
                first: String::new(),
                last: String::new(),
            };
            return Ok(format::csv(&rows, &format::key_order(&template), "symbols"));
        }
        let mut symbols: Vec<SymbolBars> = Vec::new();
        for s in &series {
            match symbols.last_mut() {
                Some(last) if last.symbol == s.symbol => last.intervals.push(span(s, None)),
                _ => symbols.push(SymbolBars {
                    symbol: s.symbol.clone(),
                    intervals: vec![span(s, None)],
                }),
            }
        }
        Ok(format::json(&SymbolsAnswer {
            count: symbols.len(),
            symbols,
        }))
    })
}

fn span(s: &crate::store::query::SeriesStats, symbol: Option<String>) -> BarSpan {
    BarSpan {
        symbol,
        interval: s.interval.as_str(),
        interval_minutes: s.interval.minutes(),
        bars: s.bars,
        first: s.first.to_rfc3339(),
        last: s.last.to_rfc3339(),
    }
}

/// `GET /api/v2/meta`.
#[derive(Serialize, ToSchema)]
pub struct MetaAnswer {
    pub service: &'static str,
    pub version: &'static str,
    /// Bar intervals this instance builds, shortest first.
    pub intervals: Vec<&'static str>,
    /// Every bar indicator, in output order.
    pub indicators: Vec<IndicatorWarmup>,
    /// Every realtime tick metric, in output order.
    pub tick_metrics: Vec<TickMetricWarmup>,
    pub calendars: Calendars,
}

/// A bar indicator and its warm-up.
#[derive(Serialize, ToSchema)]
pub struct IndicatorWarmup {
    pub name: &'static str,
    /// Bars whose value is null before the first value (null: not reached in a probe of
    /// several hundred bars).
    pub warmup_bars: Option<usize>,
}

/// A tick metric and its warm-up.
#[derive(Serialize, ToSchema)]
pub struct TickMetricWarmup {
    pub name: &'static str,
    /// Trades whose value is null before the first value.
    pub warmup_ticks: Option<usize>,
}

/// Which trading calendar sessions (daily bars) follow.
#[derive(Serialize, ToSchema)]
pub struct Calendars {
    /// The calendar of symbols without their own.
    pub default: String,
    /// Symbols with their own calendar.
    pub symbols: BTreeMap<String, String>,
}

/// `GET /api/v2/meta`.
pub fn meta(call: Call) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async move {
        let pipeline = &call.state.pipeline;
        let mut intervals = pipeline.intervals.clone();
        intervals.sort_unstable();
        intervals.dedup();
        Ok(format::json(&MetaAnswer {
            service: SERVICE,
            version: env!("CARGO_PKG_VERSION"),
            intervals: intervals.iter().map(|i| i.as_str()).collect(),
            indicators: BAR_INDICATOR_NAMES
                .iter()
                .zip(BAR_WARMUPS.iter())
                .map(|(name, w)| IndicatorWarmup {
                    name,
                    warmup_bars: *w,
                })
                .collect(),
            tick_metrics: TICK_METRIC_NAMES
                .iter()
                .zip(TICK_WARMUPS.iter())
                .map(|(name, w)| TickMetricWarmup {
                    name,
                    warmup_ticks: *w,
                })
                .collect(),
            calendars: Calendars {
                default: pipeline.default_calendar.to_string(),
                symbols: pipeline
                    .calendars
                    .iter()
                    .map(|(s, c)| (s.as_str().to_owned(), c.to_string()))
                    .collect(),
            },
        }))
    })
}

/// Length of the probe series: well past the longest window (`sma_200`).
const PROBE_LEN: usize = 600;

/// Warm-up of each bar indicator, measured on [`BarIndicators`].
pub static BAR_WARMUPS: LazyLock<Vec<Option<usize>>> = LazyLock::new(|| {
    let mut indicators = BarIndicators::new(Interval::M1, TradingCalendar::Utc24h);
    let start = Timestamp::from_secs(1_709_856_000);
    let rows: Vec<Vec<Option<f64>>> = (0..PROBE_LEN)
        .map(|i| {
            let bar = probe_bar(i);
            let ts = start.add_micros(i as i64 * Interval::M1.micros());
            indicators.update(ts, &bar, None).as_array().to_vec()
        })
        .collect();
    first_defined(&rows, BAR_INDICATOR_NAMES.len())
});

/// Warm-up of each tick metric, measured on [`TickMetrics`].
pub static TICK_WARMUPS: LazyLock<Vec<Option<usize>>> = LazyLock::new(|| {
    let mut metrics = TickMetrics::new();
    // unwrap: a constant, valid symbol.
    let symbol = Symbol::parse("PROBE").unwrap();
    let rows: Vec<Vec<Option<f64>>> = (0..PROBE_LEN)
        .filter_map(|i| {
            let price = probe_bar(i).close;
            let size = 10.0 + (i % 5) as f64;
            let ts = Timestamp::from_secs(1_709_856_000 + i as i64);
            let tick = Tick::new(symbol, ts, price, size, Source::new("probe")).ok()?;
            Some(metrics.update(&tick).as_array().to_vec())
        })
        .collect();
    first_defined(&rows, TICK_METRIC_NAMES.len())
});

/// A bar of a series that moves both ways with changing ranges and volumes, so that no
/// value is undefined for lack of movement (flat prices leave some ratios undefined).
fn probe_bar(i: usize) -> Ohlcv {
    let x = i as f64;
    let base = 100.0 + 8.0 * (x * 0.21).sin() + 0.37 * (i % 7) as f64;
    Ohlcv {
        open: base,
        high: base + 1.0 + 0.1 * (i % 3) as f64,
        low: base - 1.0 - 0.1 * (i % 5) as f64,
        close: base + 0.6 * (x * 0.7).cos(),
        volume: 1_000.0 + 37.0 * (i % 11) as f64,
    }
}

/// For each of `width` columns, the index of the first row where it is defined.
fn first_defined(rows: &[Vec<Option<f64>>], width: usize) -> Vec<Option<usize>> {
    (0..width)
        .map(|c| {
            rows.iter()
                .position(|r| r.get(c).copied().flatten().is_some())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_ups_follow_the_indicators_windows() {
        let bar =
            |name: &str| BAR_WARMUPS[BAR_INDICATOR_NAMES.iter().position(|n| *n == name).unwrap()];
        // TA-Lib's lookbacks: a window of n has n - 1 leading nulls.
        assert_eq!(bar("sma_20"), Some(19));
        assert_eq!(bar("sma_200"), Some(199));
        assert_eq!(bar("rsi_14"), Some(14));
        assert_eq!(bar("obv"), Some(0));
        assert!(
            BAR_WARMUPS.iter().all(Option::is_some),
            "{:?}",
            *BAR_WARMUPS
        );
        let tick =
            |name: &str| TICK_WARMUPS[TICK_METRIC_NAMES.iter().position(|n| *n == name).unwrap()];
        assert_eq!(tick("price_velocity_10"), Some(10), "needs 11 trades");
        assert_eq!(tick("tick_rsi_14"), Some(14), "needs 15 trades");
        assert!(
            TICK_WARMUPS.iter().all(Option::is_some),
            "{:?}",
            *TICK_WARMUPS
        );
    }
}
