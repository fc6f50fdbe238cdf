//! Storage: PostgreSQL/TimescaleDB, or a bounded in-memory store with the same retention
//! rules and the same interface when no `DATABASE_URL` is given.
//!
//! - [`Store`]: the handle every actor and route shares (cheap to clone).
//! - [`PgStore`]: binary COPY and `UNNEST` upserts through a deadpool pool.
//! - [`MemoryStore`]: per-series ordered maps, bounded by row counts and retention.
//! - [`migrations`]: the `sql/` files, applied in order.

mod history;
mod memory;
pub mod migrations;
mod postgres;
pub mod query;
mod series;

pub use memory::{MemoryLimits, MemoryStore};
pub use postgres::{PgStore, policy_schedule};

use crate::domain::Symbol;
use crate::output::{Checkpoint, OutputBatch};
use std::sync::Arc;
use std::time::Duration;

/// How long each table keeps rows (the reference README's periods by default).
#[derive(Debug, Clone, clap::Args)]
pub struct Retention {
    /// Trades (`realtime_prices`).
    #[arg(long = "retain-ticks", env = "TICKFLOW_RETAIN_TICKS", default_value = "5d", value_parser = humantime::parse_duration)]
    pub realtime_prices: Duration,
    /// Published realtime metrics (`realtime_analytics`).
    #[arg(long = "retain-realtime-analytics", env = "TICKFLOW_RETAIN_REALTIME_ANALYTICS", default_value = "1h", value_parser = humantime::parse_duration)]
    pub realtime_analytics: Duration,
    /// Intraday bars (`intraday_ohlcv`).
    #[arg(long = "retain-intraday", env = "TICKFLOW_RETAIN_INTRADAY", default_value = "730d", value_parser = humantime::parse_duration)]
    pub intraday_ohlcv: Duration,
    /// Intraday bar analytics (`intraday_analytics`).
    #[arg(long = "retain-intraday-analytics", env = "TICKFLOW_RETAIN_INTRADAY_ANALYTICS", default_value = "90d", value_parser = humantime::parse_duration)]
    pub intraday_analytics: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Self {
            realtime_prices: Duration::from_secs(5 * DAY),
            realtime_analytics: Duration::from_secs(3_600),
            intraday_ohlcv: Duration::from_secs(730 * DAY),
            intraday_analytics: Duration::from_secs(90 * DAY),
        }
    }
}

impl Retention {
    /// The instant before which `interval` bars are deleted (`None`: kept forever, as daily
    /// bars are), as of `now`.
    pub fn bars_cutoff(
        &self,
        interval: crate::domain::Interval,
        now: crate::domain::Timestamp,
    ) -> Option<crate::domain::Timestamp> {
        (!interval.is_daily()).then(|| ago(now, self.intraday_ohlcv))
    }

    /// The instant before which trades are deleted, as of `now`.
    pub fn ticks_cutoff(&self, now: crate::domain::Timestamp) -> crate::domain::Timestamp {
        ago(now, self.realtime_prices)
    }

    /// `(table, period)`; daily tables keep everything.
    pub fn tables(&self) -> [(&'static str, Duration); 4] {
        [
            ("realtime_prices", self.realtime_prices),
            ("realtime_analytics", self.realtime_analytics),
            ("intraday_ohlcv", self.intraday_ohlcv),
            ("intraday_analytics", self.intraday_analytics),
        ]
    }
}

/// `now` minus `period` (saturating).
fn ago(now: crate::domain::Timestamp, period: Duration) -> crate::domain::Timestamp {
    now.add_micros(-i64::try_from(period.as_micros()).unwrap_or(i64::MAX))
}

/// Rows written by one flush, by table kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub ticks: usize,
    pub bars: usize,
    pub analytics: usize,
    pub realtime: usize,
    pub checkpoints: usize,
    /// Checkpoints not written: they would have replaced a newer one (`Checkpoint::may_replace`).
    pub checkpoints_fenced: usize,
    /// Trades not stored: a stored trade of another broker epoch has their identity.
    pub ticks_unstored: usize,
}

/// What a table holds, for [`Generations`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// `realtime_prices`.
    Ticks,
    /// `intraday_ohlcv`, `historical_ohlcv`.
    Bars,
    /// `intraday_analytics`, `daily_analytics`.
    Analytics,
    /// `realtime_analytics`.
    Realtime,
}

/// A counter per table kind, bumped after every write that changed it (through this
/// process), so readers can tell whether what they read before is still current.
#[derive(Debug, Default)]
pub struct Generations([std::sync::atomic::AtomicU64; 4]);

impl Generations {
    /// The current generation of `kind`.
    pub fn get(&self, kind: TableKind) -> u64 {
        self.0[kind as usize].load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn bump(&self, kind: TableKind) {
        self.0[kind as usize].fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn bump_written(&self, s: &WriteStats) {
        for (n, kind) in [
            (s.ticks, TableKind::Ticks),
            (s.bars, TableKind::Bars),
            (s.analytics, TableKind::Analytics),
            (s.realtime, TableKind::Realtime),
        ] {
            if n > 0 {
                self.bump(kind);
            }
        }
    }

    fn bump_all(&self) {
        for kind in [
            TableKind::Ticks,
            TableKind::Bars,
            TableKind::Analytics,
            TableKind::Realtime,
        ] {
            self.bump(kind);
        }
    }
}

/// The store the pipeline writes to and the API reads from.
#[derive(Clone)]
pub enum Store {
    Postgres(PgStore),
    Memory(MemoryStore),
}

impl Store {
    /// `postgres` or `memory`, for logs and `/health`.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Memory(_) => "memory",
        }
    }

    /// Writes the batches atomically (one transaction), idempotently.
    ///
    /// # Errors
    /// When the database fails; nothing of the batches is then written.
    pub async fn write(&self, batches: &[Arc<OutputBatch>]) -> anyhow::Result<WriteStats> {
        let stats = match self {
            Self::Postgres(s) => s.write(batches).await?,
            Self::Memory(s) => s.write(batches),
        };
        self.generations().bump_written(&stats);
        Ok(stats)
    }

    /// Write counters per table kind.
    pub fn generations(&self) -> &Generations {
        match self {
            Self::Postgres(s) => &s.generations,
            Self::Memory(s) => &s.generations,
        }
    }

    /// The last checkpoint of `symbol`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn load_checkpoint(&self, symbol: Symbol) -> anyhow::Result<Option<Checkpoint>> {
        match self {
            Self::Postgres(s) => s.load_checkpoint(symbol).await,
            Self::Memory(s) => Ok(s.load_checkpoint(symbol)),
        }
    }

    /// Records the broker epoch trades are read from, so that a later start on another
    /// broker can tell which stored trades came after a checkpoint (`trades_after`), and
    /// returns the key that signs forwarded trades on it (`kafka::origin`).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn register_epoch(
        &self,
        id: &str,
    ) -> anyhow::Result<crate::kafka::origin::ForwardKey> {
        match self {
            Self::Postgres(s) => s.register_epoch(id).await,
            // One process: its own key.
            Self::Memory(_) => Ok(crate::kafka::origin::ForwardKey::random()),
        }
    }

    /// Every symbol with a checkpoint (a new owner of a partition restores them all, so
    /// that quiet symbols close their bars too).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn checkpointed_symbols(&self) -> anyhow::Result<Vec<Symbol>> {
        match self {
            Self::Postgres(s) => s.checkpointed_symbols().await,
            Self::Memory(s) => Ok(s.checkpointed_symbols()),
        }
    }

    /// The stored trades of `symbol` read from broker `epoch` and not covered by `applied`
    /// (the offsets a checkpoint accounts for), in the order they were applied within each partition (by timestamp
    /// across partitions): what a symbol applied after its last checkpoint. Read back when the
    /// checkpoint's broker is gone (an embedded broker after a crash), so that the restored
    /// state matches the stored trades again. Scans the symbol's stored trades: a rare path.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn trades_after(
        &self,
        symbol: Symbol,
        epoch: &str,
        applied: &crate::pipeline::Applied,
    ) -> anyhow::Result<Vec<crate::output::TickRecord>> {
        let covered: Vec<(i64, i64)> = applied
            .iter()
            .map(|(partition, offset)| {
                let seq = |offset| crate::output::Seq { partition, offset }.as_i64();
                (seq(0), seq(offset))
            })
            .collect();
        let mut trades = match self {
            Self::Postgres(s) => s.trades_outside(symbol, epoch, &covered).await?,
            // The memory store does not outlive its process, nor so its broker.
            Self::Memory(_) => Vec::new(),
        };
        trades.sort_by_key(|r| (r.tick.ts(), r.seq));
        Ok(trades)
    }

    /// Checks the store answers.
    ///
    /// # Errors
    /// When it does not.
    pub async fn ping(&self) -> anyhow::Result<()> {
        match self {
            Self::Postgres(s) => s.ping().await,
            Self::Memory(_) => Ok(()),
        }
    }

    /// Deletes rows past their retention (a no-op where TimescaleDB policies do it).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn apply_retention(&self, retention: &Retention) -> anyhow::Result<u64> {
        let deleted = match self {
            Self::Postgres(s) => s.apply_retention(retention).await?,
            Self::Memory(s) => s.apply_retention(retention),
        };
        if deleted > 0 {
            self.generations().bump_all();
        }
        Ok(deleted)
    }
}
