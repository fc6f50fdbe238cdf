//! `market.prices.history`: provider and replayed bars, and the coverage markers that
//! follow each backfilled chunk.

use super::WireError;
use super::bar::BarMessage;
use crate::domain::{Coverage, HistoryBar, Interval, Symbol, parse_timestamp};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Sent after a backfilled chunk's bars, on the same partition: "the span `[start, end)` of
/// this symbol and interval was asked of `provider`, which had `bars` bars". Stored with the
/// bars in one transaction, it lets a later backfill skip what was already asked.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct CoverageMessage {
    /// Always `backfill.coverage`.
    pub event_type: String,
    pub symbol: String,
    pub interval_minutes: u32,
    pub start: String,
    pub end: String,
    pub provider: String,
    pub bars: u64,
}

/// The `event_type` of [`CoverageMessage`].
pub const COVERAGE_EVENT: &str = "backfill.coverage";

/// What the bar-ingest consumer reads from `market.prices.history`.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryMessage {
    /// A provider's or replayed bar, and its source.
    Bar(HistoryBar, String),
    /// A backfilled span.
    Coverage(Coverage),
}

/// Encodes a coverage marker.
pub fn encode_coverage(c: &Coverage) -> Vec<u8> {
    let msg = CoverageMessage {
        event_type: COVERAGE_EVENT.to_owned(),
        symbol: c.symbol.to_string(),
        interval_minutes: c.interval.minutes(),
        start: c.start.to_rfc3339(),
        end: c.end.to_rfc3339(),
        provider: c.provider.clone(),
        bars: c.bars,
    };
    // unwrap: plain data.
    serde_json::to_vec(&msg).unwrap()
}

#[derive(Deserialize)]
struct EventType<'a> {
    #[serde(borrow)]
    event_type: Option<Cow<'a, str>>,
}

/// Decodes a `market.prices.history` message.
///
/// # Errors
/// A [`WireError`] for anything that is not a bar or coverage marker of a known interval.
pub fn decode_history(payload: &[u8]) -> Result<HistoryMessage, WireError> {
    let kind: EventType<'_> =
        serde_json::from_slice(payload).map_err(|e| WireError::NotJson(e.to_string()))?;
    let interval = |m: u32| {
        Interval::from_minutes(m).ok_or_else(|| WireError::NotJson(format!("interval_minutes {m}")))
    };
    if kind.event_type.as_deref() == Some(COVERAGE_EVENT) {
        let c: CoverageMessage =
            serde_json::from_slice(payload).map_err(|e| WireError::NotJson(e.to_string()))?;
        return Ok(HistoryMessage::Coverage(Coverage {
            symbol: Symbol::parse(&c.symbol)?,
            interval: interval(c.interval_minutes)?,
            start: parse_timestamp(&c.start, chrono_tz::UTC)?,
            end: parse_timestamp(&c.end, chrono_tz::UTC)?,
            provider: c.provider,
            bars: c.bars,
        }));
    }
    let b: BarMessage =
        serde_json::from_slice(payload).map_err(|e| WireError::NotJson(e.to_string()))?;
    let prices = [b.open, b.high, b.low, b.close];
    if prices.iter().any(|p| !p.is_finite() || *p <= 0.0)
        || !b.volume.is_finite()
        || b.volume < 0.0
        || b.low > b.high
    {
        return Err(WireError::NotJson(format!(
            "bar prices or volume out of range: {prices:?} {}",
            b.volume
        )));
    }
    let bar = HistoryBar {
        symbol: Symbol::parse(&b.symbol)?,
        interval: interval(b.interval_minutes)?,
        start: parse_timestamp(&b.bar_start_ts, chrono_tz::UTC)?,
        end: parse_timestamp(&b.bar_end_ts, chrono_tz::UTC)?,
        open: b.open,
        high: b.high,
        low: b.low,
        close: b.close,
        volume: b.volume,
    };
    Ok(HistoryMessage::Bar(bar, b.source))
}

#[cfg(test)]
mod tests {
    use super::super::bar::{AGGREGATOR, BarStatus, encode_bar, encode_history_bar};
    use super::*;

    #[test]
    fn history_bars_and_coverage_round_trip_and_live_bars_say_what_they_are() {
        let sym = Symbol::parse("AAPL").unwrap();
        let start = parse_timestamp("2024-03-28T13:30:00Z", chrono_tz::UTC).unwrap();
        let bar = HistoryBar {
            symbol: sym,
            interval: Interval::M5,
            start,
            end: start.add_micros(Interval::M5.micros()),
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: 10.0,
        };
        assert_eq!(
            decode_history(&encode_history_bar(&bar, "twelvedata")),
            Ok(HistoryMessage::Bar(bar, "twelvedata".into()))
        );
        let c = Coverage {
            symbol: sym,
            interval: Interval::M5,
            start,
            end: bar.end,
            provider: "twelvedata".into(),
            bars: 1,
        };
        assert_eq!(
            decode_history(&encode_coverage(&c)),
            Ok(HistoryMessage::Coverage(c))
        );
        let live = crate::domain::Bar {
            symbol: sym,
            interval: Interval::M5,
            start,
            end: bar.end,
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            volume: 1.0,
            trades: 1,
            price_volume: 1.0,
            open_time: start,
            close_time: start,
            revision: 0,
            ties: crate::domain::bar::TieBreak::default(),
        };
        let v: serde_json::Value =
            serde_json::from_slice(&encode_bar(&live, BarStatus::Closed, None)).unwrap();
        assert_eq!(v["type"], "bar");
        assert_eq!(v["status"], "closed");
        assert_eq!(v["interval"], "5m", "the canonical interval name");
        assert_eq!(v["interval_minutes"], 5);
        assert_eq!(v["source"], AGGREGATOR);
        assert!(
            v.get("indicators").is_none(),
            "only forming bars carry indicators"
        );
        let mut broken = bar;
        broken.low = 3.0;
        assert!(decode_history(&encode_history_bar(&broken, "x")).is_err());
        assert!(decode_history(b"{").is_err());
    }
}
