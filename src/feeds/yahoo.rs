//! Yahoo Finance streaming: the frame format and its decoding.
//!
//! Frames are JSON `{"type":"pricing","message":"<base64 PricingData protobuf>"}`. The
//! event time is the quote's own `time` (field 3, epoch ms), never receipt time; the trade
//! size is `last_size` (field 22), or the growth of the cumulative `day_volume` (field 9)
//! when Yahoo sends no `last_size` (the reference used `day_volume` itself as a trade size).

use crate::domain::time::Timestamp;
use crate::domain::{Source, Symbol, Tick};
use crate::feeds::DayVolumes;
use base64::Engine;

/// The fields of Yahoo's `PricingData` message that tickflow reads (prost skips the rest).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PricingData {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(float, tag = "2")]
    pub price: f32,
    /// Epoch milliseconds.
    #[prost(sint64, tag = "3")]
    pub time: i64,
    #[prost(string, tag = "4")]
    pub currency: String,
    #[prost(string, tag = "5")]
    pub exchange: String,
    #[prost(int32, tag = "7")]
    pub market_hours: i32,
    /// Cumulative session volume.
    #[prost(sint64, tag = "9")]
    pub day_volume: i64,
    /// Size of the last trade.
    #[prost(sint64, tag = "22")]
    pub last_size: i64,
}

/// Why a frame was not used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    #[error("frame is not JSON: {0}")]
    NotJson(String),
    #[error("message is not base64: {0}")]
    NotBase64(String),
    #[error("message is not a PricingData protobuf: {0}")]
    NotProtobuf(String),
}

#[derive(serde::Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

/// Decodes one text frame; `Ok(None)` for frames that carry no pricing message.
///
/// # Errors
/// A [`FrameError`] for a frame that claims to be pricing data but is not.
pub fn decode_frame(text: &str) -> Result<Option<PricingData>, FrameError> {
    let frame: Frame =
        serde_json::from_str(text).map_err(|e| FrameError::NotJson(e.to_string()))?;
    let (Some("pricing"), Some(message)) = (frame.kind.as_deref(), frame.message) else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(message.trim())
        .map_err(|e| FrameError::NotBase64(e.to_string()))?;
    <PricingData as prost::Message>::decode(bytes.as_slice())
        .map(Some)
        .map_err(|e| FrameError::NotProtobuf(e.to_string()))
}

/// Turns decoded quotes into ticks, remembering each symbol's day volume for the sizes.
#[derive(Debug, Default)]
pub struct QuoteConverter {
    day_volume: DayVolumes,
}

impl QuoteConverter {
    /// The tick of `q`, or `None` when it has no usable symbol, price or time.
    ///
    /// The price is Yahoo's float32 read as its shortest decimal (`229.35`, not
    /// `229.35000610351562`): the quote as the exchange printed it.
    pub fn tick(&mut self, q: &PricingData) -> Option<Tick> {
        let symbol = Symbol::parse(&q.id).ok()?;
        let price: f64 = format!("{}", q.price).parse().ok()?;
        if q.time <= 0 {
            return None;
        }
        let grown = self.day_volume.trade_size(symbol, q.day_volume);
        let size = if q.last_size > 0 {
            q.last_size as f64
        } else {
            grown
        };
        Tick::new(
            symbol,
            Timestamp::from_millis(q.time),
            price,
            size,
            Source::new("yfinance"),
        )
        .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = "CgRBQVBMFZpZZUMY0LSn65dmSI6c7jCwAcgB";

    #[test]
    fn the_reference_test_vector_decodes() {
        let q = decode_frame(&format!(r#"{{"type":"pricing","message":"{VECTOR}"}}"#))
            .unwrap()
            .unwrap();
        assert_eq!(
            (q.id.as_str(), q.time, q.day_volume, q.last_size),
            ("AAPL", 1_755_546_185_000, 51_234_567, 100)
        );
        assert_eq!(q.price, 229.35_f32);
        let t = QuoteConverter::default().tick(&q).unwrap();
        assert_eq!(
            (t.symbol().as_str(), t.price(), t.size(), t.ts().micros()),
            ("AAPL", 229.35, 100.0, 1_755_546_185_000_000)
        );
    }

    #[test]
    fn without_last_size_the_day_volume_growth_is_the_size() {
        let mut c = QuoteConverter::default();
        let q = |v: i64| PricingData {
            id: "MSFT".into(),
            price: 10.0,
            time: 1,
            day_volume: v,
            ..Default::default()
        };
        assert_eq!(
            c.tick(&q(1000)).unwrap().size(),
            0.0,
            "first quote: no known trade size"
        );
        assert_eq!(c.tick(&q(1250)).unwrap().size(), 250.0);
        assert_eq!(
            c.tick(&q(40)).unwrap().size(),
            0.0,
            "a new session resets the count"
        );
    }

    #[test]
    fn other_frames_are_skipped_and_broken_ones_reported() {
        assert_eq!(decode_frame(r#"{"type":"heartbeat"}"#), Ok(None));
        assert!(matches!(decode_frame("{"), Err(FrameError::NotJson(_))));
        assert!(matches!(
            decode_frame(r#"{"type":"pricing","message":"***"}"#),
            Err(FrameError::NotBase64(_))
        ));
        assert!(matches!(
            decode_frame(r#"{"type":"pricing","message":"/////w=="}"#),
            Err(FrameError::NotProtobuf(_))
        ));
    }
}
