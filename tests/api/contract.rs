//! The contract clients read: the OpenAPI document lists exactly the routes served and
//! describes every answer (each one is validated against its schema), CSV columns follow
//! the JSON rows, and the new routes (`/symbols`, `/meta`, paging with `before`) tell the
//! truth about what is stored and built.

use crate::fixture::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The routes this API serves, written out by hand (the reference's 13, the symbol lists,
/// `/meta`, three WebSockets and the service routes): the document must list these.
const SERVED: [&str; 28] = [
    "/",
    "/chart",
    "/chart/assets/{file}",
    "/health",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/redoc",
    "/docs/assets/{file}",
    "/api/v2/meta",
    "/api/v2/symbols",
    "/api/v2/realtime/prices/{symbol}",
    "/api/v2/realtime/prices/{symbol}/latest",
    "/api/v2/realtime/analytics/{symbol}",
    "/api/v2/realtime/symbols",
    "/api/v2/intraday/prices/{symbol}",
    "/api/v2/intraday/prices/{symbol}/latest",
    "/api/v2/intraday/prices/{symbol}/last/{count}",
    "/api/v2/intraday/analytics/{symbol}",
    "/api/v2/intraday/analytics/{symbol}/last/{count}",
    "/api/v2/historical/prices/{symbol}",
    "/api/v2/historical/prices/{symbol}/latest",
    "/api/v2/historical/prices/{symbol}/last/{count}",
    "/api/v2/historical/analytics/{symbol}",
    "/api/v2/historical/analytics/{symbol}/last/{count}",
    "/ws/prices/{symbol}",
    "/ws/analytics/{symbol}",
    "/ws/bars/{symbol}",
];

fn concrete(template: &str) -> String {
    let file = if template.starts_with("/chart/") {
        "chart.css"
    } else {
        "redoc.standalone.js"
    };
    template
        .replace("{symbol}", "AAPL")
        .replace("{count}", "3")
        .replace("{file}", file)
}

/// The route template `path` (without its query) matches in `doc`.
fn template_of<'d>(doc: &'d Value, path: &str) -> &'d str {
    let path = path.split('?').next().unwrap();
    let parts: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .find(|t| {
            let tp: Vec<&str> = t.split('/').collect();
            tp.len() == parts.len()
                && tp
                    .iter()
                    .zip(&parts)
                    .all(|(t, p)| t.starts_with('{') || t == p)
        })
        .unwrap_or_else(|| panic!("{path} matches no documented route"))
}

/// `~` and `/` escaped for a JSON pointer, braces for a URI fragment.
fn escape(s: &str) -> String {
    s.replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

/// Validates `body` against the schema the document gives for `status` of `path`.
fn check(doc: &Value, path: &str, status: u16, body: &Value) {
    if let Err(e) = conforms(doc, path, status, body) {
        panic!("{e}\n{body:#}");
    }
}

/// Whether `body` is what the document says `path` answers with `status`.
fn conforms(doc: &Value, path: &str, status: u16, body: &Value) -> Result<(), String> {
    let template = template_of(doc, path);
    let responses = &doc["paths"][template]["get"]["responses"];
    if responses.get(status.to_string()).is_none() {
        return Err(format!("{path}: status {status} undocumented ({template})"));
    }
    let pointer = format!(
        "#/paths/{}/get/responses/{status}/content/application~1json/schema",
        escape(template)
    );
    let mut root = doc.clone();
    root["$ref"] = json!(pointer);
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("{path}: the document's schema does not compile: {e}"));
    validator
        .validate(body)
        .map_err(|e| format!("{path} ({status}) does not match its documented schema: {e}"))
}

#[actix_rt::test]
async fn the_document_lists_exactly_the_routes_the_server_serves() {
    let f = fixture().await;
    let (_, doc, _) = get(&f.memory, "/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let served: BTreeSet<&str> = SERVED.into_iter().collect();
    assert_eq!(
        documented, served,
        "the document and the routes served differ"
    );
    // Everything documented is answered by a route (not the 404 of unknown paths)…
    for template in &documented {
        let a = request(&f.memory, "GET", &concrete(template), &[]).await;
        assert!(
            !a.text.contains("no such route"),
            "{template} is documented but not served"
        );
    }
    // …and `/` lists the same routes, while the old index's dead links are gone.
    let (_, index, _) = get(&f.memory, "/").await;
    assert_eq!(index["service"], "tickflow");
    let listed: BTreeSet<&str> = index["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(listed, documented);
    for dead in [
        "/api/v2/realtime",
        "/api/v2/intraday",
        "/api/v2/historical",
        "/ws",
    ] {
        assert_eq!(get(&f.memory, dead).await.0, 404, "{dead}");
    }
    // Open routes carry no padlock; /metrics is text, /health JSON; bounds are in it.
    for open in [
        "/",
        "/health",
        "/metrics",
        "/docs",
        "/redoc",
        "/openapi.json",
    ] {
        assert!(
            doc["paths"][open]["get"].get("security").is_none(),
            "{open}"
        );
    }
    let ok = |t: &str| doc["paths"][t]["get"]["responses"]["200"]["content"].clone();
    assert!(
        ok("/metrics").get("text/plain").is_some(),
        "{}",
        ok("/metrics")
    );
    assert!(ok("/health")["application/json"]["schema"]["$ref"].is_string());
    let params = doc["paths"]["/api/v2/realtime/prices/{symbol}"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let limit = &params.iter().find(|p| p["name"] == "limit").unwrap()["schema"];
    assert_eq!(
        (&limit["minimum"], &limit["maximum"], &limit["default"]),
        (&json!(1), &json!(5000), &json!(100))
    );
    let symbol = &params.iter().find(|p| p["name"] == "symbol").unwrap()["schema"];
    assert!(symbol["pattern"].as_str().unwrap().contains("{1,20}"));
    for (template, item) in doc["paths"].as_object().unwrap() {
        let responses = item["get"]["responses"].as_object().unwrap();
        let ws = template.starts_with("/ws/");
        let success = if ws { "101" } else { "200" };
        assert!(responses.contains_key(success), "{template}");
        if !ws {
            let content = responses["200"]["content"].as_object().unwrap();
            assert!(
                content.values().all(|c| c["schema"].is_object()),
                "{template}: a 200 without a schema"
            );
        }
    }
    f.shutdown().await;
}

#[actix_rt::test]
async fn every_answer_matches_its_documented_schema() {
    let f = fixture().await;
    let (_, doc, _) = get(&f.pg, "/openapi.json").await;
    let all = "sma_20,sma_50,sma_200,ema_12,ema_26,rsi_14,macd,macd_signal,macd_hist,stoch_k,stoch_d,roc_10,momentum_10,willr_14,bb_upper,bb_middle,bb_lower,bb_bandwidth,bb_percent_b,atr_14,atr_percent_14,stddev_20,keltner_upper,keltner_lower,hist_vol_20,adx_14,obv,vwap";
    let paths = [
        "/".to_owned(),
        "/health".into(),
        "/api/v2/meta".into(),
        "/api/v2/symbols".into(),
        "/api/v2/realtime/symbols".into(),
        "/api/v2/realtime/prices/AAPL?limit=20".into(),
        "/api/v2/realtime/prices/NOPE".into(),
        "/api/v2/realtime/prices/AAPL/latest".into(),
        "/api/v2/realtime/analytics/AAPL?start_date=2024-03-08&limit=50".into(),
        "/api/v2/realtime/analytics/AAPL?date=2024-03-08&indicators=tick_rsi_14".into(),
        "/api/v2/intraday/prices/AAPL?interval=1m&date=2024-03-08".into(),
        "/api/v2/intraday/prices/AAPL/latest?interval=5m".into(),
        "/api/v2/intraday/prices/BTC-USD/last/3?interval=1h".into(),
        format!(
            "/api/v2/intraday/analytics/AAPL?interval=1m&start_date=2024-03-08&indicators={all}&limit=1000"
        ),
        "/api/v2/intraday/analytics/MSFT/last/5?interval=5m".into(),
        "/api/v2/historical/prices/AAPL".into(),
        "/api/v2/historical/prices/AAPL/latest".into(),
        "/api/v2/historical/prices/BTC-USD/last/2".into(),
        format!("/api/v2/historical/analytics/BTC-USD?indicators={all},price"),
        "/api/v2/historical/analytics/AAPL/last/1".into(),
        // Errors, each with its documented body.
        "/api/v2/realtime/prices/AAPL?limit=0".into(),
        "/api/v2/realtime/prices/AAPL?bogus=1".into(),
        "/api/v2/intraday/prices/AAPL?interval=2m".into(),
        "/api/v2/historical/prices/NOPE/latest".into(),
        "/api/v2/intraday/analytics/AAPL/last/1?interval=1h&indicators=nope".into(),
        "/ws/bars/AAPL?interval=1m".into(),
        "/ws/bars/AAPL?interval=15m".into(),
        "/health?cachebuster=1".into(),
        "/api/v2/meta?x=1".into(),
    ];
    // The check can fail: answers missing a key or with a wrong type are caught.
    for (path, wrong) in [
        ("/api/v2/symbols", json!({"count": 1})),
        (
            "/api/v2/intraday/prices/AAPL",
            json!({"symbol": "AAPL", "interval": "1m", "count": 1, "timezone_note": "", "data": [{"timestamp": "x"}]}),
        ),
        ("/api/v2/meta", json!({"service": 1})),
        (
            "/api/v2/realtime/prices/AAPL/latest",
            json!({"symbol": "AAPL", "timezone_note": "", "data": {"timestamp": "yesterday", "price": 1.0, "volume": 1.0, "symbol": "AAPL", "source": "x", "timestamp_utc": "yesterday", "timestamp_est": ""}}),
        ),
    ] {
        assert!(
            conforms(&doc, path, 200, &wrong).is_err(),
            "{path}: {wrong} passed"
        );
    }
    let mut statuses = BTreeSet::new();
    for app in [&f.pg, &f.memory] {
        for path in &paths {
            let a = request(app, "GET", path, &[]).await;
            assert!(a.json.is_object(), "{path}: not JSON: {}", a.text);
            check(&doc, path, a.status, &a.json);
            statuses.insert(a.status);
        }
    }
    assert_eq!(
        statuses,
        BTreeSet::from([200, 400, 404, 422]),
        "every kind of answer was checked"
    );
    f.shutdown().await;
}

/// The keys of the first object in `data` of a JSON text, in the order written.
fn first_row_keys(text: &str) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some(k) = m.next_key::<String>()? {
                        m.next_value::<serde::de::IgnoredAny>()?;
                        keys.push(k);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(V)
        }
    }
    let start = text.find("\"data\":").expect("data") + 7;
    let rest = text[start..].trim_start_matches(['[', ' ']);
    let mut de = serde_json::Deserializer::from_str(rest);
    let keys: Keys = serde::Deserialize::deserialize(&mut de).expect("a row");
    keys.0
}

#[actix_rt::test]
async fn csv_columns_follow_the_json_rows_with_a_header_even_when_empty() {
    let f = fixture().await;
    let app = &f.memory;
    for path in [
        "/api/v2/realtime/prices/AAPL?limit=5",
        "/api/v2/realtime/prices/AAPL/latest",
        "/api/v2/realtime/analytics/AAPL?start_date=2024-03-08&indicators=tick_rsi_14,bb_position",
        "/api/v2/intraday/prices/AAPL?interval=1m&date=2024-03-08",
        "/api/v2/intraday/prices/AAPL/last/2?interval=5m",
        "/api/v2/intraday/analytics/AAPL?interval=1m&date=2024-03-08&indicators=macd,sma_20",
        "/api/v2/historical/prices/AAPL",
        "/api/v2/historical/analytics/AAPL?indicators=price,obv",
    ] {
        let (_, _, json) = get(app, path).await;
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, _, csv) = get(app, &format!("{path}{sep}format=csv")).await;
        assert_eq!(status, 200, "{path}");
        let header: Vec<String> = csv
            .lines()
            .next()
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect();
        assert_eq!(header, first_row_keys(&json), "{path}");
        assert_eq!(header[0], "timestamp");
        if path.contains("prices") && !path.contains("realtime") {
            assert_eq!(header[1..6], ["open", "high", "low", "close", "volume"]);
        }
        // No rows: the same header, nothing else.
        if !path.contains("latest") && !path.contains("last") {
            let empty = path.replace("AAPL", "NOPE");
            let (status, _, csv) = get(app, &format!("{empty}{sep}format=csv")).await;
            assert_eq!(status, 200);
            assert_eq!(
                csv.lines().collect::<Vec<_>>(),
                [header.join(",")],
                "{empty}"
            );
        }
    }
    for (path, header) in [
        (
            "/api/v2/realtime/symbols?format=csv",
            "symbol,tick_count,first_seen,last_seen,first_seen_est,last_seen_est",
        ),
        (
            "/api/v2/symbols?format=csv",
            "symbol,interval,interval_minutes,bars,first,last",
        ),
    ] {
        let (status, _, csv) = get(app, path).await;
        assert_eq!(status, 200);
        assert_eq!(csv.lines().next(), Some(header), "{path}");
        assert!(csv.lines().count() > 3, "{path}: {csv}");
    }
    f.shutdown().await;
}

#[actix_rt::test]
async fn symbols_lists_every_bar_series_as_stored() {
    let f = fixture().await;
    let client = f.db.client().await;
    let want: Vec<(String, String, i64, String, String)> = client
        .query(
            r#"SELECT symbol, interval_minutes, count(*), min("timestamp"), max("timestamp") FROM intraday_ohlcv GROUP BY 1, 2
               UNION ALL SELECT symbol, 1440, count(*), min(session_start), max(session_start) FROM historical_ohlcv GROUP BY 1
               ORDER BY 1, 2"#,
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let minutes: i32 = r.get(1);
            let name = tickflow::domain::Interval::from_minutes(minutes as u32).unwrap().as_str();
            let ts = |i| tickflow::domain::Timestamp::from_datetime(&r.get::<_, chrono::DateTime<chrono::Utc>>(i)).to_rfc3339();
            (r.get(0), name.to_owned(), r.get(2), ts(3), ts(4))
        })
        .collect();
    assert!(want.len() >= 10, "{want:?}");
    for app in [&f.pg, &f.memory] {
        let (status, body, _) = get(app, "/api/v2/symbols").await;
        assert_eq!(status, 200);
        let got: Vec<(String, String, i64, String, String)> = body["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| {
                s["intervals"].as_array().unwrap().iter().map(move |i| {
                    assert_eq!(
                        i["interval_minutes"],
                        tickflow::domain::Interval::ALL
                            .iter()
                            .find(|x| x.as_str() == i["interval"])
                            .unwrap()
                            .minutes()
                    );
                    (
                        s["symbol"].as_str().unwrap().to_owned(),
                        i["interval"].as_str().unwrap().to_owned(),
                        i["bars"].as_i64().unwrap(),
                        i["first"].as_str().unwrap().to_owned(),
                        i["last"].as_str().unwrap().to_owned(),
                    )
                })
            })
            .collect();
        let mut sorted_want = want.clone();
        let order = |x: &(String, String, i64, String, String)| {
            (
                x.0.clone(),
                tickflow::domain::Interval::ALL
                    .iter()
                    .position(|i| i.as_str() == x.1),
            )
        };
        sorted_want.sort_by_key(order);
        assert_eq!(got, sorted_want);
        assert_eq!(body["count"], 3);
    }
    f.shutdown().await;
}

#[actix_rt::test]
async fn paging_back_with_before_walks_a_series_without_gaps_or_repeats() {
    let f = fixture().await;
    for app in [&f.pg, &f.memory] {
        for (base, all_rows, page_key) in [
            (
                "/api/v2/intraday/prices/AAPL?interval=1m",
                "start_date=2024-03-01&limit=2000",
                "timestamp",
            ),
            (
                "/api/v2/intraday/analytics/MSFT?interval=5m&indicators=rsi_14",
                "start_date=2024-03-01&limit=1000",
                "timestamp",
            ),
            (
                "/api/v2/historical/prices/BTC-USD?",
                "start_date=2024-03-01",
                "timestamp",
            ),
            (
                "/api/v2/historical/analytics/BTC-USD?",
                "start_date=2024-03-01",
                "timestamp",
            ),
        ] {
            let sep = if base.ends_with('?') { "" } else { "&" };
            let (_, whole, _) = get(app, &format!("{base}{sep}{all_rows}")).await;
            let whole: Vec<Value> = whole["data"].as_array().unwrap().clone();
            assert!(!whole.is_empty(), "{base}");
            let mut paged: Vec<Value> = Vec::new();
            let mut before: Option<String> = None;
            loop {
                let page = match &before {
                    None => format!("{base}{sep}limit=7"),
                    Some(b) => format!("{base}{sep}limit=7&before={}", b.replace('+', "%2B")),
                };
                let (status, body, text) = get(app, &page).await;
                assert_eq!(status, 200, "{page}: {text}");
                let rows = body["data"].as_array().unwrap();
                if rows.is_empty() {
                    break;
                }
                assert!(rows.len() <= 7);
                paged.extend(rows.iter().cloned());
                before = Some(rows.last().unwrap()[page_key].as_str().unwrap().to_owned());
            }
            assert_eq!(
                paged, whole,
                "{base}: pages, newest first, are the whole series"
            );
        }
    }
    f.shutdown().await;
}

#[actix_rt::test]
async fn meta_warm_ups_are_where_the_stored_indicators_turn_non_null() {
    let f = fixture().await;
    let (status, meta, _) = get(&f.pg, "/api/v2/meta").await;
    assert_eq!(status, 200);
    assert_eq!(meta["service"], "tickflow");
    assert_eq!(meta["intervals"], json!(["1m", "5m", "1h", "1d"]));
    assert_eq!(meta["calendars"]["symbols"], json!({"BTC-USD": "utc"}));
    let names: Vec<&str> = meta["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, tickflow::domain::BAR_INDICATOR_NAMES);

    // Bars: the pipeline's stored analytics of AAPL's 1-minute bars, oldest first.
    let (_, body, _) = get(
        &f.pg,
        &format!(
            "/api/v2/intraday/analytics/AAPL?interval=1m&start_date=2024-03-08&limit=1000&indicators={}",
            names.join(",")
        ),
    )
    .await;
    let mut rows = body["data"].as_array().unwrap().clone();
    rows.reverse();
    assert!(rows.len() > 250, "{} bars", rows.len());
    for i in meta["indicators"].as_array().unwrap() {
        let name = i["name"].as_str().unwrap();
        let first = rows.iter().position(|r| !r[name].is_null());
        assert_eq!(
            first.map(|n| n as u64),
            i["warmup_bars"].as_u64(),
            "{name}: first stored value"
        );
    }

    // Tick metrics: the same measure on this test's own trades (stored rows are throttled).
    let mut metrics = tickflow::domain::TickMetrics::new();
    let aapl: Vec<_> = f
        .ticks
        .iter()
        .filter(|t| t.symbol().as_str() == "AAPL")
        .collect();
    let values: Vec<Vec<Option<f64>>> = aapl
        .iter()
        .map(|t| metrics.update(t).as_array().to_vec())
        .collect();
    for (c, m) in meta["tick_metrics"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            m["name"],
            tickflow::domain::tick_metrics::TICK_METRIC_NAMES[c]
        );
        let first = values.iter().position(|v| v[c].is_some());
        assert_eq!(
            first.map(|n| n as u64),
            m["warmup_ticks"].as_u64(),
            "{}",
            m["name"]
        );
    }
    f.shutdown().await;
}
