//! Alpha Vantage `TIME_SERIES_DAILY` (`datatype=csv`): response parsing.
//!
//! Alpha Vantage answers throttling with HTTP 200 and a JSON body holding a `Note` or an
//! `Information` message instead of CSV (the reference treated those as "no data"); errors
//! come as `Error Message`. All three are told apart here so callers wait or fall back.

use chrono::NaiveDate;

/// Alpha Vantage's base URL.
pub const DEFAULT_URL: &str = "https://www.alphavantage.co";

/// One daily bar as Alpha Vantage reports it (the exchange's trading date).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DailyBar {
    pub date: NaiveDate,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// What a response body says.
#[derive(Debug, Clone, PartialEq)]
pub enum DailyResponse {
    /// Bars, oldest first (Alpha Vantage sends newest first).
    Bars(Vec<DailyBar>),
    /// A rate-limit notice: `Note` is the per-minute frequency (wait a minute),
    /// `Information` the daily allowance or a premium-only request (use another provider).
    Throttled { daily: bool, message: String },
    /// An `Error Message` (unknown symbol, bad key, …).
    Error(String),
}

/// A body that is none of the documented shapes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unexpected Alpha Vantage response at line {line}: {reason}")]
pub struct UnexpectedBody {
    pub line: usize,
    pub reason: String,
}

/// Parses a `TIME_SERIES_DAILY` CSV (or notice) body.
///
/// # Errors
/// [`UnexpectedBody`] naming the first line that is neither a bar nor a known notice.
pub fn parse_daily(body: &str) -> Result<DailyResponse, UnexpectedBody> {
    let trimmed = body.trim_start();
    if trimmed.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(trimmed).map_err(|e| UnexpectedBody {
            line: 1,
            reason: e.to_string(),
        })?;
        for (key, daily) in [("Note", false), ("Information", true)] {
            if let Some(msg) = v.get(key).and_then(|m| m.as_str()) {
                return Ok(DailyResponse::Throttled {
                    daily,
                    message: msg.to_owned(),
                });
            }
        }
        if let Some(msg) = v.get("Error Message").and_then(|m| m.as_str()) {
            return Ok(DailyResponse::Error(msg.to_owned()));
        }
        return Err(UnexpectedBody {
            line: 1,
            reason: format!("JSON without Note, Information or Error Message: {trimmed:.120}"),
        });
    }
    let mut lines = trimmed.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(d), Some(o), Some(h), Some(l), Some(c), Some(v)) = (
        col("timestamp"),
        col("open"),
        col("high"),
        col("low"),
        col("close"),
        col("volume"),
    ) else {
        return Err(UnexpectedBody {
            line: 1,
            reason: format!("header is {header:?}"),
        });
    };
    let mut bars = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = |what: &str| UnexpectedBody {
            line: i + 2,
            reason: format!("{what} in {line:?}"),
        };
        let num = |idx: usize, name: &str| -> Result<f64, UnexpectedBody> {
            cells
                .get(idx)
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| bad(name))
        };
        let date = cells
            .get(d)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .ok_or_else(|| bad("bad date"))?;
        bars.push(DailyBar {
            date,
            open: num(o, "bad open")?,
            high: num(h, "bad high")?,
            low: num(l, "bad low")?,
            close: num(c, "bad close")?,
            volume: num(v, "bad volume")?,
        });
    }
    bars.sort_by_key(|b| b.date);
    Ok(DailyResponse::Bars(bars))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_bars_come_back_oldest_first() {
        let body = "timestamp,open,high,low,close,volume\r\n2024-01-05,181.99,182.76,180.17,181.18,62303300\r\n2024-01-04,182.15,183.09,180.88,181.91,71983600\r\n";
        let DailyResponse::Bars(bars) = parse_daily(body).unwrap() else {
            panic!("bars expected")
        };
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].date.to_string(), "2024-01-04");
        assert_eq!(
            (bars[1].open, bars[1].close, bars[1].volume),
            (181.99, 181.18, 62_303_300.0)
        );
    }

    #[test]
    fn throttle_and_error_bodies_are_recognised() {
        let note = r#"{"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls per day."}"#;
        assert!(
            matches!(parse_daily(note), Ok(DailyResponse::Throttled { daily: false, message }) if message.contains("call frequency"))
        );
        let info =
            r#"{"Information": "We have detected your API key as ... 25 requests per day."}"#;
        assert!(matches!(
            parse_daily(info),
            Ok(DailyResponse::Throttled { daily: true, .. })
        ));
        let err =
            r#"{"Error Message": "Invalid API call. Please retry or visit the documentation."}"#;
        assert!(matches!(parse_daily(err), Ok(DailyResponse::Error(_))));
        assert_eq!(
            parse_daily("timestamp,open,high,low,close,volume\n"),
            Ok(DailyResponse::Bars(vec![]))
        );
    }

    #[test]
    fn malformed_bodies_name_the_line() {
        assert_eq!(parse_daily("<html>oops</html>").unwrap_err().line, 1);
        let bad = "timestamp,open,high,low,close,volume\n2024-01-05,1,2,0.5,1.5,10\n2024-01-04,1,x,0.5,1.5,10\n";
        let e = parse_daily(bad).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.reason.contains("bad high"));
        assert!(parse_daily(r#"{"unexpected": 1}"#).is_err());
    }
}
