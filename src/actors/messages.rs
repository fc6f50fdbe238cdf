//! Messages more than one actor handles, and [`guard`], which turns a panic in domain code
//! into a [`StageError`].

use crate::domain::{Bar, BarBuilder, RevisableIndicators};
use crate::output::{AnalyticsRecord, BarRecord, FormingBar, OutputBatch, TickRecord};
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
    /// (its idle clock): its partitions must be replayed before it can go on.
    #[error("restarted from its checkpoint after a failure of its own")]
    Restarted,
}

impl From<MailboxError> for StageError {
    fn from(e: MailboxError) -> Self {
        Self::ChildGone(e.to_string())
    }
}

/// Ticks of one symbol, in the order they are to be applied.
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
    /// The open bar with its forming indicator values, at most once per
    /// [`crate::actors::bar_builder::PROGRESS_EVERY`].
    pub forming: Option<FormingBar>,
}

/// For the indicator actor: bars that closed or were revised (in order), and the bars still
/// open when their forming values are wanted.
#[derive(Message)]
#[rtype(result = "Result<IndicatorOutput, StageError>")]
pub struct IndicatorWork {
    pub bars: Vec<Bar>,
    pub open: Vec<Bar>,
}

/// What the indicator actor produced.
#[derive(Debug, Default)]
pub struct IndicatorOutput {
    /// One record per bar whose values were given or changed.
    pub analytics: Vec<AnalyticsRecord>,
    /// The last open bar with its forming values.
    pub forming: Option<FormingBar>,
}

/// Asks a bar builder for a copy of its state (for a checkpoint).
#[derive(Message)]
#[rtype(result = "BarBuilder")]
pub struct BuilderState;

/// Asks an indicator actor for a copy of its state (for a checkpoint).
#[derive(Message)]
#[rtype(result = "RevisableIndicators")]
pub struct IndicatorState;

/// Writes one batch (awaited: a full writer slows the sender down).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Persist(pub Arc<OutputBatch>);

/// Makes everything received before it durable; answers once it is.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Flush;

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
