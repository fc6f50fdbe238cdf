//! Market-data feeds: live streams that publish ticks to the raw topic, and history
//! providers that backfill bars.
//!
//! - [`simulator`]: random-walk trades for demos and benches.
//! - [`stream`]: one WebSocket connection per live provider ([`yahoo`], [`twelvedata`]),
//!   reconnecting forever.
//! - [`history`]: REST history clients (TwelveData `time_series`, [`alphavantage`] daily)
//!   behind per-provider [`rate_limit`]s.

pub mod alphavantage;
pub mod history;
pub mod rate_limit;
pub mod simulator;
pub mod stream;
pub mod twelvedata;
pub mod yahoo;

pub use simulator::Simulator;

use crate::domain::Symbol;
use std::collections::HashMap;

/// Trade sizes from a cumulative day volume: each quote's size is the growth since the
/// symbol's previous quote (providers that send day volume instead of the trade size).
#[derive(Debug, Default)]
pub struct DayVolumes(HashMap<Symbol, i64>);

impl DayVolumes {
    /// The size of the trade that took `symbol`'s day volume to `day_volume`; 0 for the
    /// first quote seen and when a new session resets the count.
    pub fn trade_size(&mut self, symbol: Symbol, day_volume: i64) -> f64 {
        let previous = self.0.insert(symbol, day_volume);
        previous.map_or(0, |p| (day_volume - p).max(0)) as f64
    }
}
