//! Messages more than one actor handles, and `Outputs`, the subscribers of symbol outputs.

use crate::actors::db_writer::DbWriter;
use crate::actors::publisher::OutputPublisher;
use crate::domain::{Bar, BarBuilder, BarIndicators};
use crate::output::{AnalyticsRecord, BarRecord, OutputBatch, TickRecord};
use actix::prelude::*;
use std::sync::Arc;

/// Why a stage could not process a message. The consumer reacts to each: a failed stage
/// means its symbol restarts from the last checkpoint; a closed mailbox means shutdown.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StageError {
    #[error("domain code panicked: {0}")]
    Panicked(String),
    #[error("a child stage is gone: {0}")]
    ChildGone(String),
    #[error("subscriber failed: {0}")]
    Subscriber(String),
    /// The supervisor went back to its checkpoint after a failure nobody was waiting on
    /// (its idle clock): its partition must be replayed before it can go on.
    #[error("restarted from its checkpoint after a failure of its own")]
    Restarted,
}

impl From<MailboxError> for StageError {
    fn from(e: MailboxError) -> Self {
        Self::ChildGone(e.to_string())
    }
}

/// Consecutive ticks of one symbol, in partition order.
#[derive(Message)]
#[rtype(result = "Result<(), StageError>")]
pub struct TickBatch(pub Arc<[TickRecord]>);

/// The same ticks, handed to one bar builder.
#[derive(Message)]
#[rtype(result = "Result<BarOutput, StageError>")]
pub struct BarTicks(pub Arc<[TickRecord]>);

/// Moves a bar builder's watermark (a clock when no ticks arrive).
#[derive(Message)]
#[rtype(result = "Result<BarOutput, StageError>")]
pub struct AdvanceClock(pub crate::domain::Timestamp);

/// What a bar builder produced.
#[derive(Debug, Default)]
pub struct BarOutput {
    pub bars: Vec<BarRecord>,
    pub analytics: Vec<AnalyticsRecord>,
    /// The open bar, at most once per [`crate::actors::bar_builder::PROGRESS_EVERY`].
    pub in_progress: Option<Bar>,
}

/// Bars closed for the first time, for the indicator actor.
#[derive(Message)]
#[rtype(result = "Result<Vec<AnalyticsRecord>, StageError>")]
pub struct ClosedBars(pub Vec<Bar>);

/// Asks a bar builder for a copy of its state (for a checkpoint).
#[derive(Message)]
#[rtype(result = "BarBuilder")]
pub struct BuilderState;

/// Asks an indicator actor for a copy of its state (for a checkpoint).
#[derive(Message)]
#[rtype(result = "BarIndicators")]
pub struct IndicatorState;

/// Writes one batch (awaited: a full writer slows the sender down).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Persist(pub Arc<OutputBatch>);

/// Hands one batch to the WebSocket broadcaster (never awaited: best effort, never blocks).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Broadcast(pub Arc<OutputBatch>);

/// Makes everything received before it durable; answers once it is.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Flush;

/// The subscribers of every symbol's outputs.
#[derive(Clone)]
pub struct Outputs {
    /// Awaited: the database is the source of truth and pushes back when slow.
    pub db: Addr<DbWriter>,
    /// Awaited: output topics (encoded on the sender's thread).
    pub publisher: Option<Arc<OutputPublisher>>,
    /// Not awaited: WebSocket fan-out.
    pub broadcaster: Option<Recipient<Broadcast>>,
}

impl Outputs {
    /// Hands `batch` to every subscriber.
    ///
    /// # Errors
    /// When the database writer or the publisher is gone.
    pub async fn send(&self, batch: Arc<OutputBatch>) -> Result<(), StageError> {
        if let Some(b) = &self.broadcaster
            && !batch.in_progress.is_empty()
        {
            // A full broadcaster drops the snapshot for WebSocket clients only; never wait.
            let _ = b.try_send(Broadcast(batch.clone()));
        }
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(p) = &self.publisher {
            p.publish(&batch).await;
        }
        self.db
            .send(Persist(batch))
            .await
            .map_err(|e| StageError::Subscriber(format!("db writer: {e}")))
    }

    /// Makes everything sent so far durable in the database and on the output topics.
    ///
    /// # Errors
    /// When either cannot confirm.
    pub async fn flush(&self) -> Result<(), String> {
        if let Some(p) = &self.publisher {
            p.flush().await?;
        }
        self.db.send(Flush).await.map_err(|e| e.to_string())?
    }
}

/// Runs `f`, turning a panic into a [`StageError::Panicked`] so that one symbol's bad
/// input cannot take its arbiter's other actors down.
pub fn guard<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, StageError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        StageError::Panicked(format!("{what}: {msg}"))
    })
}
