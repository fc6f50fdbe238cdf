//! Bars from elsewhere than tickflow's own trades: what history providers (and recorded bar
//! files) report, and the spans a backfill asked a provider for.

use crate::domain::{Bar, Interval, Symbol, Timestamp};

/// A bar as a history provider reports it: no trade count, no VWAP.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryBar {
    pub symbol: Symbol,
    pub interval: Interval,
    pub start: Timestamp,
    pub end: Timestamp,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

impl HistoryBar {
    /// As a [`Bar`]: no trades (so no VWAP), revision 0, open and close times at the start.
    pub fn to_bar(&self) -> Bar {
        Bar {
            symbol: self.symbol,
            interval: self.interval,
            start: self.start,
            end: self.end,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            trades: 0,
            price_volume: 0.0,
            open_time: self.start,
            close_time: self.start,
            revision: 0,
            ties: crate::domain::bar::TieBreak::default(),
        }
    }
}

/// A span of a symbol's bars asked of a history provider, with the bars it had: stored
/// with those bars, it lets a later backfill skip what was asked already.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    pub symbol: Symbol,
    pub interval: Interval,
    pub start: Timestamp,
    pub end: Timestamp,
    pub provider: String,
    pub bars: u64,
}
