//! The steps [`App::build`](super::App::build) runs, each a function tests can call alone.

use super::{Broker, FeedKind, Pipeline, Settings};
use crate::actors::{DbWriter, Outputs, SupervisorContext, TickConsumer};
use crate::backfill::Backfiller;
use crate::domain::{Interval, Symbol, TradingCalendar};
use crate::feeds::stream::{FeedState, Provider as StreamProvider};
use crate::feeds::{Simulator, history::HistoryClient};
use crate::kafka::backlog::{BacklogMonitor, BacklogProbe, EMBEDDED_BACKLOG_LIMIT};
use crate::kafka::epoch::BrokerEpoch;
use crate::kafka::topics::{self, TopicSettings};
use crate::kafka::{EmbeddedKafka, OutputPublisher, Producer};
use crate::metrics::Metrics;
use crate::pipeline::{ConsumerSettings, PipelineView};
use crate::store::{MemoryStore, PgStore, Retention, Store};
use crate::web::ws::broadcaster::{Broadcaster, Interest};
use crate::web::{self, AppState};
use actix::prelude::*;
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

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
    view: Arc<PipelineView>,
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
        // `tickflow broker` is the embedded broker in a process of its own: as small.
        epoch.embedded.then_some(EMBEDDED_BACKLOG_LIMIT),
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
            whole_log: epoch.embedded,
        },
        partitions,
        SupervisorContext {
            settings: Arc::new(settings.symbols.clone()),
            store: store.clone(),
            outputs: outputs.clone(),
            metrics: metrics.clone(),
            view,
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
    let feeder = actix::spawn(crate::web::ws::feeder::run(
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
pub(super) async fn retention_job(store: Store, retention: Retention, every: Duration) {
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
