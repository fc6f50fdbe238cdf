//! Message formats on the topics: the reference platform's JSON field names, one timestamp
//! convention (RFC 3339 UTC strings, `Z` suffix, key time = trade time for ticks and bar
//! start for bars and analytics), every message keyed by its symbol.

use crate::domain::tick::TickError;
use crate::domain::time::{TimeError, timestamp_from_epoch};
use crate::domain::{
    Bar, IndicatorValues, Interval, Source, Symbol, Tick, Timestamp, parse_timestamp,
};
use crate::domain::{Coverage, HistoryBar};
use crate::output::{AnalyticsRecord, RealtimeRecord};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Why a raw message is not a tick; each becomes a dead-letter reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    #[error("not a JSON tick object: {0}")]
    NotJson(String),
    #[error("missing field {0:?}")]
    MissingField(&'static str),
    #[error("bad symbol: {0}")]
    Symbol(#[from] crate::domain::symbol::SymbolError),
    #[error("bad timestamp: {0}")]
    Timestamp(#[from] TimeError),
    #[error("bad tick: {0}")]
    Tick(#[from] TickError),
}

impl WireError {
    /// A short, fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotJson(_) => "not_json",
            Self::MissingField(_) => "missing_field",
            Self::Symbol(_) => "bad_symbol",
            Self::Timestamp(_) => "bad_timestamp",
            Self::Tick(_) => "bad_tick",
        }
    }
}

/// A tick's `timestamp`: a number (epoch) or a string (ISO-8601).
///
/// Deserialised by hand: `#[serde(untagged)]` would buffer the value and build an error
/// for every variant it tries, on every tick.
enum TimestampIn<'a> {
    Number(f64),
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for TimestampIn<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = TimestampIn<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an ISO-8601 string or epoch number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(TimestampIn::Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(TimestampIn::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(TimestampIn::Number(v as f64))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(TimestampIn::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TimestampIn::Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_any(Visit(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct RawTickIn<'a> {
    #[serde(borrow)]
    symbol: Option<Cow<'a, str>>,
    price: Option<f64>,
    #[serde(borrow)]
    timestamp: Option<TimestampIn<'a>>,
    /// The trade size (null or absent: 0).
    volume: Option<f64>,
    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
}

/// Parses a raw-topic message (§1.2a of the reference: `symbol`, `price`, `timestamp` as an
/// ISO string or epoch seconds/ms, `volume` = trade size, `source`). Naive ISO times are UTC.
///
/// # Errors
/// A [`WireError`] naming what is wrong.
pub fn parse_raw_tick(payload: &[u8]) -> Result<Tick, WireError> {
    let raw: RawTickIn<'_> =
        serde_json::from_slice(payload).map_err(|e| WireError::NotJson(e.to_string()))?;
    let symbol = Symbol::parse(&raw.symbol.ok_or(WireError::MissingField("symbol"))?)?;
    let price = raw.price.ok_or(WireError::MissingField("price"))?;
    let ts = match raw.timestamp.ok_or(WireError::MissingField("timestamp"))? {
        TimestampIn::Number(n) => timestamp_from_epoch(n)?,
        TimestampIn::Text(t) => parse_timestamp(&t, chrono_tz::UTC)?,
    };
    let source = Source::new(raw.source.as_deref().unwrap_or("unknown"));
    Ok(Tick::new(
        symbol,
        ts,
        price,
        raw.volume.unwrap_or(0.0),
        source,
    )?)
}

/// The raw-topic JSON of a tick.
#[derive(Serialize)]
pub struct RawTickOut<'a> {
    pub symbol: &'a str,
    pub price: f64,
    pub timestamp: String,
    pub volume: f64,
    pub source: &'a str,
}

/// Encodes a tick for the raw topic.
pub fn encode_raw_tick(tick: &Tick) -> Vec<u8> {
    let (symbol, source) = (tick.symbol(), tick.source());
    let out = RawTickOut {
        symbol: symbol.as_str(),
        price: tick.price(),
        timestamp: tick.ts().to_rfc3339(),
        volume: tick.size(),
        source: source.as_str(),
    };
    // unwrap: serialising a struct of strings and finite numbers cannot fail.
    serde_json::to_vec(&out).unwrap()
}

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

/// An indicator map serialised straight from [`NamedValues`] (no intermediate JSON tree):
/// `null` for undefined values, or undefined keys left out.
struct IndicatorMap<'a, const N: usize> {
    values: &'a crate::domain::indicators::NamedValues<N>,
    skip_undefined: bool,
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

/// Most payload bytes a dead letter carries: a larger payload is cut (its size and SHA-256
/// are kept), so the letter always fits the topic's message size.
pub const MAX_LETTER_PAYLOAD: usize = 64 * 1024;
/// Most bytes of the refused message's key and of the error text a dead letter carries.
const MAX_LETTER_TEXT: usize = 1024;

/// A dead-letter message: why, where from, and the original bytes (or, for a payload over
/// [`MAX_LETTER_PAYLOAD`], their beginning, size and hash).
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct DeadLetter {
    pub error: String,
    pub reason: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    /// The original payload as text (lossy for non-UTF-8 bytes).
    pub payload: String,
    /// The original payload, exactly, in base64 (its first [`MAX_LETTER_PAYLOAD`] bytes).
    pub payload_base64: String,
    /// Size of the original payload in bytes.
    #[serde(default)]
    pub payload_bytes: usize,
    /// SHA-256 of the whole original payload, hex.
    #[serde(default)]
    pub payload_sha256: String,
    /// Whether `payload`/`payload_base64` hold only the beginning of it.
    #[serde(default)]
    pub truncated: bool,
    pub received_at: String,
}

/// Where a refused message came from: topic, partition, offset, key.
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
}

/// `text` cut to at most `max` bytes on a character boundary.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

impl DeadLetter {
    /// A letter for `payload` from `origin`, refused for `reason` (a short label) because of
    /// `error`, stamped now.
    pub fn new(origin: Origin<'_>, payload: &[u8], error: &str, reason: &str) -> Self {
        use base64::Engine;
        use sha2::Digest;
        let kept = &payload[..payload.len().min(MAX_LETTER_PAYLOAD)];
        Self {
            error: cut(error.to_owned(), MAX_LETTER_TEXT),
            reason: reason.to_owned(),
            topic: origin.topic.to_owned(),
            partition: origin.partition,
            offset: origin.offset,
            key: origin.key.map(|k| cut(k, MAX_LETTER_TEXT)),
            payload: String::from_utf8_lossy(kept).into_owned(),
            payload_base64: base64::engine::general_purpose::STANDARD.encode(kept),
            payload_bytes: payload.len(),
            payload_sha256: format!("{:x}", sha2::Sha256::digest(payload)),
            truncated: kept.len() < payload.len(),
            received_at: Timestamp::from_datetime(&chrono::Utc::now()).to_rfc3339(),
        }
    }

    /// The letter's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // unwrap: a struct of strings and integers always serialises.
        serde_json::to_vec(self).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_tick_shapes_parse() {
        let iso = br#"{"symbol": "aapl", "price": 229.35, "timestamp": "2025-08-18T19:43:05.123456", "volume": 100, "source": "yfinance"}"#;
        let t = parse_raw_tick(iso).unwrap();
        assert_eq!(
            (
                t.symbol().as_str(),
                t.price(),
                t.size(),
                t.source().as_str()
            ),
            ("AAPL", 229.35, 100.0, "yfinance")
        );
        let ms = br#"{"symbol":"AAPL","price":1.5,"timestamp":1755546185000}"#;
        let t = parse_raw_tick(ms).unwrap();
        assert_eq!(
            (t.ts().micros(), t.size(), t.source().as_str()),
            (1_755_546_185_000_000, 0.0, "unknown")
        );
        let secs = br#"{"symbol":"AAPL","price":1.5,"timestamp":1755546185.5,"volume":null}"#;
        assert_eq!(
            parse_raw_tick(secs).unwrap().ts().micros(),
            1_755_546_185_500_000
        );
    }

    #[test]
    fn bad_ticks_name_their_fault() {
        let cases: [(&[u8], &str); 7] = [
            (b"not json", "not_json"),
            (br#"{"price":1,"timestamp":1}"#, "missing_field"),
            (br#"{"symbol":"A B","price":1,"timestamp":1}"#, "bad_symbol"),
            (br#"{"symbol":"A","price":-1,"timestamp":1}"#, "bad_tick"),
            (
                br#"{"symbol":"A","price":1,"timestamp":"soon"}"#,
                "bad_timestamp",
            ),
            (br#"{"symbol":"A","price":"1","timestamp":1}"#, "not_json"),
            (
                br#"{"symbol":"A","price":1,"timestamp":1,"volume":-5}"#,
                "bad_tick",
            ),
        ];
        for (payload, label) in cases {
            assert_eq!(
                parse_raw_tick(payload).unwrap_err().label(),
                label,
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
    }

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
        };
        let v: serde_json::Value = serde_json::from_slice(&encode_analytics(&a)).unwrap();
        assert_eq!(v["interval_minutes"], 5, "an integer, not 5.0");
        let indicators = v["indicators"].as_object().unwrap();
        assert_eq!(indicators.len(), crate::domain::BAR_INDICATOR_NAMES.len());
        assert_eq!(indicators["sma_20"], serde_json::Value::Null);
        assert_eq!(indicators["obv"], 5.0);
    }

    #[test]
    fn encoded_ticks_parse_back_identically() {
        let t = Tick::new(
            Symbol::parse("MSFT").unwrap(),
            crate::domain::Timestamp::from_micros(1_700_000_000_123_456),
            0.1 + 0.2,
            7.0,
            Source::new("sim"),
        )
        .unwrap();
        assert_eq!(parse_raw_tick(&encode_raw_tick(&t)).unwrap(), t);
    }

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

    #[test]
    fn a_dead_letter_of_a_huge_payload_fits_a_message_and_keeps_size_and_hash() {
        let huge = vec![b'x'; 1 << 20];
        let origin = || Origin {
            topic: "market.prices.raw",
            partition: 1,
            offset: 2,
            key: Some("k".repeat(5000)),
        };
        let letter = DeadLetter::new(origin(), &huge, &"e".repeat(10_000), "not_json");
        assert!(letter.to_json().len() < crate::kafka::config::MAX_MESSAGE_BYTES / 4);
        assert!(letter.truncated);
        assert_eq!(letter.payload_bytes, 1 << 20);
        assert_eq!(letter.payload.len(), MAX_LETTER_PAYLOAD);
        assert_eq!(letter.payload_sha256.len(), 64);
        assert!(letter.key.as_ref().unwrap().len() <= 1024 && letter.error.len() <= 1024);
        let small = DeadLetter::new(origin(), b"{\"a\":1}", "bad", "not_json");
        assert!(!small.truncated);
        assert_eq!(small.payload, "{\"a\":1}");
        assert_eq!(
            small.payload_sha256,
            "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
        );
    }

    #[test]
    fn a_forming_bar_carries_every_indicator_null_while_warming_up() {
        let sym = Symbol::parse("AAPL").unwrap();
        let start = parse_timestamp("2024-03-28T13:30:00Z", chrono_tz::UTC).unwrap();
        let tick = Tick::new(sym, start, 10.0, 2.0, Source::new("t")).unwrap();
        let bar = Bar::from_tick(&tick, Interval::M1, start, start.add_micros(60_000_000));
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

    proptest::proptest! {
        /// Every finite price and size reads back bit for bit (serde_json's default float
        /// parser is off by an ulp on some inputs: tickflow builds it with `float_roundtrip`).
        #[test]
        fn prices_and_sizes_read_back_bit_for_bit(
            price in 1e-9f64..1e12,
            size in 0.0f64..1e9,
        ) {
            let t = Tick::new(
                Symbol::parse("AAPL").unwrap(),
                Timestamp::from_secs(1_700_000_000),
                price,
                size,
                Source::new("t"),
            )
            .unwrap();
            let back = parse_raw_tick(&encode_raw_tick(&t)).unwrap();
            proptest::prop_assert_eq!(back.price().to_bits(), price.to_bits());
            proptest::prop_assert_eq!(back.size().to_bits(), size.to_bits());
        }
    }
}
