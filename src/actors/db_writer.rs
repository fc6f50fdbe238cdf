//! `DbWriter`: batches every symbol's outputs and writes them to the [`Store`].
//!
//! A flush starts when the buffer reaches `flush_rows` or every `flush_interval`; one flush
//! runs in the background while the next buffer fills, and a sender whose batch would start
//! a second flush waits for the first. So at most two buffers exist, and a slow database
//! slows the senders (and through them the Kafka consumer) instead of growing memory.
//! A failed flush is retried with capped exponential backoff until it succeeds: rows are
//! never dropped, and nothing is acknowledged (no offset committed) before it is written.

use crate::actors::messages::{Flush, Persist};
use crate::backoff::Backoff;
use crate::metrics::Metrics;
use crate::output::OutputBatch;
use crate::store::Store;
use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Messages the writer's mailbox holds before senders wait.
const MAILBOX: usize = 64;

/// Sizes and timing of flushes.
#[derive(Debug, Clone, Copy)]
pub struct DbWriterSettings {
    /// Rows that start a flush.
    pub flush_rows: usize,
    /// Longest a row waits before a flush starts.
    pub flush_interval: Duration,
}

/// The database writer.
pub struct DbWriter {
    store: Store,
    settings: DbWriterSettings,
    metrics: Metrics,
    buffer: Vec<Arc<OutputBatch>>,
    rows: usize,
    /// The last flush started; each flush first waits for the one before, so flushes
    /// commit in order (a checkpoint never lands before the outputs it accounts for).
    in_flight: Option<JoinHandle<()>>,
    /// Number of the last flush started (flushes are numbered from 1).
    started_flushes: u64,
    /// Number of the last flush committed.
    committed: watch::Sender<u64>,
}

impl DbWriter {
    /// A writer to `store`.
    pub fn new(store: Store, settings: DbWriterSettings, metrics: Metrics) -> Self {
        Self {
            store,
            settings,
            metrics,
            buffer: Vec::new(),
            rows: 0,
            in_flight: None,
            started_flushes: 0,
            committed: watch::channel(0).0,
        }
    }

    /// Starts writing the buffer in the background, after the flush before it.
    fn start_flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let batches = std::mem::take(&mut self.buffer);
        let rows = std::mem::take(&mut self.rows);
        self.metrics
            .mailbox_depth
            .with_label_values(&["db_writer"])
            .set(0);
        self.started_flushes += 1;
        let number = self.started_flushes;
        let (store, metrics, committed) = (
            self.store.clone(),
            self.metrics.clone(),
            self.committed.clone(),
        );
        let previous = self.in_flight.take();
        self.in_flight = Some(tokio::spawn(async move {
            if let Some(p) = previous {
                let _ = p.await;
            }
            write_until_done(&store, &metrics, &batches, rows).await;
            committed.send_modify(|n| *n = (*n).max(number));
        }));
    }

    /// Resolves once flush `number` (and so every flush before it) has committed.
    fn committed_through(&self, number: u64) -> impl Future<Output = ()> + 'static {
        let mut rx = self.committed.subscribe();
        async move {
            // The sender lives as long as the actor; if it is gone, nothing is left to wait for.
            let _ = rx.wait_for(|n| *n >= number).await;
        }
    }
}

/// Writes `batches`, retrying until the store accepts them.
async fn write_until_done(
    store: &Store,
    metrics: &Metrics,
    batches: &[Arc<OutputBatch>],
    rows: usize,
) {
    let mut backoff = Backoff::store();
    loop {
        let started = Instant::now();
        match store.write(batches).await {
            Ok(stats) => {
                metrics
                    .db_flush_seconds
                    .observe(started.elapsed().as_secs_f64());
                metrics.db_batch_rows.observe(rows as f64);
                metrics
                    .checkpoints_fenced
                    .inc_by(stats.checkpoints_fenced as u64);
                if stats.ticks_unstored > 0 {
                    metrics.ticks_unstored.inc_by(stats.ticks_unstored as u64);
                    tracing::error!(
                        trades = stats.ticks_unstored,
                        "trades not stored: a stored trade of an earlier broker epoch (an embedded broker before a restart) has the same symbol, time and position; they are in their bars"
                    );
                }
                for (kind, n) in [
                    ("raw_price", stats.ticks),
                    ("bar", stats.bars),
                    ("analytics", stats.analytics),
                    ("realtime_analytics", stats.realtime),
                    ("checkpoint", stats.checkpoints),
                ] {
                    metrics
                        .records_stored
                        .with_label_values(&[kind])
                        .inc_by(n as u64);
                }
                return;
            }
            Err(e) => {
                metrics.persistence_errors.inc();
                tracing::error!(error = %format!("{e:#}"), rows, retry_in = ?backoff.peek(), "database flush failed; retrying");
                backoff.wait().await;
            }
        }
    }
}

impl Actor for DbWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        ctx.run_interval(self.settings.flush_interval, |act, _| {
            // Only when idle: a running flush already keeps the pipeline moving.
            if act.in_flight.as_ref().is_none_or(JoinHandle::is_finished) {
                act.start_flush();
            }
        });
    }
}

impl Handler<Persist> for DbWriter {
    type Result = AtomicResponse<Self, ()>;

    /// Buffers the batch; at `flush_rows`, waits for the running flush, then starts one.
    fn handle(&mut self, msg: Persist, _: &mut Self::Context) -> Self::Result {
        self.rows += msg.0.len();
        self.buffer.push(msg.0);
        self.metrics
            .mailbox_depth
            .with_label_values(&["db_writer"])
            .set(self.rows as i64);
        if self.rows < self.settings.flush_rows {
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        let running = self.committed_through(self.started_flushes);
        AtomicResponse::new(Box::pin(
            running.into_actor(self).map(|(), act, _| act.start_flush()),
        ))
    }
}

impl Handler<Flush> for DbWriter {
    type Result = AtomicResponse<Self, Result<(), String>>;

    /// Writes everything buffered and answers when it (and all before it) is committed.
    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Self::Result {
        self.start_flush();
        let done = self.committed_through(self.started_flushes);
        AtomicResponse::new(Box::pin(
            async move {
                done.await;
                Ok(())
            }
            .into_actor(self),
        ))
    }
}
