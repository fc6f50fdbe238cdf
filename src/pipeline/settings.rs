//! What the pipeline is told: how symbols are built (`SymbolSettings`) and how the raw
//! topic is consumed (`ConsumerSettings`).

use crate::domain::{
    BarBuilder, BarBuilderConfig, BarIndicators, Interval, RealtimeThrottle, RevisableIndicators,
    Symbol, Timestamp, TradingCalendar,
};
use std::time::Duration;

/// How the pipeline treats symbols: intervals, calendars, bar timing.
#[derive(Debug, Clone)]
pub struct SymbolSettings {
    /// Bar intervals built for every symbol.
    pub intervals: Vec<Interval>,
    /// Calendar of symbols without an override.
    pub default_calendar: TradingCalendar,
    /// Per-symbol calendars.
    pub calendars: Vec<(Symbol, TradingCalendar)>,
    /// Grace and allowed lateness.
    pub bars: BarBuilderConfig,
    /// Realtime metrics are published at most once per this much event time per symbol
    /// ([`RealtimeThrottle`]; zero: every trade).
    pub realtime_every: Duration,
}

impl SymbolSettings {
    /// The calendar of `symbol`.
    pub fn calendar(&self, symbol: Symbol) -> TradingCalendar {
        self.calendars
            .iter()
            .find(|(s, _)| *s == symbol)
            .map_or(self.default_calendar, |(_, c)| *c)
    }

    /// A symbol's realtime throttle, continuing from `last` (restored from a checkpoint).
    pub fn realtime_throttle(&self, last: Option<Timestamp>) -> RealtimeThrottle {
        let every = i64::try_from(self.realtime_every.as_micros()).unwrap_or(i64::MAX);
        RealtimeThrottle::new(every, last)
    }

    /// Fresh bar builders of `symbol`, one per interval.
    pub fn fresh_builders(&self, symbol: Symbol) -> Vec<BarBuilder> {
        let calendar = self.calendar(symbol);
        self.intervals
            .iter()
            .map(|i| BarBuilder::new(*i, calendar, self.bars))
            .collect()
    }

    /// Fresh indicators of `symbol`, one per interval, each keeping every bar that late
    /// trades can still revise.
    pub fn fresh_indicators(&self, symbol: Symbol) -> Vec<RevisableIndicators> {
        let calendar = self.calendar(symbol);
        self.intervals
            .iter()
            .map(|i| {
                let keep = RevisableIndicators::keep_for(
                    i.micros(),
                    self.bars.grace_micros,
                    self.bars.allowed_lateness_micros,
                );
                RevisableIndicators::new(BarIndicators::new(*i, calendar), keep)
            })
            .collect()
    }
}

/// How the raw topic is consumed.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub bootstrap: String,
    /// Consumer group: instances sharing it share the partitions.
    pub group: String,
    /// Most messages routed per round.
    pub max_batch: usize,
    /// How often state is checkpointed and offsets committed.
    pub commit_interval: Duration,
    /// How far ahead of the clock a trade's time may be before it is dead-lettered
    /// (`future_timestamp`); see `pipeline::clock`.
    pub max_clock_skew: Duration,
    /// Every message of the raw topic since offset 0 is this group's to read (an embedded
    /// broker, started empty for tickflow): a partition the group never committed must be
    /// read from offset 0, and a first message past it means the broker dropped messages
    /// before they were ever read. Not so on a shared cluster, where retention deletes old
    /// messages a new group never needed.
    pub whole_log: bool,
}
