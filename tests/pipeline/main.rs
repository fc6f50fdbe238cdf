//! The streaming pipeline against real PostgreSQL and the real Kafka protocol.

mod feeds;
mod helpers;
mod pipeline;
