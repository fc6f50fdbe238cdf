//! The store's side of history: stored bar starts, covered spans (and their expiry), and
//! provider bars.
//!
//! Provider bars never replace bars the pipeline built from trades (those are exact; a
//! provider's are not), and a refetch replaces an earlier provider bar instead of adding to
//! it. Bars and the coverage of their span are written in one transaction.

use crate::domain::Coverage;
use crate::domain::HistoryBar;
use crate::domain::{Interval, Symbol, Timestamp};
use crate::store::postgres::{session_date, utc};
use crate::store::{MemoryStore, PgStore, Store};
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use std::ops::Bound;

impl Store {
    /// Starts of the `interval` bars of `symbol` stored in `[from, to)`, ascending.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn bar_starts(
        &self,
        symbol: Symbol,
        interval: Interval,
        from: Timestamp,
        to: Timestamp,
    ) -> anyhow::Result<Vec<Timestamp>> {
        match self {
            Self::Postgres(pg) => pg.bar_starts(symbol, interval, from, to).await,
            Self::Memory(m) => Ok(m.bar_starts(symbol, interval, from, to)),
        }
    }

    /// Spans of `symbol`'s `interval` already asked of a provider, overlapping `[from, to)`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn coverage(
        &self,
        symbol: Symbol,
        interval: Interval,
        from: Timestamp,
        to: Timestamp,
    ) -> anyhow::Result<Vec<(Timestamp, Timestamp)>> {
        match self {
            Self::Postgres(pg) => pg.coverage(symbol, interval, from, to).await,
            Self::Memory(m) => Ok(m.coverage(symbol, interval, from, to)),
        }
    }

    /// Writes provider bars (with their provider) and covered spans, in one transaction.
    /// Returns the bars stored (bars the pipeline built are kept, not replaced).
    ///
    /// # Errors
    /// When the database fails; nothing is then written.
    pub async fn write_history(
        &self,
        bars: &[(HistoryBar, String)],
        coverage: &[Coverage],
    ) -> anyhow::Result<u64> {
        let stored = match self {
            Self::Postgres(pg) => pg.write_history(bars, coverage).await?,
            Self::Memory(m) => m.write_history(bars, coverage),
        };
        if !bars.is_empty() {
            self.generations().bump(crate::store::TableKind::Bars);
        }
        Ok(stored)
    }
}

impl Store {
    /// Forgets the coverage of intraday spans older than `cutoff` (trimming a span that
    /// straddles it): their bars are deleted by the intraday retention, so a coverage row
    /// would say "filled" of a span that holds nothing. Daily bars are kept forever, and so
    /// is their coverage. Returns the rows changed.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn expire_coverage(&self, cutoff: Timestamp) -> anyhow::Result<u64> {
        match self {
            Self::Postgres(pg) => pg.expire_coverage(cutoff).await,
            Self::Memory(m) => Ok(m.expire_coverage(cutoff)),
        }
    }
}

impl PgStore {
    async fn expire_coverage(&self, cutoff: Timestamp) -> anyhow::Result<u64> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let daily = Interval::D1.minutes() as i32;
        let deleted = tx
            .execute(
                "DELETE FROM backfill_coverage WHERE interval_minutes <> $1 AND range_end <= $2",
                &[&daily, &utc(cutoff)],
            )
            .await?;
        let trimmed = tx
            .execute(
                "UPDATE backfill_coverage SET range_start = $2
                 WHERE interval_minutes <> $1 AND range_start < $2 AND range_end > $2",
                &[&daily, &utc(cutoff)],
            )
            .await?;
        tx.commit().await?;
        Ok(deleted + trimmed)
    }

    async fn bar_starts(
        &self,
        symbol: Symbol,
        interval: Interval,
        from: Timestamp,
        to: Timestamp,
    ) -> anyhow::Result<Vec<Timestamp>> {
        let client = self.pool().get().await?;
        let rows = if interval.is_daily() {
            client
                .query(
                    r#"SELECT session_start FROM historical_ohlcv
                       WHERE symbol = $1 AND session_start >= $2 AND session_start < $3 ORDER BY 1"#,
                    &[&symbol.as_str(), &utc(from), &utc(to)],
                )
                .await
        } else {
            client
                .query(
                    r#"SELECT "timestamp" FROM intraday_ohlcv
                       WHERE symbol = $1 AND interval_minutes = $2 AND "timestamp" >= $3 AND "timestamp" < $4 ORDER BY 1"#,
                    &[&symbol.as_str(), &(interval.minutes() as i32), &utc(from), &utc(to)],
                )
                .await
        }
        .context("read stored bar starts")?;
        Ok(rows
            .iter()
            .map(|r| Timestamp::from_datetime(&r.get::<_, DateTime<Utc>>(0)))
            .collect())
    }

    async fn coverage(
        &self,
        symbol: Symbol,
        interval: Interval,
        from: Timestamp,
        to: Timestamp,
    ) -> anyhow::Result<Vec<(Timestamp, Timestamp)>> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                r#"SELECT range_start, range_end FROM backfill_coverage
                   WHERE symbol = $1 AND interval_minutes = $2 AND range_end > $3 AND range_start < $4"#,
                &[&symbol.as_str(), &(interval.minutes() as i32), &utc(from), &utc(to)],
            )
            .await
            .context("read backfill coverage")?;
        Ok(rows
            .iter()
            .map(|r| {
                let at = |i| Timestamp::from_datetime(&r.get::<_, DateTime<Utc>>(i));
                (at(0), at(1))
            })
            .collect())
    }

    async fn write_history(
        &self,
        bars: &[(HistoryBar, String)],
        coverage: &[Coverage],
    ) -> anyhow::Result<u64> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        // One row per key (a redelivered chunk may repeat a bar), the last one winning.
        let mut latest: std::collections::HashMap<(Symbol, Interval, Timestamp), usize> =
            std::collections::HashMap::new();
        for (i, (b, _)) in bars.iter().enumerate() {
            latest.insert((b.symbol, b.interval, b.start), i);
        }
        let mut keep: Vec<usize> = latest.into_values().collect();
        keep.sort_unstable();
        let (daily, intraday): (Vec<usize>, Vec<usize>) = keep
            .into_iter()
            .partition(|i| bars[*i].0.interval.is_daily());
        let mut stored = 0;
        if !intraday.is_empty() {
            let c = Columns::of(bars, &intraday);
            let minutes: Vec<i32> = intraday
                .iter()
                .map(|i| bars[*i].0.interval.minutes() as i32)
                .collect();
            stored += tx
                .execute(
                    r#"INSERT INTO intraday_ohlcv (symbol, "timestamp", interval_minutes, open, high, low, close, volume, num_samples, vwap, revision, source, bar_end)
                       SELECT s, t, m, o, h, l, c, v, 0, NULL, 0, src, e
                       FROM UNNEST($1::text[], $2::timestamptz[], $3::int4[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::text[], $10::timestamptz[])
                            AS x(s, t, m, o, h, l, c, v, src, e)
                       ON CONFLICT (symbol, interval_minutes, "timestamp") DO UPDATE SET
                         open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
                         volume = EXCLUDED.volume, source = EXCLUDED.source, bar_end = EXCLUDED.bar_end, updated_at = now()
                       WHERE intraday_ohlcv.source <> 'aggregator'"#,
                    &[
                        &c.symbols, &c.starts, &minutes, &c.open, &c.high, &c.low, &c.close,
                        &c.volume, &c.sources, &c.ends,
                    ],
                )
                .await
                .context("upsert backfilled intraday_ohlcv")?;
        }
        if !daily.is_empty() {
            let c = Columns::of(bars, &daily);
            let dates: Vec<NaiveDate> = daily
                .iter()
                .map(|i| session_date(bars[*i].0.start, bars[*i].0.end))
                .collect();
            stored += tx
                .execute(
                    r#"INSERT INTO historical_ohlcv (symbol, "timestamp", open, high, low, close, volume, num_samples, vwap, revision, source, session_start, session_end)
                       SELECT s, d, o, h, l, c, v, 0, NULL, 0, src, st, e
                       FROM UNNEST($1::text[], $2::date[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::text[], $9::timestamptz[], $10::timestamptz[])
                            AS x(s, d, o, h, l, c, v, src, st, e)
                       ON CONFLICT (symbol, "timestamp") DO UPDATE SET
                         open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
                         volume = EXCLUDED.volume, source = EXCLUDED.source, session_start = EXCLUDED.session_start,
                         session_end = EXCLUDED.session_end, updated_at = now()
                       WHERE historical_ohlcv.source <> 'aggregator'"#,
                    &[
                        &c.symbols, &dates, &c.open, &c.high, &c.low, &c.close, &c.volume,
                        &c.sources, &c.starts, &c.ends,
                    ],
                )
                .await
                .context("upsert backfilled historical_ohlcv")?;
        }
        for c in coverage {
            tx.execute(
                r#"INSERT INTO backfill_coverage (symbol, interval_minutes, range_start, range_end, provider, bars)
                   VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (symbol, interval_minutes, range_start) DO UPDATE SET
                     range_end = GREATEST(backfill_coverage.range_end, EXCLUDED.range_end),
                     provider = EXCLUDED.provider, bars = EXCLUDED.bars, fetched_at = now()"#,
                &[
                    &c.symbol.as_str(),
                    &(c.interval.minutes() as i32),
                    &utc(c.start),
                    &utc(c.end),
                    &c.provider,
                    &(c.bars as i64),
                ],
            )
            .await
            .context("record backfill coverage")?;
        }
        tx.commit().await?;
        Ok(stored)
    }
}

/// The columns both bar tables take from provider bars, for `UNNEST` (one array per column).
struct Columns<'a> {
    symbols: Vec<&'a str>,
    starts: Vec<DateTime<Utc>>,
    ends: Vec<DateTime<Utc>>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<f64>,
    sources: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    /// The columns of `bars[i]` for each `i` of `rows`, in that order.
    fn of(bars: &'a [(HistoryBar, String)], rows: &[usize]) -> Self {
        let pick = |f: fn(&HistoryBar) -> f64| rows.iter().map(|i| f(&bars[*i].0)).collect();
        Self {
            symbols: rows.iter().map(|i| bars[*i].0.symbol.as_str()).collect(),
            starts: rows.iter().map(|i| utc(bars[*i].0.start)).collect(),
            ends: rows.iter().map(|i| utc(bars[*i].0.end)).collect(),
            open: pick(|b| b.open),
            high: pick(|b| b.high),
            low: pick(|b| b.low),
            close: pick(|b| b.close),
            volume: pick(|b| b.volume),
            sources: rows.iter().map(|i| bars[*i].1.as_str()).collect(),
        }
    }
}

impl MemoryStore {
    fn expire_coverage(&self, cutoff: Timestamp) -> u64 {
        // unwrap: a panic while holding the lock would already have taken the process down.
        let mut t = self.tables.lock().unwrap();
        let mut changed = 0;
        for ((_, interval), spans) in t.coverage.iter_mut() {
            if interval.is_daily() {
                continue;
            }
            let before = spans.len();
            spans.retain(|(_, end)| *end > cutoff);
            changed += (before - spans.len()) as u64;
            for (start, _) in spans.iter_mut().filter(|(s, _)| *s < cutoff) {
                *start = cutoff;
                changed += 1;
            }
        }
        changed
    }

    fn bar_starts(
        &self,
        symbol: Symbol,
        interval: Interval,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<Timestamp> {
        // unwrap: a panic while holding the lock would already have taken the process down.
        let t = self.tables.lock().unwrap();
        t.bars
            .get(&(symbol, interval))
            .map(|s| {
                s.range(Bound::Included(from), Bound::Excluded(to))
                    .map(|(k, _)| *k)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn coverage(
        &self,
        symbol: Symbol,
        interval: Interval,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(Timestamp, Timestamp)> {
        // unwrap: see `bar_starts`.
        let t = self.tables.lock().unwrap();
        t.coverage
            .get(&(symbol, interval))
            .map(|spans| {
                spans
                    .iter()
                    .filter(|(s, e)| *e > from && *s < to)
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn write_history(&self, bars: &[(HistoryBar, String)], coverage: &[Coverage]) -> u64 {
        // unwrap: see `bar_starts`.
        let mut t = self.tables.lock().unwrap();
        let mut stored = 0;
        for (b, _) in bars {
            let series = t.bars.entry((b.symbol, b.interval)).or_default();
            // Bars built from trades have trades > 0 and are kept.
            if series.upsert(b.start, b.to_bar(), |old| old.trades > 0) {
                stored += 1;
            }
            series.trim(self.limits.bars_per_series);
        }
        for c in coverage {
            t.coverage
                .entry((c.symbol, c.interval))
                .or_default()
                .push((c.start, c.end));
        }
        stored
    }
}
