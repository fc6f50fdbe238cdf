//! The read side of the store, shared by PostgreSQL and the memory store so the API serves
//! both the same way. Every query returns rows newest first, at most `limit`.
//!
//! PostgreSQL reads are bounded in time ([`READ_TIMEOUT`], pool checkout included): a
//! database that stops answering (a silent network partition) makes a read fail in bounded
//! time, and the connection it hung on is dropped from the pool rather than reused.

use crate::domain::indicators::{BAR_INDICATOR_COUNT, BAR_INDICATOR_NAMES};
use crate::domain::tick_metrics::{TICK_METRIC_COUNT, TICK_METRIC_NAMES};
use crate::domain::{Interval, Symbol, Timestamp};
use crate::store::{PgStore, Store};
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use std::time::Duration;

/// An inclusive range of instants; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl TimeRange {
    pub(crate) fn contains(&self, t: Timestamp) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|to| t <= to)
    }

    fn bounds(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        (
            self.from.map(Timestamp::to_datetime),
            self.to.map(Timestamp::to_datetime),
        )
    }
}

/// An inclusive range of session dates; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DateRange {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl DateRange {
    pub(crate) fn contains(&self, d: NaiveDate) -> bool {
        self.from.is_none_or(|f| d >= f) && self.to.is_none_or(|t| d <= t)
    }
}

/// A stored trade.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TickRow {
    pub symbol: String,
    pub ts: Timestamp,
    pub price: f64,
    pub volume: f64,
    pub source: String,
}

/// Stored realtime metrics of one trade.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RealtimeRow {
    pub symbol: String,
    pub ts: Timestamp,
    pub price: f64,
    pub values: [Option<f64>; TICK_METRIC_COUNT],
}

/// A stored bar (intraday: `date` is `None`; daily: the session date).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BarRow {
    pub symbol: String,
    pub start: Timestamp,
    pub date: Option<NaiveDate>,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub trades: i64,
    pub vwap: Option<f64>,
    pub revision: i32,
    pub source: String,
}

/// Stored analytics of one bar.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnalyticsRow {
    pub symbol: String,
    pub start: Timestamp,
    pub date: Option<NaiveDate>,
    pub price: f64,
    pub values: [Option<f64>; BAR_INDICATOR_COUNT],
}

/// What is stored about a symbol's trades.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolStats {
    pub symbol: String,
    pub tick_count: i64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// What is stored of one bar series (a symbol's bars of one interval).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesStats {
    pub symbol: String,
    pub interval: Interval,
    pub bars: i64,
    /// Start of the first and the last bar (a daily bar's session start).
    pub first: Timestamp,
    pub last: Timestamp,
}

/// Longest a PostgreSQL read may take, from pool checkout to the last row.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

fn ts(d: DateTime<Utc>) -> Timestamp {
    Timestamp::from_datetime(&d)
}

impl Store {
    /// Trades of `symbol` in `range`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn ticks(
        &self,
        symbol: Symbol,
        range: TimeRange,
        limit: i64,
    ) -> anyhow::Result<Vec<TickRow>> {
        match self {
            Self::Postgres(pg) => pg.ticks(symbol, range, limit).await,
            Self::Memory(m) => Ok(m.ticks(symbol, range, limit)),
        }
    }

    /// Realtime metrics of `symbol` in `range`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn realtime(
        &self,
        symbol: Symbol,
        range: TimeRange,
        limit: i64,
    ) -> anyhow::Result<Vec<RealtimeRow>> {
        match self {
            Self::Postgres(pg) => pg.realtime(symbol, range, limit).await,
            Self::Memory(m) => Ok(m.realtime(symbol, range, limit)),
        }
    }

    /// Every symbol with stored trades.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn symbols(&self) -> anyhow::Result<Vec<SymbolStats>> {
        match self {
            Self::Postgres(pg) => pg.symbols().await,
            Self::Memory(m) => Ok(m.symbols()),
        }
    }

    /// Every bar series stored (intraday and daily), by symbol then interval.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn bar_series(&self) -> anyhow::Result<Vec<SeriesStats>> {
        match self {
            Self::Postgres(pg) => pg.bar_series().await,
            Self::Memory(m) => Ok(m.bar_series()),
        }
    }

    /// Intraday bars of `symbol` and `interval` starting in `range`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn bars(
        &self,
        symbol: Symbol,
        interval: Interval,
        range: TimeRange,
        limit: i64,
    ) -> anyhow::Result<Vec<BarRow>> {
        match self {
            Self::Postgres(pg) => pg.bars(symbol, interval, range, limit).await,
            Self::Memory(m) => Ok(m.bars(symbol, interval, range, limit)),
        }
    }

    /// Daily session bars of `symbol` with dates in `dates`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn daily_bars(
        &self,
        symbol: Symbol,
        dates: DateRange,
        limit: i64,
    ) -> anyhow::Result<Vec<BarRow>> {
        match self {
            Self::Postgres(pg) => pg.daily_bars(symbol, dates, limit).await,
            Self::Memory(m) => Ok(m.daily_bars(symbol, dates, limit)),
        }
    }

    /// Analytics of `symbol`'s `interval` bars starting in `range`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn analytics(
        &self,
        symbol: Symbol,
        interval: Interval,
        range: TimeRange,
        limit: i64,
    ) -> anyhow::Result<Vec<AnalyticsRow>> {
        match self {
            Self::Postgres(pg) => pg.analytics(symbol, interval, range, limit).await,
            Self::Memory(m) => Ok(m.analytics(symbol, interval, range, limit)),
        }
    }

    /// Analytics of `symbol`'s daily bars with dates in `dates`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn daily_analytics(
        &self,
        symbol: Symbol,
        dates: DateRange,
        limit: i64,
    ) -> anyhow::Result<Vec<AnalyticsRow>> {
        match self {
            Self::Postgres(pg) => pg.daily_analytics(symbol, dates, limit).await,
            Self::Memory(m) => Ok(m.daily_analytics(symbol, dates, limit)),
        }
    }
}

/// Runs `sql` as a statement prepared once per connection (one round trip per query),
/// within [`READ_TIMEOUT`] of the call.
async fn cached_query(
    store: &PgStore,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> anyhow::Result<Vec<tokio_postgres::Row>> {
    bounded_query(store, sql, params, false).await
}

/// [`cached_query`], with `no_jit`: in a transaction with JIT compilation off. A query
/// whose cost estimate is high but whose work is a handful of index probes (the catalog's)
/// would otherwise spend more compiling (~140 ms measured) than running.
async fn bounded_query(
    store: &PgStore,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    no_jit: bool,
) -> anyhow::Result<Vec<tokio_postgres::Row>> {
    let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
    let mut client = tokio::time::timeout_at(deadline, store.pool().get())
        .await
        .map_err(|_| anyhow::anyhow!("no connection within {READ_TIMEOUT:?}"))?
        .context("cannot get a connection")?;
    let run = async {
        if !no_jit {
            let statement = client.prepare_cached(sql).await?;
            return client.query(&statement, params).await;
        }
        let tx = client.transaction().await?;
        tx.batch_execute("SET LOCAL jit = off").await?;
        let statement = tx.prepare_cached(sql).await?;
        let rows = tx.query(&statement, params).await?;
        tx.commit().await?;
        Ok(rows)
    };
    match tokio::time::timeout_at(deadline, run).await {
        Ok(rows) => Ok(rows.context("query failed")?),
        Err(_) => {
            // The connection may hang on a dead peer: drop it instead of pooling it again.
            drop(deadpool_postgres::Object::take(client));
            anyhow::bail!("query did not finish within {READ_TIMEOUT:?}")
        }
    }
}

fn metric_values(row: &tokio_postgres::Row, first: usize) -> [Option<f64>; TICK_METRIC_COUNT] {
    std::array::from_fn(|i| row.get(first + i))
}

fn indicator_values(json: &serde_json::Value) -> [Option<f64>; BAR_INDICATOR_COUNT] {
    std::array::from_fn(|i| {
        json.get(BAR_INDICATOR_NAMES[i])
            .and_then(serde_json::Value::as_f64)
    })
}

impl PgStore {
    async fn ticks(
        &self,
        symbol: Symbol,
        range: TimeRange,
        limit: i64,
    ) -> anyhow::Result<Vec<TickRow>> {
        let (from, to) = range.bounds();
        let rows = cached_query(self, r#"SELECT symbol, "timestamp", price, volume, source FROM realtime_prices
                   WHERE symbol = $1 AND ($2::timestamptz IS NULL OR "timestamp" >= $2) AND ($3::timestamptz IS NULL OR "timestamp" <= $3)
                   ORDER BY "timestamp" DESC, seq DESC LIMIT $4"#, &[&symbol.as_str(), &from, &to, &limit])
            .await?;
        Ok(rows
            .iter()
            .map(|r| TickRow {
                symbol: r.get(0),
                ts: ts(r.get(1)),
                price: r.get(2),
                volume: r.get(3),
                source: r.get(4),
            })
            .collect())
    }

    async fn realtime(
        &self,
        symbol: Symbol,
        range: TimeRange,
        limit: i64,
    ) -> anyhow::Result<Vec<RealtimeRow>> {
        let (from, to) = range.bounds();
        let rows = cached_query(self, &format!(
                    r#"SELECT symbol, "timestamp", price, {} FROM realtime_analytics
                       WHERE symbol = $1 AND ($2::timestamptz IS NULL OR "timestamp" >= $2) AND ($3::timestamptz IS NULL OR "timestamp" <= $3)
                       ORDER BY "timestamp" DESC, seq DESC LIMIT $4"#,
                    TICK_METRIC_NAMES.join(", ")
                ), &[&symbol.as_str(), &from, &to, &limit])
            .await?;
        Ok(rows
            .iter()
            .map(|r| RealtimeRow {
                symbol: r.get(0),
                ts: ts(r.get(1)),
                price: r.get(2),
                values: metric_values(r, 3),
            })
            .collect())
    }

    async fn symbols(&self) -> anyhow::Result<Vec<SymbolStats>> {
        let rows = cached_query(self, r#"SELECT symbol, count(*), min("timestamp"), max("timestamp") FROM realtime_prices GROUP BY symbol ORDER BY symbol"#, &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| SymbolStats {
                symbol: r.get(0),
                tick_count: r.get(1),
                first_seen: ts(r.get(2)),
                last_seen: ts(r.get(3)),
            })
            .collect())
    }

    /// Each series found by a skip scan of the primary keys (one index probe per series, no
    /// scan of the rows), its count by an index-only count of its key range, its first and
    /// last bar by one index probe each.
    async fn bar_series(&self) -> anyhow::Result<Vec<SeriesStats>> {
        let rows = bounded_query(
            self,
            r#"WITH RECURSIVE series AS (
                 (SELECT symbol, interval_minutes FROM intraday_ohlcv ORDER BY symbol, interval_minutes LIMIT 1)
                 UNION ALL
                 SELECT n.symbol, n.interval_minutes FROM series s, LATERAL (
                   SELECT symbol, interval_minutes FROM intraday_ohlcv
                   WHERE (symbol, interval_minutes) > (s.symbol, s.interval_minutes)
                   ORDER BY symbol, interval_minutes LIMIT 1) n
               ), days AS (
                 (SELECT symbol FROM historical_ohlcv ORDER BY symbol LIMIT 1)
                 UNION ALL
                 SELECT n.symbol FROM days d, LATERAL (
                   SELECT symbol FROM historical_ohlcv WHERE symbol > d.symbol ORDER BY symbol LIMIT 1) n
               )
               SELECT s.symbol, s.interval_minutes,
                 (SELECT count(*) FROM intraday_ohlcv b WHERE b.symbol = s.symbol AND b.interval_minutes = s.interval_minutes),
                 (SELECT min("timestamp") FROM intraday_ohlcv b WHERE b.symbol = s.symbol AND b.interval_minutes = s.interval_minutes),
                 (SELECT max("timestamp") FROM intraday_ohlcv b WHERE b.symbol = s.symbol AND b.interval_minutes = s.interval_minutes)
               FROM series s
               UNION ALL
               SELECT d.symbol, 1440,
                 (SELECT count(*) FROM historical_ohlcv b WHERE b.symbol = d.symbol),
                 (SELECT session_start FROM historical_ohlcv b WHERE b.symbol = d.symbol ORDER BY "timestamp" LIMIT 1),
                 (SELECT session_start FROM historical_ohlcv b WHERE b.symbol = d.symbol ORDER BY "timestamp" DESC LIMIT 1)
               FROM days d"#,
            &[],
            true,
        )
        .await?;
        let mut out: Vec<SeriesStats> = rows
            .iter()
            .filter_map(|r| {
                let minutes: i32 = r.get(1);
                // A series deleted between the scan and its probes has no first bar: skip it.
                let first: Option<DateTime<Utc>> = r.get(3);
                let last: Option<DateTime<Utc>> = r.get(4);
                Some(SeriesStats {
                    symbol: r.get(0),
                    interval: Interval::from_minutes(u32::try_from(minutes).ok()?)?,
                    bars: r.get(2),
                    first: ts(first?),
                    last: ts(last?),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.symbol, a.interval).cmp(&(&b.symbol, b.interval)));
        Ok(out)
    }

    async fn bars(
        &self,
        symbol: Symbol,
        interval: Interval,
        range: TimeRange,
        limit: i64,
    ) -> anyhow::Result<Vec<BarRow>> {
        let (from, to) = range.bounds();
        let minutes = interval.minutes() as i32;
        let rows = cached_query(self, r#"SELECT symbol, "timestamp", open, high, low, close, volume, num_samples, vwap, revision, source FROM intraday_ohlcv
                   WHERE symbol = $1 AND interval_minutes = $2 AND ($3::timestamptz IS NULL OR "timestamp" >= $3) AND ($4::timestamptz IS NULL OR "timestamp" <= $4)
                   ORDER BY "timestamp" DESC LIMIT $5"#, &[&symbol.as_str(), &minutes, &from, &to, &limit])
            .await?;
        Ok(rows
            .iter()
            .map(|r| BarRow {
                symbol: r.get(0),
                start: ts(r.get(1)),
                date: None,
                open: r.get(2),
                high: r.get(3),
                low: r.get(4),
                close: r.get(5),
                volume: r.get(6),
                trades: r.get(7),
                vwap: r.get(8),
                revision: r.get(9),
                source: r.get(10),
            })
            .collect())
    }

    async fn daily_bars(
        &self,
        symbol: Symbol,
        dates: DateRange,
        limit: i64,
    ) -> anyhow::Result<Vec<BarRow>> {
        let rows = cached_query(self, r#"SELECT symbol, session_start, "timestamp", open, high, low, close, volume, num_samples, vwap, revision, source FROM historical_ohlcv
                   WHERE symbol = $1 AND ($2::date IS NULL OR "timestamp" >= $2) AND ($3::date IS NULL OR "timestamp" <= $3)
                   ORDER BY "timestamp" DESC LIMIT $4"#, &[&symbol.as_str(), &dates.from, &dates.to, &limit])
            .await?;
        Ok(rows
            .iter()
            .map(|r| BarRow {
                symbol: r.get(0),
                start: ts(r.get(1)),
                date: Some(r.get(2)),
                open: r.get(3),
                high: r.get(4),
                low: r.get(5),
                close: r.get(6),
                volume: r.get(7),
                trades: r.get(8),
                vwap: r.get(9),
                revision: r.get(10),
                source: r.get(11),
            })
            .collect())
    }

    async fn analytics(
        &self,
        symbol: Symbol,
        interval: Interval,
        range: TimeRange,
        limit: i64,
    ) -> anyhow::Result<Vec<AnalyticsRow>> {
        let (from, to) = range.bounds();
        let minutes = interval.minutes() as i32;
        let rows = cached_query(self, r#"SELECT symbol, "timestamp", price, indicators FROM intraday_analytics
                   WHERE symbol = $1 AND interval_minutes = $2 AND ($3::timestamptz IS NULL OR "timestamp" >= $3) AND ($4::timestamptz IS NULL OR "timestamp" <= $4)
                   ORDER BY "timestamp" DESC LIMIT $5"#, &[&symbol.as_str(), &minutes, &from, &to, &limit])
            .await?;
        Ok(rows
            .iter()
            .map(|r| AnalyticsRow {
                symbol: r.get(0),
                start: ts(r.get(1)),
                date: None,
                price: r.get(2),
                values: indicator_values(&r.get(3)),
            })
            .collect())
    }

    async fn daily_analytics(
        &self,
        symbol: Symbol,
        dates: DateRange,
        limit: i64,
    ) -> anyhow::Result<Vec<AnalyticsRow>> {
        let rows = cached_query(self, r#"SELECT a.symbol, coalesce(b.session_start, a."timestamp"::timestamptz), a."timestamp", a.price, a.indicators
                   FROM daily_analytics a LEFT JOIN historical_ohlcv b USING (symbol, "timestamp")
                   WHERE a.symbol = $1 AND ($2::date IS NULL OR a."timestamp" >= $2) AND ($3::date IS NULL OR a."timestamp" <= $3)
                   ORDER BY a."timestamp" DESC LIMIT $4"#, &[&symbol.as_str(), &dates.from, &dates.to, &limit])
            .await?;
        Ok(rows
            .iter()
            .map(|r| AnalyticsRow {
                symbol: r.get(0),
                start: ts(r.get(1)),
                date: Some(r.get(2)),
                price: r.get(3),
                values: indicator_values(&r.get(4)),
            })
            .collect())
    }
}
