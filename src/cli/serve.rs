//! `tickflow serve`, `tickflow migrate`, `tickflow create-topics`.

use crate::actors::DbWriterSettings;
use crate::app::{App, FeedKind, Settings};
use crate::domain::{BarBuilderConfig, Interval, Symbol, TradingCalendar};
use crate::kafka::topics::TopicSettings;
use crate::pipeline::SymbolSettings;
use crate::store::{MemoryLimits, PgStore, Retention};
use anyhow::Context;
use std::time::Duration;

/// Options of `tickflow serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Kafka bootstrap servers; without it an embedded broker is started.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub kafka_bootstrap: Option<String>,
    /// PostgreSQL/TimescaleDB URL; without it a bounded in-memory store is used.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Connections in the database pool.
    #[arg(long, env = "TICKFLOW_DB_POOL", default_value_t = 8)]
    pub db_pool: usize,
    /// Where the HTTP API listens.
    #[arg(long, env = "TICKFLOW_HTTP_ADDR", default_value = "0.0.0.0:8000")]
    pub http_addr: String,
    /// Where ticks come from.
    #[arg(long, env = "TICKFLOW_FEED", value_enum, default_value = "sim")]
    pub feed: FeedKind,
    /// Symbols the feed streams (comma-separated).
    #[arg(
        long,
        env = "TICKFLOW_SYMBOLS",
        value_delimiter = ',',
        default_value = "AAPL,MSFT,GOOG,AMZN,TSLA"
    )]
    pub symbols: Vec<Symbol>,
    /// Yahoo streaming endpoint (`--feed yahoo`).
    #[arg(long, env = "YAHOO_STREAM_URL", default_value = crate::feeds::stream::YAHOO_URL)]
    pub yahoo_url: String,
    /// TwelveData price WebSocket (`--feed twelvedata`; the key is TWELVEDATA_API_KEY).
    #[arg(long, env = "TWELVEDATA_WS_URL", default_value = crate::feeds::twelvedata::DEFAULT_WS_URL)]
    pub twelvedata_ws_url: String,
    /// Backfill the feed's symbols on start and then this often (e.g. 1h); `off` (or empty)
    /// disables it.
    #[arg(long, env = "TICKFLOW_BACKFILL_EVERY", default_value = "off", value_parser = parse_every)]
    pub backfill_every: Duration,
    /// How many days back the periodic backfill looks.
    #[arg(long, env = "TICKFLOW_BACKFILL_DAYS", default_value_t = 5)]
    pub backfill_days: u32,
    #[command(flatten)]
    pub providers: crate::feeds::history::ProviderSettings,
    /// Simulated trades per second over all symbols.
    #[arg(long, env = "TICKFLOW_SIM_RATE", default_value_t = 50.0)]
    pub sim_rate: f64,
    /// Bar intervals built for every symbol (comma-separated).
    #[arg(
        long,
        env = "TICKFLOW_INTERVALS",
        value_delimiter = ',',
        default_value = "1m,5m,1h,1d"
    )]
    pub intervals: Vec<Interval>,
    /// Trading calendar of symbols without an override: us-equity or utc [default: utc with
    /// --feed sim, whose market trades around the clock; us-equity otherwise].
    #[arg(long, env = "TICKFLOW_CALENDAR")]
    pub calendar: Option<TradingCalendar>,
    /// Per-symbol calendars, e.g. BTC-USD=utc (comma-separated).
    #[arg(long, env = "TICKFLOW_SYMBOL_CALENDARS", value_delimiter = ',', value_parser = parse_symbol_calendar)]
    pub symbol_calendar: Vec<(Symbol, TradingCalendar)>,
    /// How far event time must pass a bar's end before it closes.
    #[arg(long, env = "TICKFLOW_GRACE", default_value = "2s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// How long a closed bar accepts late trades as revisions.
    #[arg(long, env = "TICKFLOW_ALLOWED_LATENESS", default_value = "60s", value_parser = humantime::parse_duration)]
    pub allowed_lateness: Duration,
    /// Realtime metrics are published (topic, table, WebSocket) at most once per this much
    /// trade time per symbol, on the first trade of each period; `0`: every trade.
    #[arg(long, env = "TICKFLOW_REALTIME_EVERY", default_value = "1s", value_parser = humantime::parse_duration)]
    pub realtime_every: Duration,
    /// How far ahead of the clock a trade may be stamped; later ones are dead-lettered
    /// (`future_timestamp`) and never move a bar's clock.
    #[arg(long, env = "TICKFLOW_MAX_CLOCK_SKEW", default_value = "5m", value_parser = humantime::parse_duration)]
    pub max_clock_skew: Duration,
    /// Consumer group shared by the instances that split the work.
    #[arg(long, env = "TICKFLOW_GROUP", default_value = "tickflow-pipeline")]
    pub group: String,
    /// How often state is checkpointed and offsets committed.
    #[arg(long, env = "TICKFLOW_COMMIT_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub commit_interval: Duration,
    /// Most raw messages routed per round.
    #[arg(long, env = "TICKFLOW_MAX_BATCH", default_value_t = 20_000)]
    pub max_batch: usize,
    /// Rows that start a database flush.
    #[arg(long, env = "TICKFLOW_DB_FLUSH_ROWS", default_value_t = 5000)]
    pub db_flush_rows: usize,
    /// Longest a row waits for a database flush.
    #[arg(long, env = "TICKFLOW_DB_FLUSH_INTERVAL", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub db_flush_interval: Duration,
    /// Arbiters (threads) the symbol actors are spread over; default: one per core.
    #[arg(long, env = "TICKFLOW_WORKERS")]
    pub workers: Option<usize>,
    /// How often expired rows are deleted (plain PostgreSQL and the memory store).
    #[arg(long, env = "TICKFLOW_RETENTION_EVERY", default_value = "60s", value_parser = humantime::parse_duration)]
    pub retention_every: Duration,
    /// Bearer token required on /api/* and /ws/* (empty or absent: open).
    #[arg(long, env = "API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// How long an answer of a read route may be served again (0: never). Writes through
    /// this instance invalidate answers at once; the period bounds staleness for writes by
    /// other instances and for default windows that end "now".
    #[arg(long, env = "TICKFLOW_API_CACHE_TTL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub api_cache_ttl: Duration,
    /// Most bytes the answer cache holds (keys, bodies and per-entry overhead counted;
    /// e.g. 64MiB, 512KiB, or a plain byte count).
    #[arg(long, env = "TICKFLOW_API_CACHE_BYTES", default_value = "64MiB", value_parser = crate::web::cache::parse_bytes)]
    pub api_cache_bytes: usize,
    /// Allowed CORS origins (comma-separated); `*` allows any origin without credentials.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',', default_value = "*")]
    pub cors_origins: Vec<String>,
    #[command(flatten)]
    pub topics: TopicSettings,
    #[command(flatten)]
    pub retention: Retention,
}

/// `serve`'s options alone, to read their defaults.
#[derive(clap::Parser)]
struct ServeDefaults {
    #[command(flatten)]
    args: ServeArgs,
}

impl Default for Settings {
    /// `tickflow serve`'s settings with no flag given (its environment variables apply, as
    /// they do to `serve`): the one place defaults are written is the flags.
    fn default() -> Self {
        use clap::Parser;
        ServeDefaults::try_parse_from(["serve"])
            .unwrap_or_else(|e| panic!("serve's defaults do not parse (check the TICKFLOW_* environment variables): {e}"))
            .args
            .settings()
    }
}

/// A period, or `off`/empty/`0` for never (as zero).
fn parse_every(s: &str) -> Result<Duration, String> {
    match s.trim() {
        "" | "off" | "0" => Ok(Duration::ZERO),
        other => humantime::parse_duration(other).map_err(|e| e.to_string()),
    }
}

fn parse_symbol_calendar(s: &str) -> Result<(Symbol, TradingCalendar), String> {
    let (sym, cal) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not SYMBOL=CALENDAR"))?;
    Ok((
        Symbol::parse(sym).map_err(|e| e.to_string())?,
        cal.parse()
            .map_err(|e: crate::domain::calendar::CalendarError| e.to_string())?,
    ))
}

impl ServeArgs {
    /// The settings `App::build` takes.
    pub fn settings(&self) -> Settings {
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4);
        Settings {
            kafka_bootstrap: self
                .kafka_bootstrap
                .clone()
                .filter(|s| !s.trim().is_empty()),
            database_url: self.database_url.clone().filter(|s| !s.trim().is_empty()),
            db_pool_size: self.db_pool,
            http_addr: self.http_addr.clone(),
            feed: self.feed,
            feed_symbols: self.symbols.clone(),
            sim_rate: self.sim_rate,
            yahoo_url: self.yahoo_url.clone(),
            twelvedata_ws_url: self.twelvedata_ws_url.clone(),
            providers: self.providers.clone(),
            backfill: crate::app::BackfillSettings {
                every: Some(self.backfill_every).filter(|d| !d.is_zero()),
                days: self.backfill_days,
            },
            symbols: SymbolSettings {
                intervals: self.intervals.clone(),
                default_calendar: self.calendar.unwrap_or(if self.feed == FeedKind::Sim {
                    TradingCalendar::Utc24h
                } else {
                    TradingCalendar::us_equity()
                }),
                calendars: self.symbol_calendar.clone(),
                bars: BarBuilderConfig {
                    grace_micros: micros(self.grace),
                    allowed_lateness_micros: micros(self.allowed_lateness),
                },
                realtime_every: self.realtime_every,
            },
            topics: self.topics.clone(),
            retention: self.retention.clone(),
            retention_every: self.retention_every,
            db_writer: DbWriterSettings {
                flush_rows: self.db_flush_rows,
                flush_interval: self.db_flush_interval,
            },
            group: self.group.clone(),
            max_batch: self.max_batch,
            commit_interval: self.commit_interval,
            max_clock_skew: self.max_clock_skew,
            workers: self
                .workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            memory_limits: MemoryLimits::default(),
            api_cache_ttl: self.api_cache_ttl,
            api_cache_bytes: self.api_cache_bytes,
            access: crate::web::Access {
                token: self.api_token.clone().filter(|t| !t.trim().is_empty()),
                cors_origins: self
                    .cors_origins
                    .iter()
                    .map(|o| o.trim().to_owned())
                    .filter(|o| !o.is_empty())
                    .collect(),
            },
        }
    }
}

/// Longest a graceful shutdown may take before the process stops without it.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs the platform until Ctrl-C or SIGTERM, then shuts down cleanly.
pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings();
    let system = actix::System::new();
    let embedded = system.block_on(async move {
        let app = App::build(settings).await?;
        wait_for_signal().await;
        tracing::info!("shutting down: final checkpoint, commit and flush");
        // A second signal, or a shutdown stuck on an unreachable peer, ends the process
        // anyway: the last commit and the checkpoints make a restart exact.
        tokio::select! {
            embedded = app.shutdown() => anyhow::Ok(embedded),
            () = wait_for_signal() => {
                tracing::warn!("second signal: stopping without waiting for the shutdown");
                std::process::exit(130);
            }
            () = tokio::time::sleep(SHUTDOWN_TIMEOUT) => {
                tracing::error!(timeout = ?SHUTDOWN_TIMEOUT, "shutdown did not finish in time; stopping without it");
                std::process::exit(1);
            }
        }
    })?;
    // The System's actors hold Kafka clients: the broker goes last.
    drop(system);
    drop(embedded);
    Ok(())
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// Options of `tickflow migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// PostgreSQL/TimescaleDB URL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
}

pub(crate) fn migrate(args: &MigrateArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = PgStore::connect(&args.database_url, 1).await?;
        tracing::info!(timescale = store.timescale(), "schema up to date");
        Ok(())
    })
}

/// Options of `tickflow create-topics`.
#[derive(Debug, clap::Args)]
pub struct CreateTopicsArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub kafka_bootstrap: String,
    #[command(flatten)]
    pub topics: TopicSettings,
}

pub(crate) fn create_topics(args: &CreateTopicsArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let created = rt
        .block_on(crate::kafka::topics::create_topics(
            &args.kafka_bootstrap,
            &args.topics,
        ))
        .context("cannot create topics")?;
    println!(
        "created: {}",
        if created.is_empty() {
            "none (all exist)".to_owned()
        } else {
            created.join(", ")
        }
    );
    Ok(())
}

/// Options of `tickflow broker`.
#[derive(Debug, clap::Args)]
pub struct BrokerArgs {
    /// Write the bootstrap address (`HOST:PORT`) to this file once the broker is up.
    #[arg(long)]
    pub bootstrap_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub topics: TopicSettings,
}

/// Runs the embedded broker (librdkafka's mock cluster) as a process of its own, with
/// tickflow's topics, until Ctrl-C or SIGTERM: several `tickflow serve` can share it, and
/// any of them can be killed while the log survives. It keeps ~5 MiB per partition.
pub(crate) fn broker(args: &BrokerArgs) -> anyhow::Result<()> {
    let specs = args
        .topics
        .all()
        .iter()
        .map(|t| (t.name.to_owned(), t.partitions))
        .collect();
    let broker = crate::kafka::EmbeddedKafka::start(1, specs)?;
    let bootstrap = broker.bootstrap_servers().to_owned();
    if let Some(path) = &args.bootstrap_file {
        // Written whole, then renamed: a reader never sees half an address.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &bootstrap)
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Its epoch says "embedded": every `tickflow serve` using it paces its producers and
    // reads its partitions from offset 0, as with its own embedded broker.
    let epoch = rt
        .block_on(crate::kafka::epoch::establish(&bootstrap, true))
        .context("cannot write the broker epoch")?;
    println!("kafka bootstrap: {bootstrap}");
    tracing::info!(epoch = %epoch.id, "kafka bootstrap: {bootstrap} (embedded broker; Ctrl-C stops it)");
    rt.block_on(wait_for_signal());
    drop(broker);
    Ok(())
}
