//! Ticks in through Kafka; bars, analytics and metrics out to PostgreSQL and the output
//! topics, checked against SQL aggregations of the stored ticks.

mod failures;

use crate::helpers::*;
use crate::oracle::*;
use std::collections::HashMap;
use std::time::Duration;
use tickflow::domain::Interval;
use tickflow::kafka::topics;
use tickflow::kafka::wire::{BarMessage, DeadLetter};

const SYMBOLS: [&str; 3] = ["AAPL", "MSFT", "BTC-USD"];

#[actix_rt::test]
async fn bars_in_the_database_equal_a_sql_aggregation_of_the_stored_ticks() {
    let db = TestDatabase::create().await;
    let kafka = broker(3);
    let ticks = trades(&SYMBOLS, 1);
    let producer = producer(kafka.bootstrap_servers());
    publish(&producer, &ticks[..ticks.len() / 2]);
    // Malformed messages in the middle of the stream: dead-lettered, the rest goes on.
    let bad: [(&[u8], &str); 3] = [
        (b"not json at all", "not_json"),
        (
            br#"{"symbol":"AAPL","timestamp":"2024-03-08T15:00:00Z","volume":1}"#,
            "missing_field",
        ),
        (
            br#"{"symbol":"AAPL","price":-3.5,"timestamp":1709910000}"#,
            "bad_tick",
        ),
    ];
    for (payload, _) in &bad {
        publish_raw(&producer, Some("AAPL"), payload);
    }
    publish(&producer, &ticks[ticks.len() / 2..]);

    let app = spawn_app(settings(
        kafka.bootstrap_servers(),
        Some(&db.url),
        "pipeline-test",
    ))
    .await;
    let client = db.client().await;
    let stored = wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(90)).await;
    assert_eq!(stored, ticks.len() as i64, "every tick is stored once");
    let metrics = app.metrics.clone();
    app.shutdown().await;

    // The last trade of each symbol (Monday 16:30:00 UTC) leaves its buckets open.
    let open = |fmt: &dyn Fn(&str) -> String| {
        SYMBOLS
            .iter()
            .map(|s| (s.to_string(), fmt(s)))
            .collect::<Vec<_>>()
    };
    for (interval, bucket) in [
        (Interval::M1, "2024-03-11 16:30:00+00"),
        (Interval::M5, "2024-03-11 16:30:00+00"),
        (Interval::H1, "2024-03-11 16:00:00+00"),
    ] {
        let minutes = interval.minutes() as i32;
        let sql = sql_intraday(&client, minutes).await;
        let stored = stored_intraday(&client, minutes).await;
        assert_same_bars(
            interval.as_str(),
            &sql,
            &stored,
            &open(&|_| bucket.to_owned()),
        );
    }
    let daily_sql = sql_daily(&client).await;
    let daily = stored_daily(&client).await;
    assert_same_bars(
        "1d",
        &daily_sql,
        &daily,
        &open(&|_| "2024-03-11".to_owned()),
    );
    assert!(
        daily.contains_key(&("AAPL".to_owned(), "2024-03-08".to_owned())),
        "Friday's session bar closed on Monday's first trade"
    );

    // Every stored bar has its analytics row, keyed by bar start.
    let missing: i64 = client
        .query_one(
            r#"SELECT count(*) FROM intraday_ohlcv b LEFT JOIN intraday_analytics a
               USING (symbol, interval_minutes, "timestamp") WHERE a.symbol IS NULL"#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(missing, 0, "bars without analytics");
    assert_realtime_rows(&client, &ticks).await;

    // The output topic carries the same bars (newest revision per key wins).
    let mut topic_bars: HashMap<(String, u32, String), BarMessage> = HashMap::new();
    for (key, payload) in read_topic(
        kafka.bootstrap_servers(),
        topics::OHLCV,
        Duration::from_secs(2),
    ) {
        let bar: BarMessage = serde_json::from_slice(&payload).expect("bar JSON");
        assert_eq!(key.as_deref(), Some(bar.symbol.as_str()), "keyed by symbol");
        let k = (
            bar.symbol.clone(),
            bar.interval_minutes,
            bar.bar_start_ts.clone(),
        );
        if topic_bars
            .get(&k)
            .is_none_or(|old| old.revision <= bar.revision)
        {
            topic_bars.insert(k, bar);
        }
    }
    let intraday_rows: i64 = client
        .query_one("SELECT count(*) FROM intraday_ohlcv", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        topic_bars.len() as i64,
        intraday_rows + daily.len() as i64,
        "one topic bar per stored bar"
    );
    for row in client
        .query(r#"SELECT symbol, interval_minutes, "timestamp", open, high, low, close, volume, num_samples FROM intraday_ohlcv"#, &[])
        .await
        .unwrap()
    {
        let ts: chrono::DateTime<chrono::Utc> = row.get(2);
        let key = (row.get::<_, String>(0), row.get::<_, i32>(1) as u32, tickflow::domain::Timestamp::from_datetime(&ts).to_rfc3339());
        let bar = topic_bars.get(&key).unwrap_or_else(|| panic!("{key:?} not on the topic"));
        assert_eq!(
            (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades as i64),
            (row.get(3), row.get(4), row.get(5), row.get(6), row.get(7), row.get(8)),
            "{key:?}"
        );
    }

    // Malformed messages are on the dead-letter topic with their reason and exact bytes.
    let letters: Vec<DeadLetter> = read_topic(
        kafka.bootstrap_servers(),
        topics::DLQ,
        Duration::from_secs(2),
    )
    .iter()
    .map(|(_, p)| serde_json::from_slice(p).expect("dead letter JSON"))
    .collect();
    assert_eq!(letters.len(), bad.len());
    for (payload, reason) in bad {
        let letter = letters
            .iter()
            .find(|l| l.reason == reason)
            .unwrap_or_else(|| panic!("no {reason} letter"));
        use base64::Engine;
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(&letter.payload_base64)
                .unwrap(),
            payload
        );
        assert_eq!(
            (letter.topic.as_str(), letter.key.as_deref()),
            (topics::RAW, Some("AAPL"))
        );
    }
    let counted: u64 = ["not_json", "missing_field", "bad_tick"]
        .iter()
        .map(|r| metrics.dlq_messages.with_label_values(&[r]).get())
        .sum();
    assert_eq!(counted, 3);
}

#[actix_rt::test]
async fn redelivery_and_reprocessing_from_scratch_change_nothing() {
    let kafka = broker(3);
    let ticks = trades(&SYMBOLS, 2);
    let producer = producer(kafka.bootstrap_servers());
    let split = ticks.len() * 2 / 3;
    let db = TestDatabase::create().await;
    let client = db.client().await;

    // Two thirds, processed and checkpointed.
    publish(&producer, &ticks[..split]);
    let first = spawn_app(settings(kafka.bootstrap_servers(), Some(&db.url), "first")).await;
    assert_eq!(
        wait_for_ticks(&client, split as i64, Duration::from_secs(90)).await,
        split as i64
    );
    first.shutdown().await;

    // The rest, read by a new consumer group: every old message is delivered again first.
    // Checkpoints make the old ones no-ops; the new ones continue exactly where state was.
    publish(&producer, &ticks[split..]);
    let second = spawn_app(settings(kafka.bootstrap_servers(), Some(&db.url), "second")).await;
    wait_until_consumed(&second.metrics, ticks.len() as u64).await;
    second.shutdown().await;
    let redelivered = snapshot(&client).await;

    // The same ticks through one uninterrupted pipeline.
    let reference = TestDatabase::create().await;
    let ref_client = reference.client().await;
    let app = spawn_app(settings(
        kafka.bootstrap_servers(),
        Some(&reference.url),
        "reference",
    ))
    .await;
    assert_eq!(
        wait_for_ticks(&ref_client, ticks.len() as i64, Duration::from_secs(90)).await,
        ticks.len() as i64
    );
    app.shutdown().await;
    let uninterrupted = snapshot(&ref_client).await;
    assert!(uninterrupted.len() > ticks.len() * 2);
    assert_same_rows(
        &redelivered,
        &uninterrupted,
        "redelivery changed the database",
    );

    // Without checkpoints everything is recomputed from the ticks: the same rows again.
    client
        .batch_execute("DELETE FROM symbol_checkpoints")
        .await
        .unwrap();
    let fresh = spawn_app(settings(kafka.bootstrap_servers(), Some(&db.url), "third")).await;
    wait_until_consumed(&fresh.metrics, ticks.len() as u64).await;
    fresh.shutdown().await;
    assert_same_rows(
        &snapshot(&client).await,
        &uninterrupted,
        "recomputing from scratch changed the database",
    );
}

async fn wait_until_consumed(metrics: &tickflow::metrics::Metrics, n: u64) {
    let start = std::time::Instant::now();
    while metrics.messages_consumed.get() < n {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "only {} of {n} consumed",
            metrics.messages_consumed.get()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the last batch reach the writer before shutting down.
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[actix_rt::test]
async fn a_kill_9_and_restart_neither_loses_nor_doubles() {
    let kafka = broker(3);
    let ticks = trades(&SYMBOLS, 3);
    let producer = producer(kafka.bootstrap_servers());
    let crashed = TestDatabase::create().await;
    let client = crashed.client().await;

    // Ticks arrive while the pipeline runs; it is killed (SIGKILL, no shutdown) a third
    // of the way in, with writes and commits in flight, and started again.
    let mut child = spawn_serve_on(
        Some(kafka.bootstrap_servers()),
        &crashed.url,
        "crash",
        "tickflow-crash-1",
    );
    let chunks: Vec<_> = ticks.chunks(100).collect();
    let mut killed = false;
    for (i, chunk) in chunks.iter().enumerate() {
        publish(&producer, chunk);
        tokio::time::sleep(Duration::from_millis(30)).await;
        if !killed && i >= chunks.len() / 3 {
            let stored =
                wait_for_ticks(&client, ((i + 1) * 100 / 2) as i64, Duration::from_secs(30)).await;
            assert!(stored > 0, "the first run stored nothing before the kill");
            child.kill9();
            killed = true;
            child = spawn_serve_on(
                Some(kafka.bootstrap_servers()),
                &crashed.url,
                "crash",
                "tickflow-crash-2",
            );
        }
    }
    let stored = wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(child.terminate().success());
    assert_eq!(
        stored,
        ticks.len() as i64,
        "ticks lost or doubled across the crash"
    );

    // The same ticks through an uninterrupted pipeline.
    let reference = TestDatabase::create().await;
    let app = spawn_app(settings(
        kafka.bootstrap_servers(),
        Some(&reference.url),
        "reference",
    ))
    .await;
    let ref_client = reference.client().await;
    assert_eq!(
        wait_for_ticks(&ref_client, ticks.len() as i64, Duration::from_secs(90)).await,
        ticks.len() as i64
    );
    app.shutdown().await;

    assert_same_rows(
        &snapshot(&client).await,
        &snapshot(&ref_client).await,
        "the crashed run differs from the uninterrupted one",
    );
}

#[actix_rt::test]
async fn writes_wait_for_postgresql_to_come_back_and_lose_nothing() {
    let kafka = broker(3);
    let db = TestDatabase::create().await;
    let app = spawn_app(settings(
        kafka.bootstrap_servers(),
        Some(&db.url),
        "db-down",
    ))
    .await;
    let ticks = trades(&["AAPL"], 5);
    let (before, during) = ticks.split_at(ticks.len() / 3);
    let producer = producer(kafka.bootstrap_servers());
    publish(&producer, before);
    let client = db.client().await;
    assert_eq!(
        wait_for_ticks(&client, before.len() as i64, Duration::from_secs(60)).await,
        before.len() as i64
    );
    drop(client);

    // PostgreSQL "goes down" for this database: no new connections, existing ones killed.
    let (admin, conn) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            db.name
        ))
        .await
        .unwrap();
    admin
        .execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", &[&db.name])
        .await
        .unwrap();
    let failures_before = app.metrics.persistence_errors.get();
    publish(&producer, during);
    let start = std::time::Instant::now();
    while app.metrics.persistence_errors.get() < failures_before + 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "writes did not fail while the database was down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing is committed to Kafka while writes fail, and nothing is dropped.
    tokio::time::sleep(Duration::from_secs(1)).await;

    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            db.name
        ))
        .await
        .unwrap();
    let client = db.client().await;
    let stored = wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(60)).await;
    assert_eq!(
        stored,
        ticks.len() as i64,
        "every tick written once after the outage"
    );
    assert_realtime_rows(&client, &ticks).await;
    app.shutdown().await;
}

#[actix_rt::test]
async fn replaying_a_recorded_file_gives_the_bars_tickflow_bars_computes_offline() {
    let kafka = broker(3);
    let db = TestDatabase::create().await;
    let app = spawn_app(settings(kafka.bootstrap_servers(), Some(&db.url), "replay")).await;
    let ticks = trades(&["MSFT"], 6);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msft.csv");
    let mut csv = String::from("ts,price,volume\n");
    for t in &ticks {
        csv.push_str(&format!(
            "{},{:?},{:?}\n",
            t.ts().to_rfc3339(),
            t.price(),
            t.size()
        ));
    }
    std::fs::write(&file, csv).unwrap();

    let replay = std::process::Command::new(env!("CARGO_BIN_EXE_tickflow"))
        .args([
            "replay",
            "--ticks",
            file.to_str().unwrap(),
            "--symbol",
            "msft",
            "--speed",
            "max",
        ])
        .env("KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap_servers())
        // The running tickflow keeps the 2024 test data.
        .env("TICKFLOW_RETAIN_INTRADAY", "36500d")
        .env("TICKFLOW_RETAIN_TICKS", "36500d")
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let client = db.client().await;
    assert_eq!(
        wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(60)).await,
        ticks.len() as i64
    );
    app.shutdown().await;

    let offline = std::process::Command::new(env!("CARGO_BIN_EXE_tickflow"))
        .args([
            "bars",
            "--input",
            file.to_str().unwrap(),
            "--interval",
            "1m",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(offline.status.success());
    let offline: Vec<String> = String::from_utf8(offline.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect();
    let stored: Vec<String> = client
        .query(
            r#"SELECT "timestamp", open, high, low, close, volume, num_samples, vwap FROM intraday_ohlcv
               WHERE symbol = 'MSFT' AND interval_minutes = 1 ORDER BY "timestamp""#,
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let ts: chrono::DateTime<chrono::Utc> = r.get(0);
            let vwap: Option<f64> = r.get(7);
            format!(
                "{},{:?},{:?},{:?},{:?},{:?},{},{}",
                tickflow::domain::Timestamp::from_datetime(&ts).to_rfc3339(),
                r.get::<_, f64>(1),
                r.get::<_, f64>(2),
                r.get::<_, f64>(3),
                r.get::<_, f64>(4),
                r.get::<_, f64>(5),
                r.get::<_, i64>(6),
                vwap.map(|v| format!("{v:?}")).unwrap_or_default()
            )
        })
        .collect();
    // Offline closes every bar at the end of the file; the pipeline keeps the last one open.
    assert_eq!(offline.len(), stored.len() + 1);
    assert_eq!(
        &offline[..stored.len()],
        &stored[..],
        "replayed bars differ from offline bars"
    );
}
#[actix_rt::test]
async fn a_second_instance_takes_over_partitions_mid_stream_and_nothing_is_lost_or_doubled() {
    // Scale-out: instance A runs alone, then B (on its own thread and actix system, as a
    // second process) joins the same consumer group while trades flow; the rebalance moves
    // partitions, and their symbols' checkpoints, from A to B.
    let kafka = broker(6);
    let db = TestDatabase::create().await;
    let symbols = [
        "AAPL", "MSFT", "BTC-USD", "GOOG", "AMZN", "TSLA", "NVDA", "META",
    ];
    let ticks = trades(&symbols, 21);
    let producer = producer(kafka.bootstrap_servers());
    let third = ticks.len() / 3;
    publish(&producer, &ticks[..third]);
    let a = spawn_app(settings(
        kafka.bootstrap_servers(),
        Some(&db.url),
        "scale-out",
    ))
    .await;
    let client = db.client().await;
    assert_eq!(
        wait_for_ticks(&client, third as i64, Duration::from_secs(60)).await,
        third as i64
    );
    let b = RemoteApp::spawn(settings(
        kafka.bootstrap_servers(),
        Some(&db.url),
        "scale-out",
    ))
    .await;
    // The rest trickles in (for up to 20 s) while B joins and the group rebalances
    // (heartbeats every second); once B has taken partitions over, the rest goes at once.
    let rest = &ticks[third..];
    let mut slices = rest.chunks(rest.len().div_ceil(80));
    for slice in slices.by_ref() {
        publish(&producer, slice);
        if b.metrics.ticks_consumed.get() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for slice in slices {
        publish(&producer, slice);
    }
    let stored = wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(90)).await;
    let consumed = (
        a.metrics.ticks_consumed.get(),
        b.metrics.ticks_consumed.get(),
    );
    b.shutdown().await;
    a.shutdown().await;
    assert_eq!(stored, ticks.len() as i64, "every trade stored once");
    assert!(consumed.1 > 0, "the second instance got partitions");
    assert!(consumed.0 > 0);
    assert_bars_and_realtime_exact(&client, &symbols, &ticks).await;
}
