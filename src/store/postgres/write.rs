//! One flush: trades and realtime metrics by binary COPY (an `ON CONFLICT DO NOTHING`
//! insert when a replay meets rows already stored), bars, analytics and checkpoints by
//! `UNNEST` upserts, all in the caller's transaction.

use super::{session_date, utc};
use crate::domain::Bar;
use crate::output::{AnalyticsRecord, Checkpoint, OutputBatch, RealtimeRecord, TickRecord};
use crate::store::WriteStats;
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Transaction;
use futures_util::pin_mut;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

const TICK_COLUMNS: &str = r#"symbol, "timestamp", seq, price, volume, source, epoch"#;
const TICK_TYPES: [Type; 7] = [
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::INT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::TEXT,
    Type::INT4,
];
const REALTIME_COLUMNS: &str = r#"symbol, "timestamp", seq, price, price_velocity_10, price_velocity_50, tick_ratio, tick_vwap_20, volume_momentum, bb_bandwidth, bb_position, tick_rsi_14"#;
const REALTIME_TYPES: [Type; 12] = [
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::INT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
];

/// Owned values of one COPY row.
type Row = Vec<Box<dyn ToSql + Sync + Send>>;

/// Writes every row of `batches` in `tx` (trades stamped with broker `epoch`); the caller
/// commits.
pub(super) async fn write_batches(
    tx: &mut Transaction<'_>,
    batches: &[Arc<OutputBatch>],
    epoch: i32,
) -> anyhow::Result<WriteStats> {
    let ticks: Vec<&TickRecord> = batches.iter().flat_map(|b| &b.ticks).collect();
    let realtime: Vec<&RealtimeRecord> = batches.iter().flat_map(|b| &b.realtime).collect();
    // A stored trade with the same identity from another broker epoch is another trade: the
    // embedded broker counts offsets from 0 at every start, so a trade after a restart can
    // meet an earlier one at the same time and position. The key cannot hold both; count
    // it (never silent).
    let ticks_unstored = copy_or_insert(
        tx,
        "realtime_prices",
        TICK_COLUMNS,
        &TICK_TYPES,
        &ticks,
        |r| tick_row(r, epoch),
        Some(
            r#"SELECT count(*) FROM staging_realtime_prices s JOIN realtime_prices r
                 ON r.symbol = s.symbol AND r."timestamp" = s."timestamp" AND r.seq = s.seq
               WHERE r.epoch <> s.epoch"#,
        ),
    )
    .await?;
    copy_or_insert(
        tx,
        "realtime_analytics",
        REALTIME_COLUMNS,
        &REALTIME_TYPES,
        &realtime,
        realtime_row,
        None,
    )
    .await?;
    let bars = upsert_bars(tx, batches).await?;
    let analytics = upsert_analytics(tx, batches).await?;
    let (checkpoints, checkpoints_fenced) = upsert_checkpoints(tx, batches).await?;
    Ok(WriteStats {
        ticks: ticks.len(),
        bars,
        analytics,
        realtime: realtime.len(),
        checkpoints,
        checkpoints_fenced,
        ticks_unstored,
    })
}

fn tick_row(r: &TickRecord, epoch: i32) -> Row {
    let t = &r.tick;
    vec![
        Box::new(t.symbol().as_str().to_owned()),
        Box::new(utc(t.ts())),
        Box::new(r.seq.as_i64()),
        Box::new(t.price()),
        Box::new(t.size()),
        Box::new(t.source().as_str().to_owned()),
        Box::new(epoch),
    ]
}

fn realtime_row(r: &RealtimeRecord) -> Row {
    let mut row: Row = vec![
        Box::new(r.symbol.as_str().to_owned()),
        Box::new(utc(r.ts)),
        Box::new(r.seq.as_i64()),
        Box::new(r.price),
    ];
    row.extend(
        r.values
            .as_array()
            .iter()
            .map(|v| Box::new(*v) as Box<dyn ToSql + Sync + Send>),
    );
    row
}

/// Binary COPY of `rows` into `table`; on a duplicate key, the same rows through a temporary
/// table with `ON CONFLICT DO NOTHING` (stored rows are immutable facts). Returns what
/// `conflicts` (a count over the staged rows, run before they are inserted) says of a
/// duplicate batch: the staged rows that are not the stored ones they collide with.
async fn copy_or_insert<T>(
    tx: &mut Transaction<'_>,
    table: &str,
    columns: &str,
    types: &[Type],
    rows: &[&T],
    to_row: impl Fn(&T) -> Row + Copy,
    conflicts: Option<&str>,
) -> anyhow::Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    let fast = {
        let sp = tx.savepoint("copy_fast").await?;
        match copy_rows(&sp, table, columns, types, rows, to_row).await {
            Ok(()) => sp.commit().await.map_err(anyhow::Error::from),
            Err(e) => Err(e),
        }
    };
    match fast {
        Ok(()) => Ok(0),
        Err(e) if is_unique_violation(&e) => {
            let staging = format!("staging_{table}");
            tx.batch_execute(&format!(
                "CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            ))
            .await?;
            copy_rows(tx, &staging, columns, types, rows, to_row).await?;
            let collided = match conflicts {
                Some(query) => tx.query_one(query, &[]).await?.get::<_, i64>(0),
                None => 0,
            };
            tx.batch_execute(&format!(
                "INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} ON CONFLICT DO NOTHING; TRUNCATE {staging}"
            ))
            .await?;
            Ok(usize::try_from(collided).unwrap_or(0))
        }
        Err(e) => Err(e),
    }
}

fn is_unique_violation(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<tokio_postgres::Error>())
        .any(|pg| pg.code() == Some(&SqlState::UNIQUE_VIOLATION))
}

async fn copy_rows<T>(
    client: &tokio_postgres::Transaction<'_>,
    table: &str,
    columns: &str,
    types: &[Type],
    rows: &[&T],
    to_row: impl Fn(&T) -> Row,
) -> anyhow::Result<()> {
    let sink = client
        .copy_in(&format!("COPY {table} ({columns}) FROM STDIN BINARY"))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, types);
    pin_mut!(writer);
    for r in rows {
        let row = to_row(r);
        let refs: Vec<&(dyn ToSql + Sync)> = row
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        writer.as_mut().write(&refs).await?;
    }
    writer.finish().await?;
    Ok(())
}

/// Keeps the last record per key, in first-seen key order.
fn last_per_key<'a, K: std::hash::Hash + Eq, T>(
    items: impl Iterator<Item = &'a T>,
    key: impl Fn(&T) -> K,
) -> Vec<&'a T>
where
    T: 'a,
{
    let mut index: HashMap<K, usize> = HashMap::new();
    let mut out: Vec<&T> = Vec::new();
    for item in items {
        match index.get(&key(item)) {
            Some(&i) => out[i] = item,
            None => {
                index.insert(key(item), out.len());
                out.push(item);
            }
        }
    }
    out
}

async fn upsert_bars(tx: &Transaction<'_>, batches: &[Arc<OutputBatch>]) -> anyhow::Result<usize> {
    // A batch may hold a bar and its revision: keep the newest, or the upsert would touch the
    // same row twice in one statement.
    let bars = last_per_key(batches.iter().flat_map(|b| &b.bars), |r| {
        (r.bar.symbol, r.bar.interval, r.bar.start)
    });
    let (daily, intraday): (Vec<&Bar>, Vec<&Bar>) = bars
        .iter()
        .map(|r| &r.bar)
        .partition(|b| b.interval.is_daily());
    if !intraday.is_empty() {
        let symbols: Vec<&str> = intraday.iter().map(|b| b.symbol.as_str()).collect();
        let starts: Vec<DateTime<Utc>> = intraday.iter().map(|b| utc(b.start)).collect();
        let minutes: Vec<i32> = intraday
            .iter()
            .map(|b| b.interval.minutes() as i32)
            .collect();
        let (open, high, low, close, volume, vwap) = columns(&intraday);
        let trades: Vec<i64> = intraday.iter().map(|b| b.trades as i64).collect();
        let revision: Vec<i32> = intraday.iter().map(|b| b.revision as i32).collect();
        let source: Vec<&str> = intraday.iter().map(|_| "aggregator").collect();
        let ends: Vec<DateTime<Utc>> = intraday.iter().map(|b| utc(b.end)).collect();
        tx.execute(
            r#"INSERT INTO intraday_ohlcv (symbol, "timestamp", interval_minutes, open, high, low, close, volume, num_samples, vwap, revision, source, bar_end)
               SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::int4[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::int8[], $10::float8[], $11::int4[], $12::text[], $13::timestamptz[])
               ON CONFLICT (symbol, interval_minutes, "timestamp") DO UPDATE SET
                 open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
                 volume = EXCLUDED.volume, num_samples = EXCLUDED.num_samples, vwap = EXCLUDED.vwap,
                 revision = EXCLUDED.revision, source = EXCLUDED.source, bar_end = EXCLUDED.bar_end, updated_at = now()
               WHERE (intraday_ohlcv.num_samples, intraday_ohlcv.revision)
                  <= (EXCLUDED.num_samples, EXCLUDED.revision)"#,
            &[&symbols, &starts, &minutes, &open, &high, &low, &close, &volume, &trades, &vwap, &revision, &source, &ends],
        )
        .await
        .context("upsert intraday_ohlcv")?;
    }
    if !daily.is_empty() {
        let symbols: Vec<&str> = daily.iter().map(|b| b.symbol.as_str()).collect();
        let dates: Vec<NaiveDate> = daily.iter().map(|b| session_date(b.start, b.end)).collect();
        let (open, high, low, close, volume, vwap) = columns(&daily);
        let trades: Vec<i64> = daily.iter().map(|b| b.trades as i64).collect();
        let revision: Vec<i32> = daily.iter().map(|b| b.revision as i32).collect();
        let source: Vec<&str> = daily.iter().map(|_| "aggregator").collect();
        let starts: Vec<DateTime<Utc>> = daily.iter().map(|b| utc(b.start)).collect();
        let ends: Vec<DateTime<Utc>> = daily.iter().map(|b| utc(b.end)).collect();
        tx.execute(
            r#"INSERT INTO historical_ohlcv (symbol, "timestamp", open, high, low, close, volume, num_samples, vwap, revision, source, session_start, session_end)
               SELECT * FROM UNNEST($1::text[], $2::date[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::int8[], $9::float8[], $10::int4[], $11::text[], $12::timestamptz[], $13::timestamptz[])
               ON CONFLICT (symbol, "timestamp") DO UPDATE SET
                 open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
                 volume = EXCLUDED.volume, num_samples = EXCLUDED.num_samples, vwap = EXCLUDED.vwap,
                 revision = EXCLUDED.revision, source = EXCLUDED.source, session_start = EXCLUDED.session_start,
                 session_end = EXCLUDED.session_end, updated_at = now()
               WHERE (historical_ohlcv.num_samples, historical_ohlcv.revision)
                  <= (EXCLUDED.num_samples, EXCLUDED.revision)"#,
            &[&symbols, &dates, &open, &high, &low, &close, &volume, &trades, &vwap, &revision, &source, &starts, &ends],
        )
        .await
        .context("upsert historical_ohlcv")?;
    }
    Ok(bars.len())
}

type PriceColumns = (
    Vec<f64>,
    Vec<f64>,
    Vec<f64>,
    Vec<f64>,
    Vec<f64>,
    Vec<Option<f64>>,
);

fn columns(bars: &[&Bar]) -> PriceColumns {
    (
        bars.iter().map(|b| b.open).collect(),
        bars.iter().map(|b| b.high).collect(),
        bars.iter().map(|b| b.low).collect(),
        bars.iter().map(|b| b.close).collect(),
        bars.iter().map(|b| b.volume).collect(),
        bars.iter().map(|b| b.vwap()).collect(),
    )
}

/// The indicator map as stored: every name, `null` where undefined.
pub(crate) fn indicators_json(a: &AnalyticsRecord) -> serde_json::Value {
    serde_json::Value::Object(
        a.values
            .iter()
            .map(|(k, v)| {
                (
                    k.to_owned(),
                    v.map_or(serde_json::Value::Null, serde_json::Value::from),
                )
            })
            .collect(),
    )
}

async fn upsert_analytics(
    tx: &Transaction<'_>,
    batches: &[Arc<OutputBatch>],
) -> anyhow::Result<usize> {
    let rows = last_per_key(batches.iter().flat_map(|b| &b.analytics), |a| {
        (a.symbol, a.interval, a.start)
    });
    let (daily, intraday): (Vec<&AnalyticsRecord>, Vec<&AnalyticsRecord>) =
        rows.iter().partition(|a| a.interval.is_daily());
    if !intraday.is_empty() {
        let symbols: Vec<&str> = intraday.iter().map(|a| a.symbol.as_str()).collect();
        let starts: Vec<DateTime<Utc>> = intraday.iter().map(|a| utc(a.start)).collect();
        let minutes: Vec<i32> = intraday
            .iter()
            .map(|a| a.interval.minutes() as i32)
            .collect();
        let prices: Vec<f64> = intraday.iter().map(|a| a.price).collect();
        let values: Vec<serde_json::Value> = intraday.iter().map(|a| indicators_json(a)).collect();
        let trades: Vec<i64> = intraday.iter().map(|a| a.trades as i64).collect();
        // Not for a bar with fewer trades than the stored one (the bars are written first,
        // in this transaction): see `AnalyticsRecord::trades`.
        tx.execute(
            r#"INSERT INTO intraday_analytics (symbol, "timestamp", interval_minutes, price, indicators)
               SELECT u.symbol, u.ts, u.minutes, u.price, u.indicators
               FROM UNNEST($1::text[], $2::timestamptz[], $3::int4[], $4::float8[], $5::jsonb[], $6::int8[])
                 AS u(symbol, ts, minutes, price, indicators, trades)
               WHERE NOT EXISTS (SELECT 1 FROM intraday_ohlcv b
                                 WHERE b.symbol = u.symbol AND b.interval_minutes = u.minutes
                                   AND b."timestamp" = u.ts AND b.num_samples > u.trades)
               ON CONFLICT (symbol, interval_minutes, "timestamp") DO UPDATE SET
                 price = EXCLUDED.price, indicators = EXCLUDED.indicators, updated_at = now()"#,
            &[&symbols, &starts, &minutes, &prices, &values, &trades],
        )
        .await
        .context("upsert intraday_analytics")?;
    }
    if !daily.is_empty() {
        let symbols: Vec<&str> = daily.iter().map(|a| a.symbol.as_str()).collect();
        let dates: Vec<NaiveDate> = daily.iter().map(|a| session_date(a.start, a.end)).collect();
        let prices: Vec<f64> = daily.iter().map(|a| a.price).collect();
        let values: Vec<serde_json::Value> = daily.iter().map(|a| indicators_json(a)).collect();
        let trades: Vec<i64> = daily.iter().map(|a| a.trades as i64).collect();
        tx.execute(
            r#"INSERT INTO daily_analytics (symbol, "timestamp", price, indicators)
               SELECT u.symbol, u.day, u.price, u.indicators
               FROM UNNEST($1::text[], $2::date[], $3::float8[], $4::jsonb[], $5::int8[])
                 AS u(symbol, day, price, indicators, trades)
               WHERE NOT EXISTS (SELECT 1 FROM historical_ohlcv b
                                 WHERE b.symbol = u.symbol AND b."timestamp" = u.day
                                   AND b.num_samples > u.trades)
               ON CONFLICT (symbol, "timestamp") DO UPDATE SET
                 price = EXCLUDED.price, indicators = EXCLUDED.indicators, updated_at = now()"#,
            &[&symbols, &dates, &prices, &values, &trades],
        )
        .await
        .context("upsert daily_analytics")?;
    }
    Ok(rows.len())
}

/// Upserts the newest checkpoint of each symbol, except those that would replace a newer
/// one ([`Checkpoint::may_replace`]: the rows are locked, in symbol order, first). Returns
/// `(written, fenced)`.
async fn upsert_checkpoints(
    tx: &Transaction<'_>,
    batches: &[Arc<OutputBatch>],
) -> anyhow::Result<(usize, usize)> {
    let rows = last_per_key(batches.iter().flat_map(|b| &b.checkpoints), |c| c.symbol);
    if rows.is_empty() {
        return Ok((0, 0));
    }
    let symbols: Vec<&str> = rows.iter().map(|c| c.symbol.as_str()).collect();
    let stored: HashMap<String, (String, Vec<(i32, i64)>)> = tx
        .query(
            "SELECT symbol, epoch, applied FROM symbol_checkpoints
             WHERE symbol = ANY($1) AND epoch IS NOT NULL AND applied IS NOT NULL
             ORDER BY symbol FOR UPDATE",
            &[&symbols],
        )
        .await
        .context("lock symbol_checkpoints")?
        .into_iter()
        .filter_map(|r| {
            let applied = serde_json::from_value(r.get::<_, serde_json::Value>(2)).ok()?;
            Some((r.get(0), (r.get(1), applied)))
        })
        .collect();
    let (accepted, fenced): (Vec<&Checkpoint>, Vec<&Checkpoint>) =
        rows.iter().copied().partition(|c| {
            c.may_replace(
                stored
                    .get(c.symbol.as_str())
                    .map(|(e, a)| (e.as_str(), a.as_slice())),
            )
        });
    for c in &fenced {
        tracing::warn!(symbol = %c.symbol, epoch = %c.epoch, applied = ?c.applied, "checkpoint not written: the stored one applied more of this broker's log (this instance lost the symbol's partition while it was not looking)");
    }
    if accepted.is_empty() {
        return Ok((0, fenced.len()));
    }
    let symbols: Vec<&str> = accepted.iter().map(|c| c.symbol.as_str()).collect();
    let seqs: Vec<i64> = accepted.iter().map(|c| c.seq.as_i64()).collect();
    let states: Vec<&[u8]> = accepted.iter().map(|c| c.state.as_slice()).collect();
    let epochs: Vec<&str> = accepted.iter().map(|c| c.epoch.as_str()).collect();
    let applied: Vec<serde_json::Value> = accepted
        .iter()
        .map(|c| serde_json::json!(c.applied))
        .collect();
    tx.execute(
        "INSERT INTO symbol_checkpoints (symbol, seq, state, epoch, applied)
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::bytea[], $4::text[], $5::jsonb[])
         ON CONFLICT (symbol) DO UPDATE SET seq = EXCLUDED.seq, state = EXCLUDED.state,
           epoch = EXCLUDED.epoch, applied = EXCLUDED.applied, updated_at = now()",
        &[&symbols, &seqs, &states, &epochs, &applied],
    )
    .await
    .context("upsert symbol_checkpoints")?;
    Ok((accepted.len(), fenced.len()))
}
