//! `App`: builds and runs the whole platform in one process, and stops it cleanly.
//!
//! [`App::build`] is a list of named steps — broker, epoch, store, pipeline, WebSockets,
//! feed, bar ingest, backfill, retention, HTTP — each a function of its own. Tests build it
//! the same way (port 0, their own broker and database).

use crate::actors::broadcaster::{Broadcaster, Interest};
use crate::actors::{
    DbWriter, DbWriterSettings, Outputs, Shutdown, SupervisorContext, TickConsumer,
};
use crate::backfill::Backfiller;
use crate::domain::{Interval, Symbol, TradingCalendar};
use crate::feeds::stream::{FeedState, Provider as StreamProvider};
use crate::feeds::{Simulator, history::HistoryClient};
use crate::kafka::backlog::{BacklogMonitor, BacklogProbe, EMBEDDED_BACKLOG_LIMIT};
use crate::kafka::epoch::{self, BrokerEpoch};
use crate::kafka::topics::{self, TopicSettings};
use crate::kafka::{EmbeddedKafka, OutputPublisher, Producer};
use crate::metrics::Metrics;
use crate::pipeline::{ConsumerSettings, PipelineView, SymbolSettings};
use crate::store::{MemoryLimits, MemoryStore, PgStore, Retention, Store};
use crate::web::{self, AppState, health::KafkaProbe};
use actix::prelude::*;
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

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
    /// How far ahead of the clock a trade may be stamped before it is dead-lettered.
    pub max_clock_skew: Duration,
    /// Arbiters the symbol actors are spread over.
    pub workers: usize,
    pub memory_limits: MemoryLimits,
    /// API token and CORS origins.
    pub access: crate::web::Access,
    /// How long read-route answers may be reused (zero: never); writes through this
    /// process invalidate them at once.
    pub api_cache_ttl: Duration,
    /// Most bytes the answer cache holds.
    pub api_cache_bytes: usize,
}

/// A running platform.
pub struct App {
    /// Where the HTTP server listens.
    pub http_addr: std::net::SocketAddr,
    /// The Kafka bootstrap servers in use.
    pub kafka_bootstrap: String,
    /// The broker's epoch.
    pub epoch: BrokerEpoch,
    pub store: Store,
    pub metrics: Metrics,
    consumer: Addr<TickConsumer>,
    outputs: Outputs,
    server: actix_web::dev::ServerHandle,
    server_task: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
    arbiters: Vec<Arbiter>,
    /// The raw topic's backlog: an embedded broker is drained before it stops.
    backlog: Arc<BacklogMonitor>,
    commit_interval: Duration,
    /// Kept last: the broker outlives every client above.
    embedded: Option<EmbeddedKafka>,
}

/// The broker in use: an external cluster, or the embedded one started here.
pub struct Broker {
    pub bootstrap: String,
    pub embedded: Option<EmbeddedKafka>,
}

/// The running pipeline: its consumer, outputs and worker arbiters.
pub struct Pipeline {
    pub consumer: Addr<TickConsumer>,
    pub outputs: Outputs,
    pub arbiters: Vec<Arbiter>,
    pub backlog: Arc<BacklogMonitor>,
    /// The task refreshing `backlog` from the broker.
    pub backlog_watch: JoinHandle<()>,
}

impl App {
    /// Starts everything. Must run inside an actix `System`.
    ///
    /// # Errors
    /// When the broker, the database or the listener cannot be set up.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        let broker = start_broker(&settings.kafka_bootstrap, &settings.topics).await?;
        let epoch = epoch::establish(&broker.bootstrap, broker.embedded.is_some())
            .await
            .context("cannot establish the broker epoch")?;
        tracing::info!(epoch = %epoch.id, "broker epoch");
        let store = open_store(&settings).await?;
        store
            .register_epoch(&epoch.id)
            .await
            .context("cannot record the broker epoch")?;
        let pipeline = start_pipeline(&settings, &broker, &epoch, &store, &metrics).await?;
        let (broadcaster, feeder) = start_websockets(&broker.bootstrap, &metrics);
        let mut background = vec![feeder, pipeline.backlog_watch];
        let feed_state = Arc::new(FeedState::default());
        background.extend(
            start_feed(
                &settings,
                &broker.bootstrap,
                &metrics,
                &pipeline.backlog,
                &feed_state,
                &store,
            )
            .await?,
        );
        background.push(start_bar_ingest(
            &settings,
            &broker.bootstrap,
            &store,
            &metrics,
        ));
        background.extend(start_backfill(&settings, &broker.bootstrap, &store)?);
        background.push(tokio::spawn(retention_job(
            store.clone(),
            settings.retention.clone(),
            settings.retention_every,
        )));
        let state = AppState {
            metrics: metrics.clone(),
            store: store.clone(),
            kafka: Arc::new(KafkaProbe::new(
                &broker.bootstrap,
                broker.embedded.is_some(),
            )?),
            backlog: pipeline.backlog.clone(),
            started: Instant::now(),
            broadcaster: Some(broadcaster),
            access: settings.access.clone(),
            feed: matches!(settings.feed, FeedKind::Yahoo | FeedKind::Twelvedata)
                .then_some(feed_state),
            cache: Arc::new(crate::web::cache::ResponseCache::new(
                settings.api_cache_ttl,
                settings.api_cache_bytes,
                &metrics,
            )),
            pipeline: Arc::new(settings.symbols.clone()),
        };
        let (http_addr, server, server_task) = start_http(&settings.http_addr, state)?;
        Ok(Self {
            http_addr,
            kafka_bootstrap: broker.bootstrap,
            epoch,
            store,
            metrics,
            consumer: pipeline.consumer,
            outputs: pipeline.outputs,
            server,
            server_task,
            background,
            arbiters: pipeline.arbiters,
            backlog: pipeline.backlog,
            commit_interval: settings.commit_interval,
            embedded: broker.embedded,
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
        if self.embedded.is_some() {
            // The embedded broker stops with the process: what is still in it would be lost.
            drain(&self.backlog, self.commit_interval).await;
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

/// Longest a shutdown waits for the pipeline to take in what an embedded broker still holds.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Waits until nothing is left uncommitted on the raw topic (seen for longer than a commit
/// and a statistics report, so a stale report cannot pass for an empty backlog), or
/// [`DRAIN_TIMEOUT`].
async fn drain(backlog: &BacklogMonitor, commit_interval: Duration) {
    let settled = commit_interval + crate::kafka::config::STATISTICS_INTERVAL * 2;
    let started = Instant::now();
    let mut empty_since: Option<Instant> = None;
    while started.elapsed() < DRAIN_TIMEOUT {
        if backlog.largest() == 0 {
            if empty_since.get_or_insert_with(Instant::now).elapsed() >= settled {
                return;
            }
        } else {
            empty_since = None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!(
        uncommitted = backlog.largest(),
        "shutting down with trades the pipeline has not taken in; they stop with the embedded broker"
    );
}

/// The external cluster (its topics created where missing), or an embedded broker with
/// every topic.
///
/// # Errors
/// When the cluster cannot be reached or the embedded broker cannot start.
pub async fn start_broker(
    external: &Option<String>,
    topics: &TopicSettings,
) -> anyhow::Result<Broker> {
    let broker = match external {
        Some(bootstrap) => {
            let created = topics::create_topics(bootstrap, topics).await?;
            if !created.is_empty() {
                tracing::info!(?created, "topics created");
            }
            Broker {
                bootstrap: bootstrap.clone(),
                embedded: None,
            }
        }
        None => {
            let specs = topics
                .all()
                .iter()
                .map(|t| (t.name.to_owned(), t.partitions))
                .collect();
            let embedded = EmbeddedKafka::start(1, specs)?;
            Broker {
                bootstrap: embedded.bootstrap_servers().to_owned(),
                embedded: Some(embedded),
            }
        }
    };
    tracing::info!(
        "kafka bootstrap: {}{}",
        broker.bootstrap,
        if broker.embedded.is_some() {
            " (embedded)"
        } else {
            ""
        }
    );
    Ok(broker)
}

/// PostgreSQL (migrated) when a URL is set, else the in-memory store.
///
/// # Errors
/// When the database cannot be reached or migrated.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
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
    Ok(store)
}

/// The database writer (on a thread of its own), the output publisher, the worker
/// arbiters and the raw-topic consumer.
///
/// # Errors
/// When a Kafka client cannot be created or the raw topic cannot be read.
pub async fn start_pipeline(
    settings: &Settings,
    broker: &Broker,
    epoch: &BrokerEpoch,
    store: &Store,
    metrics: &Metrics,
) -> anyhow::Result<Pipeline> {
    let db_arbiter = Arbiter::new();
    let db = {
        let (store, config, metrics) = (store.clone(), settings.db_writer, metrics.clone());
        DbWriter::start_in_arbiter(&db_arbiter.handle(), move |_| {
            DbWriter::new(store, config, metrics)
        })
    };
    let outputs = Outputs {
        db,
        publisher: Some(Arc::new(OutputPublisher::new(
            &broker.bootstrap,
            metrics.clone(),
        )?)),
    };
    let backlog = Arc::new(BacklogMonitor::new(
        broker.embedded.is_some().then_some(EMBEDDED_BACKLOG_LIMIT),
        metrics.clone(),
    ));
    let partitions = topics::partition_count(&broker.bootstrap, topics::RAW).await?;
    let mut arbiters: Vec<Arbiter> = (0..settings.workers.max(1))
        .map(|_| Arbiter::new())
        .collect();
    let consumer = TickConsumer::new(
        ConsumerSettings {
            bootstrap: broker.bootstrap.clone(),
            group: settings.group.clone(),
            max_batch: settings.max_batch,
            commit_interval: settings.commit_interval,
            max_clock_skew: settings.max_clock_skew,
        },
        partitions,
        SupervisorContext {
            settings: Arc::new(settings.symbols.clone()),
            store: store.clone(),
            outputs: outputs.clone(),
            metrics: metrics.clone(),
            view: Arc::new(PipelineView::new(epoch.id.clone())),
        },
        arbiters.iter().map(Arbiter::handle).collect(),
    )?
    .start();
    let backlog_watch = tokio::spawn(backlog.clone().watch(
        BacklogProbe::new(&broker.bootstrap, &settings.group)?,
        crate::kafka::config::STATISTICS_INTERVAL,
    ));
    arbiters.push(db_arbiter);
    Ok(Pipeline {
        consumer,
        outputs,
        arbiters,
        backlog,
        backlog_watch,
    })
}

/// The WebSocket broadcaster and the feeder that relays the topics to it.
pub fn start_websockets(bootstrap: &str, metrics: &Metrics) -> (Addr<Broadcaster>, JoinHandle<()>) {
    let interest = Interest::default();
    let broadcaster = Broadcaster::new(interest.clone(), metrics.clone()).start();
    let feeder = actix::spawn(crate::actors::topic_feeder::run(
        bootstrap.to_owned(),
        broadcaster.clone(),
        interest,
    ));
    (broadcaster, feeder)
}

/// The last stored price of each of `symbols`: its last trade's, else its last bar's close.
async fn last_prices(
    store: &Store,
    symbols: &[Symbol],
    intervals: &[Interval],
) -> std::collections::HashMap<Symbol, f64> {
    use crate::store::query::{DateRange, TimeRange};
    let mut prices = std::collections::HashMap::new();
    for s in symbols {
        let mut price = store
            .ticks(*s, TimeRange::default(), 1)
            .await
            .ok()
            .and_then(|t| t.first().map(|t| t.price));
        for interval in intervals {
            if price.is_some() {
                break;
            }
            let bars = if interval.is_daily() {
                store.daily_bars(*s, DateRange::default(), 1).await
            } else {
                store.bars(*s, *interval, TimeRange::default(), 1).await
            };
            price = bars.ok().and_then(|b| b.first().map(|b| b.close));
        }
        if let Some(p) = price {
            prices.insert(*s, p);
        }
    }
    prices
}

/// The configured feed: the simulator (resuming each symbol from its last stored price), a
/// provider stream, or none.
///
/// # Errors
/// When a feed lacks what it needs (an API key) or its producer cannot be created.
pub async fn start_feed(
    settings: &Settings,
    bootstrap: &str,
    metrics: &Metrics,
    backlog: &Arc<BacklogMonitor>,
    state: &Arc<FeedState>,
    store: &Store,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let names: Vec<&str> = settings.feed_symbols.iter().map(Symbol::as_str).collect();
    // One explicit TLS crypto provider for https/wss (a second install is harmless).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let stream = match settings.feed {
        FeedKind::Yahoo => StreamProvider::Yahoo {
            url: settings.yahoo_url.clone(),
        },
        FeedKind::Twelvedata => StreamProvider::TwelveData {
            url: settings.twelvedata_ws_url.clone(),
            api_key: settings
                .providers
                .twelvedata_api_key
                .clone()
                .filter(|k| !k.trim().is_empty())
                .context("--feed twelvedata needs TWELVEDATA_API_KEY")?,
        },
        FeedKind::Sim => {
            let prices =
                last_prices(store, &settings.feed_symbols, &settings.symbols.intervals).await;
            let sim = Simulator::new(
                &settings.feed_symbols,
                settings.sim_rate,
                rand::random(),
                |s| prices.get(&s).copied(),
            );
            tracing::info!(symbols = ?names, rate = settings.sim_rate, resumed = prices.len(), "feed: simulator");
            return Ok(Some(tokio::spawn(crate::feeds::simulator::run(
                sim,
                Producer::new(bootstrap)?,
                backlog.clone(),
                metrics.clone(),
            ))));
        }
        FeedKind::None => {
            tracing::info!(
                "feed: none (ticks come from other producers on {})",
                topics::RAW
            );
            return Ok(None);
        }
    };
    tracing::info!(feed = ?settings.feed, symbols = ?names, "feed: provider stream");
    Ok(Some(actix::spawn(crate::feeds::stream::run(
        stream,
        settings.feed_symbols.clone(),
        Producer::new(bootstrap)?,
        backlog.clone(),
        metrics.clone(),
        state.clone(),
    ))))
}

/// The consumer that stores bars from the history topic (backfill, `replay --bars`).
pub fn start_bar_ingest(
    settings: &Settings,
    bootstrap: &str,
    store: &Store,
    metrics: &Metrics,
) -> JoinHandle<()> {
    actix::spawn(crate::backfill::ingest::run(
        bootstrap.to_owned(),
        format!("{}-bar-ingest", settings.group),
        store.clone(),
        settings.symbols.clone(),
        metrics.clone(),
    ))
}

/// The periodic backfill of the feed's symbols, when configured.
///
/// # Errors
/// When its producer cannot be created.
pub fn start_backfill(
    settings: &Settings,
    bootstrap: &str,
    store: &Store,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let Some(every) = settings.backfill.every else {
        return Ok(None);
    };
    let jobs: Vec<(Symbol, Interval, TradingCalendar)> = settings
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
    let backfiller = Backfiller::new(
        HistoryClient::new(&settings.providers),
        store.clone(),
        Producer::new(bootstrap)?,
    );
    tracing::info!(every = %humantime::format_duration(every), days = settings.backfill.days, "backfill: on start and periodically");
    let p = &settings.providers;
    let no_key = |k: &Option<String>| k.as_deref().is_none_or(|k| k.trim().is_empty());
    if no_key(&p.twelvedata_api_key) && no_key(&p.alphavantage_api_key) {
        tracing::warn!(
            "backfill: neither TWELVEDATA_API_KEY nor ALPHA_VANTAGE_API_KEY is set; no gap can be filled"
        );
    }
    Ok(Some(actix::spawn(crate::backfill::periodic::run(
        backfiller,
        jobs,
        settings.backfill.days,
        every,
        settings.retention.clone(),
    ))))
}

/// The HTTP server on `addr`.
///
/// # Errors
/// When the address cannot be listened on.
pub fn start_http(
    addr: &str,
    state: AppState,
) -> anyhow::Result<(
    std::net::SocketAddr,
    actix_web::dev::ServerHandle,
    JoinHandle<std::io::Result<()>>,
)> {
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let http_addr = listener.local_addr()?;
    let server = web::serve(listener, state)?;
    let handle = server.handle();
    let task = tokio::spawn(server);
    tracing::info!("http: listening on http://{http_addr} (/health, /metrics)");
    Ok((http_addr, handle, task))
}

/// Deletes expired rows periodically; where TimescaleDB is in use, sets its retention
/// policies instead, once (retried every `every` until they are set); and goes on expiring
/// the backfill coverage of deleted bars.
async fn retention_job(store: Store, retention: Retention, every: Duration) {
    let timescale = matches!(&store, Store::Postgres(pg) if pg.timescale());
    let mut timer = tokio::time::interval(every);
    let mut policies_set = false;
    loop {
        timer.tick().await;
        if !(timescale && policies_set) {
            match store.apply_retention(&retention).await {
                Ok(_) if timescale => {
                    tracing::info!("retention: TimescaleDB policies set to the configured periods");
                    policies_set = true;
                }
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "retention applied"),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "retention failed"),
            }
        }
        let now = crate::domain::Timestamp::from_datetime(&chrono::Utc::now());
        let cutoff = retention.bars_cutoff(Interval::M1, now);
        if let Some(cutoff) = cutoff {
            match store.expire_coverage(cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "backfill coverage expired with its bars"),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "coverage expiry failed"),
            }
        }
    }
}
