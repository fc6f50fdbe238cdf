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

fn tick_row(t: &TickRow) -> Row {
    let ts = t.ts.to_rfc3339();
    meta([
        ("symbol", json!(t.symbol)),
        ("price", json!(t.price)),
        ("timestamp", json!(ts)),
        ("volume", json!(t.volume)),
        ("source", json!(t.source)),
        ("timestamp_utc", json!(ts)),
        ("timestamp_est", json!(format_est(t.ts))),
    ])
}

fn bar_row(b: &BarRow) -> Row {
    let start = b.start.to_rfc3339();
    let mut row = meta([
        ("symbol", json!(b.symbol)),
        ("open", json!(b.open)),
        ("high", json!(b.high)),
        ("low", json!(b.low)),
        ("close", json!(b.close)),
        ("volume", json!(b.volume)),
        ("trades", json!(b.trades)),
        ("vwap", num(b.vwap)),
        ("revision", json!(b.revision)),
        ("source", json!(b.source)),
        ("timestamp_utc", json!(start)),
    ]);
    match b.date {
        // A session bar: its date is the session's New York date (the reference printed the
        // day before).
        Some(d) => {
            row.insert("timestamp".into(), json!(d.to_string()));
            row.insert("date_est".into(), json!(d.to_string()));
        }
        None => {
            row.insert("timestamp".into(), json!(start));
            row.insert("timestamp_est".into(), json!(format_est(b.start)));
        }
    }
    row
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
    let rows: Vec<Row> = state
        .store
        .ticks(symbol, range, limit)
        .await?
        .iter()
        .map(tick_row)
        .collect();
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
    let row = state
        .store
        .ticks(symbol, Default::default(), 1)
        .await?
        .first()
        .map(tick_row);
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
    let rows: Vec<Row> = state
        .store
        .bars(symbol, interval, range, limit)
        .await?
        .iter()
        .map(bar_row)
        .collect();
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
    let row = state
        .store
        .bars(symbol, interval, Default::default(), 1)
        .await?
        .first()
        .map(bar_row);
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
    let rows: Vec<Row> = state
        .store
        .bars(symbol, interval, Default::default(), count)
        .await?
        .iter()
        .map(bar_row)
        .collect();
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "No intraday {name} data found for symbol {symbol}"
        )));
    }
    Ok(format::list(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("interval", json!(name)),
            ("count", json!(rows.len())),
            ("requested_count", json!(count)),
            ("timezone_note", json!(TZ_NOTE)),
        ]),
        rows,
        String::new(),
        &format!("intraday_{name}_last_{count}_{symbol}"),
    ))
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
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "No intraday analytics found for {symbol} {name}"
        )));
    }
    Ok(format::list(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("interval", json!(name)),
            ("indicators", json!(wanted)),
            ("count", json!(rows.len())),
            ("requested_count", json!(count)),
            ("timezone_note", json!(TZ_NOTE)),
        ]),
        rows,
        String::new(),
        &format!("intraday_analytics_{name}_last_{count}_{symbol}"),
    ))
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
    let rows: Vec<Row> = state
        .store
        .daily_bars(symbol, dates, limit)
        .await?
        .iter()
        .map(bar_row)
        .collect();
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
    let row = state
        .store
        .daily_bars(symbol, Default::default(), 1)
        .await?
        .first()
        .map(bar_row);
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
    let rows: Vec<Row> = state
        .store
        .daily_bars(symbol, Default::default(), count)
        .await?
        .iter()
        .map(bar_row)
        .collect();
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "No historical daily data found for symbol {symbol}"
        )));
    }
    Ok(format::list(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("count", json!(rows.len())),
            ("requested_count", json!(count)),
            ("timezone_note", json!(HISTORICAL_NOTE)),
        ]),
        rows,
        String::new(),
        &format!("historical_last_{count}_{symbol}"),
    ))
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
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "No historical daily analytics found for {symbol}"
        )));
    }
    Ok(format::list(
        format,
        meta([
            ("symbol", json!(symbol.as_str())),
            ("indicators", json!(wanted)),
            ("count", json!(rows.len())),
            ("requested_count", json!(count)),
            ("timezone_note", json!(HISTORICAL_NOTE)),
        ]),
        rows,
        String::new(),
        &format!("historical_analytics_last_{count}_{symbol}"),
    ))
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
            "health": "/health",
            "metrics": "/metrics",
        },
    }))
}
