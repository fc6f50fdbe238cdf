//! What a supervisor does before it looks at a trade: restore the symbol's state from its
//! checkpoint (waiting for the store, since without it the symbol cannot go on), or start
//! fresh when there is none or it does not fit the configured intervals; read back the
//! stored trades a previous broker's checkpoint did not cover; and write a fresh state's
//! first checkpoint.

use super::SupervisorContext;
use crate::actors::messages::{Flush, Persist};
use crate::backoff::Backoff;
use crate::domain::Symbol;
use crate::output::{OutputBatch, TickRecord};
use crate::pipeline::checkpoint::SymbolState;
use std::sync::Arc;

/// A restore to run for `symbol`.
pub(super) struct Restoring {
    pub symbol: Symbol,
    pub cx: SupervisorContext,
    /// Flush the writer first (after a failure): a checkpoint handed to it before the
    /// failure must be the one read back.
    pub flush_first: bool,
}

/// What the restore found.
pub(super) struct Restored {
    pub state: SymbolState,
    /// Whether `state` is a checkpoint (not a fresh state).
    pub restored: bool,
    /// Stored trades applied after the checkpoint under a broker that is gone.
    pub recovered: Vec<TickRecord>,
}

impl Restoring {
    pub(super) async fn run(self) -> Restored {
        let Self {
            symbol,
            cx,
            flush_first,
        } = self;
        let (store, metrics, settings, db) = (cx.store, cx.metrics, cx.settings, cx.outputs.db);
        let epoch = cx.view.epoch().to_owned();
        if flush_first && let Ok(Err(e)) = db.send(Flush).await {
            tracing::warn!(%symbol, error = %format!("{e:#}"), "flush before restoring failed");
        }
        let mut backoff = Backoff::store();
        let stored = loop {
            match store.load_checkpoint(symbol).await {
                Ok(cp) => break cp,
                Err(e) => {
                    metrics.persistence_errors.inc();
                    tracing::warn!(%symbol, error = %format!("{e:#}"), retry_in = ?backoff.peek(), "cannot load checkpoint");
                    backoff.wait().await;
                }
            }
        };
        let (state, restored) = match stored.map(|cp| SymbolState::decode(&cp.state)) {
            Some(Ok(s)) if s.fits(&settings) => (s, true),
            other => {
                match other {
                    Some(Ok(_)) => {
                        tracing::warn!(%symbol, "checkpoint is for other intervals; starting fresh");
                    }
                    Some(Err(e)) => {
                        metrics.checkpoints_unusable.inc();
                        tracing::error!(%symbol, error = %format!("{e:#}"), "checkpoint not usable; starting fresh");
                    }
                    None => {}
                }
                (SymbolState::fresh(symbol, &settings, &epoch), false)
            }
        };
        let recovered = if restored && state.epoch != epoch {
            // Written against a broker that is gone (an embedded one, after a crash): the
            // trades it applied after this checkpoint cannot be replayed from Kafka, but
            // they are stored; read them back so the state matches the stored trades.
            loop {
                match store
                    .trades_after(symbol, &state.epoch, &state.applied)
                    .await
                {
                    Ok(trades) => break trades,
                    Err(e) => {
                        metrics.persistence_errors.inc();
                        tracing::warn!(%symbol, error = %format!("{e:#}"), retry_in = ?backoff.peek(), "cannot read the trades after the checkpoint");
                        backoff.wait().await;
                    }
                }
            }
        } else {
            Vec::new()
        };
        if !restored {
            // A first checkpoint before any output of this symbol: a crash before its next
            // one leaves the stored trades matched to an epoch (see above).
            match state.checkpoint(symbol) {
                Ok(checkpoint) => {
                    let batch = OutputBatch {
                        checkpoints: vec![checkpoint],
                        ..OutputBatch::default()
                    };
                    if let Err(e) = db.send(Persist(Arc::new(batch))).await {
                        tracing::warn!(%symbol, error = %format!("{e:#}"), "first checkpoint not written");
                    }
                }
                Err(e) => {
                    tracing::error!(%symbol, error = %format!("{e:#}"), "first checkpoint not encoded");
                }
            }
        }
        Restored {
            state,
            restored,
            recovered,
        }
    }
}
