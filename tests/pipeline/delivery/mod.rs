//! No trade lost, skipped or doubled, whatever producers, clocks and restarts do: each test
//! drives tickflow as a user would (a careless producer, an operator restarting it) and
//! ends with every valid trade stored exactly once and bars equal to the SQL aggregation.

mod instances;

use crate::helpers::*;
use crate::oracle::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;
use tickflow::domain::{Source, Symbol, Tick, Timestamp};
use tickflow::kafka::topics;
use tickflow::kafka::wire::{self, DeadLetter};

/// Every trade of `ticks` stored exactly once (by identity and by content).
async fn assert_stored_once(client: &tokio_postgres::Client, ticks: &[Tick]) {
    let stored: i64 = client
        .query_one("SELECT count(*) FROM realtime_prices", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, ticks.len() as i64, "trades stored");
    // Test trades have distinct (symbol, time, price, size): a double would show here.
    let distinct: i64 = client
        .query_one(
            r#"SELECT count(*) FROM (SELECT DISTINCT symbol, "timestamp", price, volume FROM realtime_prices) d"#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(distinct, stored, "a trade was stored twice");
}

/// The dead letters on the DLQ.
fn dead_letters(bootstrap: &str) -> Vec<DeadLetter> {
    read_topic(bootstrap, topics::DLQ, Duration::from_secs(2))
        .iter()
        .map(|(_, p)| serde_json::from_slice(p).expect("dead letter JSON"))
        .collect()
}

#[actix_rt::test]
async fn unkeyed_and_mis_keyed_trades_are_stored_once_and_bars_equal_the_sql_aggregation() {
    // A careless producer: no key (kcat's default: random partitions), another symbol's key,
    // or the symbol hashed by librdkafka's CRC32 instead of the Java client's murmur2. As a
    // feed publishes, in time order, all at once while tickflow runs (a backlog forms).
    let kafka = broker(3);
    let db = TestDatabase::create().await;
    let app = spawn_app(settings(kafka.bootstrap_servers(), Some(&db.url), "keys")).await;
    let symbols = ["AAPL", "MSFT", "W1", "BTC-USD"];
    let mut ticks = trades(&symbols, 21);
    ticks.sort_by_key(|t| t.ts());
    // W1's first trade is keyed AMZN; every later one is keyed right.
    let w1 = Symbol::parse("W1").unwrap();
    let first_w1 = ticks.iter().position(|t| t.symbol() == w1).unwrap();
    let mut rng = SmallRng::seed_from_u64(5);
    let producer = producer(kafka.bootstrap_servers());
    for (i, t) in ticks.iter().enumerate() {
        let key = if i == first_w1 {
            Some("AMZN".to_owned())
        } else if t.symbol() == w1 && i > first_w1 {
            Some("W1".to_owned())
        } else {
            match rng.random_range(0..3) {
                0 => None,
                1 => Some(symbols[rng.random_range(0..symbols.len())].to_owned()),
                _ => Some(t.symbol().to_string()),
            }
        };
        publish_raw(&producer, key.as_deref(), &wire::encode_raw_tick(t));
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30)).unwrap();
    let client = db.client().await;
    assert_eq!(
        wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(120)).await,
        ticks.len() as i64,
        "every trade stored, whatever its key"
    );
    let late = app.metrics.late_ticks_dropped.get();
    app.shutdown().await;
    assert_stored_once(&client, &ticks).await;
    assert_eq!(late, 0, "no trade arrived late for its bars");
    assert_bars_and_realtime_exact(&client, &symbols, &ticks).await;
    assert!(dead_letters(kafka.bootstrap_servers()).is_empty());
}

#[actix_rt::test]
async fn a_trade_stamped_in_2200_is_dead_lettered_and_moves_no_bar() {
    let kafka = broker(3);
    let db = TestDatabase::create().await;
    let app = spawn_app(settings(kafka.bootstrap_servers(), Some(&db.url), "future")).await;
    let symbols = ["AAPL", "MSFT"];
    let ticks = trades(&symbols, 22);
    let half = ticks.len() / 2;
    let producer = producer(kafka.bootstrap_servers());
    publish(&producer, &ticks[..half]);
    // The year 2200, then an instant no calendar holds (epoch nanoseconds past year 9999).
    let future = Tick::new(
        Symbol::parse("AAPL").unwrap(),
        Timestamp::from_secs(7_258_118_400),
        123.0,
        1.0,
        Source::new("careless"),
    )
    .unwrap();
    publish_raw(&producer, Some("AAPL"), &wire::encode_raw_tick(&future));
    publish_raw(
        &producer,
        Some("MSFT"),
        br#"{"symbol":"MSFT","price":1.0,"timestamp":9.0e21,"volume":1}"#,
    );
    publish(&producer, &ticks[half..]);
    let client = db.client().await;
    assert_eq!(
        wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(90)).await,
        ticks.len() as i64
    );
    app.shutdown().await;
    assert_stored_once(&client, &ticks).await;
    assert_bars_and_realtime_exact(&client, &symbols, &ticks).await;
    let mut reasons: Vec<String> = dead_letters(kafka.bootstrap_servers())
        .into_iter()
        .map(|l| l.reason)
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["bad_timestamp", "future_timestamp"]);
}

#[actix_rt::test]
async fn a_1_mb_malformed_message_reaches_the_dlq_truncated_with_its_size_and_hash() {
    let kafka = broker(3);
    let db = TestDatabase::create().await;
    let app = spawn_app(settings(kafka.bootstrap_servers(), Some(&db.url), "huge")).await;
    let ticks = trades(&["AAPL"], 23);
    let producer = producer_with(
        kafka.bootstrap_servers(),
        &[("message.max.bytes", "2000000")],
    );
    publish(&producer, &ticks[..10]);
    let huge: Vec<u8> = std::iter::repeat_n(b"{\"symbol\":".as_slice(), 100_000)
        .flatten()
        .copied()
        .collect();
    publish_raw(&producer, Some("AAPL"), &huge);
    publish(&producer, &ticks[10..]);
    let client = db.client().await;
    assert_eq!(
        wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(90)).await,
        ticks.len() as i64
    );
    let letters = dead_letters(kafka.bootstrap_servers());
    app.shutdown().await;
    assert_eq!(letters.len(), 1, "the huge message's dead letter arrived");
    let letter = &letters[0];
    assert_eq!(letter.reason, "not_json");
    assert!(letter.truncated);
    assert_eq!(letter.payload_bytes, huge.len());
    use sha2::Digest;
    assert_eq!(
        letter.payload_sha256,
        format!("{:x}", sha2::Sha256::digest(&huge))
    );
    assert_stored_once(&client, &ticks).await;
}

#[actix_rt::test]
async fn restarts_on_a_new_embedded_broker_lose_nothing_after_a_shutdown_or_a_kill_9() {
    // The README's third command: DATABASE_URL with the embedded broker. Each start has a
    // new broker whose partitions begin at offset 0 again; the checkpoints' offsets belong
    // to the old one.
    let db = TestDatabase::create().await;
    let client = db.client().await;
    let symbols = ["AAPL", "MSFT", "BTC-USD"];
    let ticks = trades(&symbols, 24);
    let thirds: Vec<&[Tick]> = ticks.chunks(ticks.len().div_ceil(3)).collect();
    let mut stored = 0;
    for (i, part) in thirds.iter().enumerate() {
        let child = spawn_serve_on(None, &db.url, "embedded", &format!("tickflow-embedded-{i}"));
        let bootstrap = child.bootstrap().await;
        let producer = producer_with(&bootstrap, &[("partitioner", "murmur2_random")]);
        publish(&producer, part);
        stored += part.len();
        assert_eq!(
            wait_for_ticks(&client, stored as i64, Duration::from_secs(90)).await,
            stored as i64,
            "run {i}: the trades produced to the new broker are stored"
        );
        if i == 0 {
            assert!(child.terminate().success());
        } else {
            // Killed: its checkpoints may be older than what it stored.
            child.kill9();
        }
    }
    assert_stored_once(&client, &ticks).await;
    assert_bars_and_realtime_exact(&client, &symbols, &ticks).await;
}

#[actix_rt::test]
async fn a_burst_into_the_embedded_broker_during_a_database_outage_is_waited_out_not_dropped() {
    // The simulator feeds the embedded broker (a few MiB per partition) while PostgreSQL is
    // down: the pipeline falls behind, and the feed waits instead of the broker dropping
    // trades; every trade the feed published is stored once the database is back.
    let db = TestDatabase::create().await;
    let mut s = settings("", Some(&db.url), "burst");
    s.kafka_bootstrap = None;
    s.feed = tickflow::app::FeedKind::Sim;
    s.feed_symbols = ["AAPL", "MSFT", "GOOG"]
        .iter()
        .map(|x| Symbol::parse(x).unwrap())
        .collect();
    s.sim_rate = 20_000.0;
    let app = spawn_app(s).await;
    let client = db.client().await;
    // Trades flow (and offsets are committed) before the database goes away.
    assert_eq!(
        wait_for_count(
            &client,
            "SELECT least(count(*), 1000) FROM realtime_prices",
            1000,
            Duration::from_secs(60)
        )
        .await,
        1000,
        "the simulator's trades are not stored"
    );
    let (admin, conn) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let allow = |on: bool| format!("ALTER DATABASE {} ALLOW_CONNECTIONS {on}", db.name);
    admin.batch_execute(&allow(false)).await.unwrap();
    admin
        .execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", &[&db.name])
        .await
        .unwrap();
    drop(client);
    let start = std::time::Instant::now();
    while app.metrics.feed_waits.get() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the feed never had to wait (published {})",
            app.metrics.feed_published.get()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The feed is held back, and /health says why (before anything could be dropped).
    let mut health = awc::Client::new()
        .get(format!("http://{}/health", app.http_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 503);
    let body: serde_json::Value = health.json().await.unwrap();
    let problem = body["services"]["pipeline"]["problem"]
        .as_str()
        .unwrap_or_default();
    assert!(problem.contains("safe limit"), "{body}");
    // The outage goes on for a while with the feed held back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    admin.batch_execute(&allow(true)).await.unwrap();
    let metrics = app.metrics.clone();
    // A graceful stop takes in what the embedded broker still holds before it stops.
    app.shutdown().await;
    let published = metrics.feed_published.get() as i64;
    let client = db.client().await;
    let stored: i64 = client
        .query_one("SELECT count(*) FROM realtime_prices", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        metrics.raw_messages_lost.get(),
        0,
        "the broker dropped trades"
    );
    assert_eq!(stored, published, "every published trade is stored");
}

#[actix_rt::test]
async fn analytics_follow_revised_bars_so_bars_and_indicators_never_disagree() {
    // Late trades (within the allowed lateness) revise closed bars; the analytics of the
    // revised bar and of every bar after it are recomputed, so the stored analytics equal
    // the indicators of the stored bars fed once, in order, bit for bit.
    let kafka = broker(3);
    let db = TestDatabase::create().await;
    let app = spawn_app(settings(
        kafka.bootstrap_servers(),
        Some(&db.url),
        "revisions",
    ))
    .await;
    let base = trades(&["AAPL"], 26);
    let mut ticks = Vec::with_capacity(base.len() + base.len() / 40);
    for (i, t) in base.iter().enumerate() {
        ticks.push(*t);
        if i % 40 == 39 {
            // 45 s before the trade that just arrived: usually the previous minute's bar,
            // closed already and still open to revisions.
            let late = Tick::new(
                t.symbol(),
                t.ts().add_micros(-45_000_000),
                t.price() * 1.01,
                7.0,
                Source::new("late"),
            )
            .unwrap();
            ticks.push(late);
        }
    }
    let producer = producer(kafka.bootstrap_servers());
    publish(&producer, &ticks);
    let client = db.client().await;
    assert_eq!(
        wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(90)).await,
        ticks.len() as i64
    );
    let revised = app
        .metrics
        .bars_emitted
        .with_label_values(&["1m", "revised"])
        .get();
    app.shutdown().await;
    assert!(revised > 10, "late trades revised bars ({revised})");
    for minutes in [1, 5] {
        let interval = tickflow::domain::Interval::from_minutes(minutes as u32).unwrap();
        let bars = client
            .query(
                r#"SELECT "timestamp", open, high, low, close, volume, vwap FROM intraday_ohlcv
                   WHERE symbol = 'AAPL' AND interval_minutes = $1 ORDER BY "timestamp""#,
                &[&minutes],
            )
            .await
            .unwrap();
        let analytics: std::collections::HashMap<chrono::DateTime<chrono::Utc>, serde_json::Value> =
            client
                .query(
                    r#"SELECT "timestamp", indicators FROM intraday_analytics
                       WHERE symbol = 'AAPL' AND interval_minutes = $1"#,
                    &[&minutes],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
        let mut state = tickflow::domain::BarIndicators::new(
            interval,
            tickflow::domain::TradingCalendar::us_equity(),
        );
        for row in &bars {
            let start: chrono::DateTime<chrono::Utc> = row.get(0);
            let ohlcv = tickflow::domain::Ohlcv {
                open: row.get(1),
                high: row.get(2),
                low: row.get(3),
                close: row.get(4),
                volume: row.get(5),
            };
            let want = *state.update(Timestamp::from_datetime(&start), &ohlcv, row.get(6));
            let stored = analytics
                .get(&start)
                .unwrap_or_else(|| panic!("{minutes}m {start}: no analytics"));
            for (name, value) in want.iter() {
                assert_eq!(
                    stored[name].as_f64(),
                    value,
                    "{minutes}m {start} {name}: analytics disagree with the stored bars"
                );
            }
        }
    }
}

#[actix_rt::test]
async fn a_trade_stamped_minutes_ahead_within_the_skew_closes_no_present_bar() {
    // A live feed whose one trade is stamped four minutes ahead (inside the default 5-minute
    // skew): it is stored and counted in its own future bar, but the present minute's trades
    // after it are not late.
    let kafka = broker(3);
    let db = TestDatabase::create().await;
    let app = spawn_app(settings(kafka.bootstrap_servers(), Some(&db.url), "ahead")).await;
    let aapl = Symbol::parse("AAPL").unwrap();
    let now = Timestamp::from_datetime(&chrono::Utc::now());
    let mut ticks: Vec<Tick> = (0..1_000)
        .map(|i| {
            let at = now.add_micros(-50_000_000 + i * 45_000);
            Tick::new(
                aapl,
                at,
                100.0 + (i % 37) as f64 / 10.0,
                1.0 + (i % 5) as f64,
                Source::new("live"),
            )
            .unwrap()
        })
        .collect();
    let ahead = Tick::new(
        aapl,
        now.add_micros(240_000_000),
        250.0,
        3.0,
        Source::new("live"),
    )
    .unwrap();
    ticks.insert(500, ahead);
    let producer = producer(kafka.bootstrap_servers());
    publish(&producer, &ticks);
    let client = db.client().await;
    assert_eq!(
        wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(60)).await,
        ticks.len() as i64
    );
    let late = app.metrics.late_ticks_dropped.get();
    app.shutdown().await;
    assert_stored_once(&client, &ticks).await;
    assert_eq!(
        late, 0,
        "no present trade was made late by the one stamped ahead"
    );
    let sql = sql_intraday(&client, 1).await;
    for (key, bar) in stored_intraday(&client, 1).await {
        assert_eq!(
            sql.get(&key),
            Some(&bar),
            "{key:?}: stored bar differs from the SQL aggregation"
        );
    }
    assert!(dead_letters(kafka.bootstrap_servers()).is_empty());
}

#[actix_rt::test]
async fn a_trade_whose_identity_an_earlier_brokers_trade_holds_is_counted_not_silently_dropped() {
    // The embedded broker counts offsets from 0 at every start: after a restart with
    // DATABASE_URL, a trade can meet a stored one of the previous broker at the same symbol,
    // time and position. The table's key cannot hold both; the second is counted.
    use std::sync::Arc;
    use tickflow::output::{OutputBatch, Seq, TickRecord};
    let db = TestDatabase::create().await;
    let pg = tickflow::store::PgStore::connect(&db.url, 2).await.unwrap();
    let store = tickflow::store::Store::Postgres(pg);
    let sym = Symbol::parse("COLL").unwrap();
    let at = Timestamp::from_secs(1_710_000_000);
    let seq = Seq {
        partition: 4,
        offset: 0,
    };
    let batch = |price: f64| {
        let tick = Tick::new(sym, at, price, 100.0, Source::new("t")).unwrap();
        Arc::new(OutputBatch {
            ticks: vec![TickRecord::new(tick, seq, seq)],
            ..OutputBatch::default()
        })
    };
    store.register_epoch("first-broker").await.unwrap();
    assert_eq!(store.write(&[batch(10.0)]).await.unwrap().ticks_unstored, 0);
    // The same trade again (a replay on the same broker): stored once, nothing to count.
    assert_eq!(store.write(&[batch(10.0)]).await.unwrap().ticks_unstored, 0);
    store.register_epoch("second-broker").await.unwrap();
    assert_eq!(
        store.write(&[batch(20.0)]).await.unwrap().ticks_unstored,
        1,
        "another broker's trade at the same identity"
    );
}
