//! tickflow: market-data analytics. Trades come in on Kafka, exact OHLCV bars and
//! TA-Lib-identical indicators come out to PostgreSQL, Kafka, a REST and WebSocket API and
//! Prometheus. `docs/architecture.md` follows one trade through all of it.
//!
//! # Layout
//! - [`domain`]: pure types and maths (symbols, ticks, bars, calendars, indicators, gaps);
//!   no I/O.
//! - [`pipeline`]: the streaming pipeline's logic as plain, unit-tested types (routing,
//!   event-time alignment, offsets, quarantine, checkpoints, supervisor lifecycle).
//! - [`actors`]: the actor system around it: the raw-topic consumer, one supervisor per
//!   symbol with its bar and indicator actors, the database writer.
//! - [`output`]: what the pipeline emits (trades, bars, analytics, checkpoints).
//! - [`kafka`]: every Kafka client, topic and message format; the embedded broker.
//! - [`store`]: PostgreSQL/TimescaleDB or the bounded in-memory store, and their queries.
//! - [`backfill`]: missing bars from history providers, and their ingest.
//! - [`feeds`]: the simulator and the live provider streams; the history clients.
//! - [`web`]: the HTTP surface (REST, WebSockets and their fan-out actor, chart page, docs,
//!   health, metrics).
//! - [`app`]: `App::build`, the whole platform from its named steps.
//! - [`cli`]: the `tickflow` command line.
//! - [`metrics`]: every Prometheus series.
//! - [`backoff`]: the one retry back-off.
//! - [`log_throttle`]: one log line per period about what can happen on every trade.
//! - `fault` (tests only, feature `fault-injection`): panics injected into a symbol.

pub mod actors;
pub mod app;
pub mod backfill;
pub mod backoff;
pub mod cli;
pub mod domain;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod feeds;
pub mod kafka;
pub mod log_throttle;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod store;
pub mod web;
