//! `DbWriter`: batches every symbol's outputs and writes them to the [`Store`].
//!
//! A flush starts when the buffer reaches `flush_rows` or every `flush_interval`; one flush
//! runs in the background while the next buffer fills, and a sender whose batch would start
//! a second flush waits for the first. So at most two buffers exist, and a slow database
//! slows the senders (and through them the Kafka consumer) instead of growing memory.
//! A failed flush is retried with capped exponential backoff until it succeeds: rows are
//! never dropped, and nothing is acknowledged (no offset committed) before it is written.

use crate::actors::messages::{Flush, Persist};
use crate::metrics::Metrics;
use crate::output::OutputBatch;
use crate::store::Store;
use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// First retry delay after a failed flush; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
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
    /// The flush in progress, if any.
    in_flight: Option<JoinHandle<()>>,
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
        }
    }

    /// Starts writing the buffer in the background; returns the flush that was running
    /// before (to be awaited first), so flushes stay in order and at most one overlaps.
    fn start_flush(&mut self) -> Option<JoinHandle<()>> {
        let previous = self.in_flight.take();
        if self.buffer.is_empty() {
            return previous;
        }
        let batches = std::mem::take(&mut self.buffer);
        let rows = std::mem::take(&mut self.rows);
        let (store, metrics) = (self.store.clone(), self.metrics.clone());
        self.metrics
            .mailbox_depth
            .with_label_values(&["db_writer"])
            .set(0);
        let wait_for = previous;
        self.in_flight = Some(tokio::spawn(async move {
            if let Some(p) = wait_for {
                let _ = p.await;
            }
            write_until_done(&store, &metrics, &batches, rows).await;
        }));
        None
    }
}

/// Writes `batches`, retrying until the store accepts them.
async fn write_until_done(
    store: &Store,
    metrics: &Metrics,
    batches: &[Arc<OutputBatch>],
    rows: usize,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        match store.write(batches).await {
            Ok(stats) => {
                metrics
                    .db_flush_seconds
                    .observe(started.elapsed().as_secs_f64());
                metrics.db_batch_rows.observe(rows as f64);
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
                tracing::error!(error = %format!("{e:#}"), rows, retry_in = ?backoff, "database flush failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
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
            if !act.buffer.is_empty() && act.in_flight.as_ref().is_none_or(JoinHandle::is_finished)
            {
                let previous = act.start_flush();
                debug_assert!(previous.is_none());
            }
        });
    }
}

impl Handler<Persist> for DbWriter {
    type Result = AtomicResponse<Self, ()>;

    /// Buffers the batch; at `flush_rows`, starts a flush, first waiting for the one before.
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
        let previous = self.in_flight.take();
        AtomicResponse::new(Box::pin(
            async move {
                if let Some(p) = previous {
                    let _ = p.await;
                }
            }
            .into_actor(self)
            .map(|_, act, _| {
                let none = act.start_flush();
                debug_assert!(none.is_none());
            }),
        ))
    }
}

impl Handler<Flush> for DbWriter {
    type Result = AtomicResponse<Self, Result<(), String>>;

    /// Writes everything buffered and answers when it is durable.
    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Self::Result {
        let previous = self.start_flush();
        let current = self.in_flight.take();
        AtomicResponse::new(Box::pin(
            async move {
                for h in [previous, current].into_iter().flatten() {
                    h.await.map_err(|e| format!("flush task failed: {e}"))?;
                }
                Ok(())
            }
            .into_actor(self),
        ))
    }
}
