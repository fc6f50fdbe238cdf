//! Bar messages: one encoding for bars the pipeline built, bars still forming and bars a
//! provider or a replay supplied.

use super::analytics::IndicatorMap;
use crate::domain::HistoryBar;
use crate::domain::{Bar, IndicatorValues};
use serde::{Deserialize, Serialize};

/// Whether a bar message is a first close, a revision, or a bar still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarStatus {
    Closed,
    Revised,
    InProgress,
}

impl BarStatus {
    /// The `status` field's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Revised => "revised",
            Self::InProgress => "in_progress",
        }
    }

    /// `closed` for a bar's first version, `revised` for later ones.
    pub fn of(bar: &Bar) -> Self {
        if bar.revision == 0 {
            Self::Closed
        } else {
            Self::Revised
        }
    }
}

/// A bar message, the one encoding of bars everywhere: closed and revised bars the pipeline
/// built (`market.prices.ohlcv`), bars still open with their forming indicator values
/// (`market.prices.forming`), provider and replayed bars (`market.prices.history`). The
/// reference's fields (§1.2b) plus `type`, `status`, `trades`, `vwap`, `revision`, `source`;
/// WebSocket clients of `/ws/bars` receive it exactly as published.
#[derive(Serialize)]
struct BarOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    status: &'static str,
    symbol: &'a str,
    /// The canonical interval name (`1m` … `1d`); `interval_minutes` has the number.
    interval: &'static str,
    /// Bar start.
    timestamp: &'a str,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    event_type: &'static str,
    interval_minutes: u32,
    bar_start_ts: &'a str,
    bar_end_ts: String,
    trades: u64,
    vwap: Option<f64>,
    revision: u32,
    /// `aggregator` for bars built from trades; the provider (or `replay`) otherwise.
    source: &'a str,
    /// Forming bars only: every indicator's value if the bar closed now (`null` while
    /// warming up).
    #[serde(skip_serializing_if = "Option::is_none")]
    indicators: Option<IndicatorMap<'a, { crate::domain::indicators::BAR_INDICATOR_COUNT }>>,
}

/// The `source` of bars built by the pipeline.
pub const AGGREGATOR: &str = "aggregator";

/// Encodes a bar the pipeline built, with `status`; forming bars carry their indicator
/// values.
pub fn encode_bar(bar: &Bar, status: BarStatus, forming: Option<&IndicatorValues>) -> Vec<u8> {
    encode_bar_from(bar, status, AGGREGATOR, forming)
}

/// Encodes a provider's or a replayed bar for `market.prices.history`, `provider` as source.
pub fn encode_history_bar(bar: &HistoryBar, provider: &str) -> Vec<u8> {
    encode_bar_from(&bar.to_bar(), BarStatus::Closed, provider, None)
}

fn encode_bar_from(
    bar: &Bar,
    status: BarStatus,
    source: &str,
    forming: Option<&IndicatorValues>,
) -> Vec<u8> {
    let start = bar.start.to_rfc3339();
    let msg = BarOut {
        kind: "bar",
        status: status.as_str(),
        symbol: bar.symbol.as_str(),
        interval: bar.interval.as_str(),
        timestamp: &start,
        open: bar.open,
        high: bar.high,
        low: bar.low,
        close: bar.close,
        volume: bar.volume,
        event_type: "price.ohlcv",
        interval_minutes: bar.interval.minutes(),
        bar_start_ts: &start,
        bar_end_ts: bar.end.to_rfc3339(),
        trades: bar.trades,
        vwap: bar.vwap(),
        revision: bar.revision,
        source,
        indicators: forming.map(|values| IndicatorMap {
            values,
            skip_undefined: false,
        }),
    };
    // unwrap: plain data, finite numbers.
    serde_json::to_vec(&msg).unwrap()
}

/// A bar message as read back: the fields a reader needs (messages of older versions, with
/// an integer `interval` and no `status`, read too).
#[derive(Deserialize, Debug, PartialEq)]
pub struct BarMessage {
    pub symbol: String,
    #[serde(default)]
    pub status: Option<String>,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub interval_minutes: u32,
    pub bar_start_ts: String,
    pub bar_end_ts: String,
    #[serde(default)]
    pub trades: u64,
    #[serde(default)]
    pub vwap: Option<f64>,
    #[serde(default)]
    pub revision: u32,
    #[serde(default = "aggregator")]
    pub source: String,
}

fn aggregator() -> String {
    AGGREGATOR.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Interval, Source, Symbol, Tick, parse_timestamp};

    #[test]
    fn a_forming_bar_carries_every_indicator_null_while_warming_up() {
        let sym = Symbol::parse("AAPL").unwrap();
        let start = parse_timestamp("2024-03-28T13:30:00Z", chrono_tz::UTC).unwrap();
        let tick = Tick::new(sym, start, 10.0, 2.0, Source::new("t")).unwrap();
        let bar = Bar::from_tick(
            &tick,
            None,
            Interval::M1,
            start,
            start.add_micros(60_000_000),
        );
        let mut state =
            crate::domain::BarIndicators::new(Interval::M1, crate::domain::TradingCalendar::Utc24h);
        let values = *state.update_bar(&bar);
        let v: serde_json::Value =
            serde_json::from_slice(&encode_bar(&bar, BarStatus::InProgress, Some(&values)))
                .unwrap();
        assert_eq!(v["status"], "in_progress");
        let indicators = v["indicators"].as_object().unwrap();
        assert_eq!(
            indicators.len(),
            crate::domain::indicators::BAR_INDICATOR_COUNT
        );
        assert!(indicators["sma_20"].is_null());
        assert_eq!(indicators["vwap"], 10.0);
        assert_eq!(BarStatus::of(&bar), BarStatus::Closed);
    }
}
