//! The REST routes of the reference API (§6.3), same paths, parameters, defaults, bounds and
//! metadata keys; numbers are JSON numbers, New York dates are right, empty results have the
//! same shape as full ones plus a `message`, and every bad parameter is a 4xx naming it.

use crate::domain::indicators::BAR_INDICATOR_NAMES;
use crate::domain::tick_metrics::TICK_METRIC_NAMES;
use crate::store::query::{AnalyticsRow, BarRow, RealtimeRow, TickRow};
use crate::web::AppState;
use crate::web::errors::ApiError;
use crate::web::format::{self, Row, meta, num};
use crate::web::params::{self, Params, format_est};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

const TZ_NOTE: &str = "timestamp_est is in America/New_York timezone (EST/EDT)";
const HISTORICAL_NOTE: &str =
    "Historical daily data represents end-of-day prices in America/New_York timezone";

type Reply = Result<HttpResponse, ApiError>;

fn py_list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{}'", s.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}

/// A trade as the API shows it.
#[derive(serde::Serialize)]
pub struct TickOut<'a> {
    symbol: &'a str,
    price: f64,
    timestamp: String,
    volume: f64,
    source: &'a str,
    timestamp_utc: String,
    timestamp_est: String,
}

fn tick_row(t: &TickRow) -> TickOut<'_> {
    let ts = t.ts.to_rfc3339();
    TickOut {
        symbol: &t.symbol,
        price: t.price,
        timestamp: ts.clone(),
        volume: t.volume,
        source: &t.source,
        timestamp_utc: ts,
        timestamp_est: format_est(t.ts),
    }
}

/// A bar as the API shows it: intraday bars carry `timestamp_est`, session bars `date_est`
/// (their own New York date; the reference printed the day before) and a date `timestamp`.
#[derive(serde::Serialize)]
pub struct BarOut<'a> {
    symbol: &'a str,
    timestamp: String,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    trades: i64,
    vwap: Option<f64>,
    revision: i32,
    source: &'a str,
    timestamp_utc: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp_est: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date_est: Option<String>,
}

fn bar_row(b: &BarRow) -> BarOut<'_> {
    let start = b.start.to_rfc3339();
    let (timestamp, timestamp_est, date_est) = match b.date {
        Some(d) => (d.to_string(), None, Some(d.to_string())),
        None => (start.clone(), Some(format_est(b.start)), None),
    };
    BarOut {
        symbol: &b.symbol,
        timestamp,
        open: b.open,
        high: b.high,
        low: b.low,
        close: b.close,
        volume: b.volume,
        trades: b.trades,
        vwap: b.vwap,
        revision: b.revision,
        source: &b.source,
        timestamp_utc: start,
        timestamp_est,
        date_est,
    }
}

fn analytics_row(a: &AnalyticsRow, wanted: &[String]) -> Row {
    let start = a.start.to_rfc3339();
    let mut row = meta([
        ("symbol", json!(a.symbol)),
        ("price", json!(a.price)),
        ("timestamp_utc", json!(start)),
    ]);
    match a.date {
        Some(d) => {
            row.insert("timestamp".into(), json!(d.to_string()));
            row.insert("date_est".into(), json!(d.to_string()));
        }
        None => {
            row.insert("timestamp".into(), json!(start));
            row.insert("timestamp_est".into(), json!(format_est(a.start)));
        }
    }
    for name in wanted {
        if let Some(i) = BAR_INDICATOR_NAMES.iter().position(|n| n == name) {
            row.insert(name.clone(), num(a.values[i]));
        }
    }
    row
}

fn realtime_row(r: &RealtimeRow, wanted: &[String]) -> Row {
    let ts = r.ts.to_rfc3339();
    let mut row = meta([
        ("symbol", json!(r.symbol)),
        ("timestamp", json!(ts)),
        ("timestamp_utc", json!(ts)),
        ("timestamp_est", json!(format_est(r.ts))),
    ]);
    for name in wanted {
        if name == "price" {
            row.insert("price".into(), json!(r.price));
        } else if let Some(i) = TICK_METRIC_NAMES.iter().position(|n| n == name) {
            row.insert(name.clone(), num(r.values[i]));
        }
    }
    row
}

/// A `last/{count}` answer: 404 with `not_found` when nothing is stored, else the rows with
/// `count` and `requested_count` added to `meta`.
fn last_rows<T: serde::Serialize>(
    format: params::Format,
    mut meta: Row,
    rows: Vec<T>,
    requested: i64,
    not_found: String,
    filename: &str,
) -> Reply {
    if rows.is_empty() {
        return Err(ApiError::NotFound(not_found));
    }
    meta.insert("count".into(), json!(rows.len()));
    meta.insert("requested_count".into(), json!(requested));
    Ok(format::list(format, meta, rows, String::new(), filename))
}

/// Validates requested bar indicators against `allowed`; `default` when none are given.
fn bar_indicators(q: &Params, default: &[&str], allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let mut wanted = q.all("indicators");
    if wanted.is_empty() {
        wanted = default.iter().map(|s| (*s).to_owned()).collect();
    }
    if let Some(bad) = wanted.iter().find(|w| !allowed.contains(&w.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "Invalid indicator: {bad}. Valid indicators: {}",
            py_list(allowed)
        )));
    }
    Ok(wanted)
}

fn analytics_allowed(with_price: bool) -> Vec<&'static str> {
    let mut v: Vec<&str> = BAR_INDICATOR_NAMES.to_vec();
    if with_price {
        v.push("price");
    }
    v
}

/// `GET /api/v2/realtime/prices/{symbol}`
pub async fn realtime_prices(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let symbol = params::symbol(&path)?;
    let q = Params::parse(req.query_string())?;
    let limit = q.int("limit", Some(100), 1, 5000)?.unwrap_or(100);
    let range = q.time_range(Some(("last_minutes", 1, 1440)), None)?;
    let format = q.format()?;
    let stored = state.store.ticks(symbol, range, limit).await?;
    let rows: Vec<_> = stored.iter().map(tick_row).collect();
    Ok(format::list(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("count", json!(rows.len())),
            ("timezone_note", json!(TZ_NOTE)),
        ]),
        rows,
        format!("No real-time data found for {symbol} with the specified filters"),
        &format!("realtime_prices_{symbol}"),
    ))
}

/// `GET /api/v2/realtime/prices/{symbol}/latest`
pub async fn realtime_latest(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let symbol = params::symbol(&path)?;
    let format = Params::parse(req.query_string())?.format()?;
    let stored = state.store.ticks(symbol, Default::default(), 1).await?;
    let row = stored.first().map(tick_row);
    let row = row.ok_or_else(|| {
        ApiError::NotFound(format!("No real-time data found for symbol {symbol}"))
    })?;
    Ok(format::single(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("timezone_note", json!(TZ_NOTE)),
        ]),
        row,
        &format!("realtime_latest_{symbol}"),
    ))
}

/// `GET /api/v2/realtime/analytics/{symbol}`
pub async fn realtime_analytics(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let symbol = params::symbol(&path)?;
    let q = Params::parse(req.query_string())?;
    let limit = q.int("limit", Some(100), 1, 1000)?.unwrap_or(100);
    let range = q.time_range(Some(("last_minutes", 1, 180)), Some(30))?;
    let format = q.format()?;
    let mut allowed: Vec<&str> = TICK_METRIC_NAMES.to_vec();
    allowed.push("price");
    let mut wanted = q.all("indicators");
    let bad: Vec<&String> = wanted
        .iter()
        .filter(|w| !allowed.contains(&w.as_str()))
        .collect();
    if !bad.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "Invalid real-time indicators: {}. Available indicators: {}",
            py_list(&bad),
            py_list(&allowed)
        )));
    }
    if wanted.is_empty() {
        wanted = TICK_METRIC_NAMES.iter().map(|s| (*s).to_owned()).collect();
    }
    if !wanted.iter().any(|w| w == "price") {
        wanted.push("price".into());
    }
    let rows: Vec<Row> = state
        .store
        .realtime(symbol, range, limit)
        .await?
        .iter()
        .map(|r| realtime_row(r, &wanted))
        .collect();
    Ok(format::list(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("indicators", json!(wanted)),
            ("count", json!(rows.len())),
            ("timezone_note", json!(TZ_NOTE)),
        ]),
        rows,
        format!("No real-time analytics found for {symbol}"),
        &format!("realtime_analytics_{symbol}"),
    ))
}

/// `GET /api/v2/realtime/symbols`
pub async fn realtime_symbols(state: web::Data<AppState>) -> Reply {
    let symbols: Vec<Value> = state
        .store
        .symbols()
        .await?
        .iter()
        .map(|s| {
            json!({
                "symbol": s.symbol, "tick_count": s.tick_count,
                "first_seen": s.first_seen.to_rfc3339(), "last_seen": s.last_seen.to_rfc3339(),
                "first_seen_est": format_est(s.first_seen), "last_seen_est": format_est(s.last_seen),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "count": symbols.len(),
        "symbols": symbols,
        "timezone_note": "All timestamps shown in America/New_York timezone",
    })))
}

/// `GET /api/v2/intraday/prices/{symbol}`
pub async fn intraday_prices(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let symbol = params::symbol(&path)?;
    let q = Params::parse(req.query_string())?;
    let interval = q.intraday_interval()?;
    let limit = q.int("limit", Some(100), 1, 2000)?.unwrap_or(100);
    let range = q.time_range(Some(("last_hours", 60, 168)), None)?;
    let format = q.format()?;
    let stored = state.store.bars(symbol, interval, range, limit).await?;
    let rows: Vec<_> = stored.iter().map(bar_row).collect();
    let name = interval.reference_name();
    Ok(format::list(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("interval", json!(name)),
            ("count", json!(rows.len())),
            ("timezone_note", json!(TZ_NOTE)),
        ]),
        rows,
        format!("No intraday {name} data found for {symbol} with the specified filters"),
        &format!("intraday_{name}_{symbol}"),
    ))
}

/// `GET /api/v2/intraday/prices/{symbol}/latest`
pub async fn intraday_latest(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let symbol = params::symbol(&path)?;
    let q = Params::parse(req.query_string())?;
    let interval = q.intraday_interval()?;
    let format = q.format()?;
    let name = interval.reference_name();
    let stored = state
        .store
        .bars(symbol, interval, Default::default(), 1)
        .await?;
    let row = stored.first().map(bar_row);
    let row = row.ok_or_else(|| {
        ApiError::NotFound(format!("No intraday {name} data found for symbol {symbol}"))
    })?;
    Ok(format::single(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("interval", json!(name)),
            ("timezone_note", json!(TZ_NOTE)),
        ]),
        row,
        &format!("intraday_{name}_latest_{symbol}"),
    ))
}

/// `GET /api/v2/intraday/prices/{symbol}/last/{count}`
pub async fn intraday_last(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Reply {
    let symbol = params::symbol(&path.0)?;
    let count = params::count(&path.1, 1000)?;
    let q = Params::parse(req.query_string())?;
    let interval = q.intraday_interval()?;
    let format = q.format()?;
    let name = interval.reference_name();
    let stored = state
        .store
        .bars(symbol, interval, Default::default(), count)
        .await?;
    let rows: Vec<_> = stored.iter().map(bar_row).collect();
    last_rows(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("interval", json!(name)),
            ("timezone_note", json!(TZ_NOTE)),
        ]),
        rows,
        count,
        format!("No intraday {name} data found for symbol {symbol}"),
        &format!("intraday_{name}_last_{count}_{symbol}"),
    )
}

/// `GET /api/v2/intraday/analytics/{symbol}`
pub async fn intraday_analytics(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let symbol = params::symbol(&path)?;
    let q = Params::parse(req.query_string())?;
    let interval = q.intraday_interval()?;
    let wanted = bar_indicators(
        &q,
        &["rsi_14", "macd", "bb_upper", "bb_lower"],
        &analytics_allowed(false),
    )?;
    let limit = q.int("limit", Some(100), 1, 1000)?.unwrap_or(100);
    let range = q.time_range(Some(("last_hours", 60, 72)), None)?;
    let format = q.format()?;
    let name = interval.reference_name();
    let rows: Vec<Row> = state
        .store
        .analytics(symbol, interval, range, limit)
        .await?
        .iter()
        .map(|a| analytics_row(a, &wanted))
        .collect();
    Ok(format::list(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("interval", json!(name)),
            ("indicators", json!(wanted)),
            ("count", json!(rows.len())),
            ("timezone_note", json!(TZ_NOTE)),
        ]),
        rows,
        format!("No intraday analytics found for {symbol} {name}"),
        &format!("intraday_analytics_{name}_{symbol}"),
    ))
}

/// `GET /api/v2/intraday/analytics/{symbol}/last/{count}` (always failed in the reference).
pub async fn intraday_analytics_last(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Reply {
    let symbol = params::symbol(&path.0)?;
    let count = params::count(&path.1, 500)?;
    let q = Params::parse(req.query_string())?;
    let interval = q.intraday_interval()?;
    let wanted = bar_indicators(
        &q,
        &["rsi_14", "macd", "bb_upper", "bb_lower"],
        &analytics_allowed(false),
    )?;
    let format = q.format()?;
    let name = interval.reference_name();
    let rows: Vec<Row> = state
        .store
        .analytics(symbol, interval, Default::default(), count)
        .await?
        .iter()
        .map(|a| analytics_row(a, &wanted))
        .collect();
    last_rows(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("interval", json!(name)),
            ("indicators", json!(wanted)),
            ("timezone_note", json!(TZ_NOTE)),
        ]),
        rows,
        count,
        format!("No intraday analytics found for {symbol} {name}"),
        &format!("intraday_analytics_{name}_last_{count}_{symbol}"),
    )
}

/// `GET /api/v2/historical/prices/{symbol}`
pub async fn historical_prices(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let symbol = params::symbol(&path)?;
    let q = Params::parse(req.query_string())?;
    let limit = q.int("limit", Some(252), 1, 5000)?.unwrap_or(252);
    let dates = q.date_range(2000)?;
    let format = q.format()?;
    let stored = state.store.daily_bars(symbol, dates, limit).await?;
    let rows: Vec<_> = stored.iter().map(bar_row).collect();
    Ok(format::list(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("count", json!(rows.len())),
            ("timezone_note", json!(HISTORICAL_NOTE)),
        ]),
        rows,
        format!("No historical daily data found for {symbol} with the specified filters"),
        &format!("historical_{symbol}"),
    ))
}

/// `GET /api/v2/historical/prices/{symbol}/latest`
pub async fn historical_latest(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let symbol = params::symbol(&path)?;
    let format = Params::parse(req.query_string())?.format()?;
    let stored = state
        .store
        .daily_bars(symbol, Default::default(), 1)
        .await?;
    let row = stored.first().map(bar_row);
    let row = row.ok_or_else(|| {
        ApiError::NotFound(format!(
            "No historical daily data found for symbol {symbol}"
        ))
    })?;
    Ok(format::single(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("timezone_note", json!(HISTORICAL_NOTE)),
        ]),
        row,
        &format!("historical_latest_{symbol}"),
    ))
}

/// `GET /api/v2/historical/prices/{symbol}/last/{count}`
pub async fn historical_last(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Reply {
    let symbol = params::symbol(&path.0)?;
    let count = params::count(&path.1, 2000)?;
    let format = Params::parse(req.query_string())?.format()?;
    let stored = state
        .store
        .daily_bars(symbol, Default::default(), count)
        .await?;
    let rows: Vec<_> = stored.iter().map(bar_row).collect();
    last_rows(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("timezone_note", json!(HISTORICAL_NOTE)),
        ]),
        rows,
        count,
        format!("No historical daily data found for symbol {symbol}"),
        &format!("historical_last_{count}_{symbol}"),
    )
}

/// `GET /api/v2/historical/analytics/{symbol}`
pub async fn historical_analytics(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let symbol = params::symbol(&path)?;
    let q = Params::parse(req.query_string())?;
    let wanted = bar_indicators(
        &q,
        &["rsi_14", "macd", "sma_20", "sma_50"],
        &analytics_allowed(true),
    )?;
    let limit = q.int("limit", Some(252), 1, 2000)?.unwrap_or(252);
    let dates = q.date_range(1000)?;
    let format = q.format()?;
    let rows: Vec<Row> = state
        .store
        .daily_analytics(symbol, dates, limit)
        .await?
        .iter()
        .map(|a| analytics_row(a, &wanted))
        .collect();
    Ok(format::list(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("indicators", json!(wanted)),
            ("count", json!(rows.len())),
            ("timezone_note", json!(HISTORICAL_NOTE)),
        ]),
        rows,
        format!("No historical daily analytics found for {symbol}"),
        &format!("historical_analytics_{symbol}"),
    ))
}

/// `GET /api/v2/historical/analytics/{symbol}/last/{count}`
pub async fn historical_analytics_last(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Reply {
    let symbol = params::symbol(&path.0)?;
    let count = params::count(&path.1, 1000)?;
    let q = Params::parse(req.query_string())?;
    let wanted = bar_indicators(
        &q,
        &["rsi_14", "macd", "sma_20", "sma_50"],
        &analytics_allowed(false),
    )?;
    let format = q.format()?;
    let rows: Vec<Row> = state
        .store
        .daily_analytics(symbol, Default::default(), count)
        .await?
        .iter()
        .map(|a| analytics_row(a, &wanted))
        .collect();
    last_rows(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("indicators", json!(wanted)),
            ("timezone_note", json!(HISTORICAL_NOTE)),
        ]),
        rows,
        count,
        format!("No historical daily analytics found for {symbol}"),
        &format!("historical_analytics_last_{count}_{symbol}"),
    )
}

/// `GET /`
pub async fn root() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "online",
        "service": "market-analytics-api",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": {
            "realtime": "/api/v2/realtime",
            "intraday": "/api/v2/intraday",
            "historical": "/api/v2/historical",
            "websockets": "/ws",
            "docs": "/docs",
            "chart": "/chart",
            "health": "/health",
            "metrics": "/metrics",
        },
    }))
}
