//! The streaming pipeline against real PostgreSQL (and TimescaleDB, `timescale`) and the real
//! Kafka protocol.

mod backfill;
mod delivery;
mod feeds;
mod helpers;
mod oracle;
mod pipeline;
mod timescale;
