//! tickflow: market-data analytics. Trades come in, exact OHLCV bars and TA-Lib-identical
//! indicators come out.
//!
//! # Layout
//! - [`domain`]: pure types and maths (symbols, ticks, bars, calendars, indicators).
//! - [`cli`]: the `tickflow` command line, including the offline `bars` and `indicators`
//!   commands that stream CSV files through the domain layer.

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
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod store;
pub mod web;
