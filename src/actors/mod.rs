//! The actor system of the streaming pipeline.
//!
//! ```text
//! raw topic ─▶ TickConsumer ─▶ SymbolSupervisor (one per symbol)
//!                               ├─ tick metrics
//!                               └─ BarBuilderActor ─▶ IndicatorActor (one pair per interval)
//!              outputs of each symbol ─▶ DbWriter · OutputPublisher · Broadcaster
//! backfill ─▶ ohlcv topic ─▶ bar_ingest ─▶ store
//! ```

pub mod bar_builder;
pub mod bar_ingest;
pub mod broadcaster;
pub mod consumer;
pub mod db_writer;
pub mod indicator;
pub mod messages;
pub mod publisher;
pub mod supervisor;
pub mod topic_feeder;

pub use consumer::{ConsumerSettings, Shutdown, TickConsumer};
pub use db_writer::{DbWriter, DbWriterSettings};
pub use messages::Outputs;
pub use publisher::OutputPublisher;
pub use supervisor::{SymbolSettings, SymbolSupervisor};
