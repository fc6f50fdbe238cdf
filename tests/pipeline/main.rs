//! The streaming pipeline against real PostgreSQL and the real Kafka protocol.

mod helpers;
mod pipeline;
