//! What the pipeline emits. Every subscriber (the `DbWriter`, the Kafka `OutputPublisher`,
//! the WebSocket `Broadcaster`) receives the same [`OutputBatch`]es, shared behind an `Arc`.

use crate::domain::indicators::IndicatorValues;
use crate::domain::{Bar, Interval, Symbol, Tick, TickMetricValues, Timestamp};

/// Where a tick sits in the raw topic: its partition and offset. It is the tick's identity
/// (a redelivered message is the same tick; two trades with one timestamp are not).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Seq {
    /// Raw-topic partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
}

impl Seq {
    /// One `BIGINT` for storage: the partition in the top 16 bits, the offset below (2^47
    /// offsets per partition).
    pub fn as_i64(self) -> i64 {
        (i64::from(self.partition) << 47) | (self.offset & ((1 << 47) - 1))
    }

    /// The inverse of [`Seq::as_i64`].
    pub fn from_i64(v: i64) -> Self {
        Self {
            partition: (v >> 47) as i32,
            offset: v & ((1 << 47) - 1),
        }
    }
}

/// A tick as consumed, with its identity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickRecord {
    pub tick: Tick,
    pub seq: Seq,
}

/// A bar that closed (`revision` 0) or was revised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BarRecord {
    pub bar: Bar,
}

/// Bar indicators after one closed bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalyticsRecord {
    pub symbol: Symbol,
    pub interval: Interval,
    /// Start of the bar the values belong to (the same key time as the bar).
    pub start: Timestamp,
    /// End of that bar.
    pub end: Timestamp,
    /// Close of that bar.
    pub price: f64,
    pub values: IndicatorValues,
}

/// Realtime metrics after one tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RealtimeRecord {
    pub symbol: Symbol,
    pub ts: Timestamp,
    pub seq: Seq,
    pub price: f64,
    pub values: TickMetricValues,
}

/// A symbol's whole pipeline state after the tick at `seq`, written in the same transaction
/// as the outputs it accounts for. Restarts resume from it and skip ticks up to `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub symbol: Symbol,
    pub seq: Seq,
    /// The encoded `SymbolState`.
    pub state: Vec<u8>,
}

/// Everything one symbol produced from one batch of ticks.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OutputBatch {
    pub ticks: Vec<TickRecord>,
    pub bars: Vec<BarRecord>,
    pub analytics: Vec<AnalyticsRecord>,
    pub realtime: Vec<RealtimeRecord>,
    pub checkpoints: Vec<Checkpoint>,
    /// Snapshots of bars still open, for WebSocket clients only (never stored).
    pub in_progress: Vec<Bar>,
}

impl OutputBatch {
    /// Rows this batch writes.
    pub fn len(&self) -> usize {
        self.ticks.len()
            + self.bars.len()
            + self.analytics.len()
            + self.realtime.len()
            + self.checkpoints.len()
    }

    /// Whether it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
