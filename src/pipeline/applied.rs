//! `Applied`: which trades a symbol has accounted for, per origin partition.
//!
//! A trade's identity is where it was first produced (its origin partition and offset; a
//! trade forwarded to its symbol's home partition keeps it, see `pipeline::routing`). Trades
//! of one origin partition reach a symbol in that partition's order, so "the last offset
//! applied from each origin partition" tells a redelivered or twice-forwarded trade from a
//! new one. It is part of the symbol's checkpoint.

use crate::output::Seq;

/// The last offset applied from each origin partition (a handful of entries: the partitions
/// that ever carried the symbol).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied(Vec<(i32, i64)>);

impl Applied {
    /// Nothing applied yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last offset applied from `partition`.
    pub fn get(&self, partition: i32) -> Option<i64> {
        self.0
            .iter()
            .find(|(p, _)| *p == partition)
            .map(|(_, o)| *o)
    }

    /// Whether the trade `id` comes after everything applied from its partition.
    pub fn is_new(&self, id: Seq) -> bool {
        self.get(id.partition).is_none_or(|o| id.offset > o)
    }

    /// Records `id` as applied (never moves back).
    pub fn record(&mut self, id: Seq) {
        match self.0.iter_mut().find(|(p, _)| *p == id.partition) {
            Some((_, o)) => *o = (*o).max(id.offset),
            None => {
                self.0.push((id.partition, id.offset));
                self.0.sort_unstable();
            }
        }
    }

    /// Forgets what was applied from `partition` (its log was replaced: see
    /// `pipeline::checkpoint`).
    pub fn forget(&mut self, partition: i32) {
        self.0.retain(|(p, _)| *p != partition);
    }

    /// Forgets everything (the checkpoint was written against another broker).
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// `(partition, last offset)` pairs, by partition.
    pub fn iter(&self) -> impl Iterator<Item = (i32, i64)> + '_ {
        self.0.iter().copied()
    }

    /// Whether nothing was applied.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(partition: i32, offset: i64) -> Seq {
        Seq { partition, offset }
    }

    #[test]
    fn each_origin_partition_is_followed_on_its_own() {
        let mut a = Applied::new();
        assert!(a.is_new(seq(0, 0)));
        a.record(seq(0, 10));
        a.record(seq(3, 2));
        assert!(!a.is_new(seq(0, 10)) && !a.is_new(seq(0, 4)));
        assert!(a.is_new(seq(0, 11)));
        assert!(!a.is_new(seq(3, 2)) && a.is_new(seq(3, 3)));
        assert!(a.is_new(seq(1, 0)), "another partition is independent");
        a.record(seq(0, 5));
        assert_eq!(a.get(0), Some(10), "never moves back");
        assert_eq!(a.iter().collect::<Vec<_>>(), [(0, 10), (3, 2)]);
        a.forget(0);
        assert!(a.is_new(seq(0, 0)));
        a.clear();
        assert!(a.is_empty());
    }
}
