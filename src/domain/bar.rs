//! `Bar`: an OHLCV bar for one symbol and interval, and `Ohlcv`, what indicators read of it.

use crate::domain::interval::Interval;
use crate::domain::symbol::Symbol;
use crate::domain::tick::Tick;
use crate::domain::time::Timestamp;

/// An OHLCV bar covering `[start, end)` of event time.
///
/// `open`/`close` are the prices of the earliest and latest trade by event time, ties broken
/// by the trades' order in the log where it is known (`ties`; else by arrival), so the bar
/// does not depend on the order in which ticks arrived.
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
    /// Log order of the trades that set `open` and `close`, for ties in event time. Not
    /// part of the bar's value (not stored, not compared).
    #[serde(skip)]
    pub ties: TieBreak,
}

/// The log order (a trade's identity, e.g. its raw-topic position) of the trades that set a
/// bar's open and close: of several trades stamped with the same instant, the open is the
/// first in the log and the close the last, as a SQL aggregation ordered by time and
/// identity says — whatever order they arrived in (trades of one symbol read from several
/// partitions). `None`: unknown (a bar restored from a checkpoint, or built from trades
/// without identities): ties then keep arrival order. Checkpoints keep it beside the bars
/// (`BarBuilder::tie_breaks`).
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct TieBreak {
    pub open: Option<i64>,
    pub close: Option<i64>,
}

/// Bookkeeping, not value: two bars with the same prices, volumes and times are equal.
impl PartialEq for TieBreak {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Whether a trade ranked `a` comes before one ranked `b` in the log (both known).
fn before(a: Option<i64>, b: Option<i64>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a < b)
}

impl Bar {
    /// A bar holding just `tick`, whose log order is `order` (`None`: unknown).
    pub fn from_tick(
        tick: &Tick,
        order: Option<i64>,
        interval: Interval,
        start: Timestamp,
        end: Timestamp,
    ) -> Self {
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
            ties: TieBreak {
                open: order,
                close: order,
            },
        }
    }

    /// Adds one more trade, whose log order is `order` (`None`: unknown).
    #[inline]
    pub fn apply(&mut self, tick: &Tick, order: Option<i64>) {
        let (p, ts) = (tick.price(), tick.ts());
        if ts < self.open_time || (ts == self.open_time && before(order, self.ties.open)) {
            self.open = p;
            self.open_time = ts;
            self.ties.open = order;
        }
        // A tie goes to the later arrival unless the log order says otherwise.
        if ts > self.close_time || (ts == self.close_time && !before(order, self.ties.close)) {
            self.close = p;
            self.close_time = ts;
            self.ties.close = order;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Source;

    #[test]
    fn ties_in_time_go_by_log_order_whatever_the_arrival() {
        let t = Timestamp::from_secs(1_704_205_800);
        let trade = |price| {
            Tick::new(
                Symbol::parse("AAPL").unwrap(),
                t,
                price,
                1.0,
                Source::new("t"),
            )
            .unwrap()
        };
        let (start, end) = (t, t.add_micros(60_000_000));
        // Log order: 1.0 (rank 10), 2.0 (rank 20), 3.0 (rank 30); arrival: 2, 3, 1.
        let mut bar = Bar::from_tick(&trade(2.0), Some(20), Interval::M1, start, end);
        bar.apply(&trade(3.0), Some(30));
        bar.apply(&trade(1.0), Some(10));
        assert_eq!((bar.open, bar.close), (1.0, 3.0));
        // Unknown order (a bar restored from a checkpoint): ties keep arrival order.
        let mut restored = Bar::from_tick(&trade(2.0), None, Interval::M1, start, end);
        restored.apply(&trade(1.0), Some(10));
        assert_eq!((restored.open, restored.close), (2.0, 1.0));
        assert_eq!(bar.ties, restored.ties, "not part of the value");
    }
}
