//! `Bar`: an OHLCV bar for one symbol and interval, and `Ohlcv`, what indicators read of it.

use crate::domain::interval::Interval;
use crate::domain::symbol::Symbol;
use crate::domain::tick::Tick;
use crate::domain::time::Timestamp;

/// An OHLCV bar covering `[start, end)` of event time.
///
/// `open`/`close` are the prices of the earliest and latest trade by event time (ties keep
/// arrival order), so the bar does not depend on the order in which ticks arrived.
/// `revision` is 0 when the bar first closes and grows by one each time a late trade changes
/// it; consumers keep the highest revision.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bar {
    /// Instrument.
    pub symbol: Symbol,
    /// Bar length.
    pub interval: Interval,
    /// First instant covered (the bar's key time everywhere: topics, tables, API).
    pub start: Timestamp,
    /// First instant after the bar.
    pub end: Timestamp,
    /// Price of the earliest trade.
    pub open: f64,
    /// Highest trade price.
    pub high: f64,
    /// Lowest trade price.
    pub low: f64,
    /// Price of the latest trade.
    pub close: f64,
    /// Sum of trade sizes.
    pub volume: f64,
    /// Number of trades, zero-size ones included.
    pub trades: u64,
    /// Σ price × size, kept so that VWAP stays exact when late trades revise the bar.
    pub price_volume: f64,
    /// Event time of the trade that set `open`.
    pub open_time: Timestamp,
    /// Event time of the trade that set `close`.
    pub close_time: Timestamp,
    /// 0 on first close, +1 per revision.
    pub revision: u32,
}

impl Bar {
    /// A bar holding just `tick`.
    pub fn from_tick(tick: &Tick, interval: Interval, start: Timestamp, end: Timestamp) -> Self {
        Self {
            symbol: tick.symbol(),
            interval,
            start,
            end,
            open: tick.price(),
            high: tick.price(),
            low: tick.price(),
            close: tick.price(),
            volume: tick.size(),
            trades: 1,
            price_volume: tick.price() * tick.size(),
            open_time: tick.ts(),
            close_time: tick.ts(),
            revision: 0,
        }
    }

    /// Adds one more trade.
    #[inline]
    pub fn apply(&mut self, tick: &Tick) {
        let (p, ts) = (tick.price(), tick.ts());
        if ts < self.open_time {
            self.open = p;
            self.open_time = ts;
        }
        if ts >= self.close_time {
            self.close = p;
            self.close_time = ts;
        }
        self.high = self.high.max(p);
        self.low = self.low.min(p);
        self.volume += tick.size();
        self.price_volume += p * tick.size();
        self.trades += 1;
    }

    /// Volume-weighted average trade price; `None` when every trade had size 0, or for a
    /// backfilled bar (no trades known).
    pub fn vwap(&self) -> Option<f64> {
        (self.volume > 0.0 && self.trades > 0).then(|| self.price_volume / self.volume)
    }

    /// The part of the bar that indicators read.
    pub fn ohlcv(&self) -> Ohlcv {
        Ohlcv {
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
        }
    }
}

/// Open, high, low, close and volume of one bar: the single input type of every bar
/// indicator, so a CSV row and a live [`Bar`] feed the same code.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ohlcv {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

impl Ohlcv {
    /// A bar with every price equal to `close` and the given volume (handy for close-only inputs).
    pub fn flat(close: f64, volume: f64) -> Self {
        Self {
            open: close,
            high: close,
            low: close,
            close,
            volume,
        }
    }

    /// Typical price `(high + low + close) / 3`.
    pub fn typical_price(&self) -> f64 {
        (self.high + self.low + self.close) / 3.0
    }
}
