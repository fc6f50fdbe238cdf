//! `BarIngest`: stores the backfilled bars that arrive on `market.prices.ohlcv`.
//!
//! Backfill publishes provider bars to the same topic as the pipeline's bars, keyed by
//! symbol, each chunk followed by its coverage marker. This consumer (a group of its own,
//! from the earliest offset, so nothing published before it started is missed) skips the
//! pipeline's bars (its `DbWriter` stored them), upserts provider bars and coverage in one
//! transaction, computes the analytics of the backfilled series (stored as the pipeline
//! stores its own), and commits offsets only after that: a crash redelivers, and the
//! upserts make the redelivery change nothing. Malformed messages go to the DLQ.

use crate::actors::publisher::{DeliveryCounter, dead_letter, producer};
use crate::actors::supervisor::SymbolSettings;
use crate::domain::gaps::HistoryBar;
use crate::domain::{Interval, Symbol};
use crate::kafka::topics;
use crate::kafka::wire::{self, OhlcvMessage};
use crate::metrics::Metrics;
use crate::store::Store;
use futures_util::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::ThreadedProducer;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::Duration;

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
    let consumer: StreamConsumer = match ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "bar ingest cannot start");
            return;
        }
    };
    let dlq: ThreadedProducer<DeliveryCounter> = match producer(&bootstrap) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "bar ingest cannot start its DLQ producer");
            return;
        }
    };
    if let Err(e) = consumer.subscribe(&[topics::OHLCV]) {
        tracing::error!(error = %e, "bar ingest cannot subscribe");
        return;
    }
    let mut batches = consumer.stream().ready_chunks(BATCH);
    while let Some(batch) = batches.next().await {
        let mut bars: Vec<(HistoryBar, String)> = Vec::new();
        let mut coverage = Vec::new();
        let mut next_offsets: HashMap<i32, i64> = HashMap::new();
        for msg in &batch {
            let m = match msg {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "bar ingest consumer error");
                    continue;
                }
            };
            next_offsets.insert(m.partition(), m.offset() + 1);
            let payload = m.payload().unwrap_or_default();
            // Most messages are the pipeline's own bars, encoded with `source` last: skip
            // them without parsing.
            if payload.ends_with(wire::AGGREGATED_SUFFIX) {
                continue;
            }
            match wire::decode_ohlcv(payload) {
                Ok(OhlcvMessage::Aggregated) => {}
                Ok(OhlcvMessage::History(bar, provider)) => bars.push((bar, provider)),
                Ok(OhlcvMessage::Coverage(c)) => coverage.push(c),
                Err(e) => dead_letter(&dlq, &metrics, m, &e.to_string(), e.label()).await,
            }
        }
        if !bars.is_empty() || !coverage.is_empty() {
            // Each touched series gets its analytics recomputed once per batch.
            let mut series: Vec<(Symbol, Interval)> =
                bars.iter().map(|(b, _)| (b.symbol, b.interval)).collect();
            series.sort_unstable();
            series.dedup();
            let mut backoff = Duration::from_millis(100);
            loop {
                let written = async {
                    let stored = store.write_history(&bars, &coverage).await?;
                    for (symbol, interval) in &series {
                        crate::backfill::analytics_for_history(
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
                        tracing::warn!(error = %e, ?backoff, "storing backfilled bars failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in next_offsets {
            if let Err(e) =
                tpl.add_partition_offset(topics::OHLCV, partition, Offset::Offset(offset))
            {
                tracing::warn!(error = %e, "bad offset");
            }
        }
        if tpl.count() > 0
            && let Err(e) = consumer.commit(&tpl, CommitMode::Async)
        {
            // The next commit covers it; a redelivery is harmless (upserts).
            tracing::warn!(error = %e, "bar ingest commit failed");
        }
    }
}
