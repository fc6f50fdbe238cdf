//! `/openapi.json`: the OpenAPI 3.1 description of every route, built from one table so the
//! documented parameters, defaults and bounds are the ones the handlers enforce.

use serde_json::{Value, json};

/// One documented parameter.
#[derive(Clone)]
struct Param {
    name: &'static str,
    /// `path` or `query`.
    at: &'static str,
    schema: Value,
    description: &'static str,
}

fn path(name: &'static str, description: &'static str) -> Param {
    Param {
        name,
        at: "path",
        schema: json!({"type": "string"}),
        description,
    }
}

fn int(
    name: &'static str,
    default: Option<i64>,
    min: i64,
    max: i64,
    description: &'static str,
) -> Param {
    let mut schema = json!({"type": "integer", "minimum": min, "maximum": max});
    if let Some(d) = default {
        schema["default"] = json!(d);
    }
    Param {
        name,
        at: "query",
        schema,
        description,
    }
}

fn text(name: &'static str, schema: Value, description: &'static str) -> Param {
    Param {
        name,
        at: "query",
        schema,
        description,
    }
}

fn symbol() -> Param {
    path(
        "symbol",
        "Instrument symbol, case-insensitive (1–20 of A-Z 0-9 . - ^ = / :)",
    )
}

fn count(max: i64) -> Param {
    Param {
        name: "count",
        at: "path",
        schema: json!({"type": "integer", "minimum": 1, "maximum": max}),
        description: "How many of the newest rows",
    }
}

fn date_filters() -> Vec<Param> {
    vec![
        text(
            "date",
            json!({"type": "string", "format": "date"}),
            "A New York calendar day (YYYY-MM-DD)",
        ),
        text(
            "start_time",
            json!({"type": "string", "example": "09:30"}),
            "With `date`: from this New York time (HH:MM[:SS])",
        ),
        text(
            "end_time",
            json!({"type": "string", "example": "16:00"}),
            "With `date`: up to this New York time, inclusive; default end of day",
        ),
        text(
            "start_date",
            json!({"type": "string", "format": "date"}),
            "From this New York day, inclusive",
        ),
        text(
            "end_date",
            json!({"type": "string", "format": "date"}),
            "Up to this New York day, inclusive",
        ),
    ]
}

fn format() -> Param {
    text(
        "format",
        json!({"type": "string", "enum": ["json", "csv"], "default": "json"}),
        "Response format",
    )
}

fn interval(default: &str) -> Param {
    text(
        "interval",
        json!({"type": "string", "enum": ["1min", "5min", "15min", "30min", "1h", "4h"], "default": default}),
        "Bar interval",
    )
}

fn indicators(default: &[&str]) -> Param {
    text(
        "indicators",
        json!({"type": "array", "items": {"type": "string"}, "default": default}),
        "Indicator names (repeat the parameter or separate by commas)",
    )
}

/// The OpenAPI document.
pub fn document() -> Value {
    let routes: Vec<(&str, &str, &str, Vec<Param>)> = vec![
        (
            "/api/v2/realtime/prices/{symbol}",
            "realtime",
            "Trades, newest first",
            [
                vec![
                    symbol(),
                    int("limit", Some(100), 1, 5000, "Most rows"),
                    int("last_minutes", None, 1, 1440, "Only the last N minutes"),
                ],
                date_filters(),
                vec![format()],
            ]
            .concat(),
        ),
        (
            "/api/v2/realtime/prices/{symbol}/latest",
            "realtime",
            "The newest trade",
            vec![symbol(), format()],
        ),
        (
            "/api/v2/realtime/analytics/{symbol}",
            "realtime",
            "Realtime metrics as published: at most one trade per symbol per `--realtime-every` (default 1 s) of trade time",
            vec![
                symbol(),
                int("limit", Some(100), 1, 1000, "Most rows"),
                int(
                    "last_minutes",
                    Some(30),
                    1,
                    180,
                    "Only the last N minutes (default 30 unless `date` is given)",
                ),
                text(
                    "date",
                    json!({"type": "string", "format": "date"}),
                    "A New York day",
                ),
                text("start_time", json!({"type": "string"}), "With `date`"),
                text("end_time", json!({"type": "string"}), "With `date`"),
                indicators(&[]),
                format(),
            ],
        ),
        (
            "/api/v2/realtime/symbols",
            "realtime",
            "Symbols with stored trades",
            vec![],
        ),
        (
            "/api/v2/intraday/prices/{symbol}",
            "intraday",
            "Intraday bars, newest first",
            [
                vec![
                    symbol(),
                    interval("5min"),
                    int("limit", Some(100), 1, 2000, "Most rows"),
                    int("last_hours", None, 1, 168, "Only the last N hours"),
                ],
                date_filters(),
                vec![format()],
            ]
            .concat(),
        ),
        (
            "/api/v2/intraday/prices/{symbol}/latest",
            "intraday",
            "The newest intraday bar",
            vec![symbol(), interval("5min"), format()],
        ),
        (
            "/api/v2/intraday/prices/{symbol}/last/{count}",
            "intraday",
            "The newest N intraday bars",
            vec![symbol(), count(1000), interval("5min"), format()],
        ),
        (
            "/api/v2/intraday/analytics/{symbol}",
            "intraday",
            "Indicators of intraday bars",
            [
                vec![
                    symbol(),
                    interval("5min"),
                    indicators(&["rsi_14", "macd", "bb_upper", "bb_lower"]),
                    int("limit", Some(100), 1, 1000, "Most rows"),
                    int("last_hours", None, 1, 72, "Only the last N hours"),
                ],
                date_filters(),
                vec![format()],
            ]
            .concat(),
        ),
        (
            "/api/v2/intraday/analytics/{symbol}/last/{count}",
            "intraday",
            "Indicators of the newest N intraday bars",
            vec![
                symbol(),
                count(500),
                interval("5min"),
                indicators(&["rsi_14", "macd", "bb_upper", "bb_lower"]),
                format(),
            ],
        ),
        (
            "/api/v2/historical/prices/{symbol}",
            "historical",
            "Daily session bars, newest first",
            vec![
                symbol(),
                int("limit", Some(252), 1, 5000, "Most rows"),
                text(
                    "start_date",
                    json!({"type": "string", "format": "date"}),
                    "First session date, inclusive",
                ),
                text(
                    "end_date",
                    json!({"type": "string", "format": "date"}),
                    "Last session date, inclusive",
                ),
                int(
                    "last_days",
                    None,
                    1,
                    2000,
                    "Sessions of about the last N trading days",
                ),
                format(),
            ],
        ),
        (
            "/api/v2/historical/prices/{symbol}/latest",
            "historical",
            "The newest daily bar",
            vec![symbol(), format()],
        ),
        (
            "/api/v2/historical/prices/{symbol}/last/{count}",
            "historical",
            "The newest N daily bars",
            vec![symbol(), count(2000), format()],
        ),
        (
            "/api/v2/historical/analytics/{symbol}",
            "historical",
            "Indicators of daily bars",
            vec![
                symbol(),
                indicators(&["rsi_14", "macd", "sma_20", "sma_50"]),
                int("limit", Some(252), 1, 2000, "Most rows"),
                text(
                    "start_date",
                    json!({"type": "string", "format": "date"}),
                    "First session date",
                ),
                text(
                    "end_date",
                    json!({"type": "string", "format": "date"}),
                    "Last session date",
                ),
                int("last_days", None, 1, 1000, "About the last N trading days"),
                format(),
            ],
        ),
        (
            "/api/v2/historical/analytics/{symbol}/last/{count}",
            "historical",
            "Indicators of the newest N daily bars",
            vec![
                symbol(),
                count(1000),
                indicators(&["rsi_14", "macd", "sma_20", "sma_50"]),
                format(),
            ],
        ),
        (
            "/ws/prices/{symbol}",
            "websocket",
            "WebSocket: every trade of the symbol",
            vec![symbol()],
        ),
        (
            "/ws/analytics/{symbol}",
            "websocket",
            "WebSocket: bar analytics of an interval, or `interval=realtime` for realtime metrics (as published)",
            vec![
                symbol(),
                text(
                    "interval",
                    json!({"type": "string", "default": "5min"}),
                    "Bar interval or `realtime`",
                ),
            ],
        ),
        (
            "/ws/bars/{symbol}",
            "websocket",
            "WebSocket: the open bar about once a second, closed bars and revisions",
            vec![
                symbol(),
                text(
                    "interval",
                    json!({"type": "string", "default": "1min"}),
                    "Bar interval",
                ),
            ],
        ),
        (
            "/health",
            "operations",
            "Kafka and store checks; 503 when degraded",
            vec![],
        ),
        ("/metrics", "operations", "Prometheus metrics", vec![]),
        ("/", "operations", "Service index", vec![]),
    ];
    let error = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut paths = serde_json::Map::new();
    for (route, tag, summary, params) in routes {
        let parameters: Vec<Value> = params
            .iter()
            .map(|p| json!({"name": p.name, "in": p.at, "required": p.at == "path", "schema": p.schema, "description": p.description}))
            .collect();
        let ok = if tag == "websocket" {
            json!({"101": {"description": "Switching protocols; first message {\"type\":\"subscription\",\"status\":\"success\",…}; send {\"action\":\"unsubscribe\"} to stop"}})
        } else {
            json!({"200": {"description": "Success (JSON or, with format=csv, CSV)"}})
        };
        let mut responses = ok.as_object().cloned().unwrap_or_default();
        if route.starts_with("/api") || tag == "websocket" {
            responses.insert("400".into(), error("Unknown interval or indicator"));
            responses.insert(
                "404".into(),
                error("Nothing stored (latest and last/{count} routes)"),
            );
            responses.insert(
                "422".into(),
                error("Invalid parameter; `detail[].loc` names it"),
            );
            responses.insert("503".into(), error("Store unavailable"));
        }
        paths.insert(route.to_owned(), json!({"get": {"tags": [tag], "summary": summary, "parameters": parameters, "responses": responses}}));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tickflow API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Market data and TA-Lib-exact analytics: trades, bars, indicators. Times are UTC (RFC 3339) with New York renderings in `timestamp_est` / `date_est`; numbers are JSON numbers.",
        },
        "components": {
            "schemas": {"Error": {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "Required when the server runs with API_TOKEN"}},
        },
        "security": [{}, {"bearer": []}],
        "paths": paths,
    })
}
