//! Bars that come from elsewhere once stored: replayed bar files, `serve`'s backfill on
//! start, the coverage that expires with its bars, and the retention a backfill respects.

use super::*;

#[actix_rt::test]
async fn replayed_bar_files_are_stored_like_backfilled_bars() {
    let db = TestDatabase::create().await;
    let kafka = broker(3);
    let app = spawn_app(settings(
        kafka.bootstrap_servers(),
        Some(&db.url),
        "replay-bars",
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msft_1h.csv");
    std::fs::write(
        &file,
        "ts,open,high,low,close,volume\n2024-03-08T14:00:00Z,400,401,399,400.5,1000\n2024-03-08T15:00:00Z,400.5,402,400,401.25,2500.5\n",
    )
    .unwrap();
    let env = vec![
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            kafka.bootstrap_servers().to_owned(),
        ),
        // The running tickflow keeps the 2024 test data.
        ("TICKFLOW_RETAIN_INTRADAY", "36500d".to_owned()),
    ];
    let path = file.to_str().unwrap();
    let replay_msft = [
        "replay",
        "--bars",
        path,
        "--symbol",
        "MSFT",
        "--interval",
        "1h",
    ];
    let out = tickflow(&replay_msft, &env).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = db.client().await;
    let count =
        "SELECT count(*) FROM intraday_ohlcv WHERE symbol = 'MSFT' AND interval_minutes = 60";
    assert_eq!(
        wait_for_count(&client, count, 2, Duration::from_secs(30)).await,
        2
    );
    // Replayed again: the same rows, volumes not added up.
    let out = tickflow(&replay_msft, &env).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ingested = || {
        app.metrics
            .records_stored
            .with_label_values(&["backfill_bars"])
            .get()
    };
    let start = Instant::now();
    while ingested() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "second replay not ingested"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows: Vec<(String, f64, f64, String)> = client
        .query(
            r#"SELECT to_char("timestamp" AT TIME ZONE 'UTC', 'HH24:MI'), close, volume, source FROM intraday_ohlcv WHERE symbol = 'MSFT' ORDER BY 1"#,
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("14:00".to_owned(), 400.5, 1000.0, "replay".to_owned()),
            ("15:00".to_owned(), 401.25, 2500.5, "replay".to_owned()),
        ]
    );
    // A bar off the interval's grid is refused with its line.
    std::fs::write(
        &file,
        "ts,open,high,low,close,volume\n2024-03-08T14:30:00Z,1,1,1,1,1\n",
    )
    .unwrap();
    let out = tickflow(&replay_msft, &env).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
    // Interval is required with --bars.
    let out = tickflow(&["replay", "--bars", path, "--symbol", "MSFT"], &env).await;
    assert!(!out.status.success());
    app.shutdown().await;
}

/// A TwelveData stand-in for any recent dates: a bar every `interval` through each
/// New York session (constant prices), and no daily bars (403), so Alpha Vantage serves
/// those: one row for each of the last 10 days.
async fn any_time_series(q: web::Query<HashMap<String, String>>) -> HttpResponse {
    let minutes: i64 = match q["interval"].as_str() {
        "1min" => 1,
        "5min" => 5,
        "15min" => 15,
        "30min" => 30,
        _ => {
            return HttpResponse::Ok()
                .body(r#"{"code":403,"message":"not available with your plan","status":"error"}"#);
        }
    };
    let parse = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
    let (from, to) = (parse(&q["start_date"]), parse(&q["end_date"]));
    let cal = TradingCalendar::us_equity();
    let mut values = Vec::new();
    let mut t = from;
    while t <= to {
        let utc = New_York.from_local_datetime(&t).earliest().unwrap();
        if cal
            .session_at(tickflow::domain::Timestamp::from_datetime(&utc))
            .is_some()
        {
            values.push(
                serde_json::json!({"datetime": t.format("%Y-%m-%d %H:%M:%S").to_string(),
                "open": "10.0", "high": "11.0", "low": "9.0", "close": "10.5", "volume": "100"}),
            );
        }
        t += chrono::Duration::minutes(minutes);
    }
    HttpResponse::Ok().json(serde_json::json!({
        "meta": {"symbol": q["symbol"], "exchange_timezone": "America/New_York"},
        "values": values, "status": "ok"
    }))
}

async fn any_daily() -> HttpResponse {
    let today = chrono::Utc::now().date_naive();
    let mut body = "timestamp,open,high,low,close,volume\n".to_owned();
    for back in 0..10 {
        let d = today - chrono::Duration::days(back);
        body.push_str(&format!("{d},10,11,9,10.5,1000\n"));
    }
    HttpResponse::Ok().content_type("text/csv").body(body)
}

#[actix_rt::test]
async fn serve_backfills_its_symbols_on_start_into_the_memory_store() {
    let (addr, handle) = local_server!(|| {
        App::new()
            .route("/time_series", web::get().to(any_time_series))
            .route("/query", web::get().to(any_daily))
    });

    let kafka = broker(3);
    let mut s = settings(kafka.bootstrap_servers(), None, "serve-backfill");
    let aapl = tickflow::domain::Symbol::parse("AAPL").unwrap();
    s.feed_symbols = vec![aapl];
    s.backfill = tickflow::app::BackfillSettings {
        every: Some(Duration::from_secs(3600)),
        days: 5,
    };
    s.providers.twelvedata_url = format!("http://{addr}");
    s.providers.twelvedata_api_key = Some("k".into());
    s.providers.alphavantage_url = format!("http://{addr}");
    s.providers.alphavantage_api_key = Some("k".into());
    let app = spawn_app(s).await;

    // The latest New York session that has ended.
    let cal = TradingCalendar::us_equity();
    let now = tickflow::domain::Timestamp::from_datetime(&chrono::Utc::now());
    let today = chrono::Utc::now().with_timezone(&New_York).date_naive();
    let session = (0..5)
        .filter_map(|back| cal.session_on(today - chrono::Duration::days(back)))
        .find(|s| s.end <= now)
        .expect("a session in the last five days");
    let date = today - chrono::Duration::days(5);
    let wanted = |interval| {
        tickflow::domain::gaps::expected_slots(&cal, interval, date, today)
            .into_iter()
            .filter(|s| s.start >= session.start && s.end <= session.end)
            .map(|s| s.start)
            .collect::<Vec<_>>()
    };
    let start = Instant::now();
    for interval in [Interval::M1, Interval::M5, Interval::H1, Interval::D1] {
        let want = wanted(interval);
        assert!(!want.is_empty());
        loop {
            let got = app
                .store
                .bar_starts(aapl, interval, session.start, session.end)
                .await
                .unwrap();
            if got == want {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{}: {} of {} bars backfilled",
                interval.as_str(),
                got.len(),
                want.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    app.shutdown().await;
    handle.stop(false).await;
}

/// Coverage spans of `store` for AAPL's 5-minute and daily bars.
async fn spans(store: &tickflow::store::Store) -> Vec<(i64, i64)> {
    let (from, to) = (
        tickflow::domain::Timestamp::from_secs(0),
        tickflow::domain::Timestamp::from_secs(4_000_000_000),
    );
    let aapl = tickflow::domain::Symbol::parse("AAPL").unwrap();
    let mut out = Vec::new();
    for interval in [Interval::M5, Interval::D1] {
        let mut s: Vec<(i64, i64)> = store
            .coverage(aapl, interval, from, to)
            .await
            .unwrap()
            .iter()
            .map(|(a, b)| (a.micros() / 1_000_000, b.micros() / 1_000_000))
            .collect();
        s.sort_unstable();
        out.extend(s);
    }
    out
}

#[actix_rt::test]
async fn coverage_expires_with_the_intraday_bars_it_covers_on_both_stores() {
    // A span whose bars the retention deleted must not say "filled": the gap finder would
    // never ask for it again. Daily bars are kept forever, and so is their coverage.
    let db = TestDatabase::create().await;
    let pg = tickflow::store::Store::Postgres(
        tickflow::store::PgStore::connect(&db.url, 2).await.unwrap(),
    );
    let memory = tickflow::store::Store::Memory(tickflow::store::MemoryStore::new(
        tickflow::store::MemoryLimits::default(),
    ));
    let aapl = tickflow::domain::Symbol::parse("AAPL").unwrap();
    let span = |interval, from: i64, to: i64| tickflow::domain::Coverage {
        symbol: aapl,
        interval,
        start: tickflow::domain::Timestamp::from_secs(from),
        end: tickflow::domain::Timestamp::from_secs(to),
        provider: "twelvedata".into(),
        bars: 0,
    };
    let coverage = [
        span(Interval::M5, 1_000, 2_000),
        span(Interval::M5, 3_000, 5_000),
        span(Interval::M5, 6_000, 7_000),
        span(Interval::D1, 1_000, 2_000),
    ];
    for store in [&pg, &memory] {
        store.write_history(&[], &coverage).await.unwrap();
        let changed = store
            .expire_coverage(tickflow::domain::Timestamp::from_secs(4_000))
            .await
            .unwrap();
        assert_eq!(
            changed,
            2,
            "{}: one span deleted, one trimmed",
            store.mode()
        );
        assert_eq!(
            spans(store).await,
            [(4_000, 5_000), (6_000, 7_000), (1_000, 2_000)],
            "{}",
            store.mode()
        );
    }
}

#[actix_rt::test]
async fn backfill_refuses_spans_older_than_the_retention_unless_forced() {
    let db = TestDatabase::create().await;
    let kafka = broker(3);
    let base = [
        "backfill",
        "AAPL",
        "--interval",
        "5min",
        "--from",
        "2024-03-07",
        "--to",
        "2024-03-11",
        "--no-wait",
    ];
    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            kafka.bootstrap_servers().to_owned(),
        ),
    ];
    let out = tickflow(&base, &env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("older than the intraday retention") && stderr.contains("--force"),
        "{stderr}"
    );
    // Forced, it goes on (and fails later for want of a provider key, which says so).
    let mut forced = base.to_vec();
    forced.push("--force");
    let out = tickflow(&forced, &env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("(--force)"), "{stderr}");
    assert!(!stderr.contains("give --from"), "{stderr}");
}
