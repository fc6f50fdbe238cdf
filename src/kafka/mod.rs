//! Kafka plumbing: the embedded broker, topic names and creation, and the wire formats.

pub mod embedded;
pub mod topics;
pub mod wire;

pub use embedded::EmbeddedKafka;
