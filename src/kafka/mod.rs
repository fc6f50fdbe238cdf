//! Kafka: every client tickflow uses and the formats on its topics.
//!
//! - [`config`]: every client configuration, in one place.
//! - [`backlog`]: how far behind the pipeline is, and what a size-bounded broker dropped.
//! - [`producer`]: the one producer type and its one checked flush.
//! - [`origin`]: the signed identity of a trade forwarded to its home partition.
//! - [`publisher`]: the pipeline's outputs onto the output topics.
//! - [`partitioner`]: a symbol's home partition.
//! - [`epoch`]: which broker (log) checkpoint offsets belong to.
//! - [`embedded`]: librdkafka's mock cluster as a broker in the process (or `tickflow broker`).
//! - [`topics`]: topic names and creation.
//! - [`wire`]: message formats.

pub mod backlog;
pub mod config;
pub mod embedded;
pub mod epoch;
pub mod origin;
pub mod partitioner;
pub mod producer;
pub mod publisher;
pub mod topics;
pub mod wire;

pub use embedded::EmbeddedKafka;
pub use producer::Producer;
pub use publisher::OutputPublisher;
