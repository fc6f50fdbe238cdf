//! TwelveData: the REST `time_series` history format and the WebSocket price events.
//!
//! `time_series` datetimes are wall-clock times of the exchange's zone, named in
//! `meta.exchange_timezone` (the reference read them as UTC and shifted history by 4–5
//! hours); prices come as decimal strings. Errors are HTTP 200 bodies with `status: error`
//! and a `code`: 429 is a spent allowance (per minute, or per day when the message says so),
//! and "No data is available" is an empty answer, not a failure.

use crate::domain::gaps::RawBar;
use crate::domain::time::{Timestamp, local_to_utc};
use crate::domain::{Symbol, TradingCalendar};
use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;

/// TwelveData's REST base URL.
pub const DEFAULT_REST_URL: &str = "https://api.twelvedata.com";
/// TwelveData's price WebSocket.
pub const DEFAULT_WS_URL: &str = "wss://ws.twelvedata.com/v1/quotes/price";

/// What a `time_series` body says.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesResponse {
    /// Bars (any order), with the exchange's zone their datetimes are in.
    Bars { tz: Tz, rows: Vec<SeriesRow> },
    /// The provider has nothing for the span.
    NoData,
    /// Allowance spent: for the minute, or for the day.
    Throttled { daily: bool, message: String },
    /// Any other error (bad key, unknown symbol, …).
    Error { code: i64, message: String },
}

/// One `values` entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesRow {
    /// Exchange-local wall-clock time (midnight for daily rows).
    pub local: NaiveDateTime,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// 0 where the instrument has no volume (FX).
    pub volume: f64,
}

/// A body that is none of the documented shapes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unexpected TwelveData response: {0}")]
pub struct UnexpectedBody(pub String);

#[derive(serde::Deserialize)]
struct Body {
    status: Option<String>,
    code: Option<i64>,
    message: Option<String>,
    meta: Option<Meta>,
    values: Option<Vec<Values>>,
}

#[derive(serde::Deserialize)]
struct Meta {
    exchange_timezone: Option<String>,
}

#[derive(serde::Deserialize)]
struct Values {
    datetime: String,
    open: String,
    high: String,
    low: String,
    close: String,
    volume: Option<String>,
}

/// Parses a `time_series` body.
///
/// # Errors
/// [`UnexpectedBody`] for a body that is neither bars nor a documented error.
pub fn parse_time_series(body: &str) -> Result<SeriesResponse, UnexpectedBody> {
    let b: Body = serde_json::from_str(body)
        .map_err(|e| UnexpectedBody(format!("{e}: {:.120}", body.trim())))?;
    if b.status.as_deref() == Some("error") {
        let message = b.message.unwrap_or_default();
        let code = b.code.unwrap_or(0);
        return Ok(if code == 429 {
            SeriesResponse::Throttled {
                daily: message.contains("for the day") || message.contains("daily"),
                message,
            }
        } else if message.contains("No data is available") {
            SeriesResponse::NoData
        } else {
            SeriesResponse::Error { code, message }
        });
    }
    let tz_name = b
        .meta
        .and_then(|m| m.exchange_timezone)
        .ok_or_else(|| UnexpectedBody("meta.exchange_timezone missing".into()))?;
    let tz: Tz = tz_name
        .parse()
        .map_err(|_| UnexpectedBody(format!("unknown exchange_timezone {tz_name:?}")))?;
    let mut rows = Vec::new();
    for v in b.values.unwrap_or_default() {
        let local = NaiveDateTime::parse_from_str(&v.datetime, "%Y-%m-%d %H:%M:%S")
            .or_else(|_| {
                NaiveDate::parse_from_str(&v.datetime, "%Y-%m-%d")
                    .map(|d| d.and_time(chrono::NaiveTime::MIN))
            })
            .map_err(|_| UnexpectedBody(format!("bad datetime {:?}", v.datetime)))?;
        let num = |s: &str, name: &str| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| UnexpectedBody(format!("bad {name} {s:?} at {}", v.datetime)))
        };
        rows.push(SeriesRow {
            local,
            open: num(&v.open, "open")?,
            high: num(&v.high, "high")?,
            low: num(&v.low, "low")?,
            close: num(&v.close, "close")?,
            volume: v.volume.as_deref().map_or(Ok(0.0), |s| num(s, "volume"))?,
        });
    }
    Ok(SeriesResponse::Bars { tz, rows })
}

/// Places rows on the time line: intraday rows are exchange-local times converted with the
/// exchange's zone; daily rows are the session of their date in `calendar` (rows on days
/// without a session are dropped).
///
/// # Errors
/// A local time that does not exist in `tz` (inside a daylight-saving jump).
pub fn to_raw_bars(
    rows: &[SeriesRow],
    tz: Tz,
    calendar: &TradingCalendar,
    daily: bool,
) -> Result<Vec<RawBar>, UnexpectedBody> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let start = if daily {
            match calendar.session_on(r.local.date()) {
                Some(s) => s.start,
                None => continue,
            }
        } else {
            local_to_utc(r.local, tz)
                .ok_or_else(|| UnexpectedBody(format!("{} does not exist in {tz}", r.local)))?
        };
        out.push(RawBar {
            start,
            open: r.open,
            high: r.high,
            low: r.low,
            close: r.close,
            volume: r.volume,
        });
    }
    Ok(out)
}

/// A WebSocket event.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A price update: event time (epoch seconds) and cumulative day volume when given.
    Price {
        symbol: Symbol,
        price: f64,
        ts: Timestamp,
        day_volume: Option<i64>,
    },
    /// The answer to a subscription: the symbols refused.
    SubscribeStatus { ok: bool, fails: Vec<String> },
    /// Anything else (heartbeat answers, …).
    Other,
}

#[derive(serde::Deserialize)]
struct EventIn {
    event: Option<String>,
    symbol: Option<String>,
    price: Option<f64>,
    timestamp: Option<f64>,
    day_volume: Option<f64>,
    status: Option<String>,
    fails: Option<Vec<serde_json::Value>>,
}

/// Decodes one text frame.
///
/// # Errors
/// A message for frames that are not JSON, or price events without symbol, price or time.
pub fn decode_event(text: &str) -> Result<StreamEvent, String> {
    let e: EventIn = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    match e.event.as_deref() {
        Some("price") => {
            let symbol = e
                .symbol
                .as_deref()
                .ok_or("price event without symbol")
                .and_then(|s| Symbol::parse(s).map_err(|_| "bad symbol"))?;
            let price = e
                .price
                .filter(|p| p.is_finite() && *p > 0.0)
                .ok_or("price event without a positive price")?;
            let ts = e
                .timestamp
                .filter(|t| t.is_finite() && *t > 0.0)
                .ok_or("price event without timestamp")?;
            Ok(StreamEvent::Price {
                symbol,
                price,
                ts: Timestamp::from_micros((ts * 1e6).round() as i64),
                day_volume: e.day_volume.map(|v| v as i64),
            })
        }
        Some("subscribe-status") => Ok(StreamEvent::SubscribeStatus {
            ok: e.status.as_deref() == Some("ok"),
            fails: e
                .fails
                .unwrap_or_default()
                .iter()
                .map(|f| {
                    f.get("symbol")
                        .and_then(|s| s.as_str())
                        .map_or_else(|| f.to_string(), str::to_owned)
                })
                .collect(),
        }),
        _ => Ok(StreamEvent::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parse_timestamp;

    #[test]
    fn exchange_local_datetimes_become_utc_across_daylight_saving() {
        let body = r#"{"meta":{"symbol":"AAPL","interval":"5min","currency":"USD","exchange_timezone":"America/New_York","exchange":"NASDAQ","mic_code":"XNGS","type":"Common Stock"},
            "values":[{"datetime":"2024-03-11 09:30:00","open":"172.94","high":"173.00","low":"172.50","close":"172.75","volume":"1000"},
                      {"datetime":"2024-03-08 15:55:00","open":"170.10","high":"170.50","low":"170.00","close":"170.73","volume":"2000"}],"status":"ok"}"#;
        let SeriesResponse::Bars { tz, rows } = parse_time_series(body).unwrap() else {
            panic!("bars expected")
        };
        let bars = to_raw_bars(&rows, tz, &TradingCalendar::us_equity(), false).unwrap();
        let utc = |s| parse_timestamp(s, chrono_tz::UTC).unwrap();
        assert_eq!(bars[0].start, utc("2024-03-11T13:30:00Z"), "EDT, UTC-4");
        assert_eq!(bars[1].start, utc("2024-03-08T20:55:00Z"), "EST, UTC-5");
        assert_eq!((bars[1].close, bars[1].volume), (170.73, 2000.0));
    }

    #[test]
    fn daily_rows_are_sessions() {
        let body = r#"{"meta":{"exchange_timezone":"America/New_York"},"values":[{"datetime":"2024-03-08","open":"1","high":"2","low":"0.5","close":"1.5","volume":"10"}],"status":"ok"}"#;
        let SeriesResponse::Bars { tz, rows } = parse_time_series(body).unwrap() else {
            panic!()
        };
        let bars = to_raw_bars(&rows, tz, &TradingCalendar::us_equity(), true).unwrap();
        assert_eq!(
            bars[0].start,
            parse_timestamp("2024-03-08T14:30:00Z", chrono_tz::UTC).unwrap()
        );
    }

    #[test]
    fn error_bodies_are_told_apart() {
        let minute = r#"{"code":429,"message":"You have run out of API credits for the current minute. 9 API credits were used, with the current limit being 8.","status":"error"}"#;
        assert!(matches!(
            parse_time_series(minute),
            Ok(SeriesResponse::Throttled { daily: false, .. })
        ));
        let day = r#"{"code":429,"message":"You have run out of API credits for the day. 801 API credits were used, with the current limit being 800.","status":"error"}"#;
        assert!(matches!(
            parse_time_series(day),
            Ok(SeriesResponse::Throttled { daily: true, .. })
        ));
        let none = r#"{"code":400,"message":"No data is available on the specified dates. Try setting different start/end dates.","status":"error"}"#;
        assert_eq!(parse_time_series(none), Ok(SeriesResponse::NoData));
        let key = r#"{"code":401,"message":"**apikey** parameter is incorrect or not specified.","status":"error"}"#;
        assert!(matches!(
            parse_time_series(key),
            Ok(SeriesResponse::Error { code: 401, .. })
        ));
        assert!(parse_time_series("<html>").is_err());
        let bad = r#"{"meta":{"exchange_timezone":"America/New_York"},"values":[{"datetime":"x","open":"1","high":"1","low":"1","close":"1"}],"status":"ok"}"#;
        assert!(parse_time_series(bad).is_err());
    }

    #[test]
    fn websocket_events_decode() {
        let price = r#"{"event":"price","symbol":"AAPL","currency":"USD","exchange":"NASDAQ","mic_code":"XNGS","type":"Common Stock","timestamp":1592303034,"price":355.2,"day_volume":1234}"#;
        assert_eq!(
            decode_event(price),
            Ok(StreamEvent::Price {
                symbol: Symbol::parse("AAPL").unwrap(),
                price: 355.2,
                ts: Timestamp::from_secs(1_592_303_034),
                day_volume: Some(1234),
            })
        );
        let status = r#"{"event":"subscribe-status","status":"error","success":[],"fails":[{"symbol":"NOPE"}]}"#;
        assert_eq!(
            decode_event(status),
            Ok(StreamEvent::SubscribeStatus {
                ok: false,
                fails: vec!["NOPE".into()]
            })
        );
        assert_eq!(
            decode_event(r#"{"event":"heartbeat","status":"ok"}"#),
            Ok(StreamEvent::Other)
        );
        assert!(decode_event(r#"{"event":"price","symbol":"AAPL"}"#).is_err());
        assert!(decode_event("nope").is_err());
    }
}
