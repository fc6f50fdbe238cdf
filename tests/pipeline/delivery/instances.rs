//! Several instances in one group: one killed, one paused past its session, trades
//! forwarded between them; and headers a producer forged to look like a forward.

use super::*;

#[actix_rt::test]
async fn a_killed_instance_s_quiet_symbols_close_their_bars_on_the_survivor_and_nothing_is_lost() {
    // A broker in a process of its own, two `tickflow serve` in one group. Quiet symbols
    // trade only before one instance is killed with SIGKILL; whoever owns them then must
    // close their last bars on time (they get no further trade), and after a restart the
    // database equals the SQL aggregation, every trade stored once.
    let (broker, bootstrap) = spawn_broker_process(3, "tickflow-failover-broker").await;
    let db = TestDatabase::create().await;
    let client = db.client().await;
    let mut a = spawn_serve_on(Some(&bootstrap), &db.url, "failover", "tickflow-failover-a");
    let c = spawn_serve_on(Some(&bootstrap), &db.url, "failover", "tickflow-failover-c");
    for child in [&a, &c] {
        child
            .wait_for_line("partitions assigned", Duration::from_secs(60))
            .await;
    }
    let quiet = ["Q1", "Q2", "Q3", "Q4", "Q5", "Q6"];
    let active = ["AAPL", "MSFT", "BTC-USD"];
    // Quiet symbols trade 13:00–13:10:30 on Monday 2024-03-11: their 13:10 bar closes when
    // event time passes 13:11:02, that is 32 s of quiet after their last trade.
    let quiet_ticks: Vec<Tick> = quiet
        .iter()
        .flat_map(|s| {
            let sym = Symbol::parse(s).unwrap();
            (0..=21).map(move |i| {
                Tick::new(
                    sym,
                    Timestamp::from_secs(1_710_162_000 + i * 30),
                    100.0 + i as f64,
                    1.0,
                    Source::new("test"),
                )
                .unwrap()
            })
        })
        .collect();
    let active_ticks = trades(&active, 25);
    let (first, second) = active_ticks.split_at(active_ticks.len() / 2);
    let producer = producer_with(&bootstrap, &[("partitioner", "murmur2_random")]);
    publish(&producer, &quiet_ticks);
    publish(&producer, first);
    let sent = (quiet_ticks.len() + first.len()) as i64;
    assert_eq!(
        wait_for_ticks(&client, sent, Duration::from_secs(90)).await,
        sent
    );
    // Killed within the quiet symbols' 32 s: some of their 13:10 bars are still open on it.
    a.kill9();
    publish(&producer, second);
    let all = sent + second.len() as i64;
    assert_eq!(
        wait_for_ticks(&client, all, Duration::from_secs(120)).await,
        all,
        "the survivor takes over the killed instance's partitions"
    );
    let closed = wait_for_count(
        &client,
        "SELECT count(*) FROM intraday_ohlcv WHERE interval_minutes = 1 AND symbol LIKE 'Q_' AND \"timestamp\" = '2024-03-11 13:10:00+00'",
        quiet.len() as i64,
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(
        closed,
        quiet.len() as i64,
        "every quiet symbol's last bar closes without a next trade"
    );
    // The killed instance comes back and rejoins the group.
    a = spawn_serve_on(
        Some(&bootstrap),
        &db.url,
        "failover",
        "tickflow-failover-a2",
    );
    a.wait_for_line("partitions assigned", Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(a.terminate().success());
    assert!(c.terminate().success());
    assert!(broker.terminate().success());
    let mut ticks = quiet_ticks;
    ticks.extend_from_slice(&active_ticks);
    assert_stored_once(&client, &ticks).await;
    let mut symbols: Vec<&str> = quiet.to_vec();
    symbols.extend(active);
    // The quiet symbols' 5-minute and hour bars need minutes more of quiet to close.
    let still_open: Vec<(&str, tickflow::domain::Interval, &str)> = quiet
        .iter()
        .flat_map(|q| {
            [
                (*q, tickflow::domain::Interval::M5, "2024-03-11 13:10:00+00"),
                (*q, tickflow::domain::Interval::H1, "2024-03-11 13:00:00+00"),
            ]
        })
        .collect();
    assert_bars_exact_except(&client, &symbols, &ticks, &still_open).await;
}

#[actix_rt::test]
async fn a_paused_instance_cannot_overwrite_the_newer_checkpoint_of_the_one_that_took_over() {
    // An instance paused (SIGSTOP, a long GC-like stall) past its session timeout loses its
    // partitions; the new owner checkpoints further. When the old one wakes, its checkpoint
    // (behind on the same broker's log) must not replace the newer one — a restart would
    // resume from it and skip the trades in between. Both stores keep the same rule.
    use std::sync::Arc;
    use tickflow::output::{Checkpoint, OutputBatch, Seq};
    let db = TestDatabase::create().await;
    let pg = tickflow::store::Store::Postgres(
        tickflow::store::PgStore::connect(&db.url, 2).await.unwrap(),
    );
    let memory = tickflow::store::Store::Memory(tickflow::store::MemoryStore::new(
        tickflow::store::MemoryLimits::default(),
    ));
    let aapl = Symbol::parse("AAPL").unwrap();
    let checkpoint = |epoch: &str, applied: &[(i32, i64)], state: &[u8]| {
        Arc::new(OutputBatch {
            checkpoints: vec![Checkpoint {
                symbol: aapl,
                seq: Seq {
                    partition: 0,
                    offset: applied.first().map_or(-1, |a| a.1),
                },
                state: state.to_vec(),
                epoch: epoch.into(),
                applied: applied.to_vec(),
            }],
            ..OutputBatch::default()
        })
    };
    for store in [&pg, &memory] {
        let what = store.mode();
        let stats = store
            .write(&[checkpoint("e1", &[(0, 500), (2, 40)], b"new owner")])
            .await
            .unwrap();
        assert_eq!(
            (stats.checkpoints, stats.checkpoints_fenced),
            (1, 0),
            "{what}"
        );
        let stats = store
            .write(&[checkpoint("e1", &[(0, 300), (2, 40)], b"zombie")])
            .await
            .unwrap();
        assert_eq!(
            (stats.checkpoints, stats.checkpoints_fenced),
            (0, 1),
            "{what}"
        );
        let stored = store.load_checkpoint(aapl).await.unwrap().unwrap();
        assert_eq!(stored.state, b"new owner", "{what}");
        assert_eq!(stored.applied, [(0, 500), (2, 40)], "{what}");
        // Further on the same log, or on another broker (a restart on a new embedded
        // broker): written.
        store
            .write(&[checkpoint("e1", &[(0, 501), (2, 40)], b"newer")])
            .await
            .unwrap();
        assert_eq!(
            store.load_checkpoint(aapl).await.unwrap().unwrap().state,
            b"newer",
            "{what}"
        );
        store
            .write(&[checkpoint("e2", &[], b"other broker")])
            .await
            .unwrap();
        let stored = store.load_checkpoint(aapl).await.unwrap().unwrap();
        assert_eq!(
            (stored.state.as_slice(), stored.epoch.as_str()),
            (&b"other broker"[..], "e2"),
            "{what}"
        );
    }
    // Its bars and their analytics too: the paused instance's idle clock, on waking, closes
    // the open bar with the trades it had seen; the new owner closed it with all of them.
    use tickflow::domain::Bar;
    use tickflow::domain::indicators::IndicatorValues;
    use tickflow::output::{AnalyticsRecord, BarRecord};
    let start = Timestamp::from_secs(1_710_000_000);
    let end = start.add_micros(60_000_000);
    let first = Tick::new(aapl, start, 100.0, 1.0, Source::new("t")).unwrap();
    let bar = |trades: u64, close: f64| {
        let mut b = Bar::from_tick(&first, None, tickflow::domain::Interval::M1, start, end);
        (b.trades, b.close, b.volume) = (trades, close, trades as f64);
        b
    };
    let batch = |b: Bar| {
        Arc::new(OutputBatch {
            bars: vec![BarRecord { bar: b }],
            analytics: vec![AnalyticsRecord {
                symbol: aapl,
                interval: b.interval,
                start,
                end,
                price: b.close,
                values: IndicatorValues::empty(&tickflow::domain::BAR_INDICATOR_NAMES),
                trades: b.trades,
            }],
            ..OutputBatch::default()
        })
    };
    pg.write(&[batch(bar(598, 100.64))]).await.unwrap();
    pg.write(&[batch(bar(150, 100.04))]).await.unwrap();
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT b.num_samples, b.close, a.price FROM intraday_ohlcv b JOIN intraday_analytics a USING (symbol, interval_minutes, \"timestamp\")",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, f64>(1),
            row.get::<_, f64>(2)
        ),
        (598, 100.64, 100.64),
        "the bar with every trade, and its analytics, stay"
    );
    // A revision (one more trade) and a replay of the same bar still land.
    pg.write(&[batch(bar(599, 100.70))]).await.unwrap();
    pg.write(&[batch(bar(599, 100.70))]).await.unwrap();
    let row = client
        .query_one("SELECT num_samples FROM intraday_ohlcv", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 599);
}

#[actix_rt::test]
async fn an_origin_header_tickflow_did_not_write_is_ignored_and_counted() {
    // A producer that sets tickflow's forwarding header itself (copied from another
    // cluster, or the old two-part form) must not make its trade — or any later one — look
    // like a redelivery of an earlier offset.
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::BaseRecord;
    let kafka = broker(3);
    let db = TestDatabase::create().await;
    let app = spawn_app(settings(kafka.bootstrap_servers(), Some(&db.url), "forged")).await;
    let ticks = trades(&["W1"], 24);
    let producer = producer(kafka.bootstrap_servers());
    // The epoch is public (topic tickflow.epoch): headers naming it, with or without a MAC,
    // for every partition, with an offset far ahead — the strongest forgery a producer can
    // make without the deployment's key — then older forms and garbage.
    let epoch = app.epoch.id.clone();
    let mut forged: Vec<String> = (0..3)
        .flat_map(|p| {
            [
                format!("{epoch}:{p}:999999999999"),
                format!("{epoch}:{p}:999999999999:00112233445566778899aabbccddeeff"),
            ]
        })
        .collect();
    forged.extend(["0:1000000", "someepoch:1:1000000:00", "garbage"].map(String::from));
    for (i, t) in ticks.iter().enumerate() {
        let payload = wire::encode_raw_tick(t);
        let mut record = BaseRecord::<str, [u8]>::to(topics::RAW)
            .payload(&payload)
            .key("W1");
        if let Some(value) = forged.get(i).map(String::as_str) {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: "tickflow-origin",
                value: Some(value.as_bytes()),
            }));
        }
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30)).unwrap();
    let client = db.client().await;
    assert_eq!(
        wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(90)).await,
        ticks.len() as i64,
        "every trade stored"
    );
    let ignored = app.metrics.origin_headers_ignored.get();
    app.shutdown().await;
    assert_eq!(ignored, forged.len() as u64);
    assert_stored_once(&client, &ticks).await;
    assert_bars_and_realtime_exact(&client, &["W1"], &ticks).await;
}

#[actix_rt::test]
async fn trades_forwarded_between_two_instances_carry_a_signature_they_both_accept() {
    // Unkeyed trades on two instances: each forwards the trades whose home the other reads,
    // signed with the deployment's key (kept in the shared database); the receiver accepts
    // the signature, so a forwarded trade keeps its identity and is stored exactly once.
    let kafka = broker(4);
    let db = TestDatabase::create().await;
    let symbols = ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA", "NVDA"];
    let mut ticks = trades(&symbols, 25);
    ticks.sort_by_key(|t| t.ts());
    let a = spawn_app(settings(kafka.bootstrap_servers(), Some(&db.url), "signed")).await;
    let b = RemoteApp::spawn(settings(kafka.bootstrap_servers(), Some(&db.url), "signed")).await;
    let producer = producer(kafka.bootstrap_servers());
    let mut slices = ticks.chunks(ticks.len().div_ceil(80));
    for slice in slices.by_ref() {
        for t in slice {
            publish_raw(&producer, None, &wire::encode_raw_tick(t));
        }
        rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30)).unwrap();
        if a.metrics.ticks_consumed.get() > 0 && b.metrics.ticks_consumed.get() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for slice in slices {
        for t in slice {
            publish_raw(&producer, None, &wire::encode_raw_tick(t));
        }
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30)).unwrap();
    let client = db.client().await;
    let stored = wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(120)).await;
    let forwarded = a.metrics.ticks_forwarded.get() + b.metrics.ticks_forwarded.get();
    let ignored = a.metrics.origin_headers_ignored.get() + b.metrics.origin_headers_ignored.get();
    b.shutdown().await;
    a.shutdown().await;
    assert_eq!(stored, ticks.len() as i64);
    assert!(
        forwarded > 0,
        "the instances forwarded trades to each other"
    );
    assert_eq!(ignored, 0, "every forwarded trade's signature was accepted");
    assert_stored_once(&client, &ticks).await;
}
