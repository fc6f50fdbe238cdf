//! Backfill and bar replay against local servers speaking TwelveData's and Alpha Vantage's
//! formats, through the real topic and bar-ingest consumer into real PostgreSQL.

mod stored;

use crate::helpers::*;
use actix_web::{App, HttpResponse, web};
use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::America::New_York;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tickflow::domain::{Interval, TradingCalendar};

/// One 5-minute bar of the provider's history (UTC start).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Truth {
    start: chrono::DateTime<chrono::Utc>,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
}

/// The provider's 5-minute history of AAPL: Thu 2024-03-07 and Fri 2024-03-08 (EST) and
/// Mon 2024-03-11 (EDT), regular session plus some pre-market bars tickflow must ignore.
fn history() -> Vec<Truth> {
    let cal = TradingCalendar::us_equity();
    let mut out = Vec::new();
    for day in ["2024-03-07", "2024-03-08", "2024-03-11"] {
        let date: NaiveDate = day.parse().unwrap();
        let session = cal.session_on(date).unwrap();
        let pre = session.start.micros() - 30 * 60_000_000;
        let mut t = pre;
        while t < session.end.micros() {
            let i = out.len() as f64;
            let open = 170.0 + (i * 0.37).sin() * 3.0;
            let close = open + (i * 0.11).cos();
            out.push(Truth {
                start: chrono::DateTime::from_timestamp_micros(t).unwrap(),
                open,
                high: open.max(close) + 0.25,
                low: open.min(close) - 0.25,
                close,
                volume: 1_000.0 + i * 7.0,
            });
            t += 300_000_000;
        }
    }
    out
}

fn in_session(t: &Truth) -> bool {
    TradingCalendar::us_equity()
        .session_at(tickflow::domain::Timestamp::from_datetime(&t.start))
        .is_some()
}

#[derive(Default)]
struct Provider {
    /// `(interval, start_date, end_date, when)` of every TwelveData request.
    requests: Mutex<Vec<(String, String, String, Instant)>>,
    /// The TwelveData request with this number hangs until it is changed (an interrupted
    /// backfill).
    stall_at: AtomicUsize,
    av_requests: Mutex<usize>,
}

async fn time_series(
    q: web::Query<HashMap<String, String>>,
    p: web::Data<Arc<Provider>>,
) -> HttpResponse {
    let n = {
        let mut r = p.requests.lock().unwrap();
        r.push((
            q["interval"].clone(),
            q["start_date"].clone(),
            q["end_date"].clone(),
            Instant::now(),
        ));
        r.len()
    };
    while p.stall_at.load(Ordering::SeqCst) == n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if q.get("apikey").map(String::as_str) != Some("td-key") {
        return HttpResponse::Ok().body(r#"{"code":401,"message":"**apikey** parameter is incorrect or not specified.","status":"error"}"#);
    }
    if n == 1 {
        return HttpResponse::Ok().body(r#"{"code":429,"message":"You have run out of API credits for the current minute. 9 API credits were used, with the current limit being 8.","status":"error"}"#);
    }
    if q["interval"] != "5min" {
        return HttpResponse::Ok().body(r#"{"code":403,"message":"/time_series is not available with your plan for this interval","status":"error"}"#);
    }
    // Exchange-local bounds, both inclusive.
    let parse = |s: &str| {
        let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        New_York.from_local_datetime(&local).unwrap().to_utc()
    };
    let (from, to) = (parse(&q["start_date"]), parse(&q["end_date"]));
    // Newest first, as TwelveData sends by default.
    let values: Vec<serde_json::Value> = history()
        .iter()
        .rev()
        .filter(|t| from <= t.start && t.start <= to)
        .map(|t| {
            serde_json::json!({
                "datetime": t.start.with_timezone(&New_York).format("%Y-%m-%d %H:%M:%S").to_string(),
                "open": format!("{:.5}", t.open), "high": format!("{:.5}", t.high),
                "low": format!("{:.5}", t.low), "close": format!("{:.5}", t.close),
                "volume": format!("{}", t.volume),
            })
        })
        .collect();
    if values.is_empty() || q["symbol"] == "EMPTY" {
        return HttpResponse::Ok().body(r#"{"code":400,"message":"No data is available on the specified dates. Try setting different start/end dates.","status":"error"}"#);
    }
    HttpResponse::Ok().json(serde_json::json!({
        "meta": {"symbol": "AAPL", "interval": "5min", "currency": "USD", "exchange_timezone": "America/New_York",
                 "exchange": "NASDAQ", "mic_code": "XNGS", "type": "Common Stock"},
        "values": values, "status": "ok"
    }))
}

async fn alphavantage(
    q: web::Query<HashMap<String, String>>,
    p: web::Data<Arc<Provider>>,
) -> HttpResponse {
    let n = {
        let mut r = p.av_requests.lock().unwrap();
        *r += 1;
        *r
    };
    if n == 1 {
        return HttpResponse::Ok().body(r#"{"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls per day."}"#);
    }
    assert_eq!(q["function"], "TIME_SERIES_DAILY");
    assert_eq!(q["datatype"], "csv");
    if q.get("apikey").map(String::as_str) != Some("av-key") {
        return HttpResponse::Ok()
            .body(r#"{"Error Message": "the parameter apikey is invalid or missing."}"#);
    }
    HttpResponse::Ok().content_type("text/csv").body(
        "timestamp,open,high,low,close,volume\r\n2024-03-11,172.94,174.38,172.05,172.75,60139473\r\n2024-03-08,169.00,173.70,168.94,170.73,76114634\r\n2024-03-07,169.15,170.73,168.49,169.00,71765061\r\n",
    )
}

/// Runs `tickflow backfill` (or `replay`) against the test's broker, database and providers.
async fn tickflow(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tickflow"));
    cmd.args(args).env("RUST_LOG", "warn").kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("tickflow runs")
}

type Row = (String, f64, f64, f64, f64, f64, String);

async fn bars_5m(client: &tokio_postgres::Client) -> Vec<Row> {
    client
        .query(
            r#"SELECT to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'), open, high, low, close, volume, source
               FROM intraday_ohlcv WHERE symbol = 'AAPL' AND interval_minutes = 5 ORDER BY "timestamp""#,
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6)))
        .collect()
}

fn round5(x: f64) -> f64 {
    format!("{x:.5}").parse().unwrap()
}

#[actix_rt::test]
async fn backfill_fills_only_the_gaps_once_through_the_topic_resumes_and_falls_back() {
    let provider = Arc::new(Provider::default());
    let data = web::Data::new(provider.clone());
    let (addr, handle) = local_server!(move || {
        App::new()
            .app_data(data.clone())
            .route("/time_series", web::get().to(time_series))
            .route("/query", web::get().to(alphavantage))
    });

    let db = TestDatabase::create().await;
    let kafka = broker(3);
    let app = spawn_app(settings(
        kafka.bootstrap_servers(),
        Some(&db.url),
        "backfill",
    ))
    .await;
    let client = db.client().await;
    // Three bars the pipeline built from trades: backfill must leave them as they are.
    client
        .batch_execute(
            r#"INSERT INTO intraday_ohlcv (symbol, "timestamp", interval_minutes, open, high, low, close, volume, num_samples, vwap, revision, source, bar_end)
               SELECT 'AAPL', t, 5, 1, 1, 1, 1, 999999, 7, 1, 0, 'aggregator', t + interval '5 minutes'
               FROM generate_series(timestamptz '2024-03-08 14:30:00+00', timestamptz '2024-03-08 14:40:00+00', interval '5 minutes') AS t"#,
        )
        .await
        .unwrap();

    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            kafka.bootstrap_servers().to_owned(),
        ),
        ("TWELVEDATA_URL", format!("http://{addr}")),
        ("TWELVEDATA_API_KEY", "td-key".to_owned()),
        ("TWELVEDATA_PER_MINUTE", "3".to_owned()),
        ("TWELVEDATA_OUTPUTSIZE", "50".to_owned()),
        ("TICKFLOW_RATE_WINDOW", "1s".to_owned()),
        ("ALPHA_VANTAGE_URL", format!("http://{addr}")),
        ("ALPHA_VANTAGE_API_KEY", "av-key".to_owned()),
        // The running tickflow keeps the 2024 test data.
        ("TICKFLOW_RETAIN_INTRADAY", "36500d".to_owned()),
    ];
    let five_min = [
        "backfill",
        "AAPL",
        "--interval",
        "5min",
        "--from",
        "2024-03-07",
        "--to",
        "2024-03-11",
    ];

    // 1. Interrupted: the fourth TwelveData request hangs and the command is killed there.
    provider.stall_at.store(4, Ordering::SeqCst);
    let mut first = tokio::process::Command::new(env!("CARGO_BIN_EXE_tickflow"));
    first
        .args(five_min)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    for (k, v) in &env {
        first.env(k, v);
    }
    let mut first = first.spawn().unwrap();
    let started = Instant::now();
    loop {
        let seen = provider.requests.lock().unwrap().len();
        if seen >= 4 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "backfill made {seen} requests"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Requests 2 and 3 brought two chunks: wait until the ingest stored them, then "crash".
    assert_eq!(
        wait_for_count(
            &client,
            "SELECT count(*) FROM backfill_coverage",
            2,
            Duration::from_secs(30),
        )
        .await,
        2
    );
    first.kill().await.unwrap();
    provider.stall_at.store(0, Ordering::SeqCst);
    let interrupted: Vec<String> = provider.requests.lock().unwrap()[1..3]
        .iter()
        .map(|r| r.1.clone())
        .collect();

    // 2. Resumed: only what is still missing is asked for.
    let before = provider.requests.lock().unwrap().len();
    let out = tickflow(&five_min, &env).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = provider.requests.lock().unwrap().clone();
    for r in &requests[before..] {
        assert!(
            !interrupted.contains(&r.1),
            "{} was stored before the interruption and asked again",
            r.1
        );
    }
    // 234 session slots, 3 stored from trades, at most 48 per request (outputsize 50 less
    // the margin): 78 = 48 + 30 on Thursday, 153 = 48 + 48 + 48 + 9 from Friday 14:45, where
    // the second 48 span the weekend and Monday's pre-market fills the answer: it is asked
    // again as two halves of 24.
    let coverage: Vec<(String, String, i64)> = client
        .query(
            "SELECT range_start::text, range_end::text, bars FROM backfill_coverage ORDER BY range_start",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        coverage.iter().map(|c| c.2).collect::<Vec<_>>(),
        vec![48, 30, 48, 24, 24, 48, 9],
        "{coverage:?}"
    );
    for pair in coverage.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "chunks overlap: {pair:?}");
    }
    // The throttled span was asked again after waiting a whole window. Times are taken
    // where requests arrive, which jitters by tens of milliseconds on a loaded machine (a
    // run beside a compiler saw 4 within 990 ms); a limiter letting requests through
    // unchecked would show them milliseconds apart, so 900 ms still tells the two apart.
    let window = Duration::from_millis(900);
    assert_eq!(requests[0].1, requests[1].1);
    assert!(requests[1].3.duration_since(requests[0].3) >= window);
    // Never more than 3 requests in any second (each command keeps its own count).
    for w in requests[before..].windows(4) {
        assert!(
            w[3].3.duration_since(w[0].3) >= window,
            "4 requests within {:?}",
            w[3].3.duration_since(w[0].3)
        );
    }

    let want: Vec<Row> = history()
        .iter()
        .filter(|t| in_session(t))
        .map(|t| {
            let ts = t.start.format("%Y-%m-%dT%H:%M:%S").to_string();
            if t.start.format("%Y-%m-%d %H:%M").to_string().as_str() >= "2024-03-08 14:30"
                && t.start.format("%Y-%m-%d %H:%M").to_string().as_str() <= "2024-03-08 14:40"
            {
                (ts, 1.0, 1.0, 1.0, 1.0, 999_999.0, "aggregator".to_owned())
            } else {
                (
                    ts,
                    round5(t.open),
                    round5(t.high),
                    round5(t.low),
                    round5(t.close),
                    t.volume,
                    "twelvedata".to_owned(),
                )
            }
        })
        .collect();
    assert_eq!(want.len(), 234);
    let got = bars_5m(&client).await;
    assert_eq!(got.len(), want.len());
    assert_eq!(
        got, want,
        "provider bars at their UTC start, trade-built bars untouched"
    );

    // Analytics of the backfilled bars, over the whole stored series (trade-built bars keep
    // theirs: here they have none). SMA 20 at the last bar = the mean of the last 20 closes.
    let analytics =
        "SELECT count(*) FROM intraday_analytics WHERE symbol = 'AAPL' AND interval_minutes = 5";
    assert_eq!(
        wait_for_count(&client, analytics, 231, Duration::from_secs(30)).await,
        231
    );
    let (sma, mean): (f64, f64) = client
        .query_one(
            r#"SELECT (a.indicators->>'sma_20')::float8,
                      (SELECT avg(close) FROM (SELECT close FROM intraday_ohlcv WHERE symbol = 'AAPL' AND interval_minutes = 5
                                               ORDER BY "timestamp" DESC LIMIT 20) last20)
               FROM intraday_analytics a WHERE symbol = 'AAPL' AND interval_minutes = 5
               ORDER BY "timestamp" DESC LIMIT 1"#,
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert!((sma - mean).abs() < 1e-9 * mean, "sma_20 {sma} vs {mean}");

    // 3. Nothing missing: no request at all.
    let before = provider.requests.lock().unwrap().len();
    let out = tickflow(&five_min, &env).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        provider.requests.lock().unwrap().len(),
        before,
        "nothing to fetch"
    );

    // 4. Fetched again (coverage forgotten): bars are replaced, volumes never added up.
    client
        .batch_execute(
            "DELETE FROM backfill_coverage; DELETE FROM intraday_ohlcv WHERE \"timestamp\" >= '2024-03-11'",
        )
        .await
        .unwrap();
    let out = tickflow(&five_min, &env).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(bars_5m(&client).await, want, "a refetch changes nothing");

    // 5. Daily bars: TwelveData refuses the interval, Alpha Vantage serves it.
    let out = tickflow(
        &[
            "backfill",
            "AAPL",
            "--interval",
            "1day",
            "--from",
            "2024-03-07",
            "--to",
            "2024-03-11",
        ],
        &env,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        *provider.av_requests.lock().unwrap(),
        2,
        "the per-minute notice was waited out"
    );
    let days: Vec<(String, String, f64, f64, String)> = client
        .query(
            r#"SELECT "timestamp"::text, session_start::text, close, volume, source FROM historical_ohlcv WHERE symbol = 'AAPL' ORDER BY 1"#,
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let av = |d: &str, s: &str, c: f64, v: f64| {
        (d.to_owned(), s.to_owned(), c, v, "alphavantage".to_owned())
    };
    let daily = "SELECT count(*) FROM daily_analytics WHERE symbol = 'AAPL' AND price > 0";
    assert_eq!(
        wait_for_count(&client, daily, 3, Duration::from_secs(30)).await,
        3
    );
    assert_eq!(
        days,
        vec![
            av("2024-03-07", "2024-03-07 14:30:00+00", 169.00, 71_765_061.0),
            av("2024-03-08", "2024-03-08 14:30:00+00", 170.73, 76_114_634.0),
            av("2024-03-11", "2024-03-11 13:30:00+00", 172.75, 60_139_473.0),
        ]
    );

    // 6. The provider has nothing for the span: asked once, recorded as covered, no bars.
    let empty = [
        "backfill",
        "EMPTY",
        "--interval",
        "5min",
        "--from",
        "2024-03-07",
        "--to",
        "2024-03-07",
    ];
    let out = tickflow(&empty, &env).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let covered: (i64, i64) = client
        .query_one(
            "SELECT count(*), sum(bars)::bigint FROM backfill_coverage WHERE symbol = 'EMPTY'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(covered, (2, 0), "78 slots in two chunks, both empty");
    let before = provider.requests.lock().unwrap().len();
    assert!(tickflow(&empty, &env).await.status.success());
    assert_eq!(
        provider.requests.lock().unwrap().len(),
        before,
        "not asked again"
    );

    // 7. No key anywhere: a clear failure, nothing written.
    let no_keys: Vec<(&str, String)> = env
        .iter()
        .filter(|(k, _)| !k.ends_with("API_KEY"))
        .cloned()
        .collect();
    let out = tickflow(
        &[
            "backfill",
            "MSFT",
            "--interval",
            "1h",
            "--from",
            "2024-03-07",
            "--to",
            "2024-03-07",
        ],
        &no_keys,
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no API key"), "{stderr}");

    app.shutdown().await;
    handle.stop(false).await;
}
