//! `PgStore`: PostgreSQL/TimescaleDB through a deadpool pool, bound parameters only.
//!
//! Trades and realtime metrics (most of the rows) go in by binary COPY straight into their
//! tables; if that hits a row already stored (a replay after a restart), the batch is done
//! again through a temporary table and `ON CONFLICT DO NOTHING`. Bars, analytics and
//! checkpoints are `UNNEST` upserts. One flush is one transaction.

//!
//! This file: the pool, migrations, reads the pipeline needs and retention; [`write`]: one
//! flush's rows in one transaction.

mod write;

use crate::domain::{Symbol, Timestamp};
use crate::kafka::origin::ForwardKey;
use crate::output::{Checkpoint, OutputBatch, Seq, TickRecord};
use crate::store::{Generations, Retention, WriteStats, migrations};
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::NoTls;

/// Longest wait for a connection from the pool (all in use): then the caller fails (the
/// API answers 503, the writer retries) instead of queueing forever.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Longest a new connection (TCP, TLS, startup) or a pooled one's check may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Idle time before the first TCP keepalive probe, then between probes, and how many
/// unanswered probes close the connection (about a minute for a vanished peer).
const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(30);
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;
/// Longest sent data may stay unacknowledged before the connection is closed.
const TCP_USER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A pooled PostgreSQL store. Clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Whether TimescaleDB is installed (its policies then do retention).
    timescale: bool,
    pub(crate) generations: Arc<Generations>,
    /// The number of the broker epoch trades are read from (`broker_epochs`), stored with
    /// every trade; 0 until registered.
    epoch: Arc<std::sync::atomic::AtomicI32>,
}

impl PgStore {
    /// Connects a pool of up to `max_connections` to `url` and applies the migrations.
    ///
    /// # Errors
    /// When the URL is invalid, the server cannot be reached, or a migration fails.
    pub async fn connect(url: &str, max_connections: usize) -> anyhow::Result<Self> {
        let mut config: tokio_postgres::Config = url.parse().context("invalid DATABASE_URL")?;
        // A peer that vanishes without closing (a network partition) is noticed: TCP
        // keepalives on idle connections, a bound on unacknowledged writes.
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES)
            .tcp_user_timeout(TCP_USER_TIMEOUT);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .context("cannot build the connection pool")?;
        let mut client = pool.get().await.context("cannot connect to PostgreSQL")?;
        let applied = migrations::migrate(&mut client).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "migrations applied");
        }
        let server = client
            .query_one(
                r#"SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'),
                          EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),
                          current_setting('shared_preload_libraries')"#,
                &[],
            )
            .await
            .context("cannot read the server's TimescaleDB state")?;
        let timescale: bool = server.get(0);
        let mode = TimescaleMode::of(timescale, server.get(1), server.get(2));
        match mode {
            TimescaleMode::InUse => tracing::info!(
                "TimescaleDB in use: hypertables, compression and retention policies"
            ),
            TimescaleMode::NotPreloaded => tracing::warn!(
                "TimescaleDB is installed but not in shared_preload_libraries: plain PostgreSQL mode (tickflow deletes expired rows itself); add shared_preload_libraries = 'timescaledb' to postgresql.conf and restart the server to use it"
            ),
            TimescaleMode::NotCreated => tracing::warn!(
                "TimescaleDB is preloaded but the migration could not create the extension (a user without the right, or a migration applied before it was installed): plain PostgreSQL mode (tickflow deletes expired rows itself)"
            ),
            TimescaleMode::Unavailable => tracing::info!(
                "TimescaleDB is not installed: plain PostgreSQL mode (tickflow deletes expired rows itself)"
            ),
        }
        drop(client);
        Ok(Self {
            pool,
            timescale,
            generations: Arc::default(),
            epoch: Arc::default(),
        })
    }

    /// Registers broker epoch `id` (see `sql/0007`); trades written from now on carry its
    /// number.
    pub(crate) async fn register_epoch(&self, id: &str) -> anyhow::Result<ForwardKey> {
        let client = self.pool.get().await?;
        // The first instance's key wins; a row from before keys were kept gets one.
        let row = client
            .query_one(
                "INSERT INTO broker_epochs (id, forward_key) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE
                   SET forward_key = COALESCE(broker_epochs.forward_key, EXCLUDED.forward_key)
                 RETURNING number, forward_key",
                &[&id, &ForwardKey::random().to_hex()],
            )
            .await?;
        let number: i32 = row.get(0);
        self.epoch
            .store(number, std::sync::atomic::Ordering::Relaxed);
        ForwardKey::from_hex(row.get(1)).context("broker_epochs.forward_key")
    }

    /// The pool, for queries elsewhere (the API).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Whether TimescaleDB is in use.
    pub fn timescale(&self) -> bool {
        self.timescale
    }

    pub(crate) async fn ping(&self) -> anyhow::Result<()> {
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    pub(crate) async fn load_checkpoint(
        &self,
        symbol: Symbol,
    ) -> anyhow::Result<Option<Checkpoint>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT seq, state, epoch, applied FROM symbol_checkpoints WHERE symbol = $1",
                &[&symbol.as_str()],
            )
            .await?;
        Ok(row.map(|r| Checkpoint {
            symbol,
            seq: Seq::from_i64(r.get(0)),
            state: r.get(1),
            epoch: r.get::<_, Option<String>>(2).unwrap_or_default(),
            applied: r
                .get::<_, Option<serde_json::Value>>(3)
                .and_then(|v| serde_json::from_value(v).ok())
                .unwrap_or_default(),
        }))
    }

    pub(crate) async fn checkpointed_symbols(&self) -> anyhow::Result<Vec<Symbol>> {
        let client = self.pool.get().await?;
        let rows = client
            .query("SELECT symbol FROM symbol_checkpoints", &[])
            .await?;
        // A symbol stored by tickflow always parses; anything else is skipped, not fatal.
        Ok(rows
            .iter()
            .filter_map(|r| Symbol::parse(r.get::<_, &str>(0)).ok())
            .collect())
    }

    pub(crate) async fn trades_outside(
        &self,
        symbol: Symbol,
        epoch: &str,
        covered: &[(i64, i64)],
    ) -> anyhow::Result<Vec<TickRecord>> {
        let client = self.pool.get().await?;
        let (lows, highs): (Vec<i64>, Vec<i64>) = covered.iter().copied().unzip();
        let rows = client
            .query(
                r#"SELECT "timestamp", seq, price, volume, source FROM realtime_prices
                   WHERE symbol = $1
                     AND epoch = (SELECT number FROM broker_epochs WHERE id = $4)
                     AND NOT EXISTS (
                       SELECT 1 FROM unnest($2::int8[], $3::int8[]) AS c(lo, hi)
                       WHERE seq BETWEEN c.lo AND c.hi)"#,
                &[&symbol.as_str(), &lows, &highs, &epoch],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let seq = Seq::from_i64(r.get(1));
                let tick = crate::domain::Tick::new(
                    symbol,
                    Timestamp::from_datetime(&r.get::<_, DateTime<Utc>>(0)),
                    r.get(2),
                    r.get(3),
                    crate::domain::Source::new(r.get(4)),
                )?;
                Ok(TickRecord::new(tick, seq, seq))
            })
            .collect()
    }

    /// Deletes expired rows (plain PostgreSQL), or sets TimescaleDB's retention policies to
    /// the configured periods, each run every [`policy_schedule`] of its period.
    pub(crate) async fn apply_retention(&self, retention: &Retention) -> anyhow::Result<u64> {
        let mut client = self.pool.get().await?;
        if self.timescale {
            // One transaction under a lock: instances starting together would otherwise race
            // between removing a policy and adding it back.
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&RETENTION_LOCK])
                .await?;
            for (table, period) in retention.tables() {
                // `text::regclass`: a bare `$1::regclass` makes the parameter a regclass,
                // which a Rust string cannot be sent as.
                tx.execute(
                    "SELECT remove_retention_policy($1::text::regclass, if_exists => TRUE)",
                    &[&table],
                )
                .await
                .with_context(|| format!("remove the retention policy of {table}"))?;
                tx.execute(
                    "SELECT add_retention_policy($1::text::regclass, drop_after => make_interval(secs => $2), schedule_interval => make_interval(secs => $3))",
                    &[&table, &period.as_secs_f64(), &policy_schedule(period).as_secs_f64()],
                )
                .await
                .with_context(|| format!("add the retention policy of {table}"))?;
            }
            tx.commit().await?;
            return Ok(0);
        }
        let mut deleted = 0;
        for (table, period) in retention.tables() {
            // Table names come from a fixed list, never from input.
            let sql = format!(
                r#"DELETE FROM {table} WHERE "timestamp" < now() - make_interval(secs => $1)"#
            );
            deleted += client.execute(&sql, &[&period.as_secs_f64()]).await?;
        }
        Ok(deleted)
    }

    pub(crate) async fn write(&self, batches: &[Arc<OutputBatch>]) -> anyhow::Result<WriteStats> {
        let mut client = self.pool.get().await.context("no database connection")?;
        let mut tx = client.transaction().await?;
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Relaxed);
        let stats = write::write_batches(&mut tx, batches, epoch).await?;
        tx.commit().await.context("commit failed")?;
        Ok(stats)
    }
}

/// Arbitrary constant: instances setting the retention policies at once take turns on it.
const RETENTION_LOCK: i64 = 0x7469_636b_7265_7465;

/// Shortest pause between two runs of a TimescaleDB policy job.
const MIN_POLICY_SCHEDULE: Duration = Duration::from_secs(60);
/// Longest pause between two runs of a TimescaleDB policy job (TimescaleDB's own default).
const MAX_POLICY_SCHEDULE: Duration = Duration::from_secs(86_400);

/// How often a TimescaleDB policy with `period` (retention: drop after; compression: compress
/// after) runs: a tenth of the period, within [`MIN_POLICY_SCHEDULE`, `MAX_POLICY_SCHEDULE`].
/// Rows then outlive their retention by at most a tenth of it (plus a chunk), where
/// TimescaleDB's daily default kept a 1-hour retention's rows for about 25 hours.
/// `sql/0008_timescale_policy_schedules.sql` applies the same rule.
pub fn policy_schedule(period: Duration) -> Duration {
    (period / 10).clamp(MIN_POLICY_SCHEDULE, MAX_POLICY_SCHEDULE)
}

/// Whether this database uses TimescaleDB, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimescaleMode {
    /// The extension is created in the database: hypertables and policies.
    InUse,
    /// Installed on the server but not preloaded: the migration must not create it.
    NotPreloaded,
    /// Installed and preloaded, yet not created: the migration's `CREATE EXTENSION` failed
    /// (no right to create it), or ran before TimescaleDB was installed.
    NotCreated,
    /// Not installed on the server.
    Unavailable,
}

impl TimescaleMode {
    fn of(created: bool, available: bool, preload_libraries: &str) -> Self {
        let preloaded = preload_libraries
            .split(',')
            .any(|lib| lib.trim().trim_matches('"') == "timescaledb");
        match (created, available, preloaded) {
            (true, _, _) => Self::InUse,
            (false, true, false) => Self::NotPreloaded,
            (false, true, true) => Self::NotCreated,
            (false, false, _) => Self::Unavailable,
        }
    }
}

/// The date of the session `[start, end)`: the UTC date of its midpoint. For every real
/// exchange that is its local trading date (sessions are shorter than a day and centred
/// within a few hours of local noon, so the midpoint never crosses UTC midnight into
/// another local date); for the UTC calendar it is the UTC day.
pub(crate) fn session_date(start: Timestamp, end: Timestamp) -> NaiveDate {
    let mid = Timestamp::from_micros(start.micros() + (end.micros() - start.micros()) / 2);
    mid.to_datetime().date_naive()
}

/// A timestamp as the `timestamptz` parameter type.
pub(crate) fn utc(ts: Timestamp) -> DateTime<Utc> {
    ts.to_datetime()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600;
    const DAY: u64 = 86_400;

    #[test]
    fn a_policy_runs_every_tenth_of_its_period_within_a_minute_and_a_day() {
        let schedule = |secs: u64| policy_schedule(Duration::from_secs(secs)).as_secs();
        assert_eq!(schedule(HOUR), 6 * 60, "1 h realtime retention");
        assert_eq!(schedule(5 * DAY), 12 * HOUR, "5 d tick retention");
        assert_eq!(schedule(3 * DAY), 7 * HOUR + 12 * 60, "3 d compression");
        assert_eq!(schedule(90 * DAY), DAY, "capped at a day");
        assert_eq!(schedule(730 * DAY), DAY, "capped at a day");
        assert_eq!(schedule(5 * 60), 60, "at least a minute");
        assert_eq!(schedule(0), 60, "at least a minute");
    }

    #[test]
    fn timescaledb_is_used_only_when_created_and_never_created_unless_preloaded() {
        use TimescaleMode::*;
        assert_eq!(TimescaleMode::of(true, true, "timescaledb"), InUse);
        assert_eq!(TimescaleMode::of(false, true, ""), NotPreloaded);
        assert_eq!(
            TimescaleMode::of(false, true, "pg_stat_statements"),
            NotPreloaded
        );
        assert_eq!(
            TimescaleMode::of(false, true, "pg_stat_statements, \"timescaledb\""),
            NotCreated,
            "preloaded (any spelling) but not created"
        );
        assert_eq!(TimescaleMode::of(false, false, ""), Unavailable);
        assert_eq!(
            TimescaleMode::of(false, true, "timescaledb_toolkit"),
            NotPreloaded,
            "another library's name is not timescaledb"
        );
    }
}
