//! `Outputs`: where every symbol's outputs go — the database (through the `DbWriter`) and
//! the output topics (through the `OutputPublisher`, whose topics also feed WebSocket
//! clients: closed and forming bars reach them the same way).

use crate::actors::db_writer::DbWriter;
use crate::actors::messages::{Flush, Persist, StageError};
use crate::kafka::OutputPublisher;
use crate::output::OutputBatch;
use actix::prelude::*;
use std::sync::Arc;

/// The subscribers of every symbol's outputs. Cheap to clone.
#[derive(Clone)]
pub struct Outputs {
    /// Awaited: the database is the source of truth and pushes back when slow.
    pub db: Addr<DbWriter>,
    /// Awaited: output topics (encoded on the sender's thread).
    pub publisher: Option<Arc<OutputPublisher>>,
}

impl Outputs {
    /// Hands `batch` to every subscriber.
    ///
    /// # Errors
    /// When the database writer is gone.
    pub async fn send(&self, batch: Arc<OutputBatch>) -> Result<(), StageError> {
        if batch.is_void() {
            return Ok(());
        }
        if let Some(p) = &self.publisher {
            p.publish(&batch).await;
        }
        if batch.is_empty() {
            // Forming bars only: nothing to store.
            return Ok(());
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
            p.flush().await.map_err(|e| format!("output topics: {e}"))?;
        }
        self.db.send(Flush).await.map_err(|e| e.to_string())?
    }
}
