//! `App`: builds and runs the whole platform in one process, and stops it cleanly.
//! Tests build it the same way (port 0, their own broker and database).

use crate::actors::{
    ConsumerSettings, DbWriter, DbWriterSettings, OutputPublisher, Outputs, Shutdown,
    SymbolSettings, TickConsumer,
};
use crate::domain::Symbol;
use crate::feeds::Simulator;
use crate::feeds::stream::{FeedState, Provider as StreamProvider};
use crate::kafka::EmbeddedKafka;
use crate::kafka::topics::{self, TopicSettings};
use crate::metrics::Metrics;
use crate::store::{MemoryLimits, MemoryStore, PgStore, Retention, Store};
use crate::web::{self, AppState, health::KafkaProbe};
use actix::prelude::*;
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where ticks come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FeedKind {
    /// The built-in random-walk market.
    Sim,
    /// Yahoo Finance's streaming WebSocket (`--yahoo-url` to point it elsewhere).
    Yahoo,
    /// TwelveData's price WebSocket (needs `TWELVEDATA_API_KEY`).
    Twelvedata,
    /// No feed: ticks come from other producers on the raw topic.
    None,
}

/// When `serve` backfills: every `every` (never when `None`), the last `days` local dates of
/// each feed symbol and interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackfillSettings {
    pub every: Option<Duration>,
    pub days: u32,
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// External Kafka; `None` starts the embedded broker.
    pub kafka_bootstrap: Option<String>,
    /// PostgreSQL; `None` uses the in-memory store.
    pub database_url: Option<String>,
    pub db_pool_size: usize,
    pub http_addr: String,
    pub feed: FeedKind,
    pub feed_symbols: Vec<Symbol>,
    pub sim_rate: f64,
    /// Yahoo streaming endpoint.
    pub yahoo_url: String,
    /// TwelveData price WebSocket.
    pub twelvedata_ws_url: String,
    /// History providers (backfill).
    pub providers: crate::feeds::history::ProviderSettings,
    /// Periodic backfill of the feed's symbols.
    pub backfill: BackfillSettings,
    pub symbols: SymbolSettings,
    pub topics: TopicSettings,
    pub retention: Retention,
    pub retention_every: Duration,
    pub db_writer: DbWriterSettings,
    pub group: String,
    pub max_batch: usize,
    pub commit_interval: Duration,
    /// Arbiters the symbol actors are spread over.
    pub workers: usize,
    pub memory_limits: MemoryLimits,
    /// API token and CORS origins.
    pub access: crate::web::Access,
    /// How long read-route answers may be reused (zero: never); writes through this
    /// process invalidate them at once.
    pub api_cache_ttl: Duration,
}

/// A running platform.
pub struct App {
    /// Where the HTTP server listens.
    pub http_addr: std::net::SocketAddr,
    /// The Kafka bootstrap servers in use.
    pub kafka_bootstrap: String,
    pub store: Store,
    pub metrics: Metrics,
    consumer: Addr<TickConsumer>,
    outputs: Outputs,
    server: actix_web::dev::ServerHandle,
    server_task: tokio::task::JoinHandle<std::io::Result<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
    arbiters: Vec<Arbiter>,
    /// Kept last: the broker outlives every client above.
    embedded: Option<EmbeddedKafka>,
}

impl App {
    /// Starts everything. Must run inside an actix `System`.
    ///
    /// # Errors
    /// When the broker, the database or the listener cannot be set up.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        let (bootstrap, embedded) = match &settings.kafka_bootstrap {
            Some(b) => {
                let created = topics::create_topics(b, &settings.topics).await?;
                if !created.is_empty() {
                    tracing::info!(?created, "topics created");
                }
                (b.clone(), None)
            }
            None => {
                let specs = settings
                    .topics
                    .all()
                    .iter()
                    .map(|(n, _)| ((*n).to_owned(), settings.topics.partitions))
                    .collect();
                let k = EmbeddedKafka::start(1, specs)?;
                (k.bootstrap_servers().to_owned(), Some(k))
            }
        };
        tracing::info!(
            "kafka bootstrap: {bootstrap}{}",
            if embedded.is_some() {
                " (embedded)"
            } else {
                ""
            }
        );

        let store = match &settings.database_url {
            Some(url) => Store::Postgres(PgStore::connect(url, settings.db_pool_size).await?),
            None => Store::Memory(MemoryStore::new(settings.memory_limits)),
        };
        tracing::info!(
            mode = store.mode(),
            "store: {}",
            if settings.database_url.is_some() {
                "PostgreSQL"
            } else {
                "in memory (set DATABASE_URL to persist)"
            }
        );

        // The DbWriter gets a thread of its own: the consumer loop keeps the system thread.
        let db_arbiter = Arbiter::new();
        let db = {
            let (store, config, metrics) = (store.clone(), settings.db_writer, metrics.clone());
            DbWriter::start_in_arbiter(&db_arbiter.handle(), move |_| {
                DbWriter::new(store, config, metrics)
            })
        };
        let publisher = Arc::new(OutputPublisher::new(&bootstrap, metrics.clone())?);
        let interest = crate::actors::broadcaster::Interest::default();
        let broadcaster =
            crate::actors::broadcaster::Broadcaster::new(interest.clone(), metrics.clone()).start();
        let outputs = Outputs {
            db,
            publisher: Some(publisher),
            broadcaster: Some(broadcaster.clone().recipient()),
        };
        let mut arbiters: Vec<Arbiter> = (0..settings.workers.max(1))
            .map(|_| Arbiter::new())
            .collect();
        let consumer = TickConsumer::new(
            ConsumerSettings {
                bootstrap: bootstrap.clone(),
                group: settings.group.clone(),
                max_batch: settings.max_batch,
                commit_interval: settings.commit_interval,
            },
            Arc::new(settings.symbols.clone()),
            store.clone(),
            outputs.clone(),
            metrics.clone(),
            arbiters.iter().map(Arbiter::handle).collect(),
        )?
        .start();

        arbiters.push(db_arbiter);
        let mut background = Vec::new();
        let feed_state = Arc::new(FeedState::default());
        // One explicit TLS crypto provider for https/wss (a second install is harmless).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let stream = match settings.feed {
            FeedKind::Yahoo => Some(StreamProvider::Yahoo {
                url: settings.yahoo_url.clone(),
            }),
            FeedKind::Twelvedata => Some(StreamProvider::TwelveData {
                url: settings.twelvedata_ws_url.clone(),
                api_key: settings
                    .providers
                    .twelvedata_api_key
                    .clone()
                    .filter(|k| !k.trim().is_empty())
                    .context("--feed twelvedata needs TWELVEDATA_API_KEY")?,
            }),
            FeedKind::Sim | FeedKind::None => None,
        };
        if let Some(provider) = stream {
            let producer = Arc::new(crate::actors::publisher::producer(&bootstrap)?);
            tracing::info!(feed = ?settings.feed, symbols = ?settings.feed_symbols.iter().map(Symbol::as_str).collect::<Vec<_>>(), "feed: provider stream");
            background.push(actix::spawn(crate::feeds::stream::run(
                provider,
                settings.feed_symbols.clone(),
                producer,
                metrics.clone(),
                feed_state.clone(),
            )));
        } else if settings.feed == FeedKind::Sim {
            let producer = Arc::new(crate::actors::publisher::producer(&bootstrap)?);
            let sim = Simulator::new(&settings.feed_symbols, settings.sim_rate, rand::random());
            tracing::info!(symbols = ?settings.feed_symbols.iter().map(Symbol::as_str).collect::<Vec<_>>(), rate = settings.sim_rate, "feed: simulator");
            background.push(tokio::spawn(crate::feeds::simulator::run(
                sim,
                producer,
                metrics.clone(),
            )));
        } else {
            tracing::info!(
                "feed: none (ticks come from other producers on {})",
                topics::RAW
            );
        }
        background.push(actix::spawn(crate::actors::topic_feeder::run(
            bootstrap.clone(),
            broadcaster.clone(),
            interest,
        )));
        background.push(actix::spawn(crate::actors::bar_ingest::run(
            bootstrap.clone(),
            format!("{}-bar-ingest", settings.group),
            store.clone(),
            settings.symbols.clone(),
            metrics.clone(),
        )));
        if let Some(every) = settings.backfill.every {
            let jobs: Vec<(
                Symbol,
                crate::domain::Interval,
                crate::domain::TradingCalendar,
            )> = settings
                .feed_symbols
                .iter()
                .flat_map(|s| {
                    let cal = settings.symbols.calendar(*s);
                    settings
                        .symbols
                        .intervals
                        .iter()
                        .map(move |i| (*s, *i, cal))
                })
                .collect();
            let backfiller = crate::backfill::Backfiller::new(
                crate::feeds::history::HistoryClient::new(&settings.providers),
                store.clone(),
                Arc::new(crate::actors::publisher::producer(&bootstrap)?),
            );
            tracing::info!(every = %humantime::format_duration(every), days = settings.backfill.days, "backfill: on start and periodically");
            let p = &settings.providers;
            if p.twelvedata_api_key
                .as_deref()
                .is_none_or(|k| k.trim().is_empty())
                && p.alphavantage_api_key
                    .as_deref()
                    .is_none_or(|k| k.trim().is_empty())
            {
                tracing::warn!(
                    "backfill: neither TWELVEDATA_API_KEY nor ALPHA_VANTAGE_API_KEY is set; no gap can be filled"
                );
            }
            background.push(actix::spawn(backfill_job(
                backfiller,
                jobs,
                settings.backfill.days,
                every,
            )));
        }
        background.push(tokio::spawn(retention_job(
            store.clone(),
            settings.retention.clone(),
            settings.retention_every,
        )));

        let listener = TcpListener::bind(&settings.http_addr)
            .with_context(|| format!("cannot listen on {}", settings.http_addr))?;
        let http_addr = listener.local_addr()?;
        let state = AppState {
            metrics: metrics.clone(),
            store: store.clone(),
            kafka: Arc::new(KafkaProbe::new(&bootstrap, embedded.is_some())?),
            started: Instant::now(),
            broadcaster: Some(broadcaster),
            access: settings.access.clone(),
            feed: matches!(settings.feed, FeedKind::Yahoo | FeedKind::Twelvedata)
                .then_some(feed_state),
            cache: Arc::new(crate::web::cache::ResponseCache::new(
                settings.api_cache_ttl,
            )),
        };
        let server = web::serve(listener, state)?;
        let handle = server.handle();
        let server_task = tokio::spawn(server);
        tracing::info!("http: listening on http://{http_addr} (/health, /metrics)");
        Ok(Self {
            http_addr,
            kafka_bootstrap: bootstrap,
            store,
            metrics,
            consumer,
            outputs,
            server: handle,
            server_task,
            background,
            arbiters,
            embedded,
        })
    }

    /// Stops intake, checkpoints and commits, flushes every output, stops the server.
    ///
    /// Returns the embedded broker, if any: drop it after the actix `System`, whose actors
    /// still hold Kafka clients until it ends.
    pub async fn shutdown(self) -> Option<EmbeddedKafka> {
        for t in &self.background {
            t.abort();
        }
        let _ = self.consumer.send(Shutdown).await;
        if let Err(e) = self.outputs.flush().await {
            tracing::error!(error = %e, "final flush failed");
        }
        self.server.stop(true).await;
        let _ = self.server_task.await;
        for a in &self.arbiters {
            a.stop();
        }
        // Wait until the aborted tasks are gone, so their Kafka clients close before the
        // embedded broker does.
        for t in self.background {
            let _ = t.await;
        }
        self.embedded
    }

    /// Simulates a crash for tests: stops everything without checkpointing, committing
    /// or flushing (what `kill -9` would leave behind).
    pub async fn abort(self) {
        for t in &self.background {
            t.abort();
        }
        self.server.stop(false).await;
        self.server_task.abort();
        for a in &self.arbiters {
            a.stop();
        }
        System::current().stop_with_code(0);
    }
}

/// Backfills each job's last `days` local dates now and every `every`.
async fn backfill_job(
    backfiller: crate::backfill::Backfiller,
    jobs: Vec<(
        Symbol,
        crate::domain::Interval,
        crate::domain::TradingCalendar,
    )>,
    days: u32,
    every: Duration,
) {
    let mut timer = tokio::time::interval(every);
    loop {
        timer.tick().await;
        for (symbol, interval, calendar) in &jobs {
            let now = crate::domain::Timestamp::from_datetime(&chrono::Utc::now());
            let to = now.to_datetime().with_timezone(&calendar.tz()).date_naive();
            let job = crate::backfill::Job {
                symbol: *symbol,
                interval: *interval,
                calendar: *calendar,
                from: to - chrono::Duration::days(i64::from(days)),
                to,
            };
            match backfiller
                .run(&job, &indicatif::ProgressBar::hidden())
                .await
            {
                Ok(r) if r.chunks == 0 => {}
                Ok(r) => {
                    tracing::info!(%symbol, interval = interval.as_str(), chunks = r.chunks, bars = r.bars, failed = r.failed.len(), "backfill done")
                }
                Err(e) => tracing::warn!(%symbol, error = %format!("{e:#}"), "backfill failed"),
            }
        }
    }
}

/// Deletes expired rows periodically (sets TimescaleDB's policies once, where present).
async fn retention_job(store: Store, retention: Retention, every: Duration) {
    let mut timer = tokio::time::interval(every);
    loop {
        timer.tick().await;
        match store.apply_retention(&retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "retention applied"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "retention failed"),
        }
        if let Store::Postgres(pg) = &store
            && pg.timescale()
        {
            return;
        }
    }
}
