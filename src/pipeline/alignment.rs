//! `Aligner`: hands trades to the symbols in event-time order across the partitions this
//! instance reads, so that a symbol whose trades arrive on several partitions (no key, a
//! wrong key, another client's partitioner) still gets them in time order.
//!
//! Kafka keeps order within a partition only, and the consumer reads partitions at
//! different speeds: with a backlog, one partition's whole hour can arrive before another's
//! first minute, and a symbol spread over both would see most of its trades as late. So
//! every trade read waits in its partition's lane until no other partition still being read
//! can bring an older trade of its symbol, and lanes are merged by trade time. Within a
//! partition the order is never changed, so a symbol read from one partition (a keyed
//! producer) gets exactly that partition's order, and replays give the same result. When
//! every partition is caught up with its log (live running), nothing waits at all.
//!
//! "Can bring an older trade" is judged per partition, assuming each producer publishes a
//! symbol's trades in time order: a partition that has carried the symbol will not bring
//! one older than the symbol's latest there; one that has not carried it yet will not bring
//! one older than its latest trade of any symbol (a feed publishes in time order). Trades
//! that break the assumption (out-of-order producers) are late, as without alignment.

use crate::domain::{Symbol, Timestamp};
use crate::output::TickRecord;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// How far every partition still being read has come, for the quiet-symbol clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A partition still being read has shown no trade yet.
    Nothing,
    /// Every partition still being read has reached this time.
    Upto(Timestamp),
    /// Every partition is caught up.
    Everything,
}

impl Bound {
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
    /// Latest trade time read from the partition, per symbol it carried.
    symbols: HashMap<Symbol, Timestamp>,
    /// The times of the trades held in `queue`, per symbol, in queue order (so the first
    /// is the symbol's oldest held here, producers publishing a symbol in time order).
    held: HashMap<Symbol, VecDeque<Timestamp>>,
    /// Latest trade time released from it, overall and per symbol.
    released: Option<Timestamp>,
    released_symbols: HashMap<Symbol, Timestamp>,
    /// Caught up with the log's end (its end was reported after its last message).
    at_end: bool,
}

impl Lane {
    /// Whether this partition can no longer bring a trade of `symbol` older than `ts`: none
    /// held behind an older head, and none to come.
    fn past(&self, symbol: Symbol, ts: Timestamp) -> bool {
        !self.holds_older(symbol, ts) && self.read_past(symbol, ts)
    }

    /// Whether it holds a trade of `symbol` older than `ts` (behind its head).
    fn holds_older(&self, symbol: Symbol, ts: Timestamp) -> bool {
        self.oldest_held_of(symbol).is_some_and(|t| t < ts)
    }

    /// Whether no trade of `symbol` older than `ts` is still to be read from it: its end
    /// reached, or its reading past `ts` (for the symbol itself where it carried it).
    fn read_past(&self, symbol: Symbol, ts: Timestamp) -> bool {
        self.at_end
            || match self.symbols.get(&symbol) {
                Some(latest) => *latest >= ts,
                None => self.frontier.is_some_and(|f| f >= ts),
            }
    }

    /// The oldest trade time of `symbol` held here.
    fn oldest_held_of(&self, symbol: Symbol) -> Option<Timestamp> {
        self.held.get(&symbol).and_then(|q| q.front().copied())
    }

    /// The oldest trade time held here, of any symbol.
    fn oldest_held(&self) -> Option<Timestamp> {
        self.held.values().filter_map(|q| q.front().copied()).min()
    }
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
        lane.symbols
            .entry(r.tick.symbol())
            .and_modify(|t| *t = (*t).max(ts))
            .or_insert(ts);
        lane.held.entry(r.tick.symbol()).or_default().push_back(ts);
        lane.queue.push_back(r);
        self.held += 1;
    }

    /// How far every partition still being read has come — and no further than the oldest
    /// trade still held (a quiet symbol's clock must not close the bar a held trade of it
    /// belongs to).
    pub fn bound(&self) -> Bound {
        let held = self.lanes.values().filter_map(Lane::oldest_held).min();
        match (self.read_bound(), held) {
            (Bound::Everything, Some(h)) => Bound::Upto(h),
            (Bound::Upto(b), Some(h)) => Bound::Upto(b.min(h)),
            (bound, _) => bound,
        }
    }

    /// How far every partition still being read has come.
    fn read_bound(&self) -> Bound {
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

    /// Whether the head `r` of lane `from` may go: no other partition still being read can
    /// bring an older trade of its symbol.
    fn admits(&self, from: i32, r: &TickRecord) -> bool {
        let (symbol, ts) = (r.tick.symbol(), r.tick.ts());
        self.lanes
            .iter()
            .all(|(p, lane)| *p == from || lane.past(symbol, ts))
    }

    /// Releases every trade that may go, oldest trade time first across lanes (each lane in
    /// its own order; a lane whose head must wait waits whole); returns how many.
    ///
    /// Lanes can hold each other's heads back in a circle: partition 0 reads `A@10, B@10`
    /// and partition 1 reads `B@11, A@9` (each producer keeps each symbol in time order, as
    /// assumed, but the two interleave symbols differently). `A@10` waits for the `A@9`
    /// behind `B@11`, which waits for the `B@10` behind `A@10`: no reading can resolve that,
    /// since each lane keeps its order. The oldest head of such a circle goes (its symbol's
    /// older trade behind the other head then arrives late, within the grace period when
    /// the producers' disorder is); the rest are released as usual.
    pub fn release(&mut self, mut out: impl FnMut(TickRecord)) -> usize {
        let mut released = 0;
        loop {
            released += self.release_while(&mut out, |aligner, from, r, _| aligner.admits(from, r));
            // Checked only when no head is admitted, so its cost (pairs of lanes) is paid
            // only while the alignment waits.
            let Some(partition) = self.circle_breaker() else {
                return released;
            };
            out(self.pop_head(partition));
            released += 1;
        }
    }

    /// The lane whose head goes to break a circle of lanes holding each other's heads back:
    /// the oldest head stuck behind such a circle that waits for no partition's reading.
    fn circle_breaker(&self) -> Option<i32> {
        let heads: BTreeMap<i32, (Timestamp, Symbol)> = self
            .lanes
            .iter()
            .filter_map(|(p, l)| {
                l.queue
                    .front()
                    .map(|r| (*p, (r.tick.ts(), r.tick.symbol())))
            })
            .collect();
        // Who holds whose head back by a trade it holds (an edge of the waiting graph);
        // only those edges can close a circle, waits for reading end with reading.
        let holders = |p: i32| {
            let (ts, symbol) = heads[&p];
            heads
                .keys()
                .copied()
                .filter(move |q| *q != p && self.lanes[q].holds_older(symbol, ts))
        };
        // Lanes that wait for no other lane's held trade cannot be on a circle; drop them,
        // and what waits only for dropped ones, until only circles and lanes waiting on them
        // remain.
        let mut remaining: BTreeSet<i32> = heads.keys().copied().collect();
        loop {
            let before = remaining.clone();
            remaining.retain(|p| holders(*p).any(|q| before.contains(&q)));
            if remaining.len() == before.len() {
                break;
            }
        }
        // Every remaining lane waits, through a chain of held trades, for a circle: none of
        // them can go until one is released out of turn. The oldest whose symbol no
        // partition's reading can still undercut goes.
        remaining
            .into_iter()
            .filter(|p| {
                let (ts, symbol) = heads[p];
                self.lanes
                    .iter()
                    .all(|(q, lane)| q == p || lane.read_past(symbol, ts))
            })
            .min_by_key(|p| (heads[p].0, *p))
    }

    /// Releases the `n` oldest heads whatever the other partitions (one that stopped
    /// advancing must not hold the others back forever, nor fill memory); returns how many.
    pub fn release_forced(&mut self, n: usize, out: impl FnMut(TickRecord)) -> usize {
        self.release_while(out, |_, _, _, released| released < n)
    }

    fn release_while(
        &mut self,
        mut out: impl FnMut(TickRecord),
        admit: impl Fn(&Self, i32, &TickRecord, usize) -> bool,
    ) -> usize {
        let mut released = 0;
        // The lanes' heads by trade time: the oldest is almost always the one that may go,
        // so the (per-lane) admission check runs about once per trade.
        let mut heads: Vec<(Timestamp, i32)> = Vec::with_capacity(self.lanes.len());
        loop {
            heads.clear();
            heads.extend(
                self.lanes
                    .iter()
                    .filter_map(|(p, l)| l.queue.front().map(|r| (r.tick.ts(), *p))),
            );
            heads.sort_unstable();
            let next = heads.iter().copied().find(|(_, p)| {
                // unwrap: `heads` lists lanes with a head.
                let head = self.lanes[p].queue.front().unwrap();
                admit(self, *p, head, released)
            });
            let Some((_, partition)) = next else {
                break;
            };
            released += 1;
            out(self.pop_head(partition));
        }
        released
    }

    /// Takes the head of `partition`'s lane, which has one.
    fn pop_head(&mut self, partition: i32) -> TickRecord {
        // unwrap: callers found this lane's head.
        let lane = self.lanes.get_mut(&partition).unwrap();
        let r = lane.queue.pop_front().unwrap();
        let (symbol, ts) = (r.tick.symbol(), r.tick.ts());
        if let Some(q) = lane.held.get_mut(&symbol) {
            q.pop_front();
        }
        lane.released = Some(lane.released.map_or(ts, |x| x.max(ts)));
        lane.released_symbols
            .entry(symbol)
            .and_modify(|t| *t = (*t).max(ts))
            .or_insert(ts);
        self.held -= 1;
        r
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

    /// The partitions whose lanes hold a trade of a symbol `of` picks.
    pub fn lanes_holding<'a>(
        &'a self,
        of: impl Fn(Symbol) -> bool + 'a,
    ) -> impl Iterator<Item = i32> + 'a {
        self.lanes.iter().filter_map(move |(p, lane)| {
            lane.held
                .iter()
                .any(|(s, q)| !q.is_empty() && of(*s))
                .then_some(*p)
        })
    }

    /// Trades held in `partition`'s lane.
    pub fn held_in(&self, partition: i32) -> usize {
        self.lanes.get(&partition).map_or(0, |l| l.queue.len())
    }

    /// `partition` is read again from an earlier offset (a replay): its held trades are
    /// dropped (they come again), and what it has shown goes back to what was released
    /// from it (overall and per symbol).
    pub fn rewind(&mut self, partition: i32) {
        if let Some(lane) = self.lanes.get_mut(&partition) {
            self.held -= lane.queue.len();
            lane.queue.clear();
            lane.held.clear();
            lane.frontier = lane.released;
            lane.symbols.clone_from(&lane.released_symbols);
            lane.at_end = false;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::output::Seq;

    /// A trade of `symbol` at `secs`, read from `partition` at `offset` (its identity too).
    pub(crate) fn tick_of(symbol: &str, partition: i32, offset: i64, secs: i64) -> TickRecord {
        let seq = Seq { partition, offset };
        TickRecord::new(
            crate::domain::Tick::new(
                Symbol::parse(symbol).unwrap(),
                Timestamp::from_secs(secs),
                1.0,
                1.0,
                crate::domain::Source::new("t"),
            )
            .unwrap(),
            seq,
            seq,
        )
    }

    fn tick(partition: i32, offset: i64, secs: i64) -> TickRecord {
        tick_of("W1", partition, offset, secs)
    }

    /// Releases what may go into `out` as (symbol, seconds).
    fn released(a: &mut Aligner, out: &mut Vec<(String, i64)>) {
        a.release(|r| {
            out.push((
                r.tick.symbol().to_string(),
                r.tick.ts().micros() / 1_000_000,
            ))
        });
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
            "40 waits: partition 1 may still bring up to 35 and on"
        );
        a.reached_end(1);
        assert_eq!(drain(&mut a), [(0, 40)], "partition 1 caught up");
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
    fn a_symbol_a_partition_carried_waits_for_that_symbols_time_there() {
        // A producer that publishes one symbol's history, then another's, without keys:
        // partition 1 is ahead in time overall (AAA's Monday) but behind in BBB's Friday.
        let mut a = Aligner::new();
        a.assign(0);
        a.assign(1);
        a.push(tick_of("AAA", 1, 0, 500));
        a.push(tick_of("BBB", 1, 1, 100));
        a.push(tick_of("BBB", 0, 0, 150));
        let mut out = Vec::new();
        a.release(|r| out.push((r.tick.symbol().to_string(), r.at.partition)));
        assert!(
            out.is_empty(),
            "BBB at 150 waits: partition 1 holds BBB at 100, whatever its AAA"
        );
        a.push(tick_of("BBB", 1, 2, 160));
        a.release(|r| out.push((r.tick.symbol().to_string(), r.at.partition)));
        assert!(
            out.is_empty(),
            "still: BBB's 100 is behind AAA's 500, which partition 0 may still undercut"
        );
        a.reached_end(0);
        a.release(|r| out.push((r.tick.symbol().to_string(), r.at.partition)));
        assert_eq!(
            out,
            [
                ("AAA".to_owned(), 1),
                ("BBB".to_owned(), 1),
                ("BBB".to_owned(), 0),
                ("BBB".to_owned(), 1)
            ],
            "once partition 0 is caught up: BBB in time order"
        );
    }

    #[test]
    fn a_keyed_symbol_does_not_wait_for_partitions_that_moved_past_it() {
        let mut a = Aligner::new();
        a.assign(0);
        a.assign(1);
        a.push(tick_of("AAA", 0, 0, 10));
        a.push(tick_of("BBB", 1, 0, 10));
        assert_eq!(drain(&mut a).len(), 2);
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
    fn lanes_holding_name_the_partitions_with_a_held_trade_of_the_symbols_asked_for() {
        let mut a = Aligner::new();
        for p in 0..3 {
            a.assign(p);
        }
        a.push(tick_of("AAA", 0, 0, 10));
        a.push(tick_of("BBB", 1, 0, 10));
        a.push(tick_of("AAA", 2, 0, 5));
        let aaa = Symbol::parse("AAA").unwrap();
        let holding = |a: &Aligner| a.lanes_holding(|s| s == aaa).collect::<Vec<_>>();
        assert_eq!(holding(&a), [0, 2]);
        // Released trades are not held: partition 2's AAA at 5 is the oldest of all.
        a.release_forced(1, |_| {});
        assert_eq!(holding(&a), [0]);
        a.rewind(0);
        assert!(holding(&a).is_empty());
    }

    #[test]
    fn a_symbol_held_behind_another_symbols_newer_trade_still_holds_it_back() {
        // Partition 0's head is AAA at 500; BBB at 100 waits behind it. BBB at 150 from
        // partition 1 must not pass BBB's 100, though partition 0's head is newer.
        let mut a = Aligner::new();
        a.assign(0);
        a.assign(1);
        a.push(tick_of("AAA", 0, 0, 500));
        a.push(tick_of("BBB", 0, 1, 100));
        a.push(tick_of("BBB", 1, 0, 150));
        a.push(tick_of("CCC", 1, 1, 600));
        let mut out = Vec::new();
        released(&mut a, &mut out);
        a.reached_end(0);
        a.reached_end(1);
        released(&mut a, &mut out);
        assert_eq!(
            out,
            [
                ("AAA".to_owned(), 500),
                ("BBB".to_owned(), 100),
                ("BBB".to_owned(), 150),
                ("CCC".to_owned(), 600)
            ]
        );
    }

    #[test]
    fn lanes_holding_each_others_heads_back_in_a_circle_release_the_oldest_head() {
        // Each partition keeps each symbol in time order, but they interleave AAA and BBB
        // differently: AAA@10 waits for the AAA@9 behind BBB@11, which waits for the BBB@10
        // behind AAA@10. Partition 2 has read only up to 5, so the circle waits for it.
        let mut a = Aligner::new();
        for p in 0..3 {
            a.assign(p);
        }
        a.push(tick_of("AAA", 0, 0, 10));
        a.push(tick_of("BBB", 0, 1, 10));
        a.push(tick_of("BBB", 1, 0, 11));
        a.push(tick_of("AAA", 1, 1, 9));
        a.push(tick_of("CCC", 2, 0, 5));
        a.reached_end(0);
        a.reached_end(1);
        let mut out = Vec::new();
        released(&mut a, &mut out);
        assert_eq!(
            a.held(),
            4,
            "partition 2 may still bring AAA or BBB before 10"
        );
        a.push(tick_of("CCC", 2, 1, 20));
        released(&mut a, &mut out);
        assert_eq!(a.held(), 0);
        assert_eq!(
            out,
            [
                ("CCC".to_owned(), 5),
                ("CCC".to_owned(), 20),
                ("AAA".to_owned(), 10),
                ("BBB".to_owned(), 10),
                ("BBB".to_owned(), 11),
                ("AAA".to_owned(), 9)
            ],
            "the circle waits for partition 2's reading, then its oldest head goes"
        );
    }

    #[test]
    fn the_bound_stays_below_every_held_trade() {
        let mut a = Aligner::new();
        a.assign(0);
        a.assign(1);
        a.push(tick(0, 0, 50));
        a.reached_end(0);
        a.push(tick(1, 0, 200));
        // Partition 1 is still being read (up to 200) but partition 0 holds 50 back.
        assert_eq!(a.bound(), Bound::Upto(Timestamp::from_secs(50)));
        a.reached_end(1);
        drain(&mut a);
        assert_eq!(a.bound(), Bound::Everything);
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
