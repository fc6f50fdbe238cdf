//! Indicator messages: per closed bar (`market.analytics`) and per trade
//! (`market.analytics.realtime`).

use crate::output::{AnalyticsRecord, RealtimeRecord};
use serde::Serialize;

/// An indicator map serialised straight from [`NamedValues`] (no intermediate JSON tree):
/// `null` for undefined values, or undefined keys left out.
pub(super) struct IndicatorMap<'a, const N: usize> {
    pub(super) values: &'a crate::domain::indicators::NamedValues<N>,
    pub(super) skip_undefined: bool,
}

impl<const N: usize> Serialize for IndicatorMap<'_, N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.values.iter() {
            if v.is_some() || !self.skip_undefined {
                map.serialize_entry(k, &v)?;
            }
        }
        map.end()
    }
}

#[derive(Serialize)]
struct AnalyticsOut<'a> {
    event_type: &'static str,
    version: &'static str,
    symbol: &'a str,
    interval_minutes: u32,
    interval: &'static str,
    timestamp: String,
    price: f64,
    indicators: IndicatorMap<'a, { crate::domain::indicators::BAR_INDICATOR_COUNT }>,
}

#[derive(Serialize)]
struct RealtimeOut<'a> {
    event_type: &'static str,
    version: &'static str,
    symbol: &'a str,
    timestamp: String,
    price: f64,
    indicators: IndicatorMap<'a, { crate::domain::tick_metrics::TICK_METRIC_COUNT }>,
}

/// Encodes bar analytics for `market.analytics` (§1.2e; `interval_minutes` an integer,
/// `timestamp` the bar start, every indicator key present, `null` while warming up),
/// appending to `out`.
pub fn encode_analytics_into(a: &AnalyticsRecord, out: &mut Vec<u8>) {
    let msg = AnalyticsOut {
        event_type: "analytics.technical",
        version: "1.0",
        symbol: a.symbol.as_str(),
        interval_minutes: a.interval.minutes(),
        interval: a.interval.as_str(),
        timestamp: a.start.to_rfc3339(),
        price: a.price,
        indicators: IndicatorMap {
            values: &a.values,
            skip_undefined: false,
        },
    };
    // unwrap: strings and finite numbers always serialise, and a Vec never fails to grow.
    serde_json::to_writer(out, &msg).unwrap();
}

/// Encodes realtime metrics for `market.analytics.realtime` (§1.2f; keys only when
/// defined), appending to `out`.
pub fn encode_realtime_into(r: &RealtimeRecord, out: &mut Vec<u8>) {
    let msg = RealtimeOut {
        event_type: "analytics.realtime",
        version: "1.0",
        symbol: r.symbol.as_str(),
        timestamp: r.ts.to_rfc3339(),
        price: r.price,
        indicators: IndicatorMap {
            values: &r.values,
            skip_undefined: true,
        },
    };
    // unwrap: as above.
    serde_json::to_writer(out, &msg).unwrap();
}

/// [`encode_analytics_into`] a new buffer.
pub fn encode_analytics(a: &AnalyticsRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    encode_analytics_into(a, &mut out);
    out
}

/// [`encode_realtime_into`] a new buffer.
pub fn encode_realtime(r: &RealtimeRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    encode_realtime_into(r, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Source, Symbol, Tick};

    #[test]
    fn realtime_messages_carry_defined_keys_only_and_analytics_every_key() {
        let sym = Symbol::parse("AAPL").unwrap();
        let mut metrics = crate::domain::TickMetrics::new();
        let t = Tick::new(
            sym,
            crate::domain::Timestamp::from_secs(1_700_000_000),
            10.0,
            1.0,
            Source::new("x"),
        )
        .unwrap();
        let values = *metrics.update(&t);
        let r = RealtimeRecord {
            symbol: sym,
            ts: t.ts(),
            seq: crate::output::Seq {
                partition: 0,
                offset: 0,
            },
            price: 10.0,
            values,
        };
        let v: serde_json::Value = serde_json::from_slice(&encode_realtime(&r)).unwrap();
        assert_eq!(v["event_type"], "analytics.realtime");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(
            v["indicators"],
            serde_json::json!({}),
            "nothing is defined after one tick"
        );

        let mut ind = crate::domain::BarIndicators::new(
            crate::domain::Interval::M5,
            crate::domain::TradingCalendar::us_equity(),
        );
        let bar = crate::domain::Ohlcv::flat(10.0, 5.0);
        let values = *ind.update(t.ts(), &bar, None);
        let a = AnalyticsRecord {
            symbol: sym,
            interval: crate::domain::Interval::M5,
            start: t.ts(),
            end: t.ts(),
            price: 10.0,
            values,
            trades: 1,
        };
        let v: serde_json::Value = serde_json::from_slice(&encode_analytics(&a)).unwrap();
        assert_eq!(v["interval_minutes"], 5, "an integer, not 5.0");
        let indicators = v["indicators"].as_object().unwrap();
        assert_eq!(indicators.len(), crate::domain::BAR_INDICATOR_NAMES.len());
        assert_eq!(indicators["sma_20"], serde_json::Value::Null);
        assert_eq!(indicators["obv"], 5.0);
    }
}
