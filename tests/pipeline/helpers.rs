//! Shared test plumbing: a fresh database per test, a broker per test, an app per test,
//! tick generation and SQL snapshots.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message};
use std::time::{Duration, Instant};
use tickflow::actors::DbWriterSettings;
use tickflow::app::{App, FeedKind, Settings};
use tickflow::domain::{
    BarBuilderConfig, Interval, Source, Symbol, Tick, Timestamp, TradingCalendar,
};
use tickflow::kafka::topics::{self, TopicSettings};
use tickflow::kafka::{EmbeddedKafka, wire};
use tickflow::pipeline::SymbolSettings;
use tickflow::store::Retention;
use tokio_postgres::NoTls;

/// The server tests create their databases on (`TEST_DATABASE_URL`).
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for one test and dropped after it (even when the test fails).
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// Creates `tickflow_test_<random>`; panics loudly when PostgreSQL is not there.
    pub async fn create() -> Self {
        let admin = admin_url();
        let (client, conn) = tokio_postgres::connect(&admin, NoTls).await.unwrap_or_else(|e| {
            panic!("PostgreSQL is required for the pipeline tests and is not reachable at {admin}: {e}. Start it or set TEST_DATABASE_URL.")
        });
        tokio::spawn(conn);
        let name = format!(
            "tickflow_test_{}",
            rand::random::<u64>() % 1_000_000_000_000
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE");
        let mut config: tokio_postgres::Config = admin.parse().unwrap();
        config.dbname(&name);
        let url = replace_dbname(&admin, &name);
        Self { name, url }
    }

    /// A client of this database.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("connect to test database");
        tokio::spawn(conn);
        client
    }
}

fn replace_dbname(url: &str, name: &str) -> String {
    let (base, _) = url
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL ends with /dbname");
    format!("{base}/{name}")
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (admin_url(), self.name.clone());
        // Drop runs outside any runtime guarantee: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) = tokio_postgres::connect(&admin, NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A broker for one test, with tickflow's topics.
pub fn broker(partitions: i32) -> EmbeddedKafka {
    let topics = topic_settings(partitions)
        .all()
        .iter()
        .map(|t| (t.name.to_owned(), t.partitions))
        .collect();
    EmbeddedKafka::start(1, topics).expect("embedded Kafka")
}

/// The topics of a test broker: `partitions` each, a day of retention.
pub fn topic_settings(partitions: i32) -> TopicSettings {
    TopicSettings {
        partitions,
        replication: 1,
        raw_retention: Duration::from_secs(86_400),
        output_retention: Duration::from_secs(86_400),
        dlq_retention: Duration::from_secs(86_400),
    }
}

/// Settings for an app on `bootstrap` and `database_url` (`serve`'s defaults otherwise),
/// with a quick commit and flush cadence, no feed, and nothing of the 2024 test data expired.
pub fn settings(bootstrap: &str, database_url: Option<&str>, group: &str) -> Settings {
    let keep = Duration::from_secs(100 * 365 * 86_400);
    Settings {
        kafka_bootstrap: Some(bootstrap.to_owned()),
        database_url: database_url.map(str::to_owned),
        db_pool_size: 4,
        http_addr: "127.0.0.1:0".into(),
        feed: FeedKind::None,
        feed_symbols: vec![],
        symbols: symbol_settings(),
        topics: topic_settings(3),
        retention: Retention {
            realtime_prices: keep,
            realtime_analytics: keep,
            intraday_ohlcv: keep,
            intraday_analytics: keep,
        },
        db_writer: DbWriterSettings {
            flush_rows: 2000,
            flush_interval: Duration::from_millis(50),
        },
        group: group.to_owned(),
        max_batch: 2000,
        commit_interval: Duration::from_millis(300),
        workers: 2,
        ..Settings::default()
    }
}

/// 1m, 5m, 1h and 1d bars; BTC-USD on the UTC calendar, the rest US equities.
pub fn symbol_settings() -> SymbolSettings {
    SymbolSettings {
        intervals: vec![Interval::M1, Interval::M5, Interval::H1, Interval::D1],
        default_calendar: TradingCalendar::us_equity(),
        calendars: vec![(Symbol::parse("BTC-USD").unwrap(), TradingCalendar::Utc24h)],
        bars: BarBuilderConfig::default(),
        realtime_every: REALTIME_EVERY,
    }
}

/// The realtime publishing period the tests run with (`serve`'s default).
pub const REALTIME_EVERY: Duration = Duration::from_secs(1);

/// How many realtime rows `ticks` (in publishing order) must leave: per symbol, the first
/// trade, then each trade at least [`REALTIME_EVERY`] of trade time after the last one kept.
pub fn expected_realtime_rows(ticks: &[Tick]) -> i64 {
    let every = REALTIME_EVERY.as_micros() as i64;
    let mut last: std::collections::HashMap<Symbol, i64> = std::collections::HashMap::new();
    let kept = ticks.iter().filter(|t| {
        let ts = t.ts().micros();
        match last.get(&t.symbol()) {
            Some(&l) if ts < l + every => false,
            _ => {
                last.insert(t.symbol(), ts);
                true
            }
        }
    });
    kept.count() as i64
}

/// Asserts the stored realtime rows are the ones [`expected_realtime_rows`] counts: as many,
/// and no two of one symbol closer than [`REALTIME_EVERY`] in trade time.
pub async fn assert_realtime_rows(client: &tokio_postgres::Client, ticks: &[Tick]) {
    let rows: i64 = client
        .query_one("SELECT count(*) FROM realtime_analytics", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, expected_realtime_rows(ticks), "realtime rows");
    assert!(rows < ticks.len() as i64, "the throttle kept every trade");
    let close: i64 = client
        .query_one(
            r#"SELECT count(*) FROM (
                 SELECT "timestamp" - lag("timestamp") OVER (PARTITION BY symbol ORDER BY "timestamp", seq) AS gap
                 FROM realtime_analytics) g
               WHERE gap < make_interval(secs => $1)"#,
            &[&REALTIME_EVERY.as_secs_f64()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(close, 0, "realtime rows closer than the period");
}

/// Starts an app.
pub async fn spawn_app(settings: Settings) -> App {
    App::build(settings).await.expect("the app starts")
}

/// An app on a thread of its own, with its own actix system: another instance, as another
/// process would run it. (Two members of one consumer group polled from one thread can
/// wait on each other: leaving the group blocks until the group has rebalanced.)
pub struct RemoteApp {
    /// The instance's metrics (shared counters).
    pub metrics: tickflow::metrics::Metrics,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl RemoteApp {
    /// Starts an app with `settings` on a new thread; returns once it runs.
    pub async fn spawn(settings: Settings) -> Self {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let app = spawn_app(settings).await;
                let _ = started_tx.send(app.metrics.clone());
                let _ = stop_rx.await;
                app.shutdown().await;
            });
        });
        let metrics = started_rx.await.expect("the remote app starts");
        Self {
            metrics,
            stop,
            thread,
        }
    }

    /// Shuts the app down (checkpoint, commit, leave the group) and waits for its thread.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .unwrap()
            .expect("the remote app's thread did not panic");
    }
}

/// Deterministic trades for `symbols`: Friday 2024-03-08 (EST) 13:00–22:00 UTC and Monday
/// 2024-03-11 (EDT) 12:00–16:00 UTC, so sessions, pre/post-market and a DST change are all
/// in; steps from 0 (same-timestamp trades) to minutes; integer sizes, some zero; cents.
/// Each symbol ends with a trade at 16:30:00 UTC Monday that leaves its last bars open.
pub fn trades(symbols: &[&str], seed: u64) -> Vec<Tick> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for name in symbols {
        let sym = Symbol::parse(name).unwrap();
        let mut price: f64 = rng.random_range(50.0..300.0);
        for (from, to) in [
            (1_709_902_800, 1_709_935_200),
            (1_710_158_400, 1_710_172_800),
        ] {
            let mut t: i64 = from * 1_000_000;
            while t < to * 1_000_000 {
                let step = match rng.random_range(0..100) {
                    0..=9 => 0,
                    10..=79 => rng.random_range(1_000..20_000_000),
                    80..=97 => rng.random_range(20_000_000..120_000_000),
                    _ => rng.random_range(120_000_000..900_000_000),
                };
                t += step;
                price = (price * (1.0 + rng.random_range(-0.002..0.002))).max(1.0);
                let size = if rng.random_range(0..20) == 0 {
                    0.0
                } else {
                    f64::from(rng.random_range(1..500u32))
                };
                out.push(
                    Tick::new(
                        sym,
                        Timestamp::from_micros(t),
                        (price * 100.0).round() / 100.0,
                        size,
                        Source::new("test"),
                    )
                    .unwrap(),
                );
            }
        }
        out.push(
            Tick::new(
                sym,
                Timestamp::from_secs(1_710_174_600),
                price,
                1.0,
                Source::new("test"),
            )
            .unwrap(),
        );
    }
    out
}

/// A plain producer for the test's own messages (librdkafka's defaults: keys are hashed by
/// CRC32 — not the Java client's murmur2 — and unkeyed messages go to random partitions).
pub fn producer(bootstrap: &str) -> ThreadedProducer<rdkafka::producer::DefaultProducerContext> {
    producer_with(bootstrap, &[])
}

/// A producer with extra librdkafka settings.
pub fn producer_with(
    bootstrap: &str,
    extra: &[(&str, &str)],
) -> ThreadedProducer<rdkafka::producer::DefaultProducerContext> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "1");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().unwrap()
}

/// Publishes `ticks` in order, keyed by symbol, and waits until the broker has them.
pub fn publish(
    producer: &ThreadedProducer<rdkafka::producer::DefaultProducerContext>,
    ticks: &[Tick],
) {
    for t in ticks {
        let payload = wire::encode_raw_tick(t);
        publish_raw(producer, Some(t.symbol().as_str()), &payload);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Publishes raw bytes to the raw topic.
pub fn publish_raw(
    producer: &ThreadedProducer<rdkafka::producer::DefaultProducerContext>,
    key: Option<&str>,
    payload: &[u8],
) {
    loop {
        let mut record = BaseRecord::<str, [u8]>::to(topics::RAW).payload(payload);
        if let Some(k) = key {
            record = record.key(k);
        }
        match producer.send(record) {
            Ok(()) => return,
            Err((e, _)) => {
                assert!(
                    matches!(
                        e,
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull
                        )
                    ),
                    "{e}"
                );
                producer.poll(Duration::from_millis(10));
            }
        }
    }
}

/// Every message of `topic`, read from the beginning until `quiet` passes without one.
pub fn read_topic(bootstrap: &str, topic: &str, quiet: Duration) -> Vec<(Option<String>, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{}", rand::random::<u64>()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push((
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                m.payload().unwrap_or_default().to_vec(),
            ));
            last = Instant::now();
        }
    }
    out
}

/// Polls `query` (one integer) until it returns `want` or `timeout` passes.
pub async fn wait_for_count(
    client: &tokio_postgres::Client,
    query: &str,
    want: i64,
    timeout: Duration,
) -> i64 {
    let start = Instant::now();
    loop {
        let n: i64 = client
            .query_one(query, &[])
            .await
            .map(|r| r.get(0))
            .unwrap_or(-1);
        if n == want || start.elapsed() > timeout {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `realtime_prices` holds `want` trades (or `timeout` passes); returns the count.
pub async fn wait_for_ticks(client: &tokio_postgres::Client, want: i64, timeout: Duration) -> i64 {
    wait_for_count(
        client,
        "SELECT count(*) FROM realtime_prices",
        want,
        timeout,
    )
    .await
}

/// Every row of every output table as text, sorted: two databases are equal when their
/// snapshots are (bookkeeping columns such as `updated_at` are left out).
pub async fn snapshot(client: &tokio_postgres::Client) -> Vec<String> {
    let queries = [
        r#"SELECT 'tick', symbol, "timestamp"::text, seq::text, price::text, volume::text, source FROM realtime_prices"#,
        r#"SELECT 'rt', symbol, "timestamp"::text, seq::text, price::text, concat_ws(',', price_velocity_10, price_velocity_50, tick_ratio, tick_vwap_20, volume_momentum, bb_bandwidth, bb_position, tick_rsi_14), '' FROM realtime_analytics"#,
        r#"SELECT 'bar', symbol, "timestamp"::text, interval_minutes::text, concat_ws(',', open, high, low, close, volume, num_samples, vwap, revision), bar_end::text, source FROM intraday_ohlcv"#,
        r#"SELECT 'day', symbol, "timestamp"::text, '', concat_ws(',', open, high, low, close, volume, num_samples, vwap, revision), session_start::text, source FROM historical_ohlcv"#,
        r#"SELECT 'ia', symbol, "timestamp"::text, interval_minutes::text, price::text, indicators::text, '' FROM intraday_analytics"#,
        r#"SELECT 'da', symbol, "timestamp"::text, '', price::text, indicators::text, '' FROM daily_analytics"#,
    ];
    let mut rows = Vec::new();
    for q in queries {
        for r in client.query(q, &[]).await.unwrap() {
            let cells: Vec<String> = (0..7)
                .map(|i| r.get::<_, Option<String>>(i).unwrap_or_default())
                .collect();
            rows.push(cells.join("|"));
        }
    }
    rows.sort();
    rows
}

/// The `serve` options every child instance of the tests runs with: no feed, a quick commit
/// cadence, BTC-USD on the UTC calendar, and nothing of the 2024 test data expired.
const SERVE_ARGS: [&str; 18] = [
    "serve",
    "--feed",
    "none",
    "--http-addr",
    "127.0.0.1:0",
    "--commit-interval",
    "300ms",
    "--partitions",
    "3",
    "--symbol-calendar",
    "BTC-USD=utc",
    "--retain-ticks",
    "36500d",
    "--retain-realtime-analytics",
    "36500d",
    "--retain-intraday",
    "36500d",
    "--retain-intraday-analytics=36500d",
];

/// A child process of the test, with the log file it writes.
pub struct Child {
    pub process: std::process::Child,
    pub log: std::path::PathBuf,
}

impl Child {
    /// Waits until the log has a line containing `needle` (or `timeout` passes: panics,
    /// showing the log); returns the line.
    pub async fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            // The line after the last match: what came last counts (a restarted broker).
            if let Some(line) = text.lines().rev().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            assert!(
                start.elapsed() < timeout,
                "no {needle:?} in {} within {timeout:?}:\n{text}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The Kafka bootstrap address the child logged (`kafka bootstrap: HOST:PORT`).
    pub async fn bootstrap(&self) -> String {
        let line = self
            .wait_for_line("kafka bootstrap: ", Duration::from_secs(30))
            .await;
        let after = line.split("kafka bootstrap: ").nth(1).unwrap();
        after.split_whitespace().next().unwrap().to_owned()
    }

    /// Kills the child with SIGKILL (no shutdown at all) and waits for it.
    pub fn kill9(mut self) {
        let _ = self.process.kill();
        self.process.wait().unwrap();
    }

    /// Stops the child with SIGTERM (graceful shutdown) and waits for it; panics, after a
    /// SIGKILL, when it has not stopped within [`GRACEFUL_STOP`].
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.process.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > GRACEFUL_STOP {
                let _ = self.process.kill();
                let _ = self.process.wait();
                panic!(
                    "{} did not stop within {GRACEFUL_STOP:?} of SIGTERM",
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// How long a child may take to stop gracefully before a test gives up on it.
pub const GRACEFUL_STOP: Duration = Duration::from_secs(120);

impl Drop for Child {
    /// A test that fails half-way leaves no process behind.
    fn drop(&mut self) {
        if matches!(self.process.try_wait(), Ok(None)) {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

/// Starts `tickflow` with `args` and `env`, logging to `<temp>/<log_name>.log`.
pub fn spawn_tickflow(args: &[&str], env: &[(&str, &str)], log_name: &str) -> Child {
    let log_path = std::env::temp_dir().join(format!("{log_name}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tickflow"));
    command
        .args(args)
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for (k, v) in env {
        command.env(k, v);
    }
    Child {
        process: command.spawn().expect("tickflow starts"),
        log: log_path,
    }
}

/// `tickflow broker` (the embedded broker as a process of its own) with `partitions`
/// partitions per topic; returns it and its bootstrap address.
pub async fn spawn_broker_process(partitions: i32, log_name: &str) -> (Child, String) {
    let parts = partitions.to_string();
    let child = spawn_tickflow(&["broker", "--partitions", &parts], &[], log_name);
    let bootstrap = child.bootstrap().await;
    (child, bootstrap)
}

/// `tickflow serve` on `database_url` in consumer group `group`, against the broker at
/// `bootstrap`, or its own embedded broker when `None` (what an operator runs).
pub fn spawn_serve_on(
    bootstrap: Option<&str>,
    database_url: &str,
    group: &str,
    log_name: &str,
) -> Child {
    let mut args = SERVE_ARGS.to_vec();
    args.extend(["--group", group]);
    let mut env = vec![("DATABASE_URL", database_url)];
    if let Some(b) = bootstrap {
        env.push(("KAFKA_BOOTSTRAP_SERVERS", b));
    }
    spawn_tickflow(&args, &env, log_name)
}

/// Asserts two snapshots are equal, showing a few differing rows rather than both.
pub fn assert_same_rows(got: &[String], want: &[String], what: &str) {
    let extra: Vec<_> = got
        .iter()
        .filter(|r| want.binary_search(r).is_err())
        .take(5)
        .collect();
    let missing: Vec<_> = want
        .iter()
        .filter(|r| got.binary_search(r).is_err())
        .take(5)
        .collect();
    assert!(
        extra.is_empty() && missing.is_empty() && got.len() == want.len(),
        "{what}: {} rows vs {}\n unexpected {extra:#?}\n missing {missing:#?}",
        got.len(),
        want.len()
    );
}

/// Starts an actix server on a free loopback port for an app factory (a closure building
/// the `App`); gives its address and handle.
#[allow(unused_macros)]
macro_rules! local_server {
    ($factory:expr) => {{
        let server = actix_web::HttpServer::new($factory)
            .workers(1)
            .bind("127.0.0.1:0")
            .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        (addr, handle)
    }};
}
#[allow(unused_imports)]
pub(crate) use local_server;
