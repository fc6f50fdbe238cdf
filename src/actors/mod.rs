//! The actor system of the streaming pipeline: thin actors around the plain parts in
//! `crate::pipeline`.
//!
//! ```text
//! raw topic ─▶ TickConsumer ─▶ SymbolSupervisor (one per symbol)
//!                               ├─ tick metrics
//!                               └─ BarBuilderActor ─▶ IndicatorActor (one pair per interval)
//!              outputs of each symbol ─▶ Outputs: DbWriter · OutputPublisher (topics)
//! ```
//!
//! - [`consumer`]: `TickConsumer`, the raw topic in.
//! - [`supervisor`]: `SymbolSupervisor`, one symbol's state and children.
//! - [`bar_builder`], [`indicator`]: one (symbol, interval) each.
//! - [`db_writer`]: `DbWriter`, batched writes to the store.
//! - [`outputs`]: where a symbol's outputs go; [`messages`]: messages several actors share.
//!
//! The WebSocket fan-out (`Broadcaster`) lives with the sessions it serves, in `crate::web::ws`.

pub mod bar_builder;
pub mod consumer;
pub mod db_writer;
pub mod indicator;
pub mod messages;
pub mod outputs;
pub mod supervisor;

pub use consumer::{Shutdown, TickConsumer};
pub use db_writer::{DbWriter, DbWriterSettings};
pub use outputs::Outputs;
pub use supervisor::{SupervisorContext, SymbolSupervisor};
