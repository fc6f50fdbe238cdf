//! `Aligner`: hands trades to the symbols in event-time order across the partitions this
//! instance reads, so that a symbol whose trades arrive on several partitions (no key, a
//! wrong key, another client's partitioner) still gets them in time order.
//!
//! Kafka keeps order within a partition only, and the consumer reads partitions at
//! different speeds: with a backlog, one partition's whole hour can arrive before another's
//! first minute, and a symbol spread over both would see most of its trades as late. So
//! every trade read waits in its partition's lane until each partition that is still
//! being read has reached its time (a partition caught up with its log's end holds nothing
//! back), and lanes are merged by trade time. Within a partition the order is never
//! changed, so a symbol read from one partition (a keyed producer) gets exactly that
//! partition's order, and replays give the same result. When every partition is caught up
//! (live running), nothing waits at all.
//!
//! The bound is "the latest trade time read from each partition still being read": a
//! partition's next trades are assumed no older than that, as a producer publishing in time
//! order gives. Trades older than it (out-of-order producers) are late, as they would be
//! without alignment.

use crate::domain::Timestamp;
use crate::output::TickRecord;
use std::collections::{BTreeMap, VecDeque};

/// How far trades may be released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A partition still being read has shown no trade yet: nothing may go.
    Nothing,
    /// Trades up to this time may go.
    Upto(Timestamp),
    /// Every partition is caught up: everything may go.
    Everything,
}

impl Bound {
    fn admits(self, ts: Timestamp) -> bool {
        match self {
            Self::Nothing => false,
            Self::Upto(b) => ts <= b,
            Self::Everything => true,
        }
    }

    /// The bound as a cap on how far a quiet symbol's clock may move (`None`: no cap).
    pub fn as_cap(self) -> Option<Timestamp> {
        match self {
            Self::Nothing => Some(Timestamp::MIN),
            Self::Upto(b) => Some(b),
            Self::Everything => None,
        }
    }
}

#[derive(Debug, Default)]
struct Lane {
    queue: VecDeque<TickRecord>,
    /// Latest trade time read from the partition.
    frontier: Option<Timestamp>,
    /// Latest trade time released from it.
    released: Option<Timestamp>,
    /// Caught up with the log's end (its end was reported after its last message).
    at_end: bool,
}

/// The lanes of every owned partition.
#[derive(Debug, Default)]
pub struct Aligner {
    lanes: BTreeMap<i32, Lane>,
    held: usize,
}

impl Aligner {
    /// No partition yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `partition` is now read here (nothing known of it yet: it holds everything back until
    /// it shows a trade or its end).
    pub fn assign(&mut self, partition: i32) {
        self.lanes.entry(partition).or_default();
    }

    /// `partition` is no longer read here: its held trades are dropped (its new owner reads
    /// them from the last commit, which is before them). Returns how many.
    pub fn revoke(&mut self, partition: i32) -> usize {
        let dropped = self.lanes.remove(&partition).map_or(0, |l| l.queue.len());
        self.held -= dropped;
        dropped
    }

    /// A message of `partition` was read (any message: the partition is not at its end).
    pub fn saw_message(&mut self, partition: i32) {
        self.lanes.entry(partition).or_default().at_end = false;
    }

    /// `partition` reached the end of its log.
    pub fn reached_end(&mut self, partition: i32) {
        if let Some(lane) = self.lanes.get_mut(&partition) {
            lane.at_end = true;
        }
    }

    /// Queues a trade read from `r.at.partition`.
    pub fn push(&mut self, r: TickRecord) {
        let lane = self.lanes.entry(r.at.partition).or_default();
        lane.at_end = false;
        let ts = r.tick.ts();
        lane.frontier = Some(lane.frontier.map_or(ts, |f| f.max(ts)));
        lane.queue.push_back(r);
        self.held += 1;
    }

    /// How far trades may go now.
    pub fn bound(&self) -> Bound {
        let mut bound = Bound::Everything;
        for lane in self.lanes.values().filter(|l| !l.at_end) {
            match lane.frontier {
                None => return Bound::Nothing,
                Some(f) => {
                    if let Bound::Upto(b) = bound
                        && b <= f
                    {
                        continue;
                    }
                    bound = Bound::Upto(f);
                }
            }
        }
        bound
    }

    /// Releases every trade the bound admits, oldest trade time first across lanes (each
    /// lane in its own order); returns how many.
    pub fn release(&mut self, out: impl FnMut(TickRecord)) -> usize {
        let bound = self.bound();
        self.release_while(out, |ts, _| bound.admits(ts))
    }

    /// Releases the `n` oldest heads whatever the bound (a partition that stopped advancing
    /// must not hold the others back forever, nor fill memory); returns how many.
    pub fn release_forced(&mut self, n: usize, out: impl FnMut(TickRecord)) -> usize {
        self.release_while(out, |_, released| released < n)
    }

    fn release_while(
        &mut self,
        mut out: impl FnMut(TickRecord),
        admit: impl Fn(Timestamp, usize) -> bool,
    ) -> usize {
        let mut released = 0;
        loop {
            let next = self
                .lanes
                .iter()
                .filter_map(|(p, l)| l.queue.front().map(|r| (r.tick.ts(), *p)))
                .min();
            let Some((ts, partition)) = next.filter(|(ts, _)| admit(*ts, released)) else {
                break;
            };
            // unwrap: the lane exists and its queue has the head just found.
            let lane = self.lanes.get_mut(&partition).unwrap();
            let r = lane.queue.pop_front().unwrap();
            lane.released = Some(lane.released.map_or(ts, |x| x.max(ts)));
            self.held -= 1;
            released += 1;
            out(r);
        }
        released
    }

    /// The oldest offset of `partition` still held (commits must stay before it).
    pub fn oldest_held(&self, partition: i32) -> Option<i64> {
        self.lanes
            .get(&partition)
            .and_then(|l| l.queue.iter().map(|r| r.at.offset).min())
    }

    /// Trades held in all lanes.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Trades held in `partition`'s lane.
    pub fn held_in(&self, partition: i32) -> usize {
        self.lanes.get(&partition).map_or(0, |l| l.queue.len())
    }

    /// `partition` is read again from an earlier offset (a replay): its held trades are
    /// dropped (they come again) and its frontier goes back to what was released from it.
    pub fn rewind(&mut self, partition: i32) {
        if let Some(lane) = self.lanes.get_mut(&partition) {
            self.held -= lane.queue.len();
            lane.queue.clear();
            lane.frontier = lane.released;
            lane.at_end = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Source, Symbol, Tick};
    use crate::output::Seq;

    fn tick(partition: i32, offset: i64, secs: i64) -> TickRecord {
        let seq = Seq { partition, offset };
        TickRecord {
            tick: Tick::new(
                Symbol::parse("W1").unwrap(),
                Timestamp::from_secs(secs),
                1.0,
                1.0,
                Source::new("t"),
            )
            .unwrap(),
            seq,
            at: seq,
        }
    }

    fn drain(a: &mut Aligner) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        a.release(|r| out.push((r.at.partition, r.tick.ts().micros() / 1_000_000)));
        out
    }

    #[test]
    fn a_partition_read_ahead_waits_for_the_others_and_lanes_merge_by_time() {
        let mut a = Aligner::new();
        a.assign(0);
        a.assign(1);
        for (i, s) in [10, 20, 30, 40].iter().enumerate() {
            a.push(tick(0, i as i64, *s));
        }
        assert_eq!(a.bound(), Bound::Nothing, "partition 1 has shown nothing");
        assert!(drain(&mut a).is_empty());
        a.push(tick(1, 0, 15));
        assert_eq!(
            drain(&mut a),
            [(0, 10), (1, 15)],
            "up to partition 1's time"
        );
        assert_eq!(a.oldest_held(0), Some(1));
        a.push(tick(1, 1, 35));
        assert_eq!(drain(&mut a), [(0, 20), (0, 30), (1, 35)]);
        assert_eq!(
            a.held(),
            1,
            "40 waits: partition 1 may still send up to 35… and on"
        );
        a.reached_end(1);
        assert_eq!(drain(&mut a), [(0, 40)], "partition 1 caught up");
        assert_eq!(a.held(), 0);
    }

    #[test]
    fn caught_up_partitions_hold_nothing_back() {
        let mut a = Aligner::new();
        a.assign(0);
        a.assign(1);
        a.reached_end(1);
        a.push(tick(0, 0, 100));
        a.push(tick(0, 1, 99));
        assert_eq!(a.bound(), Bound::Upto(Timestamp::from_secs(100)));
        assert_eq!(
            drain(&mut a),
            [(0, 100), (0, 99)],
            "a lane's own order is kept"
        );
        a.reached_end(0);
        assert_eq!(a.bound(), Bound::Everything);
        a.saw_message(1);
        assert_eq!(a.bound(), Bound::Nothing, "a message without a trade yet");
    }

    #[test]
    fn forced_release_and_rewind_and_revoke_keep_the_count() {
        let mut a = Aligner::new();
        a.assign(0);
        a.assign(1);
        a.push(tick(1, 7, 1));
        for o in 0..5 {
            a.push(tick(0, o, 10 + o));
        }
        assert_eq!(a.held(), 6);
        let mut out = Vec::new();
        assert_eq!(a.release_forced(2, |r| out.push(r.at)), 2);
        assert_eq!(out[0].partition, 1, "oldest first");
        assert_eq!(a.held_in(0), 4);
        a.rewind(0);
        assert_eq!(a.held(), 0);
        assert_eq!(a.oldest_held(0), None);
        a.push(tick(1, 8, 2));
        assert_eq!(a.revoke(1), 1);
        assert_eq!(a.held(), 0);
        assert_eq!(a.revoke(9), 0);
    }

    #[test]
    fn the_bound_caps_a_quiet_clock() {
        assert_eq!(Bound::Everything.as_cap(), None);
        assert_eq!(
            Bound::Upto(Timestamp::from_secs(5)).as_cap(),
            Some(Timestamp::from_secs(5))
        );
        assert_eq!(Bound::Nothing.as_cap(), Some(Timestamp::MIN));
    }
}
