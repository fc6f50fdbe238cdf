//! `App`: builds and runs the whole platform in one process, and stops it cleanly.
//!
//! [`App::build`] is a list of named steps — broker, epoch, store, pipeline, WebSockets,
//! feed, bar ingest, backfill, retention, HTTP — each a function of its own. Tests build it
//! the same way (port 0, their own broker and database).
//!
//! - this file: the settings, [`App`] and its shutdown;
//! - [`steps`]: the steps, one function each.

use crate::actors::{DbWriterSettings, Outputs, Shutdown, TickConsumer};
use crate::domain::Symbol;
use crate::feeds::stream::FeedState;
use crate::kafka::EmbeddedKafka;
use crate::kafka::backlog::BacklogMonitor;
use crate::kafka::epoch::{self, BrokerEpoch};
use crate::kafka::topics::TopicSettings;
use crate::metrics::Metrics;
use crate::pipeline::{PipelineView, SymbolSettings};
use crate::store::{MemoryLimits, Retention, Store};
use crate::web::{AppState, health::KafkaProbe};
use actix::prelude::*;
use anyhow::Context;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

mod steps;

pub use steps::*;

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
        let forward_key = store
            .register_epoch(&epoch.id)
            .await
            .context("cannot record the broker epoch")?;
        let view = Arc::new(PipelineView::new(epoch.id.clone(), forward_key));
        let pipeline = start_pipeline(&settings, &broker, &epoch, view, &store, &metrics).await?;
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
            tracing::error!(error = %format!("{e:#}"), "final flush failed");
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
