//! Every route, the fixed reference defects, and a table of bad inputs.

use crate::helpers::*;
use serde_json::Value;
use std::time::Duration;
use tickflow::app::App;

const SYMBOLS: [&str; 3] = ["AAPL", "MSFT", "BTC-USD"];

/// Two apps over the same ticks: one on PostgreSQL, one on the memory store.
struct Fixture {
    pg: App,
    memory: App,
    db: TestDatabase,
    _kafka: tickflow::kafka::EmbeddedKafka,
}

async fn fixture() -> Fixture {
    let kafka = broker(3);
    let ticks = trades(&SYMBOLS, 4);
    publish(&producer(kafka.bootstrap_servers()), &ticks);
    let db = TestDatabase::create().await;
    let pg = spawn_app(settings(kafka.bootstrap_servers(), Some(&db.url), "api-pg")).await;
    let memory = spawn_app(settings(kafka.bootstrap_servers(), None, "api-mem")).await;
    let client = db.client().await;
    assert_eq!(
        wait_for_count(
            &client,
            "SELECT count(*) FROM realtime_prices",
            ticks.len() as i64,
            Duration::from_secs(90)
        )
        .await,
        ticks.len() as i64
    );
    let start = std::time::Instant::now();
    while memory
        .metrics
        .records_stored
        .with_label_values(&["raw_price"])
        .get()
        < ticks.len() as u64
    {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "memory store did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the last bars and analytics land too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Fixture {
        pg,
        memory,
        db,
        _kafka: kafka,
    }
}

async fn get(app: &App, path: &str) -> (u16, Value, String) {
    let client = awc::Client::default();
    let mut resp = client
        .get(format!("http://{}{path}", app.http_addr))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let body = resp.body().limit(64 << 20).await.expect("body");
    let text = String::from_utf8_lossy(&body).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

#[actix_rt::test]
async fn every_route_answers_the_same_from_postgresql_and_from_memory() {
    let f = fixture().await;
    let paths = [
        "/",
        "/api/v2/realtime/prices/AAPL?limit=7",
        "/api/v2/realtime/prices/aapl?date=2024-03-08&start_time=10:00&end_time=10:05",
        "/api/v2/realtime/prices/AAPL?date=2024-03-08&start_time=15:00",
        "/api/v2/realtime/prices/MSFT?start_date=2024-03-08&end_date=2024-03-08&limit=5000",
        "/api/v2/realtime/prices/AAPL/latest",
        "/api/v2/realtime/analytics/AAPL?date=2024-03-11&indicators=tick_rsi_14&indicators=tick_vwap_20&limit=50",
        "/api/v2/realtime/symbols",
        "/api/v2/intraday/prices/AAPL?interval=1min&date=2024-03-08&limit=2000",
        "/api/v2/intraday/prices/BTC-USD?interval=1h&start_date=2024-03-08",
        "/api/v2/intraday/prices/AAPL/latest?interval=5min",
        "/api/v2/intraday/prices/AAPL/last/3?interval=15min",
        "/api/v2/intraday/analytics/MSFT?interval=1min&date=2024-03-08&indicators=sma_20,rsi_14,vwap",
        "/api/v2/intraday/analytics/MSFT/last/4?interval=1min&indicators=macd",
        "/api/v2/historical/prices/AAPL?start_date=2024-03-08&end_date=2024-03-08",
        "/api/v2/historical/prices/BTC-USD",
        "/api/v2/historical/prices/AAPL/latest",
        "/api/v2/historical/prices/AAPL/last/5",
        "/api/v2/historical/analytics/AAPL?indicators=obv&indicators=price",
        "/api/v2/historical/analytics/AAPL/last/2",
        "/api/v2/realtime/prices/NOPE",
        "/api/v2/intraday/prices/AAPL?interval=1min&format=csv&date=2024-03-08",
        "/api/v2/historical/prices/AAPL/latest?format=csv",
    ];
    for path in paths {
        let (ps, pj, ptext) = get(&f.pg, path).await;
        let (ms, mj, mtext) = get(&f.memory, path).await;
        assert_eq!(ps, ms, "{path}: status");
        assert!(ps < 500, "{path}: {ps}");
        if pj.is_null() {
            assert_eq!(ptext, mtext, "{path}: body");
        } else {
            assert_eq!(pj, mj, "{path}: body");
        }
    }
    f.pg.shutdown().await;
    f.memory.shutdown().await;
}

#[actix_rt::test]
async fn routes_return_what_the_database_holds_with_the_reference_defects_fixed() {
    let f = fixture().await;
    let client = f.db.client().await;
    let app = &f.pg;

    // Numbers are numbers, newest first, symbols case-insensitive.
    let (status, body, _) = get(app, "/api/v2/realtime/prices/aapl?limit=5").await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["symbol"].as_str(), body["count"].as_i64()),
        (Some("AAPL"), Some(5))
    );
    let data = body["data"].as_array().unwrap();
    assert!(
        data.iter()
            .all(|r| r["price"].is_f64() && r["volume"].is_number())
    );
    let newest: f64 = client
        .query_one(r#"SELECT price FROM realtime_prices WHERE symbol = 'AAPL' ORDER BY "timestamp" DESC, seq DESC LIMIT 1"#, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(data[0]["price"].as_f64(), Some(newest));
    assert!(
        data.windows(2)
            .all(|w| w[0]["timestamp_utc"].as_str() >= w[1]["timestamp_utc"].as_str())
    );

    // `date` + times are New York time, inclusive; `start_time` alone runs to the day's end.
    let (_, body, _) = get(
        app,
        "/api/v2/realtime/prices/AAPL?date=2024-03-08&start_time=10:00&end_time=11:59&limit=5000",
    )
    .await;
    let want: i64 = client
        .query_one(
            r#"SELECT count(*) FROM realtime_prices WHERE symbol = 'AAPL'
               AND "timestamp" >= '2024-03-08 15:00:00+00' AND "timestamp" < '2024-03-08 17:00:00+00'"#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(want > 0);
    assert_eq!(body["count"].as_i64(), Some(want));
    assert!(
        body["data"][0]["timestamp_est"]
            .as_str()
            .unwrap()
            .ends_with(" EST")
    );
    let (_, body, _) = get(
        app,
        "/api/v2/realtime/prices/AAPL?date=2024-03-08&start_time=15:00&limit=5000",
    )
    .await;
    assert!(
        body["count"].as_i64().unwrap() > 0,
        "start_time without end_time finds the afternoon's trades"
    );

    // Session bars carry their own date (the reference printed the day before), and a
    // date range includes both ends.
    let (_, body, _) = get(
        app,
        "/api/v2/historical/prices/AAPL?start_date=2024-03-08&end_date=2024-03-08",
    )
    .await;
    assert_eq!(body["count"].as_i64(), Some(1));
    assert_eq!(
        (
            body["data"][0]["timestamp"].as_str(),
            body["data"][0]["date_est"].as_str()
        ),
        (Some("2024-03-08"), Some("2024-03-08"))
    );
    let close: f64 = client.query_one(r#"SELECT close FROM historical_ohlcv WHERE symbol = 'AAPL' AND "timestamp" = '2024-03-08'"#, &[]).await.unwrap().get(0);
    assert_eq!(body["data"][0]["close"].as_f64(), Some(close));

    // Intraday bars of an ET day equal the stored rows of that day.
    let (_, body, _) = get(
        app,
        "/api/v2/intraday/prices/AAPL?interval=1min&date=2024-03-08&limit=2000",
    )
    .await;
    let want: i64 = client
        .query_one(
            r#"SELECT count(*) FROM intraday_ohlcv WHERE symbol = 'AAPL' AND interval_minutes = 1
               AND ("timestamp" AT TIME ZONE 'America/New_York')::date = '2024-03-08'"#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(body["count"].as_i64(), Some(want));
    assert_eq!(body["interval"].as_str(), Some("1min"));

    // The analytics `last/{count}` route works (it always failed in the reference).
    let (status, body, _) = get(
        app,
        "/api/v2/intraday/analytics/AAPL/last/3?interval=1min&indicators=sma_20&indicators=macd",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["count"].as_i64(), Some(3));
    assert!(body["data"][0]["sma_20"].is_number() && body["data"][0].get("rsi_14").is_none());

    // Empty results have the same keys as full ones, plus a message.
    let (status, body, _) = get(app, "/api/v2/realtime/prices/NOPE").await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["count"].as_i64(),
            body["data"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
    assert!(
        body["message"].as_str().unwrap().contains("NOPE") && body["timezone_note"].is_string()
    );

    // CSV works on `/latest` too.
    let (status, _, text) = get(app, "/api/v2/historical/prices/AAPL/latest?format=csv").await;
    assert_eq!(status, 200);
    assert!(text.starts_with("close,date_est,high,low,open,revision,source,symbol,timestamp,timestamp_utc,trades,volume,vwap\n"), "{text}");

    // Symbols with their counts.
    let (_, body, _) = get(app, "/api/v2/realtime/symbols").await;
    assert_eq!(body["count"].as_i64(), Some(3));

    // Metrics are labelled by route template.
    let (_, _, metrics) = get(app, "/metrics").await;
    assert!(
        metrics.contains(
            r#"api_requests_total{endpoint="/api/v2/realtime/prices/{symbol}",method="GET"}"#
        ),
        "{metrics}"
    );
    f.pg.shutdown().await;
    f.memory.shutdown().await;
}

#[actix_rt::test]
async fn bad_inputs_get_a_4xx_naming_the_parameter_never_a_5xx() {
    let f = fixture().await;
    let cases: [(&str, u16, &str); 24] = [
        ("/api/v2/realtime/prices/AAPL?limit=0", 422, "limit"),
        ("/api/v2/realtime/prices/AAPL?limit=5001", 422, "limit"),
        ("/api/v2/realtime/prices/AAPL?limit=ten", 422, "limit"),
        ("/api/v2/realtime/prices/AAPL?date=2024-02-30", 422, "date"),
        ("/api/v2/realtime/prices/AAPL?date=yesterday", 422, "date"),
        (
            "/api/v2/realtime/prices/AAPL?date=2024-03-08&start_time=25:61",
            422,
            "start_time",
        ),
        (
            "/api/v2/realtime/prices/AAPL?date=2024-03-10&start_time=02:30",
            422,
            "start_time",
        ),
        (
            "/api/v2/realtime/prices/AAPL?start_date=2024-03-09&end_date=2024-03-01",
            422,
            "end_date",
        ),
        (
            "/api/v2/realtime/prices/AAPL?last_minutes=1441",
            422,
            "last_minutes",
        ),
        ("/api/v2/realtime/prices/AAPL?format=xml", 422, "format"),
        ("/api/v2/realtime/prices/AA%20PL", 422, "symbol"),
        (
            "/api/v2/realtime/prices/WAYTOOLONGSYMBOLNAME123",
            422,
            "symbol",
        ),
        (
            "/api/v2/realtime/analytics/AAPL?indicators=rsi_14",
            400,
            "Invalid real-time indicators",
        ),
        (
            "/api/v2/realtime/analytics/AAPL?last_minutes=181",
            422,
            "last_minutes",
        ),
        (
            "/api/v2/intraday/prices/AAPL?interval=2min",
            400,
            "Invalid interval",
        ),
        (
            "/api/v2/intraday/prices/AAPL?interval=1day",
            400,
            "Invalid interval",
        ),
        (
            "/api/v2/intraday/prices/AAPL?last_hours=169",
            422,
            "last_hours",
        ),
        ("/api/v2/intraday/prices/AAPL/last/0", 422, "count"),
        ("/api/v2/intraday/prices/AAPL/last/x", 422, "count"),
        (
            "/api/v2/intraday/analytics/AAPL?indicators=rsi_99",
            400,
            "Invalid indicator: rsi_99",
        ),
        ("/api/v2/intraday/analytics/AAPL/last/501", 422, "count"),
        (
            "/api/v2/historical/prices/AAPL?last_days=2001",
            422,
            "last_days",
        ),
        (
            "/api/v2/historical/analytics/AAPL/last/3?indicators=price",
            400,
            "Invalid indicator: price",
        ),
        (
            "/api/v2/historical/prices/NOPE/latest",
            404,
            "No historical daily data found for symbol NOPE",
        ),
    ];
    for app in [&f.pg, &f.memory] {
        for (path, want, mentions) in cases {
            let (status, _, text) = get(app, path).await;
            assert_eq!(status, want, "{path}: {text}");
            assert!(
                text.contains(mentions),
                "{path}: {text} does not name {mentions:?}"
            );
        }
    }
    f.pg.shutdown().await;
    f.memory.shutdown().await;
}

#[actix_rt::test]
async fn the_token_guards_the_api_cors_never_pairs_a_wildcard_with_credentials_and_openapi_lists_every_route()
 {
    let kafka = broker(3);
    let mut s = settings(kafka.bootstrap_servers(), None, "api-access");
    s.access = tickflow::web::Access {
        token: Some("s3cret".into()),
        cors_origins: vec!["*".into()],
    };
    let app = spawn_app(s).await;
    let client = awc::Client::default();
    let url = |p: &str| format!("http://{}{p}", app.http_addr);

    let resp = client
        .get(url("/api/v2/realtime/symbols"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = client
        .get(url("/api/v2/realtime/symbols"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = client
        .get(url("/api/v2/realtime/symbols"))
        .bearer_auth("s3cret")
        .insert_header(("Origin", "http://dash.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("*")
    );
    assert!(
        resp.headers()
            .get("access-control-allow-credentials")
            .is_none(),
        "no credentials with a wildcard origin"
    );
    assert_eq!(
        client
            .get(url("/health"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200,
        "health stays open"
    );

    // WebSockets take the token as a query parameter (browsers cannot set headers).
    assert!(
        awc::Client::new()
            .ws(format!("ws://{}/ws/prices/AAPL", app.http_addr))
            .connect()
            .await
            .is_err()
    );
    assert!(
        awc::Client::new()
            .ws(format!(
                "ws://{}/ws/prices/AAPL?token=s3cret",
                app.http_addr
            ))
            .connect()
            .await
            .is_ok()
    );

    let (_, spec, _) = get(&app, "/openapi.json").await;
    assert_eq!(spec["openapi"].as_str(), Some("3.1.0"));
    let paths = spec["paths"].as_object().unwrap();
    for p in [
        "/api/v2/realtime/prices/{symbol}",
        "/api/v2/intraday/analytics/{symbol}/last/{count}",
        "/api/v2/historical/prices/{symbol}",
        "/ws/bars/{symbol}",
        "/health",
    ] {
        assert!(paths.contains_key(p), "{p} undocumented");
    }
    let limit = &paths["/api/v2/realtime/prices/{symbol}"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap()["schema"];
    assert_eq!(
        (
            limit["minimum"].as_i64(),
            limit["maximum"].as_i64(),
            limit["default"].as_i64()
        ),
        (Some(1), Some(5000), Some(100))
    );
    app.shutdown().await;
}

#[actix_rt::test]
async fn the_docs_pages_are_served_from_the_binary_with_no_external_reference() {
    let kafka = broker(1);
    let app = spawn_app(settings(kafka.bootstrap_servers(), None, "api-docs")).await;
    let client = awc::Client::default();
    for (page, asset) in [
        ("/docs", "/docs/assets/swagger-ui-bundle.js"),
        ("/redoc", "/docs/assets/redoc.standalone.js"),
    ] {
        let mut resp = client
            .get(format!("http://{}{page}", app.http_addr))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{page}");
        let html = String::from_utf8(resp.body().await.unwrap().to_vec()).unwrap();
        assert!(
            html.contains(asset) && html.contains("/openapi.json"),
            "{page} loads its local assets and the spec"
        );
        for external in ["http://", "https://", "//cdn", "fonts.googleapis"] {
            assert!(
                !html.contains(&format!("src=\"{external}"))
                    && !html.contains(&format!("href=\"{external}")),
                "{page} references {external}"
            );
        }
        let mut resp = client
            .get(format!("http://{}{asset}", app.http_addr))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "application/javascript"
        );
        assert!(resp.body().limit(8 << 20).await.unwrap().len() > 500_000);
    }
    let resp = client
        .get(format!(
            "http://{}/docs/assets/../../etc/passwd",
            app.http_addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    app.shutdown().await;
}

#[actix_rt::test]
async fn cached_answers_are_dropped_as_soon_as_this_instance_writes_and_age_out_for_others() {
    let kafka = broker(3);
    let db = TestDatabase::create().await;
    let mut s = settings(kafka.bootstrap_servers(), Some(&db.url), "api-cache");
    s.api_cache_ttl = Duration::from_secs(2);
    let app = spawn_app(s).await;
    let client = db.client().await;
    let sym = tickflow::domain::Symbol::parse("AAPL").unwrap();
    let tick = |secs: i64, price: f64| {
        tickflow::domain::Tick::new(
            sym,
            tickflow::domain::Timestamp::from_secs(secs),
            price,
            10.0,
            tickflow::domain::Source::new("cache-test"),
        )
        .unwrap()
    };
    let path = "/api/v2/intraday/prices/AAPL?interval=1min&date=2024-03-08&limit=100";
    let bars = "SELECT count(*) FROM intraday_ohlcv WHERE interval_minutes = 1";
    // 2024-03-08 15:00 UTC: two 1-minute bars close (the third trade closes the second).
    let t0 = 1_709_910_000;
    publish(
        &producer(kafka.bootstrap_servers()),
        &[tick(t0, 100.0), tick(t0 + 60, 101.0), tick(t0 + 125, 102.0)],
    );
    assert_eq!(
        wait_for_count(&client, bars, 2, Duration::from_secs(30)).await,
        2
    );
    let (status, first, _) = get(&app, path).await;
    assert_eq!(status, 200);
    assert_eq!(first["count"], 2);
    let (_, again, _) = get(&app, path).await;
    assert_eq!(again, first, "served again");

    // The pipeline writes a new bar: the next answer has it, at once.
    publish(
        &producer(kafka.bootstrap_servers()),
        &[tick(t0 + 190, 103.0)],
    );
    assert_eq!(
        wait_for_count(&client, bars, 3, Duration::from_secs(30)).await,
        3
    );
    // The DbWriter's transaction is visible to SQL before it returns to the writer: give
    // the write counter a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, fresh, _) = get(&app, path).await;
    assert_eq!(
        fresh["count"], 3,
        "a write through this instance invalidates"
    );

    // Another writer (another instance, here plain SQL): visible once the answer ages out.
    client
        .batch_execute(
            "UPDATE intraday_ohlcv SET close = 99 WHERE interval_minutes = 1 AND \"timestamp\" = '2024-03-08 15:00:00+00'",
        )
        .await
        .unwrap();
    let (_, cached, _) = get(&app, path).await;
    assert_eq!(cached, fresh, "within the period, the kept answer");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, aged, _) = get(&app, path).await;
    let closes: Vec<f64> = aged["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["close"].as_f64().unwrap())
        .collect();
    assert!(closes.contains(&99.0), "{closes:?}");
    // Errors are never kept.
    for _ in 0..2 {
        assert_eq!(
            get(&app, "/api/v2/intraday/prices/AAPL?interval=7min")
                .await
                .0,
            400
        );
    }
    app.shutdown().await;
}
