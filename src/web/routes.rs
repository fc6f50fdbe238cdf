//! The route table: every route the server answers, with its parameters, its access rule,
//! what its `200` holds and its handler. The server registers exactly these routes
//! ([`configure`]), `GET /` lists them, and the OpenAPI document is built from them, so the
//! three cannot disagree.
//!
//! `dispatch` registers each route as one actix resource behind its guard (token, metrics
//! label), decided on the route the router matched.

use crate::store::TableKind;
use crate::web::args::Args;
use crate::web::errors::ApiError;
use crate::web::params::{
    self, BEFORE_DATE, BEFORE_INSTANT, DATE, END_DATE, END_TIME, FORMAT, INTERVAL, IndicatorSet,
    Intervals, Param, START_DATE, START_TIME, SYMBOL, TOKEN, count, indicators, last_days,
    last_hours, last_minutes, limit,
};
use crate::web::series::{self, Series, SeriesSpec, Shape};
use crate::web::{AppState, catalog, chart, docs, health, ws};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;

/// What a handler returns.
pub type Reply = Result<HttpResponse, ApiError>;
/// A route's handler: gets the validated request, answers.
pub type Handler = fn(Call) -> LocalBoxFuture<'static, Reply>;
/// A named schema and the schemas it refers to (`utoipa::ToSchema` of an answer type).
pub type SchemaFn = fn() -> crate::web::openapi::Named;

/// A request on its way to a handler, its parameters validated.
pub struct Call {
    pub req: HttpRequest,
    pub payload: web::Payload,
    pub state: web::Data<AppState>,
    pub route: &'static Route,
    pub args: Args,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// Anyone (health, metrics, docs, the index).
    Open,
    /// Holders of the API token when one is set (`/api/*`, `/ws/*`).
    Token,
}

/// What a route's `200` holds.
pub enum Answer {
    /// Rows of a stored series (JSON or CSV), answered by [`series::handler`].
    Series(SeriesSpec),
    /// JSON of a named schema (CSV rows too when `csv`); `reads` names the table its data
    /// come from, when the answer may be cached.
    Json {
        schema: SchemaFn,
        csv: bool,
        reads: Option<TableKind>,
    },
    /// A document of one of these media types.
    Text(&'static [&'static str]),
    /// An HTML page; `redirects`: other spellings of its parameters get a 308 to its
    /// canonical address.
    Html { redirects: bool },
    /// A WebSocket upgrade (`101`).
    WebSocket,
}

/// One route.
pub struct Route {
    pub path: &'static str,
    /// Names the operation in the OpenAPI document (and generated clients' functions).
    pub operation_id: &'static str,
    /// Group in the document.
    pub tag: &'static str,
    pub summary: &'static str,
    pub access: Protection,
    pub params: &'static [Param],
    pub answer: Answer,
    pub handler: Handler,
}

impl Route {
    /// The table its answers are read from, when they may be cached.
    pub fn reads(&self) -> Option<TableKind> {
        match &self.answer {
            Answer::Series(s) => Some(s.series.table()),
            Answer::Json { reads, .. } => *reads,
            _ => None,
        }
    }
}

const fn series(
    path: &'static str,
    operation_id: &'static str,
    summary: &'static str,
    params: &'static [Param],
    series: Series,
    shape: Shape,
) -> Route {
    Route {
        path,
        operation_id,
        tag: series.section(),
        summary,
        access: Protection::Token,
        params,
        answer: Answer::Series(SeriesSpec { series, shape }),
        handler: series::handler,
    }
}

const fn open(
    path: &'static str,
    operation_id: &'static str,
    summary: &'static str,
    params: &'static [Param],
    answer: Answer,
    handler: Handler,
) -> Route {
    Route {
        path,
        operation_id,
        tag: "service",
        summary,
        access: Protection::Open,
        params,
        answer,
        handler,
    }
}

const fn stream(
    path: &'static str,
    operation_id: &'static str,
    summary: &'static str,
    params: &'static [Param],
    handler: Handler,
) -> Route {
    Route {
        path,
        operation_id,
        tag: "streams",
        summary,
        access: Protection::Token,
        params,
        answer: Answer::WebSocket,
        handler,
    }
}

const INTRADAY_DEFAULT: &[&str] = &["rsi_14", "macd", "bb_upper", "bb_lower"];
const HISTORICAL_DEFAULT: &[&str] = &["rsi_14", "macd", "sma_20", "sma_50"];
const TICK_DEFAULT: &[&str] = &crate::domain::tick_metrics::TICK_METRIC_NAMES;

/// Every route, in the order `/` and the document list them.
pub static ROUTES: &[Route] = &[
    open(
        "/",
        "index",
        "This service and its routes",
        &[],
        Answer::Json {
            schema: crate::web::openapi::named::<catalog::IndexAnswer>,
            csv: false,
            reads: None,
        },
        catalog::index,
    ),
    open(
        "/health",
        "health",
        "Kafka and the store checked for real: 200 healthy, 503 degraded (same body)",
        &[],
        Answer::Json {
            schema: crate::web::openapi::named::<health::HealthAnswer>,
            csv: false,
            reads: None,
        },
        health::health,
    ),
    open(
        "/metrics",
        "metrics",
        "Every Prometheus series",
        &[],
        Answer::Text(&["text/plain"]),
        health::metrics,
    ),
    open(
        "/openapi.json",
        "openapi",
        "This document",
        &[],
        Answer::Text(&["application/json"]),
        crate::web::openapi::serve,
    ),
    open(
        "/docs",
        "swagger_ui",
        "Swagger UI, served from the binary",
        &[],
        Answer::Html { redirects: false },
        docs::swagger,
    ),
    open(
        "/redoc",
        "redoc",
        "ReDoc, served from the binary",
        &[],
        Answer::Html { redirects: false },
        docs::redoc,
    ),
    open(
        "/docs/assets/{file}",
        "docs_asset",
        "Swagger UI's and ReDoc's bundled scripts and style",
        &[docs::ASSET],
        Answer::Text(&["text/javascript", "text/css"]),
        docs::asset,
    ),
    open(
        "/chart",
        "chart",
        "The live candlestick chart, served from the binary",
        &chart::PAGE_PARAMS,
        Answer::Html { redirects: true },
        chart::page,
    ),
    open(
        "/chart/assets/{file}",
        "chart_asset",
        "The chart page's scripts and style and its charting library",
        &[chart::ASSET],
        Answer::Text(&["text/javascript", "text/css"]),
        chart::asset,
    ),
    Route {
        path: "/api/v2/meta",
        operation_id: "meta",
        tag: "catalog",
        summary: "What this instance builds: intervals, indicators and their warm-up, tick metrics, calendars",
        access: Protection::Token,
        params: &[],
        answer: Answer::Json {
            schema: crate::web::openapi::named::<catalog::MetaAnswer>,
            csv: false,
            reads: None,
        },
        handler: catalog::meta,
    },
    Route {
        path: "/api/v2/symbols",
        operation_id: "symbols",
        tag: "catalog",
        summary: "Symbols that have bars, per interval, with their first and last bar start",
        access: Protection::Token,
        params: &[FORMAT],
        answer: Answer::Json {
            schema: crate::web::openapi::named::<catalog::SymbolsAnswer>,
            csv: true,
            reads: Some(TableKind::Bars),
        },
        handler: catalog::symbols,
    },
    series(
        "/api/v2/realtime/prices/{symbol}",
        "realtime_prices",
        "Trades, newest first",
        &[
            SYMBOL,
            limit(100, 5000),
            last_minutes(1440, None),
            DATE,
            START_TIME,
            END_TIME,
            START_DATE,
            END_DATE,
            FORMAT,
        ],
        Series::Trades,
        Shape::List,
    ),
    series(
        "/api/v2/realtime/prices/{symbol}/latest",
        "realtime_latest",
        "The newest trade",
        &[SYMBOL, FORMAT],
        Series::Trades,
        Shape::Latest,
    ),
    series(
        "/api/v2/realtime/analytics/{symbol}",
        "realtime_analytics",
        "Realtime tick metrics as published, newest first (the last 30 minutes unless another window is given)",
        &[
            SYMBOL,
            indicators(IndicatorSet::Tick, TICK_DEFAULT),
            limit(100, 1000),
            last_minutes(180, Some(30)),
            DATE,
            START_TIME,
            END_TIME,
            START_DATE,
            END_DATE,
            FORMAT,
        ],
        Series::TickMetrics,
        Shape::List,
    ),
    Route {
        path: "/api/v2/realtime/symbols",
        operation_id: "realtime_symbols",
        tag: "realtime",
        summary: "Symbols with stored trades, with their counts and first and last trade",
        access: Protection::Token,
        params: &[FORMAT],
        answer: Answer::Json {
            schema: crate::web::openapi::named::<catalog::RealtimeSymbolsAnswer>,
            csv: true,
            reads: Some(TableKind::Ticks),
        },
        handler: catalog::realtime_symbols,
    },
    series(
        "/api/v2/intraday/prices/{symbol}",
        "intraday_prices",
        "Intraday bars, newest first",
        &[
            SYMBOL,
            INTERVAL,
            limit(100, 2000),
            last_hours(168),
            DATE,
            START_TIME,
            END_TIME,
            START_DATE,
            END_DATE,
            BEFORE_INSTANT,
            FORMAT,
        ],
        Series::IntradayBars,
        Shape::List,
    ),
    series(
        "/api/v2/intraday/prices/{symbol}/latest",
        "intraday_latest",
        "The newest intraday bar",
        &[SYMBOL, INTERVAL, FORMAT],
        Series::IntradayBars,
        Shape::Latest,
    ),
    series(
        "/api/v2/intraday/prices/{symbol}/last/{count}",
        "intraday_last",
        "The newest `count` intraday bars, newest first",
        &[SYMBOL, count(1000), INTERVAL, FORMAT],
        Series::IntradayBars,
        Shape::Last,
    ),
    series(
        "/api/v2/intraday/analytics/{symbol}",
        "intraday_analytics",
        "Indicators of intraday bars, newest first",
        &[
            SYMBOL,
            INTERVAL,
            indicators(IndicatorSet::Bar, INTRADAY_DEFAULT),
            limit(100, 1000),
            last_hours(72),
            DATE,
            START_TIME,
            END_TIME,
            START_DATE,
            END_DATE,
            BEFORE_INSTANT,
            FORMAT,
        ],
        Series::IntradayAnalytics,
        Shape::List,
    ),
    series(
        "/api/v2/intraday/analytics/{symbol}/last/{count}",
        "intraday_analytics_last",
        "Indicators of the newest `count` intraday bars, newest first",
        &[
            SYMBOL,
            count(500),
            INTERVAL,
            indicators(IndicatorSet::Bar, INTRADAY_DEFAULT),
            FORMAT,
        ],
        Series::IntradayAnalytics,
        Shape::Last,
    ),
    series(
        "/api/v2/historical/prices/{symbol}",
        "historical_prices",
        "Daily session bars, newest first",
        &[
            SYMBOL,
            limit(252, 5000),
            START_DATE,
            END_DATE,
            last_days(2000),
            BEFORE_DATE,
            FORMAT,
        ],
        Series::DailyBars,
        Shape::List,
    ),
    series(
        "/api/v2/historical/prices/{symbol}/latest",
        "historical_latest",
        "The newest daily session bar",
        &[SYMBOL, FORMAT],
        Series::DailyBars,
        Shape::Latest,
    ),
    series(
        "/api/v2/historical/prices/{symbol}/last/{count}",
        "historical_last",
        "The newest `count` daily session bars, newest first",
        &[SYMBOL, count(2000), FORMAT],
        Series::DailyBars,
        Shape::Last,
    ),
    series(
        "/api/v2/historical/analytics/{symbol}",
        "historical_analytics",
        "Indicators of daily session bars, newest first",
        &[
            SYMBOL,
            indicators(IndicatorSet::BarWithPrice, HISTORICAL_DEFAULT),
            limit(252, 2000),
            START_DATE,
            END_DATE,
            last_days(1000),
            BEFORE_DATE,
            FORMAT,
        ],
        Series::DailyAnalytics,
        Shape::List,
    ),
    series(
        "/api/v2/historical/analytics/{symbol}/last/{count}",
        "historical_analytics_last",
        "Indicators of the newest `count` daily session bars, newest first",
        &[
            SYMBOL,
            count(1000),
            indicators(IndicatorSet::Bar, HISTORICAL_DEFAULT),
            FORMAT,
        ],
        Series::DailyAnalytics,
        Shape::Last,
    ),
    stream(
        "/ws/prices/{symbol}",
        "ws_prices",
        "WebSocket: every trade of the symbol",
        &[SYMBOL, TOKEN],
        ws::prices,
    ),
    stream(
        "/ws/analytics/{symbol}",
        "ws_analytics",
        "WebSocket: bar analytics of an interval as they close, or the realtime tick metrics (interval=realtime)",
        &[
            SYMBOL,
            params::ws_interval(Intervals::AnyOrRealtime, "5m"),
            TOKEN,
        ],
        ws::analytics,
    ),
    stream(
        "/ws/bars/{symbol}",
        "ws_bars",
        "WebSocket: the open bar about once a second, then closed and revised bars",
        &[SYMBOL, params::ws_interval(Intervals::Any, "1m"), TOKEN],
        ws::bars,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_paths_and_operations_are_unique_and_every_api_route_needs_the_token() {
        let mut paths: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
        let mut ops: Vec<&str> = ROUTES.iter().map(|r| r.operation_id).collect();
        paths.sort_unstable();
        paths.dedup();
        ops.sort_unstable();
        ops.dedup();
        assert_eq!((paths.len(), ops.len()), (ROUTES.len(), ROUTES.len()));
        for r in ROUTES {
            let protected = r.path.starts_with("/api/") || r.path.starts_with("/ws/");
            assert_eq!(r.access == Protection::Token, protected, "{}", r.path);
        }
    }
}
