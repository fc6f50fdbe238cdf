//! The analytics of history series: backfilled and replayed bars get the same indicators as
//! the bars the pipeline builds, computed over the whole stored series.

use crate::domain::{Interval, Symbol, TradingCalendar};
use crate::kafka::wire;
use crate::store::Store;
use std::sync::Arc;

/// Computes the bar analytics of the backfilled (and replayed) bars of `symbol` and
/// `interval` and stores them, as the pipeline stores those of the bars it builds.
///
/// The indicators run over the whole stored series, oldest first, because TA-Lib's values
/// depend on where a series starts (an EMA is seeded by the SMA of its first bars). Bars the
/// pipeline built keep the analytics it computed live; returns the records written.
///
/// # Errors
/// When the store fails.
pub async fn analytics_for_history(
    store: &Store,
    symbol: Symbol,
    interval: Interval,
    calendar: TradingCalendar,
) -> anyhow::Result<usize> {
    use crate::store::query::{DateRange, TimeRange};
    let mut rows = if interval.is_daily() {
        store
            .daily_bars(symbol, DateRange::default(), i64::MAX)
            .await?
    } else {
        store
            .bars(symbol, interval, TimeRange::default(), i64::MAX)
            .await?
    };
    rows.reverse();
    let mut indicators = crate::domain::BarIndicators::new(interval, calendar);
    let mut analytics = Vec::new();
    for r in &rows {
        let bar = crate::domain::Ohlcv {
            open: r.open,
            high: r.high,
            low: r.low,
            close: r.close,
            volume: r.volume,
        };
        let values = *indicators.update(r.start, &bar, r.vwap);
        if r.source == wire::AGGREGATOR {
            continue;
        }
        let end = match r.date {
            Some(date) => calendar
                .session_on(date)
                .map_or(r.start.add_micros(interval.micros()), |s| s.end),
            None => r.start.add_micros(interval.micros()),
        };
        analytics.push(crate::output::AnalyticsRecord {
            symbol,
            interval,
            start: r.start,
            end,
            price: r.close,
            values,
            trades: 0,
        });
    }
    if analytics.is_empty() {
        return Ok(0);
    }
    let n = analytics.len();
    store
        .write(&[Arc::new(crate::output::OutputBatch {
            analytics,
            ..crate::output::OutputBatch::default()
        })])
        .await?;
    Ok(n)
}
