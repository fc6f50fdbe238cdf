//! TimescaleDB for real: the hypertables and their chunk intervals, compression settings,
//! every policy job with its period and its schedule, each job run and its work checked,
//! revised bars written into compressed chunks, and retention set from `serve --retain-*`.
//!
//! Every test but the first needs a server with TimescaleDB preloaded, so they are ignored
//! by a plain `cargo test`; `scripts/test` runs them with `--include-ignored` against a
//! throwaway TimescaleDB cluster, with `TICKFLOW_EXPECT_TIMESCALEDB=1`. Against a database
//! without TimescaleDB they fail and say so, never pass.
//!
//! Jobs are run in the foreground (`CALL run_job(id)`) and judged by what they did (rows
//! dropped, chunks compressed), not by their status: on PostgreSQL 15.20, TimescaleDB's
//! background workers end every job with "cannot drop portal" although its work is done.

use crate::helpers::{TestDatabase, admin_url, broker, spawn_tickflow};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tickflow::domain::{
    BAR_INDICATOR_NAMES, Bar, IndicatorValues, Interval, Symbol, Timestamp, TradingCalendar,
};
use tickflow::output::{AnalyticsRecord, BarRecord, OutputBatch};
use tickflow::store::{PgStore, Retention, Store, policy_schedule};

const DAY: u64 = 86_400;

/// Whether the runner promised a TimescaleDB server (`TICKFLOW_EXPECT_TIMESCALEDB=1`).
fn timescaledb_expected() -> bool {
    std::env::var("TICKFLOW_EXPECT_TIMESCALEDB").is_ok_and(|v| v == "1")
}

/// The server's TimescaleDB state: installed (available), preloaded.
async fn server_state(client: &tokio_postgres::Client) -> (bool, bool) {
    let row = client
        .query_one(
            r#"SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),
                      current_setting('shared_preload_libraries') ~ '(^|[\s,"])timescaledb([\s,"]|$)'"#,
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// A fresh database migrated by tickflow, which must have turned TimescaleDB on.
async fn timescale_database() -> (TestDatabase, PgStore) {
    let db = TestDatabase::create().await;
    let store = PgStore::connect(&db.url, 2)
        .await
        .expect("migrations apply");
    if !store.timescale() {
        let (available, preloaded) = server_state(&db.client().await).await;
        panic!(
            "this test needs TimescaleDB, and the server at {} does not provide it (installed: {available}, preloaded: {preloaded}). Run scripts/test, which builds TimescaleDB from TIMESCALEDB_SOURCE and starts a cluster with it, or point TEST_DATABASE_URL at a server with shared_preload_libraries = 'timescaledb'.",
            admin_url()
        );
    }
    (db, store)
}

/// Seconds of an interval column, for comparisons with Rust durations.
const SECS: &str = "EXTRACT(EPOCH FROM {})::float8";

fn secs(expr: &str) -> String {
    SECS.replace("{}", expr)
}

#[actix_rt::test]
async fn the_store_uses_timescaledb_exactly_when_the_server_preloads_it() {
    let db = TestDatabase::create().await;
    // With the extension installed but not preloaded (the runner's plain cluster, when it
    // built TimescaleDB), `CREATE EXTENSION` would end the session with FATAL: the
    // migrations must see that and stay on plain PostgreSQL.
    let store = PgStore::connect(&db.url, 2)
        .await
        .expect("migrations apply whatever the server's TimescaleDB state");
    let client = db.client().await;
    let (available, preloaded) = server_state(&client).await;
    assert_eq!(
        store.timescale(),
        available && preloaded,
        "TimescaleDB in use vs the server (installed: {available}, preloaded: {preloaded})"
    );
    if timescaledb_expected() {
        assert!(
            available && preloaded,
            "TICKFLOW_EXPECT_TIMESCALEDB=1 but the server at {} does not provide TimescaleDB (installed: {available}, preloaded: {preloaded})",
            admin_url()
        );
    }
    let created: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(created == 1, store.timescale(), "extension created");
}

#[actix_rt::test]
#[ignore = "needs a server with TimescaleDB preloaded: scripts/test runs it"]
async fn migrations_make_hypertables_with_their_chunk_intervals() {
    let (db, _store) = timescale_database().await;
    let client = db.client().await;
    let rows = client
        .query(
            &format!(
                "SELECT hypertable_name::text, column_name::text, {} FROM timescaledb_information.dimensions ORDER BY 1",
                secs("time_interval")
            ),
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, f64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    // TimescaleDB counts a year as 12 months of 30 days.
    let want = [
        ("daily_analytics", 360 * DAY),
        ("historical_ohlcv", 360 * DAY),
        ("intraday_analytics", 7 * DAY),
        ("intraday_ohlcv", 7 * DAY),
        // 10-minute chunks, so that a 1-hour retention drops what is an hour old.
        ("realtime_analytics", 600),
        ("realtime_prices", DAY),
    ];
    let want: Vec<(String, String, f64)> = want
        .iter()
        .map(|(t, s)| ((*t).to_owned(), "timestamp".to_owned(), *s as f64))
        .collect();
    assert_eq!(got, want, "hypertables, time columns and chunk intervals");
    for table in [
        "symbol_checkpoints",
        "backfill_coverage",
        "tickflow_migrations",
    ] {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = $1",
                &[&table],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table} stays a plain table");
    }
}

#[actix_rt::test]
#[ignore = "needs a server with TimescaleDB preloaded: scripts/test runs it"]
async fn bar_and_analytics_tables_are_compressed_segmented_by_series() {
    let (db, _store) = timescale_database().await;
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT hypertable_name::text, string_agg(attname::text, ',' ORDER BY segmentby_column_index)
             FROM timescaledb_information.compression_settings
             WHERE segmentby_column_index IS NOT NULL GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let want = [
        ("daily_analytics", "symbol"),
        ("historical_ohlcv", "symbol"),
        ("intraday_analytics", "symbol,interval_minutes"),
        ("intraday_ohlcv", "symbol,interval_minutes"),
    ]
    .map(|(t, s)| (t.to_owned(), s.to_owned()));
    assert_eq!(got, want, "segment-by columns");
    let uncompressed: Vec<String> = client
        .query(
            "SELECT hypertable_name::text FROM timescaledb_information.hypertables WHERE NOT compression_enabled ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        uncompressed,
        ["realtime_analytics", "realtime_prices"],
        "trades and tick metrics are only kept for days, never compressed"
    );
}

/// `(table, policy, period in seconds, schedule in seconds)` of tickflow's policy jobs.
async fn policy_jobs(client: &tokio_postgres::Client) -> Vec<(String, String, f64, f64)> {
    client
        .query(
            &format!(
                "SELECT hypertable_name::text, proc_name::text,
                        {}, {}
                 FROM timescaledb_information.jobs
                 WHERE proc_name IN ('policy_retention', 'policy_compression')
                 ORDER BY 2, 1",
                secs("(config ->> CASE proc_name WHEN 'policy_retention' THEN 'drop_after' ELSE 'compress_after' END)::interval"),
                secs("schedule_interval")
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// The jobs tickflow should have: the four compressions and a retention per `retention`
/// table, each scheduled by [`policy_schedule`].
fn expected_jobs(retention: &Retention) -> Vec<(String, String, f64, f64)> {
    let compression = [
        ("daily_analytics", 30 * DAY),
        ("historical_ohlcv", 7 * DAY),
        ("intraday_analytics", 7 * DAY),
        ("intraday_ohlcv", 3 * DAY),
    ]
    .map(|(t, s)| (t, "policy_compression", Duration::from_secs(s)));
    let mut retained: Vec<(&str, Duration)> = retention.tables().to_vec();
    retained.sort();
    let retention = retained
        .into_iter()
        .map(|(t, p)| (t, "policy_retention", p));
    compression
        .into_iter()
        .chain(retention)
        .map(|(table, proc, period)| {
            (
                table.to_owned(),
                proc.to_owned(),
                period.as_secs_f64(),
                policy_schedule(period).as_secs_f64(),
            )
        })
        .collect()
}

#[actix_rt::test]
#[ignore = "needs a server with TimescaleDB preloaded: scripts/test runs it"]
async fn every_policy_job_has_its_period_and_a_schedule_that_fits_it() {
    let (db, _store) = timescale_database().await;
    let client = db.client().await;
    let jobs = policy_jobs(&client).await;
    assert_eq!(jobs, expected_jobs(&Retention::default()), "policy jobs");
    let (_, _, _, realtime_schedule) = jobs
        .iter()
        .find(|(t, p, _, _)| t == "realtime_analytics" && p == "policy_retention")
        .unwrap();
    assert!(
        *realtime_schedule <= 600.0,
        "the 1-hour realtime retention must run every few minutes, not daily"
    );
}

#[actix_rt::test]
#[ignore = "needs a server with TimescaleDB preloaded: scripts/test runs it"]
async fn serve_sets_the_retention_policies_from_its_retain_flags() {
    let (db, _store) = timescale_database().await;
    let kafka = broker(3);
    let child = spawn_tickflow(
        &[
            "serve",
            "--feed",
            "none",
            "--http-addr",
            "127.0.0.1:0",
            "--partitions",
            "3",
            "--retain-ticks",
            "3d",
            "--retain-realtime-analytics",
            "30m",
            "--retain-intraday",
            "400d",
            "--retain-intraday-analytics",
            "45d",
        ],
        &[
            ("KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap_servers()),
            ("DATABASE_URL", &db.url),
        ],
        &format!("tickflow-retain-{}", db.name),
    );
    let log_path = child.log.clone();
    let want = expected_jobs(&Retention {
        realtime_prices: Duration::from_secs(3 * DAY),
        realtime_analytics: Duration::from_secs(30 * 60),
        intraday_ohlcv: Duration::from_secs(400 * DAY),
        intraday_analytics: Duration::from_secs(45 * DAY),
    });
    let client = db.client().await;
    let start = Instant::now();
    let mut jobs = policy_jobs(&client).await;
    while jobs != want && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        jobs = policy_jobs(&client).await;
    }
    let status = child.terminate();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(jobs, want, "policies after serve started; its log:\n{log}");
    assert!(status.success(), "serve exits cleanly; its log:\n{log}");
    assert!(
        !log.contains("retention failed"),
        "serve reported a retention failure:\n{log}"
    );
    let _ = std::fs::remove_file(log_path);
}

/// Whether the chunk of `table` holding `at` (an SQL expression) is compressed.
async fn chunk_compressed(client: &tokio_postgres::Client, table: &str, at: &str) -> bool {
    let sql = format!(
        "SELECT c.is_compressed FROM timescaledb_information.chunks c
         WHERE c.hypertable_name = $1 AND ({at})::timestamptz >= c.range_start AND ({at})::timestamptz < c.range_end"
    );
    client
        .query_one(&sql, &[&table])
        .await
        .unwrap_or_else(|e| panic!("the chunk of {table} at {at}: {e}"))
        .get(0)
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// How long a policy job that started in the background may take to finish.
const JOB_SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Takes tickflow's policy jobs off the background scheduler and waits for any run in
/// flight, so that what a test then sees is what it did. (New policies are scheduled at
/// once: they run in the background right after the migrations.)
async fn pause_policy_jobs(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "SELECT alter_job(job_id, scheduled => FALSE) FROM timescaledb_information.jobs
             WHERE proc_name IN ('policy_retention', 'policy_compression')",
        )
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let running = count(
            client,
            "SELECT count(*) FROM timescaledb_information.job_stats WHERE job_status = 'Running'",
        )
        .await;
        if running == 0 {
            return;
        }
        assert!(
            start.elapsed() < JOB_SETTLE_TIMEOUT,
            "{running} background job(s) still running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
#[ignore = "needs a server with TimescaleDB preloaded: scripts/test runs it"]
async fn each_policy_job_run_drops_or_compresses_what_its_period_says() {
    let (db, _store) = timescale_database().await;
    let client = db.client().await;
    pause_policy_jobs(&client).await;
    // For each table: a row its retention drops (or its compression compresses), and a
    // recent one every job must leave as it is.
    client
        .batch_execute(
            r#"
            INSERT INTO realtime_prices (symbol, "timestamp", seq, price, volume, source) VALUES
              ('OLD', now() - INTERVAL '10 days', 1, 10, 1, 'test'),
              ('NEW', now() - INTERVAL '1 hour', 2, 10, 1, 'test');
            INSERT INTO realtime_analytics (symbol, "timestamp", seq, price) VALUES
              ('OLD', now() - INTERVAL '3 hours', 1, 10),
              ('NEW', now() - INTERVAL '1 minute', 2, 10);
            INSERT INTO intraday_ohlcv (symbol, "timestamp", interval_minutes, open, high, low, close, volume, num_samples, source, bar_end) VALUES
              ('EXPIRED', now() - INTERVAL '800 days', 1, 1, 1, 1, 1, 1, 1, 'test', now() - INTERVAL '800 days'),
              ('OLD', now() - INTERVAL '20 days', 1, 2, 2, 2, 2.5, 2, 2, 'test', now() - INTERVAL '20 days'),
              ('NEW', now() - INTERVAL '1 hour', 1, 3, 3, 3, 3, 3, 3, 'test', now() - INTERVAL '1 hour');
            INSERT INTO intraday_analytics (symbol, "timestamp", interval_minutes, price, indicators) VALUES
              ('EXPIRED', now() - INTERVAL '100 days', 1, 1, '{}'),
              ('OLD', now() - INTERVAL '20 days', 1, 2, '{"rsi_14": 55.5}'),
              ('NEW', now() - INTERVAL '1 hour', 1, 3, '{}');
            INSERT INTO historical_ohlcv (symbol, "timestamp", open, high, low, close, volume, num_samples, source, session_start, session_end) VALUES
              ('OLD', current_date - 400, 4, 4, 4, 4.5, 4, 4, 'test', now(), now()),
              ('NEW', current_date, 5, 5, 5, 5, 5, 5, 'test', now(), now());
            INSERT INTO daily_analytics (symbol, "timestamp", price, indicators) VALUES
              ('OLD', current_date - 400, 6.5, '{"sma_20": 6}'),
              ('NEW', current_date, 7, '{}');
            "#,
        )
        .await
        .unwrap();

    let jobs: Vec<(i32, String, String)> = client
        .query(
            "SELECT job_id, proc_name::text, hypertable_name::text FROM timescaledb_information.jobs
             WHERE proc_name IN ('policy_retention', 'policy_compression') ORDER BY job_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(jobs.len(), 8, "four retention and four compression jobs");
    for (id, proc, table) in &jobs {
        client
            .execute("CALL run_job($1)", &[id])
            .await
            .unwrap_or_else(|e| panic!("run_job({id}) ({proc} on {table}): {e}"));
    }

    let left = |table: &str| format!("SELECT count(*) FROM {table} WHERE symbol = 'OLD'");
    let expired = |table: &str| format!("SELECT count(*) FROM {table} WHERE symbol = 'EXPIRED'");
    let recent = |table: &str| format!("SELECT count(*) FROM {table} WHERE symbol = 'NEW'");
    // Retention: past the period, gone; recent rows kept.
    assert_eq!(
        count(&client, &left("realtime_prices")).await,
        0,
        "5-day tick retention"
    );
    assert_eq!(
        count(&client, &left("realtime_analytics")).await,
        0,
        "1-hour realtime retention"
    );
    assert_eq!(
        count(&client, &expired("intraday_ohlcv")).await,
        0,
        "730-day bar retention"
    );
    assert_eq!(
        count(&client, &expired("intraday_analytics")).await,
        0,
        "90-day analytics retention"
    );
    for table in [
        "realtime_prices",
        "realtime_analytics",
        "intraday_ohlcv",
        "intraday_analytics",
        "historical_ohlcv",
        "daily_analytics",
    ] {
        assert_eq!(
            count(&client, &recent(table)).await,
            1,
            "{table}: the recent row is kept"
        );
    }
    // Compression: chunks past the period compressed, their rows still read back as written;
    // the current chunk left alone.
    for (table, old, new) in [
        (
            "intraday_ohlcv",
            "now() - INTERVAL '20 days'",
            "now() - INTERVAL '1 hour'",
        ),
        (
            "intraday_analytics",
            "now() - INTERVAL '20 days'",
            "now() - INTERVAL '1 hour'",
        ),
        ("historical_ohlcv", "current_date - 400", "current_date"),
        ("daily_analytics", "current_date - 400", "current_date"),
    ] {
        assert!(
            chunk_compressed(&client, table, old).await,
            "{table}: the old chunk is compressed"
        );
        assert!(
            !chunk_compressed(&client, table, new).await,
            "{table}: the current chunk is not"
        );
    }
    let values: (f64, f64, f64, f64) = {
        let r = client
            .query_one(
                r#"SELECT (SELECT close FROM intraday_ohlcv WHERE symbol = 'OLD'),
                          (SELECT (indicators ->> 'rsi_14')::float8 FROM intraday_analytics WHERE symbol = 'OLD'),
                          (SELECT close FROM historical_ohlcv WHERE symbol = 'OLD'),
                          (SELECT price FROM daily_analytics WHERE symbol = 'OLD')"#,
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    assert_eq!(values, (2.5, 55.5, 4.5, 6.5), "compressed rows read back");
}

/// A 1-minute bar and a daily bar of AAPL on Friday 2024-03-08, with `close`, `volume` and
/// `revision`, and their (empty) analytics at `price`.
fn batch(close: f64, volume: f64, revision: u32, price: f64) -> OutputBatch {
    let symbol = Symbol::parse("AAPL").unwrap();
    let minute = Timestamp::from_secs(1_709_908_200); // 14:30 UTC, the session's open
    let session = TradingCalendar::us_equity()
        .session_at(minute)
        .expect("a trading day");
    let bar = |interval: Interval, start: Timestamp, end: Timestamp| Bar {
        symbol,
        interval,
        start,
        end,
        open: 100.0,
        high: close.max(100.0),
        low: close.min(100.0),
        close,
        volume,
        trades: 3,
        price_volume: close * volume,
        open_time: start,
        close_time: start,
        revision,
        ties: tickflow::domain::bar::TieBreak::default(),
    };
    let bars = [
        bar(Interval::M1, minute, Timestamp::from_secs(1_709_908_260)),
        bar(Interval::D1, session.start, session.end),
    ];
    OutputBatch {
        bars: bars.iter().map(|b| BarRecord { bar: *b }).collect(),
        analytics: bars
            .iter()
            .map(|b| AnalyticsRecord {
                symbol,
                interval: b.interval,
                start: b.start,
                end: b.end,
                price,
                values: IndicatorValues::empty(&BAR_INDICATOR_NAMES),
                trades: b.trades,
            })
            .collect(),
        ..OutputBatch::default()
    }
}

#[actix_rt::test]
#[ignore = "needs a server with TimescaleDB preloaded: scripts/test runs it"]
async fn revised_bars_and_their_analytics_are_written_into_compressed_chunks() {
    let (db, store) = timescale_database().await;
    let client = db.client().await;
    // Before the first write: a background compression of 2024's chunks racing this test's
    // own would leave them in whatever state the job's end left them.
    pause_policy_jobs(&client).await;
    let store = Store::Postgres(store);
    store
        .write(&[Arc::new(batch(101.0, 300.0, 0, 101.0))])
        .await
        .expect("first write");
    for table in [
        "intraday_ohlcv",
        "historical_ohlcv",
        "intraday_analytics",
        "daily_analytics",
    ] {
        client
            .batch_execute(&format!(
                "SELECT compress_chunk(c, if_not_compressed => TRUE) FROM show_chunks('{table}') c"
            ))
            .await
            .unwrap_or_else(|e| panic!("compress {table}: {e}"));
        let compressed = count(
            &client,
            &format!(
                "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = '{table}' AND is_compressed"
            ),
        )
        .await;
        assert_eq!(compressed, 1, "{table}: its one chunk is compressed");
    }

    // A revision (a late trade) lands in the compressed chunks through the same upserts.
    store
        .write(&[Arc::new(batch(102.5, 450.0, 1, 102.5))])
        .await
        .expect("a revision into compressed chunks");
    // An older revision (a redelivery) changes nothing.
    store
        .write(&[Arc::new(batch(99.0, 1.0, 0, 99.0))])
        .await
        .expect("a stale revision into compressed chunks");

    let row = client
        .query_one(
            r#"SELECT (SELECT close FROM intraday_ohlcv), (SELECT volume FROM intraday_ohlcv),
                      (SELECT revision FROM intraday_ohlcv), (SELECT count(*) FROM intraday_ohlcv),
                      (SELECT close FROM historical_ohlcv), (SELECT revision FROM historical_ohlcv),
                      (SELECT count(*) FROM historical_ohlcv),
                      (SELECT price FROM intraday_analytics), (SELECT price FROM daily_analytics)"#,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, f64>(0),
            row.get::<_, f64>(1),
            row.get::<_, i32>(2),
            row.get::<_, i64>(3)
        ),
        (102.5, 450.0, 1, 1),
        "the 1-minute bar is the revision, stored once"
    );
    assert_eq!(
        (
            row.get::<_, f64>(4),
            row.get::<_, i32>(5),
            row.get::<_, i64>(6)
        ),
        (102.5, 1, 1),
        "the daily bar is the revision, stored once"
    );
    // Analytics are replaced by the latest write (they follow the bars the pipeline sends).
    assert_eq!(
        (row.get::<_, f64>(7), row.get::<_, f64>(8)),
        (99.0, 99.0),
        "analytics upserted into compressed chunks"
    );
}
