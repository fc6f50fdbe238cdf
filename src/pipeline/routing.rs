//! Where a trade is processed, and which partitions fed which symbol.
//!
//! Every symbol is processed by the owner of its home partition
//! ([`crate::kafka::partitioner::home_partition`]), whatever partition its trades arrive
//! on. A trade read here whose home is also read here is processed here (merged in time
//! order with the rest by `pipeline::alignment`); a trade whose home another instance reads
//! is forwarded to the home partition, keeping its identity (`kafka::producer::ORIGIN_HEADER`),
//! and its offset is committed only once the forward is acknowledged.

use crate::domain::Symbol;
use crate::kafka::partitioner::home_partition;
use crate::pipeline::Aligner;
use std::collections::{BTreeSet, HashMap};

/// What to do with a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Its home partition is read here: process it here.
    Local,
    /// Forward it to its home partition, read by another instance.
    Forward { home: i32 },
}

/// The route of a trade of `symbol`, given the topic's partition count and the partitions
/// read here.
pub fn route(symbol: Symbol, partitions: i32, owns: impl Fn(i32) -> bool) -> Route {
    let home = home_partition(symbol, partitions);
    if owns(home) {
        Route::Local
    } else {
        Route::Forward { home }
    }
}

/// The partitions each symbol's trades were read from since the last commit: a symbol that
/// goes back to its checkpoint needs all of them replayed.
#[derive(Debug, Default)]
pub struct Feeds(HashMap<Symbol, Vec<i32>>);

impl Feeds {
    /// Nothing read yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `symbol` got a trade read from `partition`.
    pub fn fed(&mut self, symbol: Symbol, partition: i32) {
        let parts = self.0.entry(symbol).or_default();
        if !parts.contains(&partition) {
            parts.push(partition);
        }
    }

    /// The partitions `symbol` was fed from since the last commit.
    pub fn of(&self, symbol: Symbol) -> &[i32] {
        self.0.get(&symbol).map_or(&[], Vec::as_slice)
    }

    /// The symbols fed since the last commit (they need a checkpoint).
    pub fn symbols(&self) -> impl Iterator<Item = Symbol> + '_ {
        self.0.keys().copied()
    }

    /// `symbol` is gone from here; returns the partitions it was fed from.
    pub fn remove(&mut self, symbol: Symbol) -> Vec<i32> {
        self.0.remove(&symbol).unwrap_or_default()
    }

    /// Everything so far is committed.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Whether no symbol was fed since the last commit.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What home partitions moving away (or arriving while their symbols still run here) mean
/// for the symbols processed here.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Handover {
    /// Supervisors to retire: the symbols' owner resumes them from their checkpoints.
    pub retire: Vec<Symbol>,
    /// Other partitions to read again from their last commit: since it they fed the moving
    /// symbols trades that no checkpoint covers — released to them, or still held for
    /// alignment. Read again, those trades are forwarded to the symbols' owner.
    pub replay: BTreeSet<i32>,
}

/// The handover of the symbols homed on `moving` (of `partitions`): `running` are the
/// symbols with a supervisor here; their feeds since the last commit are forgotten.
///
/// The held trades matter as much as the fed ones: a symbol's trades read from a partition
/// kept here can still wait in the aligner when its home moves (a commit just before had
/// cleared its feeds, or it never had a supervisor). Left there, they would be released
/// later to a supervisor started for a symbol this instance no longer owns, stored from
/// a stale state and never reach the owner's bars.
pub fn handover(
    moving: &[i32],
    partitions: i32,
    running: &[Symbol],
    feeds: &mut Feeds,
    aligner: &Aligner,
) -> Handover {
    let homed = |s: Symbol| moving.contains(&home_partition(s, partitions));
    let retire: Vec<Symbol> = running.iter().copied().filter(|s| homed(*s)).collect();
    // Fed symbols without a supervisor yet: released this round, not yet dispatched.
    let fed: Vec<Symbol> = feeds.symbols().filter(|s| homed(*s)).collect();
    let mut replay: BTreeSet<i32> = retire
        .iter()
        .chain(&fed)
        .flat_map(|s| feeds.remove(*s))
        .collect();
    replay.extend(aligner.lanes_holding(homed));
    replay.retain(|p| !moving.contains(p));
    Handover { retire, replay }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trade_is_processed_where_its_home_is_read_or_forwarded_there() {
        let s = Symbol::parse("AAPL").unwrap();
        let home = home_partition(s, 6);
        assert_eq!(route(s, 6, |p| p == home), Route::Local);
        assert_eq!(route(s, 6, |p| p != home), Route::Forward { home });
    }

    #[test]
    fn feeds_list_each_partition_once_until_cleared() {
        let s = Symbol::parse("W1").unwrap();
        let mut f = Feeds::new();
        f.fed(s, 2);
        f.fed(s, 0);
        f.fed(s, 2);
        assert_eq!(f.of(s), [2, 0]);
        assert_eq!(f.symbols().count(), 1);
        assert_eq!(f.remove(s), [2, 0]);
        assert!(f.is_empty());
    }

    /// A symbol homed on partition `home` of 6, and another partition.
    fn symbol_homed(home: i32) -> Symbol {
        (0..)
            .map(|i| Symbol::parse(&format!("S{i}")).unwrap())
            .find(|s| home_partition(*s, 6) == home)
            .unwrap()
    }

    fn held(symbol: Symbol, partition: i32, offset: i64) -> crate::output::TickRecord {
        crate::pipeline::alignment::tests::tick_of(
            symbol.as_str(),
            partition,
            offset,
            1_000 + offset,
        )
    }

    #[test]
    fn a_moving_symbol_s_trades_held_in_a_kept_partition_are_read_again() {
        // X is homed on 2; a trade of X read from 3 waits in the aligner (partition 4 has
        // shown nothing yet) when 2 is revoked, just after a commit cleared the feeds.
        let (x, y) = (symbol_homed(2), symbol_homed(4));
        let mut aligner = Aligner::new();
        for p in [2, 3, 4] {
            aligner.assign(p);
        }
        aligner.push(held(x, 3, 17));
        aligner.push(held(y, 4, 5));
        let mut feeds = Feeds::new();
        let h = handover(&[2], 6, &[x, y], &mut feeds, &aligner);
        assert_eq!(h.retire, [x]);
        assert_eq!(h.replay, BTreeSet::from([3]), "partition 3 holds X's trade");
        // Partition 4 holds only Y's, homed on 4 itself: nothing to read again there.
        let h = handover(&[4], 6, &[x, y], &mut feeds, &aligner);
        assert_eq!((h.retire, h.replay), (vec![y], BTreeSet::new()));
    }

    #[test]
    fn a_moving_symbol_fed_but_not_yet_started_has_its_feeds_read_again() {
        // X's trades from 0 and 5 were released this round; its supervisor does not exist
        // yet. Its own home (moving) is never replayed here.
        let x = symbol_homed(1);
        let mut feeds = Feeds::new();
        for p in [0, 5, 1] {
            feeds.fed(x, p);
        }
        let h = handover(&[1], 6, &[], &mut feeds, &Aligner::new());
        assert!(h.retire.is_empty());
        assert_eq!(h.replay, BTreeSet::from([0, 5]));
        assert!(feeds.is_empty(), "the moving symbol's feeds are forgotten");
    }
}
