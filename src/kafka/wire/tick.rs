//! The raw topic's trades: parsed from every shape producers send, encoded in one.

use super::WireError;
use crate::domain::time::timestamp_from_epoch;
use crate::domain::{Source, Symbol, Tick, parse_timestamp};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

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
