//! What the pipeline emits. Its subscribers (the `DbWriter` and the Kafka `OutputPublisher`,
//! whose topics feed WebSocket clients) receive the same [`OutputBatch`]es behind an `Arc`.

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

/// A tick as consumed, with its identity and where it was read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickRecord {
    pub tick: Tick,
    /// The trade's identity: where it was first produced. A trade forwarded to its symbol's
    /// home partition keeps it (stored as `seq`; redeliveries and repeated forwards of one
    /// trade are one trade).
    pub seq: Seq,
    /// Where this consumer read it (the position replays and commits are about); equals
    /// `seq` unless the trade was forwarded.
    pub at: Seq,
    /// How far this trade may move its symbol's event clock: the time it was vouched for
    /// (its Kafka message's time, or the wall clock when that is earlier; see
    /// `pipeline::clock`), or its own time where nothing vouches (files, stored trades).
    /// A trade stamped ahead of it is counted in its bar but closes no bar early: the
    /// trades of the present minute arriving after it are not late.
    pub clock_limit: Timestamp,
}

impl TickRecord {
    /// A trade whose own time is its clock limit.
    pub fn new(tick: Tick, seq: Seq, at: Seq) -> Self {
        Self {
            tick,
            seq,
            at,
            clock_limit: tick.ts(),
        }
    }

    /// The event time this trade moves its symbol's clock to.
    pub fn clock(&self) -> Timestamp {
        self.tick.ts().min(self.clock_limit)
    }
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
    /// Trades in that bar (0 for a bar from a history provider). The store does not let a
    /// row for a bar with fewer trades than the stored bar replace the stored row: it comes
    /// from an instance that fell behind (paused while another took its partitions over).
    pub trades: u64,
}

/// A bar still open, with the indicator values it would give if it closed now (computed
/// without changing the indicators' state; `None` while no indicator state exists).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FormingBar {
    pub bar: Bar,
    pub values: Option<IndicatorValues>,
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
    /// The broker epoch of `applied` (copied out of the state for the store's fence).
    pub epoch: String,
    /// The last offset applied per origin partition (copied out of the state).
    pub applied: Vec<(i32, i64)>,
}

impl Checkpoint {
    /// Whether this checkpoint may replace `stored` (its epoch and applied offsets; `None`
    /// for a row written before they were kept).
    ///
    /// Refused: one of the same broker that applied less of a partition than the stored one
    /// — written by an instance that lost the symbol's partition while paused (a zombie),
    /// after the new owner checkpointed further. Accepted: another broker's (a restart on a
    /// new embedded broker), and one without a partition the stored one has (that
    /// partition's log was replaced: `pipeline::checkpoint::prepare_restore`).
    pub fn may_replace(&self, stored: Option<(&str, &[(i32, i64)])>) -> bool {
        let Some((epoch, applied)) = stored else {
            return true;
        };
        epoch != self.epoch
            || applied.iter().all(|(p, o)| {
                self.applied
                    .iter()
                    .find(|(q, _)| q == p)
                    .is_none_or(|(_, mine)| mine >= o)
            })
    }
}

/// Everything one symbol produced from one batch of ticks.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OutputBatch {
    pub ticks: Vec<TickRecord>,
    pub bars: Vec<BarRecord>,
    pub analytics: Vec<AnalyticsRecord>,
    pub realtime: Vec<RealtimeRecord>,
    pub checkpoints: Vec<Checkpoint>,
    /// Bars still open with the values they would give if they closed now: published on
    /// the forming-bar topic for live views, never stored.
    pub forming: Vec<FormingBar>,
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

    /// Whether it carries no row to store.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether it carries nothing at all (no row, no forming bar).
    pub fn is_void(&self) -> bool {
        self.is_empty() && self.forming.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(epoch: &str, applied: &[(i32, i64)]) -> Checkpoint {
        Checkpoint {
            symbol: Symbol::parse("AAPL").unwrap(),
            seq: Seq {
                partition: 0,
                offset: -1,
            },
            state: Vec::new(),
            epoch: epoch.into(),
            applied: applied.to_vec(),
        }
    }

    #[test]
    fn a_checkpoint_never_replaces_a_newer_one_of_the_same_broker() {
        let stored: &[(i32, i64)] = &[(0, 100), (3, 7)];
        let newer = checkpoint("e", &[(0, 150), (3, 7)]);
        assert!(newer.may_replace(Some(("e", stored))));
        let zombie = checkpoint("e", &[(0, 90), (3, 9)]);
        assert!(
            !zombie.may_replace(Some(("e", stored))),
            "behind on partition 0"
        );
        let fresh = checkpoint("e", &[]);
        assert!(
            fresh.may_replace(Some(("e", stored))),
            "a replaced log forgets offsets"
        );
        let other_broker = checkpoint("f", &[(0, 1)]);
        assert!(other_broker.may_replace(Some(("e", stored))));
        assert!(zombie.may_replace(None), "a row from before the fence");
    }
}
