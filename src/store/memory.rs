//! `MemoryStore`: the store when no database is configured. Same tables, same upsert and
//! retention rules as PostgreSQL, bounded in rows so a long run cannot exhaust memory; and
//! the same queries (`store::query`), answered from those tables.

use crate::domain::{Bar, Interval, Symbol, Timestamp};
use crate::output::{AnalyticsRecord, Checkpoint, OutputBatch, RealtimeRecord, TickRecord};
use crate::store::postgres::session_date;
use crate::store::query::{
    AnalyticsRow, BarRow, DateRange, RealtimeRow, SeriesStats, SymbolStats, TickRow, TimeRange,
};
use crate::store::series::Series;
use crate::store::{Generations, Retention, WriteStats};
use chrono::NaiveDate;
use std::collections::HashMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

/// Row limits per series (per symbol, or per symbol and interval); the oldest rows go first.
#[derive(Debug, Clone, Copy)]
pub struct MemoryLimits {
    /// Trades and published realtime metrics kept per symbol.
    pub ticks_per_symbol: usize,
    /// Bars (and their analytics) kept per symbol and interval.
    pub bars_per_series: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        Self {
            ticks_per_symbol: 200_000,
            bars_per_series: 50_000,
        }
    }
}

/// Keys order rows the way PostgreSQL's primary keys do.
type TickKey = (Timestamp, i64);

/// The tables, per series.
#[derive(Default)]
pub(crate) struct Tables {
    pub(crate) ticks: HashMap<Symbol, Series<TickKey, TickRecord>>,
    pub(crate) realtime: HashMap<Symbol, Series<TickKey, RealtimeRecord>>,
    pub(crate) bars: HashMap<(Symbol, Interval), Series<Timestamp, Bar>>,
    pub(crate) analytics: HashMap<(Symbol, Interval), Series<Timestamp, AnalyticsRecord>>,
    pub(crate) checkpoints: HashMap<Symbol, Checkpoint>,
    pub(crate) coverage: HashMap<(Symbol, Interval), Vec<(Timestamp, Timestamp)>>,
}

/// An in-process store. Clones share the tables.
///
/// A std `Mutex`, not an async one: every critical section is a few map operations with
/// no await inside, so holding it briefly on an arbiter thread is cheaper than a task hop.
#[derive(Clone, Default)]
pub struct MemoryStore {
    pub(crate) tables: Arc<Mutex<Tables>>,
    pub(crate) limits: MemoryLimits,
    pub(crate) generations: Arc<Generations>,
}

impl MemoryStore {
    /// An empty store with the given limits.
    pub fn new(limits: MemoryLimits) -> Self {
        Self {
            tables: Arc::default(),
            limits,
            generations: Arc::default(),
        }
    }

    pub(crate) fn write(&self, batches: &[Arc<OutputBatch>]) -> WriteStats {
        // unwrap: a panic while holding the lock would already have taken the process down.
        let mut t = self.tables.lock().unwrap();
        let mut stats = WriteStats::default();
        for b in batches {
            // A batch usually holds one symbol: one series lookup per run of a symbol.
            for run in b.ticks.chunk_by(|x, y| x.tick.symbol() == y.tick.symbol()) {
                let series = t.ticks.entry(run[0].tick.symbol()).or_default();
                for r in run {
                    // A replayed trade is stored once: the first copy stays.
                    series.upsert((r.tick.ts(), r.seq.as_i64()), *r, |_| true);
                }
                series.trim(self.limits.ticks_per_symbol);
            }
            for run in b.realtime.chunk_by(|x, y| x.symbol == y.symbol) {
                let series = t.realtime.entry(run[0].symbol).or_default();
                for r in run {
                    series.upsert((r.ts, r.seq.as_i64()), *r, |_| true);
                }
                series.trim(self.limits.ticks_per_symbol);
            }
            for r in &b.bars {
                let series = t.bars.entry((r.bar.symbol, r.bar.interval)).or_default();
                // A replay can bring an older revision of a bar already revised; never fewer
                // trades than stored (the rule the database keeps against a stale instance).
                series.upsert(r.bar.start, r.bar, |old| {
                    (old.trades, old.revision) > (r.bar.trades, r.bar.revision)
                });
                series.trim(self.limits.bars_per_series);
            }
            for a in &b.analytics {
                let series = t.analytics.entry((a.symbol, a.interval)).or_default();
                series.upsert(a.start, *a, |_| false);
                series.trim(self.limits.bars_per_series);
            }
            for c in &b.checkpoints {
                let stored = t.checkpoints.get(&c.symbol);
                if c.may_replace(stored.map(|s| (s.epoch.as_str(), s.applied.as_slice()))) {
                    t.checkpoints.insert(c.symbol, c.clone());
                    stats.checkpoints += 1;
                } else {
                    stats.checkpoints_fenced += 1;
                }
            }
            stats.ticks += b.ticks.len();
            stats.realtime += b.realtime.len();
            stats.bars += b.bars.len();
            stats.analytics += b.analytics.len();
        }
        stats
    }

    pub(crate) fn load_checkpoint(&self, symbol: Symbol) -> Option<Checkpoint> {
        // unwrap: see `write`.
        self.tables
            .lock()
            .unwrap()
            .checkpoints
            .get(&symbol)
            .cloned()
    }

    pub(crate) fn checkpointed_symbols(&self) -> Vec<Symbol> {
        // unwrap: see `write`.
        self.tables
            .lock()
            .unwrap()
            .checkpoints
            .keys()
            .copied()
            .collect()
    }

    pub(crate) fn apply_retention(&self, retention: &Retention) -> u64 {
        let now = Timestamp::from_datetime(&chrono::Utc::now());
        let cutoff =
            |d: std::time::Duration| now.add_micros(-(d.as_micros().min(i64::MAX as u128) as i64));
        // unwrap: see `write`.
        let mut t = self.tables.lock().unwrap();
        let mut deleted = 0u64;
        let ticks_cut = cutoff(retention.realtime_prices);
        for series in t.ticks.values_mut() {
            deleted += series.drop_while(|(ts, _)| *ts < ticks_cut);
        }
        let rt_cut = cutoff(retention.realtime_analytics);
        for series in t.realtime.values_mut() {
            deleted += series.drop_while(|(ts, _)| *ts < rt_cut);
        }
        let bar_cut = cutoff(retention.intraday_ohlcv);
        for ((_, interval), series) in t.bars.iter_mut() {
            if !interval.is_daily() {
                deleted += series.drop_while(|ts| *ts < bar_cut);
            }
        }
        let an_cut = cutoff(retention.intraday_analytics);
        for ((_, interval), series) in t.analytics.iter_mut() {
            if !interval.is_daily() {
                deleted += series.drop_while(|ts| *ts < an_cut);
            }
        }
        deleted
    }
}

// The read side: the queries of `store::query`, on the tables above.

/// Newest-first rows of a map range, at most `limit`.
fn newest<'a, K: Ord + 'a, V: 'a>(
    iter: impl DoubleEndedIterator<Item = (&'a K, &'a V)>,
    limit: i64,
) -> impl Iterator<Item = &'a V> {
    iter.rev()
        .take(usize::try_from(limit).unwrap_or(0))
        .map(|(_, v)| v)
}

/// The (time, offset) keys of rows stamped within `range`, whatever their offset.
fn keys_within(range: TimeRange) -> (Bound<TickKey>, Bound<TickKey>) {
    let lo = range
        .from
        .map_or(Bound::Unbounded, |f| Bound::Included((f, i64::MIN)));
    let hi = range
        .to
        .map_or(Bound::Unbounded, |to| Bound::Included((to, i64::MAX)));
    (lo, hi)
}

impl MemoryStore {
    pub(crate) fn ticks(&self, symbol: Symbol, range: TimeRange, limit: i64) -> Vec<TickRow> {
        // unwrap: a poisoned lock means a panic already took a writer down; see `write`.
        let t = self.tables.lock().unwrap();
        let Some(series) = t.ticks.get(&symbol) else {
            return Vec::new();
        };
        let (lo, hi) = keys_within(range);
        newest(series.range(lo, hi), limit)
            .map(|r| TickRow {
                symbol: symbol.to_string(),
                ts: r.tick.ts(),
                price: r.tick.price(),
                volume: r.tick.size(),
                source: r.tick.source().to_string(),
            })
            .collect()
    }

    pub(crate) fn realtime(
        &self,
        symbol: Symbol,
        range: TimeRange,
        limit: i64,
    ) -> Vec<RealtimeRow> {
        // unwrap: see `ticks`.
        let t = self.tables.lock().unwrap();
        let Some(series) = t.realtime.get(&symbol) else {
            return Vec::new();
        };
        let (lo, hi) = keys_within(range);
        newest(series.range(lo, hi), limit)
            .map(|r| RealtimeRow {
                symbol: symbol.to_string(),
                ts: r.ts,
                price: r.price,
                values: *r.values.as_array(),
            })
            .collect()
    }

    pub(crate) fn symbols(&self) -> Vec<SymbolStats> {
        // unwrap: see `ticks`.
        let t = self.tables.lock().unwrap();
        let mut out: Vec<SymbolStats> = t
            .ticks
            .iter()
            .filter_map(|(s, series)| {
                let ((first, _), (last, _)) = series.key_span()?;
                Some(SymbolStats {
                    symbol: s.to_string(),
                    tick_count: series.len() as i64,
                    first_seen: first,
                    last_seen: last,
                })
            })
            .collect();
        out.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        out
    }

    pub(crate) fn bar_series(&self) -> Vec<SeriesStats> {
        // unwrap: see `ticks`.
        let t = self.tables.lock().unwrap();
        let mut out: Vec<SeriesStats> = t
            .bars
            .iter()
            .filter_map(|((symbol, interval), series)| {
                let (first, last) = series.key_span()?;
                Some(SeriesStats {
                    symbol: symbol.to_string(),
                    interval: *interval,
                    bars: series.len() as i64,
                    first,
                    last,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.symbol, a.interval).cmp(&(&b.symbol, b.interval)));
        out
    }

    pub(crate) fn bars(
        &self,
        symbol: Symbol,
        interval: Interval,
        range: TimeRange,
        limit: i64,
    ) -> Vec<BarRow> {
        // unwrap: see `ticks`.
        let t = self.tables.lock().unwrap();
        let Some(series) = t.bars.get(&(symbol, interval)) else {
            return Vec::new();
        };
        newest(
            series.iter().filter(|(start, _)| range.contains(**start)),
            limit,
        )
        .map(|b| bar_row(b, None))
        .collect()
    }

    pub(crate) fn daily_bars(&self, symbol: Symbol, dates: DateRange, limit: i64) -> Vec<BarRow> {
        // unwrap: see `ticks`.
        let t = self.tables.lock().unwrap();
        let Some(series) = t.bars.get(&(symbol, Interval::D1)) else {
            return Vec::new();
        };
        newest(
            series
                .iter()
                .filter(|(_, b)| dates.contains(session_date(b.start, b.end))),
            limit,
        )
        .map(|b| bar_row(b, Some(session_date(b.start, b.end))))
        .collect()
    }

    pub(crate) fn analytics(
        &self,
        symbol: Symbol,
        interval: Interval,
        range: TimeRange,
        limit: i64,
    ) -> Vec<AnalyticsRow> {
        // unwrap: see `ticks`.
        let t = self.tables.lock().unwrap();
        let Some(series) = t.analytics.get(&(symbol, interval)) else {
            return Vec::new();
        };
        newest(
            series.iter().filter(|(start, _)| range.contains(**start)),
            limit,
        )
        .map(|a| AnalyticsRow {
            symbol: symbol.to_string(),
            start: a.start,
            date: None,
            price: a.price,
            values: *a.values.as_array(),
        })
        .collect()
    }

    pub(crate) fn daily_analytics(
        &self,
        symbol: Symbol,
        dates: DateRange,
        limit: i64,
    ) -> Vec<AnalyticsRow> {
        // unwrap: see `ticks`.
        let t = self.tables.lock().unwrap();
        let Some(series) = t.analytics.get(&(symbol, Interval::D1)) else {
            return Vec::new();
        };
        newest(
            series
                .iter()
                .filter(|(_, a)| dates.contains(session_date(a.start, a.end))),
            limit,
        )
        .map(|a| AnalyticsRow {
            symbol: symbol.to_string(),
            start: a.start,
            date: Some(session_date(a.start, a.end)),
            price: a.price,
            values: *a.values.as_array(),
        })
        .collect()
    }
}

fn bar_row(b: &crate::domain::Bar, date: Option<NaiveDate>) -> BarRow {
    BarRow {
        symbol: b.symbol.to_string(),
        start: b.start,
        date,
        open: b.open,
        high: b.high,
        low: b.low,
        close: b.close,
        volume: b.volume,
        trades: b.trades as i64,
        vwap: b.vwap(),
        revision: b.revision as i32,
        // The memory store keeps no source: a bar without trades was backfilled.
        source: if b.trades == 0 {
            "backfill"
        } else {
            "aggregator"
        }
        .to_owned(),
    }
}
