//! Load bench of the streaming pipeline, each figure next to a baseline measured in the same
//! run on the same data:
//!
//! 1. ticks/s from the raw topic through the consumer, the symbol actors (bars for 1m, 5m,
//!    1h, 1d, indicators, tick metrics) and out to the store and the output topics, for 1,
//!    100 and 1,000 symbols in a busy and a thin market ([`Market`]) — next to a bare
//!    rdkafka `StreamConsumer` reading and parsing the same messages, and next to the same
//!    consumer also publishing the pipeline's output traffic ("Kafka only": the ceiling of
//!    any pipeline with these outputs);
//! 2. tick persistence through `Store::write` (what the `DbWriter` runs) next to a raw
//!    binary COPY of the same rows into an identical table.
//!
//! Run: `cargo bench --bench pipeline` (needs PostgreSQL for part 2: `TEST_DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`). `TICKFLOW_BENCH_TICKS` sets the
//! message count (default 200,000), `TICKFLOW_BENCH_SYMBOLS` the cases (default
//! `1,100,1000`), `TICKFLOW_BENCH_MARKET` `busy` or `thin` (default both),
//! `TICKFLOW_BENCH_RUNS` the runs per case (default 3, the median is shown),
//! `TICKFLOW_BENCH_REALTIME_EVERY` the realtime publishing period (default `1s`, `0`: every
//! trade),
//! `TICKFLOW_BENCH_WORKERS` the symbol arbiters (default 2),
//! `TICKFLOW_BENCH_SKIP_DB=1` skips part 2. The embedded broker keeps only ~5 MiB per partition, so
//! every measurement gets a fresh broker and a producer thread publishing while it consumes.

use futures_util::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tickflow::app::{App, FeedKind, Settings};
use tickflow::domain::{
    BarBuilderConfig, Interval, Source, Symbol, Tick, Timestamp, TradingCalendar,
};
use tickflow::kafka::topics::{self, TopicSettings};
use tickflow::kafka::{EmbeddedKafka, wire};
use tickflow::output::{OutputBatch, Seq, TickRecord};
use tickflow::pipeline::SymbolSettings;
use tickflow::store::{MemoryLimits, PgStore, Store};

const PARTITIONS: i32 = 6;

/// How trade time advances in the bench's market.
#[derive(Clone, Copy, PartialEq)]
enum Market {
    /// Every symbol trades every 10 ms (100 trades/s each): a live feed at full load,
    /// where realtime metrics are throttled and bars close rarely relative to trades.
    Busy,
    /// The whole market trades every 10 ms, so with 1,000 symbols each trades every 10 s:
    /// catching up on a backlog of thin symbols, where nearly every trade publishes
    /// realtime metrics and a 1-minute bar closes every 6 trades (the output-heavy case).
    Thin,
}

fn ticks(n: usize, symbols: usize, market: Market) -> Vec<Tick> {
    let names: Vec<Symbol> = (0..symbols)
        .map(|i| Symbol::parse(&format!("S{i}")).unwrap())
        .collect();
    let mut price = vec![100.0f64; symbols];
    let t0 = 1_709_910_000_000_000i64;
    (0..n)
        .map(|i| {
            let s = i % symbols;
            price[s] *= 1.0 + (((i * 7919) % 201) as f64 - 100.0) * 1e-5;
            Tick::new(
                names[s],
                Timestamp::from_micros(
                    t0 + match market {
                        Market::Busy => (i / symbols) as i64 * 10_000,
                        Market::Thin => i as i64 * 10_000,
                    },
                ),
                (price[s] * 100.0).round() / 100.0,
                ((i % 50) * 10) as f64,
                Source::new("bench"),
            )
            .unwrap()
        })
        .collect()
}

/// Most messages published but not yet consumed per partition in use: ~3 MiB, inside the
/// embedded broker's ~5 MiB per partition.
const IN_FLIGHT_PER_PARTITION: usize = 15_000;

/// A fresh broker and a thread publishing `data` to the raw topic, never more than
/// [`IN_FLIGHT`] ahead of `consumed`.
fn broker_with_producer(
    data: Arc<Vec<Tick>>,
    symbols: usize,
    consumed: Arc<AtomicUsize>,
) -> (EmbeddedKafka, std::thread::JoinHandle<()>) {
    let window = IN_FLIGHT_PER_PARTITION * symbols.min(PARTITIONS as usize);
    let topic_set: Vec<(String, i32)> = settings("", "")
        .topics
        .all()
        .iter()
        .map(|t| (t.name.to_owned(), t.partitions))
        .collect();
    let kafka = EmbeddedKafka::start(1, topic_set).unwrap();
    let bootstrap = kafka.bootstrap_servers().to_owned();
    let producer =
        std::thread::spawn(move || publish(&bootstrap, topics::RAW, &data, &consumed, window));
    (kafka, producer)
}

fn publish(bootstrap: &str, topic: &str, ticks: &[Tick], consumed: &AtomicUsize, window: usize) {
    let p: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for (i, t) in ticks.iter().enumerate() {
        while i > consumed.load(Ordering::Relaxed) + window {
            std::thread::sleep(Duration::from_micros(50));
        }
        let payload = wire::encode_raw_tick(t);
        while let Err((e, _)) = p.send(
            BaseRecord::<str, [u8]>::to(topic)
                .key(t.symbol().as_str())
                .payload(&payload),
        ) {
            assert!(
                matches!(
                    e,
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull
                    )
                ),
                "produce failed: {e}"
            );
            p.poll(Duration::from_millis(5));
        }
    }
    p.flush(Duration::from_secs(60)).unwrap();
}

fn settings(bootstrap: &str, group: &str) -> Settings {
    Settings {
        kafka_bootstrap: Some(bootstrap.to_owned()),
        database_url: None,
        http_addr: "127.0.0.1:0".into(),
        feed: FeedKind::None,
        symbols: SymbolSettings {
            intervals: vec![Interval::M1, Interval::M5, Interval::H1, Interval::D1],
            default_calendar: TradingCalendar::us_equity(),
            calendars: vec![],
            bars: BarBuilderConfig::default(),
            // `serve`'s default; `TICKFLOW_BENCH_REALTIME_EVERY=0` publishes every trade.
            realtime_every: std::env::var("TICKFLOW_BENCH_REALTIME_EVERY")
                .ok()
                .map(|v| humantime::parse_duration(&v).expect("TICKFLOW_BENCH_REALTIME_EVERY"))
                .unwrap_or(Duration::from_secs(1)),
        },
        topics: TopicSettings {
            partitions: PARTITIONS,
            replication: 1,
            raw_retention: Duration::from_secs(86400),
            output_retention: Duration::from_secs(86400),
            dlq_retention: Duration::from_secs(86400),
        },
        group: group.to_owned(),
        // `serve`'s default here (one per core); `TICKFLOW_BENCH_WORKERS` to compare.
        workers: std::env::var("TICKFLOW_BENCH_WORKERS")
            .ok()
            .map(|v| v.parse().expect("TICKFLOW_BENCH_WORKERS"))
            .unwrap_or(2),
        memory_limits: MemoryLimits {
            ticks_per_symbol: 1_000_000,
            bars_per_series: 100_000,
        },
        ..Settings::default()
    }
}

/// The whole pipeline on the topic: time from the first tick processed to the last stored,
/// and how many messages it published to each output topic.
async fn pipeline(bootstrap: &str, n: usize, consumed: Arc<AtomicUsize>) -> (Duration, [u64; 3]) {
    let app = App::build(settings(
        bootstrap,
        &format!("pipe-{}", rand::random::<u32>()),
    ))
    .await
    .unwrap();
    let counter = app.metrics.messages_consumed.clone();
    let progress = tokio::spawn(async move {
        loop {
            consumed.store(counter.get() as usize, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let stored = || {
        app.metrics
            .records_stored
            .with_label_values(&["raw_price"])
            .get() as usize
    };
    while app.metrics.ticks_consumed.get() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let start = Instant::now();
    while stored() < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = start.elapsed();
    progress.abort();
    let published =
        OUTPUT_TOPICS.map(|t| app.metrics.published.with_label_values(&[t]).get() as u64);
    app.shutdown().await;
    (took, published)
}

const OUTPUT_TOPICS: [&str; 3] = [topics::OHLCV, topics::ANALYTICS, topics::REALTIME];

/// The pipeline's Kafka traffic without the pipeline: per output topic, messages published
/// per input tick and real messages it published there (replayed in a loop).
struct OutputMix {
    topics: Vec<(&'static str, f64, Vec<Vec<u8>>)>,
}

impl OutputMix {
    /// No output traffic: the bare consumer.
    fn none() -> Self {
        Self { topics: Vec::new() }
    }

    /// Reads up to 2,000 of the messages the pipeline left on each output topic of `kafka`.
    fn sample(bootstrap: &str, n: usize, published: [u64; 3]) -> Self {
        let topics = OUTPUT_TOPICS
            .iter()
            .zip(published)
            .filter(|(_, count)| *count > 0)
            .map(|(topic, count)| {
                let c: rdkafka::consumer::BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", bootstrap)
                    .set("group.id", format!("sample-{}", rand::random::<u32>()))
                    .set("auto.offset.reset", "earliest")
                    .set("enable.auto.commit", "false")
                    .create()
                    .unwrap();
                c.subscribe(&[topic]).unwrap();
                let mut samples = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(10);
                while samples.len() < 2000 && Instant::now() < deadline {
                    if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                        samples.push(m.payload().unwrap_or_default().to_vec());
                    } else if !samples.is_empty() {
                        break;
                    }
                }
                assert!(!samples.is_empty(), "no message read back from {topic}");
                (*topic, count as f64 / n as f64, samples)
            })
            .collect();
        Self { topics }
    }
}

/// A plain `StreamConsumer` reading and parsing `n` messages of the raw topic, committing
/// every 5,000, and for each publishing what `mix` says the pipeline published per tick
/// (same producer settings, same keys, real payloads). With [`OutputMix::none`] it is the
/// bare consume, the ceiling of any Kafka consumer here; with the pipeline's mix it is
/// the Kafka work alone, before any bar, indicator or store.
async fn consume_and_publish(
    bootstrap: &str,
    n: usize,
    consumed: &AtomicUsize,
    mix: &OutputMix,
) -> Duration {
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("baseline-{}", rand::random::<u32>()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        // As the pipeline's consumer: short fetch waits, so pacing does not idle it.
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    c.subscribe(&[topics::RAW]).unwrap();
    // The bare consumer has no producer at all.
    let producer =
        (!mix.topics.is_empty()).then(|| tickflow::kafka::Producer::new(bootstrap).unwrap());
    let mut owed = vec![0.0f64; mix.topics.len()];
    let mut sent = 0usize;
    let mut seen = 0;
    let mut stream = c.stream();
    let mut start = None;
    while seen < n {
        let m = stream.next().await.unwrap().unwrap();
        start.get_or_insert_with(Instant::now);
        let tick = std::hint::black_box(wire::parse_raw_tick(m.payload().unwrap()).unwrap());
        for ((topic, per_tick, samples), owed) in mix.topics.iter().zip(&mut owed) {
            *owed += per_tick;
            while *owed >= 1.0 {
                let payload = &samples[sent % samples.len()];
                // unwrap: a mix with topics has a producer.
                producer
                    .as_ref()
                    .unwrap()
                    .send(tickflow::kafka::producer::Record::keyed(
                        topic,
                        tick.symbol().as_str(),
                        payload,
                    ))
                    .await
                    .unwrap();
                sent += 1;
                *owed -= 1.0;
            }
        }
        seen += 1;
        consumed.store(seen, Ordering::Relaxed);
        if seen % 5000 == 0 {
            c.commit_message(&m, rdkafka::consumer::CommitMode::Async)
                .unwrap();
        }
    }
    let took = start.unwrap().elapsed();
    if let Some(p) = producer {
        p.flush().await.unwrap();
    }
    took
}

async fn persistence(n: usize) -> Option<(Duration, Duration)> {
    let admin = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (client, conn) = match tokio_postgres::connect(&admin, tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("persistence bench skipped: PostgreSQL unreachable at {admin}: {e}");
            return None;
        }
    };
    tokio::spawn(conn);
    let name = format!("tickflow_bench_{}", rand::random::<u32>());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let store = PgStore::connect(&url, 2).await.unwrap();
    let rows: Vec<TickRecord> = ticks(n, 100, Market::Thin)
        .into_iter()
        .enumerate()
        .map(|(i, tick)| {
            let seq = Seq {
                partition: 0,
                offset: i as i64,
            };
            TickRecord::new(tick, seq, seq)
        })
        .collect();

    // Raw baseline: binary COPY of the same six columns into a same-shaped table.
    let (raw, raw_conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(raw_conn);
    raw.batch_execute("CREATE TABLE raw_copy (LIKE realtime_prices INCLUDING ALL)")
        .await
        .unwrap();
    let start = Instant::now();
    for chunk in rows.chunks(5000) {
        use tokio_postgres::types::Type;
        let sink = raw.copy_in(r#"COPY raw_copy (symbol, "timestamp", seq, price, volume, source) FROM STDIN BINARY"#).await.unwrap();
        let w = tokio_postgres::binary_copy::BinaryCopyInWriter::new(
            sink,
            &[
                Type::TEXT,
                Type::TIMESTAMPTZ,
                Type::INT8,
                Type::FLOAT8,
                Type::FLOAT8,
                Type::TEXT,
            ],
        );
        futures_util::pin_mut!(w);
        for r in chunk {
            let t = &r.tick;
            w.as_mut()
                .write(&[
                    &t.symbol().as_str(),
                    &t.ts().to_datetime(),
                    &r.seq.as_i64(),
                    &t.price(),
                    &t.size(),
                    &t.source().as_str(),
                ])
                .await
                .unwrap();
        }
        w.finish().await.unwrap();
    }
    let raw_took = start.elapsed();

    let store = Store::Postgres(store);
    let batches: Vec<Vec<Arc<OutputBatch>>> = rows
        .chunks(5000)
        .map(|c| {
            vec![Arc::new(OutputBatch {
                ticks: c.to_vec(),
                ..OutputBatch::default()
            })]
        })
        .collect();
    let start = Instant::now();
    for b in &batches {
        store.write(b).await.unwrap();
    }
    let ours = start.elapsed();
    drop(raw);
    let _ = client
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await;
    Some((ours, raw_took))
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing we need.
    let n: usize = std::env::var("TICKFLOW_BENCH_TICKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    actix::System::new().block_on(async move {
        let runs: usize = std::env::var("TICKFLOW_BENCH_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        println!(
            "pipeline bench, {n} ticks, {PARTITIONS} partitions, release build, median of {runs} runs (ratio range in brackets)"
        );
        println!(
            "{:<22} {:>14} {:>16} {:>8} {:>13} {:>9} {:>16} {:>8}",
            "case",
            "pipeline t/s",
            "bare consume t/s",
            "ratio",
            "(range)",
            "out/tick",
            "Kafka only t/s",
            "of that"
        );
        // `TICKFLOW_BENCH_SYMBOLS=1000` and `TICKFLOW_BENCH_MARKET=thin` run one case (for
        // profiling).
        let cases: Vec<usize> = std::env::var("TICKFLOW_BENCH_SYMBOLS")
            .ok()
            .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![1, 100, 1000]);
        let markets = match std::env::var("TICKFLOW_BENCH_MARKET").as_deref() {
            Ok("busy") => vec![Market::Busy],
            Ok("thin") => vec![Market::Thin],
            _ => vec![Market::Busy, Market::Thin],
        };
        for &market in &markets {
            for &symbols in &cases {
                if symbols == 1 && market == Market::Thin && markets.contains(&Market::Busy) {
                    continue; // one symbol: both markets are the same trades
                }
                let data = Arc::new(ticks(n, symbols, market));
                // Bare consume and pipeline alternate, each on a fresh broker, so drift in
                // the machine's speed hits both.
                let mut results = Vec::with_capacity(runs);
                for _ in 0..runs {
                    let consumed = Arc::new(AtomicUsize::new(0));
                    let (kafka, producer) =
                        broker_with_producer(data.clone(), symbols, consumed.clone());
                    let bare =
                        consume_and_publish(kafka.bootstrap_servers(), n, &consumed, &OutputMix::none())
                            .await;
                    producer.join().unwrap();
                    drop(kafka);
                    let consumed = Arc::new(AtomicUsize::new(0));
                    let (kafka, producer) =
                        broker_with_producer(data.clone(), symbols, consumed.clone());
                    let (ours, published) =
                        pipeline(kafka.bootstrap_servers(), n, consumed).await;
                    producer.join().unwrap();
                    let mix = OutputMix::sample(kafka.bootstrap_servers(), n, published);
                    drop(kafka);
                    let consumed = Arc::new(AtomicUsize::new(0));
                    let (kafka, producer) =
                        broker_with_producer(data.clone(), symbols, consumed.clone());
                    let kafka_only =
                        consume_and_publish(kafka.bootstrap_servers(), n, &consumed, &mix).await;
                    producer.join().unwrap();
                    drop(kafka);
                    let outputs = published.iter().sum::<u64>() as f64 / n as f64;
                    results.push((rate(n, ours), rate(n, bare), rate(n, kafka_only), outputs));
                }
                let median = |mut v: Vec<f64>| {
                    v.sort_by(f64::total_cmp);
                    v[v.len() / 2]
                };
                let ratios: Vec<f64> = results.iter().map(|r| r.0 / r.1).collect();
                let (lo, hi) = ratios
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
                let name = match market {
                    Market::Busy => "busy",
                    Market::Thin => "thin",
                };
                println!(
                    "{:<22} {:>14.0} {:>16.0} {:>8.2} {:>13} {:>9.2} {:>16.0} {:>8.2}",
                    format!("{symbols} symbols, {name}"),
                    median(results.iter().map(|r| r.0).collect()),
                    median(results.iter().map(|r| r.1).collect()),
                    median(ratios),
                    format!("({lo:.2}-{hi:.2})"),
                    median(results.iter().map(|r| r.3).collect()),
                    median(results.iter().map(|r| r.2).collect()),
                    median(results.iter().map(|r| r.0 / r.2).collect()),
                );
            }
        }
        let skip_db = std::env::var("TICKFLOW_BENCH_SKIP_DB").is_ok_and(|v| v == "1");
        if let Some((ours, raw)) = if skip_db { None } else { persistence(n).await } {
            println!(
                "{:<22} {:>14} {:>16} {:>8}",
                "persistence", "Store::write r/s", "raw COPY r/s", "ratio"
            );
            println!(
                "{:<22} {:>14.0} {:>16.0} {:>8.2}",
                "realtime_prices",
                rate(n, ours),
                rate(n, raw),
                raw.as_secs_f64() / ours.as_secs_f64()
            );
        }
    });
}
