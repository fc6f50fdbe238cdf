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
use std::collections::HashMap;

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
}
