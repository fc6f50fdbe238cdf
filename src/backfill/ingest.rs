//! `BarIngest`: stores the bars that arrive on `market.prices.history`.
//!
//! Backfill and `tickflow replay --bars` publish bars there, keyed by symbol, each backfill
//! chunk followed by its coverage marker (the pipeline's own bars go to
//! `market.prices.ohlcv`, which nothing here reads back). This consumer (a group of its
//! own, from the earliest offset, so nothing published before it started is missed) upserts
//! the bars and coverage in one transaction, computes the analytics of the touched series
//! (stored as the pipeline stores its own), and commits offsets only after that: a crash
//! redelivers, and the upserts make the redelivery change nothing. Malformed messages go to
//! the DLQ, and their letters are flushed before the offsets past them are committed.

use crate::backoff::Backoff;
use crate::domain::HistoryBar;
use crate::domain::{Interval, Symbol};
use crate::kafka::producer::Producer;
use crate::kafka::wire::{self, HistoryMessage};
use crate::kafka::{config, topics};
use crate::metrics::Metrics;
use crate::pipeline::SymbolSettings;
use crate::store::Store;
use futures_util::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::HashMap;

/// Messages stored per transaction at most.
const BATCH: usize = 2_000;

/// Runs until the consumer cannot be created; writes retry forever with backoff.
pub async fn run(
    bootstrap: String,
    group: String,
    store: Store,
    symbols: SymbolSettings,
    metrics: Metrics,
) {
    let consumer: StreamConsumer = match config::ingest_consumer(&bootstrap, &group).create() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "bar ingest cannot start");
            return;
        }
    };
    let dlq = match Producer::new(&bootstrap) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "bar ingest cannot start its DLQ producer");
            return;
        }
    };
    if let Err(e) = consumer.subscribe(&[topics::HISTORY]) {
        tracing::error!(error = %format!("{e:#}"), "bar ingest cannot subscribe");
        return;
    }
    let mut batches = consumer.stream().ready_chunks(BATCH);
    while let Some(batch) = batches.next().await {
        let mut bars: Vec<(HistoryBar, String)> = Vec::new();
        let mut coverage = Vec::new();
        let mut next_offsets: HashMap<i32, i64> = HashMap::new();
        let mut letters = Vec::new();
        for msg in &batch {
            let m = match msg {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "bar ingest consumer error");
                    continue;
                }
            };
            next_offsets.insert(m.partition(), m.offset() + 1);
            match wire::decode_history(m.payload().unwrap_or_default()) {
                Ok(HistoryMessage::Bar(bar, provider)) => bars.push((bar, provider)),
                Ok(HistoryMessage::Coverage(c)) => coverage.push(c),
                Err(e) => {
                    let origin = wire::Origin {
                        topic: m.topic(),
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    };
                    letters.push(wire::DeadLetter::new(
                        origin,
                        m.payload().unwrap_or_default(),
                        &e.to_string(),
                        e.label(),
                    ));
                }
            }
        }
        if !bars.is_empty() || !coverage.is_empty() {
            // Each touched series gets its analytics recomputed once per batch.
            let mut series: Vec<(Symbol, Interval)> =
                bars.iter().map(|(b, _)| (b.symbol, b.interval)).collect();
            series.sort_unstable();
            series.dedup();
            let mut backoff = Backoff::store();
            loop {
                let written = async {
                    let stored = store.write_history(&bars, &coverage).await?;
                    for (symbol, interval) in &series {
                        crate::backfill::analytics::analytics_for_history(
                            &store,
                            *symbol,
                            *interval,
                            symbols.calendar(*symbol),
                        )
                        .await?;
                    }
                    anyhow::Ok(stored)
                };
                match written.await {
                    Ok(stored) => {
                        metrics
                            .records_stored
                            .with_label_values(&["backfill_bars"])
                            .inc_by(stored);
                        break;
                    }
                    Err(e) => {
                        metrics.persistence_errors.inc();
                        tracing::warn!(error = %format!("{e:#}"), retry_in = ?backoff.peek(), "storing backfilled bars failed; retrying");
                        backoff.wait().await;
                    }
                }
            }
        }
        // The dead letters of this batch must be out before the offsets past them go: sent
        // again until a flush vouches for them.
        let mut backoff = Backoff::store();
        while !letters.is_empty() {
            for letter in &letters {
                dlq.send_dead_letter(&metrics, letter).await;
            }
            match dlq.flush().await {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), retry_in = ?backoff.peek(), "dead letters not delivered; sending them again");
                    backoff.wait().await;
                }
            }
        }
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in next_offsets {
            if let Err(e) =
                tpl.add_partition_offset(topics::HISTORY, partition, Offset::Offset(offset))
            {
                tracing::warn!(error = %format!("{e:#}"), "bad offset");
            }
        }
        if tpl.count() > 0
            && let Err(e) = consumer.commit(&tpl, CommitMode::Async)
        {
            // The next commit covers it; a redelivery is harmless (upserts).
            tracing::warn!(error = %format!("{e:#}"), "bar ingest commit failed");
        }
    }
}
