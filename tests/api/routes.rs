//! Every route, the fixed reference defects, and a table of bad inputs.

use crate::fixture::*;
use crate::helpers::*;
use std::time::Duration;

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
        "/api/v2/intraday/prices/AAPL?interval=5m&before=2024-03-11T13:00:00Z&limit=7",
        "/api/v2/intraday/analytics/AAPL?interval=1m&before=2024-03-08T16:00:00Z&limit=9&indicators=rsi_14,vwap&format=csv",
        "/api/v2/historical/prices/BTC-USD?before=2024-03-11&limit=1",
        "/api/v2/historical/analytics/AAPL?before=2024-03-11&indicators=price,sma_20",
        "/api/v2/realtime/symbols?format=csv",
        "/api/v2/symbols",
        "/api/v2/symbols?format=csv",
        "/api/v2/meta",
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
    f.shutdown().await;
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
    assert_eq!(
        body["interval"].as_str(),
        Some("1m"),
        "the canonical name, whatever spelling was asked"
    );

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

    // CSV works on `/latest` too, columns in the JSON row's order.
    let (status, _, text) = get(app, "/api/v2/historical/prices/AAPL/latest?format=csv").await;
    assert_eq!(status, 200);
    assert!(text.starts_with("timestamp,open,high,low,close,volume,trades,vwap,revision,source,symbol,timestamp_utc,date_est\n"), "{text}");
    assert_eq!(text.lines().count(), 2, "{text}");

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
    f.shutdown().await;
}

#[actix_rt::test]
async fn bad_inputs_get_a_4xx_naming_the_parameter_never_a_5xx() {
    let f = fixture().await;
    let cases: &[(&str, u16, &str)] = &[
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
        // Out-of-range dates are refused before they reach the database.
        ("/api/v2/realtime/prices/AAPL?date=-5000-01-01", 422, "date"),
        (
            "/api/v2/realtime/prices/AAPL?date=+10000-01-01",
            422,
            "date",
        ),
        (
            "/api/v2/historical/prices/AAPL?start_date=0001-01-01",
            422,
            "start_date",
        ),
        (
            "/api/v2/historical/prices/AAPL?end_date=99999-12-31",
            422,
            "end_date",
        ),
        (
            "/api/v2/intraday/prices/AAPL?before=-5000-01-01T00:00:00Z",
            422,
            "before",
        ),
        (
            "/api/v2/historical/prices/AAPL?before=2024-03-11T00:00:00Z",
            422,
            "before",
        ),
        // Filters are applied or refused, never ignored.
        (
            "/api/v2/realtime/prices/AAPL?start_time=25:00",
            422,
            "start_time",
        ),
        (
            "/api/v2/realtime/prices/AAPL?start_time=10:00",
            422,
            "start_time",
        ),
        (
            "/api/v2/intraday/prices/AAPL?end_time=10:00",
            422,
            "end_time",
        ),
        (
            "/api/v2/realtime/prices/AAPL?date=2024-03-08&last_minutes=5",
            422,
            "last_minutes",
        ),
        (
            "/api/v2/realtime/prices/AAPL?date=2024-03-08&start_date=2024-03-08",
            422,
            "start_date",
        ),
        (
            "/api/v2/realtime/prices/AAPL?last_minutes=5&end_date=2024-03-08",
            422,
            "end_date",
        ),
        (
            "/api/v2/intraday/prices/AAPL?before=2024-03-08T15:00:00Z&date=2024-03-08",
            422,
            "date",
        ),
        (
            "/api/v2/intraday/prices/AAPL?last_hours=2&before=2024-03-08T15:00:00Z",
            422,
            "before",
        ),
        (
            "/api/v2/historical/prices/AAPL?last_days=5&before=2024-03-08",
            422,
            "before",
        ),
        (
            "/api/v2/realtime/analytics/AAPL?date=2024-03-08&last_minutes=30",
            422,
            "last_minutes",
        ),
        // Repeated single-valued and unknown parameters.
        (
            "/api/v2/realtime/prices/AAPL?limit=1&limit=2",
            422,
            "repeated",
        ),
        (
            "/api/v2/intraday/prices/AAPL?interval=1m&interval=5m",
            422,
            "repeated",
        ),
        (
            "/api/v2/realtime/prices/AAPL?cachebuster=123",
            422,
            "extra_forbidden",
        ),
        (
            "/api/v2/realtime/prices/AAPL/latest?limit=5",
            422,
            "extra_forbidden",
        ),
        ("/api/v2/realtime/symbols?x=1", 422, "extra_forbidden"),
        ("/api/v2/meta?format=csv", 422, "extra_forbidden"),
        (
            "/api/v2/intraday/prices/AAPL?token=s3cret",
            422,
            "extra_forbidden",
        ),
        ("/health?verbose=1", 422, "extra_forbidden"),
        ("/docs/assets/nope.js", 404, "no such asset"),
    ];
    for app in [&f.pg, &f.memory] {
        for &(path, want, mentions) in cases {
            let (status, _, text) = get(app, path).await;
            assert_eq!(status, want, "{path}: {text}");
            assert!(
                text.contains(mentions),
                "{path}: {text} does not name {mentions:?}"
            );
        }
    }
    f.shutdown().await;
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
            "text/javascript; charset=utf-8",
            "RFC 9239's type for scripts"
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
